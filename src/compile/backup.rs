//! The `backup:` keys → [`model::backup::Backup`]: the instance's block
//! from the deployments file, each service's part from the app template.

use indexmap::IndexMap;

use super::{ServiceCompiler, syntax};
use crate::diagnostic::{Problem, did_you_mean};
use crate::escape::check_raw_value;
use crate::model::backup::{
    BackedUpVolume, Backup, Consistency, DEFAULT_HELPER_IMAGE, KeepPeriod, ServiceBackup,
};
use crate::model::{Service, VolumeSource};
use crate::template::Loaded;
use crate::template::schema::backup::{BackupDecl, ServiceBackupDecl};
use crate::template::schema::{Name, ServiceEntry};
use crate::template::spanned::Spanned;

const DEFAULT_SCHEDULE: &str = "daily";
const DEFAULT_CHECK: &str = "weekly";
const DEFAULT_RANDOMIZED_DELAY_SECONDS: u64 = 30 * 60;

type ServiceDefs = IndexMap<Name, Spanned<ServiceEntry>>;

impl<'a> ServiceCompiler<'a> {
    /// The instance's backups, when its instances file has a `backup:`
    /// block that covers it.
    pub(super) fn backup(
        &mut self,
        file: &'a Loaded,
        defs: Option<&ServiceDefs>,
        services: &[Service],
        declared_instances: &[String],
    ) -> Option<Backup> {
        let decl = file.doc.backup.as_ref()?;
        let saved = std::mem::replace(&mut self.file, file);
        let backup = self.instance_backup(decl, declared_instances);
        self.file = saved;
        let mut backup = backup?;
        for (name, entry) in defs.into_iter().flatten() {
            let ServiceEntry::Full(def) = &entry.value else {
                continue;
            };
            let (Some(part), Some(service)) =
                (&def.backup, services.iter().find(|s| s.name == name.value))
            else {
                continue;
            };
            if let Some(part) = self.service_backup(name, part, service) {
                backup.services.push(part);
            }
        }
        if backup.services.is_empty() {
            self.problems.push(
                Problem::new("backups are configured, but no service says what to back up")
                    .at(&file.at(&decl.repository.referenced))
                    .label("backup configured here")
                    .help("add `backup: {}` (all its volumes) or `backup: {dump: …, restore: …}` to the services whose data matters"),
            );
        }
        Some(backup)
    }

