//! The quick start: a complete, gated blue→green switch with verification, end to end.
//!
//! ```text
//! cargo run -p kong-switch-tests --bin demo [-- --profile 2.8|3.x|dbless]
//! ```
//!
//! Without `KONG_ADMIN_URL` it starts a Kong stand-in (Kong's default timings) and two local
//! backends, `blue` (v1) and `green` (v2); with `KONG_ADMIN_URL` (and `KONG_PROXY_URL`) it uses
//! that Kong, which must reach the backends on `KONG_BACKEND_HOST` (default `127.0.0.1`). It
//! creates or resets the upstreams `demo-blue` and `demo-green` and the service and route
//! `demo`, then runs the real `kong-switch` binary: `status`, a dry run, the gated switch with
//! verification through the proxy, `status` and `history`, and finally counts which side
//! answers 100 requests through the proxy.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kong_switch_tests::backend::Backend;
use kong_switch_tests::cli::KongSwitch;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Profile, StandIn};
use serde_json::{Value, json};

/// Runs a complete blue→green switch against a Kong stand-in (or `KONG_ADMIN_URL`).
#[derive(Debug, Parser)]
struct Args {
    /// Stand-in profile when `KONG_ADMIN_URL` is not set: 2.8, 3.x, dbless.
    #[arg(long, default_value = "3.x")]
    profile: Profile,
}

const SERVICE: &str = "demo";
const BLUE: &str = "demo-blue";
const GREEN: &str = "demo-green";

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args.profile).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("demo failed: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(profile: Profile) -> Result<ExitCode, String> {
    let env = Env::start_with(StandIn::builder().profile(profile)).await;
    match env.standin() {
        Some(standin) => println!(
            "Kong stand-in ({} profile, Kong's default timings): admin {}  proxy {}",
            standin.profile(),
            env.admin_url(),
            env.proxy_url()
        ),
        None => println!(
            "Kong at {} (proxy {}); backends reachable as {}",
            env.admin_url(),
            env.proxy_url(),
            env.backend_host()
        ),
    }
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    println!(
        "backends: blue v1 at {}  green v2 at {}",
        blue.url(),
        green.url()
    );

    seed(&env, &blue, &green).await?;
    println!(
        "seeded: service {SERVICE} (route /{SERVICE}) → upstream {BLUE}; upstream {GREEN} beside it"
    );
    wait_healthy(&env, &[BLUE, GREEN]).await?;
    println!("both upstreams report HEALTHY in Kong's active health checks\n");

    let state = tempfile::tempdir().map_err(|e| format!("cannot make a state dir: {e}"))?;
    let cli = KongSwitch::new(env.admin_url(), state.path()).with_actor("demo");
    let verify_url = format!("{}/{SERVICE}", env.proxy_url());

    show(&cli, &["status", SERVICE]).await;
    show(&cli, &["switch", SERVICE, "--dry-run"]).await;
    let switched = show(
        &cli,
        &[
            "switch",
            SERVICE,
            "--min-healthy",
            "1.0",
            "--verify",
            &verify_url,
            "--expect-header",
            "X-Color=green",
            "--environment",
            "demo",
            "--app-version",
            "v2",
            "--build-id",
            "demo-1",
        ],
    )
    .await;
    show(&cli, &["status", SERVICE]).await;
    show(&cli, &["history", SERVICE]).await;

    let (blue_count, green_count, other) = sample(&env, &verify_url, 100).await;
    println!(
        "\n100 requests through the proxy after the switch: {green_count} green, {blue_count} blue, {other} failed"
    );
    println!(
        "backend request counters: blue {} (health checks included), green {}",
        blue.requests(),
        green.requests()
    );
    if switched == Some(0) && green_count == 100 {
        println!("\nthe switch is complete: all traffic goes to green (v2).");
        println!("to go back: kong-switch rollback {SERVICE}");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nthe switch did not complete (kong-switch exited {switched:?})");
        Ok(ExitCode::FAILURE)
    }
}

/// Prints the command, runs it with its output shown, returns its exit code.
async fn show(cli: &KongSwitch, args: &[&str]) -> Option<i32> {
    println!("$ kong-switch {}", args.join(" "));
    let mut cmd = tokio::process::Command::from(cli.command(args));
    let status = cmd.status().await.ok()?;
    println!("(exit {})\n", status.code().unwrap_or(-1));
    status.code()
}

fn healthchecks() -> Value {
    json!({
        "active": {
            "http_path": "/health",
            "timeout": 1,
            "healthy": {"interval": 1, "successes": 1},
            "unhealthy": {"interval": 1, "http_failures": 1, "tcp_failures": 1, "timeouts": 1}
        }
    })
}

