//! `unitgen logs INSTANCE [SERVICE...]`: the journal of an instance's
//! units, interleaved in time order, each line prefixed by its service (as
//! `docker compose logs` does). Read with `journalctl`, from the host's
//! journal or, with --root, the one under that root.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::Args;
use miette::{IntoDiagnostic as _, Result, WrapErr as _, miette};

use super::fleet::{NotOnFleetArgs, OnMachine};
use super::host::HostArgs;
use super::installed::Installed;
use super::output::{self, outln};
use super::{FileArgs, Outcome};
use crate::diagnostic::shown;
use crate::render::{Owner, UnitFile};
use crate::systemd::journal;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The instance.
    pub instance: String,
    /// Only these services (with their sidekicks) [default: every unit of
    /// the instance].
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Keep printing new lines as they are logged.
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the last lines to show (of all units together).
    #[arg(short = 'n', long, value_name = "LINES")]
    pub lines: Option<u32>,
    /// Only lines from this time on: `"10 min ago"`, `today`, `2026-11-29 10:00`
    /// (anything `journalctl --since` takes).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Prefix each line with its time.
    #[arg(short, long)]
    pub timestamps: bool,
    /// The app template, deployments file or site file [default:
    /// unitgen.yaml, or site.yaml when there is no unitgen.yaml]. With a
    /// site file, name instances APP/INSTANCE. `-f` is --follow here, as in
    /// `journalctl` and `docker logs`.
    #[arg(
        long = "file",
        value_name = "FILE",
        default_value = super::DEFAULT_FILE,
        hide_default_value = true
    )]
    pub file: PathBuf,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub fleet: NotOnFleetArgs,
}

pub fn run(args: LogsArgs) -> Result<Outcome> {
    let template = FileArgs {
        file: args.file.clone(),
    };
    // journalctl reads a journal from files, this machine's or --root's:
    // a D-Bus address names no journal, and the lines shown would be
    // another systemd's than the one --bus names.
    if let Some(bus) = &args.host.bus {
        let problem = crate::diagnostic::Problem::new(format!(
            "`unitgen logs --bus {bus}`: the journal is read from files, not over D-Bus"
        ))
        .help(
            "run `unitgen logs` where that systemd runs, or give its root file system with --root",
        );
        return Err(miette::Report::new(problem));
    }
    if args.fleet.fleet {
        let (app, instance) = template.app_and_instance(&args.instance)?;
        let wanted = OnMachine::Journal(&args.services);
        return Err(super::fleet::refuse_on_machine(
            &args.fleet,
            &template,
            &args.instance,
            (&app, &instance),
            wanted,
        ));
    }
    let installed = Installed::read(&template, &args.host, &args.instance)?;
    let selected = installed.select(&args.services)?;
    let prefixes: Vec<(String, String)> = selected
        .iter()
        .filter(|(unit, _)| !unit.name.ends_with(".target"))
        // Read from the unit files (their names and `[X-Unitgen]`), as the
        // lines are from the journal: shown, never obeyed.
        .map(|(unit, owner)| (unit.name.clone(), shown(&label(unit, owner))))
        .collect();
    let width = prefixes
        .iter()
        .map(|(_, p)| p.chars().count())
        .max()
        .unwrap_or(0);

    let host = args.host.host()?;
    let mut journalctl = Command::new("journalctl");
    journalctl.args(["--no-pager", "--output=json", "--all"]);
    if let Some(root) = &host.root {
        journalctl.arg(format!("--root={}", root.display()));
    }
    if let Some(lines) = args.lines {
        journalctl.arg(format!("--lines={lines}"));
    }
    if let Some(since) = &args.since {
        journalctl.arg(format!("--since={since}"));
    }
    if args.follow {
        journalctl.arg("--follow");
    }
    let unit_flag = if host.user { "--user-unit" } else { "--unit" };
    for (unit, _) in &prefixes {
        journalctl.arg(unit_flag).arg(unit);
    }
    let mut child = journalctl
        .stdout(Stdio::piped())
        .spawn()
        .into_diagnostic()
        .wrap_err("running journalctl")?;
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.into_diagnostic().wrap_err("reading journalctl")?;
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let Some(prefix) = unit_of(&entry, host.user)
            .and_then(|unit| prefixes.iter().find(|(u, _)| u == unit))
            .map(|(_, prefix)| prefix)
        else {
            continue;
        };
        let time = if args.timestamps {
            format!("{} ", timestamp(&entry))
        } else {
            String::new()
        };
        let message = journal::message(&entry).unwrap_or_default();
        for line in message_lines(&message) {
            outln!("{prefix:<width$} | {time}{line}")?;
        }
        if output::closed() {
            break;
        }
    }
    // Following ends only when the reader goes away (or on Ctrl-C, which
    // reaches journalctl too).
    let _ = child.kill();
    let status = child.wait().into_diagnostic()?;
    if !status.success() && !output::closed() && !args.follow {
        return Err(miette!("journalctl failed ({status})"));
    }
    Ok(Outcome::Clean)
}

