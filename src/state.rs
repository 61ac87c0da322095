//! The state directory (`/var/lib/unitgen` by default): for each instance,
//! the revisions applied to this host and a lock that keeps two applies of
//! one instance from interleaving.
//!
//! ```text
//! /var/lib/unitgen/blog-staging/
//!   lock                    held (flock) while a command changes the instance
//!   revisions/0003/         one folder per successful apply
//!     revision.json         number, time, inputs digest, volumes
//!     blog-staging-web.service ...   the units exactly as applied
//! ```

use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::render::UnitFile;
use crate::unit_dir::write_atomic;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/unitgen";

/// What a revision records beside its unit files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevisionInfo {
    pub number: u32,
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
    pub rollback_of: Option<u32>,
}

/// What a revision records besides its units.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub inputs: String,
    pub volumes: Vec<String>,
    pub rollback_of: Option<u32>,
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
    _file: File,
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

    /// Takes the instance's lock. If another unitgen holds it, says so
    /// through `waiting` and waits for it: two applies never interleave.
    pub fn lock(&self, waiting: impl FnOnce()) -> std::io::Result<Lock> {
        // Root-only: revisions show how services are set up, and secrets
        // live here too.
        if let Some(state_dir) = self.dir.parent() {
            create_private_dir(state_dir)?;
        }
        create_private_dir(&self.dir)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("lock"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                waiting();
                file.lock()?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        Ok(Lock { _file: file })
    }

    fn revisions_dir(&self) -> PathBuf {
        self.dir.join("revisions")
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
            let info: RevisionInfo = serde_json::from_str(&text)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
            infos.push(info);
        }
        infos.sort_by_key(|i| i.number);
        Ok(infos)
    }

    pub fn load(&self, number: u32) -> std::io::Result<Revision> {
        let dir = self.revisions_dir().join(format!("{number:04}"));
        let info: RevisionInfo =
            serde_json::from_str(&fs::read_to_string(dir.join("revision.json"))?)
                .map_err(std::io::Error::other)?;
        let mut units = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".service") || name.ends_with(".target") {
                units.push(UnitFile {
                    text: fs::read_to_string(entry.path())?,
                    name,
                });
            }
        }
        units.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Revision { info, units })
    }

    /// Records a successful apply as the next revision.
    pub fn record(
        &self,
        units: &[UnitFile],
        provenance: Provenance,
    ) -> std::io::Result<RevisionInfo> {
        let number = self.revisions()?.last().map_or(1, |r| r.number + 1);
        let dir = self.revisions_dir().join(format!("{number:04}"));
        // Written into a temporary folder and renamed, so a crash never
        // leaves a half-recorded revision.
        let tmp = self.revisions_dir().join(format!(".{number:04}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        for unit in units {
            write_atomic(&tmp.join(&unit.name), unit.text.as_bytes())?;
        }
        let info = RevisionInfo {
            number,
            applied_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            digest: units_digest(units),
            inputs: provenance.inputs,
            volumes: provenance.volumes,
            rollback_of: provenance.rollback_of,
        };
        let json = serde_json::to_string_pretty(&info).map_err(std::io::Error::other)?;
        write_atomic(&tmp.join("revision.json"), json.as_bytes())?;
        fs::rename(&tmp, &dir)?;
        Ok(info)
    }

    /// Forgets the instance (after destroy): its revisions and lock.
    pub fn remove(&self) -> std::io::Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Creates `dir` (and missing parents) as 0700, and makes an existing one
/// 0700 (state folders of older versions were 0755).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
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
        // App names have no `-`: the first one ends the app.
        if let Some((app, instance)) = name.split_once('-') {
            found.push((app.to_string(), instance.to_string()));
        }
    }
    found.sort();
    Ok(found)
}

/// One digest over all of an instance's units (names and texts).
pub fn units_digest(units: &[UnitFile]) -> String {
    let mut all = String::new();
    for unit in units {
        all.push_str(&unit.name);
        all.push('\0');
        all.push_str(&unit.text);
        all.push('\0');
    }
    crate::render::content_digest(&all)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            )
            .unwrap();
        let second = state
            .record(
                &units,
                Provenance {
                    rollback_of: Some(1),
                    ..Provenance::default()
                },
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
    fn a_second_lock_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        // A state folder left 0755 by an older version is made root-only.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let state = InstanceState::new(dir.path(), "blog", "live");
        let held = state.lock(|| panic!("nobody holds it yet")).unwrap();
        for dir in [dir.path().to_path_buf(), dir.path().join("blog-live")] {
            let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{} is root-only", dir.display());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let state = InstanceState::new(&path, "blog", "live");
            let _lock = state.lock(|| tx.send("waiting").unwrap()).unwrap();
        });
        assert_eq!(rx.recv().unwrap(), "waiting");
        drop(held);
        waiter.join().unwrap();
    }
}
