//! The Docker command lines of a service unit, as argument lists. Quoting
//! happens later, in one place (`escape`).

use std::sync::LazyLock;

use crate::escape::{CommandLines, PreparedBash, sh_quote};
use crate::model::{DEFAULT_STOP_GRACE_SECONDS, HealthTest, Healthcheck, Instance, Service};

/// The Docker CLI every line of a unit names (see there why a fixed path).
pub use crate::docker::DOCKER;

/// Adds the lines of `docker run` for a service to `run`: one flag (with
/// its value) per line, the image and its arguments last. Units show one
/// flag per line, so that a changed flag is a one-line diff.
/// `container`: the service's container name; `secrets_file`: the
/// root-only env file with the service's secrets.
pub fn push_run_args(
    run: &mut CommandLines,
    instance: &Instance,
    service: &Service,
    container: &str,
    secrets_file: Option<&str>,
) {
    run.line(&["--name", container]);
    match &service.network_mode {
        // Not on the instance network: no alias to find it by.
        Some(mode) => run.line(&["--network", &mode.network_arg(instance)]),
        None => {
            run.line(&["--network", &instance.network()]);
            run.line(&["--network-alias", &service.name]);
        }
    }
    if let Some(hostname) = &service.hostname {
        run.line(&["--hostname", hostname]);
    }
    run.flag("--label", &["unitgen.app=", &instance.app]);
    run.flag("--label", &["unitgen.instance=", &instance.instance]);
    run.flag("--label", &["unitgen.service=", &service.name]);
    for (key, value) in &service.labels {
        run.flag("--label", &[key, "=", value]);
    }
    if !service.env_files.is_empty() {
        // Read as compose reads them, by the unit before it starts.
        run.line(&["--env-file", &super::env_file::converted_path(container)]);
    }
    // Only the path is on the command line: the Docker client reads the
    // file and hands the values to the engine over its socket.
    if let Some(file) = secrets_file {
        run.line(&["--env-file", file]);
    }
    for (key, value) in &service.environment {
        run.flag("--env", &[key, "=", value]);
    }
    for port in &service.ports {
        run.line(&["--publish", &port.publish_arg()]);
    }
    for volume in &service.volumes {
        run.line(&["--volume", &volume.volume_arg()]);
    }
    for tmpfs in &service.tmpfs {
        run.line(&["--tmpfs", tmpfs]);
    }
    let flags = [
        ("--user", &service.user),
        ("--workdir", &service.working_dir),
        ("--memory", &service.memory),
        ("--cpus", &service.cpus),
    ];
    for (flag, value) in flags {
        if let Some(value) = value {
            run.line(&[flag, value]);
        }
    }
    for cap in &service.cap_add {
        run.line(&["--cap-add", cap]);
    }
    for cap in &service.cap_drop {
        run.line(&["--cap-drop", cap]);
    }
    if let Some((signal, _)) = &service.stop_signal {
        run.line(&["--stop-signal", signal]);
    }
    // The container's own, as compose sets it (`docker inspect` shows it): a
    // `docker stop` by hand, or the engine's own shutdown, waits as long as
    // the unit's stop does.
    if service.stop_grace_seconds != DEFAULT_STOP_GRACE_SECONDS {
        run.line(&["--stop-timeout", &service.stop_grace_seconds.to_string()]);
    }
    match &service.healthcheck {
        Some(Healthcheck::Disabled) => run.line(&["--no-healthcheck"]),
        Some(Healthcheck::Check {
            test,
            interval,
            timeout,
            retries,
            start_period,
        }) => {
            // An exec-form test is in the image `health_image` builds:
            // `--health-cmd` is always run with a shell.
            if let HealthTest::Shell(command) = test {
                run.line(&["--health-cmd", command]);
            }
            for (name, value) in [
                ("--health-interval", interval),
                ("--health-timeout", timeout),
                ("--health-start-period", start_period),
            ] {
                if let Some(value) = value {
                    run.line(&[name, value]);
                }
            }
            if let Some(retries) = retries {
                run.line(&["--health-retries", &retries.to_string()]);
            }
        }
        None => {}
    }
    if service.read_only {
        run.line(&["--read-only"]);
    }
    if service.init {
        run.line(&["--init"]);
    }
    for arg in &service.docker_args {
        run.line(&[arg]);
    }
    let mut entry_args: &[String] = &[];
    match service.entrypoint.as_ref().map(|e| e.split_first()) {
        Some(Some((program, args))) => {
            run.line(&["--entrypoint", program]);
            entry_args = args;
        }
        // Docker's way to run no entrypoint, not the image's.
        Some(None) => run.line(&["--entrypoint", ""]),
        None => {}
    }
    let health_tag = health_image(instance, service).map(|(tag, _)| tag);
    let mut last = vec![health_tag.as_deref().unwrap_or(&service.image)];
    last.extend(entry_args.iter().map(String::as_str));
    last.extend(service.command.iter().flatten().map(String::as_str));
    run.line(&last);
}

