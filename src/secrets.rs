//! Secrets: values a service gets as environment variables that never go
//! into a unit file, a revision, a plan or any command line.
//!
//! `plan` and `apply` read each secret on the host (a file, a variable of
//! unitgen's own environment, or a password manager's output) and `apply`
//! writes one env file per service into the instance's state folder:
//!
//! ```text
//! /var/lib/unitgen/blog-live/secrets/     0700 root
//!   db.env                                0600 root: POSTGRES_PASSWORD=…
//!   digest.key                            0600 root: the key of the digests
//! ```
//!
//! The unit passes the file to `docker run --env-file`; the Docker client
//! reads it and hands the values to the engine over its socket. The state
//! folder, not `/run`, because units must start at boot without unitgen;
//! not `/etc`, which tools like etckeeper commit to a repository.
//!
//! So that a changed secret changes (and restarts) its unit, and `plan`
//! says so, the unit carries a digest of each value. Unit files are world
//! readable, and a plain hash of a short password is a dictionary lookup
//! away from the password: the digest is an HMAC keyed by a random key kept
//! beside the env files, readable only by those who can read the secrets.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs;
use std::io::{self, ErrorKind, Read as _};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use crate::diagnostic::{Problem, Problems};
use crate::model::{Instance, Secret, SecretSource};
use crate::render::UnitFile;
use crate::state::create_private_dir;

/// Docker's `--env-file` reader takes lines of less than 64 KiB
/// (`bufio.Scanner`); `NAME=` must fit too.
const MAX_VALUE_BYTES: usize = 60 * 1024;

const KEY_FILE: &str = "digest.key";

/// An instance's secrets folder: `<state dir>/<app>-<instance>/secrets`.
pub fn dir(state_dir: &Path, prefix: &str) -> PathBuf {
    state_dir.join(prefix).join(FOLDER)
}

/// The secrets' folder in the instance's state folder.
pub const FOLDER: &str = "secrets";

/// The env file of one service, as its unit names it.
pub fn env_file(state_dir: &Path, prefix: &str, service: &str) -> PathBuf {
    dir(state_dir, prefix).join(env_file_name(service))
}

fn env_file_name(service: &str) -> String {
    format!("{service}.env")
}

/// The values of an instance's secrets, read on this host, by secret name.
/// `Debug` shows the names only.
pub struct Values(BTreeMap<String, String>);

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Reads every secret the instance's services use. Each value must be text
/// Docker's `--env-file` passes on byte for byte: one trailing line break is
/// dropped (as `$(…)` would: `pass` and files end with one), anything else
/// that cannot pass is refused, pointing at the secret's source.
pub fn read(instance: &Instance) -> Result<Values, Problems> {
    let mut values = BTreeMap::new();
    let mut problems = Problems::default();
    for secret in &instance.secrets {
        match read_source(&secret.source).and_then(check_value) {
            Ok(value) => {
                values.insert(secret.name.clone(), value);
            }
            Err(why) => problems.push(read_problem(secret, why)),
        }
    }
    problems.into_result(Values(values))
}

fn read_problem(secret: &Secret, why: String) -> Problem {
    let help = match &secret.source {
        SecretSource::File(_) => {
            "the file is read by `plan` and `apply`, on the machine they run on"
        }
        SecretSource::Environment(_) => {
            "set it in the environment of `unitgen plan` and `unitgen apply`"
        }
        SecretSource::Command(_) => {
            "the command runs when `plan` and `apply` run; its standard output is the value"
        }
    };
    Problem::new(format!("secret `{}`: {why}", secret.name))
        .at(&secret.at)
        .label("source")
        .help(help)
}

