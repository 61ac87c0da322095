//! Model → unit files. The shapes of the units live as minijinja templates
//! in `templates/units/` (embedded in the binary); this module computes what
//! goes into them. Pure and deterministic: the same instance always renders
//! to the same bytes.

mod backup;
pub mod discovery;
pub mod docker;
pub mod env_file;
pub mod fleet;
pub mod route;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use minijinja::value::{Object, Serde};
use minijinja::{Environment, Error, ErrorKind, Output, State, Value, context};
use sha2::{Digest, Sha256};

use crate::escape::{
    CommandLines, ends_in_continuation, sh_quote, systemd_command, systemd_env, systemd_shell,
    systemd_value,
};
use crate::model::route::{ROUTER_UNIT, Router, router_container, staging_dir};
use crate::model::{Discovery, Healthcheck, Instance, Port, Protocol, STANDIN_SUFFIX, Service};
use docker::DOCKER;

/// One generated unit file (kept as JSON in a revision's `standins.json`,
/// which refuses what it does not know: see `state::written_by_newer`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitFile {
    pub name: String,
    pub text: String,
}

/// Which manager the units are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavour {
    /// The system manager of one host (`/etc/systemd/system`).
    #[default]
    System,
    /// A user's manager: no `docker.service` to depend on, started with
    /// the user's `default.target`.
    User,
    /// A fleet cluster: template units (`name@.service`) so the cluster
    /// decides how many copies run, spread over machines with `[X-Fleet]`.
    Fleet,
}

/// Key of the digest line in `[X-Unitgen]`.
pub const DIGEST_KEY: &str = "Digest=";

/// Key of a service unit's routed ports in `[X-Unitgen]` (service.j2).
pub const ROUTED_KEY: &str = "Routed=";

/// How long a start may take: it includes pulling the image, and the wait
/// for dependencies announced in etcd (at most `etcd.wait`, 60 s unless set).
const TIMEOUT_START: &str = "5min";
/// `TIMEOUT_START` in seconds (written as it is in the units already out there).
const TIMEOUT_START_SECONDS: u64 = 5 * 60;
/// What `TIMEOUT_START` leaves a start besides the default wait: a longer
/// wait gets a longer timeout, or systemd would end the start before the
/// wait does, with "timeout" rather than the missing address in the log.
const START_BESIDES_WAIT_SECONDS: u64 = 240;
/// Extra time systemd allows past Docker's own stop grace period.
const STOP_MARGIN_SECONDS: u64 = 30;

/// A service unit takes some 20µs to render, a thread some 50µs to start:
/// only instances with many services are worth splitting over cores.
const SERVICES_PER_THREAD: usize = 64;

/// The unit shapes (`templates/units/`), by name.
const UNIT_TEMPLATES: &[(&str, &str)] = &[
    ("service.j2", include_str!("../templates/units/service.j2")),
    ("network.j2", include_str!("../templates/units/network.j2")),
    ("target.j2", include_str!("../templates/units/target.j2")),
    (
        "announce.j2",
        include_str!("../templates/units/announce.j2"),
    ),
    (
        "fleet-cleanup.j2",
        include_str!("../templates/units/fleet-cleanup.j2"),
    ),
    ("backup.j2", include_str!("../templates/units/backup.j2")),
    (
        "backup-check.j2",
        include_str!("../templates/units/backup-check.j2"),
    ),
    (
        "backup-timer.j2",
        include_str!("../templates/units/backup-timer.j2"),
    ),
    (
        "backup-failed.j2",
        include_str!("../templates/units/backup-failed.j2"),
    ),
    ("router.j2", include_str!("../templates/units/router.j2")),
    ("routes.j2", include_str!("../templates/units/routes.j2")),
];

pub struct Renderer {
    env: Environment<'static>,
    flavour: Flavour,
    /// The state directory as the units see it: secrets env files are there.
    state_dir: PathBuf,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new(Flavour::System)
    }
}

impl Renderer {
    pub fn new(flavour: Flavour) -> Self {
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
        env.set_formatter(unit_formatter);
        // Each template is compiled when first used: most commands use
        // three of them, and compiling all eleven was a tenth of a
        // millisecond of every command's serial part.
        env.set_loader(|name| {
            let source = UNIT_TEMPLATES.iter().find(|(known, _)| *known == name);
            Ok(source.map(|(_, source)| source.to_string()))
        });
        Renderer {
            env,
            flavour,
            state_dir: PathBuf::from(crate::state::DEFAULT_STATE_DIR),
        }
    }

    /// Where units find the secrets env files: under this state directory
    /// (default `/var/lib/unitgen`).
    pub fn with_state_dir(mut self, dir: PathBuf) -> Self {
        self.state_dir = dir;
        self
    }

