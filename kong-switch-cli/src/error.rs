//! The CLI's error type: what went wrong, and which exit code it means.

use kong_switch_core::{admin, state, switch};

use crate::exit::Exit;

/// A failure that ends the command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input on the command line or in a file it names.
    #[error("{0}")]
    Usage(String),
    /// The entity named on the command line does not exist in Kong.
    #[error("{0}")]
    NotFound(String),
    /// The Admin API client failed.
    #[error(transparent)]
    Admin(#[from] admin::Error),
    /// The switch engine stopped.
    #[error(transparent)]
    Switch(switch::Error),
    /// The state log failed.
    #[error(transparent)]
    State(#[from] state::Error),
    /// Kubernetes, Firestore or the state log failed (feature `gke`).
    #[cfg(feature = "gke")]
    #[error(transparent)]
    Gke(Box<kong_switch_gke::Error>),
    /// Writing to stdout failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// A usage error with its message.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// The exit code this failure maps to (the table is in [`crate::exit`]).
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::NotFound(_) => Exit::Kong,
            CliError::Admin(e) => Exit::of_admin_error(e),
            CliError::Switch(e) => Exit::of_switch_error(e),
            CliError::State(e) => Exit::of_state_error(e),
            CliError::Output(_) => Exit::Internal,
            #[cfg(feature = "gke")]
            CliError::Gke(e) => Exit::of_gke_error(e),
        }
    }
}

impl From<switch::Error> for CliError {
    /// A request the engine refuses as invalid becomes a usage error naming the flag.
    fn from(error: switch::Error) -> Self {
        match error {
            switch::Error::InvalidRequest { field, message } => {
                CliError::Usage(format!("invalid {}: {message}", flag_of(field)))
            }
            other => CliError::Switch(other),
        }
    }
}

/// The command-line spelling of a request field: `min_healthy` is `--min-healthy`; the
/// target is the positional argument.
pub fn flag_of(field: &str) -> String {
    match field {
        "target" => "SERVICE (or TARGET) argument".to_owned(),
        other => format!("--{}", other.replace('_', "-")),
    }
}
