//! The fleet target of `plan`, `apply`, `status`, `start`, `stop`, `restart`
//! and `destroy` (`--fleet`): the same commands, against fleet's HTTP API
//! instead of one host's systemd.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use miette::{Result, miette};

use super::output::{out, outln, showln};
use super::status::{Announced, print_announced};
use super::{FileArgs, Outcome};
use crate::fleet::{self, Action, ApplyOptions, Control, FleetClient, FleetPlan};
use crate::model::Instance;
use crate::plan::unified_diff;
use crate::progress::{Progress, count};
use crate::render::{Flavour, Renderer, UnitFile};
use crate::systemd::JobKind;
use crate::unit_file;

#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Act on a fleet cluster through fleet's HTTP API instead of this host's
    /// systemd (checked against a live fleet v1.0 by scripts/fleet-live; see
    /// README).
    #[arg(long, conflicts_with_all = ["root", "unit_dir", "state_dir", "bus", "user"])]
    pub fleet: bool,
    /// fleet's API endpoint: `unix:///var/run/fleet.sock` or `http://HOST:PORT`
    /// [default: the instance's `fleet.endpoint`, else
    /// unix:///var/run/fleet.sock].
    #[arg(long, value_name = "URL", requires = "fleet")]
    pub endpoint: Option<String>,
}

/// How long `apply` and `start`/`stop`/`restart` wait for each copy in
/// fleet (a roll stops copies too).
#[derive(Debug, Clone, Args)]
pub struct FleetWaitArgs {
    /// With --fleet: seconds one copy may take to stop, or to be launched
    /// and active.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 120,
        requires = "fleet"
    )]
    fleet_wait: u64,
}

impl FleetWaitArgs {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.fleet_wait)
    }
}

/// fleet's own default (fleetctl's `--endpoint`).
const DEFAULT_ENDPOINT: &str = "unix:///var/run/fleet.sock";

/// `--fleet` and `--endpoint` on a command fleet's API cannot do (`logs`,
/// `exec`, `backup`, `backups`, `restore`, `pull`): accepted but not shown
/// in --help, so that the command says what to do instead, where clap said
/// "unexpected argument '--fleet'" with a tip for --file.
#[derive(Debug, Clone, Args)]
pub struct NotOnFleetArgs {
    #[arg(long, hide = true)]
    pub fleet: bool,
    #[arg(long, value_name = "URL", requires = "fleet", hide = true)]
    pub endpoint: Option<String>,
}

/// What `logs` and `exec` need the machine for.
pub enum OnMachine<'a> {
    /// The journal of the copies of these services (every one when empty).
    Journal(&'a [String]),
    /// A command in this service's container.
    Exec {
        service: &'a str,
        command: &'a [String],
    },
}

