//! What would change: the units an instance renders to, against the units
//! installed for it. Pure: comparing texts, showing diffs.

use std::fmt::Write as _;

use similar::{ChangeTag, TextDiff};

use crate::render::{UnitFile, digest_matches};

#[derive(Debug, Clone)]
pub struct Changed {
    pub old: UnitFile,
    pub new: UnitFile,
}

/// A unit whose text is unchanged but whose container runs another image
/// than its image reference names on this host now (the tag moved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub unit: String,
    pub image: String,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub add: Vec<UnitFile>,
    pub change: Vec<Changed>,
    pub remove: Vec<UnitFile>,
    /// Units whose text is identical: left alone, containers keep running.
    pub keep: Vec<String>,
    /// Unchanged units whose image tag moved: restarted onto the new image.
    pub moved: Vec<Moved>,
    /// Installed units whose text no longer matches the digest unitgen
    /// wrote into them: someone edited them by hand, and applying will
    /// overwrite (or remove) that edit.
    pub hand_edited: Vec<String>,
}

impl Plan {
    pub fn new(installed: &[UnitFile], desired: &[UnitFile]) -> Plan {
        let mut plan = Plan::default();
        for unit in desired {
            match installed.iter().find(|i| i.name == unit.name) {
                None => plan.add.push(unit.clone()),
                Some(old) if old.text == unit.text => plan.keep.push(unit.name.clone()),
                Some(old) => plan.change.push(Changed {
                    old: old.clone(),
                    new: unit.clone(),
                }),
            }
        }
        for unit in installed {
            if !desired.iter().any(|d| d.name == unit.name) {
                plan.remove.push(unit.clone());
            }
            if !digest_matches(&unit.text) {
                plan.hand_edited.push(unit.name.clone());
            }
        }
        plan
    }

    /// Marks unchanged units whose image moved (see [`crate::pull::moved`]):
    /// they are restarted rather than kept.
    pub fn with_moved(mut self, moved: Vec<Moved>) -> Plan {
        self.keep
            .retain(|unit| !moved.iter().any(|m| &m.unit == unit));
        self.moved = moved;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_empty()
            && self.change.is_empty()
            && self.remove.is_empty()
            && self.moved.is_empty()
    }

    /// Whether nothing of the instance is installed yet (a first apply).
    pub fn installs_from_nothing(&self) -> bool {
        self.keep.is_empty()
            && self.change.is_empty()
            && self.remove.is_empty()
            && self.moved.is_empty()
    }

    /// One line: how many units are added, changed, removed and kept.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            format!(
                "no changes: {} up to date",
                crate::progress::count(self.keep.len(), "unit")
            )
        } else {
            let moved = if self.moved.is_empty() {
                String::new()
            } else {
                format!(", {} to restart (image moved)", self.moved.len())
            };
            format!(
                "{} to add, {} to change, {} to remove{moved}, {} unchanged",
                self.add.len(),
                self.change.len(),
                self.remove.len(),
                self.keep.len()
            )
        }
    }

    /// The plan as a reviewer reads it: one line per unit, then the diff of
    /// every changed unit. `color` adds ANSI colours (for a terminal).
    pub fn describe(&self, color: bool) -> String {
        let paint = |code: &str, text: &str| {
            if color {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_string()
            }
        };
        let mut out = String::new();
        for unit in &self.add {
            let _ = writeln!(
                out,
                "{} {} (new: enable and start)",
                paint("32", "+"),
                unit.name
            );
        }
        for change in &self.change {
            let _ = writeln!(
                out,
                "{} {} (changed: restart)",
                paint("33", "~"),
                change.new.name
            );
        }
        for moved in &self.moved {
            let _ = writeln!(
                out,
                "{} {} (image {} moved: restart onto it)",
                paint("33", "~"),
                moved.unit,
                moved.image
            );
        }
        for unit in &self.remove {
            let _ = writeln!(
                out,
                "{} {} (removed: stop, disable, delete)",
                paint("31", "-"),
                unit.name
            );
        }
        let _ = writeln!(out, "{}", self.summary());
        for name in &self.hand_edited {
            let _ = writeln!(
                out,
                "{} {name} was edited by hand since unitgen wrote it: applying overwrites the edit",
                paint("31", "!")
            );
        }
        for change in &self.change {
            out.push('\n');
            out.push_str(&unified_diff(&change.old, &change.new, color));
        }
        out
    }
}

