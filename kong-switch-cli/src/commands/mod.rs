//! One module per subcommand.

pub mod ping;
pub mod status;
