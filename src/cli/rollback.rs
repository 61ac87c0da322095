//! `unitgen rollback` and `unitgen destroy`.

use std::time::Duration;

use clap::Args;
use miette::{Result, miette};

use super::apply::{How, converge_and_record};
use super::fleet::{self, FleetArgs};
use super::host::HostArgs;
use super::{FileArgs, Outcome};
use crate::fault;
use crate::progress::Progress;
use crate::state::{Command, Intent, Provenance, UnderWay as _};
use crate::systemd::converge;

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The instance to roll back.
    pub instance: String,
    /// The revision to go back to [default: the one before the current].
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,
    #[command(flatten)]
    pub template: FileArgs,
    #[command(flatten)]
    pub host: HostArgs,
    // Refused: revisions are recorded per host, not on fleet.
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Seconds every restarted unit must stay up (see `apply --settle`).
    #[arg(long, value_name = "SECONDS", default_value_t = 1)]
    pub settle: u64,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The instance to remove from this host.
    pub instance: String,
    /// Also delete the instance's named volumes (its data). Without this,
    /// volumes are kept, so a destroy never loses data by accident.
    #[arg(long)]
    pub volumes: bool,
    #[command(flatten)]
    pub template: FileArgs,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

pub fn rollback(args: RollbackArgs) -> Result<Outcome> {
    if args.fleet.fleet {
        return Err(fleet::refuse_revisions("rollback"));
    }
    let (app, instance) = args.host.app_of(&args.template, &args.instance)?;
    let name = crate::model::prefix(&app, &instance);
    let (state, _lock) = args.host.lock("rollback", &app, &instance)?;
    let revisions = state
        .revisions()
        .map_err(|e| miette!("reading revisions of {name}: {e}"))?;
    let Some(current) = revisions.last() else {
        return Err(miette!("{name} has no recorded revision to roll back from"));
    };
    // A rollback killed halfway (or after it recorded its revision, while
    // its stand-ins drained) is finished, not rolled back in turn: the
    // revision before the current one may be the very one it was leaving.
    let interrupted = match state.intent().map_err(|e| miette!("{e}"))? {
        // It may be a rollback's: going to the revision before the current
        // one could undo the very revision it recorded.
        Some(Intent {
            unreadable: Some(why),
            ..
        }) if args.to.is_none() => {
            let known: Vec<String> = revisions.iter().map(|r| r.number.to_string()).collect();
            return Err(miette!(
                help = format!(
                    "`unitgen rollback {instance} --to N` goes to revision N (recorded: {}; \
                     `unitgen history {instance}` shows them), keeping the record as {}.unreadable",
                    known.join(", "),
                    Intent::FILE
                ),
                "{name}: the record of an earlier command that did not finish is unreadable \
                 ({why}): it may have been a rollback, so which revision to go back to is \
                 unknown\nnothing on the host was changed"
            ));
        }
        Some(Intent {
            command: Command::Rollback { to },
            ..
        }) => Some(to),
        _ => None,
    };
    let target = match (args.to, interrupted) {
        (Some(n), _) => n,
        (None, Some(to)) => {
            crate::say!("{name}: finishing the rollback to revision {to} that was interrupted");
            to
        }
        (None, None) => revisions
            .iter()
            .rev()
            .find(|r| r.digest != current.digest)
            .map(|r| r.number)
            .ok_or_else(|| miette!("{name} has no earlier revision than {}", current.number))?,
    };
    let revision = state.load(target).map_err(|e| {
        if !revisions.iter().any(|r| r.number == target) {
            let known: Vec<String> = revisions.iter().map(|r| r.number.to_string()).collect();
            return miette!(
                "{name} has no revision {target}; recorded: {}",
                known.join(", ")
            );
        }
        // Damaged since it was recorded: refused with the way out.
        miette!("{name}: revision {target}: {e}\nnothing on the host was changed")
    })?;
    // Secret values are never recorded: the revision's services get the
    // values the secrets files hold now. One the files no longer hold at
    // all (an apply since removed it) would be silently missing.
    let store = crate::secrets::Store::new(&args.host.state_dir()?, &name);
    let mismatches = store.compare(&name, &revision.units).map_err(|e| {
        miette!(
            "reading {name}'s secrets in {} (root-only): {e}",
            crate::diagnostic::shown_path(store.dir())
        )
    })?;
    let (missing, other_values): (Vec<_>, Vec<_>) = mismatches.into_iter().partition(|m| m.missing);
    if !missing.is_empty() {
        let named: Vec<String> = (missing.iter())
            .map(|m| format!("{} to {}", m.variable, m.unit))
            .collect();
        return Err(miette!(
            help = "apply a template that gives these secrets instead",
            "cannot roll {name} back to revision {target}: its units give {}, which no secrets \
             file holds any more (an apply since removed them), and rollback restores units, \
             never secret values\nnothing on the host was changed",
            named.join(", ")
        ));
    }
    let host = args.host.host()?;
    super::apply::refuse_unreachable_engine(&host, &format!("rollback of {name}"))?;
    let record = state.dir().join(crate::systemd::handover::RECORD);
    // The stand-ins the revision's apply kept: its routed services take
    // the traffic over without downtime, as in that apply. Damaged, they
    // are not taken for none (the services would restart under the
    // router): refused, before anything changes.
    let kept = crate::systemd::handover::Handover::stored(
        &state.revision_dir(target),
        host.root.as_deref(),
        record.clone(),
        crate::systemd::handover::Replacement::RolledBack,
    );
    let kept = match kept {
        Ok(kept) => kept,
        Err(crate::systemd::handover::Unusable::Newer(newer)) => {
            return Err(miette!("{newer}\nnothing on the host was changed"));
        }
        Err(e)
            if revision
                .units
                .iter()
                .any(|u| crate::plan::is_routed(&u.text)) =>
        {
            let file = state
                .revision_dir(target)
                .join(crate::systemd::handover::STORED);
            return Err(standins_unreadable(
                &name,
                &e.to_string(),
                &file,
                &format!("roll back to revision {target}"),
            ));
        }
        Err(_) => None,
    };
    crate::say!("rolling {name} back to revision {target}");
    for m in &other_values {
        crate::say!(
            "note: {} gets the current value of {}, not the one of revision {target} \
             (rollback restores units, never secret values)",
            m.unit,
            m.variable
        );
    }
    // A zero-downtime switch that a killed apply left is finished, as apply
    // does: its router may still send the traffic to that apply's new
    // version (its stand-in), which this rollback would leave serving. The
    // stand-in keeps it while the revision's units converge behind it.
    let resumed =
        crate::systemd::handover::resume(&host, &record, &Progress::default()).map_err(|f| {
            miette!(
                "rollback of {name} failed: {}\nnothing else on the host was changed",
                f.message
            )
        })?;
    let installed = args.host.installed(&app, &instance)?;
    converge_and_record(
        &host,
        &state,
        &installed,
        &revision.units,
        Provenance {
            inputs: revision.info.inputs,
            volumes: revision.info.volumes,
            rollback_of: Some(target),
        },
        How {
            settle: Duration::from_secs(args.settle),
            // A revision's images were on this host when it ran: fetch
            // only what has been removed since.
            pull: crate::pull::PullPolicy::Missing,
            // (A resumed handover's stand-ins keep the traffic instead.)
            handover: kept,
            resumed,
            // Nor the routes file's expected text: its unit's start or
            // reload writes it.
            routes: None,
        },
        None,
    )?;
    Ok(Outcome::Clean)
}

