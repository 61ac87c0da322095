//! One instance of an app, fully resolved: every template expression
//! evaluated, every value checked. Rendering reads only this.

pub mod backup;
pub mod route;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::diagnostic::Location;

/// `<app>-<instance>`: the one place the naming rule is written (see
/// [`Instance::prefix`]).
pub fn prefix(app: &str, instance: &str) -> String {
    format!("{app}-{instance}")
}

/// The unit sections unitgen itself writes, which `systemd:` extras join.
pub const UNIT_SECTIONS: [&str; 3] = ["Unit", "Service", "Install"];

/// An app deployed as one named instance.
#[derive(Debug, Clone)]
pub struct Instance {
    pub app: String,
    pub instance: String,
    /// Services in dependency order: each after everything it depends on.
    pub services: Vec<Service>,
    /// Where services are announced, when they are (etcd configured).
    pub discovery: Option<Discovery>,
    pub fleet: FleetOptions,
    /// The secrets services use, by name, where their values come from.
    pub secrets: Vec<Secret>,
    /// Scheduled backups of the instance's data, when configured.
    pub backup: Option<backup::Backup>,
    /// The instance's domains, served by the host's router.
    pub routes: Vec<route::Route>,
    /// The host's router settings; None when the instance has no routes.
    pub router: Option<route::Router>,
}

/// What a routed service's stand-in adds to its container and unit names
/// (`blog-live-web.next`, `blog-live-web.next.service`).
pub const STANDIN_SUFFIX: &str = ".next";

/// A secret: a value that never goes into a unit file, read on the host by
/// `plan` and `apply` (see `crate::secrets`).
#[derive(Debug, Clone)]
pub struct Secret {
    pub name: String,
    pub source: SecretSource,
    /// Where the source was declared, for errors in reading it.
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    /// A variable of unitgen's own environment.
    Environment(String),
    /// A program and its arguments; its standard output is the value.
    Command(Vec<String>),
}

/// An environment variable of a service whose value is a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnv {
    pub variable: String,
    /// The name of the secret (see [`Instance::secrets`]).
    pub secret: String,
    /// A keyed digest of the value, once read on a host: it goes into the
    /// unit so that a changed value changes the unit, and reveals nothing.
    pub digest: Option<String>,
}

/// Announcing services in etcd, and resolving dependencies from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub endpoints: Vec<String>,
    pub api: EtcdApi,
    pub ttl_seconds: u64,
    /// Keys are `<prefix>/<app>/<instance>/<service>/<host>`.
    pub prefix: String,
    /// Announced for ports published on all interfaces; None: detect.
    pub address: Option<String>,
    pub wait_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdApi {
    V2,
    V3,
}

impl EtcdApi {
    /// As written in templates and in `[X-Unitgen]`: `v2`, `v3`.
    pub fn as_str(self) -> &'static str {
        match self {
            EtcdApi::V2 => "v2",
            EtcdApi::V3 => "v3",
        }
    }

    pub fn parse(text: &str) -> Option<EtcdApi> {
        [EtcdApi::V2, EtcdApi::V3]
            .into_iter()
            .find(|api| api.as_str() == text)
    }
}

/// The most copies of a service fleet is asked to run (see `fleet.copies`).
pub const MAX_FLEET_COPIES: u32 = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetOptions {
    /// `MachineMetadata=` values, `key=value`.
    pub metadata: Vec<String>,
    /// Services that run on every machine (`Global=true`).
    pub global: Vec<String>,
    pub copies: u32,
    /// fleet's API for the instance (`fleet.endpoint`), if the file gives it.
    pub endpoint: Option<String>,
}

impl Instance {
    /// `<app>-<instance>`: the prefix of every unit, container, network and
    /// scoped volume. App and instance names cannot contain `-`, so two
    /// different (app, instance) pairs never share a prefix.
    pub fn prefix(&self) -> String {
        self.prefixed(&[])
    }

    /// The prefix followed by `parts`, in one allocation: rendering asks
    /// for several such names per unit.
    fn prefixed(&self, parts: &[&str]) -> String {
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        let mut name = String::with_capacity(self.app.len() + 1 + self.instance.len() + len);
        for part in [&*self.app, "-", &self.instance].iter().chain(parts) {
            name.push_str(part);
        }
        name
    }

