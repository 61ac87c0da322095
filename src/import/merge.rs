//! Compose's merge rules (compose-go's `override` package: `mergeSpecials`,
//! then `EnforceUnicity`), one set for both places compose merges: a file
//! given after another (`-f a -f b`, the override file beside the compose
//! file) over the ones before it, and a service over the one it `extends`.
//!
//! Maps are merged key by key; lists are joined, and those whose items name
//! something (a port, a mount target, a variable) keep one item per name,
//! the later in the earlier's place; `command`, `entrypoint` and
//! `healthcheck.test` are replaced; anything else is replaced. Every node
//! keeps its place, so what is said about it points at the file it came from.

use super::node::{Key, Kind, Node, Place, Tag};

/// A merge compose refuses ("cannot override services.web.ports").
pub struct Refused {
    pub at: Place,
    pub message: String,
}

/// What the merge needs from the importer: a variable's value as compose
/// resolves it, since compose merges files after replacing their variables
/// (`${DATA:-./data}:/data` mounts at `/data`).
pub struct Merger<'r> {
    pub resolve: &'r dyn Fn(&str) -> String,
    pub refused: Vec<Refused>,
}

/// How compose merges the value at one path.
#[derive(Clone, Copy)]
enum Rule {
    /// The later value replaces the earlier.
    Replace,
    /// `NAME=value` lists or maps, merged by name.
    Named,
    /// Lists joined, one item per name (compose-go's `unique` indexers).
    Unique(Index),
    /// Joined, without the later items the earlier list has already.
    ExtraHosts,
    /// A list of services is a map of them with the default condition.
    DependsOn,
    /// A list of names is a map of them (networks a service joins).
    Names,
    /// Merged as a map where both name the same driver (or one none),
    /// else replaced.
    Logging,
    /// `build: ./dir` is `build: {context: ./dir}`.
    Build,
    /// A network's subnets, merged by subnet.
    Ipam,
}

/// What makes two items of a list the same item.
#[derive(Clone, Copy)]
enum Index {
    /// The text up to a `=`.
    KeyValue,
    /// The published port: host address, host port, container port, protocol.
    Port,
    /// The mount target.
    Target,
    /// A device's path in the container.
    Device,
    /// A secret or config's path in the container, under this folder.
    Mount(&'static str),
    /// An env file's path.
    EnvFile,
}

/// compose-go's `mergeSpecials` and `unique` tables, by path (`*` is any
/// name).
const RULES: &[(&str, Rule)] = &[
    ("services.*.command", Rule::Replace),
    ("services.*.entrypoint", Rule::Replace),
    ("services.*.healthcheck.test", Rule::Replace),
    ("services.*.ulimits.*", Rule::Replace),
    ("services.*.environment", Rule::Named),
    ("services.*.labels", Rule::Named),
    ("services.*.annotations", Rule::Named),
    ("services.*.sysctls", Rule::Named),
    ("services.*.build.args", Rule::Named),
    ("services.*.build.labels", Rule::Named),
    ("services.*.build.additional_contexts", Rule::Named),
    ("services.*.deploy.labels", Rule::Named),
    ("networks.*.labels", Rule::Named),
    ("volumes.*.labels", Rule::Named),
    ("services.*.extra_hosts", Rule::ExtraHosts),
    ("services.*.build.extra_hosts", Rule::ExtraHosts),
    ("services.*.depends_on", Rule::DependsOn),
    ("services.*.networks", Rule::Names),
    ("services.*.models", Rule::Names),
    ("services.*.logging", Rule::Logging),
    ("services.*.build", Rule::Build),
    ("networks.*.ipam.config", Rule::Ipam),
    ("services.*.ports", Rule::Unique(Index::Port)),
    ("services.*.volumes", Rule::Unique(Index::Target)),
    ("services.*.devices", Rule::Unique(Index::Device)),
    (
        "services.*.secrets",
        Rule::Unique(Index::Mount("/run/secrets")),
    ),
    ("services.*.configs", Rule::Unique(Index::Mount(""))),
    ("services.*.env_file", Rule::Unique(Index::EnvFile)),
    ("services.*.label_file", Rule::Unique(Index::KeyValue)),
    ("services.*.expose", Rule::Unique(Index::KeyValue)),
    ("services.*.dns", Rule::Unique(Index::KeyValue)),
    ("services.*.dns_opt", Rule::Unique(Index::KeyValue)),
    ("services.*.dns_search", Rule::Unique(Index::KeyValue)),
    ("services.*.tmpfs", Rule::Unique(Index::KeyValue)),
    ("services.*.cap_add", Rule::Unique(Index::KeyValue)),
    ("services.*.cap_drop", Rule::Unique(Index::KeyValue)),
    ("services.*.links", Rule::Unique(Index::KeyValue)),
    ("services.*.profiles", Rule::Unique(Index::KeyValue)),
    ("services.*.build.tags", Rule::Unique(Index::KeyValue)),
    ("services.*.build.platforms", Rule::Unique(Index::KeyValue)),
    (
        "services.*.networks.*.aliases",
        Rule::Unique(Index::KeyValue),
    ),
    (
        "services.*.networks.*.link_local_ips",
        Rule::Unique(Index::KeyValue),
    ),
];

/// The lists of which a single string is a list of it.
const TO_SEQUENCE: &[&str] = &[
    "dns",
    "dns_opt",
    "dns_search",
    "env_file",
    "label_file",
    "tmpfs",
];

fn rule(path: &[String]) -> Option<Rule> {
    RULES.iter().find_map(|(pattern, rule)| {
        let parts: Vec<&str> = pattern.split('.').collect();
        let matches = parts.len() == path.len()
            && parts
                .iter()
                .zip(path)
                .all(|(p, name)| *p == "*" || p == name);
        matches.then_some(*rule)
    })
}

impl Merger<'_> {
    /// The compose file `over` merged over `base`, as `-f base -f over`.
    pub fn files(&mut self, base: Node, over: Node) -> Node {
        self.merge(base, over, &mut Vec::new())
    }

