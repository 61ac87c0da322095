//! `unitgen import`: a docker-compose file → the equivalent unitgen template,
//! plus a warning for everything that could not be carried over as written.
//! Pure: the caller reads the files and decides where the output goes.
//!
//! Compose keys that unitgen has are copied under the same name; keys that
//! are one `docker run` flag go to `docker_args`; what neither can express is
//! warned about, never dropped silently. Compose variables (`${TAG:-1.0}`)
//! become instance values (`{{ tag }}`), their defaults the values of the one
//! instance declared.

pub(crate) mod emit;
mod env_file;
mod extends;
mod include;
mod interpolate;
mod merge;
mod node;
mod service;
mod volumes_from;
mod yaml_number;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::compile::syntax;
use crate::diagnostic::{Location, Problem, Problems, SourceFile};
use emit::{Map, Scalar, Value};
use interpolate::Piece;
use node::{Key, Kind, Node, Place};

/// What the importer needs besides the compose file.
#[derive(Debug, Clone)]
pub struct Options {
    /// The app name; when `None`, compose's `name:` or the folder's name.
    pub app: Option<String>,
    /// The one instance to declare.
    pub instance: String,
    /// The compose file's folder, absolute: relative paths are resolved
    /// against it, as compose does.
    pub dir: PathBuf,
    /// The home folder, for `~/…` paths.
    pub home: Option<PathBuf>,
    /// Variables from the `.env` file beside the compose file.
    pub dotenv: Vec<(String, String)>,
    /// Warnings about the files beside the compose file, given first: what
    /// of `.env` compose completes from the shell it runs in
    /// ([`dotenv_warnings`]), an override file compose would merge in.
    pub beside_notes: Vec<Warning>,
    /// The active compose profiles (`--profile`, `COMPOSE_PROFILES`); `*`
    /// activates all.
    pub profiles: Vec<String>,
    /// Reads another compose file (`extends: {file: …}`, `include`).
    pub read: fn(&Path) -> std::io::Result<String>,
}

/// The profiles `docker compose up` activates (compose-go's
/// `WithDefaultProfiles`, applied after `.env` is read): those of
/// `--profile`, which replace `COMPOSE_PROFILES`; else `COMPOSE_PROFILES`
/// split at commas, each name trimmed. Unset, that split gives the empty
/// name, so `profiles: [""]` (private-gpt's default mode, and
/// `profiles: [${COMPOSE_PROFILES:-}]`) runs with plain `docker compose up`
/// and not beside a profile given.
pub fn active_profiles(flags: &[String], dotenv: &[(String, String)]) -> Vec<String> {
    if !flags.is_empty() {
        return flags.to_vec();
    }
    let listed = dotenv
        .iter()
        .rev()
        .find(|(name, _)| name == "COMPOSE_PROFILES")
        .map_or("", |(_, value)| value.as_str());
    listed
        .split(',')
        .map(|name| name.trim().to_string())
        .collect()
}

/// An imported template.
#[derive(Debug)]
pub struct Imported {
    /// The unitgen template, ready to write.
    pub yaml: String,
    pub app: String,
    pub services: usize,
    /// Everything not carried over as written, in file order.
    pub warnings: Vec<Warning>,
}

/// Something in the compose file that the template does not say as compose
/// did.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// The file it is in, when not the compose file named first (`.env`,
    /// an override file, an included file).
    pub file: Option<String>,
    pub line: u64,
    pub column: u64,
    /// The compose service it is about, if any.
    pub service: Option<String>,
    /// The compose key it is about: `build`, `deploy.replicas`, `networks`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:{}: ", self.line)?;
        }
        if let Some(service) = &self.service {
            write!(f, "{service}: ")?;
        }
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Converts the compose file `file` (with the files it includes) into a
/// unitgen template.
pub fn import(file: &SourceFile, options: &Options) -> Result<Imported, Problems> {
    import_files(std::slice::from_ref(file), options)
}

/// Converts a compose project into a unitgen template: `files` merged as
/// compose merges them (`-f files[0] -f files[1] …`; the first names the
/// project), each with the files it includes.
pub fn import_files(files: &[SourceFile], options: &Options) -> Result<Imported, Problems> {
    // `${PWD}` is the folder compose ran in, which its shell sets and a
    // unit has not: most often the compose file's (`$PWD:/app`).
    let pwd_is_dir = !options.dotenv.iter().any(|(name, _)| name == "PWD");
    let mut with_pwd = options.clone();
    if pwd_is_dir {
        let dir = options.dir.display().to_string();
        with_pwd.dotenv.insert(0, ("PWD".to_string(), dir));
    }
    let options = &with_pwd;
    let mut importer = Importer {
        files: Vec::new(),
        merged: Vec::new(),
        included: Vec::new(),
        options: options.clone(),
        pwd_is_dir,
        values: IndexMap::new(),
        warnings: Vec::new(),
        problems: Problems::default(),
        service: None,
        names: HashMap::new(),
        networks_used: IndexMap::new(),
        named_volumes: Vec::new(),
        oneshots: HashSet::new(),
        healthchecked: HashSet::new(),
        health_awaited: HashSet::new(),
        included_values: HashMap::new(),
        scaled_to_zero: HashSet::new(),
        providers: HashMap::new(),
        replicas: HashMap::new(),
        replica_of: HashMap::new(),
        varying_defaults: HashSet::new(),
        static_addresses: HashMap::new(),
        container_names: HashMap::new(),
        link_aliases: HashMap::new(),
        bind_volumes: HashMap::new(),
        tmpfs_volumes: HashMap::new(),
        volumes_of: HashMap::new(),
        volumes_from: Vec::new(),
        relative_paths_said: HashSet::new(),
        invalid_said: HashSet::new(),
    };
    // `.env`'s first: the compose file's values come from it.
    importer.warnings = options.beside_notes.clone();
    let mut root: Option<Node> = None;
    for file in files {
        let id = importer.add_file(file.clone());
        // Its path, for include cycles (`-f` files are read from the cwd,
        // shown relative to it, most often in the project's folder).
        let path = Path::new(file.name())
            .file_name()
            .map(|name| options.dir.join(name));
        let mut chain: Vec<PathBuf> = path.into_iter().collect();
        let documents = importer.documents(node::read(file, id)?);
        let node = importer.load(documents, &options.dir.clone(), &mut chain);
        root = Some(match root {
            None => node,
            Some(base) => {
                importer.merged.push(file.name().to_string());
                importer.merging(|merger| merger.files(base, node))
            }
        });
    }
    let Some(root) = root.map(merge::without_resets) else {
        return Err(Problem::new("no compose file given").into());
    };
    match importer.document(&root) {
        Some((yaml, app, services)) if importer.problems.is_empty() => Ok(Imported {
            yaml,
            app,
            services,
            warnings: importer.warnings,
        }),
        _ => Err(importer.problems),
    }
}

/// Reads a `.env` file as compose does (compose-go's dotenv): `NAME=value`
/// (or `NAME: value`) lines, `#` comments, an optional `export`; a value in
/// single quotes as written, in double quotes with escapes (`\n`, `\"`,
/// `\\`, `\$`) and over several lines; unquoted up to a ` #` comment; in
/// both but single quotes, `${VAR}` of the lines before expanded.
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    parse_dotenv_within(text, &[])
}

/// [`parse_dotenv`] of an included project's `.env`, whose `${VAR}` compose
/// looks up in the including project's variables (`outer`) before the
/// file's own lines (compose-go's dotenv: its lookup first).
fn parse_dotenv_within(text: &str, outer: &[(String, String)]) -> Vec<(String, String)> {
    // Where in `text` a slice of it starts.
    let start = |part: &str| part.as_ptr() as usize - text.as_ptr() as usize;
    // Just after the line break that ends the line `from` is in.
    let after_line = |from: usize| text[from..].find('\n').map_or(text.len(), |i| from + i + 1);
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let line_start = pos;
        pos = after_line(line_start);
        let line = text[line_start..pos]
            .trim_end_matches(['\n', '\r'])
            .trim_start();
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // `NAME=value`, or YAML's `NAME: value`.
        let Some(at) = line.find(['=', ':']) else {
            continue;
        };
        let name = line[..at].trim();
        let named = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
        if name.is_empty() || !name.bytes().all(named) {
            continue;
        }
        let source = line[at + 1..].trim_start_matches([' ', '\t']);
        let value = match source.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                // A quoted value may go on over the next lines.
                let Some((inner, after)) = quoted(&text[start(source) + 1..], quote) else {
                    // Unclosed: compose refuses the file; nothing more is read.
                    break;
                };
                pos = after_line(start(after));
                if quote == '"' {
                    expand(&unescape(&inner), outer, &vars)
                } else {
                    inner
                }
            }
            _ => {
                let value = source.split_once(" #").map_or(source, |(v, _)| v);
                expand(value.trim_end(), outer, &vars)
            }
        };
        match vars.iter_mut().find(|(n, _)| n == name) {
            Some(var) => var.1 = value,
            None => vars.push((name.to_string(), value)),
        }
    }
    vars
}

/// The lines of a `.env` (`text`, shown as `file`) whose values compose
/// completes from the shell it runs in (`$HOME`, a bare `NAME`), which
/// import does not read, for [`Options::beside_notes`].
pub fn dotenv_warnings(text: &str, file: &str) -> Vec<Warning> {
    dotenv_warnings_within(text, file, &[])
}

/// [`dotenv_warnings`] of an included project's `.env`: a variable the
/// including project's (`outer`) gives is not the shell's.
fn dotenv_warnings_within(text: &str, file: &str, outer: &[(String, String)]) -> Vec<Warning> {
    let given = |name: &str| outer.iter().any(|(n, _)| n == name);
    env_file::shell_values(text, &given)
        .into_iter()
        .map(|(line, message)| Warning {
            file: Some(file.to_string()),
            line: line as u64,
            column: 1,
            service: None,
            key: "variables".to_string(),
            message,
        })
        .collect()
}

/// The text of a quoted value up to its closing `quote` (a backslash keeps
/// the next character, itself kept too but before a quote), and what
/// follows; None when it is not closed.
fn quoted(text: &str, quote: char) -> Option<(String, &str)> {
    let mut inner = String::new();
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if c == quote && !escaped {
            return Some((inner, &text[i + 1..]));
        }
        if c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if escaped && c != quote {
            inner.push('\\');
        }
        escaped = false;
        inner.push(c);
    }
    None
}

