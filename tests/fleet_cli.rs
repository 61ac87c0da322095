//! `unitgen render|plan|apply|status|destroy --fleet` as a user runs them,
//! against the fake of fleet's API (scripts/fleet-live checks a live fleet).

#[path = "support/lib.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::etcd::Etcd;
use support::fake_fleet::FakeFleet;
use unitgen::fleet::JobState;

/// `metadata`: require machine metadata the fake's machines do not have,
/// so only for rendering.
fn template(dir: &Path, greeting: &str, metadata: bool) {
    let yaml = format!(
        "app: shop\n\
         services:\n\
         \x20 db:\n\
         \x20   image: postgres:16\n\
         \x20 web:\n\
         \x20   image: shop:1\n\
         \x20   ports: [\"8080:80\"]\n\
         \x20   environment: {{GREETING: \"{greeting}\"}}\n\
         \x20   depends_on: [db]\n\
         instances:\n\
         \x20 live: {{}}\n\
         etcd:\n\
         \x20 endpoints: http://10.0.0.1:2379\n\
         fleet:\n\
         \x20 copies: 2\n"
    ) + if metadata {
        "  metadata: {role: web}\n"
    } else {
        ""
    };
    std::fs::write(dir.join("unitgen.yaml"), yaml).unwrap();
}

