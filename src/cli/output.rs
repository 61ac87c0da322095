//! Standard output that a closed pipe does not break.
//!
//! `unitgen plan live | head` closes the pipe after ten lines; Rust ignores
//! SIGPIPE, so the next write fails with EPIPE and `println!` panics (exit
//! 101). As in ripgrep, a closed pipe is not an error: whoever read the
//! output has what they wanted. Later writes are skipped and the command
//! ends as it would have (`plan` still exits 2 when something differs;
//! `apply` is never cut short half way by its reader going away). Any other
//! write error (a full disk behind `>`) is reported.

use std::fmt;
use std::io::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use miette::{IntoDiagnostic as _, Result, WrapErr as _};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// `print!` for commands: `out!("{x}")?`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!($($arg)*))
    };
}

/// `println!` for commands: `outln!("{x}")?`.
macro_rules! outln {
    () => {
        $crate::cli::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};

pub fn write(args: fmt::Arguments<'_>) -> Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    match io::stdout().lock().write_fmt(args) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other
            .into_diagnostic()
            .wrap_err("writing to standard output"),
    }
}

/// Whether the reader has gone away: a command that could go on for ever
/// (`logs --follow`) stops.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}
