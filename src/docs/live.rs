//! What `docs --live` adds: what the host reports now about the instances
//! it runs (read by `status`'s own code), as a section of each page. Unlike
//! the rest of the docs, it changes with the host and the clock.

use super::{code, escape, row};
use crate::backup::status::{self, BackupStatus};
use crate::cli::when::iso;
use crate::site_view::App;

/// The host's report, as read at `read_at`.
#[derive(Debug, Clone)]
pub struct Live {
    /// The host's name, as it calls itself.
    pub host: String,
    /// Seconds since the epoch.
    pub read_at: u64,
    pub instances: Vec<InstanceLive>,
}

#[derive(Debug, Clone)]
pub struct InstanceLive {
    pub app: String,
    pub instance: String,
    /// None: no unit of the instance is installed on this host.
    pub installed: Option<Installed>,
    /// Installed here, but the file does not give it to this host (taken
    /// out of it, or moved to another host): it runs until destroyed.
    pub left_alone: bool,
}

/// What the docs say of a [`InstanceLive::left_alone`] instance.
const LEFT_ALONE: &str =
    "left alone: installed here, not given to this host by the file (`unitgen destroy` removes it)";

#[derive(Debug, Clone)]
pub struct Installed {
    /// The latest revision applied, and when (seconds since the epoch).
    pub revision: Option<(u64, u64)>,
    /// The units are that revision's, every one active.
    pub as_applied: bool,
    pub services: Vec<ServiceLive>,
    /// Its backups as `status` reads them; None when none are scheduled
    /// on this host.
    pub backup: Option<BackupStatus>,
}

#[derive(Debug, Clone)]
pub struct ServiceLive {
    pub service: String,
    /// systemd's `active (running)`.
    pub state: String,
    /// The image the container was started from, and that image's id.
    pub image: Option<String>,
    pub image_id: Option<String>,
}

impl Live {
    fn of<'a>(&'a self, app: &'a str) -> impl Iterator<Item = &'a InstanceLive> + 'a {
        self.instances.iter().filter(move |i| i.app == app)
    }

    fn heading(&self) -> String {
        // The name is the machine's own (its hostname file may hold any
        // text): one code span, on the heading's line.
        format!(
            "\n## Live on {}, {}\n\n",
            code(&self.host),
            iso(self.read_at)
        )
    }
}

fn revision(installed: &Installed) -> String {
    match installed.revision {
        Some((number, at)) => {
            let drift = if installed.as_applied {
                ""
            } else {
                " (not as applied: see `unitgen status`)"
            };
            format!("revision {number}, applied {}{drift}", iso(at))
        }
        None => "no revision recorded".into(),
    }
}

/// The last good backup; and, as `status` says them, a last run that
/// failed and a last good backup that is overdue.
fn last_backup(installed: &Installed) -> String {
    let Some(backup) = &installed.backup else {
        return "not scheduled".into();
    };
    let mut text = match &backup.last_good {
        Some(last) => format!("{} ({})", iso(last.time), code(&last.snapshot)),
        None => "none yet".into(),
    };
    if backup.last_run_failed() {
        text.push_str(&format!("; last run {}", escape(&backup.last_run_text())));
    }
    if backup.overdue {
        text.push_str(&format!("; **{}**", escape(status::OVERDUE)));
    }
    text
}

/// The overview's section: one line per instance of the site.
pub fn overview_section(live: &Live) -> String {
    let mut text = live.heading();
    text.push_str(
        "| Instance | Revision | Services active | Last backup |\n| --- | --- | --- | --- |\n",
    );
    for instance in &live.instances {
        let mut name = code(&format!("{}/{}", instance.app, instance.instance));
        if instance.left_alone {
            name.push_str(&format!(" ({LEFT_ALONE})"));
        }
        let Some(installed) = &instance.installed else {
            text.push_str(&row(&[
                name,
                "not installed on this host".into(),
                String::new(),
                String::new(),
            ]));
            continue;
        };
        let active = installed
            .services
            .iter()
            .filter(|s| s.state.starts_with("active"))
            .count();
        text.push_str(&row(&[
            name,
            escape(&revision(installed)),
            format!("{active} of {}", installed.services.len()),
            last_backup(installed),
        ]));
    }
    text
}

/// An app page's section: each instance's services as they run now.
pub fn app_section(app: &App, live: &Live) -> String {
    let mut text = live.heading();
    for instance in live.of(&app.name) {
        text.push_str(&format!(
            "### `{}`\n\n",
            instance.instance.replace('`', "'")
        ));
        if instance.left_alone {
            text.push_str(&format!("{}.\n\n", capitalized(LEFT_ALONE)));
        }
        let Some(installed) = &instance.installed else {
            text.push_str("Not installed on this host.\n\n");
            continue;
        };
        text.push_str(&format!(
            "{}; last backup: {}.\n\n| Service | State | Image | Image id |\n| --- | --- | --- | --- |\n",
            escape(&revision(installed)),
            last_backup(installed)
        ));
        for service in &installed.services {
            text.push_str(&row(&[
                code(&service.service),
                escape(&service.state),
                service.image.as_deref().map(code).unwrap_or_default(),
                service.image_id.as_deref().map(code).unwrap_or_default(),
            ]));
        }
        text.push('\n');
    }
    text
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The heading wrote the host's name as the host gave it, backticks
    // aside: a line feed in it (a hostname file with a second line) ended
    // the heading and made the rest markup of its own.
    #[test]
    fn the_hosts_name_stays_on_the_heading() {
        let live = |host: &str| Live {
            host: host.into(),
            read_at: 0,
            instances: Vec::new(),
        };
        assert_eq!(
            live("web1").heading(),
            "\n## Live on `web1`, 1970-01-01T00:00:00Z\n\n"
        );
        let heading = live("web1\n# Owned\r\u{202e}`x`").heading();
        assert_eq!(heading.trim_matches('\n').lines().count(), 1, "{heading}");
        assert!(heading.contains("\\u{202e}"), "{heading}");
    }
}
