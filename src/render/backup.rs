//! An instance's backup units: the backup oneshot and its timer, the
//! repository check and its timer, and the failure hook. Their shapes are
//! `templates/units/backup*.j2`; this module computes their command lines.
//!
//! Volume data is read and written through Docker (`docker run` of a helper
//! image with the volume mounted, `tar` on its standard output or input),
//! not from `/var/lib/docker/volumes/…` on the host: that works the same
//! with any data root, with rootless or remote engines, and keeps owners
//! and modes exactly; the price is a staged copy of each volume on the
//! host while the snapshot is taken.

use minijinja::context;

use minijinja::Value;

use super::docker::DOCKER;
use super::{Flavour, Renderer, UnitFile, escaped, shell, with_digest};
use crate::escape::{sh_quote, systemd_environment, systemd_value};
use crate::model::Instance;
use crate::model::backup::{self, Backup, Consistency, ServiceBackup};
use crate::state::{Restoring, UnderWay as _};

/// How the last run ended, written by the backup unit's `ExecStopPost=`
/// into the instance's state folder (see `crate::backup::LastRun`).
const LAST_RUN_FILE: &str = crate::backup::LastRun::FILE;

/// Where the units stage dumps and volume copies, under `CacheDirectory=`.
const STAGING: &str = "\"$CACHE_DIRECTORY/staging\"";

/// A FIFO in the backup unit's runtime folder that nothing writes to: the
/// standard input of a step's `docker exec -i` (a dump), held
/// open by the step's shell (fd 7) while it runs. It ends when the shell
/// or the client dies, which ends what the client runs in the container
/// (see [`backup::ends_with_client`]).
const CLIENT_INPUT: &str = "\"$RUNTIME_DIRECTORY/client-input\"";

impl Renderer {
    pub(super) fn backup_units(&self, instance: &Instance, backup: &Backup) -> Vec<UnitFile> {
        let prefix = instance.prefix();
        let hook = backup
            .on_failure
            .as_ref()
            .map(|_| format!("{prefix}-backup-failed@%n.service"));
        let common = context! {
            app => &instance.app,
            instance => &instance.instance,
            prefix => &prefix,
            runtime_directory => backup::runtime_directory(&prefix),
            repository => systemd_environment("RESTIC_REPOSITORY", &backup.repository),
            password_file => systemd_environment("RESTIC_PASSWORD_FILE", &backup.password_file),
            environment_file => backup.environment_file.as_deref().map(systemd_value),
            on_failure => hook,
            lock => backup::lock_file(&backup.repository),
        };
        let backup_unit = instance.backup_unit();
        let check_unit = format!("{prefix}-backup-check.service");
        let mut units = vec![
            UnitFile {
                name: backup_unit.clone(),
                text: with_digest(self.fill(
                    "backup.j2",
                    context! {
                        description => systemd_value(&format!(
                            "{} {}: back up to {}", instance.app, instance.instance, backup.repository
                        )),
                        what => what_is_saved(backup),
                        timer => timer_name(&backup_unit),
                        requires => self.docker_dependency(),
                        state => systemd_environment(
                            "UNITGEN_STATE",
                            &self.state_dir.join(&prefix).to_string_lossy(),
                        ),
                        helper_image => systemd_value(&backup.helper_image),
                        // (unitgen's own words: `hmac-sha256:<hex>` or `missing`.)
                        password_digest => backup.password_digest.as_deref().map(systemd_value),
                        prepare => shell(&prepare_script(backup, &prefix, &self.state_dir.join(&prefix).to_string_lossy())),
                        steps => backup_steps(instance, backup),
                        resume => escaped(format!("-{}", shell(&resume_script(instance, backup, &prefix, &self.state_dir.join(&prefix).to_string_lossy())))),
                        ..common.clone()
                    },
                )),
            },
            UnitFile {
                name: check_unit.clone(),
                text: with_digest(self.fill(
                    "backup-check.j2",
                    context! {
                        description => systemd_value(&format!(
                            "{} {}: check the backup repository {}", instance.app, instance.instance, backup.repository
                        )),
                        timer => timer_name(&check_unit),
                        check => shell(&check_script(backup, &prefix)),
                        ..common.clone()
                    },
                )),
            },
        ];
        for (unit, schedule, delay, what) in [
            (
                &backup_unit,
                &backup.schedule,
                backup.randomized_delay_seconds,
                "back up",
            ),
            (
                &check_unit,
                &backup.check,
                backup.randomized_delay_seconds,
                "check the backups",
            ),
        ] {
            units.push(UnitFile {
                name: timer_name(unit),
                text: with_digest(self.fill(
                    "backup-timer.j2",
                    context! {
                        description => systemd_value(&format!(
                            "{} {}: {what} on schedule", instance.app, instance.instance
                        )),
                        schedule => systemd_value(schedule),
                        randomized_delay => format!("{delay}s"),
                        unit => unit,
                        wanted_by => match self.flavour {
                            Flavour::User => "default.target",
                            _ => "timers.target",
                        },
                        ..common.clone()
                    },
                )),
            });
        }
        if let Some(command) = &backup.on_failure {
            units.push(UnitFile {
                name: format!("{prefix}-backup-failed@.service"),
                text: with_digest(self.fill(
                    "backup-failed.j2",
                    context! {
                        description => systemd_value(&format!(
                            "{} {}: backup failure hook", instance.app, instance.instance
                        )),
                        command => shell(std::slice::from_ref(command)),
                        ..common
                    },
                )),
            });
        }
        units
    }
}

