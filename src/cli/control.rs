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
use crate::state::{InstanceState, Intent};
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
        // The endpoint is the instance's, if its template names one.
        let on_fleet = args.fleet.of_named(&args.template, &args.instance);
        return super::fleet::control(&on_fleet, kind, &app, &instance, &args.services, wait);
    }
    let installed = Installed::read(&args.template, &args.host, &args.instance)?;
    let name = installed.name();
    // A service it does not have is refused before the lock (which makes
    // the state directory) is taken: a mistake changes nothing.
    installed.select(&args.services)?;
    // Not interleaved with an apply, rollback or destroy of the instance.
    let command = match kind {
        JobKind::Start => "start",
        JobKind::Stop => "stop",
        _ => "restart",
    };
    let (state, _lock) = args
        .host
        .lock(command, &installed.app, &installed.instance)?;
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
    let networks: Vec<String> = (selected.iter())
        .filter(|(_, owner)| owner.network.is_some())
        .map(|(unit, _)| unit.name.clone())
        .collect();
    let routed_units: Vec<String> = (selected.iter())
        .filter(|(_, owner)| !owner.routed.is_empty())
        .map(|(unit, _)| unit.name.clone())
        .collect();
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
    let host = args.host.host()?;
    let report = |failure: converge::Failure| {
        // As apply reports it: each failed unit explained, in plain lines.
        for explanation in &failure.explained {
            eprintln!();
            for line in explanation.lines() {
                crate::say!("{line}");
            }
        }
        miette!("{name}: {}", failure.message)
    };
    // A zero-downtime switch that a killed apply, rollback or restart left
    // is finished first, as apply does: while the router sends the traffic
    // to its stand-ins, they keep it until the services are restarted
    // behind them. A plain restart then restarted the network unit too,
    // and with it the stand-ins (they require it) on new host ports: the
    // router, still sending them the traffic, answered 503 until the next
    // apply, and restart said all was well.
    let record = state.dir().join(crate::systemd::handover::RECORD);
    let resumed = match kind {
        JobKind::Restart => {
            crate::systemd::handover::resume(&host, &record, &progress).map_err(|mut failure| {
                failure.message = format!("restart failed: {}", failure.message);
                report(failure)
            })?
        }
        _ => None,
    };
    // Routed services restart as apply replaces them: the stand-ins kept
    // with the revision take the traffic first (see `handover`), so the
    // router never sends a request to a container that is stopping.
    let resuming = resumed.is_some();
    let switched = match (kind, resumed) {
        (_, Some(resumed)) => Some(resumed),
        (JobKind::Restart, None) => match kept_handover(&state, &host, &units, &routed_units)? {
            Some(handover) => {
                // The routes first: the switch keeps the file as it is
                // then, and puts it back after.
                let only_reloads = [(JobKind::ReloadOrRestart, reloads.as_slice())];
                converge::control(&host, &only_reloads, settle, &progress).map_err(report)?;
                let routed: Vec<&str> = handover.services.iter().map(|s| s.unit.as_str()).collect();
                handover
                    .switch_units(&host, &routed, &progress)
                    .map_err(|mut failure| {
                        failure.message = format!("restart failed: {}", failure.message);
                        report(failure)
                    })?
            }
            None => None,
        },
        _ => None,
    };
    let Some(switched) = switched else {
        let jobs = [
            (kind, units.as_slice()),
            (JobKind::ReloadOrRestart, reloads.as_slice()),
        ];
        converge::control(&host, &jobs, settle, &progress).map_err(report)?;
        forget_finished(&state, &installed, &progress);
        return done(kind, &name, &units, &reloads, &progress);
    };
    // The stand-ins are on the instance's network: restarting its unit
    // would restart them too (they require it) while they have the
    // traffic, and it cannot remove a network they are attached to.
    let units: Vec<String> = (units.into_iter())
        .filter(|unit| !networks.contains(unit))
        .collect();
    let restarted = converge::control(&host, &[(kind, units.as_slice())], settle, &progress);
    // Back to the services' own units, restarted or not (if not, this
    // waits for them and leaves the traffic on the stand-ins, for the
    // next apply to finish).
    let back = switched.finish(&host, &progress);
    restarted.map_err(report)?;
    back.map_err(report)?;
    // A resumed switch's routes are reloaded once it is switched back: a
    // reload before would have written the routes to the services over
    // the switch while they restart.
    if resuming {
        let reloads = [(JobKind::ReloadOrRestart, reloads.as_slice())];
        converge::control(&host, &reloads, settle, &progress).map_err(report)?;
    }
    forget_finished(&state, &installed, &progress);
    done(kind, &name, &units, &reloads, &progress)
}

