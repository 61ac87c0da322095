//! The instance network under fleet, on the real Docker engine: each copy
//! makes sure of the network before it starts and the last one to stop
//! removes it. Runs the scripts of a `render --fleet` unit as its
//! ExecStartPre / ExecStopPost would, several at once where copies would.

#[path = "support/lib.rs"]
mod support;

use std::process::{Command, Output};
use std::thread;

use support::docker::{create_duplicate, docker, ensure_testbed, networks, remove_networks};
use unitgen::render::{Flavour, Renderer};
use unitgen::unit_file;

// Names unique to this test file on the shared engine: app `fltnet`, one
// instance (so one network) per test, as the tests run at once.

const TEMPLATE: &str = "app: fltnet\n\
    services:\n\
    \x20 a: {image: unitgen-test/busybox:1}\n\
    \x20 b: {image: unitgen-test/busybox:1}\n\
    instances:\n\
    \x20 t1: {}\n\
    \x20 t2: {}\n\
    \x20 t3: {}\n";

/// The shell script of the `/bin/sh -c "..."` line of a rendered unit whose
/// key is `key` and that mentions `marker`, unescaped as systemd does for
/// what these scripts use (`$$`, `%%`, `\"`, `\\`).
fn script(instance: &str, key: &str, marker: &str) -> String {
    let dir = support::tempdir("fleet-network-");
    std::fs::write(dir.path().join("unitgen.yaml"), TEMPLATE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["render", instance, "--fleet"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let unit = text
        .split("# ==> ")
        .find(|u| u.starts_with(&format!("fltnet-{instance}-a@.service")))
        .unwrap();
    let options = unit_file::parse(unit.split_once('\n').unwrap().1).unwrap();
    let line = &options
        .iter()
        .find(|o| o.name == key && o.value.contains(marker))
        .unwrap_or_else(|| panic!("no {key} with {marker}"))
        .value;
    unescape(line)
}

/// The script of a `/bin/sh -c "..."` command line.
fn unescape(line: &str) -> String {
    let quoted = line
        .trim_start_matches('-')
        .strip_prefix("/bin/sh -c \"")
        .and_then(|l| l.strip_suffix('"'))
        .unwrap();
    quoted
        .replace("\\\"", "\"")
        .replace("\\\\", "\\")
        .replace("$$", "$")
        .replace("%%", "%")
}

/// The lock file the scripts of instance `tN`'s network take
/// (`/run/lock/unitgen-network-NETWORK.lock`), removed when the test ends,
/// as it ends: the tests leave nothing of theirs on the machine.
struct NetworkLock(String);

impl NetworkLock {
    fn of(network: &str) -> NetworkLock {
        NetworkLock(format!("/run/lock/unitgen-network-{network}.lock"))
    }
}

impl Drop for NetworkLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn sh(script: &str) -> Output {
    Command::new("/bin/sh")
        .args(["-c", script])
        .output()
        .unwrap()
}

#[test]
fn copies_starting_at_once_on_one_host_make_one_network() {
    ensure_testbed();
    let lock = NetworkLock::of("fltnet-t1");
    remove_networks("fltnet-t1");
    let ensure = script("t1", "ExecStartPre", "flock");
    assert!(ensure.contains(&lock.0), "{ensure}");
    for round in 0..3 {
        let starts: Vec<_> = (0..6)
            .map(|_| {
                let ensure = ensure.clone();
                thread::spawn(move || sh(&ensure))
            })
            .collect();
        for start in starts {
            let out = start.join().unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        assert_eq!(networks("fltnet-t1").len(), 1, "round {round}");
        remove_networks("fltnet-t1");
    }
}

#[test]
fn a_duplicated_network_is_repaired_or_reported() {
    ensure_testbed();
    let lock = NetworkLock::of("fltnet-t2");
    remove_networks("fltnet-t2");
    let ensure = script("t2", "ExecStartPre", "flock");
    assert!(ensure.contains(&lock.0), "{ensure}");
    create_duplicate("fltnet-t2");
    create_duplicate("fltnet-t2");
    assert_eq!(networks("fltnet-t2").len(), 2);
    let out = sh(&ensure);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("removing a duplicate Docker network fltnet-t2"),
        "{out:?}"
    );
    assert_eq!(networks("fltnet-t2").len(), 1);

    // Two in use cannot be merged: the start fails and says why.
    create_duplicate("fltnet-t2");
    let ids = networks("fltnet-t2");
    let mut containers = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let name = format!("fltnet-t2-hold{i}");
        docker(["rm", "-f", &name]);
        // By id: `docker run --network` with a duplicated name is ambiguous.
        let out = docker([
            "run",
            "-d",
            "--name",
            &name,
            "unitgen-test/busybox:1",
            "sleep",
            "60",
        ]);
        assert!(out.status.success(), "{out:?}");
        containers.push(name.clone());
        let out = docker(["network", "connect", id, &name]);
        assert!(out.status.success(), "{out:?}");
    }
    let out = sh(&ensure);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in &containers {
        docker(["rm", "-f", name]);
    }
    assert!(!out.status.success());
    assert!(
        stderr.contains("several Docker networks named fltnet-t2 are in use"),
        "{stderr}"
    );
    remove_networks("fltnet-t2");
}

#[test]
fn destroy_s_cleanup_unit_removes_the_network_once_the_containers_are_gone() {
    ensure_testbed();
    let lock = NetworkLock::of("fltnet-t3");
    remove_networks("fltnet-t3");
    let ensure = script("t3", "ExecStartPre", "flock");
    assert!(ensure.contains(&lock.0), "{ensure}");
    let unit = Renderer::new(Flavour::Fleet).fleet_cleanup_unit("fltnet", "t3", &[]);
    let options = unit_file::parse(&unit.text).unwrap();
    let cleanup = unescape(unit_file::section_value(&options, "Service", "ExecStart").unwrap());
    assert!(sh(&ensure).status.success());
    create_duplicate("fltnet-t3");
    docker(["rm", "-f", "fltnet-t3-b"]);
    let out = docker([
        "run",
        "-d",
        "--name",
        "fltnet-t3-b",
        "--label",
        "unitgen.app=fltnet",
        "--label",
        "unitgen.instance=t3",
        "unitgen-test/busybox:1",
        "sleep",
        "60",
    ]);
    assert!(out.status.success(), "{out:?}");
    // A container of the instance is still there (stopping): it waits.
    let waiting = thread::spawn(move || sh(&cleanup));
    thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(networks("fltnet-t3").len(), 2, "removed while in use");
    docker(["rm", "-f", "fltnet-t3-b"]);
    let out = waiting.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(networks("fltnet-t3").is_empty(), "every copy removed");
}
