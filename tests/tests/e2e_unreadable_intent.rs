//! End to end: a run whose intent this kong-switch cannot read (written by another version,
//! or an edited log) is *unknown*, never "nothing happened" (design §3). With Kong really on
//! green and such an intent dangling: `status` exits 9 naming the run and what it cannot
//! read; a re-run and `rollback` refuse (exit 9) and write nothing; `resolve --to blue` is
//! refused because Kong is not on blue; `resolve --to green` records the run, after which
//! `status` agrees with Kong and `rollback` works again.

mod common;

use std::io::Write;

use common::e2e::{Cli, Green, host_of, pair};
use kong_switch_tests::harness::Env;
use serde_json::{Value, json};

/// Intent records in shapes this version cannot read, each with the text the reason names.
fn unreadable_shapes() -> Vec<(&'static str, Value, &'static str)> {
    let plain = |prior: Value| {
        json!({
            "strategy": "upstream", "from": "blue", "to": "green",
            "writes": [], "undo": [], "prior": prior
        })
    };
    let mut newer = plain(json!({"plans": []}));
    newer["format"] = json!(3);
    vec![
        ("a newer format", newer, "format 3"),
        (
            "writes in another shape",
            json!({
                "strategy": "upstream", "from": "blue", "to": "green",
                "writes": [{"verb": "PATCH", "url": "/services/x"}], "undo": []
            }),
            "writes[0]",
        ),
        (
            "a plan in another shape",
            plain(json!({"plan": {"moves": ["host"]}})),
            "prior.plan",
        ),
        (
            "no saved plan",
            plain(json!({"targets": []})),
            "saves no plan",
        ),
    ]
}

/// Appends a dangling intent event with `record` to the log of `target` in `dir`.
fn append_dangling_intent(dir: &std::path::Path, target: &str, record: Value) -> String {
    let file = std::fs::read_dir(dir)
        .expect("state dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("the target's log");
    let text = std::fs::read_to_string(&file).expect("read the log");
    let last_seq = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["seq"].as_u64())
        .max()
        .unwrap_or(0);
    let run_id = uuid::Uuid::new_v4().to_string();
    let event = json!({
        "target": target, "seq": last_seq + 1, "timestamp": "2026-12-01T10:00:00Z",
        "kind": "intent", "run_id": run_id, "actor": "another-version@ci",
        "strategy": "upstream", "from": "blue", "to": "green", "service": target,
        "intent": record
    });
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open the log");
    writeln!(f, "{event}").expect("append");
    run_id
}

async fn unreadable_run_is_unknown_until_resolved(shape: &str, record: Value, needle: &str) {
    let env = Env::start().await;
    let p = pair(&env, "unr", Green::Healthy, &[]).await;
    let cli = Cli::new(&env);
    let (code, report) = cli.json(&["switch", &p.base]).await;
    assert_eq!(code, Some(0), "{shape}: {report:#}");
    assert_eq!(host_of(&env, &p.base).await, p.green_up);
    let run_id = append_dangling_intent(cli.dir.path(), &p.base, record);
    if let Some(standin) = env.standin() {
        standin.log().clear();
    }

    // status: unknown, exit 9, naming the run and what cannot be read.
    let (code, status) = cli.json(&["status", &p.base]).await;
    assert_eq!(code, Some(9), "{shape}: {status:#}");
    assert_eq!(
        status["drift"]["state"], "unreadable",
        "{shape}: {status:#}"
    );
    let message = status["drift"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&run_id),
        "{shape}: names the run: {message}"
    );
    assert!(message.contains(needle), "{shape}: says what: {message}");
    let text = cli.run(&["status", &p.base]).await;
    assert!(
        text.stdout.contains("UNREADABLE"),
        "{shape}: {}",
        text.stdout
    );

    // A re-run and a rollback refuse, and write nothing.
    for args in [
        vec!["switch", &p.base, "--to", "blue"],
        vec!["rollback", &p.base],
    ] {
        let run = cli.run(&args).await;
        assert_eq!(run.code, Some(9), "{shape}: {args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("resolve"),
            "{shape}: the way out: {}",
            run.stderr
        );
        assert_eq!(
            host_of(&env, &p.base).await,
            p.green_up,
            "{shape}: {args:?}"
        );
    }
    if let Some(standin) = env.standin() {
        assert!(standin.log().writes().is_empty(), "{shape}: no Kong write");
    }

    // resolve checks the side against Kong before recording anything.
    let (code, refused) = cli.json(&["resolve", &p.base, "--to", "blue"]).await;
    assert_eq!(code, Some(3), "{shape}: {refused:#}");
    assert_eq!(refused["outcome"], "refused", "{shape}: {refused:#}");
    let (code, _) = cli.json(&["status", &p.base]).await;
    assert_eq!(
        code,
        Some(9),
        "{shape}: still unknown after a refused resolve"
    );

    let (code, resolved) = cli.json(&["resolve", &p.base, "--to", "green"]).await;
    assert_eq!(code, Some(0), "{shape}: {resolved:#}");
    assert_eq!(resolved["outcome"], "completed", "{shape}: {resolved:#}");
    let events = cli.history(&p.base).await;
    let last = events.last().expect("events");
    assert_eq!(last["kind"], "resolved", "{shape}: {last:#}");
    assert_eq!(last["run_id"], run_id.as_str(), "{shape}: closes that run");
    assert_eq!(last["color"], "green", "{shape}");

    let (code, status) = cli.json(&["status", &p.base]).await;
    assert_eq!(code, Some(0), "{shape}: {status:#}");
    assert_eq!(status["drift"]["state"], "in_sync", "{shape}: {status:#}");

    // rollback works again, and goes back to blue.
    let (code, back) = cli.json(&["rollback", &p.base]).await;
    assert_eq!(code, Some(0), "{shape}: {back:#}");
    assert_eq!(host_of(&env, &p.base).await, p.blue_up, "{shape}");
    let (code, status) = cli.json(&["status", &p.base]).await;
    assert_eq!(code, Some(0), "{shape}: {status:#}");
    assert_eq!(status["drift"]["state"], "in_sync", "{shape}: {status:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreadable_intent_is_unknown_until_resolved_from_kong() {
    futures::future::join_all(
        unreadable_shapes()
            .into_iter()
            .map(|(shape, record, needle)| {
                unreadable_run_is_unknown_until_resolved(shape, record, needle)
            }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_without_an_unfinished_run_records_nothing() {
    let env = Env::start().await;
    let p = pair(&env, "unr-none", Green::Healthy, &[]).await;
    let cli = Cli::new(&env);
    let (code, report) = cli.json(&["resolve", &p.base, "--to", "blue"]).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "no_op", "{report:#}");
    let (code, history) = cli.json(&["history", &p.base]).await;
    assert_eq!(code, Some(0));
    assert!(
        history["events"].as_array().is_none_or(Vec::is_empty),
        "{history:#}"
    );
}
