//! Leases: who may switch a target right now, and for how long without renewing.
//!
//! A lease is granted for a short `expiry` and renewed by its running holder (see
//! [`LeaseKeeper`](super::LeaseKeeper)), so a holder that stops (killed, crashed, cut off from
//! the store) loses it soon after its last renewal, as Kubernetes and etcd leases do. The
//! run's whole length is bounded separately by its `ttl` (`--lease-ttl`): renewals never
//! carry the lease past `acquired_at + ttl`.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The version of the lease record this kong-switch writes. A record of another version is
/// not read as free: it is a lease [`LeaseState::Unreadable`], held by an unknown holder.
pub const LEASE_RECORD_VERSION: u32 = 1;

/// Who holds (or asks for) a lease.
///
/// ```
/// use kong_switch_core::state::LeaseHolder;
/// use uuid::Uuid;
///
/// let holder = LeaseHolder::new("alice@vm").with_pid(4242).with_host("vm");
/// assert_eq!(holder.to_string(), "alice@vm (pid 4242 on vm)");
/// let run = Uuid::nil();
/// assert!(holder.with_run_id(run).to_string().ends_with(", run 00000000-0000-0000-0000-000000000000)"));
/// assert_eq!(LeaseHolder::new("alice").to_string(), "alice");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// Who runs it, e.g. `alice@vm` (`--actor`).
    pub actor: String,
    /// The machine the holder runs on, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The holder's process id, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The run holding the lease: the `run_id` of its events in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
}

impl LeaseHolder {
    /// A holder known only by `actor`.
    pub fn new(actor: impl Into<String>) -> Self {
        LeaseHolder {
            actor: actor.into(),
            host: None,
            pid: None,
            run_id: None,
        }
    }

    /// The same holder on `host`.
    #[must_use]
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The same holder as process `pid`.
    #[must_use]
    pub fn with_pid(mut self, pid: u32) -> Self {
        self.pid = Some(pid);
        self
    }

    /// The same holder, for the run `run_id`.
    #[must_use]
    pub fn with_run_id(mut self, run_id: Uuid) -> Self {
        self.run_id = Some(run_id);
        self
    }
}

impl fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.actor)?;
        let mut details = Vec::new();
        match (self.pid, &self.host) {
            (Some(pid), Some(host)) => details.push(format!("pid {pid} on {host}")),
            (Some(pid), None) => details.push(format!("pid {pid}")),
            (None, Some(host)) => details.push(format!("on {host}")),
            (None, None) => {}
        }
        if let Some(run) = self.run_id {
            details.push(format!("run {run}"));
        }
        if !details.is_empty() {
            write!(f, " ({})", details.join(", "))?;
        }
        Ok(())
    }
}

/// A granted lease on a switch target, as recorded by the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The switch target key.
    pub target: String,
    /// Who holds it.
    pub holder: LeaseHolder,
    /// When it was granted.
    pub acquired_at: DateTime<Utc>,
    /// When its holder last renewed it (the grant counts as the first renewal).
    pub renewed_at: DateTime<Utc>,
    /// When it lapses unless renewed or released first.
    pub expires_at: DateTime<Utc>,
    /// The latest it may last, however often it is renewed: `acquired_at + ttl`.
    pub deadline: DateTime<Utc>,
    /// How often its holder renews it; a `--break-lease` watches it for longer than this.
    #[serde(with = "millis")]
    pub renew_every: Duration,
    /// Identifies this grant, so a renewal, release or takeover can tell leases apart.
    pub token: Uuid,
}

impl Lease {
    /// A lease on `request.target` for `request.holder`, granted now, expiring
    /// `request.expiry` from now (but never after `request.ttl` from now), with a fresh token.
    /// Stores call this when they grant a lease.
    pub fn grant(request: &LeaseRequest) -> Lease {
        let now = Utc::now();
        let deadline = later(now, request.ttl);
        Lease {
            target: request.target.clone(),
            holder: request.holder.clone(),
            acquired_at: now,
            renewed_at: now,
            expires_at: later(now, request.expiry).min(deadline),
            deadline,
            renew_every: request.renew_every,
            token: Uuid::new_v4(),
        }
    }

