//! `unitgen docs`: write the site's documentation as Markdown.

use std::path::PathBuf;

use clap::Args;
use miette::{IntoDiagnostic, Result, WrapErr};

use super::host::HostArgs;
use super::output::showln;
use super::site::SiteHostArgs;
use super::{FileArgs, Outcome, status, when};
use crate::docker;
use crate::docs::{self, live};
use crate::site_view::SiteView;

#[derive(Debug, Args)]
pub struct DocsArgs {
    #[command(flatten)]
    pub file: FileArgs,
    /// The folder to write the pages into: `README.md` (the overview) and
    /// one `APP.md` per app. Only pages an earlier run wrote are replaced or
    /// removed; other files there are left alone.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Change nothing; list the pages that are out of date and exit with 2
    /// if any are (for CI in a repository that commits its docs).
    #[arg(long, conflicts_with = "live")]
    pub check: bool,
    /// Add what this host reports now: each installed instance's revision
    /// and when it was applied, its services' unit states, images and image
    /// ids, and its last backup (as `status` reads them). The pages then
    /// change with the host and the clock: for a snapshot, not for review.
    #[arg(long)]
    pub live: bool,
    /// With --live and a site file: which of the site's hosts this machine
    /// is; only the instances the site assigns to it are read [default: the
    /// machine's host name].
    #[arg(long = "host", value_name = "NAME", requires = "live")]
    pub site_host: Option<String>,
    #[command(flatten)]
    pub host: HostArgs,
}

pub fn run(args: DocsArgs) -> Result<Outcome> {
    // Without --live the pages come from the files alone: said, so that
    // they are not taken for that host's (a wrapper that passes the host
    // options to every command still works).
    let given = args.host.given();
    if !given.is_empty() && !args.live {
        crate::say!(
            "warning: {} read a host only with --live: these pages come from the files alone",
            given.join(", ")
        );
    }
    let site = super::site_view(&args.file)?;
    let live = match args.live {
        true => Some(read_live(&site, &args)?),
        false => None,
    };
    // The records the site needs, as `unitgen dns` prints them: a site
    // that needs records DNS cannot hold is refused, as there. A single
    // app's file names no host, and so no record.
    let records = match site.hosts.is_empty() {
        true => Vec::new(),
        false => crate::dns::needs(&site)?,
    };
    let pages = docs::pages(&site, &records, live.as_ref());
    let dir = &args.out;
    let changes = docs::sync(dir, &pages, args.check)
        .into_diagnostic()
        .wrap_err_with(|| {
            format!(
                "writing the docs into {}",
                crate::diagnostic::shown_path(dir)
            )
        })?;
    if args.check {
        for name in &changes.written {
            showln!(
                "out of date: {}",
                crate::diagnostic::shown_path(&dir.join(name))
            )?;
        }
        for name in &changes.removed {
            showln!("stale: {}", crate::diagnostic::shown_path(&dir.join(name)))?;
        }
        if changes.is_empty() {
            crate::say!(
                "{} in {} up to date",
                crate::progress::count(pages.len(), "page"),
                crate::diagnostic::shown_path(dir)
            );
            return Ok(Outcome::Clean);
        }
        crate::say!(
            "the docs in {} are out of date: run `unitgen docs -f {} --out {}`",
            crate::diagnostic::shown_path(dir),
            crate::diagnostic::shown(&crate::escape::sh_quote(
                &args.file.file.display().to_string()
            )),
            crate::diagnostic::shown(&crate::escape::sh_quote(&dir.display().to_string())),
        );
        return Ok(Outcome::Differs);
    }
    crate::say!(
        "{}: {} written, {} removed, {} unchanged",
        crate::diagnostic::shown_path(dir),
        changes.written.len(),
        changes.removed.len(),
        changes.unchanged
    );
    Ok(Outcome::Clean)
}

/// What this host reports about the instances it runs (with a site file:
/// those the site assigns to it), read as `status` reads it.
fn read_live(site: &SiteView, args: &DocsArgs) -> Result<live::Live> {
    let host = &args.host;
    let name = if site.hosts.is_empty() {
        host_name(host)
    } else {
        let name = SiteHostArgs {
            name: args.site_host.clone(),
        }
        .name()?;
        if site.host(&name).is_none() {
            let hosts: Vec<&str> = site.hosts.iter().map(|h| h.name.as_str()).collect();
            return Err(miette::miette!(
                help = format!(
                    "pass --host NAME, one of: {} (the default is this machine's host name)",
                    hosts.join(", ")
                ),
                "`{name}` is not a host of {}",
                site.source
            ));
        }
        name
    };
    let mut instances = Vec::new();
    for (app, deployed) in site.deployed() {
        if deployed.host.as_ref().is_some_and(|h| *h != name) {
            continue;
        }
        let instance = &deployed.instance;
        instances.push(live::InstanceLive {
            app: app.name.clone(),
            instance: instance.instance.clone(),
            installed: installed(host, &app.name, &instance.instance)?,
            left_alone: false,
        });
    }
    // What this host runs that the file does not give it (an app or
    // instance taken out of the site, or moved to another host): left
    // running until destroyed, so documented as running.
    let listed: Vec<(String, String)> = (instances.iter())
        .map(|i| (i.app.clone(), i.instance.clone()))
        .collect();
    for (app, instance) in super::installed::instances(host)? {
        if listed.contains(&(app.clone(), instance.clone())) {
            continue;
        }
        instances.push(live::InstanceLive {
            installed: installed(host, &app, &instance)?,
            app,
            instance,
            left_alone: true,
        });
    }
    Ok(live::Live {
        host: name,
        read_at: when::now(),
        instances,
    })
}

/// What the host reports about `app`'s `instance`; None when no unit of
/// it is installed.
fn installed(host: &HostArgs, app: &str, instance: &str) -> Result<Option<live::Installed>> {
    let status = status::read(host, app, instance)?;
    if status.units.is_empty() {
        return Ok(None);
    }
    // Named as the instance names its containers (`model::Instance::container`).
    let container = |service: &str| format!("{}-{service}", crate::model::prefix(app, instance));
    let services: Vec<&String> = status
        .units
        .iter()
        .filter_map(|row| row.service.as_ref())
        .collect();
    let containers: Vec<String> = services.iter().map(|s| container(s)).collect();
    let image_ids = docker::container_image_ids(&containers);
    let services = (status.units.iter())
        .filter_map(|row| {
            let service = row.service.clone()?;
            Some(live::ServiceLive {
                image_id: image_ids.get(&container(&service)).cloned(),
                image: row.container.as_ref().map(|c| c.image.clone()),
                state: format!("{} ({})", row.active_state, row.sub_state),
                service,
            })
        })
        .collect();
    Ok(Some(live::Installed {
        revision: status.revision.zip(status.applied_at),
        as_applied: status.as_applied,
        services,
        backup: status.backup.clone(),
    }))
}

/// The name the host calls itself (with --root, that root's).
fn host_name(host: &HostArgs) -> String {
    let file = match &host.root {
        Some(root) => root.join("etc/hostname"),
        None => "/proc/sys/kernel/hostname".into(),
    };
    std::fs::read_to_string(file)
        .map_or_else(|_| "this host".into(), |name| name.trim().to_string())
}
