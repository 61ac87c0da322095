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
/// unit file gave, and stays one line (see [`one_line`]). Not for what is a
/// file's text (units, zones, docs), which is written as it is, nor JSON
/// (see [`json`]).
macro_rules! showln {
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!(
            "{}\n",
            $crate::cli::output::one_line(&format!($($arg)*))
        ))
    };
}

/// A line of a report or a table as shown: every character that would act
/// on the terminal, a line feed within it too, is written as an escape, so
/// that a value read from the host (an etcd key or value, a Docker error)
/// can neither redraw the terminal nor add a row of its own.
pub fn one_line(text: &str) -> String {
    crate::diagnostic::shown(text.trim_end_matches('\n'))
}

/// Prints `value` as pretty JSON: the same document, with every character
/// that would act on the terminal (C1 controls, DEL, bidirectional
/// overrides, which JSON allows raw in strings) written as a `\uXXXX`
/// escape, which every JSON reader reads back as that character.
pub fn json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("the report serializes");
    write(format_args!("{}\n", json_escaped(&text)))
}

fn json_escaped(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        // serde_json writes a line feed only between tokens: in a string
        // it is `\n` already.
        if c != '\n' && crate::diagnostic::acts_on_terminal(c) {
            // One past the Basic Multilingual Plane (a tag character) as
            // its UTF-16 pair, as JSON writes it.
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A value read from the host (a backend's URL in etcd) cannot add a
    /// row to a table, nor act on the terminal.
    #[test]
    fn a_shown_line_stays_one_line() {
        let row = format!(
            "  {:<20} {}",
            "https://a.example/",
            "http://10.0.0.1:80\n  https://bank.example/  http://evil \u{1b}[2J\u{202e}"
        );
        let shown = one_line(&row);
        assert!(
            !shown.chars().any(crate::diagnostic::acts_on_terminal),
            "{shown}"
        );
        assert!(
            shown.contains("http://10.0.0.1:80\\n  https://bank.example/"),
            "{shown}"
        );
        assert_eq!(
            one_line("routes: unknown: etcd said no\n"),
            "routes: unknown: etcd said no"
        );
    }

    /// JSON output is the same document, with nothing a terminal obeys in it.
    #[test]
    fn json_output_reads_back_the_same_and_shows_no_control() {
        let value = serde_json::json!({
            "url": "http://a\u{85}b\u{7f}c\u{202e}d\u{2066}e\u{1b}[2J\nf\tg",
            "rows": [{"name": "x\u{9b}31m", "zero width": "a\u{200b}b\u{e0041}c\u{feff}"}],
        });
        let text = json_escaped(&serde_json::to_string_pretty(&value).unwrap());
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && crate::diagnostic::acts_on_terminal(c)),
            "{text}"
        );
        let read: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(read, value);
    }
}
