//! One compose service → one unitgen service, key by key.

use std::path::{Component, PathBuf};

use super::emit::{Map, Scalar, Value};
use super::interpolate::{self, Piece};
use super::node::{Key, Kind, Node, Place};
use super::{Globals, Importer};
use crate::compile::syntax;

impl Importer {
    pub(super) fn service_def(
        &mut self,
        key: &Key,
        def: &Node,
        globals: &Globals,
        project: &str,
    ) -> Option<Value> {
        let entries = match def.entries() {
            Some(entries) => entries,
            None => {
                let message = format!(
                    "service `{}`: expected a service definition (a map), found {}",
                    key.name,
                    def.what()
                );
                self.error(&def.at, message);
                return None;
            }
        };
        let mut out = Map::default();
        let new_name = self.names[&key.name].clone();
        if new_name != key.name {
            let mut message = format!(
                "renamed to `{new_name}`: unitgen service names are DNS labels (lowercase letters, digits, `-`)"
            );
            if new_name != key.name.to_lowercase() {
                message.push_str(&format!(
                    "; a network alias keeps `{}` reachable by its old name",
                    key.name
                ));
                out.push(
                    "docker_args",
                    Scalar::Text(format!(
                        "--network-alias={}",
                        interpolate::verbatim(&key.name)
                    )),
                );
            }
            self.warn(&key.at, "name", message);
        }
        for (k, value) in entries {
            self.service_key(k, value, def, &mut out, globals, project);
        }
        for alias in self
            .link_aliases
            .get(&key.name)
            .cloned()
            .unwrap_or_default()
        {
            self.network_alias(&mut out, &interpolate::verbatim(&alias));
        }
        // A copy answers to its service's name, as compose's containers do.
        if let Some(original) = self.replica_of.get(&key.name).cloned() {
            let alias = interpolate::verbatim(&self.names[&original]);
            self.network_alias(&mut out, &alias);
        }
        self.distinct_limits(def);
        self.implied_dependencies(def, &mut out);
        if let Some(Value::Scalar(Scalar::Text(mode))) = out.get("network_mode") {
            // Said at `network_mode` (`Importer::network_mode`).
            if ["host", "none"].contains(&mode.as_str()) {
                out.entries.retain(|e| e.key != "ports");
            }
            self.without_aliases(def, &mut out);
        }
        if self.oneshots.contains(&key.name) {
            self.oneshot(&mut out, def);
        } else if out.get("restart").is_none() {
            // Compose restarts nothing unless told; unitgen's default is `always`.
            out.set("restart", Value::text("no"));
        }
        // Extra flags read best after the keys unitgen has.
        if let Some(i) = out.entries.iter().position(|e| e.key == "docker_args") {
            let args = out.entries.remove(i);
            out.entries.push(args);
        }
        if def.get("image").is_none() && def.get("build").is_none() {
            self.error(
                &key.at,
                format!("service `{}` has neither `image` nor `build`", key.name),
            );
        }
        // `cache: redis:7` when there is nothing but the image.
        match out.entries.as_slice() {
            [entry] if entry.key == "image" && entry.comment.is_empty() => {
                Some(entry.value.clone())
            }
            _ => Some(Value::Map(out)),
        }
    }

    fn service_key(
        &mut self,
        key: &Key,
        value: &Node,
        def: &Node,
        out: &mut Map,
        globals: &Globals,
        project: &str,
    ) {
        let name = key.name.as_str();
        match name {
            "image" => {
                if let Some(image) = self.text(value, name) {
                    out.set("image", Value::text(image));
                }
            }
            "build" => {
                // unitgen does not build, but compose validates `build` as
                // it loads the file, and refuses it when `args` or `labels`
                // is neither a map nor a list (influxdata's sandbox:
                // `args: INFLUXDB_TAG:${INFLUXDB_TAG}`, one string).
                for field in ["args", "labels"] {
                    if let Some(v) = value.get(field)
                        && !matches!(v.kind, Kind::Map(_) | Kind::List(_) | Kind::Null)
                    {
                        self.error(
                            &v.at,
                            format!(
                                "`build.{field}` of service `{}` is {}, where compose takes a map or a list: compose refuses the file",
                                self.service.clone().unwrap_or_default(),
                                v.what()
                            ),
                        );
                    }
                }
                let context = match &value.kind {
                    Kind::Map(_) => value.get("context").and_then(Node::scalar),
                    _ => value.scalar(),
                }
                .unwrap_or_else(|| ".".into());
                if def.get("image").is_some() {
                    self.warn(
                        &key.at,
                        name,
                        format!(
                            "unitgen runs images, it does not build them: build {context} and push it as `image` before deploying"
                        ),
                    );
                } else {
                    let service = self.service.clone().unwrap_or_default();
                    let image = format!("{project}-{}", service.to_lowercase());
                    self.warn(
                        &key.at,
                        name,
                        format!(
                            "unitgen runs images, it does not build them: `image` is set to `{image}`, the name compose gives the image it builds from {context}; push that image to a registry and put its name there"
                        ),
                    );
                    out.set("image", Value::text(&image));
                    out.comment(
                        "image",
                        format!("TODO: compose built this image from {context}: push it and name it here."),
                    );
                }
            }
            "command" | "entrypoint" => {
                // An empty entrypoint is none at all, in unitgen as in compose.
                if let Some(words) = self.words(value, name) {
                    out.set(name, words);
                }
            }
            "environment" => self.environment(value, out),
            "env_file" => self.env_files(value, out),
            "ports" => self.ports(value, out),
            "volumes" => self.volumes(value, out),
            "tmpfs" => {
                let absolute = |mount: &str| match mount.starts_with('/') {
                    true => Ok(()),
                    false => Err(format!("`{mount}` is not an absolute path, which Docker needs")),
                };
                for item in self.string_list(value, name) {
                    if let Some(t) = self.checked(item, name, absolute) {
                        out.push("tmpfs", t);
                    }
                }
            }
            "user" => {
                if let Some(user) = self.scalar(value, name) {
                    out.set(name, Value::Scalar(user));
                }
            }
            "working_dir" => {
                let absolute = |dir: &str| match dir.starts_with('/') {
                    true => Ok(()),
                    false => Err(format!("`{dir}` is not an absolute path, which Docker needs")),
                };
                if let Some(dir) = self.checked(value, name, absolute) {
                    out.set(name, Value::Scalar(dir));
                }
            }
            "hostname" => {
                let short = |host: &str| match host.len() <= 64 {
                    true => Ok(()),
                    false => Err(format!("a hostname of {} bytes: Linux takes at most 64", host.len())),
                };
                if let Some(host) = self.checked(value, name, short) {
                    out.set(name, Value::Scalar(host));
                }
            }
            "stop_signal" => {
                if let Some(text) = self.text(value, name) {
                    out.set(name, Value::text(text));
                }
            }
            "restart" => self.restart(key, value, def, out),
            "stop_grace_period" => {
                if let Some(duration) = self.checked(value, name, syntax::parse_duration) {
                    out.set(name, Value::Scalar(duration));
                }
            }
            "healthcheck" => self.healthcheck(value, out),
            "labels" => {
                for (k, v, at) in self.key_values(value, name) {
                    if let Err(msg) = syntax::check_label_name(&k) {
                        self.warn(&at, name, format!("not carried over: {msg}"));
                        continue;
                    }
                    let v = v.unwrap_or_else(|| Scalar::Text(String::new()));
                    out.map("labels").set(&k, Value::Scalar(v));
                }
            }
            "label_file" => self.label_files(value, def, out),
            "mem_limit" => self.limit(value, name, name, syntax::check_memory, out),
            "cpus" => self.limit(value, name, name, syntax::check_cpus, out),
            "cap_add" | "cap_drop" => {
                for item in self.string_list(value, name) {
                    if let Some(cap) = self.checked(item, name, syntax::check_capability) {
                        out.push(name, cap);
                    }
                }
            }
            "read_only" | "init" => {
                if let Some(b) = self.boolean(value, name) {
                    out.set(name, Value::plain(b.to_string()));
                }
            }
            "depends_on" => self.depends_on(value, out),
            "deploy" => self.deploy(value, out),
            "container_name" => {
                let service = self.service.clone().unwrap_or_default();
                let unit_name = self.names[&service].clone();
                let mut message = format!(
                    "unitgen names containers itself (`<app>-<instance>-{unit_name}`), so that instances never collide"
                );
                // `${CONTAINER_NAME}` is the name compose gives it: the alias
                // is the same template, and the message says its value.
                let pieces = match value.scalar() {
                    Some(_) => self.scalar_pieces(value, name),
                    None => None,
                };
                if let Some(pieces) = pieces
                    && let container = self.resolve(&pieces)
                    && container != unit_name
                {
                    message.push_str(&format!(
                        "; a network alias keeps `{container}` reachable by that name from the other services"
                    ));
                    let alias = interpolate::template(&pieces);
                    self.network_alias(out, &alias);
                }
                self.warn(&key.at, name, message);
            }
            "networks" => self.service_networks(value, def, out),
            "network_mode" => self.network_mode(key, value, def, out),
            "links" => {
                let (mut carried, mut lost) = (Vec::new(), Vec::new());
                for link in value.items().unwrap_or_default().iter().filter_map(Node::scalar) {
                    let Some((target, alias)) = link.split_once(':') else {
                        continue;
                    };
                    let given = self
                        .link_aliases
                        .get(target)
                        .is_some_and(|aliases| aliases.iter().any(|a| a == alias));
                    match given {
                        true => carried.push(format!("`{alias}` of `{target}`")),
                        false => lost.push(format!("`{link}`")),
                    }
                }
                let mut message = "not needed: services find each other by name on the instance network; the linked services are dependencies (`depends_on`), as compose starts them first".to_string();
                if !carried.is_empty() {
                    message.push_str(&format!(
                        "; the link alias {} is a network alias now, which every service of the instance reaches it by, where compose gave it to this service alone",
                        carried.join(", ")
                    ));
                }
                if !lost.is_empty() {
                    message.push_str(&format!(
                        "; the aliases in {} are not carried over, since on the instance network they would name another service or container too: use the services' names",
                        lost.join(", ")
                    ));
                }
                self.warn(&key.at, name, message);
            }
            "external_links" => self.warn(
                &key.at,
                name,
                "not carried over: containers outside the instance are not on its network",
            ),
            // Said when the services are chosen (`select_profiles`).
            "profiles" => {}
            "secrets" | "configs" => {
                let top = if name == "secrets" {
                    globals.secrets
                } else {
                    globals.configs
                };
                self.file_mounts(key, value, top, out);
            }
            "logging" => self.logging(value, out),
            "ulimits" => self.ulimits(value, out),
            "blkio_config" => self.blkio_config(value, out),
            "cpu_rt_runtime" | "cpu_rt_period" => self.realtime_cpu(name, value, out),
            "scale" if value.scalar().as_deref() == Some("1") => {}
            "scale" => self.replicas_said(&key.at, name, value),
            "volumes_from" => self.volumes_from_key(value),
            "stdin_open" => self.stdin_open(key, value, def),
            "develop" => self.warn(
                &key.at,
                name,
                "for `docker compose watch` only (`up` does not read it): not carried over",
            ),
            "models" => self.models(key, value),
            // Not in `docker run`'s flags (20.10's nor 28's): compose sets
            // them through the API, where an engine before API 1.43
            // (Debian's 20.10) ignores them.
            "annotations" => self.warn(
                &key.at,
                name,
                "not carried over: `docker run` has no flag for a container's annotations (compose sets them through Docker's API, which applies them from Docker 24 on)",
            ),
            "post_start" | "pre_stop" => self.lifecycle_hooks(key, value),
            other => match DOCKER_FLAGS.iter().find(|(k, _)| *k == other) {
                Some((_, flag)) => self.docker_flag(key, flag, value, out),
                None if other.starts_with("x-") => {
                    self.warn(&key.at, other, "extension field: not carried over")
                }
                None => self.warn(
                    &key.at,
                    other,
                    "not carried over: unitgen has no such key; if `docker run` has a flag for it, add that to `docker_args`",
                ),
            },
        }
    }

