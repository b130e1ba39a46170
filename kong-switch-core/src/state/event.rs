//! The records of the state log: [`Event`] and what it carries.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Takeover;
use super::intent::{Intent, IntentRecord};

/// Where a deployment stands, as recorded in the log. Serialized in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// `deploying`: the side is being rolled out (Kubernetes workflow).
    Deploying,
    /// `testing`: the side is up and being checked before it takes traffic.
    Testing,
    /// `active`: the side serves the traffic.
    Active,
    /// `idle`: the side is deployed but takes no traffic.
    Idle,
    /// `rolled_back`: a switch to this side was undone.
    RolledBack,
}

impl DeploymentStatus {
    /// The serialized name, e.g. `"rolled_back"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Deploying => "deploying",
            DeploymentStatus::Testing => "testing",
            DeploymentStatus::Active => "active",
            DeploymentStatus::Idle => "idle",
            DeploymentStatus::RolledBack => "rolled_back",
        }
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A side of a blue/green pair. Serialized as the plain name: `"blue"`, `"green"`, or any
/// other side name as given.
///
/// Only the exact lowercase names `blue` and `green` map to [`Color::Blue`] and
/// [`Color::Green`]; anything else is kept verbatim in [`Color::Other`].
///
/// ```
/// use kong_switch_core::state::Color;
///
/// assert_eq!(Color::from("green"), Color::Green);
/// assert_eq!(Color::from("canary"), Color::Other("canary".into()));
/// assert_eq!(Color::Blue.to_string(), "blue");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Color {
    /// `blue`.
    Blue,
    /// `green`.
    Green,
    /// Any other side name.
    Other(String),
}

impl Color {
    /// The side's name.
    pub fn as_str(&self) -> &str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
            Color::Other(name) => name,
        }
    }
}

impl From<&str> for Color {
    fn from(name: &str) -> Self {
        match name {
            "blue" => Color::Blue,
            "green" => Color::Green,
            other => Color::Other(other.to_owned()),
        }
    }
}

impl From<String> for Color {
    fn from(name: String) -> Self {
        match name.as_str() {
            "blue" => Color::Blue,
            "green" => Color::Green,
            _ => Color::Other(name),
        }
    }
}

