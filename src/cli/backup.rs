//! `unitgen backup`, `unitgen backups` and `unitgen restore`: an
//! instance's backups, now (the schedule is its units' job).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use clap::Args;
use miette::{Result, miette};
use serde::Serialize;

use super::fleet::{NotOnFleetArgs, refuse_host_only};
use super::host::HostArgs;
use super::output::{outln, showln};
use super::{Outcome, TemplateArgs, when};
use crate::backup::restore::{self, Restore};
use crate::backup::{LastBackup, Repository, Snapshot, human_size};
use crate::fault;
use crate::model::Instance;
use crate::model::backup::Backup;
use crate::progress::Progress;
use crate::state::{Restoring, now_micros};
use crate::systemd::{JobKind, JobResult};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The instance to back up now.
    pub instance: String,
    #[command(flatten)]
    pub template: TemplateArgs,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub fleet: NotOnFleetArgs,
}

#[derive(Debug, Args)]
pub struct BackupsArgs {
    /// The instance whose snapshots to list.
    pub instance: String,
    #[command(flatten)]
    pub template: TemplateArgs,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub fleet: NotOnFleetArgs,
    /// Print JSON (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The instance whose backup to restore.
    pub instance: String,
    /// The snapshot: an id from `unitgen backups`, or `latest`.
    #[arg(long, value_name = "ID", default_value = "latest")]
    pub snapshot: String,
    /// Restore into this other instance of the same app instead (e.g. live's
    /// data into staging): only its volumes are written.
    #[arg(long, value_name = "INSTANCE")]
    pub into: Option<String>,
    /// Do not ask for confirmation (needed when not on a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub template: TemplateArgs,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub fleet: NotOnFleetArgs,
}

/// The instance and its backup settings, or why there are none.
fn with_backup(template: &TemplateArgs, instance: &str) -> Result<(Instance, Backup)> {
    let compiled = template.compile(instance)?;
    match compiled.backup.clone() {
        Some(backup) => Ok((compiled, backup)),
        None => Err(miette!(
            "{} has no backups: add a `backup:` block (repository, password_file, …) to the instances file",
            compiled.prefix()
        )),
    }
}

fn repository(host: &HostArgs, backup: &Backup) -> Result<Repository> {
    Repository::new(backup, host.root.as_deref()).map_err(|e| miette!("{e}"))
}

pub fn backup(args: BackupArgs) -> Result<Outcome> {
    if args.fleet.fleet {
        return Err(refuse_host_only("backup"));
    }
    let (instance, _) = with_backup(&args.template, &args.instance)?;
    // The unit refuses it too (for its timer); said here without a run.
    let state = args.host.state(&instance.app, &instance.instance)?;
    if let Some(restoring) = state.restoring().map_err(|e| miette!("{e}"))? {
        return Err(miette!(
            "{}: not backed up: {}",
            instance.prefix(),
            restoring.describe()
        ));
    }
    let host = args.host.host()?;
    let unit = instance.backup_unit();
    let systemd = host.connect().map_err(|f| miette!("{}", f.message))?;
    let progress = Progress::default();
    progress.status(&format!("running {unit}"));
    let outcome = systemd
        .run_jobs(JobKind::Start, std::slice::from_ref(&unit))
        .map_err(|e| miette!("{e}"))?;
    progress.finish();
    match &outcome[0].result {
        JobResult::Done => {}
        JobResult::NotLoaded => {
            return Err(miette!(
                "{unit} is not installed: run `unitgen apply {}/{}` first",
                instance.app,
                instance.instance
            ));
        }
        failed => {
            let log = crate::backup::journal_tail(&host, &unit, 15);
            return Err(miette!(
                "the backup of {} failed: job {failed}\n\nlast lines logged by {unit}:\n{}",
                instance.prefix(),
                log.lines()
                    .map(|l| format!("  | {l}\n"))
                    .collect::<String>()
            ));
        }
    }
    let state = args.host.state_dir()?.join(instance.prefix());
    match LastBackup::read(&state) {
        Some(last) => showln!(
            "{}: snapshot {} saved (revision {})",
            instance.prefix(),
            last.snapshot,
            last.revision
        )?,
        None => showln!("{}: backup done", instance.prefix())?,
    }
    Ok(Outcome::Clean)
}