    fn environment(&mut self, node: &Node, out: &mut Map) {
        for (name, value, at) in self.key_values(node, "environment") {
            let valid = syntax::check_env_name(&name).is_ok();
            if value.is_none() && !valid {
                self.warn(
                    &at,
                    "environment",
                    format!("`{name}` has no value, and no instance value can stand for it: not carried over"),
                );
                continue;
            }
            // Compose passes the variable of the shell it runs in, or of
            // .env; where neither sets it, the container has no such
            // variable (sentry's `OPENAI_API_KEY:`), which is not an empty
            // one, nor a default other uses of `${NAME:-…}` give.
            if value.is_none() && !self.options.dotenv.iter().any(|(n, _)| *n == name) {
                self.warn(
                    &at,
                    "environment",
                    format!(
                        "`{name}` has no value, here nor in .env: compose passes it from the shell it runs in, and without one the container has no `{name}`; not carried over: add `{name}` to `environment` where an instance needs it"
                    ),
                );
                continue;
            }
            let value = value.unwrap_or_else(|| {
                // Compose passes the variable of .env: the instance's value
                // of that name now, as `${NAME}` would be, and as silently:
                // the template says `{{ name }}` and the instance its value.
                let pieces = vec![Piece::Var {
                    name: name.clone(),
                    written: name.clone(),
                    default: None,
                    required: None,
                    per_use: false,
                }];
                self.record(&pieces, &at, "environment");
                Scalar::Text(interpolate::template(&pieces))
            });
            // A password written in the compose file: carried over, but
            // into units every local user can read.
            if let Scalar::Text(text) | Scalar::Plain(text) = &value
                && !text.is_empty()
                && !text.contains("{{")
                // A switch (`MYSQL_RANDOM_ROOT_PASSWORD: "yes"`), not a secret.
                && !["yes", "no", "true", "false", "on", "off", "0", "1"]
                    .contains(&text.to_ascii_lowercase().as_str())
                && super::looks_like_a_secret(&name)
            {
                self.warn(
                    &at,
                    "environment",
                    format!(
                        "`{name}` looks like a secret, and its value is written here: it is in the template now, and in units every local user can read; give `{name}` from `secrets:` instead (see Secrets in unitgen's README)"
                    ),
                );
            }
            if valid {
                out.map("environment").set(&name, Value::Scalar(value));
            } else {
                let text = match value {
                    Scalar::Text(t) | Scalar::Plain(t) => t,
                };
                out.push(
                    "docker_args",
                    Scalar::Text(format!("--env={}={text}", interpolate::verbatim(&name))),
                );
            }
        }
    }

    fn env_files(&mut self, node: &Node, out: &mut Map) {
        let items: Vec<&Node> = match &node.kind {
            Kind::List(items) => items.iter().collect(),
            _ => vec![node],
        };
        for item in items {
            let optional = item.get("required").and_then(Node::boolean) == Some(false);
            // `raw`: compose reads the file as `docker run --env-file` does
            // (docker/cli's kvfile), not as a `.env`.
            let mut raw = false;
            let path_node = match &item.kind {
                Kind::Map(entries) => {
                    for (k, v) in entries {
                        match k.name.as_str() {
                            "path" | "required" => {}
                            "format" => match v.scalar().as_deref() {
                                Some("raw") => raw = true,
                                Some("") => {}
                                Some(other) => self.error(
                                    &v.at,
                                    format!("`env_file.format` `{other}`: compose reads `raw` or the default (no `format`), and refuses the file"),
                                ),
                                None => self.expected(v, "env_file.format", "a string"),
                            },
                            _ => self.warn(&k.at, &format!("env_file.{}", k.name), "not carried over"),
                        }
                    }
                    match item.get("path") {
                        Some(path) => path,
                        None => {
                            self.expected(item, "env_file", "a map with `path`");
                            continue;
                        }
                    }
                }
                _ => item,
            };
            let Some(text) = path_node.scalar() else {
                self.expected(path_node, "env_file", "a path");
                continue;
            };
            let mut pieces = self.pieces(&text, &path_node.at, "env_file");
            let warned = self.warnings.len();
            self.host_path(&mut pieces, &path_node.at, "env_file");
            // Read here, as compose would: what a unit cannot deliver the
            // same way is said at this `env_file`.
            let path = self.resolve(&pieces);
            match (self.options.read)(std::path::Path::new(&path)) {
                Ok(content) => {
                    let differences = match raw {
                        true => super::env_file::raw_differences(&content),
                        false => super::env_file::differences(&content),
                    };
                    for (line, why) in differences {
                        self.warn(&path_node.at, "env_file", format!("{path}:{line}: {why}"));
                    }
                }
                // Compose skips a missing optional file (superset's
                // docker/.env-local); the unit would fail to start on it.
                Err(_) if optional => {
                    // Not where it must exist on every host: not at all.
                    self.warnings.truncate(warned);
                    self.warn(
                        &item.at,
                        "env_file",
                        format!("`{path}` (`required: false`) does not exist: left out, as compose leaves it out; add it to env_file once it exists"),
                    );
                    continue;
                }
                Err(_) => {}
            }
            if optional {
                self.warn(
                    &item.at,
                    "env_file",
                    "`required: false` is not carried over: the unit fails to start if the file is missing",
                );
            }
            out.push("env_file", Scalar::Text(interpolate::template(&pieces)));
        }
    }