/// A double-quoted value's escapes, as compose reads them (Go's: `\n`,
/// `\t`, `\\`, …; `\$` is a literal `$`; any other stays as written).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('a') => out.push('\u{7}'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('$') => out.push_str("$$"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `${VAR}`, `$VAR`, `${VAR:-default}`… of the lines before, as compose
/// expands them in `.env` (`$$` is a `$`); a value it cannot read stays as
/// written.
fn expand(value: &str, outer: &[(String, String)], vars: &[(String, String)]) -> String {
    let find = |name: &str| {
        outer
            .iter()
            .chain(vars)
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let set = |name: &str| find(name).is_some();
    match interpolate::parse_with(value, &set) {
        Ok(pieces) => interpolate::resolve(&pieces, &|name| find(name).unwrap_or_default()),
        Err(_) => value.to_string(),
    }
}

/// An instance value made from a compose variable.
struct InstanceValue {
    /// Its first use as the compose file writes it (`$V`, `${V:?why}`),
    /// quoted in warnings.
    written: String,
    value: Option<String>,
    /// Used somewhere where it needs a value (not only in `${V:+…}`).
    needed: bool,
    /// Left out of the instance: used where an empty value is invalid.
    undeclared: bool,
    /// `${V:?message}`: the message.
    required: Option<String>,
    /// The use that needs a value (its place, text and service), told
    /// when there is none: the first required one, else the first
    /// without a default (`$PORT` where `${PORT:-3000}` came first).
    needing: Option<(Place, String, Option<String>)>,
}

struct Importer {
    /// Every file read, by its number in [`Place::file`]: the compose files
    /// given, in their order, then those they include or extend from.
    files: Vec<SourceFile>,
    /// The files merged over the first, and those included, as shown.
    merged: Vec<String>,
    included: Vec<String>,
    /// Owned: an included project's `.env` adds to `dotenv`.
    options: Options,
    /// Instance values by unitgen name, in order of first use.
    values: IndexMap<String, InstanceValue>,
    warnings: Vec<Warning>,
    problems: Problems,
    /// The compose service being converted, for warnings.
    service: Option<String>,
    /// Compose service name → unitgen service name.
    names: HashMap<String, String>,
    /// Compose network → the services that joined it.
    networks_used: IndexMap<String, Vec<String>>,
    /// Named volumes services use, for the note on their new names.
    named_volumes: Vec<String>,
    /// Compose services others wait for with
    /// `condition: service_completed_successfully`: oneshots.
    oneshots: HashSet<String>,
    /// Compose services with a healthcheck (their own, or their `extends`
    /// base's).
    healthchecked: HashSet<String>,
    /// Those whose `healthcheck` checks (not `disable: true`, not
    /// `test: [NONE]`): their units' start waits until they are healthy.
    health_awaited: HashSet<String>,
    /// Variables whose value only an included project's `.env` gives: that
    /// file, as shown, and the numbers of the files the project is made of.
    included_values: HashMap<String, (String, std::ops::Range<usize>)>,
    /// Compose services of `deploy.replicas: 0` or `scale: 0`, which
    /// `docker compose up` runs no container of: left out.
    scaled_to_zero: HashSet<String>,
    /// Compose services a provider plugin runs instead of a container
    /// (`provider: {type: model}`): left out; service → provider type.
    providers: HashMap<String, String>,
    /// Compose services of `deploy.replicas` (or `scale`) above 1: the names
    /// of their copies, services of their own (`worker-2`…), and back.
    replicas: HashMap<String, Vec<String>>,
    replica_of: HashMap<String, String>,
    /// Variables given different defaults at different uses: each use keeps
    /// its own.
    varying_defaults: HashSet<String>,
    /// The fixed addresses services had on compose networks
    /// (`ipv4_address`), which unitgen does not give them: address → service.
    static_addresses: HashMap<String, String>,
    /// Named volumes that are host folders (`driver_opts: {type: none, o:
    /// bind, device: /srv/x}`): volume name → the folder.
    bind_volumes: HashMap<String, String>,
    /// Named volumes the local driver makes a tmpfs (`driver_opts: {type:
    /// tmpfs, device: tmpfs}`: kong's prefix): volume name → its mount
    /// options (`o`), maybe none.
    tmpfs_volumes: HashMap<String, String>,
    /// `${PWD}` is given the compose file's folder (no `.env` sets it).
    pwd_is_dir: bool,
    /// Services' `container_name`s, as compose resolves them → the service:
    /// `network_mode: container:NAME` of one is its service's network.
    container_names: HashMap<String, String>,
    /// The aliases `links: [netmaker:api]` give services, which are their
    /// network aliases: service → aliases (see [`link_aliases`]).
    link_aliases: HashMap<String, Vec<String>>,
    /// Each compose service's volumes as carried over, for the services
    /// that mount them too (`volumes_from`).
    volumes_of: HashMap<String, Vec<Mounted>>,
    /// `volumes_from`: the service, and each service it takes the volumes of.
    volumes_from: Vec<(String, Vec<VolumesFrom>)>,
    /// Relative host paths already said to be made absolute: said once, at
    /// the first use, however many services mount the same folder.
    relative_paths_said: HashSet<String>,
    /// Values whose `${…}` compose cannot read, refused once each.
    invalid_said: HashSet<String>,
}

/// One service of a `volumes_from`, with the mode it forces (`:ro` is
/// `Some(true)`, `:rw` `Some(false)`) and where it is written.
type VolumesFrom = (String, Option<bool>, Place);

/// A volume a service mounts, as written into the template.
#[derive(Clone)]
struct Mounted {
    /// The target as compose compares targets.
    target: String,
    /// The volume without its mode.
    volume: String,
    read_only: bool,
    /// A bind's propagation (`rslave`).
    propagation: Option<String>,
}

/// Top-level compose keys read before the services, which refer to them.
#[derive(Default)]
struct Globals<'n> {
    secrets: Option<&'n Node>,
    configs: Option<&'n Node>,
    networks: Option<(&'n Key, &'n Node)>,
}

impl Importer {
    /// Warns about `key` of the service being converted (or of the file).
    fn warn(&mut self, at: &Place, key: &str, message: impl Into<String>) {
        let service = self.service.clone();
        self.warn_about(service, at, key, message.into());
    }

    fn warn_about(&mut self, service: Option<String>, at: &Place, key: &str, message: String) {
        let file = (at.file > 0).then(|| self.files[at.file].name().to_string());
        self.warnings.push(Warning {
            file,
            line: at.line(),
            column: at.column(),
            service,
            key: key.to_string(),
            message,
        });
    }

    /// A refusal, one line as the warnings are: it quotes the compose
    /// file's values (names, paths), whose line feeds are shown as `\n`.
    fn error(&mut self, at: &Place, message: impl Into<String>) {
        let location = Location::from_yaml(&self.files[at.file], &at.at);
        let message = crate::diagnostic::shown(&message.into());
        self.problems.push(Problem::new(message).at(&location));
    }

    /// Numbers a file read, for the places of its nodes.
    fn add_file(&mut self, file: SourceFile) -> usize {
        self.files.push(file);
        self.files.len() - 1
    }

    /// Reads another file (an included or extended one) as nodes placed in
    /// it; None, with its problems recorded, when it is not YAML.
    fn read_other(&mut self, source: SourceFile) -> Option<Node> {
        let id = self.add_file(source.clone());
        match node::read(&source, id) {
            Ok(documents) => Some(self.documents(documents)),
            Err(problems) => {
                self.problems.0.extend(problems.0);
                None
            }
        }
    }

    /// A file's YAML documents merged in order, as compose merges them.
    fn documents(&mut self, documents: Vec<Node>) -> Node {
        let mut documents = documents.into_iter();
        let first = documents
            .next()
            .expect("a file is read as one document at least");
        documents.fold(first, |base, next| {
            self.merging(|merger| merger.files(base, next))
        })
    }

    /// A compose file as compose reads it before merging it with others
    /// (compose-go's `loadYamlFile`): the projects it includes added, then
    /// its services extended. `dir` is the folder its relative paths
    /// start from; `chain` the files including it, for cycles.
    fn load(&mut self, mut root: Node, dir: &Path, chain: &mut Vec<PathBuf>) -> Node {
        // Includes first, so that a service may extend an included one
        // (compose-go's loadYamlFile).
        if let Kind::Map(entries) = &mut root.kind
            && let Some(i) = entries.iter().position(|(k, _)| k.name == "include")
        {
            let (key, list) = entries.remove(i);
            self.include(&mut root, &key, &list, dir, chain);
        }
        // `extends` may name any service of the file, even one left out;
        // compose merges it in first, the base's `profiles` too, and then
        // picks the services of the active profiles.
        if let Kind::Map(entries) = &root.kind
            && let Some(services) = entries
                .iter()
                .find(|(k, _)| k.name == "services")
                .and_then(|(_, v)| v.entries())
        {
            let mut extended = Vec::with_capacity(services.len());
            for (key, def) in services {
                self.service = Some(key.name.clone());
                let def = self
                    .extended(def, services, dir, 0)
                    .unwrap_or_else(|| def.clone());
                extended.push((key.clone(), def));
            }
            self.service = None;
            if let Kind::Map(entries) = &mut root.kind
                && let Some((_, services)) = entries.iter_mut().find(|(k, _)| k.name == "services")
            {
                services.kind = Kind::Map(extended);
            }
        }
        root
    }

    /// Runs `merge` with what it needs of the importer; what compose refuses
    /// to merge is an error at its place.
    fn merging(&mut self, merge: impl FnOnce(&mut merge::Merger) -> Node) -> Node {
        let resolve = |text: &str| {
            self.as_compose_resolves(text)
                .unwrap_or_else(|| text.to_string())
        };
        let mut merger = merge::Merger {
            resolve: &resolve,
            refused: Vec::new(),
        };
        let out = merge(&mut merger);
        for refused in merger.refused {
            self.error(&refused.at, refused.message);
        }
        out
    }

    /// Reports a node of the wrong shape.
    fn expected(&mut self, node: &Node, key: &str, what: &str) {
        let whose = match &self.service {
            Some(service) => format!(" of service `{service}`"),
            None => String::new(),
        };
        self.error(
            &node.at,
            format!("`{key}`{whose}: expected {what}, found {}", node.what()),
        );
    }

