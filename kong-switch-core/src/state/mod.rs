//! The state log: what happened to each switch target, and who may switch it now.
//!
//! Every switch run records its steps as [`Event`]s in a [`StateLog`], per target:
//! an [`EventKind::Intent`] before the first Kong write (the write-ahead record that makes a
//! crash recoverable), [`EventKind::Step`]s of a weights shift, and an outcome
//! ([`EventKind::Completed`], [`EventKind::RolledBack`] or [`EventKind::Refused`]). A run
//! holds a lease on its target for its whole length, so two switches of one target never
//! overlap; the second fails fast with [`Error::LeaseHeld`] naming the holder.
//!
//! Stores: [`FileLog`] (embedded default: JSON Lines files and OS file locks) here; the
//! Firestore store lives in the gke crate. The behaviour every store must have is written
//! down as runnable checks in `conformance` (cargo feature `testing`).

mod error;
mod event;
mod file;
mod intent;
mod lease;

#[cfg(feature = "testing")]
pub mod conformance;

use std::future::Future;

pub use error::{Error, Result};
pub use event::{Color, CorruptLine, DeploymentStatus, Event, EventKind, History, Step};
pub use file::FileLog;
pub use intent::{INTENT_FORMAT, Intent, IntentPart, IntentRecord, UnreadableIntent};
pub use lease::{Lease, LeaseGuard, LeaseRequest};

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
    /// holder while another live holder has it; an expired lease may be taken over (see
    /// each store for when a lease counts as expired). Leases are not reentrant: a second
    /// acquire fails even for the same holder.
    fn acquire(&self, request: LeaseRequest) -> impl Future<Output = Result<LeaseGuard>> + Send;

    /// Gives the lease back, so others may take it.
    fn release(&self, guard: LeaseGuard) -> impl Future<Output = Result<()>> + Send;

    /// The targets that have a log, in no particular order.
    fn targets(&self) -> impl Future<Output = Result<Vec<String>>> + Send;
}
