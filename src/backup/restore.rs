//! `unitgen restore`: put a snapshot's data back into an instance (its
//! own, or another instance of the same app), through the host's systemd
//! and Docker.
//!
//! Order, and why: the instance's services (and its backup timer) stop
//! first, so nothing writes while volumes are replaced; each volume is
//! emptied and refilled from its tar in the snapshot; then each service
//! that was dumped is started alone (its start job waits until it is
//! running, or healthy when it has a healthcheck) and its restore command
//! reads the dump; last, everything that was stopped starts again.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use super::Repository;
use crate::fault;
use crate::model::backup::{Backup, Consistency, dump_path, volume_path};
use crate::model::{Instance, VolumeSource};
use crate::progress::Progress;
use crate::pull::{self, PullPolicy};
use crate::render::{UnitFile, owner};
use crate::systemd::converge::Host;
use crate::systemd::{JobKind, JobResult, Systemd};

/// One service's share of a restore, in the target instance's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub service: String,
    pub unit: String,
    pub container: String,
    /// (name in the snapshot, the target's Docker volume).
    pub volumes: Vec<(String, String)>,
    /// The command that reads the service's dump, when it was dumped.
    pub restore: Option<String>,
}

/// What restoring a snapshot of `source` (its backup settings) into
/// `target` replaces. Only the target's own volumes (named after its
/// prefix) are ever written.
pub fn parts(source: &Backup, target: &Instance) -> Result<Vec<Part>, String> {
    let prefix = format!("{}-", target.prefix());
    let mut parts = Vec::new();
    for part in &source.services {
        let service = target
            .service(&part.service)
            .ok_or_else(|| format!("{} has no service `{}`", target.prefix(), part.service))?;
        let mut volumes = Vec::new();
        for volume in &part.volumes {
            let docker_name = service
                .volumes
                .iter()
                .find_map(|v| match &v.source {
                    VolumeSource::Named {
                        docker_name,
                        external: false,
                    } if docker_name.strip_prefix(&prefix) == Some(volume.name.as_str()) => {
                        Some(docker_name.clone())
                    }
                    _ => None,
                })
                .ok_or_else(|| {
                    format!(
                        "service `{}` of {} has no volume `{}` of its own",
                        part.service,
                        target.prefix(),
                        volume.name
                    )
                })?;
            volumes.push((volume.name.clone(), docker_name));
        }
        // The target's own restore command, compiled with its values.
        let own = target
            .backup
            .as_ref()
            .and_then(|b| b.services.iter().find(|s| s.service == part.service))
            .map(|s| &s.consistency);
        let restore = match (own, &part.consistency) {
            (Some(Consistency::Dump { restore, .. }), _)
            | (None, Consistency::Dump { restore, .. }) => Some(restore.clone()),
            _ => None,
        };
        parts.push(Part {
            service: part.service.clone(),
            unit: target.service_unit(&part.service),
            container: target.container(&part.service),
            volumes,
            restore,
        });
    }
    Ok(parts)
}

