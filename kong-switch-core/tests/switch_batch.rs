//! Scenario tests of batch switches: every service carrying a tag, all-or-nothing.

mod switch_support;

use kong_switch_core::switch::{Outcome, SwitchRequest, SwitchTarget};
use serde_json::json;
use switch_support::{FakeKong, temp_log};

fn batch_topology(kong: &FakeKong, apps: &[&str]) {
    let mut s = kong.state();
    for app in apps {
        s.services.push(json!({"id": format!("id-{app}"), "name": app, "host": format!("{app}-blue"), "tags": ["team=shop"]}));
        for color in ["blue", "green"] {
            let name = format!("{app}-{color}");
            s.upstreams
                .push(json!({"id": format!("u-{name}"), "name": name}));
            s.targets.insert(
                name.clone(),
                vec![json!({"id": format!("t-{name}"), "target": "10.0.0.1:8000", "weight": 100})],
            );
        }
    }
}

fn request() -> SwitchRequest {
    let mut req = SwitchRequest::new(SwitchTarget::parse("tag:team=shop").expect("target"));
    req.parallelism = 2;
    req
}

#[tokio::test]
async fn batch_switches_every_tagged_service() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a", "b", "c"]);
    let (_dir, log) = temp_log();
    let report = kong
        .engine(log)
        .switch_batch(&request())
        .await
        .expect("batch");
    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    let mut writes = kong.writes().await;
    writes.sort();
    assert_eq!(
        writes,
        ["a", "b", "c"]
            .iter()
            .map(|a| format!(
                "PATCH /services/{a} {}",
                json!({"host": format!("{a}-green")})
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.services.len(), 3);
}

#[tokio::test]
async fn one_refused_service_refuses_the_whole_batch_without_writes() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a", "b", "c"]);
    kong.state()
        .health
        .insert("t-b-green".into(), "UNHEALTHY".into());
    let (_dir, log) = temp_log();
    let report = kong
        .engine(log)
        .switch_batch(&request())
        .await
        .expect("batch");
    assert_eq!(report.outcome, Outcome::Refused);
    let refused: Vec<&str> = report
        .services
        .iter()
        .filter(|s| s.outcome == Outcome::Refused)
        .map(|s| s.target.as_str())
        .collect();
    assert_eq!(refused, vec!["b"]);
    assert!(kong.writes().await.is_empty());
}

#[tokio::test]
async fn a_failed_write_undoes_every_applied_service() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a", "b", "c"]);
    kong.state()
        .fail
        .push(("PATCH".into(), "/services/b".into(), 500));
    let (_dir, log) = temp_log();
    let mut req = request();
    req.parallelism = 1;

    let report = kong.engine(log).switch_batch(&req).await.expect("batch");

    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.message);
    let hosts: Vec<String> = kong
        .state()
        .services
        .iter()
        .map(|s| s["host"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(hosts.iter().all(|h| h.ends_with("-blue")), "{hosts:?}");
    let writes = kong.writes().await;
    let undo = writes.iter().filter(|w| w.contains("-blue")).count();
    let applied = writes
        .iter()
        .filter(|w| w.contains("-green") && !w.contains("/services/b "))
        .count();
    assert_eq!(
        undo, applied,
        "every applied service was undone: {writes:?}"
    );
}
