//! Why a unit did not come up, told from what systemd and the journal kept
//! of that one start: the reason (Docker's health probes, the container's
//! exit status, a failed dependency, a timeout) and the container's own last
//! lines. Only lines of that start (its invocation) and of `docker run`
//! itself (its main process) are shown: no earlier runs, none of the
//! housekeeping commands around it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::diagnostic::printable;
use crate::render::docker::NOTE;
use crate::systemd::{FailedCommand, JobResult, Systemd, UnitState};

use super::converge::Host;
use super::journal;

/// How many of the container's last lines a report shows.
const LOG_LINES: usize = 15;

/// What was known of a unit when it was found failed. Read at once: a
/// restart by systemd (`Restart=`) begins a new invocation.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub unit: String,
    /// The start or restart job's result, if that job failed.
    pub job: Option<JobResult>,
    pub state: UnitState,
    /// Restarted by systemd (`Restart=`) since its job ended: when that job
    /// was sent (µs since the epoch). `state` is a later run's than the one
    /// the job started, which the journal tells of (see [`ended_run`]).
    pub restarted: Option<u64>,
}

/// A failed unit, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub unit: String,
    pub reason: String,
    /// unitgen's notes from the readiness check (e.g. the health probes).
    pub notes: Vec<String>,
    /// The container's last lines, from this start only.
    pub log: Vec<String>,
    /// The last lines of the failed command besides `docker run` (its own
    /// error, apart from what the unit's other commands wrote).
    pub command_log: Vec<String>,
}

impl Explanation {
    /// The explanation as lines for a terminal or a log, never wrapped.
    /// The reason, notes and log lines are what the container and Docker
    /// wrote: whatever in them a terminal would obey (an escape sequence,
    /// a carriage return, a line feed that would start a line of its own)
    /// is shown escaped. Tabs are kept, as in `unitgen logs`.
    pub fn lines(&self) -> Vec<String> {
        let shown = |text: &str| printable(&text.replace('\n', "\\n"));
        let mut lines = vec![format!("{}: {}", self.unit, shown(&self.reason))];
        lines.extend(self.notes.iter().map(|note| format!("  {}", shown(note))));
        if !self.command_log.is_empty() {
            lines.push("  that command's last lines:".into());
            lines.extend((self.command_log.iter()).map(|line| format!("  | {}", shown(line))));
        }
        if !self.log.is_empty() {
            lines.push("  its container's last lines (this start):".into());
            lines.extend(self.log.iter().map(|line| format!("  | {}", shown(line))));
        }
        lines
    }
}

/// How long a failure report waits for journald to catch up: a journald
/// that has not in this time is itself in trouble, and the report then
/// shows what the journal holds.
const JOURNAL_SYNC_WAIT: Duration = Duration::from_secs(5);

/// Explains each failed unit from the evidence and its journal, once
/// journald has written what the units printed before they failed
/// (asked through `systemd`, the host's manager).
pub fn explain_all(host: &Host, systemd: &Systemd, evidence: &[Evidence]) -> Vec<Explanation> {
    if !evidence.is_empty() {
        sync_journal(host, systemd);
    }
    evidence.iter().map(|e| explain(host, e)).collect()
}

