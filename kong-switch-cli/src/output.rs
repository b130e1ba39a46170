//! Rendering: text for people, JSON for programs, progress only on a terminal.

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

use crate::cli::OutputFormat;

/// Something the CLI prints as its result.
pub trait Render: Serialize {
    /// Writes the human-readable form.
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()>;
}

/// Where and how results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    format: OutputFormat,
    quiet: bool,
}

impl Printer {
    /// A printer for the chosen format.
    pub fn new(format: OutputFormat, quiet: bool) -> Self {
        Printer { format, quiet }
    }

    /// Whether progress may be drawn: text output, not quiet, stderr is a terminal.
    pub fn progress_enabled(&self) -> bool {
        self.format == OutputFormat::Text && !self.quiet && io::stderr().is_terminal()
    }

    /// Prints a result on stdout. A closed pipe (`| head`) is not an error.
    pub fn print<T: Render>(&self, value: &T) -> io::Result<()> {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        let result = match self.format {
            OutputFormat::Text => value.render_text(&mut out),
            OutputFormat::Json => serde_json::to_writer_pretty(&mut out, value)
                .map_err(io::Error::from)
                .and_then(|()| writeln!(out)),
        };
        ignore_broken_pipe(result.and_then(|()| out.flush()))
    }

    /// Prints a failure: one line on stderr, and in JSON mode also a JSON document on stdout
    /// (`{"error": {"message", "exit_code"}}`) so scripts can read it.
    pub fn print_error(&self, message: &str, exit_code: u8) {
        eprintln!("error: {message}");
        if self.format == OutputFormat::Json {
            let doc = serde_json::json!({"error": {"message": message, "exit_code": exit_code}});
            let stdout = io::stdout();
            let mut out = stdout.lock();
            let _ = serde_json::to_writer_pretty(&mut out, &doc)
                .map_err(io::Error::from)
                .and_then(|()| writeln!(out));
        }
    }
}

fn ignore_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `-` for an absent value in text output.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
