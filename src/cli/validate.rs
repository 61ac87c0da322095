//! `unitgen validate`: check the template and every declared instance.

use std::collections::BTreeMap;

use clap::Args;
use miette::Result;

use super::{Opened, Outcome, TemplateArgs};
use crate::compile::{Overrides, compile};
use crate::diagnostic::Problems;
use crate::model::Instance;
use crate::template::Template;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub template: TemplateArgs,
}

pub fn run(args: ValidateArgs) -> Result<Outcome> {
    let overrides = args.template.overrides();
    let site = match args.template.file.open()? {
        Opened::App(template) => return app(&template, &overrides),
        Opened::Site(site) => site,
    };
    // The whole site at once: every app's problems, then what no app alone
    // can see.
    let mut problems = Problems::default();
    let mut compiled = Vec::new();
    for app in &site.apps {
        let (instances, found) = compile_all(&app.template, &overrides);
        compiled.extend(instances);
        problems.extend_unique(found);
    }
    if problems.is_empty() {
        let clashes = crate::site::clashes(&site, &compiled);
        problems = Problems(clashes.into_iter().map(|c| c.problem).collect());
    }
    if problems.is_empty() {
        // A domain no DNS record can send to the hosts that serve it
        // (split across hosts, or two hosts known by name): `unitgen dns`
        // would refuse it.
        let records = crate::site_view::SiteView::from_site(&site, &overrides)
            .and_then(|view| crate::dns::needs(&view));
        if let Err(found) = records {
            problems = found;
        }
    }
    if !problems.is_empty() {
        return Err(problems.into());
    }
    let instances = site.apps.iter().map(|a| a.instances.len()).sum();
    crate::say!(
        "{}: {}, {}, {} valid",
        site.file.name(),
        crate::progress::count(site.hosts.len(), "host"),
        crate::progress::count(site.apps.len(), "app"),
        crate::progress::count(instances, "instance"),
    );
    for host in &site.hosts {
        let placed: Vec<String> = (site.on_host(&host.name).iter())
            .map(|(app, placed)| format!("{}/{}", app.name, placed.instance))
            .collect();
        let placed = if placed.is_empty() {
            "nothing".to_string()
        } else {
            placed.join(", ")
        };
        crate::say!("  {}: {placed}", host.name);
    }
    Ok(Outcome::Clean)
}

/// One app's file (a template, or a deployments file naming one).
fn app(template: &Template, overrides: &Overrides) -> Result<Outcome> {
    let (compiled, problems) = compile_all(template, overrides);
    if !problems.is_empty() {
        return Err(problems.into());
    }
    for warning in shared_host_ports(&compiled) {
        crate::say!("warning: {warning}");
    }
    let names: Vec<&str> = compiled.iter().map(|i| i.instance.as_str()).collect();
    crate::say!(
        "{}: {}, {} {} {} valid",
        template.source_name(),
        crate::progress::count(compiled.first().map_or(0, |i| i.services.len()), "service"),
        if names.len() == 1 {
            "instance"
        } else {
            "instances"
        },
        names.join(", "),
        if names.len() == 1 { "is" } else { "are" },
    );
    Ok(Outcome::Clean)
}

/// Every declared instance compiled (or, when none is declared, the
/// template as it would render for an instance named `default`), and the
/// problems found.
pub(super) fn compile_all(template: &Template, overrides: &Overrides) -> (Vec<Instance>, Problems) {
    let mut names = template.instance_names();
    let mut overrides = overrides.clone();
    if names.is_empty() {
        names.push("default".into());
        // The `default` stand-in is declared nowhere, by design.
        overrides.allow_undeclared = true;
    }
    let mut problems = Problems::default();
    let mut compiled = Vec::new();
    for name in &names {
        match compile(template, name, &overrides) {
            Ok(instance) => compiled.push(instance),
            Err(found) => problems.extend_unique(found),
        }
    }
    (compiled, problems)
}

/// Instances that publish the same host port cannot run on one host side by
/// side. They may be meant for different hosts, so this is a warning.
fn shared_host_ports(instances: &[Instance]) -> Vec<String> {
    let mut seen: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    let mut warnings = Vec::new();
    for instance in instances {
        for service in &instance.services {
            for port in &service.ports {
                let Some(host_port) = port.host_port else {
                    continue;
                };
                let key = format!("{host_port}/{}", port.protocol.as_str());
                match seen.get(&key) {
                    Some((other, other_service)) if *other != instance.instance => warnings.push(format!(
                        "instances `{other}` ({other_service}) and `{}` ({}) both publish host port {key}: they cannot run on the same host",
                        instance.instance, service.name
                    )),
                    Some(_) => {}
                    None => {
                        seen.insert(key, (&instance.instance, &service.name));
                    }
                }
            }
        }
    }
    warnings.extend(router_ports_taken(instances));
    warnings
}

/// A routed instance brings the host's router, which listens on its ports
/// for every instance of the host: another instance publishing one of them
/// cannot run beside it. (Within one instance, compile refuses it.)
fn router_ports_taken(instances: &[Instance]) -> Vec<String> {
    let routers: Vec<(&str, &crate::model::route::Router)> = (instances.iter())
        .filter(|i| !i.routes.is_empty())
        .filter_map(|i| Some((i.instance.as_str(), i.router.as_ref()?)))
        .collect();
    let mut warnings = Vec::new();
    for instance in instances {
        let ports = (instance.services.iter()).flat_map(|s| s.ports.iter().map(move |p| (s, p)));
        for (service, port) in ports {
            let Some(host_port) = port.host_port else {
                continue;
            };
            let routed_by = (routers.iter()).find(|(name, router)| {
                *name != instance.instance && router.port_taken_by(port).is_some()
            });
            if let Some((routed, _)) = routed_by {
                warnings.push(format!(
                    "instance `{}` ({}) publishes host port {host_port}/tcp, where the host's router listens for `{routed}`'s routes: they cannot run on the same host",
                    instance.instance, service.name
                ));
            }
        }
    }
    warnings
}
