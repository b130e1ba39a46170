//! kong-switch on GKE: the green workload on Kubernetes, the state log in Firestore.
//!
//! - [`FirestoreLog`]: a [`StateLog`](kong_switch_core::state::StateLog) in Cloud Firestore,
//!   selected by `--state firestore://PROJECT[/DATABASE]/COLLECTION`.
//! - [`AnyLog`]: the file store or the Firestore store, chosen at run time.
//! - [`k8s`]: `deploy-green`, `retire-blue`, and the Kubernetes-level switches.
#![warn(missing_docs)]

mod any_log;
mod error;
mod firestore_log;
pub mod k8s;
mod kong;
mod tls;

pub use any_log::{AnyLog, StateLocation};
pub use error::{Error, Result};
pub use firestore_log::{
    EMULATOR_HOST_ENV, FirestoreEndpoint, FirestoreLog, FirestoreUrl, SideState, TargetState,
};
pub use kong::UpstreamReport;
pub use tls::install_crypto_provider;
