//! End to end: two switches of one service at once — exactly one proceeds, the other exits with
//! the lock code (6) naming the holder (design §3 step 1). On a DB-less node, switches and
//! rollbacks of different services at once each apply their own edit to the node's one
//! configuration, one after another, so none loses another's change; a configuration changed
//! by another writer while it is being edited is never overwritten (exit 6).

mod common;

use std::time::Duration;

use common::e2e::{Cli, Green, host_of, pair, wait_color, wait_health};
use kong_switch_tests::backend::Backend;
use kong_switch_tests::cli::Run;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Fault, FaultAction, Profile, StandIn};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_switches_one_proceeds_the_other_exits_6_naming_the_holder() {
    // A short router delay (0.3 s) for speed; each switch holds its lock through 2 s of
    // verification, far longer than the other needs to start.
    let env = Env::start_with(StandIn::builder().router_delay(Duration::from_millis(300))).await;
    let p = pair(&env, "lock", Green::Healthy, &[]).await;
    let cli = Cli::new(&env); // one state log: the lock lives there
    let url = p.url(&env);
    let args = |actor_flag: bool| {
        let mut a: Vec<String> = [
            "--output",
            "json",
            "switch",
            &p.base,
            "--verify",
            &url,
            "--expect-header",
            "X-Color=green",
            "--verify-for",
            "2s",
        ]
        .map(String::from)
        .to_vec();
        if actor_flag {
            a.extend(["--actor".to_owned(), "alice-ci".to_owned()]);
        }
        a
    };
    let spawn = |args: Vec<String>, env_actor: Option<&str>| {
        let mut cmd = cli
            .ks
            .command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        if let Some(actor) = env_actor {
            cmd.env("KONG_SWITCH_ACTOR", actor);
        }
        let mut cmd = tokio::process::Command::from(cmd);
        async move { Run::from(cmd.output().await.expect("kong-switch runs")) }
    };
    let (alice, bob) = tokio::join!(spawn(args(true), None), spawn(args(false), Some("bob-ci")));
    let runs = [("alice-ci", &alice), ("bob-ci", &bob)];
    let winners: Vec<_> = runs.iter().filter(|(_, r)| r.code == Some(0)).collect();
    let losers: Vec<_> = runs.iter().filter(|(_, r)| r.code == Some(6)).collect();
    assert!(
        winners.len() == 1 && losers.len() == 1,
        "alice: {:?}\n{}\n{}\nbob: {:?}\n{}\n{}",
        alice.code,
        alice.stdout,
        alice.stderr,
        bob.code,
        bob.stdout,
        bob.stderr
    );
    let (winner, won) = winners[0];
    let (_, lost) = losers[0];
    assert_eq!(won.json()["outcome"], "completed");
    let message = lost.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(lost.json()["error"]["exit_code"], 6);
    assert!(
        message.contains(winner) && lost.stderr.contains(winner),
        "the refusal names the holder {winner}: {message}\n{}",
        lost.stderr
    );
    assert_eq!(host_of(&env, &p.base).await, p.green_up);
    let events = cli.history(&p.base).await;
    let intents: Vec<_> = events.iter().filter(|e| e["kind"] == "intent").collect();
    assert_eq!(intents.len(), 1, "only one run wrote: {events:#?}");
    assert!(
        intents[0]["actor"]
            .as_str()
            .unwrap_or_default()
            .contains(winner)
    );
}

/// A DB-less node seeded with services `s0`…`s{n-1}`, each on upstream `sN-blue` with a
/// `sN-green` beside it (active checks on both) and a route `/sN`; `None` against a real Kong,
/// which cannot be seeded.
struct DbLess {
    env: Env,
    seed: Value,
    _blue: Backend,
    _green: Backend,
}

impl DbLess {
    async fn start(services: usize) -> Option<DbLess> {
        let blue = Backend::start("blue", "v1").await.expect("blue");
        let green = Backend::start("green", "v2").await.expect("green");
        let checks = common::e2e::active_checks();
        let mut upstreams = Vec::new();
        let mut list = Vec::new();
        for i in 0..services {
            for (color, backend) in [("blue", &blue), ("green", &green)] {
                upstreams.push(
                    json!({ "name": format!("s{i}-{color}"), "healthchecks": checks,
                    "targets": [{ "target": format!("127.0.0.1:{}", backend.port()) }] }),
                );
            }
            list.push(
                json!({ "name": format!("s{i}"), "host": format!("s{i}-blue"),
                "routes": [{ "name": format!("s{i}"), "paths": [format!("/s{i}")] }] }),
            );
        }
        let seed = json!({ "_format_version": "3.0", "upstreams": upstreams, "services": list });
        let env = Env::start_with(
            StandIn::builder()
                .profile(Profile::DbLess3)
                .router_delay(Duration::from_millis(300))
                .seed(seed.clone()),
        )
        .await;
        env.standin()?;
        for i in 0..services {
            wait_color(&env, &format!("/s{i}"), "blue").await;
            wait_health(
                &env,
                &format!("s{i}-green"),
                "HEALTHY",
                Duration::from_secs(10),
            )
            .await;
        }
        Some(DbLess {
            env,
            seed,
            _blue: blue,
            _green: green,
        })
    }

