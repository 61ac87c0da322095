//! An instance's backups, resolved: where the restic repository is, when
//! backups and checks run, what each service contributes and how it is
//! kept consistent while it is read.

/// The helper image unless `helper_image` names another: has `sh` and
/// `tar`, is small, and is what most hosts already pulled.
pub const DEFAULT_HELPER_IMAGE: &str = "busybox:1.36";

/// The instance's backup settings (the `backup:` block of the deployments
/// file, with the instance's values filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// restic's repository: a path or an `sftp:`/`rest:`/`s3:` URL, with
    /// no credentials in it (those go in `environment_file`).
    pub repository: String,
    /// Read by restic when it runs; never copied into a unit.
    pub password_file: String,
    /// Once applied: what the password file held (see
    /// `secrets::password_digest`); None where nothing was read (`render`).
    pub password_digest: Option<String>,
    pub environment_file: Option<String>,
    /// systemd calendar expressions (`OnCalendar=`).
    pub schedule: String,
    pub check: String,
    pub randomized_delay_seconds: u64,
    /// `--keep-<period> N` for `restic forget --prune`, in a fixed order.
    pub keep: Vec<(KeepPeriod, u32)>,
    /// A shell command run by the failure hook unit.
    pub on_failure: Option<String>,
    /// The image whose `sh` and `tar` copy volumes ([`DEFAULT_HELPER_IMAGE`]
    /// unless set).
    pub helper_image: String,
    /// What each service contributes, in the instance's service order.
    pub services: Vec<ServiceBackup>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeepPeriod {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl KeepPeriod {
    pub const ALL: [KeepPeriod; 6] = [
        KeepPeriod::Last,
        KeepPeriod::Hourly,
        KeepPeriod::Daily,
        KeepPeriod::Weekly,
        KeepPeriod::Monthly,
        KeepPeriod::Yearly,
    ];

    /// As written under `keep:` and in restic's `--keep-<period>`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeepPeriod::Last => "last",
            KeepPeriod::Hourly => "hourly",
            KeepPeriod::Daily => "daily",
            KeepPeriod::Weekly => "weekly",
            KeepPeriod::Monthly => "monthly",
            KeepPeriod::Yearly => "yearly",
        }
    }
}

/// One service's part of the instance's backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBackup {
    pub service: String,
    pub volumes: Vec<BackedUpVolume>,
    pub consistency: Consistency,
}

/// A named volume as the snapshot knows it (`name`, the template's name,
/// the same in every instance) and as Docker does in this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackedUpVolume {
    pub name: String,
    pub docker_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consistency {
    /// Volumes are copied while the container runs.
    Live,
    /// The container is paused while its volumes are copied.
    Pause,
    /// The service is stopped while its volumes are copied.
    Stop,
    /// A command in the running container writes a dump to its standard
    /// output; `restore` reads it back from its standard input.
    Dump { dump: String, restore: String },
}

impl Consistency {
    pub fn as_str(&self) -> &'static str {
        match self {
            Consistency::Live => "live",
            Consistency::Pause => "pause",
            Consistency::Stop => "stop",
            Consistency::Dump { .. } => "dump",
        }
    }
}

/// Paths inside a snapshot, the same for every instance of an app, so that
/// one instance's snapshot restores into another.
pub fn volume_path(volume: &str) -> String {
    format!("/volumes/{volume}.tar")
}

/// The helper container that copies the Docker volume `docker_volume` for
/// a backup: named after what it copies (`.` is in no container name of a
/// service), so that the backup unit removes one a killed run left (before
/// its copy, and when it stops, whatever stopped it), which would otherwise
/// go on holding the volume.
pub fn copy_container(docker_volume: &str) -> String {
    format!("{docker_volume}.backup")
}

/// The `$0` of the shell that runs a backup's dump in the service's
/// container, which `docker top` shows.
pub const IN_CONTAINER: &str = "unitgen-backup";

