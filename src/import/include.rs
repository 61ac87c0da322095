//! Compose's `include`: other compose projects whose services, networks,
//! volumes, secrets and configs become this file's (compose-go's
//! `ApplyInclude`). Each is read as compose reads it, its relative paths
//! from its own folder; a name both define differently is refused, as
//! compose 2 refuses it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::NamedSource;

use super::Importer;
use super::extends::{normalize, rebase_path, rebase_paths, rebase_prefix};
use super::node::{Key, Kind, Node, Place};

/// The top-level sections an included project adds to.
const SECTIONS: &[&str] = &["services", "networks", "volumes", "secrets", "configs"];

/// How deep includes may nest before it is taken for a loop.
const MAX_DEPTH: usize = 16;

/// One entry of `include`.
struct Entry {
    /// The files, merged as `-f` merges them, each with where it is named.
    paths: Vec<(String, Place)>,
    project_directory: Option<String>,
    env_files: Vec<String>,
}

impl Importer {
    /// Adds the projects of `include` (`list`, under `key`) to `root`, the
    /// file whose relative paths start from `dir`.
    pub(super) fn include(
        &mut self,
        root: &mut Node,
        key: &Key,
        list: &Node,
        dir: &Path,
        chain: &mut Vec<PathBuf>,
    ) {
        let Some(items) = list.items() else {
            self.expected(list, "include", "a list of files");
            return;
        };
        for item in items {
            let Some(entry) = self.entry(item) else {
                continue;
            };
            let resolve = |importer: &Self, text: &str| {
                let text = importer
                    .as_compose_resolves(text)
                    .unwrap_or_else(|| text.to_string());
                normalize(&importer.include_path(dir, &text))
            };
            // compose reads these with its resource loaders (git, OCI).
            if let Some((path, at)) = entry.paths.iter().find(|(p, _)| is_remote(p)) {
                self.error(
                    at,
                    format!("`include`: {path} is remote: import reads files only; download it and include it by its path"),
                );
                continue;
            }
            let paths: Vec<(PathBuf, Place)> = entry
                .paths
                .iter()
                .map(|(path, at)| (resolve(self, path), *at))
                .collect();
            let project_dir = match &entry.project_directory {
                Some(folder) => resolve(self, folder),
                None => paths[0].0.parent().unwrap_or(dir).to_path_buf(),
            };
            let first_file = self.files.len();
            let Some(included) = self.included_project(&paths, &project_dir, dir, chain) else {
                continue;
            };
            let files = first_file..self.files.len();
            self.variables_of(&entry, dir, &project_dir, &item.at, files);
            self.add_resources(root, &key.at, included, &paths[0].0);
        }
    }

    /// An entry of `include`: a path, or `{path, project_directory, env_file}`.
    fn entry(&mut self, item: &Node) -> Option<Entry> {
        let texts = |node: &Node| -> Vec<(String, Place)> {
            match &node.kind {
                Kind::List(items) => items
                    .iter()
                    .filter_map(|i| Some((i.scalar()?, i.at)))
                    .collect(),
                _ => node.scalar().map(|t| (t, node.at)).into_iter().collect(),
            }
        };
        let entry = match &item.kind {
            Kind::Text(_) => Entry {
                paths: texts(item),
                project_directory: None,
                env_files: Vec::new(),
            },
            Kind::Map(_) => Entry {
                paths: item.get("path").map(texts).unwrap_or_default(),
                project_directory: item.get("project_directory").and_then(Node::scalar),
                env_files: item
                    .get("env_file")
                    .map(|e| texts(e).into_iter().map(|(t, _)| t).collect())
                    .unwrap_or_default(),
            },
            _ => {
                self.expected(item, "include", "a path or a map with `path`");
                return None;
            }
        };
        if entry.paths.is_empty() {
            self.expected(item, "include", "a path or a map with `path`");
            return None;
        }
        Some(entry)
    }

