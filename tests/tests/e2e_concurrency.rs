//! End to end: two switches of one service at once — exactly one proceeds, the other exits with
//! the lock code (6) naming the holder (design §3 step 1).

mod common;

use std::time::Duration;

use common::e2e::{Cli, Green, host_of, pair};
use kong_switch_tests::cli::Run;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::StandIn;

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