/// The `sh -c` arguments that run `command` in a container as `sh -c`
/// runs it alone, and end it when the `docker exec -i` that started it
/// ends (its standard input held open by the backup). Docker does not: a
/// killed client leaves its process running in the container (a dump goes
/// on for as long as it takes), while it closes that process's standard
/// input. A shell kept beside the command waits for that end, then kills
/// (SIGKILL: a dump's output is thrown away, so nothing waits for it to
/// tidy up) every process the command started: all that descend from the
/// shell Docker started, whatever their process group or session (a
/// `setsid` child has its own; killing the group missed it), and those
/// that left the tree (a double fork hands a daemon to the container's
/// init) but still carry the run's mark in their environment
/// (`UNITGEN_BACKUP_DUMP`, unique to the run; readable for processes of
/// the same user). Each is
/// stopped (SIGSTOP) as it is found, so that none forks or hands a child
/// over while the rest are looked for, and all are killed once a look
/// finds no more. Only `/proc` and shell builtins are used: the image may
/// have nothing else. Not found: a process that both left the tree and
/// dropped the mark (`env -i`, another user); in a container nothing else
/// tells it from the service's own. The command gets no standard input.
/// `$1` is the command, never joined to the script (as the restore's
/// reader runs it).
pub fn ends_with_client(command: &str) -> [&str; 4] {
    [
        "-c",
        "cmd=$1; exec 3<&0 </dev/null; \
         read -r s < /proc/$$/stat; set -- ${s##*) }; mark=\"$$.${20}.\"; \
         ( read -r me s < /proc/self/stat; while read -r _ <&3; do :; done; \
         found=\" $$ \"; kill -STOP $$ 2>/dev/null; more=1; \
         while [ $more = 1 ]; do more=0; for d in /proc/[0-9]*; do p=${d#/proc/}; \
         case $found in *\" $p \"*) continue;; esac; [ \"$p\" != \"$me\" ] || continue; \
         read -r s 2>/dev/null < \"$d/stat\" || continue; set -- ${s##*) }; \
         case $found in *\" $2 \"*) ;; *) e=; read -r e 2>/dev/null < \"$d/environ\"; \
         case $e in *\"UNITGEN_BACKUP_DUMP=$mark\"*) ;; *) continue;; esac;; esac; \
         kill -STOP \"$p\" 2>/dev/null; found=\"$found$p \"; more=1; done; done; \
         kill -KILL $found 2>/dev/null ) & \
         watcher=$!; exec 3<&-; UNITGEN_BACKUP_DUMP=$mark sh -c \"$cmd\"; code=$?; kill $watcher; exit $code",
        IN_CONTAINER,
        command,
    ]
}

/// Why a backup's `environment_file` may not set a variable: systemd lets
/// the file win over everything else the units' steps get, and unitgen's
/// `backups`, `backup` and `restore` refuse what the units refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The units set it from the template (the repository, the state
    /// folder): the backups would go where nothing else of unitgen looks.
    Template,
    /// systemd sets it for the units' steps (their folders, how the run
    /// ended), and the file would win over that too.
    Systemd,
    /// The units' `docker` reads it to choose the engine (and its config,
    /// context, TLS files, API version, platform): the backup would pause,
    /// dump and copy on another engine than the instance runs on. The units
    /// get those from systemd's manager, as the instance's own units do;
    /// `HOME` is one too (docker's config is `$HOME/.docker`).
    Engine,
    /// Which programs the steps run (`restic`, `flock`, … by `PATH`) and
    /// the libraries every program loads (`LD_PRELOAD`, …).
    Programs,
    /// Read by `/bin/sh` at start where it is bash (`SHELLOPTS=noexec` runs
    /// no step at all, and the run counts as a success). dash and bash both
    /// ignore `IFS` from the environment, and a non-interactive `sh` reads
    /// no `ENV` or `BASH_ENV`.
    Shell,
}

/// The variables an `environment_file` of the backups may not set; a name
/// ending in `*` stands for every variable that begins so. The one list of
/// the units' checks and of unitgen's commands.
pub const REFUSED_VARIABLES: [(&str, Refused); 14] = [
    ("RESTIC_REPOSITORY", Refused::Template),
    ("RESTIC_PASSWORD_FILE", Refused::Template),
    ("RESTIC_CACHE_DIR", Refused::Template),
    ("CACHE_DIRECTORY", Refused::Systemd),
    ("RUNTIME_DIRECTORY", Refused::Systemd),
    ("UNITGEN_STATE", Refused::Template),
    ("SERVICE_RESULT", Refused::Systemd),
    ("EXIT_CODE", Refused::Systemd),
    ("DOCKER_*", Refused::Engine),
    ("HOME", Refused::Engine),
    ("PATH", Refused::Programs),
    ("LD_*", Refused::Programs),
    ("SHELLOPTS", Refused::Shell),
    ("BASHOPTS", Refused::Shell),
];

impl Refused {
    /// Why `name` may not be set, if it may not.
    pub fn of(name: &str) -> Option<Refused> {
        REFUSED_VARIABLES.iter().find_map(|(pattern, why)| {
            let matches = match pattern.strip_suffix('*') {
                Some(start) => name.starts_with(start),
                None => name == *pattern,
            };
            matches.then_some(*why)
        })
    }

    /// The refusal of `file` setting `name`: the variable, never its value
    /// (the file holds credentials).
    pub fn message(self, file: &str, name: &str) -> String {
        let which = match self {
            Refused::Template => "which the backup units set from the template",
            Refused::Systemd => "which systemd sets for the backup units' steps",
            Refused::Engine => {
                "which would have the backup units' docker reach another engine than the \
                 instance's units (they get the engine from systemd's manager)"
            }
            Refused::Programs => {
                "which changes the programs the backup units run (they get systemd's PATH)"
            }
            Refused::Shell => "which changes how the backup units' shell runs their steps",
        };
        format!("{file} sets {name}, {which}: remove it from the file")
    }
}

