//! The real `kong-switch` binary, end to end, on "GKE": a fake Kubernetes API server reached
//! through a kubeconfig, the Kong stand-in, and the Firestore log on the real emulator:
//! deploy-green → switch → retire-blue, then the bad inputs.
#![cfg(feature = "gke")]

#[path = "../../kong-switch-gke/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use kong_switch_core::model::NameOrId;
use kong_switch_core::state::{DeploymentStatus, EventKind, StateLog};
use kong_switch_gke::{FirestoreEndpoint, FirestoreLog, FirestoreUrl};
use support::emulator::Emulator;
use support::fake_kube::FakeKube;
use support::{NAMESPACE, kong, kong_client, seed_blue};

fn kong_switch(args: &[&str], kubeconfig: &Path, emulator_host: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kong-switch"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("FIRESTORE_EMULATOR_HOST", emulator_host)
        .env_remove("KONG_ADMIN_URL")
        .env_remove("KONG_ADMIN_TOKEN")
        .env_remove("KONG_SWITCH_STATE")
        .output()
        .expect("the kong-switch binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_green_switch_retire_blue_end_to_end_with_the_firestore_log() {
    let emulator = Emulator::start();
    let kube = FakeKube::start(Duration::from_millis(300)).await;
    seed_blue(&kube);
    let kong = kong().await;
    let admin_url = kong.admin_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kube.kubeconfig(dir.path(), NAMESPACE);
    let state = format!(
        "firestore://kong-switch-test/e2e-{}",
        uuid::Uuid::new_v4().simple()
    );
    let run = |args: &[&str]| {
        let mut all = vec!["--admin-url", admin_url.as_str(), "--state", state.as_str()];
        all.extend_from_slice(args);
        kong_switch(&all, &kubeconfig, emulator.host())
    };

    // 1. deploy-green
    let out = run(&[
        "deploy-green",
        "orders",
        "--image",
        "registry.example/orders:2.0",
        "--rollout-timeout",
        "20s",
        "--environment",
        "production",
        "--build-id",
        "build-7",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("green 2.0 ready: shop/orders-green"),
        "{stdout}"
    );
    assert!(
        stdout.contains("target orders-green.shop.svc.cluster.local:80 added"),
        "{stdout}"
    );

    // 2. the switch, by the real `switch` command (the stand-in cannot resolve the cluster
    //    DNS name, so its health view of green is not HEALTHY: the health gate is relaxed).
    let out = run(&[
        "switch",
        "orders",
        "--min-healthy",
        "0",
        "--environment",
        "production",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let client = kong_client(&kong);
    let service = client
        .services()
        .get(&NameOrId::from("orders"))
        .await
        .expect("read the service");
    assert_eq!(service.host, "orders-green", "Kong routes orders to green");
    let url: FirestoreUrl = state.parse().expect("valid URL");
    let log = FirestoreLog::connect_to(
        url,
        FirestoreEndpoint::Emulator {
            host: emulator.host().to_owned(),
        },
    )
    .await
    .expect("connect");

    // 3. retire-blue
    let out = run(&[
        "retire-blue",
        "orders",
        "--bake-time",
        "0s",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["deployment"], "shop/orders-blue");
    assert_eq!(report["mode"], "scale_to_zero");
    assert_eq!(
        kube.object("deployments", NAMESPACE, "orders-blue")
            .expect("blue")["spec"]["replicas"],
        0
    );

    // 4. the Firestore log
    let history = log.history("orders").await.expect("history");
    let seen: Vec<_> = history
        .events
        .iter()
        .map(|e| {
            (
                e.seq,
                e.kind,
                e.status,
                e.color.as_ref().map(ToString::to_string),
            )
        })
        .collect();
    // deploy-green: deploying → testing; switch: intent → completed (green active) → blue
    // idle; retire-blue: blue idle (scaled to 0).
    assert_eq!(
        seen,
        [
            (
                1,
                EventKind::Status,
                Some(DeploymentStatus::Deploying),
                Some("green".into())
            ),
            (
                2,
                EventKind::Status,
                Some(DeploymentStatus::Testing),
                Some("green".into())
            ),
            (3, EventKind::Intent, None, None),
            (
                4,
                EventKind::Completed,
                Some(DeploymentStatus::Active),
                Some("green".into())
            ),
            (
                5,
                EventKind::Status,
                Some(DeploymentStatus::Idle),
                Some("blue".into())
            ),
            (
                6,
                EventKind::Status,
                Some(DeploymentStatus::Idle),
                Some("blue".into())
            ),
        ]
    );
    let retired = &history.events[5];
    assert_eq!(retired.deployment.as_deref(), Some("orders-blue"));
    assert_eq!(retired.reason.as_deref(), Some("scaled to 0 (was 2)"));
    let testing = &history.events[1];
    assert_eq!(testing.environment.as_deref(), Some("production"));
    assert_eq!(testing.build_id.as_deref(), Some("build-7"));
    assert_eq!(testing.version.as_deref(), Some("2.0"));
    assert_eq!(testing.deployment.as_deref(), Some("orders-green"));
    assert!(testing.actor.as_deref().is_some_and(|a| a.contains('@')));
    let current = log
        .current("orders")
        .await
        .expect("read")
        .expect("document");
    assert_eq!(current.active_color.as_deref(), Some("green"));
    assert_eq!(current.sides["blue"].status, Some(DeploymentStatus::Idle));
    assert_eq!(
        current.lease,
        kong_switch_core::state::LeaseState::Free,
        "every command released its lease"
    );

    // Bad input: an image that never becomes ready → exit 4, rolled_back in Firestore.
    kube.fail_image(
        "registry.example/orders:nope",
        "ImagePullBackOff",
        "Back-off pulling image",
    );
    let out = run(&[
        "deploy-green",
        "orders",
        "--image",
        "registry.example/orders:nope",
        "--rollout-timeout",
        "20s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("ImagePullBackOff"), "{stderr}");
    let last = log.last("orders").await.expect("read").expect("event");
    assert_eq!(
        (last.kind, last.status),
        (EventKind::RolledBack, Some(DeploymentStatus::RolledBack))
    );

    // Bad input: no blue Deployment → exit 2, nothing written, no event.
    let writes_before = kube.writes().len();
    let out = run(&["deploy-green", "payments", "--image", "payments:2"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("Deployment labelled app=payments,version=blue in namespace shop not found"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(kube.writes().len(), writes_before);
    assert!(
        log.history("payments")
            .await
            .expect("read")
            .events
            .is_empty()
    );

    // Bad input: a Service port that does not match → exit 2, unchanged.
    let out = run(&[
        "deploy-green",
        "orders",
        "--image",
        "registry.example/orders:2.1",
        "--port",
        "9090",
    ]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Service port 9090 does not match"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(kube.writes().len(), writes_before);
    drop(emulator);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubeconfig_without_the_context_fails_naming_the_contexts_it_has() {
    let kube = FakeKube::start(Duration::from_millis(50)).await;
    seed_blue(&kube);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kube.kubeconfig(dir.path(), NAMESPACE);
    let state = dir.path().join("state");
    let out = kong_switch(
        &[
            "--state",
            &state.to_string_lossy(),
            "retire-blue",
            "orders",
            "--context",
            "prod-eu",
            "--force",
        ],
        &kubeconfig,
        "",
    );
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the kubeconfig has no context `prod-eu` (it has: fake)"),
        "{stderr}"
    );
    assert!(kube.writes().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_firestore_fails_before_touching_the_cluster() {
    let kube = FakeKube::start(Duration::from_millis(50)).await;
    seed_blue(&kube);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kube.kubeconfig(dir.path(), NAMESPACE);
    let closed = format!("127.0.0.1:{}", free_port());
    let out = kong_switch(
        &[
            "--state",
            "firestore://kong-switch-test/ks",
            "retire-blue",
            "orders",
            "--force",
            "--bake-time",
            "0s",
        ],
        &kubeconfig,
        &closed,
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "cannot connect to firestore://kong-switch-test/ks: Firestore is unreachable"
        ),
        "{stderr}"
    );
    assert!(kube.writes().is_empty());
}

#[test]
fn a_malformed_firestore_url_is_a_usage_error_naming_the_part() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = kong_switch(
        &["--state", "firestore://Acme/ks", "retire-blue", "orders"],
        &dir.path().join("no-kubeconfig"),
        "",
    );
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("invalid state URL `firestore://Acme/ks`: project: `Acme`"),
        "{}",
        text(&out.stderr)
    );
}

/// `k8s-switch --service-selector`: the stable Service selects green's pods after the gate on
/// ready pods passes; the run is logged; a second identical run writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8s_switch_flips_the_service_selector_once_and_logs_it() {
    let kube = FakeKube::start(Duration::from_millis(50)).await;
    kube.insert("deployments", support::blue_deployment());
    let mut green = support::blue_deployment();
    green["metadata"]["name"] = serde_json::json!("orders-green");
    green["metadata"]["labels"]["version"] = serde_json::json!("green");
    green["spec"]["selector"]["matchLabels"]["version"] = serde_json::json!("green");
    green["spec"]["template"]["metadata"]["labels"]["version"] = serde_json::json!("green");
    kube.insert("deployments", green);
    kube.insert(
        "services",
        serde_json::json!({"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "orders", "namespace": NAMESPACE},
            "spec": {"selector": {"app": "orders", "version": "blue"},
                     "ports": [{"port": 80, "targetPort": "http"}]}}),
    );
    // Let the fake kubelet mark the pods ready.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kube.kubeconfig(dir.path(), NAMESPACE);
    let state = dir.path().join("state");
    let state = state.to_str().expect("UTF-8 path");
    let args = [
        "--state",
        state,
        "k8s-switch",
        "--service-selector",
        "orders",
        "--to",
        "green",
        "--min-ready",
        "2",
        "--actor",
        "ci",
    ];

    let out = kong_switch(&args, &kubeconfig, "127.0.0.1:9");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let service = kube
        .object("services", NAMESPACE, "orders")
        .expect("service");
    assert_eq!(service["spec"]["selector"]["version"], "green");
    assert!(text(&out.stdout).contains("done"), "{}", text(&out.stdout));

    let again = kong_switch(&args, &kubeconfig, "127.0.0.1:9");
    assert_eq!(
        again.status.code(),
        Some(0),
        "stderr: {}",
        text(&again.stderr)
    );
    assert!(
        text(&again.stdout).contains("nothing to do"),
        "{}",
        text(&again.stdout)
    );

    let history = kong_switch(
        &["--state", state, "--output", "json", "history", "orders"],
        &kubeconfig,
        "127.0.0.1:9",
    );
    let doc: serde_json::Value = serde_json::from_slice(&history.stdout).expect("JSON history");
    let kinds: Vec<&str> = doc["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.starts_with(&["intent", "completed"]),
        "intent then completed: {kinds:?}"
    );
}
