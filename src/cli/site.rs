//! `plan` and `apply` without an instance: everything a site file assigns
//! to this host, app by app (one lock per instance), with one summary.

use clap::Args;
use miette::{Result, miette};

use super::host::HostArgs;
use super::{Opened, TemplateArgs};
use crate::compile::Overrides;
use crate::diagnostic::Problems;
use crate::router::moves::Move;
use crate::site::{App, Placed, Site};
use crate::template::Template;

#[derive(Debug, Clone, Args)]
pub struct SiteHostArgs {
    /// With a site file and no instance: which of the site's hosts this
    /// machine is [default: the machine's host name].
    #[arg(long = "host", value_name = "NAME")]
    pub name: Option<String>,
}

impl SiteHostArgs {
    pub(super) fn name(&self) -> Result<String> {
        if let Some(name) = &self.name {
            return Ok(name.clone());
        }
        let read = std::fs::read_to_string("/proc/sys/kernel/hostname");
        let name = read.map(|n| n.trim().to_string()).unwrap_or_default();
        if name.is_empty() {
            return Err(miette!(
                "cannot read this machine's host name: pass --host NAME (a host of the site)"
            ));
        }
        Ok(name)
    }
}

/// Runs `act` on the instance named, or, without one, on every instance the
/// site assigns to this host; then says what was done, what failed, and
/// which instances are installed here but not assigned to it (left alone:
/// destroying is said, never done silently).
#[expect(
    clippy::too_many_arguments,
    reason = "plan's and apply's own arguments, passed on as they are"
)]
pub fn each_target(
    template: &TemplateArgs,
    instance: Option<&str>,
    site_host: &SiteHostArgs,
    host: &HostArgs,
    fleet: bool,
    (verb, done_word): (&str, &str),
    moves: &[Move],
    mut act: impl FnMut(&Template, &str) -> Result<()>,
) -> Result<()> {
    let (file, overrides) = (&template.file, &template.overrides());
    if let Some(target) = instance {
        if site_host.name.is_some() {
            return Err(miette!(
                help = format!(
                    "`unitgen {verb}` without an instance acts on what the site assigns to --host"
                ),
                "--host names a site's host, for a {verb} of all its instances: not with `{target}`"
            ));
        }
        let site = match file.open()? {
            Opened::Site(site) => site,
            Opened::App(_) => {
                let (template, instance) = file.select(target)?;
                return act(&template, &instance);
            }
        };
        let (index, instance) = site.select(target)?;
        let label = format!("{}/{instance}", site.apps[index].name);
        refuse_clashes(&site, overrides, &[label], verb)?;
        return act(&site.apps[index].template, &instance);
    }
    let site = match file.open()? {
        Opened::Site(site) => site,
        Opened::App(template) => {
            return Err(miette!(
                help = format!(
                    "`unitgen {verb} INSTANCE`; declared: {}",
                    template.instance_names().join(", ")
                ),
                "{verb} needs an instance: {} is not a site file",
                template.source_name()
            ));
        }
    };
    if fleet {
        return Err(miette!(
            "with --fleet, name the instance: `unitgen {verb} APP/INSTANCE --fleet`"
        ));
    }
    let name = site_host.name()?;
    let hosts: Vec<&str> = site.hosts.iter().map(|h| h.name.as_str()).collect();
    if !hosts.contains(&name.as_str()) {
        return Err(miette!(
            help = format!(
                "pass --host NAME, one of: {} (the default is this machine's host name)",
                hosts.join(", ")
            ),
            "`{name}` is not a host of {}",
            site.file.name()
        ));
    }
    let targets = taker_first(site.on_host(&name), moves);
    let listed: Vec<String> = (targets.iter())
        .map(|(app, placed)| format!("{}/{}", app.name, placed.instance))
        .collect();
    crate::say!(
        "{}: host {name} runs {}",
        site.file.name(),
        if listed.is_empty() {
            "nothing".to_string()
        } else {
            listed.join(", ")
        }
    );
    refuse_clashes(&site, overrides, &listed, verb)?;
    let mut failed = Vec::new();
    for ((app, placed), label) in targets.iter().zip(&listed) {
        if let Err(report) = act(&app.template, &placed.instance) {
            eprintln!("{report:?}");
            failed.push(label.clone());
        }
    }
    let left = left_alone(&listed, host)?;
    let file_arg = crate::escape::sh_quote(&file.path().to_string_lossy());
    let apps = site.app_names();
    for label in &left {
        let app = label.split('/').next().unwrap_or_default();
        let why = if apps.contains(&app) {
            format!("{} does not assign it to host {name}", site.file.name())
        } else {
            format!("its app {app} is not in {}", site.file.name())
        };
        crate::say!(
            "left alone: {label} is installed here, but {why}; \
             `unitgen destroy {label} -f {file_arg}` removes it"
        );
    }
    let done = listed.len() - failed.len();
    crate::say!(
        "host {name}: {done} of {} {done_word}{}{}",
        crate::progress::count(listed.len(), "instance"),
        if failed.is_empty() {
            String::new()
        } else {
            format!(", failed: {}", failed.join(", "))
        },
        if left.is_empty() {
            String::new()
        } else {
            format!(", {} left alone", left.len())
        },
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(miette!("{verb} failed for {}", failed.join(", ")))
    }
}

