//! `unitgen render`: print or write an instance's units.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;
use miette::{IntoDiagnostic, Result, WrapErr};

use super::output::{diff_folder, write_folder};
use super::{Outcome, TemplateArgs};
use crate::render::Renderer;

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The instance to render (e.g. `live`, `staging`).
    pub instance: String,
    #[command(flatten)]
    pub template: TemplateArgs,
    /// Write one file per unit into DIR instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// With --out: change nothing; list the files that are out of date and
    /// exit with 2 if any are (for CI in a repository that commits its units).
    #[arg(long, requires = "out")]
    pub check: bool,
}

pub fn run(args: RenderArgs) -> Result<Outcome> {
    let instance = args.template.compile(&args.instance)?;
    let units = Renderer::default().render(&instance);
    let Some(dir) = &args.out else {
        let mut stdout = std::io::stdout().lock();
        let mut text = String::new();
        for (i, unit) in units.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(&format!("# ==> {} <==\n{}", unit.name, unit.text));
        }
        // A closed pipe (`unitgen render live | head`) is not an error.
        match stdout.write_all(text.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.into_diagnostic()?,
        }
        return Ok(Outcome::Clean);
    };
    let diff = diff_folder(dir, &instance.app, &instance.instance, &units)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading {}", dir.display()))?;
    if args.check {
        for (label, names) in [
            ("missing", &diff.added),
            ("out of date", &diff.changed),
            ("stale", &diff.stale),
        ] {
            for name in names {
                println!("{label}: {}", dir.join(name).display());
            }
        }
        if diff.is_empty() {
            eprintln!("{} units in {} are up to date", units.len(), dir.display());
            return Ok(Outcome::Clean);
        }
        eprintln!(
            "units in {} are out of date: run `unitgen render {} --out {}`",
            dir.display(),
            args.instance,
            dir.display()
        );
        return Ok(Outcome::Differs);
    }
    write_folder(dir, &units, &diff)
        .into_diagnostic()
        .wrap_err_with(|| format!("writing units to {}", dir.display()))?;
    eprintln!(
        "{}: {} written, {} removed, {} unchanged",
        dir.display(),
        diff.added.len() + diff.changed.len(),
        diff.stale.len(),
        units.len() - diff.added.len() - diff.changed.len()
    );
    Ok(Outcome::Clean)
}