fn timer_name(service_unit: &str) -> String {
    format!("{}.timer", service_unit.trim_end_matches(".service"))
}

/// For the unit's header comment: `db (dump), files (volume files, paused)`.
fn what_is_saved(backup: &Backup) -> String {
    backup
        .services
        .iter()
        .map(|s| {
            let volumes: Vec<&str> = s.volumes.iter().map(|v| v.name.as_str()).collect();
            match (&s.consistency, volumes.is_empty()) {
                (Consistency::Dump { .. }, true) => format!("{} (dump)", s.service),
                (Consistency::Dump { .. }, false) => {
                    format!("{} (dump; volumes {})", s.service, volumes.join(", "))
                }
                (c, _) => format!(
                    "{} (volumes {}, {})",
                    s.service,
                    volumes.join(", "),
                    c.as_str()
                ),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fails the run when `environment_file` set a variable it may not (see
/// [`backup::Refused`]): systemd lets the file's win over `Environment=`,
/// so a `RESTIC_REPOSITORY` there (as restic's guides write such files)
/// sent the backups to another repository than the one `unitgen backups`,
/// `restore`, `status` and the docs read. What the unit or systemd sets is
/// checked by its value: the cache and runtime folders (a `CACHE_DIRECTORY`
/// there made the backup empty another folder's `staging`) and, unset
/// before `ExecStopPost=`, how the run ended. What the manager gives the
/// unit (`PATH`, `DOCKER_HOST`, …) is refused when the file's lines set it
/// ([`file_refusal_lines`]). `state`: the backup unit's `UNITGEN_STATE`
/// (None: the check unit, which has neither that nor a runtime folder).
fn own_variables_lines(backup: &Backup, prefix: &str, state: Option<&str>) -> Vec<String> {
    let Some(file) = &backup.environment_file else {
        return Vec::new();
    };
    let cache = sh_quote(&format!("/{}/restic", backup::runtime_directory(prefix)));
    let unset = |variable: &str| format!("[ -z \"${{{variable}+set}}\" ]");
    let mut checks = own_folder_checks(prefix, state.is_some());
    checks.extend([
        (
            "RESTIC_REPOSITORY",
            format!(
                "[ \"$RESTIC_REPOSITORY\" = {} ]",
                sh_quote(&backup.repository)
            ),
        ),
        (
            "RESTIC_PASSWORD_FILE",
            format!(
                "[ \"$RESTIC_PASSWORD_FILE\" = {} ]",
                sh_quote(&backup.password_file)
            ),
        ),
        // Under the unit's cache folder, `%C`, which the script cannot name.
        (
            "RESTIC_CACHE_DIR",
            format!("case $RESTIC_CACHE_DIR in *{cache}) true;; *) false;; esac"),
        ),
        ("SERVICE_RESULT", unset("SERVICE_RESULT")),
        ("EXIT_CODE", unset("EXIT_CODE")),
    ]);
    if state.is_none() {
        checks.push(("RUNTIME_DIRECTORY", unset("RUNTIME_DIRECTORY")));
    }
    if let Some(state) = state {
        checks.push((
            "UNITGEN_STATE",
            format!("[ \"$UNITGEN_STATE\" = {} ]", sh_quote(state)),
        ));
    }
    checks.sort_by_key(|(variable, _)| {
        backup::REFUSED_VARIABLES
            .iter()
            .position(|(v, _)| v == variable)
            .expect("a variable of REFUSED_VARIABLES")
    });
    let mut lines = file_refusal_lines(file);
    lines.push("[ -z \"$refused\" ] || { echo \"$refused\" >&2; exit 1; };".into());
    lines.extend(checks.into_iter().map(|(variable, check)| {
        let why = backup::Refused::of(variable).expect("a refused variable");
        format!(
            "{check} || {{ echo {} >&2; exit 1; }};",
            sh_quote(&why.message(file, variable))
        )
    }));
    lines
}

/// Sets `refused` to the refusal of the first line of `file` that assigns
/// a variable the manager gives the unit and the file may not change
/// ([`backup::Refused`] but for what the unit or systemd sets, which is
/// checked by its value), else to nothing. The unit cannot tell the
/// manager's `PATH` or `DOCKER_HOST` from the file's by its environment, so
/// it reads the file's lines, as systemd splits them into names: blanks
/// around the name, `#` and `;` lines no assignment. Shell builtins only:
/// the file's `PATH` and `LD_PRELOAD` choose no program here.
fn file_refusal_lines(file: &str) -> Vec<String> {
    let mut arms: Vec<(backup::Refused, Vec<&str>)> = Vec::new();
    for (pattern, why) in backup::REFUSED_VARIABLES {
        if matches!(why, backup::Refused::Template | backup::Refused::Systemd) {
            continue;
        }
        match arms.iter_mut().find(|(w, _)| *w == why) {
            Some((_, patterns)) => patterns.push(pattern),
            None => arms.push((why, vec![pattern])),
        }
    }
    let mut lines = vec![
        "refused=;".to_string(),
        "while IFS= read -r line || [ -n \"$line\" ]; do".into(),
        "  name=${line%%=*};".into(),
        "  [ \"$name\" != \"$line\" ] || continue;".into(),
        "  name=${name#\"${name%%[![:blank:]]*}\"};".into(),
        "  name=${name%\"${name##*[![:blank:]]}\"};".into(),
        "  case $name in ''|[0-9]*|*[!A-Za-z0-9_]*) continue;; esac;".into(),
        "  case $name in".into(),
    ];
    for (why, patterns) in arms {
        // The name is the one shell word of the message that is not quoted.
        let message = why.message(file, "\0");
        let (before, after) = message.split_once('\0').expect("the name in the message");
        lines.push(format!(
            "    {}) refused={}\"$name\"{}; break;;",
            patterns.join("|"),
            sh_quote(before),
            sh_quote(after)
        ));
    }
    lines.push("  esac;".into());
    lines.push(format!("done < {};", sh_quote(file)));
    lines
}

/// The checks that `CACHE_DIRECTORY` (and with `runtime`,
/// `RUNTIME_DIRECTORY`) are the unit's own folders, which systemd names
/// under `%C` and `%t` (the script cannot name those: it checks the end).
fn own_folder_checks(prefix: &str, runtime: bool) -> Vec<(&'static str, String)> {
    let own = sh_quote(&format!("/{}", backup::runtime_directory(prefix)));
    let mut checks = vec![(
        "CACHE_DIRECTORY",
        format!("case $CACHE_DIRECTORY in *{own}) true;; *) false;; esac"),
    )];
    if runtime {
        checks.push((
            "RUNTIME_DIRECTORY",
            format!("case $RUNTIME_DIRECTORY in *{own}) true;; *) false;; esac"),
        ));
    }
    checks
}

/// Takes the repository's lock (see [`backup::lock_file`]), waiting for
/// the backup or check of another unit that holds it, and says so in the
/// log. Held by the script until it ends.
fn lock_lines(backup: &Backup) -> Vec<String> {
    let lock = sh_quote(&backup::lock_file(&backup.repository));
    vec![
        format!("exec 9>>{lock};"),
        "flock -n 9 || { echo 'waiting for another backup or check of this repository to finish'; flock 9; };".into(),
    ]
}

/// Refuses secrets others can read, creates the repository on first use
/// (only when restic says there is none: a wrong password or an unreachable
/// server is an error, said as restic says it), and clears stale locks
/// (left by a restic that was killed).
fn prepare_script(backup: &Backup, prefix: &str, state: &str) -> Vec<String> {
    let mut script = own_variables_lines(backup, prefix, Some(state));
    let files = std::iter::once(&backup.password_file).chain(&backup.environment_file);
    for file in files {
        script.push(format!("case $(stat -L -c %a {}) in", sh_quote(file)));
        script.push("  *00) ;;".into());
        script.push(format!(
            "  *) echo {} >&2; exit 1;;",
            sh_quote(&format!(
                "{file} is readable by others than its owner: chmod 600 it"
            ))
        ));
        script.push("esac;".into());
    }
    // Not while unitgen changes the instance (apply, rollback, restore
    // hold its lock): wait for it, then go on, marked as past it while it
    // is held (see `backup::await_running` for the other way round).
    script.extend([
        "mkdir -p \"$UNITGEN_STATE\";".into(),
        "exec 8>>\"$UNITGEN_STATE/lock\";".into(),
        "flock -n 8 || { echo 'waiting for unitgen to finish changing this instance'; flock 8; };"
            .into(),
        format!(": > \"$RUNTIME_DIRECTORY/{}\";", backup::PAST_LOCK),
        "exec 8>&-;".into(),
    ]);
    // A restore that did not finish may have left the data half restored:
    // backed up, it would become the newest snapshot and, by retention,
    // push out the good ones. The run fails instead (its hook runs).
    script.push(format!(
        "if [ -e \"$UNITGEN_STATE/{}\" ]; then echo {} >&2; exit 1; fi;",
        Restoring::FILE,
        sh_quote(
            "a restore of this instance did not finish: its data may be half restored, and is \
             not backed up until the restore, run again, finishes it (see unitgen status)"
        )
    ));
    // The helper image copies the volumes: one removed since apply (an
    // image prune: no container uses it between runs) is pulled, and one
    // that cannot be had fails the run here, saying which setting names it,
    // before any service is paused or stopped for a copy that cannot run.
    if backup.services.iter().any(|s| !s.volumes.is_empty()) {
        let helper = sh_quote(&backup.helper_image);
        script.push(format!(
            "{DOCKER} image inspect {helper} >/dev/null 2>&1 || {DOCKER} pull --quiet {helper} >/dev/null || {{ echo {} >&2; exit 1; }};",
            sh_quote(&crate::pull::helper_hint(&backup.helper_image))
        ));
    }
    script.extend(lock_lines(backup));
    script.push("if ! out=$(restic cat config 2>&1 >/dev/null); then".into());
    script.push("  case $out in".into());
    script.push("    *'Is there a repository at the following location?'*) restic init;;".into());
    script.push("    *) echo \"$out\" >&2; exit 1;;".into());
    script.push("  esac;".into());
    script.push("fi;".into());
    script.push("restic unlock".into());
    script
}

/// The check unit's one command: under the repository's lock, clear stale
/// locks, then `restic check`.
fn check_script(backup: &Backup, prefix: &str) -> Vec<String> {
    let mut script = own_variables_lines(backup, prefix, None);
    script.extend(lock_lines(backup));
    script.push("restic unlock && restic check".into());
    script
}

/// One `ExecStart=` per step, each with the comment shown above it: stage,
/// each service's part, then the snapshot, then retention.
fn backup_steps(instance: &Instance, backup: &Backup) -> Vec<(String, Value)> {
    let mut steps = vec![(
        "Empty the staging folder.".to_string(),
        shell(&[
            format!("rm -rf {STAGING} &&"),
            format!("mkdir -p {STAGING}/volumes {STAGING}/dumps"),
        ]),
    )];
    for part in &backup.services {
        steps.push(service_step(instance, backup, part));
    }
    steps.push((
        "One snapshot of everything staged, tagged with app, instance and revision.".into(),
        shell(&snapshot_script(instance, backup)),
    ));
    if !backup.keep.is_empty() {
        let mut forget = vec![
            "restic".to_string(),
            "forget".into(),
            "--tag".into(),
            tags(instance),
            // One group: every snapshot of this instance, whatever host or path.
            "--group-by=".into(),
        ];
        for (period, count) in &backup.keep {
            forget.push(format!("--keep-{}", period.as_str()));
            forget.push(count.to_string());
        }
        forget.push("--prune".into());
        let mut script = lock_lines(backup);
        script.push(
            forget
                .iter()
                .map(|word| sh_quote(word))
                .collect::<Vec<_>>()
                .join(" "),
        );
        steps.push((
            "Retention: forget what `keep` does not keep, and prune.".into(),
            shell(&script),
        ));
    }
    steps
}

fn tags(instance: &Instance) -> String {
    format!(
        "{},{}",
        backup::app_tag(&instance.app),
        backup::instance_tag(&instance.instance)
    )
}

fn service_step(instance: &Instance, backup: &Backup, part: &ServiceBackup) -> (String, Value) {
    let container = instance.container(&part.service);
    let unit = instance.service_unit(&part.service);
    let marker = marker(part);
    let mut script = vec!["set -e;".to_string()];
    let comment;
    match &part.consistency {
        Consistency::Dump { dump, .. } => {
            comment = format!(
                "{}: dump (in the container, its exit status checked).",
                part.service
            );
            script.extend(in_container(
                &format!("{DOCKER} exec -i {container} sh"),
                dump,
                &format!("{STAGING}{}", backup::dump_path(&part.service)),
            ));
        }
        Consistency::Live => {
            comment = format!("{}: copy its volumes while it runs.", part.service);
        }
        Consistency::Pause => {
            comment = format!(
                "{}: pause the container, copy its volumes, unpause.",
                part.service
            );
            // Only a running container: one paused already (by hand) is
            // copied as it is and left paused.
            script.push(format!(
                "if [ \"$({DOCKER} inspect --format '{{{{.State.Status}}}}' {container} 2>/dev/null)\" = running ]; then"
            ));
            script.push(format!("  touch {marker};"));
            script.extend(paused_with_retries(&container));
            script.push("fi;".into());
        }
        Consistency::Stop => {
            comment = format!(
                "{}: stop the service, copy its volumes, start it.",
                part.service
            );
            // Stopping it also stops the services that restart with it
            // (PartOf=): the marker lists the units that were active, and
            // all of them are started again.
            script.push(format!("if systemctl -q is-active {unit}; then"));
            script.push(format!(
                "  for u in {}; do if systemctl -q is-active $u; then echo $u; fi; done > {marker};",
                stopped_with(instance, &part.service).join(" ")
            ));
            script.push(format!("  systemctl stop {unit};"));
            script.push("fi;".into());
        }
    }
    for volume in &part.volumes {
        let copier = sh_quote(&backup::copy_container(&volume.docker_name));
        // One a killed run left would hold the volume, and the name.
        script.extend(copiers_removed(std::slice::from_ref(&volume.docker_name)));
        // `--entrypoint`: an image with an ENTRYPOINT would otherwise get
        // `tar …` as its arguments instead of running it. The helper's own
        // `tar`, run as it is, not through `sh -c` (see
        // `backup::ends_with_client`), where a busybox `sh` runs its own.
        // Killed, its client leaves it running: the unit's `ExecStopPost=`
        // removes it, or else the next run.
        script.push(format!(
            "{DOCKER} run --rm --name {copier} --network=none --entrypoint tar --volume {} {} -c -C /data . > {STAGING}{};",
            sh_quote(&format!("{}:/data:ro", volume.docker_name)),
            sh_quote(&backup.helper_image),
            backup::volume_path(&volume.name)
        ));
    }
    script.extend(resume_lines(&container, &part.consistency, &marker));
    (comment, shell(&script))
}

/// Removes the copy containers of `volumes` (Docker names) a killed run
/// left, which would hold their volume: this unitgen's, by name
/// ([`backup::copy_container`]), and those of an earlier unitgen, which
/// Docker named, by what they are: a `--rm` container without network
/// whose command is `tar -c -C /data .` (through `--entrypoint tar`, or
/// after the image's own entrypoint) with the volume read-only at `/data`,
/// which no service's container is. Never fails: nothing left, nothing to do.
fn copiers_removed(volumes: &[String]) -> Vec<String> {
    if volumes.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = (volumes.iter())
        .map(|volume| sh_quote(&backup::copy_container(volume)))
        .collect();
    let quoted: Vec<String> = volumes.iter().map(|volume| sh_quote(volume)).collect();
    let shape = "{{.HostConfig.NetworkMode}} {{.HostConfig.AutoRemove}} \
                 {{range .Mounts}}{{if eq .Destination \"/data\"}}{{.Name}}:{{.RW}} {{end}}{{end}}\
                 {{json .Config.Entrypoint}} {{json .Config.Cmd}}";
    vec![
        format!(
            "{DOCKER} rm --force {} >/dev/null 2>&1 || true;",
            names.join(" ")
        ),
        format!("for volume in {}; do", quoted.join(" ")),
        format!(
            "  for c in $({DOCKER} ps --all --quiet --no-trunc --filter \"volume=$volume\" 2>/dev/null); do"
        ),
        format!(
            "    case $({DOCKER} inspect --format {} \"$c\" 2>/dev/null) in",
            sh_quote(shape)
        ),
        format!(
            "      \"none true $volume:false \"{}|\"none true $volume:false \"*{}) {DOCKER} rm --force \"$c\" >/dev/null 2>&1 || true;;",
            sh_quote(r#"["tar"] ["-c","-C","/data","."]"#),
            sh_quote(r#" ["tar","-c","-C","/data","."]"#)
        ),
        "    esac;".into(),
        "  done;".into(),
        "done;".into(),
    ]
}

/// How many times a backup asks Docker to pause a container before it
/// gives up. runc gives a freeze well under a second and then fails
/// ("OCI runtime pause failed: unable to freeze"), which a busy host's
/// cgroup v1 freezer misses now and then (moby/moby#48205); runc's own
/// comment says retrying is what helps. One failed pause must not cost
/// the night's backup.
const PAUSE_ATTEMPTS: u32 = 10;

/// `docker pause CONTAINER`, asked again a second later while it fails,
/// up to [`PAUSE_ATTEMPTS`] times; each failure is logged, the last one
/// fails the step (`set -e` does not see a failed `until` condition).
fn paused_with_retries(container: &str) -> Vec<String> {
    vec![
        format!("  tries=1; until {DOCKER} pause {container} >/dev/null; do"),
        format!(
            "    if [ $tries -ge {PAUSE_ATTEMPTS} ]; then echo \"could not pause {container} ({PAUSE_ATTEMPTS} tries): its volumes were not copied\" >&2; exit 1; fi;"
        ),
        format!(
            "    echo \"pausing {container} failed (try $tries of {PAUSE_ATTEMPTS}): trying again in 1s\" >&2; tries=$((tries + 1)); sleep 1;"
        ),
        "  done;".into(),
    ]
}

/// Runs `command` in a container through `client` (`docker exec -i
/// CONTAINER sh`), its standard output into `out`,
/// so that it ends with the client (see [`backup::ends_with_client`]): the
/// client's standard input is [`CLIENT_INPUT`], held open by this shell
/// alone, and the client is waited for, its exit status (the command's)
/// checked by `set -e`.
fn in_container(client: &str, command: &str, out: &str) -> Vec<String> {
    let args: Vec<String> = (backup::ends_with_client(command).iter())
        .map(|word| sh_quote(word))
        .collect();
    vec![
        format!("[ -p {CLIENT_INPUT} ] || mkfifo {CLIENT_INPUT};"),
        // Read and write: opening it does not wait for a reader.
        format!("exec 7<>{CLIENT_INPUT};"),
        format!(
            "{client} {} < {CLIENT_INPUT} 7>&- > {out} &",
            args.join(" ")
        ),
        "wait $!;".into(),
        "exec 7>&-;".into(),
    ]
}

/// The units a stop of `service`'s unit stops: its own and those of the
/// services that restart with it (`PartOf=`, followed as systemd does).
fn stopped_with(instance: &Instance, service: &str) -> Vec<String> {
    let mut names = vec![service.to_string()];
    let mut i = 0;
    while i < names.len() {
        for other in &instance.services {
            if other.restarts_with.contains(&names[i]) && !names.contains(&other.name) {
                names.push(other.name.clone());
            }
        }
        i += 1;
    }
    names.iter().map(|n| instance.service_unit(n)).collect()
}

/// Undoes a pause or stop if (and only if) the backup did it: the marker
/// file says so (for a stop, it lists the units to start). Run after the
/// copy, and again by `ExecStopPost=`.
fn resume_lines(container: &str, consistency: &Consistency, marker: &str) -> Vec<String> {
    let resume = match consistency {
        Consistency::Pause => format!("{DOCKER} unpause {container}"),
        Consistency::Stop => format!("systemctl start --no-block $(cat {marker})"),
        _ => return Vec::new(),
    };
    vec![format!(
        "if [ -e {marker} ]; then {resume} && rm -f {marker}; fi;"
    )]
}

fn marker(part: &ServiceBackup) -> String {
    format!(
        "\"$RUNTIME_DIRECTORY/{}-{}\"",
        part.consistency.as_str(),
        part.service
    )
}

/// `ExecStopPost=`: resumes what the backup paused or stopped, drops the
/// staged copies, and records how the run ended (systemd's result, e.g.
/// `exit-code`, with the time) for `status`, which must show a failed
/// backup even after systemd forgot it (a reboot).
fn resume_script(instance: &Instance, backup: &Backup, prefix: &str, state: &str) -> Vec<String> {
    let mut script = Vec::new();
    // The copies go first, so that none goes on reading a volume that is
    // written again (a stopped service started) or removed.
    let volumes: Vec<String> = (backup.services.iter())
        .flat_map(|part| &part.volumes)
        .map(|volume| volume.docker_name.clone())
        .collect();
    // An `environment_file` that set the unit's folders, or the engine its
    // docker reaches, had the run refused before it paused, stopped or
    // staged anything: nothing of theirs is touched (the staging folder
    // under the file's `CACHE_DIRECTORY` is another's folder, the
    // containers of the file's `DOCKER_HOST` another engine's).
    let guarded = match &backup.environment_file {
        Some(file) => {
            script.extend(file_refusal_lines(file));
            let own_folders = own_folder_checks(prefix, true)
                .into_iter()
                .map(|(_, check)| check);
            let checks: Vec<String> = std::iter::once("[ -z \"$refused\" ]".to_string())
                .chain(own_folders)
                .collect();
            script.push(format!("if {}; then", checks.join(" && ")));
            true
        }
        None => false,
    };
    script.extend(copiers_removed(&volumes));
    for part in &backup.services {
        script.extend(resume_lines(
            &instance.container(&part.service),
            &part.consistency,
            &marker(part),
        ));
    }
    script.push(format!("rm -rf {STAGING};"));
    if guarded {
        script.push("fi;".into());
    }
    // Recorded where unitgen reads it, whatever the environment says.
    let state = sh_quote(state);
    script.push(format!("mkdir -p {state};"));
    script.push("result=$SERVICE_RESULT;".into());
    // A clean exit on SIGTERM (a stop job) is no success.
    script.push(
        "if [ \"$result\" = success ] && [ \"$EXIT_CODE\" = killed ]; then result=interrupted; fi;"
            .into(),
    );
    // Nor is a run refused before it got past the lock, where only an
    // `environment_file` setting SERVICE_RESULT could have said success.
    if guarded {
        script.push(format!(
            "if [ \"$result\" = success ] && [ ! -e \"$RUNTIME_DIRECTORY/{}\" ]; then result=exit-code; fi;",
            backup::PAST_LOCK
        ));
    }
    script.push(format!(
        "printf '{{\"time\":%s,\"result\":\"%s\"}}\\n' \"$(date +%s)\" \"$result\" > {state}/.{run} &&",
        run = LAST_RUN_FILE
    ));
    script.push(format!(
        "mv {state}/.{run} {state}/{run}",
        run = LAST_RUN_FILE
    ));
    script
}

/// Backs up the staging folder (paths in the snapshot: `/volumes/<name>.tar`,
/// `/dumps/<service>`) and records the snapshot as the last good backup.
fn snapshot_script(instance: &Instance, backup: &Backup) -> Vec<String> {
    let tags = tags(instance);
    let mut script = vec!["set -e;".to_string()];
    // The latest revision folder (`0001`, …, `10000`: numerically).
    script.push("rev=$(ls \"$UNITGEN_STATE/revisions\" 2>/dev/null | sed -n 's/^0*\\([0-9][0-9]*\\)$/\\1/p' | sort -n | tail -n 1);".into());
    script.push("rev=${rev:-unknown};".into());
    script.push(format!("cd {STAGING};"));
    script.extend(lock_lines(backup));
    script.extend([
        format!("restic backup --json --tag unitgen,{tags},{}$rev . > \"$RUNTIME_DIRECTORY/summary\";", backup::REVISION_TAG),
        "snapshot=$(sed -n 's/.*\"snapshot_id\":\"\\([0-9a-f]*\\)\".*/\\1/p' \"$RUNTIME_DIRECTORY/summary\");".into(),
        "test -n \"$snapshot\";".into(),
        "mkdir -p \"$UNITGEN_STATE\";".into(),
        "printf '{\"time\":%s,\"snapshot\":\"%s\",\"revision\":\"%s\"}\\n' \"$(date +%s)\" \"$snapshot\" \"$rev\" > \"$UNITGEN_STATE/.last-backup.json\";".into(),
        "mv \"$UNITGEN_STATE/.last-backup.json\" \"$UNITGEN_STATE/last-backup.json\";".into(),
        "echo \"snapshot $snapshot saved (revision $rev)\"".into(),
    ]);
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A daily backup to `repository`, with these secret files.
    fn backup_to(repository: &str, password_file: &str, environment_file: Option<&str>) -> Backup {
        Backup {
            repository: repository.into(),
            password_file: password_file.into(),
            password_digest: None,
            environment_file: environment_file.map(Into::into),
            schedule: "daily".into(),
            check: "weekly".into(),
            randomized_delay_seconds: 0,
            keep: Vec::new(),
            on_failure: None,
            helper_image: "busybox:1.36".into(),
            services: Vec::new(),
        }
    }

    /// A pause Docker fails is asked again, each failure logged, and the
    /// step goes on once it succeeds; failing every time fails the step,
    /// before any copy. A fake `docker` fails the first `fails` pauses.
    #[test]
    fn a_failed_pause_is_asked_again_and_only_the_last_failure_fails_the_step() {
        use std::os::unix::fs::PermissionsExt as _;
        let run = |fails: u32| {
            let dir = tempfile::tempdir().unwrap();
            let executable = |name: &str, text: &str| {
                let path = dir.path().join(name);
                std::fs::write(&path, text).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
                path
            };
            let calls = dir.path().join("calls");
            let docker = executable(
                "docker",
                &format!(
                    "#!/bin/sh\necho \"$*\" >> '{}'\n[ $(wc -l < '{}') -gt {fails} ] || {{ echo 'Error response from daemon: unable to freeze' >&2; exit 1; }}\n",
                    calls.display(),
                    calls.display()
                ),
            );
            // The wait between tries: not waited for here.
            executable("sleep", "#!/bin/sh\n");
            let mut script = vec!["set -e;".to_string(), "if true; then".into()];
            script.extend(paused_with_retries("blog-live-files"));
            script.push("fi; echo copied".into());
            let script = script.join("\n").replace(DOCKER, &docker.to_string_lossy());
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
                .output()
                .unwrap();
            let calls = std::fs::read_to_string(calls).unwrap();
            (out, calls.lines().count())
        };
        let (out, calls) = run(2);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "copied\n");
        assert_eq!(calls, 3);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("pausing blog-live-files failed (try 1 of 10): trying again in 1s"),
            "{log}"
        );
        assert!(log.contains("(try 2 of 10)"), "{log}");
        assert!(!log.contains("try 3"), "{log}");

        let (out, calls) = run(u32::MAX);
        assert!(!out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        assert_eq!(calls, PAUSE_ATTEMPTS as usize);
        assert!(
            String::from_utf8_lossy(&out.stderr).ends_with(
                "could not pause blog-live-files (10 tries): its volumes were not copied\n"
            ),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The copy containers a killed run left are removed whatever unitgen
    /// made them: by name, and Docker-named ones of an earlier unitgen by
    /// their shape; other containers on the volume stay. A fake `docker`
    /// answers as Docker does.
    #[test]
    fn copy_containers_of_this_and_earlier_unitgens_are_removed_and_nothing_else() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let removed = dir.path().join("removed");
        let docker = dir.path().join("docker");
        let copy = r#"["-c","-C","/data","."]"#;
        std::fs::write(
            &docker,
            format!(
                "#!/bin/sh\ncase $1 in\n\
                 rm) shift 2; echo \"$*\" >> '{removed}';;\n\
                 ps) [ \"$6\" = volume=blog-live-files ] && printf 'old1\\nold2\\nservice\\nmine\\nwritable\\n';;\n\
                 inspect) case $4 in\n\
                   old1) echo 'none true blog-live-files:false [\"tar\"] {copy}';;\n\
                   old2) echo 'none true blog-live-files:false null [\"tar\",\"-c\",\"-C\",\"/data\",\".\"]';;\n\
                   service) echo 'bridge false blog-live-files:true [\"/init\"] [\"httpd\"]';;\n\
                   mine) echo 'default true blog-live-files:false [\"tar\"] {copy}';;\n\
                   writable) echo 'none true blog-live-files:true [\"tar\"] {copy}';;\n\
                 esac;;\n\
                 esac\n",
                removed = removed.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut script = vec!["set -e;".to_string()];
        script.extend(copiers_removed(&[
            "blog-live-files".into(),
            "blog-live-db".into(),
        ]));
        script.push("echo went on".into());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script.join("\n").replace(DOCKER, &docker.to_string_lossy()))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "went on\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(&removed).unwrap(),
            "blog-live-files.backup blog-live-db.backup\nold1\nold2\n"
        );
    }

    #[test]
    fn the_refusal_of_a_readable_secret_file_names_it_as_written() {
        let backup = backup_to("/srv/b", "/etc/it's here", None);
        let script = prepare_script(&backup, "blog-live", "/var/lib/unitgen/blog-live");
        let refusal = (script.iter())
            .find(|line| line.contains("readable by others"))
            .unwrap();
        let echoed = std::process::Command::new("sh")
            .arg("-c")
            .arg(
                refusal
                    .trim_start()
                    .trim_start_matches("*) ")
                    .split(" >&2")
                    .next()
                    .unwrap(),
            )
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(echoed.stdout).unwrap(),
            "/etc/it's here is readable by others than its owner: chmod 600 it\n"
        );
    }

    /// The shell variables the file may set change nothing of the units'
    /// steps: `/bin/sh` (dash, or bash run as `sh`) takes no `IFS` from the
    /// environment and, not interactive, reads no `ENV` or `BASH_ENV`.
    #[test]
    fn the_units_shell_takes_no_ifs_env_or_bash_env_from_the_file() {
        use std::os::unix::process::CommandExt as _;
        let dir = std::env::temp_dir().join(format!("unitgen-sh-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sourced = dir.join("sourced");
        std::fs::write(&sourced, "echo sourced\n").unwrap();
        for shell in ["/bin/sh", "/bin/bash", "/usr/bin/bash"] {
            if !std::path::Path::new(shell).exists() {
                continue;
            }
            let out = std::process::Command::new(shell)
                .arg0("sh")
                .args(["-c", "for w in $(printf 'a b'); do echo \"$w\"; done"])
                .env("IFS", "x")
                .env("ENV", &sourced)
                .env("BASH_ENV", &sourced)
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\n", "{shell}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Each variable the file may not set is checked, and a script run
    /// with the unit's values and a file of credentials goes on, while one
    /// where the file set such a variable fails, saying which, never how.
    #[test]
    fn every_variable_the_file_may_not_set_is_refused() {
        let dir = std::env::temp_dir().join(format!("unitgen-env-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s3 it's.env");
        let file = path.to_str().unwrap();
        let backup = backup_to("/srv/it's", "/etc/pw", Some(file));
        let lines = own_variables_lines(&backup, "blog-live", Some("/var/lib/unitgen/blog-live"));
        for (variable, _) in backup::REFUSED_VARIABLES {
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains(&format!("{{{variable}+set}}"))
                        || l.contains(&format!("${variable} "))
                        || l.contains(&format!("${variable}\""))
                        || l.contains(&format!(" {variable}|"))
                        || l.contains(&format!("|{variable})"))),
                "{variable}"
            );
        }
        let credentials = "AWS_SECRET_ACCESS_KEY=\"s3cr3t\"\n# PATH=/tmp\n; DOCKER_HOST=x\nPATHS=1\nHOME_X=1\nX=PATH=1\n";
        // As systemd runs an `ExecStartPre=`: its own folders, no result yet.
        let run = |changed: (&str, &str), text: &str| {
            std::fs::write(&path, text).unwrap();
            let mut sh = std::process::Command::new("sh");
            sh.arg("-c")
                .arg(format!("{} echo went on", lines.join(" ")))
                .env("RESTIC_REPOSITORY", "/srv/it's")
                .env("RESTIC_PASSWORD_FILE", "/etc/pw")
                .env(
                    "RESTIC_CACHE_DIR",
                    "/var/cache/unitgen/blog-live-backup/restic",
                )
                .env("CACHE_DIRECTORY", "/var/cache/unitgen/blog-live-backup")
                .env("RUNTIME_DIRECTORY", "/run/unitgen/blog-live-backup")
                .env("UNITGEN_STATE", "/var/lib/unitgen/blog-live")
                .env("refused", "preset")
                .env_remove("SERVICE_RESULT")
                .env_remove("EXIT_CODE");
            if !changed.0.is_empty() {
                sh.env(changed.0, changed.1);
            }
            sh.output().unwrap()
        };
        let went_on = run(("", ""), credentials);
        assert_eq!(went_on.stdout, b"went on\n", "{went_on:?}");
        let refusal = |variable: &str| {
            let why = backup::Refused::of(variable).unwrap();
            format!("{}\n", why.message(file, variable))
        };
        for (variable, value) in [
            ("RESTIC_REPOSITORY", "/srv/elsewhere"),
            ("CACHE_DIRECTORY", "/home"),
            ("RUNTIME_DIRECTORY", "/tmp"),
            ("SERVICE_RESULT", "success"),
            ("EXIT_CODE", "exited"),
        ] {
            let refused = run((variable, value), credentials);
            assert!(!refused.status.success(), "{variable}");
            assert_eq!(
                String::from_utf8(refused.stderr).unwrap(),
                refusal(variable)
            );
        }
        // What the manager gives the unit is refused by the file's lines.
        for (variable, line) in [
            ("PATH", "  PATH = /srv/bin"),
            ("DOCKER_HOST", "DOCKER_HOST=tcp://elsewhere:2375"),
            ("DOCKER_CONTEXT", "DOCKER_CONTEXT='other'"),
            (
                "DOCKER_DEFAULT_PLATFORM",
                "DOCKER_DEFAULT_PLATFORM=linux/arm64",
            ),
            ("HOME", "\tHOME=/srv"),
            ("LD_PRELOAD", "LD_PRELOAD=/srv/hook.so"),
            ("SHELLOPTS", "SHELLOPTS=noexec"),
        ] {
            let refused = run(("", ""), &format!("{credentials}{line}"));
            assert!(!refused.status.success(), "{variable}");
            assert_eq!(
                String::from_utf8(refused.stderr).unwrap(),
                refusal(variable),
                "{variable}"
            );
            assert!(!refusal(variable).contains("/srv"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            own_variables_lines(
                &Backup {
                    environment_file: None,
                    ..backup
                },
                "blog-live",
                None
            )
            .is_empty()
        );
    }
}
