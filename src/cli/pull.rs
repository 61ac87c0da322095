//! `unitgen pull`: fetch every image of an instance (its backup's helper
//! image and its router's too), changing nothing else.

use std::collections::BTreeSet;

use clap::Args;
use miette::{Result, miette};

use super::fleet::NotOnFleetArgs;
use super::host::HostArgs;
use super::{Outcome, TemplateArgs};
use crate::progress::{Progress, count};
use crate::pull::{self, PullPolicy};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The instance whose images to fetch (e.g. `staging`).
    pub instance: String,
    #[command(flatten)]
    pub template: TemplateArgs,
    // The host whose units will run the images: they are pulled into the
    // Docker engine its units use (its manager's DOCKER_HOST, ...), the
    // one `plan` and `apply` look at.
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub fleet: NotOnFleetArgs,
}

pub fn run(args: PullArgs) -> Result<Outcome> {
    if args.fleet.fleet {
        return Err(super::fleet::refuse_host_only("pull"));
    }
    let instance = args.template.compile(&args.instance)?;
    args.host.host()?;
    let helpers: BTreeSet<String> = (instance.backup.iter())
        .map(|b| b.helper_image.clone())
        .collect();
    let images: BTreeSet<String> = instance
        .services
        .iter()
        .map(|s| s.image.clone())
        .chain(helpers.iter().cloned())
        .chain(instance.router.iter().map(|r| r.image.clone()))
        .collect();
    let progress = Progress::default();
    pull::fetch(&images, PullPolicy::Always, &progress)
        .map_err(|unavailable| miette!("{}", pull::describe(&unavailable, &helpers)))?;
    progress.line(&format!(
        "{}: {} pulled; `unitgen plan {}` shows the services whose image moved",
        instance.prefix(),
        count(images.len(), "image"),
        instance.instance
    ));
    Ok(Outcome::Clean)
}