/// A unified diff of one unit, `git diff` style. The `Digest=` line is left
/// out: it changes whenever anything above it does, so it would add a hunk
/// to every diff and tell the reviewer nothing.
pub fn unified_diff(old: &UnitFile, new: &UnitFile, color: bool) -> String {
    let (old_text, new_text) = (without_digest(&old.text), without_digest(&new.text));
    let diff = TextDiff::from_lines(old_text, new_text);
    let mut out = String::new();
    let header = format!("--- {}\n+++ {}\n", old.name, new.name);
    out.push_str(&if color {
        format!("\x1b[1m{header}\x1b[0m")
    } else {
        header
    });
    for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        let head = hunk.header().to_string();
        let _ = writeln!(
            out,
            "{}",
            if color {
                format!("\x1b[36m{head}\x1b[0m")
            } else {
                head
            }
        );
        for change in hunk.iter_changes() {
            let (sign, code) = match change.tag() {
                ChangeTag::Delete => ("-", "31"),
                ChangeTag::Insert => ("+", "32"),
                ChangeTag::Equal => (" ", ""),
            };
            let line = format!("{sign}{}", change.value().trim_end_matches('\n'));
            if color && !code.is_empty() {
                let _ = writeln!(out, "\x1b[{code}m{line}\x1b[0m");
            } else {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

/// A unit's text up to its `Digest=` line (the whole text if it has none).
fn without_digest(text: &str) -> &str {
    match text.rfind(&format!("\n{}", crate::render::DIGEST_KEY)) {
        Some(pos) => &text[..=pos],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, text: &str) -> UnitFile {
        UnitFile {
            name: name.into(),
            text: text.into(),
        }
    }

    #[test]
    fn sorts_units_into_add_change_remove_keep() {
        let installed = [unit("a", "1\n"), unit("b", "1\n"), unit("c", "1\n")];
        let desired = [unit("a", "1\n"), unit("b", "2\n"), unit("d", "1\n")];
        let plan = Plan::new(&installed, &desired);
        assert_eq!(plan.keep, ["a"]);
        assert_eq!(plan.change[0].new.name, "b");
        assert_eq!(plan.remove[0].name, "c");
        assert_eq!(plan.add[0].name, "d");
        assert!(!plan.is_empty());
        assert!(Plan::new(&installed, &installed).is_empty());
    }

    #[test]
    fn notices_units_edited_by_hand() {
        let good = UnitFile {
            name: "a.service".into(),
            text: format!("[Unit]\n{}", crate::render::DIGEST_KEY)
                + &crate::render::content_digest("[Unit]\n")
                + "\n",
        };
        let mut edited = good.clone();
        edited.text = edited.text.replace("[Unit]", "[Unit]\nNice=5");
        assert!(
            Plan::new(std::slice::from_ref(&good), std::slice::from_ref(&good))
                .hand_edited
                .is_empty()
        );
        let plan = Plan::new(&[edited], &[good]);
        assert_eq!(plan.hand_edited, ["a.service"]);
        assert!(
            plan.describe(false)
                .contains("! a.service was edited by hand")
        );
    }

    #[test]
    fn describes_changes_with_a_line_diff() {
        let installed = [unit("web.service", "[Service]\nA=1\nB=2\n")];
        let desired = [unit("web.service", "[Service]\nA=1\nB=3\n")];
        let text = Plan::new(&installed, &desired).describe(false);
        assert!(text.contains("~ web.service (changed: restart)"));
        assert!(text.contains("-B=2\n+B=3\n"), "{text}");
        let digests = Plan::new(
            &[unit(
                "web.service",
                "[Service]\nA=1\nB=2\nDigest=sha256:1\n",
            )],
            &[unit(
                "web.service",
                "[Service]\nA=1\nB=3\nDigest=sha256:2\n",
            )],
        )
        .describe(false);
        assert!(digests.contains("+B=3\n"), "{digests}");
        assert!(!digests.contains("Digest="), "no digest hunk: {digests}");
        assert!(!text.contains("\x1b["), "no colour unless asked");
        assert!(
            Plan::new(&installed, &desired)
                .describe(true)
                .contains("\x1b[32m+B=3")
        );
    }
}
