//! `unitgen plan` and `unitgen apply`: show and make the changes that bring
//! a host to an instance's template.

use std::collections::BTreeSet;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use clap::{Args, ValueEnum};
use miette::{IntoDiagnostic as _, Result, WrapErr as _, miette};

use super::fleet::{self, FleetArgs, FleetWaitArgs};
use super::host::HostArgs;
use super::output::out;
use super::site::{self, SiteHostArgs};
use super::{Opened, Outcome, TemplateArgs};
use crate::compile::compile;
use crate::fault;
use crate::model::route::{ROUTER_UNIT, Router};
use crate::plan::{Plan, image_volumes};
use crate::progress::Progress;
use crate::pull::{self, PullPolicy};
use crate::render::UnitFile;
use crate::router;
use crate::router::moves::Move;
use crate::secrets;
use crate::state::{
    Command, InstanceState, Intent, Provenance, RevisionInfo, UnderWay as _, now_micros,
    units_digest,
};
use crate::systemd::converge::{self, Failure, Host, HostAfter};
use crate::systemd::handover::{self, Handover, Routed};
use crate::systemd::observe::observe;
use crate::template::Template;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The instance to compare with what is installed (`APP/INSTANCE` with
    /// a site file). Without it, with a site file: every instance the site
    /// assigns to this host.
    pub instance: Option<String>,
    #[command(flatten)]
    pub template: TemplateArgs,
    #[command(flatten)]
    pub site_host: SiteHostArgs,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Colour the diff.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Print JSON (for scripts) instead of the diff: `up_to_date`, the
    /// summary, each unit apply acts on (`op`: add, change, remove, repair),
    /// the notes and the diffs; with a site file and no instance, an array of
    /// one such object per instance. The exit code is the same.
    #[arg(long, conflicts_with = "fleet")]
    pub json: bool,
}

/// `--pull`: when apply fetches images (as compose's `pull_policy`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PullArg {
    /// Fetch only the images this host does not have.
    Missing,
    /// Fetch every image of the instance, so a moved tag (`redis:7`) is
    /// seen; a service whose tag moved is restarted onto the new image.
    Always,
    /// Fetch nothing; an image the host does not have fails the apply.
    Never,
}

impl PullArg {
    pub fn policy(self) -> PullPolicy {
        match self {
            PullArg::Missing => PullPolicy::Missing,
            PullArg::Always => PullPolicy::Always,
            PullArg::Never => PullPolicy::Never,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The instance to bring up to date (e.g. `staging`; `APP/INSTANCE`
    /// with a site file). Without it, with a site file: every instance the
    /// site assigns to this host, app by app.
    pub instance: Option<String>,
    #[command(flatten)]
    pub template: TemplateArgs,
    #[command(flatten)]
    pub site_host: SiteHostArgs,
    #[command(flatten)]
    pub host: HostArgs,
    /// Seconds every started or restarted unit must stay up, counted from
    /// its own start, before the apply counts as successful: catches
    /// containers that start, then exit. Units start in parallel, so this
    /// adds at most what is left of the window of the units that started
    /// last; a service with a healthcheck is proven once healthy (its start
    /// waits for that) and is not waited for. 0: no check.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = DEFAULT_SETTLE,
        conflicts_with = "fleet"
    )]
    pub settle: u64,
    /// When to fetch images. They are fetched, all at once, before anything
    /// is stopped or restarted; if one cannot be had, nothing is changed.
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value_t = PullArg::Missing,
        conflicts_with = "fleet"
    )]
    pub pull: PullArg,
    #[command(flatten)]
    pub fleet: FleetArgs,
    #[command(flatten)]
    pub fleet_wait: FleetWaitArgs,
    /// Change the host's router to this file's `router:` settings even
    /// though it serves other instances (whose files may say otherwise).
    /// Without it, such an apply is refused and changes nothing.
    #[arg(long, conflicts_with = "fleet")]
    pub replace_router: bool,
}

/// How long a started unit must stay up by default (`--settle`; `unitgen
/// start` and `restart` use it too).
pub const DEFAULT_SETTLE: u64 = 1;

pub fn plan(args: PlanArgs) -> Result<Outcome> {
    let mut differs = false;
    let fleet = args.fleet.fleet;
    let mut json = Vec::new();
    let moves = route_moves(
        args.fleet.fleet,
        &args.template,
        args.instance.as_deref(),
        &args.site_host,
        &args.host,
    )?;
    site::each_target(
        &args.template,
        args.instance.as_deref(),
        &args.site_host,
        &args.host,
        fleet,
        ("plan", "planned"),
        &moves,
        |template, instance| {
            let (up_to_date, plan) = plan_one(&args, template, instance, &moves)?;
            differs |= !up_to_date;
            json.extend(plan);
            Ok(())
        },
    )?;
    if args.json {
        let json = match (&args.instance, json.len()) {
            (Some(_), 1) => json.remove(0),
            _ => serde_json::Value::Array(json),
        };
        super::output::json(&json)?;
    }
    Ok(if differs {
        Outcome::Differs
    } else {
        Outcome::Clean
    })
}

