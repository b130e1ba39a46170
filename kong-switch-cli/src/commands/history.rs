//! `kong-switch history <target>`.

use std::io::{self, Write};

use kong_switch_core::state::{Event, History, StateLog};
use kong_switch_core::switch::SwitchTarget;
use serde::Serialize;

use crate::cli::{GlobalArgs, HistoryArgs};
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{Printer, Render, or_dash};
use crate::state;

/// `history --output json`: the events, oldest first, and any unreadable lines of the log.
#[derive(Debug, Serialize)]
pub struct HistoryReport {
    /// The target key.
    pub target: String,
    /// Events, oldest first (the last `--limit`, if given).
    pub events: Vec<Event>,
    /// Lines of the log that could not be read (e.g. cut short by a crash).
    pub corrupt: Vec<kong_switch_core::state::CorruptLine>,
}

/// Runs `history`.
pub async fn run(
    global: &GlobalArgs,
    printer: &Printer,
    args: &HistoryArgs,
) -> Result<Exit, CliError> {
    SwitchTarget::parse(&args.target)?.validate()?;
    let log = state::open_log(global).await?;
    let History {
        mut events,
        corrupt,
    } = log.history(&args.target).await?;
    if let Some(limit) = args.limit {
        let skip = events.len().saturating_sub(limit);
        events.drain(..skip);
    }
    printer.print(&HistoryReport {
        target: args.target.clone(),
        events,
        corrupt,
    })?;
    Ok(Exit::Ok)
}

impl Render for HistoryReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.events.is_empty() && self.corrupt.is_empty() {
            return writeln!(out, "no events recorded for {}", self.target);
        }
        for e in &self.events {
            writeln!(out, "{}", event_line(e))?;
        }
        for c in &self.corrupt {
            writeln!(
                out,
                "warning: line {} of the log is unreadable{}: {}",
                c.line,
                if c.unterminated {
                    " (cut short, e.g. by a crash)"
                } else {
                    ""
                },
                c.message
            )?;
        }
        Ok(())
    }
}

/// `#3 2026-11-25T01:02:03Z completed active green orders-blue→orders-green by alice — reason`
pub fn event_line(e: &Event) -> String {
    let mut line = format!(
        "#{:<3} {} {:<11} {:<11} {:<6}",
        e.seq,
        e.timestamp.format("%Y-%m-%dT%H:%M:%SZ"),
        e.kind.as_str(),
        or_dash(e.status.as_ref().map(|s| s.as_str())),
        or_dash(e.color.as_ref().map(|c| c.as_str())),
    );
    if e.from.is_some() || e.to.is_some() {
        line.push_str(&format!(
            " {}→{}",
            or_dash(e.from.as_deref()),
            or_dash(e.to.as_deref())
        ));
    }
    if let Some(strategy) = &e.strategy {
        line.push_str(&format!(" [{strategy}]"));
    }
    if let Some(v) = &e.version {
        line.push_str(&format!(" version {v}"));
    }
    if let Some(b) = &e.build_id {
        line.push_str(&format!(" build {b}"));
    }
    if let Some(actor) = &e.actor {
        line.push_str(&format!(" by {actor}"));
    }
    if let Some(reason) = &e.reason {
        line.push_str(&format!(" — {reason}"));
    }
    line
}
