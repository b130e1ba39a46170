//! The benchmark harness behind `cargo run --release -p kong-switch-tests --bin bench`.
//!
//! Every figure is a ratio against a baseline measured in the same run (whole processes
//! against whole processes, alternating A/B), a count, or a memory size: absolute times on
//! shared 2-core machines are noise. The table is printed and appended to `BENCHMARKS.md`.

mod batch;
mod footprint;
mod hybrid;
mod large;
mod overhead;
mod procs;
mod report;
mod setup;
mod stats;
mod zero_loss;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Profile, StandIn};

/// Measures kong-switch against raw Admin API calls (curl, a minimal Rust client) and prints
/// ratios. Without `KONG_ADMIN_URL` it runs against Kong stand-ins on loopback.
#[derive(Debug, Parser)]
#[command(name = "bench")]
pub struct Args {
    /// Fewer iterations (5 pairs, 100 services, 10 switches, 200 targets): proves the harness
    /// works in under 2 minutes; figures are rougher.
    #[arg(long)]
    quick: bool,
    /// The test suite's tiny sizes (debug builds; proves the harness runs).
    #[arg(long, hide = true, conflicts_with = "quick")]
    smoke: bool,
    /// Print the table only; do not append it to BENCHMARKS.md.
    #[arg(long)]
    no_append: bool,
    /// The file the table is appended to (default: BENCHMARKS.md at the workspace root).
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Only these rows (1–6, repeatable); default all.
    #[arg(long = "row", value_name = "N")]
    rows: Vec<u8>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// The minimal Rust client used as a baseline (internal).
    #[command(hide = true)]
    Raw {
        /// Requests in flight.
        #[arg(long, default_value_t = 1)]
        parallelism: usize,
        /// Tab-separated `METHOD URL [BODY]` lines.
        #[arg(long)]
        file: PathBuf,
    },
}

/// Iteration counts and timings of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `full`, `quick` or `smoke`.
    pub mode: &'static str,
    /// Row 1: A/B pairs.
    pub pairs: usize,
    /// Row 1 (3.x): switches including the convergence wait.
    pub convergence_runs: usize,
    /// Row 1 (3.x): the stand-in's router delay (Kong's default 5 s).
    pub router_delay: Duration,
    /// Row 2: services in the batch.
    pub batch_services: usize,
    /// Row 2: services of the small batch (RSS comparison).
    pub batch_small: usize,
    /// Row 2: A/B pairs per parallelism.
    pub batch_reps: usize,
    /// Row 3: upstream switches.
    pub zero_loss_switches: usize,
    /// Row 3: weight shifts.
    pub zero_loss_shifts: usize,
    /// Row 3: requests per second sent.
    pub zero_loss_rate: u32,
    /// Row 3: the rate that must be sustained.
    pub zero_loss_rate_target: u32,
    /// Row 3: quiet period before (and half of it after) the switches.
    pub zero_loss_quiet: Duration,
    /// Row 3: the 3.x stand-in's router delay.
    pub zero_loss_router_delay: Duration,
    /// Row 4: targets of the large upstream.
    pub targets: usize,
    /// Row 4: A/B pairs.
    pub status_reps: usize,
    /// Row 5: `switch` runs measured for RSS.
    pub rss_runs: usize,
    /// Row 5: `--help` / `true` pairs.
    pub help_pairs: usize,
}

impl Config {
    /// The full benchmark (issue 6's sizes).
    pub fn full() -> Config {
        Config {
            mode: "full",
            pairs: 30,
            convergence_runs: 3,
            router_delay: Duration::from_secs(5),
            batch_services: 1000,
            batch_small: 100,
            batch_reps: 5,
            zero_loss_switches: 50,
            zero_loss_shifts: 10,
            zero_loss_rate: 600,
            zero_loss_rate_target: 500,
            zero_loss_quiet: Duration::from_secs(6),
            zero_loss_router_delay: Duration::from_millis(500),
            targets: 2000,
            status_reps: 10,
            rss_runs: 3,
            help_pairs: 30,
        }
    }

    /// `--quick`: fewer iterations, every row.
    pub fn quick() -> Config {
        Config {
            mode: "quick",
            pairs: 5,
            convergence_runs: 1,
            batch_services: 100,
            batch_small: 20,
            batch_reps: 2,
            zero_loss_switches: 10,
            zero_loss_shifts: 2,
            zero_loss_quiet: Duration::from_secs(3),
            targets: 200,
            status_reps: 3,
            rss_runs: 1,
            help_pairs: 5,
            ..Config::full()
        }
    }

    /// The test suite's smoke run: tiny sizes, short delays, low rate (debug builds).
    pub fn smoke() -> Config {
        Config {
            mode: "smoke",
            pairs: 2,
            convergence_runs: 1,
            router_delay: Duration::from_millis(200),
            batch_services: 20,
            batch_small: 5,
            batch_reps: 1,
            zero_loss_switches: 2,
            zero_loss_shifts: 1,
            zero_loss_rate: 50,
            zero_loss_rate_target: 1,
            zero_loss_quiet: Duration::from_secs(1),
            zero_loss_router_delay: Duration::from_millis(100),
            targets: 150,
            status_reps: 1,
            rss_runs: 1,
            help_pairs: 2,
        }
    }
}

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Meets it.
    Met,
    /// Misses it.
    Missed,
    /// No target; read by people.
    Info,
}

impl Verdict {
    /// `Met` when `ok`.
    pub fn met(ok: bool) -> Verdict {
        if ok { Verdict::Met } else { Verdict::Missed }
    }

