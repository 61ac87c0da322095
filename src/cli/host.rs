//! Options shared by the commands that act on a host: where its units and
//! state are, and how to reach its systemd.

use std::path::{Path, PathBuf};

use clap::Args;
use miette::{IntoDiagnostic, Result, WrapErr};

use super::FileArgs;
use crate::render::{self, Flavour, Renderer, UnitFile};
use crate::state::{DEFAULT_STATE_DIR, Holder, InstanceState, Lock};
use crate::systemd::converge::Host;
use crate::unit_dir;

#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// Act on the systemd whose root file system is DIR (a container or a
    /// machine image, e.g. /proc/PID/root): units go to DIR/etc/systemd/system,
    /// state to DIR/var/lib/unitgen, D-Bus and journal are read there, and
    /// so is the Docker socket the units use.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Where unit files are written [default: /etc/systemd/system, or
    /// ~/.config/systemd/user with --user]; with --root, a path inside DIR.
    #[arg(long, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
    /// Where revisions are recorded [default: /var/lib/unitgen, or
    /// ~/.local/state/unitgen with --user]; with --root, a path inside DIR.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// D-Bus address of the systemd manager [default: the system bus, or the
    /// session bus with --user].
    #[arg(long, value_name = "ADDRESS")]
    pub bus: Option<String>,
    /// Talk to your user's systemd instead of the system's. Either way,
    /// unitgen's docker calls take DOCKER_HOST, DOCKER_CONTEXT, DOCKER_CONFIG,
    /// DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and DOCKER_API_VERSION from that
    /// manager's environment (where the units take them), not from yours.
    /// Not with --root, whose systemd is a system manager.
    #[arg(long, conflicts_with = "root")]
    pub user: bool,
}