/// Keeps this process's memory, which holds the secrets `plan`, `apply`,
/// `status` and `rollback` read, out of core dumps: with the kernel's
/// default core pattern (`core`, in the working directory) and cores
/// allowed (`ulimit -c unlimited`, a CI runner's service), an abort or a
/// crash wrote them next to the template, where `git add .` takes them.
/// As ssh-agent does (`PR_SET_DUMPABLE` 0, which also keeps other users'
/// debuggers out). The programs unitgen runs are dumpable again: exec
/// resets it.
pub fn no_core_dumps() {
    // SAFETY: prctl with integer arguments only reads them.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// The most bytes read from a source: the longest value, its line break
/// (`\r\n`) and one more, which tells that it is too long. A source that
/// never ends (`/dev/zero`, a command that keeps writing) is not read to
/// its end.
const READ_LIMIT: u64 = MAX_VALUE_BYTES as u64 + 3;

fn read_source(source: &SecretSource) -> Result<Vec<u8>, String> {
    match source {
        SecretSource::File(path) => {
            let mut bytes = Vec::new();
            fs::File::open(path)
                .and_then(|file| file.take(READ_LIMIT).read_to_end(&mut bytes))
                .map_err(|e| format!("cannot read {}: {e}", crate::diagnostic::shown_path(path)))?;
            Ok(bytes)
        }
        SecretSource::Environment(variable) => std::env::var_os(variable)
            .map(OsStringExt::into_vec)
            .ok_or_else(|| format!("`{variable}` is not set in unitgen's environment")),
        SecretSource::Command(words) => command_output(words),
    }
}

/// The standard output of a `command:` source, up to [`READ_LIMIT`].
fn command_output(words: &[String]) -> Result<Vec<u8>, String> {
    let shown =
        shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "));
    // A password manager may ask for a passphrase: it gets the terminal;
    // only its standard output is taken.
    let mut child = Command::new(&words[0])
        .args(&words[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    let mut bytes = Vec::new();
    let read = (child.stdout.take().expect("piped"))
        .take(READ_LIMIT)
        .read_to_end(&mut bytes);
    let too_long = bytes.len() as u64 == READ_LIMIT;
    if too_long {
        // What else it writes is not wanted (and may never end).
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for `{shown}`: {e}"))?;
    read.map_err(|e| format!("reading the output of `{shown}`: {e}"))?;
    if !status.success() && !too_long {
        return Err(format!("`{shown}` failed ({status})"));
    }
    Ok(bytes)
}

/// The value as it goes into an env file, or why it cannot. Messages never
/// quote the value.
fn check_value(mut bytes: Vec<u8>) -> Result<String, String> {
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    // First: a value read only up to [`READ_LIMIT`] may end inside a
    // character.
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "the value is longer than {MAX_VALUE_BYTES} bytes, the most Docker's --env-file takes"
        ));
    }
    let value = String::from_utf8(bytes).map_err(|_| {
        "the value is not UTF-8 text, which Docker's --env-file requires".to_string()
    })?;
    if value.contains('\0') {
        return Err("the value contains a NUL byte, which no environment variable can".into());
    }
    if value.contains('\n') {
        return Err("the value spans several lines; Docker's --env-file takes one line per variable (store it encoded on one line, e.g. base64, or mount a root-only file with `volumes:`)".into());
    }
    if value.ends_with('\r') {
        return Err(
            "the value ends with a carriage return, which Docker's --env-file drops".into(),
        );
    }
    Ok(value)
}

/// The key of the digests, 32 random bytes.
pub struct Key([u8; 32]);

impl Key {
    /// The instance's key, created on first use (`apply`).
    pub fn load_or_create(dir: &Path) -> io::Result<Key> {
        if let Some(key) = Key::load(dir)? {
            return Ok(key);
        }
        let key = Key::random()?;
        create_private_dir(dir)?;
        write_private(&dir.join(KEY_FILE), &key.0)?;
        Ok(key)
    }

    /// The instance's key if there is one, else a throw-away one: `plan`
    /// writes nothing, and no installed digest can match a key that does
    /// not exist yet, so every secret shows as changed, as it will be.
    pub fn load_or_ephemeral(dir: &Path) -> io::Result<Key> {
        match Key::load(dir)? {
            Some(key) => Ok(key),
            None => Key::random(),
        }
    }

    fn load(dir: &Path) -> io::Result<Option<Key>> {
        let path = dir.join(KEY_FILE);
        match fs::read(&path) {
            Ok(bytes) => bytes.try_into().map(|k| Some(Key(k))).map_err(|_| {
                io::Error::other(format!(
                    "{} is not a 32-byte key",
                    crate::diagnostic::shown_path(&path)
                ))
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("reading {}: {e}", crate::diagnostic::shown_path(&path)),
            )),
        }
    }

    fn random() -> io::Result<Key> {
        let mut key = [0; 32];
        getrandom::fill(&mut key).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
        Ok(Key(key))
    }

    /// `hmac-sha256:` and the first 128 bits, in hex: enough to tell values
    /// apart, and the service and variable are in the message so that one
    /// value used twice does not show as the same digest.
    fn digest(&self, service: &str, variable: &str, value: &str) -> String {
        self.mac(&[
            b"unitgen secret",
            service.as_bytes(),
            variable.as_bytes(),
            value.as_bytes(),
        ])
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in parts {
            mac.update(part);
            mac.update(b"\0");
        }
        let mut out = String::from("hmac-sha256:");
        for byte in &mac.finalize().into_bytes()[..16] {
            let _ = write!(out, "{byte:02x}");
        }
        out
    }
}

/// One service's env file. `Debug` shows the file name only.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvFile {
    pub name: String,
    /// The unit of the service that reads it.
    pub unit: String,
    text: String,
}

