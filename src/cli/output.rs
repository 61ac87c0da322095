//! Writing rendered units to a folder: atomically, touching only what
//! changed, and removing this instance's stale units.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::render;
use crate::render::UnitFile;

/// What differs between a folder and a set of rendered units.
#[derive(Debug, Default)]
pub struct FolderDiff {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    /// This instance's units in the folder that are no longer rendered.
    pub stale: Vec<String>,
}

impl FolderDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.stale.is_empty()
    }
}

/// Compares `units` with the files in `dir` that belong to `app`/`instance`.
pub fn diff_folder(
    dir: &Path,
    app: &str,
    instance: &str,
    units: &[UnitFile],
) -> std::io::Result<FolderDiff> {
    let mut diff = FolderDiff::default();
    for unit in units {
        match fs::read_to_string(dir.join(&unit.name)) {
            Ok(text) if text == unit.text => {}
            Ok(_) => diff.changed.push(unit.name.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                diff.added.push(unit.name.clone())
            }
            Err(e) => return Err(e),
        }
    }
    for name in owned_units(dir, app, instance)? {
        if !units.iter().any(|u| u.name == name) {
            diff.stale.push(name);
        }
    }
    Ok(diff)
}

/// Unit files in `dir` that unitgen generated for this app and instance,
/// told apart by their `[X-Unitgen]` section.
pub fn owned_units(dir: &Path, app: &str, instance: &str) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".service") || !entry.file_type()?.is_file() {
            continue;
        }
        let Ok(text) = fs::read_to_string(entry.path()) else {
            continue;
        };
        if render::owner(&text).is_some_and(|o| o.app == app && o.instance == instance) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Applies a diff: writes added and changed units, removes stale ones.
pub fn write_folder(dir: &Path, units: &[UnitFile], diff: &FolderDiff) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for unit in units {
        if diff.added.contains(&unit.name) || diff.changed.contains(&unit.name) {
            write_atomic(&dir.join(&unit.name), unit.text.as_bytes())?;
        }
    }
    for name in &diff.stale {
        fs::remove_file(dir.join(name))?;
    }
    Ok(())
}

/// Writes through a temporary file in the same folder and renames it over
/// the target, so a reader sees the old file or the new one, never half.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".unitgen-")
        .tempfile_in(&dir)?;
    tmp.write_all(contents)?;
    // tempfile creates 0600; unit files are world-readable like any in /etc.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
