//! Errors of the state log.

use std::io;
use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with a state store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[error("cannot {op} {}", path.display())]
    Io {
        /// What was being done: `open`, `read`, `append to`, `lock`, …
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Another holder has the lease on the target: a domain outcome, not a failure of the
    /// store. The CLI maps it to the "locked" exit code.
    #[error(
        "{target:?} is being switched by {holder}{}{}",
        renewed(renewed_at.as_ref()),
        until(expires_at.as_ref())
    )]
    LeaseHeld {
        /// The switch target key.
        target: String,
        /// Who holds it, e.g. `alice@host (pid 4242 on vm, run …)`.
        holder: String,
        /// When the holder's lease lapses, if the store could tell.
        expires_at: Option<DateTime<Utc>>,
        /// When the holder last renewed it, if the store could tell.
        renewed_at: Option<DateTime<Utc>>,
    },

    /// `--break-lease` was refused: the holder renewed its lease while it was watched, so it
    /// is still running. A domain outcome, like [`Error::LeaseHeld`].
    #[error(
        "--break-lease refused: {target:?} is held by {holder}, which renewed its lease at {} while it was watched for {watched_ms} ms, so it is still running; wait for it, or stop it first",
        renewed_at.to_rfc3339_opts(SecondsFormat::Millis, true)
    )]
    LeaseRenewing {
        /// The switch target key.
        target: String,
        /// Who holds it.
        holder: String,
        /// The renewal seen while watching.
        renewed_at: DateTime<Utc>,
        /// How long the lease was watched.
        watched_ms: u64,
    },

    /// The holder's lease is no longer its own: it expired and was taken over, or was
    /// broken. The run must stop.
    #[error("the lease on {target:?} was lost: {reason}")]
    LeaseLost {
        /// The switch target key.
        target: String,
        /// What the store found instead of the holder's lease.
        reason: String,
    },

    /// A stored record cannot be read as an event.
    #[error("{}:{line}: unreadable state log record: {message}", path.display())]
    Corrupt {
        /// The log file (or document path).
        path: PathBuf,
        /// 1-based line number (or position).
        line: usize,
        /// Why it cannot be read.
        message: String,
    },

    /// An event could not be encoded as JSON.
    #[error("cannot encode a state log record for {target:?}")]
    Serialize {
        /// The switch target key.
        target: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// The target key cannot be stored.
    #[error("invalid switch target {target:?}: {reason}")]
    InvalidTarget {
        /// The target key as given.
        target: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// The background task doing the store's blocking I/O did not finish (it panicked or the
    /// runtime is shutting down).
    #[error("the state store's background task failed")]
    Task(#[source] tokio::task::JoinError),

    /// A store-specific failure (e.g. a network or database error of a remote store).
    #[error("{store} state store: {message}")]
    Backend {
        /// Which store, e.g. `firestore`.
        store: &'static str,
        /// What failed.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// Whether this is [`Error::LeaseHeld`] or [`Error::LeaseRenewing`]: someone else is
    /// switching the target.
    pub fn is_lease_held(&self) -> bool {
        matches!(self, Error::LeaseHeld { .. } | Error::LeaseRenewing { .. })
    }

    /// For [`Error::LeaseHeld`] and [`Error::LeaseRenewing`], who holds the lease.
    pub fn lease_holder(&self) -> Option<&str> {
        match self {
            Error::LeaseHeld { holder, .. } | Error::LeaseRenewing { holder, .. } => Some(holder),
            _ => None,
        }
    }

    /// An [`Error::Io`] for `op` on `path`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

fn renewed(renewed_at: Option<&DateTime<Utc>>) -> String {
    match renewed_at {
        Some(at) => format!(
            " (last renewed {})",
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        None => String::new(),
    }
}

fn until(expires_at: Option<&DateTime<Utc>>) -> String {
    match expires_at {
        Some(at) => format!(" until {}", at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_held_names_the_holder_and_the_expiry() {
        let err = Error::LeaseHeld {
            target: "orders".into(),
            holder: "alice@host (pid 4242)".into(),
            expires_at: Some(
                DateTime::parse_from_rfc3339("2026-11-25T01:02:03Z")
                    .expect("valid RFC 3339")
                    .with_timezone(&Utc),
            ),
            renewed_at: Some(
                DateTime::parse_from_rfc3339("2026-11-25T01:01:33Z")
                    .expect("valid RFC 3339")
                    .with_timezone(&Utc),
            ),
        };
        assert_eq!(
            err.to_string(),
            r#""orders" is being switched by alice@host (pid 4242) (last renewed 2026-11-25T01:01:33Z) until 2026-11-25T01:02:03Z"#
        );
        assert!(err.is_lease_held());
        assert_eq!(err.lease_holder(), Some("alice@host (pid 4242)"));
    }

    #[test]
    fn lease_held_without_expiry_leaves_it_out() {
        let err = Error::LeaseHeld {
            target: "orders".into(),
            holder: "an unknown holder".into(),
            expires_at: None,
            renewed_at: None,
        };
        assert_eq!(
            err.to_string(),
            r#""orders" is being switched by an unknown holder"#
        );
    }

    #[test]
    fn io_errors_name_the_operation_and_path() {
        let err = Error::io("append to", "/var/lib/ks/orders.jsonl")(io::Error::other("disk full"));
        assert_eq!(err.to_string(), "cannot append to /var/lib/ks/orders.jsonl");
        assert!(std::error::Error::source(&err).is_some());
    }
}