    /// The whole file → the template text, app name and number of services.
    fn document(&mut self, root: &Node) -> Option<(String, String, usize)> {
        let Some(entries) = root.entries() else {
            self.expected(root, "the compose file", "a map with `services:`");
            return None;
        };
        self.varying_defaults = varying_defaults(root, &self.options.dotenv);
        let mut globals = Globals::default();
        let mut compose_name = None;
        let mut services_node = None;
        let mut volumes_node = None;
        for (key, value) in entries {
            match key.name.as_str() {
                "services" => services_node = Some(value),
                "volumes" => volumes_node = Some(value),
                "name" => compose_name = self.plain_text(value, "name"),
                // Obsolete in compose too.
                "version" => {}
                "secrets" => globals.secrets = Some(value),
                "configs" => globals.configs = Some(value),
                "networks" => globals.networks = Some((key, value)),
                // Extension fields hold YAML anchors; their content is
                // carried over where it is merged in.
                name if name.starts_with("x-") => {}
                // Said at each service that uses one (`service::models`).
                "models" => {}
                other => self.warn(
                    &key.at,
                    other,
                    "not a compose key unitgen knows: not carried over",
                ),
            }
        }
        let app = self.app_name(compose_name.as_deref());
        let project = project_name(compose_name.as_deref(), &self.options.dir, &app);

        let Some(services_node) = services_node else {
            // Compose's first file format (Rocket.Chat's and zulip's old
            // files): services at the top, which docker compose no longer reads.
            let version_one = entries
                .iter()
                .any(|(_, def)| def.get("image").is_some() || def.get("build").is_some());
            let message = match version_one {
                true => {
                    "the compose file has no `services:`: its services are at the top, as in compose's first file format, which docker compose no longer reads; indent them under `services:`"
                }
                false => "the compose file has no `services:`",
            };
            self.error(&root.at, message);
            return None;
        };
        let Some(service_entries) = services_node.entries() else {
            self.expected(
                services_node,
                "services",
                "a map of service names to definitions",
            );
            return None;
        };
        if service_entries.is_empty() {
            self.error(&services_node.at, "the compose file has no services");
            return None;
        }
        self.interpolates_everywhere(root, "");
        let service_entries = &self.select_profiles(service_entries);
        let service_entries = &self.leave_out_scaled_to_zero(service_entries);
        self.name_services(service_entries);
        self.static_addresses = self.static_addresses(service_entries);
        self.container_names = service_entries
            .iter()
            .filter_map(|(key, def)| {
                let name = def.get("container_name")?.scalar()?;
                Some((self.as_compose_resolves(&name)?, key.name.clone()))
            })
            .collect();
        self.link_aliases = link_aliases(service_entries, &self.names, &self.container_names);
        (self.bind_volumes, self.tmpfs_volumes) =
            volumes_node.map(local_driver_volumes).unwrap_or_default();
        self.oneshots = awaited_to_complete(service_entries);
        self.healthchecked = service_entries
            .iter()
            .filter(|(_, def)| def.get("healthcheck").is_some())
            .map(|(name, _)| name.name.clone())
            .collect();
        self.health_awaited = service_entries
            .iter()
            .filter(|(_, def)| def.get("healthcheck").is_some_and(checks_health))
            .map(|(name, _)| name.name.clone())
            .collect();
        let mut services = Map::default();
        for (key, def) in service_entries {
            self.service = Some(key.name.clone());
            // A copy says nothing its service did not say.
            let said = (self.warnings.len(), self.problems.0.len());
            if let Some(value) = self.service_def(key, def, &globals, &project) {
                services.set(&self.names[&key.name].clone(), value);
            }
            if self.replica_of.contains_key(&key.name) {
                self.warnings.truncate(said.0);
                self.problems.0.truncate(said.1);
            }
        }
        self.service = None;
        self.mount_volumes_from(&mut services);
        if let Some((key, networks)) = globals.networks {
            let apart = kept_apart(service_entries, &self.networks_used);
            self.top_networks(key, networks, apart);
        }
        let volumes = volumes_node.and_then(|v| self.top_volumes(v, &app));

        services.spaced = true;
        let mut doc = Map {
            spaced: true,
            ..Map::default()
        };
        doc.set("app", Value::text(&app));
        let count = services.entries.len();
        doc.set("services", Value::Map(services));
        if let Some(volumes) = volumes {
            doc.set("volumes", Value::Map(volumes));
        }
        let values = self.instance_values();
        let mut instances = Map::default();
        instances.set(&self.options.instance, Value::Map(values));
        doc.set("instances", Value::Map(instances));

        // `.env`'s first, then each file's in its order.
        let rank = |w: &Warning| {
            let file = w.file.as_deref();
            let compose = self.files.iter().position(|f| Some(f.name()) == file);
            (compose.is_some() || file.is_none(), compose.unwrap_or(0))
        };
        self.warnings.sort_by_key(|w| (rank(w), w.line, w.column));
        let mut text = self.header();
        doc.write(&mut text);
        Some((text, app, count))
    }

