//! `unitgen start|stop|restart INSTANCE [SERVICE...]`: systemd jobs for an
//! installed instance, over D-Bus, awaited and reported as apply's are; with
//! `--fleet`, the instance's copies in fleet (see `fleet::control`).

use clap::Args;
use miette::{Result, miette};

use super::fleet::{FleetArgs, FleetWaitArgs};
use super::host::HostArgs;
use super::installed::Installed;
use super::{FileArgs, Outcome};
use crate::progress::{Progress, count};
use crate::render::{Owner, UnitFile};
use crate::systemd::JobKind;
use crate::systemd::converge;

#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The instance.
    pub instance: String,
    /// Only these services (with their sidekicks) [default: every unit of
    /// the instance].
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub template: FileArgs,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    #[command(flatten)]
    pub fleet_wait: FleetWaitArgs,
}

pub fn run(kind: JobKind, args: ControlArgs) -> Result<Outcome> {
    if args.fleet.fleet {
        let (app, instance) = args.template.app_and_instance(&args.instance)?;
        let wait = args.fleet_wait.duration();
        return super::fleet::control(&args.fleet, kind, &app, &instance, &args.services, wait);
    }
    let installed = Installed::read(&args.template, &args.host, &args.instance)?;
    let name = installed.name();
    // A service it does not have is refused before the lock (which makes
    // the state directory) is taken: a mistake changes nothing.
    installed.select(&args.services)?;
    // Not interleaved with an apply, rollback or destroy of the instance.
    let (_state, _lock) = args.host.lock(&installed.app, &installed.instance)?;
    let selected: Vec<_> = installed
        .select(&args.services)?
        .into_iter()
        // What timers start (a backup, a check) is only stopped here: a
        // start would run a backup now, and it waits for this command's
        // lock. Templates take no jobs.
        .filter(|(unit, owner)| {
            !unit.name.contains("@.") && (kind == JobKind::Stop || owner.started_by.is_none())
        })
        // Restarting the instance target would restart each unit a second
        // time (they are part of it); its units are restarted directly.
        .filter(|(unit, _)| !(kind == JobKind::Restart && unit.name.ends_with(".target")))
        .collect();
    // The routes unit is reloaded, not restarted, as apply reloads it when
    // it changed (`plan::reloads_on_change`): it runs nothing, and a
    // restart's stop removes the instance's routes before writing them
    // again once its services are up. The router answered 404 meanwhile,
    // and with routes in etcd every host's router did, for every host the
    // instance runs on. A reload writes them over the old ones (and starts
    // the unit if it is not running).
    let (reloads, units): (Vec<_>, Vec<_>) = (selected.into_iter())
        .partition(|(_, owner)| kind == JobKind::Restart && owner.routes.is_some());
    let names = |units: Vec<&(UnitFile, Owner)>| -> Vec<String> {
        units
            .into_iter()
            .map(|(unit, _)| unit.name.clone())
            .collect()
    };
    let (reloads, units) = (names(reloads), names(units));
    let progress = Progress::default();
    let settle = std::time::Duration::from_secs(super::apply::DEFAULT_SETTLE);
    let jobs = [
        (kind, units.as_slice()),
        (JobKind::ReloadOrRestart, reloads.as_slice()),
    ];
    converge::control(&args.host.host()?, &jobs, settle, &progress).map_err(|failure| {
        // As apply reports it: each failed unit explained, in plain lines.
        for explanation in &failure.explained {
            eprintln!();
            for line in explanation.lines() {
                crate::say!("{line}");
            }
        }
        miette!("{name}: {}", failure.message)
    })?;
    let done = match kind {
        JobKind::Start => "started",
        JobKind::Stop => "stopped",
        JobKind::Restart => "restarted",
        JobKind::ReloadOrRestart => "reloaded",
    };
    let mut said = format!("{name}: {} {done}", count(units.len(), "unit"));
    if !reloads.is_empty() {
        said.push_str(&format!(", its routes reloaded ({})", reloads.join(", ")));
    }
    progress.line(&said);
    Ok(Outcome::Clean)
}
