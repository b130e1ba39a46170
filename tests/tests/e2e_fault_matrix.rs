//! The fault matrix (design §3 invariants): every fault at every protocol step, for every
//! topology, generated from one table. Each case drives the real binary against a stand-in
//! of its own and asserts that Kong's end state, the exit code, the report, the state log and
//! `status` all say the same thing; when a case leaves work for a human (exit 9), the
//! documented way out (`rollback`, or a re-run) is taken and must end consistent too.
//!
//! Faults: Kong answers 500 (the write not applied, or applied), the connection is reset
//! (before or after the write is applied), the answer is lost and Kong applies the write
//! later, the undo fails too, SIGKILL and SIGTERM while a write is in flight and after it,
//! and the state log refusing the outcome. Steps: the reads before the intent, the write,
//! the undo, the wait after the write, the record.
//!
//! Stand-in only: faults are injected into the stand-in's Admin API.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::e2e::{Cli, Green, host_of, pair, route_pair, shared, wait_color, weights};
use common::expect;
use futures::StreamExt;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Fault, FaultAction, Profile, StandIn};
use serde_json::{Value, json};

/// Cases of one topology run at once (each has its own stand-in and backends).
const AT_ONCE: usize = 4;

/// How long a write is held in flight for the signal and log cases.
const IN_FLIGHT: Duration = Duration::from_millis(1500);

/// Where traffic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Blue,
    Green,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topology {
    /// Service host between two upstreams.
    Upstream,
    /// Two routes moved between two services.
    Route,
    /// Target weights inside one upstream.
    Weights,
    /// The upstream strategy on a DB-less node (`POST /config`).
    DbLess,
    /// Three tagged services switched all-or-nothing.
    Batch,
}

/// Where a signal hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    /// While the (first) write is held in flight by the stand-in.
    DuringWrite,
    /// After the writes, while the run verifies through the proxy.
    AfterWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Injected {
    /// 500 on the reads before anything is logged.
    ReadFails,
    /// Connection reset on the reads.
    ReadReset,
    /// 500 on the write, not applied.
    Write500,
    /// 500 on the write, applied (a proxy in front gave up).
    Write500Applied,
    /// Reset before the write is applied.
    WriteReset,
    /// Reset after the write is applied.
    WriteResetApplied,
    /// The answer is lost and Kong applies the write 800 ms later.
    WriteAppliedLate,
    /// The write is applied but answered 500, and every undo write fails.
    UndoFails,
    /// SIGKILL.
    Kill(Point),
    /// SIGTERM.
    Term(Point),
    /// The state log refuses the outcome record.
    LogFails,
}

const FAULTS: [Injected; 13] = [
    Injected::ReadFails,
    Injected::ReadReset,
    Injected::Write500,
    Injected::Write500Applied,
    Injected::WriteReset,
    Injected::WriteResetApplied,
    Injected::WriteAppliedLate,
    Injected::UndoFails,
    Injected::Kill(Point::DuringWrite),
    Injected::Kill(Point::AfterWrite),
    Injected::Term(Point::DuringWrite),
    Injected::Term(Point::AfterWrite),
    Injected::LogFails,
];

/// What every source of truth must say after the faulty run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    /// The run's exit code.
    exit: i32,
    /// The report's outcome, when the run ends with a report.
    outcome: Option<&'static str>,
    /// Where Kong is once any late write has landed.
    kong: Option<Side>,
    /// The last run event of the log (`None`: nothing logged).
    last_event: Option<&'static str>,
    /// `status`'s exit code and drift state.
    status: (i32, &'static str),
}