/// `logs` and `exec` with --fleet: fleet's API has no journal and no way
/// into a container, so they are refused with the machine that runs each
/// copy (from fleet, when it answers) and the command to run there.
/// `target` names the instance on the command line: fleet is asked at its
/// endpoint (see [`FleetArgs::of_named`]).
pub fn refuse_on_machine(
    args: &NotOnFleetArgs,
    file: &FileArgs,
    target: &str,
    (app, instance): (&str, &str),
    wanted: OnMachine,
) -> miette::Report {
    let endpoint = FleetArgs {
        fleet: true,
        endpoint: args.endpoint.clone(),
    }
    .of_named(file, target)
    .endpoint()
    .to_owned();
    let (message, elsewhere) = match wanted {
        OnMachine::Journal(_) => (
            "`unitgen logs --fleet`: fleet's API has no journals; read them on the machine \
             that runs each copy",
            "`fleetctl journal COPY` reads it there over ssh",
        ),
        OnMachine::Exec { .. } => (
            "`unitgen exec --fleet`: fleet's API cannot reach a container; run docker on the \
             machine that runs it",
            "`fleetctl ssh COPY` logs in there",
        ),
    };
    let there = |copy: &str, owner: &crate::render::Owner| -> Option<String> {
        match &wanted {
            OnMachine::Journal(services) => {
                let of = owner.service.as_ref().or(owner.announces.as_ref())?;
                (services.is_empty() || services.contains(of))
                    .then(|| format!("journalctl -u {copy}"))
            }
            OnMachine::Exec { service, command } => {
                let container = owner
                    .container()
                    .filter(|_| owner.service.as_deref() == Some(service))?;
                let command = if command.is_empty() {
                    "sh".to_owned()
                } else {
                    command
                        .iter()
                        .map(|word| shell_word(word))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                Some(format!("docker exec -it {container} {command}"))
            }
        }
    };
    let lines = where_copies_run(&endpoint, app, instance, &there);
    let help = match lines {
        Ok(lines) if lines.is_empty() => format!(
            "fleet at {} runs no copy of that in {}: `unitgen status {instance} --fleet` shows what it runs",
            endpoint,
            crate::model::prefix(app, instance)
        ),
        Ok(lines) => format!("{}\n({elsewhere})", lines.join("\n")),
        Err(e) => format!(
            "fleet could not be asked where the copies run ({e}); `fleetctl list-units` shows it, \
             and {elsewhere}"
        ),
    };
    miette::Report::new(crate::diagnostic::Problem::new(message).help(help))
}

/// For each copy `there` names a command for: on which machine it runs,
/// and that command.
fn where_copies_run(
    endpoint: &str,
    app: &str,
    instance: &str,
    there: &dyn Fn(&str, &crate::render::Owner) -> Option<String>,
) -> Result<Vec<String>, crate::fleet::FleetError> {
    let client = FleetClient::new(endpoint)?.with_retry_notice(|line| crate::say!("{line}"));
    let machines = client.list_machines()?;
    let prefix = prefix(app, instance);
    let units = fleet::status(&client, &prefix, None)?;
    let states = client.list_state(None)?;
    let machine = |id: &str| match machines.iter().find(|m| m.id == id) {
        Some(m) if !m.primary_ip.is_empty() => format!("machine {} ({})", m.id, m.primary_ip),
        _ => format!("machine {id}"),
    };
    Ok(units
        .iter()
        .filter(|u| !u.name.contains("@."))
        .flat_map(|u| {
            let Some(command) = crate::render::owner(&unit_file::to_text(&u.options))
                .and_then(|owner| there(&u.name, &owner))
            else {
                return Vec::new();
            };
            // A global copy has no machine in fleet: each machine that
            // reports it runs it.
            let on: Vec<&str> = if u.machine_id.is_empty() {
                (states.iter())
                    .filter(|s| s.name == u.name)
                    .map(|s| s.machine_id.as_str())
                    .collect()
            } else {
                vec![u.machine_id.as_str()]
            };
            if on.is_empty() {
                return vec![format!("{} runs on no machine now", u.name)];
            }
            (on.into_iter())
                .map(|id| format!("{} runs on {}: there, `{command}`", u.name, machine(id)))
                .collect()
        })
        .collect())
}

/// A word as a shell reads it back: quoted unless it is plain.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// `backup`, `backups`, `restore` and `pull` with --fleet: what a cluster
/// has instead.
pub fn refuse_host_only(command: &str) -> miette::Report {
    if command == "pull" {
        return miette::miette!(
            help = "each copy's `docker run` fetches an image its machine lacks as it starts; \
                    for a moved tag (`redis:7`), `docker pull IMAGE` on each machine \
                    (`fleetctl list-machines`), then `unitgen restart INSTANCE SERVICE --fleet`",
            "`unitgen pull --fleet`: fleet's API cannot fetch images on its machines"
        );
    }
    miette::miette!(
        help = format!(
            "run `unitgen {command}` on a host that runs the instance, applied there without \
             --fleet (which installs its backup units and timer)"
        ),
        "`unitgen {command} --fleet`: backups are per host, and an instance on fleet gets no \
         backup units"
    )
}

impl FleetArgs {
    /// --endpoint, or fleet's default.
    fn endpoint(&self) -> &str {
        self.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT)
    }

    fn client(&self) -> Result<FleetClient> {
        FleetClient::new(self.endpoint())
            .map(|client| client.with_retry_notice(|line| crate::say!("{line}")))
            .map_err(|e| miette!("{e}"))
    }

    /// These arguments with the instance's `fleet.endpoint` unless
    /// --endpoint gave one: an instance of one template may live on
    /// another cluster than the next (`live` and `staging`), and without
    /// it an apply went to whichever fleet the default endpoint reached.
    pub fn of_instance(&self, instance: &Instance) -> FleetArgs {
        FleetArgs {
            fleet: self.fleet,
            endpoint: self.endpoint.clone().or(instance.fleet.endpoint.clone()),
        }
    }

    /// As `of_instance`, for an instance named on the command line: its
    /// template compiled when it can be (else fleet's default endpoint).
    pub fn of_named(&self, file: &FileArgs, target: &str) -> FleetArgs {
        if !self.fleet {
            return self.clone();
        }
        let endpoint = (self.endpoint.clone()).or_else(|| {
            let (template, name) = file.select(target).ok()?;
            crate::compile::compile(&template, &name, &Default::default())
                .ok()?
                .fleet
                .endpoint
        });
        FleetArgs {
            fleet: self.fleet,
            endpoint,
        }
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
    let client = args.of_instance(instance).client()?;
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
            Action::Change if unit.current.is_none() && unit.is_template() => {
                let copies = copies_to_converge(unit);
                format!(
                    "~ {} (fleet has no such template, destroyed by hand or by an apply cut short?: submit it{}{copies})",
                    unit.name,
                    if copies.is_empty() { "" } else { "; copies: " }
                )
            }
            Action::Change if unit.current == unit.desired => {
                format!("~ {} (copies: {})", unit.name, copies_to_converge(unit))
            }
            Action::Change => format!(
                "~ {} (changed: roll {} running copies one at a time{}{})",
                unit.name,
                copies - unit.extra.len(),
                if unit.missing.is_empty() {
                    ""
                } else {
                    ", start the missing ones"
                },
                if unit.extra.is_empty() {
                    ""
                } else {
                    ", destroy the ones too many"
                }
            ),
            Action::Remove => format!(
                "- {} (removed: destroy it and its {copies} copies)",
                unit.name
            ),
            Action::Unchanged => continue,
        };
        showln!("{line}")?;
        if let Some(why) = &unit.unplaceable {
            showln!("    ! it cannot run: {why}")?;
        }
        for copy in unit.copies.iter().filter(|c| !unit.is_extra(&c.instance)) {
            if let Some(why) = &copy.not_running {
                showln!("    {} is not running: {why}", copy.name)?;
            }
            if unit.is_template() && unit.current.as_ref().is_some_and(|t| t != &copy.options) {
                showln!(
                    "    {} is not as applied: {}",
                    copy.name,
                    fleet::why_not_its_template(&unit.name)
                )?;
            }
        }
        if unit.action == Action::Change {
            let copy = |instance: &str| unit.name.replacen("@.", &format!("@{instance}."), 1);
            for instance in &unit.missing {
                showln!("    {} is missing: fleet has no such copy", copy(instance))?;
            }
            for (instance, why) in &unit.extra {
                showln!("    {} is one too many: {why}", copy(instance))?;
            }
        }
    }
    let count = |a| plan.with_action(a).count();
    showln!(
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
        // The diff shows the units' text escaped itself; its colours are
        // unitgen's own.
        out!(
            "{}",
            unified_diff(
                &text_of(&unit.current, &unit.name),
                &text_of(&unit.desired, &unit.name),
                color
            )
        )?;
    }
    // A copy fleet holds with other text than its template's: what apply
    // puts back under its name.
    for unit in plan.with_action(Action::Change) {
        for copy in (unit.copies.iter())
            .filter(|c| unit.is_template() && !unit.is_extra(&c.instance))
            .filter(|c| unit.current.as_ref().is_some_and(|t| t != &c.options))
        {
            outln!()?;
            // As above: the diff escapes the text, the colours are ours.
            out!(
                "{}",
                unified_diff(
                    &text_of(&Some(copy.options.clone()), &copy.name),
                    &text_of(&unit.desired, &copy.name),
                    color
                )
            )?;
        }
    }
    Ok(if plan.has_changes() {
        Outcome::Differs
    } else {
        Outcome::Clean
    })
}