/// Fits `parts` to what the snapshot holds (`paths`, see
/// [`Repository::paths`]): the volume set may have changed since it was
/// taken. A volume or dump the instance backs up now but the snapshot
/// lacks (added since) is left as it is; one the snapshot has but the
/// instance no longer backs up (removed, or renamed: its data is under the
/// old name) is not restored. Each is said in a note, before anything
/// stops, rather than the restore failing halfway with the services down.
pub fn fit(parts: &mut [Part], paths: &BTreeSet<String>) -> Vec<String> {
    let mut notes = Vec::new();
    for part in parts.iter_mut() {
        part.volumes.retain(|(name, volume)| {
            let held = paths.contains(&volume_path(name));
            if !held {
                notes.push(format!(
                    "volume {volume} is left as it is: the snapshot has no copy of volume `{name}` \
                     (added to the backup since?)"
                ));
            }
            held
        });
        if part.restore.is_some() && !paths.contains(&dump_path(&part.service)) {
            notes.push(format!(
                "the data of {} is left as it is: the snapshot has no dump of it (dumped since?)",
                part.service
            ));
            part.restore = None;
        }
    }
    let wanted: BTreeSet<String> = (parts.iter())
        .flat_map(|p| p.volumes.iter().map(|(name, _)| volume_path(name)))
        .chain(
            (parts.iter())
                .filter(|p| p.restore.is_some())
                .map(|p| dump_path(&p.service)),
        )
        .collect();
    // These names are the repository's: anyone who can write to it can
    // plant a path with a line feed or an escape sequence.
    let shown = crate::diagnostic::shown;
    for path in paths.difference(&wanted) {
        if let Some(name) = (path.strip_prefix("/volumes/")).and_then(|p| p.strip_suffix(".tar")) {
            notes.push(format!(
                "the snapshot's copy of volume `{}` is not restored: the instance backs up no \
                 volume of that name now (removed or renamed since?)",
                shown(name)
            ));
        } else if let Some(service) = path.strip_prefix("/dumps/") {
            notes.push(format!(
                "the snapshot's dump of {} is not restored: the instance does not dump it now",
                shown(service)
            ));
        }
    }
    notes
}

/// Makes sure the helper image that writes the volumes is on the host
/// (pulled when missing) before anything is stopped: else each volume's
/// writer failed to start with the services already down.
pub fn fetch_helper(image: &str, progress: &Progress) -> Result<(), String> {
    let images = BTreeSet::from([image.to_string()]);
    pull::fetch(&images, PullPolicy::Missing, progress)
        .map_err(|unavailable| pull::describe(&unavailable, &images))
}

/// Everything the restore needs to know.
pub struct Restore<'a> {
    pub host: &'a Host,
    pub repository: &'a Repository,
    pub snapshot: &'a str,
    /// The image whose `sh` and `tar` write volume data.
    pub helper_image: &'a str,
    pub target: &'a Instance,
    pub parts: &'a [Part],
    /// The target's installed units.
    pub installed: &'a [UnitFile],
}

impl Restore<'_> {
    pub fn run(&self, progress: &Progress) -> Result<(), String> {
        let systemd = self.host.connect().map_err(|f| f.message)?;
        let services: Vec<String> = self
            .installed
            .iter()
            .filter(|u| owner(&u.text).is_some_and(|o| o.service.is_some()))
            .map(|u| u.name.clone())
            .collect();
        let backup_unit = self.target.backup_unit();
        let timer = backup_unit.replace(".service", ".timer");
        let timer_installed = self.installed.iter().any(|u| u.name == timer);

        progress.line(&format!("stopping {}", services.join(", ")));
        let mut stops = services.clone();
        stops.push(backup_unit);
        if timer_installed {
            stops.push(timer.clone());
        }
        jobs(&systemd, JobKind::Stop, &stops)?;
        fault::point("after-stop");

        for part in self.parts {
            for (name, volume) in &part.volumes {
                progress.line(&format!("restoring volume {volume}"));
                // A writer a killed restore left may still be at work on
                // the volume: it goes before this one starts.
                remove_container(&writer_name(volume))?;
                pipe(
                    self.repository.dump(self.snapshot, &volume_path(name)),
                    self.volume_writer(volume),
                )
                .map_err(|e| format!("restoring volume {volume}: {e}"))?;
                fault::point("after-restore-volume");
            }
        }
        for part in self.parts {
            let Some(restore) = &part.restore else {
                continue;
            };
            progress.line(&format!("starting {} to restore its dump", part.unit));
            jobs(&systemd, JobKind::Start, std::slice::from_ref(&part.unit))?;
            let mut reader = crate::docker::command();
            reader
                .args(["exec", "-i", &part.container])
                .args(reader_command(restore))
                .stdout(Stdio::null());
            pipe(
                self.repository
                    .dump(self.snapshot, &dump_path(&part.service)),
                reader,
            )
            .map_err(|e| format!("restoring the dump of {}: {e}", part.service))?;
            fault::point("after-restore-dump");
        }

        let mut starts = services;
        if timer_installed {
            starts.push(timer);
        }
        progress.line(&format!("starting {}", starts.join(", ")));
        jobs(&systemd, JobKind::Start, &starts)?;
        fault::point("after-start");
        Ok(())
    }

    /// A helper container that empties a volume, then unpacks a tar from
    /// its standard input into it.
    fn volume_writer(&self, volume: &str) -> Command {
        let mut cmd = crate::docker::command();
        cmd.args([
            "run",
            "--rm",
            "-i",
            "--network=none",
            "--name",
            &writer_name(volume),
            // Not the image's ENTRYPOINT, if it has one: its `sh` itself.
            "--entrypoint",
            "sh",
            "--volume",
            &format!("{volume}:/data"),
            self.helper_image,
            "-c",
            // Globs that match nothing stay as written; `rm -f` ignores them.
            "cd /data && rm -rf -- * .[!.]* ..?* && tar -x -f - -C /data",
        ])
        .stdout(Stdio::null());
        cmd
    }
}

