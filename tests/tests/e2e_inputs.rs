//! End to end: every bad flag value of every subcommand is a usage error (exit 2) that names
//! the flag, and nothing reaches Kong's write path; long and non-Latin service names work.

mod common;

use common::e2e::{Cli, Green, host_of, pair};
use common::expect;
use kong_switch_tests::harness::Env;
use serde_json::json;

/// One bad command line: what it gets wrong, its arguments (`{S}` is the service, `{U}` a
/// URL), and the flag the error must name.
struct Case {
    what: &'static str,
    args: &'static [&'static str],
    names: &'static str,
}

const fn case(what: &'static str, args: &'static [&'static str], names: &'static str) -> Case {
    Case { what, args, names }
}

const CASES: &[Case] = &[
    // Sides.
    case(
        "empty green suffix",
        &["switch", "{S}", "--green-suffix="],
        "--green-suffix",
    ),
    case(
        "empty blue suffix",
        &["switch", "{S}", "--blue-suffix="],
        "--blue-suffix",
    ),
    case(
        "equal suffixes",
        &["switch", "{S}", "--blue-suffix=-x", "--green-suffix=-x"],
        "--green-suffix",
    ),
    case(
        "suffixes ending alike",
        &["switch", "{S}", "--blue-suffix=-b", "--green-suffix=x-b"],
        "--green-suffix",
    ),
    case(
        "suffix with a space",
        &["switch", "{S}", "--green-suffix=- green"],
        "--green-suffix",
    ),
    case(
        "empty color tag",
        &["switch", "{S}", "--color-tag="],
        "--color-tag",
    ),
    case(
        "status: empty green suffix",
        &["status", "{S}", "--green-suffix="],
        "--green-suffix",
    ),
    case(
        "status: equal suffixes",
        &["status", "{S}", "--blue-suffix=-x", "--green-suffix=-x"],
        "--green-suffix",
    ),
    // Durations: overflowing, zero, negative, NaN, infinite, absurd.
    case(
        "timeout 1e300",
        &["--timeout", "1e300", "switch", "{S}"],
        "--timeout",
    ),
    case(
        "timeout 0",
        &["--timeout", "0", "switch", "{S}"],
        "--timeout",
    ),
    case(
        "timeout NaN",
        &["--timeout", "NaN", "status", "{S}"],
        "--timeout",
    ),
    case(
        "timeout a year",
        &["--timeout", "365d", "ping"],
        "--timeout",
    ),
    case(
        "lease ttl 1e30",
        &["switch", "{S}", "--lease-ttl", "1e30"],
        "--lease-ttl",
    ),
    case(
        "lease ttl 0",
        &["switch", "{S}", "--lease-ttl", "0s"],
        "--lease-ttl",
    ),
    case(
        "rollback lease ttl inf",
        &["rollback", "{S}", "--lease-ttl", "inf"],
        "--lease-ttl",
    ),
    case(
        "probe timeout 1e300",
        &[
            "switch",
            "{S}",
            "--probe",
            "{U}",
            "--probe-timeout",
            "1e300",
        ],
        "--probe-timeout",
    ),
    case(
        "probe timeout 0",
        &["switch", "{S}", "--probe", "{U}", "--probe-timeout", "0ms"],
        "--probe-timeout",
    ),
    case(
        "verify for 0",
        &["switch", "{S}", "--verify", "{U}", "--verify-for", "0"],
        "--verify-for",
    ),
    case(
        "verify for -1",
        &["switch", "{S}", "--verify", "{U}", "--verify-for=-1"],
        "--verify-for",
    ),
    case(
        "converge timeout 1e300",
        &["switch", "{S}", "--converge-timeout", "1e300"],
        "--converge-timeout",
    ),
    case(
        "p95 latency 0",
        &["switch", "{S}", "--verify", "{U}", "--p95-latency", "0"],
        "--p95-latency",
    ),
    case(
        "max latency empty",
        &["switch", "{S}", "--verify", "{U}", "--max-latency="],
        "--max-latency",
    ),
    case(
        "dp timeout inf",
        &["switch", "{S}", "--dp-timeout", "inf"],
        "--dp-timeout",
    ),
    case(
        "rollback dp timeout 0",
        &["rollback", "{S}", "--dp-timeout", "0"],
        "--dp-timeout",
    ),
    case(
        "bake 100 years",
        &["shift", "{S}", "--bake", "100y"],
        "--bake",
    ),
    case("bake negative", &["shift", "{S}", "--bake=-5"], "--bake"),
    case(
        "steps bake overflowing",
        &["shift", "{S}", "--steps", "linear-25-every-1e300"],
        "--steps",
    ),
    case(
        "steps not ascending",
        &["shift", "{S}", "--steps", "50,25,100"],
        "--steps",
    ),
    case(
        "unknown write window absurd",
        &["switch", "{S}", "--unknown-write-window", "1e300"],
        "--unknown-write-window",
    ),
    case(
        "resolve lease ttl 0",
        &["resolve", "{S}", "--to", "green", "--lease-ttl", "0"],
        "--lease-ttl",
    ),
    case(
        "resolve equal suffixes",
        &[
            "resolve",
            "{S}",
            "--to",
            "green",
            "--blue-suffix=-x",
            "--green-suffix=-x",
        ],
        "--green-suffix",
    ),
    case("resolve empty side", &["resolve", "{S}", "--to="], "--to"),
    case(
        "lease renewal 0",
        &["switch", "{S}", "--lease-renew-every", "0"],
        "--lease-renew-every",
    ),
    case(
        "lease expiry 1e300",
        &["rollback", "{S}", "--lease-expiry", "1e300"],
        "--lease-expiry",
    ),
    // Counts and fractions.
    case(
        "probe count 0",
        &["switch", "{S}", "--probe", "{U}", "--probe-count", "0"],
        "--probe-count",
    ),
    case(
        "probe count absurd",
        &[
            "switch",
            "{S}",
            "--probe",
            "{U}",
            "--probe-count",
            "4294967295",
        ],
        "--probe-count",
    ),
    case(
        "probe status 0",
        &["switch", "{S}", "--probe", "{U}", "--probe-status", "0"],
        "--probe-status",
    ),
    case(
        "verify count 0",
        &["switch", "{S}", "--verify", "{U}", "--verify-count", "0"],
        "--verify-count",
    ),
    case(
        "min targets 0",
        &["switch", "{S}", "--min-targets", "0"],
        "--min-targets",
    ),
    case(
        "min healthy NaN",
        &["switch", "{S}", "--min-healthy", "NaN"],
        "--min-healthy",
    ),
    case(
        "min healthy 1.5",
        &["switch", "{S}", "--min-healthy", "1.5"],
        "--min-healthy",
    ),
    case(
        "min success negative",
        &["switch", "{S}", "--verify", "{U}", "--min-success=-0.1"],
        "--min-success",
    ),
    case(
        "parallelism 0",
        &["switch", "{S}", "--parallelism", "0"],
        "--parallelism",
    ),
    case(
        "rollback parallelism absurd",
        &["rollback", "{S}", "--parallelism", "99999999"],
        "--parallelism",
    ),
    case(
        "history limit 0",
        &["history", "{S}", "--limit", "0"],
        "--limit",
    ),
    // Names, tags, labels, headers.
    case("empty service", &["switch", ""], "SERVICE"),
    case("blank service", &["switch", "  "], "SERVICE"),
    case("status of an empty service", &["status", ""], "SERVICE"),
    case("rollback of an empty target", &["rollback", ""], "TARGET"),
    case(
        "history of an empty tag target",
        &["history", "tag:"],
        "TARGET",
    ),
    case("empty tag", &["switch", "--tag", ""], "--tag"),
    case("tag with a comma", &["switch", "--tag", "a,b"], "--tag"),
    case("empty destination", &["switch", "{S}", "--to", ""], "--to"),
    case(
        "actor with a newline",
        &["switch", "{S}", "--actor", "alice\nbob"],
        "--actor",
    ),
    case(
        "empty deployment",
        &["switch", "{S}", "--deployment", ""],
        "--deployment",
    ),
    case(
        "environment with a newline",
        &["switch", "{S}", "--environment", "prod\nforged"],
        "--environment",
    ),
    case(
        "bad expect header",
        &[
            "switch",
            "{S}",
            "--verify",
            "{U}",
            "--expect-header",
            "x color=green",
        ],
        "--expect-header",
    ),
    case(
        "probe header without =",
        &[
            "switch",
            "{S}",
            "--probe",
            "{U}",
            "--probe-header",
            "x-color",
        ],
        "--probe-header",
    ),
    case(
        "empty probe body",
        &["switch", "{S}", "--probe", "{U}", "--probe-body="],
        "--probe-body",
    ),
    // URLs requests are sent to: a bad one would fail only after the write.
    case(
        "verify URL not http",
        &["switch", "{S}", "--verify", "ftp://kong/orders"],
        "--verify",
    ),
    case(
        "probe URL not http",
        &["switch", "{S}", "--probe", "file:///etc/passwd"],
        "--probe",
    ),
    case(
        "dp status URL not http",
        &["switch", "{S}", "--dp-status", "unix:/run/kong.sock"],
        "--dp-status",
    ),
    // Kubernetes commands (feature `gke`, on by default).
    case(
        "deploy-green empty image",
        &["deploy-green", "{S}", "--image="],
        "--image",
    ),
    case(
        "deploy-green negative replicas",
        &["deploy-green", "{S}", "--image", "x:1", "--replicas=-1"],
        "--replicas",
    ),
    case(
        "deploy-green port 0",
        &["deploy-green", "{S}", "--image", "x:1", "--port", "0"],
        "--port",
    ),
    case(
        "deploy-green rollout timeout 0",
        &[
            "deploy-green",
            "{S}",
            "--image",
            "x:1",
            "--rollout-timeout",
            "0",
        ],
        "--rollout-timeout",
    ),
    case(
        "retire-blue bake 1e300",
        &["retire-blue", "{S}", "--bake-time", "1e300"],
        "--bake-time",
    ),
    case(
        "k8s-switch min ready 0",
        &[
            "k8s-switch",
            "--service-selector",
            "{S}",
            "--min-ready",
            "0",
        ],
        "--min-ready",
    ),
    case(
        "k8s-switch empty side",
        &["k8s-switch", "--service-selector", "{S}", "--to="],
        "--to",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_flag_value_exits_2_naming_the_flag_and_writes_nothing() {
    let env = Env::start().await;
    let p = pair(&env, "inputs", Green::Healthy, &[]).await;
    let cli = Cli::new(&env);
    let url = p.url(&env);
    let mut failures = Vec::new();
    for case in CASES {
        if let Some(standin) = env.standin() {
            standin.log().clear();
        }
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| a.replace("{S}", &p.base).replace("{U}", &url))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = cli.run(&args).await;
        let writes = env.standin().map(|s| s.log().writes()).unwrap_or_default();
        let ok = run.code == Some(2)
            && run.stderr.contains(case.names)
            && !run.stderr.contains("panicked")
            && writes.is_empty();
        if !ok {
            failures.push(format!(
                "{}: {args:?} exited {:?} with {} writes; stderr:\n{}",
                case.what,
                run.code,
                writes.len(),
                run.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(
        host_of(&env, &p.base).await,
        p.blue_up,
        "Kong still on blue"
    );
    assert!(
        cli.history(&p.base).await.is_empty(),
        "nothing recorded in the state log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_error_in_json_output_is_a_json_document_with_exit_code_2() {
    let env = Env::start().await;
    let cli = Cli::new(&env);
    let run = cli
        .run(&[
            "--output",
            "json",
            "switch",
            "orders",
            "--green-suffix=-blue",
        ])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["error"]["exit_code"], 2);
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--green-suffix")),
        "{doc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_and_non_latin_service_names_switch_report_and_log_like_short_ones() {
    let env = Env::start().await;
    let p = pair(&env, "names", Green::Healthy, &[]).await;
    let cli = Cli::new(&env);
    let suffix = Env::unique("");
    for name in [
        format!("{}{suffix}", "o".repeat(300)),
        format!("{}{suffix}", "订单".repeat(40)),
    ] {
        // A second service on the same upstream pair, under the odd name.
        expect(
            &env,
            "POST",
            "/services",
            Some(json!({ "name": name, "host": p.blue_up })),
            201,
        )
        .await;
        let (code, report) = cli.json(&["switch", &name]).await;
        assert_eq!(code, Some(0), "{name}: {report:#}");
        assert_eq!(report["outcome"], "completed", "{report:#}");
        assert_eq!(host_of(&env, &name).await, p.green_up);

        let (code, status) = cli.json(&["status", &name]).await;
        assert_eq!(code, Some(0), "{status:#}");
        assert_eq!(status["drift"]["state"], "in_sync", "{status:#}");
        let kinds: Vec<String> = cli
            .history(&name)
            .await
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(kinds.contains(&"completed".to_owned()), "{kinds:?}");
    }
    // A long name Kong does not know is "not found" (exit 5), not an internal error.
    let run = cli.run(&["switch", &"x".repeat(300)]).await;
    assert_eq!(run.code, Some(5), "{}", run.stderr);
}
