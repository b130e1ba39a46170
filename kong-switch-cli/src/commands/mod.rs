//! One module per subcommand.

pub mod history;
pub mod ping;
pub mod rollback;
pub mod status;
pub mod switch;
