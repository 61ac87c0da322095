//! `unitgen status`: every service of an instance with its unit state and
//! container.

use clap::Args;
use miette::Result;
use serde::Serialize;

use super::fleet::{self, FleetArgs};
use super::host::HostArgs;
use super::{Outcome, TemplateArgs};
use crate::docker::{self, Container};
use crate::render;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The instance to show.
    pub instance: String,
    #[command(flatten)]
    pub template: TemplateArgs,
    #[command(flatten)]
    pub host: HostArgs,
    /// Print JSON (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Serialize)]
struct Row {
    unit: String,
    service: Option<String>,
    active_state: String,
    sub_state: String,
    container: Option<Container>,
}

#[derive(Debug, Serialize)]
struct Status {
    app: String,
    instance: String,
    revision: Option<u32>,
    units: Vec<Row>,
}

pub fn run(args: StatusArgs) -> Result<Outcome> {
    let app = args.template.app_name()?;
    if args.fleet.fleet {
        return fleet::status(&args.fleet, &app, &args.instance, args.json);
    }
    let installed = args.host.installed(&app, &args.instance)?;
    let revision = args
        .host
        .state(&app, &args.instance)
        .revisions()
        .ok()
        .and_then(|r| r.last().map(|r| r.number));
    let systemd = args
        .host
        .host()
        .connect()
        .map_err(|f| miette::miette!("{}", f.message))?;
    let mut units = Vec::new();
    for unit in &installed {
        let state = systemd
            .unit_state(&unit.name)
            .map_err(|e| miette::miette!("{e}"))?;
        let service = render::owner(&unit.text).and_then(|o| o.service);
        let container = service
            .as_ref()
            .and_then(|s| docker::inspect(&format!("{app}-{}-{s}", args.instance)));
        units.push(Row {
            unit: unit.name.clone(),
            service,
            active_state: state.active_state,
            sub_state: state.sub_state,
            container,
        });
    }
    let status = Status {
        app: app.clone(),
        instance: args.instance.clone(),
        revision,
        units,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("status serializes")
        );
        return Ok(Outcome::Clean);
    }
    if status.units.is_empty() {
        println!(
            "{app}-{} is not installed in {}",
            args.instance,
            args.host.host().unit_dir.display()
        );
        return Ok(Outcome::Clean);
    }
    println!(
        "{app}-{}: revision {}",
        args.instance,
        revision.map_or("none recorded".into(), |r| r.to_string())
    );
    println!(
        "{:<12} {:<22} {:<14} {:<30} STARTED",
        "SERVICE", "STATE", "CONTAINER", "IMAGE"
    );
    for row in &status.units {
        let (id, image, started) = match &row.container {
            Some(c) => (c.id.as_str(), c.image.as_str(), c.started_at.as_str()),
            None => ("-", "-", "-"),
        };
        println!(
            "{:<12} {:<22} {:<14} {:<30} {}",
            row.service.as_deref().unwrap_or("(network)"),
            format!("{} ({})", row.active_state, row.sub_state),
            id,
            image,
            started
        );
    }
    Ok(Outcome::Clean)
}