fn expected(fault: Injected) -> Expected {
    let rolled_back = |exit, outcome| Expected {
        exit,
        outcome: Some(outcome),
        kong: Some(Side::Blue),
        last_event: Some("rolled_back"),
        status: (0, "in_sync"),
    };
    match fault {
        Injected::ReadFails | Injected::ReadReset => Expected {
            exit: 5,
            outcome: None,
            kong: Some(Side::Blue),
            last_event: None,
            status: (0, "no_history"),
        },
        Injected::Write500
        | Injected::Write500Applied
        | Injected::WriteReset
        | Injected::WriteResetApplied
        | Injected::WriteAppliedLate => rolled_back(4, "rolled_back"),
        Injected::Term(_) => rolled_back(8, "interrupted"),
        // The undo failed: Kong may be anywhere; the log keeps the run open.
        Injected::UndoFails => Expected {
            exit: 9,
            outcome: None,
            kong: None,
            last_event: Some("intent"),
            status: (9, "dangling_intent"),
        },
        Injected::Kill(_) => Expected {
            exit: -9,
            outcome: None,
            kong: None,
            last_event: Some("intent"),
            status: (9, "dangling_intent"),
        },
        // Kong switched, the log could not say so: exit 9 naming where Kong is.
        Injected::LogFails => Expected {
            exit: 9,
            outcome: None,
            kong: Some(Side::Green),
            last_event: Some("intent"),
            status: (9, "dangling_intent"),
        },
    }
}