    /// This lease renewed at `now`: it expires `expiry` after `now`, but not after its
    /// deadline. Stores call this when they renew a lease.
    #[must_use]
    pub fn renewed(&self, now: DateTime<Utc>, expiry: Duration) -> Lease {
        Lease {
            renewed_at: now,
            expires_at: later(now, expiry).min(self.deadline),
            ..self.clone()
        }
    }

    /// Whether the lease has lapsed at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// The record a store persists: this lease as JSON, with its
    /// [`version`](LEASE_RECORD_VERSION).
    pub fn to_record(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&LeaseRecord {
            version: LEASE_RECORD_VERSION,
            lease: self.clone(),
        })
    }

    /// Reads a record written by [`Lease::to_record`]. `Err` says why it cannot be read
    /// (not JSON, missing fields, another version): the caller must treat the lease as held
    /// by an unknown holder, never as free.
    pub fn from_record(record: &[u8]) -> Result<Lease, String> {
        let version: RecordVersion =
            serde_json::from_slice(record).map_err(|e| format!("not a lease record: {e}"))?;
        if version.version != LEASE_RECORD_VERSION {
            return Err(format!(
                "lease record version {} (this kong-switch reads version {LEASE_RECORD_VERSION})",
                version.version
            ));
        }
        serde_json::from_slice::<LeaseRecord>(record)
            .map(|r| r.lease)
            .map_err(|e| format!("unreadable lease record: {e}"))
    }
}

/// `at + d`, saturating.
fn later(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The persisted form of a [`Lease`]: `{"version": 1, …the lease's fields}`.
#[derive(Serialize, Deserialize)]
struct LeaseRecord {
    version: u32,
    #[serde(flatten)]
    lease: Lease,
}

#[derive(Deserialize)]
struct RecordVersion {
    version: u32,
}

/// A [`Duration`] as whole milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `d` as milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A lease's state, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LeaseState {
    /// Nobody holds it.
    Free,
    /// A live holder has it.
    Held {
        /// The lease.
        lease: Lease,
    },
    /// Its holder stopped renewing it (or its process is gone): the next run takes it
    /// over, and records that it did.
    Abandoned {
        /// The lease as its holder left it.
        lease: Lease,
    },
    /// A lease record that cannot be read: held by an unknown holder until broken with
    /// `--break-lease`.
    Unreadable {
        /// Why it cannot be read.
        reason: String,
    },
}

/// Takes over an unexpired (or unreadable) lease that was observed not to change: see
/// [`LeaseRequest::breaking`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakOf {
    /// The lease with this token, last renewed at this time.
    Lease {
        /// Its token.
        token: Uuid,
        /// Its last renewal.
        renewed_at: DateTime<Utc>,
    },
    /// An unreadable lease record.
    Unreadable,
}

/// What [`StateLog::acquire`](super::StateLog::acquire) asks for.
///
/// ```
/// use std::time::Duration;
/// use kong_switch_core::state::LeaseRequest;
///
/// let request = LeaseRequest::for_this_process("orders", "alice@host", Duration::from_secs(600));
/// assert!(request.holder.to_string().starts_with("alice@host (pid "));
/// let renewed = request.renewed(Duration::from_secs(10), Duration::from_secs(30));
/// assert_eq!(renewed.expiry, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    /// The switch target key.
    pub target: String,
    /// Who asks.
    pub holder: LeaseHolder,
    /// The longest the lease may be held, renewals included (`--lease-ttl`).
    pub ttl: Duration,
    /// How long the lease lasts after its grant and after each renewal. Equal to `ttl` for
    /// a lease nobody renews.
    pub expiry: Duration,
    /// How often the holder renews it (recorded in the lease).
    pub renew_every: Duration,
    /// Take over the current lease even though it has not expired, provided it is still
    /// the one observed (`--break-lease`). `None`: only a free or expired lease is taken.
    pub breaking: Option<BreakOf>,
}

impl LeaseRequest {
    /// A request for `target` by `holder`, for `ttl`, not renewed: it expires `ttl` after
    /// the grant.
    pub fn new(target: impl Into<String>, holder: impl Into<LeaseHolder>, ttl: Duration) -> Self {
        LeaseRequest {
            target: target.into(),
            holder: holder.into(),
            ttl,
            expiry: ttl,
            renew_every: ttl,
            breaking: None,
        }
    }

