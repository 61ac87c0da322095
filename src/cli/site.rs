//! `plan` and `apply` without an instance: everything a site file assigns
//! to this host, app by app (one lock per instance), with one summary.

use std::collections::BTreeSet;

use clap::Args;
use miette::{IntoDiagnostic as _, Result, WrapErr as _, miette};

use super::host::HostArgs;
use super::{FileArgs, Opened};
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
pub fn each_target(
    file: &FileArgs,
    instance: Option<&str>,
    site_host: &SiteHostArgs,
    host: &HostArgs,
    fleet: bool,
    (verb, done_word): (&str, &str),
    mut act: impl FnMut(&Template, &str) -> Result<()>,
) -> Result<()> {
    if let Some(target) = instance {
        if site_host.name.is_some() {
            return Err(miette!(
                help = format!(
                    "`unitgen {verb}` without an instance acts on what the site assigns to --host"
                ),
                "--host names a site's host, for a {verb} of all its instances: not with `{target}`"
            ));
        }
        let (template, instance) = file.select(target)?;
        return act(&template, &instance);
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
    let targets = site.on_host(&name);
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

/// Instances installed on this host that the site does not assign to it
/// (any more), as `APP/INSTANCE`: of its apps, and of apps it no longer
/// lists (an app taken out of the site keeps running until destroyed).
fn left_alone(assigned: &[String], host: &HostArgs) -> Result<Vec<String>> {
    let unit_dir = host.host()?.unit_dir;
    let installed = crate::unit_dir::read_all(&unit_dir)
        .into_diagnostic()
        .wrap_err_with(|| {
            format!(
                "reading units in {}",
                crate::diagnostic::shown_path(&unit_dir)
            )
        })?;
    let left: BTreeSet<String> = (installed.into_iter())
        // The host's router is no instance's.
        .filter(|(_, owner)| !owner.app.is_empty() && !owner.instance.is_empty())
        .map(|(_, owner)| format!("{}/{}", owner.app, owner.instance))
        .filter(|label| !assigned.contains(label))
        .collect();
    Ok(left.into_iter().collect())
}