impl From<Color> for String {
    fn from(color: Color) -> Self {
        match color {
            Color::Other(name) => name,
            named => named.as_str().to_owned(),
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an [`Event`] records. Serialized in snake_case as the event's `kind` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// `intent`: the write-ahead record, appended before the first Kong write. Carries
    /// [`Event::intent`]: the planned writes and their precomputed undo.
    Intent,
    /// `step`: one step of a `weights` shift was applied. Carries [`Event::step`].
    Step,
    /// `completed`: the switch is done and verified; the new side is active.
    Completed,
    /// `rolled_back`: the switch was undone; [`Event::reason`] says why.
    RolledBack,
    /// `refused`: the gates refused the switch; nothing was changed. [`Event::reason`] says
    /// which gates failed.
    Refused,
    /// `resolved`: an operator closed an unfinished run after reading Kong (`resolve`): the
    /// event's [`Event::color`] is the side Kong was found on, and its [`Event::intent`]
    /// holds what was read, for later comparisons.
    Resolved,
    /// `status`: a plain deployment status transition (e.g. `deploying` → `testing` in the
    /// Kubernetes workflow), given in [`Event::status`].
    Status,
    /// `lease_taken_over`: a run took over a lease its previous holder did not release
    /// (it expired, its process was gone, or it was broken). Carries [`Event::takeover`]:
    /// who took it over from whom.
    LeaseTakenOver,
    /// `lease_lost`: a run could not renew its lease (or found it taken over) and stopped at
    /// the next step boundary; [`Event::reason`] says why.
    LeaseLost,
    /// A kind written by a newer kong-switch that this version does not know. Read only:
    /// never append it.
    #[serde(other)]
    Unknown,
}

impl EventKind {
    /// The serialized name, e.g. `"rolled_back"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Intent => "intent",
            EventKind::Step => "step",
            EventKind::Completed => "completed",
            EventKind::RolledBack => "rolled_back",
            EventKind::Refused => "refused",
            EventKind::Resolved => "resolved",
            EventKind::Status => "status",
            EventKind::LeaseTakenOver => "lease_taken_over",
            EventKind::LeaseLost => "lease_lost",
            EventKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One applied step of a `weights` shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// 0-based index of the step in the plan.
    pub index: usize,
    /// How many steps the plan has, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<usize>,
    /// The target weights observed after the step, by target address (e.g. `10.0.0.7:8000`).
    pub weights: BTreeMap<String, u32>,
}

/// One record of the state log.
///
/// # JSON
///
/// Each event is one JSON object (one line in a [`FileLog`](super::FileLog)); this is also
/// what `kong-switch history --output json` prints. Optional fields are left out when
/// unset, and unknown fields are ignored on read, so logs written by newer versions stay
/// readable. An intent looks like:
///
/// ```json
/// {
///   "target": "orders",
///   "seq": 7,
///   "timestamp": "2026-11-25T01:00:00Z",
///   "kind": "intent",
///   "run_id": "5f0c6a34-3b1f-4c57-9a55-2a1c9c8f1e2d",
///   "actor": "alice@host (pid 4242)",
///   "strategy": "upstream",
///   "from": "blue",
///   "to": "green",
///   "service": "orders",
///   "intent": {
///     "format": 2,
///     "strategy": "upstream",
///     "from": "blue",
///     "to": "green",
///     "writes": [{"method": "PATCH", "path": "/services/orders", "body": {"host": "orders-green"}}],
///     "undo": [{"method": "PATCH", "path": "/services/orders", "body": {"host": "orders-blue"}}]
///   }
/// }
/// ```
///
/// | field | type | meaning |
/// |---|---|---|
/// | `target` | string | the switch target key: a service name or id, or `tag:app=orders` |
/// | `seq` | integer | position in the target's log, from 1, assigned by the store |
/// | `timestamp` | RFC 3339 | when the event was created |
/// | `kind` | string | `intent`, `step`, `completed`, `rolled_back`, `refused`, `resolved`, `status` |
/// | `run_id` | uuid | ties together the events of one run |
/// | `status` | string | `deploying`, `testing`, `active`, `idle`, `rolled_back` |
/// | `environment` | string | e.g. `production` |
/// | `color` | string | the side the event is about: `blue`, `green` or another name |
/// | `deployment`, `version`, `service`, `upstream`, `build_id` | string | deployment attributes |
/// | `actor` | string | who ran it |
/// | `reason` | string | why (rollback reason, refused gates) |
/// | `strategy` | string | `upstream`, `route` or `weights` |
/// | `from`, `to` | string | side names |
/// | `step` | object | [`Step`]: `index`, `of`, `weights` |
/// | `intent` | object | [`Intent`]: `format`, `strategy`, `from`, `to`, `writes`, `undo`, `prior` |
///
/// # Building events
///
/// [`Event::new`] starts an event; the `with_*` methods fill it in; [`Event::next`] starts
/// the next event of the same run, keeping the context (target, run id, actor, sides, …):
///
/// ```
/// use kong_switch_core::state::{DeploymentStatus, Event, EventKind};
/// use uuid::Uuid;
///
/// let started = Event::new("orders", EventKind::Status)
///     .with_run_id(Uuid::new_v4())
///     .with_actor("alice@host (pid 4242)")
///     .with_strategy("upstream")
///     .with_sides("blue", "green")
///     .with_status(DeploymentStatus::Testing);
/// let done = started.next(EventKind::Completed).with_status(DeploymentStatus::Active);
/// assert_eq!(done.run_id, started.run_id);
/// assert_eq!(done.to.as_deref(), Some("green"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// The switch target key, e.g. the Kong service name or `tag:app=orders`.
    pub target: String,
    /// Position in the target's log, from 1; assigned by the store on append (0 before).
    #[serde(default)]
    pub seq: u64,
    /// When the event was created.
    pub timestamp: DateTime<Utc>,
    /// What the event records.
    pub kind: EventKind,
    /// Ties together the events of one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
    /// The deployment status this event establishes, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeploymentStatus>,
    /// The environment, e.g. `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The side this event is about (for `completed`: the side now active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    /// The deployment name (e.g. the Kubernetes Deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The version deployed, e.g. an image tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The Kong service involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The Kong upstream involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The CI build id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Who ran it, e.g. `alice@host (pid 4242)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Why: the rollback reason, the refused gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `upstream`, `route` or `weights`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// The side traffic leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The side traffic goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// For [`EventKind::Step`]: the step applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    /// For [`EventKind::Intent`] (and [`EventKind::Resolved`]): the planned writes and their
    /// undo, or, when this kong-switch cannot decode it, the record as found
    /// ([`IntentRecord::Unreadable`]): never a default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<IntentRecord>,
    /// For [`EventKind::LeaseTakenOver`]: who took the lease over from whom, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover: Option<Takeover>,
}

impl Event {
    /// A new event of `kind` for `target`, timestamped now, with every optional field unset.
    pub fn new(target: impl Into<String>, kind: EventKind) -> Self {
        Event {
            target: target.into(),
            seq: 0,
            timestamp: Utc::now(),
            kind,
            run_id: None,
            status: None,
            environment: None,
            color: None,
            deployment: None,
            version: None,
            service: None,
            upstream: None,
            build_id: None,
            actor: None,
            reason: None,
            strategy: None,
            from: None,
            to: None,
            step: None,
            intent: None,
            takeover: None,
        }
    }