/// Plans one instance; whether it is up to date, and with --json the plan
/// as JSON (printed by the caller, all instances' together).
fn plan_one(
    args: &PlanArgs,
    template: &Template,
    instance: &str,
    moves: &[Move],
) -> Result<(bool, Option<serde_json::Value>)> {
    let mut instance = compile(template, instance, &args.template.overrides())?;
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    if args.fleet.fleet {
        super::refuse_what_fleet_cannot_run(&instance)?;
        return fleet::plan(&args.fleet, &instance, color)
            .map(|o| (matches!(o, Outcome::Clean), None));
    }
    crate::docker::check_cpus_on_this_host(&instance).into_result(())?;
    let store = secrets::Store::new(&args.host.state_dir()?, &instance.prefix());
    let host = args.host.host()?;
    let values = secrets::read(&instance)?;
    let (env_files, unchecked) = seal(&mut instance, &values, &store, &host, KeyUse::Read)?;
    let installed = args.host.installed(&instance.app, &instance.instance)?;
    if unchecked.is_some() {
        // Compared as applied: the rest of the backup unit still is.
        let applied = installed_password_digest(&installed, &instance.backup_unit());
        if let Some(backup) = &mut instance.backup {
            backup.password_digest = applied;
        }
    }
    // Their digests are in the routes unit: a renewed certificate shows.
    let route_files =
        router::read_files(&mut instance).map_err(crate::diagnostic::Problems::from)?;
    // Not etcd's claims: plan reads the host only (etcd may be out of reach).
    refuse_claimed_routes(&host, &instance, EtcdClaims::Skip, moves)?;
    let renderer = args.host.renderer()?;
    let desired = renderer.render(&instance);
    let state = args.host.state(&instance.app, &instance.instance)?;
    let routes = written_routes(&host, &instance);
    let (mut plan, _) = host_plan(
        &host,
        &state,
        &installed,
        &desired,
        routes.as_ref(),
        Some((&store, &env_files)),
    )?;
    plan.unchecked.extend(unchecked);
    plan.stale_route_files = stale_route_copies(&host, &instance, &installed, &route_files);
    plan.standins_unkept = standins_unkept(&renderer, &instance, &host, &state, &installed);
    if instance.router.is_none() && state.unrouting_left().is_some() {
        plan.unrouting = Some(format!(
            "an earlier apply that took {}'s routes away did not finish: the router's copies of \
             its files, and {ROUTER_UNIT} when it routes no other instance, are still there; \
             applying removes them",
            instance.prefix(),
        ));
    }
    if state.changing_now() {
        plan.changing_now(state.changing_now_note());
    }
    let held = crate::backup::held_for_copies(&host, &instance.prefix());
    if !held.is_empty() {
        plan.held_by_backup(&instance.backup_unit(), &held);
    }
    if !args.json {
        out!("{}", plan.describe(color))?;
    }
    // Asked of the engine the units use: where their systemd cannot be
    // reached (a unit folder given alone), which one that is is unknown.
    // (`host_plan` reached it already when units stay.)
    let reached = !plan.keep.is_empty() || !plan.change.is_empty() || host.connect().is_ok();
    if reached {
        for unkept in unkept_image_volumes(&instance) {
            crate::say!("warning: {}", unkept.warning());
        }
    }
    // The host's router, which apply installs or updates after the units.
    let router_plan = match &instance.router {
        None => None,
        Some(router) => {
            let present: Vec<UnitFile> = router::installed(&host).into_iter().collect();
            let unit = renderer.router_unit(router);
            let mut router_plan = Plan::new(&present, std::slice::from_ref(&unit));
            // Its state too: apply starts a router that is not running, and
            // restarts one an apply was killed before it restarted.
            if !router_plan.keep.is_empty() {
                let systemd = host.connect().map_err(|f| miette!("{}", f.message))?;
                let observed = observe(&systemd, &host, &present, &router_plan, None)
                    .map_err(|e| miette!("{e}"))?;
                router_plan.observe(&observed.units);
                router::told_as_pending(&host, &unit, &mut router_plan);
            }
            Some(router_plan)
        }
    };
    let mut router_json = serde_json::Value::Null;
    match &router_plan {
        Some(router_plan) if !router_plan.is_up_to_date() => {
            let unit = &router_plan.change.first().map(|c| &c.new);
            let refused = unit
                .and_then(|unit| router::refuse_other_settings(&host, &instance, unit, false).err())
                .map(|refused| {
                    format!("apply refuses this router change without --replace-router: {refused}")
                });
            if args.json {
                router_json = router_plan.to_json();
                router_json["refused"] = refused.into();
            } else {
                out!("the host's router:\n{}", router_plan.describe(color))?;
                if let Some(refused) = refused {
                    out!("! {refused}\n")?;
                }
            }
        }
        _ => {}
    }
    // Warns only: DNS is not the host's state, and may lag behind on purpose.
    super::dns::warn_in_plan(&args.template.file, &instance);
    let up_to_date = plan.is_up_to_date() && router_plan.is_none_or(|p| p.is_up_to_date());
    let json = args.json.then(|| {
        let mut json = plan.to_json();
        json["app"] = instance.app.clone().into();
        json["instance"] = instance.instance.clone().into();
        // The instance's own plan and its router's, as the exit code.
        json["up_to_date"] = up_to_date.into();
        json["router"] = router_json;
        json
    });
    Ok((up_to_date, json))
}

/// Why the latest revision, installed as the template renders it, does
/// not keep its routed services' stand-ins as the template renders them
/// (`handover::STORED` missing, as an older unitgen or a kill left it, or
/// differing), if it does not: apply keeps them again (see the no-op path
/// of [`converge_and_record`]); until then `restart` and `rollback` to it
/// restart those services under the router.
fn standins_unkept(
    renderer: &crate::render::Renderer,
    instance: &crate::model::Instance,
    host: &Host,
    state: &InstanceState,
    installed: &[UnitFile],
) -> Option<String> {
    let handover = handover_of(renderer, instance, host, state.dir().join(handover::RECORD))?;
    let latest = state.revisions().ok()?.pop()?;
    if handover.services.is_empty() || !crate::state::is_recorded(Some(&latest), installed) {
        return None;
    }
    let dir = state.revision_dir(latest.number);
    (!handover.is_stored(&dir, host.root.as_deref())).then(|| {
        format!(
            "revision {} does not keep the stand-ins of its routed services as the template \
             renders them ({} missing or different): `restart` and `rollback` to it would \
             restart them with downtime; applying keeps them again",
            latest.number,
            dir.join(handover::STORED).display()
        )
    })
}

