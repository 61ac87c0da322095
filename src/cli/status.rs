//! `unitgen status`: every service of an instance with its unit state, its
//! container, and what its sidekick announced in etcd.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal as _;

use clap::Args;
use miette::Result;
use serde::Serialize;

use super::fleet::{self, FleetArgs};
use super::host::HostArgs;
use super::output::outln;
use super::{FileArgs, Outcome, when};
use crate::backup::status::{self as backup_status, BackupStatus};
use crate::docker::{self, Container};
use crate::model::{self, EtcdApi};
use crate::router::status::{self as route_status, RouteStatus};
use crate::state::Command;
use crate::{etcd, render};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The instance to show.
    pub instance: String,
    #[command(flatten)]
    pub template: FileArgs,
    #[command(flatten)]
    pub host: HostArgs,
    /// Print JSON (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Serialize)]
pub(super) struct Row {
    unit: String,
    pub(super) service: Option<String>,
    /// For a sidekick: the service it announces.
    announces: Option<String>,
    pub(super) active_state: String,
    pub(super) sub_state: String,
    /// How often systemd restarted the unit since it was last started
    /// (`NRestarts`).
    restarts: u32,
    pub(super) container: Option<Container>,
    /// Whether the unit is as the latest revision applied it: its file is
    /// that revision's, unedited, and it is active.
    as_applied: bool,
    /// For a service with a sidekick: what etcd holds for it now.
    announced: Option<Announced>,
}

