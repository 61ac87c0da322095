//! A real container registry on loopback (Debian's `docker-registry`,
//! distribution 2.8), so tests pull for real: a new tag, a moved tag, a
//! missing one. Docker talks plain HTTP to registries on 127.0.0.0/8.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::docker::{docker, ensure_testbed};
use super::net::{free_port, http_get};
use super::{tempdir, wait_for};

pub struct Registry {
    child: Child,
    port: u16,
    /// Images built for this registry, removed from the engine on drop.
    built: std::cell::RefCell<Vec<String>>,
    /// The registry's storage and config; removed with it.
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free loopback port and waits until it answers.
    pub fn start() -> Registry {
        ensure_testbed();
        let dir = tempdir("registry-");
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting docker-registry: {e}"));
        let registry = Registry {
            child,
            port,
            built: Default::default(),
            _dir: dir,
        };
        let up = wait_for(Duration::from_secs(20), || {
            http_get(port, "/v2/").filter(|(s, _)| *s == 200).map(drop)
        });
        assert!(up.is_some(), "the registry on port {port} did not answer");
        registry
    }

    /// `127.0.0.1:PORT/NAME`, a reference into this registry.
    pub fn image(&self, name: &str) -> String {
        format!("127.0.0.1:{}/{name}", self.port)
    }

    /// Builds a distinct image from the busybox test image (a label makes
    /// its ID its own), pushes it as `name` (e.g. `app/web:2`) and removes
    /// the local tag, so that using it means pulling it. Returns its ID.
    pub fn push_new(&self, name: &str, label: &str) -> String {
        let reference = self.image(name);
        let id = self.build(name, label);
        push(&reference);
        untag(&reference);
        id
    }
}

impl Registry {
    /// [`build_labelled`] as `name` in this registry, removed on drop.
    pub fn build(&self, name: &str, label: &str) -> String {
        let id = build_labelled(&self.image(name), label);
        self.built.borrow_mut().push(id.clone());
        id
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for id in self.built.borrow().iter() {
            docker(["rmi", "--force", id]);
        }
    }
}

/// `FROM unitgen-test/busybox:1` plus a label, tagged `reference`; its ID.
pub fn build_labelled(reference: &str, label: &str) -> String {
    build_from_busybox(reference, &format!("LABEL unitgen.test={label}\n"))
}

/// `FROM unitgen-test/busybox:1` plus the Dockerfile `lines`, tagged
/// `reference`; its ID.
pub fn build_from_busybox(reference: &str, lines: &str) -> String {
    let mut build = Command::new("docker")
        .args(["build", "--quiet", "--tag", reference, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    build
        .stdin
        .take()
        .unwrap()
        .write_all(format!("FROM unitgen-test/busybox:1\n{lines}").as_bytes())
        .unwrap();
    let out = build.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    image_id(reference).expect("the image just built")
}

pub fn push(reference: &str) {
    let out = docker(["push", reference]);
    assert!(
        out.status.success(),
        "docker push {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes a local tag (the image goes too when nothing else uses it).
pub fn untag(reference: &str) {
    let out = docker(["rmi", reference]);
    assert!(
        out.status.success(),
        "docker rmi {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The ID a local reference names, if the host has it.
pub fn image_id(reference: &str) -> Option<String> {
    super::docker::inspect_image(reference)
        .map(|json| super::docker::text_at(&json, "/Id").to_owned())
}
