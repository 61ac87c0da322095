//! Fault injection, for tests only: `UNITGEN_FAULT=<point>` makes unitgen
//! abort at that point of an apply, as a `kill -9` would (no destructor
//! runs, nothing is cleaned up), so tests can check that the next apply
//! repairs whatever was left half done. Unset, a point costs one lookup of
//! the environment.
//!
//! The points, in the order an apply passes them: `after-intent`,
//! `after-stop`, `after-write-units`, `after-enable`, `after-reload`,
//! `after-start`, `before-record`, `after-record`; with a routed service
//! (`systemd::handover`), `after-switch` comes before `after-intent`; with
//! a changed router, `after-router-write` comes after `after-record`.

/// The variable that names the point to abort at.
pub const VAR: &str = "UNITGEN_FAULT";

/// Aborts the process here if `UNITGEN_FAULT` names this point.
pub fn point(name: &str) {
    if std::env::var_os(VAR).is_some_and(|v| v == name) {
        eprintln!("{VAR}={name}: aborting here (test-only fault injection)");
        std::process::abort();
    }
}