    /// The Docker network all services of this instance join.
    pub fn network(&self) -> String {
        self.prefix()
    }

    /// `<app>-<instance>.target`: the whole instance, as one unit.
    pub fn target(&self) -> String {
        self.prefixed(&[".target"])
    }

    pub fn network_unit(&self) -> String {
        self.prefixed(&["-network.service"])
    }

    /// A service's container name, which is also the base of its unit
    /// names (`<name>.service`, `<name>@.service`, `<name>-announce.service`).
    pub fn container(&self, service: &str) -> String {
        self.prefixed(&["-", service])
    }

    pub fn service_unit(&self, service: &str) -> String {
        self.prefixed(&["-", service, ".service"])
    }

    /// The etcd the instance's routes are written to (see `model::route`):
    /// with routes and a v3 etcd; None: they are a file on the host.
    pub fn routes_in_etcd(&self) -> Option<&Discovery> {
        self.router.as_ref()?.etcd.as_ref()?;
        self.discovery.as_ref()
    }

    /// The oneshot that writes (and, stopped, removes) the instance's
    /// routes for the host's router.
    pub fn routes_unit(&self) -> String {
        format!("{}-routes.service", self.prefix())
    }

    /// The oneshot that backs the instance up (its timer: `.timer`).
    pub fn backup_unit(&self) -> String {
        format!("{}-backup.service", self.prefix())
    }