    /// A request whose holder is `who` as this process: `alice@host (pid 4242)`.
    /// The caller supplies `who` (core reads no environment).
    pub fn for_this_process(target: impl Into<String>, who: &str, ttl: Duration) -> Self {
        LeaseRequest::new(
            target,
            LeaseHolder::new(who).with_pid(std::process::id()),
            ttl,
        )
    }

    /// The same request for a lease renewed every `renew_every`, expiring `expiry` after
    /// each renewal (both capped by `ttl`).
    #[must_use]
    pub fn renewed(mut self, renew_every: Duration, expiry: Duration) -> Self {
        self.expiry = expiry.min(self.ttl);
        self.renew_every = renew_every.min(self.expiry);
        self
    }

    /// The same request, taking over `lease` even though it has not expired.
    #[must_use]
    pub fn breaking(mut self, lease: BreakOf) -> Self {
        self.breaking = Some(lease);
        self
    }
}

impl From<&str> for LeaseHolder {
    fn from(actor: &str) -> Self {
        LeaseHolder::new(actor)
    }
}

impl From<String> for LeaseHolder {
    fn from(actor: String) -> Self {
        LeaseHolder::new(actor)
    }
}

/// Why a lease was taken over from its previous holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TakeoverCause {
    /// The previous holder stopped renewing it and it expired.
    Expired,
    /// The previous holder's process is gone (the file store's OS lock was free) though
    /// its record had not expired yet.
    HolderGone,
    /// Broken with `--break-lease`: it had not expired (or could not be read) but was not
    /// renewed while it was watched.
    Broken,
}

impl TakeoverCause {
    /// The serialized name, e.g. `holder_gone`.
    pub fn as_str(self) -> &'static str {
        match self {
            TakeoverCause::Expired => "expired",
            TakeoverCause::HolderGone => "holder_gone",
            TakeoverCause::Broken => "broken",
        }
    }
}

/// A lease taken over from a previous holder that did not release it: recorded in the log
/// as an [`EventKind::LeaseTakenOver`](super::EventKind::LeaseTakenOver) event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Takeover {
    /// Why it could be taken over.
    pub cause: TakeoverCause,
    /// The previous lease, or `None` if its record could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Lease>,
    /// The new holder.
    pub by: LeaseHolder,
}

impl fmt::Display for Takeover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.previous, self.cause) {
            (Some(p), TakeoverCause::Expired) => write!(
                f,
                "{} took over the lease of {}: it expired at {} (last renewed {})",
                self.by,
                p.holder,
                p.expires_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                p.renewed_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            (Some(p), TakeoverCause::HolderGone) => write!(
                f,
                "{} took over the lease of {}: its process is gone (last renewed {})",
                self.by,
                p.holder,
                p.renewed_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            (Some(p), TakeoverCause::Broken) => write!(
                f,
                "{} broke the lease of {} (--break-lease): not renewed since {}",
                self.by,
                p.holder,
                p.renewed_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            (None, TakeoverCause::Broken) => write!(
                f,
                "{} broke an unreadable lease record (--break-lease)",
                self.by
            ),
            (None, _) => write!(
                f,
                "{} took over a lease whose record could not be read",
                self.by
            ),
        }
    }
}

/// Proof of a held lease. Keep it for as long as the switch runs (it is `Send`, so it may
/// be held across `.await`s), renew it with [`StateLog::renew`](super::StateLog::renew),
/// then give it back with [`StateLog::release`](super::StateLog::release).
///
/// A store may keep a resource in the guard that holds the lease by itself existing (the
/// [`FileLog`](super::FileLog) keeps its locked file). Dropping the guard without releasing
/// drops that resource: for `FileLog` this frees the lock; for stores without such a
/// resource the lease stays until it expires.
pub struct LeaseGuard {
    lease: Lease,
    taken_over: Option<Takeover>,
    resource: Option<Box<dyn Any + Send + Sync>>,
}

impl LeaseGuard {
    /// A guard for a lease that needs no resource kept alive (e.g. a database document).
    pub fn new(lease: Lease) -> Self {
        LeaseGuard {
            lease,
            taken_over: None,
            resource: None,
        }
    }

    /// A guard that keeps `resource` alive until released or dropped.
    pub fn holding(lease: Lease, resource: impl Any + Send + Sync) -> Self {
        LeaseGuard {
            lease,
            taken_over: None,
            resource: Some(Box::new(resource)),
        }
    }