    /// Every unit of an instance, sorted by name.
    pub fn render(&self, instance: &Instance) -> Vec<UnitFile> {
        let mut units = Vec::new();
        if self.flavour != Flavour::Fleet {
            units.push(self.target_unit(instance));
            units.push(self.network_unit(instance));
        }
        // Dependencies are looked up by name: a scan per dependency would
        // grow with the square of the number of services.
        let by_name: HashMap<&str, &Service> = (instance.services.iter())
            .map(|s| (s.name.as_str(), s))
            .collect();
        // Each service's units depend on nothing rendered before them: a big
        // instance's are rendered on all cores.
        let per_service =
            crate::parallel::map(&instance.services, SERVICES_PER_THREAD, |service| {
                let unit = self.service_unit(instance, &by_name, service);
                let announce = (instance.discovery.as_ref())
                    .filter(|_| discovery::announced_port(service).is_some())
                    .map(|discovery| self.announce_unit(instance, discovery, service));
                (unit, announce)
            });
        for (unit, announce) in per_service {
            units.push(unit);
            units.extend(announce);
        }
        // A host's router serves the routes; a cluster's routes are etcd's.
        if self.flavour != Flavour::Fleet
            && let Some(unit) = self.routes_unit(instance)
        {
            units.push(unit);
        }
        // Backups are per host: a fleet cluster gets none.
        if self.flavour != Flavour::Fleet
            && let Some(backup) = &instance.backup
        {
            units.extend(self.backup_units(instance, backup));
        }
        units.sort_by(|a, b| a.name.cmp(&b.name));
        units
    }

    /// `blog-live-web.service`, or the template `blog-live-web@.service` for fleet.
    fn unit_name(&self, base: &str) -> String {
        match self.flavour {
            Flavour::Fleet => format!("{base}@.service"),
            _ => format!("{base}.service"),
        }
    }