/// The backup unit's `RuntimeDirectory=` (under /run, or the user's
/// runtime folder): where it keeps, while it runs, the marks of what it
/// paused or stopped (`<consistency>-<service>`), which systemd removes
/// when it ends, and [`PAST_LOCK`].
pub fn runtime_directory(prefix: &str) -> String {
    format!("unitgen/{prefix}-backup")
}

/// The mark, in the backup unit's runtime folder, that its run got past
/// the instance's lock: written while it holds that lock, before it pauses
/// or stops anything. A running backup without it is still waiting for the
/// lock (see `crate::backup::await_running`).
pub const PAST_LOCK: &str = "past-lock";

pub fn dump_path(service: &str) -> String {
    format!("/dumps/{service}")
}

/// restic tags: every snapshot of an instance carries the first two.
pub fn app_tag(app: &str) -> String {
    format!("app:{app}")
}

pub fn instance_tag(instance: &str) -> String {
    format!("instance:{instance}")
}

pub const REVISION_TAG: &str = "revision:";

/// The lock file that serializes restic runs against one repository on
/// this host: the backup and check units of every instance backed up
/// there, and `unitgen backups`/`restore`. restic 0.14 has no
/// `--retry-lock`: an operation that needs an exclusive lock (`check`,
/// `forget --prune`) fails at once while any other holds a lock, so two
/// timers firing together would fail each other. `/run/lock` is writable
/// by every user (Debian: mode 1777), for user units too.
pub fn lock_file(repository: &str) -> String {
    use sha2::{Digest as _, Sha256};
    // `local:/srv/b/` and `/srv/b` are the same repository.
    let key = repository.strip_prefix("local:").unwrap_or(repository);
    let key = key
        .strip_suffix('/')
        .filter(|k| !k.is_empty())
        .unwrap_or(key);
    let hash = Sha256::digest(key.as_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("/run/lock/unitgen-restic-{hex}.lock")
}

#[cfg(test)]
mod tests {
    use super::{ends_with_client, lock_file};

    /// Whether process `pid` has ended (gone, or a zombie not yet reaped).
    fn ended(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit_once(") ").unwrap().1.starts_with('Z')
        })
    }

    /// The end of its standard input ends everything the dump started: its
    /// shell, a `setsid` child (a group and session of its own), and a
    /// daemon a double fork handed to init, out of the tree; a process it
    /// did not start goes on. Run by the host's `sh` as the container's
    /// runs it. A dump that ends by itself keeps its exit status.
    #[test]
    fn a_dump_ends_whole_with_its_client_whatever_it_forks() {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let note = format!("echo $$ >> '{}'", pids.display());
        let dump = format!(
            "setsid sh -c \"{note}; exec sleep 1000\" & \
             (setsid sh -c \"{note}; exec sleep 1001\" &); \
             {note}; while :; do sleep 1; done"
        );
        let mut bystander = Command::new("sleep").arg("1002").spawn().unwrap();
        let mut dumping = Command::new("sh")
            .args(ends_with_client(&dump))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = (0..300).find_map(|_| {
            let text = std::fs::read_to_string(&pids).unwrap_or_default();
            let found: Vec<String> = text.lines().map(String::from).collect();
            if found.len() == 3 {
                return Some(found);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            None
        });
        let started = started.expect("the dump did not start its three processes");
        assert!(!started.iter().any(|pid| ended(pid)));
        // The client goes: its end of the input closes.
        drop(dumping.stdin.take());
        dumping.wait().unwrap();
        let all_ended = (0..300).any(|_| {
            if started.iter().all(|pid| ended(pid)) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        });
        let left: Vec<&String> = started.iter().filter(|pid| !ended(pid)).collect();
        assert!(all_ended, "left running: {left:?}");
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "a bystander was killed"
        );
        bystander.kill().unwrap();
        bystander.wait().unwrap();

        let mut ending = Command::new("sh")
            .args(ends_with_client("echo done; exit 3"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = ending.stdin.take();
        let mut said = String::new();
        use std::io::Read as _;
        (ending.stdout.take().unwrap().read_to_string(&mut said)).unwrap();
        assert_eq!(ending.wait().unwrap().code(), Some(3));
        assert_eq!(said, "done\n");
        drop(input);
    }

    #[test]
    fn one_repository_one_lock_however_it_is_written() {
        assert_eq!(
            lock_file("/srv/backup/blog"),
            lock_file("local:/srv/backup/blog/")
        );
        assert_ne!(lock_file("/srv/backup/blog"), lock_file("/srv/backup/wiki"));
        assert!(lock_file("rest:http://127.0.0.1:8000/").starts_with("/run/lock/unitgen-restic-"));
    }
}
