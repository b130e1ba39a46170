//! Where the state log lives.

use std::path::PathBuf;

use kong_switch_core::state::FileLog;

use crate::cli::GlobalArgs;
use crate::error::CliError;

/// Opens the embedded file log: `--state` (or `KONG_SWITCH_STATE`), else the user's state
/// directory (`$XDG_STATE_HOME/kong-switch`, `~/.local/state/kong-switch`; the local data
/// directory on systems without a state directory).
pub fn open_log(args: &GlobalArgs) -> Result<FileLog, CliError> {
    let dir = match &args.state {
        Some(dir) => dir.clone(),
        None => default_dir().ok_or_else(|| {
            CliError::usage(
                "cannot find a state directory for this user (no HOME?); pass --state DIR",
            )
        })?,
    };
    FileLog::open(&dir).map_err(|e| {
        CliError::usage(format!(
            "--state {}: cannot open the state log ({e}); pass a writable directory",
            dir.display()
        ))
    })
}

fn default_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("kong-switch"))
}

/// Who is switching: `--actor`, else `$USER@host`.
pub fn actor(explicit: Option<&str>) -> String {
    if let Some(actor) = explicit.filter(|a| !a.trim().is_empty()) {
        return actor.trim().to_owned();
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{user}@{host}")
}
