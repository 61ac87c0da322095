//! A real systemd 252, booted as PID 1 in its own namespaces over an overlay
//! of the machine's root (see shared TESTBED.md and boot-sandbox.sh beside
//! this file). Each `Sandbox` is its own machine as far as systemd goes:
//! tests may run several at once. Its units run `docker` against the host's
//! engine (`DOCKER_HOST=unix:///hostrun/docker.sock` for every unit).

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::Duration;

use unitgen::systemd::Systemd;

use super::{docker, tempdir, wait_for};

const BOOT_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/boot-sandbox.sh");
/// Generous: on a busy 2-core machine several sandboxes may boot at once.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Sandbox {
    /// upper/ and work/ (the overlay's writable layer), pid, logs.
    dir: tempfile::TempDir,
    launcher: Option<Launcher>,
    pid: u32,
    container_prefixes: Vec<String>,
    /// The locks on those names ([`docker::claim_names`]), released when
    /// the sandbox is dropped, after its containers are removed.
    name_claims: Vec<std::fs::File>,
}

/// The running boot script. Closing its stdin stops the sandbox.
struct Launcher {
    child: Child,
    stdin: ChildStdin,
}

impl Sandbox {
    /// Boots a fresh sandbox and waits until its manager is up (SystemState
    /// `running` or `degraded`) and its system bus answers. Panics, with the
    /// boot logs, if that takes longer than a minute.
    pub fn boot() -> Sandbox {
        Self::boot_with(None)
    }

    /// [`Sandbox::boot`] of a machine with its own machine ID (32 hex
    /// digits, in its `/etc/machine-id`, systemd's `%m`); otherwise every
    /// sandbox has the machine's.
    pub fn boot_as_machine(machine_id: &str) -> Sandbox {
        Self::boot_with(Some(machine_id))
    }

    fn boot_with(machine_id: Option<&str>) -> Sandbox {
        docker::ensure_testbed();
        let mut sandbox = Sandbox {
            dir: tempdir("sandbox-"),
            launcher: None,
            pid: 0,
            container_prefixes: Vec::new(),
            name_claims: Vec::new(),
        };
        if let Some(id) = machine_id {
            assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
            // In the overlay's writable layer, over the machine's file.
            let etc = sandbox.path("upper").join("etc");
            std::fs::create_dir_all(&etc).unwrap();
            std::fs::write(etc.join("machine-id"), format!("{id}\n")).unwrap();
        }
        // On a panic from here on, Drop still stops what was started.
        sandbox.start();
        sandbox
    }

    /// Containers whose name starts with `prefix` belong to this sandbox:
    /// leftovers of an earlier, killed run are removed now, and they go away
    /// on `reboot()` (as a real reboot would take them) and when the sandbox
    /// is dropped. Otherwise they would outlive the sandbox's systemd: the
    /// engine is the host's. Waits while another test owns them
    /// ([`docker::claim_names`]).
    pub fn own_containers(&mut self, prefix: &str) {
        if self.container_prefixes.iter().any(|p| p == prefix) {
            return;
        }
        self.name_claims.push(docker::claim_names(prefix));
        docker::remove_containers(prefix);
        self.container_prefixes.push(prefix.to_owned());
    }

    /// The host PID of the sandbox's systemd.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The sandbox's root directory, seen from the host: `/proc/PID/root`.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }

    /// The address of the sandbox's system bus, for `Systemd::connect`.
    pub fn bus_address(&self) -> String {
        format!(
            "unix:path=/proc/{}/root/run/dbus/system_bus_socket",
            self.pid
        )
    }

    /// A connection to the sandbox's systemd.
    pub fn systemd(&self) -> Systemd {
        Systemd::connect(Some(&self.bus_address()), false)
            .unwrap_or_else(|e| panic!("connecting to the sandbox's systemd: {e}"))
    }

    /// A folder at the same path inside the sandbox and on the machine:
    /// files a unit writes there are the files the machine's Docker engine
    /// mounts (elsewhere, the sandbox's writes land in its overlay).
    pub fn shared_dir(&self) -> PathBuf {
        self.path("shared")
    }

    /// The overlay's writable layer: every file written in the sandbox's
    /// root file system (not in the file systems mounted over it, such as
    /// its /run), seen from the host.
    pub fn written(&self) -> PathBuf {
        self.path("upper")
    }

    /// `/etc/systemd/system` of the sandbox, seen from the host.
    pub fn unit_dir(&self) -> PathBuf {
        self.root().join("etc/systemd/system")
    }

    /// Runs a command inside the sandbox's namespaces. For assertions only:
    /// unitgen itself must go through D-Bus.
    pub fn exec<I, S>(&self, program: &str, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Command::new("nsenter")
            .arg(format!("--target={}", self.pid))
            .args(["-m", "-p", "-u", "-i", "-C", "-r", "-w", program])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running nsenter {program}: {e}"))
    }

    /// `systemctl ARGS` inside the sandbox.
    pub fn systemctl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut all: Vec<OsString> = vec!["--no-pager".into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self.exec("systemctl", all)
    }