/// What apply does to the copies of a unit whose options fleet has as
/// desired: `start 1, destroy 3`.
fn copies_to_converge(unit: &fleet::PlannedUnit) -> String {
    let not_running = (unit.copies.iter()).filter(|c| {
        (c.not_running.is_some() || unit.desired.as_ref() != Some(&c.options))
            && !unit.is_extra(&c.instance)
    });
    let list = |instances: Vec<&str>| instances.join(", ");
    [
        (
            "start",
            list(unit.missing.iter().map(String::as_str).collect()),
        ),
        (
            "replace",
            list(not_running.map(|c| c.instance.as_str()).collect()),
        ),
        (
            "destroy",
            list(unit.extra.iter().map(|(i, _)| i.as_str()).collect()),
        ),
    ]
    .into_iter()
    .filter(|(_, instances)| !instances.is_empty())
    .map(|(what, instances)| format!("{what} {instances}"))
    .collect::<Vec<_>>()
    .join(", ")
}

pub fn apply(args: &FleetArgs, instance: &Instance, wait: Duration) -> Result<Outcome> {
    let name = instance.prefix();
    let _lock = lock(args.of_instance(instance).endpoint(), &name)?;
    let (client, plan) = fleet_plan(args, instance)?;
    let progress = Progress::default();
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
    // Another apply of the instance from another machine (the lock is
    // this machine's), or a hand, may have changed fleet meanwhile: seen
    // live, one of two applies at once said up to date while the other's
    // units ran. What fleet holds now is what is said.
    let (_, after) = fleet_plan(args, instance)?;
    let differences = not_held(&after);
    if !differences.is_empty() {
        return Err(miette!(
            help = format!(
                "`unitgen plan {} --fleet` shows what differs, and `unitgen apply {} --fleet` \
                 applies the template again",
                instance.instance, instance.instance
            ),
            "apply of {name} to fleet: every step was done, but fleet does not hold the \
             template now (changed while this apply ran: another apply of the instance at \
             the same time, or a change by hand?): {}",
            differences.join("; ")
        ));
    }
    progress.line(&format!(
        "{name} is up to date in fleet ({})",
        client.endpoint()
    ));
    Ok(Outcome::Clean)
}

