//! The fleet target of `plan`, `apply`, `status` and `destroy` (`--fleet`):
//! the same commands, against fleet's HTTP API instead of one host's systemd.

use std::time::Duration;

use clap::Args;
use miette::{Result, miette};

use super::Outcome;
use super::output::{out, outln};
use super::status::{Announced, print_announced};
use crate::fleet::{self, Action, ApplyOptions, FleetClient, FleetPlan};
use crate::model::Instance;
use crate::plan::unified_diff;
use crate::progress::Progress;
use crate::render::{Flavour, Renderer, UnitFile};
use crate::unit_file;

#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Act on a fleet cluster through fleet's HTTP API instead of this host's
    /// systemd (checked against a live fleet v1.0 by scripts/fleet-live; see
    /// README).
    #[arg(long, conflicts_with_all = ["root", "unit_dir", "state_dir", "bus", "user"])]
    pub fleet: bool,
    /// fleet's API endpoint: `unix:///var/run/fleet.sock` or `http://HOST:PORT`.
    #[arg(
        long,
        value_name = "URL",
        default_value = "unix:///var/run/fleet.sock",
        requires = "fleet"
    )]
    pub endpoint: String,
}

impl FleetArgs {
    fn client(&self) -> Result<FleetClient> {
        FleetClient::new(&self.endpoint).map_err(|e| miette!("{e}"))
    }
}

/// `history` and `rollback` read the revisions `apply` records on a host;
/// fleet keeps none, so with `--fleet` they say so rather than read this
/// host's (or clap's "unexpected argument").
pub fn refuse_revisions(command: &str) -> miette::Report {
    miette!(
        help = "to go back on fleet, apply the earlier template: `unitgen apply INSTANCE --fleet` \
                (a failed apply already puts the last good units back)",
        "`unitgen {command} --fleet`: unitgen records no revisions on fleet, so there is no history to show or roll back to"
    )
}

fn prefix(app: &str, instance: &str) -> String {
    format!("{}-", crate::model::prefix(app, instance))
}

fn fleet_plan(args: &FleetArgs, instance: &Instance) -> Result<(FleetClient, FleetPlan)> {
    let units = Renderer::new(Flavour::Fleet).render(instance);
    let desired: Vec<(String, String)> = units.into_iter().map(|u| (u.name, u.text)).collect();
    let client = args.client()?;
    let plan = fleet::plan(
        &client,
        &prefix(&instance.app, &instance.instance),
        &desired,
        instance.fleet.copies,
    )
    .map_err(|e| miette!("{e}"))?;
    Ok((client, plan))
}

pub fn plan(args: &FleetArgs, instance: &Instance, color: bool) -> Result<Outcome> {
    let (_, plan) = fleet_plan(args, instance)?;
    let text_of = |options: &Option<Vec<unit_file::UnitOption>>, name: &str| UnitFile {
        name: name.to_string(),
        text: options
            .as_deref()
            .map(unit_file::to_text)
            .unwrap_or_default(),
    };
    for unit in &plan.units {
        let copies = unit.copies.len();
        let line = match unit.action {
            Action::Add => format!(
                "+ {} (new: submit{})",
                unit.name,
                if unit.is_template() {
                    ", start copies"
                } else {
                    ""
                }
            ),
            Action::Change
                if unit.current == unit.desired
                    && unit
                        .copies
                        .iter()
                        .all(|c| Some(&c.options) == unit.desired.as_ref()) =>
            {
                format!("~ {} (not running: start the copies below)", unit.name)
            }
            Action::Change => format!(
                "~ {} (changed: roll {copies} running copies one at a time{})",
                unit.name,
                if unit.missing.is_empty() {
                    ""
                } else {
                    ", start the missing ones"
                }
            ),
            Action::Remove => format!(
                "- {} (removed: destroy it and its {copies} copies)",
                unit.name
            ),
            Action::Unchanged => continue,
        };
        outln!("{line}")?;
        if let Some(why) = &unit.unplaceable {
            outln!("    ! it cannot run: {why}")?;
        }
        for copy in &unit.copies {
            if let Some(why) = &copy.not_running {
                outln!("    {} is not running: {why}", copy.name)?;
            }
        }
        if unit.action == Action::Change {
            for instance in &unit.missing {
                outln!(
                    "    {} is missing: fleet has no such copy",
                    unit.name.replacen("@.", &format!("@{instance}."), 1)
                )?;
            }
        }
    }
    let count = |a| plan.with_action(a).count();
    outln!(
        "{} to add, {} to change, {} to remove, {} unchanged",
        count(Action::Add),
        count(Action::Change),
        count(Action::Remove),
        count(Action::Unchanged)
    )?;
    // A unit changed only in what runs has no diff to show.
    for unit in plan
        .with_action(Action::Change)
        .filter(|u| u.current != u.desired)
    {
        outln!()?;
        out!(
            "{}",
            unified_diff(
                &text_of(&unit.current, &unit.name),
                &text_of(&unit.desired, &unit.name),
                color
            )
        )?;
    }
    Ok(if plan.has_changes() {
        Outcome::Differs
    } else {
        Outcome::Clean
    })
}

