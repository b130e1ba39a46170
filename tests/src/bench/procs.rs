//! Running whole processes: wall time, peak RSS, and the minimal raw HTTP client.
//!
//! Peak RSS is read by GNU time (`/usr/bin/time -f %M`, the kernel's `ru_maxrss` of the child)
//! when it is installed; otherwise by polling `VmHWM` in `/proc/<pid>/status` every
//! millisecond while the child runs (the last value read before it exits; a process living
//! less than a millisecond may be missed, and the figure is labelled "polled").

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::StreamExt;

/// One finished process.
#[derive(Debug)]
pub struct Timed {
    /// Wall time from spawn to reaped exit.
    pub wall: Duration,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Timed {
    /// An error describing a failed run, with its stderr.
    pub fn check(self, what: &str) -> Result<Timed, String> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(format!(
                "{what} exited {:?}: {}{}",
                self.status.code(),
                self.stderr.trim(),
                if self.stderr.trim().is_empty() {
                    self.stdout.chars().take(400).collect::<String>()
                } else {
                    String::new()
                }
            ))
        }
    }
}

/// Runs `cmd` to completion on a blocking thread (so the in-process stand-in keeps its
/// runtime workers) and measures its wall time.
pub async fn timed(mut cmd: Command) -> Result<Timed, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    tokio::task::spawn_blocking(move || {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let wall = start.elapsed();
        Ok(Timed {
            wall,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    })
    .await
    .map_err(|e| format!("runner thread failed: {e}"))?
}

/// How peak RSS was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RssMethod {
    /// GNU time's `%M`.
    GnuTime,
    /// Polling `/proc/<pid>/status` `VmHWM`.
    Polled,
}

impl RssMethod {
    /// Short label for the table.
    pub fn label(self) -> &'static str {
        match self {
            RssMethod::GnuTime => "GNU time %M",
            RssMethod::Polled => "polled VmHWM (GNU time missing)",
        }
    }
}

/// `/usr/bin/time` if it is GNU time.
fn gnu_time() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = PathBuf::from("/usr/bin/time");
            let out = Command::new(&path).arg("--version").output().ok()?;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            text.contains("GNU").then_some(path)
        })
        .as_deref()
}

/// The method [`peak_rss`] will use.
pub fn rss_method() -> RssMethod {
    if gnu_time().is_some() {
        RssMethod::GnuTime
    } else {
        RssMethod::Polled
    }
}

/// Runs `cmd` to completion and returns it with its peak RSS in KiB.
pub async fn peak_rss(cmd: Command) -> Result<(Timed, u64), String> {
    match gnu_time() {
        Some(time) => {
            let out = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
            let mut wrapped = Command::new(time);
            wrapped
                .arg("-f")
                .arg("%M")
                .arg("-o")
                .arg(out.path())
                .arg(cmd.get_program())
                .args(cmd.get_args());
            copy_env(&cmd, &mut wrapped);
            let run = timed(wrapped).await?;
            let text = std::fs::read_to_string(out.path()).map_err(|e| e.to_string())?;
            let kib = text
                .lines()
                .rev()
                .find_map(|l| l.trim().parse::<u64>().ok())
                .ok_or_else(|| format!("GNU time wrote no %M figure: {text:?}"))?;
            Ok((run, kib))
        }
        None => polled(cmd).await,
    }
}

fn copy_env(from: &Command, to: &mut Command) {
    if let Some(dir) = from.get_current_dir() {
        to.current_dir(dir);
    }
    for (k, v) in from.get_envs() {
        match v {
            Some(v) => to.env(k, v),
            None => to.env_remove(k),
        };
    }
}

async fn polled(mut cmd: Command) -> Result<(Timed, u64), String> {
    tokio::task::spawn_blocking(move || {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let status_path = format!("/proc/{}/status", child.id());
        let mut hwm = 0;
        // Drain the pipes on threads so a chatty child cannot block.
        let mut so = child.stdout.take();
        let mut se = child.stderr.take();
        let t1 = std::thread::spawn(move || read_all(so.as_mut()));
        let t2 = std::thread::spawn(move || read_all(se.as_mut()));
        let status = loop {
            if let Ok(text) = std::fs::read_to_string(&status_path)
                && let Some(kib) = vm_hwm(&text)
            {
                hwm = hwm.max(kib);
            }
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let wall = start.elapsed();
        Ok((
            Timed {
                wall,
                status,
                stdout: t1.join().unwrap_or_default(),
                stderr: t2.join().unwrap_or_default(),
            },
            hwm,
        ))
    })
    .await
    .map_err(|e| e.to_string())?
}

fn read_all(r: Option<&mut impl std::io::Read>) -> String {
    let mut s = String::new();
    if let Some(r) = r {
        let _ = r.read_to_string(&mut s);
    }
    s
}

/// `VmHWM` of a `/proc/<pid>/status` text, in KiB.
pub fn vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `/usr/bin/curl` (or `curl` on `PATH`), if installed.
pub fn curl() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/curl");
    if fixed.exists() {
        return Some(fixed);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("curl"))
        .find(|p| p.exists())
}

