//! Errors of the switch engine.
//!
//! Domain outcomes that are part of normal operation (a refused gate, a rollback, a no-op)
//! are not errors: they are [`Outcome`](super::Outcome)s of a
//! [`SwitchReport`](super::SwitchReport). Errors are what stopped the engine from reaching an
//! outcome, plus the held lock.

use chrono::{DateTime, Utc};

use crate::{admin, state};

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What stopped the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Admin API failed before any write (reads, gates): nothing in Kong changed.
    ///
    #[error(transparent)]
    Admin(#[from] admin::Error),

    /// The state log failed (not a held lease).
    #[error("state log: {0}")]
    State(#[source] state::Error),

    /// Another run holds the lease on the target; nothing was read or written.
    #[error(
        "{target} is being switched by {holder}{}",
        expires_at.map(|t| format!(" (lease until {})", t.to_rfc3339())).unwrap_or_default()
    )]
    Locked {
        /// The target key.
        target: String,
        /// Who holds the lease.
        holder: String,
        /// When the lease lapses, if known.
        expires_at: Option<DateTime<Utc>>,
    },

    /// A write to a DB-less node was refused and nothing of it written: the node's declarative
    /// configuration changed while it was being edited (another writer posted `/config`), or
    /// its config lease stayed held. What the run had written before was undone and the run
    /// recorded as rolled back. Re-running is safe.
    #[error("{target}: {message}")]
    ConfigChanged {
        /// The target key.
        target: String,
        /// What changed, and where the target is now.
        message: String,
    },

    /// The switch target (or an entity it names) does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// `service`, `upstream`, …
        kind: &'static str,
        /// The name or id looked up.
        name: String,
    },

    /// The request is not usable as given (names the field and the fix).
    #[error("invalid {field}: {message}")]
    InvalidRequest {
        /// Which input.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// Kong's shape does not fit the strategy (e.g. no blue and green targets in the
    /// upstream for `weights`, an unparsable declarative config). Nothing was written.
    ///
    #[error("{0}")]
    Unsupported(String),

    /// The last run of the target left an intent this kong-switch cannot read (written by
    /// another version, or edited): what Kong shows cannot be compared with what the run
    /// planned, so nothing is decided from it. Nothing was written.
    #[error(
        "the last run of {target} ({}, log entry #{seq}) left an intent this kong-switch cannot read: {reason}; \
         what it changed in Kong is unknown, so nothing was written. Check where {target} routes in Kong, \
         then record it with `kong-switch resolve {target} --to <the side Kong is on>`",
        run_id.map_or_else(|| "run id unknown".to_owned(), |r| format!("run {r}"))
    )]
    UnreadableIntent {
        /// The target key.
        target: String,
        /// The run that wrote the intent.
        run_id: Option<uuid::Uuid>,
        /// The intent's position in the log.
        seq: u64,
        /// What cannot be read, naming the JSON path.
        reason: String,
    },

    /// The run reached its outcome in Kong, but the state log did not take the record of it:
    /// Kong is where `kong` says; the log still shows the run as unfinished, which `status`
    /// reports and a re-run or `rollback` resolves from Kong.
    #[error(
        "{target}: {kong}, but the state log could not record it ({source}); the log shows the run as unfinished until a re-run or `rollback` resolves it"
    )]
    Unrecorded {
        /// The target key.
        target: String,
        /// Where Kong is, in words (`orders routes to orders-green`).
        kong: String,
        /// The state log's failure.
        #[source]
        source: Box<state::Error>,
    },

    /// A rollback or recovery could not finish: Kong may be between the sides. The message
    /// names the step the engine stopped at and what remains to undo.
    #[error("inconsistent state of {target}: {message}")]
    Inconsistent {
        /// The target key.
        target: String,
        /// What happened and what remains.
        message: String,
        /// The undo writes that were not applied, in order.
        remaining: Vec<admin::AdminRequest>,
    },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidRequest {
            field,
            message: message.into(),
        }
    }

    /// Whether this is [`Error::Locked`].
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Locked { .. })
    }
}

impl From<state::Error> for Error {
    fn from(err: state::Error) -> Self {
        match err {
            state::Error::LeaseHeld {
                target,
                holder,
                expires_at,
                ..
            } => Error::Locked {
                target,
                holder,
                expires_at,
            },
            other => Error::State(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lease_becomes_locked_naming_the_holder() {
        let err = Error::from(state::Error::LeaseHeld {
            target: "orders".into(),
            holder: "alice".into(),
            expires_at: None,
            renewed_at: None,
        });
        assert!(err.is_locked());
        assert_eq!(err.to_string(), "orders is being switched by alice");
    }

    #[test]
    fn a_refused_lease_break_names_the_renewing_holder() {
        let err = Error::from(state::Error::LeaseRenewing {
            target: "orders".into(),
            holder: "alice".into(),
            renewed_at: chrono::DateTime::<Utc>::UNIX_EPOCH,
            watched_ms: 1500,
        });
        assert!(
            matches!(&err, Error::State(e) if e.is_lease_held()),
            "{err:?}"
        );
        assert!(err.to_string().contains("--break-lease refused"), "{err}");
    }
}
