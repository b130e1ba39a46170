//! Where the state log lives.

use std::path::PathBuf;

use std::time::Duration;

use kong_switch_core::state::{FileLog, LeasePolicy};

use crate::cli::{GlobalArgs, LeaseArgs};
use crate::error::CliError;

/// The state log: the file log, or with the `gke` feature the file or Firestore log.
#[cfg(feature = "gke")]
pub type Log = kong_switch_gke::AnyLog;
/// The state log: the file log, or with the `gke` feature the file or Firestore log.
#[cfg(not(feature = "gke"))]
pub type Log = FileLog;

/// Opens the state log `--state` names: with the `gke` feature, `firestore://…` is the
/// Firestore log; anything else is the directory of the file log (see [`open_file_log`]).
pub async fn open_log(args: &GlobalArgs) -> Result<Log, CliError> {
    #[cfg(feature = "gke")]
    if let Some(log) = crate::gke::open_firestore(args).await? {
        return Ok(log);
    }
    let log = open_file_log(args)?;
    #[cfg(feature = "gke")]
    let log = kong_switch_gke::AnyLog::File(log);
    Ok(log)
}

/// Opens the embedded file log: `--state` (or `KONG_SWITCH_STATE`), else the user's state
/// directory (`$XDG_STATE_HOME/kong-switch`, `~/.local/state/kong-switch`; the local data
/// directory on systems without a state directory).
pub fn open_file_log(args: &GlobalArgs) -> Result<FileLog, CliError> {
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
    format!("{user}@{}", host())
}

/// This machine's name: `/etc/hostname`, else `$HOSTNAME`, else `localhost`.
pub fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// How this run holds its lease (`--lease-renew-every`, `--lease-expiry`, `--break-lease`),
/// checked: renewals must come well inside the expiry, and the expiry within `--lease-ttl`.
pub fn lease_policy(args: &LeaseArgs, lease_ttl: Duration) -> Result<LeasePolicy, CliError> {
    let policy = LeasePolicy {
        renew_every: args.lease_renew_every,
        expiry: args.lease_expiry,
        host: Some(host()),
        break_lease: args.break_lease,
    };
    policy.validate().map_err(CliError::usage)?;
    if policy.expiry > lease_ttl {
        return Err(CliError::usage(format!(
            "--lease-expiry ({}) must not exceed --lease-ttl ({}): the TTL bounds the whole run",
            humantime::format_duration(policy.expiry),
            humantime::format_duration(lease_ttl)
        )));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(renew: u64, expiry: u64) -> LeaseArgs {
        LeaseArgs {
            lease_renew_every: Duration::from_secs(renew),
            lease_expiry: Duration::from_secs(expiry),
            break_lease: false,
        }
    }

    #[test]
    fn lease_settings_are_checked_naming_the_flag() {
        let ttl = Duration::from_secs(900);
        assert!(lease_policy(&args(10, 30), ttl).is_ok());
        for (renew, expiry, ttl, flag) in [
            (20, 30, 900, "--lease-renew-every"),
            (0, 30, 900, "--lease-renew-every"),
            (10, 60, 30, "--lease-expiry"),
        ] {
            match lease_policy(&args(renew, expiry), Duration::from_secs(ttl)) {
                Err(CliError::Usage(message)) => assert!(message.contains(flag), "{message}"),
                other => panic!("{renew}/{expiry}/{ttl}: expected a usage error, got {other:?}"),
            }
        }
    }
}
