//! The Docker environment of a host's units: the `DOCKER_*` variables that
//! choose the engine (and its config and TLS files) the `docker` of a unit
//! talks to. A unit gets them from the systemd manager that runs it
//! (`DefaultEnvironment=`, `systemctl set-environment`), not from the shell
//! of whoever runs unitgen: a rootless-Docker user's `DOCKER_HOST`, or a
//! `DOCKER_CONTEXT` pointing at another machine, must not make `plan` or
//! `status` look at an engine the units never use. So unitgen's own docker
//! calls for a host get exactly the manager's values, and lose the ones the
//! manager does not set ([`Environment::apply`]).

use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::escape::sh_quote;

/// The variables by which the Docker CLI chooses its engine, its config
/// (and with it the current context), its TLS files and the API version it
/// asks for (which changes what `docker run` may ask and what the engine
/// answers).
pub const VARIABLES: [&str; 6] = [
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_API_VERSION",
];

/// The engine a unit's `docker` uses when nothing chooses another.
pub(super) const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Each of [`VARIABLES`] as a unit's `docker` gets it (None: unset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Environment {
    values: [Option<String>; 6],
}

impl Environment {
    /// From a manager's `Environment` property: `KEY=VALUE` entries (a
    /// later entry of the same key wins, as in `Environment=` lines).
    pub fn of_manager(entries: &[String]) -> Environment {
        let mut env = Environment::default();
        for entry in entries {
            if let Some((key, value)) = entry.split_once('=')
                && let Some(i) = VARIABLES.iter().position(|v| *v == key)
            {
                env.values[i] = Some(value.to_owned());
            }
        }
        env
    }

    /// The value of one of [`VARIABLES`].
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = VARIABLES.iter().position(|v| *v == name)?;
        self.values[i].as_deref()
    }

    /// The same environment reached from outside a host whose root file
    /// system is `root` (`--root`): the paths the units name (a `unix://`
    /// socket, the config and certificate folders) are paths in that root.
    /// Without a `DOCKER_HOST` or `DOCKER_CONTEXT`, the units' docker uses
    /// the root's default socket, so that one is named.
    pub fn seen_from(&self, root: &Path) -> Environment {
        let mut env = self.clone();
        let in_root = |path: &str| in_root(root, Path::new(path)).display().to_string();
        let [host, context, config, _, cert_path, _] = &mut env.values;
        if host.is_none() && context.is_none() {
            *host = Some(format!("unix://{DEFAULT_SOCKET}"));
        }
        if let Some(value) = host
            && let Some(socket) = value.strip_prefix("unix://")
        {
            *value = format!("unix://{}", in_root(socket));
        }
        for path in [config, cert_path].into_iter().flatten() {
            *path = in_root(path);
        }
        env
    }

    /// Sets each variable on a docker command, and removes those this
    /// environment does not set, whatever unitgen's own environment holds.
    pub fn apply(&self, command: &mut Command) {
        for (name, value) in VARIABLES.iter().zip(&self.values) {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
    }

    /// Where unitgen's own environment (`own`: a variable's value) differs
    /// from this one, the units'.
    pub fn disagreements(&self, own: impl Fn(&str) -> Option<String>) -> Vec<Disagreement> {
        VARIABLES
            .iter()
            .zip(&self.values)
            .filter_map(|(name, units)| {
                let own = own(name)?;
                (Some(&own) != units.as_ref()).then(|| Disagreement {
                    name,
                    own,
                    units: units.clone(),
                })
            })
            .collect()
    }
}

/// A variable unitgen's environment sets otherwise than the units'
/// manager. Its display is the warning, with how to make them agree; `user`
/// tells the system's manager from the user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub name: &'static str,
    /// The value in unitgen's environment.
    pub own: String,
    /// The manager's value; None: the manager does not set it.
    pub units: Option<String>,
}

impl Disagreement {
    pub fn warning(&self, user: bool) -> String {
        let Disagreement { name, own, units } = self;
        let (systemctl, drop_in) = if user {
            ("systemctl --user", "~/.config/systemd/user.conf.d/")
        } else {
            ("systemctl", "/etc/systemd/system.conf.d/")
        };
        // The values come from two environments, not from unitgen: in the
        // commands suggested they are one shell word each, and what a
        // terminal would obey is shown escaped.
        let word = |value: &str| crate::diagnostic::shown(&sh_quote(&format!("{name}={value}")));
        let theirs = match units {
            Some(value) => word(value),
            None => format!("no {name}"),
        };
        let agree = match units {
            Some(value) => format!("`export {}`", word(value)),
            None => format!("`unset {name}`"),
        };
        let own = word(own);
        format!(
            "warning: unitgen's environment has {own}, but the units get {theirs} from \
             systemd's manager; unitgen's docker calls follow the units' value, to look at \
             the engine the units run on. To make them agree, give the units yours \
             (`{systemctl} set-environment {own}`, or DefaultEnvironment= in a \
             drop-in under {drop_in}), or take theirs ({agree})."
        )
    }
}