#[derive(Debug, Serialize)]
struct Listed {
    #[serde(flatten)]
    snapshot: Snapshot,
    revision: Option<String>,
    /// Bytes the snapshot restores.
    size: Option<u64>,
}

pub fn backups(args: BackupsArgs) -> Result<Outcome> {
    if args.fleet.fleet {
        return Err(refuse_host_only("backups"));
    }
    let (instance, backup) = with_backup(&args.template, &args.instance)?;
    let repo = repository(&args.host, &backup)?;
    let _lock = repo.lock().map_err(|e| miette!("{e}"))?;
    let snapshots = repo
        .snapshots(&instance.app, &instance.instance)
        .map_err(|e| miette!("{e}"))?;
    let listed: Vec<Listed> = snapshots
        .into_iter()
        .map(|snapshot| Listed {
            revision: snapshot.revision().map(str::to_string),
            size: repo.size(&snapshot.id).ok(),
            snapshot,
        })
        .collect();
    if args.json {
        super::output::json(&listed)?;
        return Ok(Outcome::Clean);
    }
    if listed.is_empty() {
        showln!(
            "{}: no snapshots in {}",
            instance.prefix(),
            backup.repository
        )?;
        return Ok(Outcome::Clean);
    }
    outln!("{:<10} {:<20} {:<10} SIZE", "SNAPSHOT", "TIME", "REVISION")?;
    // Ids, times and revision tags are what the repository says: anyone
    // who can write to it can tag a snapshot with an escape sequence.
    for item in &listed {
        showln!(
            "{:<10} {:<20} {:<10} {}",
            item.snapshot.short_id,
            snapshot_time(&item.snapshot.time),
            item.revision.as_deref().unwrap_or("-"),
            item.size.map_or("?".into(), human_size)
        )?;
    }
    Ok(Outcome::Clean)
}

/// A snapshot's time as every command prints times (ISO 8601, UTC:
/// `2026-11-29T10:00:01Z`), from restic's local time with its offset; as
/// restic wrote it if it is no such time.
fn snapshot_time(time: &str) -> String {
    when::parse_rfc3339(time).map_or_else(|| time.to_string(), when::iso)
}

/// The instance `--into` names, as `APP/INSTANCE`: an instance of the
/// snapshot's own app, named alone (`--into staging`, also in a site file
/// of several apps) or with the app. Another app's instance is refused: a
/// snapshot holds its app's volumes and dumps by their names in the
/// template, which another app may use for other data.
fn into_same_app(source: &Instance, into: &str) -> Result<String> {
    let (app, instance) = into.split_once('/').unwrap_or((&source.app, into));
    if app != source.app {
        return Err(miette!(
            help = format!(
                "restore into an instance of {}: `--into INSTANCE`",
                source.app
            ),
            "--into {}: a snapshot of {} restores into an instance of app {} only (its volumes \
             and dumps are that app's); nothing was changed",
            crate::diagnostic::shown(into),
            source.prefix(),
            source.app
        ));
    }
    if instance == source.instance {
        return Err(miette!("--into names the instance itself: leave it out"));
    }
    Ok(format!("{app}/{instance}"))
}

/// `--into` as the command that finishes an interrupted restore names it.
fn target_named(source: &Instance, target: &Instance) -> Option<String> {
    (target.instance != source.instance).then(|| format!("{}/{}", target.app, target.instance))
}

