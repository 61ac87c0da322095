//! `volumes_from`: a service mounts the volumes another one mounts (nginx-proxy's
//! acme-companion, redash's worker). Docker gives the container each mount of
//! the other container at the same path, in the mode the other has, or in the
//! one `:ro`/`:rw` forces; the container's own volumes win at their targets.
//! unitgen has no such key, so the volumes are written out: a named volume is
//! the instance's, which both services mount, and a bind is the same folder.

use super::emit::{Map, Scalar, Value};
use super::node::Node;
use super::{Importer, Mounted};

impl Importer {
    /// Reads `volumes_from: [service[:ro|:rw], container:name]`; the mounts
    /// are added once every service's own volumes are known.
    pub(super) fn volumes_from_key(&mut self, node: &Node) {
        let Some(items) = node.items() else {
            self.expected(node, "volumes_from", "a list");
            return;
        };
        let mut sources = Vec::new();
        for item in items {
            let Some(text) = self.plain_text(item, "volumes_from") else {
                continue;
            };
            let (source, mode) = match text.rsplit_once(':') {
                Some((source, "ro")) => (source, Some(true)),
                Some((source, "rw")) => (source, Some(false)),
                _ => (text.as_str(), None),
            };
            if source.starts_with("container:") {
                self.warn(
                    &item.at,
                    "volumes_from",
                    format!("`{source}` not carried over: a container outside the compose file; mount its volumes with `volumes`"),
                );
                continue;
            }
            sources.push((source.to_string(), mode, item.at));
        }
        let service = self.service.clone().unwrap_or_default();
        self.volumes_from.push((service, sources));
    }

    /// Adds to each service with `volumes_from` the volumes of the services
    /// it names, those of services that take theirs from others first.
    pub(super) fn mount_volumes_from(&mut self, services: &mut Map) {
        let mut pending = std::mem::take(&mut self.volumes_from);
        while !pending.is_empty() {
            // A service whose sources take no volumes from others any more;
            // in a cycle (which Docker could not create), any.
            let ready = pending
                .iter()
                .position(|(_, sources)| {
                    sources
                        .iter()
                        .all(|(s, ..)| pending.iter().all(|(other, _)| other != s))
                })
                .unwrap_or(0);
            let (service, sources) = pending.remove(ready);
            let mut own: Vec<Mounted> = self.volumes_of.get(&service).cloned().unwrap_or_default();
            let mut added = Vec::new();
            for (source, mode, at) in sources {
                let Some(theirs) = self.volumes_of.get(&source).cloned() else {
                    let why = match self.names.contains_key(&source) {
                        true => format!("`{source}` mounts no volumes: nothing to carry over"),
                        false => format!(
                            "`{source}` is not a service that is imported: not carried over"
                        ),
                    };
                    self.warn_at_service(&service, &at, why);
                    continue;
                };
                for mount in theirs {
                    if own.iter().any(|m| m.target == mount.target) {
                        continue;
                    }
                    let read_only = mode.unwrap_or(mount.read_only);
                    let flags: Vec<&str> = read_only
                        .then_some("ro")
                        .into_iter()
                        .chain(mount.propagation.as_deref())
                        .collect();
                    let text = match flags.is_empty() {
                        true => mount.volume.clone(),
                        false => format!("{}:{}", mount.volume, flags.join(",")),
                    };
                    added.push(text);
                    own.push(Mounted { read_only, ..mount });
                }
            }
            self.volumes_of.insert(service.clone(), own);
            let name = self.names[&service].clone();
            if let Some(Value::Map(def)) = services
                .entries
                .iter_mut()
                .find(|e| e.key == name)
                .map(|e| &mut e.value)
            {
                for text in added {
                    push_before_docker_args(def, "volumes", Scalar::Text(text));
                }
            }
        }
    }

    fn warn_at_service(&mut self, service: &str, at: &super::node::Place, message: String) {
        self.warn_about(Some(service.to_string()), at, "volumes_from", message);
    }
}

/// Appends to the list at `key`; a new list goes before `docker_args`, which
/// reads best last.
fn push_before_docker_args(def: &mut Map, key: &str, item: Scalar) {
    if def.get(key).is_none()
        && let Some(i) = def.entries.iter().position(|e| e.key == "docker_args")
    {
        def.push(key, item);
        let entry = def.entries.pop().expect("pushed");
        def.entries.insert(i, entry);
        return;
    }
    def.push(key, item);
}
