//! `unitgen start|stop|restart INSTANCE [SERVICE...]`: systemd jobs for an
//! installed instance, over D-Bus, awaited and reported as apply's are.

use clap::Args;
use miette::{Result, miette};

use super::host::HostArgs;
use super::installed::Installed;
use super::{FileArgs, Outcome};
use crate::progress::{Progress, count};
use crate::systemd::JobKind;
use crate::systemd::converge;

#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The instance.
    pub instance: String,
    /// Only these services (with their sidekicks) [default: every unit of
    /// the instance].
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub template: FileArgs,
    #[command(flatten)]
    pub host: HostArgs,
}

pub fn run(kind: JobKind, args: ControlArgs) -> Result<Outcome> {
    let installed = Installed::read(&args.template, &args.host, &args.instance)?;
    let name = installed.name();
    // Not interleaved with an apply, rollback or destroy of the instance.
    let (_state, _lock) = args.host.lock(&installed.app, &installed.instance)?;
    let units: Vec<String> = installed
        .select(&args.services)?
        .into_iter()
        // What timers start (a backup, a check) is only stopped here: a
        // start would run a backup now, and it waits for this command's
        // lock. Templates take no jobs.
        .filter(|(unit, owner)| {
            !unit.name.contains("@.") && (kind == JobKind::Stop || owner.started_by.is_none())
        })
        .map(|(unit, _)| unit.name.clone())
        // Restarting the instance target would restart each unit a second
        // time (they are part of it); its units are restarted directly.
        .filter(|unit| !(kind == JobKind::Restart && unit.ends_with(".target")))
        .collect();
    let progress = Progress::default();
    let settle = std::time::Duration::from_secs(super::apply::DEFAULT_SETTLE);
    converge::control(&args.host.host()?, kind, &units, settle, &progress).map_err(|failure| {
        // As apply reports it: each failed unit explained, in plain lines.
        for explanation in &failure.explained {
            eprintln!();
            for line in explanation.lines() {
                eprintln!("{line}");
            }
        }
        miette!("{name}: {}", failure.message)
    })?;
    let done = match kind {
        JobKind::Start => "started",
        JobKind::Stop => "stopped",
        JobKind::Restart => "restarted",
        JobKind::ReloadOrRestart => "reloaded",
    };
    progress.line(&format!("{name}: {} {done}", count(units.len(), "unit")));
    Ok(Outcome::Clean)
}
