//! The real `kong-switch` binary, end to end, with the Firestore log on the real emulator and
//! the Kong stand-in: a run's lease lives only as long as the run renews it. A SIGKILLed
//! `shift` no longer locks out `rollback` for its whole `--lease-ttl`: its lease lapses
//! `--lease-expiry` after its last renewal, and `rollback` takes it over (recorded in the
//! log). A live run keeps its lease through a bake longer than the expiry.
#![cfg(feature = "gke")]

#[path = "../../kong-switch-gke/tests/support/mod.rs"]
mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kong_switch_core::admin::ListParams;
use kong_switch_core::model::NameOrId;
use kong_switch_core::state::{EventKind, LeaseState, StateLog, TakeoverCause};
use kong_switch_gke::{FirestoreEndpoint, FirestoreLog, FirestoreUrl};
use kong_switch_tests::standin::{Profile, StandIn};
use serde_json::{Value, json};
use support::emulator::Emulator;
use support::kong_client;

const BLUE: &str = "10.0.0.1:80";
const GREEN: &str = "10.0.0.2:80";
/// The runs' lease settings: renewed every 2 s, lapsing 6 s after the last renewal.
const RENEW_EVERY: &str = "2s";
const EXPIRY_FLAG: &str = "6s";
const EXPIRY: Duration = Duration::from_secs(6);

/// A stand-in with `orders` on the upstream `orders-up`: blue at weight 100, green at 0,
/// told apart by tags.
async fn kong() -> StandIn {
    StandIn::builder()
        .profile(Profile::V3)
        .router_delay(Duration::from_millis(50))
        .seed(json!({
            "_format_version": "3.0",
            "services": [{"name": "orders", "host": "orders-up", "port": 80}],
            "upstreams": [{
                "name": "orders-up",
                "targets": [
                    {"target": BLUE, "weight": 100, "tags": ["kong-switch.color=blue"]},
                    {"target": GREEN, "weight": 0, "tags": ["kong-switch.color=green"]}
                ]
            }]
        }))
        .start()
        .await
        .expect("the Kong stand-in starts")
}

/// Runs `kong-switch` on `kong` with the Firestore log `state` on `emulator`.
struct Ks {
    admin_url: String,
    state: String,
    emulator_host: String,
}

impl Ks {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kong-switch"));
        command
            .args(["--admin-url", &self.admin_url, "--state", &self.state])
            .args(args)
            .env("FIRESTORE_EMULATOR_HOST", &self.emulator_host)
            .env_remove("KONG_ADMIN_URL")
            .env_remove("KONG_ADMIN_TOKEN")
            .env_remove("KONG_SWITCH_STATE");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .expect("the kong-switch binary runs")
    }

    /// `args` with `--output json`: the exit code and the JSON on stdout.
    fn json(&self, args: &[&str]) -> (Option<i32>, Value, String) {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.run(&all);
        let value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), value, text(&out.stderr))
    }

    /// A `shift` of `orders` to green at 50 % then 100 %, baking `bake` after the first
    /// step, holding its lease with the test's renewal settings.
    fn shift(&self, bake: &str) -> tokio::process::Child {
        let args = [
            "shift",
            "orders",
            "--steps",
            "50,100",
            "--bake",
            bake,
            "--min-healthy",
            "0",
            "--lease-renew-every",
            RENEW_EVERY,
            "--lease-expiry",
            EXPIRY_FLAG,
            "--output",
            "json",
        ];
        tokio::process::Command::from(self.command(&args))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn kong-switch")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn connect(state: &str, emulator: &Emulator) -> FirestoreLog {
    let url: FirestoreUrl = state.parse().expect("valid URL");
    FirestoreLog::connect_to(
        url,
        FirestoreEndpoint::Emulator {
            host: emulator.host().to_owned(),
        },
    )
    .await
    .expect("connect")
}

async fn setup() -> (Emulator, StandIn, Ks) {
    let emulator = Emulator::start();
    let kong = kong().await;
    let ks = Ks {
        admin_url: kong.admin_url(),
        state: format!(
            "firestore://kong-switch-test/lease-{}",
            uuid::Uuid::new_v4().simple()
        ),
        emulator_host: emulator.host().to_owned(),
    };
    (emulator, kong, ks)
}

/// Green's weight in `orders-up`.
async fn green_weight(kong: &StandIn) -> u32 {
    let client = kong_client(kong);
    let targets = client
        .targets(NameOrId::from("orders-up"))
        .list_all(&ListParams::default())
        .await
        .expect("read the targets");
    targets
        .iter()
        .find(|t| t.target == GREEN)
        .and_then(|t| t.weight)
        .unwrap_or(0)
}