fn unitgen(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// What was said, on one line: miette wraps an error's lines (`│`).
fn flat(said: &str) -> String {
    said.split_whitespace()
        .filter(|word| *word != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ExecStart fleet holds for unit `name`.
fn exec_start(fleet: &FakeFleet, name: &str) -> String {
    let unit = fleet.unit(name).unwrap();
    unit.option("Service", "ExecStart").unwrap().to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `shop` template (instance `live`) in a folder of its own, and a fake
/// fleet to run it on.
struct FleetApp {
    fleet: FakeFleet,
    dir: tempfile::TempDir,
}

impl FleetApp {
    fn new() -> FleetApp {
        let app = FleetApp {
            fleet: FakeFleet::start(),
            dir: tempfile::tempdir().unwrap(),
        };
        template(app.dir.path(), "hello", false);
        app
    }

    /// `unitgen ARGS --fleet --endpoint …` in the app's folder.
    fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        self.run_in(self.dir.path(), args)
    }

    /// The same in folder `dir`: its exit code, and what it said (stdout,
    /// then stderr).
    fn run_in(&self, dir: &Path, args: &[&str]) -> (Option<i32>, String) {
        let mut all = args.to_vec();
        all.extend(["--fleet", "--endpoint", self.fleet.endpoint()]);
        let out = unitgen(dir, &all);
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    }
}

#[test]
fn render_fleet_gives_template_units_with_x_fleet() {
    let dir = tempfile::tempdir().unwrap();
    template(dir.path(), "hi", true);
    let out = unitgen(dir.path(), &["render", "live", "--fleet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let units = text(&out.stdout);
    for name in [
        "shop-live-web@.service",
        "shop-live-web-announce@.service",
        "shop-live-db@.service",
    ] {
        assert!(
            units.contains(&format!("# ==> {name} <==")),
            "{name} missing:\n{units}"
        );
    }
    assert!(
        !units.contains("network.service"),
        "no network unit on a cluster"
    );
    assert!(units.contains("Conflicts=shop-live-web@*.service"));
    assert!(units.contains("MachineOf=shop-live-web@%i.service"));
    assert!(units.contains("BindsTo=shop-live-web@%i.service"));
    assert!(units.contains("MachineMetadata=role=web"));
    assert!(!units.contains("[Install]"), "fleet starts units itself");

    // web reaches db by name on the instance network, which is per machine:
    // copy N of web runs on the machine of copy N of db, after it.
    let web = units
        .split("# ==> ")
        .find(|u| u.starts_with("shop-live-web@.service"))
        .unwrap();
    assert!(
        web.contains("\nMachineOf=shop-live-db@%i.service\n"),
        "{web}"
    );
    assert!(
        web.contains("\nWants=shop-live-db@%i.service shop-live-web-announce@%i.service\n"),
        "the sidekick comes back whenever its copy restarts: {web}"
    );
    assert!(
        web.contains("\nAfter=docker.service shop-live-db@%i.service\n"),
        "{web}"
    );
    // Network: made sure of under a lock (destroy's cleanup unit removes it).
    assert!(web.contains("flock --wait 60 9"), "{web}");
}

#[test]
fn render_fleet_places_a_dependency_group_with_one_anchor() {
    // web needs db and cache by name; api is announced in etcd and found
    // there, so it is placed freely.
    let dir = tempfile::tempdir().unwrap();
    let yaml = "app: shop\n\
        services:\n\
        \x20 cache: {image: redis:7}\n\
        \x20 db: {image: postgres:16}\n\
        \x20 api: {image: api:1, ports: [\"9000:9000\"]}\n\
        \x20 web: {image: shop:1, depends_on: [db, cache, api]}\n\
        instances:\n\
        \x20 live: {}\n\
        etcd:\n\
        \x20 endpoints: http://10.0.0.1:2379\n";
    std::fs::write(dir.path().join("unitgen.yaml"), yaml).unwrap();
    let out = unitgen(dir.path(), &["render", "live", "--fleet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let units = text(&out.stdout);
    let unit = |name: &str| {
        units
            .split("# ==> ")
            .find(|u| u.starts_with(&format!("shop-live-{name}@.service")))
            .unwrap()
            .to_owned()
    };
    // cache (first in the template without such a dependency) anchors.
    assert!(!unit("cache").contains("MachineOf="));
    assert!(unit("db").contains("\nMachineOf=shop-live-cache@%i.service\n"));
    let web = unit("web");
    assert!(
        web.contains("\nMachineOf=shop-live-cache@%i.service\n"),
        "{web}"
    );
    assert_eq!(web.matches("MachineOf=").count(), 1, "{web}");
    assert!(
        web.contains("\nWants=shop-live-db@%i.service shop-live-cache@%i.service\n"),
        "{web}"
    );
    assert!(!unit("api").contains("MachineOf="), "found through etcd");
}

#[test]
fn apply_replaces_a_changed_service_copy_by_copy() {
    let fleet = FakeFleet::start();
    let endpoint = fleet.endpoint().to_string();
    let dir = tempfile::tempdir().unwrap();
    let fleet_args = ["--fleet", "--endpoint", endpoint.as_str()];
    template(dir.path(), "hello", false);

    let mut args = vec!["apply", "live"];
    args.extend(fleet_args);
    let out = unitgen(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let web_copies: Vec<_> = fleet
        .units()
        .into_iter()
        .filter(|u| u.name.starts_with("shop-live-web@") && u.name != "shop-live-web@.service")
        .collect();
    assert_eq!(
        web_copies.len(),
        2,
        "fleet.copies: 2 copies of a new service: {:?}\n{}",
        fleet.summaries(),
        text(&out.stderr)
    );
    assert!(
        web_copies
            .iter()
            .all(|u| u.desired_state == "launched" && u.current_state == "launched")
    );
    assert!(
        fleet.unit("shop-live-web-announce@1.service").is_some(),
        "sidekick beside copy 1"
    );

    let mut plan = vec!["plan", "live"];
    plan.extend(fleet_args);
    assert_eq!(
        unitgen(dir.path(), &plan).status.code(),
        Some(0),
        "nothing to do right after apply"
    );

    template(dir.path(), "bonjour", false);
    let out = unitgen(dir.path(), &plan);
    assert_eq!(out.status.code(), Some(2));
    let shown = text(&out.stdout);
    assert!(shown.contains("~ shop-live-web@.service"), "{shown}");
    assert!(
        shown.contains("GREETING=bonjour"),
        "the plan shows the changed line:\n{shown}"
    );
    assert!(!shown.contains("~ shop-live-db@.service"));
    // With colours, the diff's are colours, not their escapes shown.
    let colored = text(&unitgen(dir.path(), &[&plan[..], &["--color", "always"]].concat()).stdout);
    assert!(
        colored.contains("\u{1b}[32m+") && !colored.contains("\\u{1b}"),
        "{colored:?}"
    );

    fleet.clear_log();
    let out = unitgen(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for copy in ["shop-live-web@1.service", "shop-live-web@2.service"] {
        let unit = fleet.unit(copy).unwrap();
        let exec = unit.option("Service", "ExecStart").unwrap();
        assert!(
            exec.contains("GREETING=bonjour"),
            "{copy} runs the new template: {exec}"
        );
        assert_eq!(unit.current_state, "launched");
    }
    let writes = fleet.writes();
    assert!(
        !writes.iter().any(|w| w.contains("shop-live-db")),
        "db untouched: {writes:?}"
    );
    let pos = |needle: &str| {
        writes
            .iter()
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{needle} not in {writes:?}"))
    };
    assert!(pos("SET shop-live-web@1.service inactive") < pos("SUBMIT shop-live-web@1.service"));
    assert!(
        pos("SUBMIT shop-live-web@1.service") < pos("SET shop-live-web@2.service inactive"),
        "one copy at a time"
    );

    let mut status = vec!["status", "live", "--json"];
    status.extend(fleet_args);
    let out = unitgen(dir.path(), &status);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        rows["units"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["unit"] == "shop-live-web@2.service" && r["current_state"] == "launched")
    );

    let mut destroy = vec!["destroy", "live"];
    destroy.extend(fleet_args);
    let out = unitgen(dir.path(), &destroy);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        fleet
            .units()
            .iter()
            .all(|u| !u.name.starts_with("shop-live-"))
    );
}

#[test]
fn fleet_errors_say_what_unitgen_was_doing() {
    let dir = tempfile::tempdir().unwrap();
    template(dir.path(), "hi", false);
    let out = unitgen(
        dir.path(),
        &[
            "apply",
            "live",
            "--fleet",
            "--endpoint",
            "http://127.0.0.1:1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("127.0.0.1:1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn status_fleet_shows_what_the_sidekicks_announced() {
    // A real etcd; the fake fleet holds the units (nothing runs them), so
    // the key is written here as the sidekick on machine `fleet2` would.
    let etcd = Etcd::start(false);
    let dir = tempfile::tempdir().unwrap();
    template(dir.path(), "hi", false);
    let yaml = std::fs::read_to_string(dir.path().join("unitgen.yaml"))
        .unwrap()
        .replace("http://10.0.0.1:2379", &etcd.endpoint());
    std::fs::write(dir.path().join("unitgen.yaml"), yaml).unwrap();
    let fleet = FakeFleet::start();
    let fleet_args = ["--fleet", "--endpoint", fleet.endpoint()];
    let mut apply = vec!["apply", "live"];
    apply.extend(fleet_args);
    let out = unitgen(dir.path(), &apply);
    assert!(out.status.success(), "{}", text(&out.stderr));
    etcd.put("/unitgen/shop/live/web/fleet2", "10.1.2.3:8080");

    let mut status = vec!["status", "live"];
    status.extend(fleet_args);
    let out = unitgen(dir.path(), &status);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains(
            "web:\n  announced: 10.1.2.3:8080 by fleet2, under /unitgen/shop/live/web/ in etcd v3"
        ),
        "{table}"
    );
    status.push("--json");
    let out = unitgen(dir.path(), &status);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["announced"]["web"]["hosts"]["fleet2"], "10.1.2.3:8080");
}

// What an operator does behind unitgen's back with fleetctl (stop a copy,
// destroy every copy of a service, destroy one of several, start one
// beyond `fleet.copies`) is named by plan (exit 2) and status (exit 3),
// never "up to date", and apply runs the instance as its template says.
#[test]
fn copies_stopped_or_destroyed_by_hand_are_not_up_to_date_and_apply_runs_them() {
    let app = FleetApp::new();
    let fleet = &app.fleet;
    let run = |verb: &str| app.run(&[verb, "live"]);
    assert_eq!(run("status").0, Some(4), "nothing in fleet yet");
    assert_eq!(run("apply").0, Some(0));
    assert_eq!(run("status").0, Some(0));

    let client = unitgen::fleet::FleetClient::new(fleet.endpoint()).unwrap();
    // fleetctl stop shop-live-web@2.service; fleetctl destroy shop-live-db@{1,2}
    client
        .put_unit("shop-live-web@2.service", JobState::Loaded, &[])
        .unwrap();
    for name in ["shop-live-db@1.service", "shop-live-db@2.service"] {
        client.delete_unit(name).unwrap();
    }
    // fleetctl start shop-live-web@3.service
    let options = (client.list_units().unwrap().into_iter())
        .find(|u| u.name == "shop-live-web@.service")
        .unwrap()
        .options;
    client
        .put_unit("shop-live-web@3.service", JobState::Launched, &options)
        .unwrap();
    let (code, plan) = run("plan");
    assert_eq!(code, Some(2), "{plan}");
    for line in [
        "    shop-live-web@2.service is not running: fleet is told to keep it loaded (as `fleetctl stop` or `fleetctl load` leaves it), not launched",
        "    shop-live-db@1.service is missing: fleet has no such copy",
        "    shop-live-db@2.service is missing: fleet has no such copy",
        "~ shop-live-web@.service (copies: replace 1, 2, destroy 3)",
        "    shop-live-web@3.service is one too many: the instance's fleet.copies is 2",
    ] {
        assert!(plan.contains(line), "{line}\nnot in:\n{plan}");
    }
    let (code, status) = run("status");
    assert_eq!(code, Some(3), "{status}");
    for line in [
        "! shop-live-db@.service is not running: fleet has no copy of it",
        "! shop-live-web@2.service is not running: fleet is told to keep it loaded",
        "! shop-live-web@3.service is not running: one too many: the instance's fleet.copies is 2",
    ] {
        assert!(status.contains(line), "{line}\nnot in:\n{status}");
    }

    let (code, applied) = run("apply");
    assert_eq!(code, Some(0), "{applied}");
    for name in [
        "shop-live-web@2.service",
        "shop-live-db@1.service",
        "shop-live-db@2.service",
    ] {
        assert_eq!(
            fleet.unit(name).unwrap().desired_state,
            "launched",
            "{name}"
        );
        assert!(fleet.process(name).is_some(), "{name} does not run");
    }
    assert!(fleet.unit("shop-live-web@3.service").is_none());
    assert_eq!(run("plan").0, Some(0));
    assert_eq!(run("status").0, Some(0));

    // The last copy of two destroyed by hand: status knows the count from
    // the template; without one, it sees a gap below the highest copy.
    client.delete_unit("shop-live-db@2.service").unwrap();
    let (code, status) = run("status");
    let line = "! shop-live-db@.service is not running: fleet has no copy 2 (destroyed by hand?)";
    assert!(code == Some(3) && status.contains(line), "{status}");
    let (code, plan) = run("plan");
    assert!(
        code == Some(2) && plan.contains("    shop-live-db@2.service is missing"),
        "{plan}"
    );
    assert_eq!(run("apply").0, Some(0));
    assert!(fleet.process("shop-live-db@2.service").is_some());
    assert_eq!(run("plan").0, Some(0));
    client.delete_unit("shop-live-db@1.service").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let (code, status) = app.run_in(elsewhere.path(), &["status", "shop/live"]);
    let line = "! shop-live-db@.service is not running: fleet has no copy 1 (destroyed by hand?)";
    assert!(code == Some(3) && status.contains(line), "{status}");
}

// A copy whose text was changed in fleet by hand (a PUT of other options
// under its name, which live fleet answers 201: it loads the new file and
// leaves the old process running) was "up to date" for status (exit 0)
// and "changed: roll 1 running copies" for plan, with no diff and no word
// of which copy or why. Each now names the copy and plan shows its diff;
// apply replaces it, so that it runs its template's text again.
#[test]
fn a_copy_or_template_changed_in_fleet_by_hand_is_named_and_apply_replaces_it() {
    let app = FleetApp::new();
    let fleet = &app.fleet;
    let run = |verb: &str| app.run(&[verb, "live"]);
    assert_eq!(run("apply").0, Some(0));
    let client = unitgen::fleet::FleetClient::new(fleet.endpoint()).unwrap();
    let hacked = |name: &str| -> Vec<unitgen::unit_file::UnitOption> {
        let mut options = client.get_unit(name).unwrap().unwrap().options;
        for option in &mut options {
            option.value = option.value.replace("GREETING=hello", "GREETING=hacked");
        }
        options
    };
    client
        .put_unit(
            "shop-live-web@2.service",
            JobState::Launched,
            &hacked("shop-live-web@2.service"),
        )
        .unwrap();
    assert!(!fleet.runs_its_unit_file("shop-live-web@2.service"));
    let why = "is not as applied: fleet holds other unit text under its name than its template \
               shop-live-web@.service's (changed by hand?)";
    let (code, plan) = run("plan");
    assert_eq!(code, Some(2), "{plan}");
    for line in [
        "~ shop-live-web@.service (copies: replace 2)\n".to_owned(),
        format!("    shop-live-web@2.service {why}"),
        "--- shop-live-web@2.service".to_owned(),
        "-ExecStart=/usr/bin/docker run".to_owned(),
        "GREETING=hacked".to_owned(),
    ] {
        assert!(plan.contains(&line), "{line}\nnot in:\n{plan}");
    }
    assert!(!plan.contains("shop-live-web@1.service"), "{plan}");
    let (code, status) = run("status");
    assert_eq!(code, Some(3), "{status}");
    let line = format!("! shop-live-web@2.service {why}");
    assert!(status.contains(&line), "{line}\nnot in:\n{status}");
    assert!(!status.contains("! shop-live-web@1.service"), "{status}");
    let (code, applied) = run("apply");
    assert_eq!(code, Some(0), "{applied}");
    assert!(fleet.runs_its_unit_file("shop-live-web@2.service"));
    assert!(!exec_start(fleet, "shop-live-web@2.service").contains("hacked"));
    assert_eq!(run("plan").0, Some(0));
    assert_eq!(run("status").0, Some(0));

    // The template changed by hand: its copies are not its text any more.
    client
        .put_unit(
            "shop-live-web@.service",
            JobState::Inactive,
            &hacked("shop-live-web@.service"),
        )
        .unwrap();
    let (code, plan) = run("plan");
    assert!(
        code == Some(2) && plan.contains("-ExecStart=") && plan.contains("GREETING=hacked"),
        "{plan}"
    );
    let (code, status) = run("status");
    assert_eq!(code, Some(3), "{status}");
    for copy in ["shop-live-web@1.service", "shop-live-web@2.service"] {
        assert!(
            status.contains(&format!("! {copy} is not as applied")),
            "{status}"
        );
    }
    assert_eq!(run("apply").0, Some(0));
    assert_eq!(run("plan").0, Some(0));
    assert_eq!(run("status").0, Some(0));

    // The template destroyed by hand (`fleetctl destroy web@.service`): its
    // copies run on, as applied; the template is submitted again.
    let starts = fleet.unit("shop-live-web@1.service").unwrap().starts;
    client.delete_unit("shop-live-web@.service").unwrap();
    let (code, plan) = run("plan");
    assert_eq!(code, Some(2), "{plan}");
    assert!(
        plan.contains(
            "~ shop-live-web@.service (fleet has no such template, destroyed by hand or by an apply cut short?: submit it)\n"
        ),
        "{plan}"
    );
    assert!(!plan.contains("is not as applied"), "{plan}");
    let (code, status) = run("status");
    assert_eq!(code, Some(3), "{status}");
    assert!(
        status.contains("! shop-live-web@1.service is not as applied: fleet has no template shop-live-web@.service (destroyed by hand, or by an apply cut short?)"),
        "{status}"
    );
    assert_eq!(run("apply").0, Some(0));
    assert!(fleet.unit("shop-live-web@.service").is_some());
    assert_eq!(
        fleet.unit("shop-live-web@1.service").unwrap().starts,
        starts
    );
    assert_eq!(run("plan").0, Some(0));
    assert_eq!(run("status").0, Some(0));
}

// A global service stopped on its machines behind fleet's back (live:
// `systemctl stop` there; fleet still says launched, and gives a global
// unit no machine and no current state) was "up to date" for plan, status
// and apply; `restart --fleet` of a global service waited --fleet-wait for
// a placement that never comes and failed, leaving it stopped. Each
// machine's state is read now: plan and status name it, apply runs it
// again, and start/stop/restart await it on every machine.
#[test]
fn a_global_service_is_seen_and_awaited_on_every_machine() {
    let app = FleetApp::new();
    let fleet = &app.fleet;
    let yaml = std::fs::read_to_string(app.dir.path().join("unitgen.yaml")).unwrap();
    std::fs::write(
        app.dir.path().join("unitgen.yaml"),
        yaml.replace("  copies: 2\n", "  global: [db]\n"),
    )
    .unwrap();
    let run = |args: &[&str]| app.run(args);
    let (code, said) = run(&["apply", "live"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("shop-live-db@1.service is running on every machine"),
        "{said}"
    );
    // A row per machine, with what systemd says there: fleet keeps no
    // current state of a global unit (its list said `inactive`, shown as
    // if the running copy were not).
    let (code, status) = run(&["status", "live"]);
    assert_eq!(code, Some(0), "{status}");
    let rows: Vec<Vec<&str>> = (status.lines())
        .filter(|l| l.starts_with("shop-live-db@1.service "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        ["machine-1", "machine-2", "machine-3"].map(|m| vec![
            "shop-live-db@1.service",
            "launched",
            "-",
            m,
            "active",
            "(exited)"
        ]),
        "{status}"
    );
    // exec and logs name each machine that runs it (it was "runs on no
    // machine now": fleet gives a global copy none).
    let (code, said) = run(&["exec", "live", "db"]);
    assert_eq!(code, Some(1), "{said}");
    for machine in ["machine-1", "machine-2", "machine-3"] {
        let line = format!(
            "shop-live-db@1.service runs on machine {machine} (127.0.0.1): there, `docker exec -it shop-live-db sh`"
        );
        assert!(flat(&said).contains(&line), "{line}\nnot in:\n{said}");
    }

    fleet.stop_process("shop-live-db@1.service");
    let why = "is not running: systemd reports inactive/dead on machine machine-1; \
               systemd reports inactive/dead on machine machine-2";
    let (code, plan) = run(&["plan", "live"]);
    assert_eq!(code, Some(2), "{plan}");
    assert!(
        plan.contains("~ shop-live-db@.service (copies: replace 1)"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("    shop-live-db@1.service {why}")),
        "{plan}"
    );
    let (code, status) = run(&["status", "live"]);
    assert_eq!(code, Some(3), "{status}");
    assert!(
        status.contains(&format!("! shop-live-db@1.service {why}")),
        "{status}"
    );
    let (code, said) = run(&["apply", "live"]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(run(&["plan", "live"]).0, Some(0));
    assert_eq!(run(&["status", "live"]).0, Some(0));

    // Stopped behind fleet's back again, then restarted; stopped and
    // started with unitgen.
    fleet.stop_process("shop-live-db@1.service");
    let (code, said) = run(&["restart", "live", "db", "--fleet-wait", "5"]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(run(&["status", "live"]).0, Some(0));
    let (code, said) = run(&["stop", "live", "db", "--fleet-wait", "5"]);
    assert_eq!(code, Some(0), "{said}");
    let (code, status) = run(&["status", "live"]);
    assert!(
        code == Some(3)
            && status.contains(
                "! shop-live-db@1.service is not running: fleet is told to keep it loaded"
            ),
        "{status}"
    );
    let (code, said) = run(&["start", "live", "db", "--fleet-wait", "5"]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(run(&["status", "live"]).0, Some(0));

    // A change whose start fails on the machines is not taken as done: the
    // last good unit is put back and runs.
    fleet.fail_units_containing("postgres:17");
    std::fs::write(
        app.dir.path().join("unitgen.yaml"),
        std::fs::read_to_string(app.dir.path().join("unitgen.yaml"))
            .unwrap()
            .replace("postgres:16", "postgres:17"),
    )
    .unwrap();
    let (code, said) = run(&["apply", "live", "--fleet-wait", "5"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        flat(&said).contains("waiting for shop-live-db@1.service to run on every machine: it failed on machine machine-1"),
        "{said}"
    );
    let db = fleet.unit("shop-live-db@1.service").unwrap();
    assert!(
        db.option("Service", "ExecStart")
            .unwrap()
            .contains("postgres:16")
    );
    let (code, status) = run(&["status", "live"]);
    assert_eq!(code, Some(0), "{status}");
}

// fleet keeps no revisions: history and rollback with --fleet say so (they
// were "unexpected argument '--fleet'", with a tip to use --file).
#[test]
fn history_and_rollback_say_fleet_keeps_no_revisions() {
    let dir = tempfile::tempdir().unwrap();
    template(dir.path(), "hi", false);
    for verb in ["history", "rollback"] {
        let out = unitgen(dir.path(), &[verb, "live", "--fleet"]);
        assert_eq!(out.status.code(), Some(1), "{verb}");
        let said = text(&out.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            said.contains(&format!(
                "`unitgen {verb} --fleet`: unitgen records no revisions on fleet"
            )),
            "{said}"
        );
    }
}

// start, stop and restart --fleet were "unexpected argument '--fleet'";
// they act on the copies fleet holds, through their desired state, and
// wait for their machines as apply does.
#[test]
fn start_stop_and_restart_act_on_the_copies_in_fleet() {
    let app = FleetApp::new();
    let fleet = &app.fleet;
    let run = |args: &[&str]| app.run(args);
    assert_eq!(run(&["apply", "live"]).0, Some(0));
    let desired = |name: &str| fleet.unit(name).unwrap().desired_state;
    let runs = |name: &str| fleet.process(name).is_some();
    let web = [
        "shop-live-web@1.service",
        "shop-live-web@2.service",
        "shop-live-web-announce@1.service",
        "shop-live-web-announce@2.service",
    ];
    let db = ["shop-live-db@1.service", "shop-live-db@2.service"];

    // stop web: its copies and their sidekicks, not db.
    fleet.clear_log();
    let (code, said) = run(&["stop", "live", "web"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("shop-live: 4 units stopped in fleet"),
        "{said}"
    );
    for name in web {
        assert_eq!(desired(name), "loaded", "{name}");
        assert!(!runs(name), "{name} still runs");
    }
    for name in db {
        assert!(desired(name) == "launched" && runs(name), "{name}");
    }
    assert!(
        fleet.writes().iter().all(|w| w.ends_with(" loaded")),
        "a stop only sets copies loaded: {:?}",
        fleet.writes()
    );
    let (code, plan) = run(&["plan", "live"]);
    assert_eq!(code, Some(2), "plan sees them stopped: {plan}");
    assert_eq!(run(&["status", "live"]).0, Some(3));
    let ls = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--fleet", "--endpoint", fleet.endpoint()]);
        text(&unitgen(app.dir.path(), &all).stdout)
    };
    let listed = ls(&["ls"]);
    assert!(
        listed.contains("\nshop             live             2         2/4 running\n"),
        "{listed}"
    );
    let rows: serde_json::Value = serde_json::from_str(&ls(&["ls", "--json"])).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"app": "shop", "instance": "live", "services": 2, "copies": 4, "copies_running": 2}])
    );

    // start db only: nothing to do; start web: web and its sidekicks.
    let (code, said) = run(&["start", "live", "db"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("0 units started in fleet")
            && said.contains(
                "2 units already running (shop-live-db@1.service, shop-live-db@2.service)"
            ),
        "{said}"
    );
    let (code, said) = run(&["start", "live", "web"]);
    assert_eq!(code, Some(0), "{said}");
    for name in web.iter().chain(&db) {
        assert!(desired(name) == "launched" && runs(name), "{name}");
    }
    assert_eq!(run(&["plan", "live"]).0, Some(0));
    assert_eq!(run(&["status", "live"]).0, Some(0));

    // Stopped db: starting web starts what web wants, as systemd would on
    // its machine (fleet would then say loaded for a running db).
    assert_eq!(run(&["stop", "live", "db"]).0, Some(0));
    assert!(web.iter().all(|name| runs(name)), "web does not require db");
    let (code, said) = run(&["start", "live", "web"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("2 units started"), "{said}");
    for name in db {
        assert!(desired(name) == "launched" && runs(name), "{name}");
    }

    // restart web: each copy stopped and started again, one at a time; db
    // untouched.
    let starts = |name: &str| fleet.unit(name).unwrap().starts;
    let before: Vec<u32> = web.iter().chain(&db).map(|n| starts(n)).collect();
    fleet.clear_log();
    let (code, said) = run(&["restart", "live", "web"]);
    assert_eq!(code, Some(0), "{said}");
    let after: Vec<u32> = web.iter().chain(&db).map(|n| starts(n)).collect();
    assert_eq!(
        after,
        [
            before[0] + 1,
            before[1] + 1,
            before[2] + 1,
            before[3] + 1,
            before[4],
            before[5]
        ],
        "web's copies and sidekicks started again, db's not"
    );
    let writes = fleet.writes();
    let pos = |needle: &str| {
        (writes.iter())
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{needle} not in {writes:?}"))
    };
    assert!(
        pos("SET shop-live-web@1.service launched") < pos("SET shop-live-web@2.service loaded"),
        "copy 2 stops only once copy 1 runs again: {writes:?}"
    );
    assert!(
        pos("SET shop-live-web-announce@1.service loaded")
            < pos("SET shop-live-web@1.service loaded")
            && pos("SET shop-live-web@1.service launched")
                < pos("SET shop-live-web-announce@1.service launched"),
        "a sidekick stops before its service and starts after it: {writes:?}"
    );
    assert!(web.iter().chain(&db).all(|name| runs(name)));
    assert_eq!(run(&["plan", "live"]).0, Some(0));

    // A service fleet does not have, and one whose copies were destroyed by
    // hand: said, and nothing written.
    fleet.clear_log();
    let (code, said) = run(&["restart", "live", "cache"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        flat(&said).contains("fleet has no such service of this instance; it has db, web"),
        "{said}"
    );
    let (code, said) = run(&["stop", "live", "\x1b[2Jweb"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("looking for service `\\u{1b}[2Jweb`") && !said.contains('\x1b'),
        "{said:?}"
    );
    let (code, said) = run(&["start", "nothing"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        flat(&said).contains("fleet has no unit of this instance (apply it first)"),
        "{said}"
    );
    let client = unitgen::fleet::FleetClient::new(fleet.endpoint()).unwrap();
    for name in db {
        client.delete_unit(name).unwrap();
    }
    fleet.clear_log();
    let (code, said) = run(&["start", "live"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        flat(&said).contains("fleet has no copy of it (destroyed by hand?): `unitgen apply INSTANCE --fleet` makes them. Nothing was changed"),
        "{said}"
    );
    assert!(fleet.writes().is_empty(), "{:?}", fleet.writes());
}

// A copy that fails to start: the error names it and its machine once.
#[test]
fn a_copy_that_fails_to_start_is_named_with_its_machine() {
    let app = FleetApp::new();
    let fleet = &app.fleet;
    assert_eq!(app.run(&["apply", "live"]).0, Some(0));
    fleet.fail_units_containing("GREETING=hello");
    let (code, said) = app.run(&["restart", "live", "web", "--fleet-wait", "10"]);
    assert_eq!(code, Some(1), "{said}");
    let said = flat(&said);
    assert!(
        said.contains("restart of shop-live in fleet failed: waiting for shop-live-web@1.service to run: it failed on machine machine-"),
        "{said}"
    );
}

// logs, exec, backup, backups, restore and pull with --fleet were clap's
// "unexpected argument '--fleet'" (tip: --file). fleet's API has no
// journal, no way into a container, no image fetch and no backups: each
// says so, and logs and exec name the machine of each copy and what to run
// there.
#[test]
fn commands_fleet_cannot_do_say_where_to_do_them() {
    let app = FleetApp::new();
    let (fleet, dir) = (&app.fleet, &app.dir);
    let run = |args: &[&str]| {
        let (code, said) = app.run(args);
        (code, flat(&said))
    };
    assert_eq!(run(&["apply", "live"]).0, Some(0));
    let machine = |name: &str| fleet.unit(name).unwrap().machine_id;
    fleet.clear_log();

    let (code, said) = run(&["logs", "live", "web"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("`unitgen logs --fleet`: fleet's API has no journals"),
        "{said}"
    );
    for copy in [
        "shop-live-web@1.service",
        "shop-live-web@2.service",
        "shop-live-web-announce@2.service",
    ] {
        let line = format!(
            "{copy} runs on machine {} (127.0.0.1): there, `journalctl -u {copy}`",
            machine(copy)
        );
        assert!(said.contains(&line), "{line}\nnot in: {said}");
    }
    assert!(!said.contains("shop-live-db@"), "only web's: {said}");

    let mut exec = vec![
        "exec",
        "live",
        "db",
        "--fleet",
        "--endpoint",
        fleet.endpoint(),
    ];
    exec.extend(["--", "psql", "-U", "a b"]);
    let out = unitgen(dir.path(), &exec);
    let said = flat(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{said}");
    let line = format!(
        "shop-live-db@2.service runs on machine {} (127.0.0.1): there, `docker exec -it shop-live-db psql -U 'a b'`",
        machine("shop-live-db@2.service")
    );
    assert!(said.contains(&line), "{line}\nnot in: {said}");

    for (verb, why) in [
        ("backup", "backups are per host"),
        ("backups", "backups are per host"),
        ("restore", "backups are per host"),
        ("pull", "fleet's API cannot fetch images on its machines"),
    ] {
        let (code, said) = run(&[verb, "live"]);
        assert_eq!(code, Some(1), "{verb}: {said}");
        assert!(
            said.contains(&format!("`unitgen {verb} --fleet`: {why}")),
            "{verb}: {said}"
        );
    }
    assert!(fleet.writes().is_empty(), "{:?}", fleet.writes());
}

// status and destroy --fleet with no readable template found the app from
// THIS host's installed units: another app's instance of the same name
// there, and destroy --fleet removed that app's instance from fleet. They
// ask fleet now, and want APP/INSTANCE when fleet has several.
#[test]
fn without_a_template_status_and_destroy_find_the_app_in_fleet() {
    let app = FleetApp::new();
    let (fleet, dir) = (&app.fleet, &app.dir);
    let run = |dir: &Path, args: &[&str]| {
        let (code, said) = app.run_in(dir, args);
        (code, flat(&said))
    };
    assert_eq!(run(dir.path(), &["apply", "live"]).0, Some(0));
    let elsewhere = tempfile::tempdir().unwrap();
    let (code, said) = run(elsewhere.path(), &["status", "live"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("could not be read; acting on fleet's units of app shop"),
        "{said}"
    );

    // A second app with an instance `live`: which one is not guessed.
    let other = tempfile::tempdir().unwrap();
    template(other.path(), "hi", false);
    let yaml = std::fs::read_to_string(other.path().join("unitgen.yaml")).unwrap();
    std::fs::write(
        other.path().join("unitgen.yaml"),
        yaml.replace("app: shop", "app: mall"),
    )
    .unwrap();
    assert_eq!(run(other.path(), &["apply", "live"]).0, Some(0));
    let (code, said) = run(elsewhere.path(), &["destroy", "live"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(
            "fleet has instance `live` of several apps (mall, shop): name it APP/INSTANCE"
        ),
        "{said}"
    );
    assert!(fleet.unit("shop-live-web@.service").is_some());
    assert_eq!(run(elsewhere.path(), &["destroy", "mall/live"]).0, Some(0));
    assert!(fleet.unit("mall-live-web@.service").is_none());
    assert!(fleet.unit("shop-live-web@.service").is_some());
}

/// One service of two copies with its sidekick, on its own: no other
/// service's copies tell how many it has (in `template`, web is placed
/// with db's copies).
fn lone_web(dir: &Path, greeting: &str) {
    let yaml = format!(
        "app: shop\n\
         services:\n\
         \x20 web:\n\
         \x20   image: shop:1\n\
         \x20   ports: [\"8080:80\"]\n\
         \x20   environment: {{GREETING: \"{greeting}\"}}\n\
         instances:\n\
         \x20 live: {{}}\n\
         etcd:\n\
         \x20 endpoints: http://10.0.0.1:2379\n\
         fleet:\n\
         \x20 copies: 2\n"
    );
    std::fs::write(dir.join("unitgen.yaml"), yaml).unwrap();
}

/// What fleet runs of `lone_web` that is not the template's as `greeting`
/// says: copies 1 and 2 of web and its sidekick, launched, each running its
/// unit file, web's with `greeting`.
fn runs_exactly(fleet: &FakeFleet, greeting: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let copies: Vec<String> = (fleet.units().into_iter())
        .map(|u| u.name)
        .filter(|n| !n.contains("@."))
        .collect();
    let expected: Vec<String> = ["web", "web-announce"]
        .iter()
        .flat_map(|s| (1..=2).map(move |i| format!("shop-live-{s}@{i}.service")))
        .collect();
    let (mut sorted, mut want) = (copies.clone(), expected.clone());
    sorted.sort();
    want.sort();
    if sorted != want {
        wrong.push(format!("copies {sorted:?}, not {want:?}"));
    }
    for name in &copies {
        let unit = fleet.unit(name).unwrap();
        if unit.desired_state != "launched" || !fleet.runs_its_unit_file(name) {
            wrong.push(format!("{name} is {} and does not run", unit.desired_state));
        }
        if name.starts_with("shop-live-web@")
            && !unit
                .option("Service", "ExecStart")
                .is_some_and(|e| e.contains(&format!("GREETING={greeting}")))
        {
            wrong.push(format!("{name} runs another template"));
        }
    }
    wrong
}

/// An `apply --fleet` killed between two of its requests to fleet (after
/// destroying copy 1 of 2, before submitting it again) lost that copy for
/// good: plan counted the copies fleet had, and the next apply rolled the
/// other one and said up to date with one copy of two. A `restart --fleet`
/// killed halfway leaves copies stopped. Walked at every write of each: plan
/// and status say the instance is not as its template, and the next apply
/// brings back every copy, running the template.
#[test]
fn an_apply_or_restart_killed_between_fleet_requests_is_told_and_finished_by_the_next_apply() {
    let run = |fleet: &FakeFleet, dir: &Path, verb: &str| {
        let out = unitgen(
            dir,
            &[verb, "live", "--fleet", "--endpoint", fleet.endpoint()],
        );
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    // One instance running `hello` in fleet, `greeting` in its template.
    let setup = |greeting: &str| {
        let fleet = FakeFleet::start();
        fleet.set_forget_delay(std::time::Duration::from_millis(300));
        let dir = tempfile::tempdir().unwrap();
        lone_web(dir.path(), "hello");
        let (code, said) = run(&fleet, dir.path(), "apply");
        assert_eq!(code, Some(0), "{said}");
        lone_web(dir.path(), greeting);
        fleet.clear_log();
        (fleet, dir)
    };
    // How many writes each command makes when nothing stops it.
    let writes = |verb: &str, greeting: &str| {
        let (fleet, dir) = setup(greeting);
        let (code, said) = run(&fleet, dir.path(), verb);
        assert_eq!(code, Some(0), "{said}");
        fleet.writes().len()
    };
    let walk: Vec<(&str, &str, usize)> = [("apply", "bonjour"), ("restart", "hello")]
        .into_iter()
        .flat_map(|(verb, greeting)| (1..writes(verb, greeting)).map(move |k| (verb, greeting, k)))
        .collect();
    assert!(walk.len() > 10, "{walk:?}");
    // Each kill point in its own fake fleet, all at once: mostly waiting.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let walkers: Vec<_> = (walk.iter())
            .map(|&(verb, greeting, k)| {
                scope.spawn(move || {
                    let (fleet, dir) = setup(greeting);
                    fleet.hold_after_writes(k);
                    let mut child = Command::new(env!("CARGO_BIN_EXE_unitgen"))
                        .args([verb, "live", "--fleet", "--endpoint", fleet.endpoint()])
                        .current_dir(dir.path())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap();
                    while !fleet.holding() {
                        if let Some(status) = child.try_wait().unwrap() {
                            return Some(format!("{verb} ended ({status}) before write {k}"));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    fleet.release();
                    let at = format!(
                        "{verb} killed after write {k} ({:?})",
                        fleet.writes().last()
                    );
                    // A roll killed before its last write has copies to
                    // replace; a restart's copies may all be launched again,
                    // which is what the template asks (a restart is no state
                    // to reach), but then they must run it.
                    let (code, plan) = run(&fleet, dir.path(), "plan");
                    let done = code == Some(0) && verb == "restart";
                    if code != Some(2) && !done {
                        return Some(format!("{at}: plan exits {code:?}, not 2:\n{plan}"));
                    }
                    let wrong = runs_exactly(&fleet, greeting);
                    if done && !wrong.is_empty() {
                        return Some(format!("{at}: plan says up to date, but {wrong:?}"));
                    }
                    // Whether each copy runs and is its template in fleet
                    // (a roll killed between copies leaves some of each),
                    // not whether it runs the template file.
                    let (code, status) = run(&fleet, dir.path(), "status");
                    let stopped = wrong.iter().any(|w| w.contains("does not run"));
                    let mixed = fleet.units().iter().any(|copy| {
                        let template = match copy.name.split_once('@') {
                            Some((service, _)) if !copy.name.contains("@.") => {
                                format!("{service}@.service")
                            }
                            _ => return false,
                        };
                        fleet
                            .unit(&template)
                            .is_some_and(|t| t.options != copy.options)
                    });
                    if code != Some(if stopped || mixed { 3 } else { 0 }) {
                        return Some(format!(
                            "{at}: status exits {code:?} ({wrong:?}):\n{status}"
                        ));
                    }
                    let (code, said) = run(&fleet, dir.path(), "apply");
                    if code != Some(0) {
                        return Some(format!("{at}: the next apply failed:\n{said}"));
                    }
                    let wrong = runs_exactly(&fleet, greeting);
                    if !wrong.is_empty() {
                        return Some(format!("{at}: after the next apply: {wrong:?}"));
                    }
                    let (code, plan) = run(&fleet, dir.path(), "plan");
                    (code != Some(0)).then(|| format!("{at}: plan after the next apply:\n{plan}"))
                })
            })
            .collect();
        (walkers.into_iter())
            .filter_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// One template, two instances on two clusters: without --endpoint, every
// command went to fleet's default socket, whichever cluster that was (an
// apply of `live` on a `staging` node went to staging's fleet). Each
// instance's `fleet.endpoint` (from its values) is where its commands go;
// --endpoint still overrides it; a bad one is refused at its line.
#[test]
fn each_instance_goes_to_its_own_fleet() {
    let (live, staging) = (FakeFleet::start(), FakeFleet::start());
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "app: shop\n\
         services:\n\
         \x20 web: {{image: shop:1}}\n\
         instances:\n\
         \x20 live: {{fleet: \"{}\"}}\n\
         \x20 staging: {{fleet: \"{}\"}}\n\
         fleet:\n\
         \x20 endpoint: \"{{{{ fleet }}}}\"\n",
        live.endpoint(),
        staging.endpoint()
    );
    std::fs::write(dir.path().join("unitgen.yaml"), &yaml).unwrap();
    let run = |args: &[&str]| {
        let out = unitgen(dir.path(), args);
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    for (instance, fleet, other) in [("live", &live, &staging), ("staging", &staging, &live)] {
        let (code, said) = run(&["apply", instance, "--fleet"]);
        assert_eq!(code, Some(0), "{said}");
        assert!(
            said.contains(&format!("is up to date in fleet ({})", fleet.endpoint())),
            "{said}"
        );
        let copy = format!("shop-{instance}-web@1.service");
        assert!(fleet.unit(&copy).is_some() && other.unit(&copy).is_none());
        for command in ["status", "plan"] {
            let (code, said) = run(&[command, instance, "--fleet"]);
            assert_eq!(code, Some(0), "{command}: {said}");
        }
        let (code, said) = run(&["restart", instance, "--fleet"]);
        assert_eq!(code, Some(0), "{said}");
        assert!(said.contains(fleet.endpoint()), "{said}");
    }
    // exec and logs ask the instance's fleet where its copies run.
    for command in [
        &["exec", "live", "web", "--fleet"][..],
        &["logs", "live", "--fleet"],
    ] {
        let (code, said) = run(command);
        assert_eq!(code, Some(1), "{said}");
        assert!(
            flat(&said).contains("shop-live-web@1.service runs on machine machine-"),
            "{said}"
        );
    }
    // --endpoint overrides it: live's instance is not in staging's fleet.
    let (code, said) = run(&[
        "status",
        "live",
        "--fleet",
        "--endpoint",
        staging.endpoint(),
    ]);
    assert_eq!(code, Some(4), "{said}");
    let (code, said) = run(&["destroy", "staging", "--fleet"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        staging
            .units()
            .iter()
            .all(|u| !u.name.starts_with("shop-staging-web"))
    );
    assert!(live.unit("shop-live-web@1.service").is_some());

    std::fs::write(
        dir.path().join("unitgen.yaml"),
        yaml.replace("{{ fleet }}", "https://fleet.example:49153"),
    )
    .unwrap();
    let (code, said) = run(&["plan", "live", "--fleet"]);
    assert_eq!(code, Some(1), "{said}");
    let said = flat(&said);
    assert!(
        said.contains("fleet endpoint `https://fleet.example:49153`: unsupported scheme `https` (use http:// or unix://)")
            && said.contains("unitgen.yaml:8:"),
        "{said}"
    );
}

// Seen live: two applies of one instance at once. The second said "up to
// date" while the first, which waited for a copy the second had replaced,
// then put its old units back over the second's.
#[test]
fn two_applies_of_one_instance_from_one_machine_take_turns() {
    let app = FleetApp::new();
    let fleet = &app.fleet;
    assert_eq!(app.run(&["apply", "live"]).0, Some(0));
    fleet.clear_log();
    // The first apply's copy 1 stays starting until this test lets it run.
    fleet.set_activation_polls(u32::MAX);
    let apply = |greeting: &str, said: &Path| {
        let mut args = vec!["apply", "live", "--set"];
        let value = format!("greeting={greeting}");
        args.push(&value);
        args.extend(["--fleet", "--endpoint", fleet.endpoint()]);
        Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .args(&args)
            .current_dir(app.dir.path())
            .env("NO_COLOR", "1")
            .stdout(std::fs::File::create(said).unwrap())
            .stderr(std::fs::File::create(said.with_extension("err")).unwrap())
            .spawn()
            .unwrap()
    };
    // (The template's greeting is its own: `--set` makes it a value.)
    template(app.dir.path(), "{{ greeting }}", false);
    let (first_said, second_said) = (app.dir.path().join("first"), app.dir.path().join("second"));
    let mut first = apply("first", &first_said);
    let launched = "SET shop-live-web@1.service launched".to_owned();
    support::wait_for(Duration::from_secs(60), || {
        fleet.writes().contains(&launched).then_some(())
    })
    .expect("the first apply starts copy 1");
    let mut second = apply("second", &second_said);
    let waiting = "waiting for another unitgen working on shop-live in this fleet to finish";
    let said = |path: &Path| {
        std::fs::read_to_string(path).unwrap_or_default()
            + &std::fs::read_to_string(path.with_extension("err")).unwrap_or_default()
    };
    support::wait_for(Duration::from_secs(60), || {
        said(&second_said).contains(waiting).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the second apply does not say it waits: {}\nthe first: {}",
            said(&second_said),
            said(&first_said)
        )
    });
    let writes_while_waiting = fleet.writes();
    fleet.set_activation_polls(1);
    assert!(first.wait().unwrap().success(), "{}", said(&first_said));
    assert!(second.wait().unwrap().success(), "{}", said(&second_said));
    // The second wrote nothing while the first ran, and its own units run.
    assert!(
        writes_while_waiting
            .iter()
            .all(|w| !w.contains("GREETING=second")),
        "{writes_while_waiting:#?}"
    );
    assert!(exec_start(fleet, "shop-live-web@1.service").contains("GREETING=second"));
    assert!(fleet.runs_its_unit_file("shop-live-web@1.service"));
    let (code, plan) = app.run(&["plan", "live", "--set", "greeting=second"]);
    assert_eq!(code, Some(0), "{plan}");
    // Each turn's lock file was left in /run/lock for good, one an
    // endpoint and instance: it goes when the last turn ends.
    use sha1::Digest as _;
    let cluster: String = (sha1::Sha1::digest(fleet.endpoint().as_bytes())
        .iter()
        .take(6))
    .map(|b| format!("{b:02x}"))
    .collect();
    let lock = Path::new("/run/lock").join(format!("unitgen-fleet-{cluster}-shop-live.lock"));
    assert!(!lock.exists(), "{} is left", lock.display());
}

// An apply from another machine (which this machine's lock does not keep
// out) changed the template after this apply's last step: it said "up to
// date" for a cluster that runs the other's units.
#[test]
fn an_apply_whose_units_are_changed_before_it_ends_does_not_say_up_to_date() {
    // How many writes the change takes, on a fake of its own.
    let count = FleetApp::new();
    assert_eq!(count.run(&["apply", "live"]).0, Some(0));
    count.fleet.clear_log();
    template(count.dir.path(), "bye", false);
    assert_eq!(count.run(&["apply", "live"]).0, Some(0));
    let writes = count.fleet.writes().len();

    let app = FleetApp::new();
    let fleet = &app.fleet;
    assert_eq!(app.run(&["apply", "live"]).0, Some(0));
    let client = unitgen::fleet::FleetClient::new(fleet.endpoint()).unwrap();
    let mut theirs = client
        .get_unit("shop-live-web@.service")
        .unwrap()
        .unwrap()
        .options;
    for option in &mut theirs {
        option.value = option.value.replace("GREETING=hello", "GREETING=theirs");
    }
    let theirs = serde_json::from_value(serde_json::to_value(theirs).unwrap()).unwrap();
    fleet.clear_log();
    fleet.replace_options_after_writes(writes, "shop-live-web@.service", theirs);
    template(app.dir.path(), "bye", false);
    let (code, said) = app.run(&["apply", "live"]);
    let said = flat(&said);
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(fleet.writes().len(), writes, "{:#?}", fleet.writes());
    assert!(!said.contains("up to date"), "{said}");
    assert!(
        said.contains(
            "apply of shop-live to fleet: every step was done, but fleet does not hold the \
             template now (changed while this apply ran: another apply of the instance at the \
             same time, or a change by hand?): shop-live-web@.service (fleet holds other unit text)"
        ),
        "{said}"
    );
    assert_eq!(app.run(&["plan", "live"]).0, Some(2));
}

// Routes were left out of fleet's units without a word: plan and apply
// said "up to date" while no router served the domains (there is none on
// fleet). They are refused where the route is written, before fleet is
// asked anything.
#[test]
fn an_instance_with_routes_is_refused_on_fleet_at_its_route() {
    let app = FleetApp::new();
    std::fs::write(
        app.dir.path().join("unitgen.yaml"),
        "app: shop\n\
         services:\n\
         \x20 web:\n\
         \x20   image: shop:1\n\
         \x20   ports: [\"8080:80\"]\n\
         instances:\n\
         \x20 live:\n\
         \x20   routes:\n\
         \x20     - hosts: shop.example.com\n\
         \x20       service: web\n\
         \x20       port: 80\n",
    )
    .unwrap();
    let render = unitgen(app.dir.path(), &["render", "live", "--fleet"]);
    let render = (render.status.code(), text(&render.stderr));
    for (verb, (code, said)) in [
        ("render", render),
        ("plan", app.run(&["plan", "live"])),
        ("apply", app.run(&["apply", "live"])),
    ] {
        assert_eq!(code, Some(1), "{verb}: {said}");
        assert!(
            flat(&said).contains(
                "instance `live` routes shop.example.com to service `web`, and unitgen cannot \
                 route on fleet: its units would run with no router and no route"
            ),
            "{verb}: {said}"
        );
        assert!(said.contains("unitgen.yaml:9:9"), "{verb}: {said}");
        assert!(
            flat(&said).contains("apply this instance without --fleet to the host whose router"),
            "{verb}: {said}"
        );
    }
    assert!(app.fleet.log().is_empty(), "{:#?}", app.fleet.summaries());
}

/// A `destroy --fleet` killed before its network cleanup ran left the
/// instance network on the machines, which fleet's API cannot show: a
/// destroy run again (fleet has nothing of the instance, or some of it, or
/// the cleanup unit a killed run launched) destroys what is left and runs
/// the cleanup on every machine, whatever metadata the lost units had.
/// Walked at every write of a destroy.
#[test]
fn a_destroy_killed_at_any_point_is_finished_by_the_next_destroy() {
    let run = |fleet: &FakeFleet, dir: &Path| {
        let out = unitgen(
            dir,
            &["destroy", "live", "--fleet", "--endpoint", fleet.endpoint()],
        );
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    let setup = || {
        let fleet = FakeFleet::start();
        fleet.set_forget_delay(Duration::from_millis(100));
        let dir = tempfile::tempdir().unwrap();
        lone_web(dir.path(), "hello");
        let out = unitgen(
            dir.path(),
            &["apply", "live", "--fleet", "--endpoint", fleet.endpoint()],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        fleet.clear_log();
        (fleet, dir)
    };
    let writes = {
        let (fleet, dir) = setup();
        let (code, said) = run(&fleet, dir.path());
        assert_eq!(code, Some(0), "{said}");
        fleet.writes().len()
    };
    let cleanup = "shop-live-network-cleanup.service";
    let failures: Vec<String> = std::thread::scope(|scope| {
        let walkers: Vec<_> = (1..writes)
            .map(|k| {
                scope.spawn(move || {
                    let (fleet, dir) = setup();
                    fleet.hold_after_writes(k);
                    let mut child = Command::new(env!("CARGO_BIN_EXE_unitgen"))
                        .args(["destroy", "live", "--fleet", "--endpoint", fleet.endpoint()])
                        .current_dir(dir.path())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap();
                    while !fleet.holding() {
                        if let Some(status) = child.try_wait().unwrap() {
                            return Some(format!("destroy ended ({status}) before write {k}"));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    fleet.release();
                    fleet.clear_log();
                    let (code, said) = run(&fleet, dir.path());
                    let left: Vec<String> = fleet.units().into_iter().map(|u| u.name).collect();
                    let ran = fleet.writes().contains(&format!("SUBMIT {cleanup}"));
                    (code != Some(0) || !left.is_empty() || !ran).then(|| {
                        format!(
                            "killed after write {k}: the next destroy exited {code:?}, left \
                             {left:?}, cleanup ran: {ran}: {said}"
                        )
                    })
                })
            })
            .collect();
        walkers
            .into_iter()
            .filter_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
}

// `ls --fleet` read the machines' states once: a copy whose state was
// missing for a moment (seen live right after a roll) was counted as not
// running, where plan and status read them again.
#[test]
fn ls_reads_a_state_missing_for_a_moment_again() {
    let app = FleetApp::new();
    assert_eq!(app.run(&["apply", "live"]).0, Some(0));
    app.fleet.hide_state("shop-live-web@1.service", 3);
    let (code, said) = app.run(&["ls", "--json"]);
    assert_eq!(code, Some(0), "{said}");
    let rows: serde_json::Value = serde_json::from_str(&said).unwrap();
    assert_eq!(rows[0]["instance"], "live", "{said}");
    assert!(rows[0]["copies"].as_u64() > Some(0), "{said}");
    assert_eq!(rows[0]["copies"], rows[0]["copies_running"], "{said}");
}

// While fleet answered 500 or 503 (etcd down, fleetd just restarted),
// plan, status and apply asked again for up to a minute without a word.
#[test]
fn a_fleet_that_cannot_use_etcd_for_a_moment_is_said_to_be_asked_again() {
    let app = FleetApp::new();
    assert_eq!(app.run(&["apply", "live"]).0, Some(0));
    app.fleet.restart_after_writes(0, 2);
    let (code, said) = app.run(&["status", "live"]);
    assert_eq!(code, Some(0), "{said}");
    let asked_again = format!(
        "listing fleet units: fleet at {} answered 503 `fleet server unable to communicate \
         with etcd`; asking again each second, for up to 60 s (fleetd answers so while it \
         cannot use etcd: etcd down, or fleetd just restarted)",
        app.fleet.endpoint()
    );
    assert_eq!(said.matches(&asked_again).count(), 1, "{said}");
}