/// `path`, a path inside the file system whose root is `root`, as reached
/// from here: symbolic links on the way resolve inside that root (an
/// absolute link, such as Debian's `/var/run -> /run`, would otherwise lead
/// to this machine's own). The last component is not resolved when missing.
fn in_root(root: &Path, path: &Path) -> PathBuf {
    let mut resolved = PathBuf::new();
    let mut rest: Vec<PathBuf> = vec![path.to_path_buf()];
    // As the kernel does, give up on loops after 40 links.
    let mut links = 0;
    while let Some(next) = rest.pop() {
        let mut components = next.components();
        let Some(first) = components.next() else {
            continue;
        };
        let remaining = components.as_path().to_path_buf();
        if !remaining.as_os_str().is_empty() {
            rest.push(remaining);
        }
        match first {
            Component::RootDir | Component::Prefix(_) => resolved.clear(),
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => {
                let candidate = resolved.join(name);
                match std::fs::read_link(root.join(&candidate)) {
                    Ok(target) if links < 40 => {
                        links += 1;
                        if target.is_absolute() {
                            resolved.clear();
                        }
                        rest.push(target);
                    }
                    _ => resolved = candidate,
                }
            }
        }
    }
    root.join(resolved)
}

/// How to find the units' environment of the host a command acts on,
/// called at its first docker call; None leaves unitgen's own environment
/// to the docker CLI (the manager could not be asked).
type Source = Box<dyn Fn() -> Option<Environment> + Send + Sync>;

/// A process-wide value, set once: a command acts on one host, and its
/// docker calls are spread over a dozen modules (pull, plan's and status's
/// look at containers, exec, restore, destroy's volumes, the router's port
/// check), some on threads. Every one of them goes through [`super::command`],
/// which asks this; handing a value down through all of them would add a
/// parameter to most of unitgen for one fact about the host.
static UNITS: OnceLock<(Source, OnceLock<Option<Environment>>)> = OnceLock::new();

/// Makes every later docker call of this process use the environment of
/// the units of a host, as `source` finds it (once, at the first docker
/// call: commands that end up making none never ask the manager). The
/// first call wins: one process acts on one host.
pub fn follow(source: impl Fn() -> Option<Environment> + Send + Sync + 'static) {
    let _ = UNITS.set((Box::new(source), OnceLock::new()));
}