/// A journal message as the lines `logs` prints. Containers print what
/// they like, and a journal entry can hold any bytes: each line of the
/// message gets its service's prefix (a line break cannot start a line that
/// seems another service's), colour codes (`ESC [ … m`) are dropped, and
/// what else a terminal would obey (see [`as_printed`]) is shown as an
/// escape, where `journalctl` shows such an entry as `[blob data]`.
fn message_lines(message: &str) -> Vec<String> {
    let message = message.strip_suffix('\n').unwrap_or(message);
    message
        .split('\n')
        .map(|line| as_printed(&without_colors(line.strip_suffix('\r').unwrap_or(line))))
        .collect()
}

/// A line of a container's output as it printed it, as `docker logs` and
/// `journalctl` show it, but for what would move the cursor or end the
/// line (controls, but a tab; a line or paragraph separator), which is
/// written as an escape (`\u{1b}`, `\r`): that is what `journalctl` counts
/// unprintable. The rest is the program's own text and left whole: a
/// zero-width joiner holds an emoji sequence together (👩‍💻), marks and
/// bidirectional controls order Arabic and Hebrew text, and whatever they
/// do reaches no further than the end of the container's own line, after
/// its service's prefix. (unitgen's own messages, which quote such lines
/// in a failure report, escape those too: see `diagnostic::printable`.)
fn as_printed(line: &str) -> String {
    let obeyed = |c: char| (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}');
    if !line.chars().any(obeyed) {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            c if obeyed(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// `line` without its SGR sequences (`ESC [` digits and `;` `m`), which
/// only colour text.
fn without_colors(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("\u{1b}[") {
        let params = &rest[at + 2..];
        let digits = params
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(params.len());
        if params[digits..].starts_with('m') {
            plain.push_str(&rest[..at]);
            rest = &params[digits + 1..];
        } else {
            // Not a colour: kept, to be shown escaped.
            plain.push_str(&rest[..at + 2]);
            rest = params;
        }
    }
    plain.push_str(rest);
    plain
}

/// How a unit's lines are prefixed: its service, `web-announce` for a
/// sidekick, `network` for the network unit.
fn label(unit: &UnitFile, owner: &Owner) -> String {
    match (&owner.service, &owner.announces) {
        (Some(service), _) => service.clone(),
        (None, Some(announced)) => format!("{announced}-announce"),
        (None, None) => unit
            .name
            .trim_end_matches(".service")
            .rsplit('-')
            .next()
            .unwrap_or(&unit.name)
            .to_string(),
    }
}

/// The unit an entry is about: the one that logged it, or for systemd's
/// own lines ("Started …"), the one they are about.
fn unit_of(entry: &serde_json::Value, user: bool) -> Option<&str> {
    let about = if user { "USER_UNIT" } else { "UNIT" };
    let logged_by = if user {
        "_SYSTEMD_USER_UNIT"
    } else {
        "_SYSTEMD_UNIT"
    };
    entry[about].as_str().or(entry[logged_by].as_str())
}

/// The entry's time (`__REALTIME_TIMESTAMP`, microseconds) in UTC.
fn timestamp(entry: &serde_json::Value) -> String {
    entry["__REALTIME_TIMESTAMP"]
        .as_str()
        .and_then(|us| us.parse::<u64>().ok())
        .map_or_else(|| "-".to_string(), |us| super::when::iso(us / 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::message_lines;

    /// Found in the trust sweep: `logs` printed what a container wrote as it
    /// was, so a container could clear the screen, retitle the terminal,
    /// overwrite the service prefix with a carriage return, or print a line
    /// that seemed another service's.
    #[test]
    fn what_a_container_prints_is_shown_never_obeyed() {
        assert_eq!(
            message_lines("\u{1b}[31mred\u{1b}[0m plain\ttab"),
            ["red plain\ttab"],
            "colours dropped, tabs kept"
        );
        assert_eq!(
            message_lines("a\u{1b}[2J\u{1b}]0;owned\u{7}\rdb    | fake\u{85}x\u{2028}y\u{7f}"),
            ["a\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\rdb    | fake\\u{85}x\\u{2028}y\\u{7f}"]
        );
        // What journalctl and docker logs print as it is: a joiner inside
        // an emoji sequence, a variation selector, right-to-left text with
        // its marks and isolates. It stays after the service's prefix.
        for text in [
            "build done 👩\u{200d}💻 ❤\u{fe0f}",
            "שלום \u{200f}(1)\u{200f} \u{2067}עולם\u{2069}",
            "\u{202e}reversed, on its own line only",
        ] {
            assert_eq!(message_lines(text), [text]);
        }
        assert_eq!(
            message_lines("first\r\ndb    | second\n"),
            ["first", "db    | second"],
            "each line gets its own prefix"
        );
        assert_eq!(message_lines(""), [""]);
    }
}
