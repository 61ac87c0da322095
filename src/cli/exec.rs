//! `unitgen exec INSTANCE SERVICE [-- COMMAND...]`: a shell or a command in
//! a service's running container (`docker exec`).

use std::io::IsTerminal as _;
use std::os::unix::process::CommandExt as _;

use clap::Args;
use miette::{Result, miette};

use super::fleet::{NotOnFleetArgs, OnMachine};
use super::host::HostArgs;
use super::installed::Installed;
use super::{FileArgs, Outcome};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The instance.
    pub instance: String,
    /// The service whose container to enter.
    pub service: String,
    /// The command to run [default: a shell, bash where the image has it].
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub template: FileArgs,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub fleet: NotOnFleetArgs,
}

/// Looks for bash, else sh: most images have one of them.
const SHELL: [&str; 3] = [
    "sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi",
];

pub fn run(args: ExecArgs) -> Result<Outcome> {
    if args.fleet.fleet {
        let (app, instance) = args.template.app_and_instance(&args.instance)?;
        let wanted = OnMachine::Exec {
            service: &args.service,
            command: &args.command,
        };
        return Err(super::fleet::refuse_on_machine(
            &args.fleet,
            &args.template,
            &args.instance,
            (&app, &instance),
            wanted,
        ));
    }
    let installed = Installed::read(&args.template, &args.host, &args.instance)?;
    installed.select(std::slice::from_ref(&args.service))?;
    let container = crate::model::prefix(&installed.app, &installed.instance);
    let container = format!("{container}-{}", args.service);
    match crate::docker::inspect(&container) {
        Some(c) if c.status == "running" => {}
        Some(c) => return Err(miette!("{container} is {}, not running", c.status)),
        None => {
            return Err(miette!(
                "{container} has no container: is the service running? (`unitgen status {}`)",
                args.instance
            ));
        }
    }
    let mut docker = crate::docker::command();
    docker.args(["exec", "--interactive"]);
    // A terminal for the container only when this side has one: a piped
    // `unitgen exec ... < script` must not get terminal line endings.
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        docker.arg("--tty");
    }
    docker.arg(&container);
    if args.command.is_empty() {
        docker.args(SHELL);
    } else {
        docker.args(&args.command);
    }
    // Replaces unitgen: signals, the terminal and the exit code are the
    // command's own.
    let error = docker.exec();
    Err(miette!("running {}: {error}", crate::docker::DOCKER))
}
