//! Routes: an instance's domains, served by the host's router (Traefik v3).
//!
//! How routing is laid out, along the one-way flow:
//!
//! - `template::schema::route`: the keys as written: `routes:` in an
//!   instance entry (`RouteDecl`), `router:` in the deployments file
//!   (`RouterDecl`), a service's `health_path`.
//! - `compile::route`: checks them (unknown service, a port the service does
//!   not publish, two instances claiming one host + path, bad names) into
//!   this module's [`Route`]s (in `Instance::routes`) and [`Router`]
//!   (`Instance::router`).
//! - `render::route`: an instance's routes → one Traefik dynamic
//!   configuration file (`<app>-<instance>.yaml`, file provider); the
//!   router's own unit is `templates/units/router.j2`.
//! - Traefik names (routers, services, middlewares) all start with the
//!   instance's prefix, so that files of different instances never clash
//!   in Traefik's one namespace per provider.
//!
//! Backends are reached through the port a service publishes on the host:
//! the router runs with the host's network, so a route's backend is
//! `http://<published address>:<host port>`, the same address a router on
//! another host (etcd) would use.
//!
//! With etcd (v3 API) configured, routes go to etcd instead of the file
//! (`render::route::etcd`): the routes unit writes the routers, middlewares
//! and service options under Traefik's KV layout (root key `traefik`), and
//! each routed service's announce sidekick writes its backend's URL under
//! its lease, so that a dead host's backends expire. Every host's router
//! reads etcd as well as its folder.

use std::path::{Path, PathBuf};

use crate::diagnostic::Location;

/// The official image, pinned: a new Traefik is a change you apply.
pub const DEFAULT_ROUTER_IMAGE: &str = "traefik:v3.7";
pub const DEFAULT_ROUTER_DIRECTORY: &str = "/var/lib/unitgen/router";
/// Let's Encrypt's production directory (Traefik's own default).
pub const DEFAULT_ACME_CA_SERVER: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The unit that runs the host's router.
pub const ROUTER_UNIT: &str = "unitgen-router.service";

/// The container that runs the host's router: `unitgen-router`, one per
/// host. For tests only, `UNITGEN_TEST_ROUTER_CONTAINER` names it otherwise
/// (letters, digits, `_.-`): the suite runs many sandboxed hosts on one
/// Docker engine, where one name made every routed test wait for the others
/// (tests/support/world.rs, `World::own_router`).
pub fn router_container() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("UNITGEN_TEST_ROUTER_CONTAINER")
            .ok()
            .filter(|name| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            })
            .unwrap_or_else(|| "unitgen-router".to_owned())
    })
}

/// Traefik's entry points, as the dynamic files name them.
pub const HTTP_ENTRY_POINT: &str = "web";
pub const HTTPS_ENTRY_POINT: &str = "websecure";
/// The certificate resolver of routes with `tls: acme` in the router's
/// folder: every router has it.
pub const ACME_RESOLVER: &str = "unitgen";

/// systemd's specifier for the host's machine ID (`/etc/machine-id`),
/// expanded by systemd in the router's and the routes unit's command lines.
pub const MACHINE_ID_SPECIFIER: &str = "%m";

/// The certificate resolver of routes with `tls: acme` in etcd, whose
/// keys every host's router reads: `unitgen-<machine ID>` of the host that
/// applied the instance, which only that host's router has. The others
/// order no certificate for those names (which DNS does not point at
/// them: Traefik logs `Router uses a nonexistent certificate resolver` and
/// serves the route with its default certificate). In units, with
/// [`MACHINE_ID_SPECIFIER`] for the ID.
pub fn host_resolver(machine_id: &str) -> String {
    format!("{ACME_RESOLVER}-{machine_id}")
}

/// One route of an instance: requests for `hosts` (and `path`) go to
/// `service`'s container `port`.
#[derive(Debug, Clone)]
pub struct Route {
    /// Unique among the instance's routes and, prefixed, on the host:
    /// `<app>-<instance>-<service>`, then `-2`, `-3`, … for more routes to
    /// the same service.
    pub name: String,
    /// Served as they are; the first is the main name aliases go to.
    pub hosts: Vec<String>,
    /// Redirected permanently to `hosts[0]`, path kept.
    pub aliases: Vec<String>,
    /// A path prefix (`/api`), or every path.
    pub path: Option<String>,
    pub service: String,
    pub port: u16,
    /// Where the router connects: the published address and host port.
    pub backend: Backend,
    pub tls: Tls,
    /// HTTP requests are redirected to HTTPS (only with TLS).
    pub https_redirect: bool,
    /// An htpasswd file on the machine running unitgen.
    pub basic_auth: Option<RouteFile>,
    /// The service's `health_path`: the router polls it and sends no
    /// request to a backend that fails it.
    pub health_path: Option<String>,
    /// Where the route was written, for a target that cannot serve it
    /// (fleet).
    pub at: Option<Location>,
}

impl Route {
    /// The users' files the router reads for this route.
    pub fn files(&self) -> Vec<&RouteFile> {
        let mut files = Vec::new();
        if let Tls::Files { certificate, key } = &self.tls {
            files.extend([certificate, key]);
        }
        files.extend(self.basic_auth.as_ref());
        files
    }

