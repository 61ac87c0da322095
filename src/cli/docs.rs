//! `unitgen docs`: write the site's documentation as Markdown.

use std::path::PathBuf;

use clap::Args;
use miette::{IntoDiagnostic, Result, WrapErr};

use super::output::outln;
use super::{FileArgs, Outcome};
use crate::docs;

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
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: DocsArgs) -> Result<Outcome> {
    let site = super::site_view(&args.file)?;
    let pages = docs::pages(&site);
    let dir = &args.out;
    let changes = docs::sync(dir, &pages, args.check)
        .into_diagnostic()
        .wrap_err_with(|| format!("writing the docs into {}", dir.display()))?;
    if args.check {
        for name in &changes.written {
            outln!("out of date: {}", dir.join(name).display())?;
        }
        for name in &changes.removed {
            outln!("stale: {}", dir.join(name).display())?;
        }
        if changes.is_empty() {
            eprintln!(
                "{} in {} up to date",
                crate::progress::count(pages.len(), "page"),
                dir.display()
            );
            return Ok(Outcome::Clean);
        }
        eprintln!(
            "the docs in {} are out of date: run `unitgen docs -f {} --out {}`",
            dir.display(),
            crate::escape::sh_quote(&args.file.file.display().to_string()),
            crate::escape::sh_quote(&dir.display().to_string()),
        );
        return Ok(Outcome::Differs);
    }
    eprintln!(
        "{}: {} written, {} removed, {} unchanged",
        dir.display(),
        changes.written.len(),
        changes.removed.len(),
        changes.unchanged
    );
    Ok(Outcome::Clean)
}