/// The instances in file order, except that one taking over a host name
/// from another comes before it ([`crate::router::moves`]); in a cycle
/// (two instances swapping names), file order.
fn taker_first<'s>(
    mut rest: Vec<(&'s App, &'s Placed)>,
    moves: &[Move],
) -> Vec<(&'s App, &'s Placed)> {
    let label = |(app, placed): &(&App, &Placed)| format!("{}/{}", app.name, placed.instance);
    let mut ordered = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let waits = |target: &(&App, &Placed)| {
            let me = label(target);
            (moves.iter().filter(|m| m.from == me))
                .any(|m| rest.iter().any(|other| label(other) == m.to))
        };
        let next = rest.iter().position(|t| !waits(t)).unwrap_or(0);
        ordered.push(rest.remove(next));
    }
    ordered
}

/// Refuses, before anything is planned or changed, what no app alone can
/// see and `validate` reports (one host port published by two instances
/// of a host, one host name and path routed by two apps) where it involves
/// an instance in `acting_on` (`APP/INSTANCE`): applied one by one, the
/// first would take the port or name and the second fail, or both serve
/// one name. A clash among other instances is theirs (`validate` says it).
fn refuse_clashes(
    site: &Site,
    overrides: &Overrides,
    acting_on: &[String],
    verb: &str,
) -> Result<()> {
    let mut compiled = Vec::new();
    for app in &site.apps {
        // An instance that does not compile fails on its own, if acted on.
        compiled.extend(super::validate::compile_all(&app.template, overrides).0);
    }
    let found: Vec<_> = (crate::site::clashes(site, &compiled).into_iter())
        .filter(|clash| clash.between.iter().any(|i| acting_on.contains(i)))
        .map(|clash| clash.problem)
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    let changed = if verb == "plan" {
        ""
    } else {
        "; nothing was changed"
    };
    Err(miette::Report::new(Problems(found)).wrap_err(format!(
        "{verb} refused: instances of {} clash{changed}",
        site.file.name()
    )))
}

/// Instances installed on this host that the site does not assign to it
/// (any more), as `APP/INSTANCE`: of its apps, and of apps it no longer
/// lists (an app taken out of the site keeps running until destroyed).
fn left_alone(assigned: &[String], host: &HostArgs) -> Result<Vec<String>> {
    Ok(super::installed::instances(host)?
        .into_iter()
        .map(|(app, instance)| format!("{app}/{instance}"))
        .filter(|label| !assigned.contains(label))
        .collect())
}
