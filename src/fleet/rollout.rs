//! Planning and applying an instance's units on fleet.
//!
//! Services are template units (`blog-staging-web@.service`); the cluster
//! runs copies of them (`blog-staging-web@1.service`, ...), each created from
//! the template's options as fleetctl does (fleetctl/fleetctl.go
//! `lazyCreateUnits`). A changed template is replaced and its running
//! copies rolled one at a time: unload copy N (desired state `inactive`),
//! submit the new template (before the first copy only), wait until fleet
//! has forgotten the old copy N's state, submit the new options under its
//! name, loaded (fleet replaces a unit whose options differ), wait until its
//! machine reports the NEW unit file (by hash) loaded and not running,
//! launch it, wait until fleet reports it launched and that machine reports
//! it active, then copy N+1. Which copies exist is never changed by a roll,
//! nor by a roll killed halfway: the copy being replaced stays in fleet,
//! unloaded, where plan names it as not running and the next apply replaces
//! it (a destroyed one would be gone, and one of several not known to be
//! missing).
//!
//! How many copies a service has is the instance's `fleet.copies`, numbered
//! 1 to N (one for a global service, which fleet runs on every machine), as
//! every other setting: changed by editing it and applying. A copy fleet
//! lacks (destroyed by hand) is started, one beyond them (`fleetctl start
//! web@3.service` by hand, a count lowered) is destroyed, sidekick first.
//!
//! Why the waits: an unloaded copy's process outlives it by as long as its
//! container takes to stop, and its state by a second or more, or not at all
//! (fleet drops it once it has asked systemd to stop the unit). A start of
//! the same name issued meanwhile cancels the pending stop: the new unit file
//! is loaded, the OLD process keeps running, and systemd reports it active
//! (seen on a live fleet v1.0). Loaded and inactive means nothing runs.
//! Re-submitting the options to the live copy (fleet replaces a unit whose
//! options differ) would not restart it either.
//!
//! Sidekicks: a template whose `[X-Fleet] MachineOf=` names a service's copy
//! by instance (`MachineOf=blog-staging-web@%i.service`) is that service's
//! sidekick. It has exactly the copies its service has (same instance
//! names), and is rolled together with its service, since destroying a
//! service copy also stops the sidekick bound to it. A sidekick of a
//! sidekick joins the same service, started after the one it follows.
//!
//! Units without `@` (a timer, a global unit) are handled as one copy of
//! themselves: replaced by unload + submit + start. One that names another
//! such unit in `MachineOf=` is its sidekick in the same way.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use super::api::{FleetClient, JobState, Machine, Unit, UnitState, unit_hash};
use super::{ErrorKind, FleetError};
use crate::unit_file::{self, UnitOption};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Change,
    Remove,
    Unchanged,
}

/// A unit fleet runs: a copy of a template (`web@2.service`, instance `2`),
/// or a plain unit itself (instance empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCopy {
    pub name: String,
    pub instance: String,
    pub desired_state: JobState,
    pub options: Vec<UnitOption>,
    /// Why a copy that should run does not (a dead sidekick, a failed
    /// container, an older unit file on its machine), if so: the copy is
    /// replaced by the next apply.
    pub not_running: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedUnit {
    /// A template (`x@.service`) or a plain unit name.
    pub name: String,
    pub action: Action,
    /// What fleet holds under this name now.
    pub current: Option<Vec<UnitOption>>,
    /// What the instance wants (`None` when the unit is being removed).
    pub desired: Option<Vec<UnitOption>>,
    /// What fleet runs: a template's copies, or a plain unit itself.
    pub copies: Vec<UnitCopy>,
    /// The service template this one is a sidekick of.
    pub sidekick_of: Option<String>,
    /// Copies (instance names) it should have but fleet has not: every copy
    /// of a new service, one destroyed by hand, one of a count raised.
    pub missing: Vec<String>,
    /// Copies fleet has beyond the ones it should have, and why each is one
    /// too many: apply destroys them.
    pub extra: Vec<(String, String)>,
    /// Why no machine of the cluster may run it (no machine has the
    /// `MachineMetadata=` it requires), if so: fleet would never place it.
    pub unplaceable: Option<String>,
}

impl PlannedUnit {
    pub fn is_template(&self) -> bool {
        matches!(classify(&self.name), Name::Template)
    }

    /// Whether its copy `instance` is one too many (apply destroys it).
    pub fn is_extra(&self, instance: &str) -> bool {
        self.extra.iter().any(|(extra, _)| extra == instance)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetPlan {
    pub prefix: String,
    /// Sorted by name.
    pub units: Vec<PlannedUnit>,
}

impl FleetPlan {
    pub fn with_action(&self, action: Action) -> impl Iterator<Item = &PlannedUnit> {
        self.units.iter().filter(move |u| u.action == action)
    }

    pub fn has_changes(&self) -> bool {
        self.units.iter().any(|u| u.action != Action::Unchanged)
    }
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How long one copy may take to be launched and active.
    pub wait_timeout: Duration,
    pub poll_interval: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            wait_timeout: Duration::from_secs(120),
            // fleetctl polls every 500ms when it waits for a unit.
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// One unit of an instance as fleet sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    pub name: String,
    pub desired_state: Option<JobState>,
    pub current_state: Option<JobState>,
    pub machine_id: String,
    /// What systemd reports, if the unit is loaded on a machine (not for
    /// a global unit: see `on_machines`).
    pub systemd: Option<UnitState>,
    /// A global unit (fleet gives it no machine and keeps no current state
    /// of it): each machine that may run it (by its `MachineMetadata=`) or
    /// reports it, with what systemd reports there, if anything.
    pub on_machines: Vec<(String, Option<UnitState>)>,
    pub options: Vec<UnitOption>,
    /// Why it does not run as an instance's unit should (a copy stopped,
    /// failed, unplaced; a template with no copy at all), if so.
    pub not_running: Option<String>,
    /// Why a copy is not its template (fleet holds other options under its
    /// name: changed by hand), if so. Its process may run the old ones.
    pub not_as_applied: Option<String>,
}

pub(super) enum Name<'a> {
    Plain,
    Template,
    Instance { template: String, instance: &'a str },
}

// As fleet's unit.NewUnitNameInfo: everything between the first `@` and
// the last `.` is the instance.
pub(super) fn classify(name: &str) -> Name<'_> {
    let Some(dot) = name.rfind('.') else {
        return Name::Plain;
    };
    let (base, suffix) = name.split_at(dot);
    match base.split_once('@') {
        None => Name::Plain,
        Some((_, "")) => Name::Template,
        Some((stem, instance)) => Name::Instance {
            template: format!("{stem}@{suffix}"),
            instance,
        },
    }
}

/// `web@.service` + `2` → `web@2.service`; a plain unit is its own copy.
fn copy_name(unit: &str, instance: &str) -> String {
    match unit.split_once("@.") {
        Some((stem, suffix)) => format!("{stem}@{instance}.{suffix}"),
        None => unit.to_owned(),
    }
}

// Copies in numeric order (2 before 10), then any named ones.
pub(super) fn instance_key(instance: &str) -> (u8, u64, &str) {
    match instance.parse::<u64>() {
        Ok(n) => (0, n, instance),
        Err(_) => (1, 0, instance),
    }
}

/// The units a unit must share a machine with (`[X-Fleet] MachineOf=`).
fn machine_of(options: &[UnitOption]) -> impl Iterator<Item = &str> {
    options
        .iter()
        .filter(|o| {
            o.section == "X-Fleet" && (o.name == "MachineOf" || o.name == "X-ConditionMachineOf")
        })
        .map(|o| o.value.as_str())
}

/// The unit this one is a sidekick of, by its `MachineOf=`: a template
/// follows a template by instance (`x@%i.service` → `x@.service`), a plain
/// unit follows a plain unit by name.
fn followed(unit: &str, options: &[UnitOption]) -> Option<String> {
    let template = matches!(classify(unit), Name::Template);
    machine_of(options).find_map(|value| match (template, classify(value)) {
        (
            true,
            Name::Instance {
                template,
                instance: "%i",
            },
        ) => Some(template),
        (false, Name::Plain) => Some(value.to_owned()),
        _ => None,
    })
}

/// `[X-Fleet] Global=` as job/job.go reads it.
pub(super) fn is_global(options: &[UnitOption]) -> bool {
    unit_file::section_value(options, "X-Fleet", "Global").is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "yes" | "1" | "on" | "t"
        )
    })
}