    /// `label_file`: compose reads each file as it loads the project
    /// (compose-go's `WithServicesLabelsResolved`), in order, as a `.env`
    /// whose `${VAR}` are the labels of the files before, and gives the
    /// container those labels, but where `labels` sets one. Read here: the
    /// labels are the template's, and the file need not be on any host.
    fn label_files(&mut self, node: &Node, def: &Node, out: &mut Map) {
        // `labels` wins over every file, whatever its place in the service.
        let own: Vec<String> = match def.get("labels").map(|l| &l.kind) {
            Some(Kind::Map(entries)) => entries.iter().map(|(k, _)| k.name.clone()).collect(),
            Some(Kind::List(items)) => items
                .iter()
                .filter_map(Node::scalar)
                .map(|text| {
                    text.split_once('=')
                        .map_or(text.clone(), |(k, _)| k.to_string())
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut read: Vec<(String, String)> = Vec::new();
        for item in self.string_list(node, "label_file") {
            // `{path, required, format}` (compose-go's LabelFile), as
            // `env_file`'s long form.
            let (path_node, required, raw) = match &item.kind {
                Kind::Map(_) => (
                    item.get("path"),
                    item.get("required").and_then(Node::boolean) != Some(false),
                    item.get("format").and_then(Node::scalar).as_deref() == Some("raw"),
                ),
                _ => (Some(item), true, false),
            };
            let Some(text) = path_node.and_then(Node::scalar) else {
                self.expected(item, "label_file", "a path, or a map with `path`");
                continue;
            };
            // Read now, with the values compose would read it with.
            let text = self.as_compose_resolves(&text).unwrap_or(text);
            let path = match text.starts_with('/') {
                true => Some(text.clone()),
                false => self.absolute(&text),
            };
            let content = path
                .as_ref()
                .map(|path| (self.options.read)(std::path::Path::new(path)));
            let content = match content {
                Some(Ok(content)) => content,
                // Compose skips a missing optional file.
                Some(Err(_)) if !required => continue,
                Some(Err(e)) => {
                    let path = path.unwrap_or_default();
                    self.error(
                        &item.at,
                        format!(
                            "`label_file` `{path}` cannot be read ({e}): compose refuses the file"
                        ),
                    );
                    continue;
                }
                None => {
                    self.error(
                        &item.at,
                        format!("`label_file` `{text}`: no home folder to find it in"),
                    );
                    continue;
                }
            };
            let labels = match raw {
                true => super::env_file::parse_raw(&content, &read),
                false => super::parse_dotenv_within(&content, &read),
            };
            for (name, value) in labels {
                match read.iter_mut().find(|(n, _)| *n == name) {
                    Some(label) => label.1 = value,
                    None => read.push((name, value)),
                }
            }
        }
        for (name, value) in read {
            if own.contains(&name) {
                continue;
            }
            if let Err(msg) = syntax::check_label_name(&name) {
                self.warn(
                    &node.at,
                    "label_file",
                    format!("`{name}` not carried over: {msg}"),
                );
                continue;
            }
            out.map("labels")
                .set(&name, Value::text(interpolate::verbatim(&value)));
        }
    }

    fn ports(&mut self, node: &Node, out: &mut Map) {
        let Some(items) = node.items() else {
            self.expected(node, "ports", "a list");
            return;
        };
        for item in items {
            let pieces = match &item.kind {
                Kind::Map(entries) => self.long_port(item, entries),
                _ => match item.scalar() {
                    Some(text) => self.pieces(&text, &item.at, "ports"),
                    None => {
                        self.expected(item, "ports", "a port");
                        continue;
                    }
                },
            };
            // Docker publishes a range as one binding per port.
            if let Some(text) = interpolate::literal(&pieces)
                && let Some(expanded) = expand_port_range(&text)
            {
                match expanded {
                    Ok(Published::Each(ports)) => {
                        for port in ports {
                            out.push("ports", Scalar::Text(port));
                        }
                    }
                    // Thousands of `ports` entries (firezone's 16,384 relay
                    // ports) would be as many lines and flags: one `-p`
                    // flag publishes the range, as compose has Docker do.
                    Ok(Published::Whole(count)) => {
                        out.push(
                            "docker_args",
                            Scalar::Text(format!("--publish={}", interpolate::verbatim(&text))),
                        );
                        self.warn(
                            &item.at,
                            "ports",
                            format!(
                                "`{text}` is {count} ports: carried over as one `--publish` flag in `docker_args`, which `unitgen validate` does not check for host ports another service or instance publishes too"
                            ),
                        );
                    }
                    Err(why) => self.warn(&item.at, "ports", format!("not carried over: {why}")),
                }
                continue;
            }
            let resolved = self.resolve(&pieces);
            // `${WEB_PORT}:80` without a value would be `:80`, any free
            // host port: the value is asked for instead, as for a port that
            // is not one. A variable other uses give defaults to stays in
            // the instance (they need it): plane's `${NGINX_PORT}:80` is
            // `:80` there, as in compose.
            let unvalued = interpolate::variables(&pieces).into_iter().any(|piece| {
                matches!(piece, Piece::Var { name, .. }
                    if !self.varying_defaults.contains(name)
                        && self.values.get(&interpolate::value_name(name)).is_some_and(|v| v.value.is_none()))
            });
            let valid = match syntax::parse_port(&resolved) {
                Ok(port) if port.host_port.is_none() && resolved.contains(':') && unvalued => {
                    Err(format!("`{resolved}` has no host port"))
                }
                other => other.map(|_| ()),
            };
            if self.usable(valid, &pieces, &item.at, "ports") {
                let port = match &item.kind {
                    Kind::Number(n) => Scalar::Plain(n.clone()),
                    _ => Scalar::Text(interpolate::template(&pieces)),
                };
                out.push("ports", port);
            }
        }
    }

    /// `{target: 80, published: 8080, host_ip: 127.0.0.1, protocol: udp}` →
    /// `127.0.0.1:8080:80/udp`.
    fn long_port(&mut self, item: &Node, entries: &[(Key, Node)]) -> Vec<Piece> {
        let part = |this: &mut Self, key: &str| -> Vec<Piece> {
            match item.get(key).and_then(Node::scalar) {
                Some(text) => this.pieces(&text, &item.at, "ports"),
                None => Vec::new(),
            }
        };
        let target = part(self, "target");
        let published = part(self, "published");
        let host_ip = part(self, "host_ip");
        let protocol = part(self, "protocol");
        for (k, _) in entries {
            // `mode: host` is what `docker run -p` does; `ingress` is swarm's.
            if !["target", "published", "host_ip", "protocol", "mode"].contains(&k.name.as_str()) {
                self.warn(&k.at, &format!("ports.{}", k.name), "not carried over");
            }
        }
        let mut pieces = Vec::new();
        if !host_ip.is_empty() {
            // `host_ip: "::1"` is `[::1]:…`, Docker's form beside the ports.
            let ipv6 = interpolate::literal(&host_ip).is_some_and(|ip| ip.contains(':'));
            if ipv6 {
                pieces.push(Piece::Text("[".into()));
            }
            pieces.extend(host_ip);
            pieces.push(Piece::Text(if ipv6 { "]:" } else { ":" }.into()));
        }
        if !published.is_empty() {
            pieces.extend(published);
            pieces.push(Piece::Text(":".into()));
        } else if !pieces.is_empty() {
            pieces.push(Piece::Text(":".into()));
        }
        pieces.extend(target);
        if !protocol.is_empty() && interpolate::literal(&protocol).as_deref() != Some("tcp") {
            pieces.push(Piece::Text("/".into()));
            pieces.extend(protocol);
        }
        merge_text(pieces)
    }

    fn volumes(&mut self, node: &Node, out: &mut Map) {
        let Some(items) = node.items() else {
            self.expected(node, "volumes", "a list");
            return;
        };
        // (target as compose cleans it, the volume, where it is written)
        let mut kept: Vec<(String, String, Place)> = Vec::new();
        for item in items {
            let parts = match &item.kind {
                Kind::Map(_) => match self.long_volume(item, out) {
                    Some(parts) if needs_mount_api(item) => {
                        if let Some(volume) = self.volume(parts, &item.at) {
                            self.bind_mount(&volume, item, out);
                        }
                        continue;
                    }
                    Some(parts) => parts,
                    None => continue,
                },
                _ => match item.scalar() {
                    Some(text) => {
                        let pieces = self.pieces(&text, &item.at, "volumes");
                        interpolate::split(&pieces, ':')
                    }
                    None => {
                        self.expected(item, "volumes", "a volume");
                        continue;
                    }
                },
            };
            let target = match parts.as_slice() {
                [target] | [_, target, ..] => self.resolve(target),
                [] => String::new(),
            };
            if let [source, target, ..] = parts.as_slice()
                && let Some(options) = self.tmpfs_volumes.get(&self.resolve(source)).cloned()
            {
                self.tmpfs_volume(&self.resolve(source), target, &options, &item.at, out);
                continue;
            }
            let mut parts = parts;
            if parts.len() == 1 {
                parts.insert(0, self.anonymous_volume(&target, &item.at));
            }
            if let Some(volume) = self.volume(parts, &item.at) {
                kept.push((clean_target(&target), volume, item.at));
            }
        }
        // Compose mounts one volume per target, the last one listed
        // (prometheus-grafana's bind and named volume at /prometheus);
        // Docker refuses two.
        let service = self.service.clone().unwrap_or_default();
        for (i, (target, volume, at)) in kept.iter().enumerate() {
            if kept[i + 1..].iter().any(|(later, ..)| later == target) {
                self.warn(
                    at,
                    "volumes",
                    format!(
                        "`{volume}` not carried over: a later volume mounts at `{target}` too, and compose mounts only the last"
                    ),
                );
            } else {
                out.push("volumes", Scalar::Text(volume.clone()));
                // `volume` wrote its mode last, `ro` first in it.
                let (volume, mode) = match volume.rsplit_once(':') {
                    Some((base, mode)) if base.contains(':') => (base.to_string(), mode),
                    _ => (volume.clone(), ""),
                };
                let read_only = mode.starts_with("ro");
                // Relabelling and nocopy were done for the first container.
                let propagation = mode
                    .split(',')
                    .find(|f| f.contains("shared") || f.contains("slave") || f.contains("private"))
                    .map(str::to_string);
                self.volumes_of
                    .entry(service.clone())
                    .or_default()
                    .push(super::Mounted {
                        target: target.clone(),
                        volume,
                        read_only,
                        propagation,
                    });
            }
        }
    }

    /// An anonymous volume (`- /var/lib/postgresql/data`): compose keeps it
    /// when it restarts or recreates the container (it hands the old
    /// container's anonymous volumes to the new one), so its data lives
    /// until `down`; a unit's `docker run --rm` would remove it at every
    /// stop. It is a volume of the instance's, named after the service and
    /// the path, kept until `destroy --volumes` (and shared by `volumes_from`,
    /// as compose shares it).
    fn anonymous_volume(&mut self, target: &str, at: &Place) -> Vec<Piece> {
        let service = self.service.clone().unwrap_or_default();
        let path: String = clean_target(target)
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    true => c,
                    false => '-',
                },
            )
            .collect();
        let name = format!("{}{path}", self.names[&service]);
        self.warn(
            at,
            "volumes",
            format!(
                "an anonymous volume: compose keeps it when it restarts or recreates the container (until `down`), where a unit's `docker run --rm` would remove it at every stop; it is the instance's volume `{name}`, kept until `destroy --volumes`"
            ),
        );
        vec![Piece::Text(name)]
    }

    /// A named volume that is a tmpfs (kong's `kong_prefix_vol`) is one: the
    /// local driver mounts a new, empty tmpfs when a container starts using
    /// it, as `--tmpfs` does.
    fn tmpfs_volume(
        &mut self,
        volume: &str,
        target: &[Piece],
        options: &str,
        at: &Place,
        out: &mut Map,
    ) {
        let mut text = interpolate::template(target);
        if !options.is_empty() {
            text = format!("{text}:{}", interpolate::verbatim(options));
        }
        self.warn(
            at,
            "volumes",
            format!("`{volume}` is a tmpfs (its `driver_opts`): mounted as the container's own tmpfs, empty at each start as the volume was; other services no longer share it"),
        );
        out.push("tmpfs", Scalar::Text(text));
    }

    /// `SOURCE:TARGET[:MODE]`, split at `:` → the unitgen volume: relative
    /// host paths made absolute, modes unitgen lacks dropped with a warning.
    fn volume(&mut self, mut parts: Vec<Vec<Piece>>, at: &Place) -> Option<String> {
        if parts.len() == 3 {
            let mode = self.resolve(&parts[2]);
            // A host path, or a volume the local driver binds to one.
            let source = self.resolve(&parts[0]);
            let bind =
                source.starts_with(['/', '.', '~']) || self.bind_volumes.contains_key(&source);
            let mut kept = Vec::new();
            for flag in mode.split(',') {
                match flag {
                    "ro" => kept.insert(0, flag),
                    "rw" => {}
                    "shared" | "slave" | "private" | "rshared" | "rslave" | "rprivate" if bind => {
                        kept.push(flag)
                    }
                    // SELinux relabelling; Docker ignores it where SELinux is off.
                    "z" | "Z" => kept.push(flag),
                    "nocopy" if !bind => kept.push(flag),
                    // Only meaningful on macOS.
                    "cached" | "delegated" | "consistent" => {}
                    // Docker refuses the container, and so `compose up`.
                    "nocopy" => self.error(
                        at,
                        format!(
                            "`volumes` of service `{}`: mode `nocopy` is for volumes: Docker refuses it on a bind mount (`{source}`)",
                            self.service.clone().unwrap_or_default()
                        ),
                    ),
                    other => self.warn(
                        at,
                        "volumes",
                        format!(
                            "mode `{other}` is not carried over: unitgen mounts with ro or rw, z or Z, volumes with nocopy, and binds with a propagation"
                        ),
                    ),
                }
            }
            if kept.is_empty() {
                parts.pop();
            } else {
                parts[2] = vec![Piece::Text(kept.join(","))];
            }
        }
        if parts.len() >= 2
            && let Some(folder) = self.bind_volumes.get(&self.resolve(&parts[0])).cloned()
        {
            self.warn(
                at,
                "volumes",
                format!(
                    "`{}` is the host folder `{folder}` (its `driver_opts` bind it): mounted as that folder, which must exist on every host that runs the units",
                    self.resolve(&parts[0])
                ),
            );
            parts[0] = vec![Piece::Text(folder)];
        }
        if parts.len() >= 2 {
            let source = self.resolve(&parts[0]);
            if source.starts_with(['.', '~', '/']) {
                self.host_path(&mut parts[0], at, "volumes");
            } else if syntax::is_docker_name(&source) && !self.named_volumes.contains(&source) {
                self.named_volumes.push(source);
            }
        }
        let text = parts
            .iter()
            .map(|p| interpolate::template(p))
            .collect::<Vec<_>>()
            .join(":");
        let resolved = parts
            .iter()
            .map(|p| self.resolve(p))
            .collect::<Vec<_>>()
            .join(":");
        let valid = syntax::parse_volume(&resolved).map(|_| ());
        let pieces: Vec<Piece> = parts.concat();
        self.usable(valid, &pieces, at, "volumes").then_some(text)
    }

    /// Whether a port or volume is carried over: when it is valid, or when it
    /// would be once its variables without a value get one. Those are then
    /// left out of the instance, so that validation asks for them; anything
    /// else invalid is warned about and left out.
    fn usable<T>(
        &mut self,
        valid: Result<T, String>,
        pieces: &[Piece],
        at: &Place,
        key: &str,
    ) -> bool {
        let Err(msg) = valid else {
            return true;
        };
        let missing: Vec<String> = interpolate::variables(pieces)
            .into_iter()
            .filter_map(|piece| match piece {
                Piece::Var { name, .. } => Some(interpolate::value_name(name)),
                _ => None,
            })
            .filter(|name| self.values.get(name).is_some_and(|v| v.value.is_none()))
            .collect();
        if missing.is_empty() {
            self.warn(at, key, format!("not carried over: {msg}"));
            return false;
        }
        for name in &missing {
            if let Some(v) = self.values.get_mut(name) {
                v.undeclared = true;
            }
        }
        self.warn(
            at,
            key,
            format!(
                "needs a value for `{}` in each instance: compose took it from its environment; until it is set, the template does not validate",
                missing.join("`, `")
            ),
        );
        true
    }

    /// Compose's long volume syntax, as the parts of the short one. A tmpfs
    /// goes to `tmpfs` instead.
    fn long_volume(&mut self, item: &Node, out: &mut Map) -> Option<Vec<Vec<Piece>>> {
        let kind = item
            .get("type")
            .and_then(Node::scalar)
            .unwrap_or_else(|| "volume".into());
        let part = |this: &mut Self, key: &str| -> Option<Vec<Piece>> {
            let text = item.get(key).and_then(Node::scalar)?;
            Some(this.pieces(&text, &item.at, "volumes"))
        };
        let Some(target) = part(self, "target") else {
            self.expected(item, "volumes", "a volume with `target`");
            return None;
        };
        let source = part(self, "source");
        for (k, v) in item.entries().unwrap_or_default() {
            match k.name.as_str() {
                "type" | "source" | "target" | "read_only" | "consistency" => {}
                "bind" => {
                    for (option, value) in v.entries().unwrap_or_default() {
                        if !["create_host_path", "propagation", "selinux"]
                            .contains(&option.name.as_str())
                        {
                            self.warn(
                                &option.at,
                                &format!("volumes.bind.{}", option.name),
                                format!(
                                    "`{}` is not carried over: unitgen binds with a propagation and SELinux relabelling only",
                                    value.scalar().unwrap_or_default()
                                ),
                            );
                        }
                    }
                }
                "volume" if kind == "volume" && is_only(v, "nocopy") => {}
                "volume" if let Some(sub) = v.get("subpath") => self.warn(
                    &sub.at,
                    "volumes.volume.subpath",
                    format!(
                        "`{}` is not carried over: the whole volume is mounted at the target (`docker run --volume` takes no sub-path, and Docker 26's `--mount volume-subpath=` is not used)",
                        sub.scalar().unwrap_or_default()
                    ),
                ),
                "tmpfs" if kind == "tmpfs" => {}
                other => self.warn(&k.at, &format!("volumes.{other}"), "not carried over"),
            }
        }
        let read_only = item.get("read_only").and_then(Node::boolean) == Some(true);
        let propagation = item
            .get("bind")
            .and_then(|b| b.get("propagation"))
            .and_then(Node::scalar);
        let relabel = item
            .get("bind")
            .and_then(|b| b.get("selinux"))
            .and_then(Node::scalar);
        let nocopy = item
            .get("volume")
            .and_then(|b| b.get("nocopy"))
            .and_then(Node::boolean)
            == Some(true);
        match kind.as_str() {
            "volume" | "bind" => {
                let mut parts = Vec::new();
                match source {
                    Some(source) => parts.push(source),
                    None if kind == "volume" => {
                        let resolved = self.resolve(&target);
                        parts.push(self.anonymous_volume(&resolved, &item.at));
                    }
                    None => {}
                }
                parts.push(target);
                // Read as the short form's mode (`volume` checks it).
                let mode: Vec<String> = read_only
                    .then(|| "ro".to_string())
                    .into_iter()
                    .chain(propagation)
                    .chain(relabel)
                    .chain(nocopy.then(|| "nocopy".to_string()))
                    .collect();
                if !mode.is_empty() && parts.len() == 2 {
                    parts.push(vec![Piece::Text(mode.join(","))]);
                }
                Some(parts)
            }
            "tmpfs" => {
                let mut text = interpolate::template(&target);
                let options = item.get("tmpfs");
                let mut opts = Vec::new();
                for opt in ["size", "mode"] {
                    let Some(node) = options.and_then(|o| o.get(opt)) else {
                        continue;
                    };
                    let Some(mut v) = node.scalar() else {
                        continue;
                    };
                    if opt == "mode" {
                        match self.tmpfs_mode(node, &v) {
                            Some(octal) => v = octal,
                            None => continue,
                        }
                    }
                    // Docker's mount API reads a size or mode of 0 as not
                    // given (the kernel's default, half the RAM), where
                    // `--tmpfs …:size=0` would be no limit at all.
                    let zero = v
                        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                        .parse::<u64>()
                        .is_ok_and(|n| n == 0);
                    if !zero {
                        opts.push(format!("{opt}={v}"));
                    }
                }
                if !opts.is_empty() {
                    text = format!("{text}:{}", opts.join(","));
                }
                out.push("tmpfs", Scalar::Text(text));
                None
            }
            other => {
                self.warn(
                    &item.at,
                    "volumes",
                    format!("a volume of type `{other}` is not carried over"),
                );
                None
            }
        }
    }

    /// A long-syntax bind compose mounts through Docker's mount API
    /// ([`needs_mount_api`]): as `--mount`, which fails the container when
    /// the host path is missing, as compose's start fails, where `--volume`
    /// would create an empty folder. `volume` is the bind as the short
    /// syntax writes it (`SOURCE:TARGET[:MODE]`, its source made absolute).
    fn bind_mount(&mut self, volume: &str, item: &Node, out: &mut Map) {
        let parts: Vec<&str> = volume.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [source, target] => (*source, *target, ""),
            [source, target, mode] => (*source, *target, *mode),
            _ => ("", "", ""),
        };
        let relabel = mode.split(',').any(|f| f == "z" || f == "Z");
        // `--mount` is comma-separated values: a comma or quote in a path
        // would be read as another option.
        let plain = |p: &str| !p.is_empty() && !p.contains([',', '"']);
        if relabel || !plain(source) || !plain(target) {
            self.warn(
                &item.at,
                "volumes",
                format!(
                    "`{volume}` is mounted with `--volume`, which creates the host path when it is missing; compose's mount API fails the start then (its `bind:` options), and `--mount` cannot take this path or SELinux relabelling"
                ),
            );
            out.push("volumes", Scalar::Text(volume.to_string()));
            return;
        }
        let mut mount = format!("--mount=type=bind,source={source},target={target}");
        for flag in mode.split(',').filter(|f| !f.is_empty()) {
            if flag == "ro" {
                mount.push_str(",readonly");
            } else {
                mount.push_str(&format!(",bind-propagation={flag}"));
            }
        }
        out.push("docker_args", Scalar::Text(mount));
    }