impl fmt::Debug for EnvFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvFile({})", self.name)
    }
}

/// Puts each value's digest into the instance (so it renders into the
/// units) and returns the env file of every service that has secrets.
pub fn seal(instance: &mut Instance, values: &Values, key: &Key) -> Vec<EnvFile> {
    let mut files = Vec::new();
    let units: Vec<String> = (instance.services.iter())
        .map(|s| instance.service_unit(&s.name))
        .collect();
    for (service, unit) in instance.services.iter_mut().zip(units) {
        if service.secrets.is_empty() {
            continue;
        }
        let mut text = String::new();
        for env in &mut service.secrets {
            let value = &values.0[&env.secret];
            env.digest = Some(key.digest(&service.name, &env.variable, value));
            // Docker takes everything after the first `=` as it is.
            let _ = writeln!(text, "{}={value}", env.variable);
        }
        files.push(EnvFile {
            name: env_file_name(&service.name),
            unit,
            text,
        });
    }
    files
}

/// The `PasswordDigest=` a backup unit's text carries (see
/// [`password_digest`]): what apply recorded of its password file.
pub fn applied_password_digest(unit_text: &str) -> Option<&str> {
    unit_text
        .lines()
        .find_map(|line| line.strip_prefix("PasswordDigest="))
}

/// What the backups' password file (`file`, on this host) holds, as the
/// backup unit carries it (`PasswordDigest=`): a keyed digest, as of a
/// secret, or `missing`. restic reads the file at each run, never apply:
/// so that one changed or deleted by hand shows in `plan` and `status`
/// now, not as a failed (`OVERDUE`) backup later, the unit carries what it
/// held when applied.
pub fn password_digest(key: &Key, file: &Path) -> io::Result<String> {
    let failed = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "reading the backups' password file {}: {e}",
                crate::diagnostic::shown_path(file)
            ),
        )
    };
    match fs::metadata(file) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(MISSING.to_string()),
        Err(e) => return Err(failed(e)),
        // A FIFO or a device (`/dev/zero`) is not read: it could block,
        // or never end.
        Ok(meta) if !meta.is_file() => return Ok(NOT_A_FILE.to_string()),
        Ok(_) => {}
    }
    let mut bytes = Vec::new();
    (fs::File::open(file).and_then(|f| f.take(MAX_PASSWORD_FILE_BYTES).read_to_end(&mut bytes)))
        .map_err(failed)?;
    Ok(key.mac(&[b"unitgen restic password file", &bytes]))
}

