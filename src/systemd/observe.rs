//! What the host makes of an instance's installed units, for `plan` and
//! `apply` to compare with the template: systemd's view of each unit
//! (enabled, loaded as on disk, running, drop-ins), Docker's of each
//! container (running, paused, on the instance network) and of containers
//! of the instance that no unit runs, and, after an interrupted apply,
//! which units may still run the configuration from before it.

use crate::docker;
use crate::plan::{Observation, Observed, Plan};
use crate::render::{self, UnitFile};
use crate::state::Intent;
use crate::systemd::{Error, Systemd};

/// Observes every unit of `plan` that is installed and stays (kept or
/// changed). `installed`: the unit files found on the host; `intent`: the
/// record of an apply that did not finish.
pub fn observe(
    systemd: &Systemd,
    installed: &[UnitFile],
    plan: &Plan,
    intent: Option<&Intent>,
) -> Result<Observation, Error> {
    let mut names: Vec<&String> = plan.keep.iter().collect();
    names.extend(plan.change.iter().map(|c| &c.new.name));
    let manager_started = match intent {
        Some(_) => systemd.started_at()?,
        None => 0,
    };
    let mut observed = Vec::new();
    // (index in `observed`, owner, container name) of the running units
    // that run a container.
    let mut with_container = Vec::new();
    // (index in `observed`, network) of the active network unit.
    let mut network_unit = None;
    for name in names {
        // A template (`x@.service`, e.g. a failure hook) has no state of
        // its own: only its instances do, and systemd refuses to load it.
        if name.contains("@.") {
            continue;
        }
        let state = systemd.unit_state(name)?;
        let old_configuration = state.is_active()
            && intent.is_some_and(|i| {
                i.may_run_old(name, state.active_enter_timestamp, manager_started)
            });
        let owner = installed
            .iter()
            .find(|u| &u.name == name)
            .and_then(|u| render::owner(&u.text));
        if state.is_active()
            && let Some(network) = owner.as_ref().and_then(|o| o.network.clone())
        {
            network_unit = Some((observed.len(), network));
        }
        // A oneshot's container is done once the unit is active (exited).
        if state.is_active()
            && state.sub_state == "running"
            && let Some(owner) = owner
            && let Some(container) = owner.container()
        {
            with_container.push((observed.len(), owner, container));
        }
        // A unit's own UnitFileState is what systemd read before its last
        // reload: a unit a killed destroy (or apply) disabled and did not
        // reload reads as enabled there. After one, read it from disk.
        let unit_file_state = match intent {
            Some(_) => systemd.unit_file_state(name)?,
            None => state.unit_file_state,
        };
        observed.push(Observed {
            unit: name.clone(),
            unit_file_state,
            need_daemon_reload: state.need_daemon_reload,
            active_state: state.active_state,
            sub_state: state.sub_state,
            drop_ins: state.drop_in_paths,
            old_configuration,
            container_missing: false,
            container_paused: None,
            container_off_network: None,
            network_missing: None,
        });
    }
    // One question to Docker, and only if some active unit runs a container.
    let mut stray_containers = Vec::new();
    let mut networks_in_use = Vec::new();
    if let Some((_, owner, _)) = with_container.first() {
        let running = docker::running_containers(&owner.app, &owner.instance).map_err(|e| {
            Error::new("listing the instance's containers", zbus::Error::Failure(e))
        })?;
        let network = crate::model::prefix(&owner.app, &owner.instance);
        for (index, _, container) in &with_container {
            match running.get(container) {
                None => observed[*index].container_missing = true,
                Some(seen) if seen.paused => {
                    observed[*index].container_paused = Some(container.clone());
                }
                // Disconnected by hand: it runs, but the instance's other
                // services cannot reach it, nor it them.
                Some(seen) if !seen.networks.contains(&network) => {
                    observed[*index].container_off_network = Some(network.clone());
                }
                Some(_) => {}
            }
        }
        // Containers with the instance's labels that no installed unit
        // runs (started by hand, or left by a unit removed without
        // systemd): on the instance network under a service's alias, they
        // answer for it.
        let ours: Vec<String> = (installed.iter())
            .filter_map(|u| render::owner(&u.text)?.container())
            .collect();
        networks_in_use = (running.values())
            .flat_map(|c| c.networks.iter().cloned())
            .collect();
        stray_containers = (running.into_keys())
            .filter(|name| !ours.contains(name))
            .collect();
        stray_containers.sort();
    }
    // The network unit is a oneshot that stays active: removed by hand
    // (`docker network rm`), its network is not made again, and no service
    // can start. A container on it shows it is there; a second question
    // only when none is.
    if let Some((index, network)) = network_unit
        && !networks_in_use.contains(&network)
        && !docker::network_exists(&network).map_err(|e| {
            Error::new(
                "looking for the instance's network",
                zbus::Error::Failure(e),
            )
        })?
    {
        observed[index].network_missing = Some(network);
    }
    Ok(Observation {
        units: observed,
        stray_containers,
    })
}