/// The local image a container with an exec-form healthcheck runs (see
/// [`health_image`]).
pub fn health_tag(container: &str) -> String {
    format!("unitgen-health/{container}")
}

/// For an exec-form healthcheck (`[CMD, program, args…]`): the local image
/// the service runs instead of its own, and the script that builds it. It is
/// the service's image plus a `HEALTHCHECK CMD [...]` (JSON: no shell), since
/// `docker run --health-cmd` always runs its command with the container's
/// `/bin/sh`, which distroless and scratch images do not have; Docker's API
/// takes an exec-form test only at container creation, which the CLI does
/// not expose. `--health-interval` and the other timings stay on `docker
/// run`, which Docker merges with the image's test. The build adds no layer
/// and is cached: it takes a moment at each start.
pub fn health_image(instance: &Instance, service: &Service) -> Option<(String, Vec<String>)> {
    let Some(Healthcheck::Check {
        test: HealthTest::Exec(argv),
        ..
    }) = &service.healthcheck
    else {
        return None;
    };
    let tag = health_tag(&instance.container(&service.name));
    let json = serde_json::to_string(argv).expect("strings serialize");
    let image = sh_quote(&service.image);
    // The label names the image it was built on, so that a moved tag of
    // the service's image is still seen (`pull::moved`).
    let script = vec![
        format!("base=$({DOCKER} image inspect --format '{{{{.Id}}}}' {image} 2>/dev/null) ||"),
        format!("  {{ {DOCKER} pull --quiet {image} >/dev/null &&"),
        format!("    base=$({DOCKER} image inspect --format '{{{{.Id}}}}' {image}); }} || exit 1;"),
        format!(
            "printf '%s\\n' {} \"LABEL unitgen.base-image=$base\" {} |",
            sh_quote(&format!("FROM {}", service.image)),
            sh_quote(&format!("HEALTHCHECK CMD {json}"))
        ),
        format!("  {DOCKER} build --quiet --tag {tag} - >/dev/null"),
    ];
    Some((tag, script))
}

/// `docker inspect --format` for `running/healthy`, `running/` (no
/// healthcheck), `exited/`…
pub const STATE_AND_HEALTH: &str =
    "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}";

/// The prefix of the lines the readiness check writes to the journal when a
/// start fails, so that apply can tell them from the container's own.
pub const NOTE: &str = "unitgen:";

/// The Docker event of a healthcheck's verdict.
const HEALTH_EVENT: &str = "health_status";

/// Whether a service unit's start waits until its container is healthy
/// (its text has the readiness check of [`wait_ready_script`] for a
/// container with a healthcheck): once its start job is done, Docker has
/// found it healthy.
pub fn start_waits_for_health(unit_text: &str) -> bool {
    unit_text
        .lines()
        .skip_while(|line| !line.starts_with("ExecStartPost="))
        .take_while(|line| line.ends_with('\\') || line.starts_with("ExecStartPost="))
        .any(|line| line.contains(&format!("--filter event={HEALTH_EVENT}")))
}

