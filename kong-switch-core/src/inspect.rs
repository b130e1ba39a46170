//! Read-only views for `ping` and `status`: what Kong is, and where a service's traffic goes.
//!
//! The reports are plain `Serialize` types: the CLI's `--output json` prints them as they are,
//! so their shape is the documented, stable JSON output.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use crate::admin::{KongClient, ListParams};
use crate::model::{Mode, NameOrId, Route, Service, TargetHealth, Upstream};
use crate::switch::Sides;

/// `kong-switch ping`: the Admin API answered, and what it is.
#[derive(Debug, Clone, Serialize)]
pub struct PingReport {
    /// The Admin API URL asked (without credentials).
    pub admin_url: String,
    /// Kong's version string.
    pub version: String,
    /// `community` or `enterprise`, when known.
    pub edition: Option<String>,
    /// Deployment mode.
    pub mode: Mode,
    /// Node id.
    pub node_id: Option<String>,
    /// Host name of the node.
    pub hostname: Option<String>,
    /// Round trip of `GET /` in milliseconds.
    pub latency_ms: u64,
}

/// Asks `GET /` and summarises the answer.
pub async fn ping(client: &KongClient) -> crate::admin::Result<PingReport> {
    let started = Instant::now();
    let info = client.node_info().await?;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(PingReport {
        admin_url: client.config().base_url().to_string(),
        edition: info.edition().map(str::to_owned),
        mode: info.mode(),
        node_id: info.node_id.clone(),
        hostname: info.hostname.clone(),
        version: info.version,
        latency_ms,
    })
}

/// `kong-switch status <service>`: where the service's traffic goes now.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// The Kong node that answered.
    pub kong: KongSummary,
    /// The service.
    pub service: ServiceSummary,
    /// Routes sending traffic to the service.
    pub routes: Vec<RouteSummary>,
    /// The upstream named by the service's host, if it names one.
    pub upstream: Option<UpstreamStatus>,
    /// `blue`, `green` (or another color tag) when the naming convention or tags tell.
    pub active_color: Option<String>,
    /// The `route` strategy's shape: a `<base>-blue`/`<base>-green` pair of services whose
    /// routes move between them. `service` and `routes` are then those of the service holding
    /// the routes. Left out for other shapes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_pair: Option<Vec<PairMember>>,
}

/// One service of a route pair and how many routes it holds.
#[derive(Debug, Clone, Serialize)]
pub struct PairMember {
    /// Its name (or id).
    pub service: String,
    /// Its color, if named or tagged.
    pub color: Option<String>,
    /// Routes pointing at it.
    pub routes: usize,
}

/// The Kong node behind a report.
#[derive(Debug, Clone, Serialize)]
pub struct KongSummary {
    /// Version string.
    pub version: String,
    /// Deployment mode.
    pub mode: Mode,
}

/// The fields of a service that decide where its traffic goes.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceSummary {
    /// Id.
    pub id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Host: an upstream name or a DNS name.
    pub host: String,
    /// Port.
    pub port: Option<u16>,
    /// Protocol.
    pub protocol: Option<String>,
    /// Path.
    pub path: Option<String>,
    /// Color of the service itself (route strategy), if named or tagged.
    pub color: Option<String>,
}

/// A route of the service.
#[derive(Debug, Clone, Serialize)]
pub struct RouteSummary {
    /// Id.
    pub id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Paths matched.
    pub paths: Vec<String>,
    /// Hosts matched.
    pub hosts: Vec<String>,
}

/// The upstream behind a service, with its targets as the answering node sees them.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamStatus {
    /// Id.
    pub id: Option<String>,
    /// Name.
    pub name: String,
    /// Balancing algorithm.
    pub algorithm: Option<String>,
    /// Whether Kong checks the targets' health.
    pub healthchecks_enabled: bool,
    /// Color of the upstream, if named or tagged.
    pub color: Option<String>,
    /// The targets.
    pub targets: Vec<TargetStatus>,
}

/// One target with its weight, health and color.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    /// Id.
    pub id: Option<String>,
    /// Address.
    pub target: String,
    /// Weight (0 gets no traffic).
    pub weight: u32,
    /// Health on the answering node; `None` when the node has no balancer view.
    pub health: Option<TargetHealth>,
    /// Color tag of the target, if any.
    pub color: Option<String>,
}