/// Waits until the log of `orders` has a `step` event (the first step is live).
async fn wait_for_the_first_step(log: &FirestoreLog) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let history = log.history("orders").await.expect("history");
        if history.events.iter().any(|e| e.kind == EventKind::Step) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the shift never logged its first step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_shift_leaves_a_lease_that_rollback_takes_over_within_the_expiry() {
    let (emulator, kong, ks) = setup().await;
    let log = connect(&ks.state, &emulator).await;
    let mut shift = ks.shift("120s");
    let pid = shift.id().expect("pid");
    wait_for_the_first_step(&log).await;
    assert_eq!(green_weight(&kong).await, 50, "the first step is live");

    // `status` names the holder and its last renewal.
    let (code, status, stderr) = ks.json(&["status", "orders"]);
    assert_eq!(code, Some(9), "an unfinished run: {status:#}\n{stderr}");
    assert_eq!(status["lease"]["state"], "held", "{status:#}");
    assert_eq!(status["lease"]["lease"]["holder"]["pid"], pid, "{status:#}");
    assert!(
        status["lease"]["lease"]["renewed_at"].is_string(),
        "{status:#}"
    );
    let run_id = status["lease"]["lease"]["holder"]["run_id"].clone();

    // SIGKILL: no chance to release.
    shift.start_kill().expect("SIGKILL");
    shift.wait().await.expect("reap");
    let killed_at = Instant::now();

    // The dead run's lease as it left it: no renewal comes after the kill.
    let lapses_at = match log.lease("orders").await.expect("lease") {
        LeaseState::Held { lease } | LeaseState::Abandoned { lease } => lease.expires_at,
        other => panic!("the killed run's lease: {other:?}"),
    };

    // Until it lapses, the dead run's lease is held: rollback is refused (exit 6), naming
    // the holder. (On a machine so slow that this rollback ends after the lapse, it may
    // instead take the lease over; the log check below holds either way.)
    let out = ks.run(&["rollback", "orders"]);
    let early = chrono::Utc::now() < lapses_at;
    if early || out.status.code() != Some(0) {
        assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("is being switched by") && stderr.contains(&format!("pid {pid}")),
            "{stderr}"
        );

        // Within the expiry, `status` shows it abandoned, naming the run it belonged to.
        let abandoned = loop {
            let (_, status, _) = ks.json(&["status", "orders"]);
            if status["lease"]["state"] == "abandoned" {
                break status;
            }
            assert!(
                killed_at.elapsed() < EXPIRY + Duration::from_secs(10),
                "the lease never lapsed: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(abandoned["lease"]["lease"]["holder"]["run_id"], run_id);
        let out = ks.run(&["status", "orders"]);
        let shown = text(&out.stdout);
        assert!(
            shown.contains("lease: ABANDONED") && shown.contains(run_id.as_str().unwrap_or("?")),
            "{shown}"
        );

        // rollback now succeeds: within the expiry of the kill, not the run's 15 min TTL.
        let (code, back, stderr) = ks.json(&["rollback", "orders"]);
        let took = killed_at.elapsed();
        eprintln!("rollback succeeded {took:?} after the kill");
        assert_eq!(code, Some(0), "{back:#}\n{stderr}");
        assert_eq!(back["outcome"], "completed", "{back:#}");
        assert!(
            took < EXPIRY + Duration::from_secs(15),
            "rollback succeeded {took:?} after the kill"
        );
    } else {
        eprintln!("slow machine: the first rollback ended after the lease lapsed and took it over");
    }
    assert_eq!(
        green_weight(&kong).await,
        0,
        "blue has all the traffic again"
    );

    // The log: intent, step, the takeover (who from whom), rolled_back.
    let history = log.history("orders").await.expect("history");
    let kinds: Vec<EventKind> = history.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Intent,
            EventKind::Step,
            EventKind::LeaseTakenOver,
            EventKind::RolledBack
        ],
        "{:#?}",
        history.events
    );
    let takeover = history.events[2].takeover.as_ref().expect("takeover");
    assert_eq!(takeover.cause, TakeoverCause::Expired);
    let previous = takeover.previous.as_ref().expect("the previous lease");
    assert_eq!(
        previous.holder.pid,
        Some(pid),
        "taken over from the killed run"
    );
    assert_eq!(previous.holder.run_id, history.events[0].run_id);
    assert_eq!(
        takeover.by.run_id, history.events[3].run_id,
        "taken over by the rollback"
    );
    assert_eq!(
        log.lease("orders").await.expect("lease"),
        LeaseState::Free,
        "the rollback released its lease"
    );
    drop(emulator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_shift_keeps_its_lease_through_a_bake_longer_than_the_expiry() {
    let (emulator, kong, ks) = setup().await;
    let log = connect(&ks.state, &emulator).await;
    let shift = ks.shift("16s");
    wait_for_the_first_step(&log).await;
    let baking = Instant::now();

    // Past the expiry into the bake, the lease is still the run's, renewed.
    tokio::time::sleep(EXPIRY + Duration::from_secs(1)).await;
    let (code, status, _) = ks.json(&["status", "orders"]);
    assert_eq!(code, Some(9), "{status:#}");
    assert_eq!(status["lease"]["state"], "held", "{status:#}");
    let lease = &status["lease"]["lease"];
    assert_ne!(
        lease["renewed_at"], lease["acquired_at"],
        "renewed: {lease:#}"
    );

    // Neither rollback nor --break-lease takes a live lease (exit 6).
    let out = ks.run(&["rollback", "orders"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let out = ks.run(&["rollback", "orders", "--break-lease"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--break-lease refused"), "{stderr}");
    assert!(
        baking.elapsed() < Duration::from_secs(16),
        "checked during the bake: {:?}",
        baking.elapsed()
    );

    // The run finishes as if nobody had asked.
    let out = shift.wait_with_output().await.expect("the shift finishes");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["outcome"], "completed", "{report:#}");
    assert_eq!(green_weight(&kong).await, 100);
    let kinds: Vec<EventKind> = log
        .history("orders")
        .await
        .expect("history")
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        !kinds.contains(&EventKind::LeaseTakenOver) && !kinds.contains(&EventKind::LeaseLost),
        "{kinds:?}"
    );
    assert_eq!(log.lease("orders").await.expect("lease"), LeaseState::Free);
    drop(emulator);
}