/// [`password_digest`] of a password file that is not there.
const MISSING: &str = "missing";
/// [`password_digest`] of a password file that is no regular file.
const NOT_A_FILE: &str = "not-a-file";
/// What [`password_digest`] reads of a password file at most: a password
/// is short; a larger file differs in its first bytes too when replaced.
const MAX_PASSWORD_FILE_BYTES: u64 = 1 << 20;

/// Puts the digest of the backups' password file into the instance (so it
/// renders into the backup unit; see [`password_digest`]). `root`: the
/// host's root (`--root`).
pub fn seal_password(instance: &mut Instance, root: Option<&Path>, key: &Key) -> io::Result<()> {
    if let Some(backup) = &mut instance.backup {
        let file = crate::router::on_host(root, Path::new(&backup.password_file));
        backup.password_digest = Some(password_digest(key, &file)?);
    }
    Ok(())
}

/// The env files of one instance on this host.
pub struct Store {
    dir: PathBuf,
}

/// A variable a unit gives its service that the secrets file does not
/// hold as the unit was applied with (see [`Store::compare`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub unit: String,
    pub variable: String,
    /// Not in the file at all (else: another value).
    pub missing: bool,
}

/// What a secrets folder held before [`Store::install`]: file name and
/// bytes, or None where there was no file.
pub struct Previous(Vec<(String, Option<Vec<u8>>)>);