/// The plan against the host's real state: the unit files, what systemd
/// (and Docker) make of them, and the state directory's record (a revision
/// that matches the installed units; an apply that did not finish).
pub fn host_plan(
    host: &Host,
    state: &InstanceState,
    installed: &[UnitFile],
    desired: &[UnitFile],
    routes: Option<&WrittenRoutes>,
    secrets: Option<(&secrets::Store, &[secrets::EnvFile])>,
) -> Result<(Plan, Option<Intent>)> {
    let mut plan = Plan::new(installed, desired);
    let intent = state.intent().map_err(|e| miette!("{e}"))?;
    let latest = state
        .revisions()
        .map_err(|e| miette!("reading revisions: {e}"))?
        .pop();
    // Its unit copies too: edited since, they are not what was applied,
    // and a rollback to it would install them.
    if let Some(latest) = &latest {
        state
            .load(latest.number)
            .map_err(|e| miette!("reading revisions: {e}"))?;
        handover::refuse_newer_stored(&state.revision_dir(latest.number))
            .map_err(|e| miette!("{e}"))?;
    }
    plan.unfinished = unfinished(state, intent.as_ref(), latest.as_ref(), installed);
    // A zero-downtime switch that a killed apply left (see `handover`): its
    // stand-in may still run, or the router still send it the traffic, even
    // when the units are as recorded. Apply (and rollback) finish it first.
    // A rollback's (killed while its stand-ins drained, its intent left):
    // applying would not finish it but go to the template's units.
    let finisher = match intent.as_ref() {
        Some(Intent {
            command: Command::Rollback { .. },
            unreadable: None,
            ..
        }) => format!(
            "`unitgen rollback {}` finishes it (applying brings the template's units instead)",
            state.name().replacen('-', "/", 1)
        ),
        _ => "applying finishes it".to_string(),
    };
    plan.handover_left =
        handover::left_finished_by(&state.dir().join(handover::RECORD), "an earlier", &finisher)
            .map_err(|e| miette!("{e}"))?;
    plan.unknown_state_files = state.unknown_files_note();
    let restoring = state.restoring().map_err(|e| miette!("{e}"))?;
    plan.restore = restoring.as_ref().map(|restoring| restoring.describe());
    // Installed units no record explains (the record of the command that
    // wrote them deleted, or its revision moved away): which of them run
    // what their files said before is read from the host, as for a
    // record found unreadable.
    let recorded = crate::state::is_recorded(latest.as_ref(), installed);
    let lost = (intent.is_none() && !installed.is_empty() && !recorded)
        .then(|| Intent::unreadable("no record".to_string()));
    if !plan.keep.is_empty() || !plan.change.is_empty() {
        let systemd = host.connect().map_err(|f| miette!("{}", f.message))?;
        let observed = observe(
            &systemd,
            host,
            installed,
            &plan,
            intent.as_ref().or(lost.as_ref()),
        )
        .map_err(|e| miette!("{e}"))?;
        // A kept service whose tag moved is restarted onto the new image;
        // images the host lost are pulled.
        plan = plan.with_moved(observed.moved);
        plan.missing_images = observed.missing_images;
        plan.running_without_file = observed.running_without_file;
        plan.name_holders = observed.name_holders;
        plan.on_network = observed.on_network;
        let mut units = observed.units;
        // The services a killed restore fed its dump (the record names
        // them; an unreadable one none).
        if let Some(restoring) = &restoring {
            for seen in &mut units {
                let text = installed.iter().find(|u| u.name == seen.unit);
                seen.restore_reading = text.is_some_and(|unit| {
                    crate::systemd::observe::restore_still_reading(
                        seen,
                        &unit.text,
                        &restoring.dumps,
                    )
                });
            }
        }
        plan.observe(&units);
        // A handover's stand-ins are told once, as `handover_left`.
        let standins =
            handover::standin_containers(&state.dir().join(handover::RECORD), &host.unit_dir);
        plan.stray_containers = (observed.stray_containers.into_iter())
            .filter(|container| !standins.contains(container))
            .collect();
    }
    // What the routes unit wrote is the router's input: deleted or edited,
    // the instance is not routed as applied. (A killed apply's switch to
    // its stand-ins is no edit: finishing its handover puts it back.)
    if let Some(routes) = routes
        && std::fs::read_to_string(&routes.path).ok().as_deref() != Some(routes.text.as_str())
        && !handover::routes_switched(&state.dir().join(handover::RECORD))
    {
        plan.found(&routes.unit, crate::plan::Fault::RoutesNotWritten);
    } else if let Some(routes) = routes
        && let Some(mark) = &routes.mark
        && plan.keep.contains(&routes.unit)
        && !handover::routes_switched(&state.dir().join(handover::RECORD))
        && let Some(why) = router::not_serving(host, &routes.file, mark)
    {
        // As written, yet not what the router serves: one question to it
        // (see `render::route::marked`). Applying writes the file again
        // and waits for the router to serve it, or fails saying why.
        plan.found(&routes.unit, crate::plan::Fault::RoutesNotServed { why });
    }
    // With routes in etcd, the keys are the routers' input: deleted or
    // edited there (etcdctl by hand, another tool), no router routes the
    // instance as applied. Only a running routes unit is asked about: a
    // start writes them anyway.
    if let Some(routes) = routes
        && let Some(etcd) = &routes.etcd
        && plan.keep.contains(&routes.unit)
    {
        let found = crate::etcd::instance_routes(&etcd.endpoints, &etcd.prefix).map_err(|e| {
            miette!(
                "reading the instance's routes in etcd at {}: {e}",
                etcd.endpoints
            )
        })?;
        // As this host's routes unit wrote them: with its machine ID.
        let machine_id = router::machine_id(host.root.as_deref())
            .map_err(|e| miette!("reading the host's machine ID: {e}"))?;
        let mut wanted = etcd.pairs.clone();
        crate::render::route::etcd::with_machine_id(&mut wanted, &machine_id);
        wanted.sort();
        if found != wanted {
            plan.found(&routes.unit, crate::plan::Fault::RoutesNotInEtcd);
        }
    }
    // The secrets files apply wrote: the units' next start reads them. The
    // file of a unit apply adds or changes is written with that change (a
    // new value, a secret added or removed): only the others' can be
    // missing or changed by hand.
    if let Some((store, files)) = secrets.filter(|_| !installed.is_empty()) {
        let written_with_unit = |unit: &str| {
            plan.add.iter().any(|u| u.name == unit)
                || plan.change.iter().any(|c| c.new.name == unit)
        };
        let files = files.iter().filter(|f| !written_with_unit(&f.unit));
        plan.stale_secrets = store.stale(files).map_err(|e| {
            miette!(
                "reading the secrets in {} (root-only): {e}",
                crate::diagnostic::shown_path(store.dir())
            )
        })?;
    }
    Ok((plan, intent))
}

/// Resumes the containers `plan` found paused (`docker pause` by hand, or
/// a backup killed between its pause and its resume), and takes that fault
/// out of the plan.
fn resume_paused(name: &str, mut plan: Plan, progress: &Progress) -> Result<Plan> {
    for repair in &mut plan.repair {
        let Some(container) = repair.paused_container().map(str::to_owned) else {
            continue;
        };
        crate::docker::unpause(&container).map_err(|e| {
            miette!("apply of {name} failed: {e}\nnothing else on the host was changed")
        })?;
        progress.line(&format!(
            "{name}: resumed {container}, which was paused (`docker pause`)"
        ));
        repair
            .faults
            .retain(|f| !matches!(f, crate::plan::Fault::ContainerPaused { .. }));
    }
    plan.repair.retain(|repair| !repair.faults.is_empty());
    Ok(plan)
}

/// Removes the running containers with the instance's labels that none of
/// its units runs (see [`Plan::stray_containers`]): the instance's network
/// unit removes them at its start too, and under a service's alias they
/// would answer for it.
fn remove_strays(name: &str, mut plan: Plan, progress: &Progress) -> Result<Plan> {
    let mut strays = std::mem::take(&mut plan.stray_containers);
    strays.extend((std::mem::take(&mut plan.name_holders).into_iter()).map(|(c, _)| c));
    if strays.is_empty() {
        return Ok(plan);
    }
    // Awaited: a `--rm` container's removal may still be under way when
    // `docker rm` returns, and its name, alias or port is still taken.
    crate::docker::free_names(&strays, crate::docker::NAME_RELEASE).map_err(|e| {
        miette!("apply of {name} failed: {e}\nnothing else on the host was changed")
    })?;
    progress.line(&format!(
        "{name}: removed {}, which no unit of it runs (started by hand?)",
        strays.join(", ")
    ));
    Ok(plan)
}

/// Why the state directory's record says the host is not as its last
/// command left it: that command did not finish (see [`Intent`]), or no
/// recorded revision matches the installed units. None when it did.
fn unfinished(
    state: &InstanceState,
    intent: Option<&Intent>,
    latest: Option<&RevisionInfo>,
    installed: &[UnitFile],
) -> Option<String> {
    let dir = state.dir().display();
    let name = state.name();
    // `APP/INSTANCE`, which every command takes, with an app's own file as
    // with a site file (app names have no `-`).
    let instance = name.replacen('-', "/", 1);
    let recorded = crate::state::is_recorded(latest, installed);
    if let Some(why) = intent.and_then(|i| i.unreadable.as_ref()) {
        return Some(format!(
            "the record of an earlier command that did not finish is unreadable ({why}): \
             applying completes it from what the host shows (units whose files were written \
             since they started are restarted) and keeps the record as {}.unreadable; if it \
             was a destroy, `unitgen destroy {instance}` finishes that instead",
            Intent::FILE
        ));
    }
    let left = intent.filter(|i| !i.left_nothing_to_do(latest, recorded));
    if let Some(destroy) = left.and_then(|i| i.finishing_destroy(&instance)) {
        return Some(format!(
            "an earlier destroy of {name} did not finish: `{destroy}` finishes it; applying \
             brings the instance back"
        ));
    }
    if let Some(Intent {
        command: Command::Rollback { to },
        ..
    }) = left
    {
        return Some(format!(
            "an earlier rollback to revision {to} did not finish: `unitgen rollback \
             {instance}` finishes it; applying brings the template's units instead"
        ));
    }
    if installed.is_empty() || recorded {
        return None;
    }
    Some(match (intent, latest) {
        (Some(_), _) => format!(
            "an earlier apply did not finish (it was stopped, or could not record its \
             revision in {dir}): applying completes it"
        ),
        (None, None) => {
            format!("no revision in {dir} records the installed units: applying records one")
        }
        (None, Some(latest)) => format!(
            "the installed units are not revision {} as recorded in {dir}: applying records them",
            latest.number
        ),
    })
}

