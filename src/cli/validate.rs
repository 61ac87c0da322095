//! `unitgen validate`: check the template and every declared instance.

use clap::Args;
use miette::Result;

use super::{Outcome, TemplateArgs};
use crate::compile::compile;
use crate::diagnostic::Problems;

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
    let mut problems = Problems::default();
    let mut services = 0;
    for name in &names {
        match compile(&template, name, &args.template.overrides()) {
            Ok(instance) => services = instance.services.len(),
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
    eprintln!(
        "{}: {} services, instances {} are valid",
        template.source_name(),
        services,
        names.join(", ")
    );
    Ok(Outcome::Clean)
}
