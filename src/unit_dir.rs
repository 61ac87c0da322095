//! A folder of unit files: `render --out`'s folder, or systemd's unit
//! directory on apply. Reads back the units unitgen wrote for an instance
//! and writes new ones atomically.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::plan::Plan;
use crate::render::{self, UnitFile};

/// Unit files in `dir` that unitgen generated for this app and instance,
/// told apart from anything else by their `[X-Unitgen]` section; sorted.
pub fn read_installed(dir: &Path, app: &str, instance: &str) -> std::io::Result<Vec<UnitFile>> {
    let mut units = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(units),
        Err(e) => return Err(e),
    };
    let prefix = crate::model::prefix(app, instance);
    let target = format!("{prefix}.target");
    let prefix = format!("{prefix}-");
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Cheap filter first: only this instance's names can be its units.
        let ours =
            name == target || (name.starts_with(&prefix) && render::is_unit_file_name(&name));
        if !ours || !entry.file_type()?.is_file() {
            continue;
        }
        let text = fs::read_to_string(entry.path())?;
        if render::owner(&text).is_some_and(|o| o.app == app && o.instance == instance) {
            units.push(UnitFile { name, text });
        }
    }
    units.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(units)
}

/// Every unit file in `dir` that unitgen generated, of any app and
/// instance, with its owner; sorted by name.
pub fn read_all(dir: &Path) -> std::io::Result<Vec<(UnitFile, render::Owner)>> {
    let mut units = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(units),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let unit_like = name.ends_with(".service") || name.ends_with(".target");
        if !unit_like || name.starts_with('.') || !entry.file_type()?.is_file() {
            continue;
        }
        let text = fs::read_to_string(entry.path())?;
        if let Some(owner) = render::owner(&text) {
            units.push((UnitFile { name, text }, owner));
        }
    }
    units.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(units)
}

/// Makes `dir` hold what the plan wants: added and changed units written,
/// removed ones deleted. Untouched files keep their bytes and mtime.
pub fn write_plan(dir: &Path, plan: &Plan) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for unit in plan.add.iter().chain(plan.change.iter().map(|c| &c.new)) {
        write_atomic(&dir.join(&unit.name), unit.text.as_bytes())?;
    }
    for unit in &plan.remove {
        remove_if_exists(&dir.join(&unit.name))?;
    }
    Ok(())
}

pub fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes through a temporary file in the same folder and renames it over
/// the target, so a reader (systemd on reload) sees the old file or the new
/// one, never half of one.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    // Unit files are world-readable like any in /etc.
    write_atomic_mode(path, contents, 0o644)
}

/// How the temporary files of [`write_atomic_mode`] start: one a kill left
/// behind is known by it.
pub const TEMP_PREFIX: &str = ".unitgen-";

/// [`write_atomic`] with the file's mode. The temporary file is created
/// 0600 (tempfile's default) and gets `mode` before anything is written.
pub fn write_atomic_mode(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    crate::fault::before_rename(path);
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Fails, changing nothing, unless files can be created in `dir`: asked
/// before an apply touches anything, so that a read-only unit directory
/// stops it while the host is still as it was.
pub fn check_writable(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map(drop)
}
