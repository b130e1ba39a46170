//! The behaviour every [`StateLog`] must have, as checks to run against a store.
//!
//! Each check proves one behaviour and panics with a message naming it when the store
//! falls short. Checks use fresh, randomly named targets, so they may run concurrently and
//! against a shared store. Run them one per test, so a failure names the behaviour:
//!
//! ```no_run
//! use kong_switch_core::state::{FileLog, conformance};
//!
//! #[tokio::test]
//! async fn append_assigns_increasing_sequence_numbers() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let log = FileLog::open(dir.path()).unwrap();
//!     conformance::append_assigns_increasing_sequence_numbers(&log).await;
//! }
//! ```
//!
//! or all at once with [`run_all`]. Available with the cargo feature `testing`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde_json::json;
use uuid::Uuid;

use tokio_util::sync::CancellationToken;

use super::{
    Color, DeploymentStatus, Error, Event, EventKind, INTENT_FORMAT, Intent, IntentRecord,
    LeaseHolder, LeaseKeeper, LeaseRequest, LeaseState, StateLog, Step, TakeoverCause,
};
use crate::admin::{AdminRequest, Method};

/// How long the checks' leases last: long enough never to lapse during a check.
const TTL: Duration = Duration::from_secs(600);

/// A target key no other check (or run) uses.
fn fresh_target(check: &str) -> String {
    format!("conformance-{check}-{}", Uuid::new_v4().simple())
}

fn status_event(target: &str, reason: &str) -> Event {
    Event::new(target, EventKind::Status)
        .with_status(DeploymentStatus::Testing)
        .with_reason(reason)
}

async fn append_ok(log: &impl StateLog, event: Event) -> Event {
    match log.append(event).await {
        Ok(stored) => stored,
        Err(err) => panic!("append failed: {err}"),
    }
}

async fn reasons(log: &impl StateLog, target: &str) -> Vec<String> {
    let history = match log.history(target).await {
        Ok(history) => history,
        Err(err) => panic!("history of {target:?} failed: {err}"),
    };
    assert!(
        history.is_clean(),
        "history of {target:?} has corrupt records: {:?}",
        history.corrupt
    );
    history
        .events
        .into_iter()
        .map(|e| e.reason.unwrap_or_default())
        .collect()
}

/// `append` returns the stored event with sequence numbers 1, 2, 3, … per target, ignoring
/// any sequence number the caller set.
pub async fn append_assigns_increasing_sequence_numbers(log: &impl StateLog) {
    let target = fresh_target("seq");
    let mut seqs = Vec::new();
    for i in 0..3 {
        let mut event = status_event(&target, &format!("event {i}"));
        event.seq = 99;
        seqs.push(append_ok(log, event).await.seq);
    }
    assert_eq!(seqs, [1, 2, 3], "sequence numbers of three appends");
}

/// `history` returns a target's events oldest first, and only that target's.
pub async fn history_is_per_target_and_oldest_first(log: &impl StateLog) {
    let a = fresh_target("history-a");
    let b = fresh_target("history-b");
    append_ok(log, status_event(&a, "a1")).await;
    append_ok(log, status_event(&b, "b1")).await;
    append_ok(log, status_event(&a, "a2")).await;
    append_ok(log, status_event(&b, "b2")).await;
    append_ok(log, status_event(&a, "a3")).await;
    assert_eq!(reasons(log, &a).await, ["a1", "a2", "a3"], "history of a");
    assert_eq!(reasons(log, &b).await, ["b1", "b2"], "history of b");
    let seqs: Vec<u64> = match log.history(&b).await {
        Ok(history) => history.events.iter().map(|e| e.seq).collect(),
        Err(err) => panic!("history failed: {err}"),
    };
    assert_eq!(seqs, [1, 2], "each target numbers its own events");
}

/// An unknown target has an empty, clean history and no last event.
pub async fn unknown_target_has_no_events(log: &impl StateLog) {
    let target = fresh_target("unknown");
    let history = match log.history(&target).await {
        Ok(history) => history,
        Err(err) => panic!("history of an unknown target failed: {err}"),
    };
    assert!(
        history.events.is_empty() && history.is_clean(),
        "{history:?}"
    );
    match log.last(&target).await {
        Ok(None) => {}
        other => panic!("last of an unknown target: expected Ok(None), got {other:?}"),
    }
}