    /// The container ports of `service` that routes send traffic to,
    /// sorted: a new version of the service is deployed beside the old one
    /// (see `systemd::handover`).
    pub fn routed_ports(&self, service: &str) -> Vec<u16> {
        let mut ports: Vec<u16> = (self.routes.iter())
            .filter(|r| r.service == service)
            .map(|r| r.port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The stand-in of a routed service during a deploy: its new version,
    /// beside the old one. `.` is in no service name, so no service's
    /// container or unit can be named so.
    pub fn standin_container(&self, service: &str) -> String {
        format!("{}{STANDIN_SUFFIX}", self.container(service))
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The etcd key folder where a service's copies announce themselves.
    pub fn discovery_key(&self, discovery: &Discovery, service: &str) -> String {
        format!(
            "{}/{}/{}/{}",
            discovery.prefix.trim_end_matches('/'),
            self.app,
            self.instance,
            service
        )
    }

    /// Every named volume this instance uses, by its Docker name.
    pub fn volume_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .services
            .iter()
            .flat_map(|s| &s.volumes)
            .filter_map(|v| match &v.source {
                VolumeSource::Named {
                    docker_name,
                    external: false,
                } => Some(docker_name.clone()),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[derive(Debug, Clone, Default)]
pub struct Service {
    pub name: String,
    pub image: String,
    /// Replaces the image's command (`CMD`).
    pub command: Option<Vec<String>>,
    /// Replaces the image's entrypoint: the first word is the program, the
    /// rest are placed before the command. Empty: no entrypoint at all.
    pub entrypoint: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    /// Variables set from secrets, through a root-only env file.
    pub secrets: Vec<SecretEnv>,
    pub env_files: Vec<String>,
    pub ports: Vec<Port>,
    pub volumes: Vec<Volume>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    /// Another network than the instance's (compose's `network_mode`).
    pub network_mode: Option<NetworkMode>,
    pub restart: Restart,
    pub healthcheck: Option<Healthcheck>,
    /// The path the router polls (`GET`, 2xx or 3xx is healthy) on a
    /// routed port of the service.
    pub health_path: Option<String>,
    pub labels: Vec<(String, String)>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    /// Where `cpus` was written: only the host that runs the service knows
    /// whether it has that many (see `docker::check_cpus_on_this_host`).
    pub cpus_at: Option<Location>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub read_only: bool,
    pub tmpfs: Vec<String>,
    pub init: bool,
    /// Services started before this one (and awaited: running, healthy, or
    /// for a one-shot, exited successfully).
    pub depends_on: Vec<String>,
    /// Dependencies whose restart (or stop) restarts (or stops) this
    /// service too: compose's `depends_on: {db: {restart: true}}`.
    pub restarts_with: Vec<String>,
    /// Runs to completion once per start of the instance (an init job):
    /// its dependents start only after it exited 0.
    pub oneshot: bool,
    /// Seconds Docker waits after the stop signal before it kills
    /// (`stop_grace_period`; default [`DEFAULT_STOP_GRACE_SECONDS`]).
    pub stop_grace_seconds: u64,
    /// `--stop-signal` as written and its number: the container's exit
    /// status after a clean stop is 128 + that number.
    pub stop_signal: Option<(String, u8)>,
    pub docker_args: Vec<String>,
    /// Extra unit keys: section → (key, value) in the order written; a
    /// section other than [`UNIT_SECTIONS`] is an `X-` one of the user's.
    pub systemd: BTreeMap<String, Vec<(String, String)>>,
}

/// Linux's SIGTERM, Docker's default stop signal.
const SIGTERM: u8 = 15;

impl Service {
    /// The exit status of `docker run` when the container ends on its stop
    /// signal: 128 + the signal's number (143 for SIGTERM, 130 for SIGINT).
    pub fn clean_stop_status(&self) -> u16 {
        128 + u16::from(self.stop_signal.as_ref().map_or(SIGTERM, |(_, n)| *n))
    }

    /// Every text the service's units carry, for checks over all of them.
    pub fn texts(&self) -> Vec<&str> {
        let mut texts = vec![self.name.as_str(), self.image.as_str()];
        let lists = [
            self.command.as_deref(),
            self.entrypoint.as_deref(),
            Some(&self.env_files[..]),
            Some(&self.tmpfs[..]),
            Some(&self.cap_add[..]),
            Some(&self.cap_drop[..]),
            Some(&self.depends_on[..]),
            Some(&self.docker_args[..]),
        ];
        texts.extend(lists.into_iter().flatten().flatten().map(String::as_str));
        let pairs = self
            .environment
            .iter()
            .chain(&self.labels)
            .chain(self.systemd.values().flatten());
        for (key, value) in pairs {
            texts.extend([key.as_str(), value.as_str()]);
        }
        texts.extend(self.systemd.keys().map(String::as_str));
        if let Some(NetworkMode::Service(name) | NetworkMode::Container(name)) = &self.network_mode
        {
            texts.push(name);
        }
        let optional = [
            &self.user,
            &self.working_dir,
            &self.hostname,
            &self.memory,
            &self.cpus,
        ];
        texts.extend(optional.into_iter().flatten().map(String::as_str));
        texts.extend(self.stop_signal.as_ref().map(|(name, _)| name.as_str()));
        for port in &self.ports {
            texts.extend(port.host_ip.as_deref());
        }
        for volume in &self.volumes {
            texts.push(&volume.target);
            match &volume.source {
                VolumeSource::Named { docker_name, .. } => texts.push(docker_name),
                VolumeSource::Bind(path) => texts.push(path),
                VolumeSource::Anonymous => {}
            }
        }
        if let Some(Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            ..
        }) = &self.healthcheck
        {
            match test {
                HealthTest::Shell(command) => texts.push(command),
                HealthTest::Exec(argv) => texts.extend(argv.iter().map(String::as_str)),
            }
            texts.extend(
                [interval, timeout, start_period]
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            );
        }
        texts
    }
}

/// Seconds Docker waits for a container to stop before killing it, as
/// `docker stop` does by default.
pub const DEFAULT_STOP_GRACE_SECONDS: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Whether two listeners' addresses (None: every address) share one, as
/// Docker binds them.
pub fn addresses_overlap(a: Option<&str>, b: Option<&str>) -> bool {
    let everywhere = |ip: Option<&str>| matches!(ip, None | Some("0.0.0.0" | "::"));
    everywhere(a) || everywhere(b) || a == b
}

/// A published port: `8000`, `8080:8000`, `127.0.0.1:8080:8000`, `[::1]:8080:8000`,
/// `53/udp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub host_ip: Option<String>,
    /// None: Docker picks a free host port.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl Port {
    /// The `docker run --publish` value.
    pub fn publish_arg(&self) -> String {
        let mut arg = String::new();
        if let Some(ip) = &self.host_ip {
            // Docker's form of an IPv6 address beside a port.
            match ip.contains(':') {
                true => arg.push_str(&format!("[{ip}]")),
                false => arg.push_str(ip),
            }
            arg.push(':');
            if self.host_port.is_none() {
                arg.push(':');
            }
        }
        if let Some(port) = self.host_port {
            arg.push_str(&format!("{port}:"));
        }
        arg.push_str(&self.container_port.to_string());
        if self.protocol == Protocol::Udp {
            arg.push_str("/udp");
        }
        arg
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A Docker volume; scoped to the instance unless declared external.
    Named { docker_name: String, external: bool },
    /// A host path.
    Bind(String),
    /// A fresh anonymous volume (only a container path was given).
    Anonymous,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub source: VolumeSource,
    pub target: String,
    pub read_only: bool,
    /// A bind mount's propagation (`rslave`), as written.
    pub propagation: Option<String>,
    /// SELinux relabelling: `z` (shared) or `Z` (private).
    pub relabel: Option<String>,
    /// A named volume's `nocopy`: the image's files are not copied in.
    pub nocopy: bool,
}

impl Volume {
    /// The `docker run --volume` value.
    pub fn volume_arg(&self) -> String {
        let mut arg = match &self.source {
            VolumeSource::Named { docker_name, .. } => format!("{docker_name}:{}", self.target),
            VolumeSource::Bind(path) => format!("{path}:{}", self.target),
            VolumeSource::Anonymous => self.target.clone(),
        };
        let mode: Vec<&str> = self
            .read_only
            .then_some("ro")
            .into_iter()
            .chain(self.propagation.as_deref())
            .chain(self.relabel.as_deref())
            .chain(self.nocopy.then_some("nocopy"))
            .collect();
        if !mode.is_empty() {
            arg.push(':');
            arg.push_str(&mode.join(","));
        }
        arg
    }
}

/// The network a service's container runs on instead of its instance's,
/// where the others find it by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// The host's own: the container listens on the host's ports.
    Host,
    /// No network but loopback.
    None,
    /// Docker's default bridge, outside the instance.
    Bridge,
    /// The network of another service of the instance: it reaches that
    /// service on localhost, and goes out through it (a VPN container).
    Service(String),
    /// The network of a container outside the instance, by its name.
    Container(String),
}

impl NetworkMode {
    /// The `docker run --network` value.
    pub fn network_arg(&self, instance: &Instance) -> String {
        match self {
            NetworkMode::Host => "host".into(),
            NetworkMode::None => "none".into(),
            NetworkMode::Bridge => "bridge".into(),
            NetworkMode::Service(name) => format!("container:{}", instance.container(name)),
            NetworkMode::Container(name) => format!("container:{name}"),
        }
    }

    /// Whether the container runs in another container's network
    /// namespace, whose ports, hostname and DNS it shares.
    pub fn is_shared(&self) -> bool {
        matches!(self, NetworkMode::Service(_) | NetworkMode::Container(_))
    }
}

/// How systemd restarts the container when it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    No,
    #[default]
    Always,
    /// Restart when it fails; with Docker's `on-failure:N`, at most N times
    /// after each start (N below `u32::MAX`: the unit's start counts too).
    OnFailure {
        max_restarts: Option<u32>,
    },
}

impl Restart {
    pub fn systemd_value(self) -> &'static str {
        match self {
            Restart::No => "no",
            Restart::Always => "always",
            Restart::OnFailure { .. } => "on-failure",
        }
    }

    /// `StartLimitBurst=` that lets a unit start once and restart N times.
    pub fn start_limit_burst(self) -> Option<u32> {
        match self {
            Restart::OnFailure {
                max_restarts: Some(n),
            } => Some(n + 1),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// Turn off the image's own healthcheck.
    Disabled,
    Check {
        test: HealthTest,
        interval: Option<String>,
        timeout: Option<String>,
        retries: Option<u32>,
        start_period: Option<String>,
    },
}

/// What Docker runs to check a container's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthTest {
    /// `CMD-SHELL`: a command line run with the container's `/bin/sh -c`.
    Shell(String),
    /// `CMD`: a program and its arguments, run without a shell, so that
    /// images with none (distroless, scratch) can be checked.
    Exec(Vec<String>),
}
