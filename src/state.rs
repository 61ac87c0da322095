//! The state directory (`/var/lib/unitgen` by default): for each instance,
//! the revisions applied to this host and a lock that keeps two applies of
//! one instance from interleaving.
//!
//! ```text
//! /var/lib/unitgen/router.lock     held while a command changes the host's router: `router::RouterLock`
//! /var/lib/unitgen/blog-staging/
//!   lock                    held (flock) while a command changes the instance
//!   applying.json           an apply, rollback or destroy under way (or killed): see `Intent`
//!   restoring.json          a restore under way (or killed): see `Restoring`
//!   handover.json           a routed service's switch under way: `systemd::handover`
//!   unrouting               an apply taking the routes away: `InstanceState::unrouting`
//!   volumes.json            every named volume an apply may have made: `InstanceState::note_volumes`
//!   revisions/0003/         one folder per successful apply
//!     revision.json         number, time, inputs digest, volumes
//!     blog-staging-web.service ...   the units exactly as applied
//!     standins.json         its routed services' stand-ins: `systemd::handover::STORED`
//! ```
//!
//! Revisions may hold what a unit file holds, so the folder is root's alone:
//! folders 0700, files 0600, tightened on every change of an instance.

use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::render::UnitFile;
use crate::unit_dir::write_atomic_mode;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/unitgen";

/// See [`InstanceState::unrouting`].
const UNROUTING: &str = "unrouting";

/// See [`InstanceState::note_volumes`].
const VOLUMES: &str = "volumes.json";

const PRIVATE_DIR: u32 = 0o700;
const PRIVATE_FILE: u32 = 0o600;

/// What a revision records beside its unit files. Every record here
/// refuses fields it does not know: they come from a newer unitgen (see
/// [`written_by_newer`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevisionInfo {
    pub number: u64,
    /// Seconds since the epoch when it was applied.
    pub applied_at: u64,
    /// Digest of the rendered units: equal digests, equal revisions.
    pub digest: String,
    /// Digest of what they were rendered from: the template files, the
    /// instance name and the command-line overrides.
    #[serde(default)]
    pub inputs: String,
    /// Named volumes the instance used (kept on destroy unless --volumes).
    pub volumes: Vec<String>,
    /// Set when this revision re-applied an older one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
}

/// A command under way on an instance, recorded in the instance's folder
/// (atomically) before it touches the host and removed once it is done.
/// Found by a later command, it says that one was interrupted (killed, or
/// stopped by a failure it could not undo), and what finishes it.
pub trait UnderWay: Serialize + DeserializeOwned {
    /// Its file in the instance's folder.
    const FILE: &'static str;

    /// What stands for a record found unreadable (damaged on disk or by
    /// hand): a command under way all the same, of unknown kind. `why`
    /// names the file and what is wrong with it. The file itself is kept,
    /// as `FILE.unreadable`, by the next command that writes or removes
    /// the record.
    fn unreadable(why: String) -> Self;
}

/// An apply, rollback or destroy under way, written (atomically) before it
/// touches the host and removed once it is done (an apply's or rollback's
/// revision recorded, a destroy's last file removed). Found by a later
/// command, it says that command was interrupted, and, for an apply, which
/// units may still run the configuration from before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// The command, and what finishing it needs.
    #[serde(default)]
    pub command: Command,
    /// Digest of the units being applied (as in [`RevisionInfo::digest`]);
    /// empty for a destroy.
    pub digest: String,
    /// When the command began, in microseconds since the epoch.
    pub started_at: u64,
    /// Units restarted to run a new configuration: they may still run the
    /// old one if the apply stopped before restarting them.
    pub restart: Vec<String>,
    /// When systemd had loaded the new files (µs since the epoch), once it
    /// had: a unit active since then runs them.
    #[serde(default)]
    pub loaded_at: Option<u64>,
    /// Set when the record could not be read (its path and why): which
    /// units it restarted is unknown, and is read from the host instead
    /// (see `observe`).
    #[serde(skip)]
    pub unreadable: Option<String>,
}

impl UnderWay for Intent {
    const FILE: &'static str = "applying.json";

    fn unreadable(why: String) -> Self {
        Intent {
            unreadable: Some(why),
            ..Intent::new(String::new(), Vec::new())
        }
    }
}

/// Which command recorded an [`Intent`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    /// `apply` (and every intent written before this field existed).
    #[default]
    Apply,
    /// `rollback` to this revision: running `rollback` again goes on to
    /// it, not to the revision before the one it recorded.
    Rollback { to: u64 },
    /// `destroy`: every unit it removes and the routes file its routes unit
    /// wrote, kept because their files go one by one, so that the next
    /// destroy finishes the job even when nothing is left installed; and
    /// whether it was to remove the volumes and revisions too
    /// (`--volumes`), so that what finishes it is said with the flag.
    Destroy {
        units: Vec<String>,
        routes: Option<PathBuf>,
        #[serde(default)]
        volumes: bool,
    },
}

impl Intent {
    pub fn new(digest: String, restart: Vec<String>) -> Intent {
        Intent {
            command: Command::Apply,
            digest,
            started_at: now_micros(),
            restart,
            loaded_at: None,
            unreadable: None,
        }
    }

    /// A destroy of these units (see [`Command::Destroy`]).
    pub fn destroy(units: Vec<String>, routes: Option<PathBuf>, volumes: bool) -> Intent {
        Intent {
            command: Command::Destroy {
                units,
                routes,
                volumes,
            },
            digest: String::new(),
            started_at: now_micros(),
            restart: Vec::new(),
            loaded_at: None,
            unreadable: None,
        }
    }

    /// The command line that finishes this record's destroy (with
    /// `--volumes` when the interrupted one had it), if it is one; the
    /// instance named `APP/INSTANCE`.
    pub fn finishing_destroy(&self, instance: &str) -> Option<String> {
        match self.command {
            Command::Destroy { volumes, .. } => Some(format!(
                "unitgen destroy {instance}{}",
                if volumes { " --volumes" } else { "" }
            )),
            _ => None,
        }
    }