pub fn apply(args: ApplyArgs) -> Result<Outcome> {
    let moves = route_moves(
        args.fleet.fleet,
        &args.template,
        args.instance.as_deref(),
        &args.site_host,
        &args.host,
    )?;
    site::each_target(
        &args.template,
        args.instance.as_deref(),
        &args.site_host,
        &args.host,
        args.fleet.fleet,
        ("apply", "applied"),
        &moves,
        |template, instance| apply_one(&args, template, instance, &moves),
    )?;
    Ok(Outcome::Clean)
}

/// The host names (and paths) the file moves from one instance this host
/// runs to another ([`router::moves`]). A file that cannot be read or an
/// instance that does not compile moves nothing: the command reports it.
/// Nothing moves on fleet, which has no router (routes are refused there).
fn route_moves(
    fleet: bool,
    template: &TemplateArgs,
    target: Option<&str>,
    site_host: &SiteHostArgs,
    host: &super::host::HostArgs,
) -> Result<Vec<Move>> {
    if fleet {
        return Ok(Vec::new());
    }
    let overrides = template.overrides();
    let compiled = |template: &Template, name: &str| compile(template, name, &overrides).ok();
    let declared: Vec<crate::model::Instance> = match template.file.open() {
        Err(_) => return Ok(Vec::new()),
        Ok(Opened::App(template)) => (template.instance_names().iter())
            .filter_map(|name| compiled(&template, name))
            .collect(),
        Ok(Opened::Site(site)) => {
            // The instances of the host the command acts on.
            let on = match target {
                None => site_host.name().ok(),
                Some(target) => site.select(target).ok().and_then(|(index, instance)| {
                    let placed = site.placed(&site.apps[index].name, &instance)?;
                    Some(placed.host.clone())
                }),
            };
            let Some(on) = on else {
                return Ok(Vec::new());
            };
            (site.on_host(&on).into_iter())
                .filter_map(|(app, placed)| compiled(&app.template, &placed.instance))
                .collect()
        }
    };
    let host = host.host()?;
    Ok(router::moves::find(host.root.as_deref(), &declared))
}

fn apply_one(args: &ApplyArgs, template: &Template, instance: &str, moves: &[Move]) -> Result<()> {
    let overrides = args.template.overrides();
    let mut instance = compile(template, instance, &overrides)?;
    if args.fleet.fleet {
        super::refuse_what_fleet_cannot_run(&instance)?;
        return fleet::apply(&args.fleet, &instance, args.fleet_wait.duration()).map(|_| ());
    }
    crate::docker::check_cpus_on_this_host(&instance).into_result(())?;
    // Read before taking the lock: a password manager may ask for a passphrase.
    let values = secrets::read(&instance)?;
    let route_files =
        router::read_files(&mut instance).map_err(crate::diagnostic::Problems::from)?;
    let (state, _lock) = args.host.lock("apply", &instance.app, &instance.instance)?;
    let host = args.host.host()?;
    refuse_claimed_routes(&host, &instance, EtcdClaims::Check, moves)?;
    refuse_unreachable_engine(&host, &format!("apply of {}", instance.prefix()))?;
    let renderer = args.host.renderer()?;
    if let Some(router) = &instance.router {
        let unit = renderer.router_unit(router);
        router::refuse_other_settings(&host, &instance, &unit, args.replace_router)
            .map_err(miette::Report::new)?;
        // Fetched while nothing is touched, as the services' images are: a
        // router that cannot start once the units have changed would leave
        // every instance of the host without routes.
        if router::installed(&host).is_none_or(|present| present.text != unit.text) {
            let image = BTreeSet::from([router.image.clone()]);
            pull::fetch(&image, args.pull.policy(), &Progress::default()).map_err(
                |unavailable| {
                    miette!(
                        "apply of {} failed: the router's {}\nnothing on the host was changed",
                        instance.prefix(),
                        pull::describe(&unavailable, &BTreeSet::new())
                    )
                },
            )?;
        }
    }
    let store = secrets::Store::new(&args.host.state_dir()?, &instance.prefix());
    let (env_files, _) = seal(&mut instance, &values, &store, &host, KeyUse::Create)?;
    let desired = renderer.render(&instance);
    // A handover an earlier apply left half done: its stand-in may be what
    // the router sends traffic to (see `handover::resume`).
    let record = state.dir().join(handover::RECORD);
    let resumed = handover::resume(&host, &record, &Progress::default())
        .map_err(|f| failure_report(&instance.prefix(), f))?;
    // While the stand-ins keep the traffic, the services restart behind
    // them: no new switch (`converge_and_record` takes the resumed one
    // first); the handover is still kept with the revision.
    let handover = handover_of(&renderer, &instance, &host, record);
    let installed = args.host.installed(&instance.app, &instance.instance)?;
    let settle = Duration::from_secs(args.settle);
    if let Some(router) = &instance.router {
        let (root, prefix) = (host.root.as_deref(), instance.prefix());
        let repaired = stale_route_copies(&host, &instance, &installed, &route_files);
        router::install_files(root, router, &prefix, &route_files)
            .into_diagnostic()
            .wrap_err_with(|| {
                format!(
                    "copying route files into {}",
                    crate::diagnostic::shown_path(&router.files_dir())
                )
            })?;
        if !repaired.is_empty() {
            Progress::default().line(&format!(
                "{prefix}: copied {} into the router's folder again (missing or changed by hand)",
                repaired.join(", ")
            ));
        }
    }
    if instance.router.is_none()
        && let Some(file) = installed.iter().find_map(routes_file)
    {
        state
            .unrouting(&file)
            .into_diagnostic()
            .wrap_err_with(|| format!("apply of {} failed", instance.prefix()))?;
    }
    let changed = converge_and_record(
        &host,
        &state,
        &installed,
        &desired,
        Provenance {
            inputs: template.inputs_digest(&instance.instance, &overrides),
            volumes: instance.volume_names(),
            rollback_of: None,
        },
        How {
            settle,
            pull: args.pull.policy(),
            handover,
            resumed,
            routes: written_routes(&host, &instance),
        },
        Some((&store, &env_files)),
    )?;
    // Said once the images are here (pulled by the apply), by the apply
    // that starts them: a no-op apply does not ask Docker about its images
    // again (`plan` still says it).
    if changed {
        for unkept in unkept_image_volumes(&instance) {
            Progress::default().line(&format!("warning: {}", unkept.warning()));
        }
    }
    store
        .prune(&env_files)
        .into_diagnostic()
        .wrap_err_with(|| {
            format!(
                "removing stale secrets from {}",
                crate::diagnostic::shown_path(store.dir())
            )
        })?;
    let progress = Progress::default();
    let name = instance.prefix();
    match &instance.router {
        Some(router) => {
            let unit = renderer.router_unit(router);
            let held = router::RouterLock::take(&args.host.state_dir()?, &progress)
                .map_err(|e| miette!("{name} is applied, but locking its router failed: {e}"))?;
            let change = router::ensure(&held, &host, &unit, settle, &progress).map_err(|f| {
                for explanation in &f.explained {
                    eprintln!();
                    for line in explanation.lines() {
                        crate::say!("{line}");
                    }
                }
                miette!(
                    "{name} is applied, but its router ({ROUTER_UNIT}) did not start: {}",
                    f.message
                )
            })?;
            // A router just started (or restarted) listens before it has
            // read its folder: the routes are served once it answers their
            // mark, which `plan` asks next (as apply asks after writing them).
            // One that ran on was asked already for a routes file the
            // convergence wrote, and `plan` asked it for one it did not.
            let ran_on = matches!(
                change,
                router::RouterChange::Unchanged | router::RouterChange::Recorded
            );
            if !ran_on {
                router::await_routes(&host, &[instance.routes_unit()], &progress).map_err(|f| {
                    miette!(
                        "{name} is applied, but its router ({ROUTER_UNIT}) does not serve its \
                         routes: {}",
                        f.message
                    )
                })?;
            }
            let said = match change {
                router::RouterChange::Unchanged => "up to date",
                router::RouterChange::Recorded => "up to date (its settings recorded)",
                router::RouterChange::Started => "started",
                router::RouterChange::Installed => "installed and started",
                router::RouterChange::Changed => "changed and restarted",
                router::RouterChange::Repaired(what) => &format!("repaired ({what})"),
            };
            progress.line(&format!("{ROUTER_UNIT} ({}): {said}", router.image));
        }
        None => {
            // Routes this instance had are gone with its routes unit (or
            // went with it in an apply killed before this step).
            let file = (installed.iter().find_map(routes_file)).or_else(|| state.unrouting_left());
            if let Some(file) = file {
                let held = router::RouterLock::take(&args.host.state_dir()?, &progress)
                    .map_err(|e| miette!("removing {name}'s routes: {e}"))?;
                router::after_destroy(&held, &host, &file, &name, &progress)
                    .map_err(|f| miette!("removing {name}'s routes: {}", f.message))?;
            }
        }
    }
    state.unrouted().into_diagnostic().wrap_err_with(|| {
        format!("{name} is applied, but forgetting its routes' removal failed")
    })?;
    Ok(())
}