    /// Runs `kong-switch --output json <args>` for each argument list at once.
    async fn all_at_once(cli: &Cli, runs: &[Vec<String>]) -> Vec<Run> {
        futures::future::join_all(runs.iter().map(|args| {
            let mut all = vec!["--output".to_owned(), "json".to_owned()];
            all.extend(args.iter().cloned());
            let cmd = cli
                .ks
                .command(&all.iter().map(String::as_str).collect::<Vec<_>>());
            let mut cmd = tokio::process::Command::from(cmd);
            async move { Run::from(cmd.output().await.expect("kong-switch runs")) }
        }))
        .await
    }

    /// Asserts that `service` is on `color` in Kong, through the proxy, and in `status`.
    async fn assert_on(&self, cli: &Cli, service: &str, color: &str) {
        assert_eq!(
            host_of(&self.env, service).await,
            format!("{service}-{color}"),
            "{service} in Kong"
        );
        wait_color(&self.env, &format!("/{service}"), color).await;
        let (code, status) = cli.json(&["status", service]).await;
        assert_eq!(code, Some(0), "{service}: {status:#}");
        assert_eq!(status["drift"]["state"], "in_sync", "{service}: {status:#}");
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| (*a).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(real_kong, ignore = "needs the stand-in: it seeds a DB-less stand-in")]
async fn ten_concurrent_dbless_switches_of_ten_services_all_land_and_a_concurrent_rollback_keeps_the_others()
 {
    let node = DbLess::start(11)
        .await
        .expect("not ignored, so this is the stand-in");
    let cli = Cli::new(&node.env); // one state log: the node's config lease lives there
    if let Some(standin) = node.env.standin() {
        standin.log().clear();
    }

    let runs: Vec<Vec<String>> = (0..10)
        .map(|i| args(&["switch", &format!("s{i}")]))
        .collect();
    let started = std::time::Instant::now();
    let done = DbLess::all_at_once(&cli, &runs).await;
    eprintln!(
        "10 concurrent DB-less switches, one after another under the node's config lease: {} ms",
        started.elapsed().as_millis()
    );
    for (i, run) in done.iter().enumerate() {
        assert_eq!(run.code, Some(0), "s{i}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(run.json()["outcome"], "completed", "s{i}: {}", run.stdout);
    }
    for i in 0..10 {
        node.assert_on(&cli, &format!("s{i}"), "green").await;
    }
    let posts = node
        .env
        .standin()
        .map(|s| s.log().writes().len())
        .unwrap_or_default();
    assert_eq!(posts, 10, "one POST /config per switch");

    // Five rollbacks and the switch of an eleventh service at once: each undo applies the
    // inverse of its own run's edit to the configuration as it is then.
    let mut runs: Vec<Vec<String>> = (0..5)
        .map(|i| args(&["rollback", &format!("s{i}")]))
        .collect();
    runs.push(args(&["switch", "s10"]));
    let done = DbLess::all_at_once(&cli, &runs).await;
    for (args, run) in runs.iter().zip(&done) {
        assert_eq!(
            run.code,
            Some(0),
            "{args:?}: {}\n{}",
            run.stdout,
            run.stderr
        );
        assert_eq!(
            run.json()["outcome"],
            "completed",
            "{args:?}: {}",
            run.stdout
        );
    }
    for i in 0..5 {
        node.assert_on(&cli, &format!("s{i}"), "blue").await;
    }
    for i in 5..11 {
        node.assert_on(&cli, &format!("s{i}"), "green").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(real_kong, ignore = "needs the stand-in: it seeds a DB-less stand-in")]
async fn a_dbless_switch_exits_6_and_overwrites_nothing_when_another_writer_posts_config_meanwhile()
{
    let node = DbLess::start(2)
        .await
        .expect("not ignored, so this is the stand-in");
    let standin = node
        .env
        .standin()
        .expect("not ignored, so this is the stand-in");
    let cli = Cli::new(&node.env);
    // The switch's read of /config is held for a while; meanwhile another writer (a person, a
    // controller: nobody who takes the config lease) switches s1 by posting /config.
    standin.log().clear();
    standin.faults().add(
        Fault::exact("/config", FaultAction::Delay { ms: 1_500 })
            .method("GET")
            .times(1),
    );
    let runs = [args(&["switch", "s0"])];
    let switch = DbLess::all_at_once(&cli, &runs);
    let outsider = async {
        let read = Env::wait_until(Duration::from_secs(10), || async {
            standin
                .log()
                .entries()
                .iter()
                .any(|r| r.method == "GET" && r.path == "/config")
        })
        .await;
        assert!(read.is_some(), "the switch never read /config");
        let mut theirs = node.seed.clone();
        theirs["services"][1]["host"] = json!("s1-green");
        common::expect(&node.env, "POST", "/config", Some(theirs), 201).await;
    };
    let (done, ()) = tokio::join!(switch, outsider);
    let run = &done[0];

    assert_eq!(run.code, Some(6), "{}\n{}", run.stdout, run.stderr);
    let message = run.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("changed while it was being edited"),
        "{message}"
    );
    let posts: Vec<_> = standin
        .log()
        .writes()
        .into_iter()
        .filter(|w| w.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "only the other writer posted: {posts:#?}");
    node.assert_on(&cli, "s0", "blue").await;
    assert_eq!(
        host_of(&node.env, "s1").await,
        "s1-green",
        "their change stays"
    );
    let kinds: Vec<Value> = cli
        .history("s0")
        .await
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("intent"), json!("rolled_back")]);
}
