//! The state log: what happened to each switch target, and who may switch it now.
//!
//! Every switch run records its steps as [`Event`]s in a [`StateLog`], per target:
//! an [`EventKind::Intent`] before the first Kong write (the write-ahead record that makes a
//! crash recoverable), [`EventKind::Step`]s of a weights shift, and an outcome
//! ([`EventKind::Completed`], [`EventKind::RolledBack`] or [`EventKind::Refused`]). A run
//! holds a lease on its target for its whole length, so two switches of one target never
//! overlap; the second fails fast with [`Error::LeaseHeld`] naming the holder. The lease is
//! short and renewed by the running holder ([`LeaseKeeper`]), so a killed holder's lease
//! lapses soon after its last renewal; the next run takes it over and records
//! [`EventKind::LeaseTakenOver`].
//!
//! Stores: [`FileLog`] (embedded default: JSON Lines files and OS file locks) here; the
//! Firestore store lives in the gke crate. The behaviour every store must have is written
//! down as runnable checks in `conformance` (cargo feature `testing`).

mod error;
mod event;
mod file;
mod intent;
mod keeper;
mod lease;

#[cfg(feature = "testing")]
pub mod conformance;

use std::future::Future;
use std::time::Duration;

pub use error::{Error, Result};
pub use event::{Color, CorruptLine, DeploymentStatus, Event, EventKind, History, Step};
pub use file::FileLog;
pub use intent::{INTENT_FORMAT, Intent, IntentPart, IntentRecord, UnreadableIntent};
pub use keeper::{LeaseKeeper, LeasePolicy, record_takeover};
pub use lease::{
    BreakOf, LEASE_RECORD_VERSION, Lease, LeaseGuard, LeaseHolder, LeaseRequest, LeaseState,
    Takeover, TakeoverCause,
};

/// A store of per-target event logs and leases.
///
/// Methods return `Send` futures so an async engine can run them on any runtime thread, and
/// so stores may do network I/O.
///
/// ```no_run
/// use std::time::Duration;
/// use kong_switch_core::state::{Event, EventKind, LeaseRequest, StateLog};
///
/// async fn record_refusal(log: &impl StateLog) -> kong_switch_core::state::Result<()> {
///     let lease = log
///         .acquire(LeaseRequest::for_this_process("orders", "alice@host", Duration::from_secs(600)))
///         .await?;
///     log.append(Event::new("orders", EventKind::Refused).with_reason("green has no healthy targets"))
///         .await?;
///     log.release(lease).await
/// }
/// ```
pub trait StateLog: Send + Sync {
    /// Appends `event` to the log of `event.target` and returns it as stored, with its
    /// sequence number: one more than the target's last, starting at 1 (any `seq` the
    /// caller set is ignored). The event is durable when the future resolves.
    fn append(&self, event: Event) -> impl Future<Output = Result<Event>> + Send;

    /// The events of `target`, oldest first, with any unreadable records reported in
    /// [`History::corrupt`]. An unknown target has an empty history.
    fn history(&self, target: &str) -> impl Future<Output = Result<History>> + Send;

    /// The newest readable event of `target`, if any.
    fn last(&self, target: &str) -> impl Future<Output = Result<Option<Event>>> + Send {
        async move { Ok(self.history(target).await?.events.pop()) }
    }

    /// The newest readable event of `target` whose kind is one of `kinds`, if any. Stores
    /// should find it without reading the whole log when they can.
    fn last_of(
        &self,
        target: &str,
        kinds: &[EventKind],
    ) -> impl Future<Output = Result<Option<Event>>> + Send {
        async move {
            Ok(self
                .history(target)
                .await?
                .events
                .into_iter()
                .rev()
                .find(|e| kinds.contains(&e.kind)))
        }
    }

    /// Takes the lease on `request.target`. Fails with [`Error::LeaseHeld`] naming the
    /// holder while another live holder has it, or while the lease record cannot be read
    /// (held by an unknown holder). A lease its holder did not release is taken over when
    /// it has expired, when the store knows its holder is gone, or when
    /// `request.breaking` names it as it still is; the guard then says so
    /// ([`LeaseGuard::takeover`]). Leases are not reentrant: a second acquire fails even for
    /// the same holder.
    fn acquire(&self, request: LeaseRequest) -> impl Future<Output = Result<LeaseGuard>> + Send;

    /// Renews the held lease: it now expires `expiry` from now (never after its deadline),
    /// and the guard holds the renewed lease. Fails with [`Error::LeaseLost`] when the lease
    /// is no longer the guard's (taken over or broken).
    fn renew(
        &self,
        guard: &mut LeaseGuard,
        expiry: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The lease on `target` as it stands: free, held, abandoned or unreadable.
    fn lease(&self, target: &str) -> impl Future<Output = Result<LeaseState>> + Send;

    /// Gives the lease back, so others may take it.
    fn release(&self, guard: LeaseGuard) -> impl Future<Output = Result<()>> + Send;

    /// The targets that have a log, in no particular order.
    fn targets(&self) -> impl Future<Output = Result<Vec<String>>> + Send;
}

/// A shared reference to a store is a store (so an engine can borrow its log).
impl<T: StateLog + ?Sized> StateLog for &T {
    fn append(&self, event: Event) -> impl Future<Output = Result<Event>> + Send {
        (**self).append(event)
    }

    fn history(&self, target: &str) -> impl Future<Output = Result<History>> + Send {
        (**self).history(target)
    }

    fn last(&self, target: &str) -> impl Future<Output = Result<Option<Event>>> + Send {
        (**self).last(target)
    }

    fn last_of(
        &self,
        target: &str,
        kinds: &[EventKind],
    ) -> impl Future<Output = Result<Option<Event>>> + Send {
        (**self).last_of(target, kinds)
    }

    fn acquire(&self, request: LeaseRequest) -> impl Future<Output = Result<LeaseGuard>> + Send {
        (**self).acquire(request)
    }

    fn renew(
        &self,
        guard: &mut LeaseGuard,
        expiry: Duration,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).renew(guard, expiry)
    }

    fn lease(&self, target: &str) -> impl Future<Output = Result<LeaseState>> + Send {
        (**self).lease(target)
    }

    fn release(&self, guard: LeaseGuard) -> impl Future<Output = Result<()>> + Send {
        (**self).release(guard)
    }

    fn targets(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        (**self).targets()
    }
}