/// Creates (or resets) the demo entities: over the entity endpoints on a database-backed
/// Kong, as one `POST /config` on a DB-less one.
async fn seed(env: &Env, blue: &Backend, green: &Backend) -> Result<(), String> {
    let http = env.client();
    let admin = env.admin_url();
    if env.is_dbless().await {
        let config = json!({
            "_format_version": "3.0",
            "upstreams": [
                {"name": BLUE, "healthchecks": healthchecks(), "targets": [{"target": env.target_for(blue)}]},
                {"name": GREEN, "healthchecks": healthchecks(), "targets": [{"target": env.target_for(green)}]}
            ],
            "services": [{"name": SERVICE, "host": BLUE, "port": 80,
                "routes": [{"name": SERVICE, "paths": [format!("/{SERVICE}")]}]}]
        });
        if env.version().await.major < 3 {
            return post(http, &format!("{admin}/config"), &{
                let mut c = config;
                c["_format_version"] = json!("2.1");
                c
            })
            .await;
        }
        return post(http, &format!("{admin}/config"), &config).await;
    }
    for (name, backend) in [(BLUE, blue), (GREEN, green)] {
        put(
            http,
            &format!("{admin}/upstreams/{name}"),
            &json!({"name": name, "healthchecks": healthchecks()}),
        )
        .await?;
        // Targets of an earlier run point at old ports: remove them.
        let targets: Value = get(http, &format!("{admin}/upstreams/{name}/targets")).await?;
        for t in targets["data"].as_array().into_iter().flatten() {
            if let Some(id) = t["id"].as_str() {
                delete(http, &format!("{admin}/upstreams/{name}/targets/{id}")).await?;
            }
        }
        post(
            http,
            &format!("{admin}/upstreams/{name}/targets"),
            &json!({"target": env.target_for(backend)}),
        )
        .await?;
    }
    let service = put(
        http,
        &format!("{admin}/services/{SERVICE}"),
        &json!({"name": SERVICE, "host": BLUE, "port": 80}),
    )
    .await?;
    put(
        http,
        &format!("{admin}/routes/{SERVICE}"),
        &json!({"name": SERVICE, "paths": [format!("/{SERVICE}")], "service": {"id": service["id"]}}),
    )
    .await?;
    Ok(())
}

/// Waits until every target of each upstream is HEALTHY (3.x builds a new upstream's
/// balancer a few seconds after it is created).
async fn wait_healthy(env: &Env, upstreams: &[&str]) -> Result<(), String> {
    for name in upstreams {
        let url = format!("{}/upstreams/{name}/health", env.admin_url());
        let healthy = Env::wait_until(Duration::from_secs(30), || async {
            let health: Value = get(env.client(), &url).await.unwrap_or(Value::Null);
            let data = health["data"].as_array().cloned().unwrap_or_default();
            !data.is_empty() && data.iter().all(|t| t["health"] == "HEALTHY")
        })
        .await;
        if healthy.is_none() {
            return Err(format!(
                "upstream {name} did not become HEALTHY within 30 s"
            ));
        }
    }
    Ok(())
}

/// Sends `n` requests through the proxy and counts who answered.
async fn sample(env: &Env, url: &str, n: usize) -> (usize, usize, usize) {
    let (mut blue, mut green, mut other) = (0, 0, 0);
    for _ in 0..n {
        match env.client().get(url).send().await {
            Ok(resp) if resp.status().is_success() => {
                match resp.headers().get("x-color").and_then(|v| v.to_str().ok()) {
                    Some("blue") => blue += 1,
                    Some("green") => green += 1,
                    _ => other += 1,
                }
            }
            _ => other += 1,
        }
    }
    (blue, green, other)
}

async fn get(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    answer(http.get(url).send().await, "GET", url).await
}

async fn put(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value, String> {
    answer(http.put(url).json(body).send().await, "PUT", url).await
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Result<(), String> {
    answer(http.post(url).json(body).send().await, "POST", url)
        .await
        .map(drop)
}

async fn delete(http: &reqwest::Client, url: &str) -> Result<(), String> {
    answer(http.delete(url).send().await, "DELETE", url)
        .await
        .map(drop)
}

async fn answer(
    result: reqwest::Result<reqwest::Response>,
    method: &str,
    url: &str,
) -> Result<Value, String> {
    let resp = result.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{method} {url}: HTTP {status}: {text}"));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}
