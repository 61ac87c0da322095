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
/// input. A shell kept beside the command waits for that end, then sends
/// SIGTERM to the whole process group (every process Docker started for
/// it leads its own group), and SIGKILL 5 s later to what ignored it. The
/// command gets no standard input. `$1` is the command, never joined to
/// the script (as the restore's reader runs it).
pub fn ends_with_client(command: &str) -> [&str; 4] {
    [
        "-c",
        "exec 3<&0 </dev/null; \
         ( while read -r _ <&3; do :; done; trap \"\" TERM; kill -TERM 0; sleep 5; kill -KILL 0 ) & \
         watcher=$!; exec 3<&-; sh -c \"$1\"; code=$?; kill $watcher; exit $code",
        IN_CONTAINER,
        command,
    ]
}

/// The variables the backup units set themselves, which their
/// `environment_file` must leave alone (it would win over them).
pub const UNIT_VARIABLES: [&str; 4] = [
    "RESTIC_REPOSITORY",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_CACHE_DIR",
    "UNITGEN_STATE",
];

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
    use super::lock_file;

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