/// `last` returns the newest event of the target.
pub async fn last_returns_the_newest_event(log: &impl StateLog) {
    let target = fresh_target("last");
    append_ok(log, status_event(&target, "first")).await;
    let newest = append_ok(log, status_event(&target, "second")).await;
    match log.last(&target).await {
        Ok(Some(last)) => assert_eq!(last, newest, "last event"),
        other => panic!("last: expected the newest event, got {other:?}"),
    }
}

/// `last_of` returns the newest event of one of the given kinds, skipping newer events of
/// other kinds, and `None` when there is none.
pub async fn last_of_returns_the_newest_event_of_the_kinds(log: &impl StateLog) {
    let target = fresh_target("last-of");
    append_ok(
        log,
        Event::new(&target, EventKind::Completed).with_reason("older"),
    )
    .await;
    let wanted = append_ok(
        log,
        Event::new(&target, EventKind::Completed).with_reason("newest completed"),
    )
    .await;
    append_ok(log, status_event(&target, "after it")).await;
    match log
        .last_of(&target, &[EventKind::Intent, EventKind::Completed])
        .await
    {
        Ok(Some(found)) => assert_eq!(found, wanted, "newest of the kinds"),
        other => panic!("last_of: expected the newest completed event, got {other:?}"),
    }
    match log.last_of(&target, &[EventKind::RolledBack]).await {
        Ok(None) => {}
        other => panic!("last_of a kind never logged: expected Ok(None), got {other:?}"),
    }
}

