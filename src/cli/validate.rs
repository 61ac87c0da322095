//! `unitgen validate`: check the template and every declared instance.

use std::collections::BTreeMap;

use clap::Args;
use miette::Result;

use super::{Outcome, TemplateArgs};
use crate::compile::compile;
use crate::diagnostic::Problems;
use crate::model::Instance;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub template: TemplateArgs,
}

pub fn run(args: ValidateArgs) -> Result<Outcome> {
    let template = args.template.load()?;
    let mut names = template.instance_names();
    if names.is_empty() {
        // Nothing declared: check the template as it would render for an
        // instance named `default`.
        names.push("default".into());
    }
    let mut overrides = args.template.overrides();
    // The `default` stand-in is declared nowhere, by design.
    overrides.allow_undeclared |= template.instance_names().is_empty();
    let mut problems = Problems::default();
    let mut compiled = Vec::new();
    for name in &names {
        match compile(&template, name, &overrides) {
            Ok(instance) => compiled.push(instance),
            // The same template problem shows up once per instance: keep the first.
            Err(found) => {
                for problem in found.0 {
                    let duplicate = problems.0.iter().any(|p| {
                        p.message == problem.message
                            && p.at.as_ref().map(|a| a.span) == problem.at.as_ref().map(|a| a.span)
                    });
                    if !duplicate {
                        problems.push(problem);
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.into());
    }
    for warning in shared_host_ports(&compiled) {
        eprintln!("warning: {warning}");
    }
    eprintln!(
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
    warnings
}
