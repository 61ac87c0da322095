//! `unitgen init`: a commented starting template, or one imported from a
//! docker-compose file, so that the first step needs no manual.

use std::path::PathBuf;

use clap::Args;
use miette::{IntoDiagnostic as _, Result, WrapErr as _, miette};

use super::Outcome;
use super::import::{self, ImportArgs};
use super::output;
use crate::compile::syntax;

/// The starting template; `{APP}` becomes the app's name.
const STARTER: &str = include_str!("../../templates/init/unitgen.yaml");

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Start from this docker-compose file instead (as `unitgen import`
    /// does, with its warnings).
    #[arg(long, value_name = "COMPOSE_FILE")]
    pub from: Option<PathBuf>,
    /// Where to write the template.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "unitgen.yaml"
    )]
    pub output: PathBuf,
    /// Replace FILE if it exists (atomically; a link stays a link). A device
    /// or a pipe is written into without --force.
    #[arg(long)]
    pub force: bool,
    /// The app name [default: this folder's name, made a valid app name].
    #[arg(long, value_name = "NAME", value_parser = import::parse_name)]
    pub app: Option<String>,
}

pub fn run(args: InitArgs) -> Result<Outcome> {
    if let Some(compose) = args.from {
        return import::run(ImportArgs {
            compose: Some(compose),
            files: Vec::new(),
            output: Some(args.output),
            force: args.force,
            app: args.app,
            instance: "default".to_string(),
            profile: Vec::new(),
        });
    }
    if output::would_replace(&args.output) && !args.force {
        return Err(miette!(
            help = "pass --force to replace it",
            "{} exists already",
            crate::diagnostic::shown_path(&args.output)
        ));
    }
    let app = match args.app {
        Some(app) => app,
        None => folder_app_name()?,
    };
    output::write_named_file(&args.output, STARTER.replace("{APP}", &app).as_bytes())
        .into_diagnostic()
        .wrap_err_with(|| format!("writing {}", crate::diagnostic::shown_path(&args.output)))?;
    crate::say!(
        "wrote {} (app `{app}`, instances staging and live): edit it, then `unitgen validate`",
        crate::diagnostic::shown_path(&args.output)
    );
    Ok(Outcome::Clean)
}

/// The current folder's name as an app name (`my-blog` → `my_blog`).
fn folder_app_name() -> Result<String> {
    let dir = std::env::current_dir().into_diagnostic()?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = syntax::suggest_name(&name, '_');
    if syntax::check_app_or_instance_name(&name).is_ok() {
        Ok(name)
    } else {
        Ok("app".to_string())
    }
}