    /// Whether the command this records had nothing left to do when it was
    /// interrupted: an apply or a rollback killed after it recorded its
    /// revision, the installed units being `latest` (`recorded`) and, for a
    /// rollback, the revision it went to. A destroy is never done while its
    /// record is there. `plan` and `status` both read an intent this way.
    pub fn left_nothing_to_do(&self, latest: Option<&RevisionInfo>, recorded: bool) -> bool {
        if self.unreadable.is_some() {
            return false;
        }
        match self.command {
            Command::Apply => recorded,
            Command::Rollback { .. } => recorded && latest.is_some_and(|l| l.digest == self.digest),
            Command::Destroy { .. } => false,
        }
    }

    /// Whether `unit`, active since `active_since`, may run a configuration
    /// older than its file. `manager_started`: when the host's systemd
    /// started; one started after the apply began loaded the files as they
    /// are now (and so did every unit it started).
    pub fn may_run_old(&self, unit: &str, active_since: u64, manager_started: u64) -> bool {
        if !self.restart.iter().any(|u| u == unit) {
            return false;
        }
        let mut loaded = self.loaded_at.unwrap_or(u64::MAX);
        if manager_started > self.started_at {
            loaded = loaded.min(manager_started);
        }
        active_since < loaded
    }
}

/// A restore under way (`restoring.json`), written before it stops the
/// instance's services and removed once they run again on the restored
/// data. Unlike an apply's intent, no apply finishes it: the volumes may be
/// half emptied or half refilled, and only the restore, run again, puts the
/// snapshot's data back (each volume is emptied and refilled whole, so a
/// restore can always be run again, as restic's can). Apply starts what it
/// stopped, keeps this record, and says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restoring {
    /// The snapshot's id.
    pub snapshot: String,
    /// The instance the snapshot is of, as `APP/INSTANCE` (`blog/live` of
    /// `restore live --into staging`).
    pub from: String,
    /// The instance restored into, when not `from` itself.
    pub into: Option<String>,
    /// The Docker volumes it replaces.
    pub volumes: Vec<String>,
    /// The services whose dump it reads back.
    #[serde(default)]
    pub dumps: Vec<String>,
    /// When it began, in microseconds since the epoch.
    pub started_at: u64,
    /// Set when the record could not be read (its path and why).
    #[serde(skip)]
    pub unreadable: Option<String>,
}

impl UnderWay for Restoring {
    const FILE: &'static str = "restoring.json";

    fn unreadable(why: String) -> Self {
        Restoring {
            snapshot: String::new(),
            from: String::new(),
            into: None,
            volumes: Vec::new(),
            dumps: Vec::new(),
            started_at: 0,
            unreadable: Some(why),
        }
    }
}

impl Restoring {
    /// What the user reads: what was interrupted, and what finishes it.
    pub fn describe(&self) -> String {
        if let Some(why) = &self.unreadable {
            let file = why.split(": unreadable").next().unwrap_or_default();
            return format!(
                "the record of a restore that did not finish is unreadable ({why}): the \
                 instance's data may be half restored; the restore run again (`unitgen backups` \
                 lists the snapshots) finishes it and keeps the record as {}.unreadable; if \
                 none was under way, move the record away:\n{}",
                Self::FILE,
                crate::diagnostic::command_line(["mv", file, &format!("{file}.unreadable")])
            );
        }
        let short = self.snapshot.get(..8).unwrap_or(&self.snapshot);
        let into = self
            .into
            .as_ref()
            .map_or(String::new(), |into| format!(" --into {into}"));
        let data: Vec<String> = (self.volumes.iter())
            .map(|volume| format!("volume {volume}"))
            .chain(
                self.dumps
                    .iter()
                    .map(|service| format!("the dump of {service}")),
            )
            .collect();
        format!(
            "a restore of snapshot {short} did not finish: {} may be half restored; \
             `unitgen restore {} --snapshot {short}{into}` finishes it",
            data.join(", "),
            self.from
        )
    }
}

/// Microseconds since the epoch, the unit of systemd's timestamps.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros().try_into().unwrap_or(u64::MAX))
}

/// What a revision records besides its units.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub inputs: String,
    pub volumes: Vec<String>,
    pub rollback_of: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Revision {
    pub info: RevisionInfo,
    pub units: Vec<UnitFile>,
}

/// One instance's state folder.
pub struct InstanceState {
    dir: PathBuf,
}

/// Held while a command changes an instance; released on drop.
pub struct Lock {
    file: File,
}

impl Drop for Lock {
    /// Says no one holds it any more (the lock itself goes with the file).
    /// A holder killed leaves its words behind: [`Holder::running`] tells.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// Who holds an instance's lock, written into the lock file by the command
/// that took it, so that one that waits for it can say whom it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The unitgen command (`apply`, `rollback`, `destroy`, `restore`, …).
    pub command: String,
    pub pid: u32,
    /// The user behind it: the one `sudo` ran it for, else the process's.
    pub user: String,
    /// When it took the lock, in seconds since the epoch.
    pub since: u64,
}

impl Holder {
    /// This process.
    pub fn this(command: &str) -> Holder {
        let user = ["SUDO_USER", "USER", "LOGNAME"]
            .iter()
            .find_map(|var| std::env::var(var).ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| format!("uid {}", process_uid()));
        Holder {
            command: command.to_string(),
            pid: std::process::id(),
            user,
            since: now_micros() / 1_000_000,
        }
    }

    /// Whether its process still runs: a holder killed left its record in
    /// the lock file, while the lock itself went with it.
    pub fn running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

fn process_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

impl InstanceState {
    pub fn new(state_dir: &Path, app: &str, instance: &str) -> Self {
        InstanceState {
            dir: state_dir.join(crate::model::prefix(app, instance)),
        }
    }