/// Why a launched copy is not running its unit file, from fleet's unit and
/// the states its machines report; `None` when it runs (or is starting).
fn why_not_running(unit: &Unit, states: &[UnitState]) -> Option<String> {
    let hash = &unit.hash;
    let state = states
        .iter()
        .find(|s| s.name == unit.name && s.machine_id == unit.machine_id);
    match state {
        _ if unit.machine_id.is_empty() => Some("fleet has not placed it on a machine".to_owned()),
        None => Some(format!(
            "machine {} reports no state for it",
            unit.machine_id
        )),
        Some(s) if &s.hash != hash => Some(format!(
            "machine {} runs another unit file under its name (hash {})",
            s.machine_id, s.hash
        )),
        // `activating/auto-restart` is a restart loop, not a start.
        Some(s)
            if matches!(s.systemd_active_state.as_str(), "active" | "reloading")
                || (s.systemd_active_state == "activating"
                    && s.systemd_sub_state != "auto-restart") =>
        {
            None
        }
        Some(s) if is_restart_loop(s) => Some(format!(
            "it fails on machine {}, and systemd starts it again and again (activating/auto-restart)",
            s.machine_id
        )),
        Some(s) => Some(format!(
            "systemd reports {}/{} on machine {}",
            s.systemd_active_state, s.systemd_sub_state, s.machine_id
        )),
    }
}

/// A unit whose start failed and that systemd starts again after
/// `RestartSec=` (`Restart=always`, as unitgen's are): it never reaches
/// `failed`. Seen live, a copy whose `docker run` fails: activating/start-post
/// and activating/auto-restart in turn, for as long as anyone waits.
fn is_restart_loop(state: &UnitState) -> bool {
    state.systemd_active_state == "activating" && state.systemd_sub_state == "auto-restart"
}

/// Why a start awaited on `machine` failed: `failed`, or a restart loop.
fn start_failed(name: &str, state: &UnitState) -> String {
    if is_restart_loop(state) {
        format!(
            "it failed on machine {}, and systemd starts it again and again (systemd: \
             activating/auto-restart; `journalctl -u {name}` there says why)",
            state.machine_id
        )
    } else {
        format!(
            "it failed on machine {} (systemd: {}/{})",
            state.machine_id, state.systemd_active_state, state.systemd_sub_state
        )
    }
}

/// A launched global unit on each machine that may run it (by its
/// `MachineMetadata=`), with why it does not run its unit file there, if it
/// does not. fleet gives a global unit no machine and no current state of
/// its own: only the machines' states tell whether it runs (seen live: one
/// stopped on its machine stays `launched` in fleet, and fleet does not
/// start it again).
fn global_states(
    unit: &Unit,
    states: &[UnitState],
    machines: &[Machine],
) -> Vec<(String, Option<String>)> {
    let wanted = metadata_wanted(&unit.options);
    (machines.iter())
        .filter(|m| has_metadata(&m.metadata, &wanted))
        .map(|m| {
            let on_machine = Unit {
                machine_id: m.id.clone(),
                ..unit.clone()
            };
            (m.id.clone(), why_not_running(&on_machine, states))
        })
        .collect()
}

/// `[X-Fleet] MachineMetadata=` requirements (`key=value`).
fn metadata_wanted(options: &[UnitOption]) -> Vec<&str> {
    options
        .iter()
        .filter(|o| o.section == "X-Fleet" && o.name == "MachineMetadata")
        .map(|o| o.value.as_str())
        .collect()
}

/// Why a copy (or plain unit) fleet holds does not run as the instance's
/// units should, if so.
pub(super) fn why_copy_not_running(
    unit: &Unit,
    states: &[UnitState],
    machines: &[Machine],
) -> Option<String> {
    match unit.desired_state.unwrap_or(JobState::Inactive) {
        JobState::Launched if is_global(&unit.options) => {
            let on_machines = global_states(unit, states, machines);
            if on_machines.is_empty() {
                // Its machines left (or none has its metadata): runs nowhere.
                return Some(
                    why_unplaceable(&unit.options, machines)
                        .unwrap_or_else(|| "fleet has no machine to run it on".to_owned()),
                );
            }
            let not_running: Vec<String> =
                on_machines.into_iter().filter_map(|(_, why)| why).collect();
            (!not_running.is_empty()).then(|| not_running.join("; "))
        }
        JobState::Launched => why_not_running(unit, states),
        // The instance's units run: a copy told to stay loaded or inactive
        // (fleetctl stop, load, unload) does not.
        other => Some(format!(
            "fleet is told to keep it {} (as `fleetctl {}` leaves it), not launched",
            other.as_str(),
            if other == JobState::Loaded {
                "stop` or `fleetctl load"
            } else {
                "unload` or `fleetctl submit"
            }
        )),
    }
}

/// Why no machine of the cluster meets the unit's `MachineMetadata=`, if
/// none does (a machine that left, metadata no machine has).
fn why_unplaceable(options: &[UnitOption], machines: &[Machine]) -> Option<String> {
    let wanted = metadata_wanted(options);
    if wanted.is_empty() || machines.iter().any(|m| has_metadata(&m.metadata, &wanted)) {
        return None;
    }
    let seen: Vec<String> = machines
        .iter()
        .map(|m| {
            let metadata: Vec<String> =
                m.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{} ({})",
                m.id,
                if metadata.is_empty() {
                    "no metadata".to_owned()
                } else {
                    metadata.join(", ")
                }
            )
        })
        .collect();
    Some(format!(
        "no machine of the cluster has MachineMetadata {} (its machines: {})",
        wanted.join(", "),
        if seen.is_empty() {
            "none".to_owned()
        } else {
            seen.join("; ")
        }
    ))
}

/// Why fleet cannot place all `copies` of a template whose `Conflicts=`
/// keeps its copies on different machines, if fewer machines of the
/// cluster may run it (by its `MachineMetadata=`): the copies beyond them
/// would stay unplaced (seen live: copy 3 of 3 on two machines).
fn why_too_few_machines(unit: &PlannedUnit, copies: u32, machines: &[Machine]) -> Option<String> {
    let options = unit.desired.as_deref()?;
    let spread = (options.iter())
        .filter(|o| o.section == "X-Fleet" && (o.name == "Conflicts" || o.name == "X-Conflicts"))
        .any(|o| {
            glob_match(&o.value, &copy_name(&unit.name, "1"))
                && glob_match(&o.value, &copy_name(&unit.name, "2"))
        });
    let wanted = metadata_wanted(options);
    let able = (machines.iter())
        .filter(|m| has_metadata(&m.metadata, &wanted))
        .count();
    (spread && copies as usize > able).then(|| {
        format!(
            "fleet.copies is {copies}, but its Conflicts={} lets each machine run one copy, \
             and only {able} of the cluster's {} machines may run it{}",
            unit_file::section_value(options, "X-Fleet", "Conflicts")
                .or_else(|| unit_file::section_value(options, "X-Fleet", "X-Conflicts"))
                .unwrap_or_default(),
            machines.len(),
            if wanted.is_empty() {
                String::new()
            } else {
                format!(" (MachineMetadata {})", wanted.join(", "))
            }
        )
    })
}

/// fleet's glob (Go's path.Match) for the patterns unitgen writes: `*`
/// and `?` (no `/` in unit names), anything else literal.
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    fn at(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| at(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && at(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && at(rest, &n[1..]),
        }
    }
    at(&p, &n)
}

pub(super) fn rollout_error(doing: impl Into<String>, detail: impl Into<String>) -> FleetError {
    FleetError::new(doing, ErrorKind::Rollout(detail.into()))
}

