//! The plan: ordered Admin API writes, each with its undo and read-back check, computed
//! from a snapshot without I/O.
//!
//! Planning works in two layers. A strategy first produces [`Change`]s (a service host, a
//! route's service, a target weight). They are then rendered as entity writes
//! (`PATCH /services/…`, `PATCH /routes/…`, `PATCH /upstreams/…/targets/…`) or, on a DB-less
//! node, as one `POST /config` per stage carrying the stage's changes: the edit. The document
//! posted is made at write time, by applying the edit to the configuration the node has then
//! (see `dbless`), and the undo applies the inverse edit the same way: a run never posts a
//! document it read earlier, so it never undoes what another writer did meanwhile.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::admin::{AdminRequest, Method};
use crate::model::{NameOrId, Route, Service, Target};

use super::error::{Error, Result};
use super::request::{StrategyKind, duration_ms};

/// One side of a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    /// The color (`blue`, `green`), or the entity name when it has no recognisable color.
    pub color: String,
    /// The entity the side is: an upstream (`upstream`), a service (`route`), or for
    /// `weights` the upstream holding both sides.
    pub name: String,
}

impl Side {
    /// A side.
    pub fn new(color: impl Into<String>, name: impl Into<String>) -> Side {
        Side {
            color: color.into(),
            name: name.into(),
        }
    }
}

/// A read-back check: after the write, `read` must show `after` at `pointer`; after the undo,
/// `before`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The `GET` that shows the value.
    pub read: AdminRequest,
    /// JSON pointer into the answer, e.g. `/host`.
    pub pointer: String,
    /// The value before the step.
    pub before: Value,
    /// The value the step writes.
    pub after: Value,
}

/// One write of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// What the step does, for humans: `service orders: host orders-blue → orders-green`.
    pub description: String,
    /// The stage the step belongs to (index into [`Plan::stages`]).
    pub stage: usize,
    /// The write.
    pub request: AdminRequest,
    /// The write that undoes it (restores the value before the step).
    pub undo: AdminRequest,
    /// What to read back after the write (or the undo).
    pub checks: Vec<Check>,
    /// DB-less: the changes this `POST /config` makes to the node's declarative
    /// configuration (`request` and `undo` then carry no document). Empty for entity writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edit: Vec<Change>,
}

/// A group of steps that together form one valid traffic mix (for `weights`: one
/// percentage). `upstream` and `route` plans have one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// `green 25%`, or `switch` for single-stage plans.
    pub label: String,
    /// For `weights`: the new side's share after the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    /// Time to wait after the stage before the next one (ms in JSON).
    #[serde(with = "duration_ms")]
    pub bake: Duration,
    /// For `weights`: every target's weight after the stage, by address.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, u32>,
}

/// The ordered writes of a switch, each with its undo: the product of planning, printed as
/// the dry run and stored in the intent record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The strategy.
    pub strategy: StrategyKind,
    /// The target key.
    pub target: String,
    /// The side traffic leaves.
    pub from: Side,
    /// The side traffic goes to.
    pub to: Side,
    /// Whether the writes are `POST /config` of a declarative document (DB-less node).
    #[serde(default)]
    pub declarative: bool,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// The writes, in order.
    pub steps: Vec<Step>,
}