    /// An [`EventKind::Intent`] event carrying `intent`, with `strategy`, `from` and `to`
    /// copied from it.
    pub fn intent(target: impl Into<String>, intent: Intent) -> Self {
        Event::new(target, EventKind::Intent).with_intent(intent)
    }

    /// The next event of the same run: a new event of `kind`, timestamped now, keeping the
    /// context of `self` (target, run id, environment, color, deployment, version, service,
    /// upstream, build id, actor, strategy, from, to) and dropping the rest (seq, status,
    /// reason, step, intent).
    #[must_use]
    pub fn next(&self, kind: EventKind) -> Event {
        Event {
            target: self.target.clone(),
            seq: 0,
            timestamp: Utc::now(),
            kind,
            run_id: self.run_id,
            status: None,
            environment: self.environment.clone(),
            color: self.color.clone(),
            deployment: self.deployment.clone(),
            version: self.version.clone(),
            service: self.service.clone(),
            upstream: self.upstream.clone(),
            build_id: self.build_id.clone(),
            actor: self.actor.clone(),
            reason: None,
            strategy: self.strategy.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            step: None,
            intent: None,
            takeover: None,
        }
    }

    /// Sets the timestamp.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: DateTime<Utc>) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Sets the run id.
    #[must_use]
    pub fn with_run_id(mut self, run_id: Uuid) -> Self {
        self.run_id = Some(run_id);
        self
    }

    /// Sets the deployment status.
    #[must_use]
    pub fn with_status(mut self, status: DeploymentStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the environment.
    #[must_use]
    pub fn with_environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Sets the color.
    #[must_use]
    pub fn with_color(mut self, color: impl Into<Color>) -> Self {
        self.color = Some(color.into());
        self
    }

    /// Sets the deployment name.
    #[must_use]
    pub fn with_deployment(mut self, deployment: impl Into<String>) -> Self {
        self.deployment = Some(deployment.into());
        self
    }

    /// Sets the version.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Sets the Kong service.
    #[must_use]
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Sets the Kong upstream.
    #[must_use]
    pub fn with_upstream(mut self, upstream: impl Into<String>) -> Self {
        self.upstream = Some(upstream.into());
        self
    }

    /// Sets the build id.
    #[must_use]
    pub fn with_build_id(mut self, build_id: impl Into<String>) -> Self {
        self.build_id = Some(build_id.into());
        self
    }

    /// Sets the actor.
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the reason.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the strategy (`upstream`, `route` or `weights`).
    #[must_use]
    pub fn with_strategy(mut self, strategy: impl Into<String>) -> Self {
        self.strategy = Some(strategy.into());
        self
    }

    /// Sets the sides: traffic moves `from` → `to`.
    #[must_use]
    pub fn with_sides(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self.to = Some(to.into());
        self
    }

    /// Sets the step payload.
    #[must_use]
    pub fn with_step(mut self, step: Step) -> Self {
        self.step = Some(step);
        self
    }

    /// Sets the takeover payload (for [`EventKind::LeaseTakenOver`]).
    #[must_use]
    pub fn with_takeover(mut self, takeover: Takeover) -> Self {
        self.takeover = Some(takeover);
        self
    }

    /// Sets the intent payload, and copies its strategy and sides into the event.
    #[must_use]
    pub fn with_intent(mut self, intent: Intent) -> Self {
        self.strategy = Some(intent.strategy.clone());
        self.from = Some(intent.from.clone());
        self.to = Some(intent.to.clone());
        self.intent = Some(IntentRecord::Readable(intent));
        self
    }
}

/// A line (or record) of a log that could not be read as an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptLine {
    /// 1-based line number (or position, for stores without lines).
    pub line: usize,
    /// Why it could not be read.
    pub message: String,
    /// The start of the line's text, lossily decoded and cut to a few hundred characters.
    pub text: String,
    /// Whether it is the last line and lacks its newline: typically a write cut short by a
    /// crash.
    pub unterminated: bool,
}

/// The events of one target, oldest first, and the records that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The readable events, oldest first.
    pub events: Vec<Event>,
    /// The unreadable records, in log order. Never silently dropped: show them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrupt: Vec<CorruptLine>,
}