    /// The same guard, for a lease taken over from a previous holder.
    #[must_use]
    pub fn with_takeover(mut self, takeover: Takeover) -> Self {
        self.taken_over = Some(takeover);
        self
    }

    /// The lease held.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The takeover, if this lease was taken over from a holder that did not release it.
    pub fn takeover(&self) -> Option<&Takeover> {
        self.taken_over.as_ref()
    }

    /// Records a renewal: stores call this when they renewed the lease.
    pub fn set_lease(&mut self, lease: Lease) {
        self.lease = lease;
    }

    /// The resource the store keeps in the guard, for a store's `renew`.
    pub fn resource_mut(&mut self) -> Option<&mut (dyn Any + Send + Sync)> {
        self.resource.as_deref_mut()
    }

    /// Splits the guard into the lease and the resource it kept, for a store's `release`.
    pub fn into_parts(self) -> (Lease, Option<Box<dyn Any + Send + Sync>>) {
        (self.lease, self.resource)
    }
}

impl fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("lease", &self.lease)
            .field("taken_over", &self.taken_over)
            .field("holds_resource", &self.resource.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ttl: u64) -> LeaseRequest {
        LeaseRequest::new("orders", "me", Duration::from_secs(ttl))
    }

    #[test]
    fn an_unrenewed_grant_expires_after_the_ttl() {
        let lease = Lease::grant(&request(60));
        assert_eq!(lease.expires_at - lease.acquired_at, TimeDelta::seconds(60));
        assert_eq!(lease.deadline, lease.expires_at);
        assert!(!lease.is_expired_at(lease.acquired_at));
        assert!(lease.is_expired_at(lease.expires_at));
    }

    #[test]
    fn a_renewed_grant_expires_after_the_expiry_and_renewals_stop_at_the_ttl() {
        let req = request(60).renewed(Duration::from_secs(10), Duration::from_secs(30));
        let lease = Lease::grant(&req);
        assert_eq!(lease.expires_at - lease.acquired_at, TimeDelta::seconds(30));
        let later = lease.renewed(lease.acquired_at + TimeDelta::seconds(20), req.expiry);
        assert_eq!(later.expires_at - lease.acquired_at, TimeDelta::seconds(50));
        let last = lease.renewed(lease.acquired_at + TimeDelta::seconds(50), req.expiry);
        assert_eq!(
            last.expires_at, lease.deadline,
            "never past acquired_at + ttl"
        );
        assert_eq!(last.token, lease.token);
    }

    #[test]
    fn renewal_settings_are_capped_by_the_ttl_and_the_expiry() {
        let req = request(20).renewed(Duration::from_secs(40), Duration::from_secs(30));
        assert_eq!(req.expiry, Duration::from_secs(20));
        assert_eq!(req.renew_every, Duration::from_secs(20));
    }

    #[test]
    fn grant_saturates_a_huge_ttl() {
        let lease = Lease::grant(&LeaseRequest::new("orders", "me", Duration::MAX));
        assert_eq!(lease.expires_at, DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn records_round_trip_with_their_version() {
        let lease = Lease::grant(&request(60));
        let record = lease.to_record().expect("encodes");
        let value: serde_json::Value = serde_json::from_slice(&record).expect("JSON");
        assert_eq!(value["version"], LEASE_RECORD_VERSION);
        assert_eq!(value["renew_every"], 60_000);
        assert_eq!(Lease::from_record(&record), Ok(lease));
    }

    #[test]
    fn records_that_cannot_be_read_say_why() {
        let lease = Lease::grant(&request(60));
        let mut value: serde_json::Value =
            serde_json::from_slice(&lease.to_record().expect("encodes")).expect("JSON");
        value["version"] = 2.into();
        let newer = serde_json::to_vec(&value).expect("encodes");
        let cases: [(&[u8], &str); 4] = [
            (b"", "not a lease record"),
            (b"{\"holder\":\"alice\"}", "not a lease record"),
            (
                b"{\"version\":1,\"holder\":\"alice\"}",
                "unreadable lease record",
            ),
            (&newer, "lease record version 2"),
        ];
        for (record, why) in cases {
            match Lease::from_record(record) {
                Err(message) => assert!(message.contains(why), "{message}"),
                Ok(lease) => panic!("{record:?} read as {lease:?}"),
            }
        }
    }

    #[test]
    fn guards_can_cross_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LeaseGuard>();
    }
}