/// Compares the instance's desired units (file name, unit text) with what
/// fleet holds under `prefix`. Each service template is to have
/// `fleet_copies` copies (see the module's comment), its sidekicks the same.
pub fn plan(
    client: &FleetClient,
    prefix: &str,
    desired: &[(String, String)],
    fleet_copies: u32,
) -> Result<FleetPlan, FleetError> {
    let mut wanted: BTreeMap<String, Vec<UnitOption>> = BTreeMap::new();
    for (name, text) in desired {
        let doing = format!("planning {name}");
        if !name.starts_with(prefix) {
            return Err(rollout_error(
                doing,
                format!("the name does not start with `{prefix}`"),
            ));
        }
        if let Name::Instance { template, .. } = classify(name) {
            return Err(rollout_error(
                doing,
                format!("give the template `{template}`, fleet runs the copies"),
            ));
        }
        let options = unit_file::parse(text).map_err(|e| rollout_error(&doing, e.to_string()))?;
        if options.is_empty() {
            return Err(rollout_error(doing, "the unit has no options"));
        }
        if wanted.insert(name.clone(), options).is_some() {
            return Err(rollout_error(doing, "the unit is given twice"));
        }
    }

    let mut current: BTreeMap<String, Vec<UnitOption>> = BTreeMap::new();
    let mut copies: BTreeMap<String, Vec<UnitCopy>> = BTreeMap::new();
    let units = client.list_units()?;
    let machines = client.list_machines()?;
    let states = settled_states(client, prefix, &units, &machines)?;
    for unit in units {
        if !unit.name.starts_with(prefix) {
            continue;
        }
        let desired_state = unit.desired_state.unwrap_or(JobState::Inactive);
        let (owner, instance) = match classify(&unit.name) {
            Name::Template => {
                current.insert(unit.name, unit.options);
                continue;
            }
            Name::Plain => {
                current.insert(unit.name.clone(), unit.options.clone());
                (unit.name.clone(), String::new())
            }
            Name::Instance { template, instance } => (template, instance.to_owned()),
        };
        let not_running = why_copy_not_running(&unit, &states, &machines);
        copies.entry(owner).or_default().push(UnitCopy {
            name: unit.name,
            instance,
            desired_state,
            options: unit.options,
            not_running,
        });
    }

    let mut names: Vec<String> = wanted
        .keys()
        .chain(current.keys())
        .chain(copies.keys())
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    let mut units: Vec<PlannedUnit> = names
        .into_iter()
        .map(|name| {
            let desired = wanted.get(&name).cloned();
            let current = current.remove(&name);
            let mut copies = copies.remove(&name).unwrap_or_default();
            copies.sort_by(|a, b| instance_key(&a.instance).cmp(&instance_key(&b.instance)));
            let action = match &desired {
                None => Action::Remove,
                Some(_) if current.is_none() && copies.is_empty() => Action::Add,
                Some(d)
                    if current.as_ref() != Some(d)
                        || copies
                            .iter()
                            .any(|c| &c.options != d || c.not_running.is_some()) =>
                {
                    Action::Change
                }
                Some(_) => Action::Unchanged,
            };
            let unplaceable = desired
                .as_deref()
                .and_then(|options| why_unplaceable(options, &machines));
            PlannedUnit {
                name,
                action,
                current,
                desired,
                copies,
                sidekick_of: None,
                missing: Vec::new(),
                extra: Vec::new(),
                unplaceable,
            }
        })
        .collect();

    // A desired sidekick follows a desired service; a removed one, whatever
    // it followed. A sidekick whose service goes away stands on its own.
    let desired_names: BTreeMap<String, bool> = units
        .iter()
        .map(|u| (u.name.clone(), u.desired.is_some()))
        .collect();
    for unit in &mut units {
        let options = unit
            .desired
            .as_ref()
            .or(unit.current.as_ref())
            .or(unit.copies.first().map(|c| &c.options));
        let is_desired = unit.desired.is_some();
        unit.sidekick_of = options
            .and_then(|options| followed(&unit.name, options))
            .filter(|service| {
                service != &unit.name
                    && desired_names
                        .get(service)
                        .is_some_and(|&service_desired| service_desired || !is_desired)
            });
    }
    // Sidekicks that follow each other in a circle cannot all be scheduled
    // by fleet; the first by name leads the others so each is applied.
    for i in 0..units.len() {
        let mut next = units[i].sidekick_of.clone();
        for _ in 0..units.len() {
            let Some(service) = next else { break };
            if service == units[i].name {
                units[i].sidekick_of = None;
                break;
            }
            next = units
                .iter()
                .find(|u| u.name == service)
                .and_then(|u| u.sidekick_of.clone());
        }
    }
    // The copies each desired template should have: its service's.
    let mut plan = FleetPlan {
        prefix: prefix.to_owned(),
        units,
    };
    for i in 0..plan.units.len() {
        let unit = &plan.units[i];
        if unit.desired.is_none() || !unit.is_template() {
            continue;
        }
        let service = services_of(&plan, unit)
            .last()
            .and_then(|s| plan.units.iter().find(|u| &u.name == s))
            .unwrap_or(unit);
        let global = service.desired.as_deref().is_some_and(is_global);
        let count = copy_count(global, fleet_copies);
        let wanted: Vec<String> = (1..=count).map(|n| n.to_string()).collect();
        let why_extra = if global {
            "a global service has one copy, which runs on every machine".to_owned()
        } else {
            format!("the instance's fleet.copies is {count}")
        };
        let unit = &mut plan.units[i];
        if unit.unplaceable.is_none() {
            unit.unplaceable = why_too_few_machines(unit, count, &machines);
        }
        unit.missing = wanted
            .iter()
            .filter(|w| !unit.copies.iter().any(|c| &c.instance == *w))
            .cloned()
            .collect();
        unit.extra = (unit.copies.iter())
            .filter(|c| !wanted.contains(&c.instance))
            .map(|c| (c.instance.clone(), why_extra.clone()))
            .collect();
        if unit.action == Action::Unchanged
            && (!unit.missing.is_empty()
                || !unit.extra.is_empty()
                || unit.copies.iter().any(|c| c.not_running.is_some()))
        {
            unit.action = Action::Change;
        }
    }
    Ok(plan)
}

/// The services above a unit, nearest first (a sidekick of a sidekick has
/// two). `plan` leaves no circles.
fn services_of<'a>(plan: &'a FleetPlan, unit: &'a PlannedUnit) -> Vec<&'a str> {
    let mut chain = Vec::new();
    let mut next = unit.sidekick_of.as_deref();
    while let Some(service) = next.filter(|_| chain.len() < plan.units.len()) {
        chain.push(service);
        next = plan
            .units
            .iter()
            .find(|u| u.name == service)
            .and_then(|u| u.sidekick_of.as_deref());
    }
    chain
}

/// Converges fleet to the plan: new units submitted and their missing
/// copies started, changed ones rolled copy by copy, removed ones destroyed,
/// unchanged ones not touched. If a roll fails, the copies it touched and
/// the template are put back as they were, and the error says so.
pub fn apply(
    client: &FleetClient,
    plan: &FleetPlan,
    options: &ApplyOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<(), FleetError> {
    // fleet would hold such a unit unplaced until the wait times out, and
    // the roll back again: say so before anything changes.
    if let Some((unit, why)) = plan
        .units
        .iter()
        .filter(|u| u.action != Action::Unchanged)
        .find_map(|u| Some((u, u.unplaceable.as_ref()?)))
    {
        // Said as `placing UNIT`: the command line says it was an apply.
        return Err(rollout_error(
            format!("placing {}", unit.name),
            format!("{why}; fleet places it once such a machine joins. Nothing was changed"),
        ));
    }
    let mut run = Run {
        client,
        options,
        progress,
    };
    for main in plan
        .units
        .iter()
        .filter(|u| u.sidekick_of.is_none() && u.action != Action::Remove)
    {
        // Nearer sidekicks first: one that follows another needs it placed.
        let mut sidekicks: Vec<(usize, &PlannedUnit)> = plan
            .units
            .iter()
            .filter(|u| u.action != Action::Remove)
            .filter_map(|u| {
                let services = services_of(plan, u);
                (services.last() == Some(&main.name.as_str())).then_some((services.len(), u))
            })
            .collect();
        sidekicks.sort_by_key(|&(depth, u)| (depth, &u.name));
        let sidekicks: Vec<&PlannedUnit> = sidekicks.into_iter().map(|(_, u)| u).collect();
        if main.action == Action::Unchanged
            && sidekicks.iter().all(|s| s.action == Action::Unchanged)
        {
            continue;
        }
        run.converge(main, &sidekicks)?;
    }
    // Sidekicks go before the services they are bound to.
    let mut removed: Vec<(usize, &PlannedUnit)> = plan
        .with_action(Action::Remove)
        .map(|u| (services_of(plan, u).len(), u))
        .collect();
    removed.sort_by_key(|&(depth, u)| (std::cmp::Reverse(depth), &u.name));
    for (_, unit) in removed {
        for copy in &unit.copies {
            run.destroy(&copy.name)?;
        }
        if unit.is_template() && unit.current.is_some() {
            run.destroy(&unit.name)?;
        }
    }
    Ok(())
}

/// A unit of a service group being converged: the service, or a sidekick.
struct Member<'a> {
    unit: &'a PlannedUnit,
    desired: &'a [UnitOption],
    copies: BTreeMap<&'a str, &'a UnitCopy>,
}

impl Member<'_> {
    fn needs_roll(&self, instance: &str) -> bool {
        self.copies
            .get(instance)
            .is_none_or(|c| c.options != self.desired || c.not_running.is_some())
    }

    fn template_differs(&self) -> bool {
        self.unit.is_template() && self.unit.current.as_deref() != Some(self.desired)
    }
}