    fn instance_backup(&mut self, decl: &BackupDecl, declared: &[String]) -> Option<Backup> {
        if let Some(list) = &decl.instances {
            for name in list {
                if !declared.contains(&name.value) {
                    let mut problem =
                        Problem::new(format!("`{}` is not a declared instance", name.value))
                            .at(&self.at(&name.referenced));
                    if let Some(hint) =
                        did_you_mean(&name.value, declared.iter().map(String::as_str))
                    {
                        problem = problem.help(hint);
                    }
                    self.problems.push(problem);
                }
            }
            if !list.iter().any(|n| n.value == self.instance) {
                return None;
            }
        }
        let repository = self.expand_spanned(&decl.repository);
        if let Some((repository, at)) = &repository {
            if let Some(msg) = repository_problem(repository) {
                self.problems.push(Problem::new(msg).at(at).label("repository").help(
                    "put credentials in `environment_file` (a 0600 file of NAME=value lines), never in the template",
                ));
            } else if let Err(msg) = check_raw_value(repository) {
                // The units' `Description=` names it as it is.
                self.problem(at, msg);
            }
        }
        let absolute = |this: &mut Self, value: &Spanned<String>| {
            let (path, at) = this.expand_spanned(value)?;
            if !path.starts_with('/') || path.contains('\n') {
                this.problems.push(
                    Problem::new(format!("`{path}` is not an absolute path"))
                        .at(&at)
                        .help(
                            "a file on the host, read when the backup runs: give its absolute path",
                        ),
                );
            } else if let Err(msg) = check_raw_value(&path) {
                // `EnvironmentFile=` takes the path as it is.
                this.problem(&at, msg);
            } else if path.chars().any(|c| c.is_ascii_control()) {
                // systemd ignores an `Environment=` assignment whose value
                // holds one (`RESTIC_PASSWORD_FILE` would not be set).
                this.problem(
                    &at,
                    format!(
                        "`{path}` has a control character: systemd would not pass it to restic"
                    ),
                );
            }
            Some(path)
        };
        let password_file = absolute(self, &decl.password_file);
        let environment_file = decl
            .environment_file
            .as_ref()
            .and_then(|f| absolute(self, f));
        let calendar = |this: &mut Self, value: &Option<Spanned<String>>, default: &str| {
            let Some(value) = value else {
                return Some(default.to_string());
            };
            let (text, at) = this.expand_spanned(value)?;
            let why = if is_calendar_text(&text) {
                super::calendar::problem(&text)
            } else {
                Some("it has characters calendar expressions do not use".into())
            };
            if let Some(why) = why {
                this.problems.push(
                    Problem::new(format!("`{text}` is not a calendar expression: {why}"))
                        .at(&at)
                        .help("systemd's OnCalendar= syntax: `daily`, `*-*-* 03:00:00`, `Mon..Fri 22:30`, `03:00 Europe/Berlin`"),
                );
            }
            Some(text)
        };
        let schedule = calendar(self, &decl.schedule, DEFAULT_SCHEDULE);
        let check = calendar(self, &decl.check, DEFAULT_CHECK);
        let mut randomized_delay_seconds = DEFAULT_RANDOMIZED_DELAY_SECONDS;
        if let Some((text, at)) = decl
            .randomized_delay
            .as_ref()
            .and_then(|d| self.expand_spanned(d))
        {
            match syntax::parse_duration(&text) {
                Ok(secs) => randomized_delay_seconds = secs,
                Err(msg) => self.problem(&at, msg),
            }
        }
        let mut keep = Vec::new();
        for (period, count) in decl.keep.iter().flatten() {
            let at = self.at(&period.referenced);
            match KeepPeriod::ALL.iter().find(|p| p.as_str() == period.value) {
                Some(_) if count.value == 0 => self.problem(
                    &self.at(&count.referenced),
                    "keep at least 1, or leave the period out",
                ),
                Some(p) => keep.push((*p, count.value)),
                None => {
                    let names = KeepPeriod::ALL.map(KeepPeriod::as_str);
                    let help = did_you_mean(&period.value, names)
                        .unwrap_or_else(|| format!("valid periods: {}", names.join(", ")));
                    self.problems.push(
                        Problem::new(format!("unknown retention period `{}`", period.value))
                            .at(&at)
                            .help(help),
                    );
                }
            }
        }
        keep.sort();
        let on_failure = decl
            .on_failure
            .as_ref()
            .and_then(|c| self.expand_spanned(c))
            .map(|c| c.0);
        let helper_image = match decl
            .helper_image
            .as_ref()
            .and_then(|i| self.expand_spanned(i))
        {
            Some((image, at)) => {
                if let Err(msg) = syntax::check_image(&image) {
                    self.problem(&at, msg);
                }
                image
            }
            None => DEFAULT_HELPER_IMAGE.to_string(),
        };
        Some(Backup {
            repository: repository?.0,
            password_file: password_file?,
            password_digest: None,
            environment_file,
            schedule: schedule?,
            check: check?,
            randomized_delay_seconds,
            keep,
            on_failure,
            helper_image,
            services: Vec::new(),
        })
    }