impl HostArgs {
    /// The host options given, as the command line names them: for the
    /// commands that use them only in one mode (`docs --live`), to refuse
    /// them otherwise rather than ignore them.
    pub fn given(&self) -> Vec<&'static str> {
        [
            (self.root.is_some(), "--root"),
            (self.unit_dir.is_some(), "--unit-dir"),
            (self.state_dir.is_some(), "--state-dir"),
            (self.bus.is_some(), "--bus"),
            (self.user, "--user"),
        ]
        .into_iter()
        .filter_map(|(given, name)| given.then_some(name))
        .collect()
    }

    pub fn host(&self) -> Result<Host> {
        let unit_dir = match (&self.unit_dir, &self.root, self.user) {
            // As the root's systemd sees it, as --state-dir: a path of this
            // machine's there was written where that systemd never looks.
            (Some(dir), Some(root), _) => root.join(dir.strip_prefix("/").unwrap_or(dir)),
            (Some(dir), None, _) => dir.clone(),
            (None, Some(root), _) => root.join("etc/systemd/system"),
            (None, None, true) => home()?.join(".config/systemd/user"),
            (None, None, false) => PathBuf::from("/etc/systemd/system"),
        };
        let bus = self.bus.clone().or_else(|| {
            self.root.as_ref().map(|root| {
                format!(
                    "unix:path={}",
                    root.join("run/dbus/system_bus_socket").display()
                )
            })
        });
        let host = Host {
            unit_dir,
            bus,
            user: self.user,
            root: self.root.clone(),
        };
        // This command acts on that host: its docker calls look at the
        // engine the host's units use.
        let units_host = host.clone();
        crate::docker::environment::follow(move || units_host.docker_environment());
        Ok(host)
    }

    /// Units for a user's manager differ from the system's (no
    /// docker.service, default.target); units name secrets files by the
    /// path the host's systemd sees.
    pub fn renderer(&self) -> Result<Renderer> {
        let flavour = if self.user {
            Flavour::User
        } else {
            Flavour::System
        };
        Ok(Renderer::new(flavour).with_state_dir(self.state_dir_seen_by_units()?))
    }

    /// The state directory as unitgen reaches it: with --root, under DIR
    /// (the units there, which read and write it too, see the path inside).
    pub fn state_dir(&self) -> Result<PathBuf> {
        let seen = self.state_dir_seen_by_units()?;
        Ok(match &self.root {
            Some(root) => root.join(seen.strip_prefix("/").unwrap_or(&seen)),
            None => seen,
        })
    }

    /// The state directory as the host's own systemd sees it: with --root,
    /// the path inside that root.
    pub fn state_dir_seen_by_units(&self) -> Result<PathBuf> {
        default_state_dir(self.state_dir.as_deref(), self.user)
    }

    /// The instance's state. One this user may not read (a system host's
    /// is root's, mode 0700: it holds the digests of the secrets) is said
    /// at once, with what to do, not as the first of its files that could
    /// not be read.
    pub fn state(&self, app: &str, instance: &str) -> Result<InstanceState> {
        let state = InstanceState::new(&self.state_dir()?, app, instance);
        match std::fs::read_dir(state.dir()) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(miette::miette!(
                help = "run it as root (sudo unitgen …); a --user host keeps its state in your own folder",
                "cannot read the state of instance `{instance}` of `{app}` in {}: {e}; \
                 it is root's (mode 0700: it holds the digests of the instance's secrets)",
                state.dir().display()
            )),
            _ => Ok(state),
        }
    }

    /// Locks an instance for a change by `command` (`apply`, …), saying so
    /// if another process holds it, and who when a unitgen does.
    pub fn lock(&self, command: &str, app: &str, instance: &str) -> Result<(InstanceState, Lock)> {
        let state = self.state(app, instance)?;
        let dir = self.state_dir()?;
        let lock = state
            .lock(&Holder::this(command), |holder| {
                crate::say!("{}", waiting_for(app, instance, holder))
            })
            .into_diagnostic()
            .wrap_err_with(|| {
                format!(
                    "locking {app}-{instance} in {}",
                    crate::diagnostic::shown_path(&dir)
                )
            })?;
        Ok((state, lock))
    }

    pub fn installed(&self, app: &str, instance: &str) -> Result<Vec<UnitFile>> {
        let host = self.host()?;
        unit_dir::read_installed(&host.unit_dir, app, instance)
            .into_diagnostic()
            .wrap_err_with(|| {
                format!(
                    "reading units in {}",
                    crate::diagnostic::shown_path(&host.unit_dir)
                )
            })
    }
}

/// `--state-dir`, or the default for the system's or the user's manager.
pub fn default_state_dir(given: Option<&std::path::Path>, user: bool) -> Result<PathBuf> {
    let dir = match (given, user) {
        // Absolute: units (the backup's, secrets' env files) name it.
        (Some(dir), _) => std::path::absolute(dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("--state-dir {}", crate::diagnostic::shown_path(dir)))?,
        (None, true) => home()?.join(".local/state/unitgen"),
        (None, false) => PathBuf::from(DEFAULT_STATE_DIR),
    };
    // Units name it: as text, which systemd takes in `Environment=` only
    // without control characters.
    match dir.to_str() {
        Some(text) if !text.chars().any(char::is_control) => Ok(dir),
        _ => Err(miette::miette!(
            help = "give another folder with --state-dir",
            "the state directory {:?} is not UTF-8 text without control characters, which units can name",
            dir
        )),
    }
}

