//! The documented exit codes (README "Exit codes"), in one place.

use std::process::ExitCode;

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
            Exit::Ok => 0,
            Exit::Internal => 1,
            Exit::Usage => 2,
            Exit::GateRefused => 3,
            Exit::RolledBack => 4,
            Exit::Kong => 5,
            Exit::Locked => 6,
            Exit::VerificationFailed => 7,
            Exit::Interrupted => 8,
            Exit::Drift => 9,
            Exit::Unreachable => 10,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}
