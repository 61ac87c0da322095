//! `unitgen start|stop|restart --fleet`: an instance's copies in fleet
//! started, stopped or restarted through their desired state (what
//! `fleetctl start` and `fleetctl stop` set), each awaited on its machine as
//! apply awaits a copy. Nothing is submitted or destroyed: which copies
//! exist, and from which unit file, is apply's job.
//!
//! What is acted on follows systemd, as `unitgen start|stop|restart` on a
//! host: a start takes what the chosen units want or require
//! (`Wants=`, `Requires=`, `BindsTo=`: a service's dependencies and its
//! sidekick), a stop or restart what requires or is bound to them (the
//! sidekicks). Left to systemd on the machine, these would run (or stop)
//! while fleet still says otherwise, and `status --fleet` would be wrong.
//!
//! Copies go one instance number at a time (`web@1` and the `db@1` it
//! shares a machine with, then `@2`), so a restart leaves the other copies
//! serving. A restart is a stop and a start: fleet has no restart, and a
//! copy set to `launched` again is not started again.

use std::collections::BTreeSet;

use super::FleetError;
use super::api::{FleetClient, JobState, Unit, UnitState};
use super::rollout::{
    ApplyOptions, Name, Run, classify, instance_key, is_global, rollout_error, why_copy_not_running,
};
use crate::unit_file::{self, UnitOption};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Start,
    Stop,
    Restart,
}

/// What a start, stop or restart did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controlled {
    /// The copies it stopped, started or restarted, in order.
    pub acted: Vec<String>,
    /// The copies it left as they were: already running (start) or not
    /// running (stop).
    pub left: Vec<String>,
}

/// A template of the instance, with the copies fleet holds of it.
struct Template {
    name: String,
    options: Vec<UnitOption>,
    /// The service it runs or announces (`[X-Unitgen]`).
    service: String,
    copies: Vec<Unit>,
}

impl Template {
    /// The templates of this instance a `[Unit]` dependency of this one
    /// names by copy (`x@%i.service`).
    fn names<'a>(&'a self, keys: &'a [&str]) -> impl Iterator<Item = String> + 'a {
        self.options
            .iter()
            .filter(|o| o.section == "Unit" && keys.contains(&o.name.as_str()))
            .flat_map(|o| o.value.split_whitespace())
            .filter_map(|value| match classify(value) {
                Name::Instance {
                    template,
                    instance: "%i",
                } => Some(template),
                _ => None,
            })
    }
}

