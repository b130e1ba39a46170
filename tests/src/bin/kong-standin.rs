//! `kong-standin`: runs the Kong stand-in (and optionally test backends) until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kong_switch_tests::backend::Backend;
use kong_switch_tests::standin::{Profile, StandIn};

/// A stand-in for Kong Gateway's Admin API and proxy, for end-to-end tests.
#[derive(Debug, Parser)]
#[command(name = "kong-standin", version)]
struct Args {
    /// Admin API address of node 1 (node i listens on port + 100·(i-1)).
    #[arg(long, default_value = "127.0.0.1:8001")]
    admin_listen: SocketAddr,
    /// Proxy address of node 1.
    #[arg(long, default_value = "127.0.0.1:8000")]
    proxy_listen: SocketAddr,
    /// Kong to imitate: 2.8, 3.x, dbless (= dbless-3.x) or dbless-2.8.
    #[arg(long, default_value = "3.x")]
    profile: Profile,
    /// Initial configuration, Kong declarative format as JSON.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// 3.x router rebuild period, e.g. `5s`, `200ms` (Kong: 5s).
    #[arg(long, value_parser = humantime::parse_duration)]
    router_delay: Option<Duration>,
    /// 3.x new-upstream balancer delay (default: the router delay).
    #[arg(long, value_parser = humantime::parse_duration)]
    balancer_delay: Option<Duration>,
    /// Propagation delay between nodes (Kong: 5s).
    #[arg(long, value_parser = humantime::parse_duration)]
    db_update_frequency: Option<Duration>,
    /// Number of nodes sharing one configuration store.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Serve the control endpoint here (GET /log, GET /writes, DELETE /log, GET|POST|DELETE
    /// /faults, DELETE /faults/{id}).
    #[arg(long)]
    control_listen: Option<SocketAddr>,
    /// Start a test backend: `COLOR[:VERSION]=ADDR`, e.g. `blue:v1=127.0.0.1:19001`.
    #[arg(long = "backend")]
    backends: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kong-standin: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kong-standin: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut builder = StandIn::builder()
        .profile(args.profile)
        .nodes(args.nodes)
        .admin_listen(args.admin_listen)
        .proxy_listen(args.proxy_listen);
    if let Some(d) = args.router_delay {
        builder = builder.router_delay(d);
    }
    if let Some(d) = args.balancer_delay {
        builder = builder.balancer_delay(d);
    }
    if let Some(d) = args.db_update_frequency {
        builder = builder.db_update_frequency(d);
    }
    if let Some(path) = &args.seed {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let seed = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        builder = builder.seed(seed);
    }
    let mut backends = Vec::new();
    for spec in &args.backends {
        let (name, addr) = spec
            .split_once('=')
            .ok_or_else(|| format!("--backend {spec}: expected COLOR[:VERSION]=ADDR"))?;
        let (color, version) = name.split_once(':').unwrap_or((name, "v1"));
        let addr: SocketAddr = addr.parse().map_err(|e| format!("--backend {spec}: {e}"))?;
        let backend = Backend::start_on(addr, color, version)
            .await
            .map_err(|e| format!("--backend {spec}: {e}"))?;
        println!("backend {color} ({version}) {}", backend.url());
        backends.push(backend);
    }
    let mut kong = builder.start().await.map_err(|e| e.to_string())?;
    let knobs = kong.knobs();
    println!(
        "kong-standin profile {} (router delay {:?}, db_update_frequency {:?})",
        kong.profile(),
        knobs.router_delay,
        knobs.db_update_frequency
    );
    for node in kong.nodes() {
        println!(
            "node {} admin {} proxy {} node_id {}",
            node.index() + 1,
            node.admin_url(),
            node.proxy_url(),
            node.node_id()
        );
    }
    if let Some(addr) = args.control_listen {
        let bound = kong
            .serve_control(addr)
            .await
            .map_err(|e| format!("--control-listen {addr}: {e}"))?;
        println!("control http://{bound}");
    }
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    kong.shutdown().await;
    drop(backends);
    Ok(())
}