/// Drops the record of an apply or rollback killed once it had recorded
/// its revision (`Intent::left_nothing_to_do`) when this command has
/// succeeded and no zero-downtime switch is left (a restart finishes one
/// first): that command is done. Kept, it made the next `rollback` say
/// "finishing the rollback to revision N" and stay at N, where plan and
/// status told nothing unfinished, instead of going back one revision.
fn forget_finished(state: &InstanceState, installed: &Installed, progress: &Progress) {
    let Ok(Some(intent)) = state.intent() else {
        return;
    };
    if state.dir().join(crate::systemd::handover::RECORD).exists() {
        return;
    }
    let Ok(latest) = state.revisions().map(|mut r| r.pop()) else {
        return;
    };
    let units: Vec<UnitFile> = (installed.units.iter())
        .map(|(unit, _)| unit.clone())
        .collect();
    let recorded = crate::state::is_recorded(latest.as_ref(), &units);
    if intent.left_nothing_to_do(latest.as_ref(), recorded)
        && let Err(e) = state.finish::<Intent>()
    {
        progress.line(&format!("warning: {e}"));
    }
}

/// The stand-ins the installed revision's apply kept (`handover::STORED`)
/// for those of `units` that are routed services; None when there are
/// none, or while a killed command's handover is left to finish. Refused
/// when they cannot be read and `routed` (the routed services among the
/// units restarted) is not empty: they would restart under the router.
fn kept_handover(
    state: &InstanceState,
    host: &converge::Host,
    units: &[String],
    routed: &[String],
) -> Result<Option<crate::systemd::handover::Handover>> {
    use crate::systemd::handover::{self, Handover, Replacement};
    let record = state.dir().join(handover::RECORD);
    if record.exists() {
        return Ok(None);
    }
    // A revision record that cannot be read hides which stand-ins it kept:
    // refused, as the routed services would restart under the router.
    let revisions = match state.revisions() {
        Ok(revisions) => revisions,
        Err(e) if !routed.is_empty() => {
            return Err(miette::miette!(
                "{}: cannot restart {} without downtime: reading its revisions: {e}\nnothing \
                 on the host was changed",
                state.name(),
                routed.join(", ")
            ));
        }
        Err(_) => return Ok(None),
    };
    let Some(latest) = revisions.last().map(|r| r.number) else {
        return Ok(None);
    };
    let dir = state.revision_dir(latest);
    let stored = match Handover::stored(&dir, host.root.as_deref(), record, Replacement::FreshCopy)
    {
        Ok(stored) => stored,
        Err(handover::Unusable::Newer(newer)) => {
            return Err(miette::miette!("{newer}\nnothing on the host was changed"));
        }
        Err(e) if !routed.is_empty() => {
            return Err(super::rollback::standins_unreadable(
                &state.name(),
                &e.to_string(),
                &dir.join(handover::STORED),
                &format!("restart {}", routed.join(", ")),
            ));
        }
        Err(_) => None,
    };
    Ok(stored
        .map(|handover| handover.only(units))
        .filter(|handover| !handover.services.is_empty()))
}

fn done(
    kind: JobKind,
    name: &str,
    units: &[String],
    reloads: &[String],
    progress: &Progress,
) -> Result<Outcome> {
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