    /// `<app>-<instance>`.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Takes the instance's lock for `holder`. If another process holds it,
    /// says so through `waiting` (with who, when a running unitgen said so
    /// in the file) and waits for it: two applies never interleave. Also
    /// tightens the folder's permissions (see the module doc), for folders
    /// made by earlier versions.
    pub fn lock(
        &self,
        holder: &Holder,
        waiting: impl FnOnce(Option<Holder>),
    ) -> std::io::Result<Lock> {
        // Root-only: revisions show how services are set up, and secrets
        // live here too.
        if let Some(state_dir) = self.dir.parent() {
            create_private_dir(state_dir)?;
        }
        let mut waiting = Some(waiting);
        loop {
            create_private_dir(&self.dir)?;
            tighten(&self.dir)?;
            let path = self.lock_path();
            let mut file = File::options()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .mode(PRIVATE_FILE)
                .open(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    if let Some(waiting) = waiting.take() {
                        let said = fs::read_to_string(&path).ok();
                        let other =
                            said.and_then(|text| serde_json::from_str::<Holder>(&text).ok());
                        waiting(other.filter(Holder::running));
                    }
                    file.lock()?;
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
            // The command waited for may have forgotten the instance
            // (`destroy --volumes`: the folder goes, its lock file with
            // it): the lock held is then of a file no other command opens,
            // and the next would make a new one and not wait. The lock is
            // taken again on the file there now.
            if is_same_file(&file, &path) {
                use std::io::Write as _;
                let said = serde_json::to_string(holder).map_err(std::io::Error::other)?;
                file.set_len(0)?;
                file.write_all(said.as_bytes())?;
                return Ok(Lock { file });
            }
        }
    }

    /// The file whose lock [`InstanceState::lock`] takes (the backup unit
    /// takes it too, before it pauses or stops anything).
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// Whether another process holds the instance's lock: an apply,
    /// rollback, destroy or restore is changing the instance right now, so
    /// its record is of a command under way, not of one that did not
    /// finish. For the commands that only read (`plan`, `status`, `ls`),
    /// which take no lock; false when the lock file cannot be opened
    /// (none yet, or not root).
    pub fn changing_now(&self) -> bool {
        File::open(self.lock_path())
            .is_ok_and(|file| matches!(file.try_lock_shared(), Err(fs::TryLockError::WouldBlock)))
    }

    /// What the reading commands say while [`InstanceState::changing_now`].
    pub fn changing_now_note(&self) -> String {
        format!(
            "another unitgen command (apply, rollback, destroy or restore) is changing {} \
             right now: what is shown is the host midway; look again when it has ended",
            self.name()
        )
    }

    fn revisions_dir(&self) -> PathBuf {
        self.dir.join("revisions")
    }

    /// Records a command under way before it touches the host (or updates
    /// the record as it goes). Atomic: a crash leaves the old record or the
    /// new one. An unreadable record there is kept aside first.
    pub fn begin<T: UnderWay>(&self, record: &T) -> std::io::Result<()> {
        self.keep_unreadable::<T>()?;
        let path = self.dir.join(T::FILE);
        let json = serde_json::to_string_pretty(record).map_err(std::io::Error::other)?;
        write_atomic_mode(&path, json.as_bytes(), PRIVATE_FILE)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// The record of a command of this kind that did not finish, if one
    /// did not.
    /// One that cannot be read is one of unknown kind (see
    /// [`UnderWay::unreadable`]): a record is written whole (atomically),
    /// so it was damaged since, and a command may have been under way.
    pub fn under_way<T: UnderWay>(&self) -> std::io::Result<Option<T>> {
        let path = self.dir.join(T::FILE);
        match fs::read_to_string(&path) {
            Ok(text) => match serde_json::from_str(&text) {
                Ok(record) => Ok(Some(record)),
                Err(e) => match written_by_newer(&path, &e) {
                    Some(newer) => Err(newer),
                    None => Ok(Some(T::unreadable(format!(
                        "{}: unreadable: {e}",
                        path.display()
                    )))),
                },
            },
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Ok(Some(T::unreadable(
                format!("{}: unreadable: {e}", path.display()),
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            )),
        }
    }

    /// The intent of an apply, rollback or destroy that did not finish.
    pub fn intent(&self) -> std::io::Result<Option<Intent>> {
        self.under_way()
    }

    /// The restore that did not finish, if one did not.
    pub fn restoring(&self) -> std::io::Result<Option<Restoring>> {
        self.under_way()
    }

    /// The command is over: an apply's revision is recorded, or the host is
    /// back as it was; a destroy or restore is done.
    pub fn finish<T: UnderWay>(&self) -> std::io::Result<()> {
        self.keep_unreadable::<T>()?;
        crate::unit_dir::remove_if_exists(&self.dir.join(T::FILE))
    }

    /// Renames a record of this kind that cannot be read to
    /// `FILE.unreadable`, for whoever wants to know what it held: the
    /// command that replaces or removes it loses nothing.
    fn keep_unreadable<T: UnderWay>(&self) -> std::io::Result<()> {
        let path = self.dir.join(T::FILE);
        let readable = match fs::read_to_string(&path) {
            Ok(text) => match serde_json::from_str::<T>(&text) {
                Ok(_) => true,
                // Not damaged: kept as it is, for the unitgen that wrote it.
                Err(e) => match written_by_newer(&path, &e) {
                    Some(newer) => return Err(newer),
                    None => false,
                },
            },
            Err(e) => e.kind() != std::io::ErrorKind::InvalidData,
        };
        if readable {
            return Ok(());
        }
        let kept = self.dir.join(format!("{}.unreadable", T::FILE));
        fs::rename(&path, &kept)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", kept.display())))
    }

    /// Every recorded revision, oldest first.
    pub fn revisions(&self) -> std::io::Result<Vec<RevisionInfo>> {
        let mut infos = Vec::new();
        let entries = match fs::read_dir(self.revisions_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(infos),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            // `.NNNN.tmp`: a revision being written, or left by a crash.
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path().join("revision.json");
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("{}: {e}", path.display()),
                    ));
                }
            };
            let info: RevisionInfo = serde_json::from_str(&text).map_err(|e| {
                written_by_newer(&path, &e)
                    .unwrap_or_else(|| self.unreadable_revision(&entry.path(), &e.to_string()))
            })?;
            // Its number is its folder's (`load` finds it by that): one
            // edited since would be listed as a revision no folder holds.
            let folder = entry.file_name().to_string_lossy().parse::<u64>();
            if folder.as_ref().is_ok_and(|folder| *folder != info.number) {
                return Err(self.unreadable_revision(
                    &entry.path(),
                    &format!("it says revision {}, in another's folder", info.number),
                ));
            }
            infos.push(info);
        }
        infos.sort_by_key(|i| i.number);
        Ok(infos)
    }

