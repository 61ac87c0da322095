//! The few questions unitgen asks Docker directly (for `status` and
//! `destroy --volumes`), through the `docker` CLI the units use too.

use std::process::Command;

/// A container as `docker inspect` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Container {
    pub id: String,
    pub image: String,
    pub status: String,
    pub started_at: String,
}

/// The container of that name, if one exists.
pub fn inspect(name: &str) -> Option<Container> {
    let out = Command::new("docker")
        .args([
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.Id}}\t{{.Config.Image}}\t{{.State.Status}}\t{{.State.StartedAt}}",
            name,
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.trim_end().split('\t');
    Some(Container {
        id: fields.next()?.chars().take(12).collect(),
        image: fields.next()?.to_string(),
        status: fields.next()?.to_string(),
        started_at: fields.next()?.to_string(),
    })
}

/// Removes named volumes; a volume that does not exist is not an error.
/// Returns the ones that could not be removed, with Docker's reason.
pub fn remove_volumes(names: &[String]) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for name in names {
        match Command::new("docker").args(["volume", "rm", name]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if !why.contains("no such volume") {
                    failed.push((name.clone(), why));
                }
            }
            Err(e) => failed.push((name.clone(), format!("running docker: {e}"))),
        }
    }
    failed
}
