//! Every captured Kong body decodes into the model, survives encode → decode unchanged, keeps
//! unknown fields in `extra`, and never leaks them into write (patch) types.

use std::fmt::Debug;

use kong_switch_core::model::patch::{NewTarget, NewUpstream, ServicePatch, TargetWeight};
use kong_switch_core::model::{
    BalancerHealth, NodeInfo, NodeStatus, Page, Route, Service, Target, TargetHealth, Upstream,
    UpstreamHealth,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes `json` as `T`, encodes it, decodes again and checks both values are equal.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(name: &str, json: &str) -> T {
    let first: T = serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: {e}"));
    let encoded = serde_json::to_string(&first).unwrap();
    let second: T = serde_json::from_str(&encoded).unwrap_or_else(|e| panic!("{name} again: {e}"));
    assert_eq!(first, second, "{name}");
    first
}

macro_rules! fixture {
    ($version:literal, $name:literal) => {
        (
            concat!($version, "/", $name),
            include_str!(concat!("../../fixtures/", $version, "/", $name, ".json")),
        )
    };
}

/// `{"data": T}` answers (balancer health).
#[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
struct Data<T> {
    #[serde(default)]
    data: Option<T>,
}

#[test]
fn root_info_fixtures_round_trip() {
    for (name, json) in [
        fixture!("kong-2.8", "root-info"),
        fixture!("kong-2.8", "root-info-control-plane"),
        fixture!("kong-3.x", "root-info"),
        fixture!("kong-3.x", "root-info-dbless"),
        fixture!("kong-3.x", "root-info-control-plane"),
    ] {
        let info: NodeInfo = round_trip(name, json);
        assert!(!info.version.is_empty(), "{name}");
        assert!(info.configuration.is_some(), "{name}");
    }
}

#[test]
fn status_fixtures_round_trip() {
    for (name, json) in [
        fixture!("kong-2.8", "status"),
        fixture!("kong-2.8", "status-dbless"),
        fixture!("kong-3.x", "status-data-plane"),
    ] {
        let status: NodeStatus = round_trip(name, json);
        assert!(status.server.is_some(), "{name}");
    }
    let (name, json) = fixture!("kong-2.8", "status-dbless");
    let status: NodeStatus = round_trip(name, json);
    assert_eq!(
        status.configuration_hash.as_deref(),
        Some("bf1009468fba8c5d2f8bc7e6ab0c76d0")
    );
}

#[test]
fn entity_fixtures_round_trip() {
    for (name, json) in [
        fixture!("kong-2.8", "service"),
        fixture!("kong-3.x", "service"),
    ] {
        let s: Service = round_trip(name, json);
        assert!(!s.host.is_empty(), "{name}");
    }
    for (name, json) in [fixture!("kong-2.8", "route"), fixture!("kong-3.x", "route")] {
        let r: Route = round_trip(name, json);
        assert!(r.service.is_some(), "{name}");
    }
    for (name, json) in [
        fixture!("kong-2.8", "upstream"),
        fixture!("kong-3.x", "upstream"),
    ] {
        let u: Upstream = round_trip(name, json);
        let hc = u
            .healthchecks
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: healthchecks"));
        let passive = hc
            .passive
            .as_ref()
            .and_then(|p| p.healthy.as_ref())
            .unwrap();
        assert_eq!(
            passive.http_statuses.as_ref().map(Vec::len),
            Some(19),
            "{name}"
        );
        assert!(
            hc.active_enabled(),
            "{name}: the captured upstream probes actively"
        );
    }
    for (name, json) in [
        fixture!("kong-2.8", "target"),
        fixture!("kong-3.x", "target"),
    ] {
        let t: Target = round_trip(name, json);
        assert!(t.upstream.is_some(), "{name}");
    }
}

#[test]
fn page_fixtures_round_trip() {
    for (name, json) in [
        fixture!("kong-2.8", "targets-page"),
        fixture!("kong-2.8", "targets-page-with-offset"),
        fixture!("kong-3.x", "targets-page"),
    ] {
        let page: Page<Target> = round_trip(name, json);
        assert!(!page.data.is_empty(), "{name}");
    }
    let (name, json) = fixture!("kong-2.8", "services-page");
    let page: Page<Service> = round_trip(name, json);
    assert!(page.offset.is_some() && page.next.is_some(), "{name}");
}

#[test]
fn health_fixtures_round_trip() {
    for (name, json) in [
        fixture!("kong-2.8", "upstream-health"),
        fixture!("kong-2.8", "upstream-health-dbless"),
        fixture!("kong-2.8", "upstream-health-dns-error"),
        fixture!("kong-2.8", "upstream-health-control-plane"),
        fixture!("kong-3.x", "upstream-health"),
        fixture!("kong-3.x", "upstream-health-dns-error"),
        fixture!("kong-3.x", "upstream-health-control-plane"),
        fixture!("kong-3.x", "upstream-health-data-plane"),
    ] {
        let h: UpstreamHealth = round_trip(name, json);
        assert!(!h.data.is_empty(), "{name}");
    }
    for (name, json) in [
        fixture!("kong-2.8", "balancer-health"),
        fixture!("kong-2.8", "balancer-health-data-plane"),
        fixture!("kong-3.x", "balancer-health"),
        fixture!("kong-3.x", "balancer-health-unhealthy"),
    ] {
        let b: Data<BalancerHealth> = round_trip(name, json);
        assert!(b.data.is_some(), "{name}");
    }
    for (name, json) in [
        fixture!("kong-2.8", "balancer-health-control-plane"),
        fixture!("kong-3.x", "balancer-health-control-plane"),
    ] {
        let b: Data<BalancerHealth> = round_trip(name, json);
        assert!(b.data.is_none(), "{name}: a control plane has no balancer");
    }
}

#[test]
fn health_values_decode_including_dns_error_and_healthchecks_off() {
    let (name, json) = fixture!("kong-2.8", "upstream-health");
    let h: UpstreamHealth = round_trip(name, json);
    assert!(
        h.data
            .iter()
            .all(|t| t.health == Some(TargetHealth::HealthchecksOff))
    );
    assert_eq!(h.data[0].data.as_ref().unwrap().addresses.len(), 1);

    let (name, json) = fixture!("kong-2.8", "upstream-health-dns-error");
    let h: UpstreamHealth = round_trip(name, json);
    assert_eq!(h.data[0].health, Some(TargetHealth::DnsError));
    let data = h.data[0].data.as_ref().unwrap();
    assert!(
        data.addresses.is_empty(),
        "`addresses: {{}}` reads as empty"
    );
    assert_eq!(data.dns.as_deref(), Some("dns server error: 3 name error"));
    assert_eq!(h.data[1].health, Some(TargetHealth::Healthy));

    let (name, json) = fixture!("kong-3.x", "upstream-health-control-plane");
    let h: UpstreamHealth = round_trip(name, json);
    assert!(
        h.data
            .iter()
            .all(|t| t.health.is_none() && t.data.is_none()),
        "bare targets"
    );
}

#[test]
fn unknown_fields_are_kept_in_extra() {
    let (name, json) = fixture!("kong-3.x", "upstream");
    let u: Upstream = round_trip(name, json);
    assert!(
        u.extra.contains_key("hash_on_query_arg"),
        "{:?}",
        u.extra.keys()
    );
    let (name, json) = fixture!("kong-2.8", "root-info");
    let info: NodeInfo = round_trip(name, json);
    assert!(info.extra.contains_key("plugins") && info.extra.contains_key("pids"));
    let conf = info.configuration.unwrap();
    assert!(conf.extra.contains_key("admin_listen"));

    let with_new_field = r#"{"target":"10.0.0.1:8000","weight":5,"future_field":{"x":1}}"#;
    let t: Target = round_trip("target with a future field", with_new_field);
    assert_eq!(
        t.extra.get("future_field"),
        Some(&serde_json::json!({"x": 1}))
    );
    let re_encoded = serde_json::to_value(&t).unwrap();
    assert_eq!(
        re_encoded["future_field"],
        serde_json::json!({"x": 1}),
        "kept on re-encode"
    );
}

#[test]
fn patch_types_never_carry_unknown_fields() {
    let (name, json) = fixture!("kong-3.x", "service");
    let service: Service = round_trip(name, json);
    assert!(!service.extra.is_empty() || service.id.is_some());
    let patch = ServicePatch {
        host: Some(service.host.clone()),
        port: service.port,
    };
    let keys: Vec<String> = serde_json::to_value(&patch)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["host", "port"]);

    let (name, json) = fixture!("kong-3.x", "upstream");
    let upstream: Upstream = round_trip(name, json);
    let new = NewUpstream {
        name: "shop-green".into(),
        healthchecks: upstream.healthchecks.clone(),
        algorithm: upstream.algorithm.clone(),
        tags: None,
    };
    let encoded = serde_json::to_value(&new).unwrap();
    // Compared as a set: key order depends on serde_json's `preserve_order`, which another
    // workspace member turns on when the workspace is built together.
    let mut top: Vec<&str> = encoded
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    top.sort_unstable();
    assert_eq!(top, ["algorithm", "healthchecks", "name"]);
    assert!(!encoded.to_string().contains("hash_on_query_arg"));

    let target = serde_json::to_value(NewTarget {
        target: "10.0.0.1:8000".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(target, serde_json::json!({"target": "10.0.0.1:8000"}));
    assert_eq!(
        serde_json::to_value(TargetWeight { weight: 7 }).unwrap(),
        serde_json::json!({"weight": 7})
    );
}

#[test]
fn null_fields_decode_as_none() {
    let (name, json) = fixture!("kong-2.8", "target");
    let t: Target = round_trip(name, json);
    assert_eq!(t.tags, None, "`tags: null`");
    let (name, json) = fixture!("kong-2.8", "root-info-control-plane");
    let info: NodeInfo = round_trip(name, json);
    assert_eq!(info.edition, None, "`edition: null` on 2.8");
    let (name, json) = fixture!("kong-2.8", "upstream");
    let u: Upstream = round_trip(name, json);
    assert_eq!(u.host_header, None);
    assert_eq!(u.client_certificate, None);
}

#[test]
fn integer_and_float_timestamps_survive_re_encoding() {
    let (name, json) = fixture!("kong-2.8", "target");
    let t: Target = round_trip(name, json);
    let created = t.created_at.unwrap();
    assert_eq!(serde_json::to_string(&created).unwrap(), "1795562177.807");
    assert_eq!(
        created.to_datetime().unwrap().timestamp_subsec_millis(),
        807
    );

    let (name, json) = fixture!("kong-3.x", "upstream");
    let u: Upstream = round_trip(name, json);
    assert_eq!(
        serde_json::to_string(&u.created_at.unwrap()).unwrap(),
        "1795563136"
    );
    assert!(u.updated_at.is_some(), "3.x upstreams carry updated_at");

    let (name, json) = fixture!("kong-2.8", "upstream");
    let u: Upstream = round_trip(name, json);
    assert!(u.updated_at.is_none(), "2.8 upstreams have no updated_at");
}

#[test]
fn error_fixtures_are_kong_error_bodies() {
    for (name, json) in [
        fixture!("kong-2.8", "error-schema-violation"),
        fixture!("kong-2.8", "error-unique-violation"),
        fixture!("kong-2.8", "error-not-found-code6"),
        fixture!("kong-2.8", "error-not-found"),
        fixture!("kong-2.8", "error-invalid-size"),
        fixture!("kong-2.8", "error-invalid-tag-filter"),
        fixture!("kong-2.8", "error-dbless-write"),
        fixture!("kong-3.x", "error-dbless-write"),
        fixture!("kong-3.x", "error-unique-violation"),
        fixture!("kong-3.x", "error-invalid-declarative-config"),
        fixture!("kong-3.x", "error-not-found"),
    ] {
        let body: serde_json::Value = serde_json::from_str(json).unwrap();
        assert!(body["message"].is_string(), "{name}");
    }
}

#[test]
fn health_entries_do_not_duplicate_health_keys_into_the_target() {
    let (name, json) = fixture!("kong-3.x", "upstream-health");
    let h: UpstreamHealth = round_trip(name, json);
    for entry in &h.data {
        assert!(
            !entry.target.extra.contains_key("health"),
            "{:?}",
            entry.target.extra
        );
        assert!(
            !entry.target.extra.contains_key("data"),
            "{:?}",
            entry.target.extra
        );
    }
    let encoded = serde_json::to_string(&h.data[0]).unwrap();
    assert_eq!(
        encoded.matches("\"health\":").count(),
        1 + h.data[0].data.as_ref().map_or(0, |d| d.addresses.len()),
        "{encoded}"
    );
}
