//! Runs the real `kong-switch` binary, building it first when it is not there yet.
//!
//! `cargo test --workspace` builds the binary before any test runs. `cargo test -p
//! kong-switch-tests` and `cargo run -p kong-switch-tests --bin demo` do not, so the first
//! call builds it with the same cargo and profile when it is missing or older than its
//! sources.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The binary's file name on this platform.
const BIN: &str = if cfg!(windows) {
    "kong-switch.exe"
} else {
    "kong-switch"
};

/// Path of the `kong-switch` binary of this build profile, built if missing.
///
/// # Panics
/// If the binary is missing and `cargo build` fails: tests cannot run without it.
pub fn kong_switch_bin() -> &'static Path {
    static BIN_PATH: OnceLock<PathBuf> = OnceLock::new();
    BIN_PATH.get_or_init(|| {
        let profile_dir = profile_dir();
        let path = profile_dir.join(BIN);
        if is_stale(&path) {
            build(&profile_dir);
        }
        path
    })
}

/// Whether `binary` is missing or older than a source file of the crates it is built from,
/// so a run of this package alone never tests an outdated `kong-switch`.
fn is_stale(binary: &Path) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace");
    ["kong-switch-cli", "kong-switch-core", "kong-switch-gke"]
        .iter()
        .any(|krate| newer_than(&workspace.join(krate).join("src"), built))
}

fn newer_than(dir: &Path, time: std::time::SystemTime) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            newer_than(&path, time)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m > time)
        }
    })
}

/// `target/<profile>`: the directory holding this executable, or its parent for test
/// executables under `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the current executable has a path");
    let dir = exe.parent().expect("the executable is in a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

fn build(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace).args([
        "build",
        "--quiet",
        "-p",
        "kong-switch-cli",
        "--bin",
        "kong-switch",
    ]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    eprintln!("building kong-switch ({})…", profile_dir.display());
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "cargo build of kong-switch failed");
}

/// One finished `kong-switch` run.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as JSON (for `--output json`).
    ///
    /// # Panics
    /// If stdout is not JSON; the message shows both streams.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e})\nstdout:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A `kong-switch` invocation against one Admin API, with its own state directory.
#[derive(Debug, Clone)]
pub struct KongSwitch {
    admin_url: String,
    state_dir: PathBuf,
    actor: String,
}

impl KongSwitch {
    /// Runs against `admin_url`, logging to `state_dir`, as actor `e2e`.
    pub fn new(admin_url: impl Into<String>, state_dir: impl Into<PathBuf>) -> KongSwitch {
        KongSwitch {
            admin_url: admin_url.into(),
            state_dir: state_dir.into(),
            actor: "e2e".to_owned(),
        }
    }

    /// Records runs as `actor` (`KONG_SWITCH_ACTOR`).
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> KongSwitch {
        self.actor = actor.into();
        self
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// A command with `--admin-url` and `--state` set and the environment cleared of
    /// variables that would change them.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kong_switch_bin());
        cmd.arg("--admin-url")
            .arg(&self.admin_url)
            .arg("--state")
            .arg(&self.state_dir)
            .args(args)
            .env_remove("KONG_ADMIN_URL")
            .env_remove("KONG_ADMIN_TOKEN")
            .env_remove("KONG_SWITCH_STATE")
            .env("KONG_SWITCH_ACTOR", &self.actor);
        cmd
    }

    /// Runs to completion (blocking; call from `spawn_blocking` in async tests, or use
    /// [`KongSwitch::run_async`]).
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args)
            .output()
            .expect("kong-switch runs")
            .into()
    }

    /// Runs to completion without blocking the async runtime.
    pub async fn run_async(&self, args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::from(self.command(args));
        cmd.output().await.expect("kong-switch runs").into()
    }
}