/// Reads the service, its routes, the upstream its host names (if any) and that upstream's
/// targets with health, concurrently where the reads do not depend on each other.
///
/// `service` may also name the `route` strategy's pair, by its base name (`orders` for
/// `orders-blue`/`orders-green`) or by either side: when it is not a service whose host is
/// an upstream and the pair exists, the status is that of the service holding the routes,
/// with [`ServiceStatus::route_pair`] set. A name that is neither is Kong's 404.
pub async fn service_status(
    client: &KongClient,
    service: &NameOrId,
    sides: &Sides,
) -> crate::admin::Result<ServiceStatus> {
    let services = client.services();
    let (node, svc) = futures::try_join!(client.node(), services.get_opt(service))?;
    let upstream = match &svc {
        Some(svc) => upstream_status(client, svc, sides, node.mode).await?,
        None => None,
    };
    let pair = match (&svc, &upstream) {
        (Some(_), Some(_)) => None,
        _ => route_pair(client, service, svc.as_ref(), sides).await?,
    };
    let kong = KongSummary {
        version: node.info.version.clone(),
        mode: node.mode,
    };
    if let Some(pair) = pair {
        return Ok(pair_status(kong, pair, sides));
    }
    let svc = match svc {
        Some(svc) => svc,
        // Neither a service nor a pair: Kong's own 404 for the name (or the service, if it
        // was created meanwhile).
        None => services.get(service).await?,
    };
    let routes = client.routes_of_service(service).await?;
    let service_color = sides.color_of(svc.key(), svc.tags.as_deref());
    let active_color = match &upstream {
        Some(u) => u.color.clone().or_else(|| weighted_color(&u.targets)),
        None => service_color.clone(),
    };
    Ok(ServiceStatus {
        kong,
        service: summarize_service(&svc, service_color),
        routes: routes.iter().map(summarize_route).collect(),
        upstream,
        active_color,
        route_pair: None,
    })
}

/// The services of a route pair with their routes, when at least two of the names exist
/// (or one, when `name` itself is not a service).
async fn route_pair(
    client: &KongClient,
    name: &NameOrId,
    found: Option<&Service>,
    sides: &Sides,
) -> crate::admin::Result<Option<Vec<(Service, Vec<Route>)>>> {
    let key = name.as_str();
    let base = key
        .strip_suffix(sides.blue_suffix.as_str())
        .or_else(|| key.strip_suffix(sides.green_suffix.as_str()))
        .unwrap_or(key);
    let names: Vec<String> = [&sides.blue_suffix, &sides.green_suffix]
        .iter()
        .map(|suffix| format!("{base}{suffix}"))
        .filter(|n| n != key)
        .collect();
    let others = futures::future::try_join_all(
        names
            .iter()
            .map(|n| async move { client.services().get_opt(&NameOrId::from(n.as_str())).await }),
    )
    .await?;
    let mut members: Vec<Service> = found.cloned().into_iter().collect();
    members.extend(others.into_iter().flatten());
    let enough = if found.is_some() { 2 } else { 1 };
    if members.len() < enough {
        return Ok(None);
    }
    let routes = futures::future::try_join_all(members.iter().map(|s| {
        let key = NameOrId::from(s.id.as_deref().unwrap_or(s.key()));
        async move { client.routes_of_service(&key).await }
    }))
    .await?;
    Ok(Some(members.into_iter().zip(routes).collect()))
}

/// The status of a route pair: the service holding the routes (the first one, if both or
/// neither do: then no color is active).
fn pair_status(
    kong: KongSummary,
    mut pair: Vec<(Service, Vec<Route>)>,
    sides: &Sides,
) -> ServiceStatus {
    let color = |s: &Service| sides.color_of(s.key(), s.tags.as_deref());
    // Blue first, whichever name was asked for.
    pair.sort_by_key(|(s, _)| color(s).as_deref() != Some("blue"));
    let holding: Vec<usize> = (0..pair.len()).filter(|i| !pair[*i].1.is_empty()).collect();
    let shown = holding.first().copied().unwrap_or(0);
    let (svc, routes) = &pair[shown];
    ServiceStatus {
        kong,
        service: summarize_service(svc, color(svc)),
        routes: routes.iter().map(summarize_route).collect(),
        upstream: None,
        active_color: if holding.len() == 1 { color(svc) } else { None },
        route_pair: Some(
            pair.iter()
                .map(|(s, r)| PairMember {
                    service: s.key().to_owned(),
                    color: color(s),
                    routes: r.len(),
                })
                .collect(),
        ),
    }
}