    /// `Met` when the ratio is known and at most `limit`.
    pub fn at_most(r: Option<f64>, limit: f64) -> Verdict {
        Verdict::met(r.is_some_and(|r| r <= limit))
    }

    /// For the table.
    pub fn mark(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "**MISSED**",
            Verdict::Info => "",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The row number.
    pub id: &'static str,
    /// What is measured (and against what).
    pub measure: String,
    /// The figure.
    pub value: String,
    /// The target.
    pub target: String,
    /// Verdict.
    pub verdict: Verdict,
}

impl Row {
    /// A row.
    pub fn new(
        id: &'static str,
        measure: String,
        value: String,
        target: impl Into<String>,
        verdict: Verdict,
    ) -> Row {
        Row {
            id,
            measure,
            value,
            target: target.into(),
            verdict,
        }
    }
}

/// What every section shares.
#[derive(Debug)]
pub struct Ctx {
    /// Sizes and timings.
    pub cfg: Config,
    real_kong: bool,
    prefix: String,
    details: std::sync::Mutex<Vec<String>>,
}

impl Ctx {
    /// A context; entity names get a random prefix on a real Kong.
    pub fn new(cfg: Config) -> Ctx {
        let real_kong = std::env::var_os("KONG_ADMIN_URL").is_some();
        Ctx {
            cfg,
            real_kong,
            prefix: if real_kong {
                Env::unique("ksb")
            } else {
                "b".into()
            },
            details: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The environment of one section: a fresh stand-in of `profile` (3.x: with
    /// `router_delay`), or the real Kong.
    pub async fn env(&self, profile: Profile, router_delay: Duration) -> Env {
        let mut b = StandIn::builder().profile(profile);
        if profile == Profile::V3 {
            b = b.router_delay(router_delay);
        }
        Env::start_with(b).await
    }

    /// Whether the sections run on stand-ins.
    pub fn is_standin(&self) -> bool {
        !self.real_kong
    }

    /// An entity name for this run.
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    /// `stand-in 2.8 (…)`, or `real Kong`.
    pub fn profile_label(&self, profile: Profile, note: &str) -> String {
        if self.real_kong {
            "real Kong at KONG_ADMIN_URL".into()
        } else {
            format!("stand-in {profile} profile, {note}")
        }
    }

    /// A line of detail printed under the table (absolute times and the like).
    pub fn detail(&self, line: String) {
        eprintln!("  {line}");
        self.details
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    }
}

/// Runs the selected rows; a section that fails gives a MISSED row saying why.
pub async fn run_all(ctx: &Ctx, only: &[u8]) -> Vec<Row> {
    let mut rows = Vec::new();
    let want = |n: u8| only.is_empty() || only.contains(&n);
    macro_rules! section {
        ($n:expr, $id:expr, $name:expr, $f:path) => {
            if want($n) {
                let started = Instant::now();
                eprintln!("row {}: {}…", $id, $name);
                match $f(ctx).await {
                    Ok(r) => rows.extend(r),
                    Err(e) => rows.push(Row::new(
                        $id,
                        format!("{} (section failed)", $name),
                        e,
                        "",
                        Verdict::Missed,
                    )),
                }
                eprintln!("  ({:.0} s)", started.elapsed().as_secs_f64());
            }
        };
    }
    section!(1, "1", "switch overhead", overhead::run);
    section!(2, "2", "batch", batch::run);
    section!(3, "3", "zero loss", zero_loss::run);
    section!(4, "4", "large upstream", large::run);
    section!(5, "5", "footprint", footprint::run);
    section!(6, "6", "hybrid convergence", hybrid::run);
    rows
}

/// The `bench` binary.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Sub::Raw { parallelism, file }) = &args.command {
        return match procs::raw_main(file, *parallelism) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("raw client: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let cfg = if args.smoke {
        Config::smoke()
    } else if args.quick {
        Config::quick()
    } else {
        Config::full()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let ctx = Ctx::new(cfg);
    // Bring the binary up to date first (`cargo run --bin bench` does not rebuild it), so
    // no section measures a stale binary or includes a build.
    procs::build_kong_switch();
    let bin = kong_switch_tests::cli::kong_switch_bin();
    if procs::curl().is_none() {
        eprintln!("note: curl is not installed; row 1's baseline is the minimal Rust client");
    }
    if procs::rss_method() == procs::RssMethod::Polled {
        eprintln!(
            "note: GNU time (/usr/bin/time) is missing; peak RSS is polled from /proc (apt-get install time)"
        );
    }
    eprintln!(
        "bench ({} mode), kong-switch at {}",
        ctx.cfg.mode,
        bin.display()
    );
    let rows = runtime.block_on(run_all(&ctx, &args.rows));
    let elapsed = started.elapsed();
    let text = report::render(&ctx, &rows, elapsed);
    println!("{text}");
    if !args.no_append {
        let path = args.output.clone().unwrap_or_else(report::default_path);
        match report::append(&path, &text) {
            Ok(()) => eprintln!("appended to {}", path.display()),
            Err(e) => {
                eprintln!("cannot append to {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the harness still works (every row is produced); its figures are not asserted.
    #[test]
    fn smoke_run_produces_every_row() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let ctx = Ctx::new(Config::smoke());
        let rows = runtime.block_on(run_all(&ctx, &[]));
        let text = report::render(&ctx, &rows, Duration::ZERO);
        println!("{text}");
        let failed: Vec<&Row> = rows
            .iter()
            .filter(|r| r.measure.ends_with("(section failed)"))
            .collect();
        assert!(failed.is_empty(), "sections failed: {failed:#?}");
        for id in ["1", "2", "3", "4", "5", "6"] {
            assert!(rows.iter().any(|r| r.id == id), "no row {id}");
        }
    }
}
