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

use super::{Flavour, Renderer, UnitFile, escaped, shell, with_digest};
use crate::escape::{sh_quote, systemd_command, systemd_environment, systemd_value};
use crate::model::Instance;
use crate::model::backup::{self, Backup, Consistency, ServiceBackup};

/// Where the units stage dumps and volume copies, under `CacheDirectory=`.
const STAGING: &str = "\"$CACHE_DIRECTORY/staging\"";

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
            repository => systemd_environment("RESTIC_REPOSITORY", &backup.repository),
            password_file => systemd_environment("RESTIC_PASSWORD_FILE", &backup.password_file),
            environment_file => backup.environment_file.as_deref().map(systemd_value),
            on_failure => hook,
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
                        prepare => shell(&prepare_script(backup)),
                        steps => backup_steps(instance, backup),
                        resume => escaped(format!("-{}", shell(&resume_script(instance, backup)))),
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
                        unlock => systemd_command(&["restic", "unlock"]),
                        check => systemd_command(&["restic", "check"]),
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

/// Refuses secrets others can read, creates the repository on first use,
/// and clears stale locks (left by a restic that was killed).
fn prepare_script(backup: &Backup) -> Vec<String> {
    let mut script = Vec::new();
    let files = std::iter::once(&backup.password_file).chain(&backup.environment_file);
    for file in files {
        let file = sh_quote(file);
        script.push(format!("case $(stat -L -c %a {file}) in"));
        script.push("  *00) ;;".into());
        script.push(format!(
            "  *) echo {} >&2; exit 1;;",
            sh_quote(&format!(
                "{} is readable by others than its owner: chmod 600 it",
                file.trim_matches('\'')
            ))
        ));
        script.push("esac;".into());
    }
    script.push("restic cat config >/dev/null 2>&1 || restic init;".into());
    script.push("restic unlock".into());
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
        shell(&snapshot_script(instance)),
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
        steps.push((
            "Retention: forget what `keep` does not keep, and prune.".into(),
            escaped(systemd_command(&forget)),
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
    let marker = format!(
        "\"$RUNTIME_DIRECTORY/{}-{}\"",
        part.consistency.as_str(),
        part.service
    );
    let mut script = vec!["set -e;".to_string()];
    let comment;
    match &part.consistency {
        Consistency::Dump { dump, .. } => {
            comment = format!(
                "{}: dump (in the container, its exit status checked).",
                part.service
            );
            script.push(format!(
                "docker exec {container} sh -c {} > {STAGING}{};",
                sh_quote(dump),
                backup::dump_path(&part.service)
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
            script.push(format!(
                "if [ \"$(docker inspect --format '{{{{.State.Running}}}}' {container} 2>/dev/null)\" = true ]; then"
            ));
            script.push(format!("  touch {marker}; docker pause {container};"));
            script.push("fi;".into());
        }
        Consistency::Stop => {
            comment = format!(
                "{}: stop the service, copy its volumes, start it.",
                part.service
            );
            script.push(format!("if systemctl -q is-active {unit}; then"));
            script.push(format!("  touch {marker}; systemctl stop {unit};"));
            script.push("fi;".into());
        }
    }
    for volume in &part.volumes {
        script.push(format!(
            "docker run --rm --network=none --volume {}:/data:ro {} tar -c -C /data . > {STAGING}{};",
            volume.docker_name,
            sh_quote(&backup.helper_image),
            backup::volume_path(&volume.name)
        ));
    }
    script.extend(resume_lines(&container, &unit, &part.consistency, &marker));
    (comment, shell(&script))
}

/// Undoes a pause or stop if (and only if) the backup did it: the marker
/// file says so. Run after the copy, and again by `ExecStopPost=`.
fn resume_lines(
    container: &str,
    unit: &str,
    consistency: &Consistency,
    marker: &str,
) -> Vec<String> {
    let resume = match consistency {
        Consistency::Pause => format!("docker unpause {container}"),
        Consistency::Stop => format!("systemctl start --no-block {unit}"),
        _ => return Vec::new(),
    };
    vec![format!(
        "if [ -e {marker} ]; then {resume} && rm -f {marker}; fi;"
    )]
}

fn resume_script(instance: &Instance, backup: &Backup) -> Vec<String> {
    let mut script = Vec::new();
    for part in &backup.services {
        let marker = format!(
            "\"$RUNTIME_DIRECTORY/{}-{}\"",
            part.consistency.as_str(),
            part.service
        );
        script.extend(resume_lines(
            &instance.container(&part.service),
            &instance.service_unit(&part.service),
            &part.consistency,
            &marker,
        ));
    }
    script.push(format!("rm -rf {STAGING}"));
    script
}

/// Backs up the staging folder (paths in the snapshot: `/volumes/<name>.tar`,
/// `/dumps/<service>`) and records the snapshot as the last good backup.
fn snapshot_script(instance: &Instance) -> Vec<String> {
    let tags = tags(instance);
    vec![
        "set -e;".into(),
        "rev=$(ls \"$UNITGEN_STATE/revisions\" 2>/dev/null | sed -n 's/^0*\\([0-9][0-9]*\\)$/\\1/p' | tail -n 1);".into(),
        "rev=${rev:-unknown};".into(),
        format!("cd {STAGING};"),
        format!("restic backup --json --tag unitgen,{tags},{}$rev . > \"$RUNTIME_DIRECTORY/summary\";", backup::REVISION_TAG),
        "snapshot=$(sed -n 's/.*\"snapshot_id\":\"\\([0-9a-f]*\\)\".*/\\1/p' \"$RUNTIME_DIRECTORY/summary\");".into(),
        "test -n \"$snapshot\";".into(),
        "mkdir -p \"$UNITGEN_STATE\";".into(),
        "printf '{\"time\":%s,\"snapshot\":\"%s\",\"revision\":\"%s\"}\\n' \"$(date +%s)\" \"$snapshot\" \"$rev\" > \"$UNITGEN_STATE/.last-backup.json\";".into(),
        "mv \"$UNITGEN_STATE/.last-backup.json\" \"$UNITGEN_STATE/last-backup.json\";".into(),
        "echo \"snapshot $snapshot saved (revision $rev)\"".into(),
    ]
}
