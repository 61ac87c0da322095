//! A folder of unit files: `render --out`'s folder, or systemd's unit
//! directory on apply. Reads back the units unitgen wrote for an instance
//! and writes new ones atomically.

use std::fs;
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
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
/// An error names the file (a full or read-only folder fails on one).
pub fn write_plan(dir: &Path, plan: &Plan) -> std::io::Result<()> {
    fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
    sweep_leftovers(dir).map_err(|e| at(dir, e))?;
    for unit in plan.add.iter().chain(plan.change.iter().map(|c| &c.new)) {
        let path = dir.join(&unit.name);
        write_atomic(&path, unit.text.as_bytes()).map_err(|e| at(&path, e))?;
    }
    for unit in &plan.remove {
        let path = dir.join(&unit.name);
        remove_if_exists(&path).map_err(|e| at(&path, e))?;
    }
    Ok(())
}

/// `e` as it happened to `path`: "writing PATH: No space left on device".
pub fn at(path: &Path, e: std::io::Error) -> std::io::Error {
    let shown = crate::diagnostic::shown_path(path);
    std::io::Error::new(e.kind(), format!("writing {shown}: {e}"))
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

/// [`write_atomic`] with the file's mode. The file is written without a
/// name (`O_TMPFILE`), made `mode` before anything is written, and only
/// linked into the folder once whole: a kill while it is written leaves
/// nothing behind, not a `.unitgen-*` file the user could take for theirs
/// (and commit, out of `render --out`'s folder). A new file is linked under
/// its own name; one replaced is linked under a temporary name and renamed
/// over it, which a kill can split: [`sweep_leftovers`] removes what that
/// left. Where the folder's file system has no `O_TMPFILE`, the temporary
/// file is named from the start.
pub fn write_atomic_mode(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    write_staged(path, dir, contents, mode)
}

/// [`write_atomic`] for a file in a folder that a program watches: the
/// temporary file is named in `staging`, a folder on the same file system
/// outside the watched one (its leftovers swept there), and renamed into
/// place, so that the watched folder sees one change, the file whole.
/// Why: Traefik reloads its whole folder at every change and applies at
/// most one change per 2 s (`providersThrottleDuration`), so a temporary
/// file appearing there first held the real change back those 2 s (seen:
/// a switch of the routes applied 2-3 s after it was written, rather than
/// within half a second).
pub fn write_atomic_watched(path: &Path, staging: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_staged(path, staging, contents, 0o644)
}

/// [`write_atomic_mode`], the temporary file in `dir`.
fn write_staged(path: &Path, dir: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let file = match fs::OpenOptions::new()
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(file) => file,
        // No O_TMPFILE here (EOPNOTSUPP; EISDIR before Linux 3.11).
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
            return write_named(dir, path, contents, mode);
        }
        Err(e) => return Err(e),
    };
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    (&file).write_all(contents)?;
    file.sync_all()?;
    // Writers of one folder take turns, so that a sweep never takes the
    // temporary file of a write under way.
    let _turn = folder_lock(dir)?;
    let unnamed = Path::new("/proc/self/fd").join(file.as_raw_fd().to_string());
    match link(&unnamed, path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        // No /proc: written again, named from the start.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !unnamed.exists() => {
            drop(_turn);
            return write_named(dir, path, contents, mode);
        }
        Err(e) => return Err(e),
    }
    let temporary = dir.join(format!("{TEMP_PREFIX}{}", random_suffix()));
    link(&unnamed, &temporary)?;
    crate::fault::before_rename(path);
    fs::rename(&temporary, path).inspect_err(|_| {
        let _ = fs::remove_file(&temporary);
    })
}

/// The temporary file named from the start, renamed over `path`.
fn write_named(dir: &Path, path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    crate::fault::before_rename(path);
    let _turn = folder_lock(dir)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `linkat(2)` through `/proc/self/fd`, which gives an `O_TMPFILE` file a
/// name without the privilege `AT_EMPTY_PATH` needs.
fn link(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both are NUL-terminated strings that outlive the call.
    let done = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap_or_default();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An exclusive lock on the folder itself (`flock` on it), held while a
/// file is linked or renamed into it, or leftovers swept.
fn folder_lock(dir: &Path) -> std::io::Result<fs::File> {
    let folder = fs::File::open(dir)?;
    folder.lock()?;
    Ok(folder)
}

/// Removes the temporary files that writes killed between linking and
/// renaming left in `dir` (each a whole copy of a file, under a name of
/// ours). Called by the commands that write a folder of files, before
/// they write it.
pub fn sweep_leftovers(dir: &Path) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let _turn = folder_lock(dir)?;
    for entry in entries {
        let entry = entry?;
        let ours = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
        if ours && entry.file_type()?.is_file() {
            remove_if_exists(&entry.path())?;
        }
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt as _;

    use super::*;

    /// The names in `dir` that `action` created, wrote, moved or removed,
    /// in order, as inotify tells a program that watches the folder
    /// (Traefik's file provider is one).
    pub(crate) fn changes_seen(dir: &Path, action: impl FnOnce()) -> Vec<String> {
        // SAFETY: plain system calls on a descriptor this function owns.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let path = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let mask = libc::IN_CREATE
            | libc::IN_MODIFY
            | libc::IN_CLOSE_WRITE
            | libc::IN_MOVED_FROM
            | libc::IN_MOVED_TO
            | libc::IN_DELETE;
        // SAFETY: `path` is NUL-terminated and outlives the call.
        let watch = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) };
        assert!(
            watch >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        action();
        let mut names = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reads at most the buffer's length into it.
            let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
            if read <= 0 {
                break;
            }
            // Each event: wd, mask, cookie, len (4 bytes each), then `len`
            // bytes of NUL-padded name.
            let mut at = 0;
            while at + 16 <= read as usize {
                let len = u32::from_ne_bytes(buffer[at + 12..at + 16].try_into().unwrap()) as usize;
                let name = &buffer[at + 16..at + 16 + len];
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                names.push(String::from_utf8_lossy(name).into_owned());
                at += 16 + len;
            }
        }
        // SAFETY: closes the descriptor opened above, once.
        unsafe { libc::close(fd) };
        names
    }

    #[test]
    fn a_watched_folder_sees_only_the_file_a_staged_write_puts_there() {
        let router = tempfile::tempdir().unwrap();
        let watched = router.path().join("dynamic");
        fs::create_dir(&watched).unwrap();
        let file = watched.join("blog-live.yaml");
        let seen = changes_seen(&watched, || {
            write_atomic_watched(&file, router.path(), b"one\n").unwrap();
            write_atomic_watched(&file, router.path(), b"two\n").unwrap();
        });
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|name| name == "blog-live.yaml"), "{seen:?}");
        assert_eq!(fs::read(&file).unwrap(), b"two\n");
        let left: Vec<_> = (fs::read_dir(router.path()).unwrap())
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left, ["dynamic"]);
    }
}
