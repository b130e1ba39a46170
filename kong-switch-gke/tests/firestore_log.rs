//! `FirestoreLog` on the real Firestore emulator: the shared state-log behaviour suite (the
//! same checks `FileLog` passes in core), then the Firestore-specific behaviours.
//!
//! One emulator serves the whole file: it is started once, every check runs against it and
//! is reported by name, and the emulator is stopped by its process id at the end.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use kong_switch_core::state::{
    Color, DeploymentStatus, Error as StateError, Event, EventKind, LeaseRequest, LeaseState,
    StateLog, conformance,
};
use kong_switch_gke::{FirestoreEndpoint, FirestoreLog, FirestoreUrl};
use support::emulator::Emulator;
use uuid::Uuid;

type Check = Pin<Box<dyn Future<Output = ()> + Send>>;

async fn connect(host: &str, collection: &str) -> FirestoreLog {
    let url: FirestoreUrl = format!("firestore://kong-switch-test/{collection}")
        .parse()
        .expect("valid URL");
    FirestoreLog::connect_to(
        url,
        FirestoreEndpoint::Emulator {
            host: host.to_owned(),
        },
    )
    .await
    .expect("connect to the emulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn firestore_log_passes_the_state_log_suite_and_firestore_checks_on_the_emulator() {
    let emulator = Emulator::start();
    let host = emulator.host().to_owned();
    let collection = format!("suite-{}", Uuid::new_v4().simple());
    let log = connect(&host, &collection).await;

    let mut checks: Vec<(&str, Check)> = Vec::new();
    macro_rules! check {
        ($name:ident) => {{
            let log = log.clone();
            checks.push((
                stringify!($name),
                Box::pin(async move { conformance::$name(&log).await }),
            ));
        }};
    }
    // The shared behaviour suite (kong_switch_core::state::conformance).
    check!(append_assigns_increasing_sequence_numbers);
    check!(history_is_per_target_and_oldest_first);
    check!(unknown_target_has_no_events);
    check!(last_returns_the_newest_event);
    check!(last_of_returns_the_newest_event_of_the_kinds);
    check!(event_fields_round_trip);
    check!(an_unreadable_intent_reads_back_unreadable_and_verbatim);
    check!(targets_lists_targets_with_events);
    check!(acquire_grants_a_lease_for_the_ttl);
    check!(second_acquire_fails_naming_the_holder);
    check!(release_lets_another_acquire);
    check!(leases_are_per_target);
    check!(concurrent_acquires_have_exactly_one_winner);
    check!(concurrent_appends_get_distinct_sequence_numbers);
    check!(holder_can_append_while_holding_the_lease);
    check!(renew_extends_the_lease_and_lease_shows_the_holder);
    check!(an_abandoned_lease_is_taken_over_and_the_takeover_recorded);
    check!(a_renewed_lease_outlives_its_expiry_and_is_never_taken_over);
    check!(break_lease_is_refused_while_renewals_arrive);
    check!(break_lease_takes_over_an_unrenewed_lease_and_records_it);
    {
        let host = host.clone();
        let collection = collection.clone();
        checks.push((
            "appends_survive_reopening",
            Box::pin(async move {
                conformance::appends_survive_reopening(|| connect(&host, &collection)).await;
            }),
        ));
    }
    // Firestore-specific behaviours.
    {
        let log = log.clone();
        checks.push((
            "expired_lease_is_taken_over",
            Box::pin(async move { expired_lease_is_taken_over(&log).await }),
        ));
    }
    {
        let log = log.clone();
        checks.push((
            "stale_release_does_not_free_the_new_holder",
            Box::pin(async move { stale_release_does_not_free_the_new_holder(&log).await }),
        ));
    }
    {
        let log = log.clone();
        checks.push((
            "a_holder_whose_lease_was_taken_over_cannot_renew_it",
            Box::pin(
                async move { a_holder_whose_lease_was_taken_over_cannot_renew_it(&log).await },
            ),
        ));
    }
    {
        let log = log.clone();
        let host = host.clone();
        let collection = collection.clone();
        checks.push((
            "an_unreadable_lease_record_is_held_by_an_unknown_holder_until_broken",
            Box::pin(async move {
                an_unreadable_lease_record_is_held_by_an_unknown_holder_until_broken(
                    &log,
                    &host,
                    &collection,
                )
                .await;
            }),
        ));
    }
    {
        let log = log.clone();
        checks.push((
            "target_document_tracks_the_current_state",
            Box::pin(async move { target_document_tracks_the_current_state(&log).await }),
        ));
    }
    {
        let log = log.clone();
        checks.push((
            "concurrent_acquires_across_clients_have_one_winner",
            Box::pin(async move {
                concurrent_acquires_across_clients_have_one_winner(&log, &host, &collection).await;
            }),
        ));
    }

    let mut failed = Vec::new();
    for (name, check) in checks {
        match tokio::spawn(check).await {
            Ok(()) => eprintln!("ok   {name}"),
            Err(err) => {
                eprintln!("FAIL {name}: {err}");
                failed.push(name);
            }
        }
    }
    drop(emulator);
    assert!(failed.is_empty(), "failed on the emulator: {failed:?}");
}

fn fresh(name: &str) -> String {
    format!("{name}-{}", Uuid::new_v4().simple())
}

/// A lease past its expiry may be taken over by another holder.
async fn expired_lease_is_taken_over(log: &FirestoreLog) {
    let target = fresh("expired");
    let stale = log
        .acquire(LeaseRequest::new(
            &target,
            "crashed@host (pid 1)",
            Duration::from_millis(200),
        ))
        .await
        .expect("first acquire");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fresh = log
        .acquire(LeaseRequest::new(
            &target,
            "bob@host (pid 2)",
            Duration::from_secs(600),
        ))
        .await
        .expect("an expired lease is taken over");
    assert_eq!(fresh.lease().holder.to_string(), "bob@host (pid 2)");
    assert_ne!(fresh.lease().token, stale.lease().token);
    log.release(fresh).await.expect("release");
}

/// Releasing a lease that expired and was taken over leaves the new holder's lease alone.
async fn stale_release_does_not_free_the_new_holder(log: &FirestoreLog) {
    let target = fresh("stale-release");
    let stale = log
        .acquire(LeaseRequest::new(
            &target,
            "slow@host",
            Duration::from_millis(200),
        ))
        .await
        .expect("first acquire");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let current = log
        .acquire(LeaseRequest::new(
            &target,
            "new@host",
            Duration::from_secs(600),
        ))
        .await
        .expect("takeover");
    log.release(stale)
        .await
        .expect("a stale release is not an error");
    match log
        .acquire(LeaseRequest::new(
            &target,
            "third@host",
            Duration::from_secs(600),
        ))
        .await
    {
        Err(StateError::LeaseHeld { holder, .. }) => assert_eq!(holder, "new@host"),
        other => panic!("expected the new holder to keep the lease, got {other:?}"),
    }
    log.release(current).await.expect("release");
}

/// A holder whose lease expired and was taken over learns it at its next renewal, and an
/// append by the new holder leaves the lease alone.
async fn a_holder_whose_lease_was_taken_over_cannot_renew_it(log: &FirestoreLog) {
    let target = fresh("lost");
    let mut stale = log
        .acquire(
            LeaseRequest::new(&target, "stalled@host", Duration::from_secs(600))
                .renewed(Duration::from_millis(100), Duration::from_millis(300)),
        )
        .await
        .expect("first acquire");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let current = log
        .acquire(LeaseRequest::new(
            &target,
            "new@host",
            Duration::from_secs(600),
        ))
        .await
        .expect("takeover of the expired lease");
    assert_eq!(
        current.takeover().map(|t| t.cause),
        Some(kong_switch_core::state::TakeoverCause::Expired)
    );
    log.append(Event::new(&target, EventKind::Status))
        .await
        .expect("append");
    match log.renew(&mut stale, Duration::from_secs(1)).await {
        Err(StateError::LeaseLost { reason, .. }) => {
            assert!(
                reason.contains("new@host"),
                "names the new holder: {reason}"
            );
        }
        other => panic!("renewing a lease taken over: expected LeaseLost, got {other:?}"),
    }
    match log.lease(&target).await.expect("lease") {
        LeaseState::Held { lease } => assert_eq!(lease.token, current.lease().token),
        other => panic!("the append left the lease alone: {other:?}"),
    }
    log.release(current).await.expect("release");
}

/// Writes `lease` (a Firestore REST value) into the target document, as another version
/// of kong-switch (or a broken write) would.
async fn write_raw_lease(host: &str, collection: &str, target: &str, lease: serde_json::Value) {
    let url = format!(
        "http://{host}/v1/projects/kong-switch-test/databases/(default)/documents/{collection}/{target}?updateMask.fieldPaths=lease&updateMask.fieldPaths=target"
    );
    let body = serde_json::json!({
        "fields": {"lease": lease, "target": {"stringValue": target}}
    });
    let response = reqwest::Client::new()
        .patch(url)
        .bearer_auth("owner")
        .json(&body)
        .send()
        .await
        .expect("reach the emulator");
    assert!(
        response.status().is_success(),
        "raw write: {}",
        response.text().await.unwrap_or_default()
    );
}

/// A lease record this version cannot read (a newer version, a broken shape) is held by
/// an unknown holder: never free, shown as unreadable, and taken over only by a break that
/// saw it unchanged, which is recorded.
async fn an_unreadable_lease_record_is_held_by_an_unknown_holder_until_broken(
    log: &FirestoreLog,
    host: &str,
    collection: &str,
) {
    use kong_switch_core::state::{LeaseKeeper, TakeoverCause};
    use serde_json::json;

    for (case, raw) in [
        (
            "newer",
            json!({"mapValue": {"fields": {"version": {"integerValue": "2"}}}}),
        ),
        ("not-a-map", json!({"stringValue": "alice"})),
    ] {
        let target = fresh(case);
        write_raw_lease(host, collection, &target, raw).await;
        let err = log
            .acquire(LeaseRequest::new(&target, "bob", Duration::from_secs(600)))
            .await
            .expect_err("an unreadable lease is never free");
        assert!(err.is_lease_held(), "{case}: {err}");
        assert!(
            err.lease_holder()
                .is_some_and(|h| h.starts_with("an unknown holder")),
            "{case}: {err}"
        );
        assert!(
            matches!(
                log.lease(&target).await.expect("lease"),
                LeaseState::Unreadable { .. }
            ),
            "{case}: status shows it unreadable"
        );
        let request = LeaseRequest::new(&target, "breaker", Duration::from_secs(600))
            .renewed(Duration::from_millis(200), Duration::from_secs(1));
        let keeper = LeaseKeeper::acquire(
            log,
            request,
            true,
            &tokio_util::sync::CancellationToken::new(),
        )
        .await
        .expect("a break of an unchanged unreadable record");
        let recorded = log
            .last_of(&target, &[EventKind::LeaseTakenOver])
            .await
            .expect("read")
            .and_then(|e| e.takeover)
            .expect("the break is recorded");
        assert_eq!(recorded.cause, TakeoverCause::Broken, "{case}");
        assert!(recorded.previous.is_none(), "{case}");
        keeper.release().await.expect("release");
    }
}

/// The target document carries the active side and each side's status.
async fn target_document_tracks_the_current_state(log: &FirestoreLog) {
    let target = fresh("current");
    for event in [
        Event::new(&target, EventKind::Status)
            .with_color(Color::Green)
            .with_status(DeploymentStatus::Deploying)
            .with_deployment("orders-green")
            .with_version("2.0.0"),
        Event::new(&target, EventKind::Status)
            .with_color(Color::Green)
            .with_status(DeploymentStatus::Testing),
        Event::new(&target, EventKind::Completed)
            .with_sides("blue", "green")
            .with_status(DeploymentStatus::Active),
        Event::new(&target, EventKind::Status)
            .with_color(Color::Blue)
            .with_status(DeploymentStatus::Idle),
    ] {
        log.append(event).await.expect("append");
    }
    let state = log
        .current(&target)
        .await
        .expect("read")
        .expect("the target has a document");
    assert_eq!(state.last_seq, 4);
    assert_eq!(state.active_color.as_deref(), Some("green"));
    assert_eq!(state.sides["green"].status, Some(DeploymentStatus::Active));
    assert_eq!(state.sides["green"].version.as_deref(), Some("2.0.0"));
    assert_eq!(state.sides["blue"].status, Some(DeploymentStatus::Idle));
    assert_eq!(state.lease, LeaseState::Free);
}

/// Separate clients (as separate processes would be) racing for one lease: one winner.
async fn concurrent_acquires_across_clients_have_one_winner(
    log: &FirestoreLog,
    host: &str,
    collection: &str,
) {
    let target = fresh("clients");
    let mut clients = vec![log.clone()];
    for _ in 0..3 {
        clients.push(connect(host, collection).await);
    }
    let attempts = clients.iter().enumerate().map(|(i, client)| {
        client.acquire(LeaseRequest::new(
            &target,
            format!("client {i}"),
            Duration::from_secs(600),
        ))
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for result in &results {
        if let Err(err) = result {
            assert!(err.is_lease_held(), "{err}");
        }
    }
}

#[tokio::test]
async fn unreachable_firestore_fails_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let url: FirestoreUrl = "firestore://kong-switch-test/ks".parse().expect("valid");
    let err = FirestoreLog::connect_to(
        url,
        FirestoreEndpoint::Emulator {
            host: format!("127.0.0.1:{port}"),
        },
    )
    .await
    .expect_err("nothing listens there");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "firestore state store: cannot connect to firestore://kong-switch-test/ks"
        ),
        "{message}"
    );
    assert!(message.contains("unreachable"), "{message}");
}