    /// The included files read, each with its own includes and extends,
    /// merged, and their relative paths made relative to the including file.
    fn included_project(
        &mut self,
        paths: &[(PathBuf, Place)],
        project_dir: &Path,
        including_dir: &Path,
        chain: &mut Vec<PathBuf>,
    ) -> Option<Node> {
        let mut project: Option<Node> = None;
        for (path, at) in paths {
            if chain.contains(path) || chain.len() >= MAX_DEPTH {
                self.error(
                    at,
                    format!(
                        "`include`: {} includes this file already (directly or through others): compose refuses the file (\"include cycle detected\")",
                        self.shown(path)
                    ),
                );
                return None;
            }
            let text = match (self.options.read)(path) {
                Ok(text) => text,
                Err(e) => {
                    self.error(
                        at,
                        format!(
                            "`include`: cannot read {}: {e}",
                            crate::diagnostic::shown_path(path)
                        ),
                    );
                    return None;
                }
            };
            let name = self.shown(path);
            self.included.push(name.clone());
            let source = Arc::new(NamedSource::new(name, text));
            let file = self.read_other(source)?;
            chain.push(path.clone());
            let file = self.load(file, project_dir, chain);
            chain.pop();
            project = Some(match project {
                None => file,
                Some(base) => self.merging(|merger| merger.files(base, file)),
            });
        }
        let mut project = project?;
        // Compose resolves an included file's relative paths against its
        // project's folder; written relative to the including file's folder,
        // they mean the same (as for `extends`).
        if let Some(prefix) = rebase_prefix(project_dir, including_dir)
            && let Kind::Map(sections) = &mut project.kind
        {
            for (section, entries) in sections {
                let Kind::Map(entries) = &mut entries.kind else {
                    continue;
                };
                for (_, def) in entries {
                    match section.name.as_str() {
                        "services" => rebase_paths(def, &prefix),
                        // A secret or config backed by a file.
                        "secrets" | "configs" => {
                            if let Kind::Map(fields) = &mut def.kind
                                && let Some((_, file)) =
                                    fields.iter_mut().find(|(k, _)| k.name == "file")
                                && let Kind::Text(text) = &mut file.kind
                            {
                                rebase_path(text, &prefix);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        Some(project)
    }

    /// An `include` path (or `project_directory`, `env_file`) as compose-go
    /// resolves it: `~` is the home folder, a relative path is from the
    /// including file's folder.
    fn include_path(&self, dir: &Path, text: &str) -> PathBuf {
        match (text.strip_prefix('~'), &self.options.home) {
            (Some(rest), Some(home)) => home.join(rest.trim_start_matches('/')),
            _ => dir.join(text),
        }
    }

    /// compose gives the included files' variables the values of their
    /// project's `.env` (or the entry's `env_file`) where the including
    /// project has none (compose-go's `ApplyInclude`: its environment
    /// merged with theirs, its own values kept). Those values join the
    /// instance's, as its own `.env`'s do. An `env_file` that is missing
    /// makes compose refuse the file.
    fn variables_of(
        &mut self,
        entry: &Entry,
        dir: &Path,
        project_dir: &Path,
        at: &Place,
        project_files: std::ops::Range<usize>,
    ) {
        let mut files: Vec<PathBuf> = entry
            .env_files
            .iter()
            .map(|f| self.include_path(dir, f))
            .collect();
        let given = !files.is_empty();
        if !given && normalize(project_dir) != normalize(&self.options.dir) {
            files.push(project_dir.join(".env"));
        }
        for file in files {
            let text = match (self.options.read)(&file) {
                Ok(text) => text,
                Err(e) if given => {
                    self.error(
                        at,
                        format!(
                            "`include`: cannot read its env_file {}: {e}: compose refuses the file",
                            self.shown(&file)
                        ),
                    );
                    continue;
                }
                Err(_) => continue,
            };
            let shown = self.shown(&file);
            // Its lines compose completes from the shell, as the project's
            // own `.env`'s are said.
            let notes = super::dotenv_warnings_within(&text, &shown, &self.options.dotenv);
            self.warnings.extend(notes);
            for (name, value) in super::parse_dotenv_within(&text, &self.options.dotenv) {
                if !self.options.dotenv.iter().any(|(n, _)| *n == name) {
                    self.included_values
                        .insert(name.clone(), (shown.clone(), project_files.clone()));
                    self.options.dotenv.push((name, value));
                }
            }
        }
    }

    /// The included project's services, networks, volumes, secrets and
    /// configs added to `root`; one of a name `root` has already is refused
    /// unless both are the same (compose 2's "conflicts with imported
    /// resource").
    fn add_resources(&mut self, root: &mut Node, at: &Place, included: Node, file: &Path) {
        let Kind::Map(sections) = included.kind else {
            return;
        };
        let Kind::Map(entries) = &mut root.kind else {
            return;
        };
        for (section_key, section) in sections {
            if !SECTIONS.contains(&section_key.name.as_str()) {
                continue;
            }
            let Kind::Map(added) = section.kind else {
                continue;
            };
            let target = match entries.iter().position(|(k, _)| k.name == section_key.name) {
                Some(i) => i,
                None => {
                    let key = Key {
                        name: section_key.name.clone(),
                        at: *at,
                    };
                    entries.push((key, Node::new(*at, Kind::Map(Vec::new()))));
                    entries.len() - 1
                }
            };
            let own = &mut entries[target].1;
            if let Kind::Null = own.kind {
                own.kind = Kind::Map(Vec::new());
            }
            let Kind::Map(own) = &mut own.kind else {
                continue;
            };
            for (name, def) in added {
                match own.iter().find(|(k, _)| k.name == name.name) {
                    Some((_, existing)) if same(existing, &def) => {}
                    Some((existing, _)) => self.error(
                        &existing.at,
                        format!(
                            "`{}.{}` is defined here and in the included {}: compose refuses the file (\"{}.{} conflicts with imported resource\"); rename one, or leave it out here",
                            section_key.name,
                            name.name,
                            self.shown(file),
                            section_key.name,
                            name.name
                        ),
                    ),
                    None => own.push((name, def)),
                }
            }
        }
    }
}

impl Importer {
    /// A file of the project as the user named the compose file: relative
    /// to its folder as shown (`app/db/compose.yaml`).
    fn shown(&self, path: &Path) -> String {
        match path.strip_prefix(&self.options.dir) {
            Ok(inner) => {
                let first = Path::new(self.files[0].name());
                crate::template::display_path(&first.with_file_name(inner))
            }
            Err(_) => crate::template::display_path(path),
        }
    }
}

/// A path compose loads from elsewhere: `oci://…`, `git@…`, `https://…`.
fn is_remote(path: &str) -> bool {
    path.contains("://") || path.starts_with("git@")
}

/// The same YAML, wherever it is written.
fn same(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::List(x), Kind::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Kind::Map(x), Kind::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| k.name == k2.name && same(v, v2)))
        }
        (Kind::Null, Kind::Null) => true,
        _ => a.scalar().is_some() && a.scalar() == b.scalar() && a.what() == b.what(),
    }
}