async fn upstream_status(
    client: &KongClient,
    svc: &Service,
    sides: &Sides,
    mode: Mode,
) -> crate::admin::Result<Option<UpstreamStatus>> {
    let key = NameOrId::from(svc.host.as_str());
    let Some(upstream) = client.upstreams().get_opt(&key).await? else {
        return Ok(None);
    };
    let targets_handle = client.targets(key.clone());
    let params = ListParams::default();
    let targets = targets_handle.list_all(&params);
    let health = async {
        if mode == Mode::HybridControlPlane {
            Ok(None)
        } else {
            client.upstreams().health(&key).await.map(Some)
        }
    };
    let (targets, health) = futures::try_join!(targets, health)?;
    // Health entries indexed by id and by address: a search per target would be quadratic
    // in large upstreams. A target is matched by its id, else by its address.
    let entries = health.as_ref().map_or(&[][..], |h| h.data.as_slice());
    let mut by_id = HashMap::new();
    let mut by_address = HashMap::new();
    for e in entries {
        if let Some(id) = e.target.id.as_deref() {
            by_id.entry(id).or_insert(e);
        }
        by_address.entry(e.target.target.as_str()).or_insert(e);
    }
    let health_of = |id: Option<&str>, address: &str| {
        id.and_then(|id| by_id.get(id))
            .or_else(|| by_address.get(address))
            .and_then(|e| e.health.clone())
    };
    let targets = targets
        .iter()
        .map(|t| TargetStatus {
            id: t.id.clone(),
            target: t.target.clone(),
            weight: t.weight(),
            health: health_of(t.id.as_deref(), &t.target),
            color: sides.target_color(t),
        })
        .collect();
    Ok(Some(summarize_upstream(&upstream, sides, targets)))
}

fn summarize_upstream(u: &Upstream, sides: &Sides, targets: Vec<TargetStatus>) -> UpstreamStatus {
    UpstreamStatus {
        id: u.id.clone(),
        name: u.name.clone(),
        algorithm: u.algorithm.clone(),
        healthchecks_enabled: u.healthchecks_enabled(),
        color: sides.color_of(&u.name, u.tags.as_deref()),
        targets,
    }
}

/// Within one upstream holding both colors (weights strategy), the color that carries all
/// the weight; `None` while traffic is split or no target is tagged.
fn weighted_color(targets: &[TargetStatus]) -> Option<String> {
    let mut live = targets.iter().filter(|t| t.weight > 0);
    let first = live.next()?.color.clone()?;
    live.all(|t| t.color.as_deref() == Some(first.as_str()))
        .then_some(first)
}

fn summarize_service(svc: &Service, color: Option<String>) -> ServiceSummary {
    ServiceSummary {
        id: svc.id.clone(),
        name: svc.name.clone(),
        host: svc.host.clone(),
        port: svc.port,
        protocol: svc.protocol.clone(),
        path: svc.path.clone(),
        color,
    }
}

fn summarize_route(route: &Route) -> RouteSummary {
    RouteSummary {
        id: route.id.clone(),
        name: route.name.clone(),
        paths: route.paths.clone().unwrap_or_default(),
        hosts: route.hosts.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_weights_have_no_single_active_color() {
        let t = |weight, color: &str| TargetStatus {
            id: None,
            target: "x:1".into(),
            weight,
            health: None,
            color: Some(color.into()),
        };
        assert_eq!(
            weighted_color(&[t(100, "blue"), t(0, "green")]).as_deref(),
            Some("blue")
        );
        assert_eq!(weighted_color(&[t(50, "blue"), t(50, "green")]), None);
    }
}