pub fn restore(args: RestoreArgs) -> Result<Outcome> {
    if args.fleet.fleet {
        return Err(refuse_host_only("restore"));
    }
    let (source, backup) = with_backup(&args.template, &args.instance)?;
    let target = match &args.into {
        Some(other) => args.template.compile(&into_same_app(&source, other)?)?,
        None => source.clone(),
    };
    let mut parts = restore::parts(&backup, &target).map_err(|e| miette!("{e}"))?;
    let repo = repository(&args.host, &backup)?;
    let lock = repo.lock().map_err(|e| miette!("{e}"))?;
    let snapshots = repo
        .snapshots(&source.app, &source.instance)
        .map_err(|e| miette!("{e}"))?;
    let snapshot = pick_snapshot(&snapshots, &args.snapshot)
        .map_err(|why| {
            miette!(
                "{why} of {} in {} (see `unitgen backups {}`)",
                source.prefix(),
                backup.repository,
                source.instance
            )
        })?
        .clone();
    let held = repo.paths(&snapshot.id).map_err(|e| miette!("{e}"))?;
    // Not held while a person reads the question.
    drop(lock);
    let notes = restore::fit(&mut parts, &held);
    let nothing = parts
        .iter()
        .all(|p| p.volumes.is_empty() && p.restore.is_none());
    if nothing {
        return Err(miette!(
            "snapshot {} of {} holds none of what {} backs up now:\n{}\nnothing was changed",
            crate::diagnostic::shown(&snapshot.short_id),
            source.prefix(),
            target.prefix(),
            notes
                .iter()
                .map(|n| format!("  {n}\n"))
                .collect::<String>()
                .trim_end()
        ));
    }
    if parts.iter().any(|p| !p.volumes.is_empty()) {
        restore::fetch_helper(&backup.helper_image, &Progress::default()).map_err(|e| {
            miette!(
                "restore into {} refused: {e}\nnothing was changed",
                target.prefix()
            )
        })?;
    }

    let volumes: Vec<&str> = parts
        .iter()
        .flat_map(|p| p.volumes.iter().map(|(_, v)| v.as_str()))
        .collect();
    let dumps: Vec<&str> = parts
        .iter()
        .filter(|p| p.restore.is_some())
        .map(|p| p.service.as_str())
        .collect();
    // The snapshot's id, time and tags are the repository's (anyone who
    // can write to it can tag a snapshot): each stays on its line, or a
    // line feed in a tag would add lines to the question.
    let shown = crate::diagnostic::shown;
    let question = format!(
        "restore snapshot {} of {} ({}, revision {}) into {}:\n  replaces volumes: {}\n  restores dumps into: {}\n{}  its services are stopped meanwhile{}",
        shown(&snapshot.short_id),
        source.prefix(),
        shown(&snapshot_time(&snapshot.time)),
        shown(snapshot.revision().unwrap_or("?")),
        target.prefix(),
        if volumes.is_empty() {
            "none".into()
        } else {
            volumes.join(", ")
        },
        if dumps.is_empty() {
            "none".into()
        } else {
            dumps.join(", ")
        },
        notes.iter().map(|n| format!("  {n}\n")).collect::<String>(),
        if target.routes.is_empty() {
            ""
        } else {
            " (its routes answer with errors until they run again)"
        },
    );
    for line in question.lines() {
        crate::say!("{line}");
    }
    if !args.yes {
        confirm(&target.prefix())?;
    }

    let (state, _lock) = args.host.lock("restore", &target.app, &target.instance)?;
    let installed = args.host.installed(&target.app, &target.instance)?;
    if installed.is_empty() {
        return Err(miette!(
            "{} is not installed on this host: apply it first",
            target.prefix()
        ));
    }
    let host = args.host.host()?;
    let progress = Progress::default();
    // Not stopped halfway: a running backup finishes first. Before the
    // repository's lock is taken: a backup past the instance's lock waits
    // for that one, and would wait for ever for a restore holding it.
    let systemd = host.connect().map_err(|f| miette!("{}", f.message))?;
    crate::backup::await_running(&host, &systemd, &target.backup_unit(), &state, &progress)
        .map_err(|e| {
            miette!(
                "restore into {} failed: {e}\nnothing was changed",
                target.prefix()
            )
        })?;
    // Held to the end: no backup or check of the repository runs meanwhile.
    let _repository_lock = repo.lock().map_err(|e| miette!("{e}"))?;
    // Before its services stop: a restore killed from here on is seen by
    // `plan`, `status` and `apply`, and finished by running it again.
    let restoring = Restoring {
        snapshot: snapshot.id.clone(),
        // As the command line to finish it names it: `APP/INSTANCE` works
        // with a site file and with the app's own.
        from: format!("{}/{}", source.app, source.instance),
        into: target_named(&source, &target),
        volumes: volumes.iter().map(ToString::to_string).collect(),
        dumps: dumps.iter().map(ToString::to_string).collect(),
        started_at: now_micros(),
        unreadable: None,
    };
    state.begin(&restoring).map_err(|e| {
        miette!(
            "restore into {} failed: recording what it is about to do: {e}\nnothing was changed",
            target.prefix()
        )
    })?;
    fault::point("after-intent");
    Restore {
        host: &host,
        repository: &repo,
        snapshot: &snapshot.id,
        helper_image: &backup.helper_image,
        target: &target,
        parts: &parts,
        installed: &installed,
    }
    .run(&progress)
    .map_err(|e| {
        miette!(
            "restore into {} failed: {e}\nits services may be stopped and its volumes half \
             restored: `unitgen restore` again finishes it once the cause is mended; `unitgen \
             apply {}/{}` starts its services on the data as it is",
            target.prefix(),
            target.app,
            target.instance
        )
    })?;
    state.finish::<Restoring>().map_err(|e| {
        miette!(
            "{} is restored, but forgetting the restore's record failed: {e}",
            target.prefix()
        )
    })?;
    progress.line(&format!(
        "{} restored from snapshot {}",
        target.prefix(),
        snapshot.short_id
    ));
    Ok(Outcome::Clean)
}

