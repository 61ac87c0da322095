//! `unitgen ls`: every app and instance on this host, from the installed
//! units and the state directory: revision, when applied, services up.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;

use clap::Args;
use miette::{IntoDiagnostic as _, Result, WrapErr as _};
use serde::Serialize;

use super::fleet::FleetArgs;
use super::host::HostArgs;
use super::output::showln;
use super::{Outcome, when};
use crate::state::{self, InstanceState};
use crate::unit_dir;

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub host: HostArgs,
    /// Print JSON (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Serialize)]
struct Row {
    app: String,
    instance: String,
    /// The last revision applied, if any was recorded.
    revision: Option<u64>,
    /// When it was applied (ISO 8601, UTC, in JSON).
    #[serde(serialize_with = "when::serialize_iso_opt")]
    applied_at: Option<u64>,
    /// Units installed (0: only revisions are left, e.g. after destroy).
    units: usize,
    services: usize,
    /// Services whose unit is active; None when systemd could not be asked.
    services_up: Option<usize>,
    /// A destroy was killed (or failed) halfway: what is left of the
    /// instance (its router's copies, secrets, network) is not "not
    /// installed" until `destroy` runs again.
    destroy_unfinished: bool,
    /// The command line that finishes that destroy.
    #[serde(skip)]
    finishing_destroy: Option<String>,
    /// An apply, rollback, destroy or restore is changing the instance right
    /// now (it holds the instance's lock): the counts are midway.
    changing_now: bool,
    /// What in the instance's state folder this unitgen cannot read (a
    /// record a newer unitgen wrote, a damaged revision) or does not know
    /// (a file it never writes): the row may not tell the whole truth.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    state_problems: Vec<String>,
}

pub fn run(args: LsArgs) -> Result<Outcome> {
    if args.fleet.fleet {
        return super::fleet::ls(&args.fleet, args.json);
    }
    let host = args.host.host()?;
    let installed = unit_dir::read_all(&host.unit_dir)
        .into_diagnostic()
        .wrap_err_with(|| {
            format!(
                "reading units in {}",
                crate::diagnostic::shown_path(&host.unit_dir)
            )
        })?;
    let state_dir = args.host.state_dir()?;
    let mut instances: BTreeMap<(String, String), Vec<(String, bool)>> = BTreeMap::new();
    for (app, instance) in state::instances(&state_dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading {}", crate::diagnostic::shown_path(&state_dir)))?
    {
        instances.entry((app, instance)).or_default();
    }
    for (unit, owner) in installed {
        instances
            .entry((owner.app, owner.instance))
            .or_default()
            .push((unit.name, owner.service.is_some()));
    }

    // One call for every service unit of every instance.
    let service_units: Vec<String> = instances
        .values()
        .flatten()
        .filter(|(_, is_service)| *is_service)
        .map(|(unit, _)| unit.clone())
        .collect();
    let active: Option<BTreeMap<String, bool>> = if service_units.is_empty() {
        Some(BTreeMap::new())
    } else {
        match host.connect() {
            Ok(systemd) => match systemd.active_states(&service_units) {
                Ok(states) => Some(
                    service_units
                        .iter()
                        .cloned()
                        .zip(states.iter().map(|s| s == "active"))
                        .collect(),
                ),
                Err(e) => {
                    crate::say!("warning: services up unknown: {e}");
                    None
                }
            },
            Err(failure) => {
                crate::say!("warning: services up unknown: {}", failure.message);
                None
            }
        }
    };

    let mut rows = Vec::new();
    for ((app, instance), units) in instances {
        let state = InstanceState::new(&state_dir, &app, &instance);
        let changing_now = state.changing_now();
        let intent = state.intent();
        let finishing_destroy = (intent.as_ref().ok().cloned().flatten())
            .filter(|_| !changing_now)
            .and_then(|intent| intent.finishing_destroy(&format!("{app}/{instance}")));
        let revisions = state.revisions();
        // Taken for none, a record this unitgen cannot read (a newer
        // one's: a destroy of a kind it does not know, say) made the row
        // say that no command was under way.
        let handover = state.dir().join(crate::systemd::handover::RECORD);
        let state_problems: Vec<String> = [
            intent.as_ref().err().map(ToString::to_string),
            state.restoring().err().map(|e| e.to_string()),
            revisions.as_ref().err().map(ToString::to_string),
            crate::systemd::handover::left(&handover, "an earlier").err(),
            state.unknown_files_note(),
        ]
        .into_iter()
        .flatten()
        .collect();
        // A folder holding nothing but the lock, which `destroy` and
        // `rollback` of an instance never installed here take (a typo:
        // `unitgen destroy stagign`): no instance to list. One whose
        // revisions cannot be read, or with a command's record, is listed.
        if units.is_empty()
            && matches!(&revisions, Ok(revisions) if revisions.is_empty())
            && matches!(intent, Ok(None))
            && state_problems.is_empty()
            && !changing_now
        {
            continue;
        }
        let last = revisions.ok().and_then(|r| r.last().cloned());
        let services: Vec<&String> = units
            .iter()
            .filter(|(_, is_service)| *is_service)
            .map(|(unit, _)| unit)
            .collect();
        rows.push(Row {
            revision: last.as_ref().map(|r| r.number),
            applied_at: last.as_ref().map(|r| r.applied_at),
            units: units.len(),
            services: services.len(),
            services_up: active
                .as_ref()
                .map(|active| services.iter().filter(|u| active[u.as_str()]).count()),
            destroy_unfinished: finishing_destroy.is_some(),
            finishing_destroy,
            changing_now,
            state_problems,
            app,
            instance,
        });
    }

    if args.json {
        super::output::json(&rows)?;
        return Ok(Outcome::Clean);
    }
    if rows.is_empty() {
        showln!(
            "no instance on this host (units in {}, state in {})",
            crate::diagnostic::shown_path(&host.unit_dir),
            crate::diagnostic::shown_path(&state_dir)
        )?;
        return Ok(Outcome::Clean);
    }
    let terminal = std::io::stdout().is_terminal();
    let now = when::now();
    showln!(
        "{:<16} {:<16} {:<9} {:<21} SERVICES",
        "APP",
        "INSTANCE",
        "REVISION",
        "APPLIED"
    )?;
    for row in &rows {
        let applied = match row.applied_at {
            Some(secs) if terminal => when::ago(secs, now),
            Some(secs) => when::iso(secs),
            None => "-".to_string(),
        };
        let services = match (row.units, row.services_up) {
            _ if row.changing_now => "being changed now by another unitgen command".to_string(),
            _ if let Some(destroy) = &row.finishing_destroy => {
                format!("destroy did not finish: `{destroy}` finishes it")
            }
            (0, _) => "not installed (revisions kept)".to_string(),
            (_, Some(up)) => format!("{up}/{} up", row.services),
            (_, None) => format!("?/{}", row.services),
        };
        showln!(
            "{:<16} {:<16} {:<9} {applied:<21} {services}",
            row.app,
            row.instance,
            row.revision.map_or("-".to_string(), |r| r.to_string()),
        )?;
    }
    for row in &rows {
        for problem in &row.state_problems {
            crate::say!("warning: {}-{}: {problem}", row.app, row.instance);
        }
    }
    Ok(Outcome::Clean)
}
