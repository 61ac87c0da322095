//! The few questions unitgen asks Docker directly (images to pull before an
//! apply, containers for `plan` and `status`, `destroy --volumes`), in the
//! Docker environment the units get ([`environment`]). Questions that only
//! read go to the engine's socket where the `docker` CLI would go there
//! itself ([`engine`]), and are read from the engine's JSON either way;
//! the rest, and every question to another engine, through the `docker`
//! CLI the units use too ([`DOCKER`]).

pub mod engine;
pub mod environment;
pub mod run_args;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// Path of the Docker CLI: in every line of a unit (`Exec*=` lines and the
/// shell scripts in them alike) and in every call unitgen makes itself
/// ([`command`]) when it starts one. systemd wants absolute paths in
/// `Exec*=`, and Debian's `docker.io` and Docker's `docker-ce-cli` both
/// install the CLI here. The
/// scripts name it too, rather than take `docker` from systemd's PATH, where
/// another one (a /usr/local/bin/docker of another version) would come
/// first: one client for the `docker run` and the readiness check that
/// judges it.
///
/// unitgen's own calls (pull, exec, restore, and the looks of plan and
/// status at an engine it does not ask over its socket itself: see
/// [`engine`]) use this path too, not the first `docker` on the user's
/// PATH: what unitgen checks must be what systemd runs. A PATH docker (a
/// wrapper, another version, Podman's shim) could see another engine or
/// answer otherwise, and `plan` would call a host up to date on the word of
/// a client its units never run. Not the other way round (units taking the
/// PATH docker unitgen finds): units are rendered for a host, often on
/// another machine (`render --out`, fleet), whose PATH unitgen cannot see.
pub const DOCKER: &str = "/usr/bin/docker";

/// A `docker` command, of the CLI the units run ([`DOCKER`]): once a
/// command has named the host it acts on ([`environment::follow`]), with
/// the `DOCKER_*` variables of that host's units instead of unitgen's own.
pub fn command() -> Command {
    let mut command = Command::new(DOCKER);
    if let Some(units) = environment::followed() {
        units.apply(&mut command);
    }
    command
}

/// A container as `docker inspect` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Container {
    pub id: String,
    pub image: String,
    pub status: String,
    pub started_at: String,
    /// `healthy`, `starting` or `unhealthy`; None without a healthcheck.
    pub health: Option<String>,
    /// The networks it is connected to.
    pub networks: Vec<String>,
    /// When Docker made it (RFC 3339, nanoseconds).
    #[serde(skip)]
    pub created: String,
    /// The settings `docker update` changes, as Docker records them now.
    #[serde(skip)]
    pub limits: Option<run_args::Limits>,
    /// The ID of the image it was created from (see [`IMAGE_ID_FORMAT`]).
    #[serde(skip)]
    pub image_id: String,
    /// Its command (`Config.Cmd`: the words after the image of its `docker
    /// run`, or the image's own); None when Docker did not say.
    #[serde(skip)]
    pub command: Option<Vec<String>>,
}

/// The container of that name, if one exists.
pub fn inspect(name: &str) -> Option<Container> {
    inspect_all(&[name.to_string()]).remove(name)
}

/// The containers of these names that exist, by name (one question to the
/// engine for each, or one `docker inspect` for all: status of an
/// instance stays fast).
pub fn inspect_all(names: &[String]) -> HashMap<String, Container> {
    (containers_json(names).iter())
        .filter_map(|json| Some((container_name(json)?, container_of(json)?)))
        .collect()
}

