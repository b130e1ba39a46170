//! Leases: who may switch a target right now.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A granted lease on a switch target, as recorded by the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The switch target key.
    pub target: String,
    /// Who holds it, e.g. `alice@host (pid 4242)`.
    pub holder: String,
    /// When it was granted.
    pub acquired_at: DateTime<Utc>,
    /// When it lapses unless released first (see each store for what expiry means).
    pub expires_at: DateTime<Utc>,
    /// Identifies this grant, so a release or takeover can tell leases apart.
    pub token: Uuid,
}

impl Lease {
    /// A lease on `request.target` for `request.holder`, granted now for `request.ttl`,
    /// with a fresh token. Stores call this when they grant a lease.
    pub fn grant(request: &LeaseRequest) -> Lease {
        let acquired_at = Utc::now();
        let ttl = TimeDelta::from_std(request.ttl).unwrap_or(TimeDelta::MAX);
        Lease {
            target: request.target.clone(),
            holder: request.holder.clone(),
            acquired_at,
            expires_at: acquired_at
                .checked_add_signed(ttl)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            token: Uuid::new_v4(),
        }
    }

    /// Whether the lease has lapsed at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

/// What [`StateLog::acquire`](super::StateLog::acquire) asks for.
///
/// ```
/// use std::time::Duration;
/// use kong_switch_core::state::LeaseRequest;
///
/// let request = LeaseRequest::for_this_process("orders", "alice@host", Duration::from_secs(600));
/// assert!(request.holder.starts_with("alice@host (pid "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    /// The switch target key.
    pub target: String,
    /// Who asks, as it should appear in a "held by" error, e.g. `alice@host (pid 4242)`.
    pub holder: String,
    /// How long the lease lasts unless released first.
    pub ttl: Duration,
}

impl LeaseRequest {
    /// A request for `target` by `holder`, for `ttl`.
    pub fn new(target: impl Into<String>, holder: impl Into<String>, ttl: Duration) -> Self {
        LeaseRequest {
            target: target.into(),
            holder: holder.into(),
            ttl,
        }
    }

    /// A request whose holder is `who` followed by this process's id: `alice@host (pid 4242)`.
    /// The caller supplies `who` (core reads no environment).
    pub fn for_this_process(target: impl Into<String>, who: &str, ttl: Duration) -> Self {
        LeaseRequest::new(target, format!("{who} (pid {})", std::process::id()), ttl)
    }
}

/// Proof of a held lease. Keep it for as long as the switch runs (it is `Send`, so it may
/// be held across `.await`s), then give it back with
/// [`StateLog::release`](super::StateLog::release).
///
/// A store may keep a resource in the guard that holds the lease by itself existing (the
/// [`FileLog`](super::FileLog) keeps its locked file). Dropping the guard without releasing
/// drops that resource: for `FileLog` this frees the lock; for stores without such a
/// resource the lease stays until it expires.
pub struct LeaseGuard {
    lease: Lease,
    resource: Option<Box<dyn Any + Send + Sync>>,
}

impl LeaseGuard {
    /// A guard for a lease that needs no resource kept alive (e.g. a database document).
    pub fn new(lease: Lease) -> Self {
        LeaseGuard {
            lease,
            resource: None,
        }
    }

    /// A guard that keeps `resource` alive until released or dropped.
    pub fn holding(lease: Lease, resource: impl Any + Send + Sync) -> Self {
        LeaseGuard {
            lease,
            resource: Some(Box::new(resource)),
        }
    }

    /// The lease held.
    pub fn lease(&self) -> &Lease {
        &self.lease
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
            .field("holds_resource", &self.resource.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_expires_after_the_ttl() {
        let lease = Lease::grant(&LeaseRequest::new("orders", "me", Duration::from_secs(60)));
        assert_eq!(lease.expires_at - lease.acquired_at, TimeDelta::seconds(60));
        assert!(!lease.is_expired_at(lease.acquired_at));
        assert!(lease.is_expired_at(lease.expires_at));
    }

    #[test]
    fn grant_saturates_a_huge_ttl() {
        let lease = Lease::grant(&LeaseRequest::new("orders", "me", Duration::MAX));
        assert_eq!(lease.expires_at, DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn guards_can_cross_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LeaseGuard>();
    }
}
