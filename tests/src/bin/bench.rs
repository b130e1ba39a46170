//! The benchmark harness: kong-switch against a hand-written `curl` (or a minimal Rust
//! client), side by side, in one run, as ratios.
//!
//! ```text
//! cargo run --release -p kong-switch-tests --bin bench [-- --quick] [-- --no-append]
//! ```
//!
//! Without `KONG_ADMIN_URL` it runs against Kong stand-ins on loopback; with
//! `KONG_ADMIN_URL` and `KONG_PROXY_URL` against that Kong. It prints the table and appends it
//! with date, commit and machine summary to `BENCHMARKS.md` (see its header for each row).

#[path = "../bench/mod.rs"]
mod bench;

fn main() -> std::process::ExitCode {
    bench::main()
}
