//! `unitgen completions SHELL`: a completion script for bash, zsh or fish,
//! generated from the same clap definitions the command line is parsed with.
//! Each also completes instance and service names (as `systemctl status
//! <TAB>` completes units and `docker compose logs <TAB>` services), asking
//! `unitgen complete-names` while the user types.

use std::path::PathBuf;

use clap::{Args, CommandFactory as _};
use clap_complete::Shell;
use miette::Result;

use super::output::out;
use super::{Cli, FileArgs, Opened, Outcome};

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
    // clap_complete offers hidden commands too: `complete-names` is for the
    // script, not for the user to type.
    let cli = Cli::command();
    let shown = cli.get_subcommands().filter(|c| !c.is_hide_set()).cloned();
    let mut offered = clap::Command::new("unitgen")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommands(shown);
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut offered, "unitgen", &mut script);
    let script = String::from_utf8_lossy(&script);
    match args.shell {
        CompletionShell::Bash => out!("{script}{BASH_NAMES}")?,
        CompletionShell::Zsh => out!("{}", zsh_with_names(&script))?,
        CompletionShell::Fish => out!("{script}{FISH_NAMES}")?,
    }
    Ok(Outcome::Clean)
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    /// The command line after `unitgen`, up to the word being completed
    /// (the last one, maybe empty).
    #[arg(last = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

/// Prints the instance or service names the word being completed can be,
/// one a line, from the file the command line names (`-f`) or the default
/// one; nothing when the word is not a name, or the file cannot be read (a
/// completion must not print errors into the user's command line), so the
/// shell's script completes it from the clap definitions instead.
///
/// Where the command line has a name is read here, once for every shell,
/// as `kubectl __complete` and `gh __complete` do: each shell's script only
/// asks and offers what comes back.
pub fn names(args: NamesArgs) -> Result<Outcome> {
    let cli = Cli::command();
    let names = match name_at(&cli, &args.words) {
        Some(NameAt {
            kind,
            file,
            instance,
        }) => {
            let file = FileArgs {
                file: file.map_or_else(|| PathBuf::from(super::DEFAULT_FILE), PathBuf::from),
            };
            match kind {
                NameKind::Instance => instance_names(&file),
                NameKind::Service => service_names(&file, instance.as_deref()),
            }
        }
        None => Vec::new(),
    };
    // Only names a compile takes: the file may be anyone's (a cloned
    // repository), and a shell reads what comes back (bash's `compgen -W`
    // expands `$(…)` in it); a name with a line break would be two.
    for name in names.iter().filter(|name| is_name(name)) {
        out!("{name}\n")?;
    }
    Ok(Outcome::Clean)
}

