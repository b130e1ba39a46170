//! `deploy-green` and `retire-blue` against the fake Kubernetes API server and the Kong
//! stand-in, with the file state log (the Firestore log is covered end to end in
//! `cli_gke.rs`).

mod support;

use std::time::Duration;

use kong_switch_core::model::NameOrId;
use kong_switch_core::state::{Color, DeploymentStatus, Event, EventKind, FileLog, StateLog};
use kong_switch_gke::Error;
use kong_switch_gke::k8s::{self, Cluster, DeployGreen, RetireBlue, RetireMode, RunContext};
use support::fake_kube::FakeKube;
use support::{NAMESPACE, kong, kong_client, seed_blue};

fn context() -> RunContext {
    RunContext {
        target: "orders".into(),
        actor: "ci@runner (pid 1)".into(),
        environment: Some("production".into()),
        build_id: Some("build-42".into()),
        service: Some("orders".into()),
    }
}

async fn cluster(kube: &FakeKube) -> Cluster {
    let config = kube::Config::new(kube.url().parse().expect("valid URL"));
    Cluster::from_config(config, NAMESPACE).expect("client")
}

fn request(image: &str) -> DeployGreen {
    DeployGreen {
        timeout: Duration::from_secs(10),
        poll: Duration::from_millis(50),
        ..DeployGreen::new("orders", image)
    }
}

