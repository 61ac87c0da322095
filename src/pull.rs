//! Pull first: the images an apply will start are fetched before anything on
//! the host is stopped or restarted, all at once, so a service is down only
//! for its own restart, never for a download, and an image that cannot be
//! had fails the apply while the host is still untouched.
//!
//! Also how a moved tag is seen. A service unit names its image by
//! reference (`redis:7`, in `[X-Unitgen] Image=`); its container was created
//! from one image ID. When the reference names another ID on this host now
//! (the tag was pulled since), the unit's text is unchanged but a restart
//! would run another image: plan shows it, apply restarts it (what the
//! host runs is read with the rest of it, in `systemd::observe`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;

use crate::docker;
use crate::progress::{Progress, count};
use crate::render::{UnitFile, owner};

/// When apply fetches an image (compose's `pull_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Only the images this host does not have.
    #[default]
    Missing,
    /// Every image of the instance, so that moved tags are fetched.
    Always,
    /// None: an image this host lacks fails the apply.
    Never,
}

/// The image of each service unit, by unit name, read from `[X-Unitgen]`.
/// Other units (network, sidekicks) run no image of their own.
pub fn service_images(units: &[UnitFile]) -> BTreeMap<String, String> {
    units
        .iter()
        .filter_map(|unit| {
            let owner = owner(&unit.text)?;
            owner.service?;
            Some((unit.name.clone(), owner.image?))
        })
        .collect()
}

/// The images backup units run (`helper_image`), read from `[X-Unitgen]`.
pub fn helper_images(units: &[UnitFile]) -> BTreeSet<String> {
    units
        .iter()
        .filter_map(|unit| owner(&unit.text)?.helper_image)
        .collect()
}

/// An image that could not be had, and Docker's reason.
#[derive(Debug)]
pub struct Unavailable {
    pub image: String,
    pub why: String,
}

/// Makes sure every image is on this host, as `policy` says. Pulls run
/// concurrently; each result is printed as it arrives. `Err` lists every
/// image that could not be had.
pub fn fetch(
    images: &BTreeSet<String>,
    policy: PullPolicy,
    progress: &Progress,
) -> Result<(), Vec<Unavailable>> {
    let wanted: Vec<String> = match policy {
        PullPolicy::Always => images.iter().cloned().collect(),
        PullPolicy::Missing | PullPolicy::Never => {
            // One `docker image inspect` for all (not one process per image
            // at once: an app of many images started that many clients).
            let present = docker::image_ids(&images.iter().cloned().collect::<Vec<_>>());
            (images.iter())
                .filter(|image| !present.contains_key(*image))
                .cloned()
                .collect()
        }
    };
    if wanted.is_empty() {
        return Ok(());
    }
    if policy == PullPolicy::Never {
        return Err(wanted
            .into_iter()
            .map(|image| Unavailable {
                image,
                why: "not on this host, and --pull never forbids fetching it".into(),
            })
            .collect());
    }
    let mut pending = wanted.clone();
    progress.waiting(&format!("pulling {}", pending.join(", ")));
    let mut failed = Vec::new();
    let (send, results) = mpsc::channel();
    std::thread::scope(|scope| {
        for image in &wanted {
            let send = send.clone();
            scope.spawn(move || {
                let _ = send.send((image.clone(), docker::pull(image)));
            });
        }
        drop(send);
        for (image, result) in results {
            pending.retain(|p| p != &image);
            match result {
                Ok(()) => progress.line(&format!("  pull    {image:<40} ok")),
                Err(why) => {
                    progress.line(&format!("  pull    {image:<40} FAILED"));
                    failed.push(Unavailable { image, why });
                }
            }
            if !pending.is_empty() {
                progress.status(&format!("pulling {}", pending.join(", ")));
            }
        }
    });
    progress.finish();
    if failed.is_empty() {
        Ok(())
    } else {
        failed.sort_by(|a, b| a.image.cmp(&b.image));
        Err(failed)
    }
}

/// One message for images that could not be had, naming each and why.
/// Those among `helpers` (backup helper images) say which setting names
/// them: the default one is in no file the user wrote.
pub fn describe(unavailable: &[Unavailable], helpers: &BTreeSet<String>) -> String {
    let mut text = format!(
        "{} could not be had:",
        match unavailable {
            [one] => format!("image {}", one.image),
            _ => count(unavailable.len(), "image"),
        }
    );
    for item in unavailable {
        text.push_str(&format!("\n  {}: {}", item.image, item.why));
        if helpers.contains(&item.image) {
            text.push_str(&format!("\n  {}", helper_hint(&item.image)));
        }
    }
    text
}

/// Where a backup helper image comes from, and how to name another.
pub fn helper_hint(image: &str) -> String {
    format!(
        "({image} is the backups' helper image, which copies volumes: set `helper_image` in the \
         instances file's `backup:` block to an image with sh and tar that this host has or can \
         pull; the default is {})",
        crate::model::backup::DEFAULT_HELPER_IMAGE
    )
}

/// Whether a container created from image `created_from` runs another
/// image than its reference names now (`named_now`): false without a
/// container, or when the reference names no image on this host.
pub fn tag_moved(created_from: Option<&str>, named_now: Option<&str>) -> bool {
    matches!((created_from, named_now), (Some(from), Some(now)) if from != now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_units_name_their_image() {
        let unit = |name: &str, section: &str| UnitFile {
            name: name.into(),
            text: format!("[Service]\nExecStart=x\n\n[X-Unitgen]\n{section}"),
        };
        let images = service_images(&[
            unit(
                "blog-live-web.service",
                "App=blog\nInstance=live\nService=web\nImage=ghcr.io/acme/blog:1.4\n",
            ),
            unit("blog-live-network.service", "App=blog\nInstance=live\n"),
        ]);
        assert_eq!(
            images.into_iter().collect::<Vec<_>>(),
            [(
                "blog-live-web.service".to_string(),
                "ghcr.io/acme/blog:1.4".to_string()
            )]
        );
    }

    #[test]
    fn unavailable_images_are_each_named_with_dockers_reason() {
        let text = describe(
            &[Unavailable {
                image: "x:2".into(),
                why: "manifest unknown".into(),
            }],
            &BTreeSet::new(),
        );
        assert_eq!(text, "image x:2 could not be had:\n  x:2: manifest unknown");
    }
}