/// The paths the instance's images declare as volumes that its services
/// get anonymous, lost at each restart (see [`image_volumes`]); images the
/// host does not have yet say nothing.
/// Whether a command may make the key of the instance's secrets' digests.
#[derive(Clone, Copy)]
enum KeyUse {
    /// plan: an ephemeral one before the first apply (every secret is new).
    Read,
    /// apply: made once, kept root-only beside the secrets.
    Create,
}

/// Seals the instance's secrets (`values`) and its backup password with
/// the key of its secrets' digests (see `secrets`): the units then carry
/// digests, never values. The env files that hold the values, for apply
/// to write. No key is read or made for an instance with neither.
///
/// For a plan, a backup password file (or, without secrets, the key) that
/// this user may not read is no error: the backup unit's digest is then
/// left unset (the caller compares it as applied) and the second value
/// says what was not checked, and why.
fn seal(
    instance: &mut crate::model::Instance,
    values: &secrets::Values,
    store: &secrets::Store,
    host: &Host,
    key_use: KeyUse,
) -> Result<(Vec<secrets::EnvFile>, Option<String>)> {
    if instance.secrets.is_empty() && instance.backup.is_none() {
        return Ok((Vec::new(), None));
    }
    let denied = |e: &std::io::Error| {
        matches!(key_use, KeyUse::Read) && e.kind() == std::io::ErrorKind::PermissionDenied
    };
    let key = match key_use {
        KeyUse::Read => match secrets::Key::load_or_ephemeral(store.dir()) {
            Err(e) if denied(&e) && instance.secrets.is_empty() => {
                return Ok((Vec::new(), Some(unread_password(instance, host, &e))));
            }
            read => read.into_diagnostic().wrap_err(
                "reading the key of the secrets' digests (root-only, like the secrets)",
            )?,
        },
        KeyUse::Create => secrets::Key::load_or_create(store.dir())
            .into_diagnostic()
            .wrap_err("creating the key of the secrets' digests")?,
    };
    let env_files = secrets::seal(instance, values, &key);
    match secrets::seal_password(instance, host.root.as_deref(), &key) {
        Err(e) if denied(&e) => Ok((env_files, Some(unread_password(instance, host, &e)))),
        sealed => sealed.into_diagnostic().map(|()| (env_files, None)),
    }
}

/// What a plan says of a backup password file it could not compare with
/// what apply recorded: a root-only file, or key, read as another user.
/// A user's manager runs the backup as that user, who must read the file.
fn unread_password(instance: &crate::model::Instance, host: &Host, e: &std::io::Error) -> String {
    let file = (instance.backup.as_ref()).map_or("", |b| b.password_file.as_str());
    let consequence = if host.user {
        "the backup unit runs as this user too, and cannot read it either: its runs will fail \
         until it can"
    } else {
        "a plan as root compares it"
    };
    format!(
        "whether the backups' password file {} changed since apply: {e}; {consequence}",
        crate::diagnostic::shown(file)
    )
}

/// The `PasswordDigest=` the installed backup unit carries, if any.
fn installed_password_digest(installed: &[UnitFile], backup_unit: &str) -> Option<String> {
    let unit = installed.iter().find(|u| u.name == backup_unit)?;
    secrets::applied_password_digest(&unit.text).map(str::to_string)
}

fn unkept_image_volumes(instance: &crate::model::Instance) -> Vec<image_volumes::Unkept> {
    let images: Vec<String> = (instance.services.iter())
        .map(|s| s.image.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    image_volumes::unkept(instance, &crate::docker::image_volumes(&images))
}

/// The routes file an installed routes unit writes (`[X-Unitgen] Routes=`).
pub fn routes_file(unit: &UnitFile) -> Option<std::path::PathBuf> {
    let section = unit.text.split("\n[X-Unitgen]\n").nth(1)?;
    section
        .lines()
        .find_map(|line| line.strip_prefix("Routes="))
        .map(std::path::PathBuf::from)
}

/// Refuses, before anything changes, a host whose units' Docker engine
/// does not answer: each container would fail to start, and the engine be
/// named only in each failed unit's explanation. `what`: "apply of NAME".
pub fn refuse_unreachable_engine(host: &Host, what: &str) -> Result<()> {
    let Some(why) = crate::docker::engine_unreachable() else {
        return Ok(());
    };
    let systemctl = if host.user {
        "systemctl --user"
    } else {
        "systemctl"
    };
    Err(miette!(
        help = format!(
            "start the engine (`{systemctl} start docker`); if it listens elsewhere, give the \
             units its address (`{systemctl} set-environment DOCKER_HOST=unix:///path/to/docker.sock`): \
             unitgen's docker calls follow the units' DOCKER_HOST"
        ),
        "{what} failed: the Docker engine is unreachable: {why}\nnothing on the host was changed"
    ))
}

/// Whether [`refuse_claimed_routes`] also reads the claims in etcd.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EtcdClaims {
    Check,
    Skip,
}

