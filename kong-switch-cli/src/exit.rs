//! The documented exit codes (README "Exit codes").
//!
//! The numbers shared with the switch engine come from `kong_switch_core::switch::exit_code`;
//! the CLI adds the two that only it can tell: internal failures (1) and an unreachable
//! Kong (10).

use std::process::ExitCode;

use kong_switch_core::switch::{Outcome, exit_code};

/// Why the process ends; each maps to one documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, or nothing to do (no-op, dry run).
    Ok,
    /// 1: an unexpected failure (a bug, or a local I/O error such as the state log).
    Internal,
    /// 2: bad command line or unusable input (URL, token file, certificate file).
    Usage,
    /// 3: a pre-flight gate refused the switch; Kong unchanged.
    GateRefused,
    /// 4: the switch failed after writing and was rolled back; Kong is on the old side.
    RolledBack,
    /// 5: Kong answered with an error (or something that is not the Admin API).
    Kong,
    /// 6: another switch holds the lock on this target.
    Locked,
    /// 7: verification failed and rollback was disabled; Kong is on the new side.
    VerificationFailed,
    /// 8: interrupted (Ctrl-C / SIGTERM); rolled back to a consistent side.
    Interrupted,
    /// 9: Kong and the state log disagree, or Kong was left between sides: needs attention.
    Drift,
    /// 10: Kong could not be reached (connection refused, DNS, TLS, timeout).
    Unreachable,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => exit_code::OK,
            Exit::Internal => 1,
            Exit::Usage => exit_code::USAGE,
            Exit::GateRefused => exit_code::REFUSED,
            Exit::RolledBack => exit_code::ROLLED_BACK,
            Exit::Kong => exit_code::API_ERROR,
            Exit::Locked => exit_code::LOCKED,
            Exit::VerificationFailed => exit_code::VERIFICATION_FAILED,
            Exit::Interrupted => exit_code::INTERRUPTED,
            Exit::Drift => exit_code::NEEDS_ATTENTION,
            Exit::Unreachable => 10,
        }
    }
}

impl From<Outcome> for Exit {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Completed | Outcome::NoOp | Outcome::DryRun => Exit::Ok,
            Outcome::Refused => Exit::GateRefused,
            Outcome::RolledBack => Exit::RolledBack,
            Outcome::VerificationFailed => Exit::VerificationFailed,
            Outcome::Interrupted => Exit::Interrupted,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_maps_to_the_engines_code() {
        for outcome in [
            Outcome::Completed,
            Outcome::NoOp,
            Outcome::DryRun,
            Outcome::Refused,
            Outcome::RolledBack,
            Outcome::VerificationFailed,
            Outcome::Interrupted,
        ] {
            assert_eq!(
                Exit::from(outcome).code(),
                outcome.exit_code(),
                "{outcome:?}"
            );
        }
    }
}