/// Starts, stops or restarts the copies of `services` (every service when
/// empty) of the instance whose units fleet holds under `prefix`.
pub fn control(
    client: &FleetClient,
    prefix: &str,
    control: Control,
    services: &[String],
    options: &ApplyOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Controlled, FleetError> {
    let units: Vec<Unit> = (client.list_units()?.into_iter())
        .filter(|u| u.name.starts_with(prefix))
        .collect();
    let mut templates: Vec<Template> = units
        .iter()
        .filter(|u| matches!(classify(&u.name), Name::Template))
        .filter_map(|u| {
            let owner = crate::render::owner(&unit_file::to_text(&u.options))?;
            Some(Template {
                name: u.name.clone(),
                options: u.options.clone(),
                service: owner.service.or(owner.announces)?,
                copies: Vec::new(),
            })
        })
        .collect();
    for unit in units {
        if let Name::Instance { template, .. } = classify(&unit.name)
            && let Some(t) = templates.iter_mut().find(|t| t.name == template)
        {
            t.copies.push(unit);
        }
    }
    if templates.is_empty() {
        return Err(rollout_error(
            format!("reading the units under {prefix}"),
            "fleet has no unit of this instance (apply it first)",
        ));
    }
    let known: BTreeSet<&str> = templates.iter().map(|t| t.service.as_str()).collect();
    if let Some(unknown) = services.iter().find(|s| !known.contains(s.as_str())) {
        let known: Vec<&str> = known.into_iter().collect();
        return Err(rollout_error(
            format!(
                "looking for service `{}`",
                crate::diagnostic::shown(unknown)
            ),
            format!(
                "fleet has no such service of this instance; it has {}",
                known.join(", ")
            ),
        ));
    }
    let chosen = chosen(&templates, control, services);
    let templates: Vec<&Template> = after_order(&templates, &chosen);
    // A copy cannot be started where fleet has none: making it is apply's.
    if control != Control::Stop
        && let Some(empty) = templates.iter().find(|t| t.copies.is_empty())
    {
        return Err(rollout_error(
            format!("starting the copies of {}", empty.name),
            "fleet has no copy of it (destroyed by hand?): `unitgen apply INSTANCE --fleet` \
             makes them. Nothing was changed",
        ));
    }
    let mut instances: Vec<&str> = (templates.iter())
        .flat_map(|t| t.copies.iter())
        .filter_map(|c| match classify(&c.name) {
            Name::Instance { instance, .. } => Some(instance),
            _ => None,
        })
        .collect();
    instances.sort_by_key(|i| instance_key(i));
    instances.dedup();

    let states: Vec<UnitState> = (client.list_state(None)?.into_iter())
        .filter(|s| s.name.starts_with(prefix))
        .collect();
    let machines = client.list_machines()?;
    let mut run = Run {
        client,
        options,
        progress,
    };
    let mut done = Controlled::default();
    for instance in instances {
        // The copies of this number, in the order systemd starts them.
        let group: Vec<&Unit> = (templates.iter())
            .filter_map(|t| {
                (t.copies.iter()).find(|c| {
                    matches!(classify(&c.name), Name::Instance { instance: i, .. } if i == instance)
                })
            })
            .collect();
        let launched = |c: &Unit| c.desired_state == Some(JobState::Launched);
        let running =
            |c: &Unit| launched(c) && why_copy_not_running(c, &states, &machines).is_none();
        let to_stop: Vec<&Unit> = match control {
            Control::Stop | Control::Restart => {
                group.iter().copied().filter(|c| launched(c)).collect()
            }
            // One fleet says is launched but that does not run (failed, or
            // stopped on its machine) starts only from loaded: fleet does
            // not start a unit again that it already has launched.
            Control::Start => (group.iter().copied())
                .filter(|c| launched(c) && !running(c))
                .collect(),
        };
        // A global copy that does not run is unloaded instead, to be
        // started: fleet gives it no current state, and when it has stopped
        // already nothing shows that its machines have taken `loaded` in
        // before it is launched again (seen live: launched too soon, fleet
        // did not start it). Its state leaving every machine shows it.
        let unloaded = |c: &Unit| control != Control::Stop && is_global(&c.options) && !running(c);
        for copy in to_stop.iter().rev() {
            (run.progress)(&format!("stopping {}", copy.name));
            let state = if unloaded(copy) {
                JobState::Inactive
            } else {
                JobState::Loaded
            };
            client.put_unit(&copy.name, state, &[])?;
        }
        // Whether each stopped copy's stop ended `failed`: a start is
        // awaited past that.
        let mut stopped_failed: Vec<(&str, bool)> = Vec::new();
        for copy in to_stop.iter().rev() {
            let failed = if unloaded(copy) {
                run.wait_forgotten(std::slice::from_ref(&copy.name))?;
                false
            } else {
                run.wait_loaded(&copy.name, &copy.options)?
            };
            stopped_failed.push((&copy.name, failed));
        }
        if control == Control::Stop {
            done.acted.extend(to_stop.iter().map(|c| c.name.clone()));
            done.left.extend(
                (group.iter())
                    .filter(|c| !launched(c))
                    .map(|c| c.name.clone()),
            );
            continue;
        }
        for copy in group {
            if control == Control::Start && running(copy) {
                done.left.push(copy.name.clone());
                continue;
            }
            // Not awaited loaded and inactive first (as a new copy is): one
            // that fleet has loaded may already run, started on its machine
            // by a unit that wants it (a sidekick, once its service starts).
            let failed = match stopped_failed.iter().find(|(name, _)| *name == copy.name) {
                Some((_, failed)) => *failed,
                None => states.iter().any(|s| {
                    s.name == copy.name
                        && s.machine_id == copy.machine_id
                        && s.systemd_active_state == "failed"
                }),
            };
            (run.progress)(&format!("starting {}", copy.name));
            client.put_unit(&copy.name, JobState::Launched, &[])?;
            run.wait_running(&copy.name, &copy.options, failed)?;
            done.acted.push(copy.name.clone());
        }
    }
    Ok(done)
}

/// The templates to act on (by name): the named services' (every one when
/// none is named), with what systemd would start (a start: what they want,
/// require or are bound to) or stop with them (a stop, a restart: what
/// requires or is bound to them).
fn chosen(templates: &[Template], control: Control, services: &[String]) -> BTreeSet<String> {
    let mut chosen: BTreeSet<String> = (templates.iter())
        .filter(|t| services.is_empty() || services.contains(&t.service))
        .map(|t| t.name.clone())
        .collect();
    loop {
        let more: Vec<String> = match control {
            Control::Start => (templates.iter())
                .filter(|t| chosen.contains(&t.name))
                .flat_map(|t| t.names(&["Wants", "Requires", "BindsTo"]))
                .collect(),
            Control::Stop | Control::Restart => (templates.iter())
                .filter(|t| {
                    t.names(&["Requires", "BindsTo"])
                        .any(|name| chosen.contains(&name))
                })
                .map(|t| t.name.clone())
                .collect(),
        };
        let before = chosen.len();
        chosen.extend(
            more.into_iter()
                .filter(|n| templates.iter().any(|t| &t.name == n)),
        );
        if chosen.len() == before {
            return chosen;
        }
    }
}

/// The chosen templates, each after those its `After=` names (by name
/// otherwise; a circle is broken by name).
fn after_order<'t>(templates: &'t [Template], chosen: &BTreeSet<String>) -> Vec<&'t Template> {
    let mut left: Vec<&Template> = (templates.iter())
        .filter(|t| chosen.contains(&t.name))
        .collect();
    left.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ordered: Vec<&Template> = Vec::new();
    while !left.is_empty() {
        let ready = (left.iter())
            .position(|t| {
                t.names(&["After"]).all(|name| {
                    !left
                        .iter()
                        .any(|other| other.name == name && other.name != t.name)
                })
            })
            .unwrap_or(0);
        ordered.push(left.remove(ready));
    }
    ordered
}