/// Refuses, before anything changes, a host + path another app's instance
/// already routes on this host (`validate` finds those of one file).
fn refuse_claimed_routes(
    host: &Host,
    instance: &crate::model::Instance,
    etcd: EtcdClaims,
    moves: &[Move],
) -> Result<()> {
    let Some(router) = &instance.router else {
        return Ok(());
    };
    let me = format!("{}/{}", instance.app, instance.instance);
    let (moved, taken): (Vec<_>, Vec<_>) =
        (router::claimed_elsewhere(host.root.as_deref(), router, instance).into_iter())
            .partition(|(claim, _)| moves.iter().any(|m| m.to == me && m.claim == *claim));
    for (claim, _) in &moved {
        let from = moves.iter().find(|m| m.to == me && m.claim == *claim);
        crate::say!(
            "{me}: {claim} moves here from {}, which routes it too until it is applied: the router serves it from either meanwhile",
            from.map_or("", |m| m.from.as_str())
        );
    }
    if let Some((claim, file)) = taken.first() {
        // (The file's name is the host's: shown on its line.)
        return Err(miette!(
            "{} routes {claim}, which {} on this host routes already; nothing was changed\n\
             one router serves every app of a host: each host name and path may go to one instance",
            instance.prefix(),
            crate::diagnostic::shown(file)
        ));
    }
    // With routes in etcd, every host's router serves every instance's.
    let Some(discovery) = instance.routes_in_etcd() else {
        return Ok(());
    };
    if etcd == EtcdClaims::Skip {
        return Ok(());
    }
    let prefix = instance.prefix();
    let in_etcd = crate::etcd::route_claims(&discovery.endpoints.join(","), &format!("{prefix}-"))
        .map_err(|e| miette!("reading the routes in etcd: {e}; nothing was changed"))?;
    let own = router::claims(instance);
    match in_etcd.iter().find(|(claim, _)| own.contains(claim)) {
        None => Ok(()),
        Some((claim, router)) => Err(miette!(
            "{prefix} routes {claim}, which router {router} in etcd routes already; nothing was changed\n\
             every host's router serves the routes in etcd: each host name and path may go to one instance"
        )),
    }
}

/// How apply and rollback bring units up.
pub struct How {
    /// See `apply --settle`.
    pub settle: Duration,
    pub pull: PullPolicy,
    /// The instance's routed services, replaced without downtime (unless
    /// `resumed` keeps the traffic), and kept with the revision recorded
    /// for `restart` and `rollback` (`handover::STORED`).
    pub handover: Option<Handover>,
    /// A handover an earlier apply left with the traffic on its stand-ins
    /// ([`handover::resume`]): switched back once the services converged.
    pub resumed: Option<handover::Switched>,
    /// The instance's routes file as its routes unit writes it (apply):
    /// one found otherwise is written again.
    pub routes: Option<WrittenRoutes>,
}

/// The copies in the router's folder of the routes' certificate, key and
/// htpasswd files that are missing or differ from their originals, where
/// the originals are what the installed routes were made with (a new or
/// renewed file shows as a change of the routes instead).
fn stale_route_copies(
    host: &Host,
    instance: &crate::model::Instance,
    installed: &[UnitFile],
    contents: &[(String, Vec<u8>)],
) -> Vec<String> {
    let Some(router) = &instance.router else {
        return Vec::new();
    };
    let (root, prefix) = (host.root.as_deref(), instance.prefix());
    let stale = router::stale_files(root, router, &prefix, contents);
    let files = instance.routes.iter().flat_map(|route| route.files());
    (files.filter(|file| stale.contains(&file.name)))
        .filter(|file| {
            file.digest.as_ref().is_some_and(|digest| {
                let line = format!("# file: {} {digest}", file.name);
                installed.iter().any(|unit| unit.text.contains(&line))
            })
        })
        .map(|file| format!("{} (as {})", file.source.display(), file.name))
        .collect()
}

/// The routes file an instance's routes unit writes, as it should read
/// (see [`Plan::found`]).
pub struct WrittenRoutes {
    unit: String,
    /// On the host (under `--root`).
    path: std::path::PathBuf,
    text: String,
    /// Its path as the routes unit names it.
    file: std::path::PathBuf,
    /// The path of its mark (see `render::route::marked`).
    mark: Option<String>,
    /// With routes in etcd: what the routes unit writes there.
    etcd: Option<EtcdRoutes>,
}

pub struct EtcdRoutes {
    endpoints: String,
    prefix: String,
    /// The keys and values, sorted.
    pairs: Vec<(String, String)>,
}

fn written_routes(host: &Host, instance: &crate::model::Instance) -> Option<WrittenRoutes> {
    let router = instance.router.as_ref()?;
    let yaml = crate::render::route::dynamic_file(instance)?;
    let file = router.dynamic_file(&instance.prefix());
    Some(WrittenRoutes {
        unit: instance.routes_unit(),
        path: router::on_host(host.root.as_deref(), &file),
        mark: crate::render::route::mark_of(&yaml, &Router::dynamic_file_name(&instance.prefix())),
        file,
        text: crate::render::route::written(&yaml),
        etcd: instance.routes_in_etcd().map(|discovery| {
            let mut pairs = crate::render::route::etcd_pairs(instance).unwrap_or_default();
            pairs.sort();
            EtcdRoutes {
                endpoints: discovery.endpoints.join(","),
                prefix: instance.prefix(),
                pairs,
            }
        }),
    })
}

/// What apply needs to replace the instance's routed services without
/// downtime (see `systemd::handover`); None without routes.
fn handover_of(
    renderer: &crate::render::Renderer,
    instance: &crate::model::Instance,
    host: &Host,
    record: std::path::PathBuf,
) -> Option<Handover> {
    let router = instance.router.as_ref()?;
    let file = router
        .dynamic_dir()
        .join(Router::dynamic_file_name(&instance.prefix()));
    let services = (instance.services.iter())
        .filter_map(|service| {
            let standin = renderer.standin_unit(instance, &service.name)?;
            let routes = (instance.routes.iter())
                .filter(|r| r.service == service.name)
                .map(|r| handover::Route {
                    name: r.name.clone(),
                    container_port: r.port,
                    host: r.hosts.first().cloned().unwrap_or_default(),
                    health_path: r.health_path.clone(),
                })
                .collect();
            Some(Routed {
                unit: instance.service_unit(&service.name),
                standin,
                standin_container: instance.standin_container(&service.name),
                routes,
            })
        })
        .collect();
    Some(Handover {
        routes_file: router::on_host(host.root.as_deref(), &file),
        record,
        services,
        replacement: crate::systemd::handover::Replacement::NewVersion,
    })
}