/// An instance (`live`, or `app/instance` of a site), app or service name as
/// the compile checks them: lowercase letters, digits, `_` and `-` only.
fn is_name(name: &str) -> bool {
    use crate::compile::syntax::{check_app_or_instance_name, check_service_name};
    let one =
        |part: &str| check_app_or_instance_name(part).is_ok() || check_service_name(part).is_ok();
    match name.split_once('/') {
        Some((app, instance)) => one(app) && one(instance),
        None => one(name),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NameKind {
    Instance,
    Service,
}

/// What the last of `words` is, when it is a name: its kind, the file the
/// command line names, and the instance it names first (whose services a
/// service name is one of).
#[derive(Debug, PartialEq)]
struct NameAt {
    kind: NameKind,
    file: Option<String>,
    instance: Option<String>,
}

/// Walks the command line as clap would parse it: the command, then its
/// options (those that take a value take the next word, so `-f FILE` is not
/// counted as a position) and positions, until the word being completed.
/// Which positions hold names, and which options take a value, is read from
/// the clap definitions, so it cannot drift from them.
fn name_at(cli: &clap::Command, words: &[String]) -> Option<NameAt> {
    let (current, before) = words.split_last()?;
    let (command, rest) = before.split_first()?;
    if current.starts_with('-') {
        return None;
    }
    let command = (cli.get_subcommands()).find(|c| !c.is_hide_set() && c.get_name() == command)?;
    let positionals: Vec<&clap::Arg> = command.get_positionals().collect();
    let valued = |word: &str| {
        command.get_arguments().any(|arg| {
            !arg.is_positional()
                && arg.get_action().takes_values()
                && (arg.get_short().is_some_and(|s| word == format!("-{s}"))
                    || arg.get_long().is_some_and(|l| word == format!("--{l}")))
        })
    };
    let (mut file, mut instance, mut position) = (None, None, 0);
    let mut rest = rest.iter();
    while let Some(word) = rest.next() {
        match word.as_str() {
            "--" => return None,
            _ if word.starts_with("--file=") => file = Some(word["--file=".len()..].to_string()),
            _ if word.starts_with("--") && word.contains('=') => {}
            _ if word.starts_with('-') && word.len() > 1 => {
                if valued(word) {
                    // bash splits `--file=x` at `=` into three words.
                    let mut value = rest.next();
                    if value.is_some_and(|v| v == "=") {
                        value = rest.next();
                    }
                    if word == "-f" || word == "--file" {
                        file = value.cloned();
                    }
                }
            }
            _ => {
                if position == 0 {
                    instance = Some(word.clone());
                }
                position += 1;
            }
        }
    }
    let arg = match positionals.get(position) {
        Some(arg) => *arg,
        // A last position that repeats (`restart live web api`).
        None => (positionals.last())
            .filter(|arg| arg.get_num_args().is_some_and(|n| n.max_values() > 1))?,
    };
    let kind = match arg.get_id().as_str() {
        "instance" | "instances" => NameKind::Instance,
        "service" | "services" => NameKind::Service,
        _ => return None,
    };
    Some(NameAt {
        kind,
        file,
        instance,
    })
}

/// The instances the file declares: APP/INSTANCE in a site file, plain
/// INSTANCE when the site has one app.
fn instance_names(file: &FileArgs) -> Vec<String> {
    match file.open() {
        Ok(Opened::App(template)) => template.instance_names(),
        Ok(Opened::Site(site)) => {
            let one_app = site.apps.len() == 1;
            (site.apps.iter())
                .flat_map(|app| {
                    app.instances.iter().map(move |placed| match one_app {
                        true => placed.instance.clone(),
                        false => format!("{}/{}", app.name, placed.instance),
                    })
                })
                .collect()
        }
        Err(_) => Vec::new(),
    }
}

/// The services of `instance`'s app.
fn service_names(file: &FileArgs, instance: Option<&str>) -> Vec<String> {
    instance
        .and_then(|instance| file.select(instance).ok())
        .and_then(|(template, _)| template.app.doc.services)
        .map(|services| {
            services
                .value
                .keys()
                .map(|name| name.value.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// bash: instance and service names where `unitgen complete-names` finds
/// one, any other word as clap's `_unitgen` completes it.
const BASH_NAMES: &str = r#"
# Instance and service names (`unitgen logs live <TAB>`), from the file the
# command line names (-f) or the default one, as `unitgen complete-names`
# reads the command line; any other word as `_unitgen` completes it.
_unitgen_with_names() {
    local names
    names=$("${COMP_WORDS[0]}" complete-names -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
    if [[ -n $names ]]; then
        # Not `compgen -W`, which expands `$(…)` in the names it is given.
        local name cur=${COMP_WORDS[COMP_CWORD]}
        COMPREPLY=()
        while IFS= read -r name; do
            [[ $name == "$cur"* ]] && COMPREPLY+=("$name")
        done <<< "$names"
        return 0
    fi
    _unitgen "$@"
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _unitgen_with_names -o nosort -o bashdefault -o default unitgen
else
    complete -F _unitgen_with_names -o bashdefault -o default unitgen
fi
"#;

/// zsh: the same, as the function the file defines for `#compdef unitgen`
/// (`_unitgen`, which zsh calls directly once the file is loaded); clap's
/// own is renamed `_unitgen_clap` (see [`zsh_with_names`]).
const ZSH_NAMES: &str = r#"
# Instance and service names (`unitgen logs live <TAB>`), from the file the
# command line names (-f) or the default one, as `unitgen complete-names`
# reads the command line; any other word as `_unitgen_clap` completes it.
_unitgen() {
    local -a names
    names=(${(f)"$(${(Q)words[1]} complete-names -- "${(@Q)words[2,CURRENT]}" 2>/dev/null)"})
    if (( ${#names} )); then
        compadd -a names
    else
        _unitgen_clap "$@"
    fi
}

"#;

/// fish: the same, beside clap's completions.
const FISH_NAMES: &str = r#"
# Instance and service names (`unitgen logs live <TAB>`), from the file the
# command line names (-f) or the default one, as `unitgen complete-names`
# reads the command line.
function __fish_unitgen_names
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -q current[1]; or set current ''
    command $words[1] complete-names -- $words[2..-1] $current 2>/dev/null
end
complete -c unitgen -f -n '__fish_unitgen_names | string length -q' -a '(__fish_unitgen_names)'
"#;

/// clap's zsh script with the names: its `_unitgen` renamed and the one of
/// [`ZSH_NAMES`] put before the lines that register or call `_unitgen`.
fn zsh_with_names(clap_script: &str) -> String {
    const CLAP_FUNCTION: &str = "\n_unitgen() {\n";
    const DISPATCH: &str = "\nif [ \"$funcstack[1]\" = \"_unitgen\" ]; then";
    let (Some(_), Some(dispatch)) = (clap_script.find(CLAP_FUNCTION), clap_script.rfind(DISPATCH))
    else {
        // A clap_complete whose script looks otherwise: names are not
        // offered, the rest still is (tests/cli.rs checks for names).
        return clap_script.to_string();
    };
    let (functions, dispatch) = clap_script.split_at(dispatch);
    format!(
        "{}{ZSH_NAMES}{dispatch}",
        functions.replacen(CLAP_FUNCTION, "\n_unitgen_clap() {\n", 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: &str) -> Option<NameAt> {
        let words: Vec<String> = line.split(' ').map(str::to_string).collect();
        name_at(&Cli::command(), &words)
    }

    fn name(kind: NameKind, file: Option<&str>, instance: Option<&str>) -> Option<NameAt> {
        Some(NameAt {
            kind,
            file: file.map(str::to_string),
            instance: instance.map(str::to_string),
        })
    }

    #[test]
    fn names_are_found_where_clap_has_them() {
        use NameKind::{Instance, Service};
        assert_eq!(at("status "), name(Instance, None, None));
        assert_eq!(at("status st"), name(Instance, None, None));
        assert_eq!(at("rollback --to 2 s"), name(Instance, None, None));
        assert_eq!(at("logs live "), name(Service, None, Some("live")));
        // `logs -f` is --follow, which takes no value.
        assert_eq!(at("logs -f live w"), name(Service, None, Some("live")));
        assert_eq!(
            at("restart live web api "),
            name(Service, None, Some("live"))
        );
        assert_eq!(
            at("status --file x.yaml "),
            name(Instance, Some("x.yaml"), None)
        );
        assert_eq!(
            at("status -f x.yaml "),
            name(Instance, Some("x.yaml"), None)
        );
        assert_eq!(
            at("restart --file=x.yaml blog/live "),
            name(Service, Some("x.yaml"), Some("blog/live"))
        );
        // bash's words for `--file=x.yaml`.
        assert_eq!(
            at("status --file = x.yaml "),
            name(Instance, Some("x.yaml"), None)
        );
        // Not names: options, words after `--`, a command without names,
        // a position past the last, the command itself, a hidden command.
        assert_eq!(at("status --js"), None);
        assert_eq!(at("exec live web -- "), None);
        assert_eq!(at("completions "), None);
        assert_eq!(at("status live "), None);
        assert_eq!(at("sta"), None);
        assert_eq!(at("complete-names "), None);
    }
}
