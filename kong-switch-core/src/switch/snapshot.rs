//! Reading Kong concurrently, finding the sides, gating, and planning one service.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;
use url::Url;

use crate::admin::{self, KongClient, ListParams, Node, TagFilter};
use crate::model::{
    ActiveHealthcheck, Mode, NameOrId, Route, Service, Target, TargetHealth, Upstream,
    UpstreamHealth,
};

use super::error::{Error, Result};
use super::gates::{self, GateOutcome, HealthCounts};
use super::plan::{
    self, Plan, Side, SidedTarget, StagedChange, TargetSide, render_declarative_steps,
    render_entity_steps,
};
use super::progress::{Progress, ProgressEvent};
use super::report::ReadStats;
use super::request::{Sides, Strategy, StrategyKind, SwitchRequest};

/// Everything the engine needs from a read of Kong for one service.
pub(crate) struct Prepared {
    /// The node written to.
    pub node: Arc<Node>,
    /// The plan (empty for a no-op).
    pub plan: Plan,
    /// Gates, all evaluated (empty for a no-op).
    pub gates: Vec<GateOutcome>,
    /// Reads made.
    pub reads: ReadStats,
    /// The changes the plan's steps were rendered from (a DB-less batch renders the changes
    /// of all its services into one `POST /config`).
    pub changes: Vec<StagedChange>,
}

/// What is read on the primary node and the other nodes for the health gates.
struct HealthView {
    label: String,
    health: std::result::Result<UpstreamHealth, String>,
}

/// The I/O handles preparation needs.
pub(crate) struct Reader<'a> {
    pub client: &'a KongClient,
    pub http: &'a reqwest::Client,
    pub progress: &'a dyn Progress,
    pub req: &'a SwitchRequest,
    /// Destinations already read by this reader (a batch reads a shared one once).
    pub destinations: DestinationCache,
    /// Reading for a batch: on a DB-less node, plans are rendered as entity writes (for the
    /// report) and the engine renders every service's changes into one `POST /config`.
    pub batch: bool,
}

/// A destination upstream as read for the upstream strategy: the upstream, its targets, its
/// health views, and kong-switch's own check of the targets about to receive traffic (already
/// folded into the views).
struct Destination {
    upstream: Option<Upstream>,
    targets: Option<Vec<Target>>,
    views: Vec<HealthView>,
    checked: Option<GateOutcome>,
}

/// Destinations by upstream name, each read at most once per [`Reader`].
#[derive(Default)]
pub(crate) struct DestinationCache(
    std::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Destination>>>>>,
);

impl Sides {
    /// The color of an entity: by name suffix, else by color tag, else `None`.
    pub fn color_of(&self, name: &str, tags: Option<&[String]>) -> Option<String> {
        color_of(name, tags, self)
    }

    /// The name suffix of `color`'s side: the blue suffix for `blue`, else the green one.
    pub(crate) fn suffix(&self, color: &str) -> &str {
        if color == "blue" {
            &self.blue_suffix
        } else {
            &self.green_suffix
        }
    }

    /// A target's color: its color tag, else the first DNS label of its host by suffix.
    pub fn target_color(&self, target: &Target) -> Option<String> {
        target_color(target, self)
    }
}

fn color_of(name: &str, tags: Option<&[String]>, sides: &Sides) -> Option<String> {
    if name.ends_with(&sides.green_suffix) {
        return Some("green".into());
    }
    if name.ends_with(&sides.blue_suffix) {
        return Some("blue".into());
    }
    let prefix = format!("{}=", sides.color_tag);
    tags.into_iter()
        .flatten()
        .find_map(|t| t.strip_prefix(&prefix).map(str::to_owned))
}

/// The other side's name by the naming convention, if `name` follows it.
pub(crate) fn counterpart(name: &str, sides: &Sides) -> Option<String> {
    if let Some(base) = name.strip_suffix(&sides.blue_suffix) {
        return Some(format!("{base}{}", sides.green_suffix));
    }
    name.strip_suffix(&sides.green_suffix)
        .map(|base| format!("{base}{}", sides.blue_suffix))
}

fn side_of(name: &str, tags: Option<&[String]>, sides: &Sides) -> Side {
    Side::new(
        color_of(name, tags, sides).unwrap_or_else(|| name.to_owned()),
        name,
    )
}

/// The color a switch goes to when the request does not name a side.
const GREEN: &str = "green";

fn other_color(color: &str) -> Option<&'static str> {
    match color {
        "blue" => Some("green"),
        "green" => Some("blue"),
        _ => None,
    }
}

/// The tags of `active` other than its color tag: a tagged counterpart must share them.
fn shared_tags(tags: Option<&[String]>, sides: &Sides) -> Vec<String> {
    let prefix = format!("{}=", sides.color_tag);
    tags.into_iter()
        .flatten()
        .filter(|t| !t.starts_with(&prefix))
        .cloned()
        .collect()
}

