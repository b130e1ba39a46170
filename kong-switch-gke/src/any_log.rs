//! [`AnyLog`]: the state store chosen by `--state`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use kong_switch_core::state::{
    Event, EventKind, FileLog, History, LeaseGuard, LeaseRequest, LeaseState, Result, StateLog,
};

use crate::error::Error;
use crate::firestore_log::{FirestoreEndpoint, FirestoreLog, FirestoreUrl};

/// Where the state log lives, as `--state` gives it: a directory for the file store, or a
/// `firestore://PROJECT[/DATABASE]/COLLECTION` URL.
///
/// ```
/// use kong_switch_gke::StateLocation;
///
/// assert!(matches!(StateLocation::parse("/var/lib/ks").unwrap(), StateLocation::File(_)));
/// assert!(matches!(
///     StateLocation::parse("firestore://acme/kong-switch").unwrap(),
///     StateLocation::Firestore(_)
/// ));
/// assert!(StateLocation::parse("firestore://acme").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateLocation {
    /// A directory for the embedded [`FileLog`].
    File(PathBuf),
    /// A Firestore collection for the [`FirestoreLog`].
    Firestore(FirestoreUrl),
}

impl StateLocation {
    /// Reads `--state`: anything starting with `firestore:` must be a valid Firestore URL;
    /// anything else is a directory.
    pub fn parse(value: &str) -> Result<StateLocation, Error> {
        if FirestoreUrl::is_firestore_url(value) {
            Ok(StateLocation::Firestore(value.parse()?))
        } else {
            Ok(StateLocation::File(PathBuf::from(value)))
        }
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::File(dir) => write!(f, "{}", dir.display()),
            StateLocation::Firestore(url) => write!(f, "{url}"),
        }
    }
}

/// The file store or the Firestore store, chosen at run time; a [`StateLog`] either way.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyLog {
    /// The embedded JSON Lines store.
    File(FileLog),
    /// The shared Firestore store.
    Firestore(FirestoreLog),
}

impl AnyLog {
    /// Opens the store at `location`; a Firestore store on `endpoint` (see
    /// [`FirestoreEndpoint::from_env`]). Fails if the directory cannot be created, or if
    /// Firestore does not answer or refuses the credentials.
    pub async fn open(location: &StateLocation, endpoint: FirestoreEndpoint) -> Result<AnyLog> {
        match location {
            StateLocation::File(dir) => Ok(AnyLog::File(FileLog::open(dir)?)),
            StateLocation::Firestore(url) => Ok(AnyLog::Firestore(
                FirestoreLog::connect_to(url.clone(), endpoint).await?,
            )),
        }
    }
}

impl StateLog for AnyLog {
    async fn append(&self, event: Event) -> Result<Event> {
        match self {
            AnyLog::File(log) => log.append(event).await,
            AnyLog::Firestore(log) => log.append(event).await,
        }
    }

    async fn history(&self, target: &str) -> Result<History> {
        match self {
            AnyLog::File(log) => log.history(target).await,
            AnyLog::Firestore(log) => log.history(target).await,
        }
    }

    async fn last(&self, target: &str) -> Result<Option<Event>> {
        match self {
            AnyLog::File(log) => log.last(target).await,
            AnyLog::Firestore(log) => log.last(target).await,
        }
    }

    async fn last_of(&self, target: &str, kinds: &[EventKind]) -> Result<Option<Event>> {
        match self {
            AnyLog::File(log) => log.last_of(target, kinds).await,
            AnyLog::Firestore(log) => log.last_of(target, kinds).await,
        }
    }

    async fn acquire(&self, request: LeaseRequest) -> Result<LeaseGuard> {
        match self {
            AnyLog::File(log) => log.acquire(request).await,
            AnyLog::Firestore(log) => log.acquire(request).await,
        }
    }

    async fn renew(&self, guard: &mut LeaseGuard, expiry: Duration) -> Result<()> {
        match self {
            AnyLog::File(log) => log.renew(guard, expiry).await,
            AnyLog::Firestore(log) => log.renew(guard, expiry).await,
        }
    }

    async fn lease(&self, target: &str) -> Result<LeaseState> {
        match self {
            AnyLog::File(log) => log.lease(target).await,
            AnyLog::Firestore(log) => log.lease(target).await,
        }
    }

    async fn release(&self, guard: LeaseGuard) -> Result<()> {
        match self {
            AnyLog::File(log) => log.release(guard).await,
            AnyLog::Firestore(log) => log.release(guard).await,
        }
    }

    async fn targets(&self) -> Result<Vec<String>> {
        match self {
            AnyLog::File(log) => log.targets().await,
            AnyLog::Firestore(log) => log.targets().await,
        }
    }
}