/// The `bench` executable itself (for the `raw` client), built when missing (a test run).
pub fn bench_exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = std::env::current_exe().unwrap_or_default();
        if exe.file_stem().is_some_and(|s| s == "bench") {
            return exe;
        }
        // A test executable under target/<profile>/deps: use (or build) target/<profile>/bench.
        let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        let profile = if dir.file_name().is_some_and(|n| n == "deps") {
            dir.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            dir
        };
        let path = profile.join("bench");
        if !path.exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
            let mut cmd = Command::new(cargo);
            cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
                "build",
                "--quiet",
                "-p",
                "kong-switch-tests",
                "--bin",
                "bench",
            ]);
            if profile.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let _ = cmd.status();
        }
        path
    })
    .clone()
}

/// `cargo build -p kong-switch-cli --bin kong-switch` for this executable's profile (a no-op
/// when up to date); on failure the existing binary, if any, is used and a note printed.
pub fn build_kong_switch() {
    let exe = std::env::current_exe().unwrap_or_default();
    let release = exe
        .ancestors()
        .any(|d| d.file_name().is_some_and(|n| n == "release"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "build",
        "--quiet",
        "-p",
        "kong-switch-cli",
        "--bin",
        "kong-switch",
    ]);
    if release {
        cmd.arg("--release");
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        other => eprintln!(
            "note: could not rebuild kong-switch ({other:?}); measuring the existing binary"
        ),
    }
}

/// One request for the raw client: `METHOD URL [BODY]`, tab-separated, one per line.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// `GET`, `PATCH`, …
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// JSON body, if any.
    pub body: Option<String>,
}

/// Writes `requests` to a temporary file for `bench raw --file`.
pub fn write_requests(requests: &[RawRequest]) -> Result<tempfile::NamedTempFile, String> {
    let mut f = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    for r in requests {
        let line = match &r.body {
            Some(b) => format!("{}\t{}\t{}\n", r.method, r.url, b),
            None => format!("{}\t{}\n", r.method, r.url),
        };
        f.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
    }
    f.flush().map_err(|e| e.to_string())?;
    Ok(f)
}

/// The command running the raw client over `file` at `parallelism`.
pub fn raw_command(file: &Path, parallelism: usize) -> Command {
    let mut cmd = Command::new(bench_exe());
    cmd.arg("raw")
        .arg("--parallelism")
        .arg(parallelism.to_string())
        .arg("--file")
        .arg(file);
    cmd
}

/// `bench raw`: the minimal Rust client. Sends every request of `file` with at most
/// `parallelism` in flight (in file order when 1), on a current-thread runtime with one
/// connection pool; fails when any answer is not 2xx.
pub fn raw_main(file: &Path, parallelism: usize) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let requests: Vec<RawRequest> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '\t');
            RawRequest {
                method: parts.next().unwrap_or("GET").to_owned(),
                url: parts.next().unwrap_or_default().to_owned(),
                body: parts.next().map(str::to_owned),
            }
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let client = reqwest::Client::new();
        let failures: Vec<String> = futures::stream::iter(requests)
            .map(|r| {
                let client = &client;
                async move {
                    let method = reqwest::Method::from_bytes(r.method.as_bytes())
                        .unwrap_or(reqwest::Method::GET);
                    let mut req = client.request(method, &r.url);
                    if let Some(body) = r.body {
                        req = req.header("content-type", "application/json").body(body);
                    }
                    match req.send().await {
                        Ok(resp) if resp.status().is_success() => {
                            // Read the body like any client would.
                            resp.bytes().await.err().map(|e| format!("{}: {e}", r.url))
                        }
                        Ok(resp) => Some(format!("{} {}: HTTP {}", r.method, r.url, resp.status())),
                        Err(e) => Some(format!("{} {}: {e}", r.method, r.url)),
                    }
                }
            })
            .buffer_unordered(parallelism.max(1))
            .filter_map(|f| async move { f })
            .collect()
            .await;
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(format!(
                "{} request(s) failed; first: {first}",
                failures.len()
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status = "Name:\tx\nVmPeak:\t  10000 kB\nVmHWM:\t    4321 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(vm_hwm(status), Some(4321));
        assert_eq!(vm_hwm("Name: x\n"), None);
    }
}