impl Store {
    pub fn new(state_dir: &Path, prefix: &str) -> Store {
        Store {
            dir: dir(state_dir, prefix),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the files whose content changed, each atomically and root-only
    /// from its first byte; returns what they replaced, for [`Store::restore`].
    pub fn install(&self, files: &[EnvFile]) -> io::Result<Previous> {
        let mut previous = Vec::new();
        if files.is_empty() {
            return Ok(Previous(previous));
        }
        create_private_dir(&self.dir)?;
        for file in files {
            let path = self.dir.join(&file.name);
            let old = match fs::read(&path) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            if old.as_deref() == Some(file.text.as_bytes()) {
                continue;
            }
            write_private(&path, file.text.as_bytes())?;
            previous.push((file.name.clone(), old));
        }
        Ok(Previous(previous))
    }

    /// The files of `files` that are missing here or hold something else
    /// (see [`crate::plan::Plan::stale_secrets`]).
    pub fn stale<'f>(
        &self,
        files: impl IntoIterator<Item = &'f EnvFile>,
    ) -> io::Result<Vec<String>> {
        let mut stale = Vec::new();
        for file in files {
            match fs::read(self.dir.join(&file.name)) {
                Ok(bytes) if bytes == file.text.as_bytes() => {}
                Ok(_) => stale.push(file.name.clone()),
                Err(e) if e.kind() == ErrorKind::NotFound => stale.push(file.name.clone()),
                Err(e) => return Err(e),
            }
        }
        Ok(stale)
    }

    /// For `rollback`, which restores units, never values: the variables
    /// that `units` (an instance's, named `<prefix>-<service>.service`)
    /// give their services from a secrets file (their `Secret=VARIABLE
    /// SECRET DIGEST` lines) and that the file here does not hold, or holds
    /// with another value than the digest says.
    pub fn compare(&self, prefix: &str, units: &[UnitFile]) -> io::Result<Vec<Mismatch>> {
        let key = Key::load(&self.dir)?;
        let mut found = Vec::new();
        for unit in units {
            let Some((service, given)) = given_secrets(prefix, unit) else {
                continue;
            };
            let text = self.held(service)?.unwrap_or_default();
            let held: BTreeMap<&str, &str> = text
                .lines()
                .filter_map(|line| line.split_once('='))
                .collect();
            for (variable, digest) in given {
                let value = held.get(variable);
                let same = match (&key, value) {
                    (Some(key), Some(value)) => key.digest(service, variable, value) == digest,
                    _ => false,
                };
                if !same {
                    found.push(Mismatch {
                        unit: unit.name.clone(),
                        variable: variable.to_string(),
                        missing: value.is_none(),
                    });
                }
            }
        }
        Ok(found)
    }

    /// For `status`, which reads the host only: the units of `units` whose
    /// secrets file is not as they were applied with: missing, a value
    /// other than its digest says, or a line their `Secret=` lines do not
    /// give (added by hand: their next start would pass it on too). By unit
    /// name, with the file's path.
    pub fn differing(
        &self,
        prefix: &str,
        units: &[UnitFile],
    ) -> io::Result<Vec<(String, PathBuf)>> {
        // Nothing to read (the folder is root-only) when no unit has secrets.
        if !units
            .iter()
            .any(|unit| given_secrets(prefix, unit).is_some())
        {
            return Ok(Vec::new());
        }
        let mismatched: Vec<String> = (self.compare(prefix, units)?.into_iter())
            .map(|m| m.unit)
            .collect();
        let mut found = Vec::new();
        for unit in units {
            let Some((service, given)) = given_secrets(prefix, unit) else {
                continue;
            };
            let held = self.held(service)?.unwrap_or_default();
            let added = held.lines().any(|line| {
                let variable = line.split_once('=').map_or(line, |(variable, _)| variable);
                !given.iter().any(|(given, _)| *given == variable)
            });
            if added || mismatched.contains(&unit.name) {
                found.push((unit.name.clone(), self.dir.join(env_file_name(service))));
            }
        }
        Ok(found)
    }

    /// For `status`: the password file of the backup unit among `units`
    /// whose `PasswordDigest=` (see [`password_digest`]) is not what it
    /// holds now (changed or deleted by hand since apply), with why.
    /// `root`: the host's root (`--root`).
    pub fn password_differs(
        &self,
        units: &[UnitFile],
        root: Option<&Path>,
    ) -> io::Result<Option<(String, String)>> {
        let Some((unit, applied, file)) = units.iter().find_map(|unit| {
            let applied = applied_password_digest(&unit.text)?;
            let file = (unit.text.lines())
                .filter_map(|l| l.strip_prefix("Environment="))
                .filter_map(crate::escape::read_systemd_environment)
                .find_map(|(name, value)| (name == "RESTIC_PASSWORD_FILE").then_some(value))?;
            Some((unit, applied, file))
        }) else {
            return Ok(None);
        };
        let Some(key) = Key::load(&self.dir)? else {
            return Ok(Some((
                unit.name.clone(),
                format!(
                    "its password file {file} cannot be checked: the key of the digests ({}) is gone",
                    crate::diagnostic::shown_path(&self.dir.join(KEY_FILE))
                ),
            )));
        };
        let now = password_digest(&key, &crate::router::on_host(root, Path::new(&file)))?;
        Ok((now != applied).then(|| {
            let what = match (applied, now.as_str()) {
                (_, MISSING) => "was deleted",
                (MISSING, _) => "was made",
                _ => "was changed",
            };
            (
                unit.name.clone(),
                format!(
                    "its password file {} {what} since apply: its next run reads it as it is \
                     (`unitgen backups` tells whether it opens the repository); `unitgen apply` \
                     records it",
                    crate::diagnostic::shown(&file)
                ),
            )
        }))
    }

    /// The text of a service's secrets file; None when there is none.
    fn held(&self, service: &str) -> io::Result<Option<String>> {
        match fs::read_to_string(self.dir.join(env_file_name(service))) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Puts back what [`Store::install`] replaced (after a failed apply).
    pub fn restore(&self, previous: &Previous) -> io::Result<()> {
        for (name, old) in &previous.0 {
            let path = self.dir.join(name);
            match old {
                Some(bytes) => write_private(&path, bytes)?,
                None => crate::unit_dir::remove_if_exists(&path)?,
            }
        }
        Ok(())
    }

    /// Removes the env files of services that no longer have secrets, and
    /// the temporary files of writes a kill interrupted (each holds a value,
    /// perhaps one replaced since). Called with the instance's lock held, so
    /// no write is under way.
    pub fn prune(&self, keep: &[EnvFile]) -> io::Result<()> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let stale_env = name.ends_with(".env") && !keep.iter().any(|f| f.name == name);
            if stale_env || name.starts_with(crate::unit_dir::TEMP_PREFIX) {
                crate::unit_dir::remove_if_exists(&self.dir.join(name))?;
            }
        }
        Ok(())
    }

