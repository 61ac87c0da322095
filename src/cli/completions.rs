//! `unitgen completions SHELL`: a completion script for bash, zsh or fish,
//! generated from the same clap definitions the command line is parsed with.

use clap::{Args, CommandFactory as _};
use clap_complete::Shell;
use miette::Result;

use super::output::out;
use super::{Cli, Outcome};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: CompletionsArgs) -> Result<Outcome> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "unitgen", &mut script);
    out!("{}", String::from_utf8_lossy(&script))?;
    Ok(Outcome::Clean)
}
