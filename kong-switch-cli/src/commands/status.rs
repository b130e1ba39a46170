//! `kong-switch status <service>`.

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use kong_switch_core::admin::{AdminRequest, KongClient};
use kong_switch_core::inspect::{self, ServiceStatus};
use kong_switch_core::model::NameOrId;
use kong_switch_core::state::{Event, IntentRecord, Lease, LeaseState, StateLog};
use kong_switch_core::switch::{Drift, DriftState, Engine, SwitchTarget};
use serde::Serialize;

use crate::cli::{GlobalArgs, StatusArgs};
use crate::commands::history::event_line;
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{Printer, Render, or_dash};
use crate::state;

/// `status --output json`: where traffic goes, what the log says last, and whether the two
/// agree.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// Kong's view of the service (none for a tag selection, `tag:K=V`, whose services are
    /// compared through the log's saved plans only).
    #[serde(flatten)]
    pub kong_view: Option<ServiceStatus>,
    /// The last event logged for the service, if any. An intent shows its writes brief and
    /// leaves out its saved state (`prior`): both can be large (a DB-less intent written by an
    /// older version holds whole declarative configurations); `history` prints the record as
    /// it is.
    #[serde(serialize_with = "brief_event")]
    pub last_event: Option<Event>,
    /// The lease on the service: free, held (by whom, last renewed when), abandoned (its
    /// holder stopped renewing it) or unreadable.
    pub lease: LeaseState,
    /// The log compared with Kong.
    pub drift: Drift,
}

/// Runs `status` of a service, or of a tag selection (`tag:K=V`, the log only). Exits 9 when Kong and the log disagree or a run was left unfinished.
pub async fn run(
    global: &GlobalArgs,
    client: KongClient,
    printer: &Printer,
    args: &StatusArgs,
) -> Result<Exit, CliError> {
    SwitchTarget::parse(&args.service)?.validate()?;
    let sides = super::switch::sides(&args.naming);
    sides.validate()?;
    let service = NameOrId::from(args.service.as_str());
    let kong_view = if args.service.starts_with("tag:") {
        None
    } else {
        Some(
            inspect::service_status(&client, &service, &sides)
                .await
                .map_err(|e| {
                    if e.is_not_found() {
                        CliError::NotFound(format!(
                            "service `{service}` does not exist in Kong at {}; check the name (or id) and --workspace",
                            client.config().base_url()
                        ))
                    } else {
                        e.into()
                    }
                })?,
        )
    };
    let log = state::open_log(global).await?;
    let last_event = log.last(service.as_str()).await?;
    let lease = log.lease(service.as_str()).await?;
    let drift = Engine::new(client, log).drift(service.as_str()).await?;
    let exit = Exit::of_drift(drift.state);
    printer.print(&StatusReport {
        kong_view,
        last_event,
        lease,
        drift,
    })?;
    Ok(exit)
}

fn brief_event<S: serde::Serializer>(event: &Option<Event>, s: S) -> Result<S::Ok, S::Error> {
    let mut event = event.clone();
    if let Some(IntentRecord::Readable(intent)) = event.as_mut().and_then(|e| e.intent.as_mut()) {
        intent.writes = intent.writes.iter().map(AdminRequest::brief).collect();
        intent.undo = intent.undo.iter().map(AdminRequest::brief).collect();
        intent.prior = serde_json::Value::Null;
    }
    event.serialize(s)
}