    /// Removes every value: the env files and the temporary files of
    /// writes a kill interrupted (`destroy`). The key stays, as the
    /// revisions do (`destroy --volumes` forgets both): the digests in
    /// their units are of this key, and with another one a rollback to
    /// them would tell every secret as changed. It holds no value; with
    /// the digests it could test guesses, which the revisions' digests
    /// and it did as well before, both root-only.
    pub fn remove_values(&self) -> io::Result<()> {
        self.prune(&[])
    }
}

/// The service of an instance's unit (named `<prefix>-<service>.service`)
/// and the variables its `Secret=VARIABLE SECRET DIGEST` lines give it from
/// its secrets file, with their digests; None for a unit that gives none.
fn given_secrets<'u>(
    prefix: &str,
    unit: &'u UnitFile,
) -> Option<(&'u str, Vec<(&'u str, &'u str)>)> {
    let service = (unit.name.strip_prefix(prefix))
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_suffix(".service"))?;
    let given: Vec<(&str, &str)> = (unit.text.lines())
        .filter_map(|line| line.strip_prefix("Secret="))
        .filter_map(|rest| {
            let mut words = rest.split(' ');
            Some((words.next()?, words.nth(1)?))
        })
        .collect();
    (!given.is_empty()).then_some((service, given))
}

