//! One module per subcommand.

#[cfg(feature = "gke")]
pub mod deploy_green;
pub mod ping;
#[cfg(feature = "gke")]
pub mod retire_blue;
pub mod status;