    pub fn files_mut(&mut self) -> Vec<&mut RouteFile> {
        let mut files = Vec::new();
        if let Tls::Files { certificate, key } = &mut self.tls {
            files.push(certificate);
            files.push(key);
        }
        files.extend(self.basic_auth.as_mut());
        files
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub address: String,
    pub port: u16,
}

impl Backend {
    pub fn url(&self) -> String {
        if self.address.contains(':') {
            format!("http://[{}]:{}", self.address, self.port)
        } else {
            format!("http://{}:{}", self.address, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    Off,
    /// A certificate from the router's ACME CA (HTTP-01).
    Acme,
    /// A certificate and key the user has: copied to the router's folder.
    Files {
        certificate: RouteFile,
        key: RouteFile,
    },
}

impl Tls {
    pub fn is_on(&self) -> bool {
        !matches!(self, Tls::Off)
    }
}

/// A file of the user's that the router reads: apply copies it into the
/// router's folder (`files/<app>-<instance>/<name>`), so that the router
/// container needs no access to where it came from.
#[derive(Debug, Clone)]
pub struct RouteFile {
    /// On the machine running unitgen (relative paths already joined to
    /// the folder of the file that named it).
    pub source: PathBuf,
    /// Its name in the instance's folder of the router's files.
    pub name: String,
    /// A digest of its content once read on the host: it goes into the
    /// dynamic file, so that a new certificate changes the file and
    /// Traefik reloads it.
    pub digest: Option<String>,
    /// Where its path was written: apply reads it, and says where a file
    /// it cannot read was named.
    pub at: Option<Location>,
}

/// The same file, wherever it was named.
impl PartialEq for RouteFile {
    fn eq(&self, other: &Self) -> bool {
        (&self.source, &self.name, &self.digest) == (&other.source, &other.name, &other.digest)
    }
}

impl Eq for RouteFile {}

/// The host's router: one Traefik for every app and instance with routes.
#[derive(Debug, Clone)]
pub struct Router {
    pub image: String,
    pub http_port: u16,
    pub https_port: u16,
    /// Listen on this address only; None: every address.
    pub address: Option<String>,
    /// The host folder of the router's files (see [`Router::dynamic_dir`]).
    pub directory: PathBuf,
    pub acme: Acme,
    /// The etcd (v3 API) endpoints whose routes the router also serves,
    /// when the deployment uses etcd: every host's router then reaches every
    /// host's instances (see `render::route::etcd`).
    pub etcd: Option<Vec<String>>,
    /// The `router:` block these settings come from; None: the defaults.
    pub declared_at: Option<Location>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acme {
    pub email: Option<String>,
    pub ca_server: String,
    /// A PEM file on the host the router trusts for the CA's HTTPS.
    pub ca_certificate: Option<String>,
}

impl Router {
    /// The `router:` key of the port the router listens on that publishing
    /// `port` would take too (`http_port` or `https_port`, on an address
    /// they share); None when it takes neither.
    pub fn port_taken_by(&self, port: &super::Port) -> Option<&'static str> {
        let host_port = port.host_port?;
        let key = if host_port == self.http_port {
            "http_port"
        } else if host_port == self.https_port {
            "https_port"
        } else {
            return None;
        };
        (port.protocol == super::Protocol::Tcp
            && super::addresses_overlap(port.host_ip.as_deref(), self.address.as_deref()))
        .then_some(key)
    }

    /// What makes this router what it is, in one line. The router unit
    /// records it (`[X-Unitgen] Settings=`): an apply whose router differs
    /// from the one that serves other instances is refused (see
    /// `router::refuse_other_settings`).
    pub fn settings(&self) -> String {
        let address = self.address.as_deref().unwrap_or("every address");
        let mut text = format!(
            "image {}, ports {} and {} on {address}, folder {}, ACME CA {}",
            self.image,
            self.http_port,
            self.https_port,
            self.directory.display(),
            self.acme.ca_server
        );
        if let Some(email) = &self.acme.email {
            text.push_str(&format!(" (account {email})"));
        }
        if let Some(ca) = &self.acme.ca_certificate {
            text.push_str(&format!(", CA certificate {ca}"));
        }
        if let Some(endpoints) = &self.etcd {
            text.push_str(&format!(", etcd {}", endpoints.join(",")));
        }
        text
    }

    /// One dynamic configuration file per instance; Traefik watches it.
    pub fn dynamic_dir(&self) -> PathBuf {
        self.directory.join("dynamic")
    }

    /// Copies of the users' certificates, keys and htpasswd files.
    pub fn files_dir(&self) -> PathBuf {
        self.directory.join("files")
    }

    /// The ACME account and certificates (`acme.json`, 0600): kept across
    /// restarts, so that a restart does not ask the CA again.
    pub fn acme_dir(&self) -> PathBuf {
        self.directory.join("acme")
    }

    /// `<app>-<instance>.yaml` in [`Router::dynamic_dir`].
    pub fn dynamic_file_name(prefix: &str) -> String {
        format!("{prefix}.yaml")
    }

    /// The file the routes unit of the instance `prefix` writes.
    pub fn dynamic_file(&self, prefix: &str) -> PathBuf {
        self.dynamic_dir().join(Self::dynamic_file_name(prefix))
    }
}

/// Where a routes file is made before it is renamed into place: the
/// router's own folder, the parent of the folder Traefik watches, on the
/// same file system. A temporary file in the watched folder made Traefik
/// reload for nothing, and its 2 s provider throttle then held the real
/// change back (see `unit_dir::write_atomic_watched`).
pub fn staging_dir(routes_file: &Path) -> &Path {
    (routes_file.parent())
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"))
}

/// Where the router container sees its folders (mounted from the host's).
pub const CONTAINER_DYNAMIC_DIR: &str = "/etc/unitgen-router/dynamic";
pub const CONTAINER_FILES_DIR: &str = "/etc/unitgen-router/files";
pub const CONTAINER_ACME_DIR: &str = "/etc/unitgen-router/acme";
pub const CONTAINER_CA_CERTIFICATE: &str = "/etc/unitgen-router/ca.pem";