/// The engine's record of each of these containers that exists (`docker
/// inspect`'s JSON, the Engine API's own), asked over the engine's socket
/// where the CLI would use it ([`engine::local`]), else of the CLI. Values
/// in it are any text (names, labels): read as JSON, never split.
fn containers_json(names: &[String]) -> Vec<serde_json::Value> {
    if names.is_empty() {
        return Vec::new();
    }
    if let Some(engine) = &engine::local() {
        // (A name asked may be another's ID prefix: each is keyed by the
        // name it reports, as the CLI's are.)
        return (names.iter())
            .filter_map(|name| {
                (engine.get(&format!("/containers/{}/json", engine::encoded(name))))
                    .ok()
                    .flatten()
            })
            .collect();
    }
    // It exits 1 when some container is missing, still listing the others;
    // a docker that cannot run lists none.
    let Ok(out) = command()
        .args(["inspect", "--type", "container"])
        .args(names)
        .output()
    else {
        return Vec::new();
    };
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// A container's name in its record, without Docker's leading `/`.
fn container_name(json: &serde_json::Value) -> Option<String> {
    let name = json.get("Name")?.as_str()?;
    Some(name.trim_start_matches('/').to_string())
}

/// The text at `path` in a record (`["State", "Status"]`); empty when it
/// is missing or not text.
fn text_at(json: &serde_json::Value, path: &[&str]) -> String {
    (path.iter())
        .try_fold(json, |json, key| json.get(key))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The keys of the object at `path` (none when missing or null), sorted.
fn keys_at(json: &serde_json::Value, path: &[&str]) -> Vec<String> {
    let object = (path.iter())
        .try_fold(json, |json, key| json.get(key))
        .and_then(serde_json::Value::as_object);
    let mut keys: Vec<String> = object.into_iter().flat_map(|o| o.keys().cloned()).collect();
    keys.sort();
    keys
}

/// A [`Container`] from its record.
fn container_of(json: &serde_json::Value) -> Option<Container> {
    let config = json.get("Config")?;
    Some(Container {
        id: text_at(json, &["Id"]).chars().take(12).collect(),
        image: text_at(config, &["Image"]),
        status: text_at(json, &["State", "Status"]),
        started_at: text_at(json, &["State", "StartedAt"]),
        health: Some(text_at(json, &["State", "Health", "Status"])).filter(|h| !h.is_empty()),
        networks: keys_at(json, &["NetworkSettings", "Networks"]),
        created: text_at(json, &["Created"]),
        image_id: image_id_of(json),
        limits: json
            .get("HostConfig")
            .and_then(run_args::Limits::from_host_config),
        command: (config.get("Cmd").cloned()).and_then(|cmd| serde_json::from_value(cmd).ok()),
    })
}

/// A container's published TCP ports, as `docker port` lists them:
/// container port, then host address (`0.0.0.0`, `::` or one address) and
/// host port; none when it does not exist or publishes none.
pub fn published_ports(container: &str) -> Vec<(u16, String, u16)> {
    let records = containers_json(&[container.to_string()]);
    let ports = (records.first())
        .and_then(|json| {
            json.get("NetworkSettings")?
                .get("Ports")?
                .as_object()
                .cloned()
        })
        .unwrap_or_default();
    let mut published = Vec::new();
    for (key, bindings) in &ports {
        let Some(port) = key.strip_suffix("/tcp").and_then(|p| p.parse().ok()) else {
            continue;
        };
        for binding in bindings.as_array().into_iter().flatten() {
            if let Ok(host_port) = text_at(binding, &["HostPort"]).parse() {
                published.push((port, text_at(binding, &["HostIp"]), host_port));
            }
        }
    }
    published
}

/// The ID of the image a container was created from. A container run
/// from the image an exec-form healthcheck is built into (see
/// `render::docker::health_image`) gives the ID of the service's own image,
/// which that image records in a label.
fn image_id_of(container: &serde_json::Value) -> String {
    let base = text_at(container, &["Config", "Labels", "unitgen.base-image"]);
    if base.is_empty() {
        text_at(container, &["Image"])
    } else {
        base
    }
}

/// Removes named volumes; a volume that does not exist is not an error.
/// Returns the ones that could not be removed, with Docker's reason.
pub fn remove_volumes(names: &[String]) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for name in names {
        match command().args(["volume", "rm", name]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let why = crate::diagnostic::quoted_output(&String::from_utf8_lossy(&out.stderr));
                if !why.contains("no such volume") {
                    failed.push((name.clone(), why));
                }
            }
            Err(e) => failed.push((name.clone(), format!("running {DOCKER}: {e}"))),
        }
    }
    failed
}

/// The ID of the image a reference names on this host; None when the
/// host does not have it.
pub fn image_id(image: &str) -> Option<String> {
    image_ids(&[image.to_string()]).remove(image)
}