/// The refusal of `what` (a restart or rollback of routed services) when
/// the stand-ins kept with the revision (`file`) cannot be read (`why`):
/// taken for none, the services would restart under the router, which
/// would answer 502 meanwhile. Two ways out, neither losing anything.
pub fn standins_unreadable(
    name: &str,
    why: &str,
    file: &std::path::Path,
    what: &str,
) -> miette::Report {
    let file = file.to_string_lossy();
    let move_away = crate::diagnostic::command_line(["mv", &file, &format!("{file}.unreadable")]);
    miette!(
        help = format!(
            "`unitgen apply` keeps them again when the template renders that revision; or move \
             the file away:\n{move_away}\nand {what} again: its routed services then \
             restart with downtime, as those of a revision recorded before stand-ins were kept"
        ),
        "{name}: cannot {what} without downtime: the stand-ins of its routed services, kept \
         with the revision, are unreadable: {why}\nnothing on the host was changed"
    )
}

pub fn destroy(args: DestroyArgs) -> Result<Outcome> {
    // The endpoint is the instance's, if its template names one.
    let on_fleet = args.fleet.of_named(&args.template, &args.instance);
    let (app, instance) = if args.fleet.fleet {
        fleet::app_of(&on_fleet, &args.template, &args.instance)?
    } else {
        args.host.app_of(&args.template, &args.instance)?
    };
    if args.fleet.fleet && args.volumes {
        // fleet's API cannot reach the Docker engines of its machines.
        return Err(miette!(
            help = format!(
                "destroy without --volumes, then on each machine that ran it \
                 (`fleetctl list-machines`): `docker volume ls --filter name={}-` lists \
                 them, `docker volume rm NAME` removes one",
                crate::model::prefix(&app, &instance)
            ),
            "`unitgen destroy --fleet --volumes`: the volumes are on each machine's Docker \
             engine, which unitgen cannot reach through fleet; nothing was changed"
        ));
    }
    if args.fleet.fleet {
        return fleet::destroy(&on_fleet, &app, &instance);
    }
    let name = crate::model::prefix(&app, &instance);
    let (state, lock) = args.host.lock("destroy", &app, &instance)?;
    let installed = args.host.installed(&app, &instance)?;
    // The volumes to remove are known only from the state folder: those
    // every apply noted before it started anything (a failed first apply
    // records no revision, and its containers made them all the same),
    // and the latest revision's (recorded before they were noted). A
    // record that cannot be read must stop `--volumes`, not shrink it.
    let mut volumes: Vec<String> = state
        .revisions()
        .map_err(|e| miette!("reading revisions of {name}: {e}"))?
        .pop()
        .map(|r| r.volumes)
        .unwrap_or_default();
    match state.noted_volumes() {
        Ok(noted) => volumes.extend(noted),
        Err(e) if args.volumes => return Err(miette!("reading the volumes of {name}: {e}")),
        // Only told as kept: those the revision names are told still.
        Err(_) => {}
    }
    volumes.sort();
    volumes.dedup();
    let progress = Progress::default();
    // A destroy killed halfway recorded what it was removing: its files go
    // one by one, and the routes file names the router's folder.
    let (mut units, routes) = match state.intent().map_err(|e| miette!("{e}"))? {
        Some(Intent {
            command: Command::Destroy { units, routes, .. },
            ..
        }) => {
            progress.line(&format!(
                "{name}: finishing the destroy that was interrupted"
            ));
            (units, routes)
        }
        _ => (Vec::new(), None),
    };
    for unit in &installed {
        if !units.contains(&unit.name) {
            units.push(unit.name.clone());
        }
    }
    let routes = installed
        .iter()
        .find_map(super::apply::routes_file)
        .or(routes);
    // A killed apply's handover record that a newer unitgen wrote is
    // refused before anything changes, as apply refuses it.
    let record = state.dir().join(crate::systemd::handover::RECORD);
    crate::systemd::handover::left(&record, "an earlier")
        .map_err(|e| miette!("destroying {name}: {e}\nnothing on the host was changed"))?;
    // Before the host changes: a kill from here on is seen by `plan` and
    // finished by the next destroy (see `Intent`).
    state
        .begin(&Intent::destroy(
            units.clone(),
            routes.clone(),
            args.volumes,
        ))
        .map_err(|e| miette!("destroying {name}: recording what it is about to do: {e}"))?;
    fault::point("after-intent");
    let host = args.host.host()?;
    // A stand-in a killed apply left is no unit of the instance's: it goes
    // first (the routes go with the routes unit below).
    crate::systemd::handover::abandon(&host, &record, &progress)
        .map_err(|f| miette!("destroying {name}: {}", f.message))?;
    if units.is_empty() {
        progress.line(&format!("{name} has no units installed"));
    } else {
        converge::remove_all(&host, &units, &progress)
            .map_err(|f| miette!("destroying {name}: {}", f.message))?;
        progress.line(&format!(
            "{name}: {} stopped and removed",
            crate::progress::count(units.len(), "unit")
        ));
    }
    // Stopping the routes unit removed the routes file; the router goes
    // too when it serves no other instance.
    if let Some(file) = &routes {
        let held = crate::router::RouterLock::take(&args.host.state_dir()?, &progress)
            .map_err(|e| miette!("destroying {name}'s routes: {e}"))?;
        crate::router::after_destroy(&held, &host, file, &name, &progress)
            .map_err(|f| miette!("destroying {name}'s routes: {}", f.message))?;
        fault::point("after-unroute");
    }
    // Secrets go with the units that used them, whatever happens to volumes.
    let store = crate::secrets::Store::new(&args.host.state_dir()?, &name);
    store.remove_values().map_err(|e| {
        miette!(
            "removing {name}'s secrets from {}: {e}",
            crate::diagnostic::shown_path(store.dir())
        )
    })?;
    fault::point("after-remove-secrets");
    if args.volumes {
        let failed = crate::docker::remove_volumes(&volumes);
        if let Some((volume, why)) = failed.first() {
            return Err(miette!(
                "could not remove volume {volume}: {why}\n\
                 everything else of {name} is removed: `unitgen destroy {app}/{instance} --volumes` \
                 finishes the job"
            ));
        }
        progress.line(&if volumes.is_empty() {
            format!("{name}: no named volumes to remove")
        } else {
            format!("{name}: volumes removed: {}", volumes.join(", "))
        });
        fault::point("after-remove-volumes");
        // The intent goes with the rest: the last step, the lock held (it
        // was let go before, and a command waiting for it went on in the
        // folder this then removed: an apply failed, "applying.json: No
        // such file or directory", or lost its record midway). A command
        // waiting takes the lock of the folder made anew
        // (`InstanceState::lock`).
        state
            .remove()
            .map_err(|e| miette!("forgetting {name}'s revisions: {e}"))?;
        drop(lock);
        return Ok(Outcome::Clean);
    }
    // Only those still there: a `destroy --volumes` killed after it removed
    // them is finished by a plain destroy, which must not call them kept.
    let volumes = crate::docker::existing_volumes(&volumes);
    if !volumes.is_empty() {
        progress.line(&format!(
            "{name}: volumes kept: {} (destroy again with --volumes to delete them)",
            volumes.join(", ")
        ));
    }
    // Done: the revisions stay (for `ls`, `history` and a later apply).
    state
        .finish::<Intent>()
        .map_err(|e| miette!("destroying {name}: forgetting its record: {e}"))?;
    Ok(Outcome::Clean)
}
