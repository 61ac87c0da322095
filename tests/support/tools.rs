//! Tools the tests run that scripts/testbed.sh installs outside the
//! repository (octoDNS in a venv, Mermaid's parser from npm), found under
//! `$UNITGEN_TEST_TOOLS` (default /opt/unitgen-testbed), and Debian's.

use std::path::PathBuf;

/// The folder scripts/testbed.sh installs into.
pub fn dir() -> PathBuf {
    std::env::var_os("UNITGEN_TEST_TOOLS")
        .map_or_else(|| "/opt/unitgen-testbed".into(), PathBuf::from)
}

/// A file under [`dir`], which must be there: a missing tool fails the
/// test (it does not skip it) and says how to install it.
pub fn path(relative: &str) -> PathBuf {
    let path = dir().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/testbed.sh",
        path.display()
    );
    path
}

/// A program of the system's (a Debian package's), which must be there.
pub fn system(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("{program} is missing: run scripts/testbed.sh"))
}