    /// Service `over` merged over the service it extends.
    pub fn service(&mut self, base: Node, over: Node) -> Node {
        self.merge(base, over, &mut vec!["services".into(), "*".into()])
    }

    fn merge(&mut self, base: Node, over: Node, path: &mut Vec<String>) -> Node {
        let at = over.at;
        match rule(path) {
            Some(Rule::Replace) => return over,
            Some(Rule::Named) => {
                if let (Some(base), Some(over)) = (named(&base), named(&over)) {
                    let mut out = base;
                    for (key, value) in over {
                        let at = out.iter().position(|(k, _)| k.name == key.name);
                        match (at, value.tag) {
                            (Some(i), Some(Tag::Reset)) => {
                                out.remove(i);
                            }
                            (None, Some(Tag::Reset)) => {}
                            (Some(i), _) => out[i] = (key, value),
                            (None, _) => out.push((key, value)),
                        }
                    }
                    return node(at, Kind::Map(out));
                }
            }
            // compose-go turns a single string into a list only for these
            // (`mergeToSequence`); other lists merge with lists only.
            Some(Rule::Unique(index))
                if is_list(&base) && is_list(&over)
                    || TO_SEQUENCE.contains(&path.last().map_or("", String::as_str)) =>
            {
                let mut items = as_list(base);
                items.extend(as_list(over));
                return node(at, Kind::List(self.unique(items, index)));
            }
            Some(Rule::ExtraHosts) => {
                let mut items = hosts(base);
                for item in hosts(over) {
                    let text = item.scalar();
                    if text.is_none() || items.iter().all(|b| b.scalar() != text) {
                        items.push(item);
                    }
                }
                return node(at, Kind::List(items));
            }
            Some(Rule::DependsOn) if !both_lists(&base, &over) => {
                let base = names_as_map(base, true);
                let over = names_as_map(over, true);
                return self.merge_maps(base, over, at, path);
            }
            Some(Rule::Names) if !both_lists(&base, &over) => {
                let base = names_as_map(base, false);
                let over = names_as_map(over, false);
                return self.merge_maps(base, over, at, path);
            }
            // Both lists of names: the names of both, once.
            Some(Rule::DependsOn | Rule::Names) => {
                let mut items = as_list(base);
                items.extend(as_list(over));
                return node(at, Kind::List(self.unique(items, Index::KeyValue)));
            }
            Some(Rule::Logging) => {
                let driver = |n: &Node| n.get("driver").and_then(Node::scalar);
                let (b, o) = (driver(&base), driver(&over));
                if b.is_some() && o.is_some() && b != o {
                    return over;
                }
            }
            Some(Rule::Build) => {
                let context = |n: Node| match n.kind {
                    Kind::Text(_) | Kind::Number(_) => {
                        let key = Key {
                            name: "context".into(),
                            at: n.at,
                        };
                        node(n.at, Kind::Map(vec![(key, n)]))
                    }
                    _ => n,
                };
                return self.merge_maps(context(base), context(over), at, path);
            }
            Some(Rule::Ipam) => return self.ipam(base, over, path),
            Some(Rule::Unique(_)) | None => {}
        }
        match (&base.kind, &over.kind) {
            // compose-go keeps the earlier value under a null.
            (_, Kind::Null) => base,
            (Kind::Null, _) => over,
            (Kind::Map(_), Kind::Map(_)) => self.merge_maps(base, over, at, path),
            (Kind::List(_), Kind::List(_)) => {
                let mut items = as_list(base);
                items.extend(as_list(over));
                node(at, Kind::List(items))
            }
            // A string where a map or a list was: refused by the shape
            // check of the merged value, as by compose's schema.
            (Kind::Map(_), Kind::List(_)) | (Kind::List(_), Kind::Map(_)) => {
                self.refused.push(Refused {
                    at,
                    message: format!(
                        "`{}` is {} here and {} in the file before: compose refuses to merge them (\"cannot override {}\")",
                        path.join("."),
                        over.what(),
                        base.what(),
                        path.join(".")
                    ),
                });
                over
            }
            _ => over,
        }
    }