impl Render for StatusReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        match &self.kong_view {
            Some(view) => render_kong_view(view, out)?,
            None => writeln!(
                out,
                "target {}: a tag selection, compared through the plans its runs saved",
                self.drift.target
            )?,
        }
        match &self.last_event {
            Some(e) => writeln!(out, "last event: {}", event_line(e))?,
            None => writeln!(out, "last event: none recorded")?,
        }
        if let Some(run) = self.drift.run_id {
            // The id `history` shows for each event of the run, to find them in the log.
            writeln!(out, "last run: {run}")?;
        }
        writeln!(out, "lease: {}", lease_line(&self.lease, Utc::now()))?;
        let verdict = match self.drift.state {
            DriftState::NoHistory => "nothing recorded to compare",
            DriftState::InSync => "Kong matches the log",
            DriftState::Drifted => "DRIFT: Kong differs from the log",
            DriftState::DanglingIntent => {
                "UNFINISHED RUN: an intent has no outcome; `kong-switch rollback` or a re-run resolves it"
            }
            DriftState::Unreadable => {
                "UNREADABLE RUN: the last run's intent cannot be read, so Kong cannot be compared with it; `kong-switch resolve` records where Kong is"
            }
        };
        writeln!(out, "log vs Kong: {verdict}")?;
        if matches!(
            self.drift.state,
            DriftState::Drifted | DriftState::DanglingIntent | DriftState::Unreadable
        ) {
            writeln!(out, "  {}", self.drift.message)?;
            let target = &self.drift.target;
            let run = or_dash(self.drift.run_id);
            if self.drift.state == DriftState::Unreadable {
                writeln!(
                    out,
                    "  see the events of run {run} with `kong-switch history {target}`; record where Kong is with `kong-switch resolve {target} --to <side>`"
                )?;
            } else {
                writeln!(
                    out,
                    "  see the events of run {run} with `kong-switch history {target}`; `kong-switch rollback {target}` restores its start"
                )?;
            }
            for v in self.drift.values.iter().filter(|v| v.expected != v.kong) {
                writeln!(
                    out,
                    "  {} {}: log expects {}, Kong has {}",
                    v.read, v.pointer, v.expected, v.kong
                )?;
            }
        }
        Ok(())
    }
}