    /// The folder of revision `number`: its units, and what else was kept
    /// with them.
    pub fn revision_dir(&self, number: u64) -> PathBuf {
        self.revisions_dir().join(format!("{number:04}"))
    }

    /// A revision whose record cannot be read, and the way out: its folder
    /// moved out of the history under a hidden name (`revisions` skips
    /// those), kept whole for whoever wants to read it. The revisions
    /// before it stay; an apply then records the installed units anew.
    fn unreadable_revision(&self, dir: &Path, why: &str) -> std::io::Error {
        let number = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let aside = self
            .revisions_dir()
            .join(format!(".{}.unreadable", number.unwrap_or_default()));
        std::io::Error::other(format!(
            "{}: unreadable: {why}\nto go on without that revision and lose nothing, move it \
             out of the history (its units stay there to read):\n{}\n`unitgen apply` then \
             records the installed units again",
            dir.join("revision.json").display(),
            crate::diagnostic::command_line([
                "mv",
                &dir.to_string_lossy(),
                &aside.to_string_lossy()
            ])
        ))
    }

    pub fn load(&self, number: u64) -> std::io::Result<Revision> {
        let dir = self.revision_dir(number);
        let path = dir.join("revision.json");
        let info: RevisionInfo =
            serde_json::from_str(&fs::read_to_string(&path)?).map_err(|e| {
                written_by_newer(&path, &e)
                    .unwrap_or_else(|| self.unreadable_revision(&dir, &e.to_string()))
            })?;
        let mut units = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if crate::render::is_unit_file_name(&name) {
                units.push(UnitFile {
                    text: fs::read_to_string(entry.path())?,
                    name,
                });
            }
        }
        units.sort_by(|a, b| a.name.cmp(&b.name));
        // The units as recorded, or a rollback to it would install what
        // was never applied (a copy edited, added or deleted since).
        if units_digest(&units) != info.digest {
            return Err(self.unreadable_revision(
                &dir,
                "its unit files are not the ones it records (edited since?)",
            ));
        }
        Ok(Revision { info, units })
    }

    /// Records a successful apply as the next revision, with `kept`: files
    /// (name, text) kept beside its units (its stand-ins), in the same
    /// atomic step: a revision is never found without them.
    pub fn record(
        &self,
        units: &[UnitFile],
        provenance: Provenance,
        kept: &[(&str, String)],
    ) -> std::io::Result<RevisionInfo> {
        let number = match self.revisions()?.last() {
            None => 1,
            Some(last) => last.number.checked_add(1).ok_or_else(|| {
                std::io::Error::other(format!(
                    "revision {} is the last number there is: move {} away to start again",
                    last.number,
                    self.revisions_dir().display()
                ))
            })?,
        };
        let dir = self.revisions_dir().join(format!("{number:04}"));
        // Written into a temporary folder and renamed, so a crash never
        // leaves a half-recorded revision.
        let tmp = self.revisions_dir().join(format!(".{number:04}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        // On a full disk, the error names the folder and what was written
        // of it goes: it would take the room the next apply needs.
        let written = || -> std::io::Result<RevisionInfo> {
            fs::create_dir_all(&tmp)?;
            fs::set_permissions(
                self.revisions_dir(),
                fs::Permissions::from_mode(PRIVATE_DIR),
            )?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(PRIVATE_DIR))?;
            for unit in units {
                write_atomic_mode(&tmp.join(&unit.name), unit.text.as_bytes(), PRIVATE_FILE)?;
            }
            for (name, text) in kept {
                write_atomic_mode(&tmp.join(name), text.as_bytes(), PRIVATE_FILE)?;
            }
            let info = RevisionInfo {
                number,
                applied_at: now_micros() / 1_000_000,
                digest: units_digest(units),
                inputs: provenance.inputs,
                volumes: provenance.volumes,
                rollback_of: provenance.rollback_of,
            };
            let json = serde_json::to_string_pretty(&info).map_err(std::io::Error::other)?;
            write_atomic_mode(&tmp.join("revision.json"), json.as_bytes(), PRIVATE_FILE)?;
            fs::rename(&tmp, &dir)?;
            Ok(info)
        };
        written().map_err(|e| {
            let _ = fs::remove_dir_all(&tmp);
            crate::unit_dir::at(&dir, e)
        })
    }

    /// Records, before an apply takes the instance's routes away, the
    /// routes file its routes unit wrote: the router's copies and the
    /// router itself (when it serves no other instance) go only after the
    /// revision is recorded, and a kill in between left no unit to name
    /// them. Removed by [`InstanceState::unrouted`].
    pub fn unrouting(&self, routes_file: &Path) -> std::io::Result<()> {
        let path = self.dir.join(UNROUTING);
        write_atomic_mode(
            &path,
            routes_file.as_os_str().as_encoded_bytes(),
            PRIVATE_FILE,
        )
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// The routes file of a removal of the instance's routes that did not
    /// finish (see [`InstanceState::unrouting`]).
    pub fn unrouting_left(&self) -> Option<PathBuf> {
        let text = fs::read_to_string(self.dir.join(UNROUTING)).ok()?;
        (!text.is_empty()).then(|| PathBuf::from(text))
    }

    /// The instance's routes are removed, or routed again.
    pub fn unrouted(&self) -> std::io::Result<()> {
        crate::unit_dir::remove_if_exists(&self.dir.join(UNROUTING))
    }

    /// Adds `volumes` to the named volumes any apply of the instance may
    /// have made (`volumes.json`), before that apply starts anything: one
    /// that fails or is killed records no revision, yet its containers made
    /// their volumes, and `destroy --volumes` removes them too (a first
    /// apply's were left behind, with their data).
    pub fn note_volumes(&self, volumes: &[String]) -> std::io::Result<()> {
        let mut noted = self.noted_volumes()?;
        if volumes.iter().all(|volume| noted.contains(volume)) {
            return Ok(());
        }
        noted.extend(volumes.iter().cloned());
        noted.sort();
        noted.dedup();
        let path = self.dir.join(VOLUMES);
        let json = serde_json::to_string_pretty(&noted).map_err(std::io::Error::other)?;
        write_atomic_mode(&path, json.as_bytes(), PRIVATE_FILE)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// The volumes [`InstanceState::note_volumes`] noted; none before the
    /// first apply (or before unitgen noted them).
    pub fn noted_volumes(&self) -> std::io::Result<Vec<String>> {
        let path = self.dir.join(VOLUMES);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{}: unreadable: {e}\nit lists the volumes applies of the instance may \
                         have made (`docker volume ls` shows them); remove the file to go on \
                         without it",
                        path.display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            )),
        }
    }

    /// The files of the instance's folder, and of its revisions' folders,
    /// that this unitgen does not know: a newer unitgen's records, or files
    /// put there by hand. Nothing reads them, so nothing they say is acted
    /// on: `plan`, `status` and `ls` name them. Hidden ones are temporaries
    /// of atomic writes, or folders set aside on purpose, not records.
    pub fn unknown_files(&self) -> Vec<PathBuf> {
        let handover = crate::systemd::handover::RECORD;
        let known = [
            "lock",
            Intent::FILE,
            Restoring::FILE,
            handover,
            UNROUTING,
            VOLUMES,
            "revisions",
            crate::secrets::FOLDER,
            crate::backup::LastBackup::FILE,
            crate::backup::LastRun::FILE,
        ];
        // Kept aside by the command that replaced or removed them.
        let kept = [Intent::FILE, Restoring::FILE, handover].map(|f| format!("{f}.unreadable"));
        let mut unknown = Vec::new();
        let visible = |dir: &Path| -> Vec<(String, PathBuf)> {
            let Ok(entries) = fs::read_dir(dir) else {
                return Vec::new();
            };
            let mut found: Vec<(String, PathBuf)> = (entries.flatten())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .filter(|(name, _)| !name.starts_with('.'))
                .collect();
            found.sort();
            found
        };
        for (name, path) in visible(&self.dir) {
            if !known.contains(&name.as_str()) && !kept.contains(&name) {
                unknown.push(path);
            }
        }
        let stored = crate::systemd::handover::STORED;
        let stored_aside = format!("{stored}.unreadable");
        for (name, path) in visible(&self.revisions_dir()) {
            if !path.is_dir() || name.parse::<u64>().is_err() {
                unknown.push(path);
                continue;
            }
            for (name, path) in visible(&path) {
                let known = name == "revision.json"
                    || name == stored
                    || name == stored_aside
                    || crate::render::is_unit_file_name(&name);
                if !known {
                    unknown.push(path);
                }
            }
        }
        unknown
    }

    /// What the commands that read the state say of [`Self::unknown_files`].
    pub fn unknown_files_note(&self) -> Option<String> {
        let unknown = self.unknown_files();
        if unknown.is_empty() {
            return None;
        }
        let named: Vec<String> = unknown.iter().map(|p| p.display().to_string()).collect();
        Some(format!(
            "{} in {}'s state folder: unitgen {} does not know {} (a newer unitgen's record, \
             or put there by hand?): left alone, and nothing {} says is acted on",
            named.join(", "),
            self.name(),
            env!("CARGO_PKG_VERSION"),
            if unknown.len() == 1 { "it" } else { "them" },
            if unknown.len() == 1 { "it" } else { "they" },
        ))
    }

    /// The instance's folder, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Forgets the instance (after destroy): its revisions and lock. The
    /// folder is first renamed to a hidden name, out of `instances`: its
    /// files go one by one, and a kill among them left a folder with part
    /// of its revisions (and its intent perhaps gone) that `ls` listed as
    /// an instance with revisions kept. The next forget of the instance
    /// removes what a kill left of the hidden one.
    pub fn remove(&self) -> std::io::Result<()> {
        let forgotten = self
            .dir
            .with_file_name(format!(".{}.forgotten", self.name()));
        remove_dir_if_exists(&forgotten)?;
        match fs::rename(&self.dir, &forgotten) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            result => result?,
        }
        remove_dir_if_exists(&forgotten)
    }
}