    /// A long-syntax tmpfs `mode`, in octal as `--tmpfs …:mode=` takes it.
    /// Compose reads it as a YAML integer (`0o1777` and `01777` octal,
    /// `1777` decimal) and hands Docker that number as the mode's bits, so
    /// `mode: 1777` is 0o3361 under compose, not the sticky, world-writable
    /// 1777 it looks like: carried over as compose gives it, and said.
    fn tmpfs_mode(&mut self, node: &Node, text: &str) -> Option<String> {
        let key = "volumes.tmpfs.mode";
        let digits = text.replace('_', "");
        let parsed = if let Some(octal) = digits.strip_prefix("0o") {
            u32::from_str_radix(octal, 8).ok()
        } else if let Some(hex) = digits.strip_prefix("0x") {
            u32::from_str_radix(hex, 16).ok()
        } else if let Some(binary) = digits.strip_prefix("0b") {
            u32::from_str_radix(binary, 2).ok()
        } else if digits.len() > 1 && digits.starts_with('0') {
            u32::from_str_radix(&digits[1..], 8).ok()
        } else {
            digits.parse::<u32>().ok()
        };
        let Some(mode) = parsed.filter(|m| *m <= 0o7777) else {
            self.warn(
                &node.at,
                key,
                format!("`{text}` is not a file mode compose takes (a number up to 0o7777): not carried over"),
            );
            return None;
        };
        let octal = format!("{mode:o}");
        let decimal = !digits.starts_with('0') || digits == "0";
        if decimal && mode > 7 && octal != digits {
            self.warn(
                &node.at,
                key,
                format!("`{text}` is a decimal number to compose, which gives Docker the mode 0o{octal}: carried over as that; write `0o{text}` for the mode {text} reads as"),
            );
        }
        Some(octal)
    }

    /// Makes a relative or `~` host path absolute, as compose resolves it,
    /// and says so: unitgen's units run on a host, not in the checkout.
    fn host_path(&mut self, pieces: &mut [Piece], at: &Place, key: &str) {
        let resolved = self.resolve(pieces);
        // Empty: a variable without value, warned about as such.
        if resolved.is_empty() || resolved.starts_with('/') {
            return;
        }
        let Some(absolute) = self.absolute(&resolved) else {
            return;
        };
        // The variable a path starts with, and its value made absolute:
        // `${DATA}` or `${CONFIG}/web` with CONFIG=`~/.cfg`, or airflow's
        // `${AIRFLOW_PROJ_DIR:-.}/dags`. Compose resolves the whole path
        // against the compose folder (or home); the variable's value made
        // absolute resolves every path that starts with it the same way.
        let head = self.resolve(&pieces[..1]);
        let new_default = match pieces {
            [Piece::Text(text)] => {
                *text = absolute.clone();
                None
            }
            [Piece::Text(text), ..] if text.starts_with(['.', '~']) => {
                *text = self.absolute(text).unwrap_or_else(|| text.clone());
                None
            }
            [Piece::Var { name, .. }] => Some((name.clone(), absolute.clone())),
            [
                Piece::Var {
                    name,
                    per_use: false,
                    ..
                },
                Piece::Text(rest),
                ..,
            ] if rest.starts_with('/') && head.starts_with(['.', '~']) => {
                let Some(head) = self.absolute(&head) else {
                    return;
                };
                Some((name.clone(), head))
            }
            _ => {
                // A volume with a relative source is refused, and said so,
                // by `volume`.
                if key != "volumes" {
                    self.warn(
                        at,
                        key,
                        format!("`{resolved}` is relative: unitgen needs an absolute host path"),
                    );
                }
                return;
            }
        };
        let detail = match new_default {
            Some((variable, value)) => {
                let value_name = interpolate::value_name(&variable);
                if let Some(v) = self.values.get_mut(&value_name) {
                    v.value = Some(value.clone());
                }
                format!("instance value `{value_name}` is now `{value}`")
            }
            None => format!("written as `{absolute}`"),
        };
        let relative_to = if resolved.starts_with('~') {
            "your home folder"
        } else {
            "the compose file"
        };
        // shlink mounts `./` in five services: the first says it.
        if !self
            .relative_paths_said
            .insert(format!("{resolved} {detail}"))
        {
            return;
        }
        self.warn(
            at,
            key,
            format!(
                "`{resolved}` is relative to {relative_to}: {detail}; it must exist on every host that runs the units"
            ),
        );
    }

    /// `./data` → `<compose folder>/data`, `~/x` → `<home>/x`, lexically.
    fn absolute(&self, path: &str) -> Option<String> {
        let joined = match path.strip_prefix('~') {
            Some(rest) => self
                .options
                .home
                .as_ref()?
                .join(rest.trim_start_matches('/')),
            None => self.options.dir.join(path),
        };
        let mut normal = PathBuf::new();
        for component in joined.components() {
            match component {
                Component::ParentDir => {
                    normal.pop();
                }
                Component::CurDir => {}
                other => normal.push(other),
            }
        }
        let mut text = normal.to_string_lossy().into_owned();
        if path.ends_with('/') && !text.ends_with('/') {
            text.push('/');
        }
        Some(text)
    }

    fn restart(&mut self, key: &Key, node: &Node, def: &Node, out: &mut Map) {
        let Some(policy) = self.fixed_text(node, "restart") else {
            return;
        };
        // Compose applies `deploy.restart_policy` after `restart`: its
        // condition is the policy (compose's getRestartPolicy).
        let deploy_condition = def
            .get("deploy")
            .and_then(|d| d.get("restart_policy"))
            .and_then(|p| p.get("condition"));
        if deploy_condition.is_some() {
            self.warn(
                &key.at,
                "restart",
                "`deploy.restart_policy` is set too: compose applies that one, and so does the template",
            );
            return;
        }
        let known = matches!(
            policy.as_str(),
            "no" | "always" | "unless-stopped" | "on-failure"
        ) || policy.starts_with("on-failure:");
        if known {
            out.set("restart", Value::text(policy));
        } else {
            self.warn(
                &key.at,
                "restart",
                format!("unknown restart policy `{policy}`: not carried over"),
            );
        }
    }

    fn healthcheck(&mut self, node: &Node, out: &mut Map) {
        let Some(entries) = node.entries() else {
            self.expected(node, "healthcheck", "a map");
            return;
        };
        let mut check = Map::default();
        for (k, v) in entries {
            let key = format!("healthcheck.{}", k.name);
            match k.name.as_str() {
                "test" => {
                    let is_none = v.items().and_then(|i| i.first()).and_then(Node::scalar)
                        == Some("NONE".into());
                    let shell_with_more = match v.items() {
                        Some([head, command, more @ ..])
                            if head.scalar().as_deref() == Some("CMD-SHELL") && !more.is_empty() =>
                        {
                            Some((command, more))
                        }
                        _ => None,
                    };
                    if is_none {
                        check.set("disable", Value::plain("true"));
                    } else if let Some((command, more)) = shell_with_more {
                        self.shell_test_with_more(command, more, &key, &mut check);
                    } else if let Some(words) = self.words(v, &key) {
                        check.set("test", words);
                    }
                }
                "interval" | "timeout" | "start_period" => {
                    if let Some(d) = self.checked(v, &key, syntax::parse_duration) {
                        check.set(&k.name, Value::Scalar(d));
                    }
                }
                "retries" => match self.fixed_text(v, &key) {
                    Some(n) if n.parse::<u32>().is_ok() => check.set("retries", Value::plain(n)),
                    Some(n) => self.warn(
                        &v.at,
                        &key,
                        format!("`{n}` is not a number: not carried over"),
                    ),
                    None => {}
                },
                "disable" => {
                    if self.boolean(v, &key) == Some(true) {
                        check.set("disable", Value::plain("true"));
                    }
                }
                // Docker 25's probes during start_period (marzban's
                // mariadb). An older engine refuses the whole `docker run`
                // (Docker 20.10, API 1.41: "--health-start-interval
                // requires API version 1.44").
                "start_interval" => self.warn(
                    &k.at,
                    &key,
                    format!(
                        "`{}` is not carried over: `docker run --health-start-interval` needs Docker 25 (API 1.44) and an older engine refuses the container; the probes during `start_period` come every `interval`, so the service is found healthy later",
                        v.scalar().unwrap_or_default()
                    ),
                ),
                _ => self.warn(
                    &k.at,
                    &key,
                    "not carried over: unitgen has no such healthcheck key",
                ),
            }
        }
        out.set("healthcheck", Value::Map(check));
    }