/// One line on the lease: who holds it and when it last renewed, or that it was abandoned
/// and by which run.
fn lease_line(state: &LeaseState, now: DateTime<Utc>) -> String {
    match state {
        LeaseState::Free => "free".to_owned(),
        LeaseState::Held { lease } => format!(
            "held by {}; last renewed {} ({} ago), expires {}",
            lease.holder,
            at(lease.renewed_at),
            ago(lease, now),
            at(lease.expires_at)
        ),
        LeaseState::Abandoned { lease } => format!(
            "ABANDONED by {} (run {}): last renewed {} ({} ago), expired {}; the next run or rollback takes it over",
            lease.holder,
            lease
                .holder
                .run_id
                .map_or_else(|| "unknown".to_owned(), |r| r.to_string()),
            at(lease.renewed_at),
            ago(lease, now),
            at(lease.expires_at)
        ),
        LeaseState::Unreadable { reason } => format!(
            "held by an unknown holder: {reason} (`--break-lease` takes it over if it does not change while watched)"
        ),
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn ago(lease: &Lease, now: DateTime<Utc>) -> String {
    let secs = (now - lease.renewed_at).num_seconds().max(0);
    humantime::format_duration(std::time::Duration::from_secs(secs.unsigned_abs())).to_string()
}

fn render_kong_view(view: &ServiceStatus, out: &mut dyn Write) -> io::Result<()> {
    let svc = &view.service;
    writeln!(
        out,
        "service {} → host {}:{} ({})",
        or_dash(svc.name.as_deref().or(svc.id.as_deref())),
        svc.host,
        or_dash(svc.port),
        or_dash(svc.protocol.as_deref()),
    )?;
    writeln!(
        out,
        "active: {}   (Kong {}, {} mode)",
        view.active_color
            .as_deref()
            .unwrap_or("unknown (no blue/green name or tag, or traffic is split)"),
        view.kong.version,
        view.kong.mode
    )?;
    if let Some(pair) = &view.route_pair {
        let members: Vec<String> = pair
            .iter()
            .map(|m| {
                format!(
                    "{} ({}) {} route{}",
                    m.service,
                    m.color.as_deref().unwrap_or("no color"),
                    m.routes,
                    if m.routes == 1 { "" } else { "s" }
                )
            })
            .collect();
        writeln!(out, "  route pair: {}", members.join(", "))?;
    }
    for route in &view.routes {
        writeln!(
            out,
            "  route {}  paths {}  hosts {}",
            or_dash(route.name.as_deref().or(route.id.as_deref())),
            list_or_dash(&route.paths),
            list_or_dash(&route.hosts)
        )?;
    }
    match &view.upstream {
        None => writeln!(
            out,
            "  host is not a Kong upstream: traffic goes to it directly"
        )?,
        Some(u) => {
            writeln!(
                out,
                "  upstream {} ({}, health checks {})",
                u.name,
                or_dash(u.algorithm.as_deref()),
                if u.healthchecks_enabled { "on" } else { "off" }
            )?;
            if u.targets.is_empty() {
                writeln!(out, "    no targets: Kong answers 503 for this service")?;
            }
            for t in &u.targets {
                writeln!(
                    out,
                    "    target {:<28} weight {:>5}  {}{}",
                    t.target,
                    t.weight,
                    t.health.as_ref().map_or("health unknown", |h| h.as_str()),
                    t.color
                        .as_deref()
                        .map(|c| format!("  [{c}]"))
                        .unwrap_or_default()
                )?;
            }
        }
    }
    Ok(())
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeDelta;
    use kong_switch_core::admin::Method;
    use kong_switch_core::state::{INTENT_FORMAT, Intent, LeaseHolder, LeaseRequest};
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn the_last_event_shows_an_intent_without_declarative_configurations() {
        let config = json!({"_format_version": "3.0", "services": [{"name": "x".repeat(10_000)}]});
        let post = AdminRequest::new(Method::Post, "/config").with_body(config.clone());
        let intent = Intent {
            format: INTENT_FORMAT,
            strategy: "upstream".into(),
            from: "blue".into(),
            to: "green".into(),
            writes: vec![
                post.clone()
                    .with_summary("service demo: host demo-blue → demo-green"),
            ],
            undo: vec![post],
            prior: json!({"plan": config}),
            part: None,
        };
        let event = Some(Event::intent("demo", intent));
        let mut out = Vec::new();
        brief_event(&event, &mut serde_json::Serializer::new(&mut out)).expect("serializes");
        let shown: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert!(out.len() < 1024, "{shown}");
        assert_eq!(
            shown["intent"]["writes"][0],
            json!({"method": "POST", "path": "/config",
                   "summary": "service demo: host demo-blue → demo-green"})
        );
        assert!(shown["intent"]["undo"][0]["body"].is_null(), "{shown}");
        assert!(shown["intent"].get("prior").is_none(), "{shown}");
    }

    fn lease(run: Uuid) -> Lease {
        let holder = LeaseHolder::new("alice@vm")
            .with_host("vm")
            .with_pid(4242)
            .with_run_id(run);
        Lease::grant(
            &LeaseRequest::new("orders", holder, Duration::from_secs(900))
                .renewed(Duration::from_secs(10), Duration::from_secs(30)),
        )
    }

    #[test]
    fn the_lease_line_names_the_holder_its_last_renewal_and_an_abandoned_run() {
        let run = Uuid::new_v4();
        let lease = lease(run);
        let now = lease.renewed_at + TimeDelta::seconds(12);
        let run = run.to_string();
        let cases = [
            (LeaseState::Free, vec!["free"]),
            (
                LeaseState::Held {
                    lease: lease.clone(),
                },
                vec![
                    "held by alice@vm (pid 4242 on vm",
                    "last renewed",
                    "(12s ago)",
                ],
            ),
            (
                LeaseState::Abandoned {
                    lease: lease.clone(),
                },
                vec!["ABANDONED by alice@vm", run.as_str(), "takes it over"],
            ),
            (
                LeaseState::Unreadable {
                    reason: "lease record version 2".into(),
                },
                vec!["unknown holder", "lease record version 2", "--break-lease"],
            ),
        ];
        for (state, wanted) in cases {
            let line = lease_line(&state, now);
            for part in wanted {
                assert!(line.contains(part), "{part:?} missing from {line:?}");
            }
        }
    }
}