/// Picks the tagged counterpart among `candidates` (`(name, tags)`): the one sharing every
/// non-color tag of the active side. `Ok(None)` when there is none.
pub(crate) fn pick_tagged(
    candidates: &[(String, Vec<String>)],
    active: &str,
    shared: &[String],
) -> Result<Option<String>> {
    let matching: Vec<&String> = candidates
        .iter()
        .filter(|(name, tags)| name != active && shared.iter().all(|s| tags.contains(s)))
        .map(|(name, _)| name)
        .collect();
    match matching.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        many => Err(Error::invalid(
            "to",
            format!(
                "several candidates for the other side of {active}: {}; name one with `to`",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn not_found_as_none<T>(r: admin::Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Parses the `config` of `GET /config`: a JSON document, or YAML text.
pub(crate) fn parse_declarative(config: Value) -> Result<Value> {
    match config {
        Value::String(text) => serde_yaml_ng::from_str::<Value>(&text).map_err(|e| {
            Error::Unsupported(format!(
                "cannot parse the node's declarative config (GET /config): {e}"
            ))
        }),
        Value::Object(_) => Ok(config),
        other => Err(Error::Unsupported(format!(
            "GET /config returned {other}, not a declarative config"
        ))),
    }
}

impl Reader<'_> {
    async fn node(&self) -> Result<Arc<Node>> {
        Ok(self.client.node().await?)
    }

    async fn service_opt(&self, key: &NameOrId) -> Result<Option<Service>> {
        Ok(self.client.services().get_opt(key).await?)
    }

    async fn upstream_opt(&self, key: &NameOrId) -> Result<Option<Upstream>> {
        Ok(self.client.upstreams().get_opt(key).await?)
    }

    /// The targets of an upstream; `None` when the upstream does not exist.
    async fn targets_opt(&self, key: &NameOrId) -> Result<Option<Vec<Target>>> {
        not_found_as_none(
            self.client
                .targets(key.clone())
                .list_all(&ListParams::default())
                .await,
        )
    }

    fn reading(&self, what: impl Into<String>) {
        self.progress
            .event(ProgressEvent::Reading { what: what.into() });
    }

    /// Reads health of `upstream` where it can be seen: the primary node (unless it is a
    /// hybrid control plane), the data planes' Status APIs, and every extra node.
    async fn health_views(
        &self,
        node: &Node,
        upstream: &str,
        reads: &mut ReadStats,
    ) -> Vec<HealthView> {
        reads.round(self.health_reads(node));
        self.fetch_health_views(node, upstream).await
    }

    /// Requests [`Reader::fetch_health_views`] issues at once.
    fn health_reads(&self, node: &Node) -> u32 {
        u32::from(node.has_health_view())
            + u32::try_from(self.req.gates.data_planes.len() + self.req.nodes.len())
                .unwrap_or(u32::MAX)
    }

    /// The health views of `upstream`, read concurrently.
    async fn fetch_health_views(&self, node: &Node, upstream: &str) -> Vec<HealthView> {
        let key = NameOrId::from(upstream);
        let primary = async {
            if node.has_health_view() {
                let h = self.client.upstreams().health(&key).await;
                Some(HealthView {
                    label: String::new(),
                    health: h.map_err(|e| e.to_string()),
                })
            } else {
                None
            }
        };
        let dps = join_all(self.req.gates.data_planes.iter().map(|dp| async move {
            HealthView {
                label: format!(
                    "dp {}:{}",
                    dp.host_str().unwrap_or("?"),
                    dp.port_or_known_default().unwrap_or_default()
                ),
                health: data_plane_health(self.http, dp, upstream).await,
            }
        }));
        let extra = join_all(self.req.nodes.iter().map(|n| {
            let key = key.clone();
            async move {
                HealthView {
                    label: n.name.clone(),
                    health: n
                        .client
                        .upstreams()
                        .health(&key)
                        .await
                        .map_err(|e| e.to_string()),
                }
            }
        }));
        let (primary, dps, extra) = futures::join!(primary, dps, extra);
        let mut views: Vec<HealthView> = primary.into_iter().collect();
        if !node.has_health_view() && dps.is_empty() {
            views.push(HealthView {
                label: String::new(),
                health: Err("the hybrid control plane has no health view (its /upstreams/{u}/health lists bare targets); give each data plane's Status API URL (--dp-status), or accept unknown health".into()),
            });
        }
        views.extend(dps);
        views.extend(extra);
        views
    }

    /// The gates on a destination upstream's targets: enough of them with weight > 0, and
    /// those healthy in every health view.
    fn serving_target_gates(&self, targets: &[Target], views: &[HealthView]) -> Vec<GateOutcome> {
        let weighted: Vec<&Target> = targets.iter().filter(|t| t.weight() > 0).collect();
        let mut out = vec![gates::min_targets(
            weighted.len(),
            targets.len(),
            self.req.gates.min_targets,
            "targets with weight > 0",
        )];
        let keys: Vec<String> = weighted.iter().map(|t| t.key().to_owned()).collect();
        out.extend(self.health_gates(views, &keys));
        out
    }

    fn health_gates(&self, views: &[HealthView], keys: &[String]) -> Vec<GateOutcome> {
        let g = &self.req.gates;
        views
            .iter()
            .map(|v| match &v.health {
                Ok(h) => gates::min_healthy(
                    HealthCounts::of(h, Some(keys)),
                    g.min_healthy,
                    g.allow_unknown_health,
                    &v.label,
                ),
                Err(why) => gates::health_unavailable(&v.label, why, g.allow_unknown_health),
            })
            .collect()
    }

    /// The destination upstream, its targets and its health views, all read at once, and
    /// once per reader: the services of a batch sharing a destination read it once.
    async fn destination(
        &self,
        node: &Node,
        dest: &str,
        reads: &mut ReadStats,
    ) -> Result<Arc<Destination>> {
        let cell = Arc::clone(
            self.destinations
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(dest.to_owned())
                .or_default(),
        );
        let mut fetched = false;
        let found = cell
            .get_or_try_init(|| {
                fetched = true;
                async {
                    let key = NameOrId::from(dest);
                    let (found, views) = futures::join!(
                        async {
                            futures::try_join!(self.upstream_opt(&key), self.targets_opt(&key))
                        },
                        self.fetch_health_views(node, dest),
                    );
                    let (upstream, targets) = found?;
                    let mut views = views;
                    let checked = match (&upstream, &targets) {
                        (Some(up), Some(targets)) => {
                            let serving: Vec<&Target> =
                                targets.iter().filter(|t| t.weight() > 0).collect();
                            self.check_before_traffic(up, &serving, &mut views).await
                        }
                        _ => None,
                    };
                    Ok::<_, Error>(Arc::new(Destination {
                        upstream,
                        targets,
                        views,
                        checked,
                    }))
                }
            })
            .await?;
        if fetched {
            reads.round(2 + self.health_reads(node));
        }
        Ok(Arc::clone(found))
    }

    /// Plans one service whose body was already read (a batch lists its services by tag):
    /// no second read of the service for the upstream strategy.
    pub(crate) async fn prepare_listed(&self, service: Service, target: &str) -> Result<Prepared> {
        if self.req.strategy.kind() != StrategyKind::Upstream {
            return self.prepare(&NameOrId::from(target), target).await;
        }
        let mut reads = ReadStats::default();
        if self.client.cached_node().is_none() {
            reads.round(1);
        }
        let node = self.node().await?;
        self.prepare_upstream(node, service, target, reads).await
    }

    /// Reads one service and plans its switch.
    pub(crate) async fn prepare(&self, service_key: &NameOrId, target: &str) -> Result<Prepared> {
        let mut reads = ReadStats::default();
        match self.req.strategy.kind() {
            StrategyKind::Upstream | StrategyKind::Weights => {
                self.reading(format!("node, service {service_key}"));
                reads.round(2);
                let (node, service) =
                    futures::try_join!(self.node(), self.service_opt(service_key))?;
                let service = service.ok_or_else(|| Error::NotFound {
                    kind: "service",
                    name: service_key.to_string(),
                })?;
                if self.req.strategy.kind() == StrategyKind::Upstream {
                    self.prepare_upstream(node, service, target, reads).await
                } else {
                    self.prepare_weights(node, service, target, reads).await
                }
            }
            StrategyKind::Route => self.prepare_route(service_key, target, reads).await,
        }
    }

    /// Whether the plan's writes are `POST /config` edits (a DB-less node; a batch renders
    /// them itself, for all its services at once). The configuration is read only when each
    /// edit is written (see `dbless`).
    fn declarative(&self, node: &Node) -> Result<bool> {
        match node.mode {
            Mode::DbLess => Ok(!self.batch),
            Mode::HybridDataPlane => Err(Error::Unsupported(
                "this node is a hybrid data plane, which takes no writes; point the Admin URL at the control plane".into(),
            )),
            Mode::Traditional | Mode::HybridControlPlane => Ok(false),
        }
    }

    /// The request's destination: the color wanted (`to` when it is `blue` or `green`, else
    /// green) and the entity `to` names, if it names one.
    fn destination_request(&self) -> (&'static str, Option<&str>) {
        match self.req.to.as_deref() {
            Some(to) if other_color(to).is_some() => {
                (if to == GREEN { GREEN } else { "blue" }, None)
            }
            Some(to) => (GREEN, Some(to)),
            None => (GREEN, None),
        }
    }

    fn finish(
        &self,
        node: Arc<Node>,
        mut plan: Plan,
        changes: &[StagedChange],
        declarative: bool,
        gates: Vec<GateOutcome>,
        reads: ReadStats,
    ) -> Result<Prepared> {
        plan.declarative = declarative;
        plan.steps = if declarative {
            render_declarative_steps(changes)
        } else {
            render_entity_steps(changes)
        };
        for g in &gates {
            self.progress.event(ProgressEvent::Gate(g.clone()));
        }
        // Kept only where the engine renders them again: a DB-less batch.
        let kept_changes = if self.batch && node.mode == Mode::DbLess {
            changes.to_vec()
        } else {
            Vec::new()
        };
        Ok(Prepared {
            node,
            plan,
            gates,
            reads,
            changes: kept_changes,
        })
    }

    async fn tagged_upstream(
        &self,
        active: &Upstream,
        reads: &mut ReadStats,
    ) -> Result<Option<String>> {
        let sides = &self.req.sides;
        let Some(color) = color_of(&active.name, active.tags.as_deref(), sides) else {
            return Ok(None);
        };
        let Some(other) = other_color(&color) else {
            return Ok(None);
        };
        reads.round(1);
        let params = ListParams::default()
            .with_tags(TagFilter::All(vec![format!("{}={other}", sides.color_tag)]));
        let list = self.client.upstreams().list_all(&params).await?;
        let candidates: Vec<(String, Vec<String>)> = list
            .into_iter()
            .map(|u| (u.name, u.tags.unwrap_or_default()))
            .collect();
        pick_tagged(
            &candidates,
            &active.name,
            &shared_tags(active.tags.as_deref(), sides),
        )
    }

    async fn prepare_upstream(
        &self,
        node: Arc<Node>,
        service: Service,
        target: &str,
        mut reads: ReadStats,
    ) -> Result<Prepared> {
        let sides = &self.req.sides;
        let active = service.host.clone();
        // Without `to`, the destination is the green side: a switch when green is already
        // active is a no-op, never a flip back (going back is `to` = blue, or `rollback`).
        let (want, named) = self.destination_request();
        let mut dest = match (named, color_of(&active, None, sides).as_deref()) {
            (Some(to), _) => Some(to.to_owned()),
            (None, Some(color)) if color == want => Some(active.clone()),
            (None, _) => counterpart(&active, sides),
        };
        let mut active_tags: Option<Vec<String>> = None;
        if dest.is_none() {
            reads.round(1);
            let active_upstream = self
                .client
                .upstreams()
                .get_opt(&NameOrId::from(active.as_str()))
                .await?
                .ok_or_else(|| {
                    Error::Unsupported(format!(
                        "service {} has host {active}, which is not a Kong upstream; the upstream strategy needs one",
                        service.key()
                    ))
                })?;
            dest = match color_of(&active, active_upstream.tags.as_deref(), sides).as_deref() {
                Some(color) if color == want => Some(active.clone()),
                _ => self.tagged_upstream(&active_upstream, &mut reads).await?,
            };
            active_tags = active_upstream.tags.clone();
        }
        let from = side_of(&active, active_tags.as_deref(), sides);
        let Some(dest) = dest else {
            let gate = GateOutcome::new(
                "green_exists",
                false,
                format!("{active} follows neither the naming convention nor the color tags"),
                format!(
                    "an upstream named {active}{} or tagged {}=<other color>, or `to`",
                    sides.green_suffix, sides.color_tag
                ),
            );
            let plan = Plan::noop(StrategyKind::Upstream, target, from);
            return self.finish(node, plan, &[], false, vec![gate], reads);
        };
        if dest == active {
            let plan = Plan::noop(StrategyKind::Upstream, target, from);
            return Ok(Prepared {
                node,
                plan,
                gates: Vec::new(),
                reads,
                changes: Vec::new(),
            });
        }

        self.reading(format!("upstream {dest}, its targets and health"));
        let found = self.destination(&node, &dest, &mut reads).await?;
        let upstream = found.upstream.as_ref();
        let declarative = self.declarative(&node)?;
        let to = side_of(&dest, upstream.and_then(|u| u.tags.as_deref()), sides);
        let mut plan = Plan::noop(StrategyKind::Upstream, target, from);
        plan.to = to;
        plan.stages = vec![plan::single_stage()];
        let mut gate_list = vec![gates::exists(
            "upstream",
            upstream.map(|u| u.name.as_str()),
            &dest,
        )];
        if upstream.is_some() {
            let targets = found.targets.as_deref().unwrap_or_default();
            gate_list.extend(found.checked.clone());
            gate_list.extend(self.serving_target_gates(targets, &found.views));
        }
        let changes = plan::upstream_changes(&service, &dest);
        self.finish(node, plan, &changes, declarative, gate_list, reads)
    }

    async fn prepare_weights(
        &self,
        node: Arc<Node>,
        service: Service,
        target: &str,
        mut reads: ReadStats,
    ) -> Result<Prepared> {
        let Strategy::Weights(options) = &self.req.strategy else {
            return Err(Error::invalid("strategy", "weights options missing"));
        };
        let sides = &self.req.sides;
        let upstream_name = service.host.clone();
        let key = NameOrId::from(upstream_name.as_str());
        self.reading(format!("upstream {upstream_name} and its targets"));
        reads.round(2);
        let (upstream, targets) =
            futures::try_join!(self.upstream_opt(&key), self.targets_opt(&key),)?;
        if upstream.is_none() {
            return Err(Error::Unsupported(format!(
                "service {} has host {upstream_name}, which is not a Kong upstream; the weights strategy shifts the targets of one upstream",
                service.key()
            )));
        }
        let targets = targets.unwrap_or_default();
        let colored: Vec<(Option<String>, &Target)> = targets
            .iter()
            .map(|t| (target_color(t, sides), t))
            .collect();
        // Without `to`, traffic moves to green; green already carrying it all is a no-op.
        let to_color = self.req.to.clone().unwrap_or_else(|| GREEN.to_owned());
        let from_color = other_color(&to_color)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                if to_color == "blue" {
                    "green".into()
                } else {
                    "blue".into()
                }
            });
        let sided: Vec<SidedTarget> = colored
            .iter()
            .map(|(c, t)| {
                let side = match c.as_deref() {
                    Some(c) if c == to_color => TargetSide::To,
                    Some(c) if c == from_color => TargetSide::From,
                    _ => TargetSide::Other,
                };
                SidedTarget::new(t, side)
            })
            .collect();
        let to_keys: Vec<String> = sided
            .iter()
            .filter(|t| t.side == TargetSide::To)
            .map(|t| t.key.clone())
            .collect();
        let from_count = sided.iter().filter(|t| t.side == TargetSide::From).count();
        let declarative = self.declarative(&node)?;

        let mut plan = Plan::noop(
            StrategyKind::Weights,
            target,
            Side::new(from_color.clone(), upstream_name.clone()),
        );
        plan.to = Side::new(to_color.clone(), upstream_name.clone());
        let (stages, changes) = plan::weights_changes(
            &upstream_name,
            &sided,
            &options.schedule.percents,
            options.schedule.bake,
        );
        if changes.is_empty() && !to_keys.is_empty() {
            return Ok(Prepared {
                node,
                plan,
                gates: Vec::new(),
                reads,
                changes: Vec::new(),
            });
        }
        plan.stages = stages;
        let exists = if to_keys.is_empty() {
            GateOutcome::new(
                "green_exists",
                false,
                format!(
                    "no {to_color} target in upstream {upstream_name} ({} targets, {from_count} {from_color})",
                    targets.len()
                ),
                format!(
                    "targets named *{} or tagged {}={to_color}",
                    sides.suffix(&to_color),
                    sides.color_tag
                ),
            )
        } else {
            GateOutcome::new(
                "green_exists",
                true,
                format!(
                    "{} {to_color} target(s) in upstream {upstream_name}",
                    to_keys.len()
                ),
                format!("{to_color} targets in upstream {upstream_name}"),
            )
        };
        let mut gate_list = vec![exists];
        if !to_keys.is_empty() {
            gate_list.push(gates::min_targets(
                to_keys.len(),
                targets.len(),
                self.req.gates.min_targets,
                &format!("{to_color} targets"),
            ));
            let mut views = self.health_views(&node, &upstream_name, &mut reads).await;
            if let Some(up) = &upstream {
                let receiving: Vec<&Target> = targets
                    .iter()
                    .filter(|t| to_keys.iter().any(|k| k == t.key()))
                    .collect();
                gate_list.extend(self.check_before_traffic(up, &receiving, &mut views).await);
            }
            gate_list.extend(self.health_gates(&views, &to_keys));
        }
        self.finish(node, plan, &changes, declarative, gate_list, reads)
    }

    /// Kong's health report of a target is only as fresh as Kong's last check of it: on 2.8 a
    /// weight-0 target keeps the state of its last check (HEALTHY) however long ago that was;
    /// on 3.x it reports `HEALTHCHECKS_OFF`; and on both, a target that just went down is
    /// reported HEALTHY until Kong's next active checks count enough failures. So before a
    /// switch or shift gives `targets` traffic, when the upstream has active checks, the engine
    /// runs that same check against each of them itself (the upstream's `http_path`, `timeout`
    /// and healthy statuses), on every Kong version:
    ///
    /// - a target that passes it replaces an unknown health with HEALTHY (an UNHEALTHY from
    ///   Kong stays);
    /// - one that fails it (an error status, a refused connection, a timeout) counts as
    ///   UNHEALTHY in every health view;
    /// - one whose host does not resolve from here (a cluster-internal name seen from outside
    ///   the cluster) cannot be checked: a weight-0 target then counts as UNHEALTHY (Kong's
    ///   report of it means nothing), while for a target Kong checks (weight > 0) Kong's report
    ///   stands.
    ///
    /// Returns a gate naming what was checked, or `None` when the upstream has no active checks
    /// or there is nothing to check.
    async fn check_before_traffic(
        &self,
        upstream: &Upstream,
        targets: &[&Target],
        views: &mut [HealthView],
    ) -> Option<GateOutcome> {
        let active = upstream
            .healthchecks
            .as_ref()
            .filter(|h| h.active_enabled())
            .and_then(|h| h.active.as_ref())?;
        if targets.is_empty() {
            return None;
        }
        let checks = join_all(
            targets
                .iter()
                .map(|t| active_check(self.http, active, &t.target)),
        )
        .await;
        // Per target: `Some(healthy)` to put in place of Kong's report, `None` to keep it.
        let verdicts: Vec<Option<bool>> = targets
            .iter()
            .zip(&checks)
            .map(|(t, check)| match check {
                OwnCheck::Passed => Some(true),
                OwnCheck::Failed(_) => Some(false),
                OwnCheck::Unresolvable(_) if t.weight() == 0 => Some(false),
                OwnCheck::Unresolvable(_) => None,
            })
            .collect();
        for v in views.iter_mut() {
            let Ok(h) = v.health.as_mut() else { continue };
            for e in &mut h.data {
                let Some(i) = targets.iter().position(|t| same_target(&e.target, t)) else {
                    continue;
                };
                match verdicts[i] {
                    Some(false) => e.health = Some(TargetHealth::Unhealthy),
                    Some(true)
                        if matches!(e.health, None | Some(TargetHealth::HealthchecksOff)) =>
                    {
                        e.health = Some(TargetHealth::Healthy);
                    }
                    _ => {}
                }
            }
        }
        let passed = checks.iter().filter(|c| **c == OwnCheck::Passed).count();
        let mut observed = format!(
            "{passed} of {} target(s) about to receive traffic answered the upstream's active check (GET {}) from kong-switch",
            targets.len(),
            active.http_path.as_deref().unwrap_or("/")
        );
        let notes: Vec<String> = targets
            .iter()
            .zip(&checks)
            .filter_map(|(t, check)| match check {
                OwnCheck::Passed => None,
                OwnCheck::Failed(why) => Some(format!("{} {why}", t.target)),
                OwnCheck::Unresolvable(why) if t.weight() == 0 => Some(format!(
                    "{} {why}: Kong does not check it at weight 0",
                    t.target
                )),
                OwnCheck::Unresolvable(why) => {
                    Some(format!("{} {why}: Kong's own report is used", t.target))
                }
            })
            .collect();
        if !notes.is_empty() {
            observed.push_str(&format!(" ({})", notes.join("; ")));
        }
        Some(GateOutcome::new(
            "idle_targets_checked",
            verdicts.iter().all(|v| *v != Some(false)),
            observed,
            "every target about to receive traffic passes the active check now (Kong's own report may predate its failure)",
        ))
    }

    async fn prepare_route(
        &self,
        service_key: &NameOrId,
        target: &str,
        mut reads: ReadStats,
    ) -> Result<Prepared> {
        let sides = &self.req.sides;
        let name = service_key.as_str();
        let base = name
            .strip_suffix(&sides.blue_suffix)
            .or_else(|| name.strip_suffix(&sides.green_suffix))
            .unwrap_or(name);
        let mut names = vec![name.to_owned()];
        for n in [
            format!("{base}{}", sides.blue_suffix),
            format!("{base}{}", sides.green_suffix),
        ] {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        self.reading(format!("node, services {}", names.join(", ")));
        reads.round(1 + u32::try_from(names.len()).unwrap_or(u32::MAX));
        let (node, found) = futures::try_join!(
            self.node(),
            futures::future::try_join_all(
                names
                    .iter()
                    .map(|n| async move { self.service_opt(&NameOrId::from(n.as_str())).await })
            )
        )?;
        let services: Vec<Service> = found.into_iter().flatten().collect();
        if services.is_empty() {
            return Err(Error::NotFound {
                kind: "service",
                name: name.to_owned(),
            });
        }
        reads.round(u32::try_from(services.len()).unwrap_or(u32::MAX));
        let routes: Vec<Vec<Route>> = futures::future::try_join_all(services.iter().map(|s| {
            let key = NameOrId::from(s.id.as_deref().unwrap_or(s.key()));
            async move { self.client.routes_of_service(&key).await }
        }))
        .await?;
        let Some(active_index) = (0..services.len()).find(|i| !routes[*i].is_empty()) else {
            return Err(Error::Unsupported(format!(
                "none of {} has routes; the route strategy moves the routes of the active service",
                names.join(", ")
            )));
        };
        let active = &services[active_index];
        let active_routes = &routes[active_index];
        let from = side_of(active.key(), active.tags.as_deref(), sides);

        let active_color = color_of(active.key(), active.tags.as_deref(), sides);
        let (want, named) = self.destination_request();
        let dest_name = match named {
            Some(to) => Some(to.to_owned()),
            // The wanted side already active: the plan below is empty, a no-op.
            None if active_color.as_deref() == Some(want) => Some(active.key().to_owned()),
            None => match counterpart(active.key(), sides) {
                Some(n) => Some(n),
                None => {
                    let color = color_of(active.key(), active.tags.as_deref(), sides);
                    match color.as_deref().and_then(other_color) {
                        Some(other) => {
                            reads.round(1);
                            let params =
                                ListParams::default().with_tags(TagFilter::All(vec![format!(
                                    "{}={other}",
                                    sides.color_tag
                                )]));
                            let list = self.client.services().list_all(&params).await?;
                            let candidates: Vec<(String, Vec<String>)> = list
                                .into_iter()
                                .map(|s| (s.key().to_owned(), s.tags.unwrap_or_default()))
                                .collect();
                            pick_tagged(
                                &candidates,
                                active.key(),
                                &shared_tags(active.tags.as_deref(), sides),
                            )?
                        }
                        None => Some(format!("{base}{}", sides.suffix(want))),
                    }
                }
            },
        };
        let Some(dest_name) = dest_name else {
            let gate = GateOutcome::new(
                "green_exists",
                false,
                format!(
                    "no service tagged {}=<other color> sharing the tags of {}",
                    sides.color_tag,
                    active.key()
                ),
                "a service for the other side, or `to`",
            );
            let plan = Plan::noop(StrategyKind::Route, target, from);
            return self.finish(node, plan, &[], false, vec![gate], reads);
        };
        if dest_name == active.key() || active.id.as_deref() == Some(dest_name.as_str()) {
            let plan = Plan::noop(StrategyKind::Route, target, from);
            return Ok(Prepared {
                node,
                plan,
                gates: Vec::new(),
                reads,
                changes: Vec::new(),
            });
        }
        let dest = match services
            .iter()
            .find(|s| s.key() == dest_name || s.id.as_deref() == Some(dest_name.as_str()))
        {
            Some(s) => Some(s.clone()),
            None => {
                reads.round(1);
                self.client
                    .services()
                    .get_opt(&NameOrId::from(dest_name.as_str()))
                    .await?
            }
        };
        let declarative = self.declarative(&node)?;
        let mut plan = Plan::noop(StrategyKind::Route, target, from);
        plan.to = side_of(
            &dest_name,
            dest.as_ref().and_then(|d| d.tags.as_deref()),
            sides,
        );
        plan.stages = vec![plan::single_stage()];
        let mut gate_list = vec![gates::exists(
            "service",
            dest.as_ref().map(Service::key),
            &dest_name,
        )];
        let mut changes = Vec::new();
        if let Some(dest) = &dest {
            let host = NameOrId::from(dest.host.as_str());
            reads.round(2);
            let (upstream, targets) =
                futures::try_join!(self.upstream_opt(&host), self.targets_opt(&host),)?;
            if let Some(up) = &upstream {
                let targets = targets.unwrap_or_default();
                let mut views = self.health_views(&node, &dest.host, &mut reads).await;
                let serving: Vec<&Target> = targets.iter().filter(|t| t.weight() > 0).collect();
                gate_list.extend(self.check_before_traffic(up, &serving, &mut views).await);
                gate_list.extend(self.serving_target_gates(&targets, &views));
            } else {
                gate_list.push(GateOutcome::new(
                    "min_targets",
                    true,
                    format!(
                        "host {} is not a Kong upstream: targets and health not checked",
                        dest.host
                    ),
                    format!(
                        ">= {} (when the host is an upstream)",
                        self.req.gates.min_targets
                    ),
                ));
            }
            changes = plan::route_changes(active_routes, active, dest);
        }
        self.finish(node, plan, &changes, declarative, gate_list, reads)
    }

    /// Runs the HTTP probes of the request (gates).
    pub(crate) async fn probe_gates(&self) -> Vec<GateOutcome> {
        let results = join_all(
            self.req
                .gates
                .probes
                .iter()
                .map(|p| gates::run_probe(self.http, p)),
        )
        .await;
        let outcomes: Vec<GateOutcome> = results
            .iter()
            .zip(&self.req.gates.probes)
            .enumerate()
            .map(|(i, (answers, probe))| gates::probe_outcome(i, probe, answers))
            .collect();
        for g in &outcomes {
            self.progress.event(ProgressEvent::Gate(g.clone()));
        }
        outcomes
    }
}

fn target_color(target: &Target, sides: &Sides) -> Option<String> {
    let prefix = format!("{}=", sides.color_tag);
    if let Some(c) = target
        .tags
        .iter()
        .flatten()
        .find_map(|t| t.strip_prefix(&prefix))
    {
        return Some(c.to_owned());
    }
    let host = target
        .target
        .rsplit_once(':')
        .map_or(target.target.as_str(), |(h, _)| h);
    let label = host.split('.').next().unwrap_or(host);
    if label.ends_with(&sides.green_suffix) {
        Some("green".into())
    } else if label.ends_with(&sides.blue_suffix) {
        Some("blue".into())
    } else {
        None
    }
}

fn same_target(a: &Target, b: &Target) -> bool {
    match (a.id.as_deref(), b.id.as_deref()) {
        (Some(x), Some(y)) => x == y,
        _ => a.target == b.target,
    }
}

/// What kong-switch's own run of a target's active check found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnCheck {
    /// Answered as the upstream's check requires.
    Passed,
    /// Answered otherwise, refused the connection, or did not answer in time: why.
    Failed(String),
    /// Its host does not resolve from here, so it cannot be checked from here: why.
    Unresolvable(String),
}

/// Kong's active health check of one target, run once from here: an HTTP(S) GET of
/// `http_path` answered with one of the healthy statuses within `timeout`, or for `tcp`
/// checks a connection. Other check types (gRPC) are not run and count as failed.
async fn active_check(
    http: &reqwest::Client,
    active: &ActiveHealthcheck,
    address: &str,
) -> OwnCheck {
    let timeout = Duration::from_secs_f64(active.timeout.unwrap_or(1.0).clamp(0.1, 60.0));
    match tokio::time::timeout(timeout, tokio::net::lookup_host(address)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return OwnCheck::Unresolvable(format!("does not resolve from here ({e})")),
        Err(_) => {
            return OwnCheck::Unresolvable(format!(
                "does not resolve from here within {timeout:?}"
            ));
        }
    }
    match active.kind.as_deref().unwrap_or("http") {
        "tcp" => match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await
        {
            Ok(Ok(_)) => OwnCheck::Passed,
            Ok(Err(e)) => OwnCheck::Failed(format!("refused the connection ({e})")),
            Err(_) => OwnCheck::Failed(format!("did not accept a connection within {timeout:?}")),
        },
        scheme @ ("http" | "https") => {
            let path = active.http_path.as_deref().unwrap_or("/");
            let healthy: &[u16] = active
                .healthy
                .as_ref()
                .and_then(|h| h.http_statuses.as_deref())
                .unwrap_or(&[200, 302]);
            match http
                .get(format!("{scheme}://{address}{path}"))
                .timeout(timeout)
                .send()
                .await
            {
                Ok(resp) if healthy.contains(&resp.status().as_u16()) => OwnCheck::Passed,
                Ok(resp) => OwnCheck::Failed(format!("answered {}", resp.status().as_u16())),
                Err(e) if e.is_timeout() => {
                    OwnCheck::Failed(format!("did not answer within {timeout:?}"))
                }
                Err(e) => OwnCheck::Failed(format!("did not answer: {}", e.without_url())),
            }
        }
        other => OwnCheck::Failed(format!(
            "has a {other} active check, which kong-switch cannot run"
        )),
    }
}

async fn data_plane_health(
    http: &reqwest::Client,
    dp: &Url,
    upstream: &str,
) -> std::result::Result<UpstreamHealth, String> {
    let mut url = dp.clone();
    let base = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!(
        "{base}/upstreams/{}/health",
        NameOrId::from(upstream).to_segment()
    ));
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("data plane did not answer: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("data plane answered {}", resp.status()));
    }
    resp.json::<UpstreamHealth>()
        .await
        .map_err(|e| format!("data plane health unreadable: {}", e.without_url()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn colors_come_from_suffixes_then_tags() {
        let sides = Sides::default();
        assert_eq!(
            color_of("orders-green", None, &sides).as_deref(),
            Some("green")
        );
        let tags = vec!["app=orders".to_owned(), "kong-switch.color=blue".to_owned()];
        assert_eq!(
            color_of("orders-a", Some(&tags), &sides).as_deref(),
            Some("blue")
        );
        assert_eq!(color_of("orders", None, &sides), None);
        assert_eq!(
            counterpart("orders-blue", &sides).as_deref(),
            Some("orders-green")
        );
        assert_eq!(
            counterpart("orders-green", &sides).as_deref(),
            Some("orders-blue")
        );
        assert_eq!(counterpart("orders", &sides), None);
    }

    #[test]
    fn tagged_counterparts_must_share_the_non_color_tags() {
        let candidates = vec![
            ("orders-v2".to_owned(), vec!["app=orders".to_owned()]),
            ("billing-v2".to_owned(), vec!["app=billing".to_owned()]),
        ];
        let picked = pick_tagged(&candidates, "orders-v1", &["app=orders".to_owned()]).unwrap();
        assert_eq!(picked.as_deref(), Some("orders-v2"));
        assert!(
            pick_tagged(&candidates, "x", &[]).is_err(),
            "two candidates is ambiguous"
        );
        assert_eq!(
            pick_tagged(&candidates, "x", &["app=none".to_owned()]).unwrap(),
            None
        );
    }

    #[test]
    fn target_colors_come_from_tags_or_the_first_host_label() {
        let sides = Sides::default();
        let t = |addr: &str, tags: Option<Vec<String>>| Target {
            target: addr.into(),
            tags,
            ..Default::default()
        };
        assert_eq!(
            target_color(&t("orders-green.prod.svc:8080", None), &sides).as_deref(),
            Some("green")
        );
        assert_eq!(target_color(&t("10.0.0.1:8000", None), &sides), None);
        let tagged = t("10.0.0.1:8000", Some(vec!["kong-switch.color=blue".into()]));
        assert_eq!(target_color(&tagged, &sides).as_deref(), Some("blue"));
    }

    fn http_check(path: &str) -> ActiveHealthcheck {
        ActiveHealthcheck {
            kind: Some("http".into()),
            timeout: Some(1.0),
            http_path: Some(path.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn an_own_check_tells_a_dead_target_from_one_that_cannot_be_resolved_from_here() {
        let http = reqwest::Client::new();
        let check = http_check("/health");
        // A port that was just free: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let dead = listener.local_addr().expect("addr").to_string();
        drop(listener);

        let outcomes = [
            active_check(&http, &check, &dead).await,
            active_check(&http, &check, "orders-green.shop.svc.invalid:80").await,
        ];

        assert!(
            matches!(&outcomes[0], OwnCheck::Failed(why) if why.contains("did not answer")),
            "{:?}",
            outcomes[0]
        );
        assert!(
            matches!(&outcomes[1], OwnCheck::Unresolvable(why) if why.contains("does not resolve")),
            "{:?}",
            outcomes[1]
        );
    }

    #[test]
    fn declarative_yaml_text_and_json_both_parse() {
        let yaml = Value::String(
            "_format_version: '3.0'\nservices:\n- name: orders\n  host: orders-blue\n".into(),
        );
        let doc = parse_declarative(yaml).unwrap();
        assert_eq!(doc["services"][0]["host"], "orders-blue");
        let json_doc = json!({"_format_version": "3.0"});
        assert_eq!(parse_declarative(json_doc.clone()).unwrap(), json_doc);
        assert!(parse_declarative(Value::String(": : :\n- [".into())).is_err());
    }
}