pub fn apply(args: &FleetArgs, instance: &Instance, wait: Duration) -> Result<Outcome> {
    let (client, plan) = fleet_plan(args, instance)?;
    let progress = Progress::default();
    let name = instance.prefix();
    if !plan.has_changes() {
        progress.line(&format!(
            "{name} is up to date in fleet ({})",
            client.endpoint()
        ));
        return Ok(Outcome::Clean);
    }
    let options = ApplyOptions {
        wait_timeout: wait,
        ..ApplyOptions::default()
    };
    fleet::apply(&client, &plan, &options, &mut |step: &str| {
        progress.line(&format!("  {step}"))
    })
    .map_err(|e| miette!("apply of {name} to fleet failed: {e}"))?;
    progress.line(&format!(
        "{name} is up to date in fleet ({})",
        client.endpoint()
    ));
    Ok(Outcome::Clean)
}

pub fn status(args: &FleetArgs, app: &str, instance: &str, json: bool) -> Result<Outcome> {
    let client = args.client()?;
    let units = fleet::status(&client, &prefix(app, instance)).map_err(|e| miette!("{e}"))?;
    // As the host target's status: 4 when fleet has nothing of the
    // instance, 3 when some of it does not run.
    let outcome = if units.is_empty() {
        Outcome::NotInstalled
    } else if units.iter().any(|u| u.not_running.is_some()) {
        Outcome::NotRunning
    } else {
        Outcome::Clean
    };
    // What each sidekick template says it announces, read from etcd as the
    // host target's status does.
    let announced: Vec<(String, Announced)> = units
        .iter()
        .filter(|u| u.name.contains("@."))
        .filter_map(|u| crate::render::owner(&unit_file::to_text(&u.options)))
        .filter_map(|owner| Some((owner.announces.clone()?, Announced::read(&owner)?)))
        .collect();
    if json {
        let rows: Vec<serde_json::Value> = units
            .iter()
            .map(|u| {
                serde_json::json!({
                    "unit": u.name,
                    "desired_state": u.desired_state,
                    "current_state": u.current_state,
                    "machine_id": u.machine_id,
                    "systemd": u.systemd,
                    "not_running": u.not_running,
                })
            })
            .collect();
        let announced: serde_json::Map<String, serde_json::Value> = announced
            .iter()
            .map(|(service, a)| {
                (
                    service.clone(),
                    serde_json::to_value(a).expect("serializes"),
                )
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "units": rows,
                "announced": announced,
            }))
            .expect("status serializes")
        )?;
        return Ok(outcome);
    }
    outln!(
        "{:<40} {:<10} {:<10} {:<32} SYSTEMD",
        "UNIT",
        "DESIRED",
        "CURRENT",
        "MACHINE"
    )?;
    for unit in &units {
        let state = |s: Option<fleet::JobState>| s.map_or("-", |s| s.as_str());
        let systemd = unit.systemd.as_ref().map_or("-".to_string(), |s| {
            format!("{} ({})", s.systemd_active_state, s.systemd_sub_state)
        });
        outln!(
            "{:<40} {:<10} {:<10} {:<32} {systemd}",
            unit.name,
            state(unit.desired_state),
            state(unit.current_state),
            unit.machine_id,
        )?;
    }
    for (service, announcement) in &announced {
        outln!("{service}:")?;
        print_announced(announcement)?;
    }
    for unit in &units {
        if let Some(why) = &unit.not_running {
            outln!("! {} is not running: {why}", unit.name)?;
        }
    }
    Ok(outcome)
}

pub fn destroy(args: &FleetArgs, app: &str, instance: &str) -> Result<Outcome> {
    let client = args.client()?;
    let progress = Progress::default();
    let options = ApplyOptions::default();
    let mut step = |step: &str| progress.line(&format!("  {step}"));
    let destroyed = fleet::destroy(&client, &prefix(app, instance), &options, &mut step)
        .map_err(|e| miette!("{e}"))?;
    // fleet unloads a destroyed unit's file before systemd stops it, so no
    // ExecStopPost of the copies runs: a one-shot unit on every machine
    // removes the instance network once the containers are gone.
    let cleanup =
        Renderer::new(Flavour::Fleet).fleet_cleanup_unit(app, instance, &destroyed.metadata);
    let unit = unit_file::parse(&cleanup.text).expect("the cleanup unit parses");
    fleet::run_everywhere(&client, &cleanup.name, &unit, &options, &mut step).map_err(|e| {
        miette!(
            "{app}-{instance}: {} units destroyed in fleet, but the Docker network may be left: {e}",
            destroyed.units.len()
        )
    })?;
    progress.line(&format!(
        "{app}-{instance}: {} units destroyed in fleet, its network removed from every machine",
        destroyed.units.len()
    ));
    Ok(Outcome::Clean)
}