/// A service's announcements, read from the etcd its sidekick writes to.
#[derive(Debug, Serialize)]
pub(super) struct Announced {
    /// The key folder; each host announces under `<key>/<hostname>`.
    key: String,
    etcd_api: String,
    endpoints: String,
    /// Hostname → the address it announced.
    hosts: BTreeMap<String, String>,
    /// Why etcd could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Announced {
    /// Reads what a sidekick (described by its unit's owner) announced.
    pub(super) fn read(owner: &render::Owner) -> Option<Announced> {
        let key = owner.key.clone()?;
        let endpoints = owner.endpoints.clone()?;
        let etcd_api = owner.etcd_api.clone()?;
        let api = EtcdApi::parse(&etcd_api);
        let read = match api {
            Some(api) => etcd::announcements(api, &endpoints, &key),
            None => Err(format!("unknown etcd API `{etcd_api}`")),
        };
        let (hosts, error) = match read {
            Ok(hosts) => (hosts, None),
            Err(e) => (BTreeMap::new(), Some(e)),
        };
        Some(Announced {
            key,
            etcd_api,
            endpoints,
            hosts,
            error,
        })
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Status {
    app: String,
    instance: String,
    /// The latest recorded revision.
    pub(super) revision: Option<u64>,
    /// When it was applied, in seconds since the epoch.
    #[serde(skip)]
    pub(super) applied_at: Option<u64>,
    /// Why the recorded revisions could not be read, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    revision_error: Option<String>,
    /// Whether the installed units are the latest revision, as applied
    /// (no apply interrupted since).
    pub(super) as_applied: bool,
    pub(super) units: Vec<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) backup: Option<BackupStatus>,
    /// The routes the host's router serves for the instance.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) routes: Vec<RouteStatus>,
    /// Why they could not be read, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    routes_error: Option<String>,
    /// An apply, rollback or destroy began and did not finish: which.
    #[serde(skip)]
    unfinished: Option<String>,
    /// A restore that did not finish (see `state::Restoring`): what, and
    /// what finishes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    restore_unfinished: Option<String>,
}

impl Status {
    /// The exit code's meaning (see `unitgen status --help`).
    fn outcome(&self) -> Outcome {
        if self.units.is_empty() {
            Outcome::NotInstalled
        } else if self.as_applied
            && self.restore_unfinished.is_none()
            && self
                .units
                .iter()
                .all(|u| u.active_state == "active" && u.as_applied)
        {
            Outcome::Clean
        } else {
            Outcome::NotRunning
        }
    }
}

pub fn run(args: StatusArgs) -> Result<Outcome> {
    let (app, instance) = args.host.app_of(&args.template, &args.instance)?;
    if args.fleet.fleet {
        return fleet::status(&args.fleet, &app, &instance, args.json);
    }
    let status = read(&args.host, &app, &instance)?;
    let (revision, as_applied) = (status.revision, status.as_applied);
    let unfinished = status.unfinished.clone();
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&status).expect("status serializes")
        )?;
        return Ok(status.outcome());
    }
    if status.units.is_empty() {
        outln!(
            "{app}-{} is not installed in {}",
            instance,
            args.host.host()?.unit_dir.display()
        )?;
        if let Some(unfinished) = &unfinished {
            outln!("! {unfinished} (see `unitgen plan`)")?;
        }
        return Ok(status.outcome());
    }
    let recorded = match (&status.revision_error, revision) {
        (Some(error), _) => format!("revision unknown: {error}"),
        (None, None) => "no revision recorded".to_string(),
        (None, Some(number)) if as_applied => format!("revision {number}"),
        (None, Some(number)) if unfinished.is_some() => {
            let unfinished = unfinished.as_deref().unwrap_or_default();
            format!("revision {number}, but {unfinished} (see `unitgen plan`)")
        }
        (None, Some(number)) => {
            format!(
                "revision {number}, but the installed units differ from it (see `unitgen plan`)"
            )
        }
    };
    outln!("{app}-{}: {recorded}", instance)?;
    // "3 min ago" for a person at a terminal; the time itself otherwise.
    let terminal = std::io::stdout().is_terminal();
    let now = when::now();
    outln!(
        "  {:<16} {:<20} {:<9} {:<8} {:<12} {:<28} STARTED",
        "SERVICE",
        "STATE",
        "HEALTH",
        "RESTARTS",
        "CONTAINER",
        "IMAGE"
    )?;
    for row in &status.units {
        let (id, image, health, started) = match &row.container {
            Some(c) => (
                c.id.as_str(),
                c.image.as_str(),
                // Docker's state when it is not plain running (`paused`).
                match (c.status.as_str(), c.health.as_deref()) {
                    ("running", health) => health.unwrap_or("-"),
                    (other, _) => other,
                },
                match when::parse_iso(&c.started_at) {
                    Some(secs) if terminal => when::ago(secs, now),
                    _ => c.started_at.clone(),
                },
            ),
            None => ("-", "-", "-", "-".to_string()),
        };
        let name = match (&row.service, &row.announces) {
            (Some(service), _) => service.clone(),
            (None, Some(announced)) => format!("({announced} sidekick)"),
            (None, None) if row.unit.ends_with(".target") => "(instance)".to_string(),
            (None, None) if row.unit.ends_with("-routes.service") => "(routes)".to_string(),
            (None, None) => "(network)".to_string(),
        };
        let mark = if row.as_applied { ' ' } else { '!' };
        outln!(
            "{mark} {name:<16} {:<20} {health:<9} {:<8} {id:<12} {image:<28} {started}",
            format!("{} ({})", row.active_state, row.sub_state),
            row.restarts,
        )?;
        if let Some(announced) = &row.announced {
            print_announced(announced)?;
        }
    }
    if status.units.iter().any(|row| !row.as_applied) {
        outln!(
            "! not as applied: not active, its container not running (gone, or paused) or off the \
             instance network, its network gone, or its unit file is not the recorded revision's (edited, or an apply did not finish): \
             `unitgen plan`, `unitgen apply`"
        )?;
    }
    if let Some(restore) = &status.restore_unfinished {
        outln!("! {restore}")?;
    }
    if let Some(backup) = &status.backup {
        backup_status::print(backup);
    }
    if let Some(error) = &status.routes_error {
        outln!("routes: unknown: {error}")?;
    }
    if !status.routes.is_empty() {
        outln!("  {:<44} {:<28} CERTIFICATE", "ROUTE", "BACKEND")?;
        for route in &status.routes {
            let certificate = match (route.tls.as_str(), &route.expires) {
                ("off", _) => "-".to_string(),
                (tls, Some(expires)) => format!("{tls}, expires {expires}"),
                ("acme", None) => "acme, not issued yet".to_string(),
                (tls, None) => format!("{tls}, unreadable"),
            };
            outln!(
                "  {:<44} {:<28} {certificate}",
                route.url,
                route.backends.join(" ")
            )?;
        }
    }
    Ok(status.outcome())
}

