//! `unitgen completions SHELL`: a completion script for bash, zsh or fish,
//! generated from the same clap definitions the command line is parsed with.
//! bash's also completes instance and service names (as `systemctl status
//! <TAB>` completes units and `docker compose logs <TAB>` services), asking
//! `unitgen complete-names` while the user types.

use std::fmt::Write as _;

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
    out!("{}", String::from_utf8_lossy(&script))?;
    if let CompletionShell::Bash = args.shell {
        out!("{}", bash_names(&cli))?;
    }
    Ok(Outcome::Clean)
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(value_enum)]
    pub kind: NameKind,
    /// With `services`: the instance whose app's services to list.
    pub instance: Option<String>,
    #[command(flatten)]
    pub file: FileArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum NameKind {
    Instances,
    Services,
}

/// Prints the names, one a line; nothing when the file cannot be read (a
/// completion must not print errors into the user's command line).
pub fn names(args: NamesArgs) -> Result<Outcome> {
    let names: Vec<String> = match args.kind {
        NameKind::Instances => match args.file.open() {
            Ok(Opened::App(template)) => template.instance_names(),
            // APP/INSTANCE, or plain INSTANCE when the site has one app.
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
        },
        NameKind::Services => (args.instance.as_deref())
            .and_then(|instance| args.file.select(instance).ok())
            .and_then(|(template, _)| template.app.doc.services)
            .map(|services| {
                services
                    .value
                    .keys()
                    .map(|name| name.value.clone())
                    .collect()
            })
            .unwrap_or_default(),
    };
    for name in names {
        out!("{name}\n")?;
    }
    Ok(Outcome::Clean)
}

/// bash: a function that completes an instance or a service name where the
/// command line has one (`unitgen status <TAB>`, `unitgen logs live <TAB>`)
/// and otherwise leaves it to clap's `_unitgen`. Which positions hold names,
/// and which options take a value (so that `-f FILE` is not counted as a
/// position), is read from the clap definitions, so it cannot drift from them.
fn bash_names(cli: &clap::Command) -> String {
    let mut cases = String::new();
    for command in cli.get_subcommands().filter(|c| !c.is_hide_set()) {
        let positionals: Vec<&clap::Arg> = command.get_positionals().collect();
        let kinds: Vec<&str> = (positionals.iter())
            .map(|arg| match arg.get_id().as_str() {
                "instance" | "instances" => "instance",
                "service" | "services" => "service",
                _ => "-",
            })
            .collect();
        if !kinds.iter().any(|kind| *kind != "-") {
            continue;
        }
        let repeats = positionals
            .last()
            .is_some_and(|arg| arg.get_num_args().is_some_and(|n| n.max_values() > 1));
        let valued: Vec<String> = (command.get_arguments())
            .filter(|arg| !arg.is_positional() && arg.get_action().takes_values())
            .flat_map(|arg| {
                (arg.get_short().map(|short| format!("-{short}")).into_iter())
                    .chain(arg.get_long().map(|long| format!("--{long}")))
            })
            .collect();
        let _ = writeln!(
            cases,
            "            {}) kinds=({}); repeats={}; valued=' {} ' ;;",
            command.get_name(),
            kinds.join(" "),
            u8::from(repeats),
            valued.join(" ")
        );
    }
    format!(
        r#"
# Instance and service names, from the file the command line names (-f,
# --file) or the default one: asked of `unitgen complete-names`.
_unitgen_names() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} sub="" file="" instance="" n=0 i w
    local kinds=() repeats=0 valued=""
    [[ $cur == -* ]] && return 1
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${{COMP_WORDS[i]}}
        if [[ -z $sub ]]; then
            sub=$w
            case $sub in
{cases}            *) return 1 ;;
            esac
            continue
        fi
        case $w in
            --) return 1 ;;
            --file=*) file=${{w#--file=}} ;;
            --*=*) ;;
            -*)
                if [[ $valued == *" $w "* ]]; then
                    [[ $w == -f || $w == --file ]] && file=${{COMP_WORDS[i + 1]}}
                    ((i++))
                fi
                ;;
            *)
                ((n == 0)) && instance=$w
                ((n++))
                ;;
        esac
    done
    [[ -n $sub ]] || return 1
    local kind
    if ((n < ${{#kinds[@]}})); then
        kind=${{kinds[n]}}
    elif ((repeats)); then
        kind=${{kinds[${{#kinds[@]}} - 1]}}
    else
        return 1
    fi
    local names
    case $kind in
        instance) names=$("${{COMP_WORDS[0]}}" complete-names instances ${{file:+--file "$file"}} 2>/dev/null) ;;
        service) names=$("${{COMP_WORDS[0]}}" complete-names services "$instance" ${{file:+--file "$file"}} 2>/dev/null) ;;
        *) return 1 ;;
    esac
    COMPREPLY=($(compgen -W "$names" -- "$cur"))
}}

_unitgen_with_names() {{
    _unitgen_names || _unitgen "$@"
}}

if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _unitgen_with_names -o nosort -o bashdefault -o default unitgen
else
    complete -F _unitgen_with_names -o bashdefault -o default unitgen
fi
"#
    )
}
