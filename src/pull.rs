//! Pull first: the images an apply will start are fetched before anything on
//! the host is stopped or restarted, all at once, so a service is down only
//! for its own restart, never for a download, and an image that cannot be
//! had fails the apply while the host is still untouched.
//!
//! Also how a moved tag is seen. A service unit names its image by
//! reference (`redis:7`, in `[X-Unitgen] Image=`); its container was created
//! from one image ID. When the reference names another ID on this host now
//! (the tag was pulled since), the unit's text is unchanged but a restart
//! would run another image: plan shows it, apply restarts it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;

use crate::docker;
use crate::plan::Moved;
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

/// A service unit's container and the image it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceImage {
    pub container: String,
    pub image: String,
}

/// The image of each service unit, by unit name, read from `[X-Unitgen]`.
/// Other units (network, sidekicks) run no image of their own.
pub fn service_images(units: &[UnitFile]) -> BTreeMap<String, ServiceImage> {
    units
        .iter()
        .filter_map(|unit| {
            let owner = owner(&unit.text)?;
            let container = format!(
                "{}-{}",
                crate::model::prefix(&owner.app, &owner.instance),
                owner.service?
            );
            let image = owner.image?;
            Some((unit.name.clone(), ServiceImage { container, image }))
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
            let present = at_once(images.iter().cloned(), |i| docker::image_id(i).is_some());
            present
                .into_iter()
                .filter(|(_, present)| !present)
                .map(|(image, _)| image)
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
pub fn describe(unavailable: &[Unavailable]) -> String {
    let mut text = format!(
        "{} could not be had:",
        match unavailable {
            [one] => format!("image {}", one.image),
            _ => count(unavailable.len(), "image"),
        }
    );
    for item in unavailable {
        text.push_str(&format!("\n  {}: {}", item.image, item.why));
    }
    text
}

/// What the host's images say of an instance's unchanged units (see
/// [`moved`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The services whose container runs another image than their
    /// reference names now (the tag moved).
    pub moved: Vec<Moved>,
    /// The images their next start needs that this host does not have any
    /// more: a running service's (its container keeps its image by ID;
    /// `docker rmi` of the tag, a prune, took the reference) and the
    /// backup's `helpers`.
    pub missing: Vec<String>,
}

/// Of these service units, those whose container runs another image than
/// their reference names on this host now (the tag moved), and the images
/// of running services and the `helpers` that this host no longer has.
/// Units without a container are not listed: they are started anyway. One
/// question to Docker for the containers, one for the images.
pub fn moved(units: &BTreeMap<String, ServiceImage>, helpers: &BTreeSet<String>) -> Seen {
    let containers: Vec<String> = units.values().map(|s| s.container.clone()).collect();
    let running = docker::container_image_ids(&containers);
    let images: Vec<String> = (units.values())
        .filter(|s| running.contains_key(&s.container))
        .map(|s| s.image.clone())
        .chain(helpers.iter().cloned())
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    let named_now = docker::image_ids(&images);
    let moved = units
        .iter()
        .filter(|(_, s)| {
            tag_moved(
                running.get(&s.container).map(String::as_str),
                named_now.get(&s.image).map(String::as_str),
            )
        })
        .map(|(unit, s)| Moved {
            unit: unit.clone(),
            image: s.image.clone(),
        })
        .collect();
    // (Told only when the engine listed a running container: one that
    // cannot be asked names no image at all.)
    let missing = (images.into_iter())
        .filter(|image| !running.is_empty() && !named_now.contains_key(image))
        .collect();
    Seen { moved, missing }
}

/// Whether a container created from image `created_from` runs another
/// image than its reference names now (`named_now`): false without a
/// container, or when the reference names no image on this host.
pub fn tag_moved(created_from: Option<&str>, named_now: Option<&str>) -> bool {
    matches!((created_from, named_now), (Some(from), Some(now)) if from != now)
}

/// `work` on every item at once (each is a `docker` call that mostly
/// waits), results in the items' order.
fn at_once<T: Send>(
    items: impl IntoIterator<Item = String>,
    work: impl Fn(&str) -> T + Sync,
) -> Vec<(String, T)> {
    let items: Vec<String> = items.into_iter().collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| scope.spawn(|| work(item)))
            .collect();
        items
            .iter()
            .cloned()
            .zip(
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a docker call panicked")),
            )
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_units_name_their_image_and_container() {
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
                ServiceImage {
                    container: "blog-live-web".into(),
                    image: "ghcr.io/acme/blog:1.4".into()
                }
            )]
        );
    }

    #[test]
    fn unavailable_images_are_each_named_with_dockers_reason() {
        let text = describe(&[Unavailable {
            image: "x:2".into(),
            why: "manifest unknown".into(),
        }]);
        assert_eq!(text, "image x:2 could not be had:\n  x:2: manifest unknown");
    }
}