pub(super) struct Run<'a, 'p> {
    pub(super) client: &'a FleetClient,
    pub(super) options: &'a ApplyOptions,
    pub(super) progress: &'p mut dyn FnMut(&str),
}

impl Run<'_, '_> {
    fn converge(
        &mut self,
        main: &PlannedUnit,
        sidekicks: &[&PlannedUnit],
    ) -> Result<(), FleetError> {
        let members: Vec<Member> = std::iter::once(main)
            .chain(sidekicks.iter().copied())
            .map(|unit| Member {
                unit,
                desired: unit.desired.as_deref().unwrap_or_default(),
                copies: unit
                    .copies
                    .iter()
                    .map(|c| (c.instance.as_str(), c))
                    .collect(),
            })
            .collect();
        let instances: Vec<String> = if !main.is_template() {
            vec![String::new()]
        } else {
            let mut instances: Vec<String> = (main.copies.iter())
                .filter(|c| !main.is_extra(&c.instance))
                .map(|c| c.instance.clone())
                .chain(main.missing.iter().cloned())
                .collect();
            instances.sort_by(|a, b| instance_key(a).cmp(&instance_key(b)));
            instances
        };

        // Copies beyond those it should have go first, freeing their
        // machines (`Conflicts=`) for the missing ones: a sidekick's before
        // its service's (farthest first, as removed units), bound to it.
        for member in members.iter().rev() {
            for (instance, copy) in &member.copies {
                if !instances.iter().any(|i| i == instance) {
                    self.destroy(&copy.name)?;
                }
            }
        }
        let mut replaced: Vec<usize> = Vec::new();
        let mut touched: Vec<(&str, Vec<usize>)> = Vec::new();
        for instance in &instances {
            // A unit rolls with the one it follows: unloading that copy
            // stops (BindsTo=) and unschedules (MachineOf=) its own. Members
            // come nearer-first, so the one followed is decided before.
            let mut rolling: Vec<usize> = Vec::new();
            for m in 0..members.len() {
                let follows_rolling = members[m]
                    .unit
                    .sidekick_of
                    .as_ref()
                    .is_some_and(|s| rolling.iter().any(|&r| &members[r].unit.name == s));
                if follows_rolling || members[m].needs_roll(instance) {
                    rolling.push(m);
                }
            }
            if rolling.is_empty() {
                continue;
            }
            touched.push((instance, rolling.clone()));
            if let Err(e) = self.roll(&members, instance, &rolling, &mut replaced) {
                return Err(self.roll_back(&members, &touched, &replaced, e));
            }
        }
        // A changed template with no copies to roll is still replaced.
        for m in 0..members.len() {
            if members[m].template_differs() && !replaced.contains(&m) {
                replaced.push(m);
                if let Err(e) = self.replace_template(&members[m]) {
                    return Err(self.roll_back(&members, &touched, &replaced, e));
                }
            }
        }
        Ok(())
    }

    fn roll(
        &mut self,
        members: &[Member],
        instance: &str,
        rolling: &[usize],
        replaced: &mut Vec<usize>,
    ) -> Result<(), FleetError> {
        // Sidekicks first: they are bound to their service's copy.
        for &m in rolling.iter().rev() {
            if let Some(copy) = members[m].copies.get(instance) {
                self.unload(&copy.name)?;
            }
        }
        // Their machines stop them while the new ones are prepared; each
        // start below waits until its name is forgotten. Every copy is
        // launched: the instance's services run (one stopped by hand is
        // started, as plan says).
        for &m in rolling {
            let member = &members[m];
            if member.template_differs() && !replaced.contains(&m) {
                // Recorded first: a failed submit has already destroyed the old one.
                replaced.push(m);
                self.replace_template(member)?;
            }
            self.start(
                &copy_name(&member.unit.name, instance),
                member.desired,
                JobState::Launched,
            )?;
        }
        Ok(())
    }

    fn replace_template(&mut self, member: &Member) -> Result<(), FleetError> {
        let name = &member.unit.name;
        if member.unit.current.is_some() {
            self.destroy(name)?;
        }
        (self.progress)(&format!("submitting {name}"));
        // Templates are submitted inactive, as fleetctl submit does: fleet
        // never runs a template itself.
        self.client
            .put_unit(name, JobState::Inactive, member.desired)
    }

    /// Creates a copy and brings it to `state`, waiting until it runs if
    /// launched. A copy unloaded (or destroyed) under the same name must be
    /// forgotten by fleet first (see the module's comment).
    fn start(
        &mut self,
        name: &str,
        options: &[UnitOption],
        state: JobState,
    ) -> Result<(), FleetError> {
        // As this roll left it: unloaded (inactive), destroyed or never
        // there. A copy another apply submitted, launched or put back under
        // the name meanwhile would never be forgotten: said at once.
        let left = self.client.get_unit(name)?.map(|u| u.options);
        let doing = format!("waiting for fleet to forget {name}");
        let still_left = || match self.client.get_unit(name)? {
            Some(unit)
                if unit.desired_state != Some(JobState::Inactive)
                    || left.as_ref() != Some(&unit.options) =>
            {
                Err(rollout_error(&doing, replaced_meanwhile(name)))
            }
            _ => Ok(()),
        };
        wait_forgotten(
            self.client,
            &[name.to_owned()],
            self.options.wait_timeout,
            self.options.poll_interval,
            self.progress,
            &still_left,
        )?;
        (self.progress)(&format!("submitting {name}"));
        if state == JobState::Inactive {
            return self.client.put_unit(name, JobState::Inactive, options);
        }
        // A global unit has no one machine: fleet starts it on each at
        // once, and each machine's state is awaited (whatever ran under its
        // name is forgotten already).
        if is_global(options) {
            self.client.put_unit(name, state, options)?;
            if state == JobState::Launched {
                self.wait_global(name, options, state)?;
            }
            return Ok(());
        }
        // Loaded first, launched only once its machine has stopped whatever
        // ran under the name: fleet drops an unloaded copy's state as soon as
        // it has asked systemd to stop it, and a start issued while that stop
        // is pending cancels it (the old container runs on).
        self.client.put_unit(name, JobState::Loaded, options)?;
        let stopped_failed = self.wait_loaded(name, options)?;
        if state == JobState::Launched {
            (self.progress)(&format!("starting {name}"));
            self.client.put_unit(name, state, &[])?;
            self.wait_running(name, options, stopped_failed)?;
        }
        Ok(())
    }

    /// Waits until fleet reports the copy loaded on a machine and that
    /// machine reports this unit file (by its hash) not running: any
    /// process of an earlier unit of the same name has ended. Says whether
    /// that one ended `failed` (as a destroyed copy does: fleet unloads its
    /// file first, so its `SuccessExitStatus=` is gone when it stops).
    pub(super) fn wait_loaded(
        &mut self,
        name: &str,
        options: &[UnitOption],
    ) -> Result<bool, FleetError> {
        if is_global(options) {
            self.wait_global(name, options, JobState::Loaded)?;
            return Ok(false);
        }
        let doing = format!("waiting for {name} to be loaded, with nothing running under its name");
        let hash = unit_hash(options);
        let deadline = Instant::now() + self.options.wait_timeout;
        let (mut told, mut told_unplaced) = (false, false);
        loop {
            let (unit, state) = placed_state(self.client, name)?;
            check_still_ours(&doing, name, unit.as_ref(), options)?;
            check_followed(self.client, &doing, name, unit.as_ref(), options)?;
            let placed = unit.as_ref().map_or("", |u| u.machine_id.as_str());
            let state = state.as_ref();
            let loaded = unit.as_ref().and_then(|u| u.current_state) == Some(JobState::Loaded);
            let seen = match state {
                Some(s)
                    if loaded
                        && s.hash == hash
                        && matches!(s.systemd_active_state.as_str(), "inactive" | "failed") =>
                {
                    return Ok(s.systemd_active_state == "failed");
                }
                Some(s) => format!(
                    "machine {} reports {}/{} (unit file hash {}, this one {hash})",
                    s.machine_id, s.systemd_active_state, s.systemd_sub_state, s.hash
                ),
                None if unit.is_none() => "fleet no longer has the unit".to_owned(),
                None if placed.is_empty() => {
                    "fleet has not scheduled it to any machine (do its X-Fleet Conflicts/MachineOf leave none?)"
                        .to_owned()
                }
                None => format!("machine {placed} reports no state for it yet"),
            };
            if !told && state.is_some_and(|s| s.systemd_active_state == "deactivating") {
                (self.progress)(&format!("waiting for the old {name} to stop"));
                told = true;
            }
            if !told_unplaced && unit.is_some() && placed.is_empty() {
                (self.progress)(&format!("waiting for fleet to place {name} on a machine"));
                told_unplaced = true;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(rollout_error(
                    doing,
                    format!("not loaded after {:?}: {seen}", self.options.wait_timeout),
                ));
            }
            thread::sleep(self.options.poll_interval.min(deadline - now));
        }
    }

