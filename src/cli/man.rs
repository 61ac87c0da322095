//! `unitgen man`: the manual page, generated from the same clap definitions
//! (and doc comments) as `--help`.

use std::path::PathBuf;

use clap::{Args, CommandFactory as _};
use miette::{IntoDiagnostic as _, Result, WrapErr as _};

use super::output::out;
use super::{Cli, Outcome};

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write unitgen.1 and one page per command (unitgen-apply.1, …) into
    /// DIR instead of printing unitgen.1.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(args: ManArgs) -> Result<Outcome> {
    // `unitgen help` needs no page of its own.
    let command = Cli::command().disable_help_subcommand(true);
    match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .and_then(|()| clap_mangen::generate_to(command, dir))
                .into_diagnostic()
                .wrap_err_with(|| {
                    format!(
                        "writing manual pages to {}",
                        crate::diagnostic::shown_path(dir)
                    )
                })?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .into_diagnostic()?;
            out!("{}", String::from_utf8_lossy(&page))?;
        }
    }
    Ok(Outcome::Clean)
}