    /// The services `docker compose up` runs: those without `profiles` and
    /// those of an active profile. Every `profiles` is warned about: an
    /// instance has no profiles, it runs every service of its template. As
    /// compose does ("depends on undefined service"), a file whose service
    /// depends on one that is not there or left out is refused.
    fn select_profiles(&mut self, entries: &[(Key, Node)]) -> Vec<(Key, Node)> {
        let options = self.options.clone();
        let options = &options;
        let active = &options.profiles;
        let profiles_of = |def: &Node| -> Option<(Place, Vec<String>)> {
            let (key, list) = def.entries()?.iter().find(|(k, _)| k.name == "profiles")?;
            // Compose replaces variables in profile names too
            // (`profiles: [${COMPOSE_PROFILES:-}]`).
            let names = list
                .items()
                .unwrap_or_default()
                .iter()
                .filter_map(Node::scalar)
                .map(|name| resolve_as_compose(&name, &options.dotenv).unwrap_or(name))
                .collect::<Vec<_>>();
            Some((key.at, names))
        };
        let enabled = |def: &Node| match profiles_of(def) {
            None => true,
            Some((_, names)) => {
                names.is_empty()
                    || active.iter().any(|a| a == "*")
                    || names.iter().any(|n| active.contains(n))
            }
        };
        let inactive = |names: &[String]| match names {
            [one] => format!("profile {} is not active", shown_profile(one)),
            _ => format!(
                "none of its profiles {} is active",
                names
                    .iter()
                    .map(|n| shown_profile(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut kept = Vec::new();
        for (key, def) in entries {
            if !enabled(def) {
                continue;
            }
            for (dep, at) in needs(def) {
                let message = match entries.iter().find(|(k, _)| k.name == dep) {
                    None => format!(
                        "service `{}` depends on `{dep}`, which is not a service of this file: compose refuses the file (\"depends on undefined service\")",
                        key.name
                    ),
                    Some((_, other)) if !enabled(other) => {
                        let names = profiles_of(other).map(|(_, n)| n).unwrap_or_default();
                        let first = names.first().map_or("", String::as_str);
                        format!(
                            "service `{}` depends on `{dep}`, which `docker compose up` leaves out while {}: compose refuses the file (\"depends on undefined service\"); import with `{}`, or mark the dependency `required: false`",
                            key.name,
                            inactive(&names),
                            profile_flag(first)
                        )
                    }
                    Some(_) => continue,
                };
                self.error(&at, message);
            }
        }
        for (key, def) in entries {
            let Some((at, names)) = profiles_of(def) else {
                kept.push((key.clone(), def.clone()));
                continue;
            };
            let message = if enabled(def) {
                let on = names
                    .iter()
                    .find(|n| active.contains(n))
                    .map_or("*", String::as_str);
                format!(
                    "unitgen has no profiles: profile {} is active, so this service runs in every instance",
                    shown_profile(on)
                )
            } else {
                let first = names.first().map_or("", String::as_str);
                format!(
                    "unitgen has no profiles: left out, as `docker compose up` leaves it out while {}; import with `{}` to make it part of every instance",
                    inactive(&names),
                    profile_flag(first)
                )
            };
            self.warn_about(Some(key.name.clone()), &at, "profiles", message);
            if enabled(def) {
                kept.push((key.clone(), def.clone()));
            }
        }
        kept
    }

    /// Each service's `ipv4_address` on its compose networks, as compose
    /// resolves it (`${IPV4_NETWORK:-172.22.1}.254`): mailcow points every
    /// service's `dns` at one of them.
    fn static_addresses(&self, entries: &[(Key, Node)]) -> HashMap<String, String> {
        let mut addresses = HashMap::new();
        for (key, def) in entries {
            let networks = def
                .get("networks")
                .and_then(Node::entries)
                .unwrap_or_default();
            for (_, network) in networks {
                let Some(address) = network.get("ipv4_address").and_then(Node::scalar) else {
                    continue;
                };
                if let Some(resolved) = self.as_compose_resolves(&address) {
                    addresses.insert(resolved, key.name.clone());
                }
            }
        }
        addresses
    }

    /// `text` with its variables replaced as compose replaces them (from
    /// `.env`, else their defaults), without recording them as values.
    fn as_compose_resolves(&self, text: &str) -> Option<String> {
        resolve_as_compose(text, &self.options.dotenv)
    }

    /// `--app`, else compose's `name:`, else the folder's name, made valid.
    fn app_name(&self, compose_name: Option<&str>) -> String {
        if let Some(app) = &self.options.app {
            return app.clone();
        }
        let folder = self.options.dir.file_name().map(|n| n.to_string_lossy());
        let source = compose_name
            .map(str::to_string)
            .or(folder.map(|f| f.into_owned()));
        let mut name = syntax::suggest_name(source.as_deref().unwrap_or(""), '_');
        name.truncate(48);
        let name = name.trim_end_matches('_').to_string();
        if name.is_empty() { "app".into() } else { name }
    }

    /// unitgen service names are DNS labels: `my_db` becomes `my-db`.
    fn name_services(&mut self, entries: &[(Key, Node)]) {
        let mut taken: Vec<String> = Vec::new();
        for (key, _) in entries {
            let mut name = syntax::suggest_name(&key.name, '-');
            if syntax::check_service_name(&name).is_err() {
                name = format!("{}-svc", name.trim_end_matches("-announce"));
            }
            name.truncate(63);
            let base = name.trim_end_matches('-').to_string();
            name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            taken.push(name.clone());
            self.names.insert(key.name.clone(), name);
        }
    }

    // ---- Scalars, with compose variables ----

    /// A string's pieces, its variables recorded as instance values.
    fn pieces(&mut self, text: &str, at: &Place, key: &str) -> Vec<Piece> {
        let dotenv = &self.options.dotenv;
        let set = |name: &str| dotenv.iter().any(|(n, _)| n == name);
        match interpolate::parse_with(text, &set) {
            Ok(mut pieces) => {
                interpolate::keep_defaults(&mut pieces, &self.varying_defaults);
                self.record(&pieces, at, key);
                pieces
            }
            // compose refuses the file ("invalid interpolation format").
            Err(_) if self.invalid_said.contains(text) => vec![Piece::Text(text.to_string())],
            Err(msg) => {
                self.invalid_said.insert(text.to_string());
                let whose = match &self.service {
                    Some(service) => format!(" of service `{service}`"),
                    None => String::new(),
                };
                self.error(
                    at,
                    format!(
                        "`{key}`{whose}: {msg}: compose refuses the file (invalid interpolation)"
                    ),
                );
                vec![Piece::Text(text.to_string())]
            }
        }
    }

    /// Compose interpolates every value of the file as it loads it
    /// (compose-go's `Interpolate`), those of services it leaves out with
    /// their profile and of `x-` fields too, and refuses the file at any
    /// `${…}` it cannot read (mayan's `${MAYAN_TRAEFIK_RABBITMQ_ENABLE;-false}`
    /// in a service of an inactive profile). Refused where it is written;
    /// [`Importer::pieces`] does not say it again.
    fn interpolates_everywhere(&mut self, node: &Node, path: &str) {
        match &node.kind {
            Kind::Text(text) if text.contains('$') => {
                let dotenv = &self.options.dotenv;
                let set = |name: &str| dotenv.iter().any(|(n, _)| n == name);
                if let Err(msg) = interpolate::parse_with(text, &set)
                    && self.invalid_said.insert(text.clone())
                {
                    self.error(
                        &node.at,
                        format!("`{path}`: {msg}: compose refuses the file (invalid interpolation), whether or not the service runs"),
                    );
                }
            }
            Kind::List(items) => {
                for item in items {
                    self.interpolates_everywhere(item, path);
                }
            }
            Kind::Map(entries) => {
                for (key, value) in entries {
                    let path = match path {
                        "" => key.name.clone(),
                        _ => format!("{path}.{}", key.name),
                    };
                    self.interpolates_everywhere(value, &path);
                }
            }
            _ => {}
        }
    }

    fn record(&mut self, pieces: &[Piece], at: &Place, key: &str) {
        for piece in interpolate::variables(pieces) {
            let (variable, written, default, needed, required) = match piece {
                Piece::Var {
                    name,
                    written,
                    default,
                    required,
                    per_use,
                } => {
                    // A default kept at its use is not the instance's value.
                    let literal = default
                        .as_deref()
                        .filter(|_| !per_use)
                        .and_then(interpolate::literal);
                    (name, written, literal, default.is_none(), required.clone())
                }
                Piece::IfSet { name, written, .. } => (name, written, None, false, None),
                Piece::Text(_) => continue,
            };
            let from_env = self
                .options
                .dotenv
                .iter()
                .rev()
                .find(|(k, _)| k == variable)
                .map(|(_, v)| v.clone());
            let name = interpolate::value_name(variable);
            if from_env.as_deref().is_some_and(|v| !v.is_empty())
                && looks_like_a_secret(variable)
                && !self.values.contains_key(&name)
            {
                self.warn(
                    at,
                    key,
                    format!(
                        "`{written}` looks like a secret: its value from .env is an instance value now, written into the template and into units every local user can read; give the variable that uses it from `secrets:` instead (see Secrets in unitgen's README)"
                    ),
                );
            }
            // A value only an included project's `.env` gives: compose
            // gives it to that project's files alone.
            if let Some((env_file, files)) = self.included_values.get(variable.as_str())
                && !files.contains(&at.file)
            {
                let message = format!(
                    "`{written}` has its value from {env_file}, which compose gives to the included project's files only: here compose leaves it unset (empty, or its default); the instance value `{name}` serves both"
                );
                self.warn(at, "variables", message);
            }
            let service = self.service.clone();
            if variable == "PWD" && self.pwd_is_dir && !self.values.contains_key(&name) {
                self.warn(
                    at,
                    "variables",
                    format!(
                        "`{written}` is the folder compose ran in: instance value `{name}` is the compose file's folder, `{}`; set it for each instance that runs elsewhere",
                        self.options.dir.display()
                    ),
                );
            }
            let entry = self.values.entry(name).or_insert_with(|| InstanceValue {
                written: written.clone(),
                value: from_env,
                needed: false,
                undeclared: false,
                required: None,
                needing: None,
            });
            entry.needed |= needed;
            let this_use = || Some((*at, written.clone(), service.clone()));
            if required.is_some() && entry.required.is_none() {
                entry.required = required;
                entry.needing = this_use();
            } else if needed && entry.needing.is_none() {
                entry.needing = this_use();
            }
            if let Some(default) = default {
                entry.value.get_or_insert(default);
            }
        }
    }

    /// The value a variable has in the imported instance.
    fn value_of(&self, variable: &str) -> String {
        self.values
            .get(&interpolate::value_name(variable))
            .and_then(|v| v.value.clone())
            .unwrap_or_default()
    }

    fn resolve(&self, pieces: &[Piece]) -> String {
        interpolate::resolve(pieces, &|name| self.value_of(name))
    }

    /// A scalar's pieces, its variables recorded; a problem if it is not a
    /// scalar.
    fn scalar_pieces(&mut self, node: &Node, key: &str) -> Option<Vec<Piece>> {
        let Some(text) = node.scalar() else {
            self.expected(node, key, "a string");
            return None;
        };
        Some(self.pieces(&text, &node.at, key))
    }

    /// A string value as a unitgen template.
    fn text(&mut self, node: &Node, key: &str) -> Option<String> {
        let pieces = self.scalar_pieces(node, key)?;
        Some(interpolate::template(&pieces))
    }

    /// A string whose variables are replaced by their values, for keys that
    /// cannot hold a template (the app name).
    fn plain_text(&mut self, node: &Node, key: &str) -> Option<String> {
        let pieces = self.scalar_pieces(node, key)?;
        Some(self.resolve(&pieces))
    }

    /// A value for a key that takes a string or a number: numbers stay
    /// unquoted.
    fn scalar(&mut self, node: &Node, key: &str) -> Option<Scalar> {
        self.checked(node, key, |_| Ok(()))
    }

    /// A scalar whose value, as the imported instance sees it, must pass
    /// unitgen's `check`; else it is not carried over.
    fn checked<T>(
        &mut self,
        node: &Node,
        key: &str,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Scalar> {
        let pieces = self.scalar_pieces(node, key)?;
        if let Err(msg) = check(&self.resolve(&pieces)) {
            self.warn(&node.at, key, format!("not carried over: {msg}"));
            return None;
        }
        Some(match &node.kind {
            Kind::Number(n) if is_decimal(n) => Scalar::Plain(n.clone()),
            Kind::Bool(b) => Scalar::Plain(b.to_string()),
            _ => Scalar::Text(interpolate::template(&pieces)),
        })
    }

    /// A value for a key that cannot hold a template (`restart`,
    /// healthcheck `retries`, `network_mode`): its variables are replaced
    /// by their values, said where there are any, since the instance value
    /// (jitsi's `restart: ${RESTART_POLICY:-unless-stopped}`) no longer
    /// changes it.
    fn fixed_text(&mut self, node: &Node, key: &str) -> Option<String> {
        let pieces = self.scalar_pieces(node, key)?;
        let resolved = self.resolve(&pieces);
        if !interpolate::variables(&pieces).is_empty() {
            self.warn(
                &node.at,
                key,
                format!("`{key}` cannot vary by instance in unitgen: written as its value here, `{resolved}`"),
            );
        }
        Some(resolved)
    }

    /// `true`/`false`; a variable is replaced by its value, since these keys
    /// cannot hold a template.
    fn boolean(&mut self, node: &Node, key: &str) -> Option<bool> {
        if let Some(b) = node.boolean() {
            return Some(b);
        }
        let resolved = self.fixed_text(node, key)?;
        match node::parse_bool(&resolved) {
            Some(b) => Some(b),
            None => {
                self.expected(node, key, "true or false");
                None
            }
        }
    }

    /// `command: npm start` or `command: [npm, start]`.
    fn words(&mut self, node: &Node, key: &str) -> Option<Value> {
        match &node.kind {
            Kind::List(items) => {
                let mut out = Vec::new();
                for item in items {
                    let word = match self.number_as_compose_text(item, key) {
                        Some(word) => word,
                        None => self.scalar(item, key)?,
                    };
                    out.push(word);
                }
                Some(Value::List(out))
            }
            _ => self.text(node, key).map(Value::text),
        }
    }

    /// An unquoted number where compose wants text, when compose's text
    /// differs from what is written: compose reads `24.10` as a number and
    /// gives Docker `24.1` (greenbone's `FEED_RELEASE`), `0123` as octal
    /// and gives `83`. Carried over as compose gives it, and said.
    fn number_as_compose_text(&mut self, node: &Node, key: &str) -> Option<Scalar> {
        let Kind::Number(written) = &node.kind else {
            return None;
        };
        let given = yaml_number::compose_text(written).filter(|given| given != written)?;
        self.warn(
            &node.at,
            key,
            format!(
                "`{written}` is a number to compose's YAML reader, which hands Docker `{given}`: carried over as `{given}`; quote it (`\"{written}\"`) in the template if `{written}` was meant"
            ),
        );
        Some(Scalar::Text(given))
    }

    /// A string or a list of strings, as the list's nodes.
    fn string_list<'n>(&mut self, node: &'n Node, key: &str) -> Vec<&'n Node> {
        match &node.kind {
            Kind::List(items) => items.iter().collect(),
            Kind::Text(_) | Kind::Number(_) => vec![node],
            Kind::Null => Vec::new(),
            _ => {
                self.expected(node, key, "a string or a list");
                Vec::new()
            }
        }
    }

    /// A map, or a list of `KEY=value` strings (`environment`, `labels`), each
    /// with its place, for what is said about it. A value is `None` where
    /// compose takes it from its own environment (`KEY:` or a bare `KEY`).
    fn key_values(&mut self, node: &Node, key: &str) -> Vec<(String, Option<Scalar>, Place)> {
        let mut out = Vec::new();
        match &node.kind {
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let value = match v.kind {
                        Kind::Null => None,
                        _ => self
                            .number_as_compose_text(v, key)
                            .or_else(|| self.scalar(v, key)),
                    };
                    out.push((k.name.clone(), value, k.at));
                }
            }
            Kind::List(items) => {
                for item in items {
                    let Some(text) = item.scalar() else {
                        self.expected(item, key, "a `NAME=value` string");
                        continue;
                    };
                    match text.split_once('=') {
                        Some((k, v)) => {
                            let pieces = self.pieces(v, &item.at, key);
                            let template = interpolate::template(&pieces);
                            out.push((k.to_string(), Some(Scalar::Text(template)), item.at));
                        }
                        None => out.push((text, None, item.at)),
                    }
                }
            }
            Kind::Null => {}
            _ => self.expected(node, key, "a map or a list of `NAME=value` strings"),
        }
        out
    }

    // ---- Top level ----

    /// `apart`: some services shared no network under compose (see
    /// [`kept_apart`]), which the one instance network now joins.
    fn top_networks(&mut self, key: &Key, node: &Node, apart: bool) {
        let mut custom = Vec::new();
        // `internal: true` kept its services from reaching anything outside
        // the host (mastodon's database, dify's sandbox): lost too.
        let mut internal = Vec::new();
        for (net, def) in node.entries().unwrap_or_default() {
            let external = def.get("external").and_then(Node::boolean) == Some(true);
            if external {
                let users = self
                    .networks_used
                    .get(&net.name)
                    .cloned()
                    .unwrap_or_default();
                let users = match users.as_slice() {
                    [] if net.name == "default" => "all services".to_string(),
                    // Declared, joined by none: nothing to carry over.
                    [] => continue,
                    _ => format!("services {}", users.join(", ")),
                };
                self.warn(
                    &net.at,
                    &format!("networks.{}", net.name),
                    format!(
                        "external network: {users} joined it under compose; unitgen does not connect them to it (add `docker network connect` where needed)"
                    ),
                );
            } else if net.name == "default" {
                // The instance network is the default one: nothing is kept
                // apart, but its own settings are Docker's defaults.
                self.network_subnets(&net.name, def);
                for (k, _) in def.entries().unwrap_or_default() {
                    if k.name != "ipam" {
                        self.warn(
                            &k.at,
                            &format!("networks.default.{}", k.name),
                            "not carried over: the instance network is made with Docker's defaults",
                        );
                    }
                }
            } else {
                custom.push(format!("`{}`", net.name));
                if def.get("internal").and_then(Node::boolean) == Some(true) {
                    internal.push(format!("`{}`", net.name));
                }
                // Compose creates only the networks its services join
                // (sonarqube's `dual` serves another NETWORK_TYPE).
                if self.networks_used.contains_key(&net.name) {
                    self.network_subnets(&net.name, def);
                    self.network_settings(&net.name, def);
                }
            }
        }
        if !custom.is_empty() {
            let mut message = format!(
                "{} not carried over: unitgen gives every instance one network, where all its services find each other by name; {}",
                custom.join(", "),
                if apart {
                    "services that compose kept on separate networks can now reach each other"
                } else {
                    "under compose too, each service shared a network with every other"
                }
            );
            if !internal.is_empty() {
                message.push_str(&format!(
                    ", and those only on {} (`internal: true`) can now reach outside the host",
                    internal.join(", ")
                ));
            }
            self.warn(&key.at, "networks", message);
        }
    }

    /// What a joined network gave its containers beyond a name: IPv6
    /// addresses (firezone's `app`, whose gateway routes IPv6), another
    /// driver, driver options (an MTU). The instance network is a bridge
    /// made with Docker's defaults, IPv4 only: said at each such key.
    fn network_settings(&mut self, net: &str, def: &Node) {
        for (k, value) in def.entries().unwrap_or_default() {
            let lost = match k.name.as_str() {
                "enable_ipv6" if value.boolean() == Some(true) => {
                    "its services get no IPv6 address on the instance network, which is made with Docker's defaults (IPv4 only)".to_string()
                }
                "driver" => match value.scalar() {
                    Some(driver) if driver != "bridge" => format!(
                        "the instance network is a bridge network, not `{driver}`"
                    ),
                    _ => continue,
                },
                "driver_opts" => {
                    "the instance network is made with Docker's defaults".to_string()
                }
                _ => continue,
            };
            self.warn(
                &k.at,
                &format!("networks.{net}.{}", k.name),
                format!("not carried over: {lost}"),
            );
        }
    }

    /// A subnet given by hand (bunkerweb's `10.20.30.0/24`) is often named
    /// again elsewhere: an allow list (`API_WHITELIST_IP`), a fixed address.
    /// The instance network's subnet is Docker's choice, another for each
    /// instance, so what names the old one no longer matches: said at it.
    fn network_subnets(&mut self, net: &str, def: &Node) {
        let configs = def
            .get("ipam")
            .and_then(|ipam| ipam.get("config"))
            .and_then(Node::items)
            .unwrap_or_default();
        for config in configs {
            if let Some(subnet) = config.get("subnet")
                && let Some(text) = subnet.scalar()
            {
                self.warn(
                    &subnet.at,
                    &format!("networks.{net}.ipam"),
                    format!(
                        "subnet `{text}` not kept: the instance network's subnet is Docker's choice, another for each instance; settings that name addresses in `{text}` (allow lists, fixed addresses) no longer match"
                    ),
                );
            }
        }
    }

    fn top_volumes(&mut self, node: &Node, app: &str) -> Option<Map> {
        let Some(entries) = node.entries() else {
            self.expected(node, "volumes", "a map of volume names");
            return None;
        };
        let mut out = Map::default();
        let mut scoped = Vec::new();
        for (name, def) in entries {
            // Mounted as its folder, or as a tmpfs, where it is used
            // (`Importer::volume`, `Importer::volumes`).
            if self.bind_volumes.contains_key(&name.name)
                || self.tmpfs_volumes.contains_key(&name.name)
            {
                continue;
            }
            let mut decl = Map::default();
            let external = def.get("external");
            let exact_name = def.get("name").and_then(Node::scalar).or_else(|| {
                // Old form: `external: {name: x}`.
                external.and_then(|e| e.get("name")).and_then(Node::scalar)
            });
            let is_external =
                external.is_some_and(|e| e.boolean() == Some(true) || e.get("name").is_some());
            if is_external || exact_name.is_some() {
                decl.set("external", Value::plain("true"));
                if let Some(exact) = &exact_name {
                    decl.set("name", Value::text(exact));
                }
                if !is_external {
                    self.warn(
                        &name.at,
                        &format!("volumes.{}", name.name),
                        format!(
                            "compose names it exactly `{}`: declared `external` to keep that name, so every instance shares it",
                            exact_name.unwrap_or_default()
                        ),
                    );
                }
            } else {
                scoped.push(name.name.clone());
            }
            for (k, v) in def.entries().unwrap_or_default() {
                // `driver: local` is Docker's default driver: nothing changes.
                let default_driver = k.name == "driver" && v.scalar().as_deref() == Some("local");
                if !["external", "name"].contains(&k.name.as_str()) && !default_driver {
                    self.warn(
                        &k.at,
                        &format!("volumes.{}.{}", name.name, k.name),
                        "not carried over: unitgen's volumes use Docker's default driver",
                    );
                }
            }
            out.set(&name.name, Value::Map(decl));
        }
        scoped.retain(|v| self.named_volumes.contains(v));
        if !scoped.is_empty() {
            let instance = &self.options.instance;
            let names: Vec<String> = scoped
                .iter()
                .map(|v| format!("`{app}-{instance}-{v}`"))
                .collect();
            self.warn(
                &node.at,
                "volumes",
                format!(
                    "unitgen names each instance's volumes itself ({}): they start empty; copy the data over from the volumes compose made",
                    names.join(", ")
                ),
            );
        }
        (!out.is_empty()).then_some(out)
    }

    /// The imported instance's values; a variable with no value gets an empty
    /// one, and a warning.
    fn instance_values(&mut self) -> Map {
        let mut out = Map::default();
        let mut missing = Vec::new();
        for (name, v) in &self.values {
            if v.undeclared {
                continue;
            }
            if v.value.is_none()
                && let Some((at, written, service)) = &v.needing
            {
                missing.push((
                    name.clone(),
                    written.clone(),
                    v.required.is_some(),
                    *at,
                    service.clone(),
                ));
            }
            // A required value is left out until given, so that rendering
            // fails with compose's message, as compose refuses to start.
            if v.value.is_none() && v.required.is_some() {
                continue;
            }
            let value = v.value.clone().unwrap_or_default();
            let scalar = if is_decimal(&value) {
                Scalar::Plain(value)
            } else {
                Scalar::Text(value)
            };
            out.set(name, Value::Scalar(scalar));
        }
        let instance = self.options.instance.clone();
        for (name, written, required, at, service) in missing {
            // A required use says why (`${V:?why}`) in its text.
            let message = if required {
                format!(
                    "`{written}` is required: instance `{instance}` has no value `{name}`, so it does not render until one is set, as compose refuses to start without it"
                )
            } else {
                format!(
                    "`{written}` has no default: instance value `{name}` is empty in `{instance}`; set it for each instance"
                )
            };
            self.warn_about(service, &at, "variables", message);
        }
        out
    }

    /// Comments at the top: where the template came from, and what was not
    /// carried over.
    fn header(&self) -> String {
        let mut from = format!("Imported by `unitgen import` from {}", self.files[0].name());
        if !self.merged.is_empty() {
            from.push_str(&format!(
                ", with {} merged over it",
                self.merged.join(", then ")
            ));
        }
        if !self.included.is_empty() {
            from.push_str(&format!(", including {}", self.included.join(", ")));
        }
        from.push('.');
        let mut lines = wrap(&from, 76, "");
        lines.extend([
            "Each service runs as a systemd unit (`docker run`); the services of an".into(),
            "instance share one network, where they find each other by name.".into(),
        ]);
        lines.push(
            "Services compose would not restart say `restart: \"no\"` (compose's default;".into(),
        );
        lines.push("unitgen's is `always`).".into());
        if let Some((name, value)) = self.values.iter().next() {
            lines.push(String::new());
            lines.push(format!(
                "Compose variables are instance values now (`{}` became `{{{{ {name} }}}}`):",
                value.written
            ));
            lines.push(format!(
                "instance `{}` holds their defaults, or their values from .env. Add an",
                self.options.instance
            ));
            lines.push("instance for each deployment, with its own values.".into());
        }
        if !self.warnings.is_empty() {
            lines.push(String::new());
            lines.push("Not carried over as written (review before deploying):".into());
            for warning in &self.warnings {
                lines.extend(wrap(&format!("- {warning}"), 76, "  "));
            }
        }
        let mut out = String::new();
        for line in lines {
            emit::comment_line("", &line, &mut out);
        }
        out
    }
}

/// `text` with its variables replaced as compose replaces them, from `.env`
/// (`dotenv`), else their defaults; `None` where it is not valid.
fn resolve_as_compose(text: &str, dotenv: &[(String, String)]) -> Option<String> {
    let set = |name: &str| dotenv.iter().any(|(n, _)| n == name);
    let pieces = interpolate::parse_with(text, &set).ok()?;
    let value = |name: &str| {
        dotenv
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Some(interpolate::resolve(&pieces, &value))
}

/// The compose project name, as compose derives it: the name it gives the
/// images it builds starts with it.
fn project_name(compose_name: Option<&str>, dir: &Path, app: &str) -> String {
    let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let source = compose_name
        .map(str::to_string)
        .or(folder)
        .unwrap_or_default();
    let name: String = source
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let name = name.trim_start_matches(['_', '-']).to_string();
    if name.is_empty() {
        app.to_string()
    } else {
        name
    }
}

/// Whether a service's `healthcheck` checks: not `disable: true`, not
/// `test: [NONE]` (either turns the image's own off).
fn checks_health(check: &Node) -> bool {
    let disabled = check.get("disable").and_then(Node::boolean) == Some(true);
    let none = match check.get("test").map(|t| &t.kind) {
        Some(Kind::List(words)) => words.first().and_then(Node::scalar).as_deref() == Some("NONE"),
        Some(Kind::Text(text)) => text.is_empty(),
        _ => false,
    };
    !disabled && !none
}

/// A profile's name as a message shows it: an empty one (dify's
/// `profiles: [""]`, active unless a profile is given) said so,
/// not as two backticks.
fn shown_profile(name: &str) -> String {
    if name.is_empty() {
        "`\"\"` (the empty name)".into()
    } else {
        format!("`{name}`")
    }
}

/// The import option that activates a profile, typed as a shell takes it.
fn profile_flag(name: &str) -> String {
    if name.is_empty() {
        "--profile ''".into()
    } else {
        format!("--profile {name}")
    }
}

/// Whether two of `services` shared no network under compose (`joined`:
/// each network's services, as `service_networks` found them): a service
/// with no `networks:` is on `default`; one with a `network_mode` joins
/// none (it shares a container's network, or the host's, or none).
fn kept_apart(services: &[(Key, Node)], joined: &IndexMap<String, Vec<String>>) -> bool {
    let on_networks: Vec<HashSet<&str>> = (services.iter())
        .filter(|(_, def)| def.get("network_mode").is_none())
        .map(|(name, def)| {
            if def.get("networks").is_none() {
                return HashSet::from(["default"]);
            }
            (joined.iter())
                .filter(|(_, users)| users.contains(&name.name))
                .map(|(net, _)| net.as_str())
                .collect()
        })
        .collect();
    (on_networks.iter().enumerate())
        .any(|(i, a)| on_networks[i + 1..].iter().any(|b| a.is_disjoint(b)))
}

/// The services some other service waits for with `depends_on: {name:
/// {condition: service_completed_successfully}}`.
/// The aliases links give services (`links: [netmaker:api]`: netmaker-ui
/// reaches netmaker as `api`), as network aliases of the linked services:
/// service → aliases. Compose gives a link's alias to the linking service
/// alone; a network alias answers every service of the instance, so an
/// alias that could then name something else is left out (warned at the
/// link): another service's name or `container_name`, or an alias links
/// give two services.
fn link_aliases(
    services: &[(Key, Node)],
    names: &HashMap<String, String>,
    container_names: &HashMap<String, String>,
) -> HashMap<String, Vec<String>> {
    let mut targets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, def) in services {
        let links = def.get("links").and_then(Node::items).unwrap_or_default();
        for text in links.iter().filter_map(Node::scalar) {
            if let Some((target, alias)) = text.split_once(':') {
                targets
                    .entry(alias.to_string())
                    .or_default()
                    .insert(target.to_string());
            }
        }
    }
    let names_a_service =
        |name: &str| names.contains_key(name) || names.values().any(|n| n == name);
    let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
    for (alias, targets) in targets {
        let mut targets = targets.into_iter();
        let (Some(target), None) = (targets.next(), targets.next()) else {
            continue;
        };
        let clash = names_a_service(&alias)
            || container_names.get(&alias).is_some_and(|s| *s != target)
            || alias.contains('$');
        if names.contains_key(&target) && !clash {
            aliases.entry(target).or_default().push(alias);
        }
    }
    aliases
}

fn awaited_to_complete(services: &[(Key, Node)]) -> HashSet<String> {
    services
        .iter()
        .filter_map(|(_, def)| def.get("depends_on")?.entries())
        .flatten()
        .filter(|(_, detail)| {
            detail.get("condition").and_then(Node::scalar).as_deref()
                == Some("service_completed_successfully")
        })
        .map(|(name, _)| name.name.clone())
        .collect()
}

/// The named volumes the local driver mounts from its `driver_opts`, both
/// name → something: a bind mount of a host folder (n8n's AI starter kit:
/// `{type: none, o: bind, device: /storage/n8n_storage}`) → the folder, and
/// a tmpfs made when a container uses the volume (`{type: tmpfs, device:
/// tmpfs, o: size=64m}`) → its mount options.
fn local_driver_volumes(volumes: &Node) -> (HashMap<String, String>, HashMap<String, String>) {
    let (mut binds, mut tmpfs) = (HashMap::new(), HashMap::new());
    for (name, def) in volumes.entries().unwrap_or_default() {
        let Some(opts) = def.get("driver_opts") else {
            continue;
        };
        let text = |key: &str| opts.get(key).and_then(Node::scalar).unwrap_or_default();
        let local = def
            .get("driver")
            .and_then(Node::scalar)
            .is_none_or(|d| d == "local");
        if !local {
            continue;
        }
        let device = text("device");
        match text("type").as_str() {
            "tmpfs" => {
                tmpfs.insert(name.name.clone(), text("o"));
            }
            "none" if text("o").split(',').any(|o| o == "bind") && device.starts_with('/') => {
                binds.insert(name.name.clone(), device);
            }
            _ => {}
        }
    }
    (binds, tmpfs)
}

/// The services a service needs to start, each where it is named: those
/// of its `depends_on` (but `required: false`) and its `links` (`db` or
/// `db:alias`).
fn needs(def: &Node) -> Vec<(String, Place)> {
    let mut names = Vec::new();
    if let Some(depends_on) = def.get("depends_on") {
        match depends_on.entries() {
            Some(entries) => names.extend(
                entries
                    .iter()
                    .filter(|(_, detail)| {
                        detail.get("required").and_then(Node::boolean) != Some(false)
                    })
                    .map(|(k, _)| (k.name.clone(), k.at)),
            ),
            None => names.extend(
                depends_on
                    .items()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|item| Some((item.scalar()?, item.at))),
            ),
        }
    }
    let links = def.get("links").and_then(Node::items).unwrap_or_default();
    for link in links {
        let Some(text) = link.scalar() else { continue };
        let name = text.split_once(':').map_or(text.as_str(), |(name, _)| name);
        names.push((name.to_string(), link.at));
    }
    names
}

