//! `unitgen render`: print or write an instance's units.

use std::path::PathBuf;

use clap::Args;
use miette::{IntoDiagnostic, Result, WrapErr};

use super::output::{out, showln};
use super::{Outcome, TemplateArgs};
use crate::plan::Plan;
use crate::render::{Flavour, Renderer, UnitFile};
use crate::unit_dir;

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The instances to render (e.g. `live staging`); with a site file,
    /// APP/INSTANCE.
    #[arg(value_name = "INSTANCE", required_unless_present = "all")]
    pub instances: Vec<String>,
    /// Render every instance the file declares (a site file: every app's),
    /// in one run: how a repository that commits its units keeps all of
    /// them up to date (`--all --out units/ --check` in CI).
    #[arg(long, conflicts_with = "instances")]
    pub all: bool,
    #[command(flatten)]
    pub template: TemplateArgs,
    /// Write one file per unit into DIR instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// With --out: change nothing; list the files that are out of date and
    /// exit with 2 if any are (for CI in a repository that commits its units).
    #[arg(long, requires = "out")]
    pub check: bool,
    /// Render for a fleet cluster: each service as a template unit
    /// (`NAME@.service`) whose copies `[X-Fleet]` spreads over machines, for
    /// `fleetctl submit` or `unitgen apply --fleet`.
    #[arg(long, conflicts_with = "user")]
    pub fleet: bool,
    /// Render for a user's systemd (`systemctl --user`): no dependency on
    /// the system's docker.service, started with `default.target`.
    #[arg(long)]
    pub user: bool,
    /// Print the instance's values as its templates see them, instead of
    /// its units: the app's `defaults:`, then the instance it `extends`,
    /// then its own entry, then `--set`, merged (maps key by key, lists
    /// and scalars replaced), with the services it leaves out and (in a
    /// site file) its host.
    #[arg(long, conflicts_with_all = ["out", "fleet", "user", "all"])]
    pub values: bool,
}

pub fn run(args: RenderArgs) -> Result<Outcome> {
    if args.values {
        return values(&args);
    }
    let chosen = if args.all {
        args.template.file.select_all()?
    } else {
        args.template.file.select_many(&args.instances)?
    };
    let instances = args.template.compile_chosen(&chosen)?;
    drop(chosen);
    let flavour = match (args.fleet, args.user) {
        (true, _) => Flavour::Fleet,
        (false, true) => Flavour::User,
        (false, false) => Flavour::System,
    };
    let mut renderer = Renderer::new(flavour);
    match flavour {
        Flavour::Fleet => {
            for instance in &instances {
                super::refuse_what_fleet_cannot_run(instance)?;
            }
        }
        // Units that name the state directory: secrets' env files, backups.
        Flavour::User
            if instances.iter().any(|instance| {
                instance.backup.is_some() || instance.services.iter().any(|s| !s.secrets.is_empty())
            }) =>
        {
            renderer = renderer.with_state_dir(super::host::default_state_dir(None, true)?);
        }
        _ => {}
    }
    // Secrets are not read: units show which secret each variable gets,
    // and `plan`/`apply` add the digests of the values. Instances are
    // rendered on all cores and their units written out in order, each
    // instance's as soon as it is ready: 10 instances of a big app are tens
    // of megabytes, which need not all be held at once.
    let render = |instance: crate::model::Instance| {
        let units = renderer.render(&instance);
        (instance.app, instance.instance, units)
    };
    let Some(dir) = &args.out else {
        let mut more = false;
        crate::parallel::map_in_order(instances, render, |(_, _, units)| {
            print_units(&units, std::mem::replace(&mut more, true))
        })?;
        return Ok(Outcome::Clean);
    };
    let (mut units, mut written, mut removed, mut unchanged) = (0, 0, 0, 0);
    let mut up_to_date = true;
    crate::parallel::map_in_order(
        instances,
        render,
        |(app, instance, rendered)| -> Result<()> {
            let present = unit_dir::read_installed(dir, &app, &instance)
                .into_diagnostic()
                .wrap_err_with(|| format!("reading {}", crate::diagnostic::shown_path(dir)))?;
            let plan = Plan::new(&present, &rendered);
            units += rendered.len();
            if args.check {
                let names = [
                    (
                        "missing",
                        plan.add.iter().map(|u| &u.name).collect::<Vec<_>>(),
                    ),
                    (
                        "out of date",
                        plan.change.iter().map(|c| &c.new.name).collect(),
                    ),
                    ("stale", plan.remove.iter().map(|u| &u.name).collect()),
                ];
                for (label, names) in names {
                    for name in names {
                        showln!(
                            "{label}: {}",
                            crate::diagnostic::shown_path(&dir.join(name))
                        )?;
                    }
                }
                up_to_date &= plan.is_empty();
                return Ok(());
            }
            unit_dir::write_plan(dir, &plan)
                .into_diagnostic()
                .wrap_err_with(|| {
                    format!("writing units to {}", crate::diagnostic::shown_path(dir))
                })?;
            written += plan.add.len() + plan.change.len();
            removed += plan.remove.len();
            unchanged += plan.keep.len();
            Ok(())
        },
    )?;
    if !args.check {
        crate::say!(
            "{}: {written} written, {removed} removed, {unchanged} unchanged",
            crate::diagnostic::shown_path(dir)
        );
        return Ok(Outcome::Clean);
    }
    if up_to_date {
        crate::say!(
            "{} in {} up to date",
            crate::progress::count(units, "unit"),
            crate::diagnostic::shown_path(dir)
        );
        return Ok(Outcome::Clean);
    }
    crate::say!(
        "units in {} are out of date: run `{}`",
        crate::diagnostic::shown_path(dir),
        crate::diagnostic::shown(&render_again(&args, dir))
    );
    Ok(Outcome::Differs)
}

