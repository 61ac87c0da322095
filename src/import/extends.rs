//! Compose's `extends`: a service built on another one, of this file
//! (`extends: base`) or of another (`extends: {file: common.yml, service:
//! base}`). The base's keys are merged under the service's own, as compose
//! merges them, before the service is converted.

use std::path::Path;
use std::sync::Arc;

use miette::NamedSource;

use super::Importer;
use super::node::{Key, Kind, Node, Place};

/// How deep `extends` may chain (a → b → c …) before it is taken for a loop.
const MAX_DEPTH: usize = 16;

impl Importer {
    /// The service with everything it extends merged in; `None` when it
    /// extends nothing. `services` are the services of the file `def` is in,
    /// `dir` that file's folder.
    pub(super) fn extended(
        &mut self,
        def: &Node,
        services: &[(Key, Node)],
        dir: &Path,
        depth: usize,
    ) -> Option<Node> {
        let (extends_key, extends) = def.entries()?.iter().find(|(k, _)| k.name == "extends")?;
        let at = extends_key.at;
        let (base_name, file) = match &extends.kind {
            Kind::Text(name) => (name.clone(), None),
            Kind::Map(_) => {
                let Some(service) = extends.get("service").and_then(Node::scalar) else {
                    self.expected(extends, "extends", "a map with `service`");
                    return Some(without_extends(def));
                };
                (service, extends.get("file").and_then(Node::scalar))
            }
            _ => {
                self.expected(extends, "extends", "a service name or a map");
                return Some(without_extends(def));
            }
        };
        if depth >= MAX_DEPTH {
            self.error(
                &at,
                format!("`extends` goes {MAX_DEPTH} services deep: it loops back on itself"),
            );
            return Some(without_extends(def));
        }
        let base = match &file {
            None => {
                let Some((_, base)) = services.iter().find(|(k, _)| k.name == base_name) else {
                    self.error(
                        &at,
                        format!("`extends`: this file has no service `{base_name}`"),
                    );
                    return Some(without_extends(def));
                };
                self.extended(base, services, dir, depth + 1)
                    .unwrap_or_else(|| base.clone())
            }
            Some(file) => self.base_from_file(file, &base_name, dir, &at, depth)?,
        };
        let own = without_extends(def);
        Some(self.merging(|merger| merger.service(base, own)))
    }

    /// Service `name` of the compose file `file` (relative to `dir`),
    /// itself extended, with every place moved to `at`: warnings about its
    /// keys point at the `extends` that brought them in.
    fn base_from_file(
        &mut self,
        file: &str,
        name: &str,
        dir: &Path,
        at: &Place,
        depth: usize,
    ) -> Option<Node> {
        let path = dir.join(file);
        let text = match (self.options.read)(&path) {
            Ok(text) => text,
            Err(e) => {
                self.error(
                    at,
                    format!(
                        "`extends`: cannot read {}: {e}",
                        crate::diagnostic::shown_path(&path)
                    ),
                );
                return None;
            }
        };
        let source = Arc::new(NamedSource::new(path.display().to_string(), text));
        let root = self.read_other(source)?;
        let services = root
            .get("services")
            .and_then(Node::entries)
            .unwrap_or_default();
        let Some((_, base)) = services.iter().find(|(k, _)| k.name == name) else {
            self.error(
                at,
                format!(
                    "`extends`: {} has no service `{name}`",
                    crate::diagnostic::shown_path(&path)
                ),
            );
            return None;
        };
        let base_dir = path.parent().unwrap_or(dir).to_path_buf();
        let mut base = self
            .extended(base, services, &base_dir, depth + 1)
            .unwrap_or_else(|| base.clone());
        // Compose resolves the base's relative paths against its own file's
        // folder; written relative to the extending file's folder instead
        // (the compose file's, or an included file's, itself rebased), they
        // mean the same and are then made absolute (and said so).
        if let Some(prefix) = rebase_prefix(&base_dir, dir) {
            rebase_paths(&mut base, &prefix);
        }
        relocate(&mut base, at);
        Some(base)
    }
}

/// What to put before a path relative to `base_dir` to make it relative to
/// `dir` (`./sub/`), or absolute when `base_dir` is outside `dir`; `None`
/// when they are the same folder.
pub(super) fn rebase_prefix(base_dir: &Path, dir: &Path) -> Option<String> {
    let base_dir = normalize(base_dir);
    if base_dir == normalize(dir) {
        return None;
    }
    Some(match base_dir.strip_prefix(normalize(dir)) {
        Ok(inner) => format!("./{}/", inner.display()),
        Err(_) => format!("{}/", base_dir.display()),
    })
}

/// `a/./b/../c` → `a/c`, lexically, as compose joins paths.
pub(super) fn normalize(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The base's relative host paths (bind mount sources, `env_file`s, a
/// `build` context) with `prefix` put before them.
pub(super) fn rebase_paths(base: &mut Node, prefix: &str) {
    let Kind::Map(entries) = &mut base.kind else {
        return;
    };
    let rebase = |text: &mut String| rebase_path(text, prefix);
    for (key, value) in entries {
        match (key.name.as_str(), &mut value.kind) {
            ("volumes", Kind::List(items)) => {
                for item in items {
                    match &mut item.kind {
                        // Only `.`-relative sources are paths: `data:/x` is a
                        // named volume.
                        Kind::Text(text) if text.starts_with('.') => rebase(text),
                        Kind::Map(_) => {
                            let is_bind =
                                item.get("type").and_then(Node::scalar).as_deref() == Some("bind");
                            if let (true, Kind::Map(fields)) = (is_bind, &mut item.kind)
                                && let Some((_, source)) =
                                    fields.iter_mut().find(|(k, _)| k.name == "source")
                                && let Kind::Text(text) = &mut source.kind
                            {
                                rebase(text);
                            }
                        }
                        _ => {}
                    }
                }
            }
            ("env_file" | "label_file", Kind::Text(text)) | ("build", Kind::Text(text)) => {
                rebase(text)
            }
            ("env_file" | "label_file", Kind::List(items)) => {
                for item in items {
                    match &mut item.kind {
                        Kind::Text(text) => rebase(text),
                        Kind::Map(fields) => {
                            if let Some((_, path)) =
                                fields.iter_mut().find(|(k, _)| k.name == "path")
                                && let Kind::Text(text) = &mut path.kind
                            {
                                rebase(text);
                            }
                        }
                        _ => {}
                    }
                }
            }
            ("build", Kind::Map(fields)) => {
                if let Some((_, context)) = fields.iter_mut().find(|(k, _)| k.name == "context")
                    && let Kind::Text(text) = &mut context.kind
                {
                    rebase(text);
                }
            }
            _ => {}
        }
    }
}

/// A relative host path with `prefix` put before it.
pub(super) fn rebase_path(text: &mut String, prefix: &str) {
    let relative = !text.starts_with(['/', '~', '$']) && !text.is_empty();
    if relative {
        let rest = text.strip_prefix("./").unwrap_or(text);
        *text = format!("{prefix}{rest}");
    }
}

fn without_extends(def: &Node) -> Node {
    let mut def = def.clone();
    if let Kind::Map(entries) = &mut def.kind {
        entries.retain(|(k, _)| k.name != "extends");
    }
    def
}

fn relocate(node: &mut Node, at: &Place) {
    node.at = *at;
    match &mut node.kind {
        Kind::List(items) => items.iter_mut().for_each(|i| relocate(i, at)),
        Kind::Map(entries) => {
            for (key, value) in entries {
                key.at = *at;
                relocate(value, at);
            }
        }
        _ => {}
    }
}