    fn merge_maps(&mut self, base: Node, over: Node, at: Place, path: &mut Vec<String>) -> Node {
        let (Kind::Map(mut out), Kind::Map(over_entries)) = (base.kind, over.kind) else {
            unreachable!("merge_maps is given maps")
        };
        for (key, value) in over_entries {
            let earlier = out.iter().position(|(k, _)| k.name == key.name);
            match (earlier, value.tag) {
                // `!reset`: gone, with the earlier value.
                (Some(i), Some(Tag::Reset)) => {
                    out.remove(i);
                }
                (None, Some(Tag::Reset)) => {}
                // `!override`: the value as written, unmerged.
                (Some(i), Some(Tag::Override)) => out[i] = (key, value),
                (Some(i), None) => {
                    let (_, old) = out.remove(i);
                    path.push(key.name.clone());
                    let merged = self.merge(old, value, path);
                    path.pop();
                    out.insert(i, (key, merged));
                }
                (None, _) => out.push((key, value)),
            }
        }
        node(at, Kind::Map(out))
    }

    /// One item per name, the later in the earlier's place; items without
    /// a name compose can read are all kept.
    fn unique(&self, items: Vec<Node>, index: Index) -> Vec<Node> {
        let mut out: Vec<(Option<String>, Node)> = Vec::new();
        for item in items {
            let name = self.name(&item, index);
            match out.iter().position(|(n, _)| name.is_some() && *n == name) {
                Some(i) => out[i].1 = item,
                None => out.push((name, item)),
            }
        }
        out.into_iter().map(|(_, item)| item).collect()
    }