/// The units' environment, once [`follow`] has named a host.
pub(super) fn followed() -> Option<&'static Environment> {
    let (source, found) = UNITS.get()?;
    found.get_or_init(source).as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn the_managers_docker_variables_are_read_and_nothing_else() {
        let env = Environment::of_manager(&entries(&[
            "PATH=/usr/bin:/bin",
            "DOCKER_HOST=unix:///run/user/1000/docker.sock",
            "DOCKER_HOSTNAME=not-one-of-them",
            "DOCKER_CONFIG=/etc/docker-a",
            "DOCKER_CONFIG=/etc/docker-b",
            "DOCKER_TLS_VERIFY=",
            "DOCKER_API_VERSION=1.41",
            "no equals sign",
        ]));
        assert_eq!(
            env.get("DOCKER_HOST"),
            Some("unix:///run/user/1000/docker.sock")
        );
        assert_eq!(env.get("DOCKER_CONFIG"), Some("/etc/docker-b"));
        // Set, if empty, is not unset: the CLI reads it as set.
        assert_eq!(env.get("DOCKER_TLS_VERIFY"), Some(""));
        assert_eq!(env.get("DOCKER_CONTEXT"), None);
        assert_eq!(env.get("DOCKER_CERT_PATH"), None);
        assert_eq!(env.get("DOCKER_API_VERSION"), Some("1.41"));
        assert_eq!(env.get("PATH"), None);
    }

    #[test]
    fn a_docker_command_gets_the_units_values_and_loses_the_others() {
        let env = Environment::of_manager(&entries(&["DOCKER_HOST=tcp://10.0.0.1:2375"]));
        let mut command = Command::new("docker");
        env.apply(&mut command);
        let set: Vec<(String, Option<String>)> = command
            .get_envs()
            .map(|(k, v)| {
                let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
                (text(k), v.map(text))
            })
            .collect();
        let mut expected: Vec<(String, Option<String>)> = vec![
            ("DOCKER_API_VERSION".into(), None),
            ("DOCKER_CERT_PATH".into(), None),
            ("DOCKER_CONFIG".into(), None),
            ("DOCKER_CONTEXT".into(), None),
            ("DOCKER_HOST".into(), Some("tcp://10.0.0.1:2375".into())),
            ("DOCKER_TLS_VERIFY".into(), None),
        ];
        expected.sort();
        let mut set = set;
        set.sort();
        assert_eq!(set, expected);
    }

    #[test]
    fn unitgens_own_values_that_differ_are_warned_about() {
        let units = Environment::of_manager(&entries(&[
            "DOCKER_HOST=unix:///var/run/docker.sock",
            "DOCKER_CONFIG=/etc/docker-client",
        ]));
        let own = |name: &str| match name {
            "DOCKER_HOST" => Some("unix:///run/user/1000/docker.sock".to_owned()),
            "DOCKER_CONFIG" => Some("/etc/docker-client".to_owned()),
            "DOCKER_CONTEXT" => Some("remote".to_owned()),
            "DOCKER_API_VERSION" => Some("1.41".to_owned()),
            _ => None,
        };
        let found = units.disagreements(own);
        assert_eq!(
            found,
            vec![
                Disagreement {
                    name: "DOCKER_HOST",
                    own: "unix:///run/user/1000/docker.sock".into(),
                    units: Some("unix:///var/run/docker.sock".into()),
                },
                Disagreement {
                    name: "DOCKER_CONTEXT",
                    own: "remote".into(),
                    units: None,
                },
                Disagreement {
                    name: "DOCKER_API_VERSION",
                    own: "1.41".into(),
                    units: None,
                },
            ],
            "the same DOCKER_CONFIG, and variables unitgen does not set, are no disagreement"
        );
        assert_eq!(
            found[0].warning(true),
            "warning: unitgen's environment has DOCKER_HOST=unix:///run/user/1000/docker.sock, \
             but the units get DOCKER_HOST=unix:///var/run/docker.sock from systemd's manager; \
             unitgen's docker calls follow the units' value, to look at the engine the units \
             run on. To make them agree, give the units yours (`systemctl --user \
             set-environment DOCKER_HOST=unix:///run/user/1000/docker.sock`, or \
             DefaultEnvironment= in a drop-in under ~/.config/systemd/user.conf.d/), or take \
             theirs (`export DOCKER_HOST=unix:///var/run/docker.sock`)."
        );
        let warning = found[1].warning(false);
        assert!(
            warning.contains("the units get no DOCKER_CONTEXT from systemd's manager"),
            "{warning}"
        );
        assert!(
            warning.contains("(`systemctl set-environment DOCKER_CONTEXT=remote`"),
            "{warning}"
        );
        assert!(warning.ends_with("or take theirs (`unset DOCKER_CONTEXT`)."));
        let warning = found[2].warning(false);
        assert!(
            warning.contains("(`systemctl set-environment DOCKER_API_VERSION=1.41`"),
            "{warning}"
        );
    }

    /// A value of either environment is one word of the commands the
    /// warning suggests, and says nothing to the terminal.
    #[test]
    fn a_hostile_value_stays_one_word_of_the_suggested_commands() {
        let warning = Disagreement {
            name: "DOCKER_HOST",
            own: "unix:///a.sock; rm -rf ~".into(),
            units: Some("tcp://x:2375\n\u{1b}[2J`id`".into()),
        }
        .warning(false);
        assert!(
            warning.contains("set-environment 'DOCKER_HOST=unix:///a.sock; rm -rf ~'`"),
            "{warning}"
        );
        assert!(
            warning.contains("(`export 'DOCKER_HOST=tcp://x:2375\\n\\u{1b}[2J`id`'`)"),
            "{warning}"
        );
        assert!(!warning.chars().any(char::is_control), "{warning}");
    }

    #[test]
    fn paths_the_units_name_are_reached_inside_their_root() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        // Debian's absolute /var/run -> /run must not lead out of the root.
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::create_dir_all(root.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", root.join("var/run")).unwrap();
        std::fs::create_dir_all(root.join("etc/docker")).unwrap();
        std::os::unix::fs::symlink("docker", root.join("etc/docker-link")).unwrap();

        let nothing = Environment::default().seen_from(root);
        assert_eq!(
            nothing.get("DOCKER_HOST"),
            Some(format!("unix://{}/run/docker.sock", root.display()).as_str()),
            "no DOCKER_HOST: the root's default socket"
        );
        assert_eq!(nothing.get("DOCKER_CONFIG"), None);

        let named = Environment::of_manager(&entries(&[
            "DOCKER_HOST=unix:///hostrun/docker.sock",
            "DOCKER_CONFIG=/etc/docker-link/../docker/client",
            "DOCKER_CERT_PATH=/etc/docker/certs",
        ]))
        .seen_from(root);
        let inside = |path: &str| format!("{}{path}", root.display());
        assert_eq!(
            named.get("DOCKER_HOST"),
            Some(format!("unix://{}", inside("/hostrun/docker.sock")).as_str())
        );
        assert_eq!(
            named.get("DOCKER_CONFIG"),
            Some(inside("/etc/docker/client").as_str())
        );
        assert_eq!(
            named.get("DOCKER_CERT_PATH"),
            Some(inside("/etc/docker/certs").as_str())
        );

        let remote = Environment::of_manager(&entries(&["DOCKER_HOST=tcp://10.0.0.1:2375"]));
        assert_eq!(remote.seen_from(root), remote, "not a path: as it is");
        let context = Environment::of_manager(&entries(&["DOCKER_CONTEXT=remote"]));
        assert_eq!(
            context.seen_from(root).get("DOCKER_HOST"),
            None,
            "a context chooses the engine"
        );
    }
}