/// The name (`$0`) of the shell that runs a service's restore command in
/// its container, which `docker top` shows.
pub const READER: &str = "unitgen-restore-reader";

/// What `docker exec` runs in the container to read a dump: a shell named
/// [`READER`] that stays the parent (its `exit $?` comes after), so the
/// next plan finds it if unitgen dies meanwhile, and that runs `restore`
/// as `sh -c` runs it alone (as the dump's command runs). The command is
/// an argument, never joined to the script: joined, a restore ending in
/// `|`, `&&` or an open here-document took `exit $?` in, and a restore
/// that could not even be parsed read nothing and was called done.
fn reader_command(restore: &str) -> [&str; 5] {
    ["sh", "-c", "sh -c \"$1\"; exit $?", READER, restore]
}

/// The helper container that writes `volume` (`.` is in no container name
/// of a service).
fn writer_name(volume: &str) -> String {
    format!("{volume}.restore")
}

/// Removes a container, if there is one by that name.
fn remove_container(name: &str) -> Result<(), String> {
    let out = crate::docker::command()
        .args(["rm", "--force", name])
        .output()
        .map_err(|e| format!("running {}: {e}", crate::docker::DOCKER))?;
    let why = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || why.contains("No such container") {
        Ok(())
    } else {
        Err(format!(
            "removing container {name}: {}",
            crate::diagnostic::quoted_output(&why)
        ))
    }
}

/// Runs one batch of jobs; any result but done (or, for a stop, a unit
/// that is not there) is an error.
fn jobs(systemd: &Systemd, kind: JobKind, units: &[String]) -> Result<(), String> {
    let outcomes = systemd.run_jobs(kind, units).map_err(|e| e.to_string())?;
    for outcome in outcomes {
        let fine = outcome.result == JobResult::Done
            || (kind == JobKind::Stop && outcome.result == JobResult::NotLoaded);
        if !fine {
            return Err(format!("{}: job {}", outcome.unit, outcome.result));
        }
    }
    Ok(())
}

/// `from | to`, both checked. Both die with unitgen (see
/// [`dies_with_unitgen`]).
fn pipe(mut from: Command, mut to: Command) -> Result<(), String> {
    dies_with_unitgen(&mut from);
    dies_with_unitgen(&mut to);
    let mut source = from
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running restic: {e}"))?;
    let stdout = source.stdout.take().expect("dump's stdout is piped");
    let sink = to
        .stdin(Stdio::from(stdout))
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running {}: {e}", crate::docker::DOCKER));
    let source = source
        .wait_with_output()
        .map_err(|e| format!("waiting for restic: {e}"))?;
    if !source.status.success() {
        return Err(format!(
            "restic dump failed: {}",
            crate::diagnostic::quoted_output(&String::from_utf8_lossy(&source.stderr))
        ));
    }
    let sink = sink?;
    if !sink.status.success() {
        return Err(format!(
            "writing failed ({}): {}",
            sink.status,
            crate::diagnostic::quoted_output(&String::from_utf8_lossy(&sink.stderr))
        ));
    }
    Ok(())
}