    fn name(&self, item: &Node, index: Index) -> Option<String> {
        let resolve = self.resolve;
        let text = |n: &Node| n.scalar().map(|t| resolve(&t));
        let field = |key: &str| item.get(key).and_then(text);
        if let Kind::Map(_) = item.kind {
            return match index {
                Index::Port => Some(format!(
                    "{}:{}:{}/{}",
                    field("host_ip").unwrap_or_else(|| "0.0.0.0".into()),
                    field("published").unwrap_or_default(),
                    field("target")?,
                    field("protocol").unwrap_or_else(|| "tcp".into())
                )),
                Index::Target | Index::Device => field("target"),
                Index::Mount(folder) => {
                    field("target").or_else(|| Some(format!("{folder}/{}", field("source")?)))
                }
                Index::EnvFile => field("path"),
                Index::KeyValue => None,
            };
        }
        let value = text(item)?;
        Some(match index {
            Index::KeyValue => value
                .split_once('=')
                .map_or(value.clone(), |(k, _)| k.into()),
            Index::Port | Index::EnvFile => value,
            Index::Target => volume_target(&value),
            Index::Device => {
                let parts: Vec<&str> = value.split(':').collect();
                parts.get(1).unwrap_or(&parts[0]).to_string()
            }
            Index::Mount(folder) => format!("{folder}/{value}"),
        })
    }

    /// compose-go's `mergeIPAMConfig`: a later subnet merged into the
    /// earlier one of the same subnet, others added.
    fn ipam(&mut self, base: Node, over: Node, path: &mut Vec<String>) -> Node {
        let at = over.at;
        let subnet = |n: &Node| n.get("subnet").and_then(Node::scalar);
        let mut out = as_list(base);
        for item in as_list(over) {
            match out.iter().position(|b| subnet(b) == subnet(&item)) {
                Some(i) if matches!(item.kind, Kind::Map(_)) => {
                    let old = out.remove(i);
                    let merged = match old.kind {
                        Kind::Map(_) => self.merge_maps(old, item, at, path),
                        _ => item,
                    };
                    out.insert(i, merged);
                }
                _ => out.push(item),
            }
        }
        node(at, Kind::List(out))
    }
}

/// `node` without what `!reset` removes, once every file is merged: a key
/// reset where no file before had it is not there either.
pub fn without_resets(node: Node) -> Node {
    let kind = match node.kind {
        Kind::Map(entries) => Kind::Map(
            entries
                .into_iter()
                .filter(|(_, v)| v.tag != Some(Tag::Reset))
                .map(|(k, v)| (k, without_resets(v)))
                .collect(),
        ),
        Kind::List(items) => Kind::List(
            items
                .into_iter()
                .filter(|v| v.tag != Some(Tag::Reset))
                .map(without_resets)
                .collect(),
        ),
        kind => kind,
    };
    Node { kind, ..node }
}

fn node(at: Place, kind: Kind) -> Node {
    Node::new(at, kind)
}

/// A list, or nothing.
fn is_list(node: &Node) -> bool {
    matches!(node.kind, Kind::List(_) | Kind::Null)
}

fn both_lists(a: &Node, b: &Node) -> bool {
    matches!((&a.kind, &b.kind), (Kind::List(_), Kind::List(_)))
}

/// A list's items; a single string is a list of it, nothing an empty list.
fn as_list(node: Node) -> Vec<Node> {
    match node.kind {
        Kind::List(items) => items,
        Kind::Null => Vec::new(),
        _ => vec![node],
    }
}

/// `extra_hosts` as a list: `{db: 10.0.0.2}` is `db:10.0.0.2`.
fn hosts(node: Node) -> Vec<Node> {
    match node.kind {
        Kind::Map(entries) => entries
            .into_iter()
            .map(|(key, value)| {
                let text = match value.scalar() {
                    Some(address) => format!("{}:{address}", key.name),
                    None => key.name,
                };
                Node::new(key.at, Kind::Text(text))
            })
            .collect(),
        _ => as_list(node),
    }
}

/// A list of names as a map of them: for `depends_on`, each with compose's
/// defaults (`condition: service_started`, `required: true`), else with
/// nothing.
fn names_as_map(node: Node, depends_on: bool) -> Node {
    let Kind::List(items) = node.kind else {
        return node;
    };
    let entries = items
        .into_iter()
        .filter_map(|item| {
            let name = item.scalar()?;
            let at = item.at;
            let value = if depends_on {
                let field = |name: &str, kind: Kind| {
                    (
                        Key {
                            name: name.into(),
                            at,
                        },
                        Node::new(at, kind),
                    )
                };
                Kind::Map(vec![
                    field("condition", Kind::Text("service_started".into())),
                    field("required", Kind::Bool(true)),
                ])
            } else {
                Kind::Null
            };
            Some((Key { name, at }, Node::new(at, value)))
        })
        .collect();
    Node::new(node.at, Kind::Map(entries))
}

