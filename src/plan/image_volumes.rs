//! Volumes an image declares (`VOLUME /data` in its Dockerfile: redis's
//! `/data`, postgres's `/var/lib/postgresql/data`) that the template does not
//! mount. Docker gives every container such a path as a new anonymous
//! volume, and the unit's `docker run --rm` deletes it when the container
//! ends: what the service wrote there is gone after each restart, reboot or
//! changed apply. compose keeps it (a restart keeps the container; a
//! recreation hands the old container's anonymous volumes to the new one)
//! until `down`. plan and apply say so, with the line that keeps it.
//!
//! Why a warning and not a volume unitgen adds by itself: which paths an
//! image declares is known only to the host that has the image, and may
//! change with a tag. Units named after them would make `render` depend on
//! the host (a unit reviewed in a pull request, rendered for fleet, or
//! planned before the pull would differ from the one applied), and a new
//! image could change a unit no template change touched. A volume written
//! in the template instead is seen in review, backed up, documented, and
//! removed with `destroy --volumes`, as the instance's other volumes are.

use std::collections::HashMap;

use crate::model::{Instance, Service};

/// A path an image declares as a volume that a service's container gets
/// anonymous, with the volume that would keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unkept {
    pub service: String,
    pub image: String,
    pub path: String,
    /// A volume name of the instance's for it, after the service and the
    /// path (`cache-data`), as `import` names an anonymous volume.
    pub volume: String,
}

impl Unkept {
    /// What a user reads, in one line.
    pub fn warning(&self) -> String {
        let Unkept {
            service,
            image,
            path,
            volume,
        } = self;
        format!(
            "{service}: image {image} declares VOLUME {path}, which the template does not mount: \
             each container gets a new anonymous volume there, which the unit's `docker run --rm` \
             deletes when it stops, so what {service} writes to {path} is lost at every restart \
             (compose keeps it until `down`); to keep it, add `- {volume}:{path}` to {service}'s \
             volumes (a volume of the instance's, kept until `destroy --volumes`), or `- {path}` \
             if it is scratch space"
        )
    }
}

/// Of the paths each image declares (`declared`, by reference), those a
/// service of `instance` gets as an anonymous volume.
pub fn unkept(instance: &Instance, declared: &HashMap<String, Vec<String>>) -> Vec<Unkept> {
    let mut found = Vec::new();
    for service in &instance.services {
        // A oneshot's container is done when its job is: nothing it wrote
        // is read by a later run, under compose either.
        if service.oneshot {
            continue;
        }
        let (Some(paths), Some(mounted)) = (declared.get(&service.image), mounted(service)) else {
            continue;
        };
        for path in paths {
            let path = clean(path);
            if !mounted.contains(&path) {
                found.push(Unkept {
                    service: service.name.clone(),
                    image: service.image.clone(),
                    volume: volume_name(&service.name, &path),
                    path,
                });
            }
        }
    }
    found
}

/// The container paths a service mounts something at (cleaned, as Docker
/// compares them); None when its `docker_args` take another container's
/// mounts, which only that container knows.
fn mounted(service: &Service) -> Option<Vec<String>> {
    let from_args = crate::compile::docker_args::mount_targets(&service.docker_args)?;
    Some(
        (service.volumes.iter().map(|v| v.target.as_str()))
            .chain(
                service
                    .tmpfs
                    .iter()
                    .map(|t| t.split(':').next().unwrap_or(t)),
            )
            .chain(from_args.iter().map(String::as_str))
            .map(clean)
            .collect(),
    )
}

/// A container path as Docker compares mount points (Go's `filepath.Clean`):
/// no empty, `.` or trailing parts, `..` taken back.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `cache` and `/data` → `cache-data`: a character a volume name cannot
/// hold becomes `-`.
fn volume_name(service: &str, path: &str) -> String {
    let path: String = (path.chars())
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                true => c,
                false => '-',
            },
        )
        .collect();
    match path.as_str() {
        "-" => format!("{service}-root"),
        path => format!("{service}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(text: &str) -> Instance {
        let app = crate::template::parse(std::path::Path::new("unitgen.yaml"), text.into());
        let template = crate::template::Template {
            app: app.unwrap(),
            deployments: None,
        };
        crate::compile::compile(&template, "live", &Default::default()).unwrap()
    }

    #[test]
    fn declared_paths_no_mount_covers_are_found_with_the_volume_that_keeps_them() {
        let instance = instance(
            "app: shop\n\
             services:\n  \
               cache: redis:7\n  \
               db:\n    image: postgres:16\n    volumes: [pgdata:/var/lib/postgresql/data/]\n  \
               scratch:\n    image: redis:7\n    volumes: [/data]\n  \
               tmp:\n    image: redis:7\n    tmpfs: ['/data:size=1m']\n  \
               args:\n    image: redis:7\n    docker_args: [--mount, 'type=volume,dst=/data']\n  \
               shared:\n    image: redis:7\n    docker_args: ['--volumes-from=other']\n  \
               migrate:\n    image: redis:7\n    oneshot: true\n\
             instances:\n  live: {}\n",
        );
        let declared = HashMap::from([
            ("redis:7".to_string(), vec!["/data".to_string()]),
            (
                "postgres:16".to_string(),
                vec![
                    "/var/lib/postgresql/data".to_string(),
                    "/run/x/../y/".to_string(),
                ],
            ),
        ]);
        let found = unkept(&instance, &declared);
        let said: Vec<(&str, &str, &str)> = (found.iter())
            .map(|u| (u.service.as_str(), u.path.as_str(), u.volume.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                ("cache", "/data", "cache-data"),
                ("db", "/run/y", "db-run-y")
            ]
        );
        let warning = found[0].warning();
        for needed in [
            "cache: image redis:7 declares VOLUME /data",
            "- cache-data:/data",
        ] {
            assert!(warning.contains(needed), "{warning}");
        }
    }
}