fn statuses(events: &[Event]) -> Vec<(EventKind, Option<DeploymentStatus>, Option<String>)> {
    events
        .iter()
        .map(|e| (e.kind, e.status, e.color.as_ref().map(|c| c.to_string())))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_green_clones_blue_waits_for_the_rollout_and_registers_the_green_upstream() {
    let kube = FakeKube::start(Duration::from_millis(300)).await;
    seed_blue(&kube);
    let kong = kong().await;
    let client = kong_client(&kong);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");

    let report = k8s::deploy_green(
        &cluster(&kube).await,
        &client,
        &log,
        &context(),
        &request("registry.example/orders:2.0"),
        &(),
    )
    .await
    .expect("deploy-green succeeds");

    assert_eq!(report.version, "2.0");
    assert!(report.rollout.is_complete());
    let green = kube
        .object("deployments", NAMESPACE, "orders-green")
        .expect("green Deployment");
    assert_eq!(
        green["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/orders:2.0"
    );
    assert_eq!(green["spec"]["selector"]["matchLabels"]["version"], "green");
    let service = kube
        .object("services", NAMESPACE, "orders-green")
        .expect("green Service");
    assert_eq!(service["spec"]["selector"]["version"], "green");
    assert_eq!(service["spec"]["ports"][0]["port"], 80);

    let upstream = client
        .upstreams()
        .get(&NameOrId::from("orders-green"))
        .await
        .expect("green upstream");
    let checks = serde_json::to_value(&upstream.healthchecks).expect("json");
    assert_eq!(checks["active"]["http_path"], "/healthz");
    let targets = client
        .targets("orders-green")
        .list_all(&Default::default())
        .await
        .expect("targets");
    assert_eq!(
        targets
            .iter()
            .map(|t| t.target.as_str())
            .collect::<Vec<_>>(),
        ["orders-green.shop.svc.cluster.local:80"]
    );

    let history = log.history("orders").await.expect("history");
    assert_eq!(
        statuses(&history.events),
        [
            (
                EventKind::Status,
                Some(DeploymentStatus::Deploying),
                Some("green".into())
            ),
            (
                EventKind::Status,
                Some(DeploymentStatus::Testing),
                Some("green".into())
            ),
        ]
    );
    let testing = &history.events[1];
    assert_eq!(testing.deployment.as_deref(), Some("orders-green"));
    assert_eq!(testing.version.as_deref(), Some("2.0"));
    assert_eq!(testing.upstream.as_deref(), Some("orders-green"));
    assert_eq!(testing.build_id.as_deref(), Some("build-42"));
    assert_eq!(testing.run_id, history.events[0].run_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn deploying_again_updates_green_in_place_through_resource_version_conflicts() {
    let kube = FakeKube::start(Duration::from_millis(100)).await;
    seed_blue(&kube);
    let kong = kong().await;
    let client = kong_client(&kong);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");
    let cluster = cluster(&kube).await;
    k8s::deploy_green(
        &cluster,
        &client,
        &log,
        &context(),
        &request("registry.example/orders:2.0"),
        &(),
    )
    .await
    .expect("first deploy");

    kube.conflict_next(2);
    k8s::deploy_green(
        &cluster,
        &client,
        &log,
        &context(),
        &request("registry.example/orders:2.1"),
        &(),
    )
    .await
    .expect("second deploy retries the conflicts");
    let green = kube
        .object("deployments", NAMESPACE, "orders-green")
        .expect("green Deployment");
    assert_eq!(
        green["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/orders:2.1"
    );
    let targets = client
        .targets("orders-green")
        .list_all(&Default::default())
        .await
        .expect("targets");
    assert_eq!(targets.len(), 1, "the target is not registered twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_never_pulls_fails_naming_image_pull_back_off_and_records_rolled_back() {
    let kube = FakeKube::start(Duration::from_millis(100)).await;
    seed_blue(&kube);
    kube.fail_image(
        "registry.example/orders:nope",
        "ImagePullBackOff",
        "Back-off pulling image \"registry.example/orders:nope\"",
    );
    let kong = kong().await;
    let client = kong_client(&kong);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");

    let err = k8s::deploy_green(
        &cluster(&kube).await,
        &client,
        &log,
        &context(),
        &request("registry.example/orders:nope"),
        &(),
    )
    .await
    .expect_err("the rollout fails");
    let message = err.to_string();
    assert!(matches!(err, Error::RolloutFailed { .. }), "{message}");
    assert!(message.contains("ImagePullBackOff"), "{message}");
    assert!(
        message.contains("pod orders-green-0 container orders"),
        "{message}"
    );

    let green = kube
        .object("deployments", NAMESPACE, "orders-green")
        .expect("green Deployment kept for inspection");
    assert_eq!(green["spec"]["replicas"], 0, "green is scaled to zero");
    let history = log.history("orders").await.expect("history");
    assert_eq!(
        statuses(&history.events),
        [
            (
                EventKind::Status,
                Some(DeploymentStatus::Deploying),
                Some("green".into())
            ),
            (
                EventKind::RolledBack,
                Some(DeploymentStatus::RolledBack),
                Some("green".into())
            ),
        ]
    );
    let reason = history.events[1].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("ImagePullBackOff") && reason.contains("scaled to 0"),
        "{reason}"
    );
    assert!(
        client
            .upstreams()
            .get_opt(&NameOrId::from("orders-green"))
            .await
            .expect("read")
            .is_none(),
        "Kong is not touched"
    );
    assert!(
        log.acquire(kong_switch_core::state::LeaseRequest::new(
            "orders",
            "next",
            Duration::from_secs(5)
        ))
        .await
        .is_ok(),
        "the lease is released"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_slower_than_the_timeout_fails_with_the_progress_seen() {
    let kube = FakeKube::start(Duration::from_secs(60)).await;
    seed_blue(&kube);
    let kong = kong().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");
    let request = DeployGreen {
        timeout: Duration::from_millis(400),
        ..request("registry.example/orders:2.0")
    };
    let err = k8s::deploy_green(
        &cluster(&kube).await,
        &kong_client(&kong),
        &log,
        &context(),
        &request,
        &(),
    )
    .await
    .expect_err("times out");
    assert!(matches!(err, Error::RolloutTimeout { .. }), "{err}");
    assert!(err.to_string().contains("0 ready"), "{err}");
    let last = log.last("orders").await.expect("read").expect("an event");
    assert_eq!(last.status, Some(DeploymentStatus::RolledBack));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_blue_deployment_fails_before_any_write_or_event() {
    let kube = FakeKube::start(Duration::from_millis(100)).await;
    let kong = kong().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");
    let err = k8s::deploy_green(
        &cluster(&kube).await,
        &kong_client(&kong),
        &log,
        &context(),
        &request("orders:2.0"),
        &(),
    )
    .await
    .expect_err("no blue");
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: "Deployment",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("labelled app=orders,version=blue in namespace shop"),
        "{err}"
    );
    assert!(kube.writes().is_empty(), "{:?}", kube.writes());
    assert!(log.history("orders").await.expect("read").events.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_port_that_does_not_match_fails_before_any_write_or_event() {
    let kube = FakeKube::start(Duration::from_millis(100)).await;
    seed_blue(&kube);
    let kong = kong().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");
    let request = DeployGreen {
        port: Some(9090),
        ..request("orders:2.0")
    };
    let err = k8s::deploy_green(
        &cluster(&kube).await,
        &kong_client(&kong),
        &log,
        &context(),
        &request,
        &(),
    )
    .await
    .expect_err("port mismatch");
    assert!(
        err.to_string().contains(
            "Service port 9090 does not match: Service orders-green would expose 80 (http)"
        ),
        "{err}"
    );
    assert!(kube.writes().is_empty(), "{:?}", kube.writes());
    assert!(log.history("orders").await.expect("read").events.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_blue_upstream_in_kong_records_rolled_back_and_scales_green_down() {
    let kube = FakeKube::start(Duration::from_millis(50)).await;
    seed_blue(&kube);
    let kong = kong().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");
    let request = DeployGreen {
        blue_upstream: Some("payments-blue".into()),
        ..request("orders:2.0")
    };
    let err = k8s::deploy_green(
        &cluster(&kube).await,
        &kong_client(&kong),
        &log,
        &context(),
        &request,
        &(),
    )
    .await
    .expect_err("no blue upstream");
    assert!(
        err.to_string()
            .contains("Kong Upstream `payments-blue` not found"),
        "{err}"
    );
    let last = log.last("orders").await.expect("read").expect("an event");
    assert_eq!(last.status, Some(DeploymentStatus::RolledBack));
    let green = kube
        .object("deployments", NAMESPACE, "orders-green")
        .expect("green");
    assert_eq!(green["spec"]["replicas"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn retire_blue_refuses_until_green_is_active_then_scales_blue_to_zero_and_records_idle() {
    let kube = FakeKube::start(Duration::from_millis(50)).await;
    seed_blue(&kube);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");
    let cluster = cluster(&kube).await;
    let request = RetireBlue {
        bake_time: Duration::from_millis(300),
        ..RetireBlue::new("orders")
    };

    let err = k8s::retire_blue(&cluster, &log, &context(), &request, &())
        .await
        .expect_err("green is not active");
    assert!(matches!(err, Error::Refused(_)), "{err}");
    assert!(kube.writes().is_empty());

    log.append(
        Event::new("orders", EventKind::Completed)
            .with_sides("blue", "green")
            .with_status(DeploymentStatus::Active)
            .with_color(Color::Green),
    )
    .await
    .expect("record the switch");
    let report = k8s::retire_blue(&cluster, &log, &context(), &request, &())
        .await
        .expect("retire");
    assert!(report.waited_ms > 0, "waited out the bake time");
    assert_eq!(report.previous_replicas, 2);
    let blue = kube
        .object("deployments", NAMESPACE, "orders-blue")
        .expect("blue kept");
    assert_eq!(blue["spec"]["replicas"], 0);
    assert_eq!(
        blue["metadata"]["annotations"]["kong-switch/retired-replicas"],
        "2"
    );
    let last = log.last("orders").await.expect("read").expect("event");
    assert_eq!(
        (last.status, last.color),
        (Some(DeploymentStatus::Idle), Some(Color::Blue))
    );
    assert_eq!(last.deployment.as_deref(), Some("orders-blue"));
}

#[tokio::test(flavor = "multi_thread")]
async fn retire_blue_can_delete_the_deployment() {
    let kube = FakeKube::start(Duration::from_millis(50)).await;
    seed_blue(&kube);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");
    let request = RetireBlue {
        mode: RetireMode::Delete,
        bake_time: Duration::ZERO,
        force: true,
        ..RetireBlue::new("orders")
    };
    k8s::retire_blue(&cluster(&kube).await, &log, &context(), &request, &())
        .await
        .expect("retire");
    assert!(
        kube.object("deployments", NAMESPACE, "orders-blue")
            .is_none()
    );
    assert_eq!(
        log.last("orders")
            .await
            .expect("read")
            .and_then(|e| e.status),
        Some(DeploymentStatus::Idle)
    );
}