/// What `status` shows of an installed instance, read from the host: its
/// units' states, containers, announcements, revision and backups.
pub(super) fn read(host: &HostArgs, app: &str, instance: &str) -> Result<Status> {
    let installed = host.installed(app, instance)?;
    let state = host.state(app, instance)?;
    let (revision, revision_error) = match state.revisions() {
        Ok(revisions) => (revisions.last().cloned(), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let recorded = revision
        .as_ref()
        .is_some_and(|r| r.digest == crate::state::units_digest(&installed));
    // As `plan` reads it: an apply or rollback killed after it recorded
    // its revision had nothing left to do (the next apply clears its
    // record), so it is not reported as unfinished.
    let unfinished = state
        .intent()
        .map_err(|e| miette::miette!("{e}"))?
        .filter(|intent| !intent.left_nothing_to_do(revision.as_ref(), recorded))
        .map(|intent| match intent.command {
            Command::Apply => "a later apply did not finish".to_string(),
            Command::Rollback { to } => format!("a rollback to revision {to} did not finish"),
            Command::Destroy { .. } => "a destroy did not finish".to_string(),
        })
        // A routed service's stand-in that a killed apply left (see
        // `systemd::handover`) may be what the router sends traffic to.
        .or_else(|| {
            (state.dir().join(crate::systemd::handover::RECORD).exists())
                .then(|| "a later apply's zero-downtime switch did not finish".to_string())
        });
    let restore_unfinished = state
        .restoring()
        .map_err(|e| miette::miette!("{e}"))?
        .map(|restoring| restoring.describe());
    let as_applied = unfinished.is_none() && recorded;
    // The units as the latest revision recorded them, to mark each one
    // that is not as applied.
    let recorded_units: HashMap<String, String> = revision
        .as_ref()
        .and_then(|r| state.load(r.number).ok())
        .map(|r| r.units.into_iter().map(|u| (u.name, u.text)).collect())
        .unwrap_or_default();
    let applied_at = revision.as_ref().map(|r| r.applied_at);
    let revision = revision.map(|r| r.number);
    let mut units = Vec::new();
    let mut backup = None;
    let (routes, routes_error) = match installed.iter().find_map(super::apply::routes_file) {
        Some(file) => {
            let prefix = model::prefix(app, instance);
            match route_status::read(host.host()?.root.as_deref(), &file, &prefix) {
                Ok(routes) => (routes, None),
                Err(e) => (Vec::new(), Some(e)),
            }
        }
        None => (Vec::new(), None),
    };
    // Nothing installed: say so without needing systemd at all.
    if !installed.is_empty() {
        let systemd = host
            .host()?
            .connect()
            .map_err(|f| miette::miette!("{}", f.message))?;
        let owners: Vec<render::Owner> = installed
            .iter()
            .map(|unit| render::owner(&unit.text).unwrap_or_default())
            .collect();
        let mut announced: HashMap<String, Announced> = owners
            .iter()
            .filter_map(|o| Some((o.announces.clone()?, Announced::read(o)?)))
            .collect();
        let prefix = model::prefix(app, instance);
        backup = backup_status::read(
            &systemd,
            &installed,
            &format!("{prefix}-backup.service"),
            &host.state_dir()?.join(&prefix),
        )
        .map_err(|e| miette::miette!("{e}"))?;
        // Backup units and timers are summed up under `backup`.
        let (installed, owners): (Vec<&render::UnitFile>, Vec<render::Owner>) = installed
            .iter()
            .zip(owners)
            .filter(|(unit, owner)| owner.started_by.is_none() && !unit.name.ends_with(".timer"))
            .unzip();
        // One systemd call and one engine call for all units, not one each.
        let names: Vec<String> = installed.iter().map(|u| u.name.clone()).collect();
        let states = systemd
            .summaries(&names)
            .map_err(|e| miette::miette!("{e}"))?;
        let mut containers = docker::inspect_all(
            &owners
                .iter()
                .filter_map(render::Owner::container)
                .collect::<Vec<_>>(),
        );
        // The network unit stays active when its network is removed by
        // hand: a container on it shows it is there, a second question to
        // Docker only when none is.
        let network_gone = !containers.values().any(|c| c.networks.contains(&prefix))
            && owners.iter().any(|o| o.network.is_some())
            && !docker::network_exists(&prefix).unwrap_or(true);
        for ((unit, owner), state) in installed.iter().zip(owners).zip(states) {
            let container = owner.container().and_then(|c| containers.remove(&c));
            // A running service unit runs its container: one that is gone,
            // paused (`docker pause`: listed as up, answers nothing), or
            // disconnected from the instance network (the other services
            // cannot reach it) is not as applied.
            let container_runs = owner.service.is_none()
                || state.sub_state != "running"
                || container
                    .as_ref()
                    .is_some_and(|c| c.status == "running" && c.networks.contains(&prefix));
            let as_applied = state.active_state == "active"
                && container_runs
                && !(owner.network.is_some() && network_gone)
                && render::digest_matches(&unit.text)
                && recorded_units.get(&unit.name) == Some(&unit.text);
            units.push(Row {
                unit: unit.name.clone(),
                announced: owner.service.as_ref().and_then(|s| announced.remove(s)),
                container,
                service: owner.service,
                announces: owner.announces,
                active_state: state.active_state,
                sub_state: state.sub_state,
                restarts: state.n_restarts,
                as_applied,
            });
        }
    }
    let status = Status {
        app: app.to_string(),
        instance: instance.to_string(),
        revision,
        applied_at,
        revision_error,
        as_applied,
        units,
        backup,
        routes,
        routes_error,
        unfinished,
        restore_unfinished,
    };
    Ok(status)
}

/// The lines under a service: each host's address, or why there is none.
pub(super) fn print_announced(announced: &Announced) -> Result<()> {
    let at = format!(
        "{}/ in etcd {} at {}",
        announced.key, announced.etcd_api, announced.endpoints
    );
    if let Some(error) = &announced.error {
        outln!("  announced: unknown, reading {at} failed: {error}")?;
    } else if announced.hosts.is_empty() {
        outln!("  announced: nothing under {at}")?;
    } else {
        for (host, address) in &announced.hosts {
            outln!("  announced: {address} by {host}, under {at}")?;
        }
    }
    Ok(())
}