    fn service_backup(
        &mut self,
        name: &Name,
        decl: &ServiceBackupDecl,
        service: &Service,
    ) -> Option<ServiceBackup> {
        let name_at = self.at(&name.referenced);
        let dump = decl.dump.as_ref().and_then(|d| self.expand_spanned(d));
        let restore = decl.restore.as_ref().and_then(|r| self.expand_spanned(r));
        let mut consistency = match &decl.consistency {
            None => Consistency::Live,
            Some(c) => match c.value.as_str() {
                "live" => Consistency::Live,
                "pause" => Consistency::Pause,
                "stop" => Consistency::Stop,
                other => {
                    self.problems.push(
                        Problem::new(format!("unknown consistency `{other}`"))
                            .at(&self.at(&c.referenced))
                            .help("use live (copy while running), pause or stop; for a database, a `dump` command with its `restore`"),
                    );
                    Consistency::Live
                }
            },
        };
        match (dump, restore) {
            (Some((dump, at)), Some((restore, _))) => {
                if consistency != Consistency::Live {
                    self.problems.push(
                        Problem::new("a dump runs in the running container: it cannot be combined with pause or stop")
                            .at(&at)
                            .help("leave `consistency` out for a service that dumps"),
                    );
                }
                consistency = Consistency::Dump { dump, restore };
            }
            (Some((_, at)), None) | (None, Some((_, at))) => {
                self.problems.push(
                    Problem::new("`dump` and `restore` go together")
                        .at(&at)
                        .help("a dump is only a backup if it can be read back: give both commands"),
                );
            }
            (None, None) => {}
        }
        let prefix = format!("{}-", self.prefix);
        let scoped: Vec<BackedUpVolume> = service
            .volumes
            .iter()
            .filter_map(|v| match &v.source {
                VolumeSource::Named {
                    docker_name,
                    external: false,
                } => Some(BackedUpVolume {
                    name: docker_name
                        .strip_prefix(&prefix)
                        .unwrap_or(docker_name)
                        .to_string(),
                    docker_name: docker_name.clone(),
                }),
                _ => None,
            })
            .collect();
        let volumes = match &decl.volumes {
            None if matches!(consistency, Consistency::Dump { .. }) => Vec::new(),
            None => scoped.clone(),
            Some(list) => {
                let mut chosen = Vec::new();
                for wanted in &list.value {
                    match scoped.iter().find(|v| v.name == wanted.value) {
                        Some(v) => chosen.push(v.clone()),
                        None => {
                            let known: Vec<&str> = scoped.iter().map(|v| v.name.as_str()).collect();
                            self.problems.push(
                                Problem::new(format!(
                                    "`{}` is not a named volume of service `{}` scoped to the instance",
                                    wanted.value, name.value
                                ))
                                .at(&self.at(&wanted.referenced))
                                .help(if known.is_empty() {
                                    "only the service's own named volumes are backed up (not bind mounts, nor volumes shared with `external: true`)".to_string()
                                } else {
                                    format!("its volumes: {}", known.join(", "))
                                }),
                            );
                        }
                    }
                }
                chosen
            }
        };
        if volumes.is_empty() && !matches!(consistency, Consistency::Dump { .. }) {
            self.problems.push(
                Problem::new(format!("service `{}` has nothing to back up", name.value))
                    .at(&name_at)
                    .help(
                        "give it a named volume (`data:/path`), or a `dump` and `restore` command",
                    ),
            );
            return None;
        }
        Some(ServiceBackup {
            service: name.value.clone(),
            volumes,
            consistency,
        })
    }
}

/// Whether `text` is made only of what systemd's calendar syntax uses
/// (`Mon..Fri *-*-1/2 03:00:00 Europe/Berlin`, `daily`, `*-*~07`,
/// `@1700000000`): it is
/// written into `OnCalendar=` as it is, where a `%`, a backslash or a
/// space at either end would change what systemd reads.
pub(super) fn is_calendar_text(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" *-:.,~/_+@".contains(&b))
}

/// Credentials in a repository URL would be copied into unit files.
fn repository_problem(repository: &str) -> Option<String> {
    if repository.trim().is_empty() || repository.chars().any(char::is_control) {
        return Some(format!("`{repository}` is not a restic repository"));
    }
    let (_, rest) = repository.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo.contains(':').then(|| {
        "the repository URL holds a password: it would be written into unit files".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::{is_calendar_text, repository_problem};

    #[test]
    fn calendar_text_is_what_on_calendar_reads_as_written() {
        for good in [
            "daily",
            "*-*-* 02:30:00",
            "Mon..Fri 22:30",
            "*-*~07/1",
            "Sat,Sun 10:00 Europe/Berlin",
            "03:00 Etc/GMT+5",
            "@1700000000",
        ] {
            assert!(is_calendar_text(good), "{good}");
        }
        for bad in [
            "", "daily\\", " daily", "daily ", "100%", "%H:00", "a\tb", "é",
        ] {
            assert!(!is_calendar_text(bad), "{bad:?}");
        }
    }

    #[test]
    fn repository_urls_with_passwords_are_refused() {
        assert!(repository_problem("rest:https://user:secret@backup.example/blog").is_some());
        assert!(repository_problem("rest:https://backup.example/blog").is_none());
        assert!(repository_problem("sftp:backup@host:/srv/restic").is_none());
        assert!(repository_problem("/srv/restic").is_none());
        assert!(repository_problem("").is_some());
    }
}
