//! Errors of the gke crate.

use std::time::Duration;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong deploying on Kubernetes or reaching Firestore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `firestore://` URL that cannot be used: names the part that is wrong.
    #[error("invalid state URL `{url}`: {part}: {message}")]
    InvalidStateUrl {
        /// The URL as given.
        url: String,
        /// The part that is wrong: `scheme`, `project`, `database`, `collection`, `path`.
        part: &'static str,
        /// What is wrong, and the fix.
        message: String,
    },

    /// The state log failed (Firestore or the file store).
    #[error(transparent)]
    State(#[from] kong_switch_core::state::Error),

    /// The Kubernetes configuration (kubeconfig, context, in-cluster) cannot be used.
    #[error("Kubernetes configuration: {message}")]
    KubeConfig {
        /// What is wrong, and the fix.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A Kubernetes API call failed.
    #[error("Kubernetes API: cannot {action}")]
    Kube {
        /// What was being done, e.g. `get Deployment shop/orders-blue`.
        action: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },

    /// A Kubernetes object the command needs does not exist.
    #[error("{kind} {name} not found{hint}")]
    NotFound {
        /// `Deployment`, `Service`, `HTTPRoute`.
        kind: &'static str,
        /// `namespace/name`, or the label selector used.
        name: String,
        /// How to fix it (starts with `: `), or empty.
        hint: String,
    },

    /// The cluster's objects do not fit the command (e.g. the Service port does not match).
    #[error("{0}")]
    Mismatch(String),

    /// The green rollout did not become ready; names the stuck condition.
    #[error("rollout of Deployment {deployment} did not complete: {condition}")]
    RolloutFailed {
        /// `namespace/name` of the Deployment.
        deployment: String,
        /// What is stuck, e.g. `pod orders-green-5d9c7-x2x: ImagePullBackOff (Back-off pulling image "nope:1")`.
        condition: String,
    },

    /// The green rollout was still in progress when the timeout ran out.
    #[error("rollout of Deployment {deployment} timed out after {}: {progress}", humantime::format_duration(*after))]
    RolloutTimeout {
        /// `namespace/name` of the Deployment.
        deployment: String,
        /// How long was waited.
        after: Duration,
        /// The last progress seen, e.g. `1 of 3 replicas available`.
        progress: String,
    },

    /// The Kong Admin API failed.
    #[error(transparent)]
    Kong(Box<kong_switch_core::admin::Error>),

    /// A Kong entity the command needs is missing or unusable.
    #[error("{0}")]
    KongSetup(String),

    /// A switch step failed and the steps before it were undone.
    #[error("switch step {step:?} failed and was rolled back: {reason}")]
    RolledBack {
        /// The step that failed.
        step: String,
        /// Why.
        reason: String,
    },

    /// A switch step failed and undoing the steps before it failed too: needs attention.
    #[error("switch step {step:?} failed ({reason}) and the rollback failed too: {rollback}")]
    RollbackFailed {
        /// The step that failed.
        step: String,
        /// Why it failed.
        reason: String,
        /// Why the undo failed.
        rollback: String,
    },

    /// A pre-flight gate refused the switch; nothing was changed.
    #[error("refused: {0}")]
    Refused(String),
}

impl From<kong_switch_core::admin::Error> for Error {
    fn from(err: kong_switch_core::admin::Error) -> Self {
        Error::Kong(Box::new(err))
    }
}

impl Error {
    /// A [`Error::Kube`] for `action`.
    pub(crate) fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }

    /// Whether the Kubernetes API could not be reached (connection refused, DNS, TLS).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Kube {
                source: kube::Error::HyperError(_) | kube::Error::Service(_),
                ..
            }
        )
    }

    /// Whether the error is a held lease in the state log.
    pub fn is_lease_held(&self) -> bool {
        matches!(self, Error::State(e) if e.is_lease_held())
    }
}
