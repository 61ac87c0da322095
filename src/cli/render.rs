//! `unitgen render`: print or write an instance's units.

use std::path::PathBuf;

use clap::Args;
use miette::{IntoDiagnostic, Result, WrapErr};

use super::output::{out, outln};
use super::{Outcome, TemplateArgs};
use crate::plan::Plan;
use crate::render::{Flavour, Renderer};
use crate::unit_dir;

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The instance to render (e.g. `live`, `staging`).
    pub instance: String,
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
    #[arg(long, conflicts_with_all = ["out", "fleet", "user"])]
    pub values: bool,
}

pub fn run(args: RenderArgs) -> Result<Outcome> {
    if args.values {
        return values(&args);
    }
    let instance = args.template.compile(&args.instance)?;
    let flavour = match (args.fleet, args.user) {
        (true, _) => Flavour::Fleet,
        (false, true) => Flavour::User,
        (false, false) => Flavour::System,
    };
    let mut renderer = Renderer::new(flavour);
    match flavour {
        Flavour::Fleet => super::refuse_secrets_on_fleet(&instance)?,
        // Units that name the state directory: secrets' env files, backups.
        Flavour::User
            if instance.backup.is_some()
                || instance.services.iter().any(|s| !s.secrets.is_empty()) =>
        {
            renderer = renderer.with_state_dir(super::host::default_state_dir(None, true)?);
        }
        _ => {}
    }
    // Secrets are not read: units show which secret each variable gets,
    // and `plan`/`apply` add the digests of the values.
    let units = renderer.render(&instance);
    let Some(dir) = &args.out else {
        // One write of text sized up front: thousands of units are megabytes,
        // which growing a string (or a write per unit) would copy again.
        let header = "\n# ==>  <==\n".len();
        let size = units.iter().map(|u| header + u.name.len() + u.text.len());
        let mut text = String::with_capacity(size.sum());
        for (i, unit) in units.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            for part in ["# ==> ", &unit.name, " <==\n", &unit.text] {
                text.push_str(part);
            }
        }
        out!("{text}")?;
        return Ok(Outcome::Clean);
    };
    let present = unit_dir::read_installed(dir, &instance.app, &instance.instance)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading {}", dir.display()))?;
    let plan = Plan::new(&present, &units);
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
                outln!("{label}: {}", dir.join(name).display())?;
            }
        }
        if plan.is_empty() {
            eprintln!(
                "{} in {} up to date",
                crate::progress::count(units.len(), "unit"),
                dir.display()
            );
            return Ok(Outcome::Clean);
        }
        eprintln!(
            "units in {} are out of date: run `{}`",
            dir.display(),
            render_again(&args, dir)
        );
        return Ok(Outcome::Differs);
    }
    unit_dir::write_plan(dir, &plan)
        .into_diagnostic()
        .wrap_err_with(|| format!("writing units to {}", dir.display()))?;
    eprintln!(
        "{}: {} written, {} removed, {} unchanged",
        dir.display(),
        plan.add.len() + plan.change.len(),
        plan.remove.len(),
        plan.keep.len()
    );
    Ok(Outcome::Clean)
}

/// `--values`: the merged entry, without compiling the units (so that it
/// helps with the values a template finds wrong).
fn values(args: &RenderArgs) -> Result<Outcome> {
    let (template, instance) = args.template.file.select(&args.instance)?;
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
    let mut words = vec![
        "unitgen".to_string(),
        "render".into(),
        args.instance.clone(),
    ];
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
