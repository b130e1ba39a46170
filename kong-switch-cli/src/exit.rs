//! The exit-code table (README "Exit codes"), in one place.
//!
//! The core returns typed errors and outcomes only; this module alone decides which process
//! exit code each of them means: [`Exit::of_outcome`], [`Exit::of_drift`] and the
//! `of_*_error` functions. A unit test checks every variant against the table, and the table
//! against the README.

use std::process::ExitCode;

use kong_switch_core::switch::{DriftState, Outcome};
use kong_switch_core::{admin, state, switch};

/// Why the process ends; each maps to one documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, or nothing to do (no-op, dry run).
    Ok,
    /// 1: an unexpected failure (a bug, or a failure of the state log or of stdout).
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
    /// Every exit, in code order.
    pub const ALL: [Exit; 11] = [
        Exit::Ok,
        Exit::Internal,
        Exit::Usage,
        Exit::GateRefused,
        Exit::RolledBack,
        Exit::Kong,
        Exit::Locked,
        Exit::VerificationFailed,
        Exit::Interrupted,
        Exit::Drift,
        Exit::Unreachable,
    ];

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

    /// What the code means, as the README's "Exit codes" table says it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "done, or nothing to do (already on the requested side, dry run)",
            Exit::Internal => {
                "unexpected failure: a bug, the state log failed (I/O, Firestore), or stdout could not be written"
            }
            Exit::Usage => {
                "bad command line or unusable input (flag values, URL, token file, certificate); nothing was read or written"
            }
            Exit::GateRefused => "a pre-flight gate refused the switch; Kong unchanged",
            Exit::RolledBack => {
                "the switch failed after writing and was rolled back; Kong is on the old side"
            }
            Exit::Kong => {
                "Kong answered with an error or with something that is not the Admin API, broke the connection mid-answer, or the named entity does not exist or does not fit the strategy"
            }
            Exit::Locked => {
                "another run holds the lease on this target (the holder is named), `--break-lease` was refused because the lease is still renewed, or a DB-less node's configuration changed while kong-switch was editing it (nothing overwritten; what the run wrote is undone)"
            }
            Exit::VerificationFailed => {
                "verification failed and `--no-rollback` was given; Kong is on the new side"
            }
            Exit::Interrupted => "interrupted (Ctrl-C, SIGTERM); rolled back to a consistent side",
            Exit::Drift => {
                "needs attention (see `status`): Kong and the state log disagree; a run was left unfinished; Kong is between sides (an undo failed, or could not be proven to hold); the last run's intent cannot be read (`resolve`); or Kong reached the outcome but the log could not record it (the message says where Kong is)"
            }
            Exit::Unreachable => {
                "Kong could not be reached (connection refused, DNS, TLS, no answer within --timeout)"
            }
        }
    }

    /// How a switch run ended.
    pub fn of_outcome(outcome: Outcome) -> Exit {
        match outcome {
            Outcome::Completed | Outcome::NoOp | Outcome::DryRun => Exit::Ok,
            Outcome::Refused => Exit::GateRefused,
            Outcome::RolledBack => Exit::RolledBack,
            Outcome::VerificationFailed => Exit::VerificationFailed,
            Outcome::Interrupted => Exit::Interrupted,
        }
    }

    /// What `status` found comparing the log with Kong.
    pub fn of_drift(state: DriftState) -> Exit {
        match state {
            DriftState::NoHistory | DriftState::InSync => Exit::Ok,
            DriftState::Drifted | DriftState::DanglingIntent | DriftState::Unreadable => {
                Exit::Drift
            }
        }
    }

    /// An Admin API failure: unusable client settings (2), Kong unreachable (10), or Kong's
    /// error (5).
    pub fn of_admin_error(error: &admin::Error) -> Exit {
        match error {
            admin::Error::InvalidConfig { .. } => Exit::Usage,
            admin::Error::Connect { .. } | admin::Error::Timeout { .. } => Exit::Unreachable,
            // Every other variant is an answer (or a broken one) from Kong, including
            // variants added later.
            _ => Exit::Kong,
        }
    }

    /// A state-log failure: a held lease (6), a key it cannot store (2), else the store
    /// failed (1).
    pub fn of_state_error(error: &state::Error) -> Exit {
        match error {
            e if e.is_lease_held() => Exit::Locked,
            state::Error::InvalidTarget { .. } => Exit::Usage,
            _ => Exit::Internal,
        }
    }

    /// What stopped the switch engine.
    pub fn of_switch_error(error: &switch::Error) -> Exit {
        match error {
            switch::Error::Admin(e) => Exit::of_admin_error(e),
            switch::Error::State(e) => Exit::of_state_error(e),
            switch::Error::Locked { .. } | switch::Error::ConfigChanged { .. } => Exit::Locked,
            switch::Error::InvalidRequest { .. } => Exit::Usage,
            switch::Error::NotFound { .. } | switch::Error::Unsupported(_) => Exit::Kong,
            switch::Error::Inconsistent { .. }
            | switch::Error::UnreadableIntent { .. }
            | switch::Error::Unrecorded { .. } => Exit::Drift,
            // A variant this table does not know yet is a bug here, not a user error.
            _ => Exit::Internal,
        }
    }

    /// A failure of the Kubernetes / Firestore layer (feature `gke`).
    #[cfg(feature = "gke")]
    pub fn of_gke_error(error: &kong_switch_gke::Error) -> Exit {
        use kong_switch_gke::Error;
        match error {
            Error::InvalidStateUrl { .. }
            | Error::KubeConfig { .. }
            | Error::NotFound { .. }
            | Error::Mismatch(_) => Exit::Usage,
            Error::State(e) => Exit::of_state_error(e),
            Error::Kube { .. } if error.is_unreachable() => Exit::Unreachable,
            Error::Kube { .. } => Exit::Internal,
            Error::RolloutFailed { .. }
            | Error::RolloutTimeout { .. }
            | Error::RolledBack { .. } => Exit::RolledBack,
            Error::RollbackFailed { .. } => Exit::Drift,
            Error::Kong(e) => Exit::of_admin_error(e),
            Error::KongSetup(_) => Exit::Kong,
            Error::Refused(_) => Exit::GateRefused,
            _ => Exit::Internal,
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
    use std::time::Duration;

    use kong_switch_core::admin::Method;

    use super::*;

    /// The README's "Exit codes" table as (code, meaning) rows.
    fn readme_table() -> Vec<(u8, String)> {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## Exit codes\n")
            .nth(1)
            .expect("README has an `## Exit codes` section");
        let section = section.split("\n## ").next().unwrap_or(section);
        section
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
                let code = cells.first()?.trim().parse::<u8>().ok()?;
                Some((code, cells.get(1)?.trim().to_owned()))
            })
            .collect()
    }

    #[test]
    fn the_readme_table_lists_exactly_the_codes_and_meanings_of_the_code() {
        let code_table: Vec<(u8, String)> = Exit::ALL
            .iter()
            .map(|e| (e.code(), e.meaning().to_owned()))
            .collect();
        assert_eq!(readme_table(), code_table);
    }

    #[test]
    fn every_outcome_maps_to_its_documented_code() {
        for (outcome, code) in [
            (Outcome::Completed, 0),
            (Outcome::NoOp, 0),
            (Outcome::DryRun, 0),
            (Outcome::Refused, 3),
            (Outcome::RolledBack, 4),
            (Outcome::VerificationFailed, 7),
            (Outcome::Interrupted, 8),
        ] {
            assert_eq!(Exit::of_outcome(outcome).code(), code, "{outcome:?}");
        }
    }

    #[test]
    fn every_drift_state_maps_to_its_documented_code() {
        for (drift, code) in [
            (DriftState::NoHistory, 0),
            (DriftState::InSync, 0),
            (DriftState::Drifted, 9),
            (DriftState::DanglingIntent, 9),
            (DriftState::Unreadable, 9),
        ] {
            assert_eq!(Exit::of_drift(drift).code(), code, "{drift:?}");
        }
    }

    fn admin_errors() -> Vec<(admin::Error, u8)> {
        let method = Method::Get;
        let path = "/services/orders".to_owned();
        vec![
            (
                admin::Error::InvalidConfig {
                    field: "admin_url",
                    message: "x".into(),
                },
                2,
            ),
            (
                admin::Error::Timeout {
                    method,
                    path: path.clone(),
                    after: Duration::from_secs(1),
                },
                10,
            ),
            (
                admin::Error::UnexpectedBody {
                    method,
                    path: path.clone(),
                    status: 200,
                    content_type: None,
                    snippet: String::new(),
                },
                5,
            ),
            (
                admin::Error::Decode {
                    method,
                    path: path.clone(),
                    json_path: "host".into(),
                    message: "x".into(),
                },
                5,
            ),
            (
                admin::Error::ReadOnly {
                    mode: kong_switch_core::model::Mode::DbLess,
                    request: "PATCH /services/orders".into(),
                },
                5,
            ),
            (
                admin::Error::Encode {
                    method,
                    path,
                    message: "x".into(),
                },
                5,
            ),
        ]
    }

    fn state_errors() -> Vec<(state::Error, u8)> {
        vec![
            (
                state::Error::LeaseHeld {
                    target: "orders".into(),
                    holder: "alice".into(),
                    expires_at: None,
                    renewed_at: None,
                },
                6,
            ),
            (
                state::Error::LeaseRenewing {
                    target: "orders".into(),
                    holder: "alice".into(),
                    renewed_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                    watched_ms: 1500,
                },
                6,
            ),
            (
                state::Error::LeaseLost {
                    target: "orders".into(),
                    reason: "taken over".into(),
                },
                1,
            ),
            (
                state::Error::InvalidTarget {
                    target: String::new(),
                    reason: "the target key is empty",
                },
                2,
            ),
            (
                state::Error::Io {
                    op: "append to",
                    path: "/state/orders.jsonl".into(),
                    source: std::io::Error::other("disk full"),
                },
                1,
            ),
            (
                state::Error::Corrupt {
                    path: "/state/orders.jsonl".into(),
                    line: 3,
                    message: "x".into(),
                },
                1,
            ),
            (
                state::Error::Backend {
                    store: "firestore",
                    message: "unavailable".into(),
                    source: None,
                },
                1,
            ),
        ]
    }

    #[test]
    fn every_admin_error_maps_to_its_documented_code() {
        for (error, code) in admin_errors() {
            assert_eq!(Exit::of_admin_error(&error).code(), code, "{error:?}");
        }
    }

    #[test]
    fn every_state_error_maps_to_its_documented_code() {
        for (error, code) in state_errors() {
            assert_eq!(Exit::of_state_error(&error).code(), code, "{error:?}");
        }
    }

    #[test]
    fn every_switch_error_maps_to_its_documented_code() {
        let mut cases: Vec<(switch::Error, u8)> = vec![
            (
                switch::Error::Locked {
                    target: "orders".into(),
                    holder: "alice".into(),
                    expires_at: None,
                },
                6,
            ),
            (
                switch::Error::NotFound {
                    kind: "service",
                    name: "orders".into(),
                },
                5,
            ),
            (
                switch::Error::InvalidRequest {
                    field: "min_healthy",
                    message: "x".into(),
                },
                2,
            ),
            (switch::Error::Unsupported("no targets".into()), 5),
            (
                switch::Error::ConfigChanged {
                    target: "orders".into(),
                    message: "the configuration changed meanwhile".into(),
                },
                6,
            ),
            (
                switch::Error::Inconsistent {
                    target: "orders".into(),
                    message: "undo failed".into(),
                    remaining: Vec::new(),
                },
                9,
            ),
        ];
        cases.push((
            switch::Error::UnreadableIntent {
                target: "orders".into(),
                run_id: None,
                seq: 3,
                reason: "unknown field `plan.v9`".into(),
            },
            9,
        ));
        cases.push((
            switch::Error::Unrecorded {
                target: "orders".into(),
                kong: "orders routes to orders-green".into(),
                source: Box::new(state::Error::Backend {
                    store: "firestore",
                    message: "unavailable".into(),
                    source: None,
                }),
            },
            9,
        ));
        cases.extend(
            admin_errors()
                .into_iter()
                .map(|(e, code)| (switch::Error::Admin(e), code)),
        );
        // A held lease becomes `Locked`; every other state error is kept as it is.
        cases.extend(
            state_errors()
                .into_iter()
                .map(|(e, code)| (switch::Error::from(e), code)),
        );
        for (error, code) in cases {
            assert_eq!(Exit::of_switch_error(&error).code(), code, "{error:?}");
        }
    }
}