impl Plan {
    /// A plan that writes nothing (the target is already on `to`).
    pub fn noop(strategy: StrategyKind, target: impl Into<String>, side: Side) -> Plan {
        Plan {
            strategy,
            target: target.into(),
            from: side.clone(),
            to: side,
            declarative: false,
            stages: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Whether the plan writes nothing.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }

    /// The writes, in the order they are made: what `--dry-run` prints.
    pub fn writes(&self) -> Vec<AdminRequest> {
        self.steps.iter().map(|s| s.request.clone()).collect()
    }

    /// The writes that restore the start after the whole plan was applied, in order.
    pub fn undo(&self) -> Vec<AdminRequest> {
        restore_items(&self.steps)
            .into_iter()
            .map(|item| item.request)
            .collect()
    }

    /// The same change seen from its end: traffic moves `to` → `from`, each step's write and
    /// undo swapped, every check's `before` and `after` swapped, steps and stages in reverse.
    /// A plan read from Kong on one side, inverted, describes the switch that led there.
    #[must_use]
    pub fn inverted(&self) -> Plan {
        let last_stage = self.stages.len().saturating_sub(1);
        Plan {
            strategy: self.strategy,
            target: self.target.clone(),
            from: self.to.clone(),
            to: self.from.clone(),
            declarative: self.declarative,
            stages: self.stages.iter().rev().cloned().collect(),
            steps: self
                .steps
                .iter()
                .rev()
                .map(|step| Step {
                    description: step.description.clone(),
                    edit: inverse(&step.edit),
                    stage: last_stage.saturating_sub(step.stage),
                    request: step.undo.clone(),
                    undo: step.request.clone(),
                    checks: step
                        .checks
                        .iter()
                        .map(|c| Check {
                            read: c.read.clone(),
                            pointer: c.pointer.clone(),
                            before: c.after.clone(),
                            after: c.before.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The index one past the last step of `stage`.
    pub fn stage_end(&self, stage: usize) -> usize {
        self.steps.iter().take_while(|s| s.stage <= stage).count()
    }
}

/// One write of a restore: the earliest saved value of an entity, with the checks that tell
/// whether Kong still differs from it.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreItem {
    /// The restoring write.
    pub request: AdminRequest,
    /// `before` is the value restored; `after` the value expected before restoring.
    pub checks: Vec<Check>,
    /// DB-less: the inverse of the edits of the steps restored, latest step first, applied to
    /// the node's configuration at write time. Empty for entity writes.
    pub edit: Vec<Change>,
}

impl RestoreItem {
    /// Whether the restore raises a numeric value (a weight): raises go first, so traffic
    /// always has a backend.
    fn raises(&self) -> bool {
        self.checks
            .iter()
            .any(|c| match (c.before.as_f64(), c.after.as_f64()) {
                (Some(before), Some(after)) => before > after,
                _ => false,
            })
    }
}

/// The writes that undo `applied` (a prefix or a slice of a plan's steps), collapsed: one
/// write per entity restoring its earliest saved value, latest-touched first, and numeric
/// raises before lowers (for weights: raise blue first, then lower green).
pub fn restore_items(applied: &[Step]) -> Vec<RestoreItem> {
    // key → (earliest undo, merged checks, index of the last step touching it)
    let mut order: Vec<String> = Vec::new();
    let mut items: BTreeMap<String, (RestoreItem, usize)> = BTreeMap::new();
    for (index, step) in applied.iter().enumerate() {
        let key = format!("{} {}", step.request.method, step.request.path);
        match items.get_mut(&key) {
            None => {
                order.push(key.clone());
                items.insert(
                    key,
                    (
                        RestoreItem {
                            request: step.undo.clone(),
                            checks: step.checks.clone(),
                            edit: inverse(&step.edit),
                        },
                        index,
                    ),
                );
            }
            Some((item, last)) => {
                *last = index;
                // A later step is undone first.
                item.edit.splice(0..0, inverse(&step.edit));
                for check in &step.checks {
                    match item
                        .checks
                        .iter_mut()
                        .find(|c| c.read.path == check.read.path && c.pointer == check.pointer)
                    {
                        Some(existing) => existing.after = check.after.clone(),
                        None => item.checks.push(check.clone()),
                    }
                }
            }
        }
    }
    let mut collected: Vec<(RestoreItem, usize)> = order
        .into_iter()
        .filter_map(|key| items.remove(&key))
        .collect();
    collected.sort_by_key(|item| std::cmp::Reverse(item.1));
    let (mut raises, lowers): (Vec<_>, Vec<_>) = collected
        .into_iter()
        .map(|(item, _)| item)
        .partition(RestoreItem::raises);
    raises.extend(lowers);
    raises
}

/// One entity change: what a step of a plan sets, and from which value. On a DB-less node a
/// step's changes are its edit of the declarative configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A service's `host`.
    ServiceHost {
        /// The service's name or id, as the request named it.
        service_key: String,
        /// The service's id, when Kong gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_id: Option<String>,
        /// The host before.
        from: String,
        /// The host after.
        to: String,
    },
    /// A route's `service`.
    RouteService {
        /// The route's id, or its name when it has no id.
        route_key: String,
        /// The route's id, when Kong gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route_id: Option<String>,
        /// The id of the service the route led to.
        from_id: String,
        /// The id of the service it leads to after.
        to_id: String,
        /// The name (or id) of the service it led to.
        from_name: String,
        /// The name (or id) of the service it leads to after.
        to_name: String,
    },
    /// A target's `weight`.
    TargetWeight {
        /// The upstream's name.
        upstream: String,
        /// The target's id, or its address.
        target_key: String,
        /// The target's address (`host:port`).
        address: String,
        /// The weight before.
        from: u32,
        /// The weight after.
        to: u32,
    },
}

/// A change within its stage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StagedChange {
    pub stage: usize,
    pub change: Change,
}

impl Change {
    /// The change that undoes this one: the same entity, from the new value back to the old.
    pub fn inverse(&self) -> Change {
        match self.clone() {
            Change::ServiceHost {
                service_key,
                service_id,
                from,
                to,
            } => Change::ServiceHost {
                service_key,
                service_id,
                from: to,
                to: from,
            },
            Change::RouteService {
                route_key,
                route_id,
                from_id,
                to_id,
                from_name,
                to_name,
            } => Change::RouteService {
                route_key,
                route_id,
                from_id: to_id,
                to_id: from_id,
                from_name: to_name,
                to_name: from_name,
            },
            Change::TargetWeight {
                upstream,
                target_key,
                address,
                from,
                to,
            } => Change::TargetWeight {
                upstream,
                target_key,
                address,
                from: to,
                to: from,
            },
        }
    }

    fn description(&self) -> String {
        match self {
            Change::ServiceHost {
                service_key,
                from,
                to,
                ..
            } => format!("service {service_key}: host {from} → {to}"),
            Change::RouteService {
                route_key,
                from_name,
                to_name,
                ..
            } => format!("route {route_key}: service {from_name} → {to_name}"),
            Change::TargetWeight {
                upstream,
                address,
                from,
                to,
                ..
            } => format!("upstream {upstream}: target {address} weight {from} → {to}"),
        }
    }

    fn check(&self) -> Check {
        match self {
            Change::ServiceHost {
                service_key,
                from,
                to,
                ..
            } => Check {
                read: AdminRequest::get(service_path(service_key)),
                pointer: "/host".into(),
                before: json!(from),
                after: json!(to),
            },
            Change::RouteService {
                route_key,
                from_id,
                to_id,
                ..
            } => Check {
                read: AdminRequest::get(route_path(route_key)),
                pointer: "/service/id".into(),
                before: json!(from_id),
                after: json!(to_id),
            },
            Change::TargetWeight {
                upstream,
                target_key,
                from,
                to,
                ..
            } => Check {
                read: AdminRequest::get(target_path(upstream, target_key)),
                pointer: "/weight".into(),
                before: json!(from),
                after: json!(to),
            },
        }
    }

    /// The entity write setting the new value, and the one restoring the old.
    fn entity_writes(&self) -> (AdminRequest, AdminRequest) {
        match self {
            Change::ServiceHost {
                service_key,
                from,
                to,
                ..
            } => {
                let path = service_path(service_key);
                (
                    AdminRequest::new(Method::Patch, path.clone()).with_body(json!({"host": to})),
                    AdminRequest::new(Method::Patch, path).with_body(json!({"host": from})),
                )
            }
            Change::RouteService {
                route_key,
                from_id,
                to_id,
                ..
            } => {
                let path = route_path(route_key);
                (
                    AdminRequest::new(Method::Patch, path.clone())
                        .with_body(json!({"service": {"id": to_id}})),
                    AdminRequest::new(Method::Patch, path)
                        .with_body(json!({"service": {"id": from_id}})),
                )
            }
            Change::TargetWeight {
                upstream,
                target_key,
                from,
                to,
                ..
            } => {
                let path = target_path(upstream, target_key);
                (
                    AdminRequest::new(Method::Patch, path.clone()).with_body(json!({"weight": to})),
                    AdminRequest::new(Method::Patch, path).with_body(json!({"weight": from})),
                )
            }
        }
    }
}

fn service_path(key: &str) -> String {
    format!("/services/{}", NameOrId::from(key).to_segment())
}

fn route_path(key: &str) -> String {
    format!("/routes/{}", NameOrId::from(key).to_segment())
}

fn target_path(upstream: &str, target: &str) -> String {
    format!(
        "/upstreams/{}/targets/{}",
        NameOrId::from(upstream).to_segment(),
        NameOrId::from(target).to_segment()
    )
}

/// Renders changes as entity writes: one step per change.
pub(crate) fn render_entity_steps(changes: &[StagedChange]) -> Vec<Step> {
    changes
        .iter()
        .map(|c| {
            let (request, undo) = c.change.entity_writes();
            Step {
                description: c.change.description(),
                stage: c.stage,
                request,
                undo,
                checks: vec![c.change.check()],
                edit: Vec::new(),
            }
        })
        .collect()
}

/// Plans the `upstream` strategy: one `PATCH /services/{s}` of `host`.
pub(crate) fn upstream_changes(service: &Service, to_upstream: &str) -> Vec<StagedChange> {
    if service.host == to_upstream {
        return Vec::new();
    }
    vec![StagedChange {
        stage: 0,
        change: Change::ServiceHost {
            service_key: service.key().to_owned(),
            service_id: service.id.clone(),
            from: service.host.clone(),
            to: to_upstream.to_owned(),
        },
    }]
}

/// Plans the `route` strategy: one `PATCH /routes/{r}` per route of `from` (ordered by key,
/// so plans are reproducible), re-pointing it at `to`.
pub(crate) fn route_changes(routes: &[Route], from: &Service, to: &Service) -> Vec<StagedChange> {
    let (Some(from_id), Some(to_id)) = (from.id.as_deref(), to.id.as_deref()) else {
        return Vec::new();
    };
    let mut routes: Vec<&Route> = routes
        .iter()
        .filter(|r| r.service_id() == Some(from_id))
        .collect();
    routes.sort_by(|a, b| a.key().cmp(b.key()));
    routes
        .into_iter()
        .map(|r| StagedChange {
            stage: 0,
            change: Change::RouteService {
                // routes may be unnamed: address them by id when there is one
                route_key: r.id.clone().unwrap_or_else(|| r.key().to_owned()),
                route_id: r.id.clone(),
                from_id: from_id.to_owned(),
                to_id: to_id.to_owned(),
                from_name: from.key().to_owned(),
                to_name: to.key().to_owned(),
            },
        })
        .collect()
}

/// Which side a target of a `weights` upstream is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetSide {
    /// The side traffic leaves.
    From,
    /// The side traffic goes to.
    To,
    /// Neither: left alone.
    Other,
}

/// A target of a `weights` upstream with its side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SidedTarget {
    pub key: String,
    pub address: String,
    pub side: TargetSide,
    pub weight: u32,
}

impl SidedTarget {
    pub(crate) fn new(target: &Target, side: TargetSide) -> SidedTarget {
        SidedTarget {
            key: target.key().to_owned(),
            address: target.target.clone(),
            side,
            weight: target.weight(),
        }
    }
}

/// Largest Kong target weight.
const MAX_WEIGHT: u32 = 65_535;

/// Splits `amount` over parts in proportion to `ratios` (equal parts when all are zero),
/// with the largest-remainder method so the parts sum to `amount` exactly.
pub(crate) fn distribute(amount: u32, ratios: &[u32]) -> Vec<u32> {
    if ratios.is_empty() {
        return Vec::new();
    }
    let equal;
    let ratios = if ratios.iter().all(|r| *r == 0) {
        equal = vec![1; ratios.len()];
        &equal[..]
    } else {
        ratios
    };
    let sum: u64 = ratios.iter().map(|r| u64::from(*r)).sum();
    let amount64 = u64::from(amount);
    let mut parts: Vec<u32> = Vec::with_capacity(ratios.len());
    let mut remainders: Vec<(u64, usize)> = Vec::with_capacity(ratios.len());
    for (i, r) in ratios.iter().enumerate() {
        let exact = amount64 * u64::from(*r);
        parts.push(u32::try_from(exact / sum).unwrap_or(u32::MAX));
        remainders.push((exact % sum, i));
    }
    let assigned: u64 = parts.iter().map(|p| u64::from(*p)).sum();
    let mut left = amount64.saturating_sub(assigned);
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// The weights of every from/to target when the `to` side has `percent` of the saved total.
fn weights_at(targets: &[SidedTarget], total: u32, percent: u8) -> Vec<u32> {
    let to_total = ((u64::from(total) * u64::from(percent) + 50) / 100) as u32;
    let from_total = total - to_total.min(total);
    let ratios = |side: TargetSide| -> Vec<u32> {
        targets
            .iter()
            .filter(|t| t.side == side)
            .map(|t| t.weight)
            .collect()
    };
    let mut to_parts = distribute(to_total, &ratios(TargetSide::To)).into_iter();
    let mut from_parts = distribute(from_total, &ratios(TargetSide::From)).into_iter();
    targets
        .iter()
        .map(|t| match t.side {
            TargetSide::To => to_parts.next().unwrap_or(0).min(MAX_WEIGHT),
            TargetSide::From => from_parts.next().unwrap_or(0).min(MAX_WEIGHT),
            TargetSide::Other => t.weight,
        })
        .collect()
}

/// The `to` side's current share of the from+to weight, in percent (rounded down).
pub(crate) fn current_percent(targets: &[SidedTarget]) -> u8 {
    let sum = |side: TargetSide| -> u64 {
        targets
            .iter()
            .filter(|t| t.side == side)
            .map(|t| u64::from(t.weight))
            .sum()
    };
    let (to, from) = (sum(TargetSide::To), sum(TargetSide::From));
    if to + from == 0 {
        return 0;
    }
    u8::try_from(to * 100 / (to + from)).unwrap_or(100)
}

/// Plans the `weights` strategy: for each percentage above the current share, the weight
/// changes of that stage, **raises first, then lowers** (an all-zero moment would be 503s).
///
/// The total is the saved sum of from+to weights (Kong's default 100 per from-target when
/// all are zero); at p %, the to side gets `round(total·p/100)`, the from side the rest,
/// each spread over its targets in proportion to their saved weights (equally if all zero).
pub(crate) fn weights_changes(
    upstream: &str,
    targets: &[SidedTarget],
    percents: &[u8],
    bake: Duration,
) -> (Vec<Stage>, Vec<StagedChange>) {
    let saved_total: u32 = targets
        .iter()
        .filter(|t| t.side != TargetSide::Other)
        .map(|t| t.weight)
        .sum();
    let total = if saved_total == 0 {
        let from_count = targets
            .iter()
            .filter(|t| t.side == TargetSide::From)
            .count()
            .max(1);
        u32::try_from(from_count).unwrap_or(1) * Target::DEFAULT_WEIGHT
    } else {
        saved_total
    };
    let start_percent = current_percent(targets);
    let mut current: Vec<u32> = targets.iter().map(|t| t.weight).collect();
    let mut stages = Vec::new();
    let mut changes = Vec::new();
    let last_percent = percents.last().copied();
    for &percent in percents
        .iter()
        .filter(|p| **p > start_percent || (**p == 100 && start_percent == 100))
    {
        let next = weights_at(targets, total, percent);
        let stage = stages.len();
        let mut raises = Vec::new();
        let mut lowers = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            if next[i] == current[i] {
                continue;
            }
            let change = StagedChange {
                stage,
                change: Change::TargetWeight {
                    upstream: upstream.to_owned(),
                    target_key: t.key.clone(),
                    address: t.address.clone(),
                    from: current[i],
                    to: next[i],
                },
            };
            if next[i] > current[i] {
                raises.push(change);
            } else {
                lowers.push(change);
            }
        }
        if raises.is_empty() && lowers.is_empty() {
            continue;
        }
        changes.extend(raises);
        changes.extend(lowers);
        current = next;
        stages.push(Stage {
            label: format!("{percent}%"),
            percent: Some(percent),
            bake: if Some(percent) == last_percent {
                Duration::ZERO
            } else {
                bake
            },
            weights: targets
                .iter()
                .zip(&current)
                .map(|(t, w)| (t.address.clone(), *w))
                .collect(),
        });
    }
    (stages, changes)
}

/// The single stage of an `upstream` or `route` plan.
pub(crate) fn single_stage() -> Stage {
    Stage {
        label: "switch".into(),
        percent: None,
        bake: Duration::ZERO,
        weights: BTreeMap::new(),
    }
}

/// Renders changes as one `POST /config` per stage (a DB-less node), each carrying its stage's
/// changes as its edit. The document posted is made when the step is written, from the node's
/// configuration at that moment (see `dbless`).
pub(crate) fn render_declarative_steps(changes: &[StagedChange]) -> Vec<Step> {
    let stage_count = changes.iter().map(|c| c.stage + 1).max().unwrap_or(0);
    (0..stage_count)
        .filter_map(|stage| {
            let in_stage: Vec<&StagedChange> =
                changes.iter().filter(|c| c.stage == stage).collect();
            if in_stage.is_empty() {
                return None;
            }
            let description = describe_all(&in_stage, Change::description);
            Some(Step {
                request: config_post().with_summary(description.clone()),
                undo: config_post()
                    .with_summary(describe_all(&in_stage, |c| c.inverse().description())),
                description,
                stage,
                checks: in_stage.iter().map(|c| c.change.check()).collect(),
                edit: in_stage.iter().map(|c| c.change.clone()).collect(),
            })
        })
        .collect()
}

/// `POST /config` as a plan shows it: the document is made at write time.
fn config_post() -> AdminRequest {
    AdminRequest::new(Method::Post, "/config")
}

/// The edit that undoes `edit`: each change inverted, the last one first.
pub fn inverse(edit: &[Change]) -> Vec<Change> {
    edit.iter().rev().map(Change::inverse).collect()
}

/// Applies `edit` to a declarative document, change by change (see [`apply_to_document`]).
pub(crate) fn apply_edit(doc: &mut Value, edit: &[Change]) -> Result<()> {
    edit.iter()
        .try_for_each(|change| apply_to_document(doc, change))
}

/// What one `POST /config` changes: every change for a few, the first ones and a count for
/// a batch.
fn describe_all(changes: &[&StagedChange], describe: fn(&Change) -> String) -> String {
    const SHOWN: usize = 3;
    let mut text = changes
        .iter()
        .take(SHOWN)
        .map(|c| describe(&c.change))
        .collect::<Vec<_>>()
        .join("; ");
    if changes.len() > SHOWN {
        text.push_str(&format!("; and {} more", changes.len() - SHOWN));
    }
    text
}

fn entries<'a>(doc: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    doc.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn field_is(entity: &Value, field: &str, value: &str) -> bool {
    entity.get(field).and_then(Value::as_str) == Some(value)
}

fn reference_is(entity: &Value, field: &str, id_or_name: &[&str]) -> bool {
    match entity.get(field) {
        Some(Value::String(s)) => id_or_name.contains(&s.as_str()),
        Some(Value::Object(o)) => ["id", "name"].iter().any(|k| {
            o.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|v| id_or_name.contains(&v))
        }),
        _ => false,
    }
}