/// Atomic, and 0600 from the start: the temporary file is created 0600
/// (tempfile's default) and keeps that mode when renamed.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    crate::unit_dir::write_atomic_mode(path, contents, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SecretEnv, Service};
    use std::os::unix::fs::PermissionsExt as _;

    fn key(byte: u8) -> Key {
        Key([byte; 32])
    }

    #[test]
    fn one_trailing_line_break_is_dropped_and_the_rest_kept_byte_for_byte() {
        for (raw, value) in [
            (&b"s3cret\n"[..], "s3cret"),
            (b"s3cret\r\n", "s3cret"),
            (b"s3cret", "s3cret"),
            (
                b"  spaces, quotes \"' $HOME %n \\ #x =\t\xc2\x85 \n",
                "  spaces, quotes \"' $HOME %n \\ #x =\t\u{85} ",
            ),
            (b"", ""),
        ] {
            assert_eq!(check_value(raw.to_vec()).unwrap(), value);
        }
    }

    #[test]
    fn values_the_env_file_cannot_carry_are_refused_without_showing_them() {
        for (raw, why) in [
            (&b"line one\nline two\n"[..], "spans several lines"),
            (b"trailing\r", "carriage return"),
            (b"a\0b", "NUL"),
            (b"\xffpassword", "not UTF-8"),
        ] {
            let err = check_value(raw.to_vec()).unwrap_err();
            assert!(err.contains(why), "{err}");
            assert!(
                !err.contains("line one") && !err.contains("password"),
                "{err}"
            );
        }
        assert!(check_value(vec![b'x'; MAX_VALUE_BYTES]).is_ok());
        assert!(check_value(vec![b'x'; MAX_VALUE_BYTES + 1]).is_err());
        // Read up to the limit, a long value may end inside a character:
        // it is too long, not "not UTF-8".
        let mut cut = "é".repeat(MAX_VALUE_BYTES).into_bytes();
        cut.truncate(READ_LIMIT as usize);
        assert!(cut.ends_with(&[0xc3]));
        assert!(check_value(cut).unwrap_err().contains("longer than"));
    }

    #[test]
    fn digests_are_keyed_and_never_the_value() {
        let a = key(1).digest("db", "PASSWORD", "1234");
        assert_eq!(a, key(1).digest("db", "PASSWORD", "1234"), "deterministic");
        assert_ne!(a, key(2).digest("db", "PASSWORD", "1234"), "keyed");
        assert_ne!(a, key(1).digest("db", "PASSWORD", "1235"));
        assert_ne!(a, key(1).digest("db", "OTHER", "1234"), "per variable");
        assert!(a.starts_with("hmac-sha256:") && a.len() == 12 + 32, "{a}");
        // Not a plain hash of the value that a dictionary would find.
        assert!(!a.contains(&crate::render::content_digest(b"1234")[7..39]));
    }

    fn instance() -> Instance {
        Instance {
            app: "blog".into(),
            instance: "live".into(),
            services: vec![
                Service {
                    name: "db".into(),
                    secrets: vec![
                        SecretEnv {
                            variable: "POSTGRES_PASSWORD".into(),
                            secret: "db_password".into(),
                            digest: None,
                        },
                        SecretEnv {
                            variable: "TOKEN".into(),
                            secret: "token".into(),
                            digest: None,
                        },
                    ],
                    ..Service::default()
                },
                Service {
                    name: "web".into(),
                    ..Service::default()
                },
            ],
            discovery: None,
            fleet: Default::default(),
            secrets: Vec::new(),
            backup: None,
            routes: Vec::new(),
            router: None,
        }
    }

    fn values() -> Values {
        Values(BTreeMap::from([
            ("db_password".into(), "p@ss word=\"x\"".into()),
            ("token".into(), "#not a comment".into()),
        ]))
    }

    #[test]
    fn the_password_files_digest_tells_its_content_and_absence_apart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        assert_eq!(password_digest(&key(1), &file).unwrap(), MISSING);
        fs::write(&file, "one").unwrap();
        let one = password_digest(&key(1), &file).unwrap();
        assert!(one.starts_with("hmac-sha256:"), "{one}");
        assert!(!one.contains("one"));
        assert_ne!(one, password_digest(&key(2), &file).unwrap(), "keyed");
        fs::write(&file, "two").unwrap();
        assert_ne!(one, password_digest(&key(1), &file).unwrap());
        // Not read: a device or FIFO could block or never end.
        assert_eq!(password_digest(&key(1), dir.path()).unwrap(), NOT_A_FILE);
        assert_eq!(
            password_digest(&key(1), Path::new("/dev/zero")).unwrap(),
            NOT_A_FILE
        );
    }

    #[test]
    fn sealing_writes_env_lines_and_puts_only_digests_in_the_model() {
        let mut instance = instance();
        let files = seal(&mut instance, &values(), &key(7));
        assert_eq!(files.len(), 1, "only services with secrets get a file");
        assert_eq!(files[0].name, "db.env");
        assert_eq!(
            files[0].text,
            "POSTGRES_PASSWORD=p@ss word=\"x\"\nTOKEN=#not a comment\n"
        );
        let digest = instance.services[0].secrets[0].digest.clone().unwrap();
        assert!(digest.starts_with("hmac-sha256:"));
        assert!(!format!("{instance:?}").contains("p@ss"));
        assert!(!format!("{:?} {files:?}", values()).contains("p@ss"));
    }

    #[test]
    fn the_store_installs_private_files_restores_and_prunes() {
        let state = tempfile::tempdir().unwrap();
        let store = Store::new(state.path(), "blog-live");
        let mut instance = instance();
        let first = seal(&mut instance, &values(), &key(7));
        store.install(&first).unwrap();
        let path = env_file(state.path(), "blog-live", "db");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(store.dir()), 0o700);

        let mut changed = values();
        changed.0.insert("token".into(), "new".into());
        let second = seal(&mut instance, &changed, &key(7));
        let previous = store.install(&second).unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("TOKEN=new"));
        store.restore(&previous).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), first[0].text);
        assert_eq!(mode(&path), 0o600);

        store.prune(&[]).unwrap();
        assert!(!path.exists());
        let created = Key::load_or_create(store.dir()).unwrap();
        assert_eq!(mode(&store.dir().join(KEY_FILE)), 0o600);
        assert_eq!(Key::load_or_ephemeral(store.dir()).unwrap().0, created.0);
        store.install(&first).unwrap();
        store.remove_values().unwrap();
        assert!(!path.exists());
        assert_eq!(Key::load_or_ephemeral(store.dir()).unwrap().0, created.0);
    }
}