/// Makes the process `cmd` starts get SIGTERM when unitgen dies, however it
/// dies (`kill -9` too). Otherwise a restore killed halfway left its restic
/// dump and its `docker run`/`docker exec` running, still writing into the
/// instance's volume or database while the next command (the restore run
/// again, or an apply that starts the services) went on. SIGTERM, not
/// SIGKILL: restic then removes its lock from the repository, and `docker
/// run` passes the signal on to its container.
///
/// The kernel sends the signal when the thread that spawned the process
/// ends: `pipe` spawns and waits on one thread.
fn dies_with_unitgen(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: prctl and getppid are, and
    // it allocates nothing (the error is a raw OS error).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // unitgen died before the prctl: no signal would come.
            if u32::try_from(libc::getppid()) != Ok(parent) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(service: &str, volumes: &[&str], dumped: bool) -> Part {
        Part {
            service: service.into(),
            unit: format!("a-i-{service}.service"),
            container: format!("a-i-{service}"),
            volumes: (volumes.iter())
                .map(|v| (v.to_string(), format!("a-i-{v}")))
                .collect(),
            restore: dumped.then(|| "read it".to_string()),
        }
    }

    /// The reader, run by the host's `sh` as the container's runs it:
    /// each restore command gets the whole dump and ends as it would alone.
    #[test]
    fn a_restore_command_runs_as_it_would_alone_whatever_it_ends_with() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let out = crate::escape::sh_quote(&out.to_string_lossy());
        let run = |restore: &str| {
            let mut reader = reader_command(restore).map(String::from);
            let mut sh = Command::new(&reader[0]);
            sh.args(&mut reader[1..])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = sh.spawn().unwrap();
            // One that could not be parsed reads nothing, and may have
            // ended (its pipe closed: EPIPE) before the dump is written.
            let _ = child.stdin.take().unwrap().write_all(b"the dump\n");
            child.wait().unwrap().code()
        };
        let alone = |restore: &str| {
            Command::new("sh")
                .args(["-c", restore])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .code()
        };
        for restore in [
            format!("cat > {out} |"),
            format!("cat > {out} &&"),
            format!("cat > {out} \\"),
            format!("cat > {out} <<EOF"),
            format!("cat > {out} # comment"),
            format!("cat > {out}; exit 3"),
            format!("exec cat > {out}"),
        ] {
            assert_eq!(run(&restore), alone(&restore), "{restore}");
        }
        // Each could not be parsed, or read no dump: the restore fails.
        for restore in [format!("cat > {out} |"), format!("cat > {out} &&")] {
            assert_eq!(run(&restore), Some(2), "{restore}");
        }
        let _ = std::fs::remove_file(dir.path().join("out"));
        assert_eq!(run(&format!("cat > {out}")), Some(0));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).unwrap(),
            "the dump\n"
        );
    }

    #[test]
    fn what_the_snapshot_lacks_is_left_and_what_the_instance_lacks_is_named() {
        let mut parts = vec![
            part("files", &["files", "added"], false),
            part("db", &[], true),
        ];
        let paths = BTreeSet::from(
            [
                "/volumes",
                "/volumes/files.tar",
                "/volumes/old.tar",
                "/dumps",
                "/dumps/cache",
            ]
            .map(String::from),
        );
        let notes = fit(&mut parts, &paths);
        assert_eq!(
            parts,
            [part("files", &["files"], false), part("db", &[], false)]
        );
        assert_eq!(notes.len(), 4, "{notes:#?}");
        assert!(notes[0].starts_with("volume a-i-added is left as it is"));
        assert!(notes[1].starts_with("the data of db is left as it is"));
        assert!(notes[2].contains("the snapshot's dump of cache is not restored"));
        assert!(notes[3].contains("the snapshot's copy of volume `old` is not restored"));
    }
}