    /// The last 200 journal lines of `unit`, for failure messages.
    pub fn journal(&self, unit: &str) -> String {
        let out = self.exec(
            "journalctl",
            [
                "--no-pager",
                "--lines=200",
                "--output=short-monotonic",
                "--unit",
                unit,
            ],
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `unit`'s journal once it holds `text`, or after a minute without:
    /// journald writes a line a moment after it was printed, so a line a
    /// unit printed before its job ended (the reason it failed) may not be
    /// there yet when the command that ran the job returns.
    pub fn journal_with(&self, unit: &str, text: &str) -> String {
        wait_for(Duration::from_secs(60), || {
            let journal = self.journal(unit);
            journal.contains(text).then_some(journal)
        })
        .unwrap_or_else(|| self.journal(unit))
    }

    /// Kills the sandbox's systemd (power off: no unit is stopped) and
    /// boots it again on the same overlay, so installed and enabled units
    /// persist. Owned containers are removed in between, as a reboot of
    /// the machine would.
    pub fn reboot(&mut self) {
        self.stop();
        self.start();
    }

    /// Kills the sandbox's systemd and boots it again on the same overlay
    /// while its containers keep running in the host's engine: a container
    /// that runs systemd restarted, or systemd killed on a host whose
    /// engine outlives it. Unlike [`Sandbox::reboot`], owned containers
    /// stay: what the units make of them is what is tested.
    pub fn restart_systemd_only(&mut self) {
        if let Some(Launcher { mut child, stdin }) = self.launcher.take() {
            drop(stdin);
            let _ = child.wait();
        }
        self.start();
    }

    /// A host dying hard: SIGKILL to the sandbox's systemd, now. Every
    /// process of its PID namespace dies with it and nothing gets to clean
    /// up (no `ExecStop=`, no `ExecStopPost=`). Its containers live in the
    /// host's engine and keep running until the sandbox is rebooted or
    /// dropped.
    pub fn power_off(&self) {
        let pid = self.pid.to_string();
        let out = Command::new("kill")
            .args(["-KILL", &pid])
            .output()
            .unwrap_or_else(|e| panic!("running kill: {e}"));
        assert!(out.status.success(), "kill -KILL {pid} failed");
        let gone = wait_for(Duration::from_secs(10), || {
            (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
        });
        assert!(gone.is_some(), "the sandbox's systemd ({pid}) did not die");
    }

    fn start(&mut self) {
        // The last boot's pid must not be taken for this one's.
        let _ = std::fs::remove_file(self.path("pid"));
        let log = File::create(self.path("launcher.log"))
            .unwrap_or_else(|e| panic!("creating the sandbox's launcher log: {e}"));
        // setsid: no signal for the test's terminal reaches the sandbox.
        let mut child = Command::new("setsid")
            .arg(BOOT_SCRIPT)
            .arg(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("the launcher log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("running {BOOT_SCRIPT}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        self.launcher = Some(Launcher { child, stdin });

        let pid = wait_for(BOOT_TIMEOUT, || {
            self.check_launcher();
            std::fs::read_to_string(self.path("pid"))
                .ok()
                .and_then(|pid| pid.trim().parse().ok())
        });
        match pid {
            Some(pid) => self.pid = pid,
            None => self.boot_failed("the sandbox's systemd did not start"),
        }

        let mut last = String::from("no answer yet");
        let ready = wait_for(BOOT_TIMEOUT, || {
            self.check_launcher();
            let state = Systemd::connect(Some(&self.bus_address()), false)
                .and_then(|systemd| systemd.system_state());
            match state {
                Ok(state) if state == "running" || state == "degraded" => Some(state),
                Ok(state) => {
                    last = format!("SystemState {state}");
                    None
                }
                Err(e) => {
                    last = e.to_string();
                    None
                }
            }
        });
        match ready {
            Some(state) if state == "degraded" => {
                let failed = self.systemctl(["--failed"]);
                eprintln!(
                    "sandbox {}: booted degraded:\n{}",
                    self.pid,
                    String::from_utf8_lossy(&failed.stdout)
                );
            }
            Some(_) => {}
            None => self.boot_failed(&format!(
                "the sandbox's systemd (pid {}) was not up within {BOOT_TIMEOUT:?} ({last})",
                self.pid
            )),
        }
    }

    /// Stops the sandbox: closes the launcher's stdin, upon which it kills
    /// systemd, waits for the namespace to die and removes its cgroups; then
    /// removes the containers it owns.
    pub(super) fn stop(&mut self) {
        if let Some(Launcher { mut child, stdin }) = self.launcher.take() {
            drop(stdin);
            let _ = child.wait();
        }
        for prefix in &self.container_prefixes {
            docker::remove_containers(prefix);
        }
    }

    fn check_launcher(&mut self) {
        let exited = match &mut self.launcher {
            Some(launcher) => launcher.child.try_wait().ok().flatten(),
            None => None,
        };
        if let Some(status) = exited {
            self.boot_failed(&format!("the sandbox launcher exited ({status})"));
        }
    }

    fn boot_failed(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- launcher.log\n{}\n--- console.log (tail)\n{}",
            read_tail(&self.path("launcher.log"), 40),
            read_tail(&self.path("console.log"), 40),
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Not again after a `stop` (World's drop stops it first).
        if self.launcher.is_some() {
            self.stop();
        }
    }
}

fn read_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