/// A record this unitgen cannot read because it holds what it does not
/// know (a field, a kind of command: a newer unitgen wrote it, on purpose,
/// not by damage), as the error that refuses it. Taken for damage, it was
/// set aside and the command went on without what it said; ignored, what
/// it said was lost with the next write. `None` for any other fault.
pub fn written_by_newer(path: &Path, e: &serde_json::Error) -> Option<std::io::Error> {
    let why = e.to_string();
    if !(why.starts_with("unknown field") || why.starts_with("unknown variant")) {
        return None;
    }
    Some(std::io::Error::other(format!(
        "{}: written by a newer unitgen than this one ({}): {why}
use that unitgen (or a newer \
         one) on this host: this one changes nothing rather than lose what it cannot read",
        path.display(),
        env!("CARGO_PKG_VERSION")
    )))
}

/// Whether `path` names the file `file` has open.
pub(crate) fn is_same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

fn remove_dir_if_exists(dir: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Creates `dir` (and missing parents) as 0700, and makes an existing one
/// 0700 (state folders of older versions were 0755).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR))
}

/// The (app, instance) of every instance with a folder in the state
/// directory, sorted.
pub fn instances(state_dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(state_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        // Hidden: one being forgotten (`InstanceState::remove`).
        if name.starts_with('.') {
            continue;
        }
        // App names have no `-`: the first one ends the app.
        if let Some((app, instance)) = name.split_once('-') {
            found.push((app.to_string(), instance.to_string()));
        }
    }
    found.sort();
    Ok(found)
}