/// Where fleet does not hold what the plan's template says, a phrase a
/// unit: its units' text, their copies, and the state each is told to
/// keep. Not whether each runs at this moment: apply has seen each run,
/// and a machine's state of a running copy was seen missing for a moment
/// right after (live, under load); `plan` and `status` tell that.
fn not_held(plan: &FleetPlan) -> Vec<String> {
    let mut said = Vec::new();
    for unit in plan.units.iter().filter(|u| u.action != Action::Unchanged) {
        let mut why: Vec<String> = Vec::new();
        match unit.action {
            Action::Add => why.push("fleet does not have it".to_owned()),
            Action::Remove => why.push("fleet still has it".to_owned()),
            _ => {}
        }
        if unit.action == Action::Change && unit.current != unit.desired {
            why.push(if unit.current.is_none() {
                "fleet has no such template".to_owned()
            } else {
                "fleet holds other unit text".to_owned()
            });
        }
        for copy in unit.copies.iter().filter(|c| !unit.is_extra(&c.instance)) {
            if copy.desired_state != fleet::JobState::Launched {
                why.push(format!(
                    "{} is told to keep {}",
                    copy.name,
                    copy.desired_state.as_str()
                ));
            }
            if unit.desired.as_ref().is_some_and(|d| d != &copy.options) {
                why.push(format!("{} is not as applied", copy.name));
            }
        }
        if unit.action == Action::Change {
            for instance in &unit.missing {
                why.push(format!("copy {instance} is missing"));
            }
            for (instance, _) in &unit.extra {
                why.push(format!("copy {instance} is one too many"));
            }
        }
        if !why.is_empty() {
            said.push(format!("{} ({})", unit.name, why.join(", ")));
        }
    }
    said
}

/// Waits for any other unitgen of this machine that changes the instance
/// `prefix` in the fleet at `endpoint` (an apply, start, stop, restart,
/// destroy), held until the returned turn is dropped: two rolls of one
/// instance at once undo each other (seen live: an apply said up to date,
/// then the other's roll back put the old units back). Applies from two
/// machines are not kept apart by this: `apply` checks what fleet holds
/// when it is done.
fn lock(endpoint: &str, prefix: &str) -> Result<Turn> {
    let dir = Some(Path::new("/run/lock"))
        .filter(|dir| dir.is_dir())
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    Turn::take(&dir, endpoint, prefix, || {
        crate::say!("waiting for another unitgen working on {prefix} in this fleet to finish...")
    })
    .map_err(|(path, e)| {
        miette!(
            "locking {prefix} for fleet at {endpoint}: {}: {e}",
            crate::diagnostic::shown_path(&path)
        )
    })
}