    /// Waits until fleet reports the copy launched on a machine and that
    /// machine reports this unit file (by its hash) active. When the unit
    /// was `failed` before this start, `failed` counts only once the start
    /// has been seen under way (any other state first).
    pub(super) fn wait_running(
        &mut self,
        name: &str,
        options: &[UnitOption],
        mut stale_failed: bool,
    ) -> Result<(), FleetError> {
        if is_global(options) {
            return self.wait_global(name, options, JobState::Launched);
        }
        (self.progress)(&format!("waiting for {name}"));
        let doing = format!("waiting for {name} to run");
        let hash = unit_hash(options);
        let deadline = Instant::now() + self.options.wait_timeout;
        loop {
            let (unit, state) = placed_state(self.client, name)?;
            check_still_ours(&doing, name, unit.as_ref(), options)?;
            check_followed(self.client, &doing, name, unit.as_ref(), options)?;
            let placed = unit.as_ref().map_or("", |u| u.machine_id.as_str());
            let state = state.as_ref();
            let launched = unit.as_ref().and_then(|u| u.current_state) == Some(JobState::Launched);
            if state.is_some_and(|s| s.hash == hash && s.systemd_active_state != "failed") {
                stale_failed = false;
            }
            let seen = match state {
                Some(s) if s.hash != hash => format!(
                    "machine {} still reports another unit file under this name (hash {}, not {hash}), {}/{}",
                    s.machine_id, s.hash, s.systemd_active_state, s.systemd_sub_state
                ),
                Some(s) if launched && s.systemd_active_state == "active" => {
                    (self.progress)(&format!("{name} is running on machine {}", s.machine_id));
                    return Ok(());
                }
                Some(s) if (s.systemd_active_state == "failed" && !stale_failed) || is_restart_loop(s) => {
                    return Err(rollout_error(doing, start_failed(name, s)));
                }
                Some(s) => format!(
                    "fleet reports it {}, systemd reports {}/{} on machine {}",
                    unit.as_ref()
                        .and_then(|u| u.current_state)
                        .map_or("not scheduled", JobState::as_str),
                    s.systemd_active_state,
                    s.systemd_sub_state,
                    s.machine_id
                ),
                None if unit.is_none() => "fleet no longer has the unit".to_owned(),
                None if placed.is_empty() => {
                    "fleet has not scheduled it to any machine (do its X-Fleet Conflicts/MachineOf leave none?)"
                        .to_owned()
                }
                None => format!("machine {placed} reports no state for it yet"),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(rollout_error(
                    doing,
                    format!("not running after {:?}: {seen}", self.options.wait_timeout),
                ));
            }
            thread::sleep(self.options.poll_interval.min(deadline - now));
        }
    }

    /// Waits until every machine that may run global unit `name` reports
    /// this unit file (by its hash) active (`Launched`), or loaded and not
    /// running (`Loaded`). A machine where it fails is an error at once.
    fn wait_global(
        &mut self,
        name: &str,
        options: &[UnitOption],
        want: JobState,
    ) -> Result<(), FleetError> {
        (self.progress)(&format!("waiting for {name} on every machine"));
        let doing = match want {
            JobState::Launched => format!("waiting for {name} to run on every machine"),
            _ => format!("waiting for {name} to stop on every machine"),
        };
        let unit = Unit {
            name: name.to_owned(),
            options: options.to_vec(),
            desired_state: Some(want),
            current_state: None,
            machine_id: String::new(),
            hash: unit_hash(options),
        };
        let deadline = Instant::now() + self.options.wait_timeout;
        // Machines seen starting or running this unit file: `failed` counts
        // only after that. A machine reports a unit destroyed and submitted
        // again (the same file) `failed` at first: fleet unloaded its file
        // before systemd stopped it.
        let mut under_way: Vec<String> = Vec::new();
        loop {
            // As for other copies: one another apply (or a hand) replaced
            // meanwhile would never run this unit file.
            check_still_ours(&doing, name, self.client.get_unit(name)?.as_ref(), options)?;
            let machines = self.client.list_machines()?;
            let states = self.client.list_state(Some(name))?;
            let state = |m: &str| states.iter().find(|s| s.name == name && s.machine_id == m);
            let mut pending = Vec::new();
            for (machine, why) in global_states(&unit, &states, &machines) {
                let seen = state(&machine).filter(|s| s.hash == unit.hash);
                if seen.is_some_and(|s| s.systemd_active_state != "failed")
                    && !under_way.contains(&machine)
                {
                    under_way.push(machine.clone());
                }
                match (want, seen) {
                    (JobState::Launched, Some(s))
                        if (s.systemd_active_state == "failed" && under_way.contains(&machine))
                            || is_restart_loop(s) =>
                    {
                        return Err(rollout_error(doing, start_failed(name, s)));
                    }
                    (JobState::Launched, Some(s)) if s.systemd_active_state == "active" => {}
                    // Still starting (`activating`) is not yet running.
                    (JobState::Launched, Some(s)) => pending.push(format!(
                        "systemd reports {}/{} on machine {machine}",
                        s.systemd_active_state, s.systemd_sub_state
                    )),
                    (JobState::Launched, None) => pending.extend(why),
                    (_, Some(s))
                        if matches!(s.systemd_active_state.as_str(), "inactive" | "failed") => {}
                    (_, Some(s)) => pending.push(format!(
                        "systemd reports {}/{} on machine {machine}",
                        s.systemd_active_state, s.systemd_sub_state
                    )),
                    (_, None) => pending.push(format!(
                        "machine {machine} reports no state of this unit file for it yet"
                    )),
                }
            }
            if pending.is_empty() {
                if want == JobState::Launched {
                    (self.progress)(&format!("{name} is running on every machine"));
                }
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(rollout_error(
                    doing,
                    format!(
                        "not done after {:?}: {}",
                        self.options.wait_timeout,
                        pending.join("; ")
                    ),
                ));
            }
            thread::sleep(self.options.poll_interval.min(deadline - now));
        }
    }

    fn destroy(&mut self, name: &str) -> Result<(), FleetError> {
        (self.progress)(&format!("destroying {name}"));
        self.client.delete_unit(name)
    }

    /// Stops a copy that is to be replaced, and has its machine unload it
    /// (desired state `inactive`, as `fleetctl unload` sets), keeping it
    /// in fleet until its new options are submitted under its name. A
    /// destroyed one would leave nothing behind if unitgen were killed
    /// before that submit: a copy of several lost for good, as plan and
    /// the next apply count the copies fleet has. Kept, it is named as not
    /// running, and the next apply replaces it.
    fn unload(&mut self, name: &str) -> Result<(), FleetError> {
        (self.progress)(&format!("stopping and unloading {name}"));
        self.client.put_unit(name, JobState::Inactive, &[])
    }

    /// Waits until no machine reports a state for any of `names`: their
    /// machines have stopped and unloaded them.
    pub(super) fn wait_forgotten(&mut self, names: &[String]) -> Result<(), FleetError> {
        wait_forgotten(
            self.client,
            names,
            self.options.wait_timeout,
            self.options.poll_interval,
            self.progress,
            &|| Ok(()),
        )
    }

