//! [`LeaseKeeper`]: takes a run's lease, renews it while the run works, and stops the run
//! when the lease is lost. The one place where leases are renewed.

use std::pin::pin;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use tokio_util::sync::CancellationToken;

use super::{
    BreakOf, Error, Event, EventKind, Lease, LeaseGuard, LeaseHolder, LeaseRequest, LeaseState,
    Result, StateLog,
};

/// How runs hold their leases.
///
/// ```
/// use std::time::Duration;
/// use kong_switch_core::state::LeasePolicy;
///
/// let policy = LeasePolicy::default();
/// assert_eq!(policy.renew_every, Duration::from_secs(10));
/// assert_eq!(policy.expiry, Duration::from_secs(30));
/// assert!(policy.validate().is_ok());
/// let bad = LeasePolicy { renew_every: Duration::from_secs(20), ..LeasePolicy::default() };
/// assert!(bad.validate().unwrap_err().contains("lease-renew-every"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasePolicy {
    /// How often the running holder renews its lease (default 10 s).
    pub renew_every: Duration,
    /// How long a lease lasts after its last renewal (default 30 s): how soon after a
    /// holder stops (killed, cut off) others may take the target over.
    pub expiry: Duration,
    /// The machine this runs on, recorded in the lease (core reads no environment).
    pub host: Option<String>,
    /// Take over a lease that has not expired but was not renewed while watched for longer
    /// than its renewal interval (`--break-lease`: its holder is known to be gone, but its
    /// clock may run ahead). Refused while renewals arrive.
    pub break_lease: bool,
}

impl Default for LeasePolicy {
    fn default() -> Self {
        LeasePolicy {
            renew_every: Duration::from_secs(10),
            expiry: Duration::from_secs(30),
            host: None,
            break_lease: false,
        }
    }
}

impl LeasePolicy {
    /// Checks that renewals come well inside the expiry (at least two per expiry), so one
    /// slow or failed renewal does not lose the lease. `Err` names the setting and the fix.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.renew_every.is_zero() {
            return Err("--lease-renew-every must be more than 0".to_owned());
        }
        if self.renew_every.saturating_mul(2) > self.expiry {
            return Err(format!(
                "--lease-renew-every ({}) must be at most half of --lease-expiry ({}), so a lease survives one failed renewal",
                humantime::format_duration(self.renew_every),
                humantime::format_duration(self.expiry)
            ));
        }
        Ok(())
    }

    /// The request for a lease on `target` by `actor` for the run `run_id`, lasting at most
    /// `ttl`, by this process.
    pub fn request(
        &self,
        target: &str,
        actor: &str,
        ttl: Duration,
        run_id: uuid::Uuid,
    ) -> LeaseRequest {
        let mut holder = LeaseHolder::new(actor)
            .with_pid(std::process::id())
            .with_run_id(run_id);
        if let Some(host) = &self.host {
            holder = holder.with_host(host.clone());
        }
        LeaseRequest::new(target, holder, ttl).renewed(self.renew_every, self.expiry)
    }
}

/// A run's lease, kept alive while the run works.
///
/// [`acquire`](LeaseKeeper::acquire) takes the lease (recording a takeover in the log),
/// [`hold`](LeaseKeeper::hold) runs the work while renewing the lease every
/// `renew_every`, and [`release`](LeaseKeeper::release) gives it back. When the lease cannot
/// be renewed before it would lapse (the store is unreachable, the run reached its
/// `--lease-ttl`) or was taken from the holder, the keeper logs
/// [`EventKind::LeaseLost`] and cancels [`stop_token`](LeaseKeeper::stop_token): the run
/// stops at its next step boundary and takes the interrupted path instead of going on
/// unprotected.
#[derive(Debug)]
pub struct LeaseKeeper<'a, L> {
    log: &'a L,
    guard: LeaseGuard,
    expiry: Duration,
    renew_every: Duration,
    stop: CancellationToken,
    lost: Option<String>,
}