/// Fetches an image from its registry. `Err` is Docker's own message.
pub fn pull(image: &str) -> Result<(), String> {
    match command().args(["pull", "--quiet", image]).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(crate::diagnostic::quoted_output(&String::from_utf8_lossy(
            &out.stderr,
        ))),
        Err(e) => Err(format!("running {DOCKER}: {e}")),
    }
}

/// The ID of the image each existing container (by name) was created
/// from (see [`image_id_of`]); containers that do not exist are left out.
pub fn container_image_ids(names: &[String]) -> HashMap<String, String> {
    (containers_json(names).iter())
        .filter_map(|json| Some((container_name(json)?, image_id_of(json))))
        .collect()
}

/// The ID of the image each reference names on this host, by reference;
/// references the host has no image for are left out.
pub fn image_ids(references: &[String]) -> HashMap<String, String> {
    (images_json(references).into_iter())
        .map(|(reference, json)| (reference, text_at(&json, &["Id"])))
        .filter(|(_, id)| !id.is_empty())
        .collect()
}

/// The paths each image (by reference) declares as volumes (`VOLUME` in its
/// Dockerfile: redis's `/data`); references the host has no image for are
/// left out.
pub fn image_volumes(references: &[String]) -> HashMap<String, Vec<String>> {
    (images_json(references).into_iter())
        .map(|(reference, json)| (reference, keys_at(&json, &["Config", "Volumes"])))
        .collect()
}

/// The engine's record of the image each reference names (`docker image
/// inspect`'s JSON), by reference; references the host has no image for
/// are left out. Over the engine's socket where the CLI would use it, else
/// in one `docker image inspect`: Docker answers in the order asked, and
/// skips a missing one, so then each is asked on its own.
fn images_json(references: &[String]) -> HashMap<String, serde_json::Value> {
    if references.is_empty() {
        return HashMap::new();
    }
    let engine = engine::local();
    let one = |reference: &String| -> Option<serde_json::Value> {
        match &engine {
            Some(engine) => (engine
                .get(&format!("/images/{}/json", engine::path_encoded(reference))))
            .ok()
            .flatten(),
            None => {
                let out = command()
                    .args(["image", "inspect", reference])
                    .output()
                    .ok()?;
                let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
                listed.into_iter().next()
            }
        }
    };
    if engine.is_some() {
        return (references.iter())
            .filter_map(|reference| Some((reference.clone(), one(reference)?)))
            .collect();
    }
    let out = command()
        .args(["image", "inspect"])
        .args(references)
        .output();
    if let Ok(out) = &out
        && out.status.success()
        && let Ok(listed) = serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
        && listed.len() == references.len()
    {
        return references.iter().cloned().zip(listed).collect();
    }
    std::thread::scope(|scope| {
        let asked: Vec<_> = (references.iter())
            .map(|reference| scope.spawn(move || (reference.clone(), one(reference))))
            .collect();
        (asked.into_iter())
            .filter_map(|asked| {
                let (reference, json) = asked.join().expect("docker image inspect does not panic");
                Some((reference, json?))
            })
            .collect()
    })
}

/// A running container, as `docker ps` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// `docker pause` froze it: it runs no code, but `docker ps` lists it.
    pub paused: bool,
    /// The networks it is connected to (`docker network disconnect` takes
    /// one away while it runs).
    pub networks: Vec<String>,
}