/// Whether a service unit's text says its container is done when it
/// exits 0 (see `render::ends_when_done`): it stays active (exited) then.
pub fn done_when_exited(unit_text: &str) -> bool {
    let has = |line: &str| unit_text.lines().any(|l| l == line);
    has("RemainAfterExit=yes") && !has("Type=oneshot")
}

/// The `ExecStartPost=` command of a service unit: [`wait_ready_script`],
/// escaped. The script is the same for every container but for its name,
/// so it is escaped once per process rather than once per unit.
pub fn wait_ready_command(container: &str, healthcheck: bool, ends_when_done: bool) -> String {
    const CONTAINER: &str = "CONTAINER";
    static PREPARED: LazyLock<[PreparedBash; 4]> = LazyLock::new(|| {
        [(false, false), (true, false), (false, true), (true, true)].map(
            |(healthcheck, ends_when_done)| {
                let script = wait_ready_script(CONTAINER, healthcheck, ends_when_done);
                let lines: Vec<&str> = script.iter().map(String::as_str).collect();
                PreparedBash::new(&lines, CONTAINER)
            },
        )
    });
    PREPARED[usize::from(healthcheck) + 2 * usize::from(ends_when_done)].with(container)
}

/// Waits until the container runs (and is healthy, when it has a
/// healthcheck), and fails as soon as it has exited or turned unhealthy, so
/// that systemd's start job reports what really happened. On failure it
/// writes why (Docker's health log, the exit status) to the journal, in
/// lines starting with [`NOTE`].
///
/// It waits on Docker's events rather than asking over and over: with
/// twenty units starting at once, a `docker inspect` per unit every few
/// tenths of a second took the CPU the engine needed to start them. The
/// events are read from the moment this check starts (`--since`, which the
/// engine replays to a reader that connects later): systemd runs it as soon
/// as `docker run` has been executed, long before the client has asked the
/// engine to create the container, so the container's own `start` (or
/// `die`) is among them, and no look at its state is needed first. The
/// container of the unit's previous run has ended before (`ExecStopPost=`
/// removed it), so none of its events is. One engine call per start: one
/// `docker events`, plus one look a second for a start slower than that
/// (see below). `docker events --filter container=` matches name prefixes
/// too (`web` would see `web-worker`): the template prints only this
/// container's events, and blank lines for others.
///
/// Each second without an event, it looks at the state: the engine replays
/// only its last 256 events, which a loaded machine starting many
/// containers can outrun before `docker events` has connected, and a
/// container that started before the check did (it would take a stalled
/// scheduler) sends no event later; a failed `docker inspect` reads as "not
/// there yet" (seen once at a load average of 26: a unit whose container
/// ran waited out TimeoutStartSec). A start that is ready within the second
/// makes no such call. And it gives up when `docker run` itself has exited
/// (`$MAINPID`, which systemd sets for ExecStartPost): a container that was
/// never created sends no event, and systemd would wait for this script
/// until TimeoutStartSec. bash (`read -t`, process substitution,
/// `$EPOCHREALTIME` from bash 5 on, whose decimal point follows the locale;
/// older ones ask `date`); one statement per element (see
/// `escape::systemd_shell`).
///
/// A container that `ends_when_done` (see `render::ends_when_done`) and
/// exits 0 is ready: its job is done. So is one whose `docker run` ended
/// unseen: systemd has its exit status, which decides.
pub fn wait_ready_script(container: &str, healthcheck: bool, ends_when_done: bool) -> Vec<String> {
    let health_events = format!("--filter event={HEALTH_EVENT}");
    // Both the current state (`docker inspect`) and the events read as
    // `WORD[/HEALTH] EXIT-CODE`, so one `case` judges either.
    let (state, events, ready, unhealthy) = if healthcheck {
        (
            "{{.State.Status}}{{if .State.Health}}/{{.State.Health.Status}}{{end}} {{.State.ExitCode}}",
            format!("--filter event=start --filter event=die {health_events}"),
            "'running/healthy '*|'health_status: healthy '*",
            Some("'running/unhealthy '*|'health_status: unhealthy '*"),
        )
    } else {
        (
            "{{.State.Status}} {{.State.ExitCode}}",
            "--filter event=start --filter event=die".to_string(),
            "'running '*|'start '*",
            None,
        )
    };
    let mut script = vec![
        "since=${EPOCHREALTIME/,/.};".to_string(),
        "[ -n \"$since\" ] || since=$(date +%s.%N);".into(),
        format!(
            "exec 3< <(exec {DOCKER} events --since \"$since\" --filter container={container} {events} --format '{{{{if eq .Actor.Attributes.name \"{container}\"}}}}{{{{.Action}}}} {{{{index .Actor.Attributes \"exitCode\"}}}}{{{{end}}}}');"
        ),
        "trap \"kill $! 2>/dev/null\" EXIT;".into(),
        "s=;".into(),
        "while :; do".into(),
        "  case $s in".into(),
        format!("    {ready}) exit 0;;"),
    ];
    if let Some(unhealthy) = unhealthy {
        script.push(format!(
            "    {unhealthy}) {DOCKER} inspect --format '{{{{range .State.Health.Log}}}}{NOTE} health probe exited {{{{.ExitCode}}}}: {{{{json .Output}}}}{{{{println}}}}{{{{end}}}}' {container} >&2; exit 1;;"
        ));
    }
    if ends_when_done {
        script.push("    'exited 0'|'dead 0'|'die 0') exit 0;;".into());
    }
    let run_ended = if ends_when_done {
        "exit 0".to_string()
    } else {
        format!("{{ echo '{NOTE} docker run ended before the container was ready' >&2; exit 1; }}")
    };
    script.extend([
        format!("    exited*|dead*|'die '*) echo \"{NOTE} the container exited with status ${{s##* }}\" >&2; exit 1;;"),
        "  esac;".into(),
        "  while :; do".into(),
        "    IFS= read -r -t 1 s <&3 && break;".into(),
        format!("    [ $? -gt 128 ] || {{ echo '{NOTE} docker events ended before the container was ready' >&2; exit 1; }};"),
        format!("    kill -0 \"$MAINPID\" 2>/dev/null || {run_ended};"),
        format!("    s=$({DOCKER} inspect --format '{state}' {container} 2>/dev/null); break;"),
        "  done;".into(),
        "done".into(),
    ]);
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service unit's lines around its readiness check, as rendered.
    fn unit(healthcheck: bool, command: &str) -> String {
        let script = wait_ready_script("shop-live-api", healthcheck, false);
        let lines: Vec<&str> = script.iter().map(String::as_str).collect();
        format!(
            "[Service]\nExecStart=/usr/bin/docker run --rm shop/api sh -c {}\nExecStartPost={}\nExecStop=/usr/bin/docker stop shop-live-api\n",
            sh_quote(command),
            crate::escape::systemd_bash(&lines)
        )
    }

    #[test]
    fn the_readiness_command_is_its_script_escaped_for_any_container() {
        for container in ["shop-live-api", "a%b$c", "x\"y\\z", "é \u{85}"] {
            for (healthcheck, done) in [(false, false), (true, false), (false, true), (true, true)]
            {
                let script = wait_ready_script(container, healthcheck, done);
                let lines: Vec<&str> = script.iter().map(String::as_str).collect();
                assert_eq!(
                    wait_ready_command(container, healthcheck, done),
                    crate::escape::systemd_bash(&lines),
                    "{container}"
                );
            }
        }
    }

    #[test]
    fn a_start_waits_for_health_only_with_the_healthcheck_readiness_check() {
        assert!(start_waits_for_health(&unit(true, "serve")));
        assert!(!start_waits_for_health(&unit(false, "serve")));
        // The words in a service's own command do not count.
        assert!(!start_waits_for_health(&unit(
            false,
            "echo --filter event=health_status"
        )));
    }
}
