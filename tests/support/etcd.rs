//! A throw-away etcd (Debian's etcd-server 3.4) on free loopback ports.

use std::fs::File;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::net::free_port;
use super::{docker, tempdir, wait_for};

pub struct Etcd {
    child: Child,
    client_port: u16,
    dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts etcd with its data in a fresh directory and waits until it
    /// reports healthy. `v2`: also serve the v2 API (`--enable-v2`), the one
    /// fleet-era clusters use.
    pub fn start(v2: bool) -> Etcd {
        docker::ensure_testbed();
        // A free port can still be taken before etcd binds it, by a
        // process that picks ports its own way (another checkout's test
        // run, before its marks expire). Then etcd exits at once, and
        // other ports are tried.
        for _ in 0..5 {
            if let Some(etcd) = Etcd::start_on(v2, free_port(), free_port()) {
                return etcd;
            }
        }
        panic!("etcd found its loopback ports taken five times in a row");
    }

    /// [`Etcd::start`] on these ports; None when one was taken already.
    fn start_on(v2: bool, client_port: u16, peer_port: u16) -> Option<Etcd> {
        let dir = tempdir("etcd-");
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = File::create(dir.path().join("etcd.log"))
            .unwrap_or_else(|e| panic!("creating etcd's log file: {e}"));
        let mut command = Command::new("etcd");
        command
            .arg("--name=unitgen-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=unitgen-test={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd's log file"))
            .stderr(log);
        if v2 {
            command.arg("--enable-v2");
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting etcd: {e}"));
        let mut etcd = Etcd {
            child,
            client_port,
            dir,
        };
        let mut port_taken = false;
        let healthy = wait_for(Duration::from_secs(30), || {
            if let Ok(Some(status)) = etcd.child.try_wait() {
                let log = etcd.log();
                if log.contains("address already in use") {
                    port_taken = true;
                    return Some(());
                }
                panic!("etcd exited ({status}) while starting:\n{log}");
            }
            etcd.etcdctl(3, &["endpoint", "health"])
                .status
                .success()
                .then_some(())
        });
        if port_taken {
            return None;
        }
        if healthy.is_none() {
            panic!(
                "etcd at {} was not healthy within 30s:\n{}",
                etcd.endpoint(),
                etcd.log()
            );
        }
        Some(etcd)
    }

    /// The client URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Runs etcdctl against this etcd with `ETCDCTL_API=api`.
    pub fn etcdctl(&self, api: u8, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", api.to_string())
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running etcdctl: {e}"))
    }

    /// A key's value through the v3 API.
    pub fn get(&self, key: &str) -> Option<String> {
        let out = self.etcdctl(3, &["get", "--print-value-only", key]);
        assert!(
            out.status.success(),
            "etcdctl get {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value = String::from_utf8_lossy(&out.stdout);
        // A missing key prints nothing; a value is followed by a newline.
        value.strip_suffix('\n').map(str::to_owned)
    }

    /// Sets a key through the v3 API.
    pub fn put(&self, key: &str, value: &str) {
        let out = self.etcdctl(3, &["put", key, value]);
        assert!(
            out.status.success(),
            "etcdctl put {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// etcd's current revision, and the creation and last modification
    /// revisions of each key under `prefix` (v3 API).
    pub fn revisions(&self, prefix: &str) -> (i64, Vec<KeyRevisions>) {
        let out = self.etcdctl(3, &["get", "--prefix", prefix, "-w", "json"]);
        assert!(
            out.status.success(),
            "etcdctl get --prefix {prefix}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let number = |v: &serde_json::Value| v.as_i64().unwrap_or_else(|| panic!("{answer}"));
        let keys = (answer["kvs"].as_array().into_iter().flatten())
            .map(|kv| KeyRevisions {
                created: number(&kv["create_revision"]),
                modified: number(&kv["mod_revision"]),
            })
            .collect();
        (number(&answer["header"]["revision"]), keys)
    }

    /// A key's value through the v2 API (needs `start(true)`).
    pub fn get_v2(&self, key: &str) -> Option<String> {
        let out = self.etcdctl(2, &["get", key]);
        if !out.status.success() {
            // etcdctl (v2) fails with "Key not found" for a missing key.
            return None;
        }
        let value = String::from_utf8_lossy(&out.stdout);
        Some(value.strip_suffix('\n').unwrap_or(&value).to_owned())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

/// When a key was created (again, after a delete) and last written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRevisions {
    pub created: i64,
    pub modified: i64,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