/// One topology built in its own stand-in.
struct Setup {
    env: Env,
    /// The switch target (service, or `tag:…`).
    target: String,
    /// Every service whose side is checked.
    services: Vec<String>,
    /// The `switch` arguments before the case's own.
    args: Vec<String>,
    /// Method and path prefix of the reads and of the (first) write.
    read: (&'static str, String),
    write: (&'static str, String),
    /// Proxy URL for `--verify` (a path serving the first service).
    verify: String,
    /// For weights: the upstream.
    upstream: Option<String>,
    /// For route: the green service's id.
    green_service: Option<String>,
    /// The backends, kept running; the first is blue.
    backends: Vec<kong_switch_tests::backend::Backend>,
}

impl Setup {
    async fn new(topology: Topology) -> Setup {
        match topology {
            Topology::Upstream => {
                let env = standin(Profile::V3).await;
                let p = pair(&env, "fm-up", Green::Healthy, &[]).await;
                Setup {
                    target: p.base.clone(),
                    services: vec![p.base.clone()],
                    args: vec!["switch".into(), p.base.clone()],
                    read: ("GET", format!("/services/{}", p.base)),
                    write: ("PATCH", format!("/services/{}", p.base)),
                    verify: p.url(&env),
                    upstream: None,
                    green_service: None,
                    backends: vec![p.blue, p.green],
                    env,
                }
            }
            Topology::Batch => {
                let env = standin(Profile::V3).await;
                let tag = format!("team={}", Env::unique("fm"));
                let mut services = Vec::new();
                let mut backends = Vec::new();
                let mut verify = String::new();
                for _ in 0..3 {
                    let p = pair(&env, "fm-b", Green::Healthy, std::slice::from_ref(&tag)).await;
                    if verify.is_empty() {
                        verify = p.url(&env);
                    }
                    services.push(p.base.clone());
                    backends.extend([p.blue, p.green]);
                }
                Setup {
                    target: format!("tag:{tag}"),
                    args: vec!["switch".into(), "--tag".into(), tag],
                    read: ("GET", "/services".into()),
                    write: ("PATCH", format!("/services/{}", services[1])),
                    services,
                    verify,
                    upstream: None,
                    green_service: None,
                    backends,
                    env,
                }
            }
            Topology::Route => route_setup().await,
            Topology::Weights => weights_setup().await,
            Topology::DbLess => dbless_setup().await,
        }
    }

    fn standin(&self) -> &StandIn {
        self.env
            .standin()
            .expect("the fault matrix runs on the stand-in")
    }

    /// Where Kong is: every checked value on one side, or `None` when mixed.
    async fn side(&self) -> Option<Side> {
        let mut sides = Vec::new();
        if let Some(up) = &self.upstream {
            let w = weights(&self.env, up).await;
            let (blue, green): (Vec<_>, Vec<_>) = w
                .iter()
                .partition(|(t, _)| t.ends_with(&format!(":{}", self.backends[0].port())));
            let blue_w: u64 = blue.iter().map(|(_, w)| **w).sum();
            let green_w: u64 = green.iter().map(|(_, w)| **w).sum();
            sides.push(match (blue_w, green_w) {
                (b, 0) if b > 0 => Some(Side::Blue),
                (0, g) if g > 0 => Some(Side::Green),
                _ => None,
            });
        } else if let Some(green_id) = &self.green_service {
            let routes = expect(
                &self.env,
                "GET",
                &format!("/services/{}/routes", self.services[0]),
                None,
                200,
            )
            .await;
            let on_blue = routes["data"].as_array().map_or(0, Vec::len);
            let green_routes = expect(
                &self.env,
                "GET",
                &format!("/services/{green_id}/routes"),
                None,
                200,
            )
            .await;
            let on_green = green_routes["data"].as_array().map_or(0, Vec::len);
            sides.push(match (on_blue, on_green) {
                (2, 0) => Some(Side::Blue),
                (0, 2) => Some(Side::Green),
                _ => None,
            });
        } else {
            for s in &self.services {
                let host = host_of(&self.env, s).await;
                sides.push(if host.ends_with("-blue") {
                    Some(Side::Blue)
                } else if host.ends_with("-green") {
                    Some(Side::Green)
                } else {
                    None
                });
            }
        }
        let first = sides.first().copied().flatten()?;
        sides.iter().all(|s| *s == Some(first)).then_some(first)
    }
}

async fn standin(profile: Profile) -> Env {
    Env::start_with(
        StandIn::builder()
            .profile(profile)
            .router_delay(Duration::from_millis(200)),
    )
    .await
}

/// Services `<base>-blue` and `<base>-green` (each with its backend), two routes on blue.
async fn route_setup() -> Setup {
    let env = standin(Profile::V3).await;
    let pair = route_pair(&env, "fm-rt", 2).await;
    let base = pair.base.clone();
    let blue_service = format!("{base}-blue");
    Setup {
        target: blue_service.clone(),
        services: vec![blue_service.clone()],
        args: vec![
            "switch".into(),
            blue_service.clone(),
            "--strategy".into(),
            "route".into(),
        ],
        read: ("GET", format!("/services/{blue_service}")),
        write: ("PATCH", "/routes/".into()),
        verify: format!("{}/{base}-r1", env.proxy_url()),
        upstream: None,
        green_service: pair.ids.1.as_str().map(str::to_owned),
        backends: pair.backends,
        env,
    }
}

/// One upstream holding a blue target (100) and a green one (0), tagged by color.
async fn weights_setup() -> Setup {
    let env = standin(Profile::V3).await;
    let w = shared(&env, "fm-w").await;
    Setup {
        target: w.base.clone(),
        services: vec![w.base.clone()],
        args: vec![
            "switch".into(),
            w.base.clone(),
            "--strategy".into(),
            "weights".into(),
        ],
        read: ("GET", format!("/services/{}", w.base)),
        write: ("PATCH", format!("/upstreams/{}/targets/", w.up)),
        verify: format!("{}{}", env.proxy_url(), w.path),
        upstream: Some(w.up),
        green_service: None,
        backends: vec![w.blue, w.green],
        env,
    }
}

/// The upstream shape on a DB-less node, seeded through its declarative configuration.
async fn dbless_setup() -> Setup {
    let blue = kong_switch_tests::backend::Backend::start("blue", "v1")
        .await
        .expect("blue backend");
    let green = kong_switch_tests::backend::Backend::start("green", "v2")
        .await
        .expect("green backend");
    let checks = common::e2e::active_checks();
    let seed = json!({
        "_format_version": "3.0",
        "upstreams": [
            { "name": "fm-dl-blue", "healthchecks": checks,
              "targets": [{ "target": format!("127.0.0.1:{}", blue.port()) }] },
            { "name": "fm-dl-green", "healthchecks": checks,
              "targets": [{ "target": format!("127.0.0.1:{}", green.port()) }] }
        ],
        "services": [
            { "name": "fm-dl", "host": "fm-dl-blue",
              "routes": [{ "name": "fm-dl", "paths": ["/fm-dl"] }] }
        ]
    });
    let env = Env::start_with(
        StandIn::builder()
            .profile(Profile::DbLess3)
            .router_delay(Duration::from_millis(200))
            .seed(seed),
    )
    .await;
    wait_color(&env, "/fm-dl", "blue").await;
    common::e2e::wait_health(&env, "fm-dl-green", "HEALTHY", Duration::from_secs(10)).await;
    Setup {
        target: "fm-dl".into(),
        services: vec!["fm-dl".into()],
        args: vec!["switch".into(), "fm-dl".into()],
        read: ("GET", "/services/fm-dl".into()),
        write: ("POST", "/config".into()),
        verify: format!("{}/fm-dl", env.proxy_url()),
        upstream: None,
        green_service: None,
        backends: vec![blue, green],
        env,
    }
}

/// The state log's file in `dir` (the only `.jsonl` there).
fn log_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("state dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a log file")
}

async fn wait_for_write(setup: &Setup) {
    let (method, path) = (&setup.write.0, &setup.write.1);
    let arrived = Env::wait_until(Duration::from_secs(20), || async {
        setup
            .standin()
            .log()
            .writes()
            .iter()
            .any(|w| w.method == *method && w.path.starts_with(path.as_str()))
    })
    .await;
    assert!(arrived.is_some(), "the write {method} {path} never arrived");
}

fn fault(on: &(&'static str, String), action: FaultAction) -> Fault {
    Fault::prefix(on.1.clone(), action).method(on.0)
}

/// Runs one case and checks that every source of truth agrees.
async fn run_case(topology: Topology, injected: Injected) {
    let setup = Setup::new(topology).await;
    let case = format!("{topology:?} × {injected:?}");
    let cli = Cli::new(&setup.env);
    let faults = setup.standin().faults();
    let mut args: Vec<String> = setup.args.clone();
    args.extend(["--unknown-write-window".into(), "2s".into()]);
    match injected {
        Injected::ReadFails => {
            faults.add(fault(&setup.read, FaultAction::Respond { status: 500 }));
        }
        Injected::ReadReset => {
            faults.add(fault(&setup.read, FaultAction::Drop));
        }
        Injected::Write500 => {
            faults.add(fault(&setup.write, FaultAction::Respond { status: 500 }).times(1));
        }
        Injected::Write500Applied => {
            faults
                .add(fault(&setup.write, FaultAction::RespondAfterApply { status: 500 }).times(1));
        }
        Injected::WriteReset => {
            faults.add(fault(&setup.write, FaultAction::Drop).times(1));
        }
        Injected::WriteResetApplied => {
            faults.add(fault(&setup.write, FaultAction::DropAfterApply).times(1));
        }
        Injected::WriteAppliedLate => {
            faults.add(fault(&setup.write, FaultAction::ApplyLate { ms: 800 }).times(1));
        }
        Injected::UndoFails => {
            faults
                .add(fault(&setup.write, FaultAction::RespondAfterApply { status: 500 }).times(1));
            // Every later write (the undo) fails, on any path.
            faults.add(
                Fault::prefix("/", FaultAction::Respond { status: 500 }).method(setup.write.0),
            );
        }
        Injected::Kill(Point::DuringWrite)
        | Injected::Term(Point::DuringWrite)
        | Injected::LogFails => {
            faults.add(fault(&setup.write, Fault::delay(IN_FLIGHT)).times(1));
        }
        Injected::Kill(Point::AfterWrite) | Injected::Term(Point::AfterWrite) => {
            args.extend([
                "--verify".into(),
                setup.verify.clone(),
                "--verify-for".into(),
                "4s".into(),
                "--min-success".into(),
                "0".into(),
            ]);
        }
    }
    let mut all = vec!["--output".to_owned(), "json".to_owned()];
    all.extend(args);
    let argv: Vec<&str> = all.iter().map(String::as_str).collect();
    let child = tokio::process::Command::from(cli.ks.command(&argv))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn kong-switch");
    let pid = child.id().expect("pid");
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{sig} {pid}");
    };
    let mut broken_log = None;
    match injected {
        Injected::Kill(point) | Injected::Term(point) => {
            wait_for_write(&setup).await;
            if point == Point::AfterWrite {
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
            signal(if matches!(injected, Injected::Kill(_)) {
                "KILL"
            } else {
                "TERM"
            });
        }
        Injected::LogFails => {
            wait_for_write(&setup).await;
            // Swap the log for a directory: the next append cannot open it.
            let file = log_file(cli.dir.path());
            let saved = file.with_extension("saved");
            std::fs::rename(&file, &saved).expect("move the log away");
            std::fs::create_dir(&file).expect("a directory in its place");
            broken_log = Some((file, saved));
        }
        _ => {}
    }
    let out = child.wait_with_output().await.expect("kong-switch ends");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        -out.status.signal().unwrap_or(0)
    });
    if let Some((file, saved)) = broken_log {
        std::fs::remove_dir(&file).expect("remove the directory");
        std::fs::rename(&saved, &file).expect("put the log back");
    }
    let want = expected(injected);
    let context = format!("{case}\nexit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(code, want.exit, "exit code: {context}");
    if let Some(outcome) = want.outcome {
        let report: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        assert_eq!(report["outcome"], outcome, "report outcome: {context}");
    }
    if injected == Injected::LogFails {
        assert!(
            stderr.contains("could not record"),
            "the error says the outcome was not recorded: {context}"
        );
    }
    // A late write lands within a second; the ones held in flight within IN_FLIGHT.
    tokio::time::sleep(IN_FLIGHT + Duration::from_millis(300)).await;
    faults.clear();

    let kong = setup.side().await;
    if let Some(side) = want.kong {
        assert_eq!(kong, Some(side), "Kong's end state: {context}");
    }
    let events = cli.history(&setup.target).await;
    let last_run = events
        .iter()
        .rev()
        .find(|e| {
            matches!(
                e["kind"].as_str(),
                Some("intent" | "completed" | "rolled_back")
            )
        })
        .and_then(|e| e["kind"].as_str());
    assert_eq!(
        last_run, want.last_event,
        "the log's last run event: {context}\n{events:#?}"
    );
    let (status_code, status) = status_of(&cli, &setup).await;
    assert_eq!(
        (
            status_code,
            status["drift"]["state"].as_str().unwrap_or("?")
        ),
        (Some(want.status.0), want.status.1),
        "status: {context}\n{status:#}"
    );
    if want.status.1 == "dangling_intent" {
        // status says where Kong is, and says it truly.
        let said = status["drift"]["kong"].as_str();
        let truth = match kong {
            Some(Side::Blue) => "before",
            Some(Side::Green) => "after",
            None => "partial",
        };
        assert_eq!(
            said,
            Some(truth),
            "status's view of Kong: {context}\n{status:#}"
        );
        // The way out: a re-run after a logged outcome failure, `rollback` otherwise.
        let (code, report) = if injected == Injected::LogFails {
            cli.json(&setup.args.iter().map(String::as_str).collect::<Vec<_>>())
                .await
        } else {
            cli.json(&["rollback", &setup.target]).await
        };
        assert_eq!(code, Some(0), "the way out: {context}\n{report:#}");
        let end = if injected == Injected::LogFails {
            Side::Green
        } else {
            Side::Blue
        };
        assert_eq!(
            setup.side().await,
            Some(end),
            "after the way out: {context}"
        );
        let (code, status) = status_of(&cli, &setup).await;
        assert_eq!(
            (code, status["drift"]["state"].as_str().unwrap_or("?")),
            (Some(0), "in_sync"),
            "status after the way out: {context}\n{status:#}"
        );
    }
}

/// `status` of the case's target (for a batch, its `tag:` key: the log against Kong).
async fn status_of(cli: &Cli, setup: &Setup) -> (Option<i32>, Value) {
    cli.json(&["status", &setup.target]).await
}

async fn matrix(topology: Topology) {
    futures::stream::iter(FAULTS)
        .map(|injected| run_case(topology, injected))
        .buffer_unordered(AT_ONCE)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: faults are injected into its Admin API"
)]
async fn upstream_switch_report_log_and_kong_agree_under_every_fault() {
    matrix(Topology::Upstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: faults are injected into its Admin API"
)]
async fn route_switch_report_log_and_kong_agree_under_every_fault() {
    matrix(Topology::Route).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: faults are injected into its Admin API"
)]
async fn weights_shift_report_log_and_kong_agree_under_every_fault() {
    matrix(Topology::Weights).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: faults are injected into its Admin API"
)]
async fn dbless_switch_report_log_and_kong_agree_under_every_fault() {
    matrix(Topology::DbLess).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: faults are injected into its Admin API"
)]
async fn batch_switch_report_log_and_kong_agree_under_every_fault() {
    matrix(Topology::Batch).await;
}