    /// Puts back what a failed roll touched: the copies as they were (with
    /// their old options and desired state) and the old templates; then
    /// checks that every restored copy that should run does, sidekicks
    /// included, and says which do not.
    fn roll_back(
        &mut self,
        members: &[Member],
        touched: &[(&str, Vec<usize>)],
        replaced: &[usize],
        mut error: FleetError,
    ) -> FleetError {
        let mut restored = Vec::new();
        let mut failed = Vec::new();
        // Units someone else replaced while this apply ran (another apply
        // of the instance): putting the old ones back would undo theirs.
        let mut left_alone: Vec<String> = Vec::new();
        let mut foreign = |name: &str, ours: &[UnitOption], old: Option<&[UnitOption]>| {
            let theirs = match self.client.get_unit(name) {
                Ok(Some(unit)) => unit.options,
                _ => return false,
            };
            let foreign = theirs != ours && Some(theirs.as_slice()) != old;
            if foreign {
                left_alone.push(name.to_owned());
            }
            foreign
        };
        let replaced: Vec<usize> = (replaced.iter().copied())
            .filter(|&m| {
                let unit = members[m].unit;
                !foreign(&unit.name, members[m].desired, unit.current.as_deref())
            })
            .collect();
        let touched: Vec<(&str, Vec<usize>)> = (touched.iter())
            .map(|(instance, rolling)| {
                let rolling = (rolling.iter().copied())
                    .filter(|&m| {
                        let name = copy_name(&members[m].unit.name, instance);
                        let old = members[m]
                            .copies
                            .get(instance)
                            .map(|c| c.options.as_slice());
                        !foreign(&name, members[m].desired, old)
                    })
                    .collect();
                (*instance, rolling)
            })
            .collect();
        let mut attempt = |result: Result<(), FleetError>| match result {
            Err(e) if e.status() != Some(404) => failed.push(e.to_string()),
            _ => {}
        };
        for &m in &replaced {
            let unit = members[m].unit;
            attempt(self.client.delete_unit(&unit.name));
            if let Some(old) = &unit.current {
                let result = self.client.put_unit(&unit.name, JobState::Inactive, old);
                if result.is_ok() {
                    restored.push(unit.name.clone());
                }
                attempt(result);
            }
        }
        for (instance, rolling) in touched.iter().rev() {
            for &m in rolling.iter().rev() {
                let name = copy_name(&members[m].unit.name, instance);
                (self.progress)(&format!("rolling back {name}"));
                // One it had before is kept (see `unload`); a new one goes.
                attempt(if members[m].copies.contains_key(instance) {
                    self.client.put_unit(&name, JobState::Inactive, &[])
                } else {
                    self.client.delete_unit(&name)
                });
            }
            // The service's copy before its sidekicks, each running before
            // the next: a sidekick is placed with, and bound to, its service.
            for &m in rolling {
                let Some(copy) = members[m].copies.get(instance) else {
                    continue;
                };
                let result = self.start(&copy.name, &copy.options, copy.desired_state);
                if result.is_ok() {
                    restored.push(copy.name.clone());
                }
                attempt(result);
            }
        }
        if touched.iter().any(|(_, rolling)| !rolling.is_empty()) || !replaced.is_empty() {
            error.notes.push(if restored.is_empty() {
                "rolled back: removed what this apply had started".to_owned()
            } else if failed.is_empty() {
                format!(
                    "rolled back: restored {} as before, each running again",
                    restored.join(", ")
                )
            } else {
                format!("rolled back: restored {}", restored.join(", "))
            });
        }
        if !left_alone.is_empty() {
            error.notes.push(format!(
                "left as fleet has them: {} (fleet holds other unit text under them than this \
                 apply submitted or found: another apply of the instance at the same time, or a \
                 change by hand?); `unitgen plan INSTANCE --fleet` shows what differs",
                left_alone.join(", ")
            ));
        }
        for failure in failed {
            error.notes.push(format!("rollback incomplete: {failure}"));
        }
        error
    }
}

/// How long a machine's state of a copy it runs may be missing: live
/// fleetd's agent publishes each state as it changes, from a goroutine of
/// its own, and all of them again every 5 s; a delete of the state of the
/// copy it stopped under the same name can land after the new copy's
/// state (it deletes the name's states on every machine), which is then
/// missing until the next round (seen live right after a roll, under load).
const STATE_GAP: Duration = Duration::from_secs(6);