/// An instance's containers that Docker runs (found by the labels its
/// units give them), by name, in one call.
pub fn running_containers(app: &str, instance: &str) -> Result<HashMap<String, Running>, String> {
    let app_label = format!("unitgen.app={app}");
    let instance_label = format!("unitgen.instance={instance}");
    if let Some(engine) = &engine::local() {
        let filters = engine::filters(&[("label", &app_label), ("label", &instance_label)]);
        let listed = engine.get(&format!("/containers/json?filters={filters}"))?;
        let listed = listed.as_ref().and_then(serde_json::Value::as_array);
        return Ok((listed.into_iter().flatten())
            .filter_map(|json| {
                // Its name, not the `/other/alias` of a link to it.
                let names = json.get("Names")?.as_array()?;
                let name = (names.iter().filter_map(serde_json::Value::as_str))
                    .map(|name| name.trim_start_matches('/'))
                    .find(|name| !name.contains('/'))?;
                let paused = text_at(json, &["State"]) == "paused";
                let networks = keys_at(json, &["NetworkSettings", "Networks"]);
                Some((name.to_owned(), Running { paused, networks }))
            })
            .collect());
    }
    let listed = run(
        "docker ps",
        &[
            "ps",
            "--filter",
            &format!("label={app_label}"),
            "--filter",
            &format!("label={instance_label}"),
            "--format",
            // (Network names are any text: a line feed in one would list
            // a container of its own.)
            "{{.Names}}\t{{.State}}\t{{json .Networks}}",
        ],
    )?;
    Ok(listed
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?.to_owned();
            let paused = fields.next()? == "paused";
            let networks = json_strings(fields.next().unwrap_or_default());
            let networks = (networks.first().map_or("", String::as_str).split(','))
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            Some((name, Running { paused, networks }))
        })
        .collect())
}

/// The JSON strings of `text`, written one after the other (Go's `json`
/// template function escapes every control character, so none holds a tab
/// or a line feed); those before anything else.
fn json_strings(text: &str) -> Vec<String> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<String>()
        .map_while(Result::ok)
        .collect()
}

/// The engine's records of its volumes (`GET /volumes`), over its socket.
fn volumes_json(engine: &engine::Engine) -> Result<Vec<serde_json::Value>, String> {
    let listed = engine.get("/volumes")?;
    Ok((listed.as_ref())
        .and_then(|json| json.get("Volumes")?.as_array().cloned())
        .unwrap_or_default())
}

/// The names of Docker's volumes, in one call.
pub fn volumes() -> Result<Vec<String>, String> {
    if let Some(engine) = &engine::local() {
        return Ok((volumes_json(engine)?.iter())
            .map(|json| text_at(json, &["Name"]))
            .collect());
    }
    let listed = run(
        "docker volume ls",
        &["volume", "ls", "--format", "{{.Name}}"],
    )?;
    Ok(listed.lines().map(str::to_owned).collect())
}

/// Of the volumes `names`, those that exist, each with when it was made
/// (microseconds since the epoch; None when Docker's time cannot be read),
/// in one call.
pub fn volumes_made(names: &[String]) -> Result<HashMap<String, Option<u64>>, String> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    if let Some(engine) = &engine::local() {
        // One list of all, rather than one question per volume.
        return Ok((volumes_json(engine)?.iter())
            .map(|json| (text_at(json, &["Name"]), text_at(json, &["CreatedAt"])))
            .filter(|(name, _)| names.contains(name))
            .map(|(name, made)| (name, crate::cli::when::parse_iso_micros(&made)))
            .collect());
    }
    let out = command()
        .args(["volume", "inspect", "--format", "{{.Name}}\t{{.CreatedAt}}"])
        .args(names)
        .output()
        .map_err(|e| format!("running docker volume inspect: {e}"))?;
    // It lists those that exist, and fails on the others.
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && !(stderr.lines()).all(|l| l.contains("No such volume")) {
        return Err(format!(
            "docker volume inspect failed: {}",
            crate::diagnostic::quoted_output(&stderr)
        ));
    }
    Ok((String::from_utf8_lossy(&out.stdout).lines())
        .filter_map(|line| line.split_once('\t'))
        .map(|(name, made)| (name.to_string(), crate::cli::when::parse_iso_micros(made)))
        .collect())
}