    /// What the instance target's `[Install]` section hooks it into.
    fn boot_target(&self) -> &'static str {
        match self.flavour {
            Flavour::User => "default.target",
            _ => "multi-user.target",
        }
    }

    /// The instance target, which a unit is wanted by and part of; None
    /// under fleet, which starts units itself and has no such target.
    fn instance_target(&self, instance: &Instance) -> Option<String> {
        (self.flavour != Flavour::Fleet).then(|| instance.target())
    }

    fn target_unit(&self, instance: &Instance) -> UnitFile {
        let name = instance.target();
        let text = self.fill(
            "target.j2",
            context! {
                app => &instance.app,
                instance => &instance.instance,
                name => &name,
                description => systemd_value(&format!(
                    "{} {}: the whole instance",
                    instance.app, instance.instance
                )),
                wanted_by => self.boot_target(),
            },
        );
        UnitFile {
            name,
            text: with_digest(text),
        }
    }

    fn network_unit(&self, instance: &Instance) -> UnitFile {
        let network = instance.network();
        let text = self.fill(
            "network.j2",
            context! {
                app => &instance.app,
                instance => &instance.instance,
                requires => self.docker_dependency(),
                instance_target => instance.target(),
                wanted_by => instance.target(),
                remove => escaped(systemd_command(&[DOCKER, "network", "rm", &network])),
                create => shell(&network_script(instance)),
                network,
            },
        );
        UnitFile {
            name: instance.network_unit(),
            text: with_digest(text),
        }
    }

    /// A user manager has no docker.service to require.
    fn docker_dependency(&self) -> Option<&'static str> {
        (self.flavour != Flavour::User).then_some("docker.service")
    }

    fn service_unit(
        &self,
        instance: &Instance,
        by_name: &HashMap<&str, &Service>,
        service: &Service,
    ) -> UnitFile {
        self.service_unit_of(instance, by_name, service, None)
    }

    /// The stand-in of a routed service (see `systemd::handover`): its unit
    /// as it is, but for its names (`blog-live-web.next`), its ports (only
    /// the routed ones, on loopback ports Docker picks: the old container
    /// still holds the service's own) and its `[X-Unitgen-Standin]` section
    /// (so that no command counts it among the instance's units). None for
    /// a service that no route reaches.
    pub fn standin_unit(&self, instance: &Instance, service: &str) -> Option<UnitFile> {
        let routed = instance.routed_ports(service);
        let mut standin = instance.service(service)?.clone();
        if routed.is_empty() || standin.oneshot {
            return None;
        }
        standin.name = format!("{service}{STANDIN_SUFFIX}");
        standin.ports = (routed.into_iter())
            .map(|container_port| Port {
                host_ip: Some("127.0.0.1".into()),
                host_port: None,
                container_port,
                protocol: Protocol::Tcp,
            })
            .collect();
        // Not restarted with its dependencies: it lives for one apply.
        standin.restarts_with.clear();
        let by_name: HashMap<&str, &Service> = (instance.services.iter())
            .map(|s| (s.name.as_str(), s))
            .collect();
        Some(self.service_unit_of(instance, &by_name, &standin, Some(service)))
    }

    /// `standin_of`: the service whose stand-in this is (its secrets file
    /// is the service's own).
    fn service_unit_of(
        &self,
        instance: &Instance,
        by_name: &HashMap<&str, &Service>,
        service: &Service,
        standin_of: Option<&str>,
    ) -> UnitFile {
        let container = instance.container(&service.name);
        let base = &container;
        let healthcheck = matches!(service.healthcheck, Some(Healthcheck::Check { .. }));
        let mut requires: Vec<String> = self
            .docker_dependency()
            .into_iter()
            .map(String::from)
            .collect();
        let mut wants = Vec::new();
        let mut exec_start_pre: Vec<(&str, Value)> = Vec::new();
        let mut fleet_placement = None;
        if self.flavour == Flavour::Fleet {
            // No network unit on a cluster: each copy makes sure its
            // machine has the instance network.
            exec_start_pre.push((
                "Create the instance network on this machine unless it exists (one at a time).",
                shell(&fleet::ensure_network_script(instance)),
            ));
            let deps = fleet::dependencies(instance, service);
            wants.extend(deps.units.iter().cloned());
            fleet_placement = Some(deps);
        } else {
            requires.push(instance.network_unit());
            for dep in &service.depends_on {
                // A oneshot's failure must fail its dependents' start:
                // Requires. Other dependencies are Wants: a restarted
                // dependency must not restart its dependents, so an apply
                // touches only what changed.
                let unit = instance.service_unit(dep);
                if by_name.get(dep.as_str()).is_some_and(|d| d.oneshot) {
                    requires.push(unit);
                } else {
                    wants.push(unit);
                }
            }
        }
        let mut after = requires.clone();
        after.extend(wants.iter().cloned());
        // Under fleet nothing enables the sidekick into its service: the
        // copy wants it, so it comes back whenever the copy (re)starts.
        if self.flavour == Flavour::Fleet
            && instance.discovery.is_some()
            && discovery::announced_port(service).is_some()
        {
            wants.push(
                self.unit_name(&format!("{container}-announce"))
                    .replace("@.", "@%i."),
            );
        }
        if self.flavour == Flavour::Fleet {
            // Elsewhere the network unit does it, for all services at once.
            exec_start_pre.push((
                "Remove a container left over from an unclean stop, so the name is free.",
                escaped(format!(
                    "-{}",
                    systemd_command(&[DOCKER, "rm", "--force", &container])
                )),
            ));
        }

        if !service.env_files.is_empty() {
            exec_start_pre.push((
                "Read the env files as compose does (quotes, export, comments, ${VAR}) into the form docker run takes.",
                shell(&env_file::convert_script(
                    &service.env_files,
                    &container,
                    &service
                        .environment
                        .iter()
                        .map(|(name, _)| name.as_str())
                        .chain(service.secrets.iter().map(|s| s.variable.as_str()))
                        .collect::<Vec<_>>(),
                )),
            ));
        }
        if let Some((_, build)) = docker::health_image(instance, service) {
            exec_start_pre.push((
                "Docker runs an exec-form healthcheck without a shell only from an image: add it to one.",
                shell(&build),
            ));
        }
        let mut docker_run = CommandLines::new(&[DOCKER, "run", "--rm"]);
        let mut discovery_wait = None;
        if let Some(discovery) = &instance.discovery {
            let announced: Vec<&Service> = service
                .depends_on
                .iter()
                .filter_map(|d| by_name.get(d.as_str()).copied())
                .filter(|d| discovery::announced_port(d).is_some())
                .collect();
            if !announced.is_empty() {
                let env_file = discovery_env_path(&container);
                exec_start_pre.push((
                    "Read the addresses of dependencies from etcd (waiting for them to be announced).",
                    shell(&discovery::resolve_script(instance, discovery, &announced, &env_file)),
                ));
                docker_run.line(&["--env-file", &env_file]);
                discovery_wait = Some(discovery.wait_seconds);
            }
        }
        let secrets_file = (!service.secrets.is_empty()).then(|| {
            let owner = standin_of.unwrap_or(&service.name);
            crate::secrets::env_file(&self.state_dir, &instance.prefix(), owner)
                .to_string_lossy()
                .into_owned()
        });
        docker::push_run_args(
            &mut docker_run,
            instance,
            service,
            &container,
            secrets_file.as_deref(),
        );

        let extra_sections: Vec<(String, Vec<(String, String)>)> = service
            .systemd
            .iter()
            .filter(|(section, _)| !crate::model::UNIT_SECTIONS.contains(&section.as_str()))
            .map(|(section, entries)| (section.clone(), entries.clone()))
            .collect();
        let extra_service = extra_keys(service, "Service");
        let (x_fleet, fleet_notes) = match &fleet_placement {
            Some(deps) => (
                fleet::service_x_fleet(instance, &service.name, deps.machine_of.as_deref()),
                deps.notes.clone(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let grace = service.stop_grace_seconds.to_string();
        let instance_target = self.instance_target(instance);
        let ends_when_done = ends_when_done(service, &extra_service);
        let text = self.fill(
            "service.j2",
            Value::from_object(ServiceValues {
                app: Value::from(&*instance.app),
                instance: Value::from(&*instance.instance),
                service: Value::from(&*service.name),
                // What apply pulls before it restarts anything (checked
                // image references: nothing to escape).
                image: Value::from(&*service.image),
                description: Value::from(systemd_value(&format!(
                    "{} {}: {} ({})",
                    instance.app, instance.instance, service.name, service.image
                ))),
                // Joined here: a filter call per unit costs more.
                requires: Value::from(requires.join(" ")),
                wants: Value::from(wants.join(" ")),
                after: Value::from(after.join(" ")),
                exec_start_pre: Value::from(Serde(&exec_start_pre)),
                remove_container: escaped(systemd_command(&[DOCKER, "rm", "--force", &container])),
                docker_run: escaped(docker_run.into_text()),
                healthcheck: Value::from(healthcheck),
                ends_when_done: Value::from(ends_when_done),
                wait_ready: escaped(docker::wait_ready_command(
                    &container,
                    healthcheck,
                    ends_when_done,
                )),
                docker_stop: escaped(systemd_command(&[
                    DOCKER, "stop", "--time", &grace, &container,
                ])),
                clean_stop_status: Value::from(service.clean_stop_status()),
                stop_signal: Value::from(
                    service
                        .stop_signal
                        .as_ref()
                        .map_or("SIGTERM", |(name, _)| name.as_str()),
                ),
                restart: Value::from(service.restart.systemd_value()),
                start_limit_burst: Value::from(service.restart.start_limit_burst()),
                // fleet places copies itself: no dependencies between units.
                part_of: Value::from(if self.flavour == Flavour::Fleet {
                    String::new()
                } else {
                    words(
                        service
                            .restarts_with
                            .iter()
                            .map(|d| instance.service_unit(d)),
                    )
                }),
                oneshot: Value::from(service.oneshot),
                standin_of: Value::from(standin_of),
                routed: Value::from(if standin_of.is_none() && self.flavour != Flavour::Fleet {
                    words(instance.routed_ports(&service.name))
                } else {
                    String::new()
                }),
                // Like compose, a oneshot is waited for as long as it runs.
                timeout_start: Value::from(match discovery_wait {
                    _ if service.oneshot => "infinity".to_string(),
                    Some(wait) if wait + START_BESIDES_WAIT_SECONDS > TIMEOUT_START_SECONDS => {
                        format!("{}s", wait + START_BESIDES_WAIT_SECONDS)
                    }
                    _ => TIMEOUT_START.to_string(),
                }),
                timeout_stop: Value::from(format!(
                    "{}s",
                    service.stop_grace_seconds + STOP_MARGIN_SECONDS
                )),
                instance_target: Value::from(instance_target),
                extra_unit: Value::from(Serde(extra_keys(service, "Unit"))),
                // Keys the user sets replace unitgen's own, rather than
                // appearing twice.
                overridden: Value::from(
                    extra_service
                        .iter()
                        .map(|(k, _)| k.clone())
                        .collect::<Vec<_>>(),
                ),
                extra_service: Value::from(Serde(extra_service)),
                extra_install: Value::from(Serde(extra_keys(service, "Install"))),
                extra_sections: Value::from(Serde(extra_sections)),
                x_fleet: Value::from(x_fleet),
                fleet_notes: Value::from(fleet_notes),
                // Names and digests only: `VARIABLE SECRET [hmac-sha256:…]`.
                secrets: Value::from(
                    service
                        .secrets
                        .iter()
                        .map(|env| {
                            let mut line = format!("{} {}", env.variable, env.secret);
                            if let Some(digest) = &env.digest {
                                line.push(' ');
                                line.push_str(digest);
                            }
                            line
                        })
                        .collect::<Vec<_>>(),
                ),
            }),
        );
        UnitFile {
            name: self.unit_name(base),
            text: with_digest(text),
        }
    }

    fn announce_unit(
        &self,
        instance: &Instance,
        discovery: &Discovery,
        service: &Service,
    ) -> UnitFile {
        let healthcheck = matches!(service.healthcheck, Some(Healthcheck::Check { .. }));
        let service_template = self.unit_name(&instance.container(&service.name));
        // A sidekick serves the copy of its own number (`%i`) under fleet.
        let service_unit = match self.flavour {
            Flavour::Fleet => service_template.replace("@.", "@%i."),
            _ => service_template.clone(),
        };
        let endpoints = discovery.endpoints.join(",");
        let text = self.fill(
            "announce.j2",
            context! {
                app => &instance.app,
                instance => &instance.instance,
                service => &service.name,
                key => instance.discovery_key(discovery, &service.name),
                api => discovery.api.as_str(),
                api_number => discovery::api_number(discovery.api),
                interval => discovery::refresh_interval(discovery),
                ttl => discovery.ttl_seconds,
                healthcheck,
                route_servers => (discovery::routes_announced(instance, service).iter())
                    .map(|r| route::etcd::servers_folder(r))
                    .collect::<Vec<_>>(),
                description => systemd_value(&format!(
                    "{} {}: announce {} in etcd",
                    instance.app, instance.instance, service.name
                )),
                service_unit => &service_unit,
                instance_target => self.instance_target(instance),
                endpoints_env => escaped(systemd_env(&format!("ETCDCTL_ENDPOINTS={endpoints}"))),
                // Compile admits only plain URLs, so they stand as they are.
                endpoints => &endpoints,
                announce => shell(&discovery::announce_script(instance, discovery, service, healthcheck)),
                withdraw => shell(&discovery::withdraw_script(instance, discovery, service)),
                // Enabled into its service: it starts whenever the service does.
                wanted_by => (self.flavour != Flavour::Fleet).then(|| service_unit.clone()),
                x_fleet => if self.flavour == Flavour::Fleet {
                    fleet::sidekick_x_fleet(instance, &service_unit)
                } else {
                    Vec::new()
                },
            },
        );
        UnitFile {
            name: self.unit_name(&format!("{}-announce", instance.container(&service.name))),
            text: with_digest(text),
        }
    }

    /// The unit `destroy --fleet` runs on every machine (of the instance's
    /// metadata) after the instance's units are gone, to remove its network.
    pub fn fleet_cleanup_unit(&self, app: &str, instance: &str, metadata: &[String]) -> UnitFile {
        let network = crate::model::prefix(app, instance);
        let text = self.fill(
            "fleet-cleanup.j2",
            context! {
                app,
                instance,
                cleanup => shell(&fleet::cleanup_script(app, instance)),
                // As the instance's units had them (escaped already).
                metadata => metadata.iter().map(|m| format!("MachineMetadata={m}")).collect::<Vec<_>>(),
                network => &network,
            },
        );
        UnitFile {
            name: format!("{network}-network-cleanup.service"),
            text,
        }
    }

    /// The unit that puts the instance's routes where the router reads
    /// them, while the instance runs.
    fn routes_unit(&self, instance: &Instance) -> Option<UnitFile> {
        let router = instance.router.as_ref()?;
        let yaml = route::dynamic_file(instance)?;
        let dir = router.dynamic_dir().display().to_string();
        let prefix = instance.prefix();
        let routes_file = router.dynamic_file(&prefix);
        let staging = staging_dir(&routes_file).display().to_string();
        let file = routes_file.display().to_string();
        let etcd = instance.routes_in_etcd();
        let mut routed: Vec<String> = (instance.routes.iter())
            .map(|r| instance.service_unit(&r.service))
            .collect();
        routed.sort();
        routed.dedup();
        // The backends' folders: the announce sidekicks'.
        let servers: Vec<String> = (instance.routes.iter())
            .map(route::etcd::servers_folder)
            .collect();
        let text = self.fill(
            "routes.j2",
            context! {
                app => &instance.app,
                instance => &instance.instance,
                description => systemd_value(&format!(
                    "{} {}: routes, served by the host's router",
                    instance.app, instance.instance
                )),
                router_unit => ROUTER_UNIT,
                after => routed,
                instance_target => instance.target(),
                file => &file,
                write => shell(&route::write_script(&dir, &staging, &file, &yaml)),
                routes_digest => content_digest(route::written(&yaml).as_bytes()),
                routes_mark => route::mark_of(&yaml, &Router::dynamic_file_name(&prefix)),
                etcd_digest => etcd.map(|_| route::etcd_digest(&route::etcd_pairs(instance).unwrap_or_default())),
                remove => escaped(systemd_command(&["/bin/rm", "-f", &file])),
                etcd_write => etcd.map(|_| shell(&route::etcd::write_script(&prefix, &route::etcd_pairs(instance).unwrap_or_default(), &servers))),
                etcd_remove => etcd.map(|_| shell(&route::etcd::remove_script(&prefix, &servers))),
                etcd_root => route::etcd::ROOT_KEY,
                machine_id_variable => route::etcd::MACHINE_ID_VARIABLE,
                // Compile admits only plain URLs, so they stand as they are.
                etcd_endpoints => etcd.map(|d| d.endpoints.join(",")),
                etcd_endpoints_env => etcd.map(|d| escaped(systemd_env(&format!("ETCDCTL_ENDPOINTS={}", d.endpoints.join(","))))),
            },
        );
        Some(UnitFile {
            name: instance.routes_unit(),
            text: with_digest(text),
        })
    }

    /// The host's router: one Traefik for every instance with routes.
    pub fn router_unit(&self, router: &Router) -> UnitFile {
        let text = self.fill(
            "router.j2",
            context! {
                image => &router.image,
                http_port => router.http_port,
                https_port => router.https_port,
                dynamic_dir => router.dynamic_dir().display().to_string(),
                requires => self.docker_dependency(),
                remove_container => escaped(systemd_command(&[DOCKER, "rm", "--force", router_container()])),
                make_folders => route::make_folders_commands(router).map(escaped),
                docker_run => escaped(route::docker_run(router)),
                reads_etcd => router.etcd.is_some(),
                docker_stop => escaped(systemd_command(&[DOCKER, "stop", "--time", "30", router_container()])),
                wanted_by => self.boot_target(),
                settings => router.settings(),
                directory => router.directory.display().to_string(),
            },
        );
        UnitFile {
            name: ROUTER_UNIT.to_string(),
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

/// Declares the struct of the values a unit template reads and the lookup
/// by which it reads them, from one list of names: the template looks each
/// name up as it runs, and a map of them all (`context!`) is searched key
/// by key, some fifty times per unit. `alias => field` adds another name
/// for a field.
macro_rules! template_values {
    (
        $(#[$meta:meta])*
        struct $name:ident {
            $($(#[$field_meta:meta])* $field:ident,)*
        }
        $(aliases { $($alias:literal => $target:ident,)* })?
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        struct $name {
            $($(#[$field_meta])* $field: Value,)*
        }

        impl Object for $name {
            fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
                let value = match key.as_str()? {
                    $(stringify!($field) => &self.$field,)*
                    $($($alias => &self.$target,)*)?
                    _ => return None,
                };
                Some(value.clone())
            }
        }
    };
}

template_values! {
    /// What `service.j2` reads, by the names it reads them by.
    struct ServiceValues {
        app,
        instance,
        service,
        image,
        description,
        requires,
        wants,
        after,
        exec_start_pre,
        remove_container,
        docker_run,
        healthcheck,
        ends_when_done,
        wait_ready,
        docker_stop,
        clean_stop_status,
        stop_signal,
        restart,
        start_limit_burst,
        part_of,
        oneshot,
        standin_of,
        routed,
        timeout_start,
        timeout_stop,
        /// Also what the unit is wanted by.
        instance_target,
        extra_unit,
        overridden,
        extra_service,
        extra_install,
        extra_sections,
        x_fleet,
        fleet_notes,
        secrets,
    }
    aliases {
        "wanted_by" => instance_target,
    }
}

/// Creates the instance's network (if it is not there), then removes the
/// instance's containers left over, whatever their state and whether the
/// network was there or not. None of its services runs then (each requires
/// the network unit, so starts after it and stops before it): such a
/// container is left over from a host whose systemd stopped without
/// stopping them (killed, or a container that runs systemd restarted), or
/// from a `docker run` killed between creating and starting its container,
/// and holds a name a service needs. Its network may be gone (removed by
/// hand, or by the network unit's stop: a stopped container does not keep
/// it), so the leftovers are found by the instance's labels alone, which
/// only its own containers carry (`unitgen.app` and `unitgen.instance`,
/// matched exactly): never another app's or instance's. A few engine calls
/// before any service can start; a `docker rm` before each service's start
/// cost a call per service (a service's own `ExecStopPost=` removes its
/// container whenever it stops).
fn network_script(instance: &Instance) -> Vec<String> {
    let network = sh_quote(&instance.network());
    let (app, name) = (sh_quote(&instance.app), sh_quote(&instance.instance));
    // Under the lock fleet's copies take (see `fleet::one_network_lines`):
    // Docker allows two networks of one name (two creates at once, one of
    // them left running by a killed client), and then every service's
    // `docker run --network` fails as ambiguous; the start repairs it.
    let (lock_and_list, keep_one) = fleet::one_network_lines(instance);
    let mut script = lock_and_list;
    script.extend([
        "if [ -z \"$ids\" ]; then".into(),
        format!(
            "  {DOCKER} network create --label unitgen.app={app} --label unitgen.instance={name} {network} >/dev/null ||"
        ),
        // Made meanwhile: by a create whose client (an earlier start of
        // this unit's, stopped by a restart job) was killed after asking.
        format!(
            "  {{ {}; [ -n \"$ids\" ] || exit 1; }};",
            fleet::list_networks(instance)
        ),
        "fi;".into(),
    ]);
    script.extend(keep_one);
    if let Some(last) = script.last_mut() {
        last.push(';');
    }
    script.extend([
        format!(
            "ids=$({DOCKER} ps --all --quiet --filter label=unitgen.app={app} --filter label=unitgen.instance={name});"
        ),
        // A leftover that cannot be removed makes its service's start fail,
        // which says why; the network itself is there.
        format!("[ -z \"$ids\" ] || {DOCKER} rm --force $ids >/dev/null || :"),
    ]);
    script
}

fn shell(script: &[String]) -> Value {
    let lines: Vec<&str> = script.iter().map(String::as_str).collect();
    escaped(systemd_shell(&lines))
}

/// Text already escaped for a unit file by `escape` (a command line, which
/// may continue over several lines), to be written as it is.
fn escaped(text: String) -> Value {
    Value::from_safe_string(text)
}

/// Writes each `{{ value }}` of a unit template, keeping the one rule for
/// unit files: no value adds, ends or joins a line. Escaped command lines
/// may only continue a line (`\` before the line break); other text may
/// not break one at all. Compile refuses what breaks the rule (see
/// `escape::check_raw_value`), so a breach here is a bug: rendering stops
/// rather than write a unit whose meaning a value changed.
fn unit_formatter(out: &mut Output, _: &mut State, value: &Value) -> Result<(), Error> {
    // Strings (nearly every value) are written without a copy.
    let owned;
    let text = match value.as_str() {
        Some(text) => text,
        None => {
            owned = value.to_string();
            &owned
        }
    };
    match line_breach(text, value.is_safe()) {
        Some(why) => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("unescaped value {text:?} would change the unit's lines: {why}"),
        )),
        None => out
            .write_str(text)
            .map_err(|_| Error::from(ErrorKind::WriteFailure)),
    }
}

/// How `text` would add, end or join a unit line, if it would. An escaped
/// command line may continue over lines, with `\` before each break.
fn line_breach(text: &str, escaped: bool) -> Option<&'static str> {
    // Every byte of every value of every unit passes here, most in runs
    // with no control character: 16 bytes at a time are found free of the
    // three (all below 0x0e) in a few vector instructions, and only a run
    // with one is looked at byte by byte.
    const RUN: usize = 16;
    let bytes = text.as_bytes();
    let mut breaks_line = false;
    let mut look = |from: usize, run: &[u8]| {
        if !run.iter().fold(false, |any, &b| any | (b < 0x0e)) {
            return None;
        }
        for (at, &byte) in (from..).zip(run) {
            match byte {
                b'\r' | 0 => return Some("a carriage return or NUL ends the line"),
                b'\n' if !breaks_line => {
                    breaks_line = !(escaped && ends_in_continuation(&text[..at]));
                }
                _ => {}
            }
        }
        None
    };
    let runs = bytes.chunks_exact(RUN);
    let rest = runs.remainder();
    for (i, run) in runs.enumerate() {
        if let Some(why) = look(i * RUN, run) {
            return Some(why);
        }
    }
    if let Some(why) = look(bytes.len() - rest.len(), rest) {
        return Some(why);
    }
    if ends_in_continuation(text) {
        return Some("a trailing backslash joins the next line");
    }
    breaks_line.then_some("a line break starts a new directive")
}

/// `items` separated by spaces, as a unit lists units or ports.
fn words<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let mut text = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        let _ = write!(text, "{item}");
    }
    text
}

/// Whether a service that is not a oneshot is done when its container
/// exits 0, as compose has it for `restart: "no"` and `on-failure` (a data
/// container, an init job): its unit stays active (exited), so that apply,
/// plan and status count it converged, and its dependents' starts do not
/// run it again; it runs again at the instance's next start. Not with
/// `Restart=` or `RemainAfterExit=` set by the user's `systemd:` section:
/// those decide.
fn ends_when_done(service: &Service, extra_service: &[(String, String)]) -> bool {
    !service.oneshot
        && service.restart != crate::model::Restart::Always
        && !(extra_service.iter()).any(|(key, _)| key == "Restart" || key == "RemainAfterExit")
}

/// The user's extra keys for one section of a service unit.
fn extra_keys(service: &Service, section: &str) -> Vec<(String, String)> {
    service.systemd.get(section).cloned().unwrap_or_default()
}

/// Appends `Digest=sha256:…` (of everything before it) to the unit's last
/// section, `[X-Unitgen]`, so that later commands can tell a hand-edited
/// unit from one unitgen wrote.
fn with_digest(text: String) -> String {
    let hash = Sha256::digest(text.as_bytes());
    // A copy of just the unit's size: the template's buffer is sized for
    // the longest units, and thousands of units are held until written.
    let mut unit = String::with_capacity(text.len() + DIGEST_KEY.len() + DIGEST_TEXT_LEN + 1);
    unit.push_str(&text);
    unit.push_str(DIGEST_KEY);
    push_digest(&mut unit, &hash);
    unit.push('\n');
    unit
}

/// `sha256:` and 64 hex digits.
const DIGEST_TEXT_LEN: usize = "sha256:".len() + 64;

pub fn content_digest(bytes: &[u8]) -> String {
    let mut digest = String::with_capacity(DIGEST_TEXT_LEN);
    push_digest(&mut digest, &Sha256::digest(bytes));
    digest
}

fn push_digest(out: &mut String, hash: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("sha256:");
    for byte in hash {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
}

/// Whether apply starts (and restarts) this unit, rather than a timer or
/// another unit's `OnFailure=`.
pub fn started_by_apply(unit: &UnitFile) -> bool {
    owner(&unit.text).is_none_or(|o| o.started_by.is_none())
}

/// The kinds of unit file unitgen writes.
pub fn is_unit_file_name(name: &str) -> bool {
    name.ends_with(".service") || name.ends_with(".timer") || name.ends_with(".target")
}

/// Whether a unit file's digest line still matches its content.
pub fn digest_matches(text: &str) -> bool {
    let Some(pos) = text.rfind(DIGEST_KEY) else {
        return false;
    };
    let recorded = text[pos + DIGEST_KEY.len()..].trim_end();
    content_digest(&text.as_bytes()[..pos]) == recorded
}

/// Where a service's unit keeps what its start makes for its `docker run`,
/// each file named after its container: its `env_file:`s rewritten as
/// compose reads them ([`env_file::converted_path`], 0600: they may hold
/// secrets) and its dependencies' addresses read from etcd
/// ([`discovery_env_path`]). The names are those of units anyone can read.
pub const RUN_DIR: &str = "/run/unitgen";

/// Where a service's unit writes the addresses of its dependencies.
pub fn discovery_env_path(container: &str) -> String {
    format!("{RUN_DIR}/{container}.env")
}

/// The files a service's unit makes in [`RUN_DIR`] for its container, and
/// the temporary files they are written through (left by a kill).
pub fn run_files(container: &str) -> Vec<String> {
    let made = [
        env_file::converted_path(container),
        discovery_env_path(container),
    ];
    (made.iter())
        .flat_map(|path| [path.clone(), format!("{path}.tmp")])
        .collect()
}

/// Whose unit a file is, read from its `[X-Unitgen]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    pub app: String,
    pub instance: String,
    /// The service a service unit runs; None for the network unit and sidekicks.
    pub service: Option<String>,
    /// The image a service unit runs.
    pub image: Option<String>,
    /// The service a sidekick announces.
    pub announces: Option<String>,
    /// Where a sidekick announces: etcd key folder, API and endpoints.
    pub key: Option<String>,
    pub etcd_api: Option<String>,
    pub endpoints: Option<String>,
    /// What starts the unit when it is not apply (a timer, `OnFailure=`):
    /// apply installs it but never starts or restarts it.
    pub started_by: Option<String>,
    /// A timer's calendar expression.
    pub schedule: Option<String>,
    /// The image a backup unit runs to read and write volume data: not a
    /// service, but fetched by apply like one.
    pub helper_image: Option<String>,
    /// The container ports routes send to: a new version is deployed
    /// beside the old one (see `systemd::handover`).
    pub routed: Vec<u16>,
    /// The routes file a routes unit writes (`templates/units/routes.j2`).
    pub routes: Option<String>,
    /// The digest of that file as written ([`content_digest`]).
    pub routes_digest: Option<String>,
    /// The path of that file's mark (`route::mark_path`), which the router
    /// answers once it serves the file as written; None in files of an
    /// older unitgen.
    pub routes_mark: Option<String>,
    /// The digest of the keys it writes in etcd ([`route::etcd_digest`]).
    pub routes_in_etcd: Option<String>,
    /// The Docker network a network unit makes (`templates/units/network.j2`).
    pub network: Option<String>,
}

impl Owner {
    /// The container a service unit runs (`<app>-<instance>-<service>`, as
    /// `model::Instance::container` names it); None for other units.
    pub fn container(&self) -> Option<String> {
        let service = self.service.as_ref()?;
        Some(format!(
            "{}-{service}",
            crate::model::prefix(&self.app, &self.instance)
        ))
    }
}

/// The owner of a unit file unitgen wrote; None for any other file. Its
/// app, instance and service are names a compile takes, or the file is
/// none unitgen wrote (a unit folder read with --root, a user's own
/// folder): what it names goes into paths, Docker's arguments, messages,
/// the commands they suggest, and the docs.
pub fn owner(text: &str) -> Option<Owner> {
    let section = text.split("\n[X-Unitgen]\n").nth(1)?;
    let mut owner = Owner::default();
    for line in section.lines().take_while(|l| !l.starts_with('[')) {
        match line.split_once('=') {
            Some(("App", v)) => owner.app = v.to_string(),
            Some(("Instance", v)) => owner.instance = v.to_string(),
            Some(("Service", v)) => owner.service = Some(v.to_string()),
            Some(("Image", v)) => owner.image = Some(v.to_string()),
            Some(("Announces", v)) => owner.announces = Some(v.to_string()),
            Some(("Key", v)) => owner.key = Some(v.to_string()),
            Some(("EtcdApi", v)) => owner.etcd_api = Some(v.to_string()),
            Some(("Endpoints", v)) => owner.endpoints = Some(v.to_string()),
            Some(("StartedBy", v)) => owner.started_by = Some(v.to_string()),
            Some(("Schedule", v)) => owner.schedule = Some(v.to_string()),
            Some(("HelperImage", v)) => owner.helper_image = Some(v.to_string()),
            Some(("Routes", v)) => owner.routes = Some(v.to_string()),
            Some(("RoutesDigest", v)) => owner.routes_digest = Some(v.to_string()),
            Some(("RoutesMark", v)) => owner.routes_mark = Some(v.to_string()),
            Some(("RoutesInEtcd", v)) => owner.routes_in_etcd = Some(v.to_string()),
            Some(("Network", v)) => owner.network = Some(v.to_string()),
            Some(("Routed", v)) => {
                owner.routed = v.split(' ').filter_map(|p| p.parse().ok()).collect();
            }
            _ => {}
        }
    }
    use crate::compile::syntax::{check_app_or_instance_name, check_service_name};
    let names = [&owner.service, &owner.announces];
    let valid = check_app_or_instance_name(&owner.app).is_ok()
        && check_app_or_instance_name(&owner.instance).is_ok()
        && (names.into_iter().flatten()).all(|name| check_service_name(name).is_ok());
    valid.then_some(owner)
}

/// The app and instance a stand-in's unit file names (its
/// `[X-Unitgen-Standin]` section): no unit of the instance's, it lives
/// for one apply (see `systemd::handover`).
pub fn standin_owner(text: &str) -> Option<(String, String)> {
    let section = text.split("\n[X-Unitgen-Standin]\n").nth(1)?;
    let field = |key: &str| {
        (section.lines())
            .take_while(|l| !l.starts_with('['))
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    Some((field("App")?, field("Instance")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_shape_compiles_when_first_used() {
        let renderer = Renderer::new(Flavour::System);
        for (name, _) in UNIT_TEMPLATES {
            if let Err(e) = renderer.env.get_template(name) {
                panic!("templates/units/{name}: {e:#}");
            }
        }
    }

    #[test]
    fn only_escaped_command_lines_may_continue_a_line() {
        assert_eq!(line_breach("plain value", false), None);
        assert_eq!(line_breach("a \\\n    b", true), None);
        // Past the first 16 bytes, and in the last, shorter run.
        let long = "/usr/bin/docker run --rm --name blog-live-web";
        assert_eq!(line_breach(&format!("{long} \\\n    {long}"), true), None);
        for (text, escaped) in [
            (&*format!("{long} {long}\r"), true),
            (&format!("{long}\0{long}"), false),
            (&format!("{long} \\\n    {long}\n{long}"), true),
            (&format!("{long}\n"), false),
            ("a \\\n    b", false),
            ("a\nExecStartPre=/bin/x", true),
            ("a\r[Service]", true),
            ("nul\0", false),
            ("joins\\", true),
            ("joins\\", false),
        ] {
            assert!(line_breach(text, escaped).is_some(), "{text:?}");
        }
    }
}
