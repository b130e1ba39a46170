//! One module per subcommand.

#[cfg(feature = "gke")]
pub mod deploy_green;
pub mod history;
#[cfg(feature = "gke")]
pub mod k8s_switch;
pub mod ping;
pub mod resolve;
#[cfg(feature = "gke")]
pub mod retire_blue;
pub mod rollback;
pub mod status;
pub mod switch;
