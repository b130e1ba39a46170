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
    Switch(#[from] switch::Error),
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

    /// The exit code this failure maps to.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::NotFound(_) => Exit::Kong,
            CliError::Admin(e) => admin_exit(e),
            CliError::Switch(e) => switch_exit(e),
            CliError::State(e) if e.is_lease_held() => Exit::Locked,
            CliError::State(_) | CliError::Output(_) => Exit::Internal,
            #[cfg(feature = "gke")]
            CliError::Gke(e) => crate::gke::exit_of(e),
        }
    }
}

/// Exit code of an Admin API failure: unreachable (10), bad input (2) or Kong's error (5).
fn admin_exit(error: &admin::Error) -> Exit {
    match error {
        admin::Error::InvalidConfig { .. } => Exit::Usage,
        admin::Error::Connect { .. } | admin::Error::Timeout { .. } => Exit::Unreachable,
        _ => Exit::Kong,
    }
}

fn switch_exit(error: &switch::Error) -> Exit {
    match error {
        switch::Error::Admin(e) => admin_exit(e),
        switch::Error::Locked { .. } | switch::Error::ConfigChanged { .. } => Exit::Locked,
        switch::Error::State(e) if e.is_lease_held() => Exit::Locked,
        switch::Error::InvalidRequest { .. } => Exit::Usage,
        switch::Error::Inconsistent { .. }
        | switch::Error::UnreadableIntent { .. }
        | switch::Error::Unrecorded { .. } => Exit::Drift,
        switch::Error::State(_) => Exit::Internal,
        _ => Exit::Kong,
    }
}