    /// `mem_limit` or `cpus`, from the key of that name or from `deploy`.
    /// `[CMD-SHELL, "pg_isready", "-d", "zitadel"]` (zitadel's): Docker runs
    /// `/bin/sh -c pg_isready -d zitadel`, where the words after the command
    /// are the shell's `$0`, `$1`…, not the command's arguments, and
    /// `--health-cmd` takes one string. The command is carried over alone,
    /// as it runs, or, when it reads those parameters, inside the same
    /// `sh -c` Docker would run.
    fn shell_test_with_more(&mut self, command: &Node, more: &[Node], key: &str, check: &mut Map) {
        let Some(text) = self.text(command, key) else {
            return;
        };
        let command_at = command.at;
        let reads_parameters = text.match_indices('$').any(|(i, _)| {
            let next = text[i + 1..].trim_start_matches('{');
            next.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '@' | '*' | '#'))
        });
        let test = if reads_parameters {
            let mut words = Vec::new();
            for word in more {
                words.extend(self.text(word, key));
            }
            let quoted: Vec<String> = words.iter().map(|w| crate::escape::sh_quote(w)).collect();
            format!(
                "/bin/sh -c {} {}",
                crate::escape::sh_quote(&text),
                quoted.join(" ")
            )
        } else {
            // Quoted as written; the words left out make no instance values.
            let written = |node: &Node| node.scalar().unwrap_or_default();
            let shown: Vec<String> = more.iter().map(written).collect();
            let shown = shown.join(" ");
            let command = written(command);
            self.warn(
                &command_at,
                key,
                format!("`{shown}` after the command are not its arguments: Docker gives them to the shell as `$0`, `$1`…, which `{command}` does not read; carried over as `{command}` alone, as Docker runs it (write them into the command to pass them)"),
            );
            text
        };
        check.set(
            "test",
            Value::List(vec![Scalar::Text("CMD-SHELL".into()), Scalar::Text(test)]),
        );
    }

    fn limit<T>(
        &mut self,
        node: &Node,
        key: &str,
        target: &str,
        check: impl Fn(&str) -> Result<T, String>,
        out: &mut Map,
    ) {
        let Some(value) = self.checked(node, key, check) else {
            return;
        };
        match out.get(target) {
            Some(Value::Scalar(old)) if *old != value => self.warn(
                &node.at,
                key,
                format!("`{target}` is set twice, differently: the first one is kept"),
            ),
            _ => out.set(target, Value::Scalar(value)),
        }
    }

    fn depends_on(&mut self, node: &Node, out: &mut Map) {
        let keys: Vec<Key>;
        let names: Vec<(&Key, Option<&Node>)>;
        match &node.kind {
            Kind::List(items) => {
                keys = items
                    .iter()
                    .filter_map(|i| {
                        Some(Key {
                            name: i.scalar()?,
                            at: i.at,
                        })
                    })
                    .collect();
                names = keys.iter().map(|k| (k, None)).collect();
            }
            Kind::Map(entries) => names = entries.iter().map(|(k, v)| (k, Some(v))).collect(),
            _ => {
                self.expected(node, "depends_on", "a list or a map");
                return;
            }
        }
        let mut targets = Vec::new();
        for (name, detail) in names {
            let optional = detail
                .and_then(|d| d.get("required"))
                .and_then(Node::boolean)
                == Some(false);
            let Some(target) = self.names.get(&name.name).cloned() else {
                // A required one refuses the file (`select_profiles`).
                if let Some(kind) = self.providers.get(&name.name) {
                    self.warn(
                        &name.at,
                        "depends_on",
                        format!(
                            "`{}` is left out (run by the `{kind}` provider, not a container): this service does not wait for it, and lacks the `{}_…` variables compose would give it",
                            name.name,
                            name.name.to_uppercase()
                        ),
                    );
                } else if self.scaled_to_zero.contains(&name.name) {
                    self.warn(
                        &name.at,
                        "depends_on",
                        format!(
                            "`{}` is left out (scaled to 0): compose starts none of it and does not wait for it, so neither does this service",
                            name.name
                        ),
                    );
                } else if optional {
                    self.warn(
                        &name.at,
                        "depends_on",
                        format!(
                            "`{}` is not imported (not in this file, or left out with its profile) and `required: false`: left out, as compose leaves it",
                            name.name
                        ),
                    );
                }
                continue;
            };
            if optional {
                self.warn(
                    &name.at,
                    "depends_on",
                    format!(
                        "`{}`: `required: false` is not carried over: the dependency is required",
                        name.name
                    ),
                );
            }
            let condition = detail
                .and_then(|d| d.get("condition"))
                .and_then(Node::scalar);
            if condition.as_deref() == Some("service_healthy")
                && !self.healthchecked.contains(&name.name)
            {
                self.warn(
                    &name.at,
                    "depends_on",
                    format!(
                        "`{}`: compose waits until it is healthy by its image's own healthcheck; unitgen waits for a healthcheck only when the template has one: add `healthcheck` to `{target}`",
                        name.name
                    ),
                );
            }
            // Conditions need not be written: unitgen always waits for a
            // dependency to run, be healthy (with a healthcheck), or to
            // complete (a oneshot). Compose waits for `service_started`
            // (the list form's too) only until the container has started
            // (docker/compose `shouldWaitForDependency`): said where that
            // makes this service start later.
            let started_only = matches!(condition.as_deref(), None | Some("service_started"));
            if started_only && self.oneshots.contains(&name.name) {
                self.warn(
                    &name.at,
                    "depends_on",
                    format!(
                        "`{}` runs to completion before this service starts (another service waits for it to complete, so it is a oneshot); compose starts this service once `{}` has started",
                        name.name, name.name
                    ),
                );
            } else if started_only && self.health_awaited.contains(&name.name) {
                self.warn(
                    &name.at,
                    "depends_on",
                    format!(
                        "`{}` has a healthcheck: a unit waits until it is healthy (or its start failed) before starting this service, where compose starts this service once `{}` has started",
                        name.name, name.name
                    ),
                );
            }
            let restart = detail
                .and_then(|d| d.get("restart"))
                .and_then(Node::boolean)
                == Some(true);
            targets.push((target, restart));
            // Compose waits for every container of a replicated service.
            for copy in self.replicas.get(&name.name).cloned().unwrap_or_default() {
                targets.push((self.names[&copy].clone(), restart));
            }
        }
        if targets.iter().any(|(_, restart)| *restart) {
            let map = out.map("depends_on");
            for (target, restart) in targets {
                let mut detail = Map::default();
                if restart {
                    detail.set("restart", Value::plain("true"));
                }
                map.set(&target, Value::Map(detail));
            }
        } else {
            for (target, _) in targets {
                out.push("depends_on", Scalar::Text(target));
            }
        }
    }

    /// Compose starts the services a service links to, or takes volumes
    /// from, before it (`links` and `volumes_from` are dependencies as
    /// `depends_on` are: a volume then holds what its first container's image
    /// put there): so here too, though the names need no link.
    fn implied_dependencies(&mut self, def: &Node, out: &mut Map) {
        let links = def.get("links").and_then(Node::items).unwrap_or_default();
        let volumes_from = def
            .get("volumes_from")
            .and_then(Node::items)
            .unwrap_or_default();
        // `db:alias`, `data:ro`; `volumes_from: [container:x]` names no
        // service (warned).
        let sources = links.iter().chain(volumes_from).filter_map(|item| {
            let text = item.scalar()?;
            (!text.starts_with("container:"))
                .then(|| text.split(':').next().unwrap_or_default().to_string())
        });
        for name in sources.collect::<Vec<_>>() {
            // One the file does not import is refused or warned elsewhere.
            let Some(target) = self.names.get(&name).cloned() else {
                continue;
            };
            match out.get("depends_on") {
                Some(Value::Map(map)) if map.get(&target).is_some() => {}
                Some(Value::Map(_)) => out
                    .map("depends_on")
                    .set(&target, Value::Map(Map::default())),
                Some(Value::List(list)) if list.contains(&Scalar::Text(target.clone())) => {}
                _ => out.push("depends_on", Scalar::Text(target)),
            }
        }
    }

    /// A service others wait for with `service_completed_successfully`: it
    /// runs to completion once per start of the instance.
    fn oneshot(&mut self, out: &mut Map, def: &Node) {
        if let Some(Value::Scalar(Scalar::Text(policy))) = out.get("restart")
            && !(policy == "no" || policy.starts_with("on-failure"))
        {
            let policy = policy.clone();
            let at = def.get("restart").map_or(def.at, |r| r.at);
            self.warn(
                &at,
                "restart",
                format!(
                    "others wait for this service to complete, so it is a oneshot, run once per start: `restart: {policy}` (run it again after it completed) is not carried over"
                ),
            );
            out.entries.retain(|e| e.key != "restart");
        }
        out.set("oneshot", Value::plain("true"));
    }

    /// The services `docker compose up` runs a container of: those of
    /// `deploy.replicas: 0` or `scale: 0` (windmill's indexer, "set to 1 to
    /// enable") it creates none of, and waits for none of, so they are left
    /// out, said at the key.
    ///
    /// So are services a provider runs (compose 2.36's `provider: {type:
    /// model}`): `compose up` runs the `docker-TYPE` plugin of the machine
    /// it runs on, which creates what it stands for and gives the services
    /// that depend on it variables (`NAME_URL`…); no container, and nothing
    /// a unit can run.
    pub(super) fn leave_out_scaled_to_zero(&mut self, entries: &[(Key, Node)]) -> Vec<(Key, Node)> {
        let mut kept = Vec::new();
        for (key, def) in entries {
            if let Some((provider_key, provider)) = def
                .entries()
                .and_then(|e| e.iter().find(|(k, _)| k.name == "provider"))
            {
                let kind = provider
                    .get("type")
                    .and_then(Node::scalar)
                    .unwrap_or_default();
                self.providers.insert(key.name.clone(), kind.clone());
                self.warn_about(
                    Some(key.name.clone()),
                    &provider_key.at,
                    "provider",
                    format!(
                        "left out: `docker compose up` runs no container of it, but the `{kind}` provider (the `docker-{kind}` plugin of the machine compose runs on), which a unit cannot run; the services that depend on it lose the variables it gives them (`{}_…`): set what they need in their `environment`",
                        key.name.to_uppercase()
                    ),
                );
                continue;
            }
            // The key's place, where its value is 0.
            let zero = |map: Option<&Node>, name: &str| {
                let entries = map?.entries()?;
                let (key, value) = entries.iter().find(|(k, _)| k.name == name)?;
                (value.scalar()?.trim() == "0").then_some(key.at)
            };
            let found = zero(def.get("deploy"), "replicas")
                .map(|at| (at, "deploy.replicas"))
                .or_else(|| zero(Some(def), "scale").map(|at| (at, "scale")));
            let Some((at, what)) = found else {
                kept.push((key.clone(), def.clone()));
                kept.extend(self.replicate(key, def, entries));
                continue;
            };
            self.scaled_to_zero.insert(key.name.clone());
            self.warn_about(
                Some(key.name.clone()),
                &at,
                what,
                format!(
                    "`{what}: 0`: left out, as `docker compose up` runs no container of it; set it to 1 in the compose file and import again to make it part of every instance"
                ),
            );
        }
        kept
    }

    /// `deploy.replicas: 3` (or `scale: 3`): compose runs three containers
    /// of the service, which its name answers for in turn (each has it as a
    /// network alias), and waits for all before its dependents. An instance
    /// runs one container per service, so the copies are services of their
    /// own, `worker-2` and `worker-3`, aliased `worker`; said at the key
    /// (`Importer::deploy`). Compose refuses a `container_name` beside them
    /// (a name must be unique).
    fn replicate(&mut self, key: &Key, def: &Node, entries: &[(Key, Node)]) -> Vec<(Key, Node)> {
        let count = |map: Option<&Node>, name: &str| {
            let text = map?.get(name)?.scalar()?;
            self.as_compose_resolves(&text)
                .unwrap_or(text)
                .trim()
                .parse::<usize>()
                .ok()
        };
        let count = count(def.get("deploy"), "replicas")
            .or_else(|| count(Some(def), "scale"))
            .unwrap_or(1);
        if count < 2 {
            return Vec::new();
        }
        if let Some((name_key, _)) = def
            .entries()
            .and_then(|e| e.iter().find(|(k, _)| k.name == "container_name"))
        {
            self.error(
                &name_key.at,
                format!(
                    "`container_name` of service `{}`, which compose runs {count} containers of: compose refuses the file (a container name must be unique)",
                    key.name
                ),
            );
            return Vec::new();
        }
        let copies: Vec<String> = (2..=count).map(|i| format!("{}-{i}", key.name)).collect();
        // A copy's name taken by a service of the file, or more copies than
        // an instance should hold: one, said at the key.
        if count > MAX_REPLICAS
            || copies
                .iter()
                .any(|c| entries.iter().any(|(k, _)| k.name == *c))
        {
            return Vec::new();
        }
        for copy in &copies {
            self.replica_of.insert(copy.clone(), key.name.clone());
        }
        self.replicas.insert(key.name.clone(), copies.clone());
        copies
            .into_iter()
            .map(|name| (Key { name, at: key.at }, def.clone()))
            .collect()
    }

    fn deploy(&mut self, node: &Node, out: &mut Map) {
        let Some(entries) = node.entries() else {
            self.expected(node, "deploy", "a map");
            return;
        };
        for (k, v) in entries {
            let key = format!("deploy.{}", k.name);
            match k.name.as_str() {
                "resources" => self.resources(v, out),
                "restart_policy" => self.restart_policy(v, out),
                "replicas" if v.scalar().as_deref() == Some("1") => {}
                "replicas" => self.replicas_said(&k.at, &key, v),
                "mode" if v.scalar().as_deref() == Some("replicated") => {}
                _ => self.warn(&k.at, &key, "swarm only: not carried over"),
            }
        }
    }

    /// Says how `deploy.replicas` (or `scale`) is carried (`replicate`).
    fn replicas_said(&mut self, at: &Place, key: &str, node: &Node) {
        let service = self.service.clone().unwrap_or_default();
        let count = node.scalar().unwrap_or_default();
        let message = match self.replicas.get(&service) {
            Some(copies) => format!(
                "compose runs {count} containers of it, which its name answers for in turn: the instance runs {count} services, `{}` and its copies {}, each with the network alias `{}`, and services that depend on it wait for all",
                self.names[&service],
                copies
                    .iter()
                    .map(|c| format!("`{}`", self.names[c]))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.names[&service],
            ),
            None => format!(
                "not carried over: compose runs {count} containers of it; an instance runs one here (a copy's name is taken, or more than {MAX_REPLICAS}): deploy more instances, or use fleet"
            ),
        };
        self.warn(at, key, message);
    }

    fn resources(&mut self, node: &Node, out: &mut Map) {
        for (k, v) in node.entries().unwrap_or_default() {
            for (lk, lv) in v.entries().unwrap_or_default() {
                let key = format!("deploy.resources.{}.{}", k.name, lk.name);
                match (k.name.as_str(), lk.name.as_str()) {
                    ("limits", "memory") => {
                        self.limit(lv, &key, "mem_limit", syntax::check_memory, out)
                    }
                    ("limits", "cpus") => self.limit(lv, &key, "cpus", syntax::check_cpus, out),
                    ("limits", "pids") => self.flag_value("--pids-limit", lv, &key, out),
                    ("reservations", "memory") => {
                        self.flag_value("--memory-reservation", lv, &key, out)
                    }
                    ("reservations", "devices") => self.gpus(lv, &key, out),
                    // compose's setReservations: "Cpu reservation is a swarm
                    // option" (zabbix's services all have one).
                    ("reservations", "cpus") => self.warn(
                        &lk.at,
                        &key,
                        "swarm only: `docker compose up` does not use it either",
                    ),
                    _ => self.warn(&lk.at, &key, "not carried over"),
                }
            }
        }
    }

    fn restart_policy(&mut self, node: &Node, out: &mut Map) {
        let path = |k: &Key| format!("deploy.restart_policy.{}", k.name);
        let mut policy = None;
        let mut max_attempts = None;
        for (k, v) in node.entries().unwrap_or_default() {
            match k.name.as_str() {
                // As compose maps them for `docker compose up`, its own
                // policy names too (firezone's `condition: unless-stopped`).
                "condition" => match v.scalar().as_deref() {
                    Some("none" | "no") => policy = Some("no"),
                    Some("on-failure") => policy = Some("on-failure"),
                    Some("any" | "always") => policy = Some("always"),
                    Some("unless-stopped") => policy = Some("unless-stopped"),
                    _ => self.warn(&v.at, &path(k), "unknown condition: not carried over"),
                },
                "max_attempts" => match v.scalar().map(|n| n.parse::<u32>()) {
                    Some(Ok(n)) => max_attempts = Some((n, k)),
                    _ => self.expected(v, &path(k), "a number"),
                },
                _ => self.warn(&k.at, &path(k), "not carried over"),
            }
        }
        // Docker's on-failure:N is what compose makes of these two.
        let policy = match (policy, max_attempts) {
            (Some("on-failure"), Some((n, _))) => Some(format!("on-failure:{n}")),
            (policy, Some((_, k))) => {
                self.warn(
                    &k.at,
                    &path(k),
                    "counts only with `condition: on-failure`: not carried over",
                );
                policy.map(str::to_string)
            }
            (policy, None) => policy.map(str::to_string),
        };
        let Some(policy) = policy else {
            return;
        };
        // Before or after `restart` in the file, this one wins (see `restart`).
        out.set("restart", Value::text(policy));
    }

    fn service_networks(&mut self, node: &Node, def: &Node, out: &mut Map) {
        let service = self.service.clone().unwrap_or_default();
        let mut joined = Vec::new();
        match &node.kind {
            Kind::List(items) => joined.extend(items.iter().filter_map(Node::scalar)),
            Kind::Map(entries) => {
                let main = main_network(entries);
                for (net, detail) in entries {
                    joined.push(net.name.clone());
                    for (k, v) in detail.entries().unwrap_or_default() {
                        let key = format!("networks.{}.{}", net.name, k.name);
                        match k.name.as_str() {
                            "aliases" => {
                                for alias in self.string_list(v, &key) {
                                    if let Some(alias) = self.text(alias, &key) {
                                        self.network_alias(out, &alias);
                                    }
                                }
                            }
                            // Kept a warning: `docker run --ip` needs a
                            // network whose subnet is given by hand, and an
                            // instance network has Docker's own, another for
                            // each instance; one fixed address in every
                            // instance would collide, or be refused.
                            "ipv4_address" | "ipv6_address" => self.warn(
                                &k.at,
                                &key,
                                "not carried over: the instance network's subnet is Docker's choice, another for each instance, so no fixed address is given; others reach the service by name",
                            ),
                            // The instance network is the service's only
                            // one: what compose gives its main network
                            // (highest `priority`, then name: compose-go's
                            // NetworksByPriority) is given to it; on Debian's
                            // Docker 20.10 (API 1.41) compose too sets the
                            // main network's MAC address only.
                            "mac_address" | "link_local_ips" if main.is_some_and(|m| m.name != net.name) => self.warn(
                                &k.at,
                                &key,
                                format!(
                                    "not carried over: the service joins one network, the instance's, which takes what compose gives `{}`, its main network (highest `priority`, then name)",
                                    main.map_or("", |m| m.name.as_str())
                                ),
                            ),
                            "mac_address" => self.network_mac_address(v, def, &key, out),
                            "link_local_ips" => {
                                for ip in self.string_list(v, &key) {
                                    self.flag_value("--link-local-ip", ip, &key, out);
                                }
                            }
                            // Which network is the main one, and the default
                            // route: the instance network, the only one.
                            "priority" | "gw_priority" => {}
                            _ => self.warn(&k.at, &key, "not carried over"),
                        }
                    }
                }
            }
            _ => self.expected(node, "networks", "a list or a map"),
        }
        for net in joined {
            // `networks: [${NETWORK_TYPE:-ipv4}]` (sonarqube's) joins `ipv4`.
            let net = self.as_compose_resolves(&net).unwrap_or(net);
            self.networks_used
                .entry(net)
                .or_default()
                .push(service.clone());
        }
    }

    /// `post_start` and `pre_stop` (compose 2.30): commands compose runs in
    /// the container (`docker exec`) once it has started, or before it
    /// stops it. A unit runs none: each is said, with its command, for the
    /// image's entrypoint or a hand to run it.
    fn lifecycle_hooks(&mut self, key: &Key, node: &Node) {
        let when = match key.name.as_str() {
            "post_start" => "after starting it",
            _ => "before stopping it",
        };
        let commands: Vec<String> = node
            .items()
            .unwrap_or_default()
            .iter()
            .filter_map(|hook| {
                let command = hook.get("command")?;
                let words = match command.items() {
                    // The exec form as a shell would read it back.
                    Some(items) => items
                        .iter()
                        .filter_map(Node::scalar)
                        .map(|word| crate::escape::sh_quote(&word))
                        .collect::<Vec<_>>()
                        .join(" "),
                    None => command.scalar()?,
                };
                let user = hook.get("user").and_then(Node::scalar);
                Some(match user {
                    Some(user) => format!("`{words}` (as {user})"),
                    None => format!("`{words}`"),
                })
            })
            .collect();
        self.warn(
            &key.at,
            &key.name,
            format!(
                "not carried over: compose runs {} in the container (`docker exec`) {when}; a unit runs no such hook: make it part of the image's entrypoint, or run it with `docker exec` by hand",
                match commands.is_empty() {
                    true => "its commands".to_string(),
                    false => commands.join(", "),
                }
            ),
        );
    }

    /// `models` (compose 2.38): compose has Docker Model Runner, on the
    /// machine it runs on, serve each model and gives the service its URL
    /// and name (`LLM_URL`, `LLM_MODEL`, or the `endpoint_var` and
    /// `model_var` given); nothing a unit has.
    fn models(&mut self, key: &Key, node: &Node) {
        let mut variables = Vec::new();
        let mut named = |name: &str, detail: Option<&Node>| {
            let default = name.to_uppercase().replace('-', "_");
            for (field, suffix) in [("endpoint_var", "URL"), ("model_var", "MODEL")] {
                let given = detail.and_then(|d| d.get(field)).and_then(Node::scalar);
                variables.push(given.unwrap_or_else(|| format!("{default}_{suffix}")));
            }
        };
        match &node.kind {
            Kind::List(items) => items
                .iter()
                .filter_map(Node::scalar)
                .for_each(|n| named(&n, None)),
            Kind::Map(entries) => entries.iter().for_each(|(k, v)| named(&k.name, Some(v))),
            _ => {}
        }
        self.warn(
            &key.at,
            "models",
            format!(
                "not carried over: compose has Docker Model Runner serve these models and gives the service {}; a unit has no model runner: run one as a service and set them in `environment`",
                variables.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
            ),
        );
    }

    /// The main network's `mac_address`: the container's (`--mac-address`),
    /// as compose gives it; one that differs from the service's own
    /// `mac_address` is refused, as compose refuses it ("the service-level
    /// mac_address should have the same value as network …").
    fn network_mac_address(&mut self, node: &Node, def: &Node, key: &str, out: &mut Map) {
        match def.get("mac_address").and_then(Node::scalar) {
            None => self.flag_value("--mac-address", node, key, out),
            Some(own) if node.scalar().as_deref() == Some(own.as_str()) => {}
            Some(own) => {
                let service = self.service.clone().unwrap_or_default();
                self.error(
                    &node.at,
                    format!(
                        "`{key}` of service `{service}` differs from its `mac_address` `{own}`: compose refuses to create the container"
                    ),
                );
            }
        }
    }

    /// `network_mode`: the network the container runs on instead of the
    /// instance's, as `docker run --network` takes it. What Docker refuses
    /// beside a network shared with another container (ports, a hostname,
    /// DNS servers, hosts entries) fails `compose up`, and is refused; the
    /// ports of a container on the host's network or on none are
    /// discarded by Docker, and left out.
    fn network_mode(&mut self, key: &Key, node: &Node, def: &Node, out: &mut Map) {
        let Some(mode) = self.fixed_text(node, "network_mode") else {
            return;
        };
        let service = self.service.clone().unwrap_or_default();
        let written = match mode.split_once(':') {
            None if ["host", "none", "bridge"].contains(&mode.as_str()) => mode.clone(),
            Some(("service", other)) => match self.names.get(other) {
                Some(name) => format!("service:{name}"),
                None => {
                    let why = if self.providers.contains_key(other) {
                        "is run by a provider, not a container, so there is no network to share: compose fails to start it"
                    } else if self.scaled_to_zero.contains(other) {
                        "is scaled to 0, so there is no container whose network it could share: compose fails to start it"
                    } else {
                        "is not a service of this file: compose refuses the file"
                    };
                    self.error(
                        &node.at,
                        format!("`network_mode` of service `{service}`: `{other}` {why}"),
                    );
                    return;
                }
            },
            // A container of this file, by its `container_name`: the
            // service's, whose container unitgen names itself.
            Some(("container", other)) => match self.container_names.get(other) {
                Some(compose_service) => format!("service:{}", self.names[compose_service]),
                None => mode.clone(),
            },
            _ => {
                self.warn(
                    &node.at,
                    "network_mode",
                    format!("`{mode}` is not carried over: unitgen knows host, none, bridge, service:NAME and container:NAME"),
                );
                return;
            }
        };
        let shared = mode.contains(':');
        // compose-go refuses `networks` beside `network_mode` itself.
        let refused: &[&str] = if shared {
            &[
                "ports",
                "hostname",
                "dns",
                "extra_hosts",
                "mac_address",
                "networks",
            ]
        } else {
            &["networks"]
        };
        for (k, _) in def.entries().unwrap_or_default() {
            if refused.contains(&k.name.as_str()) {
                self.error(
                    &k.at,
                    format!("`{}` of service `{service}` with `network_mode: {mode}`: Docker refuses it for a container in another's network, so compose fails to create it", k.name),
                );
            }
        }
        if !shared && mode != "bridge" && def.get("ports").is_some() {
            self.warn(
                &key.at,
                "network_mode",
                format!("`ports` are not carried over: Docker discards them with `network_mode: {mode}`, where the service listens on the host's ports itself (host) or on none"),
            );
        }
        out.set("network_mode", Value::text(written));
    }

    /// `stdin_open`: compose keeps the container's stdin open, and nothing
    /// writes to it, so reads wait (a shell or REPL stays up). A unit's
    /// `docker run` has no terminal: with `--interactive` the container
    /// reads end of file at once, and with `--tty` too Docker refuses to
    /// start ("the input device is not a TTY"). With `tty: true`, `--tty`
    /// alone gives what compose gives: a terminal whose reads wait.
    fn stdin_open(&mut self, key: &Key, node: &Node, def: &Node) {
        if self.boolean(node, "stdin_open") != Some(true) {
            return;
        }
        let tty = def.get("tty").and_then(Node::boolean) == Some(true);
        if !tty {
            self.warn(
                &key.at,
                "stdin_open",
                "not carried over: compose keeps the container's stdin open, where reads wait; a unit has no input to give it (`--interactive` would read end of file at once): add `tty: true`, whose terminal's reads wait, if the service needs it",
            );
        }
    }

    /// Network aliases (of `container_name`, a renamed service, `networks`)
    /// are for the instance network, which a service with `network_mode`
    /// is not on: Docker refuses them there.
    fn without_aliases(&mut self, def: &Node, out: &mut Map) {
        let Some(Value::List(args)) = out.get("docker_args") else {
            return;
        };
        let is_alias =
            |a: &Scalar| matches!(a, Scalar::Text(t) if t.starts_with("--network-alias="));
        if !args.iter().any(is_alias) {
            return;
        }
        let args: Vec<Scalar> = args.iter().filter(|a| !is_alias(a)).cloned().collect();
        out.entries.retain(|e| e.key != "docker_args");
        for arg in args {
            out.push("docker_args", arg);
        }
        let at = def.get("network_mode").map_or(def.at, |n| n.at);
        self.warn(
            &at,
            "network_mode",
            "the names others would reach this service by (its old name, `container_name`, aliases) are not carried over: it is not on the instance network, where names are given",
        );
    }

    /// `--network-alias=ALIAS` once: not the service's own name, which
    /// unitgen gives it, nor one already given (node-exporter's
    /// `container_name: node_exporter` is also its old name).
    fn network_alias(&mut self, out: &mut Map, alias: &str) {
        let service = self.service.clone().unwrap_or_default();
        let arg = Scalar::Text(format!("--network-alias={alias}"));
        let given =
            matches!(out.get("docker_args"), Some(Value::List(args)) if args.contains(&arg));
        if !given && self.names.get(&service).map(String::as_str) != Some(alias) {
            out.push("docker_args", arg);
        }
    }

    /// `secrets` and `configs` backed by a file are bind mounts, as compose
    /// makes them outside swarm: carried over as read-only volumes.
    fn file_mounts(&mut self, key: &Key, node: &Node, top: Option<&Node>, out: &mut Map) {
        let kind = key.name.as_str();
        for item in node.items().unwrap_or_default() {
            let (source, target) = match &item.kind {
                Kind::Map(_) => (
                    item.get("source").and_then(Node::scalar),
                    item.get("target").and_then(Node::scalar),
                ),
                _ => (item.scalar(), None),
            };
            let Some(source) = source else {
                self.expected(item, kind, "a name, or a map with `source`");
                continue;
            };
            let extras = item.entries().unwrap_or_default().iter();
            for (extra, _) in
                extras.filter(|(k, _)| ["uid", "gid", "mode"].contains(&k.name.as_str()))
            {
                self.warn(
                    &extra.at,
                    &format!("{kind}.{}", extra.name),
                    "not carried over: the mount keeps the host file's owner and mode",
                );
            }
            let target = match (kind, target) {
                (_, Some(t)) if t.starts_with('/') => t,
                ("secrets", Some(t)) => format!("/run/secrets/{t}"),
                ("secrets", None) => format!("/run/secrets/{source}"),
                (_, Some(t)) => format!("/{t}"),
                (_, None) => format!("/{source}"),
            };
            // Kept a warning for `content:` and `environment:`: `docker
            // run` has no flag that writes a file into the container, and
            // the unit would have to write it onto the host first (for a
            // secret, out of a world-readable unit).
            let file = top.and_then(|t| t.get(&source)).and_then(|d| d.get("file"));
            let Some((path, path_at)) = file.and_then(|f| Some((f.scalar()?, f.at))) else {
                self.warn(
                    &item.at,
                    kind,
                    format!("`{source}` is not backed by a `file:`: not carried over; mount it with a bind volume"),
                );
                continue;
            };
            let mut pieces = self.pieces(&path, &path_at, kind);
            self.host_path(&mut pieces, &item.at, kind);
            let volume = format!("{}:{target}", interpolate::template(&pieces));
            out.push("volumes", Scalar::Text(format!("{volume}:ro")));
            // A bind like any other: `volumes_from` this service mounts it too.
            let service = self.service.clone().unwrap_or_default();
            self.volumes_of
                .entry(service)
                .or_default()
                .push(super::Mounted {
                    target: clean_target(&target),
                    volume,
                    read_only: true,
                    propagation: None,
                });
        }
    }

    fn logging(&mut self, node: &Node, out: &mut Map) {
        for (k, v) in node.entries().unwrap_or_default() {
            match k.name.as_str() {
                "driver" => self.flag_value("--log-driver", v, "logging.driver", out),
                "options" => {
                    for (name, value) in v.entries().unwrap_or_default() {
                        if let Some(value) = self.text(value, "logging.options") {
                            out.push(
                                "docker_args",
                                Scalar::Text(format!(
                                    "--log-opt={}={value}",
                                    interpolate::verbatim(&name.name)
                                )),
                            );
                        }
                    }
                }
                other => self.warn(&k.at, &format!("logging.{other}"), "not carried over"),
            }
        }
    }

    fn ulimits(&mut self, node: &Node, out: &mut Map) {
        for (k, v) in node.entries().unwrap_or_default() {
            let limit = match (&v.kind, v.get("soft"), v.get("hard")) {
                (Kind::Map(_), Some(soft), Some(hard)) => soft
                    .scalar()
                    .zip(hard.scalar())
                    .map(|(s, h)| format!("{s}:{h}")),
                _ => v.scalar(),
            };
            match limit {
                Some(limit) => out.push(
                    "docker_args",
                    Scalar::Text(format!(
                        "--ulimit={}={}",
                        interpolate::verbatim(&k.name),
                        interpolate::verbatim(&limit)
                    )),
                ),
                None => self.expected(v, "ulimits", "a number or `{soft, hard}`"),
            }
        }
    }

    /// `blkio_config`: each of its keys is a `docker run` flag, the
    /// per-device ones `PATH:VALUE` (a rate in bytes keeps compose's unit,
    /// `12mb`, which Docker reads alike).
    /// `cpu_rt_runtime` and `cpu_rt_period`: microseconds, or a duration
    /// (`400ms`) compose gives Docker in microseconds, as
    /// `--cpu-rt-runtime` and `--cpu-rt-period` take them.
    fn realtime_cpu(&mut self, key: &str, node: &Node, out: &mut Map) {
        let Some(text) = self.plain_text(node, key) else {
            return;
        };
        let micros = match text.parse::<u64>() {
            Ok(n) => Ok(n),
            Err(_) => syntax::duration_micros(&text),
        };
        match micros {
            Ok(n) => {
                let flag = key.replace('_', "-");
                out.push("docker_args", Scalar::Text(format!("--{flag}={n}")));
            }
            Err(msg) => self.warn(&node.at, key, format!("not carried over: {msg}")),
        }
    }

    fn blkio_config(&mut self, node: &Node, out: &mut Map) {
        let Some(entries) = node.entries() else {
            self.expected(node, "blkio_config", "a map");
            return;
        };
        for (k, v) in entries {
            let key = format!("blkio_config.{}", k.name);
            let (flag, field) = match k.name.as_str() {
                "weight" => {
                    self.flag_value("--blkio-weight", v, &key, out);
                    continue;
                }
                "weight_device" => ("--blkio-weight-device", "weight"),
                "device_read_bps" => ("--device-read-bps", "rate"),
                "device_write_bps" => ("--device-write-bps", "rate"),
                "device_read_iops" => ("--device-read-iops", "rate"),
                "device_write_iops" => ("--device-write-iops", "rate"),
                _ => {
                    self.warn(&k.at, &key, "not carried over");
                    continue;
                }
            };
            let Some(devices) = v.items() else {
                self.expected(v, &key, "a list of `{path, …}`");
                continue;
            };
            for device in devices {
                let path = device.get("path").and_then(|p| self.text(p, &key));
                let value = device.get(field).and_then(|r| self.text(r, &key));
                match path.zip(value) {
                    Some((path, value)) => out.push(
                        "docker_args",
                        Scalar::Text(format!("{flag}={path}:{value}")),
                    ),
                    None => self.expected(device, &key, &format!("`path` and `{field}`")),
                }
            }
        }
    }

    /// compose refuses a service whose `cpus`, `mem_limit`,
    /// `mem_reservation` or `pids_limit` differs from its
    /// `deploy.resources` counterpart when that block is there (one left
    /// out of it counts as 0: compose-go's validation); import took the
    /// last of the two.
    fn distinct_limits(&mut self, def: &Node) {
        let resources = def.get("deploy").and_then(|d| d.get("resources"));
        const PAIRS: &[(&str, &str, &str)] = &[
            ("cpus", "limits", "cpus"),
            ("mem_limit", "limits", "memory"),
            ("mem_reservation", "reservations", "memory"),
            ("pids_limit", "limits", "pids"),
        ];
        for (top_key, group, field) in PAIRS {
            let (Some(top), Some(block)) = (def.get(top_key), resources.and_then(|r| r.get(group)))
            else {
                continue;
            };
            let amount = |this: &mut Self, node: &Node, key: &str| -> Option<f64> {
                let text = this.plain_text(node, key)?;
                match *field {
                    "memory" => syntax::memory_bytes(&text),
                    _ => text.trim().parse::<f64>().ok(),
                }
            };
            let Some(top_amount) = amount(self, top, top_key) else {
                continue;
            };
            let deploy_key = format!("deploy.resources.{group}.{field}");
            let deploy_amount = match block.get(field) {
                Some(node) => amount(self, node, &deploy_key),
                None => Some(0.0),
            };
            if top_amount != 0.0 && deploy_amount != Some(top_amount) {
                let other = match block.get(field) {
                    Some(node) => format!("`{deploy_key}: {}`", node.scalar().unwrap_or_default()),
                    None => format!("`deploy.resources.{group}` without `{field}` (0)"),
                };
                self.error(
                    &top.at,
                    format!(
                        "`{top_key}: {}` and {other} differ: compose refuses the file (\"can't set distinct values on '{top_key}' and '{deploy_key}'\"); keep one of them",
                        top.scalar().unwrap_or_default()
                    ),
                );
            }
        }
    }

    /// A compose key that is one `docker run` flag.
    fn docker_flag(&mut self, key: &Key, flag: &str, node: &Node, out: &mut Map) {
        let name = key.name.as_str();
        let value = node.scalar().unwrap_or_default();
        // Sharing another service's process or IPC namespace is left out:
        // `docker run --pid=container:X` takes the container as it is when
        // this one starts, and what keeps them together across restarts
        // (the order, a restart with it) unitgen gives only to
        // `network_mode: service:NAME`, which compose files use far more.
        if matches!(name, "pid" | "ipc") && value.starts_with("service:") {
            self.warn(
                &key.at,
                name,
                format!("`{value}` is not carried over: a template shares another service's network only (`network_mode: service:NAME`)"),
            );
            return;
        }
        if name == "pull_policy" {
            self.pull_policy(key, &value, out);
            return;
        }
        match &node.kind {
            Kind::Bool(true) => out.push("docker_args", Scalar::Text(flag.to_string())),
            Kind::Bool(false) | Kind::Null => {}
            Kind::Text(_) | Kind::Number(_) => {
                if !(name == "dns" && self.dns_at_static_address(node)) {
                    self.flag_value(flag, node, name, out);
                }
            }
            Kind::List(items) => {
                for item in items {
                    if name == "dns" && self.dns_at_static_address(item) {
                        continue;
                    }
                    if name == "extra_hosts"
                        && let Some(entry) = item.scalar()
                        && let Some((_, address)) =
                            entry.split_once('=').or_else(|| entry.split_once(':'))
                        && self.host_at_static_address(&entry, address, &item.at)
                    {
                        continue;
                    }
                    if name == "extra_hosts"
                        && let Kind::Text(text) = &item.kind
                    {
                        let mut entry = item.clone();
                        entry.kind = Kind::Text(host_entry(text));
                        self.flag_value(flag, &entry, name, out);
                    } else if item.scalar().is_some() {
                        self.flag_value(flag, item, name, out);
                    } else if name == "devices" && item.get("source").is_some() {
                        self.long_device(item, out);
                    } else {
                        // `devices: [{source: …}]`, `gpus: [{driver: …}]`.
                        self.warn(&item.at, name, "the long form is not carried over");
                    }
                }
            }
            Kind::Map(entries) => {
                // `extra_hosts: {db: 10.0.0.2}` is `--add-host db:10.0.0.2`.
                let separator = if name == "extra_hosts" { ":" } else { "=" };
                for (k, v) in entries {
                    if name == "extra_hosts"
                        && let Some(address) = v.scalar()
                        && self.host_at_static_address(
                            &format!("{}: {address}", k.name),
                            &address,
                            &v.at,
                        )
                    {
                        continue;
                    }
                    let arg = match v.kind {
                        Kind::Null => format!("{flag}={}", interpolate::verbatim(&k.name)),
                        _ => match self.text(v, name) {
                            Some(v) => {
                                let v = match name {
                                    "extra_hosts" => unbracketed(&v).to_string(),
                                    _ => v,
                                };
                                format!("{flag}={}{separator}{v}", interpolate::verbatim(&k.name))
                            }
                            None => continue,
                        },
                    };
                    out.push("docker_args", Scalar::Text(arg));
                }
            }
        }
    }

    /// `devices: [{source: /dev/ttyUSB0, target: /dev/ttyACM0, permissions:
    /// rw}]` (zigbee2mqtt's): `--device=SOURCE[:TARGET[:PERMISSIONS]]`, as
    /// compose hands them to Docker (target defaults to the source).
    fn long_device(&mut self, item: &Node, out: &mut Map) {
        let mut parts = Vec::new();
        for key in ["source", "target", "permissions"] {
            let Some(node) = item.get(key) else { continue };
            match self.text(node, "devices") {
                Some(text) => parts.push((key, text)),
                None => return,
            }
        }
        for (k, _) in item.entries().unwrap_or_default() {
            if !["source", "target", "permissions"].contains(&k.name.as_str()) {
                self.warn(&k.at, &format!("devices.{}", k.name), "not carried over");
            }
        }
        let source = parts[0].1.clone();
        let target = parts
            .iter()
            .find(|(k, _)| *k == "target")
            .map_or(source.clone(), |(_, t)| t.clone());
        let mut arg = format!("--device={source}:{target}");
        if let Some((_, permissions)) = parts.iter().find(|(k, _)| *k == "permissions") {
            arg.push(':');
            arg.push_str(permissions);
        }
        out.push("docker_args", Scalar::Text(arg));
    }

    /// `--flag=value` into `docker_args`.
    /// `deploy.resources.reservations.devices`: what `docker compose up`
    /// asks Docker for (a device request per entry) is what `docker run
    /// --gpus` asks for, for GPUs (ollama's, immich's machine learning).
    fn gpus(&mut self, node: &Node, key: &str, out: &mut Map) {
        let Some(items) = node.items() else {
            self.expected(node, key, "a list");
            return;
        };
        for item in items {
            let text_list = |this: &mut Self, name: &str| -> Vec<String> {
                let Some(list) = item.get(name) else {
                    return Vec::new();
                };
                let scalars = list.items().unwrap_or_default();
                scalars
                    .iter()
                    .filter_map(|n| this.plain_text(n, key))
                    .collect()
            };
            let capabilities = text_list(self, "capabilities");
            let device_ids = text_list(self, "device_ids");
            if !capabilities.iter().any(|c| c == "gpu") {
                self.warn(
                    &item.at,
                    key,
                    "not carried over: `docker run` asks for devices by capability only for GPUs (`capabilities: [gpu]`)",
                );
                continue;
            }
            if item.get("options").is_some() {
                self.warn(&item.at, &format!("{key}.options"), "not carried over");
            }
            // docker run's --gpus value is one CSV record; it adds the
            // `gpu` capability itself.
            let mut fields = Vec::new();
            if let Some(driver) = item.get("driver").and_then(|d| self.plain_text(d, key)) {
                fields.push(format!("driver={driver}"));
            }
            match item.get("count").and_then(|c| self.plain_text(c, key)) {
                Some(count) => fields.push(format!("count={count}")),
                // Compose reserves every device that matches; --gpus
                // without a count, one.
                None if device_ids.is_empty() => fields.push("count=all".into()),
                None => {}
            }
            if !device_ids.is_empty() {
                fields.push(format!("device={}", device_ids.join(",")));
            }
            let others: Vec<&str> = capabilities
                .iter()
                .map(String::as_str)
                .filter(|c| *c != "gpu")
                .collect();
            if !others.is_empty() {
                fields.push(format!("capabilities={}", others.join(",")));
            }
            let record = fields
                .iter()
                .map(|f| {
                    if f.contains([',', '"']) {
                        format!("\"{}\"", f.replace('"', "\"\""))
                    } else {
                        f.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(",");
            out.push(
                "docker_args",
                Scalar::Text(format!("--gpus={}", interpolate::verbatim(&record))),
            );
        }
    }

    /// Whether `item` of `dns` is another service's fixed compose address
    /// (mailcow's unbound), which unitgen does not give it: nothing would
    /// answer there, so the server is left out (and said so) and the
    /// container uses Docker's DNS, which finds that service by name.
    fn dns_at_static_address(&mut self, item: &Node) -> bool {
        let Some(address) = item.scalar().and_then(|t| self.as_compose_resolves(&t)) else {
            return false;
        };
        let Some(server) = self.static_addresses.get(&address).cloned() else {
            return false;
        };
        self.warn(
            &item.at,
            "dns",
            format!(
                "`{address}` not carried over: it was `{server}`'s fixed address on a compose network (`ipv4_address`), which unitgen does not give it, so no DNS server would answer there; the container uses Docker's DNS, which finds `{server}` by name"
            ),
        );
        true
    }

    /// An `extra_hosts` entry (`entry`, written at `at`) whose `address` is
    /// another service's fixed compose address (bitmagnet's
    /// `postgres:192.168.55.11`, its postgres's `ipv4_address`), which
    /// unitgen does not give it: the name would lead to an address nothing
    /// has, and hide the service Docker's DNS finds by that name. Left out
    /// and said so.
    fn host_at_static_address(&mut self, entry: &str, address: &str, at: &Place) -> bool {
        let Some(address) = self.as_compose_resolves(address.trim()) else {
            return false;
        };
        let address = address.trim_start_matches('[').trim_end_matches(']');
        let Some(server) = self.static_addresses.get(address).cloned() else {
            return false;
        };
        self.warn(
            at,
            "extra_hosts",
            format!(
                "`{entry}` not carried over: `{address}` was `{server}`'s fixed address on a compose network (`ipv4_address`), which unitgen does not give it, so the name would lead nowhere; the services reach `{server}` by that name on the instance network"
            ),
        );
        true
    }

    /// `docker run --pull` takes `always`, `missing` or `never`; compose
    /// reads `if_not_present` as `missing`. A variable (openproject's
    /// `${PULL_POLICY:-always}`) is read as compose reads it here: which
    /// images a service pulls is not an instance value.
    fn pull_policy(&mut self, key: &Key, value: &str, out: &mut Map) {
        let resolved = self
            .as_compose_resolves(value)
            .unwrap_or_else(|| value.to_string());
        let policy = match resolved.as_str() {
            "if_not_present" => "missing",
            other => other,
        };
        if !matches!(policy, "always" | "missing" | "never") {
            self.warn(
                &key.at,
                "pull_policy",
                format!(
                    "`{value}` is not carried over: `docker run --pull` takes `always`, `missing` or `never`; apply pulls an image only when the host lacks it"
                ),
            );
            return;
        }
        if resolved != value {
            self.warn(
                &key.at,
                "pull_policy",
                format!(
                    "`{value}` is `{resolved}` as compose reads it here: written `--pull={policy}`, the same for every instance"
                ),
            );
        }
        out.push("docker_args", Scalar::Text(format!("--pull={policy}")));
    }

    fn flag_value(&mut self, flag: &str, node: &Node, key: &str, out: &mut Map) {
        if let Some(value) = self.text(node, key) {
            out.push("docker_args", Scalar::Text(format!("{flag}={value}")));
        }
    }
}

/// An `extra_hosts` entry as compose hands it to Docker, `HOST:IP`. Compose
/// also reads `HOST=IP` and an IPv6 address in brackets (`[::1]`), which
/// `--add-host` of Docker's CLI before 25 refuses (Debian 12's 20.10:
/// "bad format for add-host"); `HOST:::1` it takes.
fn host_entry(text: &str) -> String {
    match text.split_once('=').or_else(|| text.split_once(':')) {
        Some((host, address)) => format!("{host}:{}", unbracketed(address)),
        None => text.to_string(),
    }
}

/// The network compose connects a service to first, whose settings the
/// container's own are on an older engine: the highest `priority`, then
/// the first name (compose-go's `NetworksByPriority`).
fn main_network(entries: &[(Key, Node)]) -> Option<&Key> {
    let priority = |detail: &Node| {
        detail
            .get("priority")
            .and_then(Node::scalar)
            .and_then(|p| p.trim().parse::<i64>().ok())
            .unwrap_or(0)
    };
    entries
        .iter()
        .min_by(|(a, x), (b, y)| priority(y).cmp(&priority(x)).then(a.name.cmp(&b.name)))
        .map(|(key, _)| key)
}

fn unbracketed(address: &str) -> &str {
    address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address)
}

/// The most containers of one compose service import makes services of.
const MAX_REPLICAS: usize = 32;

/// Compose keys that are one `docker run` flag: carried over in `docker_args`.
const DOCKER_FLAGS: &[(&str, &str)] = &[
    ("privileged", "--privileged"),
    ("tty", "--tty"),
    ("oom_kill_disable", "--oom-kill-disable"),
    ("shm_size", "--shm-size"),
    ("pids_limit", "--pids-limit"),
    ("mem_reservation", "--memory-reservation"),
    ("memswap_limit", "--memory-swap"),
    ("mem_swappiness", "--memory-swappiness"),
    ("oom_score_adj", "--oom-score-adj"),
    ("cpu_shares", "--cpu-shares"),
    ("cpuset", "--cpuset-cpus"),
    ("cpu_quota", "--cpu-quota"),
    ("cpu_period", "--cpu-period"),
    ("platform", "--platform"),
    ("runtime", "--runtime"),
    ("userns_mode", "--userns"),
    ("cgroup_parent", "--cgroup-parent"),
    ("cgroup", "--cgroupns"),
    ("mac_address", "--mac-address"),
    ("domainname", "--domainname"),
    ("pid", "--pid"),
    ("ipc", "--ipc"),
    ("uts", "--uts"),
    ("dns", "--dns"),
    ("dns_search", "--dns-search"),
    ("dns_opt", "--dns-option"),
    ("security_opt", "--security-opt"),
    ("devices", "--device"),
    ("group_add", "--group-add"),
    ("device_cgroup_rules", "--device-cgroup-rule"),
    ("sysctls", "--sysctl"),
    ("extra_hosts", "--add-host"),
    ("storage_opt", "--storage-opt"),
    ("gpus", "--gpus"),
    ("pull_policy", "--pull"),
    // Every port is reachable on the instance network without it, but
    // the container's config shows it (Config.ExposedPorts), which
    // proxies that discover containers read for their port (nginx-proxy,
    // Traefik's Docker provider).
    ("expose", "--expose"),
];

/// A mount target as compose compares them (`path.Clean`): `/data/` is
/// `/data`.
fn clean_target(target: &str) -> String {
    let cleaned = target.trim_end_matches('/');
    if cleaned.is_empty() && target.starts_with('/') {
        "/".into()
    } else {
        cleaned.to_string()
    }
}

/// How a port range is carried over.
#[derive(Debug, PartialEq)]
enum Published {
    /// One `ports` entry per port.
    Each(Vec<String>),
    /// The range as written, in one `--publish` flag: this many ports.
    Whole(usize),
}

/// The ports a range (`49160-49200:49160-49200/udp`: coturn's relay ports)
/// stands for, one per port as Docker publishes them (`nat.ParsePortSpec`),
/// or, past 1024 ports, the range whole; `None` for a port that is no range.
fn expand_port_range(text: &str) -> Option<Result<Published, String>> {
    if !text.contains('-') {
        return None;
    }
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, protocol)) => (spec, format!("/{protocol}")),
        None => (text, String::new()),
    };
    // Split as `syntax::parse_port` splits it: an IPv6 address has colons.
    let (ip, host, container) = match spec.rsplitn(3, ':').collect::<Vec<_>>()[..] {
        [c] => (None, "", c),
        [c, h] => (None, h, c),
        [c, h, ip] => (Some(ip), h, c),
        _ => return None,
    };
    let range = |r: &str| -> Option<(u16, u16)> {
        let (start, end) = r.split_once('-').unwrap_or((r, r));
        let (start, end) = (start.parse().ok()?, end.parse().ok()?);
        (0 < start && start <= end).then_some((start, end))
    };
    let (Some((first, last)), host_range) = (range(container), range(host)) else {
        return None;
    };
    let count = usize::from(last - first) + 1;
    let host_first = match host_range {
        None if host.is_empty() => None,
        None => return None,
        Some((h_first, h_last)) if usize::from(h_last - h_first) + 1 == count => Some(h_first),
        Some(_) if count == 1 => {
            return Some(Err(format!(
                "`{text}` lets Docker pick one host port of `{host}`; give one (`HOST:{first}`)"
            )));
        }
        Some(_) => {
            return Some(Err(format!(
                "`{text}`: the host and container ranges differ in length, which Docker refuses"
            )));
        }
    };
    if count > 1024 {
        return Some(Ok(Published::Whole(count)));
    }
    let prefix = ip.map(|ip| format!("{ip}:")).unwrap_or_default();
    Some(Ok(Published::Each(
        (0..count as u16)
            .map(|i| match host_first {
                Some(h) => format!("{prefix}{}:{}{protocol}", h + i, first + i),
                None if ip.is_some() => format!("{prefix}:{}{protocol}", first + i),
                None => format!("{}{protocol}", first + i),
            })
            .collect(),
    )))
}