/// Applies one change to a declarative document (flat `services`/`routes`/`upstreams`/
/// `targets` lists as `GET /config` returns them, or nested `services[].routes` and
/// `upstreams[].targets` as people write them).
pub(crate) fn apply_to_document(doc: &mut Value, change: &Change) -> Result<()> {
    let missing = |what: String| Error::Unsupported(format!("declarative config: {what}"));
    match change {
        Change::ServiceHost {
            service_key,
            service_id,
            to,
            ..
        } => {
            let service = entries(doc, "services")
                .find(|s| {
                    field_is(s, "name", service_key)
                        || field_is(s, "id", service_key)
                        || service_id
                            .as_deref()
                            .is_some_and(|id| field_is(s, "id", id))
                })
                .ok_or_else(|| missing(format!("no service {service_key}")))?;
            service["host"] = json!(to);
            Ok(())
        }
        Change::RouteService {
            route_key,
            route_id,
            to_id,
            to_name,
            ..
        } => {
            let matches_route = |r: &Value| {
                field_is(r, "id", route_key)
                    || field_is(r, "name", route_key)
                    || route_id.as_deref().is_some_and(|id| field_is(r, "id", id))
            };
            if let Some(route) = entries(doc, "routes").find(|r| matches_route(r)) {
                route["service"] = match route.get("service") {
                    Some(Value::String(_)) => json!(to_id),
                    _ => json!({"id": to_id}),
                };
                return Ok(());
            }
            // nested: move the route under the new service
            let mut moved = None;
            for service in entries(doc, "services") {
                if let Some(routes) = service.get_mut("routes").and_then(Value::as_array_mut)
                    && let Some(pos) = routes.iter().position(&matches_route)
                {
                    moved = Some(routes.remove(pos));
                    break;
                }
            }
            let route = moved.ok_or_else(|| missing(format!("no route {route_key}")))?;
            let target = entries(doc, "services")
                .find(|s| field_is(s, "id", to_id) || field_is(s, "name", to_name))
                .ok_or_else(|| missing(format!("no service {to_name}")))?;
            match target.get_mut("routes").and_then(Value::as_array_mut) {
                Some(routes) => routes.push(route),
                None => target["routes"] = json!([route]),
            }
            Ok(())
        }
        Change::TargetWeight {
            upstream,
            target_key,
            address,
            to,
            ..
        } => {
            let upstream_id = entries(doc, "upstreams")
                .find(|u| field_is(u, "name", upstream))
                .and_then(|u| u.get("id").and_then(Value::as_str).map(str::to_owned));
            let matches_target =
                |t: &Value| field_is(t, "id", target_key) || field_is(t, "target", address);
            let mut refs = vec![upstream.as_str()];
            if let Some(id) = upstream_id.as_deref() {
                refs.push(id);
            }
            if let Some(target) = entries(doc, "targets")
                .find(|t| matches_target(t) && reference_is(t, "upstream", &refs))
            {
                target["weight"] = json!(to);
                return Ok(());
            }
            let nested = entries(doc, "upstreams")
                .find(|u| field_is(u, "name", upstream))
                .and_then(|u| u.get_mut("targets").and_then(Value::as_array_mut))
                .and_then(|ts| ts.iter_mut().find(|t| matches_target(t)))
                .ok_or_else(|| missing(format!("no target {address} in upstream {upstream}")))?;
            nested["weight"] = json!(to);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, id: &str, host: &str) -> Service {
        Service {
            id: Some(id.into()),
            name: Some(name.into()),
            host: host.into(),
            ..Default::default()
        }
    }

    fn route(name: &str, id: &str, service_id: &str) -> Route {
        Route {
            id: Some(id.into()),
            name: Some(name.into()),
            service: Some(crate::model::EntityRef::new(service_id)),
            ..Default::default()
        }
    }

    fn sided(key: &str, side: TargetSide, weight: u32) -> SidedTarget {
        SidedTarget {
            key: key.into(),
            address: format!("{key}:8000"),
            side,
            weight,
        }
    }

    fn body_weight(req: &AdminRequest) -> u64 {
        req.body
            .as_ref()
            .and_then(|b| b["weight"].as_u64())
            .expect("weight body")
    }

    #[test]
    fn upstream_plan_is_one_patch_of_host_with_its_undo() {
        let svc = service("orders", "s1", "orders-blue");
        let steps = render_entity_steps(&upstream_changes(&svc, "orders-green"));
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].request.to_string(),
            r#"PATCH /services/orders {"host":"orders-green"}"#
        );
        assert_eq!(
            steps[0].undo.to_string(),
            r#"PATCH /services/orders {"host":"orders-blue"}"#
        );
        assert_eq!(steps[0].checks[0].read.to_string(), "GET /services/orders");
        assert_eq!(steps[0].checks[0].after, json!("orders-green"));
    }

    #[test]
    fn upstream_plan_to_the_active_side_is_empty() {
        let svc = service("orders", "s1", "orders-green");
        assert!(upstream_changes(&svc, "orders-green").is_empty());
    }

    #[test]
    fn route_plan_patches_each_route_of_the_old_service_in_key_order_and_undoes_in_reverse() {
        let blue = service("orders-blue", "b", "orders-blue.svc");
        let green = service("orders-green", "g", "orders-green.svc");
        let routes = vec![
            route("r3", "id3", "b"),
            route("r1", "id1", "b"),
            route("other", "idx", "x"),
            route("r2", "id2", "b"),
        ];
        let steps = render_entity_steps(&route_changes(&routes, &blue, &green));
        let writes: Vec<String> = steps.iter().map(|s| s.request.to_string()).collect();
        assert_eq!(
            writes,
            vec![
                r#"PATCH /routes/id1 {"service":{"id":"g"}}"#,
                r#"PATCH /routes/id2 {"service":{"id":"g"}}"#,
                r#"PATCH /routes/id3 {"service":{"id":"g"}}"#,
            ]
        );
        let undo: Vec<String> = restore_items(&steps[..2])
            .iter()
            .map(|i| i.request.to_string())
            .collect();
        assert_eq!(
            undo,
            vec![
                r#"PATCH /routes/id2 {"service":{"id":"b"}}"#,
                r#"PATCH /routes/id1 {"service":{"id":"b"}}"#,
            ]
        );
        assert!(route_changes(&routes, &green, &green).is_empty());
    }

    #[test]
    fn distribute_keeps_the_sum_exact() {
        assert_eq!(distribute(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(distribute(10, &[0, 0]), vec![5, 5]);
        assert_eq!(distribute(90, &[100, 50]), vec![60, 30]);
        assert_eq!(distribute(0, &[3, 4]), vec![0, 0]);
        assert!(distribute(5, &[]).is_empty());
    }

    #[test]
    fn weights_follow_the_saved_total_and_raise_before_lowering_in_every_stage() {
        let targets = vec![
            sided("blue1", TargetSide::From, 100),
            sided("green1", TargetSide::To, 0),
        ];
        let (stages, changes) = weights_changes(
            "orders",
            &targets,
            &[10, 25, 50, 100],
            Duration::from_secs(30),
        );
        assert_eq!(stages.len(), 4);
        assert_eq!(stages[0].weights["green1:8000"], 10);
        assert_eq!(stages[0].weights["blue1:8000"], 90);
        assert_eq!(stages[3].weights["blue1:8000"], 0);
        assert_eq!(
            stages[3].bake,
            Duration::ZERO,
            "no bake after the last step"
        );
        assert_eq!(stages[2].bake, Duration::from_secs(30));
        let steps = render_entity_steps(&changes);
        let seen: Vec<(usize, &str, u64)> = steps
            .iter()
            .map(|s| {
                let target = if s.request.path.ends_with("green1") {
                    "green"
                } else {
                    "blue"
                };
                (s.stage, target, body_weight(&s.request))
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, "green", 10),
                (0, "blue", 90),
                (1, "green", 25),
                (1, "blue", 75),
                (2, "green", 50),
                (2, "blue", 50),
                (3, "green", 100),
                (3, "blue", 0),
            ]
        );
    }

    #[test]
    fn weights_undo_restores_saved_weights_raising_blue_first() {
        let targets = vec![
            sided("blue1", TargetSide::From, 100),
            sided("green1", TargetSide::To, 0),
        ];
        let (_, changes) = weights_changes("orders", &targets, &[10, 25, 50, 100], Duration::ZERO);
        let steps = render_entity_steps(&changes);
        let undo = restore_items(&steps);
        let order: Vec<(String, u64)> = undo
            .iter()
            .map(|i| (i.request.path.clone(), body_weight(&i.request)))
            .collect();
        assert_eq!(
            order,
            vec![
                ("/upstreams/orders/targets/blue1".to_owned(), 100),
                ("/upstreams/orders/targets/green1".to_owned(), 0),
            ]
        );
    }

    #[test]
    fn weights_spread_over_several_targets_and_skip_reached_percentages() {
        let targets = vec![
            sided("b1", TargetSide::From, 60),
            sided("b2", TargetSide::From, 40),
            sided("g1", TargetSide::To, 0),
            sided("g2", TargetSide::To, 0),
            sided("x", TargetSide::Other, 7),
        ];
        let (stages, _) = weights_changes("u", &targets, &[50, 100], Duration::ZERO);
        assert_eq!(stages[0].weights["g1:8000"], 25);
        assert_eq!(stages[0].weights["g2:8000"], 25);
        assert_eq!(stages[0].weights["b1:8000"], 30);
        assert_eq!(stages[0].weights["b2:8000"], 20);
        assert_eq!(
            stages[0].weights["x:8000"], 7,
            "other targets are left alone"
        );

        let halfway = vec![
            sided("b", TargetSide::From, 75),
            sided("g", TargetSide::To, 25),
        ];
        let (stages, _) = weights_changes("u", &halfway, &[10, 25, 50, 100], Duration::ZERO);
        let percents: Vec<Option<u8>> = stages.iter().map(|s| s.percent).collect();
        assert_eq!(percents, vec![Some(50), Some(100)]);

        let done = vec![
            sided("b", TargetSide::From, 0),
            sided("g", TargetSide::To, 100),
        ];
        let (stages, changes) = weights_changes("u", &done, &[10, 100], Duration::ZERO);
        assert!(
            stages.is_empty() && changes.is_empty(),
            "already at 100%: no-op"
        );
    }

    fn edit_of(changes: &[StagedChange]) -> Vec<Change> {
        changes.iter().map(|c| c.change.clone()).collect()
    }

    #[test]
    fn declarative_render_is_one_post_per_stage_carrying_its_edit_and_no_document() {
        let svc = service("orders", "s1", "orders-blue");
        let changes = upstream_changes(&svc, "orders-green");
        let steps = render_declarative_steps(&changes);
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].request.to_string(),
            "POST /config (service orders: host orders-blue → orders-green)"
        );
        assert_eq!(
            steps[0].undo.to_string(),
            "POST /config (service orders: host orders-green → orders-blue)"
        );
        assert!(steps[0].request.body.is_none() && steps[0].undo.body.is_none());
        assert_eq!(steps[0].edit, edit_of(&changes));
        assert_eq!(
            steps[0].description,
            "service orders: host orders-blue → orders-green"
        );

        let targets = vec![
            sided("blue1", TargetSide::From, 100),
            sided("green1", TargetSide::To, 0),
        ];
        let (_, changes) = weights_changes("orders", &targets, &[10, 100], Duration::ZERO);
        let steps = render_declarative_steps(&changes);
        let edits: Vec<(usize, usize)> = steps.iter().map(|s| (s.stage, s.edit.len())).collect();
        assert_eq!(edits, vec![(0, 2), (1, 2)]);
    }

    #[test]
    fn an_edit_changes_its_own_entities_and_keeps_everything_else_of_the_current_document() {
        let doc = json!({
            "_format_version": "3.0",
            "services": [
                {"id": "s1", "name": "orders", "host": "orders-blue"},
                {"id": "s2", "name": "billing", "host": "billing-green"}
            ],
            "upstreams": [{"id": "u1", "name": "orders-blue"}, {"id": "u2", "name": "orders-green"}]
        });
        let svc = service("orders", "s1", "orders-blue");
        let edit = edit_of(&upstream_changes(&svc, "orders-green"));
        let mut edited = doc.clone();
        apply_edit(&mut edited, &edit).unwrap();
        assert_eq!(edited["services"][0]["host"], "orders-green");
        assert_eq!(
            edited["services"][1]["host"], "billing-green",
            "another writer's change stays"
        );
        assert_eq!(edited["upstreams"], doc["upstreams"]);
    }

    #[test]
    fn the_inverse_of_an_edit_restores_its_entities_and_leaves_later_changes_of_others() {
        let before = json!({
            "services": [
                {"id": "s1", "name": "orders", "host": "orders-blue"},
                {"id": "s2", "name": "billing", "host": "billing-blue"}
            ],
            "upstreams": [{"id": "u1", "name": "pay"}],
            "targets": [
                {"id": "t1", "upstream": "u1", "target": "b:80", "weight": 100},
                {"id": "t2", "upstream": "u1", "target": "g:80", "weight": 0}
            ]
        });
        let svc = service("orders", "s1", "orders-blue");
        let targets = vec![
            SidedTarget {
                key: "t1".into(),
                address: "b:80".into(),
                side: TargetSide::From,
                weight: 100,
            },
            SidedTarget {
                key: "t2".into(),
                address: "g:80".into(),
                side: TargetSide::To,
                weight: 0,
            },
        ];
        let (_, weight_changes) = weights_changes("pay", &targets, &[25, 100], Duration::ZERO);
        let mut edit = edit_of(&upstream_changes(&svc, "orders-green"));
        edit.extend(edit_of(&weight_changes));

        let mut doc = before.clone();
        apply_edit(&mut doc, &edit).unwrap();
        assert_eq!(doc["services"][0]["host"], "orders-green");
        assert_eq!(doc["targets"][0]["weight"], 0);
        assert_eq!(doc["targets"][1]["weight"], 100);
        // Another writer switches billing meanwhile.
        doc["services"][1]["host"] = json!("billing-green");

        apply_edit(&mut doc, &inverse(&edit)).unwrap();
        let mut expected = before.clone();
        expected["services"][1]["host"] = json!("billing-green");
        assert_eq!(doc, expected);
    }

    #[test]
    fn a_restore_of_declarative_steps_applies_the_inverse_of_the_latest_step_first() {
        let targets = vec![
            sided("blue1", TargetSide::From, 100),
            sided("green1", TargetSide::To, 0),
        ];
        let (_, changes) = weights_changes("orders", &targets, &[10, 100], Duration::ZERO);
        let steps = render_declarative_steps(&changes);
        let items = restore_items(&steps);
        assert_eq!(items.len(), 1, "one POST /config restores both stages");
        let weights: Vec<(u32, u32)> = items[0]
            .edit
            .iter()
            .map(|c| match c {
                Change::TargetWeight { from, to, .. } => (*from, *to),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        // stage 1 (green 10 → 100, blue 90 → 0) undone first, then stage 0
        assert_eq!(weights, vec![(0, 90), (100, 10), (90, 100), (10, 0)]);
    }

    #[test]
    fn an_edit_sets_flat_and_nested_target_weights() {
        let flat = json!({
            "upstreams": [{"id": "u1", "name": "orders"}],
            "targets": [
                {"id": "t1", "upstream": "u1", "target": "b:80", "weight": 100},
                {"id": "t2", "upstream": "u1", "target": "g:80", "weight": 0}
            ]
        });
        let nested = json!({
            "upstreams": [{"name": "orders", "targets": [
                {"target": "b:80", "weight": 100}, {"target": "g:80", "weight": 0}]}]
        });
        let targets = vec![
            SidedTarget {
                key: "t1".into(),
                address: "b:80".into(),
                side: TargetSide::From,
                weight: 100,
            },
            SidedTarget {
                key: "t2".into(),
                address: "g:80".into(),
                side: TargetSide::To,
                weight: 0,
            },
        ];
        let (_, changes) = weights_changes("orders", &targets, &[100], Duration::ZERO);
        let edit = edit_of(&changes);
        let mut doc = flat.clone();
        apply_edit(&mut doc, &edit).unwrap();
        assert_eq!(doc["targets"][0]["weight"], 0);
        assert_eq!(doc["targets"][1]["weight"], 100);
        let mut doc = nested.clone();
        apply_edit(&mut doc, &edit).unwrap();
        assert_eq!(doc["upstreams"][0]["targets"][1]["weight"], 100);
        apply_edit(&mut doc, &inverse(&edit)).unwrap();
        assert_eq!(doc, nested);
    }

    #[test]
    fn an_edit_moves_nested_routes_between_services_and_its_inverse_moves_them_back() {
        let doc = json!({"services": [
            {"id": "b", "name": "orders-blue", "host": "x", "routes": [{"id": "r1", "paths": ["/o"]}]},
            {"id": "g", "name": "orders-green", "host": "y", "routes": []}
        ]});
        let blue = service("orders-blue", "b", "x");
        let green = service("orders-green", "g", "y");
        let routes = vec![route("r1", "r1", "b")];
        let edit = edit_of(&route_changes(&routes, &blue, &green));
        let mut edited = doc.clone();
        apply_edit(&mut edited, &edit).unwrap();
        assert_eq!(edited["services"][0]["routes"], json!([]));
        assert_eq!(edited["services"][1]["routes"][0]["id"], "r1");
        apply_edit(&mut edited, &inverse(&edit)).unwrap();
        assert_eq!(edited, doc);
    }

    #[test]
    fn an_edit_of_an_entity_missing_from_the_document_is_an_error() {
        let doc = json!({"services": [{"id": "s2", "name": "billing", "host": "b"}]});
        let svc = service("orders", "s1", "orders-blue");
        let edit = edit_of(&upstream_changes(&svc, "orders-green"));
        let err = apply_edit(&mut doc.clone(), &edit).unwrap_err();
        assert!(err.to_string().contains("no service orders"), "{err}");
    }

    #[test]
    fn a_plan_with_its_edit_survives_the_intent_round_trip() {
        let svc = service("orders", "s1", "orders-blue");
        let plan = Plan {
            declarative: true,
            stages: vec![single_stage()],
            steps: render_declarative_steps(&upstream_changes(&svc, "orders-green")),
            ..Plan::noop(
                StrategyKind::Upstream,
                "orders",
                Side::new("blue", "orders-blue"),
            )
        };
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["steps"][0]["edit"][0]["change"], "service_host");
        let back: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(back, plan);
    }
}
