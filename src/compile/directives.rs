//! The directives systemd knows in the sections `systemd:` may extend, so
//! that a typo (`TimeouvStartSec`) is refused with a suggestion instead of
//! being written into a unit that systemd then loads with a warning.
//!
//! The list is systemd 252's (Debian 12, what unitgen targets and tests
//! against), generated once by `scripts/systemd-directives` and kept in the
//! repository rather than read from the machine at run time: `validate` and
//! `render` must give the same answer on every machine (a reviewer's laptop,
//! CI, a fleet client without systemd), and the units run on the target
//! host, not where unitgen runs. A newer systemd's directive can still be
//! used after regenerating the list.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

static DIRECTIVES: LazyLock<BTreeMap<&'static str, BTreeSet<&'static str>>> = LazyLock::new(|| {
    let mut sections: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut current = None;
    for line in include_str!("systemd_directives.txt").lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            Some(section) => current = Some(section),
            None => {
                let section = current.expect("a directive comes after its section header");
                sections.entry(section).or_default().insert(line);
            }
        }
    }
    sections
});

/// The directives of `section` (`Unit`, `Service` or `Install`).
pub fn known(section: &str) -> impl Iterator<Item = &'static str> {
    DIRECTIVES
        .get(section)
        .into_iter()
        .flat_map(|keys| keys.iter().copied())
}

/// Whether systemd knows `key` in `section`.
pub fn is_known(section: &str, key: &str) -> bool {
    DIRECTIVES
        .get(section)
        .is_some_and(|keys| keys.contains(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_holds_each_section_unitgen_extends() {
        assert!(is_known("Unit", "Documentation"));
        assert!(is_known("Service", "ProtectSystem"));
        assert!(is_known("Service", "TimeoutStartSec"));
        assert!(is_known("Install", "WantedBy"));
        assert!(!is_known("Service", "TimeouvStartSec"));
        assert!(!is_known("Unit", "ProtectSystem"));
        assert!(known("Service").count() > 200);
    }
}