/// Every field of an event, including an intent's writes and undo and a step's weights,
/// reads back as written (with the store's sequence number).
pub async fn event_fields_round_trip(log: &impl StateLog) {
    let target = fresh_target("fields");
    // Whole seconds, so stores that keep coarser timestamps than nanoseconds still pass.
    let timestamp =
        DateTime::<Utc>::from_timestamp(1_795_000_000, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let intent = Intent {
        format: INTENT_FORMAT,
        strategy: "weights".into(),
        from: "blue".into(),
        to: "green".into(),
        writes: vec![
            AdminRequest::new(Method::Put, "/upstreams/orders/targets/10.0.0.2:80")
                .with_body(json!({"weight": 100})),
            AdminRequest::new(Method::Put, "/upstreams/orders/targets/10.0.0.1:80")
                .with_query("x", "y z")
                .with_body(json!({"weight": 0})),
        ],
        undo: vec![
            AdminRequest::new(Method::Put, "/upstreams/orders/targets/10.0.0.1:80")
                .with_body(json!({"weight": 100})),
        ],
        prior: json!({"targets": [{"target": "10.0.0.1:80", "weight": 100}]}),
        part: None,
    };
    let full = Event::intent(&target, intent)
        .with_timestamp(timestamp)
        .with_run_id(Uuid::new_v4())
        .with_status(DeploymentStatus::RolledBack)
        .with_environment("production")
        .with_color(Color::Other("canary".into()))
        .with_deployment("orders-green")
        .with_version("1.4.2")
        .with_service("orders")
        .with_upstream("orders")
        .with_build_id("build-981")
        .with_actor("alice@host (pid 4242)")
        .with_reason("ünïcode and \"quotes\"\nand a newline")
        .with_step(Step {
            index: 2,
            of: Some(4),
            weights: BTreeMap::from([("10.0.0.1:80".into(), 50), ("10.0.0.2:80".into(), 50)]),
        });
    let bare = Event::new(&target, EventKind::Completed).with_timestamp(timestamp);

    for written in [full, bare] {
        let stored = append_ok(log, written.clone()).await;
        let mut expected = written;
        expected.seq = stored.seq;
        assert_eq!(stored, expected, "append returns the event as written");
        match log.last(&target).await {
            Ok(Some(read)) => assert_eq!(read, expected, "the event reads back as written"),
            other => panic!("last: expected the event, got {other:?}"),
        }
    }
}

/// An intent in a shape this version cannot decode (another kong-switch, an edited log)
/// reads back as [`IntentRecord::Unreadable`], kept verbatim, and `last_of` still finds it:
/// a store never skips it or turns it into a default.
pub async fn an_unreadable_intent_reads_back_unreadable_and_verbatim(log: &impl StateLog) {
    let target = fresh_target("unreadable");
    append_ok(log, Event::new(&target, EventKind::Completed)).await;
    let raw = json!({
        "strategy": "upstream",
        "from": "blue",
        "to": "green",
        "writes": [{"verb": "PATCH", "url": "/services/orders"}],
        "undo": [],
        "prior": {"plan": {"shape": "of another version"}}
    });
    let mut event = Event::new(&target, EventKind::Intent).with_run_id(Uuid::new_v4());
    event.intent = Some(IntentRecord::from_value(raw.clone()));
    append_ok(log, event).await;
    let read = match log
        .last_of(&target, &[EventKind::Intent, EventKind::Completed])
        .await
    {
        Ok(Some(read)) => read,
        other => panic!("last_of: expected the intent, got {other:?}"),
    };
    assert_eq!(
        read.kind,
        EventKind::Intent,
        "the newest run event is the intent"
    );
    match read.intent {
        Some(IntentRecord::Unreadable(unreadable)) => {
            assert_eq!(unreadable.raw, raw, "kept verbatim");
            assert!(
                unreadable.reason.contains("writes[0]"),
                "{}",
                unreadable.reason
            );
        }
        other => panic!("expected an unreadable intent, got {other:?}"),
    }
}

/// `targets` lists the targets that have events.
pub async fn targets_lists_targets_with_events(log: &impl StateLog) {
    let a = fresh_target("targets-a");
    let b = format!("tag:app={}", fresh_target("targets-b"));
    append_ok(log, status_event(&a, "a")).await;
    append_ok(log, status_event(&b, "b")).await;
    let targets = match log.targets().await {
        Ok(targets) => targets,
        Err(err) => panic!("targets failed: {err}"),
    };
    assert!(targets.contains(&a), "{a:?} missing from {targets:?}");
    assert!(targets.contains(&b), "{b:?} missing from {targets:?}");
}

/// A granted lease records the target, the holder, and an expiry `ttl` after acquisition.
pub async fn acquire_grants_a_lease_for_the_ttl(log: &impl StateLog) {
    let target = fresh_target("grant");
    let before = Utc::now();
    let guard = match log.acquire(LeaseRequest::new(&target, "alice", TTL)).await {
        Ok(guard) => guard,
        Err(err) => panic!("acquire of a free target failed: {err}"),
    };
    let lease = guard.lease().clone();
    assert_eq!(lease.target, target);
    assert_eq!(lease.holder.to_string(), "alice");
    let ttl = chrono::TimeDelta::from_std(TTL).unwrap_or(chrono::TimeDelta::MAX);
    assert!(
        lease.acquired_at >= before - chrono::TimeDelta::seconds(5),
        "{lease:?}"
    );
    assert!(
        lease.expires_at >= before + ttl - chrono::TimeDelta::seconds(5),
        "expiry is ttl after acquisition: {lease:?}"
    );
    release_ok(log, guard).await;
}

async fn release_ok(log: &impl StateLog, guard: super::LeaseGuard) {
    if let Err(err) = log.release(guard).await {
        panic!("release failed: {err}");
    }
}

/// While one holder has the lease, another acquire fails with [`Error::LeaseHeld`] naming
/// the holder and the target, even when the same holder asks again.
pub async fn second_acquire_fails_naming_the_holder(log: &impl StateLog) {
    let target = fresh_target("held");
    let guard = match log
        .acquire(LeaseRequest::new(&target, "alice@host (pid 1)", TTL))
        .await
    {
        Ok(guard) => guard,
        Err(err) => panic!("first acquire failed: {err}"),
    };
    for holder in ["bob@host (pid 2)", "alice@host (pid 1)"] {
        match log.acquire(LeaseRequest::new(&target, holder, TTL)).await {
            Err(Error::LeaseHeld {
                target: held,
                holder,
                expires_at,
                ..
            }) => {
                assert_eq!(held, target, "LeaseHeld names the target");
                assert_eq!(holder, "alice@host (pid 1)", "LeaseHeld names the holder");
                let expected = guard.lease().expires_at;
                let close = expires_at
                    .is_some_and(|at| (at - expected).abs() < chrono::TimeDelta::seconds(1));
                assert!(
                    close,
                    "LeaseHeld gives the expiry {expected}, got {expires_at:?}"
                );
            }
            other => panic!("second acquire: expected LeaseHeld, got {other:?}"),
        }
    }
    release_ok(log, guard).await;
}

/// After `release`, another holder can take the lease.
pub async fn release_lets_another_acquire(log: &impl StateLog) {
    let target = fresh_target("release");
    let first = match log.acquire(LeaseRequest::new(&target, "alice", TTL)).await {
        Ok(guard) => guard,
        Err(err) => panic!("first acquire failed: {err}"),
    };
    release_ok(log, first).await;
    match log.acquire(LeaseRequest::new(&target, "bob", TTL)).await {
        Ok(second) => {
            assert_eq!(second.lease().holder.to_string(), "bob");
            release_ok(log, second).await;
        }
        Err(err) => panic!("acquire after release failed: {err}"),
    }
}

/// A lease on one target does not block another target.
pub async fn leases_are_per_target(log: &impl StateLog) {
    let a = fresh_target("per-target-a");
    let b = fresh_target("per-target-b");
    let guard_a = match log.acquire(LeaseRequest::new(&a, "alice", TTL)).await {
        Ok(guard) => guard,
        Err(err) => panic!("acquire of a failed: {err}"),
    };
    match log.acquire(LeaseRequest::new(&b, "bob", TTL)).await {
        Ok(guard_b) => release_ok(log, guard_b).await,
        Err(err) => panic!("acquire of b while a is held failed: {err}"),
    }
    release_ok(log, guard_a).await;
}

/// Of N concurrent acquires of one target, exactly one wins; the others get
/// [`Error::LeaseHeld`] naming the winner.
pub async fn concurrent_acquires_have_exactly_one_winner(log: &impl StateLog) {
    const CONTENDERS: usize = 8;
    let target = fresh_target("race");
    let results = join_all(
        (0..CONTENDERS)
            .map(|i| log.acquire(LeaseRequest::new(&target, format!("contender {i}"), TTL))),
    )
    .await;
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for result in results {
        match result {
            Ok(guard) => winners.push(guard),
            Err(Error::LeaseHeld { holder, .. }) => losers.push(holder),
            Err(err) => panic!("concurrent acquire failed with an unexpected error: {err}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one winner; losers saw {losers:?}"
    );
    let winner = winners.remove(0);
    for holder in &losers {
        assert_eq!(
            holder,
            &winner.lease().holder.to_string(),
            "losers name the winner"
        );
    }
    release_ok(log, winner).await;
}

/// Concurrent appends to one target all land, numbered 1..=N without gaps or repeats.
pub async fn concurrent_appends_get_distinct_sequence_numbers(log: &impl StateLog) {
    const APPENDS: u64 = 16;
    let target = fresh_target("append-race");
    let results =
        join_all((0..APPENDS).map(|i| log.append(status_event(&target, &format!("append {i}")))))
            .await;
    let mut seqs = Vec::new();
    for result in results {
        match result {
            Ok(stored) => seqs.push(stored.seq),
            Err(err) => panic!("concurrent append failed: {err}"),
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=APPENDS).collect::<Vec<_>>(), "sequence numbers");
    assert_eq!(
        reasons(log, &target).await.len(),
        APPENDS as usize,
        "every append is in the history"
    );
}

/// The lease holder can append to the target it holds (the engine records while locked).
pub async fn holder_can_append_while_holding_the_lease(log: &impl StateLog) {
    let target = fresh_target("append-held");
    let guard = match log.acquire(LeaseRequest::new(&target, "alice", TTL)).await {
        Ok(guard) => guard,
        Err(err) => panic!("acquire failed: {err}"),
    };
    let stored = append_ok(log, status_event(&target, "while held")).await;
    assert_eq!(stored.seq, 1);
    release_ok(log, guard).await;
}

/// How often the lease checks' holders renew, and how long their leases last without.
const RENEW_EVERY: Duration = Duration::from_millis(300);
const EXPIRY: Duration = Duration::from_millis(1500);

/// A request by `actor` for the run `run`, renewed every [`RENEW_EVERY`], lasting
/// `expiry` after each renewal.
fn renewed_request(target: &str, actor: &str, run: Uuid, expiry: Duration) -> LeaseRequest {
    let holder = LeaseHolder::new(actor)
        .with_host("conformance-host")
        .with_pid(std::process::id())
        .with_run_id(run);
    LeaseRequest::new(target, holder, TTL).renewed(RENEW_EVERY, expiry)
}

async fn lease_state(log: &impl StateLog, target: &str) -> LeaseState {
    match log.lease(target).await {
        Ok(state) => state,
        Err(err) => panic!("lease of {target:?} failed: {err}"),
    }
}

/// `renew` moves the expiry `expiry` past now and keeps the token; `lease` shows the
/// holder (actor, host, pid, run) and its last renewal.
pub async fn renew_extends_the_lease_and_lease_shows_the_holder(log: &impl StateLog) {
    let target = fresh_target("renew");
    let run = Uuid::new_v4();
    let mut guard = match log
        .acquire(renewed_request(&target, "alice", run, EXPIRY))
        .await
    {
        Ok(guard) => guard,
        Err(err) => panic!("acquire failed: {err}"),
    };
    let granted = guard.lease().clone();
    assert_eq!(
        granted.expires_at - granted.acquired_at,
        chrono::TimeDelta::from_std(EXPIRY).unwrap_or(chrono::TimeDelta::MAX),
        "a renewed lease is granted for its expiry, not its ttl"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    if let Err(err) = log.renew(&mut guard, Duration::from_secs(5)).await {
        panic!("renew failed: {err}");
    }
    let renewed = guard.lease().clone();
    assert_eq!(renewed.token, granted.token, "renewal keeps the token");
    assert!(renewed.renewed_at > granted.renewed_at, "{renewed:?}");
    assert!(
        renewed.expires_at
            >= renewed.renewed_at + chrono::TimeDelta::seconds(5)
                - chrono::TimeDelta::milliseconds(1),
        "renewal expires `expiry` after it: {renewed:?}"
    );
    match lease_state(log, &target).await {
        LeaseState::Held { lease } => {
            assert_eq!(lease.holder, renewed.holder, "the holder as recorded");
            assert_eq!(lease.holder.run_id, Some(run));
            assert_eq!(lease.holder.host.as_deref(), Some("conformance-host"));
            assert_eq!(lease.token, renewed.token);
            let skew = (lease.renewed_at - renewed.renewed_at).abs();
            assert!(
                skew < chrono::TimeDelta::milliseconds(1),
                "the last renewal: {lease:?}"
            );
            assert_eq!(lease.renew_every, RENEW_EVERY);
        }
        other => panic!("lease of a held target: expected Held, got {other:?}"),
    }
    release_ok(log, guard).await;
    assert_eq!(
        lease_state(log, &target).await,
        LeaseState::Free,
        "released"
    );
}

/// A holder that stops without releasing (a killed process: the guard is dropped) leaves
/// a lease that `lease` shows as abandoned, naming its run, once it expired (or at once,
/// when the store knows the holder is gone); the next holder takes it over through a
/// [`LeaseKeeper`], which records who took it over from whom.
pub async fn an_abandoned_lease_is_taken_over_and_the_takeover_recorded(log: &impl StateLog) {
    let target = fresh_target("takeover");
    let crashed_run = Uuid::new_v4();
    let crashed = match log
        .acquire(renewed_request(&target, "crashed", crashed_run, EXPIRY))
        .await
    {
        Ok(guard) => guard,
        Err(err) => panic!("first acquire failed: {err}"),
    };
    let before = crashed.lease().clone();
    drop(crashed);
    tokio::time::sleep(EXPIRY + Duration::from_millis(200)).await;
    match lease_state(log, &target).await {
        LeaseState::Abandoned { lease } => {
            assert_eq!(lease.holder.run_id, Some(crashed_run), "names the run");
            assert_eq!(lease.token, before.token);
        }
        other => panic!("an expired, unreleased lease: expected Abandoned, got {other:?}"),
    }

    let run = Uuid::new_v4();
    let keeper = match LeaseKeeper::acquire(
        log,
        renewed_request(&target, "rescuer", run, EXPIRY),
        false,
        &CancellationToken::new(),
    )
    .await
    {
        Ok(keeper) => keeper,
        Err(err) => panic!("an abandoned lease must be taken over: {err}"),
    };
    let history = match log.history(&target).await {
        Ok(history) => history,
        Err(err) => panic!("history failed: {err}"),
    };
    let recorded: Vec<&Event> = history
        .events
        .iter()
        .filter(|e| e.kind == EventKind::LeaseTakenOver)
        .collect();
    assert_eq!(
        recorded.len(),
        1,
        "one takeover recorded: {:?}",
        history.events
    );
    let event = recorded[0];
    assert_eq!(
        event.run_id,
        Some(run),
        "the takeover belongs to the new run"
    );
    assert_eq!(event.actor.as_deref(), Some("rescuer"));
    let Some(takeover) = &event.takeover else {
        panic!("the takeover event carries the takeover: {event:?}");
    };
    assert!(
        matches!(
            takeover.cause,
            TakeoverCause::Expired | TakeoverCause::HolderGone
        ),
        "{takeover:?}"
    );
    let previous = takeover.previous.as_ref().map(|p| p.holder.run_id);
    assert_eq!(previous, Some(Some(crashed_run)), "from whom: {takeover:?}");
    assert_eq!(takeover.by.run_id, Some(run), "by whom: {takeover:?}");
    if let Err(err) = keeper.release().await {
        panic!("release failed: {err}");
    }
}

/// A lease kept by its running holder, for longer than its expiry (a long bake), is never
/// taken over: every contender gets [`Error::LeaseHeld`] naming the holder and its last
/// renewal, and `lease` shows it held.
pub async fn a_renewed_lease_outlives_its_expiry_and_is_never_taken_over(log: &impl StateLog) {
    let target = fresh_target("kept");
    let run = Uuid::new_v4();
    let mut keeper = match LeaseKeeper::acquire(
        log,
        renewed_request(&target, "baker", run, EXPIRY),
        false,
        &CancellationToken::new(),
    )
    .await
    {
        Ok(keeper) => keeper,
        Err(err) => panic!("acquire failed: {err}"),
    };
    let stop = keeper.stop_token();
    let contend = async {
        let mut refusals = 0;
        // Three expiries of contention while the holder "bakes".
        for _ in 0..6 {
            tokio::time::sleep(EXPIRY / 2).await;
            match log
                .acquire(renewed_request(&target, "intruder", Uuid::new_v4(), EXPIRY))
                .await
            {
                Err(Error::LeaseHeld {
                    holder, renewed_at, ..
                }) => {
                    assert!(holder.starts_with("baker"), "names the holder: {holder}");
                    assert!(renewed_at.is_some(), "says when it last renewed");
                    refusals += 1;
                }
                other => panic!("a live lease was not refused: {other:?}"),
            }
            assert!(
                matches!(lease_state(log, &target).await, LeaseState::Held { .. }),
                "status shows it held"
            );
        }
        refusals
    };
    let refusals = keeper.hold(contend).await;
    assert_eq!(refusals, 6);
    assert!(!stop.is_cancelled(), "the holder kept its lease");
    assert!(keeper.lost().is_none(), "{:?}", keeper.lost());
    if let Err(err) = keeper.release().await {
        panic!("release failed: {err}");
    }
}

/// `--break-lease` is refused while the holder's renewals arrive, even though a live
/// holder's lease would otherwise be broken only by an explicit request.
pub async fn break_lease_is_refused_while_renewals_arrive(log: &impl StateLog) {
    let target = fresh_target("break-refused");
    let mut keeper = match LeaseKeeper::acquire(
        log,
        renewed_request(&target, "alive", Uuid::new_v4(), Duration::from_secs(60)),
        false,
        &CancellationToken::new(),
    )
    .await
    {
        Ok(keeper) => keeper,
        Err(err) => panic!("acquire failed: {err}"),
    };
    let breaker = CancellationToken::new();
    let attempt = LeaseKeeper::acquire(
        log,
        renewed_request(&target, "breaker", Uuid::new_v4(), EXPIRY),
        true,
        &breaker,
    );
    match keeper.hold(attempt).await {
        Err(err @ (Error::LeaseRenewing { .. } | Error::LeaseHeld { .. })) => {
            assert!(err.is_lease_held(), "{err}");
            assert!(
                err.lease_holder().is_some_and(|h| h.starts_with("alive")),
                "names the holder: {err}"
            );
        }
        Ok(_) => panic!("a lease with renewals arriving was broken"),
        Err(err) => panic!("break: expected a refusal, got {err}"),
    }
    if let Err(err) = keeper.release().await {
        panic!("release failed: {err}");
    }
}

/// `--break-lease` takes over a lease that has not expired (its holder's clock may run
/// ahead) when it was not renewed while watched, and the takeover is recorded.
pub async fn break_lease_takes_over_an_unrenewed_lease_and_records_it(log: &impl StateLog) {
    let target = fresh_target("break");
    let gone_run = Uuid::new_v4();
    let gone = match log
        .acquire(renewed_request(&target, "gone", gone_run, TTL))
        .await
    {
        Ok(guard) => guard,
        Err(err) => panic!("acquire failed: {err}"),
    };
    drop(gone);
    let run = Uuid::new_v4();
    let keeper = match LeaseKeeper::acquire(
        log,
        renewed_request(&target, "breaker", run, EXPIRY),
        true,
        &CancellationToken::new(),
    )
    .await
    {
        Ok(keeper) => keeper,
        Err(err) => panic!("break of an unrenewed lease failed: {err}"),
    };
    let takeover = match log.last_of(&target, &[EventKind::LeaseTakenOver]).await {
        Ok(Some(event)) => event.takeover,
        other => panic!("the break is recorded: {other:?}"),
    };
    let Some(takeover) = takeover else {
        panic!("the takeover event carries the takeover");
    };
    assert!(
        matches!(
            takeover.cause,
            TakeoverCause::Broken | TakeoverCause::HolderGone
        ),
        "{takeover:?}"
    );
    assert_eq!(
        takeover.previous.and_then(|p| p.holder.run_id),
        Some(gone_run)
    );
    assert_eq!(takeover.by.run_id, Some(run));
    if let Err(err) = keeper.release().await {
        panic!("release failed: {err}");
    }
}

/// Events appended through one handle are read back by a store opened afresh by `open`
/// (for a file store: the same directory; for a remote store: a new client).
pub async fn appends_survive_reopening<L, F, Fut>(open: F)
where
    L: StateLog,
    F: Fn() -> Fut,
    Fut: Future<Output = L>,
{
    let target = fresh_target("durable");
    {
        let log = open().await;
        append_ok(&log, status_event(&target, "one")).await;
        append_ok(&log, status_event(&target, "two")).await;
    }
    let log = open().await;
    assert_eq!(
        reasons(&log, &target).await,
        ["one", "two"],
        "history after reopening"
    );
    let stored = append_ok(&log, status_event(&target, "three")).await;
    assert_eq!(stored.seq, 3, "numbering continues after reopening");
}

/// Runs every check against stores made by `open`.
pub async fn run_all<L, F, Fut>(open: F)
where
    L: StateLog,
    F: Fn() -> Fut,
    Fut: Future<Output = L>,
{
    let log = open().await;
    append_assigns_increasing_sequence_numbers(&log).await;
    history_is_per_target_and_oldest_first(&log).await;
    unknown_target_has_no_events(&log).await;
    last_returns_the_newest_event(&log).await;
    last_of_returns_the_newest_event_of_the_kinds(&log).await;
    event_fields_round_trip(&log).await;
    an_unreadable_intent_reads_back_unreadable_and_verbatim(&log).await;
    targets_lists_targets_with_events(&log).await;
    acquire_grants_a_lease_for_the_ttl(&log).await;
    second_acquire_fails_naming_the_holder(&log).await;
    release_lets_another_acquire(&log).await;
    leases_are_per_target(&log).await;
    concurrent_acquires_have_exactly_one_winner(&log).await;
    concurrent_appends_get_distinct_sequence_numbers(&log).await;
    holder_can_append_while_holding_the_lease(&log).await;
    renew_extends_the_lease_and_lease_shows_the_holder(&log).await;
    an_abandoned_lease_is_taken_over_and_the_takeover_recorded(&log).await;
    a_renewed_lease_outlives_its_expiry_and_is_never_taken_over(&log).await;
    break_lease_is_refused_while_renewals_arrive(&log).await;
    break_lease_takes_over_an_unrenewed_lease_and_records_it(&log).await;
    appends_survive_reopening(open).await;
}
