//! The host side of backups, for the commands that act on them now
//! (`backup`, `backups`, `restore`, `status`): restic run from unitgen
//! itself against the instance's repository, and what the backup unit
//! recorded. The scheduled backups themselves are units (see
//! `render::backup`).

pub mod restore;
pub mod status;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::model::backup::{self as model, Backup};

/// The restic binary, from PATH (Debian's `restic` package: /usr/bin).
const RESTIC: &str = "restic";

/// An instance's restic repository, as unitgen reaches it from where it
/// runs. With `--root DIR`, local paths (repository, password and
/// environment files) are the ones under DIR, as the units there see them.
#[derive(Debug, Clone)]
pub struct Repository {
    repository: String,
    password_file: PathBuf,
    environment: Vec<(String, String)>,
    /// The lock the units take around restic (see `model::lock_file`).
    lock_file: PathBuf,
}

/// One snapshot, as `restic snapshots --json` lists it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub short_id: String,
    pub time: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Snapshot {
    /// The revision the instance was at when it was taken.
    pub fn revision(&self) -> Option<&str> {
        self.tags
            .iter()
            .find_map(|t| t.strip_prefix(model::REVISION_TAG))
    }

    /// Whether it is a snapshot of this app's instance.
    pub fn is_of(&self, app: &str, instance: &str) -> bool {
        self.tags.contains(&model::app_tag(app))
            && self.tags.contains(&model::instance_tag(instance))
    }
}

/// The last successful backup, as the backup unit records it in the
/// instance's state folder.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LastBackup {
    /// Seconds since the epoch.
    pub time: u64,
    pub snapshot: String,
    pub revision: String,
}

impl LastBackup {
    pub const FILE: &str = "last-backup.json";