/// How the instance's network `name` differs from what its network unit
/// makes (`docker network create` with the instance's labels, Docker's
/// bridge driver, not internal, no IPv6, no options; the subnet is
/// Docker's to pick), in two calls: None when there is no network of the
/// name, else one phrase per difference (none: as made).
/// A network made again by hand under the name (`docker network rm`, then
/// `docker network create --internal`) lacks the labels; the unit's start
/// keeps any network of its name, so only a restart of it, which removes
/// the network once its services stopped, makes it again as it should be.
pub fn network_differences(
    name: &str,
    app: &str,
    instance: &str,
) -> Result<Option<Vec<String>>, String> {
    let listed = networks_json(name)?;
    let seen: Vec<Vec<String>> = (listed.iter())
        .filter(|json| text_at(json, &["Name"]) == name)
        .map(|json| {
            let label = |key: &str| text_at(json, &["Labels", key]);
            let flag = |key: &str| json.get(key).and_then(serde_json::Value::as_bool) == Some(true);
            let mut differences = Vec::new();
            if (
                label("unitgen.app").as_str(),
                label("unitgen.instance").as_str(),
            ) != (app, instance)
            {
                differences.push("it has not the instance's labels".to_string());
            }
            let driver = text_at(json, &["Driver"]);
            if driver != "bridge" {
                differences.push(format!("driver {driver}, not bridge"));
            }
            if flag("Internal") {
                differences.push("internal (no way out, no published port)".to_string());
            }
            if flag("EnableIPv6") {
                differences.push("IPv6 enabled, which the unit does not ask for".to_string());
            }
            let set = network_options(json);
            if !set.is_empty() {
                differences.push(format!(
                    "option{} {}, which the unit does not set",
                    if set.len() == 1 { "" } else { "s" },
                    set.join(", ")
                ));
            }
            differences
        })
        .collect();
    // (Two of the name: the unit's next start keeps one, and says so.)
    Ok((!seen.is_empty()).then(|| {
        (seen.iter().find(|d| d.is_empty()))
            .unwrap_or(&seen[0])
            .clone()
    }))
}

/// The engine's records of the networks whose name matches `^name$` (a
/// pattern: the caller keeps those of exactly the name): one list over
/// the engine's socket, else `docker network ls` and `docker network
/// inspect` (the list's own lines carry no options).
fn networks_json(name: &str) -> Result<Vec<serde_json::Value>, String> {
    let pattern = format!("^{name}$");
    if let Some(engine) = &engine::local() {
        let filters = engine::filters(&[("name", &pattern)]);
        let listed = engine.get(&format!("/networks?filters={filters}"))?;
        return Ok((listed.as_ref())
            .and_then(|json| json.as_array().cloned())
            .unwrap_or_default());
    }
    let ids = run(
        "docker network ls",
        &[
            "network",
            "ls",
            "--quiet",
            "--no-trunc",
            "--filter",
            &format!("name={pattern}"),
        ],
    )?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["network", "inspect"];
    args.extend(ids);
    // (One removed since it was listed: nothing to tell of it.)
    let Ok(inspected) = run("docker network inspect", &args) else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&inspected)
        .map_err(|e| format!("docker network inspect gave what is not JSON: {e}"))
}

/// The driver and IPAM options a network was made with, `key=value` (an
/// IPAM driver other than the default as `ipam driver=NAME`), which the
/// network unit sets none of (`--opt com.docker.network.bridge.enable_icc=false`:
/// its containers cannot reach each other).
fn network_options(json: &serde_json::Value) -> Vec<String> {
    let map = |path: &[&str]| -> Vec<String> {
        (keys_at(json, path).into_iter())
            .map(|key| {
                let mut at = path.to_vec();
                at.push(&key);
                let value = text_at(json, &at);
                format!("{key}={value}")
            })
            .collect()
    };
    // (Newer Dockers may record their defaults for IP versions.)
    let defaults = [
        "com.docker.network.enable_ipv4=true",
        "com.docker.network.enable_ipv6=false",
    ];
    let mut set = map(&["Options"]);
    set.retain(|option| !defaults.contains(&option.as_str()));
    let ipam_driver = text_at(json, &["IPAM", "Driver"]);
    if !matches!(ipam_driver.as_str(), "default" | "") {
        set.push(format!("ipam driver={ipam_driver}"));
    }
    set.extend(map(&["IPAM", "Options"]));
    set
}

/// Those of `names` that are volumes on this host; all of them when
/// Docker cannot be asked (a listing must not hide data that may be there).
pub fn existing_volumes(names: &[String]) -> Vec<String> {
    match volumes() {
        Ok(listed) => (names.iter())
            .filter(|name| listed.contains(name))
            .cloned()
            .collect(),
        Err(_) => names.to_vec(),
    }
}

/// Removes containers by force (running or not); one that is already
/// gone is not an error.
fn remove_containers(names: &[String]) -> Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    let mut args = vec!["rm", "--force"];
    args.extend(names.iter().map(String::as_str));
    match run("docker rm", &args) {
        Err(e) if !e.contains("No such container") => Err(e),
        _ => Ok(()),
    }
}

