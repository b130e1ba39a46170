//! Errors of the switch engine, and the exit-code table.
//!
//! Domain outcomes that are part of normal operation (a refused gate, a rollback, a no-op)
//! are not errors: they are [`Outcome`](super::Outcome)s of a
//! [`SwitchReport`](super::SwitchReport). Errors are what stopped the engine from reaching an
//! outcome, plus the held lock.

use chrono::{DateTime, Utc};

use crate::{admin, state};

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The process exit codes the CLI uses, in one place (README "Exit codes").
pub mod exit_code {
    /// Switched, no-op, or dry run.
    pub const OK: u8 = 0;
    /// Bad arguments.
    pub const USAGE: u8 = 2;
    /// A gate refused the switch; nothing changed.
    pub const REFUSED: u8 = 3;
    /// The switch was rolled back (write or verification failure).
    pub const ROLLED_BACK: u8 = 4;
    /// Kong (or the state store) answered with an error.
    pub const API_ERROR: u8 = 5;
    /// Another run holds the lease on the target, or a DB-less node's configuration changed
    /// while it was being edited; nothing was overwritten.
    pub const LOCKED: u8 = 6;
    /// Verification failed and rollback was disabled: the new side stays.
    pub const VERIFICATION_FAILED: u8 = 7;
    /// Interrupted (Ctrl-C); the documented rollback path was taken.
    pub const INTERRUPTED: u8 = 8;
    /// Kong and the log disagree, or a rollback could not finish: needs a human.
    pub const NEEDS_ATTENTION: u8 = 9;
}

/// What stopped the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Admin API failed before any write (reads, gates): nothing in Kong changed.
    /// Exit code 5.
    #[error(transparent)]
    Admin(#[from] admin::Error),

    /// The state log failed (not a held lease). Exit code 5.
    #[error("state log: {0}")]
    State(#[source] state::Error),

    /// Another run holds the lease on the target; nothing was read or written. Exit code 6.
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
    /// recorded as rolled back. Re-running is safe. Exit code 6.
    #[error("{target}: {message}")]
    ConfigChanged {
        /// The target key.
        target: String,
        /// What changed, and where the target is now.
        message: String,
    },

    /// The switch target (or an entity it names) does not exist. Exit code 5.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// `service`, `upstream`, …
        kind: &'static str,
        /// The name or id looked up.
        name: String,
    },

    /// The request is not usable as given (names the field and the fix). Exit code 2.
    #[error("invalid {field}: {message}")]
    InvalidRequest {
        /// Which input.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// Kong's shape does not fit the strategy (e.g. no blue and green targets in the
    /// upstream for `weights`, an unparsable declarative config). Nothing was written.
    /// Exit code 5.
    #[error("{0}")]
    Unsupported(String),

    /// The last run of the target left an intent this kong-switch cannot read (written by
    /// another version, or edited): what Kong shows cannot be compared with what the run
    /// planned, so nothing is decided from it. Nothing was written. Exit code 9.
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
    /// reports and a re-run or `rollback` resolves from Kong. Exit code 9.
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
    /// names the step the engine stopped at and what remains to undo. Exit code 9.
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

    /// The CLI exit code for this error (see [`exit_code`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Locked { .. } | Error::ConfigChanged { .. } => exit_code::LOCKED,
            Error::State(e) if e.is_lease_held() => exit_code::LOCKED,
            Error::InvalidRequest { .. } => exit_code::USAGE,
            Error::Inconsistent { .. }
            | Error::UnreadableIntent { .. }
            | Error::Unrecorded { .. } => exit_code::NEEDS_ATTENTION,
            Error::Admin(_) | Error::State(_) | Error::NotFound { .. } | Error::Unsupported(_) => {
                exit_code::API_ERROR
            }
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
    fn a_held_lease_becomes_locked_with_exit_code_6() {
        let err = Error::from(state::Error::LeaseHeld {
            target: "orders".into(),
            holder: "alice".into(),
            expires_at: None,
            renewed_at: None,
        });
        assert!(err.is_locked());
        assert_eq!(err.exit_code(), 6);
        assert_eq!(err.to_string(), "orders is being switched by alice");
    }

    #[test]
    fn a_refused_lease_break_has_the_locked_exit_code_6() {
        let err = Error::from(state::Error::LeaseRenewing {
            target: "orders".into(),
            holder: "alice".into(),
            renewed_at: chrono::DateTime::<Utc>::UNIX_EPOCH,
            watched_ms: 1500,
        });
        assert_eq!(err.exit_code(), 6);
        assert!(err.to_string().contains("--break-lease refused"), "{err}");
    }

    #[test]
    fn usage_and_inconsistency_have_their_own_codes() {
        assert_eq!(Error::invalid("steps", "x").exit_code(), 2);
        let err = Error::Inconsistent {
            target: "orders".into(),
            message: "undo failed".into(),
            remaining: Vec::new(),
        };
        assert_eq!(err.exit_code(), 9);
    }
}
