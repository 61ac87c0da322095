//! `unitgen history INSTANCE`: the revisions recorded on this host, when
//! each was applied and what it changed, service by service. `rollback --to
//! N` takes these numbers.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;

use clap::Args;
use miette::{Result, miette};
use serde::Serialize;

use super::fleet::FleetArgs;
use super::host::HostArgs;
use super::output::showln;
use super::{FileArgs, Outcome, when};
use crate::render::{self, UnitFile};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The instance.
    pub instance: String,
    #[command(flatten)]
    pub template: FileArgs,
    #[command(flatten)]
    pub host: HostArgs,
    // Refused: revisions are recorded per host, not on fleet.
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Print JSON (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Entry {
    revision: u64,
    /// ISO 8601, UTC, in JSON.
    #[serde(serialize_with = "when::serialize_iso")]
    applied_at: u64,
    /// Set when this revision re-applied an earlier one.
    rollback_of: Option<u64>,
    /// The last revision: what the host was last brought to.
    current: bool,
    added: Vec<String>,
    changed: Vec<String>,
    removed: Vec<String>,
}

pub fn run(args: HistoryArgs) -> Result<Outcome> {
    if args.fleet.fleet {
        return Err(super::fleet::refuse_revisions("history"));
    }
    let (app, instance) = args.template.app_and_instance(&args.instance)?;
    let name = crate::model::prefix(&app, &instance);
    let state = args.host.state(&app, &instance)?;
    let infos = state
        .revisions()
        .map_err(|e| miette!("reading revisions of {name}: {e}"))?;
    let mut entries = Vec::new();
    let mut before: BTreeMap<String, String> = BTreeMap::new();
    for (i, info) in infos.iter().enumerate() {
        let revision = state
            .load(info.number)
            .map_err(|e| miette!("reading revision {} of {name}: {e}", info.number))?;
        let now = parts(&revision.units);
        let mut entry = Entry {
            revision: info.number,
            applied_at: info.applied_at,
            rollback_of: info.rollback_of,
            current: i + 1 == infos.len(),
            added: Vec::new(),
            changed: Vec::new(),
            removed: Vec::new(),
        };
        for (part, text) in &now {
            match before.get(part) {
                None => entry.added.push(part.clone()),
                Some(old) if old != text => entry.changed.push(part.clone()),
                Some(_) => {}
            }
        }
        entry.removed = before
            .keys()
            .filter(|part| !now.contains_key(*part))
            .cloned()
            .collect();
        entries.push(entry);
        before = now;
    }

    // No revision: never applied here (a destroy keeps them). Exits 4, as `status`
    // does for an instance that is not installed.
    let outcome = if entries.is_empty() {
        Outcome::NotInstalled
    } else {
        Outcome::Clean
    };
    if args.json {
        super::output::json(&entries)?;
        return Ok(outcome);
    }
    if entries.is_empty() {
        showln!("{name} has no recorded revision on this host")?;
        return Ok(outcome);
    }
    let terminal = std::io::stdout().is_terminal();
    let now = when::now();
    showln!("{:<9} {:<21} CHANGES", "REVISION", "APPLIED")?;
    for entry in &entries {
        let applied = if terminal {
            when::ago(entry.applied_at, now)
        } else {
            when::iso(entry.applied_at)
        };
        let mut what = Vec::new();
        if let Some(of) = entry.rollback_of {
            what.push(format!("rollback to {of}:"));
        }
        for (verb, parts) in [
            ("added", &entry.added),
            ("changed", &entry.changed),
            ("removed", &entry.removed),
        ] {
            if !parts.is_empty() {
                what.push(format!("{verb} {}", parts.join(", ")));
            }
        }
        if what.is_empty() || what.len() == 1 && entry.rollback_of.is_some() {
            what.push("no change".to_string());
        }
        if entry.current {
            what.push("(current)".to_string());
        }
        showln!("{:<9} {applied:<21} {}", entry.revision, what.join(" "))?;
    }
    Ok(Outcome::Clean)
}

/// The parts of an instance a revision's units make, with their text: a
/// service (its unit and its sidekick together), `network`, `target`.
fn parts(units: &[UnitFile]) -> BTreeMap<String, String> {
    let mut parts: BTreeMap<String, String> = BTreeMap::new();
    for unit in units {
        let owner = render::owner(&unit.text).unwrap_or_default();
        let part = match (owner.service, owner.announces) {
            (Some(service), _) | (None, Some(service)) => service,
            (None, None) if unit.name.ends_with(".target") => "target".to_string(),
            (None, None) => "network".to_string(),
        };
        parts.entry(part).or_default().push_str(&unit.text);
    }
    parts
}
