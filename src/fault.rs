//! Fault injection, for tests only: `UNITGEN_FAULT=<point>` makes unitgen
//! abort at that point of a command, as a `kill -9` would (no destructor
//! runs, nothing is cleaned up), so tests can check that the next command
//! repairs whatever was left half done. Unset, a point costs one lookup of
//! the environment.
//!
//! The points of an apply, in the order it passes them: `after-intent`,
//! `after-stop`, `after-write-units`, `after-enable`, `after-reload`,
//! `after-start`, `before-record`, `after-record`; with a routed service
//! (`systemd::handover`), `after-switch` comes before `after-intent`; with
//! a changed router, `after-router-write` comes after `after-record`. A
//! rollback passes the same points (with the stand-ins kept with its
//! revision, `after-switch` too; no router); a `restart` of a routed
//! service passes `after-switch` alone. A site's apply passes each
//! instance's points in turn: `after-record` ends it between the first
//! instance and the next.
//!
//! A destroy's: `after-intent` (its intent recorded, nothing changed),
//! `after-stop` (its units stopped and disabled, their files still there),
//! `after-remove-units` (the files deleted, systemd not reloaded), with
//! routes `after-unroute` (the router's copies removed, the router too when
//! it served no other instance), `after-remove-secrets`, and with
//! `--volumes` `after-remove-volumes` (before the state folder goes).
//!
//! A restore's: `after-intent` (its record written, nothing changed),
//! `after-stop` (the services stopped), `after-restore-volume` (after each
//! volume refilled, the first one first), `after-restore-dump` (after each
//! dump read back), `after-start` (everything started again, its record not
//! yet removed).
//!
//! Any atomic write that replaces a file: `before-rename:<file name>` (the
//! new text whole under a temporary name, not yet renamed over the file),
//! e.g. `before-rename:db.env`. A new file has no such moment: it is linked
//! whole under its own name.

/// The variable that names the point to abort at.
pub const VAR: &str = "UNITGEN_FAULT";

/// Aborts the process here if `UNITGEN_FAULT` names this point.
pub fn point(name: &str) {
    if std::env::var_os(VAR).is_some_and(|v| v == name) {
        eprintln!("{VAR}={name}: aborting here (test-only fault injection)");
        std::process::abort();
    }
}

/// The point between writing `path`'s temporary file and renaming it over
/// `path`: `before-rename:<file name>`.
pub fn before_rename(path: &std::path::Path) {
    if let (Some(fault), Some(name)) = (std::env::var_os(VAR), path.file_name()) {
        let mut point = std::ffi::OsString::from("before-rename:");
        point.push(name);
        if fault == point {
            eprintln!(
                "{VAR}={}: aborting here (test-only fault injection)",
                point.display()
            );
            std::process::abort();
        }
    }
}
