//! Progress of a running switch on stderr: bars and spinners on a terminal, plain lines
//! otherwise, nothing with `--quiet` or `--output json`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use kong_switch_core::switch::{Progress, ProgressEvent};

/// How progress is drawn.
pub enum CliProgress {
    /// Nothing (quiet or JSON output).
    Silent,
    /// One plain line per event (stderr is not a terminal).
    Lines,
    /// A spinner for waits and a bar for steps (stderr is a terminal).
    Terminal(Mutex<Option<ProgressBar>>),
}

impl CliProgress {
    /// Picks the renderer.
    pub fn new(enabled: bool, terminal: bool) -> CliProgress {
        match (enabled, terminal) {
            (false, _) => CliProgress::Silent,
            (true, false) => CliProgress::Lines,
            (true, true) => CliProgress::Terminal(Mutex::new(None)),
        }
    }

    /// Clears any bar still drawn.
    pub fn finish(&self) {
        if let CliProgress::Terminal(bar) = self
            && let Some(bar) = bar.lock().ok().and_then(|mut b| b.take())
        {
            bar.finish_and_clear();
        }
    }
}

impl Progress for CliProgress {
    fn event(&self, event: ProgressEvent) {
        match self {
            CliProgress::Silent => {}
            CliProgress::Lines => {
                if worth_a_line(&event) {
                    eprintln!("{}", describe(&event));
                }
            }
            CliProgress::Terminal(slot) => {
                let Ok(mut slot) = slot.lock() else { return };
                draw(&mut slot, &event);
            }
        }
    }
}

/// Lets the engine own a handle while the command keeps one to clear the bars at the end.
pub struct SharedProgress(pub Arc<CliProgress>);

impl Progress for SharedProgress {
    fn event(&self, event: ProgressEvent) {
        self.0.event(event);
    }
}

fn draw(slot: &mut Option<ProgressBar>, event: &ProgressEvent) {
    match event {
        ProgressEvent::Waiting { what, up_to } => {
            replace(
                slot,
                spinner(format!(
                    "{what} (up to {})",
                    humantime::format_duration(*up_to)
                )),
            );
        }
        ProgressEvent::StepApplied {
            index,
            of,
            description,
        } => {
            let bar = match slot.take() {
                Some(bar) if bar.length() == Some(*of as u64) => bar,
                other => {
                    if let Some(old) = other {
                        old.finish_and_clear();
                    }
                    steps_bar(*of as u64)
                }
            };
            bar.set_position(*index as u64);
            bar.println(format!("  ✓ {description}"));
            *slot = Some(bar);
        }
        ProgressEvent::Verifying { done, of } => match (slot.as_ref(), of) {
            (Some(bar), Some(n)) if bar.length() == Some(u64::from(*n)) => {
                bar.set_position(u64::from(*done));
            }
            (_, Some(n)) => {
                let bar = steps_bar(u64::from(*n)).with_message("verifying");
                bar.set_position(u64::from(*done));
                replace(slot, bar);
            }
            (_, None) => replace(slot, spinner(format!("verifying: {done} requests"))),
        },
        other => match slot.as_ref() {
            Some(bar) => bar.println(describe(other)),
            None => eprintln!("{}", describe(other)),
        },
    }
}

fn replace(slot: &mut Option<ProgressBar>, bar: ProgressBar) {
    if let Some(old) = slot.replace(bar) {
        old.finish_and_clear();
    }
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn steps_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("  {msg} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Without a terminal, verification is shown at its start, every 50 requests and its end,
/// not once per request.
fn worth_a_line(event: &ProgressEvent) -> bool {
    match event {
        ProgressEvent::Verifying { done, of } => *done == 1 || done % 50 == 0 || Some(*done) == *of,
        _ => true,
    }
}

/// One line for an event.
fn describe(event: &ProgressEvent) -> String {
    match event {
        ProgressEvent::Reading { what } => format!("reading {what}"),
        ProgressEvent::Gate(g) => format!(
            "gate {} {}: {} (required {})",
            g.name,
            if g.passed { "passed" } else { "FAILED" },
            g.observed,
            g.required
        ),
        ProgressEvent::StepApplied {
            index,
            of,
            description,
        } => {
            format!("step {index}/{of} applied: {description}")
        }
        ProgressEvent::Waiting { what, up_to } => {
            format!(
                "waiting: {what} (up to {})",
                humantime::format_duration(*up_to)
            )
        }
        ProgressEvent::Verifying { done, of } => match of {
            Some(n) => format!("verifying {done}/{n}"),
            None => format!("verifying: {done} requests"),
        },
        ProgressEvent::RollingBack {
            index,
            of,
            description,
        } => {
            format!("rolling back {index}/{of}: {description}")
        }
        ProgressEvent::Service { name, state } => format!("service {name}: {state}"),
        other => format!("{other:?}"),
    }
}
