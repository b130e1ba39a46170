//! The store-independent behaviour checks of `state::conformance`, run against `FileLog`.
#![cfg(feature = "testing")]

use kong_switch_core::state::{FileLog, conformance};
use tempfile::TempDir;

/// A store in a fresh directory; the directory lives as long as the returned guard.
fn store() -> (TempDir, FileLog) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path().join("state")).expect("open FileLog");
    (dir, log)
}

#[tokio::test(flavor = "multi_thread")]
async fn append_assigns_increasing_sequence_numbers() {
    let (_dir, log) = store();
    conformance::append_assigns_increasing_sequence_numbers(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn history_is_per_target_and_oldest_first() {
    let (_dir, log) = store();
    conformance::history_is_per_target_and_oldest_first(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_target_has_no_events() {
    let (_dir, log) = store();
    conformance::unknown_target_has_no_events(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn last_returns_the_newest_event() {
    let (_dir, log) = store();
    conformance::last_returns_the_newest_event(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn last_of_returns_the_newest_event_of_the_kinds() {
    let (_dir, log) = store();
    conformance::last_of_returns_the_newest_event_of_the_kinds(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn event_fields_round_trip() {
    let (_dir, log) = store();
    conformance::event_fields_round_trip(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn targets_lists_targets_with_events() {
    let (_dir, log) = store();
    conformance::targets_lists_targets_with_events(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acquire_grants_a_lease_for_the_ttl() {
    let (_dir, log) = store();
    conformance::acquire_grants_a_lease_for_the_ttl(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn second_acquire_fails_naming_the_holder() {
    let (_dir, log) = store();
    conformance::second_acquire_fails_naming_the_holder(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn release_lets_another_acquire() {
    let (_dir, log) = store();
    conformance::release_lets_another_acquire(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_are_per_target() {
    let (_dir, log) = store();
    conformance::leases_are_per_target(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_acquires_have_exactly_one_winner() {
    let (_dir, log) = store();
    conformance::concurrent_acquires_have_exactly_one_winner(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appends_get_distinct_sequence_numbers() {
    let (_dir, log) = store();
    conformance::concurrent_appends_get_distinct_sequence_numbers(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn holder_can_append_while_holding_the_lease() {
    let (_dir, log) = store();
    conformance::holder_can_append_while_holding_the_lease(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn renew_extends_the_lease_and_lease_shows_the_holder() {
    let (_dir, log) = store();
    conformance::renew_extends_the_lease_and_lease_shows_the_holder(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_lease_is_taken_over_and_the_takeover_recorded() {
    let (_dir, log) = store();
    conformance::an_abandoned_lease_is_taken_over_and_the_takeover_recorded(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_lease_outlives_its_expiry_and_is_never_taken_over() {
    let (_dir, log) = store();
    conformance::a_renewed_lease_outlives_its_expiry_and_is_never_taken_over(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn break_lease_is_refused_while_renewals_arrive() {
    let (_dir, log) = store();
    conformance::break_lease_is_refused_while_renewals_arrive(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn break_lease_takes_over_an_unrenewed_lease_and_records_it() {
    let (_dir, log) = store();
    conformance::break_lease_takes_over_an_unrenewed_lease_and_records_it(&log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn appends_survive_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state");
    conformance::appends_survive_reopening(|| {
        let path = path.clone();
        async move { FileLog::open(path).expect("open FileLog") }
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn whole_suite_passes_on_a_single_threaded_runtime() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state");
    conformance::run_all(|| {
        let path = path.clone();
        async move { FileLog::open(path).expect("open FileLog") }
    })
    .await;
}