/// Makes a folder and everything in it private: folders 0700, files 0600.
fn tighten(dir: &Path) -> std::io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            tighten(&entry.path())?;
        } else if kind.is_file() {
            let mode = entry.metadata()?.permissions().mode();
            if mode & 0o077 != 0 {
                fs::set_permissions(entry.path(), fs::Permissions::from_mode(PRIVATE_FILE))?;
            }
        }
    }
    Ok(())
}

/// Whether `installed` are the units `latest` (the latest recorded
/// revision) recorded: what `plan`, `status` and the control commands read
/// an interrupted command's record by.
pub fn is_recorded(latest: Option<&RevisionInfo>, installed: &[UnitFile]) -> bool {
    latest.is_some_and(|latest| latest.digest == units_digest(installed))
}

/// One digest over all of an instance's units (names and texts), in any
/// order.
pub fn units_digest(units: &[UnitFile]) -> String {
    let mut sorted: Vec<&UnitFile> = units.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut all = String::new();
    for unit in sorted {
        all.push_str(&unit.name);
        all.push('\0');
        all.push_str(&unit.text);
        all.push('\0');
    }
    crate::render::content_digest(all.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intent_is_done_once_its_revision_is_what_is_installed() {
        let latest = RevisionInfo {
            number: 3,
            applied_at: 0,
            digest: "sha256:three".into(),
            inputs: String::new(),
            volumes: Vec::new(),
            rollback_of: Some(1),
        };
        let apply = Intent::new("sha256:three".into(), Vec::new());
        assert!(apply.left_nothing_to_do(Some(&latest), true));
        assert!(!apply.left_nothing_to_do(Some(&latest), false));
        // A rollback is done only at the revision it went to.
        let rollback = |digest: &str| Intent {
            command: Command::Rollback { to: 1 },
            ..Intent::new(digest.into(), Vec::new())
        };
        assert!(rollback("sha256:three").left_nothing_to_do(Some(&latest), true));
        assert!(!rollback("sha256:one").left_nothing_to_do(Some(&latest), true));
        let destroy = Intent::destroy(Vec::new(), None, false);
        assert!(!destroy.left_nothing_to_do(Some(&latest), true));
    }

    #[test]
    fn revisions_are_numbered_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = InstanceState::new(dir.path(), "blog", "live");
        let units = vec![UnitFile {
            name: "blog-live-web.service".into(),
            text: "[Unit]\n".into(),
        }];
        let volumes = vec!["blog-live-data".to_string()];
        let first = state
            .record(
                &units,
                Provenance {
                    volumes,
                    ..Provenance::default()
                },
                &[],
            )
            .unwrap();
        let second = state
            .record(
                &units,
                Provenance {
                    rollback_of: Some(1),
                    ..Provenance::default()
                },
                &[],
            )
            .unwrap();
        assert_eq!((first.number, second.number), (1, 2));
        assert_eq!(state.revisions().unwrap().len(), 2);
        let loaded = state.load(1).unwrap();
        assert_eq!(loaded.units, units);
        assert_eq!(loaded.info.volumes, ["blog-live-data"]);
        assert_eq!(state.load(2).unwrap().info.rollback_of, Some(1));
    }

    #[test]
    fn an_interrupted_apply_says_which_units_may_run_an_old_configuration() {
        let mut intent = Intent::new("sha256:x".into(), vec!["web".into()]);
        intent.started_at = 1_000;
        // Not reloaded yet: whatever runs started from the old files.
        assert!(intent.may_run_old("web", 5_000, 10));
        assert!(!intent.may_run_old("db", 5_000, 10), "not restarted by it");
        intent.loaded_at = Some(2_000);
        assert!(
            intent.may_run_old("web", 1_500, 10),
            "active before the reload"
        );
        assert!(!intent.may_run_old("web", 2_500, 10), "restarted after it");
        // A manager started (booted) after the apply began loaded the files
        // as they are.
        intent.loaded_at = None;
        assert!(!intent.may_run_old("web", 3_500, 3_000));
        assert!(
            intent.may_run_old("web", 3_500, 500),
            "booted before the apply"
        );
    }

    #[test]
    fn the_intent_is_written_read_back_and_finished() {
        let dir = tempfile::tempdir().unwrap();
        let state = InstanceState::new(dir.path(), "blog", "live");
        let _lock = state.lock(&Holder::this("test"), |_| {}).unwrap();
        assert_eq!(state.intent().unwrap(), None);
        let intent = Intent::new("sha256:x".into(), vec!["web".into()]);
        state.begin(&intent).unwrap();
        assert_eq!(state.intent().unwrap(), Some(intent.clone()));
        state.finish::<Intent>().unwrap();
        assert_eq!(state.intent().unwrap(), None);
        // Damaged: a command of unknown kind, kept aside by the next one.
        std::fs::write(state.dir().join("applying.json"), "garbage").unwrap();
        let damaged = state.intent().unwrap().unwrap();
        let why = damaged.unreadable.clone().unwrap();
        assert!(why.contains("applying.json: unreadable"), "{why}");
        assert!(!damaged.left_nothing_to_do(None, true));
        state.begin(&intent).unwrap();
        assert_eq!(state.intent().unwrap(), Some(intent.clone()));
        let kept = state.dir().join("applying.json.unreadable");
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "garbage");
        std::fs::write(state.dir().join("applying.json"), [0xff, 0xfe]).unwrap();
        assert!(state.intent().unwrap().unwrap().unreadable.is_some());
        state.finish::<Intent>().unwrap();
        assert_eq!(state.intent().unwrap(), None);
        assert_eq!(std::fs::read(&kept).unwrap(), [0xff, 0xfe]);
    }

    #[test]
    fn each_command_under_way_has_its_own_record() {
        let dir = tempfile::tempdir().unwrap();
        let state = InstanceState::new(dir.path(), "blog", "live");
        let _lock = state.lock(&Holder::this("test"), |_| {}).unwrap();
        // Written by versions before `command`: an apply's.
        std::fs::write(
            state.dir().join("applying.json"),
            r#"{"digest": "sha256:x", "started_at": 1, "restart": []}"#,
        )
        .unwrap();
        assert_eq!(state.intent().unwrap().unwrap().command, Command::Apply);
        let destroy = Intent::destroy(vec!["blog-live-web.service".into()], None, false);
        state.begin(&destroy).unwrap();
        let restoring = Restoring {
            snapshot: "4f3a9c1e0123".into(),
            from: "live".into(),
            into: Some("staging".into()),
            volumes: vec!["blog-staging-data".into()],
            dumps: vec!["db".into()],
            started_at: 1,
            unreadable: None,
        };
        state.begin(&restoring).unwrap();
        assert_eq!(state.intent().unwrap(), Some(destroy));
        // An apply's end leaves an interrupted restore on record: only the
        // restore run again puts its data back.
        state.finish::<Intent>().unwrap();
        assert_eq!(state.restoring().unwrap(), Some(restoring.clone()));
        assert_eq!(
            restoring.describe(),
            "a restore of snapshot 4f3a9c1e did not finish: volume blog-staging-data, the dump of \
             db may be half restored; `unitgen restore live --snapshot 4f3a9c1e --into staging` \
             finishes it"
        );
        state.finish::<Restoring>().unwrap();
        assert_eq!(state.restoring().unwrap(), None);
    }

    #[test]
    fn the_state_folder_is_private_and_tightened_when_found_open() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("unitgen");
        let state = InstanceState::new(&root, "blog", "live");
        std::fs::create_dir_all(state.dir().join("revisions/0001")).unwrap();
        let old = state.dir().join("revisions/0001/revision.json");
        std::fs::write(&old, "{}").unwrap();
        for path in [&root, &state.dir().to_path_buf()] {
            fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).unwrap();
        drop(state.lock(&Holder::this("test"), |_| {}).unwrap());
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(state.dir()), 0o700);
        assert_eq!(mode(&state.dir().join("revisions/0001")), 0o700);
        assert_eq!(mode(&old), 0o600);
        assert_eq!(mode(&state.dir().join("lock")), 0o600);
    }

    /// A kill while a forgotten instance's files went left a folder with
    /// part of them, which `ls` listed; one hidden first is not listed,
    /// and the next forget removes what is left of it.
    #[test]
    fn an_instance_being_forgotten_is_no_instance_and_is_forgotten_whole() {
        let root = tempfile::tempdir().unwrap();
        let state = InstanceState::new(root.path(), "blog", "live");
        drop(state.lock(&Holder::this("test"), |_| {}).unwrap());
        state.record(&[], Provenance::default(), &[]).unwrap();
        // What a kill right after hiding it leaves.
        let hidden = root.path().join(".blog-live.forgotten");
        std::fs::rename(state.dir(), &hidden).unwrap();
        assert_eq!(instances(root.path()).unwrap(), []);

        // Applied again, then forgotten again: nothing of either is left.
        state.record(&[], Provenance::default(), &[]).unwrap();
        assert_eq!(
            instances(root.path()).unwrap(),
            [("blog".to_owned(), "live".to_owned())]
        );
        state.remove().unwrap();
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }

    /// A file in the state folder this unitgen does not know (a newer
    /// one's record of a command under way, a note put there by hand) was
    /// passed over in silence. It is named now; the files unitgen and its
    /// backup units write are not, nor temporaries and folders set aside.
    #[test]
    fn files_this_unitgen_does_not_know_are_named() {
        let root = tempfile::tempdir().unwrap();
        let state = InstanceState::new(root.path(), "blog", "live");
        drop(state.lock(&Holder::this("test"), |_| {}).unwrap());
        let units = vec![UnitFile {
            name: "blog-live-web.service".into(),
            text: "[Unit]\n".into(),
        }];
        let kept = [(crate::systemd::handover::STORED, "{}".to_string())];
        state.record(&units, Provenance::default(), &kept).unwrap();
        state.begin(&Intent::new("d".into(), Vec::new())).unwrap();
        state.unrouting(Path::new("/srv/routes.yaml")).unwrap();
        let dir = state.dir();
        for known in [
            "handover.json",
            "handover.json.unreadable",
            "restoring.json.unreadable",
            "last-backup.json",
            "last-backup-run.json",
            ".last-backup.json",
            ".unitgen-x1y2",
        ] {
            std::fs::write(dir.join(known), "").unwrap();
        }
        std::fs::create_dir_all(dir.join("secrets")).unwrap();
        std::fs::create_dir_all(dir.join("revisions/.0002.tmp")).unwrap();
        std::fs::create_dir_all(dir.join("revisions/.0003.unreadable")).unwrap();
        assert_eq!(state.unknown_files(), Vec::<PathBuf>::new());
        assert_eq!(state.unknown_files_note(), None);

        std::fs::write(dir.join("migrating.json"), "{}").unwrap();
        std::fs::write(dir.join("revisions/0001/checks.json"), "{}").unwrap();
        std::fs::write(dir.join("revisions/README"), "").unwrap();
        assert_eq!(
            state.unknown_files(),
            [
                dir.join("migrating.json"),
                dir.join("revisions/0001/checks.json"),
                dir.join("revisions/README"),
            ]
        );
        let note = state.unknown_files_note().unwrap();
        assert!(note.contains("migrating.json") && note.contains("does not know them"));
    }

    #[test]
    fn revision_numbers_do_not_wrap() {
        let dir = tempfile::tempdir().unwrap();
        let state = InstanceState::new(dir.path(), "blog", "live");
        let units = vec![UnitFile {
            name: "blog-live-web.service".into(),
            text: "[Unit]\n".into(),
        }];
        let first = state.record(&units, Provenance::default(), &[]).unwrap();
        let at = |n: u64| state.dir().join(format!("revisions/{n:04}"));
        let json =
            |n: u64| format!(r#"{{"number": {n}, "applied_at": 0, "digest": "", "volumes": []}}"#);
        std::fs::rename(at(first.number), at(4_294_967_295)).unwrap();
        std::fs::write(at(4_294_967_295).join("revision.json"), json(4_294_967_295)).unwrap();
        assert_eq!(
            state
                .record(&units, Provenance::default(), &[])
                .unwrap()
                .number,
            4_294_967_296
        );
        std::fs::create_dir_all(at(u64::MAX)).unwrap();
        std::fs::write(at(u64::MAX).join("revision.json"), json(u64::MAX)).unwrap();
        let err = state
            .record(&units, Provenance::default(), &[])
            .unwrap_err();
        assert!(
            err.to_string().contains("is the last number there is"),
            "{err}"
        );
    }

    /// Records a newer unitgen wrote (a field, a kind of command this one
    /// does not know) were taken for damage (an intent set aside as
    /// `.unreadable`, a revision offered to be moved out of the history) or
    /// read without what this one did not know, lost at the next write.
    /// Now they are refused as written by a newer unitgen, and kept as
    /// they are; a damaged one is still told as damaged.
    #[test]
    fn records_of_a_newer_unitgen_are_refused_not_taken_for_damage() {
        let dir = tempfile::tempdir().unwrap();
        let state = InstanceState::new(dir.path(), "blog", "live");
        let units = vec![UnitFile {
            name: "blog-live-web.service".into(),
            text: "[Unit]\n".into(),
        }];
        state.record(&units, Provenance::default(), &[]).unwrap();
        let newer = |e: std::io::Error| {
            let said = e.to_string();
            assert!(said.contains("written by a newer unitgen"), "{said}");
            assert!(!said.contains("mv "), "{said}");
            said
        };

        let revision = state.revision_dir(1).join("revision.json");
        let text = fs::read_to_string(&revision).unwrap();
        let with_format = text.replacen('{', "{\n  \"format\": 2,", 1);
        fs::write(&revision, &with_format).unwrap();
        assert!(newer(state.revisions().unwrap_err()).contains("`format`"));
        assert!(newer(state.load(1).err().unwrap()).contains("`format`"));
        fs::write(&revision, &text).unwrap();

        let intent = state.dir().join(Intent::FILE);
        for record in [
            r#"{"command": {"migrate": {"to": 3}}, "digest": "", "started_at": 1, "restart": []}"#,
            r#"{"command": "apply", "digest": "", "started_at": 1, "restart": [], "routes_pending": ["a"]}"#,
            r#"{"command": {"destroy": {"units": [], "routes": null, "secrets": true}}, "digest": "", "started_at": 1, "restart": []}"#,
        ] {
            fs::write(&intent, record).unwrap();
            newer(state.intent().unwrap_err());
            newer(
                state
                    .begin(&Intent::new("d".into(), Vec::new()))
                    .unwrap_err(),
            );
            newer(state.finish::<Intent>().unwrap_err());
            assert_eq!(
                fs::read_to_string(&intent).unwrap(),
                record,
                "kept as it is"
            );
        }
        let restoring = state.dir().join(Restoring::FILE);
        let record = r#"{"snapshot": "a", "from": "blog/live", "into": null, "volumes": [], "started_at": 1, "format": 2}"#;
        fs::write(&restoring, record).unwrap();
        newer(state.restoring().unwrap_err());

        // Damaged, not newer: still a command of unknown kind.
        fs::write(&intent, r#"{"command": "apply", "dig"#).unwrap();
        assert!(state.intent().unwrap().unwrap().unreadable.is_some());
        // Written by this unitgen or an older one: read.
        fs::write(
            &intent,
            r#"{"digest": "d", "started_at": 1, "restart": []}"#,
        )
        .unwrap();
        assert_eq!(state.intent().unwrap().unwrap().command, Command::Apply);
    }

    #[test]
    fn a_second_lock_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        // A state folder left 0755 by an older version is made root-only.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let state = InstanceState::new(dir.path(), "blog", "live");
        let held = state
            .lock(&Holder::this("apply"), |_| panic!("nobody holds it yet"))
            .unwrap();
        for dir in [dir.path().to_path_buf(), dir.path().join("blog-live")] {
            let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{} is root-only", dir.display());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let state = InstanceState::new(&path, "blog", "live");
            let _lock = state
                .lock(&Holder::this("destroy"), |who| tx.send(who).unwrap())
                .unwrap();
        });
        // Told who holds it: this process's apply.
        let who = rx.recv().unwrap().expect("the holder says who it is");
        assert_eq!(
            (who.command.as_str(), who.pid),
            ("apply", std::process::id())
        );
        drop(held);
        waiter.join().unwrap();
        // Released, it says no one holds it.
        assert_eq!(
            fs::read_to_string(dir.path().join("blog-live/lock")).unwrap(),
            ""
        );
    }

    /// A command that waited for the lock of an instance a `destroy
    /// --volumes` forgot meanwhile (its folder removed, the lock file with
    /// it) held the lock of a file no other command would open: the next
    /// command made the folder and a lock anew and took it at once, and
    /// the two changed the instance side by side, while `plan` and
    /// `status` saw no command under way.
    #[test]
    fn a_lock_waited_for_across_a_forget_is_the_instances_new_lock() {
        let dir = tempfile::tempdir().unwrap();
        let state = InstanceState::new(dir.path(), "blog", "live");
        let held = state.lock(&Holder::this("test"), |_| {}).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let state = InstanceState::new(&path, "blog", "live");
            let lock = state
                .lock(&Holder::this("test"), |_| tx.send("waiting").unwrap())
                .unwrap();
            tx.send("locked").unwrap();
            done_rx.recv().unwrap();
            drop(lock);
        });
        assert_eq!(rx.recv().unwrap(), "waiting");
        state.remove().unwrap();
        drop(held);
        assert_eq!(rx.recv().unwrap(), "locked");
        assert!(
            state.changing_now(),
            "the waiter's lock is not the instance's"
        );
        done_tx.send(()).unwrap();
        waiter.join().unwrap();
        assert!(!state.changing_now());
    }
}