/// Units as `head` shows several files (after a blank line if `more`
/// follows earlier ones), written in chunks of some 64 KiB: thousands of
/// units are megabytes, which one string would take fresh from the system
/// (page by page, the system zeroing each) only to copy them out, and a
/// write per unit would be thousands of system calls.
fn print_units(units: &[UnitFile], more: bool) -> Result<()> {
    const CHUNK: usize = 64 * 1024;
    let mut text = String::with_capacity(2 * CHUNK);
    for (i, unit) in units.iter().enumerate() {
        if i > 0 || more {
            text.push('\n');
        }
        for part in ["# ==> ", &unit.name, " <==\n", &unit.text] {
            text.push_str(part);
        }
        if text.len() >= CHUNK {
            out!("{text}")?;
            text.clear();
        }
    }
    out!("{text}")?;
    Ok(())
}

/// `--values`: the merged entry, without compiling the units (so that it
/// helps with the values a template finds wrong).
fn values(args: &RenderArgs) -> Result<Outcome> {
    let [target] = args.instances.as_slice() else {
        miette::bail!("--values shows one instance's values: name one instance");
    };
    let (template, instance) = args.template.file.select(target)?;
    let mut problems = crate::diagnostic::Problems(template.unknown_keys());
    let merged = template.entries().merge(&instance, &mut problems);
    let declared = template.instance_names().contains(&instance);
    if !declared && !args.template.allow_undeclared {
        problems.push(crate::compile::undeclared_instance(&template, &instance));
    }
    for (key, _) in &args.template.set {
        if let Some(problem) = crate::compile::values::set_refused(key) {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(problems.into());
    }
    out!(
        "{}",
        crate::compile::values::to_yaml(&merged, &args.template.set)
    )?;
    Ok(Outcome::Clean)
}

/// The command line that brings `dir` up to date: this one, without `--check`.
fn render_again(args: &RenderArgs, dir: &std::path::Path) -> String {
    let mut words = vec!["unitgen".to_string(), "render".into()];
    if args.all {
        words.push("--all".into());
    }
    words.extend(args.instances.iter().cloned());
    let file = &args.template.file.file;
    if file != std::path::Path::new(super::DEFAULT_FILE) {
        words.extend(["-f".into(), file.display().to_string()]);
    }
    for (key, value) in &args.template.set {
        words.extend(["--set".into(), format!("{key}={value}")]);
    }
    if let Some(endpoints) = &args.template.etcd {
        words.extend(["--etcd".into(), endpoints.join(",")]);
    }
    if let Some(api) = args.template.etcd_api {
        let api = match api {
            super::EtcdApiArg::V2 => "v2",
            super::EtcdApiArg::V3 => "v3",
        };
        words.extend(["--etcd-api".into(), api.into()]);
    }
    if args.template.allow_undeclared {
        words.push("--allow-undeclared".into());
    }
    if args.fleet {
        words.push("--fleet".into());
    }
    if args.user {
        words.push("--user".into());
    }
    words.extend(["--out".into(), dir.display().to_string()]);
    let quoted: Vec<String> = words.iter().map(|w| crate::escape::sh_quote(w)).collect();
    quoted.join(" ")
}