/// A map, or a list of `NAME=value` (or bare `NAME`) as map entries.
pub(super) fn named(node: &Node) -> Option<Vec<(Key, Node)>> {
    match &node.kind {
        Kind::Map(entries) => Some(entries.clone()),
        Kind::Null => Some(Vec::new()),
        Kind::List(items) => items
            .iter()
            .map(|item| {
                let text = item.scalar()?;
                let (name, value) = match text.split_once('=') {
                    Some((name, value)) => (name.to_string(), Kind::Text(value.to_string())),
                    None => (text, Kind::Null),
                };
                Some((Key { name, at: item.at }, Node::new(item.at, value)))
            })
            .collect(),
        _ => None,
    }
}

/// The target of a short volume (`SOURCE:TARGET[:MODE]`, or `TARGET`), as
/// compose-go's `ParseVolume` reads it.
fn volume_target(text: &str) -> String {
    let parts: Vec<&str> = text.split(':').collect();
    parts.get(1).unwrap_or(&parts[0]).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn read(file: usize, text: &str) -> Node {
        let source = Arc::new(miette::NamedSource::new("x.yml", text.to_string()));
        let mut documents =
            super::super::node::read(&source, file).unwrap_or_else(|_| panic!("{text}"));
        assert_eq!(documents.len(), 1, "{text}");
        documents.remove(0)
    }

    /// The merged file, written back as flow YAML with each scalar's file.
    fn show(node: &Node) -> String {
        match &node.kind {
            Kind::Null => "~".into(),
            Kind::Bool(b) => format!("{b}@{}", node.at.file),
            Kind::Number(t) | Kind::Text(t) => format!("{t}@{}", node.at.file),
            Kind::List(items) => format!(
                "[{}]",
                items.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
            Kind::Map(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.name, show(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn merged(base: &str, over: &str) -> String {
        let resolve = |t: &str| t.replace("${DATA:-./data}", "./data");
        let mut merger = Merger {
            resolve: &resolve,
            refused: Vec::new(),
        };
        let out = merger.files(read(0, base), read(1, over));
        let refused: Vec<String> = merger.refused.into_iter().map(|r| r.message).collect();
        assert!(refused.is_empty(), "{refused:?}");
        show(out.get("services").unwrap().get("web").unwrap())
    }

    #[test]
    fn commands_and_health_tests_are_replaced_maps_merged() {
        assert_eq!(
            merged(
                "services:\n  web:\n    image: a\n    command: [a, b]\n    entrypoint: sh\n    healthcheck: {test: [CMD, a], interval: 5s}\n",
                "services:\n  web:\n    image: b\n    command: [c]\n    healthcheck: {test: [CMD, b]}\n"
            ),
            "{image: b@1, command: [c@1], entrypoint: sh@0, healthcheck: {test: [CMD@1, b@1], interval: 5s@0}}"
        );
    }

    #[test]
    fn ports_volumes_and_expose_are_joined_one_per_name() {
        assert_eq!(
            merged(
                "services:\n  web:\n    ports: [\"80:80\", \"443:443\"]\n    expose: [80]\n    volumes: [\"${DATA:-./data}:/data\", \"logs:/logs:ro\"]\n    dns: 1.1.1.1\n    security_opt: [a]\n",
                "services:\n  web:\n    ports: [\"80:80\", {target: 81, published: 8081}]\n    expose: [80, 81]\n    volumes: [\"/srv/data:/data\", {type: volume, source: x, target: /x}]\n    dns: [8.8.8.8, 1.1.1.1]\n    security_opt: [a]\n"
            ),
            "{ports: [80:80@1, 443:443@0, {target: 81@1, published: 8081@1}], expose: [80@1, 81@1], volumes: [/srv/data:/data@1, logs:/logs:ro@0, {type: volume@1, source: x@1, target: /x@1}], dns: [1.1.1.1@1, 8.8.8.8@1], security_opt: [a@0, a@1]}"
        );
    }

    #[test]
    fn environment_and_labels_are_merged_by_name() {
        assert_eq!(
            merged(
                "services:\n  web:\n    environment: [A=1, B=2, C]\n    labels: {x: 1}\n",
                "services:\n  web:\n    environment: {B: 3, D: 4}\n    labels: [y=2, x=3]\n"
            ),
            "{environment: {A: 1@0, B: 3@1, C: ~, D: 4@1}, labels: {x: 3@1, y: 2@1}}"
        );
    }

    #[test]
    fn depends_on_networks_and_build_merge_in_either_form() {
        assert_eq!(
            merged(
                "services:\n  web:\n    depends_on: [db]\n    networks: [front]\n    build: ./app\n    extra_hosts: {db: 10.0.0.2}\n",
                "services:\n  web:\n    depends_on: {cache: {condition: service_healthy}}\n    networks: {back: {aliases: [w]}}\n    build: {dockerfile: Dockerfile.dev}\n    extra_hosts: [\"db:10.0.0.2\", \"x:10.0.0.3\"]\n"
            ),
            "{depends_on: {db: {condition: service_started@0, required: true@0}, cache: {condition: service_healthy@1}}, networks: {front: ~, back: {aliases: [w@1]}}, build: {context: ./app@0, dockerfile: Dockerfile.dev@1}, extra_hosts: [db:10.0.0.2@0, x:10.0.0.3@1]}"
        );
        assert_eq!(
            merged(
                "services:\n  web:\n    depends_on: [db]\n    logging: {driver: syslog, options: {tag: a}}\n",
                "services:\n  web:\n    depends_on: [db, cache]\n    logging: {driver: json-file}\n"
            ),
            "{depends_on: [db@1, cache@1], logging: {driver: json-file@1}}"
        );
    }

    /// compose 2.18's tags: `!reset` removes what the files before said,
    /// `!override` replaces it unmerged.
    #[test]
    fn reset_and_override_tags() {
        let base = "services:\n  web:\n    image: a\n    ports: [\"80:80\"]\n    environment: {A: 1, B: 2}\n    labels: {x: 1}\n    healthcheck: {test: [CMD, a], interval: 5s}\n";
        let over = "services:\n  web:\n    ports: !reset []\n    environment: !override {C: 3}\n    labels: {x: !reset}\n    healthcheck: !reset\n    dns: !reset [1.1.1.1]\n";
        assert_eq!(
            without_resets_shown(base, over),
            "{image: a@0, environment: {C: 3@1}, labels: {}}"
        );
    }

    fn without_resets_shown(base: &str, over: &str) -> String {
        let resolve = |t: &str| t.to_string();
        let mut merger = Merger {
            resolve: &resolve,
            refused: Vec::new(),
        };
        let out = without_resets(merger.files(read(0, base), read(1, over)));
        show(out.get("services").unwrap().get("web").unwrap())
    }

    #[test]
    fn a_null_keeps_the_earlier_value_and_a_map_over_a_list_is_refused() {
        assert_eq!(
            merged(
                "services:\n  web:\n    image: a\n",
                "services:\n  web:\n    image:\n"
            ),
            "{image: a@0}"
        );
        let resolve = |t: &str| t.to_string();
        let mut merger = Merger {
            resolve: &resolve,
            refused: Vec::new(),
        };
        merger.files(
            read(0, "services:\n  web:\n    ulimits: [a]\n"),
            read(1, "services:\n  web:\n    ulimits: {nofile: 1}\n"),
        );
        let refused: Vec<String> = merger.refused.into_iter().map(|r| r.message).collect();
        assert_eq!(
            refused,
            [
                "`services.web.ulimits` is a map here and a list in the file before: compose refuses to merge them (\"cannot override services.web.ulimits\")"
            ]
        );
    }
}