/// The variables the file gives more than one default (`${V:-}` here,
/// `${V:-127.0.0.1:8125}` there): compose applies each at its own use. A
/// use without default counts as `${V:-}`: airflow's `${AIRFLOW_UID}` is
/// empty where `${AIRFLOW_UID:-50000}` is 50000.
fn varying_defaults(root: &Node, dotenv: &[(String, String)]) -> HashSet<String> {
    type Defaults = HashMap<String, HashSet<String>>;
    fn walk(node: &Node, set: &dyn Fn(&str) -> bool, defaults: &mut Defaults) {
        match &node.kind {
            Kind::List(items) => items.iter().for_each(|i| walk(i, set, defaults)),
            Kind::Map(entries) => entries.iter().for_each(|(_, v)| walk(v, set, defaults)),
            Kind::Text(text) => {
                let pieces = interpolate::parse_with(text, set).unwrap_or_default();
                for piece in interpolate::variables(&pieces) {
                    match piece {
                        Piece::Var {
                            name,
                            default: Some(default),
                            ..
                        } => {
                            let text = interpolate::literal(default)
                                .unwrap_or_else(|| format!("{default:?}"));
                            defaults.entry(name.clone()).or_default().insert(text);
                        }
                        // `${V:?message}` is no default: unset, compose fails.
                        Piece::Var {
                            name,
                            default: None,
                            required: None,
                            ..
                        } => {
                            defaults
                                .entry(name.clone())
                                .or_default()
                                .insert(String::new());
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let set = |name: &str| dotenv.iter().any(|(n, _)| n == name);
    let mut defaults = HashMap::new();
    walk(root, &set, &mut defaults);
    defaults
        .into_iter()
        .filter(|(_, d)| d.len() > 1)
        .map(|(name, _)| name)
        .collect()
}

/// A number unitgen can take unquoted as a value: `8080`, `0.5`.
fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    // `0755` reads as octal to some parsers.
    let leading_zero = int.len() > 1 && int.starts_with('0');
    all_digits(int) && all_digits(frac) && !leading_zero
}

/// Wraps `text` at `width` columns, continuing lines with `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
            line.push_str(indent);
        } else if !line.is_empty() && line != indent {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// A variable whose name says it holds a password, a token or a key: its
/// value should come from `secrets:`, not be written into units. Read by
/// word (`PG_PASS`, `REDIS_PWD`, `AUTH_SALT`, `JWT_SIGNING_KEY`) as well as
/// by the parts that mean a secret wherever they are (`DBPASSWORD`).
pub(crate) fn looks_like_a_secret(variable: &str) -> bool {
    let name = variable.to_ascii_uppercase();
    // Where a secret is (`POSTGRES_PASSWORD_FILE: /run/secrets/db`).
    if ["_FILE", "_PATH", "_DIR"]
        .iter()
        .any(|end| name.ends_with(end))
    {
        return false;
    }
    let anywhere = [
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "SECRET",
        "TOKEN",
        "APIKEY",
        "CREDENTIAL",
    ];
    if anywhere.iter().any(|part| name.contains(part)) {
        return true;
    }
    let words: Vec<&str> = (name.split(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| !w.is_empty())
        .collect();
    // `PWD` alone is the shell's working folder (`${PWD}:/app`).
    let secret_word = |w: &&str| matches!(*w, "PASS" | "PW" | "PWD" | "SALT" | "HMAC");
    // A key that opens something, not a key of something (`KEY_PATH`).
    let keys_something = |pair: &[&str]| {
        matches!(pair[1], "KEY" | "KEYS")
            && matches!(
                pair[0],
                "API"
                    | "ACCESS"
                    | "PRIVATE"
                    | "SECRET"
                    | "ENCRYPTION"
                    | "SIGNING"
                    | "MASTER"
                    | "AUTH"
                    | "JWT"
                    | "APP"
                    | "CRYPT"
                    | "SESSION"
                    | "COOKIE"
                    | "LICENSE"
            )
    };
    (name != "PWD" && words.iter().any(secret_word)) || words.windows(2).any(keys_something)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use miette::NamedSource;

    use super::*;

    fn options() -> Options {
        Options {
            app: None,
            instance: "default".into(),
            dir: PathBuf::from("/srv/shop"),
            home: Some(PathBuf::from("/home/me")),
            dotenv: Vec::new(),
            beside_notes: Vec::new(),
            profiles: Vec::new(),
            read: |path| std::fs::read_to_string(path),
        }
    }

    fn run(compose: &str, options: &Options) -> Imported {
        let file = Arc::new(NamedSource::new("compose.yaml", compose.to_string()));
        import(&file, options).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// The template without its header comments.
    fn body(compose: &str) -> String {
        let yaml = run(compose, &options()).yaml;
        yaml.lines()
            .skip_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn messages(compose: &str) -> Vec<String> {
        let imported = run(compose, &options());
        imported.warnings.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn secret_looking_names_are_read_by_word() {
        for name in [
            "DB_PASSWORD",
            "dbpassword",
            "PG_PASS",
            "SMTP_PASS",
            "REDIS_PWD",
            "PASS",
            "WORDPRESS_AUTH_SALT",
            "JWT_SIGNING_KEY",
            "MINIO_ACCESS_KEY",
            "SECRET_KEY_BASE",
            "GITHUB_TOKEN",
            "app-key",
        ] {
            assert!(looks_like_a_secret(name), "{name}");
        }
        for name in [
            "PWD",
            "POSTGRES_PASSWORD_FILE",
            "SSH_KEY_PATH",
            "PASSENGER_APP_ENV",
            "KEYCLOAK_URL",
            "PRIMARY_KEY",
            "PASSWORD_DIR",
            "TAG",
        ] {
            assert!(!looks_like_a_secret(name), "{name}");
        }
    }

    /// A password written in the compose file is carried over (it is the
    /// file's), and said to be in every unit; a switch is not a secret.
    #[test]
    fn a_secret_written_in_the_compose_file_is_warned_about() {
        let warnings = messages(
            "services:\n  db:\n    image: postgres\n    environment:\n      POSTGRES_PASSWORD: hunter2\n      MYSQL_RANDOM_ROOT_PASSWORD: \"yes\"\n      POSTGRES_PASSWORD_FILE: /run/secrets/db\n      POSTGRES_USER: shop\n",
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("db: environment: `POSTGRES_PASSWORD` looks like a secret, and its value is written here"),
            "{warnings:?}"
        );
    }

    #[test]
    fn long_port_syntax_is_written_short() {
        let out = body(
            "services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        published: 8080\n        host_ip: 127.0.0.1\n        protocol: tcp\n      - target: 53\n        protocol: udp\n      - {target: 443, host_ip: 127.0.0.1}\n      - 9000\n",
        );
        assert!(
            out.contains(r#"ports: ["127.0.0.1:8080:80", 53/udp, "127.0.0.1::443", 9000]"#),
            "{out}"
        );
        // An IPv6 host address (keycloak's `host_ip: "::1"`) in Docker's
        // brackets; the short forms as written (element-web's `[::1]:8081:80`
        // was warned and left out).
        let out = body(
            "services:\n  web:\n    image: nginx\n    ports:\n      - {target: 8443, published: 8444, host_ip: \"::1\"}\n      - \"[::1]:8081:80\"\n",
        );
        assert!(
            out.contains(r#"ports: ["[::1]:8444:8443", "[::1]:8081:80"]"#),
            "{out}"
        );
    }

    #[test]
    fn long_volume_syntax_is_written_short() {
        let out = body(
            "services:\n  web:\n    image: nginx\n    volumes:\n      - type: bind\n        source: /srv/conf\n        target: /etc/nginx\n        read_only: true\n      - type: volume\n        source: cache\n        target: /var/cache\n      - type: volume\n        target: /scratch\n      - type: tmpfs\n        target: /run\n        tmpfs: {size: 64m}\n      - ./html:/usr/share/nginx/html:ro,cached\n      - ~/certs:/certs\n",
        );
        assert!(out.contains("      - /srv/conf:/etc/nginx:ro\n"), "{out}");
        assert!(out.contains("      - cache:/var/cache\n"), "{out}");
        // Anonymous: the instance's, kept across restarts as compose keeps it.
        assert!(out.contains("      - web-scratch:/scratch\n"), "{out}");
        assert!(
            out.contains("      - /srv/shop/html:/usr/share/nginx/html:ro\n"),
            "{out}"
        );
        assert!(out.contains("      - /home/me/certs:/certs\n"), "{out}");
        assert!(out.contains(r#"tmpfs: ["/run:size=64m"]"#), "{out}");
    }

    #[test]
    fn relative_paths_are_resolved_and_warned_about() {
        let warnings = messages(
            "services:\n  web:\n    image: nginx\n    env_file: ../web.env\n    volumes: [\"./data/:/data\"]\n",
        );
        assert_eq!(
            warnings,
            [
                "web: env_file: `../web.env` is relative to the compose file: written as `/srv/web.env`; it must exist on every host that runs the units",
                "web: volumes: `./data/` is relative to the compose file: written as `/srv/shop/data/`; it must exist on every host that runs the units",
            ]
        );
    }

    #[test]
    fn variables_become_instance_values() {
        let mut options = options();
        options.dotenv = vec![("TAG".into(), "2.1".into())];
        options.instance = "live".into();
        let compose = "services:\n  web:\n    image: \"nginx:${TAG:-1.27}\"\n    ports: [\"${PORT:-8080}:80\"]\n    environment:\n      GREETING: ${GREETING:-hello world}\n      PRICE: $$5\n      SECRET: ${SECRET:?must be set}\n      DATA: ${DATA:-./data}\n    volumes: [\"${DATA:-./data}:/data\"]\n";
        let imported = run(compose, &options);
        let yaml = &imported.yaml;
        assert!(yaml.contains(r#"image: "nginx:{{ tag }}""#), "{yaml}");
        assert!(yaml.contains(r#"ports: ["{{ port }}:80"]"#), "{yaml}");
        assert!(yaml.contains("PRICE: $5\n"), "{yaml}");
        assert!(yaml.contains(r#"volumes: ["{{ data }}:/data"]"#), "{yaml}");
        assert!(
            yaml.ends_with(
                "instances:\n  live:\n    tag: 2.1\n    port: 8080\n    greeting: hello world\n    data: /srv/shop/data\n"
            ),
            "{yaml}"
        );
        let warnings: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            yaml.contains(r#"SECRET: "{{ secret | required(\"must be set\") }}""#),
            "{yaml}"
        );
        assert!(warnings.contains(&"web: variables: `${SECRET:?must be set}` is required: instance `live` has no value `secret`, so it does not render until one is set, as compose refuses to start without it".to_string()), "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("instance value `data` is now `/srv/shop/data`")),
            "{warnings:?}"
        );
    }

    /// Warnings quote a variable as the file writes it: `$PEER` is not
    /// `${PEER}`; a required one at its use that says why.
    #[test]
    fn warnings_quote_variables_as_written() {
        let warnings = messages(
            "services:\n  web:\n    image: nginx\n    command: serve $PEER $KEY\n    environment:\n      K: ${KEY:?give a key}\n",
        );
        let has = |start: &str| warnings.iter().any(|w| w.starts_with(start));
        assert!(
            has("web: variables: `$PEER` has no default: instance value `peer` is empty"),
            "{warnings:?}"
        );
        assert!(
            has("web: variables: `${KEY:?give a key}` is required: instance"),
            "{warnings:?}"
        );
        // documenso's: the use without a default is the one told, not
        // the first use, which has one.
        let warnings = messages(
            "services:\n  web:\n    image: nginx\n    environment:\n      PORT: ${PORT:-3000}\n      URL: http://localhost:$PORT\n",
        );
        assert!(
            warnings.iter().any(|w| w.starts_with(
                "web: variables: `$PORT` has no default: instance value `port` is empty"
            )),
            "{warnings:?}"
        );
    }

    /// Issue 9: `${STATSD_ADDR:-}` here and `${STATSD_ADDR:-127.0.0.1:8125}`
    /// there gave the first default everywhere.
    #[test]
    fn each_use_keeps_its_own_default() {
        let compose = "services:\n  web:\n    image: nginx\n    volumes: [\"${DATA:-./data}:/data\"]\n    environment:\n      DATA: ${DATA:-./data}\n      STATSD: ${STATSD_ADDR:-}\n      ALT: ${STATSD_ADDR:-127.0.0.1:8125}\n";
        let imported = run(compose, &options());
        let warnings: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warnings,
            [
                "web: volumes: `./data` is relative to the compose file: instance value `data` is now `/srv/shop/data`; it must exist on every host that runs the units",
            ]
        );
        let yaml = &imported.yaml;
        for line in [
            "      DATA: \"{{ data }}\"\n",
            "      STATSD: \"{{ statsd_addr or \\\"\\\" }}\"\n",
            "      ALT: \"{{ statsd_addr or \\\"127.0.0.1:8125\\\" }}\"\n",
            "  default:\n    data: /srv/shop/data\n    statsd_addr: \"\"\n",
        ] {
            assert!(yaml.contains(line), "{line} in\n{yaml}");
        }
    }

    #[test]
    fn docker_run_flags_go_to_docker_args() {
        let compose = "services:\n  web:\n    image: nginx\n    privileged: true\n    tty: false\n    shm_size: 1g\n    dns: [1.1.1.1]\n    extra_hosts: {db: 10.0.0.2}\n    sysctls: [net.core.somaxconn=1024]\n    devices:\n      - /dev/fuse\n      - {source: /dev/sda, target: /dev/xvda}\n    pid: service:db\n";
        let imported = run(compose, &options());
        assert!(
            imported.yaml.contains(
                "    docker_args:\n      - --privileged\n      - --shm-size=1g\n      - --dns=1.1.1.1\n      - --add-host=db:10.0.0.2\n      - --sysctl=net.core.somaxconn=1024\n      - --device=/dev/fuse\n      - --device=/dev/sda:/dev/xvda\n"
            ),
            "{}",
            imported.yaml
        );
        let warnings: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warnings,
            [
                "web: pid: `service:db` is not carried over: a template shares another service's network only (`network_mode: service:NAME`)"
            ]
        );
    }

    /// `blkio_config` (a database's I/O weight, a worker's throttled disk)
    /// was warned as a key unitgen has not, so the container ran without
    /// compose's weights and limits. Each of its keys is a `docker run` flag.
    #[test]
    fn blkio_config_is_docker_run_flags() {
        let compose = "services:\n  db:\n    image: postgres\n    blkio_config:\n      weight: 300\n      weight_device:\n        - {path: /dev/sda, weight: 400}\n      device_read_bps:\n        - {path: /dev/sda, rate: 12mb}\n      device_write_bps:\n        - {path: /dev/sdb, rate: 1048576}\n      device_read_iops:\n        - {path: /dev/sda, rate: 120}\n      device_write_iops:\n        - {path: /dev/sda, rate: 30}\n";
        let imported = run(compose, &options());
        assert!(
            imported.yaml.contains(
                "    docker_args:\n      - --blkio-weight=300\n      - --blkio-weight-device=/dev/sda:400\n      - --device-read-bps=/dev/sda:12mb\n      - --device-write-bps=/dev/sdb:1048576\n      - --device-read-iops=/dev/sda:120\n      - --device-write-iops=/dev/sda:30\n"
            ),
            "{}",
            imported.yaml
        );
        assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    }

    /// A named volume's `subpath` was warned as `volumes.volume: not
    /// carried over`, which did not say that the whole volume is mounted.
    #[test]
    fn a_volume_subpath_is_warned_as_the_whole_volume() {
        let warnings = messages(
            "services:\n  web:\n    image: nginx\n    volumes:\n      - type: volume\n        source: data\n        target: /data\n        volume:\n          subpath: sub\n          nocopy: true\nvolumes:\n  data:\n",
        );
        assert!(
            warnings.contains(&"web: volumes.volume.subpath: `sub` is not carried over: the whole volume is mounted at the target (`docker run --volume` takes no sub-path, and Docker 26's `--mount volume-subpath=` is not used)".to_string()),
            "{warnings:?}"
        );
    }

    /// zitadel's `test: ["CMD-SHELL", "pg_isready", "-d", "zitadel", "-U",
    /// "postgres"]` became a template that did not compile (a CMD-SHELL
    /// test is one string), so the import failed. Docker runs `/bin/sh -c
    /// pg_isready -d zitadel …`: the words after the command are the
    /// shell's `$0`, `$1`…; the command is carried over as it runs.
    #[test]
    fn a_shell_test_with_more_words_runs_as_docker_runs_it() {
        let compose = "services:\n  db:\n    image: postgres\n    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready -U $${USER}\", \"-d\", \"$DB\"]\n  web:\n    image: nginx\n    healthcheck:\n      test: [\"CMD-SHELL\", 'test \"$$1\" = ok', \"zero\", \"ok\"]\n";
        let imported = run(compose, &options());
        assert!(
            imported
                .yaml
                .contains("      test: [CMD-SHELL, \"pg_isready -U ${USER}\"]\n"),
            "{}",
            imported.yaml
        );
        // Reading `$1`: inside the `sh -c` Docker would run.
        assert!(
            imported
                .yaml
                .contains("      test: [CMD-SHELL, /bin/sh -c 'test \"$1\" = ok' zero ok]\n"),
            "{}",
            imported.yaml
        );
        let warnings: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warnings,
            [
                // As written (mediacms's `--dbname=$POSTGRES_DB` was shown as
                // `{{ postgres_db }}`), and the word left out makes no
                // instance value (nor its warning).
                "db: healthcheck.test: `-d $DB` after the command are not its arguments: Docker gives them to the shell as `$0`, `$1`…, which `pg_isready -U $${USER}` does not read; carried over as `pg_isready -U $${USER}` alone, as Docker runs it (write them into the command to pass them)"
            ]
        );
    }

    #[test]
    fn values_are_quoted_only_where_yaml_needs_it() {
        let out = body(
            "services:\n  web:\n    image: nginx\n    environment:\n      A: \"yes\"\n      B: \"a: b\"\n      C: \"x #y\"\n      D: \"*star\"\n      E: \"{{.Name}}\"\n      F: 1.10\n      G: \"0755\"\n      H: plain text\n",
        );
        for line in [
            "      A: \"yes\"\n",
            "      B: \"a: b\"\n",
            "      C: \"x #y\"\n",
            "      D: \"*star\"\n",
            "      E: \"{% raw %}{{.Name}}{% endraw %}\"\n",
            // The unquoted 1.10 is the number compose hands Docker as 1.1.
            "      F: \"1.1\"\n",
            "      G: \"0755\"\n",
            "      H: plain text\n",
        ] {
            assert!(out.contains(line), "{line} in\n{out}");
        }
    }

    #[test]
    fn merge_keys_and_key_order_are_kept() {
        let out = body(
            "x-base: &base\n  restart: always\n  init: true\nservices:\n  web:\n    image: nginx\n    <<: *base\n    user: \"1000\"\n",
        );
        assert_eq!(
            out,
            "app: shop\n\nservices:\n  web:\n    image: nginx\n    user: \"1000\"\n    restart: always\n    init: true\n\ninstances:\n  default: {}\n"
        );
    }

    #[test]
    fn names_are_made_valid() {
        let mut options = options();
        let compose = "name: My Shop\nservices:\n  Web_App: {image: nginx}\n  network: {image: busybox}\n  cache:\n    image: redis:7\n";
        let imported = run(compose, &options);
        assert_eq!(imported.app, "my_shop");
        assert!(
            imported.yaml.contains(
                "\n  web-app:\n    image: nginx\n    restart: \"no\"\n    docker_args: [--network-alias=Web_App]\n"
            ),
            "{}",
            imported.yaml
        );
        assert!(
            imported.yaml.contains("\n  network-svc:\n"),
            "{}",
            imported.yaml
        );
        assert!(
            imported
                .yaml
                .contains("\n  cache:\n    image: redis:7\n    restart: \"no\"\n"),
            "{}",
            imported.yaml
        );
        options.app = Some("shop".into());
        assert_eq!(run(compose, &options).app, "shop");
        assert_eq!(
            run("services: {web: {image: x}}", &self::options()).app,
            "shop"
        );
    }

    #[test]
    fn shape_errors_point_at_the_text() {
        let file = Arc::new(NamedSource::new(
            "compose.yaml",
            "services:\n  web:\n    image: nginx\n    ports: 80\n".to_string(),
        ));
        let problems = import(&file, &options()).unwrap_err();
        assert_eq!(problems.0.len(), 1);
        let problem = &problems.0[0];
        assert_eq!(
            problem.message,
            "`ports` of service `web`: expected a list, found a number"
        );
        assert_eq!(problem.at.as_ref().unwrap().span.offset(), 45);
    }

    /// compose-go's dotenv rules, as `docker compose config` reads them.
    #[test]
    fn dotenv_values_read_as_compose_reads_them() {
        let vars = parse_dotenv(concat!(
            "HOST=db\n",
            "URL=postgres://${HOST}:5432/app\n",
            "QUOTED=\"x\" # a comment after the quotes\n",
            "PATHS=\"C:\\\\new\\tdir\"\n",
            "LITERAL='${HOST} \\n'\n",
            "DOLLAR=\"\\$HOST $$HOST\"\n",
            "MULTI=\"one\ntwo\"\n",
            "YAML: style\n",
            "DEFAULT=${NOPE:-fallback}\n",
            "HOST=later\n",
        ));
        let get = |name: &str| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("URL"), Some("postgres://db:5432/app"));
        assert_eq!(get("QUOTED"), Some("x"));
        assert_eq!(get("PATHS"), Some("C:\\new\tdir"));
        assert_eq!(get("LITERAL"), Some("${HOST} \\n"));
        assert_eq!(get("DOLLAR"), Some("$HOST $HOST"));
        assert_eq!(get("MULTI"), Some("one\ntwo"));
        assert_eq!(get("YAML"), Some("style"));
        assert_eq!(get("DEFAULT"), Some("fallback"));
        assert_eq!(get("HOST"), Some("later"), "a later line wins");
        assert_eq!(vars.len(), 9);
    }

    /// A `.env` value that compose completes from its shell (`P=x\$HOME`,
    /// unquoted: the backslash is kept and escapes nothing, HOME is the
    /// shell's) imported as `x\` without a word. Now each such line is
    /// warned at `.env:LINE`, first, and listed in the template's header.
    #[test]
    fn dotenv_values_from_the_shell_are_warned_at_their_line() {
        let dotenv = "TAG=1\nP=x\\$HOME\nQ=\"y\\$HOME\"\nR=$$HOME\nS=${HOME}/s # $NOT\nINHERITED\nT=${TAG}\n";
        let options = Options {
            dotenv: parse_dotenv(dotenv),
            beside_notes: dotenv_warnings(dotenv, "app/.env"),
            ..options()
        };
        let imported = run(
            "services:\n  web:\n    image: nginx\n    environment:\n      P: ${P}\n      Q: ${Q}\n      R: ${R}\n      S: ${S}\n",
            &options,
        );
        let warnings: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("app/.env:2: variables: `P` uses `$HOME`, which compose takes from the shell it runs in; import does not read the shell, so it is empty in `P`'s value (unquoted, a backslash does not escape `$`"), "{warnings:?}");
        assert!(
            warnings[1].starts_with("app/.env:5: variables: `S` uses `$HOME`"),
            "{warnings:?}"
        );
        assert!(!warnings[1].contains("backslash"), "{warnings:?}");
        assert!(
            warnings[2]
                .starts_with("app/.env:6: variables: `INHERITED` takes its value from the shell"),
            "{warnings:?}"
        );
        assert!(
            imported
                .yaml
                .contains("# - app/.env:2: variables: `P` uses `$HOME`"),
            "{}",
            imported.yaml
        );
        // The values are compose's with an empty HOME.
        assert!(imported.yaml.contains("    p: x\\\n"), "{}", imported.yaml);
        assert!(
            imported.yaml.contains("    q: y$HOME\n"),
            "{}",
            imported.yaml
        );
    }

    #[test]
    fn dotenv_lines() {
        let vars = parse_dotenv(
            "# comment\nTAG=1.2\nexport PW=\"a \\\"b\\\"\"\nQ='x # y'\nC=v # note\n\nEMPTY=\n",
        );
        let expect = [
            ("TAG", "1.2"),
            ("PW", "a \"b\""),
            ("Q", "x # y"),
            ("C", "v"),
            ("EMPTY", ""),
        ];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(vars, expect);
    }

    #[test]
    fn decimals_and_wrapping() {
        assert!(is_decimal("8080") && is_decimal("0.5") && is_decimal("-1") && is_decimal("0"));
        assert!(!is_decimal("0755") && !is_decimal("1e3") && !is_decimal("1.") && !is_decimal(""));
        assert_eq!(
            wrap("- one two three four", 10, "  "),
            ["- one two", "  three", "  four"]
        );
        assert_eq!(
            project_name(Some("My Shop!"), Path::new("/x"), "app"),
            "myshop"
        );
        assert_eq!(
            project_name(None, Path::new("/srv/Big_Project"), "app"),
            "big_project"
        );
    }

    /// Round 13, firezone: its `app` network has `enable_ipv6: true` (the
    /// gateway and relay route IPv6), and was only said "not carried
    /// over" as a network; that its services lose their IPv6 addresses was
    /// not. Another driver and driver options are said too; a network no
    /// service joins, and `driver: bridge`, are not.
    #[test]
    fn what_a_joined_network_gave_its_containers_is_said_lost() {
        let warnings = messages(
            "services:\n  gw:\n    image: firezone-gateway\n    networks: [app]\n  db:\n    image: postgres\n    networks: [back]\nnetworks:\n  app:\n    enable_ipv6: true\n    driver: macvlan\n    driver_opts: {com.docker.network.driver.mtu: \"1400\"}\n  back:\n    driver: bridge\n    enable_ipv6: false\n  unused:\n    enable_ipv6: true\n",
        );
        let about = |key: &str| {
            warnings
                .iter()
                .filter(|w| w.starts_with(&format!("{key}: ")))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            about("networks.app.enable_ipv6"),
            [
                "networks.app.enable_ipv6: not carried over: its services get no IPv6 address on the instance network, which is made with Docker's defaults (IPv4 only)"
            ],
            "{warnings:#?}"
        );
        assert_eq!(
            about("networks.app.driver"),
            [
                "networks.app.driver: not carried over: the instance network is a bridge network, not `macvlan`"
            ]
        );
        assert_eq!(about("networks.app.driver_opts").len(), 1, "{warnings:#?}");
        for quiet in [
            "networks.back.driver",
            "networks.back.enable_ipv6",
            "networks.unused.enable_ipv6",
        ] {
            assert!(about(quiet).is_empty(), "{quiet}: {warnings:#?}");
        }
    }

    /// Round 13, openproject: `pull_policy: "${PULL_POLICY:-always}"` was
    /// warned "is not carried over" (the text was compared, not its value)
    /// and the service pulled only a missing image, where compose, without
    /// PULL_POLICY, pulls every time. It is read as compose reads it, and
    /// `if_not_present` is `missing`, as compose takes it; a policy `docker
    /// run` has not is said with why.
    #[test]
    fn pull_policy_is_read_as_compose_reads_it() {
        let compose = "services:\n  web:\n    image: openproject/openproject:15-slim\n    pull_policy: \"${PULL_POLICY:-always}\"\n  cache:\n    image: memcached\n    pull_policy: if_not_present\n  seeder:\n    image: openproject/openproject:15-slim\n    pull_policy: daily\n";
        let template = body(compose);
        assert!(
            template.contains("  web:\n    image: openproject/openproject:15-slim\n    restart: \"no\"\n    docker_args: [--pull=always]\n"),
            "{template}"
        );
        assert!(
            template.contains("  cache:\n    image: memcached\n    restart: \"no\"\n    docker_args: [--pull=missing]\n"),
            "{template}"
        );
        assert!(!template.contains("pull_policy"), "{template}");
        let warnings = messages(compose);
        assert!(
            warnings.contains(&"web: pull_policy: `${PULL_POLICY:-always}` is `always` as compose reads it here: written `--pull=always`, the same for every instance".to_string()),
            "{warnings:#?}"
        );
        assert!(
            warnings.contains(&"seeder: pull_policy: `daily` is not carried over: `docker run --pull` takes `always`, `missing` or `never`; apply pulls an image only when the host lacks it".to_string()),
            "{warnings:#?}"
        );
    }
}
