//! `unitgen status`: every service of an instance with its unit state, its
//! container, and what its sidekick announced in etcd.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal as _;

use clap::Args;
use miette::Result;
use serde::Serialize;

use super::fleet::{self, FleetArgs};
use super::host::HostArgs;
use super::output::showln;
use super::{FileArgs, Outcome, when};
use crate::backup::status::{self as backup_status, BackupStatus};
use crate::docker::run_args;
use crate::docker::{self, Container};
use crate::model::{self, EtcdApi};
use crate::plan::Observed;
use crate::pull;
use crate::router::status::{self as route_status, RouteStatus};
use crate::state::Command;
use crate::systemd::observe;
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
    /// For a service done when its container exits 0 (`restart: no` or
    /// `on-failure`) that is active (exited): its `docker run`'s exit status.
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_status: Option<i32>,
    /// How often systemd restarted the unit since it was last started
    /// (`NRestarts`).
    restarts: u32,
    pub(super) container: Option<Container>,
    /// Whether the unit is as the latest revision applied it: its file is
    /// that revision's, unedited, and the host runs it as `plan` wants it
    /// (see `not_as_applied`).
    as_applied: bool,
    /// Why it is not as applied, as `plan` says it (empty when it is).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_as_applied: Vec<String>,
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
    /// What each sidekick among `owners` (units' owners) announced, by the
    /// service it announces. Read side by side: each read is an `etcdctl`
    /// that mostly waits, up to its timeouts when etcd does not answer, and
    /// one after the other an instance of many announced services would
    /// wait that long for each.
    pub(super) fn read_all<'o>(
        owners: impl IntoIterator<Item = &'o render::Owner>,
    ) -> Vec<(String, Announced)> {
        std::thread::scope(|scope| {
            let reads: Vec<_> = (owners.into_iter())
                .filter_map(|owner| Some((owner.announces.clone()?, owner)))
                .map(|(service, owner)| scope.spawn(move || Some((service, Self::read(owner)?))))
                .collect();
            (reads.into_iter())
                .filter_map(|read| read.join().expect("reading etcd does not panic"))
                .collect()
        })
    }

    /// Reads what a sidekick (described by its unit's owner) announced.
    fn read(owner: &render::Owner) -> Option<Announced> {
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

impl Row {
    /// Its container runs but fails its healthcheck: as applied, yet not
    /// serving. (Docker does not restart it, nor does apply: the service's
    /// own health is not the host's configuration.)
    fn unhealthy(&self) -> bool {
        self.container
            .as_ref()
            .is_some_and(|c| c.status == "running" && c.health.as_deref() == Some("unhealthy"))
    }
}

/// A unit without a row of its own that is not as applied, and why.
#[derive(Debug, Serialize)]
pub(super) struct NotAsApplied {
    unit: String,
    why: Vec<String>,
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
    /// The units summed up under `backup` (its timer and service) that are
    /// not as applied, with why, as for a row.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    other_units: Vec<NotAsApplied>,
    /// Running containers with the instance's labels that no unit of it
    /// runs (started by hand?), as `plan` finds them: apply removes them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stray_containers: Vec<String>,
    /// Why the instance's containers could not be listed, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    containers_error: Option<String>,
    /// Why the secrets files could not be checked (they are root-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets_error: Option<String>,
    /// Why the backups' password file could not be compared with what
    /// apply recorded (it, or the key, is root-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    password_error: Option<String>,
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
    /// Files in the state folder this unitgen does not know (see
    /// `InstanceState::unknown_files`): told, not acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown_state_files: Option<String>,
}

impl Status {
    /// The exit code's meaning (see `unitgen status --help`).
    fn outcome(&self) -> Outcome {
        if self.units.is_empty() {
            Outcome::NotInstalled
        } else if self.as_applied
            && self.restore_unfinished.is_none()
            && self.other_units.is_empty()
            && self.routes_error.is_none()
            && self.stray_containers.is_empty()
            && self.containers_error.is_none()
            && self
                .units
                .iter()
                .all(|u| u.active_state == "active" && u.as_applied && !u.unhealthy())
        {
            Outcome::Clean
        } else {
            Outcome::NotRunning
        }
    }
}

pub fn run(args: StatusArgs) -> Result<Outcome> {
    if args.fleet.fleet {
        // The endpoint is the instance's, if its template names one.
        let on_fleet = args.fleet.of_named(&args.template, &args.instance);
        let (app, instance) = fleet::app_of(&on_fleet, &args.template, &args.instance)?;
        // The count of copies is the template's: without it (unreadable,
        // or its values given only by --set), only gaps are told.
        let fleet_copies = (args.template.select(&args.instance).ok())
            .and_then(|(template, name)| {
                crate::compile::compile(&template, &name, &Default::default()).ok()
            })
            .map(|compiled| compiled.fleet.copies);
        return fleet::status(&on_fleet, &app, &instance, fleet_copies, args.json);
    }
    let (app, instance) = args.host.app_of(&args.template, &args.instance)?;
    let status = read(&args.host, &app, &instance)?;
    let (revision, as_applied) = (status.revision, status.as_applied);
    let unfinished = status.unfinished.clone();
    if args.json {
        super::output::json(&status)?;
        return Ok(status.outcome());
    }
    if status.units.is_empty() {
        showln!(
            "{app}-{} is not installed in {}",
            instance,
            crate::diagnostic::shown_path(&args.host.host()?.unit_dir)
        )?;
        if let Some(unfinished) = &unfinished {
            showln!("! {unfinished} (see `unitgen plan`)")?;
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
    showln!("{app}-{}: {recorded}", instance)?;
    // "3 min ago" for a person at a terminal; the time itself otherwise.
    let terminal = std::io::stdout().is_terminal();
    let now = when::now();
    showln!(
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
                // To the second, as `ls` and `history` show times (Docker's
                // nanoseconds stay in --json).
                match when::parse_iso(&c.started_at) {
                    Some(secs) if terminal => when::ago(secs, now),
                    Some(secs) => when::iso(secs),
                    None => c.started_at.clone(),
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
        let mark = if row.as_applied && !row.unhealthy() {
            ' '
        } else {
            '!'
        };
        showln!(
            "{mark} {name:<16} {:<20} {health:<9} {:<8} {id:<12} {image:<28} {started}",
            match row.exit_status {
                Some(status) => format!("{} ({} {status})", row.active_state, row.sub_state),
                None => format!("{} ({})", row.active_state, row.sub_state),
            },
            row.restarts,
        )?;
        for why in &row.not_as_applied {
            showln!("    ! {why}")?;
        }
        if row.unhealthy() {
            showln!(
                "    ! its container fails its healthcheck: `unitgen logs {instance} {name}` \
                 shows the service's lines, `docker inspect --format '{{{{json .State.Health}}}}' \
                 {id}` the probes'"
            )?;
        }
        if let Some(announced) = &row.announced {
            print_announced(announced)?;
        }
    }
    if status.units.iter().any(|row| !row.as_applied) {
        showln!(
            "! not as applied (the rows marked !, for the reasons under them): `unitgen plan` \
             shows what `unitgen apply` does about it"
        )?;
    }
    for container in &status.stray_containers {
        showln!(
            "! container {container} runs with the instance's labels, but no unit of it runs \
             it (started by hand?): `unitgen apply` removes it"
        )?;
    }
    if let Some(error) = &status.containers_error {
        showln!("! the instance's containers: unknown: {error}")?;
    }
    if let Some(error) = &status.secrets_error {
        showln!("secrets files: not checked: {error}")?;
    }
    if let Some(error) = &status.password_error {
        showln!("backup password file: not checked: {error}")?;
    }
    if let Some(restore) = &status.restore_unfinished {
        showln!("! {restore}")?;
    }
    if let Some(unknown) = &status.unknown_state_files {
        showln!("warning: {unknown}")?;
    }
    if let Some(backup) = &status.backup {
        for line in backup_status::lines(backup) {
            showln!("{line}")?;
        }
    }
    for other in &status.other_units {
        showln!("! {}: {}", other.unit, other.why.join(", "))?;
    }
    if let Some(error) = &status.routes_error {
        showln!("routes: unknown: {error}")?;
    }
    if !status.routes.is_empty() {
        showln!("  {:<44} {:<28} CERTIFICATE", "ROUTE", "BACKEND")?;
        for route in &status.routes {
            let certificate = match (route.tls.as_str(), &route.expires) {
                ("off", _) => "-".to_string(),
                (tls, Some(expires)) => format!("{tls}, expires {expires}"),
                ("acme", None) if route.acme_failure.is_some() => {
                    "acme, NOT OBTAINED (below)".to_string()
                }
                // Not "not issued yet": the router may serve one it holds.
                ("acme", None) if route.acme_store_missing => {
                    "acme, NOT STORED (acme.json is gone): ordered again at the router's next start"
                        .to_string()
                }
                ("acme", None) => "acme, not issued yet".to_string(),
                (tls, None) => format!("{tls}, unreadable"),
            };
            showln!(
                "  {:<44} {:<28} {certificate}",
                route.url,
                route.backends.join(" ")
            )?;
        }
        for route in &status.routes {
            if let Some(failure) = &route.acme_failure {
                // Not a unit's state (status still exits 0 for it): the
                // names' DNS or the CA, which no apply repairs.
                showln!(
                    "certificate of {}: the router could not get it (last try {}): {}",
                    route.url,
                    crate::diagnostic::shown(&failure.at),
                    crate::diagnostic::shown(&failure.error)
                )?;
            }
        }
    }
    Ok(status.outcome())
}

/// What `status` shows of an installed instance, read from the host: its
/// units' states, containers, announcements, revision and backups.
pub(super) fn read(host: &HostArgs, app: &str, instance: &str) -> Result<Status> {
    let installed = host.installed(app, instance)?;
    let state = host.state(app, instance)?;
    // The latest revision, with its units (whose copies must be the ones
    // it records: see `InstanceState::load`).
    let (revision, revision_error) = match state.revisions() {
        Ok(revisions) => match revisions.last().map(|r| state.load(r.number)).transpose() {
            Ok(loaded) => {
                // Its stand-ins too: a newer unitgen's are refused by every
                // command that would use them.
                let newer = (loaded.as_ref()).map(|r| {
                    crate::systemd::handover::refuse_newer_stored(
                        &state.revision_dir(r.info.number),
                    )
                });
                match newer {
                    Some(Err(newer)) => (None, Some(newer)),
                    _ => (loaded, None),
                }
            }
            Err(e) => (None, Some(e.to_string())),
        },
        Err(e) => (None, Some(e.to_string())),
    };
    let recorded_units: HashMap<String, String> = (revision.iter())
        .flat_map(|r| &r.units)
        .map(|u| (u.name.clone(), u.text.clone()))
        .collect();
    let revision = revision.map(|r| r.info);
    let recorded = crate::state::is_recorded(revision.as_ref(), &installed);
    // As `plan` reads it: an apply or rollback killed after it recorded
    // its revision had nothing left to do (the next apply clears its
    // record), so it is not reported as unfinished.
    let unfinished = state
        .intent()
        .map_err(|e| miette::miette!("{e}"))?
        .filter(|intent| !intent.left_nothing_to_do(revision.as_ref(), recorded))
        .map(|intent| match intent.command {
            _ if intent.unreadable.is_some() => format!(
                "a later command did not finish, its record unreadable ({})",
                intent.unreadable.unwrap_or_default()
            ),
            Command::Apply => "a later apply did not finish".to_string(),
            Command::Rollback { to } => format!("a rollback to revision {to} did not finish"),
            Command::Destroy { .. } => "a destroy did not finish".to_string(),
        })
        // A routed service's stand-in that a killed apply left (see
        // `systemd::handover`) may be what the router sends traffic to.
        .map_or_else(
            || {
                crate::systemd::handover::left(
                    &state.dir().join(crate::systemd::handover::RECORD),
                    "a later",
                )
                .map_err(|e| miette::miette!("{e}"))
            },
            |unfinished| Ok(Some(unfinished)),
        )?;
    let restoring = state.restoring().map_err(|e| miette::miette!("{e}"))?;
    let restore_unfinished = restoring.as_ref().map(|restoring| restoring.describe());
    // The services whose dump it was reading back (see `Observed::restore_reading`).
    let restore_dumps = restoring
        .map(|restoring| restoring.dumps)
        .unwrap_or_default();
    // Records of a command under way, not of one that did not finish.
    let (unfinished, restore_unfinished) = if state.changing_now() {
        (Some(state.changing_now_note()), None)
    } else {
        (unfinished, restore_unfinished)
    };
    let as_applied = unfinished.is_none() && recorded;
    let applied_at = revision.as_ref().map(|r| r.applied_at);
    let revision = revision.map(|r| r.number);
    let mut units = Vec::new();
    let mut other_units = Vec::new();
    let mut backup = None;
    let mut stray_containers = Vec::new();
    let mut containers_error = None;
    let mut secrets_error = None;
    let mut password_error = None;
    let routed = installed
        .iter()
        .any(|u| super::apply::routes_file(u).is_some());
    let routes_unit =
        (installed.iter()).find_map(|unit| Some((unit, super::apply::routes_file(unit)?)));
    // Routes in etcd: the instance's keys, read once for its rows and for
    // whether they are as written.
    let in_etcd = (routes_unit.as_ref())
        .and_then(|(unit, _)| render::owner(&unit.text))
        .filter(|owner| owner.routes_in_etcd.is_some())
        .and_then(|owner| owner.endpoints)
        .map(|endpoints| RoutesInEtcd {
            keys: etcd::instance_route_keys(&endpoints, &model::prefix(app, instance)),
            endpoints,
        });
    let (routes, routes_error) = match &routes_unit {
        Some((_, file)) => {
            let prefix = model::prefix(app, instance);
            let pairs = match &in_etcd {
                Some(RoutesInEtcd { keys: Ok(keys), .. }) => Some(keys.as_slice()),
                _ => None,
            };
            match route_status::read(host.host()?.root.as_deref(), file, &prefix, pairs) {
                Ok(routes) => (routes, None),
                Err(e) => (Vec::new(), Some(e)),
            }
        }
        None => (Vec::new(), None),
    };
    // The routes as the router reads them, edited since (by hand, another
    // tool): not as applied, as `plan` tells.
    if let Some((unit, file)) = &routes_unit
        && routes_error.is_none()
        && let Some(why) = routes_edited(&host.host()?, state.dir(), unit, file, in_etcd.as_ref())
    {
        other_units.push(NotAsApplied {
            unit: unit.name.clone(),
            why: vec![why],
        });
    }
    // Nothing installed: say so without needing systemd at all.
    if !installed.is_empty() {
        let target = host.host()?;
        let systemd = target
            .connect()
            .map_err(|f| miette::miette!("{}", f.message))?;
        let owners: Vec<render::Owner> = installed
            .iter()
            .map(|unit| render::owner(&unit.text).unwrap_or_default())
            .collect();
        let mut announced: HashMap<String, Announced> =
            Announced::read_all(&owners).into_iter().collect();
        let prefix = model::prefix(app, instance);
        backup = backup_status::read(
            &systemd,
            &installed,
            &format!("{prefix}-backup.service"),
            &host.state_dir()?.join(&prefix),
        )
        .map_err(|e| miette::miette!("{e}"))?;
        // As `plan` reads them: a unit linked by another target than its
        // file says is still `enabled` to systemd.
        let links = observe::enablement_links(&target);
        let links_differ = |unit: &render::UnitFile| {
            let found = links.get(&unit.name).map_or(&[][..], Vec::as_slice);
            observe::links_differ(&unit.text, found)
        };
        let all_units = installed.as_slice();
        // Units of the revision whose file is gone (removed by hand) that
        // systemd runs all the same, from what it loaded before: told, and
        // their containers are theirs, not strays.
        let gone: Vec<render::UnitFile> = (recorded_units.iter())
            .filter(|(name, _)| !name.contains("@.") && !all_units.iter().any(|u| &u.name == *name))
            .map(|(name, text)| render::UnitFile {
                name: name.clone(),
                text: text.clone(),
            })
            .collect();
        let gone_names: Vec<String> = gone.iter().map(|u| u.name.clone()).collect();
        let gone_states = match gone_names.is_empty() {
            true => Vec::new(),
            false => (systemd.summaries(&gone_names)).map_err(|e| miette::miette!("{e}"))?,
        };
        let mut run_by = installed.clone();
        for (unit, state) in gone.into_iter().zip(gone_states) {
            if matches!(state.active_state.as_str(), "inactive" | "failed") {
                continue;
            }
            other_units.push(NotAsApplied {
                unit: unit.name.clone(),
                why: vec![format!(
                    "{} ({}), but its file is gone (removed by hand?): `unitgen apply` writes it \
                     and restarts it",
                    state.active_state, state.sub_state
                )],
            });
            run_by.push(unit);
        }
        // Backup units and timers are summed up under `backup`; what
        // `plan` would repair in them is told below it.
        let (summed, rows): (Vec<_>, Vec<_>) = (installed.iter().zip(owners))
            .partition(|(unit, owner)| owner.started_by.is_some() || unit.name.ends_with(".timer"));
        let (installed, owners): (Vec<&render::UnitFile>, Vec<render::Owner>) =
            rows.into_iter().unzip();
        // A template (`x@.service`) has no state, systemd does not load
        // it: only whether its file is masked (then no instance starts).
        let (templates, summed): (Vec<_>, Vec<_>) =
            (summed.into_iter()).partition(|(unit, _)| unit.name.contains("@."));
        let templates: Vec<String> = templates.iter().map(|(u, _)| u.name.clone()).collect();
        let states = (systemd.unit_file_states(&templates)).map_err(|e| miette::miette!("{e}"))?;
        for (unit, state) in templates.into_iter().zip(states) {
            if state.starts_with("masked") {
                other_units.push(NotAsApplied {
                    unit,
                    why: vec![crate::plan::Fault::Masked(state).to_string()],
                });
            }
        }
        // The backups' password file, which restic reads at each run.
        let store = crate::secrets::Store::new(&host.state_dir()?, &prefix);
        let password_differs = match store.password_differs(all_units, target.root.as_deref()) {
            Ok(differs) => differs,
            Err(e) => {
                password_error = Some(e.to_string());
                None
            }
        };
        if !summed.is_empty() {
            let names: Vec<String> = summed.iter().map(|(u, _)| u.name.clone()).collect();
            let bus = |e: crate::systemd::Error| miette::miette!("{e}");
            let states = systemd.summaries(&names).map_err(bus)?;
            let details = systemd.details(&names).map_err(bus)?;
            for (((unit, owner), state), details) in summed.iter().zip(states).zip(details) {
                let seen = Observed {
                    loaded_from: target.loaded_elsewhere(&unit.name, &details.fragment_path),
                    unit_file_state: details.unit_file_state,
                    need_daemon_reload: details.need_daemon_reload,
                    active_state: state.active_state,
                    sub_state: state.sub_state,
                    links_differ: links_differ(unit),
                    ..Observed::default()
                };
                let mut why: Vec<String> = (seen.faults(owner.started_by.is_some()).iter())
                    .map(ToString::to_string)
                    .collect();
                why.extend(not_as_written(
                    unit,
                    &seen,
                    &details.drop_in_paths,
                    &recorded_units,
                ));
                if let Some((_, differs)) =
                    (password_differs.as_ref()).filter(|(u, _)| *u == unit.name)
                {
                    why.push(differs.clone());
                }
                if !why.is_empty() {
                    other_units.push(NotAsApplied {
                        unit: unit.name.clone(),
                        why,
                    });
                }
            }
        }
        // The host's router serves the routes: stopped, it serves none (as
        // `plan` tells, which starts it).
        if routed {
            let router = crate::model::route::ROUTER_UNIT.to_string();
            let state = (systemd.summaries(std::slice::from_ref(&router)))
                .map_err(|e| miette::miette!("{e}"))?
                .remove(0);
            if state.active_state != "active" {
                other_units.push(NotAsApplied {
                    unit: router,
                    why: vec![format!(
                        "{} ({}): the host's router does not run, so it serves none of the \
                         instance's routes",
                        state.active_state, state.sub_state
                    )],
                });
            } else if let Some(unit) = crate::router::installed(&target) {
                // Running: as `plan` sees it (its container replaced by
                // hand, its links moved), its file aside.
                let found = crate::router::found(&target, &systemd, &unit)
                    .map_err(|e| miette::miette!("{e}"))?;
                if let Some(repair) = found {
                    other_units.push(NotAsApplied {
                        unit: router,
                        why: repair.faults.iter().map(ToString::to_string).collect(),
                    });
                }
            }
        }
        // One systemd call and one engine call for all units, not one each.
        let names: Vec<String> = installed.iter().map(|u| u.name.clone()).collect();
        // The engine is asked while systemd answers.
        let container_names: Vec<String> =
            owners.iter().filter_map(render::Owner::container).collect();
        // The images the services' references name now: a tag moved since
        // a container was made from it (pulled, built, `docker tag`) makes
        // its next start run another image.
        // The backup's helper image too: the night's backup needs it.
        let helpers: Vec<(&str, String)> = (summed.iter())
            .filter_map(|(unit, owner)| Some((unit.name.as_str(), owner.helper_image.clone()?)))
            .collect();
        let references: Vec<String> = (owners.iter())
            .filter_map(|o| o.image.clone())
            .chain(helpers.iter().map(|(_, image)| image.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let (states, details, mut containers, running, named_now, network) =
            std::thread::scope(|scope| {
                let inspected = scope.spawn(|| docker::inspect_all(&container_names));
                // The instance's containers by its labels, for those no unit runs.
                let listed = scope.spawn(|| docker::running_containers(app, instance));
                let named_now = scope.spawn(|| docker::image_ids(&references));
                // The network as its unit makes it (see `plan`): one question.
                let network = scope.spawn(|| {
                    (owners.iter().any(|o| o.network.is_some()))
                        .then(|| docker::network_differences(&prefix, app, instance))
                });
                let states = systemd.summaries(&names);
                // What `plan` compares beyond the state: enabled, reloaded,
                // drop-ins, and what each service's `docker run` asks.
                let details = systemd.details(&names);
                (
                    states,
                    details,
                    inspected.join().expect("docker inspect does not panic"),
                    listed.join().expect("docker ps does not panic"),
                    named_now
                        .join()
                        .expect("docker image inspect does not panic"),
                    network.join().expect("docker network ls does not panic"),
                )
            });
        let states = states.map_err(|e| miette::miette!("{e}"))?;
        let details = details.map_err(|e| miette::miette!("{e}"))?;
        // (Only when the engine listed a container: one that cannot be
        // asked names no image at all.)
        if !containers.is_empty() {
            for (unit, image) in helpers.iter().filter(|(_, i)| !named_now.contains_key(i)) {
                other_units.push(NotAsApplied {
                    unit: unit.to_string(),
                    why: vec![format!(
                        "its helper image {image} is not on this host any more (removed by \
                         hand?): the next backup must pull it"
                    )],
                });
            }
        }
        match running {
            Ok(running) => {
                let down: Vec<&str> = (installed.iter().zip(&states))
                    .filter(|(_, s)| observe::is_down(&s.active_state, &s.sub_state))
                    .map(|(unit, _)| unit.name.as_str())
                    .collect();
                // A handover's stand-ins are told once, as `unfinished`.
                let standins = crate::systemd::handover::standin_containers(
                    &state.dir().join(crate::systemd::handover::RECORD),
                    &host.host()?.unit_dir,
                );
                let running = running.into_keys().filter(|c| !standins.contains(c));
                stray_containers = observe::strays(running, &run_by, &down);
            }
            Err(e) => containers_error = Some(e),
        }
        // The secrets files the units' next start reads (root-only: read
        // by root alone, which apply needs too).
        let secrets_differ = match store.differing(&prefix, all_units) {
            Ok(differing) => differing,
            Err(e) => {
                secrets_error = Some(format!(
                    "reading them in {} (root-only): {e}",
                    crate::diagnostic::shown_path(store.dir())
                ));
                Vec::new()
            }
        };
        // The network unit stays active when its network is removed or
        // made again by hand. (Not told when Docker cannot be asked.)
        let (network_gone, network_differs) = match network {
            Some(Ok(None)) => (true, None),
            Some(Ok(Some(differences))) if !differences.is_empty() => {
                (false, Some((prefix.clone(), differences)))
            }
            _ => (false, None),
        };
        let asked: Vec<Option<run_args::RunArgs>> = (details.iter())
            .map(|d| run_args::read(&d.exec_start))
            .collect();
        // Named volumes of services that do not run: one more question to
        // Docker, only if there are any.
        let unstarted_volumes: Vec<String> = (states.iter().zip(&asked))
            .filter(|(state, _)| state.active_state != "active")
            .filter_map(|(_, args)| args.as_ref())
            .flat_map(|args| args.named_volumes.iter().cloned())
            .collect();
        let volumes =
            docker::volumes_made(&unstarted_volumes).map_err(|e| miette::miette!("{e}"))?;
        for ((((unit, owner), state), details), args) in (installed.iter().zip(owners).zip(states))
            .zip(details)
            .zip(asked)
        {
            let mut container = owner.container().and_then(|c| containers.remove(&c));
            // Seen as `plan` sees it (`systemd::observe`).
            let active = state.active_state == "active";
            let runs_container = owner.service.is_some() && active && state.sub_state == "running";
            // A service done when its container exited 0: how it ended.
            let exit_status = (owner.service.is_some()
                && active
                && state.sub_state == "exited"
                && details.exec_main_ended.0 == 1
                && crate::render::docker::done_when_exited(&unit.text))
            .then_some(details.exec_main_ended.1);
            let mut seen = Observed {
                container_missing: observe::not_done(&unit.text, &details),
                unit: unit.name.clone(),
                loaded_from: target.loaded_elsewhere(&unit.name, &details.fragment_path),
                unit_file_state: details.unit_file_state,
                need_daemon_reload: details.need_daemon_reload,
                active_state: state.active_state.clone(),
                sub_state: state.sub_state.clone(),
                network_missing: (owner.network.is_some() && network_gone && active)
                    .then(|| prefix.clone()),
                network_differs: network_differs
                    .clone()
                    .filter(|_| owner.network.is_some() && active),
                links_differ: links_differ(unit),
                ..Observed::default()
            };
            if runs_container && let Some(name) = owner.container() {
                observe::see_container(
                    &mut seen,
                    &name,
                    container.as_ref(),
                    args.as_ref(),
                    details.active_enter_timestamp,
                    &prefix,
                );
            }
            // A service with an exec-form healthcheck runs a local image
            // built on its own (`render::docker::health_image`): the user
            // asked for `redis:7`, not `unitgen-health/blog-live-cache`, and
            // wants to see which version runs (`docker compose ps` shows the
            // service's image too). Which image the container was made from
            // is still checked, by ID (`tag_moved` below). (After `see_container`,
            // which compares the image its unit runs.)
            if let (Some(c), Some(name), Some(image)) =
                (container.as_mut(), owner.container(), &owner.image)
                && c.image == crate::render::docker::health_tag(&name)
            {
                c.image.clone_from(image);
            }
            if !active && let Some(args) = &args {
                seen.volumes_missing = (args.named_volumes.iter())
                    .filter(|v| !volumes.contains_key(*v))
                    .cloned()
                    .collect();
                seen.volumes_made_again = observe::made_since(
                    &args.named_volumes,
                    &volumes,
                    details.inactive_enter_timestamp,
                );
            }
            seen.restore_reading =
                observe::restore_still_reading(&seen, &unit.text, &restore_dumps);
            let mut not_as_applied: Vec<String> =
                seen.faults(false).iter().map(ToString::to_string).collect();
            // Its unit does not run it: made by hand under its name.
            if let Some(c) = &container
                && owner.started_by.is_none()
                && !(owner.container()).is_some_and(|name| stray_containers.contains(&name))
                && observe::is_down(&state.active_state, &state.sub_state)
            {
                not_as_applied.push(format!(
                    "container {} {}: `unitgen apply` removes it",
                    c.id,
                    crate::plan::NAME_HOLDER.replace("{unit}", &unit.name)
                ));
            }
            if let (Some(c), Some(image)) = (&container, &owner.image)
                && c.status == "running"
                && pull::tag_moved(
                    Some(c.image_id.as_str()),
                    named_now.get(image).map(String::as_str),
                )
            {
                not_as_applied.push(format!(
                    "its image {image} moved: the tag now names another image than its \
                     container runs (its next start runs that one)"
                ));
            }
            if let (Some(c), Some(image)) = (&container, &owner.image)
                && c.status == "running"
                && !named_now.contains_key(image)
            {
                not_as_applied.push(format!(
                    "its image {image} is not on this host any more (removed by hand?): its \
                     next start must pull it"
                ));
            }
            if let Some((_, file)) = secrets_differ.iter().find(|(u, _)| *u == unit.name) {
                not_as_applied.push(format!(
                    "its secrets file {} is missing or was changed by hand (its container read \
                     it at its start; its next start reads it as it is)",
                    crate::diagnostic::shown_path(file)
                ));
            }
            not_as_applied.extend(not_as_written(
                unit,
                &seen,
                &details.drop_in_paths,
                &recorded_units,
            ));
            units.push(Row {
                unit: unit.name.clone(),
                announced: owner.service.as_ref().and_then(|s| announced.remove(s)),
                container,
                service: owner.service,
                announces: owner.announces,
                active_state: state.active_state,
                sub_state: state.sub_state,
                exit_status,
                restarts: state.n_restarts,
                as_applied: not_as_applied.is_empty(),
                not_as_applied,
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
        other_units,
        stray_containers,
        containers_error,
        secrets_error,
        password_error,
        routes,
        routes_error,
        unfinished,
        restore_unfinished,
        unknown_state_files: state.unknown_files_note(),
    };
    Ok(status)
}

/// An instance's routes in etcd, as read once by `status`.
struct RoutesInEtcd {
    endpoints: String,
    /// Every key under the instance's prefixes, backends included.
    keys: Result<Vec<(String, String)>, String>,
}

/// Why the instance's routes are not as its routes unit wrote them, if
/// they are not (from the digests it carries): the routes file (`file`,
/// read on `host`) edited, or as written but not what the host's router
/// serves (asked for its mark), or, with routes in etcd, its keys there. A
/// killed apply's switch to its stand-ins is no edit (told as unfinished).
fn routes_edited(
    host: &crate::systemd::converge::Host,
    state_dir: &std::path::Path,
    unit: &render::UnitFile,
    file: &std::path::Path,
    in_etcd: Option<&RoutesInEtcd>,
) -> Option<String> {
    use crate::plan::Fault;
    if crate::systemd::handover::routes_switched(&state_dir.join(crate::systemd::handover::RECORD))
    {
        return None;
    }
    let root = host.root.as_deref();
    let owner = render::owner(&unit.text)?;
    if let Some(digest) = &owner.routes_digest {
        // (A file that cannot be read is told as the routes' error.)
        let bytes = std::fs::read(crate::router::on_host(root, file)).ok()?;
        if render::content_digest(&bytes) != *digest {
            return Some(Fault::RoutesNotWritten.to_string());
        }
    }
    // As written: is it what the router serves? (One question to it.)
    if let Some(mark) = &owner.routes_mark
        && let Some(why) = crate::router::not_serving(host, file, mark)
    {
        return Some(Fault::RoutesNotServed { why }.to_string());
    }
    let (Some(RoutesInEtcd { endpoints, keys }), Some(digest)) = (in_etcd, &owner.routes_in_etcd)
    else {
        return None;
    };
    match keys {
        Ok(pairs) => {
            // What the routes unit wrote: the sidekicks' backends are theirs.
            let mut written: Vec<(String, String)> = (pairs.iter())
                .filter(|(key, _)| !render::route::etcd::is_server_key(key))
                .cloned()
                .collect();
            // It wrote this host's machine ID where it rendered systemd's
            // specifier, of which the digest is.
            match crate::router::machine_id(root) {
                Ok(id) => render::route::etcd::without_machine_id(&mut written, &id),
                Err(e) => return Some(format!("its routes in etcd are unknown: {e}")),
            }
            (render::route::etcd_digest(&written) != *digest)
                .then(|| Fault::RoutesNotInEtcd.to_string())
        }
        Err(e) => Some(format!(
            "its routes in etcd are unknown: reading them at {endpoints}: {e}"
        )),
    }
}

/// How what systemd runs of a unit (`seen`) differs from what the latest
/// revision applied: loaded from another file, drop-ins, its file edited
/// by hand or another revision's.
fn not_as_written(
    unit: &render::UnitFile,
    seen: &Observed,
    drop_ins: &[String],
    recorded_units: &HashMap<String, String>,
) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(file) = seen.loaded_elsewhere() {
        why.push(format!(
            "loaded from {file}: {}",
            crate::plan::LOADED_ELSEWHERE
        ));
    }
    if !drop_ins.is_empty() {
        why.push(format!(
            "drop-ins change its meaning: {}",
            drop_ins.join(", ")
        ));
    }
    if !render::digest_matches(&unit.text) {
        why.push("its file was edited by hand".to_string());
    } else if recorded_units.get(&unit.name) != Some(&unit.text) {
        why.push("its file is not the recorded revision's".to_string());
    }
    why
}

/// The lines under a service: each host's address, or why there is none.
pub(super) fn print_announced(announced: &Announced) -> Result<()> {
    let at = format!(
        "{}/ in etcd {} at {}",
        announced.key, announced.etcd_api, announced.endpoints
    );
    if let Some(error) = &announced.error {
        showln!("  announced: unknown, reading {at} failed: {error}")?;
    } else if announced.hosts.is_empty() {
        showln!("  announced: nothing under {at}")?;
    } else {
        for (host, address) in &announced.hosts {
            showln!("  announced: {address} by {host}, under {at}")?;
        }
    }
    Ok(())
}
