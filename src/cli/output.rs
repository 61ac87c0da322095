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
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
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

/// `outln!` for what a command reports in words or a table (status, ls,
/// history): the line shows values that Docker, systemd, etcd, fleet or a
/// unit file gave, and goes through [`crate::diagnostic::printable`] as every
/// message does. Not for what is a file's text (units, zones, docs, JSON),
/// which is written as it is.
macro_rules! showln {
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!(
            "{}\n",
            $crate::diagnostic::printable(&format!($($arg)*))
        ))
    };
}

pub(crate) use {out, outln, showln};

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

/// Writes a file the user named (`import -o`, `init -o`). A regular file is
/// replaced atomically (a failed write leaves the old one whole) and keeps
/// its mode; through a symbolic link it is the file linked to that is
/// replaced, so the link stays. A device or a pipe (`-o /dev/null`, a FIFO)
/// is written into: renaming a file over it would put a regular file in its
/// place (`/dev/null` among them, for every program on the host).
pub fn write_named_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    // What an earlier write killed halfway left beside the file goes.
    let sweep = |file: &Path| match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => crate::unit_dir::sweep_leftovers(dir),
        _ => crate::unit_dir::sweep_leftovers(Path::new(".")),
    };
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            let file = fs::canonicalize(path)?;
            sweep(&file)?;
            crate::unit_dir::write_atomic_mode(&file, contents, meta.permissions().mode() & 0o7777)
        }
        Ok(meta) if !meta.is_dir() => fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all(contents),
        _ => {
            sweep(path)?;
            crate::unit_dir::write_atomic(path, contents)
        }
    }
}

/// Whether writing `path` would replace a file the user has, which takes
/// `--force`; writing into a device or a pipe replaces nothing.
pub fn would_replace(path: &Path) -> bool {
    path.is_file()
}
