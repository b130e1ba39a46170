//! The engine and its lease: a run renews its lease while it works, keeps it through a bake
//! longer than the lease's expiry, and stops at the next step boundary (the interrupted
//! path, logged) when it cannot renew it.

mod switch_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kong_switch_core::state::{
    Error, Event, EventKind, FileLog, History, LeaseGuard, LeasePolicy, LeaseRequest, LeaseState,
    Result, StateLog,
};
use kong_switch_core::switch::{
    Engine, OnFailure, Outcome, Schedule, Strategy, SwitchRequest, WeightsOptions,
};
use serde_json::json;
use switch_support::{FakeKong, temp_log};

/// A file store whose renewals fail once `cut_off` is set: a store the run lost.
struct CutOff {
    inner: FileLog,
    cut_off: AtomicBool,
}

impl StateLog for CutOff {
    fn append(&self, event: Event) -> impl Future<Output = Result<Event>> + Send {
        self.inner.append(event)
    }
    fn history(&self, target: &str) -> impl Future<Output = Result<History>> + Send {
        self.inner.history(target)
    }
    fn acquire(&self, request: LeaseRequest) -> impl Future<Output = Result<LeaseGuard>> + Send {
        self.inner.acquire(request)
    }
    async fn renew(&self, guard: &mut LeaseGuard, expiry: Duration) -> Result<()> {
        if self.cut_off.load(Ordering::SeqCst) {
            return Err(Error::Backend {
                store: "test",
                message: "the store is unreachable".to_owned(),
                source: None,
            });
        }
        self.inner.renew(guard, expiry).await
    }
    fn lease(&self, target: &str) -> impl Future<Output = Result<LeaseState>> + Send {
        self.inner.lease(target)
    }
    fn release(&self, guard: LeaseGuard) -> impl Future<Output = Result<()>> + Send {
        self.inner.release(guard)
    }
    fn targets(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        self.inner.targets()
    }
}

fn weights_topology(kong: &FakeKong) {
    let mut s = kong.state();
    s.services
        .push(json!({"id": "s1", "name": "orders", "host": "orders"}));
    s.upstreams.push(json!({"id": "u1", "name": "orders"}));
    s.targets.insert(
        "orders".into(),
        vec![
            json!({"id": "tb", "target": "orders-blue.svc:8080", "weight": 100}),
            json!({"id": "tg", "target": "10.0.0.9:8080", "weight": 0, "tags": ["kong-switch.color=green"]}),
        ],
    );
}

/// A 50 % → 100 % shift baking `bake` after the first step.
fn shift(bake: Duration) -> SwitchRequest {
    let mut req = SwitchRequest::new("orders");
    req.strategy = Strategy::Weights(WeightsOptions {
        schedule: Schedule::new(vec![50, 100], bake).expect("schedule"),
        on_failure: OnFailure::RestoreStart,
    });
    req
}

/// Renewed every 250 ms, lapsing 1 s after the last renewal.
fn fast_leases() -> LeasePolicy {
    LeasePolicy {
        renew_every: Duration::from_millis(250),
        expiry: Duration::from_secs(1),
        ..LeasePolicy::default()
    }
}

fn kinds(history: &History) -> Vec<EventKind> {
    history.events.iter().map(|e| e.kind).collect()
}

#[tokio::test]
async fn a_run_that_cannot_renew_its_lease_stops_at_the_next_step_boundary_and_says_so() {
    let kong = FakeKong::start("3.9.3", 0.0).await;
    weights_topology(&kong);
    let (_dir, inner) = temp_log();
    let log = CutOff {
        inner,
        cut_off: AtomicBool::new(true),
    };
    let engine = Engine::new(kong.client(), log).with_lease_policy(fast_leases());

    let started = Instant::now();
    let report = engine
        .switch(&shift(Duration::from_secs(30)))
        .await
        .expect("a report");

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped during the bake, not after it: {:?}",
        started.elapsed()
    );
    assert_eq!(report.outcome, Outcome::Interrupted, "{}", report.message);
    assert!(
        report.message.starts_with("lease lost (cannot renew"),
        "{}",
        report.message
    );
    let history = engine.log().history("orders").await.expect("history");
    assert_eq!(
        kinds(&history),
        [
            EventKind::Intent,
            EventKind::Step,
            EventKind::LeaseLost,
            EventKind::RolledBack
        ],
        "{:#?}",
        history.events
    );
    let lost = &history.events[2];
    assert_eq!(lost.run_id, report.run_id, "the loss belongs to the run");
    assert!(
        lost.reason
            .as_deref()
            .is_some_and(|r| r.contains("the store is unreachable")),
        "{lost:?}"
    );
}

#[tokio::test]
async fn a_run_keeps_its_lease_through_a_bake_longer_than_the_expiry() {
    let kong = FakeKong::start("3.9.3", 0.0).await;
    weights_topology(&kong);
    let (_dir, inner) = temp_log();
    let log = CutOff {
        inner,
        cut_off: AtomicBool::new(false),
    };
    let engine = Engine::new(kong.client(), log).with_lease_policy(fast_leases());

    // The bake lasts two and a half expiries.
    let report = engine
        .switch(&shift(Duration::from_millis(2500)))
        .await
        .expect("a report");

    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    let kinds = kinds(&engine.log().history("orders").await.expect("history"));
    assert!(kinds.contains(&EventKind::Completed), "{kinds:?}");
    assert!(
        !kinds.contains(&EventKind::LeaseLost) && !kinds.contains(&EventKind::LeaseTakenOver),
        "{kinds:?}"
    );
    assert_eq!(
        engine.log().lease("orders").await.expect("lease"),
        LeaseState::Free,
        "released at the end"
    );
}

#[tokio::test]
async fn a_lease_policy_renewing_too_rarely_is_refused_before_anything_is_read() {
    let kong = FakeKong::start("3.9.3", 0.0).await;
    weights_topology(&kong);
    let (_dir, log) = temp_log();
    let policy = LeasePolicy {
        renew_every: Duration::from_secs(20),
        expiry: Duration::from_secs(30),
        ..LeasePolicy::default()
    };
    let engine = Engine::new(kong.client(), log).with_lease_policy(policy);

    let err = engine
        .switch(&shift(Duration::ZERO))
        .await
        .expect_err("refused");

    assert!(
        matches!(err, kong_switch_core::switch::Error::InvalidRequest { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--lease-renew-every"), "{err}");
    assert!(kong.writes().await.is_empty());
}
