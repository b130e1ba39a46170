//! `kong-standin`: runs the Kong stand-in (and optionally test backends) until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kong_switch_tests::backend::Backend;
use kong_switch_tests::standin::{HybridKnobs, Profile, StandIn};

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
    /// Hybrid mode: node 1 becomes a control plane (Admin API only) pushing to this many data
    /// planes (proxy at --proxy-listen, Status API at --status-listen, + 100 per data plane).
    #[arg(long, default_value_t = 0)]
    data_planes: usize,
    /// Status API address of data plane 1 (hybrid mode).
    #[arg(long, default_value = "127.0.0.1:8100")]
    status_listen: SocketAddr,
    /// Hybrid: delay of a push after a write on a quiet control plane (Kong: ~0.1s).
    #[arg(long, value_parser = humantime::parse_duration)]
    push_delay: Option<Duration>,
    /// Hybrid: delay until the control plane lists a data plane's new hash (Kong: ~0.8s).
    #[arg(long, value_parser = humantime::parse_duration)]
    report_lag: Option<Duration>,
    /// Hybrid: data-plane ping interval (Kong: 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    ping_interval: Option<Duration>,
    /// Hybrid: lag of a data plane's proxy behind its hash (Kong 3.x: ~0.7s, 2.8: 0).
    #[arg(long, value_parser = humantime::parse_duration)]
    proxy_lag: Option<Duration>,
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
    if args.data_planes > 0 {
        let mut hybrid = HybridKnobs::kong(args.profile.version());
        hybrid.push_delay = args.push_delay.unwrap_or(hybrid.push_delay);
        hybrid.report_lag = args.report_lag.unwrap_or(hybrid.report_lag);
        hybrid.ping_interval = args.ping_interval.unwrap_or(hybrid.ping_interval);
        hybrid.proxy_lag = args.proxy_lag.unwrap_or(hybrid.proxy_lag);
        builder = builder
            .data_planes(args.data_planes)
            .status_listen(args.status_listen)
            .hybrid_knobs(hybrid);
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
    if kong.is_hybrid() {
        println!("control plane admin {}", kong.admin_url());
        for dp in kong.data_planes() {
            println!(
                "data plane {} proxy {} status {} id {}",
                dp.index() + 1,
                dp.proxy_url(),
                dp.status_url(),
                dp.id()
            );
        }
    }
    for node in kong.nodes().iter().filter(|_| !kong.is_hybrid()) {
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
