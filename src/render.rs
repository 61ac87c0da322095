//! Model → unit files. The shapes of the units live as minijinja templates
//! in `templates/units/` (embedded in the binary); this module computes what
//! goes into them. Pure and deterministic: the same instance always renders
//! to the same bytes.

pub mod docker;

use std::fmt::Write as _;

use minijinja::{Environment, context};
use sha2::{Digest, Sha256};

use crate::escape::{systemd_command, systemd_value};
use crate::model::{Healthcheck, Instance, Service};
use docker::DOCKER;

/// One generated unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    pub name: String,
    pub text: String,
}

/// Key of the digest line in `[X-Unitgen]`.
pub const DIGEST_KEY: &str = "Digest=";

/// How long a start may take: it includes pulling the image.
const TIMEOUT_START: &str = "5min";
/// Extra time systemd allows past Docker's own stop grace period.
const STOP_MARGIN_SECONDS: u64 = 30;

pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("static syntax config"),
        );
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in [
            ("service.j2", include_str!("../templates/units/service.j2")),
            ("network.j2", include_str!("../templates/units/network.j2")),
        ] {
            env.add_template(name, source)
                .expect("embedded unit templates are valid");
        }
        Renderer { env }
    }
}

impl Renderer {
    /// Every unit of an instance, sorted by name.
    pub fn render(&self, instance: &Instance) -> Vec<UnitFile> {
        let mut units = vec![self.network_unit(instance)];
        units.extend(
            instance
                .services
                .iter()
                .map(|s| self.service_unit(instance, s)),
        );
        units.sort_by(|a, b| a.name.cmp(&b.name));
        units
    }

    fn network_unit(&self, instance: &Instance) -> UnitFile {
        let network = instance.network();
        let create = format!(
            "docker network inspect {network} >/dev/null 2>&1 || docker network create --label unitgen.app={} --label unitgen.instance={} {network}",
            instance.app, instance.instance
        );
        let text = self.fill(
            "network.j2",
            context! {
                source => systemd_value(&instance.source),
                app => &instance.app,
                instance => &instance.instance,
                remove => systemd_command(&[DOCKER, "network", "rm", &network]),
                network,
                create => systemd_command(&["/bin/sh", "-c", &create]),
            },
        );
        UnitFile {
            name: instance.network_unit(),
            text: with_digest(text),
        }
    }

    fn service_unit(&self, instance: &Instance, service: &Service) -> UnitFile {
        let container = instance.container(&service.name);
        let healthcheck = matches!(service.healthcheck, Some(Healthcheck::Check { .. }));
        let requires = vec!["docker.service".to_string(), instance.network_unit()];
        let wants: Vec<String> = service
            .depends_on
            .iter()
            .map(|d| instance.service_unit(d))
            .collect();
        let mut after = requires.clone();
        after.extend(wants.iter().cloned());

        let mut docker_run = vec![vec![DOCKER.to_string(), "run".into(), "--rm".into()]];
        docker_run.extend(docker::run_args(instance, service));
        let docker_run = docker_run
            .iter()
            .map(|group| systemd_command(group))
            .collect::<Vec<_>>()
            .join(" \\\n    ");

        let extra_sections: Vec<(String, Vec<(String, String)>)> = service
            .systemd
            .iter()
            .filter(|(section, _)| !["Unit", "Service", "Install"].contains(&section.as_str()))
            .map(|(section, entries)| (section.clone(), entries.clone()))
            .collect();
        let grace = service.stop_grace_seconds.to_string();
        let text = self.fill(
            "service.j2",
            context! {
                source => systemd_value(&instance.source),
                app => &instance.app,
                instance => &instance.instance,
                service => &service.name,
                description => systemd_value(&format!(
                    "{} {}: {} ({})",
                    instance.app, instance.instance, service.name, service.image
                )),
                requires,
                wants,
                after,
                remove_container => systemd_command(&[DOCKER, "rm", "--force", &container]),
                docker_run,
                healthcheck,
                wait_ready => systemd_command(&[
                    "/bin/sh",
                    "-c",
                    &docker::wait_ready_script(&container, healthcheck),
                ]),
                docker_stop => systemd_command(&[DOCKER, "stop", "--time", &grace, &container]),
                restart => service.restart.systemd_value(),
                timeout_start => TIMEOUT_START,
                timeout_stop => format!("{}s", service.stop_grace_seconds + STOP_MARGIN_SECONDS),
                extra_unit => extra_keys(service, "Unit"),
                extra_service => extra_keys(service, "Service"),
                extra_install => extra_keys(service, "Install"),
                extra_sections,
            },
        );
        UnitFile {
            name: instance.service_unit(&service.name),
            text: with_digest(text),
        }
    }

    fn fill(&self, template: &str, ctx: minijinja::Value) -> String {
        self.env
            .get_template(template)
            .and_then(|t| t.render(ctx))
            .expect("embedded unit templates render with every model")
    }
}

/// The user's extra keys for one section of a service unit.
fn extra_keys(service: &Service, section: &str) -> Vec<(String, String)> {
    service.systemd.get(section).cloned().unwrap_or_default()
}

/// Appends `Digest=sha256:…` (of everything before it) to the unit's last
/// section, `[X-Unitgen]`, so that later commands can tell a hand-edited
/// unit from one unitgen wrote.
fn with_digest(mut text: String) -> String {
    let digest = content_digest(&text);
    let _ = writeln!(text, "{DIGEST_KEY}{digest}");
    text
}

pub fn content_digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256:");
    for byte in hash {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Whether a unit file's digest line still matches its content.
pub fn digest_matches(text: &str) -> bool {
    let Some(pos) = text.rfind(DIGEST_KEY) else {
        return false;
    };
    let recorded = text[pos + DIGEST_KEY.len()..].trim_end();
    content_digest(&text[..pos]) == recorded
}

/// Whose unit a file is, read from its `[X-Unitgen]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub app: String,
    pub instance: String,
    /// None for the instance's network unit.
    pub service: Option<String>,
}

/// The owner of a unit file unitgen wrote; None for any other file.
pub fn owner(text: &str) -> Option<Owner> {
    let section = text.split("\n[X-Unitgen]\n").nth(1)?;
    let mut owner = Owner {
        app: String::new(),
        instance: String::new(),
        service: None,
    };
    for line in section.lines().take_while(|l| !l.starts_with('[')) {
        match line.split_once('=') {
            Some(("App", v)) => owner.app = v.to_string(),
            Some(("Instance", v)) => owner.instance = v.to_string(),
            Some(("Service", v)) => owner.service = Some(v.to_string()),
            _ => {}
        }
    }
    (!owner.app.is_empty() && !owner.instance.is_empty()).then_some(owner)
}