/// The states fleet's machines report of the units under `prefix`. While
/// a copy fleet has launched has no state on a machine that runs it (its
/// machine; for a global unit, each machine that may run it), they are
/// read again, for up to [`STATE_GAP`]: without, plan, status and `ls`
/// named a running copy not running for that moment, and apply replaced
/// it (stopped and started a copy that ran as it should).
fn settled_states(
    client: &FleetClient,
    prefix: &str,
    units: &[Unit],
    machines: &[Machine],
) -> Result<Vec<UnitState>, FleetError> {
    let deadline = Instant::now() + STATE_GAP;
    loop {
        let states: Vec<UnitState> = (client.list_state(None)?.into_iter())
            .filter(|s| s.name.starts_with(prefix))
            .collect();
        let reported = |name: &str, machine: &str| {
            (states.iter()).any(|s| s.name == name && s.machine_id == machine)
        };
        let unreported = (units.iter())
            .filter(|u| u.name.starts_with(prefix) && u.desired_state == Some(JobState::Launched))
            .any(|u| {
                if is_global(&u.options) {
                    (global_states(u, &states, machines).iter())
                        .any(|(machine, _)| !reported(&u.name, machine))
                } else {
                    !u.machine_id.is_empty() && !reported(&u.name, &u.machine_id)
                }
            });
        if !unreported || Instant::now() >= deadline {
            return Ok(states);
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until no machine reports a state for any of `names`, checking
/// `unchanged` at each look (an error ends the wait).
fn wait_forgotten(
    client: &FleetClient,
    names: &[String],
    timeout: Duration,
    poll: Duration,
    progress: &mut dyn FnMut(&str),
    unchanged: &dyn Fn() -> Result<(), FleetError>,
) -> Result<(), FleetError> {
    let deadline = Instant::now() + timeout;
    let mut told = false;
    loop {
        unchanged()?;
        let left: Vec<UnitState> = client
            .list_state(match names {
                [one] => Some(one.as_str()),
                _ => None,
            })?
            .into_iter()
            .filter(|s| names.contains(&s.name))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if !told {
            let names: Vec<&str> = left.iter().map(|s| s.name.as_str()).collect();
            progress(&format!("waiting for fleet to forget {}", names.join(", ")));
            told = true;
        }
        let now = Instant::now();
        if now >= deadline {
            let seen: Vec<String> = left
                .iter()
                .map(|s| {
                    format!(
                        "{} is still {}/{} on machine {}",
                        s.name, s.systemd_active_state, s.systemd_sub_state, s.machine_id
                    )
                })
                .collect();
            return Err(rollout_error(
                format!("waiting for fleet to forget {}", names.join(", ")),
                format!(
                    "its machines still report it after {timeout:?}: {}",
                    seen.join("; ")
                ),
            ));
        }
        thread::sleep(poll.min(deadline - now));
    }
}

/// Every unit fleet holds under `prefix`, with what systemd reports for it.
/// `fleet_copies`: the instance's `fleet.copies`, when its template could
/// be read: copies missing or beyond it are told (without, only a gap in
/// the copies' numbers is).
pub fn status(
    client: &FleetClient,
    prefix: &str,
    fleet_copies: Option<u32>,
) -> Result<Vec<UnitStatus>, FleetError> {
    let fleet_units: Vec<Unit> = client
        .list_units()?
        .into_iter()
        .filter(|u| u.name.starts_with(prefix))
        .collect();
    let machines = client.list_machines()?;
    let states = settled_states(client, prefix, &fleet_units, &machines)?;
    let copies_of = |template: &str| -> Vec<&str> {
        (fleet_units.iter())
            .filter_map(|u| match classify(&u.name) {
                Name::Instance {
                    template: t,
                    instance,
                } if t == template => Some(instance),
                _ => None,
            })
            .collect()
    };
    // The copies a template should have: one for a global service (and
    // its sidekicks), else the instance's count.
    let wanted = |template: &str| -> Option<u32> {
        let options = |name: &str| {
            (fleet_units.iter())
                .find(|u| u.name == name)
                .map(|u| u.options.as_slice())
        };
        let own = options(template).unwrap_or_default();
        let service = followed(template, own);
        let global = is_global(own) || service.as_deref().and_then(options).is_some_and(is_global);
        fleet_copies.map(|n| copy_count(global, n))
    };
    let mut units: Vec<UnitStatus> = fleet_units
        .iter()
        .map(|u| UnitStatus {
            systemd: states
                .iter()
                .filter(|_| !is_global_copy(u))
                .find(|s| {
                    s.name == u.name && (u.machine_id.is_empty() || s.machine_id == u.machine_id)
                })
                .cloned(),
            on_machines: if is_global_copy(u) {
                global_machines(u, &states, &machines)
            } else {
                Vec::new()
            },
            not_running: match classify(&u.name) {
                Name::Template => why_copies_lack(&copies_of(&u.name), wanted(&u.name)),
                Name::Instance { template, instance } => {
                    why_one_too_many(instance, wanted(&template))
                        .or_else(|| why_copy_not_running(u, &states, &machines))
                }
                Name::Plain => why_copy_not_running(u, &states, &machines),
            }
            .map(|why| match why_unplaced(u, &machines) {
                Some(unplaced) => format!("{why}: {unplaced}"),
                None => why,
            }),
            not_as_applied: match classify(&u.name) {
                Name::Instance { template, .. } => {
                    match fleet_units.iter().find(|t| t.name == template) {
                        Some(t) if t.options != u.options => Some(why_not_its_template(&template)),
                        Some(_) => None,
                        None => Some(format!(
                            "fleet has no template {template} (destroyed by hand, or by an apply cut short?): \
                             `unitgen apply INSTANCE --fleet` submits it"
                        )),
                    }
                }
                _ => None,
            },
            name: u.name.clone(),
            desired_state: u.desired_state,
            // fleet's list says `inactive` for a global unit wherever it
            // runs: it keeps no current state of one.
            current_state: u.current_state.filter(|_| !is_global_copy(u)),
            machine_id: u.machine_id.clone(),
            options: u.options.clone(),
        })
        .collect();
    units.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(units)
}

/// Why fleet has not placed a launched copy, when no machine of the
/// cluster may run it: seen live, a copy whose machine left (fleetd
/// stopped there) was only 'not placed on a machine'. (`plan` says so of
/// its template.)
fn why_unplaced(unit: &Unit, machines: &[Machine]) -> Option<String> {
    let unplaced = unit.machine_id.is_empty()
        && unit.desired_state == Some(JobState::Launched)
        && !is_global(&unit.options);
    unplaced
        .then(|| why_unplaceable(&unit.options, machines))
        .flatten()
}

/// A global unit fleet runs (not a template, which runs nowhere).
fn is_global_copy(unit: &Unit) -> bool {
    is_global(&unit.options) && !matches!(classify(&unit.name), Name::Template)
}

/// Each machine that may run global unit `unit` (by its metadata) or
/// reports a state of it, with that state.
fn global_machines(
    unit: &Unit,
    states: &[UnitState],
    machines: &[Machine],
) -> Vec<(String, Option<UnitState>)> {
    let wanted = metadata_wanted(&unit.options);
    let mut ids: Vec<&str> = (machines.iter())
        .filter(|m| has_metadata(&m.metadata, &wanted))
        .map(|m| m.id.as_str())
        .collect();
    ids.extend(
        (states.iter())
            .filter(|s| s.name == unit.name)
            .map(|s| s.machine_id.as_str()),
    );
    ids.sort();
    ids.dedup();
    (ids.into_iter())
        .map(|id| {
            let state = (states.iter()).find(|s| s.name == unit.name && s.machine_id == id);
            (id.to_owned(), state.cloned())
        })
        .collect()
}

/// Why a copy whose options are not its template's is not as applied:
/// unitgen submits each copy with its template's options, so fleet holds
/// another unit under the copy's name (a PUT or `fleetctl submit` by hand).
pub fn why_not_its_template(template: &str) -> String {
    format!(
        "fleet holds other unit text under its name than its template {template}'s \
         (changed by hand?): `unitgen apply INSTANCE --fleet` replaces it"
    )
}

/// Why a template's copies (their instance names) fall short, if they do:
/// none at all, or some of the `wanted` copies 1 to N missing. Without
/// `wanted` (the template could not be read), a gap below the highest
/// copy (copies are numbered from 1).
fn why_copies_lack(copies: &[&str], wanted: Option<u32>) -> Option<String> {
    let numbers: Vec<u32> = copies.iter().filter_map(|c| copy_number(c)).collect();
    // A number far beyond any count (`web@99999` by hand) names no gap.
    let up_to = match wanted {
        Some(n) => n,
        None => numbers.iter().copied().max().unwrap_or(0).saturating_sub(1),
    };
    let gaps: Vec<String> = (1..=up_to.min(crate::model::MAX_FLEET_COPIES))
        .filter(|n| !numbers.contains(n))
        .map(|n| n.to_string())
        .collect();
    if copies.is_empty() {
        Some("fleet has no copy of it: it runs nowhere".to_owned())
    } else if gaps.is_empty() {
        None
    } else {
        Some(format!(
            "fleet has no copy {} (destroyed by hand?): `unitgen apply INSTANCE --fleet` starts it",
            gaps.join(", ")
        ))
    }
}

/// How many copies a service (or its sidekick) has: the instance's
/// `fleet_copies`, or one for a global service, which fleet runs on every
/// machine.
fn copy_count(global: bool, fleet_copies: u32) -> u32 {
    if global { 1 } else { fleet_copies }
}

/// The number of copy `instance` as unitgen names copies (`1`, `2`, …;
/// not `01`, not a name given by hand).
fn copy_number(instance: &str) -> Option<u32> {
    instance
        .parse()
        .ok()
        .filter(|n: &u32| n.to_string() == instance)
}

/// Why copy `instance` of a template that should have `wanted` copies
/// (numbered 1 to N) is one too many, if it is.
fn why_one_too_many(instance: &str, wanted: Option<u32>) -> Option<String> {
    let wanted = wanted?;
    let within = copy_number(instance).is_some_and(|n| (1..=wanted).contains(&n));
    (!within).then(|| {
        format!(
            "one too many: the instance's fleet.copies is {wanted} (started by hand?): \
             `unitgen apply INSTANCE --fleet` destroys it"
        )
    })
}

/// An instance unitgen put in fleet, as `ls --fleet` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetInstance {
    pub app: String,
    pub instance: String,
    /// Its service templates (not sidekicks).
    pub services: usize,
    /// Their copies, and how many of them run.
    pub copies: usize,
    pub copies_running: usize,
}

/// Every instance whose units fleet holds, found by their `[X-Unitgen]`
/// sections, sorted by app and instance.
pub fn instances(client: &FleetClient) -> Result<Vec<FleetInstance>, FleetError> {
    let units = client.list_units()?;
    let machines = client.list_machines()?;
    let templates: Vec<(&Unit, crate::render::Owner)> = (units.iter())
        .filter(|u| matches!(classify(&u.name), Name::Template))
        .filter_map(|u| Some((u, crate::render::owner(&unit_file::to_text(&u.options))?)))
        .collect();
    let copies_of = |template: &Unit| -> Vec<&Unit> {
        (units.iter())
            .filter(|u| matches!(classify(&u.name), Name::Instance { template: t, .. } if t == template.name))
            .collect()
    };
    // Read again while one of them lacks a state, as plan and status do
    // (seen live right after a roll: `1/2 running`, where both ran).
    let ours: Vec<Unit> = (templates.iter())
        .flat_map(|(template, _)| copies_of(template).into_iter().cloned())
        .collect();
    let states = settled_states(client, "", &ours, &machines)?;
    let mut found: BTreeMap<(String, String), FleetInstance> = BTreeMap::new();
    for (template, owner) in templates {
        let entry = found
            .entry((owner.app.clone(), owner.instance.clone()))
            .or_insert_with(|| FleetInstance {
                app: owner.app.clone(),
                instance: owner.instance.clone(),
                services: 0,
                copies: 0,
                copies_running: 0,
            });
        if owner.service.is_none() {
            continue;
        }
        entry.services += 1;
        for copy in copies_of(template) {
            entry.copies += 1;
            if why_copy_not_running(copy, &states, &machines).is_none() {
                entry.copies_running += 1;
            }
        }
    }
    Ok(found.into_values().collect())
}

/// What `destroy` did: the units destroyed, and the `MachineMetadata=`
/// they required (where the instance ran).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destroyed {
    pub units: Vec<String>,
    pub metadata: Vec<String>,
}

/// Destroys every unit fleet holds under `prefix`: sidekick copies, then
/// the other copies, then templates; then waits (up to the options' wait
/// timeout) until their machines have unloaded them.
pub fn destroy(
    client: &FleetClient,
    prefix: &str,
    options: &ApplyOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Destroyed, FleetError> {
    let mut metadata: Vec<String> = Vec::new();
    let mut units: Vec<(u8, String)> = Vec::new();
    for unit in client.list_units()? {
        if !unit.name.starts_with(prefix) {
            continue;
        }
        for option in &unit.options {
            if option.section == "X-Fleet"
                && option.name == "MachineMetadata"
                && !metadata.contains(&option.value)
            {
                metadata.push(option.value.clone());
            }
        }
        let rank = match classify(&unit.name) {
            Name::Template => 2,
            _ if machine_of(&unit.options).next().is_some() => 0,
            _ => 1,
        };
        units.push((rank, unit.name));
    }
    units.sort();
    let mut destroyed = Vec::new();
    for (_, name) in units {
        progress(&format!("destroying {name}"));
        match client.delete_unit(&name) {
            // Already gone: someone else destroyed it meanwhile.
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
            Ok(()) => destroyed.push(name),
        }
    }
    wait_forgotten(
        client,
        &destroyed,
        options.wait_timeout,
        options.poll_interval,
        progress,
        &|| Ok(()),
    )?;
    Ok(Destroyed {
        units: destroyed,
        metadata,
    })
}

/// Runs a one-shot global unit once on every machine that can run it (by
/// its `MachineMetadata=`), waits until each reports it done, and destroys
/// it again. A machine that leaves the cluster meanwhile (fleet drops a
/// lost machine's entry once it expires, seen live 15-25 s after its
/// systemd died) is no longer waited for: it is returned, as one that did
/// not run it. An error names each machine where it failed or never ran.
pub fn run_everywhere(
    client: &FleetClient,
    name: &str,
    unit: &[UnitOption],
    options: &ApplyOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<String>, FleetError> {
    let doing = format!("running {name} on every machine");
    let wanted = metadata_wanted(unit);
    let able = |client: &FleetClient| -> Result<Vec<String>, FleetError> {
        Ok((client.list_machines()?.into_iter())
            .filter(|m| has_metadata(&m.metadata, &wanted))
            .map(|m| m.id)
            .collect())
    };
    let mut machines = able(client)?;
    // One left by an earlier run that was cut short.
    match client.delete_unit(name) {
        Err(e) if e.status() != Some(404) => return Err(e),
        _ => {}
    }
    wait_forgotten(
        client,
        &[name.to_owned()],
        options.wait_timeout,
        options.poll_interval,
        progress,
        &|| Ok(()),
    )?;
    progress(&format!("running {name} on {} machines", machines.len()));
    client.put_unit(name, JobState::Launched, unit)?;
    let deadline = Instant::now() + options.wait_timeout;
    let mut left: Vec<String> = Vec::new();
    let outcome = loop {
        let states = client.list_state(Some(name))?;
        let state = |m: &str| states.iter().find(|s| s.name == name && s.machine_id == m);
        let present = able(client)?;
        for machine in machines.extract_if(.., |m| !present.contains(m) && state(m).is_none()) {
            progress(&format!(
                "machine {machine} left the cluster before it ran {name}"
            ));
            left.push(machine);
        }
        let failed: Vec<String> = machines
            .iter()
            .filter_map(|m| state(m).map(|s| (m, s)))
            .filter(|(_, s)| s.systemd_active_state == "failed")
            .map(|(m, s)| {
                format!(
                    "failed on machine {m} ({}/{}; `journalctl -u {name}` there says why)",
                    s.systemd_active_state, s.systemd_sub_state
                )
            })
            .collect();
        let pending: Vec<&String> = machines
            .iter()
            .filter(|m| {
                state(m).is_none_or(|s| {
                    s.systemd_active_state != "active" && s.systemd_active_state != "failed"
                })
            })
            .collect();
        if pending.is_empty() {
            break if failed.is_empty() {
                Ok(())
            } else {
                Err(failed.join("; "))
            };
        }
        let now = Instant::now();
        if now >= deadline {
            let mut problems = failed;
            problems.extend(pending.iter().map(|m| {
                format!(
                    "machine {m} did not finish it in {:?}{}",
                    options.wait_timeout,
                    state(m).map_or(String::new(), |s| format!(
                        " ({}/{})",
                        s.systemd_active_state, s.systemd_sub_state
                    ))
                )
            }));
            break Err(problems.join("; "));
        }
        thread::sleep(options.poll_interval.min(deadline - now));
    };
    progress(&format!("destroying {name}"));
    client.delete_unit(name)?;
    outcome
        .map(|()| left)
        .map_err(|detail| rollout_error(doing, detail))
}

/// Whether a machine's metadata meets `MachineMetadata=` requirements
/// (`key=value`; several values of one key are alternatives).
fn has_metadata(metadata: &BTreeMap<String, String>, wanted: &[&str]) -> bool {
    let mut keys: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for requirement in wanted {
        if let Some((key, value)) = requirement.split_once('=') {
            keys.entry(key).or_default().push(value);
        }
    }
    keys.iter().all(|(key, values)| {
        metadata
            .get(*key)
            .is_some_and(|v| values.contains(&v.as_str()))
    })
}

/// An error when fleet holds other options under `name` than `options`,
/// which unitgen submitted under it: someone replaced the unit meanwhile
/// (another apply of the instance, a PUT or `fleetctl submit` by hand).
/// Its machine would never report this unit file: said at once, rather
/// than after the wait, and the roll back leaves that unit as it is.
fn check_still_ours(
    doing: &str,
    name: &str,
    unit: Option<&Unit>,
    options: &[UnitOption],
) -> Result<(), FleetError> {
    match unit {
        Some(unit) if unit.options != options => {
            Err(rollout_error(doing, replaced_meanwhile(name)))
        }
        _ => Ok(()),
    }
}

/// An error when copy `name`, not placed yet, is to go with a unit
/// (`MachineOf=`) that fleet lacks or is told to keep inactive: fleet
/// places it only on that unit's machine, so never. Seen live, of two
/// applies at once: one's roll back put the sidekick of a copy back while
/// the other's roll back left that copy inactive, and it waited
/// --fleet-wait (120 s) for a placement that could not come.
fn check_followed(
    client: &FleetClient,
    doing: &str,
    name: &str,
    unit: Option<&Unit>,
    options: &[UnitOption],
) -> Result<(), FleetError> {
    if unit.is_none_or(|u| !u.machine_id.is_empty()) {
        return Ok(());
    }
    let instance = match classify(name) {
        Name::Instance { instance, .. } => instance,
        _ => "",
    };
    for followed in machine_of(options).map(|value| value.replace("%i", instance)) {
        let why = match client.get_unit(&followed)? {
            None => "which fleet does not have",
            Some(u) if u.desired_state == Some(JobState::Inactive) => {
                "which fleet is told to keep inactive"
            }
            Some(_) => continue,
        };
        return Err(rollout_error(
            doing,
            format!(
                "fleet cannot place it: it goes with {followed} (MachineOf=), {why} (changed \
                 while this ran: another apply of the instance at the same time, or a change by \
                 hand?)"
            ),
        ));
    }
    Ok(())
}

/// Why unitgen leaves `name` alone: fleet holds other unit text under it
/// than unitgen submitted, and not the one it had before either.
fn replaced_meanwhile(name: &str) -> String {
    format!(
        "fleet now holds other unit text under {name} than unitgen submitted: changed while \
         this ran (another apply of the instance at the same time, or a change by hand?)"
    )
}

/// `name` as fleet has it, and the state the machine fleet placed it on
/// reports for it (none while it is not placed, or that machine has not
/// reported it yet): a state another machine still reports is of a copy
/// fleet has moved away.
fn placed_state(
    client: &FleetClient,
    name: &str,
) -> Result<(Option<Unit>, Option<UnitState>), FleetError> {
    let unit = client.get_unit(name)?;
    let placed = unit.as_ref().map_or("", |u| u.machine_id.as_str());
    let state = (client.list_state(Some(name))?)
        .into_iter()
        .find(|s| s.name == name && s.machine_id == placed && !placed.is_empty());
    Ok((unit, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(matches!(classify("web@.service"), Name::Template));
        assert!(matches!(classify("web.service"), Name::Plain));
        assert!(matches!(classify("noext"), Name::Plain));
        match classify("blog-web@12.service") {
            Name::Instance { template, instance } => {
                assert_eq!((template.as_str(), instance), ("blog-web@.service", "12"));
            }
            _ => panic!("not an instance"),
        }
        assert_eq!(copy_name("blog-web@.service", "3"), "blog-web@3.service");
        assert_eq!(copy_name("blog-backup.timer", ""), "blog-backup.timer");
    }

    #[test]
    fn copies_sort_numerically() {
        let mut instances = vec!["10", "2", "a", "1"];
        instances.sort_by_key(|i| instance_key(i));
        assert_eq!(instances, ["1", "2", "10", "a"]);
    }

    #[test]
    fn sidekicks_are_found_through_machine_of() {
        let options =
            unit_file::parse("[X-Fleet]\nMachineOf=blog-web@%i.service\nConflicts=x@*.service\n")
                .unwrap();
        let followed_by = |name| followed(name, &options);
        assert_eq!(
            followed_by("blog-ann@.service").as_deref(),
            Some("blog-web@.service")
        );
        assert_eq!(followed_by("blog-ann.service"), None);
        let pinned = unit_file::parse("[X-Fleet]\nMachineOf=blog-db.service\n").unwrap();
        assert_eq!(followed("blog-ann@.service", &pinned), None);
        assert_eq!(
            followed("blog-backup.timer", &pinned).as_deref(),
            Some("blog-db.service")
        );
    }
}