/// How long Docker may take to remove a container whose name is needed
/// (a `--rm` one's removal runs after its `docker run` has returned, on a
/// busy host).
pub const NAME_RELEASE: Duration = Duration::from_secs(30);

/// Frees container names for a `docker run --name`: removes the
/// containers holding them and waits until Docker has. `docker rm` returns
/// at once for a `--rm` container whose removal is already under way
/// ("removal … is already in progress"), and a removal that failed leaves
/// a `dead` container: either still holds the name, and the next `docker
/// run` of it fails ("Conflict. The container name … is already in use").
pub fn free_names(names: &[String], within: Duration) -> Result<(), String> {
    let started = Instant::now();
    let mut last_removal = None;
    loop {
        let held: Vec<(String, String)> = (containers_json(names).iter())
            .filter_map(|json| Some((container_name(json)?, text_at(json, &["State", "Status"]))))
            .collect();
        if held.is_empty() {
            return Ok(());
        }
        let holders: Vec<String> = held.iter().map(|(name, _)| name.clone()).collect();
        // Again each second: a removal that failed can succeed when asked again.
        if last_removal.is_none_or(|at: Instant| at.elapsed() >= Duration::from_secs(1)) {
            last_removal = Some(Instant::now());
            if let Err(e) = remove_containers(&holders)
                && !e.contains("already in progress")
            {
                return Err(e);
            }
        }
        if started.elapsed() >= within {
            let described: Vec<String> = (held.iter())
                .map(|(name, status)| format!("{name} ({status})"))
                .collect();
            return Err(format!(
                "Docker did not remove {} within {}s, and their names are needed",
                described.join(", "),
                within.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a process in `container` has `word` in its command line (`docker
/// top`); false when Docker cannot say.
pub fn runs_process_with(container: &str, word: &str) -> bool {
    if let Some(engine) = &engine::local() {
        let top = engine.get(&format!("/containers/{}/top", engine::encoded(container)));
        let processes = (top.ok().flatten()).and_then(|top| top.get("Processes").cloned());
        return (processes
            .iter()
            .filter_map(serde_json::Value::as_array)
            .flatten())
        .filter_map(serde_json::Value::as_array)
        .flatten()
        .any(|field| field.as_str().is_some_and(|text| text.contains(word)));
    }
    command()
        .args(["top", container])
        .output()
        .is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(word)
        })
}

/// Removes images by reference, in one call; one that does not exist is
/// not an error. (An image that other tags name too only loses this one.)
pub fn remove_images(references: &[String]) -> Result<(), String> {
    if references.is_empty() {
        return Ok(());
    }
    let mut args = vec!["image", "rm"];
    args.extend(references.iter().map(String::as_str));
    match run("docker image rm", &args) {
        Err(e) if (e.lines()).any(|l| !l.is_empty() && !l.contains("No such image")) => Err(e),
        _ => Ok(()),
    }
}

/// Resumes a container `docker pause` froze.
pub fn unpause(container: &str) -> Result<(), String> {
    run(
        &format!("docker unpause {container}"),
        &["unpause", container],
    )
    .map(drop)
}

/// Why the engine the units use does not answer, if it does not: the
/// docker CLI's own words, which name the address it tried ("Cannot
/// connect to the Docker daemon at unix:///var/run/docker.sock. Is the
/// docker daemon running?").
pub fn engine_unreachable() -> Option<String> {
    if let Some(engine) = &engine::local() {
        return engine.ping().err();
    }
    let out = command()
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match out {
        Err(e) => Some(format!("running {DOCKER}: {e}")),
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(crate::diagnostic::shown(
            String::from_utf8_lossy(&out.stderr).trim(),
        )),
    }
}

/// The docker CLI's standard output, or why it failed: `what` (the
/// command, as messages name it) and Docker's own message.
fn run(what: &str, args: &[&str]) -> Result<String, String> {
    let out = command()
        .args(args)
        .output()
        .map_err(|e| format!("running {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            crate::diagnostic::quoted_output(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Docker refuses to start a container with more `--cpus` than the host
/// has ("Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs
/// available"), as docker-compose's `up` then fails: the template is
/// wrong for this host, so `plan` and `apply` refuse it before anything
/// changes, where it is written. Counted as the CPUs online: Docker counts
/// those its daemon may run on, never more, so this refuses only what
/// Docker would. Nothing is refused when the host does not say.
pub fn check_cpus_on_this_host(instance: &crate::model::Instance) -> crate::diagnostic::Problems {
    let mut problems = crate::diagnostic::Problems::default();
    let Some(online) = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| count_cpu_list(&list))
    else {
        return problems;
    };
    for service in &instance.services {
        let (Some(cpus), Some(at)) = (&service.cpus, &service.cpus_at) else {
            continue;
        };
        if cpus.parse::<f64>().is_ok_and(|n| n > f64::from(online)) {
            problems.push(
                crate::diagnostic::Problem::new(format!(
                    "service `{}` asks for {cpus} CPUs, and this host has {online}: Docker would refuse to start it",
                    service.name
                ))
                .at(at)
                .label("cpus")
                .help(format!("give it at most {online} here, or run the instance on a host with more CPUs")),
            );
        }
    }
    problems
}

/// The number of CPUs in a kernel CPU list (`0-3,6,8-9`).
fn count_cpu_list(list: &str) -> Option<u32> {
    let mut count = 0;
    for part in list.trim().split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last): (u32, u32) = (first.parse().ok()?, last.parse().ok()?);
        count += last.checked_sub(first)? + 1;
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    /// Found in hostile values round 9: network names and labels are any
    /// text (`docker network create $'a,b\tc'`), and were read as they
    /// were between tabs: a tab shifted the fields after it, a comma split
    /// a name in two, and a line feed (in a label of a container made by
    /// hand) started a line that `docker inspect` seemed to give for
    /// another container. Records are now read as the engine's JSON.
    #[test]
    fn names_and_labels_docker_reads_back_are_one_field_each() {
        let record = serde_json::json!({
            "Id": "abcdef0123456789",
            "Name": "/shop-live-web",
            "Created": "2026-01-01T00:00:00Z",
            "Image": "sha256:0",
            "State": {"Status": "running", "StartedAt": "2026-01-01T00:00:01Z"},
            "Config": {
                "Image": "busybox:1",
                "Cmd": ["sleep", "1"],
                "Labels": {"unitgen.base-image": "sha256:1\nshop-live-db\tsha256:0"},
            },
            "HostConfig": {"Memory": 0, "RestartPolicy": {"Name": "no"}},
            "NetworkSettings": {"Networks": {"shop-live": {}, "a,b\tc\nshop-live-db\tx": {}}},
        });
        assert_eq!(super::container_name(&record).unwrap(), "shop-live-web");
        let container = super::container_of(&record).unwrap();
        assert_eq!(container.id, "abcdef012345");
        assert_eq!(container.health, None);
        assert_eq!(container.networks, ["a,b\tc\nshop-live-db\tx", "shop-live"]);
        assert_eq!(container.image_id, "sha256:1\nshop-live-db\tsha256:0");
        assert!(container.limits.is_some());
        assert_eq!(container.command.unwrap(), ["sleep", "1"]);
        assert_eq!(super::json_strings("\"sha256:2\""), ["sha256:2"]);
        assert_eq!(super::json_strings(""), [""; 0]);
    }

    #[test]
    fn a_network_made_otherwise_tells_its_options() {
        let record = serde_json::json!({
            "Options": {"com.docker.network.enable_ipv4": "true", "com.docker.network.bridge.enable_icc": "false"},
            "IPAM": {"Driver": "other", "Options": null},
        });
        assert_eq!(
            super::network_options(&record),
            [
                "com.docker.network.bridge.enable_icc=false",
                "ipam driver=other"
            ]
        );
    }

    #[test]
    fn a_cpu_list_is_counted_as_the_kernel_writes_it() {
        assert_eq!(super::count_cpu_list("0-1\n"), Some(2));
        assert_eq!(super::count_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(super::count_cpu_list("0"), Some(1));
        assert_eq!(super::count_cpu_list(""), None);
        assert_eq!(super::count_cpu_list("3-1"), None);
    }
}
