//! One end-to-end test's world: a sandboxed systemd, a folder with the
//! app's template, `unitgen` run against that sandbox, and cleanup of the
//! containers, networks and volumes the app creates on the host's engine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::docker::{self, container_id, docker};
use super::net::http_get;
use super::sandbox::Sandbox;
use super::{tempdir, wait_for};

pub struct World {
    pub sandbox: Sandbox,
    dir: tempfile::TempDir,
    app: String,
    /// Other apps this world deploys (and cleans up after).
    others: Vec<String>,
    /// The name of this world's router container, once it has its own.
    router: Option<String>,
}

impl World {
    /// A fresh sandbox for app `app`, whose containers, networks and volumes
    /// (all named `<app>-…`) this world owns.
    pub fn new(app: &str) -> World {
        Self::in_sandbox(app, Sandbox::boot())
    }

    /// [`World::new`] on a machine with its own machine ID
    /// ([`Sandbox::boot_as_machine`]).
    pub fn on_machine(app: &str, machine_id: &str) -> World {
        Self::in_sandbox(app, Sandbox::boot_as_machine(machine_id))
    }

    fn in_sandbox(app: &str, mut sandbox: Sandbox) -> World {
        sandbox.own_containers(&format!("{app}-"));
        remove_leftovers(app);
        World {
            sandbox,
            dir: tempdir("world-"),
            app: app.to_string(),
            others: Vec::new(),
            router: None,
        }
    }

    /// Another app in the same sandbox, whose containers, networks and
    /// volumes this world owns too.
    pub fn also_own(&mut self, app: &str) {
        self.sandbox.own_containers(&format!("{app}-"));
        remove_leftovers(app);
        self.others.push(app.to_string());
    }

    /// Gives this world's host router a container name of its own,
    /// `<app>.router` (unitgen's `UNITGEN_TEST_ROUTER_CONTAINER`, set for
    /// every command this world runs), and owns it as the sandbox's
    /// ([`Sandbox::own_containers`]): routed tests then run beside each
    /// other, where the one `unitgen-router` of every host made them take
    /// turns. (Not `<app>-…`: the app's containers are listed by that.)
    pub fn own_router(&mut self) -> String {
        let name = format!("{}.router", self.app);
        self.sandbox.own_containers(&name);
        self.router = Some(name.clone());
        name
    }

    /// The app this world was made for.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The name of this world's router container ([`World::own_router`]).
    pub fn router(&self) -> &str {
        self.router.as_deref().expect("World::own_router first")
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("unitgen.yaml")
    }

    pub fn write(&self, yaml: &str) {
        std::fs::write(self.file(), yaml).unwrap();
    }

    /// The folder the template is in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `unitgen ARGS --file FILE --root SANDBOX`, echoed for failure messages.
    pub fn unitgen(&self, args: &[&str]) -> Output {
        self.run(self.dir(), &self.file(), args, &[])
    }

