//! The table, the run's header (date, commit, machine), and `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Ctx, Row};

/// `BENCHMARKS.md` at the workspace root.
pub fn default_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(
        || PathBuf::from("BENCHMARKS.md"),
        |w| w.join("BENCHMARKS.md"),
    )
}

/// What a new `BENCHMARKS.md` starts with.
const HEADER: &str = include_str!("benchmarks_header.md");

/// `git rev-parse --short HEAD` (with `-dirty` for local changes), or `unknown`.
fn commit() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("git")
        .current_dir(dir)
        .args(["rev-parse", "--short", "HEAD"])
        .output();
    let Ok(out) = out
        .map_err(drop)
        .and_then(|o| if o.status.success() { Ok(o) } else { Err(()) })
    else {
        return "unknown".into();
    };
    let mut id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dirty = Command::new("git")
        .current_dir(dir)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    if dirty {
        id.push_str("-dirty");
    }
    id
}

/// `2 CPUs (model), 7.8 GiB RAM`.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown".into(),
            |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
        );
    format!(
        "{cpus} CPU(s) ({model}), {mem} RAM, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The table with its run header, as Markdown.
pub fn render(ctx: &Ctx, rows: &[Row], elapsed: Duration) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## {} · {} · {} mode",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        commit(),
        ctx.cfg.mode
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Machine: {}. Kong: {}. Whole run: {:.0} s.",
        machine(),
        if ctx.is_standin() {
            "stand-ins on loopback (in the bench process)"
        } else {
            "real Kong at KONG_ADMIN_URL"
        },
        elapsed.as_secs_f64()
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "| # | measure | value | target | |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.id,
            cell(&r.measure),
            cell(&r.value),
            cell(&r.target),
            r.verdict.mark()
        );
    }
    let details = ctx
        .details
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !details.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "<details><summary>absolute times (noisy; for context only)</summary>"
        );
        let _ = writeln!(s);
        for d in details.iter() {
            let _ = writeln!(s, "- {}", cell(d));
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "</details>");
    }
    s
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Appends `text` to `path`, writing the header first when the file is new or empty.
pub fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let new = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if new {
        f.write_all(HEADER.as_bytes())?;
    }
    write!(f, "\n{text}")?;
    Ok(())
}