    /// None when no backup has succeeded yet (or the record is unreadable).
    pub fn read(instance_state_dir: &Path) -> Option<LastBackup> {
        let text = std::fs::read_to_string(instance_state_dir.join(Self::FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// How the last run of the backup unit ended, as its `ExecStopPost=`
/// records it in the instance's state folder: failures too, with their
/// time, which systemd itself forgets at the next boot.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LastRun {
    /// Seconds since the epoch.
    pub time: u64,
    /// systemd's result (`success`, `exit-code`, `signal`, `timeout`, …),
    /// or `interrupted` (stopped while it ran).
    pub result: String,
}

impl LastRun {
    pub const FILE: &str = "last-backup-run.json";

    pub fn read(instance_state_dir: &Path) -> Option<LastRun> {
        let text = std::fs::read_to_string(instance_state_dir.join(Self::FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn succeeded(&self) -> bool {
        self.result == "success"
    }
}

impl Repository {
    pub fn new(backup: &Backup, root: Option<&Path>) -> Result<Repository, String> {
        let on_host = |path: &str| match root {
            Some(root) => root.join(path.trim_start_matches('/')),
            None => PathBuf::from(path),
        };
        let repository = match backup
            .repository
            .strip_prefix("local:")
            .unwrap_or(&backup.repository)
        {
            local if local.starts_with('/') => on_host(local).display().to_string(),
            _ => backup.repository.clone(),
        };
        let mut environment = Vec::new();
        if let Some(file) = &backup.environment_file {
            let path = on_host(file);
            let shown = crate::diagnostic::shown_path(&path);
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("reading {shown}: {e}"))?;
            // As the units' `EnvironmentFile=` reads it; messages never
            // quote it: it holds credentials.
            environment = crate::systemd::environment_file::read(&text)
                .map_err(|e| format!("{shown}:{}: {}", e.line, e.why))?;
            if let Some((name, why)) =
                (environment.iter()).find_map(|(name, _)| Some((name, model::Refused::of(name)?)))
            {
                return Err(why.message(&shown, name));
            }
        }
        Ok(Repository {
            repository,
            password_file: on_host(&backup.password_file),
            environment,
            lock_file: on_host(&model::lock_file(&backup.repository)),
        })
    }

    /// Takes the repository's lock, as the backup and check units do, so
    /// that unitgen's own restic runs neither fail on theirs nor fail them
    /// (restic 0.14 cannot wait for a lock). Says so when it has to wait.
    pub fn lock(&self) -> Result<std::fs::File, String> {
        let failed = |e: std::io::Error| format!("locking {}: {e}", self.lock_file.display());
        if let Some(dir) = self.lock_file.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.lock_file)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                crate::say!(
                    "waiting for a backup or check of {} to finish...",
                    self.repository
                );
                file.lock().map_err(failed)?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
        Ok(file)
    }

    /// `restic ARGS` against this repository, with no cache of its own.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(RESTIC);
        cmd.envs(self.environment.iter().map(|(k, v)| (k, v)))
            .env("RESTIC_REPOSITORY", &self.repository)
            .env("RESTIC_PASSWORD_FILE", &self.password_file)
            .arg("--no-cache")
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn output(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = self
            .command(args)
            .output()
            .map_err(|e| format!("running restic: {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(out.stdout)
        } else if stderr.contains("Is there a repository at the following location?") {
            Err(format!(
                "there is no repository at {} yet: no backup has run (`unitgen backup INSTANCE` makes one)",
                self.repository
            ))
        } else {
            Err(format!(
                "restic {} failed: {}",
                args.join(" "),
                crate::diagnostic::quoted_output(&stderr)
            ))
        }
    }

    /// The instance's snapshots, oldest first.
    pub fn snapshots(&self, app: &str, instance: &str) -> Result<Vec<Snapshot>, String> {
        let tags = format!("{},{}", model::app_tag(app), model::instance_tag(instance));
        let json = self.output(&["snapshots", "--json", "--tag", &tags])?;
        let mut list: Vec<Snapshot> = serde_json::from_slice(&json)
            .map_err(|e| format!("reading restic's snapshot list: {e}"))?;
        // By the instant: restic writes local times, whose text sorts
        // wrongly across offsets (a daylight saving change, another host).
        list.sort_by_key(|s| crate::cli::when::parse_rfc3339(&s.time));
        Ok(list)
    }

    /// The size of the data a snapshot restores, in bytes.
    pub fn size(&self, snapshot: &str) -> Result<u64, String> {
        #[derive(Deserialize)]
        struct Stats {
            total_size: u64,
        }
        let json = self.output(&["stats", "--json", "--mode", "restore-size", snapshot])?;
        serde_json::from_slice::<Stats>(&json)
            .map(|s| s.total_size)
            .map_err(|e| format!("reading restic's stats: {e}"))
    }

    /// The paths of the volume copies and dumps a snapshot holds
    /// (`/volumes/NAME.tar`, `/dumps/SERVICE`).
    pub fn paths(&self, snapshot: &str) -> Result<BTreeSet<String>, String> {
        #[derive(Deserialize)]
        struct Entry {
            struct_type: String,
            #[serde(default)]
            path: String,
        }
        let json = self.output(&["ls", "--json", snapshot, "/volumes", "/dumps"])?;
        let mut paths = BTreeSet::new();
        for line in String::from_utf8_lossy(&json).lines() {
            let entry: Entry = serde_json::from_str(line)
                .map_err(|e| format!("reading restic's list of {snapshot}: {e}"))?;
            if entry.struct_type == "node" {
                paths.insert(entry.path);
            }
        }
        Ok(paths)
    }

    /// `restic dump SNAPSHOT PATH`, its standard output to be piped on.
    pub fn dump(&self, snapshot: &str, path: &str) -> Command {
        let mut cmd = self.command(["dump", snapshot, path]);
        cmd.stdout(Stdio::piped());
        cmd
    }
}

/// Waits while the instance's backup unit runs, saying so (on a terminal,
/// with the time waited so far). apply, rollback and restore call it with
/// the instance's lock held, before they look at or touch anything: a
/// backup pauses or stops services for its copies, and a change meanwhile
/// would see them down (and roll back) or take them away under it. Waiting,
/// rather than refusing, is what a deploy pipeline wants: it runs late by
/// the backup's length instead of failing on the night's schedule; Ctrl-C
/// leaves everything untouched. A backup the timer starts meanwhile waits
/// for the lock in turn (see the backup unit's `ExecStartPre=`), and is not
/// waited for: it has not got past the lock and cannot until the lock is
/// released, so waiting for it would wait for ever, each for the other.
/// Past the lock, its runtime folder has the [`model::PAST_LOCK`] mark; a
/// unit an earlier unitgen installed writes none (nor can the mark be
/// found for a user's manager without `XDG_RUNTIME_DIR`): then it waits
/// for the lock while one of its processes is blocked on the lock's file.
pub fn await_running(
    host: &crate::systemd::converge::Host,
    systemd: &crate::systemd::Systemd,
    unit: &str,
    state: &crate::state::InstanceState,
    progress: &crate::progress::Progress,
) -> Result<(), String> {
    let marks = std::fs::read_to_string(host.unit_dir.join(unit))
        .is_ok_and(|text| text.contains(model::PAST_LOCK));
    let past_lock =
        (runtime_dir(host, &state.name()).filter(|_| marks)).map(|dir| dir.join(model::PAST_LOCK));
    let lock = state.lock_path();
    let running = || -> Result<bool, String> {
        let state = systemd.unit_state(unit).map_err(|e| e.to_string())?;
        let waits_for_the_lock = state.sub_state == "start-pre"
            && match &past_lock {
                Some(mark) => !mark.exists(),
                None => blocked_on(unit, &lock),
            };
        Ok(matches!(
            state.active_state.as_str(),
            "activating" | "deactivating" | "reloading"
        ) && !waits_for_the_lock)
    };
    if !running()? {
        return Ok(());
    }
    let since = std::time::Instant::now();
    progress.waiting(&format!(
        "waiting for the running backup ({unit}) to finish: it may pause or stop services"
    ));
    while running()? {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    progress.finish();
    progress.line(&format!(
        "{unit} finished after {}s; going on",
        since.elapsed().as_secs()
    ));
    Ok(())
}

/// Whether a process of `unit` waits for a lock on `file`: a blocked
/// request in the kernel's list (`/proc/locks`, a `->` line naming the
/// file's device and inode), from a process in the unit's control group.
fn blocked_on(unit: &str, file: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(meta), Ok(locks)) = (
        std::fs::metadata(file),
        std::fs::read_to_string("/proc/locks"),
    ) else {
        return false;
    };
    // As the kernel prints it: MAJOR:MINOR:INODE, the numbers in hex.
    let dev = meta.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let in_unit = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|cgroup| cgroup.lines().any(|l| l.ends_with(&format!("/{unit}"))))
    };
    locks.lines().any(|line| {
        // `1: -> FLOCK  ADVISORY  WRITE 4242 00:2f:1234 0 EOF`
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"->")
            && fields.get(6) == Some(&id.as_str())
            && fields.get(5).is_some_and(|pid| in_unit(pid))
    })
}

/// The backup unit's runtime folder as unitgen reaches it (see
/// [`model::runtime_directory`]); none for a user's manager without
/// `XDG_RUNTIME_DIR`.
fn runtime_dir(host: &crate::systemd::converge::Host, prefix: &str) -> Option<PathBuf> {
    let runtime = if host.user {
        PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?)
    } else {
        crate::router::on_host(host.root.as_deref(), Path::new("/run"))
    };
    Some(runtime.join(model::runtime_directory(prefix)))
}

/// The units the instance's backup stopped or paused for its copies and
/// resumes when it ends: its markers in its runtime directory (see
/// `render::backup`; a stop marker lists the units it stopped, a pause
/// marker is named after the service), which systemd removes when the
/// backup ends. Empty when no backup runs.
pub fn held_for_copies(host: &crate::systemd::converge::Host, prefix: &str) -> Vec<String> {
    let Some(Ok(entries)) = runtime_dir(host, prefix).map(std::fs::read_dir) else {
        return Vec::new();
    };
    let stop = format!("{}-", model::Consistency::Stop.as_str());
    let pause = format!("{}-", model::Consistency::Pause.as_str());
    let mut units: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&stop) {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                units.extend(text.split_whitespace().map(str::to_string));
            }
        } else if let Some(service) = name.strip_prefix(&pause) {
            units.push(format!("{prefix}-{service}.service"));
        }
    }
    units.sort();
    units.dedup();
    units
}