    /// [`World::unitgen`]'s exit code and all it printed (stdout, then
    /// stderr), for a check of what a user reads.
    pub fn unitgen_said(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.unitgen(args);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), said)
    }

    /// [`World::unitgen`] with more environment variables.
    pub fn unitgen_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.run(self.dir(), &self.file(), args, env)
    }

    /// `unitgen ARGS -f FILE --root SANDBOX` run from folder `cwd`, with
    /// FILE as given (relative to `cwd` or absolute).
    pub fn unitgen_in(&self, cwd: &Path, file: &Path, args: &[&str]) -> Output {
        self.run(cwd, file, args, &[])
    }

    /// `unitgen ls --root SANDBOX` (`ls` takes no template).
    pub fn ls(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .arg("ls")
            .arg("--root")
            .arg(self.sandbox.root())
            .env("NO_COLOR", "1")
            .envs(
                self.router
                    .iter()
                    .map(|r| ("UNITGEN_TEST_ROUTER_CONTAINER", r)),
            )
            .output()
            .unwrap()
    }

    /// `unitgen ARGS --file FILE --root SANDBOX` started, not waited for
    /// (its output discarded): for tests that kill it.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(self.dir(), &self.file(), args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `unitgen ARGS --file FILE --root SANDBOX` started, not waited for,
    /// its output kept for `wait_with_output`.
    pub fn spawn_kept(&self, args: &[&str]) -> Child {
        self.command(self.dir(), &self.file(), args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn command(&self, cwd: &Path, file: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_unitgen"));
        command
            .current_dir(cwd)
            .args(args)
            // The long form: `logs` takes -f for --follow.
            .arg("--file")
            .arg(file)
            .arg("--root")
            .arg(self.sandbox.root())
            .env("NO_COLOR", "1");
        if let Some(router) = &self.router {
            command.env("UNITGEN_TEST_ROUTER_CONTAINER", router);
        }
        command
    }

    fn run(&self, cwd: &Path, file: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let started = super::clock();
        let out = self
            .command(cwd, file, args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        eprintln!(
            "$ unitgen {}    [{started} to {}]\n{}{}",
            args.join(" "),
            super::clock(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn apply(&self, instance: &str) -> Output {
        self.unitgen(&["apply", instance, "--settle", "2"])
    }

    pub fn apply_ok(&self, instance: &str) {
        let out = self.apply(instance);
        assert!(
            out.status.success(),
            "apply {instance} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn container(&self, instance: &str, service: &str) -> String {
        format!("{}-{instance}-{service}", self.app)
    }

    pub fn id(&self, instance: &str, service: &str) -> String {
        container_id(&self.container(instance, service))
            .unwrap_or_else(|| panic!("no container for {service}"))
    }

    pub fn active(&self, unit: &str) -> String {
        let out = self.sandbox.systemctl(["is-active", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs `sh -c script` inside a service's container.
    pub fn exec(&self, instance: &str, service: &str, script: &str) -> String {
        let out = docker([
            "exec",
            &self.container(instance, service),
            "sh",
            "-c",
            script,
        ]);
        assert!(
            out.status.success(),
            "exec in {service}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `sh -c script` inside a service's container until it prints
    /// `wanted`, for at most a minute: for what a container does after its
    /// start (its server listening, a file its command writes), which the
    /// command that started it does not wait for and a loaded machine may
    /// not have done yet. Panics with the last answer and the unit's
    /// journal.
    pub fn exec_until(&self, instance: &str, service: &str, script: &str, wanted: &str) {
        let container = self.container(instance, service);
        let mut last = String::new();
        let got = wait_for(Duration::from_secs(60), || {
            let out = docker(["exec", &container, "sh", "-c", script]);
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success() && out.stdout == wanted.as_bytes()).then_some(())
        });
        assert!(
            got.is_some(),
            "`{script}` in {service} never printed {wanted:?}; last: {last:?}; its journal:\n{}",
            self.sandbox.journal(&format!("{container}.service"))
        );
    }

    pub fn unit_file(&self, name: &str) -> PathBuf {
        self.sandbox.unit_dir().join(name)
    }
}

/// The networks (by id) or volumes (by name) (`kind`) of `app` on the
/// host's engine: those named `<app>-…` (Docker's `name` filter: the text
/// anywhere in the name, as `docker network ls --filter` matches it).
fn engine_objects(kind: &str, app: &str) -> Vec<String> {
    let filters = [("name", &*format!("{app}-"))];
    let (listed, key) = match kind {
        "network" => (docker::list_networks(&filters), "/Id"),
        "volume" => (docker::list_volumes(&filters), "/Name"),
        _ => panic!("a network or a volume, not a {kind}"),
    };
    (listed.iter())
        .map(|json| docker::text_at(json, key).to_owned())
        .collect()
}

/// What a run of a test with `app` left on the host's engine (killed
/// before its drop, or an older drop that gave up on a volume still in
/// use): removed before this run uses the names, which it owns now (see
/// `Sandbox::own_containers`). A leftover volume's files would pass for
/// this run's: CI saw a service that "ran before" at its first start.
fn remove_leftovers(app: &str) {
    remove_users_of(&engine_objects("volume", app));
    for kind in ["network", "volume"] {
        let found = engine_objects(kind, app);
        if !found.is_empty() {
            let rm: &[&str] = if kind == "volume" {
                &["rm", "--force"]
            } else {
                &["rm"]
            };
            docker(
                std::iter::once(kind)
                    .chain(rm.iter().copied())
                    .map(String::from)
                    .chain(found),
            );
        }
    }
}

/// Removes the containers of any name that use `volumes`: a backup's copy
/// (`docker run --rm` of the helper image, named by Docker) whose backup
/// was killed with its sandbox keeps running, blocked on its output, and
/// holds its volume (seen after a failed test in CI).
fn remove_users_of(volumes: &[String]) {
    for volume in volumes {
        let users: Vec<String> = (docker::list_containers(true, &[("volume", volume)]).iter())
            .map(|json| docker::text_at(json, "/Id").to_owned())
            .collect();
        if !users.is_empty() {
            docker(["rm", "--force"].into_iter().map(String::from).chain(users));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Its units first, which could start containers again; the
        // containers it owns (every app's `<app>-…`) go with it. Networks
        // and volumes live in the host's engine and would outlast it.
        self.sandbox.stop();
        let apps: Vec<&String> = std::iter::once(&self.app).chain(&self.others).collect();
        let list = |kind: &str| {
            (apps.iter())
                .flat_map(|app| engine_objects(kind, app))
                .collect::<Vec<_>>()
        };
        let networks = list("network");
        if !networks.is_empty() {
            docker(
                ["network", "rm"]
                    .into_iter()
                    .map(String::from)
                    .chain(networks),
            );
        }
        // `volume rm --force` still refuses a volume a container uses, and
        // Docker may be removing one that did a moment ago (a test's or a
        // restore's `docker run --rm`): asked again, as unitgen's
        // `docker::free_names` does for names, until they are gone.
        remove_users_of(&list("volume"));
        let gone = wait_for(Duration::from_secs(30), || {
            let volumes = list("volume");
            if volumes.is_empty() {
                return Some(());
            }
            docker(
                ["volume", "rm", "--force"]
                    .into_iter()
                    .map(String::from)
                    .chain(volumes),
            );
            std::thread::sleep(Duration::from_millis(400));
            None
        });
        if gone.is_none() {
            eprintln!(
                "World: volumes of {apps:?} left on the engine: {:?}",
                list("volume")
            );
        }
    }
}

/// The body of `GET /` on 127.0.0.1:`port` once it answers 200, within a
/// minute: a server a unit just started may take seconds to listen on a
/// loaded machine (CI runs the suite beside fleet-live on two cores).
pub fn serves(port: u16) -> Option<String> {
    wait_for(Duration::from_secs(60), || {
        http_get(port, "/")
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b)
    })
}