/// One unitgen's turn at an instance in one fleet: an exclusive `flock` on
/// a file named after both, which is removed when the turn ends (one file
/// an endpoint and instance, else they pile up in /run/lock).
struct Turn {
    path: PathBuf,
    // Held open (and so locked) until the turn ends.
    _file: std::fs::File,
}

impl Turn {
    /// Takes the turn in `dir`, calling `waiting` once if another unitgen
    /// has it. A file the last holder removed (its turn ended while this
    /// one waited on it) is no lock anyone else waits on: the turn is
    /// taken again on the file at the path, as a unitgen that came after
    /// made it.
    fn take(
        dir: &Path,
        endpoint: &str,
        prefix: &str,
        waiting: impl FnOnce(),
    ) -> std::result::Result<Turn, (PathBuf, std::io::Error)> {
        use sha1::Digest;
        use std::os::unix::fs::OpenOptionsExt;
        // The endpoint as a short digest: it is a URL, not a file name.
        let cluster: String = (sha1::Sha1::digest(endpoint.as_bytes()).iter().take(6))
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = dir.join(format!("unitgen-fleet-{cluster}-{prefix}.lock"));
        let mut waiting = Some(waiting);
        loop {
            // Read-only when another user made it: a lock needs no writing.
            let file = std::fs::File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o644)
                .open(&path)
                .or_else(|_| std::fs::File::open(&path))
                .map_err(|e| (path.clone(), e))?;
            if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
                if let Some(waiting) = waiting.take() {
                    waiting();
                }
                file.lock().map_err(|e| (path.clone(), e))?;
            }
            if crate::state::is_same_file(&file, &path) {
                return Ok(Turn { path, _file: file });
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // While still locked: one waiting on this file then finds it gone
        // (see `take`). Not removable (another user's, in a sticky folder):
        // left, as before.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `fleet_copies`: the instance's `fleet.copies`, if its template can be
/// read (see [`fleet::status`]).
pub fn status(
    args: &FleetArgs,
    app: &str,
    instance: &str,
    fleet_copies: Option<u32>,
    json: bool,
) -> Result<Outcome> {
    let client = args.client()?;
    let units =
        fleet::status(&client, &prefix(app, instance), fleet_copies).map_err(|e| miette!("{e}"))?;
    // As the host target's status: 4 when fleet has nothing of the
    // instance, 3 when some of it does not run.
    let outcome = if units.is_empty() {
        Outcome::NotInstalled
    } else if (units.iter()).any(|u| u.not_running.is_some() || u.not_as_applied.is_some()) {
        Outcome::NotRunning
    } else {
        Outcome::Clean
    };
    // What each sidekick template says it announces, read from etcd as the
    // host target's status does.
    let owners: Vec<crate::render::Owner> = (units.iter())
        .filter(|u| u.name.contains("@."))
        .filter_map(|u| crate::render::owner(&unit_file::to_text(&u.options)))
        .collect();
    let announced = Announced::read_all(&owners);
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
                    // A global unit: per machine.
                    "machines": (u.on_machines.iter())
                        .map(|(machine, systemd)| serde_json::json!({
                            "machine_id": machine,
                            "systemd": systemd,
                        }))
                        .collect::<Vec<_>>(),
                    "not_running": u.not_running,
                    "not_as_applied": u.not_as_applied,
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
        super::output::json(&serde_json::json!({
            "units": rows,
            "announced": announced,
        }))?;
        return Ok(outcome);
    }
    showln!(
        "{:<40} {:<10} {:<10} {:<32} SYSTEMD",
        "UNIT",
        "DESIRED",
        "CURRENT",
        "MACHINE"
    )?;
    let systemd = |s: Option<&fleet::UnitState>| {
        s.map_or("-".to_string(), |s| {
            format!("{} ({})", s.systemd_active_state, s.systemd_sub_state)
        })
    };
    for unit in &units {
        let state = |s: Option<fleet::JobState>| s.map_or("-", |s| s.as_str());
        // A global unit has no machine and no current state in fleet: a
        // row for each of its machines, with what systemd says there.
        let rows: Vec<(&str, String)> = if unit.on_machines.is_empty() {
            vec![(&unit.machine_id, systemd(unit.systemd.as_ref()))]
        } else {
            (unit.on_machines.iter())
                .map(|(machine, s)| (machine.as_str(), systemd(s.as_ref())))
                .collect()
        };
        for (machine, systemd) in rows {
            showln!(
                "{:<40} {:<10} {:<10} {:<32} {systemd}",
                unit.name,
                state(unit.desired_state),
                state(unit.current_state),
                machine,
            )?;
        }
    }
    for (service, announcement) in &announced {
        showln!("{service}:")?;
        print_announced(announcement)?;
    }
    for unit in &units {
        if let Some(why) = &unit.not_running {
            showln!("! {} is not running: {why}", unit.name)?;
        }
        if let Some(why) = &unit.not_as_applied {
            showln!("! {} is not as applied: {why}", unit.name)?;
        }
    }
    Ok(outcome)
}

/// The app an instance belongs to, for `status` and `destroy` with --fleet:
/// from the template if it can be read, else from the instances fleet has
/// (never from this host's units, which may be another app's instance of
/// the same name: destroy would have removed that one from fleet).
pub fn app_of(args: &FleetArgs, file: &FileArgs, target: &str) -> Result<(String, String)> {
    let problem = match file.app_and_instance(target) {
        Ok(found) => return Ok(found),
        Err(problem) => miette::Report::new(problem),
    };
    let client = args.client()?;
    let instances = match fleet::instances(&client) {
        Ok(instances) => instances,
        Err(e) => {
            return Err(
                problem.wrap_err(format!("the template cannot be read, nor fleet asked: {e}"))
            );
        }
    };
    let mut apps: Vec<String> = (instances.into_iter())
        .filter(|i| i.instance == target)
        .map(|i| i.app)
        .collect();
    apps.dedup();
    match apps.as_slice() {
        [app] => {
            crate::say!(
                "warning: {} could not be read; acting on fleet's units of app {app}",
                crate::diagnostic::shown_path(&file.path())
            );
            Ok((app.clone(), target.to_string()))
        }
        [] => Err(problem),
        several => Err(problem.wrap_err(format!(
            "the template cannot be read, and fleet has instance `{target}` of several apps \
             ({}): name it APP/INSTANCE",
            several.join(", ")
        ))),
    }
}

/// `unitgen ls --fleet`: the instances fleet has, and how many of their
/// services' copies run.
pub fn ls(args: &FleetArgs, json: bool) -> Result<Outcome> {
    let client = args.client()?;
    let instances = fleet::instances(&client).map_err(|e| miette!("{e}"))?;
    if json {
        let rows: Vec<serde_json::Value> = (instances.iter())
            .map(|i| {
                serde_json::json!({
                    "app": i.app,
                    "instance": i.instance,
                    "services": i.services,
                    "copies": i.copies,
                    "copies_running": i.copies_running,
                })
            })
            .collect();
        super::output::json(&rows)?;
        return Ok(Outcome::Clean);
    }
    if instances.is_empty() {
        showln!("no instance in fleet ({})", client.endpoint())?;
        return Ok(Outcome::Clean);
    }
    showln!("{:<16} {:<16} {:<9} COPIES", "APP", "INSTANCE", "SERVICES")?;
    for i in &instances {
        showln!(
            "{:<16} {:<16} {:<9} {}/{} running",
            i.app,
            i.instance,
            i.services,
            i.copies_running,
            i.copies
        )?;
    }
    Ok(Outcome::Clean)
}

/// `unitgen start|stop|restart --fleet`.
pub fn control(
    args: &FleetArgs,
    kind: JobKind,
    app: &str,
    instance: &str,
    services: &[String],
    wait: Duration,
) -> Result<Outcome> {
    let (control, verb, done, left) = match kind {
        JobKind::Start => (Control::Start, "start", "started", "already running"),
        JobKind::Stop => (Control::Stop, "stop", "stopped", "not running"),
        JobKind::Restart => (Control::Restart, "restart", "restarted", ""),
        JobKind::ReloadOrRestart => unreachable!("no command reloads"),
    };
    let client = args.client()?;
    let name = crate::model::prefix(app, instance);
    let _lock = lock(args.endpoint(), &name)?;
    let progress = Progress::default();
    let options = ApplyOptions {
        wait_timeout: wait,
        ..ApplyOptions::default()
    };
    let controlled = fleet::control(
        &client,
        &prefix(app, instance),
        control,
        services,
        &options,
        &mut |step: &str| progress.line(&format!("  {step}")),
    )
    // A Problem: it escapes what the command line gave (a service name).
    .map_err(|e| {
        miette::Report::new(crate::diagnostic::Problem::new(format!(
            "{verb} of {name} in fleet failed: {e}"
        )))
    })?;
    let mut said = format!(
        "{name}: {} {done} in fleet ({})",
        count(controlled.acted.len(), "unit"),
        client.endpoint()
    );
    if !controlled.left.is_empty() {
        said.push_str(&format!(
            ", {} {left} ({})",
            count(controlled.left.len(), "unit"),
            controlled.left.join(", ")
        ));
    }
    progress.line(&said);
    Ok(Outcome::Clean)
}

pub fn destroy(args: &FleetArgs, app: &str, instance: &str) -> Result<Outcome> {
    let client = args.client()?;
    let _lock = lock(args.endpoint(), &crate::model::prefix(app, instance))?;
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
    let left = fleet::run_everywhere(&client, &cleanup.name, &unit, &options, &mut step)
        .map_err(|e| {
            miette!(
                "{app}-{instance}: {} units destroyed in fleet, but the Docker network may be left: {e}",
                destroyed.units.len()
            )
        })?;
    let network = crate::model::prefix(app, instance);
    if left.is_empty() {
        progress.line(&format!(
            "{network}: {} units destroyed in fleet, its network removed from every machine",
            destroyed.units.len()
        ));
    } else {
        // A lost machine takes its containers with it; its network stays
        // on its Docker engine should it come back.
        progress.line(&format!(
            "{network}: {} units destroyed in fleet, its network removed from every machine \
             but {}, which left the cluster first (if it comes back: `docker network rm \
             {network}` there)",
            destroyed.units.len(),
            left.join(", ")
        ));
    }
    Ok(Outcome::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn lock_files(dir: &Path) -> Vec<String> {
        (std::fs::read_dir(dir).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    // Each turn's file was left in /run/lock for good. Removed, a unitgen
    // that waited on it must not take it for its turn: one that comes
    // after makes a new file, and the two would run at once.
    #[test]
    fn a_turn_removes_its_file_and_the_next_ones_still_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let take = |tag: &'static str, said: mpsc::Sender<&'static str>| {
            let dir = dir.path().to_path_buf();
            let (release, released) = mpsc::channel::<()>();
            let thread = std::thread::spawn(move || {
                let waiting = said.clone();
                let turn = Turn::take(&dir, "http://h:1", "shop-live", move || {
                    waiting.send("waiting").unwrap()
                })
                .unwrap();
                said.send(tag).unwrap();
                released.recv().unwrap();
                drop(turn);
            });
            (release, thread)
        };
        let next = |said: &mpsc::Receiver<&'static str>| {
            said.recv_timeout(Duration::from_secs(60)).unwrap()
        };
        let (first_said, first_told) = mpsc::channel();
        let (first, first_thread) = take("first", first_said);
        assert_eq!(next(&first_told), "first");
        assert_eq!(lock_files(dir.path()).len(), 1);
        // The second waits on the first's file, which goes with its turn.
        let (second_said, second_told) = mpsc::channel();
        let (second, second_thread) = take("second", second_said);
        assert_eq!(next(&second_told), "waiting");
        first.send(()).unwrap();
        first_thread.join().unwrap();
        assert_eq!(next(&second_told), "second");
        // A third, come while the second has its turn, waits for it.
        let (third_said, third_told) = mpsc::channel();
        let (third, third_thread) = take("third", third_said);
        assert_eq!(
            next(&third_told),
            "waiting",
            "the third ran beside the second"
        );
        second.send(()).unwrap();
        second_thread.join().unwrap();
        assert_eq!(next(&third_told), "third");
        third.send(()).unwrap();
        third_thread.join().unwrap();
        assert_eq!(lock_files(dir.path()), Vec::<String>::new());
    }
}