/// Waits until journald has written every line it had received when
/// asked (`journalctl --sync`). A container's last lines, the reason it
/// died, reach journald through a socket a moment before systemd reports
/// the unit failed; on a busy host journald reads them later still, and a
/// report read at once would miss them. User units log to the system's
/// journald, which their user may not ask: their report reads at once.
fn sync_journal(host: &Host, systemd: &Systemd) {
    if host.user {
        return;
    }
    let asked = crate::state::now_micros();
    if systemd.request_journal_sync().is_err() {
        return;
    }
    let synced = host
        .root
        .as_deref()
        .unwrap_or(Path::new("/"))
        .join("run/systemd/journal/synced");
    let deadline = Instant::now() + JOURNAL_SYNC_WAIT;
    // journald writes the time of the sync (microseconds since the epoch,
    // CLOCK_REALTIME) into the file; a time before the request is an
    // earlier sync's.
    let synced_since = || {
        std::fs::read_to_string(&synced)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .is_some_and(|at| at >= asked)
    };
    while !synced_since() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Explains a failed unit from the evidence and its journal.
fn explain(host: &Host, evidence: &Evidence) -> Explanation {
    if let Some(job_sent) = evidence.restarted {
        // The run the command started has ended, and systemd has begun
        // another: that run is told from the journal, by how it ended.
        let Some(earlier) = ended_run(host, evidence, job_sent) else {
            // Not told there: a later run under way says only that; one
            // that has ended too is told as the last run.
            if under_way(&evidence.state) {
                return explain_from(evidence, &[]);
            }
            let last = Evidence {
                restarted: None,
                ..evidence.clone()
            };
            return explain_from(&last, &journal(host, &last));
        };
        let mut explained = explain_from(&earlier, &journal(host, &earlier));
        explained.reason = format!(
            "{}; systemd has started it again since ({} restarts so far)",
            explained.reason, evidence.state.n_restarts
        );
        return explained;
    }
    let entries = if evidence.state.invocation_id.is_empty() {
        Vec::new()
    } else {
        journal(host, evidence)
    };
    explain_from(evidence, &entries)
}

/// Whether a run of the unit is under way: started, not yet ended.
fn under_way(state: &UnitState) -> bool {
    state.is_active()
        || state.active_state == "activating" && !state.sub_state.starts_with("auto-restart")
}

/// The evidence of the run of `evidence`'s unit that the command's job
/// (sent at `job_sent`, µs since the epoch) started, as the journal tells
/// of it: the first start job systemd says it completed after that
/// (`JOB_TYPE=start`, `JOB_RESULT=done`: a restart job's stop half says
/// `restart`) names the run (`INVOCATION_ID=`), whose "Main process
/// exited" entry (`EXIT_CODE=`, `EXIT_STATUS=`) tells how it ended; its
/// `docker run` is the process of the run whose command line is it. None
/// when the journal does not tell (a run that ended cleanly is not logged
/// so; a user manager's journal may not be the caller's to read).
fn ended_run(host: &Host, evidence: &Evidence, job_sent: u64) -> Option<Evidence> {
    if host.user {
        return None;
    }
    let entries = journal_json(
        host,
        &[
            "INVOCATION_ID",
            "JOB_TYPE",
            "JOB_RESULT",
            "EXIT_CODE",
            "EXIT_STATUS",
        ],
        &[format!("UNIT={}", evidence.unit)],
    );
    let field = |entry: &serde_json::Value, name: &str| -> Option<String> {
        entry.get(name)?.as_str().map(str::to_string)
    };
    let invocation = entries.iter().find_map(|entry| {
        let at: u64 = field(entry, "__REALTIME_TIMESTAMP")?.parse().ok()?;
        let started = field(entry, "JOB_TYPE")? == "start" && field(entry, "JOB_RESULT")? == "done";
        (started && at >= job_sent).then(|| field(entry, "INVOCATION_ID"))?
    })?;
    let (code, status) = entries.iter().find_map(|entry| {
        if field(entry, "INVOCATION_ID")? != invocation {
            return None;
        }
        let code = match field(entry, "EXIT_CODE")?.as_str() {
            "exited" => 1,
            "killed" => 2,
            "dumped" => 3,
            _ => return None,
        };
        Some((code, field(entry, "EXIT_STATUS")?.parse::<i32>().ok()?))
    })?;
    let lines = journal_json(
        host,
        &["_PID", "_CMDLINE"],
        &[format!("_SYSTEMD_INVOCATION_ID={invocation}")],
    );
    let main_pid = lines.iter().find_map(|entry| {
        let cmdline = entry.get("_CMDLINE")?.as_str()?;
        let mut words = cmdline.split(' ');
        let runs_docker = words.next()?.rsplit('/').next() == Some("docker");
        let pid = entry.get("_PID")?.as_str()?.parse().ok()?;
        (runs_docker && words.next() == Some("run")).then_some(pid)
    })?;
    let mut state = evidence.state.clone();
    state.invocation_id = invocation;
    state.exec_main_pid = main_pid;
    state.exec_main_code = code;
    state.exec_main_status = status;
    state.result = if code == 1 { "exit-code" } else { "signal" }.into();
    state.failed_command = None;
    Some(Evidence {
        state,
        restarted: None,
        ..evidence.clone()
    })
}

/// The host's journal entries (as JSON) that match `matches`, with
/// `fields` (and the entries' times, which journalctl always gives).
fn journal_json(host: &Host, fields: &[&str], matches: &[String]) -> Vec<serde_json::Value> {
    let mut cmd = Command::new("journalctl");
    cmd.args(["--no-pager", "--output=json"])
        .arg(format!("--output-fields={}", fields.join(",")));
    if let Some(root) = &host.root {
        cmd.arg(format!("--root={}", root.display()));
    }
    if host.user {
        cmd.arg("--user");
    }
    cmd.args(matches);
    let Ok(out) = cmd.output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// One journal line of a unit's run: the process that wrote it, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub pid: u32,
    pub message: String,
}

/// The pure part of [`explain`].
pub fn explain_from(evidence: &Evidence, entries: &[Entry]) -> Explanation {
    let main = evidence.state.exec_main_pid;
    // The readiness check's lines, never the container's: what the
    // container prints reaches the journal as `docker run`'s (the main
    // process), and may start with `unitgen:` too.
    let notes: Vec<String> = entries
        .iter()
        .filter(|e| main == 0 || e.pid != main)
        .filter_map(|e| e.message.strip_prefix(NOTE))
        .map(|note| note.trim().to_string())
        .collect();
    let log: Vec<String> = entries
        .iter()
        .filter(|e| main != 0 && e.pid == main)
        .map(|e| e.message.clone())
        .collect();
    let log = log[log.len().saturating_sub(LOG_LINES)..].to_vec();
    let mut notes_shown = notes.clone();
    let (reason, named) = match (&evidence.job, notes.as_slice()) {
        (Some(JobResult::Dependency), _) => {
            notes_shown.clear();
            ("not started: a unit it requires failed".to_string(), None)
        }
        (_, [first, ..]) if first.starts_with("health probe") => (
            "the container turned unhealthy; Docker's last health probes:".to_string(),
            None,
        ),
        (_, [only]) => {
            notes_shown.clear();
            (only.clone(), None)
        }
        _ => from_state(evidence),
    };
    // The lines of the failed command the reason names: none of `docker
    // run`'s, of the unit's other commands' (`docker rm`'s "No such
    // container" after it) or unitgen's notes.
    let command_log: Vec<String> = match named {
        Some(failed) => entries
            .iter()
            .filter(|e| e.pid != main && !failed.others.contains(&e.pid))
            .filter(|e| !e.message.starts_with(NOTE))
            .map(|e| e.message.clone())
            .collect(),
        None => Vec::new(),
    };
    let command_log = command_log[command_log.len().saturating_sub(LOG_LINES)..].to_vec();
    Explanation {
        unit: evidence.unit.clone(),
        reason,
        notes: notes_shown,
        log: if evidence.job == Some(JobResult::Dependency) {
            Vec::new()
        } else {
            log
        },
        command_log,
    }
}

/// The reason systemd's own state gives, and the failed command it names.
fn from_state(evidence: &Evidence) -> (String, Option<&FailedCommand>) {
    let state = &evidence.state;
    if evidence.restarted.is_some() {
        let reason = format!(
            "it exited and was restarted by systemd ({} restarts so far)",
            state.n_restarts
        );
        return (reason, None);
    }
    let reason = match state.result.as_str() {
        "timeout" => "it did not become ready within its start timeout (TimeoutStartSec=)".into(),
        "start-limit-hit" => "it was restarted too often (its start limit was hit)".into(),
        _ if state.exec_main_code == 1 && state.exec_main_status != 0 => {
            exit_status(state.exec_main_status)
        }
        _ if matches!(state.exec_main_code, 2 | 3) => {
            format!("docker run was killed by signal {}", state.exec_main_status)
        }
        // Ended cleanly, and still counted down: its restart is `always`.
        "" | "success" if state.exec_main_code == 1 => format!(
            "the container exited with status 0, and is restarted (restart `always`); it is {} \
             ({}): a service that is done when it exits 0 is `restart: \"no\"` or `on-failure`",
            state.active_state, state.sub_state
        ),
        "" | "success" => format!("it is {} ({})", state.active_state, state.sub_state),
        other => {
            let now = format!(
                "it is {} ({}), result `{other}`",
                state.active_state, state.sub_state
            );
            // What systemd's states leave out: which command failed, and
            // how `docker run` ended.
            let main = match (state.exec_main_code, state.exec_main_pid) {
                (1, _) => format!("docker run exited with status {}", state.exec_main_status),
                (_, 0) => "docker run did not run".to_string(),
                _ => "docker run had not ended".to_string(),
            };
            match &state.failed_command {
                Some(failed) => {
                    let reason = format!(
                        "its {}= command `{}` {}; {main}; {now}",
                        failed.kind,
                        shortened(&failed.argv.join(" ")),
                        match failed.code {
                            1 => format!("exited with status {}", failed.status),
                            _ => format!("was killed by signal {}", failed.status),
                        }
                    );
                    return (reason, Some(failed));
                }
                None => format!("{now}; {main}"),
            }
        }
    };
    (reason, None)
}

/// A command line cut to a length that fits a report's line.
fn shortened(command: &str) -> String {
    const MOST: usize = 100;
    match command.char_indices().nth(MOST) {
        Some((at, _)) => format!("{}…", &command[..at]),
        None => command.to_string(),
    }
}

/// `docker run`'s exit status, which is the container's.
fn exit_status(status: i32) -> String {
    match status {
        125 => "docker run failed (exit status 125: Docker could not create or start the container)".into(),
        137 => "the container was killed (exit status 137: SIGKILL, by `docker stop` after the grace period or by the OOM killer)".into(),
        n if n > 128 => format!("the container exited with status {n} (signal {})", n - 128),
        n => format!("the container exited with status {n}"),
    }
}

/// Every line the unit's processes logged in one run: those of its
/// invocation (`_SYSTEMD_INVOCATION_ID`), and those of its `docker run`
/// (the unit's main process). journald names a line's invocation when it
/// reads the line: one it read after the process had exited, and systemd
/// had begun the unit's next run, carries the next run's.
fn journal(host: &Host, evidence: &Evidence) -> Vec<Entry> {
    let mut matches = vec![format!(
        "_SYSTEMD_INVOCATION_ID={}",
        evidence.state.invocation_id
    )];
    if evidence.state.exec_main_pid != 0 {
        matches.extend([
            "+".to_string(),
            format!("_SYSTEMD_UNIT={}", evidence.unit),
            format!("_PID={}", evidence.state.exec_main_pid),
        ]);
    }
    (journal_json(host, &["MESSAGE", "_PID"], &matches).iter())
        .filter_map(parse_entry)
        .collect()
}

/// One entry of `journalctl --output=json`. A message that is not UTF-8
/// is an array of bytes there.
fn parse_entry(entry: &serde_json::Value) -> Option<Entry> {
    let pid = entry.get("_PID")?.as_str()?.parse().ok()?;
    let message = journal::message(entry)?;
    Some(Entry { pid, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(job: Option<JobResult>, main_pid: u32, code: i32, status: i32) -> Evidence {
        Evidence {
            unit: "shop-live-api.service".into(),
            job,
            state: UnitState {
                unit: "shop-live-api.service".into(),
                load_state: "loaded".into(),
                active_state: "activating".into(),
                sub_state: "auto-restart".into(),
                active_enter_timestamp: 0,
                inactive_enter_timestamp: 0,
                n_restarts: 0,
                main_pid: 0,
                result: "exit-code".into(),
                exec_main_status: status,
                exec_main_code: code,
                exec_main_pid: main_pid,
                failed_command: None,
                invocation_id: "ab12".into(),
                unit_file_state: "enabled".into(),
                need_daemon_reload: false,
                drop_in_paths: Vec::new(),
                fragment_path: String::new(),
            },
            restarted: None,
        }
    }

    fn entry(pid: u32, message: &str) -> Entry {
        Entry {
            pid,
            message: message.into(),
        }
    }

    #[test]
    fn an_unhealthy_start_shows_the_probes_and_only_the_containers_lines() {
        let entries = [
            entry(7, "Error: No such container: shop-live-api"),
            entry(9, "listening on :80"),
            entry(
                11,
                "unitgen: health probe exited 1: \"wget: server returned error: HTTP/1.1 404\\n\"",
            ),
            entry(9, "GET /health 404"),
        ];
        let explained = explain_from(&failed(Some(JobResult::Failed), 9, 2, 15), &entries);
        assert_eq!(
            explained.reason,
            "the container turned unhealthy; Docker's last health probes:"
        );
        assert_eq!(
            explained.notes,
            ["health probe exited 1: \"wget: server returned error: HTTP/1.1 404\\n\""]
        );
        assert_eq!(explained.log, ["listening on :80", "GET /health 404"]);
    }

    // A failed start's report printed the container's lines as they were
    // logged: a container (or whoever writes into its volumes) could clear
    // the terminal, retitle it, or print a line of its own that read as
    // unitgen's ("the previous revision was restored").
    #[test]
    fn the_containers_lines_reach_the_terminal_escaped() {
        let entries = [
            entry(9, "\u{1b}]0;pwned\u{7}\u{1b}[2Jcleared"),
            entry(9, "over\rwritten \u{202e}desrever"),
            entry(9, "one\nunitgen: the previous revision was restored"),
            entry(9, "\tat Main.run(Main.java:3)"),
        ];
        let explained = explain_from(&failed(Some(JobResult::Failed), 9, 1, 3), &entries);
        let lines = explained.lines();
        assert_eq!(
            lines[2..],
            [
                "  | \\u{1b}]0;pwned\\u{7}\\u{1b}[2Jcleared",
                "  | over\\rwritten \\u{202e}desrever",
                "  | one\\nunitgen: the previous revision was restored",
                "  | \tat Main.run(Main.java:3)",
            ]
        );
    }

    /// Found in hostile values round 7: a container's line starting
    /// `unitgen:` was taken for the readiness check's note, and made the
    /// report's reason (here: unhealthy, for a container that exited).
    #[test]
    fn the_containers_lines_never_pass_for_unitgens_notes() {
        let entries = [
            entry(9, "unitgen: health probe exited 0: all is well"),
            entry(11, "unitgen: the container exited with status 3"),
        ];
        let explained = explain_from(&failed(Some(JobResult::Failed), 9, 1, 3), &entries);
        assert_eq!(explained.reason, "the container exited with status 3");
        assert!(explained.notes.is_empty(), "{:?}", explained.notes);
        assert_eq!(
            explained.log,
            ["unitgen: health probe exited 0: all is well"]
        );
        let alone = explain_from(&failed(None, 9, 1, 3), &entries[..1]);
        assert_eq!(alone.reason, "the container exited with status 3");
        assert!(alone.notes.is_empty(), "{:?}", alone.notes);
    }

    #[test]
    fn an_exit_is_told_with_its_status() {
        let explained = explain_from(&failed(Some(JobResult::Failed), 9, 1, 3), &[]);
        assert_eq!(explained.reason, "the container exited with status 3");
        let note = [entry(11, "unitgen: the container exited with status 3")];
        let explained = explain_from(&failed(Some(JobResult::Failed), 9, 0, 0), &note);
        assert_eq!(explained.reason, "the container exited with status 3");
        assert!(explained.notes.is_empty());
        let explained = explain_from(&failed(None, 9, 1, 137), &[]);
        assert!(
            explained.reason.contains("137: SIGKILL"),
            "{}",
            explained.reason
        );
    }

    /// Reported as 'it is deactivating (stop-post), result `exit-code`'
    /// alone: which command failed and how `docker run` ended are said.
    #[test]
    fn a_failed_command_besides_docker_run_is_named_with_its_status() {
        let mut evidence = failed(None, 9, 1, 0);
        evidence.state.active_state = "deactivating".into();
        evidence.state.sub_state = "stop-post".into();
        evidence.state.failed_command = Some(crate::systemd::FailedCommand {
            kind: "ExecStartPre",
            argv: vec!["/usr/bin/docker".into(), "build".into(), "-q".into()],
            code: 1,
            status: 2,
            pid: 7,
            others: vec![12],
        });
        // Its own error (of awk, which its `sh -c` ran) is shown, not the
        // cleanup's beside it.
        let entries = [
            entry(8, "awk: cannot open /srv/app.env"),
            entry(12, "Error: No such container: shop-live-api"),
        ];
        let explained = explain_from(&evidence, &entries);
        assert_eq!(explained.command_log, ["awk: cannot open /srv/app.env"]);
        assert_eq!(
            explained.lines()[1..],
            [
                "  that command's last lines:",
                "  | awk: cannot open /srv/app.env"
            ]
        );
        assert_eq!(
            explain_from(&evidence, &[]).reason,
            "its ExecStartPre= command `/usr/bin/docker build -q` exited with status 2; \
             docker run exited with status 0; it is deactivating (stop-post), result `exit-code`"
        );
        evidence.state.failed_command = None;
        evidence.state.exec_main_code = 0;
        assert_eq!(
            explain_from(&evidence, &[]).reason,
            "it is deactivating (stop-post), result `exit-code`; docker run had not ended"
        );
        assert_eq!(shortened(&"x".repeat(150)).chars().count(), 101);
    }

    #[test]
    fn a_clean_exit_restarted_always_says_so() {
        let mut evidence = failed(None, 9, 1, 0);
        evidence.state.result = "success".into();
        assert!(
            explain_from(&evidence, &[])
                .reason
                .starts_with("the container exited with status 0, and is restarted (restart `always`); it is activating (auto-restart)"),
        );
    }

    #[test]
    fn a_dependency_failure_names_no_log() {
        let explained = explain_from(
            &failed(Some(JobResult::Dependency), 9, 0, 0),
            &[entry(9, "unrelated")],
        );
        assert_eq!(explained.reason, "not started: a unit it requires failed");
        assert!(explained.log.is_empty());
    }

    #[test]
    fn journal_lines_read_text_and_bytes() {
        let parse_entry = |line: &str| parse_entry(&serde_json::from_str(line).unwrap());
        assert_eq!(
            parse_entry(r#"{"MESSAGE":"hello","_PID":"42"}"#),
            Some(entry(42, "hello"))
        );
        assert_eq!(
            parse_entry(r#"{"MESSAGE":[104,105,255],"_PID":"42"}"#),
            Some(entry(42, "hi\u{fffd}"))
        );
        assert_eq!(parse_entry(r#"{"MESSAGE":null,"_PID":"42"}"#), None);
    }
}