/// Whether `node` is a map of `key` alone (`volume: {nocopy: true}`).
/// Whether compose mounts a long-syntax bind so that a missing host path
/// fails the start: a `bind:` block without `create_host_path: true`
/// (docker/compose `requireMountAPI`, whose mount Docker refuses: "bind
/// source path does not exist"), where `--volume` creates an empty folder.
/// With `create_host_path: true` compose's mount (a propagation or
/// `recursive` takes the mount API too) asks Docker to create the path
/// (`BindOptions.CreateMountpoint`), as `--volume` does.
fn needs_mount_api(item: &Node) -> bool {
    let kind = item.get("type").and_then(Node::scalar);
    let Some(bind) = item.get("bind").filter(|_| kind.as_deref() == Some("bind")) else {
        return false;
    };
    bind.get("create_host_path").and_then(Node::boolean) != Some(true)
}

fn is_only(node: &Node, key: &str) -> bool {
    node.entries()
        .is_some_and(|entries| entries.iter().all(|(k, _)| k.name == key))
}

/// Joins neighbouring literal pieces.
fn merge_text(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    for piece in pieces {
        match (out.last_mut(), piece) {
            (Some(Piece::Text(last)), Piece::Text(text)) => last.push_str(&text),
            (_, piece) => out.push(piece),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Published, expand_port_range};

    #[test]
    fn a_port_range_is_each_of_its_ports() {
        let ports = |text: &str| {
            expand_port_range(text).map(|r| {
                r.map(|published| match published {
                    Published::Each(ports) => ports,
                    Published::Whole(count) => vec![format!("whole: {count}")],
                })
            })
        };
        assert_eq!(ports("3478/udp"), None);
        assert_eq!(ports("${RELAY}:3478"), None);
        assert_eq!(
            ports("49160-49162:49160-49162/udp"),
            Some(Ok(vec![
                "49160:49160/udp".into(),
                "49161:49161/udp".into(),
                "49162:49162/udp".into()
            ]))
        );
        // Shifted, on one address, without host ports.
        assert_eq!(
            ports("127.0.0.1:8000-8001:9000-9001"),
            Some(Ok(vec![
                "127.0.0.1:8000:9000".into(),
                "127.0.0.1:8001:9001".into()
            ]))
        );
        assert_eq!(
            ports("[::1]:8000-8001:9000-9001"),
            Some(Ok(vec!["[::1]:8000:9000".into(), "[::1]:8001:9001".into()]))
        );
        assert_eq!(
            ports("127.0.0.1::5000-5001"),
            Some(Ok(vec!["127.0.0.1::5000".into(), "127.0.0.1::5001".into()]))
        );
        assert_eq!(
            ports("5000-5001"),
            Some(Ok(vec!["5000".into(), "5001".into()]))
        );
        assert!(
            ports("8000-8010:80")
                .unwrap()
                .unwrap_err()
                .contains("pick one host port")
        );
        assert!(
            ports("8000-8010:80-81")
                .unwrap()
                .unwrap_err()
                .contains("differ in length")
        );
        assert_eq!(
            ports("49152-65535:49152-65535/udp"),
            Some(Ok(vec!["whole: 16384".into()]))
        );
    }
}