impl HostArgs {
    /// The app an instance belongs to, for the commands that act on what is
    /// installed (status, rollback, destroy): from the template if it can be
    /// read; otherwise from the installed units and the state directory
    /// alone, so that a broken or deleted template cannot keep anyone from
    /// inspecting or removing what runs.
    ///
    /// `target` is `INSTANCE` or `APP/INSTANCE` (see `FileArgs::select`);
    /// the app and the instance are returned.
    pub fn app_of(&self, file: &FileArgs, target: &str) -> Result<(String, String)> {
        let problem = match file.app_and_instance(target) {
            Ok(found) => return Ok(found),
            Err(problem) => miette::Report::new(problem),
        };
        let instance = target;
        let mut apps = self.installed_apps(instance);
        apps.sort();
        apps.dedup();
        match apps.as_slice() {
            [app] => {
                let first = format!("{problem}");
                crate::say!(
                    "warning: {} could not be read ({}); acting on what is installed for app {app}",
                    crate::diagnostic::shown_path(&file.path()),
                    first.lines().next().unwrap_or_default()
                );
                Ok((app.clone(), instance.to_string()))
            }
            [] => Err(problem),
            several => Err(problem.wrap_err(format!(
                "the template cannot be read, and several apps have an instance `{instance}` \
                 installed ({}): fix the template to choose one, or name it APP/INSTANCE",
                several.join(", ")
            ))),
        }
    }

    /// The apps with an instance of that name in the unit directory or the
    /// state directory (read from the `[X-Unitgen]` section of their units).
    fn installed_apps(&self, instance: &str) -> Vec<String> {
        let suffix = format!("-{instance}");
        let entries = |dir: &Path| -> Vec<PathBuf> {
            let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
            entries.map(|e| e.path()).collect()
        };
        let name_of = |path: &Path| path.file_name().map(|n| n.to_string_lossy().into_owned());
        let mut units = Vec::new();
        if let Ok(host) = self.host() {
            units.extend(entries(&host.unit_dir).into_iter().filter(|path| {
                name_of(path)
                    .is_some_and(|n| n.ends_with(".service") && n.contains(&format!("{suffix}-")))
            }));
        }
        if let Ok(dir) = self.state_dir() {
            for folder in entries(&dir) {
                if !name_of(&folder).is_some_and(|n| n.ends_with(&suffix)) {
                    continue;
                }
                // The latest revision; `.NNNN.tmp` folders are unfinished.
                let latest = entries(&folder.join("revisions"))
                    .into_iter()
                    .filter(|p| name_of(p).is_some_and(|n| !n.starts_with('.')))
                    .max();
                if let Some(latest) = latest {
                    units.extend(entries(&latest));
                }
            }
        }
        units
            .iter()
            .filter(|path| name_of(path).is_some_and(|n| n.ends_with(".service")))
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .filter_map(|text| render::owner(&text))
            .filter(|owner| owner.instance == instance)
            .map(|owner| owner.app)
            .collect()
    }
}

/// The user's home, for `--user` defaults; refusing rather than guessing.
fn home() -> Result<PathBuf> {
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => Ok(PathBuf::from(home)),
        _ => Err(miette::miette!(
            "HOME is not set: pass --unit-dir and --state-dir with --user"
        )),
    }
}

/// What a command that waits for an instance's lock says: whom it waits
/// for, as read back from the lock file (whoever wrote it), on one line.
fn waiting_for(app: &str, instance: &str, holder: Option<Holder>) -> String {
    let Some(Holder {
        command,
        pid,
        user,
        since,
    }) = holder
    else {
        return format!("waiting for another unitgen working on {app}-{instance} to finish...");
    };
    format!(
        "waiting for another unitgen working on {app}-{instance} to finish: `unitgen {}` of \
         user {}, pid {pid}, since {}...",
        crate::diagnostic::shown(&command),
        crate::diagnostic::shown(&user),
        super::when::iso(since)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_holder_is_told_on_one_line() {
        let holder = Holder {
            command: "apply\nwaiting for nothing: done\u{1b}[2J".to_string(),
            pid: 7,
            user: "al\rice".to_string(),
            since: 0,
        };
        assert_eq!(
            waiting_for("shop", "live", Some(holder)),
            "waiting for another unitgen working on shop-live to finish: `unitgen \
             apply\\nwaiting for nothing: done\\u{1b}[2J` of user al\\rice, pid 7, since \
             1970-01-01T00:00:00Z..."
        );
    }
}
