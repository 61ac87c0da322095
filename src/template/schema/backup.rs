//! The `backup:` keys: per service in the app template (what to save and
//! how to keep it consistent), and per instance in the deployments file
//! (where to, when, how long to keep). The instance keys form one block so
//! that it can move as a whole into a site file.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use super::Name;
use crate::template::spanned::Spanned;

/// A service's `backup:`: its volumes (all or some), copied `live`, while
/// `pause`d or `stop`ped, or a `dump` command run in the container with
/// the `restore` command that reads it back.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(deny_unknown_fields)]
pub struct ServiceBackupDecl {
    /// Volume names (as in `volumes:`) to save; default all the service's
    /// named volumes, or none when `dump` is given.
    #[schemars(with = "Option<Vec<String>>")]
    pub volumes: Option<Spanned<Vec<Name>>>,
    /// `live` (default), `pause` or `stop`: what happens to the container
    /// while its volumes are copied.
    #[schemars(with = "Option<String>")]
    pub consistency: Option<Spanned<String>>,
    /// A shell command run in the running container (`docker exec`) whose
    /// standard output is the dump: `pg_dump -Fc -U postgres blog`.
    #[schemars(with = "Option<String>")]
    pub dump: Option<Spanned<String>>,
    /// The shell command that reads the dump back on its standard input.
    #[schemars(with = "Option<String>")]
    pub restore: Option<Spanned<String>>,
}

/// The instance's `backup:` block (in the deployments file); every string
/// may use the instance's values (`"{{ instance }}"`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(deny_unknown_fields)]
pub struct BackupDecl {
    /// The restic repository: a local path, `sftp:…`, `rest:…`, `s3:…`.
    #[schemars(with = "String")]
    pub repository: Spanned<String>,
    /// A file (mode 0600) holding the repository password.
    #[schemars(with = "String")]
    pub password_file: Spanned<String>,
    /// A file (mode 0600) of `NAME=value` lines for the repository's own
    /// credentials (`AWS_ACCESS_KEY_ID`, …), read when the backup runs.
    #[schemars(with = "Option<String>")]
    pub environment_file: Option<Spanned<String>>,
    /// When to back up, in systemd calendar syntax (default `daily`).
    #[schemars(with = "Option<String>")]
    pub schedule: Option<Spanned<String>>,
    /// Spread start times by up to this long (default 30m).
    #[schemars(with = "Option<String>")]
    pub randomized_delay: Option<Spanned<String>>,
    /// Which snapshots `forget --prune` keeps after each backup.
    #[schemars(with = "Option<IndexMap<String, u32>>")]
    pub keep: Option<IndexMap<Name, Spanned<u32>>>,
    /// When to check the repository's integrity (default `weekly`).
    #[schemars(with = "Option<String>")]
    pub check: Option<Spanned<String>>,
    /// A shell command run when a backup or check fails (`$FAILED_UNIT`
    /// names the unit).
    #[schemars(with = "Option<String>")]
    pub on_failure: Option<Spanned<String>>,
    /// The image whose `tar` reads and writes volume data (default
    /// `busybox:1.36`).
    #[schemars(with = "Option<String>")]
    pub helper_image: Option<Spanned<String>>,
    /// The instances backed up (default: every instance).
    #[schemars(with = "Option<Vec<String>>")]
    pub instances: Option<Vec<Name>>,
}