/// The last lines a unit logged (its last run, the backup script's own
/// messages included), for error reports.
pub fn journal_tail(host: &crate::systemd::converge::Host, unit: &str, lines: usize) -> String {
    let mut cmd = Command::new("journalctl");
    cmd.args(["--no-pager", "--output=cat", "-n", &lines.to_string()]);
    if let Some(root) = &host.root {
        cmd.arg(format!("--root={}", root.display()));
    }
    cmd.arg(if host.user { "--user-unit" } else { "--unit" })
        .arg(unit);
    match cmd.output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
        Err(e) => format!("(journalctl could not run: {e})"),
    }
}

/// A byte count for people: `1.4 MiB`.
pub fn human_size(bytes: u64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if value < 1024.0 || unit == "TiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1024.0;
    }
    unreachable!("the loop returns at TiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_a_running_backup_holds_come_from_its_markers() {
        let root = tempfile::tempdir().unwrap();
        let host = crate::systemd::converge::Host {
            unit_dir: root.path().join("etc/systemd/system"),
            bus: None,
            user: false,
            root: Some(root.path().to_path_buf()),
        };
        assert!(
            held_for_copies(&host, "shop-live").is_empty(),
            "no backup runs"
        );
        let dir = root
            .path()
            .join("run")
            .join(model::runtime_directory("shop-live"));
        std::fs::create_dir_all(&dir).unwrap();
        // What the backup script writes: a stop marker lists the units it
        // stopped; a pause marker is empty, named after its service.
        std::fs::write(
            dir.join("stop-db"),
            "shop-live-db.service\nshop-live-reader.service\n",
        )
        .unwrap();
        std::fs::write(dir.join("pause-files"), "").unwrap();
        std::fs::write(dir.join("staging-note"), "not a marker").unwrap();
        assert_eq!(
            held_for_copies(&host, "shop-live"),
            [
                "shop-live-db.service",
                "shop-live-files.service",
                "shop-live-reader.service"
            ]
        );
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn snapshots_know_their_instance_and_revision() {
        let snapshot = Snapshot {
            id: "abc".into(),
            short_id: "abc".into(),
            time: "2026-11-29T10:00:00Z".into(),
            tags: vec![
                "unitgen".into(),
                "app:blog".into(),
                "instance:live".into(),
                "revision:4".into(),
            ],
        };
        assert!(snapshot.is_of("blog", "live"));
        assert!(!snapshot.is_of("blog", "staging"));
        assert_eq!(snapshot.revision(), Some("4"));
    }
}