impl History {
    /// Whether every record was readable.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
    }

    /// The newest readable event.
    pub fn last(&self) -> Option<&Event> {
        self.events.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AdminRequest, Method};
    use serde_json::json;

    fn fixed_time() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T01:00:00Z")
            .expect("valid RFC 3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn intent_event_serializes_to_the_documented_json() {
        let run_id = Uuid::parse_str("5f0c6a34-3b1f-4c57-9a55-2a1c9c8f1e2d").expect("valid uuid");
        let intent = Intent {
            format: super::super::intent::INTENT_FORMAT,
            strategy: "upstream".into(),
            from: "blue".into(),
            to: "green".into(),
            writes: vec![
                AdminRequest::new(Method::Patch, "/services/orders")
                    .with_body(json!({"host": "orders-green"})),
            ],
            undo: vec![
                AdminRequest::new(Method::Patch, "/services/orders")
                    .with_body(json!({"host": "orders-blue"})),
            ],
            prior: serde_json::Value::Null,
            part: None,
        };
        let mut event = Event::intent("orders", intent)
            .with_timestamp(fixed_time())
            .with_run_id(run_id)
            .with_actor("alice@host (pid 4242)")
            .with_service("orders");
        event.seq = 7;

        let expected = json!({
            "target": "orders",
            "seq": 7,
            "timestamp": "2026-11-25T01:00:00Z",
            "kind": "intent",
            "run_id": "5f0c6a34-3b1f-4c57-9a55-2a1c9c8f1e2d",
            "actor": "alice@host (pid 4242)",
            "strategy": "upstream",
            "from": "blue",
            "to": "green",
            "service": "orders",
            "intent": {
                "format": 2,
                "strategy": "upstream",
                "from": "blue",
                "to": "green",
                "writes": [{"method": "PATCH", "path": "/services/orders", "body": {"host": "orders-green"}}],
                "undo": [{"method": "PATCH", "path": "/services/orders", "body": {"host": "orders-blue"}}]
            }
        });
        assert_eq!(serde_json::to_value(&event).expect("serializes"), expected);
    }

    #[test]
    fn statuses_and_kinds_serialize_in_snake_case() {
        assert_eq!(
            serde_json::to_value(DeploymentStatus::RolledBack).expect("serializes"),
            json!("rolled_back")
        );
        for status in [
            DeploymentStatus::Deploying,
            DeploymentStatus::Testing,
            DeploymentStatus::Active,
            DeploymentStatus::Idle,
            DeploymentStatus::RolledBack,
        ] {
            assert_eq!(
                serde_json::to_value(status).expect("serializes"),
                json!(status.as_str())
            );
        }
        for kind in [
            EventKind::Intent,
            EventKind::Step,
            EventKind::Completed,
            EventKind::RolledBack,
            EventKind::Refused,
            EventKind::Resolved,
            EventKind::Status,
        ] {
            assert_eq!(
                serde_json::to_value(kind).expect("serializes"),
                json!(kind.as_str())
            );
        }
    }

    #[test]
    fn colors_serialize_as_plain_names() {
        assert_eq!(
            serde_json::to_value(Color::Blue).expect("ok"),
            json!("blue")
        );
        assert_eq!(
            serde_json::to_value(Color::Green).expect("ok"),
            json!("green")
        );
        let other = Color::Other("canary".into());
        assert_eq!(serde_json::to_value(&other).expect("ok"), json!("canary"));
        let back: Color = serde_json::from_value(json!("green")).expect("ok");
        assert_eq!(back, Color::Green);
        let back: Color = serde_json::from_value(json!("canary")).expect("ok");
        assert_eq!(back, other);
    }

    #[test]
    fn reading_ignores_unknown_fields_and_kinds() {
        let line = json!({
            "target": "orders",
            "seq": 3,
            "timestamp": "2026-11-25T01:00:00Z",
            "kind": "paused",
            "added_in_a_later_version": {"x": 1}
        });
        let event: Event = serde_json::from_value(line).expect("forward compatible");
        assert_eq!(event.kind, EventKind::Unknown);
        assert_eq!(event.seq, 3);
    }

    #[test]
    fn next_keeps_the_run_context_and_drops_the_payload() {
        let first = Event::new("orders", EventKind::Intent)
            .with_run_id(Uuid::new_v4())
            .with_actor("bob")
            .with_sides("blue", "green")
            .with_reason("first")
            .with_status(DeploymentStatus::Testing);
        let next = first.next(EventKind::RolledBack);
        assert_eq!(next.kind, EventKind::RolledBack);
        assert_eq!(next.run_id, first.run_id);
        assert_eq!(next.actor.as_deref(), Some("bob"));
        assert_eq!(next.from.as_deref(), Some("blue"));
        assert_eq!(next.reason, None);
        assert_eq!(next.status, None);
    }

    #[test]
    fn step_weights_serialize_in_address_order() {
        let step = Step {
            index: 1,
            of: Some(4),
            weights: BTreeMap::from([
                ("10.0.0.9:80".to_owned(), 75),
                ("10.0.0.1:80".to_owned(), 25),
            ]),
        };
        assert_eq!(
            serde_json::to_string(&step).expect("serializes"),
            r#"{"index":1,"of":4,"weights":{"10.0.0.1:80":25,"10.0.0.9:80":75}}"#
        );
    }
}