impl<'a, L: StateLog> LeaseKeeper<'a, L> {
    /// Takes the lease `request` asks for; with `break_lease`, first watches a live or
    /// unreadable lease for longer than its renewal interval and breaks it only if it did
    /// not change ([`Error::LeaseRenewing`] if it was renewed). A takeover is recorded in the
    /// log as [`EventKind::LeaseTakenOver`] before this returns. The run's stop token is a
    /// child of `cancel`.
    pub async fn acquire(
        log: &'a L,
        request: LeaseRequest,
        break_lease: bool,
        cancel: &CancellationToken,
    ) -> Result<LeaseKeeper<'a, L>> {
        let expiry = request.expiry;
        let renew_every = request.renew_every;
        let guard = if break_lease {
            acquire_breaking(log, request).await?
        } else {
            log.acquire(request).await?
        };
        if let Err(err) = record_takeover(log, &guard).await {
            // Unrecorded, the takeover must not stand.
            if let Err(release) = log.release(guard).await {
                tracing::warn!(error = %release, "could not release a lease taken over");
            }
            return Err(err);
        }
        Ok(LeaseKeeper {
            log,
            guard,
            expiry,
            renew_every,
            stop: cancel.child_token(),
            lost: None,
        })
    }

    /// The lease as last granted or renewed.
    pub fn lease(&self) -> &Lease {
        self.guard.lease()
    }

    /// Cancelled when the lease is lost (and when the `cancel` token given to
    /// [`acquire`](LeaseKeeper::acquire) is): the run's cancellation.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Why the lease was lost, if it was.
    pub fn lost(&self) -> Option<&str> {
        self.lost.as_deref()
    }

    /// Runs `work` to its end while renewing the lease in the background. If the lease is
    /// lost, logs [`EventKind::LeaseLost`], cancels the stop token and lets `work` finish
    /// (it stops at its next step boundary).
    pub async fn hold<F: Future>(&mut self, work: F) -> F::Output {
        let mut work = pin!(work);
        let stop = self.stop.clone();
        let finished = CancellationToken::new();
        let mut renewals = pin!(self.renew_until_lost(finished.clone()));
        let mut renewing = true;
        let output = loop {
            tokio::select! {
                output = &mut work => break output,
                () = &mut renewals, if renewing => {
                    renewing = false;
                    stop.cancel();
                }
            }
        };
        if renewing {
            // Let a renewal under way finish rather than drop it mid-transaction: a store may
            // hold the lease document locked for an abandoned transaction, and the release
            // that follows would then fail and leave the lease to lapse.
            finished.cancel();
            renewals.await;
        }
        output
    }

    /// Renews every `renew_every` until the lease is lost (then logs why) or `finished` is
    /// cancelled (between renewals, never during one). The lease counts as lost as soon as
    /// it would lapse before the next renewal: renewals keep failing, or its deadline
    /// (`--lease-ttl`) is near.
    async fn renew_until_lost(&mut self, finished: CancellationToken) {
        let target = self.guard.lease().target.clone();
        let reason = loop {
            tokio::select! {
                () = finished.cancelled() => return,
                () = tokio::time::sleep(self.renew_every) => {}
            }
            let renewal = tokio::time::timeout(
                self.renew_every,
                self.log.renew(&mut self.guard, self.expiry),
            )
            .await;
            let failure = match renewal {
                Ok(Ok(())) => None,
                Ok(Err(err @ Error::LeaseLost { .. })) => break err.to_string(),
                Ok(Err(err)) => Some(err.to_string()),
                Err(_) => Some(format!(
                    "renewing took longer than {}",
                    humantime::format_duration(self.renew_every)
                )),
            };
            let lease = self.guard.lease();
            if lease.expires_at > Utc::now() + self.renew_every {
                if let Some(failure) = failure {
                    tracing::warn!(target = %target, error = %failure, "could not renew the lease; retrying");
                }
                continue;
            }
            break match failure {
                Some(failure) => format!(
                    "cannot renew the lease on {target:?} before it lapses at {} ({failure})",
                    lease.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
                None => format!(
                    "the run reached its --lease-ttl: the lease on {target:?} may not outlast {}",
                    lease.deadline.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
            };
        };
        self.lost = Some(reason);
        self.record_loss().await;
    }

    async fn record_loss(&self) {
        let lease = self.guard.lease();
        let reason = self.lost.clone().unwrap_or_default();
        let mut event = Event::new(&lease.target, EventKind::LeaseLost)
            .with_actor(lease.holder.actor.clone())
            .with_reason(format!(
                "{}; the run stops at its next step boundary (interrupted path)",
                reason
            ));
        if let Some(run) = lease.holder.run_id {
            event = event.with_run_id(run);
        }
        tracing::warn!(target = %lease.target, reason = %reason, "lease lost; stopping the run");
        if let Err(err) = self.log.append(event).await {
            tracing::warn!(error = %err, "could not record the lost lease");
        }
    }

    /// Gives the lease back.
    pub async fn release(self) -> Result<()> {
        self.log.release(self.guard).await
    }
}

/// Records in the log that `guard`'s lease was taken over from a previous holder, if it
/// was ([`EventKind::LeaseTakenOver`], carrying the [`Takeover`](super::Takeover)). Callers
/// that take leases without a [`LeaseKeeper`] call this right after acquiring.
pub async fn record_takeover<L: StateLog>(log: &L, guard: &LeaseGuard) -> Result<()> {
    let Some(takeover) = guard.takeover() else {
        return Ok(());
    };
    let holder = &guard.lease().holder;
    let mut event = Event::new(&guard.lease().target, EventKind::LeaseTakenOver)
        .with_actor(holder.actor.clone())
        .with_reason(takeover.to_string())
        .with_takeover(takeover.clone());
    if let Some(run) = holder.run_id {
        event = event.with_run_id(run);
    }
    log.append(event).await.map(drop)
}

/// `--break-lease`: watches the lease for longer than its renewal interval and takes it
/// over only if it did not change.
async fn acquire_breaking<L: StateLog>(log: &L, request: LeaseRequest) -> Result<LeaseGuard> {
    let target = request.target.clone();
    let (seen, every) = match log.lease(&target).await? {
        LeaseState::Free | LeaseState::Abandoned { .. } => return log.acquire(request).await,
        LeaseState::Held { lease } => {
            let every = lease.renew_every;
            (Some(lease), every)
        }
        LeaseState::Unreadable { .. } => (None, request.renew_every),
    };
    let watch = every.saturating_mul(3) / 2;
    tracing::info!(
        target = %target,
        watch = %humantime::format_duration(watch),
        "--break-lease: watching the lease for renewals before breaking it"
    );
    tokio::time::sleep(watch).await;
    let watched_ms = u64::try_from(watch.as_millis()).unwrap_or(u64::MAX);
    let now = log.lease(&target).await?;
    let breaking = match (seen, now) {
        (_, LeaseState::Free | LeaseState::Abandoned { .. }) => return log.acquire(request).await,
        (None, LeaseState::Unreadable { .. }) => BreakOf::Unreadable,
        (Some(before), LeaseState::Held { lease }) if lease.token == before.token => {
            if lease.renewed_at != before.renewed_at {
                return Err(Error::LeaseRenewing {
                    target,
                    holder: lease.holder.to_string(),
                    renewed_at: lease.renewed_at,
                    watched_ms,
                });
            }
            BreakOf::Lease {
                token: lease.token,
                renewed_at: lease.renewed_at,
            }
        }
        (_, LeaseState::Held { lease }) => {
            return Err(Error::LeaseHeld {
                target,
                holder: format!("{} (it took the lease while it was watched)", lease.holder),
                expires_at: Some(lease.expires_at),
                renewed_at: Some(lease.renewed_at),
            });
        }
        (_, LeaseState::Unreadable { reason }) => {
            return Err(Error::LeaseHeld {
                target,
                holder: format!("an unknown holder ({reason}; it changed while it was watched)"),
                expires_at: None,
                renewed_at: None,
            });
        }
    };
    log.acquire(request.breaking(breaking)).await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use uuid::Uuid;

    use super::*;
    use crate::state::{FileLog, History};

    /// A file store whose renewals fail while `failing` is set (a store cut off).
    struct Flaky {
        inner: FileLog,
        failing: AtomicBool,
    }

    impl StateLog for Flaky {
        fn append(&self, event: Event) -> impl Future<Output = Result<Event>> + Send {
            self.inner.append(event)
        }
        fn history(&self, target: &str) -> impl Future<Output = Result<History>> + Send {
            self.inner.history(target)
        }
        fn acquire(
            &self,
            request: LeaseRequest,
        ) -> impl Future<Output = Result<LeaseGuard>> + Send {
            self.inner.acquire(request)
        }
        async fn renew(&self, guard: &mut LeaseGuard, expiry: Duration) -> Result<()> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(Error::Backend {
                    store: "flaky",
                    message: "unreachable".to_owned(),
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

    fn flaky(failing: bool) -> (tempfile::TempDir, Flaky) {
        let dir = tempfile::tempdir().expect("temp dir");
        let inner = FileLog::open(dir.path().join("state")).expect("open");
        let failing = AtomicBool::new(failing);
        (dir, Flaky { inner, failing })
    }

    fn policy(renew_ms: u64, expiry_ms: u64) -> LeasePolicy {
        LeasePolicy {
            renew_every: Duration::from_millis(renew_ms),
            expiry: Duration::from_millis(expiry_ms),
            ..LeasePolicy::default()
        }
    }

    /// A run that waits on its stop token for up to `max`; returns how long it waited.
    async fn run_until_stopped(stop: CancellationToken, max: Duration) -> Duration {
        let started = tokio::time::Instant::now();
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(max) => {}
        }
        started.elapsed()
    }

    #[tokio::test]
    async fn a_run_that_cannot_renew_its_lease_is_stopped_before_it_lapses_and_the_loss_logged() {
        let (_dir, log) = flaky(true);
        let run = Uuid::new_v4();
        let request = policy(100, 400).request("orders", "alice", Duration::from_secs(60), run);
        let mut keeper = LeaseKeeper::acquire(&log, request, false, &CancellationToken::new())
            .await
            .expect("acquire");
        let waited = keeper
            .hold(run_until_stopped(
                keeper.stop_token(),
                Duration::from_secs(5),
            ))
            .await;
        assert!(
            waited < Duration::from_millis(400),
            "stopped within the expiry, before the lease lapsed: {waited:?}"
        );
        let why = keeper.lost().expect("lost").to_owned();
        assert!(
            why.contains("cannot renew") && why.contains("unreachable"),
            "{why}"
        );
        let lost = log
            .last_of("orders", &[EventKind::LeaseLost])
            .await
            .expect("read")
            .expect("the loss is logged");
        assert_eq!(lost.run_id, Some(run));
        assert!(
            lost.reason
                .as_deref()
                .is_some_and(|r| r.contains("interrupted path")),
            "{lost:?}"
        );
        keeper.release().await.expect("release");
    }

    #[tokio::test]
    async fn a_run_reaching_its_lease_ttl_is_stopped() {
        let (_dir, log) = flaky(false);
        let request = policy(200, 600).request(
            "orders",
            "alice",
            Duration::from_millis(1500),
            Uuid::new_v4(),
        );
        let mut keeper = LeaseKeeper::acquire(&log, request, false, &CancellationToken::new())
            .await
            .expect("acquire");
        let waited = keeper
            .hold(run_until_stopped(
                keeper.stop_token(),
                Duration::from_secs(5),
            ))
            .await;
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        let why = keeper.lost().expect("lost");
        assert!(why.contains("--lease-ttl"), "{why}");
        keeper.release().await.expect("release");
    }

    #[tokio::test]
    async fn a_renewing_run_keeps_its_lease_past_its_expiry() {
        let (_dir, log) = flaky(false);
        let request =
            policy(200, 800).request("orders", "alice", Duration::from_secs(60), Uuid::new_v4());
        let mut keeper = LeaseKeeper::acquire(&log, request, false, &CancellationToken::new())
            .await
            .expect("acquire");
        let granted = keeper.lease().expires_at;
        let waited = keeper
            .hold(run_until_stopped(
                keeper.stop_token(),
                Duration::from_secs(2),
            ))
            .await;
        assert!(
            waited >= Duration::from_secs(2),
            "never stopped: {waited:?}"
        );
        assert!(keeper.lost().is_none());
        assert!(keeper.lease().expires_at > granted, "renewed");
        keeper.release().await.expect("release");
    }

    #[test]
    fn policies_with_renewals_not_well_inside_the_expiry_are_refused() {
        for (renew_ms, expiry_ms, ok) in [
            (10_000, 30_000, true),
            (15_000, 30_000, true),
            (20_000, 30_000, false),
            (0, 30_000, false),
        ] {
            assert_eq!(
                policy(renew_ms, expiry_ms).validate().is_ok(),
                ok,
                "{renew_ms}/{expiry_ms}"
            );
        }
    }
}