/// The snapshot `given` names: `latest`, or one whose id starts with it.
/// An empty id (an unset variable in a script) or one that starts several
/// ids would otherwise pick whichever is listed first: the oldest.
fn pick_snapshot<'a>(snapshots: &'a [Snapshot], given: &str) -> Result<&'a Snapshot, String> {
    if given == "latest" {
        return snapshots.last().ok_or_else(|| "no snapshot".to_string());
    }
    if given.is_empty() {
        return Err("an empty snapshot id names no snapshot: give an id, or `latest`,".into());
    }
    let matching: Vec<&Snapshot> = snapshots
        .iter()
        .filter(|s| s.id.starts_with(given))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no snapshot `{given}`")),
        several => Err(format!(
            "`{given}` starts {} snapshot ids ({}): give more of the one you mean",
            several.len(),
            // (The repository's: shown, each on the message's line.)
            several
                .iter()
                .map(|s| crate::diagnostic::shown(&s.short_id))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// On a terminal, the user types the instance's name; elsewhere `--yes`
/// is required.
fn confirm(target: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            "restore replaces the data of {target}: pass --yes to confirm when not on a terminal"
        ));
    }
    eprint!("type `{}` to go on: ", crate::diagnostic::shown(target));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| miette!("reading the answer: {e}"))?;
    if answer.trim() == target {
        Ok(())
    } else {
        Err(miette!("not confirmed: nothing was changed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(id: &str) -> Snapshot {
        Snapshot {
            id: id.into(),
            short_id: id[..8].into(),
            time: String::new(),
            tags: Vec::new(),
        }
    }

    #[test]
    fn a_snapshot_is_named_by_a_prefix_of_one_id_only() {
        let snapshots = [snapshot("abc12345aaaa"), snapshot("abd12345bbbb")];
        assert_eq!(pick_snapshot(&snapshots, "abc").unwrap().id, "abc12345aaaa");
        assert_eq!(
            pick_snapshot(&snapshots, "abd12345").unwrap().id,
            "abd12345bbbb"
        );
        assert_eq!(
            pick_snapshot(&snapshots, "latest").unwrap().id,
            "abd12345bbbb"
        );
        // Each of these picked the oldest.
        assert!(pick_snapshot(&snapshots, "").unwrap_err().contains("empty"));
        let ambiguous = pick_snapshot(&snapshots, "ab").unwrap_err();
        assert!(ambiguous.contains("abc12345, abd12345"), "{ambiguous}");
        assert!(
            pick_snapshot(&snapshots, "abe")
                .unwrap_err()
                .contains("no snapshot `abe`")
        );
        assert!(pick_snapshot(&[], "latest").is_err());
        // Ids are the repository's, which anyone who can write to it
        // writes: one stays on the message's line.
        let planted = Snapshot {
            short_id: "abf\nowned\u{1b}[2J".into(),
            ..snapshot("abf12345cccc")
        };
        let said = pick_snapshot(&[planted, snapshot("abc12345aaaa")], "ab").unwrap_err();
        assert!(
            said.contains("abf\\nowned\\u{1b}[2J, abc12345") && !said.contains(['\n', '\u{1b}']),
            "{said}"
        );
    }
}