/// Shared by apply and rollback: converge, report, record the revision.
///
/// `secrets`: the secrets folder and the env files apply writes into it,
/// before any unit (re)starts; what they replaced is put back on failure.
///
/// Crash-safe: the intent is recorded before the host is touched and
/// removed once the revision is recorded, so a run killed at any point
/// leaves a record from which the next `plan` tells the truth and the next
/// `apply` repairs (see [`crate::state::Intent`]).
///
/// Returns whether it changed the units (false: they were up to date).
pub fn converge_and_record(
    host: &Host,
    state: &InstanceState,
    installed: &[UnitFile],
    desired: &[UnitFile],
    provenance: Provenance,
    how: How,
    secrets: Option<(&secrets::Store, &[secrets::EnvFile])>,
) -> Result<bool> {
    let How {
        settle,
        pull,
        handover,
        resumed,
        routes: how_routes,
    } = how;
    let name = &state.name();
    let progress = Progress::default();
    let images = pull::service_images(desired);
    // Started by timers, not by apply: fetched whenever apply changes
    // anything, so that a missing one fails now, not the night's backup.
    let helpers = pull::helper_images(desired);
    if pull == PullPolicy::Always {
        // Before the plan: what was fetched decides which tags moved.
        let all = images
            .values()
            .cloned()
            .chain(helpers.iter().cloned())
            .collect();
        pull::fetch(&all, pull, &progress).map_err(|unavailable| {
            failure_report(
                name,
                Failure::untouched(pull::describe(&unavailable, &helpers)),
            )
        })?;
    }
    let backup_unit = format!("{name}-backup.service");
    if installed.iter().any(|u| u.name == backup_unit) {
        let systemd = host.connect().map_err(|f| failure_report(name, f))?;
        crate::backup::await_running(host, &systemd, &backup_unit, state, &progress)
            .map_err(|e| miette!("apply of {name} failed: {e}\nnothing on the host was changed"))?;
    }
    let (plan, intent) = host_plan(
        host,
        state,
        installed,
        desired,
        how_routes.as_ref(),
        secrets,
    )
    .map_err(|e| miette!("apply of {name} failed: {e}\nnothing on the host was changed"))?;
    // A mask is an admin's word that a unit must not start: not undone
    // here, and nothing else done around it (systemd refuses to enable it).
    let masked = plan.masked();
    if !masked.is_empty() {
        return Err(miette!(
            help = "`systemctl unmask` it (a runtime mask or a link to /dev/null in \
                    /etc/systemd/system.control), then apply again",
            "apply of {name} refused: {} masked\nnothing on the host was changed",
            if masked.len() == 1 {
                format!("{} is", masked[0])
            } else {
                format!("{} are", masked.join(", "))
            }
        ));
    }
    // Images a running service's next start (a reboot) or the backup needs
    // that were removed from the host: fetched now, as for a change.
    let mut plan = plan;
    if !plan.missing_images.is_empty() {
        let missing: BTreeSet<String> = std::mem::take(&mut plan.missing_images)
            .into_iter()
            .collect();
        let policy = match pull {
            PullPolicy::Always => PullPolicy::Missing,
            other => other,
        };
        pull::fetch(&missing, policy, &progress).map_err(|unavailable| {
            failure_report(
                name,
                Failure::untouched(pull::describe(&unavailable, &helpers)),
            )
        })?;
        progress.line(&format!(
            "{name}: pulled {}, which this host no longer had",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let latest = state
        .revisions()
        .map_err(|e| miette!("reading revisions: {e}"))?
        .pop();
    if let Some(unknown) = &plan.unknown_state_files {
        progress.line(&format!("warning: {unknown}"));
    }
    for unit in &plan.hand_edited {
        progress.line(&format!(
            "warning: {unit} was edited by hand since unitgen wrote it; the edit is overwritten"
        ));
    }
    for (unit, paths) in &plan.drop_ins {
        progress.line(&format!(
            "warning: {unit} has drop-ins that change its meaning, left in place: {}",
            paths.join(", ")
        ));
    }
    for (unit, file) in &plan.loaded_elsewhere {
        progress.line(&format!(
            "warning: systemd loads {unit} from {file}, a file of its name that it reads before \
             unitgen's: left in place, so {unit} runs that file, not the template"
        ));
    }
    // A paused container is resumed where it is: nothing restarts for it
    // (and a unit restarted for another reason needs it to act on its stop
    // signal).
    let plan = resume_paused(name, plan, &progress)?;
    let plan = remove_strays(name, plan, &progress)?;
    if plan.is_empty() && plan.repair.is_empty() && plan.unfinished.is_none() {
        // The units are as applied; only secrets files to write again.
        if let Some((store, files)) = secrets.filter(|_| !plan.stale_secrets.is_empty()) {
            store.install(files).map_err(|e| {
                miette!(
                    "apply of {name} failed: writing secrets into {}: {e}",
                    crate::diagnostic::shown_path(store.dir())
                )
            })?;
            progress.line(&format!(
                "{name}: wrote the secrets file{} {} again (missing or changed by hand)",
                if plan.stale_secrets.len() == 1 {
                    ""
                } else {
                    "s"
                },
                plan.stale_secrets.join(", ")
            ));
        }
        if let Some(resumed) = resumed {
            resumed
                .finish(host, &progress)
                .map_err(|f| failure_report(name, f))?;
        }
        // Killed after its revision was recorded: nothing left to do, once
        // its switch is finished (see the end of this function).
        if intent.is_some() {
            let _ = state.finish::<Intent>();
        }
        let number = latest.map_or(0, |l| l.number);
        // The revision's stand-ins, as the template renders them: missing
        // (an apply killed between recording its revision and keeping
        // them) or damaged, `restart` and `rollback` would refuse.
        if let Some(handover) = &handover
            && number > 0
        {
            let dir = state.revision_dir(number);
            if !handover.is_stored(&dir, host.root.as_deref()) {
                handover.store(&dir, host.root.as_deref()).map_err(|e| {
                    miette!(
                        "{name} is up to date (revision {number}), but keeping its stand-ins \
                         in {} failed: {e}",
                        dir.join(handover::STORED).display()
                    )
                })?;
                progress.line(&format!(
                    "{name}: kept the stand-ins of revision {number} again ({} was missing \
                     or differed)",
                    handover::STORED
                ));
            }
        }
        // Left in place, drop-ins and files systemd reads first keep the
        // host from running the template.
        let mut left = Vec::new();
        if !plan.drop_ins.is_empty() {
            let units: Vec<&str> = plan.drop_ins.iter().map(|(u, _)| u.as_str()).collect();
            left.push(format!("drop-ins change {}", units.join(", ")));
        }
        if !plan.loaded_elsewhere.is_empty() {
            let units: Vec<&str> = (plan.loaded_elsewhere.iter())
                .map(|(u, _)| u.as_str())
                .collect();
            left.push(format!(
                "systemd runs {} from other files",
                units.join(", ")
            ));
        }
        progress.line(&match &plan.restore {
            None if left.is_empty() => format!("{name} is up to date (revision {number})"),
            None => format!(
                "{name}: its units are revision {number}, but {}: not up to date",
                left.join(" and ")
            ),
            // Not up to date: its data may not be what it should.
            Some(restore) => format!("{name}: its units are revision {number}, but {restore}"),
        });
        return Ok(false);
    }
    progress.line(&format!("{name}: {}", plan.summary()));
    for repair in &plan.repair {
        let faults: Vec<String> = repair.faults.iter().map(ToString::to_string).collect();
        progress.line(&format!(
            "  repair  {:<40} {}",
            repair.unit,
            faults.join(", ")
        ));
    }
    for repair in &plan.repair {
        for fault in &repair.faults {
            if let crate::plan::Fault::VolumeMissing { volumes } = fault {
                progress.line(&format!(
                    "warning: {} is started with {} made again EMPTY: the data that was there \
                     is gone (a backup's `unitgen restore` puts it back)",
                    repair.unit,
                    volumes.join(", ")
                ));
            }
            if let crate::plan::Fault::VolumeMadeAgain { volumes } = fault {
                progress.line(&format!(
                    "warning: {} is started with {} as made again since it stopped: the data \
                     it ran with is gone (a backup's `unitgen restore` puts it back)",
                    repair.unit,
                    volumes.join(", ")
                ));
            }
        }
    }

    let digest = units_digest(desired);
    // A target runs nothing of its own: only units that run a process can
    // run an old configuration.
    let restarts = plan.to_restart().into_iter().chain(plan.to_reload());
    let intent = Intent {
        command: match provenance.rollback_of {
            Some(to) => Command::Rollback { to },
            None => Command::Apply,
        },
        ..Intent::new(
            digest.clone(),
            restarts.filter(|u| !u.ends_with(".target")).collect(),
        )
    };
    // Before anything on the host changes: the images of the units about to
    // start are fetched, then the intent is recorded (see `Intent`).
    let prepare = |units: &[String]| {
        let needed: BTreeSet<String> = units
            .iter()
            .filter_map(|unit| images.get(unit).cloned())
            .chain(helpers.iter().cloned())
            .collect();
        let policy = match pull {
            // Already fetched above; only what is still missing.
            PullPolicy::Always => PullPolicy::Missing,
            other => other,
        };
        pull::fetch(&needed, policy, &progress)
            .map_err(|unavailable| Failure::untouched(pull::describe(&unavailable, &helpers)))?;
        state
            .note_volumes(&provenance.volumes)
            .and_then(|()| state.begin(&intent))
            .map_err(|e| Failure::untouched(format!("recording what it is about to do: {e}")))?;
        fault::point("after-intent");
        Ok(())
    };
    let on_loaded = || {
        let loaded = Intent {
            loaded_at: Some(now_micros()),
            ..intent.clone()
        };
        // Without it, a later run restarts these units once more: safe.
        if let Err(e) = state.begin(&loaded) {
            progress.line(&format!("warning: {e}"));
        }
    };
    // Secrets first: a unit restarted for a new secret must find it.
    let previous = match secrets {
        Some((store, files)) => Some((
            store,
            store.install(files).map_err(|e| {
                failure_report(
                    name,
                    Failure::untouched(format!(
                        "writing secrets into {}: {e}",
                        crate::diagnostic::shown_path(store.dir())
                    )),
                )
            })?,
        )),
        None => None,
    };
    let put_back_secrets = || match &previous {
        Some((store, previous)) => store.restore(previous).map_err(|e| {
            Failure::untouched(format!(
                "putting the previous secrets back into {}: {e}",
                crate::diagnostic::shown_path(store.dir())
            ))
        }),
        None => Ok(()),
    };
    // A routed service's new version starts beside the old one and takes
    // the traffic over before anything else changes (see `handover`).
    let switched = match &handover {
        _ if resumed.is_some() => resumed,
        Some(handover) => {
            let changed: BTreeSet<String> = (handover.services.iter())
                .filter(|s| plan.change.iter().any(|c| c.new.name == s.unit))
                .filter_map(|s| images.get(&s.unit).cloned())
                .collect();
            let policy = match pull {
                PullPolicy::Always => PullPolicy::Missing,
                other => other,
            };
            let switch = pull::fetch(&changed, policy, &progress)
                .map_err(|unavailable| {
                    Failure::untouched(pull::describe(&unavailable, &BTreeSet::new()))
                })
                .and_then(|()| handover.switch(host, &plan, &progress));
            match switch {
                Ok(switched) => switched,
                Err(mut failure) => {
                    if let Err(e) = put_back_secrets() {
                        failure.message.push_str(&format!("; {}", e.message));
                    }
                    return Err(failure_report(name, failure));
                }
            }
        }
        None => None,
    };
    let switch_back = |switched: Option<handover::Switched>| match switched {
        Some(switched) => switched.finish(host, &progress),
        None => Ok(()),
    };
    let options = converge::Options {
        settle,
        prepare: &prepare,
        on_loaded: &on_loaded,
        before_restore: &put_back_secrets,
    };
    let done = match converge::converge(host, &plan, &options, &progress) {
        Ok(done) => done,
        Err(mut failure) => {
            // Also when it failed before changing any unit (then nothing
            // called it); putting the same bytes back twice is harmless.
            if let Err(e) = put_back_secrets() {
                failure.message.push_str(&format!("; {}", e.message));
            }
            if failure.host != HostAfter::NotRestored {
                // The host runs the recorded revision again (or never
                // stopped running it).
                let _ = state.finish::<Intent>();
            }
            // The router goes back to the service's own unit (restored).
            if let Err(e) = switch_back(switched) {
                failure.message.push_str(&format!("; {}", e.message));
            }
            return Err(failure_report(name, failure));
        }
    };
    fault::point("before-record");
    // Its stand-ins, for `restart` and `rollback` (see `handover::STORED`):
    // without them they restart the routed services as any other. Recorded
    // with a new revision, in one step (a kill between the two left a
    // revision without them, and `plan` up to date).
    let root = host.root.as_deref();
    let number = match latest {
        Some(latest) if latest.digest == digest => {
            if let Some(handover) = &handover
                && !handover.is_stored(&state.revision_dir(latest.number), root)
                && let Err(e) = handover.store(&state.revision_dir(latest.number), root)
            {
                crate::say!(
                    "warning: {name}: keeping the stand-ins of revision {} failed ({e}): \
                     `restart` and `rollback` to it restart its routed services with downtime",
                    latest.number
                );
            }
            latest.number
        }
        _ => {
            let kept: Vec<(&str, String)> = (handover.iter())
                .map(|handover| (handover::STORED, handover.stored_text(root)))
                .collect();
            let revision = state.record(desired, provenance, &kept).map_err(|e| {
                miette!(
                    "apply of {name}: the host runs the new units, but recording the revision \
                     failed: {e}\n`unitgen plan` shows the instance as unrecorded until an apply \
                     records it"
                )
            })?;
            revision.number
        }
    };
    fault::point("after-record");
    switch_back(switched).map_err(|failure| {
        miette!(
            "{name} is at revision {number}, but switching its router back failed: {}",
            failure.message
        )
    })?;
    // Only now: a rollback killed while its stand-ins drained is finished
    // by the rollback run again, which its intent tells (without it, that
    // rollback went one revision further back).
    if let Err(e) = state.finish::<Intent>() {
        progress.line(&format!("warning: {e}"));
    }
    let repaired = plan.repair.iter().filter(|r| r.start() || r.restart());
    let untouched = plan.keep.len().saturating_sub(repaired.count());
    let enabled = if done.enabled.is_empty() {
        String::new()
    } else {
        format!("{} enabled, ", done.enabled.len())
    };
    let reloaded = if done.reloaded.is_empty() {
        String::new()
    } else {
        format!("{} reloaded, ", done.reloaded.len())
    };
    progress.line(&format!(
        "{name} is at revision {number}: {enabled}{} started, {} restarted, {reloaded}{} removed, {untouched} untouched",
        done.started.len(),
        done.restarted.len(),
        done.removed.len(),
    ));
    if let Some(restore) = &plan.restore {
        progress.line(&format!("{name}: warning: {restore}"));
    }
    Ok(true)
}

/// The failure as the user reads it: each failed unit explained (printed as
/// plain lines, so that long log lines are never wrapped mid-word), then
/// one error saying what failed and what the host runs now.
fn failure_report(name: &str, failure: Failure) -> miette::Report {
    let mut stderr = std::io::stderr().lock();
    for explanation in &failure.explained {
        let _ = writeln!(stderr);
        for line in explanation.lines() {
            let _ = writeln!(stderr, "{line}");
        }
    }
    if !failure.explained.is_empty() {
        let _ = writeln!(stderr);
    }
    let mut text = format!("apply of {name} failed: {}", failure.message);
    text.push_str(match failure.host {
        HostAfter::Untouched => "\nnothing on the host was changed",
        HostAfter::Restored => "\nthe previous revision was restored and is running again",
        HostAfter::Cleared => {
            "\nnothing of it was running before: the units this apply had started were stopped and removed"
        }
        HostAfter::NotRestored => {
            "\nthe previous revision could NOT be restored: check `unitgen status`"
        }
    });
    miette!("{text}")
}
