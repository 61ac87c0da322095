//! unitgen's fleet client and rollout against a fake fleet API that enforces
//! fleet's contract (see tests/support/fake_fleet.rs for the sources).

#[path = "support/lib.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use support::fake_fleet::{FakeFleet, MACHINES};
use unitgen::fleet::api::unit_hash;
use unitgen::fleet::{
    Action, ApplyOptions, ErrorKind, FleetClient, FleetError, JobState, apply, destroy, plan,
    run_everywhere, status,
};
use unitgen::unit_file::{UnitOption, parse};

const PREFIX: &str = "blog-staging-";
const WEB: &str = "blog-staging-web@.service";
const ANNOUNCE: &str = "blog-staging-web-announce@.service";

fn web(image: &str) -> (String, String) {
    let text = format!(
        "[Unit]\n\
         Description=blog staging web (copy %i)\n\
         After=docker.service\n\
         Requires=docker.service\n\
         \n\
         [Service]\n\
         ExecStartPre=-/usr/bin/docker rm -f blog-staging-web-%i\n\
         ExecStart=/usr/bin/docker run --rm --name blog-staging-web-%i \\\n  -p 8080:80 {image}\n\
         ExecStop=/usr/bin/docker stop blog-staging-web-%i\n\
         \n\
         [X-Fleet]\n\
         Conflicts=blog-staging-web@*.service\n"
    );
    (WEB.to_owned(), text)
}

fn announce() -> (String, String) {
    let text = "[Unit]\n\
                Description=announce blog staging web %i in etcd\n\
                BindsTo=blog-staging-web@%i.service\n\
                After=blog-staging-web@%i.service\n\
                \n\
                [Service]\n\
                ExecStart=/bin/sh -c 'while :; do etcdctl set /blog/staging/web/%i up --ttl 60; sleep 45; done'\n\
                ExecStop=/usr/bin/etcdctl rm /blog/staging/web/%i\n\
                \n\
                [X-Fleet]\n\
                MachineOf=blog-staging-web@%i.service\n";
    (ANNOUNCE.to_owned(), text.to_owned())
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        wait_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(5),
    }
}

/// Plans (`copies` for a service with none) and applies.
fn run(
    client: &FleetClient,
    desired: &[(String, String)],
    copies: u32,
) -> Result<Vec<String>, FleetError> {
    run_with(client, desired, copies, &opts())
}

fn run_with(
    client: &FleetClient,
    desired: &[(String, String)],
    copies: u32,
    options: &ApplyOptions,
) -> Result<Vec<String>, FleetError> {
    let plan = plan(client, PREFIX, desired, copies)?;
    let mut progress = Vec::new();
    apply(client, &plan, options, &mut |line| {
        progress.push(line.to_owned())
    })?;
    Ok(progress)
}

/// A fake whose machines forget destroyed units after 0.2 s (live fleet
/// took 1-3 s), so that rolls in these tests wait briefly.
fn fake() -> FakeFleet {
    let fake = FakeFleet::start();
    fake.set_forget_delay(Duration::from_millis(200));
    fake
}

fn started(copies: u32) -> (FakeFleet, FleetClient) {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    run(&client, &[web("nginx:1.25"), announce()], copies).unwrap();
    fake.clear_log();
    (fake, client)
}

fn opt(section: &str, name: &str, value: &str) -> UnitOption {
    UnitOption::new(section, name, value)
}

fn options_json(options: &[UnitOption]) -> serde_json::Value {
    serde_json::to_value(options).unwrap()
}

fn exec_start(fake: &FakeFleet, name: &str) -> String {
    fake.unit(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .option("Service", "ExecStart")
        .unwrap()
        .to_owned()
}

// ---- the contract the fake enforces -------------------------------------

#[test]
fn creating_a_unit_without_options_is_409() {
    let fake = FakeFleet::start();
    let (status, body) = fake.raw(
        "PUT",
        "/fleet/v1/units/a.service",
        Some("application/json"),
        r#"{"desiredState":"launched"}"#,
    );
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], 409);
    assert_eq!(
        body["error"]["message"],
        "unit does not exist and options field empty"
    );
}

#[test]
fn updating_a_unit_without_desired_state_is_409() {
    let fake = FakeFleet::start();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    client
        .put_unit(
            "a.service",
            JobState::Inactive,
            &[opt("Service", "ExecStart", "/bin/true")],
        )
        .unwrap();
    let (status, body) = fake.raw(
        "PUT",
        "/fleet/v1/units/a.service",
        Some("application/json"),
        r#"{"options":[{"section":"Service","name":"ExecStart","value":"/bin/false"}]}"#,
    );
    assert_eq!(status, 409);
    assert_eq!(
        body["error"]["message"],
        "must provide DesiredState to update existing unit"
    );
}

#[test]
fn invalid_unit_names_are_400() {
    let fake = FakeFleet::start();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let options = [opt("Service", "ExecStart", "/bin/true")];
    for (name, message) in [
        ("nodot", r#"unit name must contain ".""#),
        ("trailing.", r#"unit name cannot end in ".""#),
        ("a.conf", r#"invalid unit type: "conf""#),
        ("@a.service", r#"unit name cannot start in "@""#),
        ("a b.service", "invalid character ' ' in unit name"),
    ] {
        let err = client
            .put_unit(name, JobState::Inactive, &options)
            .unwrap_err();
        assert_eq!(err.status(), Some(400), "{name}: {err}");
        assert!(err.to_string().contains(message), "{name}: {err}");
    }
    assert!(fake.units().is_empty());
}

#[test]
fn contradicting_x_fleet_options_are_400() {
    let fake = FakeFleet::start();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    for (x_fleet, message) in [
        (
            "MachineID=machine-1\nConflicts=a@*.service",
            "MachineID cannot be used with Conflicts",
        ),
        (
            "MachineID=machine-1\nMachineOf=b.service",
            "MachineID cannot be used with Peers",
        ),
        (
            "MachineID=machine-1\nGlobal=true",
            "MachineID cannot be used with Global",
        ),
        (
            "Global=true\nMachineOf=b.service",
            "Global cannot be used with Peers",
        ),
        (
            "Global=yes\nConflicts=a@*.service",
            "Global cannot be used with Conflicts",
        ),
        (
            "MachineOf=web@1.service\nConflicts=web@*.service",
            r#"unresolvable requirements: peer "web@1.service" matches conflict "web@*.service""#,
        ),
    ] {
        let options = parse(&format!(
            "[Service]\nExecStart=/bin/true\n[X-Fleet]\n{x_fleet}\n"
        ))
        .unwrap();
        let err = client
            .put_unit("a.service", JobState::Launched, &options)
            .unwrap_err();
        assert_eq!(err.status(), Some(400), "{x_fleet}: {err}");
        assert!(err.to_string().ends_with(message), "{x_fleet}: {err}");
    }
    // The last Global value wins (job/job.go IsGlobal), so this is valid.
    let options = parse(
        "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\nGlobal=false\nConflicts=x*\n",
    )
    .unwrap();
    client
        .put_unit("a.service", JobState::Inactive, &options)
        .unwrap();
}

#[test]
fn missing_units_are_404() {
    let fake = FakeFleet::start();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    assert_eq!(client.get_unit("nope.service").unwrap(), None);
    let (status, body) = fake.raw("GET", "/fleet/v1/units/nope.service", None, "");
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (404, Some("unit does not exist"))
    );
    let err = client.delete_unit("nope.service").unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(
        err.to_string(),
        "destroying nope.service: fleet answered 404: unit does not exist"
    );
}

#[test]
fn other_requests_fleet_refuses() {
    let fake = FakeFleet::start();
    let unit = r#"{"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}"#;
    // api/serialization.go validateContentType.
    let (status, _) = fake.raw("PUT", "/fleet/v1/units/a.service", Some("text/plain"), unit);
    assert_eq!(status, 415);
    let (status, _) = fake.raw("PUT", "/fleet/v1/units/a.service", None, unit);
    assert_eq!(status, 415);
    let (status, body) = fake.raw(
        "PUT",
        "/fleet/v1/units/a.service",
        Some("application/json; charset=utf-8"),
        r#"{"name":"b.service","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        r#"name in URL "a.service" differs from unit name in request body "b.service""#
    );
    let (status, _) = fake.raw(
        "PUT",
        "/fleet/v1/units/a.service",
        Some("application/json"),
        "{not json",
    );
    assert_eq!(status, 400);
    let (status, _) = fake.raw("POST", "/fleet/v1/units", Some("application/json"), unit);
    assert_eq!(status, 405);
    let (status, _) = fake.raw("GET", "/fleet/v1/units/", None, "");
    assert_eq!(status, 404);
    // Live fleet's words (Go's base64 error).
    let (status, body) = fake.raw("GET", "/fleet/v1/units?nextPageToken=garbage", None, "");
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "illegal base64 data at input byte 4"
    );
}

#[test]
fn a_template_cannot_be_activated() {
    let fake = FakeFleet::start();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let options = [opt("Service", "ExecStart", "/bin/true")];
    client
        .put_unit("t@.service", JobState::Inactive, &options)
        .unwrap();
    let err = client
        .put_unit("t@.service", JobState::Launched, &[])
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(
        err.to_string()
            .contains(r#"cannot activate template "t@.service""#),
        "{err}"
    );
}

#[test]
fn units_and_states_are_read_across_pages() {
    let fake = FakeFleet::start();
    fake.set_forget_delay(Duration::ZERO);
    fake.set_page_size(2);
    let client = FleetClient::new(fake.endpoint()).unwrap();
    for i in 1..=5 {
        let options = [opt("Service", "ExecStart", &format!("/bin/sleep {i}"))];
        client
            .put_unit(&format!("u{i}.service"), JobState::Launched, &options)
            .unwrap();
    }
    fake.clear_log();
    let names: Vec<String> = client
        .list_units()
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(
        names,
        [
            "u1.service",
            "u2.service",
            "u3.service",
            "u4.service",
            "u5.service"
        ]
    );
    assert_eq!(fake.summaries(), ["LIST", "LIST", "LIST"]);
    let tokens: Vec<String> = fake
        .log()
        .iter()
        .filter_map(|r| {
            r.query
                .iter()
                .find(|(k, _)| k == "nextPageToken")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(tokens.len(), 2);

    // A full last page still carries a token; the page after it is empty.
    client.delete_unit("u5.service").unwrap();
    fake.clear_log();
    assert_eq!(client.list_units().unwrap().len(), 4);
    assert_eq!(fake.summaries(), ["LIST", "LIST", "LIST"]);

    fake.clear_log();
    let states = client.list_state(None).unwrap();
    assert_eq!(states.len(), 4);
    assert_eq!(fake.summaries().len(), 3);
    let one = client.list_state(Some("u2.service")).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name, "u2.service");
    assert!(MACHINES.contains(&one[0].machine_id.as_str()));
}

#[test]
fn a_put_of_changed_options_replaces_the_unit_but_not_its_process() {
    // As live fleet v1.0 does (api/units.go: MatchUnitFiles, then create).
    let fake = FakeFleet::start();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let old = [opt(
        "Service",
        "ExecStart",
        "/usr/bin/docker run nginx:1.25",
    )];
    let new = [opt(
        "Service",
        "ExecStart",
        "/usr/bin/docker run nginx:1.27",
    )];
    client
        .put_unit("web.service", JobState::Launched, &old)
        .unwrap();
    client
        .put_unit("web.service", JobState::Launched, &new)
        .unwrap();
    let unit = client.get_unit("web.service").unwrap().unwrap();
    assert_eq!(unit.options, new);
    assert_eq!(unit.desired_state, Some(JobState::Launched));
    assert_eq!(fake.log()[0].status, 201);
    assert_eq!(fake.log()[1].status, 201);
    // The new file is loaded (its hash in the state), the old process runs.
    let state = &client.list_state(Some("web.service")).unwrap()[0];
    assert_eq!(state.hash, unit_hash(&new));
    assert_eq!(fake.process("web.service"), Some(unit_hash(&old)));
    // The same options again only set the state.
    client
        .put_unit("web.service", JobState::Loaded, &new)
        .unwrap();
    assert_eq!(fake.log()[4].status, 204);
}

#[test]
fn templates_report_current_state_inactive() {
    let fake = FakeFleet::start();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let (name, text) = web("nginx");
    client
        .put_unit(&name, JobState::Inactive, &parse(&text).unwrap())
        .unwrap();
    let unit = client.get_unit(&name).unwrap().unwrap();
    assert_eq!(unit.current_state, Some(JobState::Inactive));
    assert_eq!(
        fake.raw("GET", "/fleet/v1/units", None, "").1["units"][0]["currentState"],
        "inactive"
    );
}

#[test]
fn a_destroyed_copy_still_shows_its_old_state_for_a_while() {
    let fake = FakeFleet::start();
    fake.set_forget_delay(Duration::from_secs(60));
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let old = parse(&web("nginx:1.25").1).unwrap();
    client
        .put_unit("blog-staging-web@1.service", JobState::Launched, &old)
        .unwrap();
    client.delete_unit("blog-staging-web@1.service").unwrap();
    assert_eq!(client.get_unit("blog-staging-web@1.service").unwrap(), None);
    let states = client
        .list_state(Some("blog-staging-web@1.service"))
        .unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(
        (
            states[0].hash.as_str(),
            states[0].systemd_active_state.as_str()
        ),
        (unit_hash(&old).as_str(), "active")
    );
    assert_eq!(
        fake.process("blog-staging-web@1.service"),
        Some(unit_hash(&old))
    );
}

#[test]
fn a_copy_resubmitted_before_fleet_forgot_the_old_one_keeps_the_old_process() {
    // What unitgen's client did before: destroy, submit, start, wait until
    // fleet says launched and systemd says active. Against live fleet the
    // agent then cancels the stop with the start: the new unit file is
    // loaded, the OLD process runs on, and every check passes.
    let fake = FakeFleet::start();
    fake.set_forget_delay(Duration::from_secs(60));
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let name = "blog-staging-web@1.service";
    let old = parse(&web("nginx:1.25").1).unwrap();
    let new = parse(&web("nginx:1.27").1).unwrap();
    client.put_unit(name, JobState::Launched, &old).unwrap();

    client.delete_unit(name).unwrap();
    client.put_unit(name, JobState::Inactive, &new).unwrap();
    client.put_unit(name, JobState::Launched, &[]).unwrap();
    let unit = client.get_unit(name).unwrap().unwrap();
    let state = &client.list_state(Some(name)).unwrap()[0];
    assert_eq!(unit.current_state, Some(JobState::Launched));
    assert_eq!(state.systemd_active_state, "active");
    assert_eq!(state.hash, unit_hash(&new));
    assert_eq!(
        fake.process(name),
        Some(unit_hash(&old)),
        "the old container still runs"
    );
}

#[test]
fn the_fake_cluster_honours_conflicts_and_machine_of() {
    let fake = FakeFleet::start();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let web = parse(&web("nginx").1).unwrap();
    let announce = parse(&announce().1).unwrap();
    for i in 1..=4 {
        client
            .put_unit(
                &format!("blog-staging-web@{i}.service"),
                JobState::Launched,
                &web,
            )
            .unwrap();
    }
    for i in 1..=3 {
        client
            .put_unit(
                &format!("blog-staging-web-announce@{i}.service"),
                JobState::Launched,
                &announce,
            )
            .unwrap();
    }
    let machine = |name: &str| fake.unit(name).unwrap().machine_id;
    let mut machines: Vec<String> = (1..=3)
        .map(|i| machine(&format!("blog-staging-web@{i}.service")))
        .collect();
    machines.sort();
    assert_eq!(machines, MACHINES);
    // Three machines, so the fourth copy has nowhere to go.
    let fourth = fake.unit("blog-staging-web@4.service").unwrap();
    assert_eq!(
        (fourth.machine_id.as_str(), fourth.current_state.as_str()),
        ("", "inactive")
    );
    for i in 1..=3 {
        assert_eq!(
            machine(&format!("blog-staging-web-announce@{i}.service")),
            machine(&format!("blog-staging-web@{i}.service"))
        );
    }
}

// ---- the client ----------------------------------------------------------

#[test]
fn the_client_speaks_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeFleet::start_unix(&dir.path().join("fleet.sock"));
    assert!(fake.endpoint().starts_with("unix:///"));
    let client = FleetClient::new(fake.endpoint()).unwrap();
    run(&client, &[web("nginx:1.25"), announce()], 2).unwrap();
    let names: Vec<String> = client
        .list_units()
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    let (status, _) = fake.raw("GET", "/fleet/v1/units", None, "");
    assert_eq!(status, 200);
}

#[test]
fn the_client_reads_chunked_answers() {
    let fake = FakeFleet::start();
    fake.set_chunked(true);
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let options = parse(&web("nginx").1).unwrap();
    client
        .put_unit("blog-staging-web@1.service", JobState::Launched, &options)
        .unwrap();
    let unit = client
        .get_unit("blog-staging-web@1.service")
        .unwrap()
        .unwrap();
    assert_eq!(unit.options, options);
    assert_eq!(client.list_units().unwrap().len(), 1);
    let err = client.delete_unit("nope.service").unwrap_err();
    assert_eq!(
        err.to_string(),
        "destroying nope.service: fleet answered 404: unit does not exist"
    );
}

#[test]
fn an_unreachable_fleet_says_what_was_being_done_and_where() {
    let fake = FakeFleet::start();
    let endpoint = fake.endpoint().to_owned();
    drop(fake);
    let client = FleetClient::new(&endpoint)
        .unwrap()
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(1));
    let err = plan(&client, PREFIX, &[web("nginx")], 1).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Io { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "listing fleet units: cannot talk to fleet at {endpoint}: "
        )),
        "{text}"
    );
}

// ---- plan and apply ------------------------------------------------------

#[test]
fn apply_submits_new_templates_and_starts_copies() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let desired = [web("nginx:1.25"), announce()];
    let plan = plan(&client, PREFIX, &desired, 2).unwrap();
    assert_eq!(plan.with_action(Action::Add).count(), 2);
    let sidekick = plan.units.iter().find(|u| u.name == ANNOUNCE).unwrap();
    assert_eq!(sidekick.sidekick_of.as_deref(), Some(WEB));
    fake.clear_log();
    // systemd reports each copy "activating" three times before "active".
    fake.set_activation_polls(3);

    apply(&client, &plan, &opts(), &mut |_| {}).unwrap();
    assert_eq!(
        fake.writes(),
        [
            "SUBMIT blog-staging-web@.service",
            "SUBMIT blog-staging-web@1.service",
            "SET blog-staging-web@1.service launched",
            "SUBMIT blog-staging-web-announce@.service",
            "SUBMIT blog-staging-web-announce@1.service",
            "SET blog-staging-web-announce@1.service launched",
            "SUBMIT blog-staging-web@2.service",
            "SET blog-staging-web@2.service launched",
            "SUBMIT blog-staging-web-announce@2.service",
            "SET blog-staging-web-announce@2.service launched",
        ]
    );
    let template = fake.unit(WEB).unwrap();
    assert_eq!(
        (
            template.desired_state.as_str(),
            template.machine_id.as_str()
        ),
        ("inactive", "")
    );
    let options = options_json(&parse(&web("nginx:1.25").1).unwrap());
    for i in 1..=2 {
        let copy = fake.unit(&format!("blog-staging-web@{i}.service")).unwrap();
        assert_eq!(copy.current_state, "launched");
        assert_eq!(serde_json::to_value(&copy.options).unwrap(), options);
        let sidekick = fake
            .unit(&format!("blog-staging-web-announce@{i}.service"))
            .unwrap();
        assert_eq!(sidekick.machine_id, copy.machine_id);
    }
    assert_ne!(
        fake.unit("blog-staging-web@1.service").unwrap().machine_id,
        fake.unit("blog-staging-web@2.service").unwrap().machine_id
    );
    // Each copy was waited for: its state polled until active.
    let log = fake.summaries();
    let set = log
        .iter()
        .position(|l| l == "SET blog-staging-web@1.service launched")
        .unwrap();
    let next = log
        .iter()
        .position(|l| l == "SUBMIT blog-staging-web-announce@.service")
        .unwrap();
    let polls = log[set..next]
        .iter()
        .filter(|l| *l == "STATE blog-staging-web@1.service")
        .count();
    assert_eq!(polls, 4, "{log:#?}");
}

#[test]
fn apply_replaces_a_changed_service_one_copy_at_a_time() {
    let (fake, client) = started(3);
    let before: Vec<String> = (1..=3)
        .map(|i| {
            fake.unit(&format!("blog-staging-web@{i}.service"))
                .unwrap()
                .machine_id
        })
        .collect();

    let desired = [web("nginx:1.27"), announce()];
    let plan = plan(&client, PREFIX, &desired, 3).unwrap();
    let web_plan = plan.units.iter().find(|u| u.name == WEB).unwrap();
    assert_eq!(web_plan.action, Action::Change);
    assert_eq!(web_plan.copies.len(), 3);
    assert_eq!(
        plan.units
            .iter()
            .find(|u| u.name == ANNOUNCE)
            .unwrap()
            .action,
        Action::Unchanged
    );
    apply(&client, &plan, &opts(), &mut |_| {}).unwrap();

    // The units now hold the NEW options: same copies, all launched.
    let new_options = options_json(&parse(&web("nginx:1.27").1).unwrap());
    assert_eq!(
        serde_json::to_value(&fake.unit(WEB).unwrap().options).unwrap(),
        new_options
    );
    let copies: Vec<_> = fake
        .units()
        .into_iter()
        .filter(|u| u.name.starts_with("blog-staging-web@") && u.name != WEB)
        .collect();
    assert_eq!(copies.len(), 3);
    for copy in &copies {
        assert_eq!(
            serde_json::to_value(&copy.options).unwrap(),
            new_options,
            "{}",
            copy.name
        );
        assert_eq!(copy.current_state, "launched");
        assert!(exec_start(&fake, &copy.name).ends_with("nginx:1.27"));
        // The process is the new one: each old copy was forgotten by
        // fleet before its replacement was submitted.
        assert_eq!(
            fake.process(&copy.name),
            Some(unit_hash(&parse(&web("nginx:1.27").1).unwrap())),
            "{} still runs the old unit file",
            copy.name
        );
    }
    let after: Vec<String> = (1..=3)
        .map(|i| {
            fake.unit(&format!("blog-staging-web@{i}.service"))
                .unwrap()
                .machine_id
        })
        .collect();
    assert_eq!(before, after, "each copy came back where its slot was free");

    // unload copy N (kept in fleet until replaced), submit the new template
    // (once), start copy N, wait until it runs, and only then copy N+1.
    let mut expected = Vec::new();
    for i in 1..=3 {
        expected.push(format!(
            "SET blog-staging-web-announce@{i}.service inactive"
        ));
        expected.push(format!("SET blog-staging-web@{i}.service inactive"));
        if i == 1 {
            expected.push("DESTROY blog-staging-web@.service".to_owned());
            expected.push("SUBMIT blog-staging-web@.service".to_owned());
        }
        expected.push(format!("SUBMIT blog-staging-web@{i}.service"));
        expected.push(format!("SET blog-staging-web@{i}.service launched"));
        expected.push(format!("SUBMIT blog-staging-web-announce@{i}.service"));
        expected.push(format!(
            "SET blog-staging-web-announce@{i}.service launched"
        ));
    }
    assert_eq!(fake.writes(), expected);
    let log = fake.summaries();
    for i in 1..3 {
        let started = log
            .iter()
            .position(|l| *l == format!("SET blog-staging-web@{i}.service launched"))
            .unwrap();
        let next = log
            .iter()
            .position(|l| *l == format!("SET blog-staging-web-announce@{}.service inactive", i + 1))
            .unwrap();
        assert!(
            log[started..next].contains(&format!("STATE blog-staging-web@{i}.service")),
            "copy {i} not waited for before copy {}: {log:#?}",
            i + 1
        );
    }
}

#[test]
fn a_changed_sidekick_alone_rolls_only_the_sidekick() {
    let (fake, client) = started(2);
    let (name, text) = announce();
    let changed = (name, text.replace("--ttl 60", "--ttl 90"));
    run(&client, &[web("nginx:1.25"), changed], 2).unwrap();
    assert!(
        fake.writes()
            .iter()
            .all(|w| !w.contains("blog-staging-web@")),
        "{:#?}",
        fake.writes()
    );
    assert!(exec_start(&fake, "blog-staging-web-announce@2.service").contains("--ttl 90"));
}

// fleetctl stop leaves a copy loaded, fleetctl unload inactive: it does
// not run, so plan says so and apply launches it again.
#[test]
fn a_copy_stopped_or_unloaded_by_hand_is_not_running_and_apply_launches_it() {
    let (fake, client) = started(2);
    client
        .put_unit("blog-staging-web@1.service", JobState::Inactive, &[])
        .unwrap();
    client
        .put_unit("blog-staging-web@2.service", JobState::Loaded, &[])
        .unwrap();
    let desired = [web("nginx:1.25"), announce()];
    let planned = plan(&client, PREFIX, &desired, 2).unwrap();
    let web_plan = planned.units.iter().find(|u| u.name == WEB).unwrap();
    assert_eq!(web_plan.action, Action::Change);
    let why: Vec<&str> = web_plan
        .copies
        .iter()
        .map(|c| c.not_running.as_deref().unwrap_or("running"))
        .collect();
    assert_eq!(
        why,
        [
            "fleet is told to keep it inactive (as `fleetctl unload` or `fleetctl submit` leaves it), not launched",
            "fleet is told to keep it loaded (as `fleetctl stop` or `fleetctl load` leaves it), not launched",
        ]
    );
    apply(&client, &planned, &opts(), &mut |_| {}).unwrap();
    for i in 1..=2 {
        let name = format!("blog-staging-web@{i}.service");
        assert_eq!(fake.unit(&name).unwrap().desired_state, "launched");
        assert!(fake.process(&name).is_some(), "{name} does not run");
    }
    assert!(!plan(&client, PREFIX, &desired, 2).unwrap().has_changes());
}

// A service left with no copy (destroyed by hand, or by an apply killed
// between destroying a copy and submitting the new one) runs nowhere: it
// is not up to date. It gets the instance's copies again.
#[test]
fn a_service_whose_copies_were_destroyed_by_hand_gets_copies_again() {
    let (fake, client) = started(2);
    for name in [
        "blog-staging-web-announce@1.service",
        "blog-staging-web-announce@2.service",
        "blog-staging-web@1.service",
        "blog-staging-web@2.service",
    ] {
        client.delete_unit(name).unwrap();
    }
    let desired = [web("nginx:1.25"), announce()];
    let planned = plan(&client, PREFIX, &desired, 2).unwrap();
    for unit in &planned.units {
        assert_eq!(
            (unit.action, unit.missing.clone()),
            (Action::Change, vec!["1".to_owned(), "2".to_owned()]),
            "{}",
            unit.name
        );
    }
    apply(&client, &planned, &opts(), &mut |_| {}).unwrap();
    for name in [
        "blog-staging-web@1.service",
        "blog-staging-web@2.service",
        "blog-staging-web-announce@1.service",
        "blog-staging-web-announce@2.service",
    ] {
        assert!(fake.process(name).is_some(), "{name} does not run");
    }
    assert!(!plan(&client, PREFIX, &desired, 2).unwrap().has_changes());
}

// A sidekick copy destroyed by hand is started again with its service's
// copy left running.
#[test]
fn a_sidekick_copy_destroyed_by_hand_is_started_again_alone() {
    let (fake, client) = started(2);
    client
        .delete_unit("blog-staging-web-announce@2.service")
        .unwrap();
    let desired = [web("nginx:1.25"), announce()];
    let planned = plan(&client, PREFIX, &desired, 2).unwrap();
    let sidekick = planned.units.iter().find(|u| u.name == ANNOUNCE).unwrap();
    assert_eq!(
        (sidekick.action, sidekick.missing.clone()),
        (Action::Change, vec!["2".to_owned()])
    );
    fake.clear_log();
    apply(&client, &planned, &opts(), &mut |_| {}).unwrap();
    assert!(
        fake.process("blog-staging-web-announce@2.service")
            .is_some()
    );
    assert!(
        fake.writes()
            .iter()
            .all(|w| !w.contains("blog-staging-web@")),
        "{:#?}",
        fake.writes()
    );
    assert!(!plan(&client, PREFIX, &desired, 2).unwrap().has_changes());
}

#[test]
fn apply_destroys_removed_units() {
    let (fake, client) = started(2);
    let plan = plan(&client, PREFIX, &[web("nginx:1.25")], 2).unwrap();
    assert_eq!(
        plan.with_action(Action::Remove)
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        [ANNOUNCE]
    );
    apply(&client, &plan, &opts(), &mut |_| {}).unwrap();
    assert_eq!(
        fake.writes(),
        [
            "DESTROY blog-staging-web-announce@1.service",
            "DESTROY blog-staging-web-announce@2.service",
            "DESTROY blog-staging-web-announce@.service",
        ]
    );
    let names: Vec<String> = fake.units().into_iter().map(|u| u.name).collect();
    assert_eq!(
        names,
        [
            "blog-staging-web@.service",
            "blog-staging-web@1.service",
            "blog-staging-web@2.service"
        ]
    );
}

#[test]
fn unchanged_units_are_not_touched() {
    let (fake, client) = started(2);
    let plan = plan(&client, PREFIX, &[web("nginx:1.25"), announce()], 2).unwrap();
    assert!(!plan.has_changes());
    apply(&client, &plan, &opts(), &mut |_| {}).unwrap();
    assert_eq!(fake.writes(), Vec::<String>::new());
    assert!(fake.log().iter().all(|r| r.method == "GET"));
}

// How many copies a service has is the instance's `fleet.copies`, as any
// other setting: a middle copy destroyed by hand is missing, one started by
// hand beyond the count is one too many, and a raised or lowered count is
// applied (sidekick copies with their service's, destroyed first).
#[test]
fn the_copies_are_as_many_as_fleet_copies_says() {
    let (fake, client) = started(3);
    let desired = [web("nginx:1.25"), announce()];
    let copy = |n: u32| format!("blog-staging-web@{n}.service");
    let announcer = |n: u32| format!("blog-staging-web-announce@{n}.service");

    // Copy 2 and its sidekick destroyed by hand; a copy 4 started by hand.
    client.delete_unit(&announcer(2)).unwrap();
    client.delete_unit(&copy(2)).unwrap();
    let options = (client.list_units().unwrap().into_iter())
        .find(|u| u.name == copy(1))
        .unwrap()
        .options;
    client
        .put_unit(&copy(4), JobState::Launched, &options)
        .unwrap();
    let planned = plan(&client, PREFIX, &desired, 3).unwrap();
    let web_plan = planned.units.iter().find(|u| u.name == WEB).unwrap();
    assert_eq!(web_plan.action, Action::Change);
    assert_eq!(web_plan.missing, ["2"]);
    assert_eq!(
        web_plan.extra,
        [(
            "4".to_owned(),
            "the instance's fleet.copies is 3".to_owned()
        )]
    );
    fake.clear_log();
    apply(&client, &planned, &opts(), &mut |_| {}).unwrap();
    for n in 1..=3 {
        assert!(fake.process(&copy(n)).is_some(), "{} does not run", copy(n));
        assert!(
            fake.process(&announcer(n)).is_some(),
            "{} does not run",
            announcer(n)
        );
    }
    assert!(fake.unit(&copy(4)).is_none(), "{:#?}", fake.writes());
    // Copies 1 and 3 ran as they were: not touched.
    assert!(
        fake.writes()
            .iter()
            .all(|w| !w.contains("@1.") && !w.contains("@3.")),
        "{:#?}",
        fake.writes()
    );
    assert!(!plan(&client, PREFIX, &desired, 3).unwrap().has_changes());

    // Lowered to 1: copies 3 and 2 go, each sidekick before its service.
    fake.clear_log();
    run(&client, &desired, 1).unwrap();
    let destroyed: Vec<String> = (fake.writes().into_iter())
        .filter(|w| w.starts_with("DESTROY"))
        .collect();
    assert_eq!(
        destroyed,
        [
            format!("DESTROY {}", announcer(2)),
            format!("DESTROY {}", announcer(3)),
            format!("DESTROY {}", copy(2)),
            format!("DESTROY {}", copy(3)),
        ]
    );
    assert!(fake.process(&copy(1)).is_some() && fake.process(&announcer(1)).is_some());

    // Raised to 2: copy 2 and its sidekick are started again.
    run(&client, &desired, 2).unwrap();
    assert!(fake.process(&copy(2)).is_some() && fake.process(&announcer(2)).is_some());
    assert!(!plan(&client, PREFIX, &desired, 2).unwrap().has_changes());
}

// fleetctl keeps a continued line's physical lines in the options it
// submits (`run \` newline `    --name web`); unitgen joins them as systemd
// reads them. The same unit submitted either way is unchanged: moving from
// `render --fleet` + `fleetctl submit/start` to apply rolled every service
// once, for nothing (seen live).
#[test]
fn a_unit_fleetctl_submitted_is_not_taken_for_a_changed_one() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let text = "[Service]\nExecStart=/usr/bin/docker run \\\n    --name web \\\n    nginx:1.25\n";
    let desired = [(WEB.to_owned(), text.to_owned())];
    let as_fleetctl_submits = [opt(
        "Service",
        "ExecStart",
        "/usr/bin/docker run \\\n    --name web \\\n    nginx:1.25",
    )];
    let copy = "blog-staging-web@1.service";
    client
        .put_unit(WEB, JobState::Inactive, &as_fleetctl_submits)
        .unwrap();
    client
        .put_unit(copy, JobState::Launched, &as_fleetctl_submits)
        .unwrap();
    assert!(fake.process(copy).is_some());
    let planned = plan(&client, PREFIX, &desired, 1).unwrap();
    assert!(!planned.has_changes(), "{planned:#?}");
}

#[test]
fn plain_units_are_replaced_whole() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let timer = |when: &str| {
        (
            "blog-staging-backup.timer".to_owned(),
            format!("[Timer]\nOnCalendar={when}\n\n[X-Fleet]\nMachineOf=blog-staging-db.service\n"),
        )
    };
    let db = (
        "blog-staging-db.service".to_owned(),
        "[Service]\nExecStart=/usr/bin/docker run postgres:16\n".to_owned(),
    );
    run(&client, &[db.clone(), timer("daily")], 3).unwrap();
    assert_eq!(fake.units().len(), 2, "a plain unit has no copies");
    fake.clear_log();
    run(&client, &[db, timer("hourly")], 3).unwrap();
    assert_eq!(
        fake.writes(),
        [
            "SET blog-staging-backup.timer inactive",
            "SUBMIT blog-staging-backup.timer",
            "SET blog-staging-backup.timer launched",
        ]
    );
    let timer = fake.unit("blog-staging-backup.timer").unwrap();
    assert_eq!(timer.option("Timer", "OnCalendar"), Some("hourly"));
    assert_eq!(
        timer.machine_id,
        fake.unit("blog-staging-db.service").unwrap().machine_id
    );
}

#[test]
fn status_and_destroy_cover_one_instance_only() {
    let (fake, client) = started(2);
    let live = FleetClient::new(fake.endpoint()).unwrap();
    let (_, text) = web("nginx:1.25");
    let live_web = text.replace("blog-staging-", "blog-live-");
    live.put_unit(
        "blog-live-web@1.service",
        JobState::Launched,
        &parse(&live_web).unwrap(),
    )
    .unwrap();

    let units = status(&client, PREFIX, Some(2)).unwrap();
    assert_eq!(units.len(), 6);
    let copy = units
        .iter()
        .find(|u| u.name == "blog-staging-web@1.service")
        .unwrap();
    assert_eq!(copy.current_state, Some(JobState::Launched));
    let systemd = copy.systemd.as_ref().unwrap();
    assert_eq!(
        (
            systemd.systemd_active_state.as_str(),
            systemd.machine_id.as_str()
        ),
        ("active", copy.machine_id.as_str())
    );
    assert!(
        units
            .iter()
            .find(|u| u.name == WEB)
            .unwrap()
            .systemd
            .is_none()
    );

    fake.clear_log();
    let destroyed = destroy(&client, PREFIX, &opts(), &mut |_| {})
        .unwrap()
        .units;
    assert_eq!(destroyed.len(), 6);
    let writes = fake.writes();
    assert_eq!(
        writes[..2],
        [
            "DESTROY blog-staging-web-announce@1.service",
            "DESTROY blog-staging-web-announce@2.service"
        ]
    );
    assert_eq!(
        writes[4..],
        [
            "DESTROY blog-staging-web-announce@.service",
            "DESTROY blog-staging-web@.service"
        ]
    );
    let names: Vec<String> = fake.units().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["blog-live-web@1.service"]);
    assert!(
        destroy(&client, PREFIX, &opts(), &mut |_| {})
            .unwrap()
            .units
            .is_empty()
    );
}

#[test]
fn plan_rejects_what_it_cannot_submit() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let cases = [
        (
            ("blog-live-web@.service", "[Service]\nExecStart=/bin/true\n"),
            "does not start with `blog-staging-`",
        ),
        (
            (
                "blog-staging-web@1.service",
                "[Service]\nExecStart=/bin/true\n",
            ),
            "give the template `blog-staging-web@.service`",
        ),
        (
            ("blog-staging-web@.service", "[Service]\nno equals sign\n"),
            "planning blog-staging-web@.service: line 2:",
        ),
        (
            ("blog-staging-web@.service", "# nothing\n"),
            "the unit has no options",
        ),
    ];
    for ((name, text), message) in cases {
        let err = plan(&client, PREFIX, &[(name.to_owned(), text.to_owned())], 1).unwrap_err();
        assert!(err.to_string().contains(message), "{name}: {err}");
    }
    assert!(fake.log().is_empty(), "rejected before asking fleet");
}

// ---- failures ------------------------------------------------------------

#[test]
fn a_template_fleet_rejects_is_reported_and_the_old_copy_restored() {
    let (fake, client) = started(2);
    let (name, text) = web("nginx:1.27");
    let invalid = (
        name,
        text.replace("[X-Fleet]\n", "[X-Fleet]\nMachineID=machine-1\n"),
    );
    let err = run(&client, &[invalid, announce()], 2).unwrap_err();
    let message = err.to_string();
    assert_eq!(err.status(), Some(400));
    assert!(
        message.starts_with(
            "submitting blog-staging-web@.service: fleet answered 400: MachineID cannot be used with Conflicts; rolled back: restored "
        ),
        "{message}"
    );
    // The previous revision runs again: the template and both copies, old options.
    assert!(
        fake.unit(WEB)
            .unwrap()
            .option("Service", "ExecStart")
            .unwrap()
            .ends_with("nginx:1.25")
    );
    for i in 1..=2 {
        let copy = format!("blog-staging-web@{i}.service");
        assert!(exec_start(&fake, &copy).ends_with("nginx:1.25"), "{copy}");
        assert_eq!(fake.unit(&copy).unwrap().current_state, "launched");
        assert_eq!(
            fake.unit(&format!("blog-staging-web-announce@{i}.service"))
                .unwrap()
                .current_state,
            "launched"
        );
    }
    assert_eq!(fake.units().len(), 6);
}

#[test]
fn a_copy_that_fails_stops_the_roll_and_is_rolled_back() {
    let (fake, client) = started(3);
    fake.fail_units_containing("nginx:broken");
    let err = run(&client, &[web("nginx:broken"), announce()], 3).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("waiting for blog-staging-web@1.service to run: it failed on machine"),
        "{message}"
    );
    assert!(message.contains("rolled back: restored"), "{message}");
    // Copy 2 and 3 were never touched.
    assert!(
        !fake
            .writes()
            .iter()
            .any(|w| w.contains("@2.") || w.contains("@3.")),
        "{:#?}",
        fake.writes()
    );
    for i in 1..=3 {
        assert!(
            exec_start(&fake, &format!("blog-staging-web@{i}.service")).ends_with("nginx:1.25")
        );
    }
    assert!(
        fake.unit(WEB)
            .unwrap()
            .option("Service", "ExecStart")
            .unwrap()
            .ends_with("nginx:1.25")
    );
}

// Seen live: a copy whose `docker run` fails under `Restart=always` (as
// unitgen's units are) never reaches `failed`: systemd starts it again
// every `RestartSec=`. apply waited --fleet-wait (120 s by default), then
// said only 'systemd reports activating/start-post'.
#[test]
fn a_copy_in_a_restart_loop_is_a_failed_start_and_plan_names_the_loop() {
    let restarting = |image| {
        let (name, text) = web(image);
        let text = text.replace("[Service]\n", "[Service]\nRestart=always\nRestartSec=5s\n");
        (name, text)
    };
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    run(&client, &[restarting("nginx:1.25"), announce()], 1).unwrap();
    fake.fail_units_containing("nginx:broken");
    let options = ApplyOptions {
        wait_timeout: Duration::from_secs(20),
        ..opts()
    };
    let message = run_with(
        &client,
        &[restarting("nginx:broken"), announce()],
        1,
        &options,
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.starts_with(
            "waiting for blog-staging-web@1.service to run: it failed on machine machine-"
        ) && message.contains(
            ", and systemd starts it again and again (systemd: activating/auto-restart; \
             `journalctl -u blog-staging-web@1.service` there says why)"
        ),
        "{message}"
    );
    assert!(message.contains("rolled back: restored"), "{message}");
    let old = unit_hash(&parse(&restarting("nginx:1.25").1).unwrap());
    assert_eq!(fake.process("blog-staging-web@1.service"), Some(old));

    // A copy that starts failing where it ran: plan names the loop.
    fake.fail_units_containing("nginx:1.25");
    let planned = plan(&client, PREFIX, &[restarting("nginx:1.25"), announce()], 1).unwrap();
    let web = planned.units.iter().find(|u| u.name == WEB).unwrap();
    assert_eq!(web.action, Action::Change);
    let why = web.copies[0].not_running.as_deref().unwrap();
    assert!(
        why.starts_with("it fails on machine machine-")
            && why.ends_with(", and systemd starts it again and again (activating/auto-restart)"),
        "{why}"
    );
}

#[test]
fn a_roll_waits_for_fleet_to_forget_the_old_copy_and_says_so_on_timeout() {
    let (fake, client) = started(2);
    // The machines never stop the destroyed copies.
    fake.set_forget_delay(Duration::from_secs(600));
    let options = ApplyOptions {
        wait_timeout: Duration::from_millis(300),
        ..opts()
    };
    let err = run_with(&client, &[web("nginx:1.27"), announce()], 1, &options).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("waiting for fleet to forget blog-staging-web@1.service: its machines still report it after 300ms: blog-staging-web@1.service is still active/running on machine machine-"),
        "{message}"
    );
    // The new copy was never submitted under the old one's name.
    assert!(
        !fake
            .writes()
            .contains(&"SUBMIT blog-staging-web@1.service".to_owned()),
        "{:#?}",
        fake.writes()
    );
    // The rollback could not restore copy 1 either, and says so.
    assert!(
        message.contains(
            "rollback incomplete: waiting for fleet to forget blog-staging-web@1.service"
        ),
        "{message}"
    );
}

#[test]
fn a_rollback_checks_every_restored_copy_and_names_those_not_running() {
    let (fake, client) = started(2);
    // Every announce copy fails from now on, the restored one too.
    fake.fail_units_containing("announce blog staging web");
    let err = run(&client, &[web("nginx:1.27"), announce()], 2).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "waiting for blog-staging-web-announce@1.service to run: it failed on machine"
        ),
        "{message}"
    );
    assert!(
        !message.contains("blog-staging-web-announce@1.service as before"),
        "a copy that does not run is not called restored: {message}"
    );
    assert!(
        message.contains("rollback incomplete: waiting for blog-staging-web-announce@1.service to run: it failed on machine"),
        "{message}"
    );
    // The service's copy is back, running its old unit file.
    let old = unit_hash(&parse(&web("nginx:1.25").1).unwrap());
    assert_eq!(fake.process("blog-staging-web@1.service"), Some(old));
}

#[test]
fn plan_and_apply_replace_a_copy_that_does_not_run() {
    let (fake, client) = started(2);
    fake.stop_process("blog-staging-web-announce@2.service");
    let desired = [web("nginx:1.25"), announce()];
    let planned = plan(&client, PREFIX, &desired, 2).unwrap();
    let sidekick = planned.units.iter().find(|u| u.name == ANNOUNCE).unwrap();
    assert_eq!(sidekick.action, Action::Change);
    let stopped = &sidekick.copies[1];
    assert_eq!(stopped.name, "blog-staging-web-announce@2.service");
    let why = stopped.not_running.as_deref().unwrap();
    assert!(
        why.starts_with("systemd reports inactive/dead on machine machine-"),
        "{why}"
    );
    assert_eq!(sidekick.copies[0].not_running, None);

    apply(&client, &planned, &opts(), &mut |_| {}).unwrap();
    assert_eq!(
        fake.writes(),
        [
            "SET blog-staging-web-announce@2.service inactive",
            "SUBMIT blog-staging-web-announce@2.service",
            "SET blog-staging-web-announce@2.service launched",
        ]
    );
    assert!(
        fake.process("blog-staging-web-announce@2.service")
            .is_some()
    );
    assert!(!plan(&client, PREFIX, &desired, 2).unwrap().has_changes());
}

// More copies than machines, each copy conflicting with the others (live:
// copy 3 of 3 on two machines stayed unplaced): apply waited for the whole
// --fleet-wait, then rolled back, with no word why. plan says it, apply
// refuses it before anything changes.
#[test]
fn more_copies_than_machines_are_refused_before_anything_changes() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let planned = plan(&client, PREFIX, &[web("nginx:1.25"), announce()], 4).unwrap();
    let web_plan = planned.units.iter().find(|u| u.name == WEB).unwrap();
    let why = "fleet.copies is 4, but its Conflicts=blog-staging-web@*.service lets each \
               machine run one copy, and only 3 of the cluster's 3 machines may run it";
    assert_eq!(web_plan.unplaceable.as_deref(), Some(why));
    let err = apply(&client, &planned, &opts(), &mut |_| {}).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("placing {WEB}: {why};")),
        "{err}"
    );
    assert_eq!(fake.writes(), Vec::<String>::new());
    // As many as the machines are placed, one on each.
    run(&client, &[web("nginx:1.25"), announce()], 3).unwrap();
    let mut machines: Vec<String> = (1..=3)
        .map(|i| {
            fake.unit(&format!("blog-staging-web@{i}.service"))
                .unwrap()
                .machine_id
        })
        .collect();
    machines.sort();
    machines.dedup();
    assert_eq!(machines, MACHINES);
}

// A machine taken by a unit that conflicts with the copies (one plan cannot
// see coming): the copy that finds no machine times out, and what the apply
// started is removed.
#[test]
fn a_copy_the_cluster_cannot_place_times_out_and_new_units_are_removed() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let hog = parse(
        "[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nConflicts=blog-staging-web@*.service\n",
    )
    .unwrap();
    client
        .put_unit("other.service", JobState::Launched, &hog)
        .unwrap();
    let options = ApplyOptions {
        wait_timeout: Duration::from_millis(200),
        ..opts()
    };
    let err = run_with(&client, &[web("nginx:1.25")], 3, &options).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("waiting for blog-staging-web@3.service to be loaded, with nothing running under its name: not loaded after 200ms: fleet has not scheduled it"), "{message}");
    assert!(
        message.ends_with("rolled back: removed what this apply had started"),
        "{message}"
    );
    let left: Vec<String> = fake.units().into_iter().map(|u| u.name).collect();
    assert_eq!(left, ["other.service"]);
}

#[test]
fn errors_from_fleet_are_shown_with_what_unitgen_was_doing() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let err = client
        .put_unit("blog-staging-web@.service", JobState::Inactive, &[])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "setting blog-staging-web@.service to inactive: fleet answered 409: unit does not exist and options field empty"
    );
    let body = fake.log()[0].body.clone().unwrap();
    assert_eq!(
        body,
        json!({"name": "blog-staging-web@.service", "desiredState": "inactive"})
    );
}

#[test]
fn a_sidekick_of_a_sidekick_follows_its_chain() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    // Sorts before the announcer it follows, so only the chain orders it.
    let logs = (
        "blog-staging-web-a-logs@.service".to_owned(),
        "[Service]\nExecStart=/usr/bin/ship-logs %i\n\n[X-Fleet]\nMachineOf=blog-staging-web-announce@%i.service\n"
            .to_owned(),
    );
    let p = plan(
        &client,
        PREFIX,
        &[web("nginx:1.25"), announce(), logs.clone()],
        2,
    )
    .unwrap();
    let logs_plan = p.units.iter().find(|u| u.name == logs.0).unwrap();
    assert_eq!(logs_plan.sidekick_of.as_deref(), Some(ANNOUNCE));
    apply(&client, &p, &opts(), &mut |_| {}).unwrap();
    for i in 1..=2 {
        let machine = fake
            .unit(&format!("blog-staging-web@{i}.service"))
            .unwrap()
            .machine_id;
        let shipper = fake
            .unit(&format!("blog-staging-web-a-logs@{i}.service"))
            .unwrap();
        assert_eq!(
            (shipper.machine_id, shipper.current_state.as_str()),
            (machine, "launched")
        );
    }

    fake.clear_log();
    run(&client, &[web("nginx:1.27"), announce(), logs.clone()], 2).unwrap();
    let first: Vec<String> = fake
        .writes()
        .into_iter()
        .filter(|w| w.contains("@1."))
        .collect();
    assert_eq!(
        first,
        [
            "SET blog-staging-web-a-logs@1.service inactive",
            "SET blog-staging-web-announce@1.service inactive",
            "SET blog-staging-web@1.service inactive",
            "SUBMIT blog-staging-web@1.service",
            "SET blog-staging-web@1.service launched",
            "SUBMIT blog-staging-web-announce@1.service",
            "SET blog-staging-web-announce@1.service launched",
            "SUBMIT blog-staging-web-a-logs@1.service",
            "SET blog-staging-web-a-logs@1.service launched",
        ]
    );

    // The middle of the chain changes alone: what follows it rolls too
    // (unloading its copy stops and unschedules theirs), not what it follows.
    fake.clear_log();
    let (name, text) = announce();
    let changed = (name, text.replace("--ttl 60", "--ttl 90"));
    run(&client, &[web("nginx:1.27"), changed, logs.clone()], 2).unwrap();
    let first: Vec<String> = fake
        .writes()
        .into_iter()
        .filter(|w| w.contains("@1."))
        .collect();
    assert_eq!(
        first,
        [
            "SET blog-staging-web-a-logs@1.service inactive",
            "SET blog-staging-web-announce@1.service inactive",
            "SUBMIT blog-staging-web-announce@1.service",
            "SET blog-staging-web-announce@1.service launched",
            "SUBMIT blog-staging-web-a-logs@1.service",
            "SET blog-staging-web-a-logs@1.service launched",
        ]
    );

    fake.clear_log();
    run(&client, &[web("nginx:1.27")], 2).unwrap();
    let writes = fake.writes();
    assert_eq!(writes.len(), 6);
    assert!(
        writes[..3].iter().all(|w| w.contains("a-logs")),
        "{writes:#?}"
    );
}

#[test]
fn sidekicks_following_each_other_in_a_circle_get_a_leader() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let unit = |name: &str, other: &str| {
        (
            format!("blog-staging-{name}@.service"),
            format!(
                "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineOf=blog-staging-{other}@%i.service\n"
            ),
        )
    };
    let p = plan(&client, PREFIX, &[unit("a", "b"), unit("b", "a")], 1).unwrap();
    let leaders: Vec<Option<&str>> = p.units.iter().map(|u| u.sidekick_of.as_deref()).collect();
    assert_eq!(leaders, [None, Some("blog-staging-a@.service")]);
}

#[test]
fn a_unit_run_everywhere_runs_on_each_machine_and_is_destroyed_after() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let cleanup = parse(
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\n",
    )
    .unwrap();
    let mut progress = Vec::new();
    let left = run_everywhere(
        &client,
        "blog-staging-network-cleanup.service",
        &cleanup,
        &opts(),
        &mut |l| progress.push(l.to_owned()),
    )
    .unwrap();
    assert!(left.is_empty());
    assert!(
        progress.contains(&"running blog-staging-network-cleanup.service on 3 machines".to_owned()),
        "{progress:#?}"
    );
    assert_eq!(
        fake.writes(),
        [
            "DESTROY blog-staging-network-cleanup.service",
            "SUBMIT blog-staging-network-cleanup.service",
            "DESTROY blog-staging-network-cleanup.service",
        ]
    );
    assert!(fake.units().is_empty());

    // Where it fails, the error names the machine and where to look.
    fake.fail_units_containing("/bin/true");
    let err = run_everywhere(
        &client,
        "blog-staging-network-cleanup.service",
        &cleanup,
        &opts(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("running blog-staging-network-cleanup.service on every machine: failed on machine machine-1 (failed/failed; `journalctl -u blog-staging-network-cleanup.service` there says why)"),
        "{err}"
    );
    assert!(fake.units().is_empty(), "destroyed after a failure too");
}

// Seen live: destroy with a machine lost (its systemd dead, not yet
// dropped by fleet) waited --fleet-wait (120 s) for the machine to run
// the network cleanup, then failed 'machine … did not finish it'. fleet
// drops the machine once its entry expires: it is no longer waited for.
#[test]
fn a_machine_lost_before_a_run_everywhere_is_not_waited_for() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let cleanup = parse(
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\n",
    )
    .unwrap();
    fake.lose_machine("machine-2", Duration::from_millis(300));
    let options = ApplyOptions {
        wait_timeout: Duration::from_secs(20),
        ..opts()
    };
    let mut progress = Vec::new();
    let left = run_everywhere(
        &client,
        "blog-staging-network-cleanup.service",
        &cleanup,
        &options,
        &mut |l| progress.push(l.to_owned()),
    )
    .unwrap();
    assert_eq!(left, ["machine-2"]);
    assert!(
        progress.contains(&"running blog-staging-network-cleanup.service on 3 machines".to_owned())
            && progress.contains(
                &"machine machine-2 left the cluster before it ran blog-staging-network-cleanup.service"
                    .to_owned()
            ),
        "{progress:#?}"
    );
    assert!(fake.units().is_empty());
}

// Seen live: a machine lost midway through an apply, as the copy being
// rolled was placed on it: fleet kept the copy there (no state) until the
// machine's entry expired, then placed it on the other machine, where it
// ran; the apply waited for it there and was right to say up to date.
#[test]
fn a_machine_lost_midway_through_a_roll_is_waited_out_on_another() {
    let (fake, client) = started(1);
    let first = fake.unit("blog-staging-web@1.service").unwrap().machine_id;
    fake.lose_machine(&first, Duration::from_millis(300));
    let desired = [web("nginx:1.27"), announce()];
    let progress = run(&client, &desired, 1).unwrap();
    // It was placed on the lost machine first, and waited for.
    assert!(
        progress.contains(&"waiting for blog-staging-web@1.service".to_owned()),
        "{progress:#?}"
    );
    for copy in [
        "blog-staging-web@1.service",
        "blog-staging-web-announce@1.service",
    ] {
        let unit = fake.unit(copy).unwrap();
        assert!(
            !unit.machine_id.is_empty() && unit.machine_id != first,
            "{copy} on {}",
            unit.machine_id
        );
        assert!(fake.runs_its_unit_file(copy), "{copy}");
    }
    let planned = plan(&client, PREFIX, &desired, 1).unwrap();
    assert!(
        planned.units.iter().all(|u| u.action == Action::Unchanged),
        "{planned:#?}"
    );
}

#[test]
fn a_global_unit_is_not_taken_for_one_that_does_not_run() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let cache = (
        "blog-staging-cache@.service".to_owned(),
        "[Service]\nExecStart=/usr/bin/docker run redis\n\n[X-Fleet]\nGlobal=true\n".to_owned(),
    );
    run(&client, std::slice::from_ref(&cache), 1).unwrap();
    let planned = plan(&client, PREFIX, &[cache], 1).unwrap();
    assert!(!planned.has_changes(), "{planned:#?}");
}

// A global copy whose machines all left (live: machine 2's fleetd stopped,
// the only one with the metadata it requires) was counted as running by
// plan, status and `ls --fleet`: fleet keeps it launched, and no machine
// reports anything. It runs nowhere, and is said so.
#[test]
fn a_global_unit_no_machine_may_run_is_not_running() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let text = "[Service]\nExecStart=/usr/bin/docker run redis\n\n[X-Fleet]\nGlobal=true\n\
                MachineMetadata=sandbox=2\n";
    let options = parse(text).unwrap();
    let (template, copy) = (
        "blog-staging-cache@.service",
        "blog-staging-cache@1.service",
    );
    client
        .put_unit(template, JobState::Inactive, &options)
        .unwrap();
    client.put_unit(copy, JobState::Launched, &options).unwrap();
    let why = "no machine of the cluster has MachineMetadata sandbox=2 (its machines: \
               machine-1 (no metadata); machine-2 (no metadata); machine-3 (no metadata))";
    let planned = plan(
        &client,
        PREFIX,
        &[(template.to_owned(), text.to_owned())],
        1,
    )
    .unwrap();
    let cache = planned.units.iter().find(|u| u.name == template).unwrap();
    assert_eq!(cache.copies[0].not_running.as_deref(), Some(why));
    assert_eq!(cache.action, Action::Change);
    let units = status(&client, PREFIX, Some(1)).unwrap();
    let cache = units.iter().find(|u| u.name == copy).unwrap();
    assert_eq!(cache.not_running.as_deref(), Some(why));
    let listed = unitgen::fleet::instances(&client).unwrap();
    assert!(listed.iter().all(|i| i.copies_running == 0), "{listed:?}");
}

// A unit whose MachineMetadata no machine has (live: a service pinned to a
// machine that left the cluster) would stay unplaced for the whole wait and
// be rolled back, with no word why: plan says it, apply refuses it at once.
// Seen live: the one machine with a copy's metadata left the cluster
// (fleetd stopped there); status said only that fleet had not placed the
// copy on a machine, where plan said why.
#[test]
fn a_copy_no_machine_may_run_is_said_why_in_status() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    // As fleet holds it once its machine has gone: launched, unplaced.
    let (name, text) = web("nginx:1.27");
    let pinned = parse(&(text + "MachineMetadata=sandbox=2\n")).unwrap();
    client.put_unit(&name, JobState::Inactive, &pinned).unwrap();
    let copy = "blog-staging-web@1.service";
    client.put_unit(copy, JobState::Launched, &pinned).unwrap();
    let units = status(&client, PREFIX, Some(1)).unwrap();
    let said = units.iter().find(|u| u.name == copy).unwrap();
    assert_eq!(
        said.not_running.as_deref(),
        Some(
            "fleet has not placed it on a machine: no machine of the cluster has \
             MachineMetadata sandbox=2 (its machines: machine-1 (no metadata); machine-2 (no \
             metadata); machine-3 (no metadata))"
        )
    );
}

#[test]
fn a_unit_no_machine_may_run_is_refused_before_anything_changes() {
    let (fake, client) = started(1);
    let (name, text) = web("nginx:1.27");
    let pinned = (name, text + "MachineMetadata=sandbox=1\n");
    let planned = plan(&client, PREFIX, &[pinned, announce()], 1).unwrap();
    let web_plan = planned.units.iter().find(|u| u.name == WEB).unwrap();
    let why = "no machine of the cluster has MachineMetadata sandbox=1 (its machines: \
               machine-1 (no metadata); machine-2 (no metadata); machine-3 (no metadata))";
    assert_eq!(web_plan.unplaceable.as_deref(), Some(why));
    let err = apply(&client, &planned, &opts(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "placing {WEB}: {why}; fleet places it once such a machine joins. Nothing was \
             changed"
        )
    );
    assert_eq!(fake.writes(), Vec::<String>::new());
}

// Live: a fleetd SIGKILLed and restarted by systemd answers every request
// 503 "fleet server unable to communicate with etcd" until its old machine
// entry expires (it logs "register machine failed: Key already exists");
// one restarted by `systemctl restart` does for a second or two. (With
// etcd down or stopped, fleetd answers 500 with no message, not 503: the
// note said "etcd is down" for a 503.)
#[test]
fn a_fleetd_that_cannot_use_etcd_is_said_so_with_what_to_do() {
    let fake = fake();
    fake.set_etcd_unreachable(true);
    let client = FleetClient::new(fake.endpoint())
        .unwrap()
        .with_retry_for(Duration::from_secs(2));
    let err = plan(&client, PREFIX, &[web("nginx:1.25")], 1).unwrap_err();
    assert_eq!(err.status(), Some(503));
    let said = err.to_string();
    assert!(
        said.starts_with(
            "listing fleet units: fleet answered 503: fleet server unable to communicate with \
             etcd; this fleetd has just (re)started and cannot use etcd yet: it waits for \
             its machine entry there (after a crash, about 30 s, until the old one expires); \
             try again, or another machine's endpoint; fleet answered so for "
        ) && said.ends_with(" s, each time it was asked again"),
        "{said}"
    );
    // Asked again, a second apart, for the 2 s.
    assert!(fake.summaries().len() >= 2, "{:?}", fake.summaries());
    assert!(fake.summaries().iter().all(|r| r == "LIST"));
}

// Live: with etcd stopped or not answering, fleetd answers every request
// 500 with no message. An apply failed at the first such answer, midway
// through a roll, and its rollback failed alike: the copy was left loaded
// and not running (`{"error":{"code":500,"message":""}}` was all it said).
// A request is now sent again while fleet answers so; a write fleet did
// before its answer failed is not done twice (a DELETE found gone is done).
#[test]
fn a_brief_etcd_outage_midway_through_a_roll_is_waited_out() {
    let (fake, client) = started(2);
    let desired = [web("nginx:1.27"), announce()];
    let planned = plan(&client, PREFIX, &desired, 2).unwrap();
    // The third write is the old template's DESTROY: done, answered 500
    // twice, then found gone.
    fake.etcd_outage_after_writes(2, 2);
    apply(&client, &planned, &opts(), &mut |_| {}).unwrap();
    let destroys = (fake.log().iter())
        .filter(|r| r.summary() == format!("DESTROY {WEB}"))
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(destroys, [500, 500, 404]);
    for i in 1..=2 {
        let copy = format!("blog-staging-web@{i}.service");
        assert!(fake.runs_its_unit_file(&copy), "{copy}");
        assert!(exec_start(&fake, &copy).contains("nginx:1.27"));
    }
    assert!(!plan(&client, PREFIX, &desired, 2).unwrap().has_changes());

    // Still unreachable after the client's wait: said so, with what it is.
    let client = client.with_retry_for(Duration::ZERO);
    fake.etcd_outage_after_writes(0, 1);
    let err = status(&client, PREFIX, Some(2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "listing fleet units: fleet answered 500: an error with no message; fleetd answers \
         so while it cannot reach etcd (etcd down, or not answering)"
    );
}

// Seen live: fleetd killed on the machine whose API an apply used, as
// the apply waited for a copy: systemd started it again 5 s later, and it
// answered 503 for 31 s more, until its old machine entry expired. The
// apply asked again for 30 s, then rolled back and failed.
#[test]
fn a_fleetd_crashed_midway_through_a_roll_is_waited_out() {
    let (fake, client) = started(1);
    let desired = [web("nginx:1.27"), announce()];
    let planned = plan(&client, PREFIX, &desired, 1).unwrap();
    // After the new copy is launched: 35 requests, a second apart.
    fake.restart_after_writes(6, 35);
    // (--fleet-wait's default: the wait for the copy outlasts the 503s.)
    let options = ApplyOptions {
        wait_timeout: Duration::from_secs(120),
        ..opts()
    };
    apply(&client, &planned, &options, &mut |_| {}).unwrap();
    let copy = "blog-staging-web@1.service";
    assert!(fake.runs_its_unit_file(copy));
    assert!(exec_start(&fake, copy).contains("nginx:1.27"));
    assert!(
        fake.log().iter().filter(|r| r.status == 503).count() == 35,
        "{:?}",
        fake.summaries()
    );
    assert!(!plan(&client, PREFIX, &desired, 1).unwrap().has_changes());
}

// fleetd killed (or restarted) while it had a request: the connection
// closes with no answer, and the apply failed at once, midway through its
// roll ("the connection was closed"). Once fleet has answered, such a
// request is sent again, as a 503 is.
#[test]
fn a_request_fleetd_drops_unanswered_midway_through_a_roll_is_sent_again() {
    let (fake, client) = started(1);
    let desired = [web("nginx:1.27"), announce()];
    let planned = plan(&client, PREFIX, &desired, 1).unwrap();
    // The request after the new copy's launch gets no answer.
    fake.hold_after_writes(6);
    std::thread::scope(|scope| {
        let applied = scope.spawn(|| apply(&client, &planned, &opts(), &mut |_| {}));
        support::wait_for(Duration::from_secs(60), || fake.holding().then_some(()))
            .expect("a request is held");
        fake.release();
        applied.join().unwrap().unwrap();
    });
    let copy = "blog-staging-web@1.service";
    assert!(fake.runs_its_unit_file(copy));
    assert!(exec_start(&fake, copy).contains("nginx:1.27"));
    assert!(!plan(&client, PREFIX, &desired, 1).unwrap().has_changes());
    // A fleet that never answered is said at once (a wrong endpoint).
    let never = FleetClient::new("http://127.0.0.1:1").unwrap();
    assert!(matches!(
        plan(&never, PREFIX, &desired, 1).unwrap_err().kind,
        ErrorKind::Io { .. }
    ));
}

// Seen live, of two applies at once: one's roll back put a sidekick copy
// back while the other's roll back left its service's copy inactive; fleet
// places a sidekick only beside its service (MachineOf=), and the apply
// waited --fleet-wait (120 s) for a placement that could not come.
#[test]
fn a_sidekick_whose_service_copy_another_apply_unloads_is_said_at_once() {
    let (fake, client) = started(1);
    // Right after this roll submitted the sidekick's copy (its seventh
    // write), another client unloads the service's.
    fake.unload_after_writes(7, "blog-staging-web@1.service");
    let err = run(&client, &[web("nginx:1.27"), announce()], 1).unwrap_err();
    assert_eq!(
        fake.writes()[6],
        format!("SUBMIT {}", "blog-staging-web-announce@1.service")
    );
    let message = err.to_string();
    assert!(
        message.starts_with(
            "waiting for blog-staging-web-announce@1.service to be loaded, with nothing running \
             under its name: fleet cannot place it: it goes with blog-staging-web@1.service \
             (MachineOf=), which fleet is told to keep inactive"
        ),
        "{message}"
    );
}

// Seen live: of two applies of one instance at once (from two machines),
// one waited --fleet-wait for its copy, which the other had replaced
// under the same name, then put its old units back over the other's.
#[test]
fn a_copy_another_apply_replaces_meanwhile_is_said_at_once_and_left_as_it_is() {
    let (fake, client) = started(1);
    // Another client's copy: other options under web@1's name, PUT right
    // after this apply submitted its own (its fifth write).
    let theirs = parse(&web("nginx:9.9").1).unwrap();
    let theirs: Vec<_> = serde_json::from_value(options_json(&theirs)).unwrap();
    fake.replace_options_after_writes(5, "blog-staging-web@1.service", theirs);
    let err = run(&client, &[web("nginx:1.27"), announce()], 1).unwrap_err();
    let message = err.to_string();
    assert_eq!(
        fake.writes()[4],
        "SUBMIT blog-staging-web@1.service",
        "{:#?}",
        fake.writes()
    );
    assert!(
        message.starts_with(
            "waiting for blog-staging-web@1.service to be loaded, with nothing running under its name: \
             fleet now holds other unit text under blog-staging-web@1.service than unitgen submitted: \
             changed while this ran (another apply of the instance at the same time, or a change by hand?)"
        ),
        "{message}"
    );
    assert!(
        message.contains("left as fleet has them: blog-staging-web@1.service ("),
        "{message}"
    );
    // The other client's copy stays; this apply's template is put back.
    assert!(exec_start(&fake, "blog-staging-web@1.service").ends_with("nginx:9.9"));
    assert!(exec_start(&fake, WEB).ends_with("nginx:1.25"));
    assert!(
        !fake
            .writes()
            .iter()
            .skip(5)
            .any(|w| w.contains("blog-staging-web@1.service")),
        "nothing written to the other's copy: {:#?}",
        fake.writes()
    );
}

// Each answer as the live fleet (v1.0.0-15) sent it, status and body, for
// requests it refuses or that find nothing (checked side by side).
#[test]
fn refusals_are_answered_with_live_fleets_bodies() {
    let fake = FakeFleet::start();
    let json = Some("application/json");
    let run = r#""options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]"#;
    let template = format!(r#"{{"desiredState":"inactive",{run}}}"#);
    assert_eq!(
        fake.raw("PUT", "/fleet/v1/units/t@.service", json, &template)
            .0,
        201
    );
    let launched = format!(r#"{{"desiredState":"launched",{run}}}"#);
    for (method, target, content_type, body, status, answer) in [
        (
            "GET",
            "/fleet/v1/units/nosuch.service",
            None,
            "",
            404,
            r#"{"error":{"code":404,"message":"unit does not exist"}}"#,
        ),
        (
            "DELETE",
            "/fleet/v1/units/nosuch.service",
            None,
            "",
            404,
            r#"{"error":{"code":404,"message":"unit does not exist"}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/nosuch.service",
            json,
            r#"{"desiredState":"launched"}"#,
            409,
            r#"{"error":{"code":409,"message":"unit does not exist and options field empty"}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/e.service",
            json,
            r#"{"desiredState":"launched","options":[]}"#,
            409,
            r#"{"error":{"code":409,"message":"unit does not exist and options field empty"}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/t@.service",
            json,
            &format!("{{{run}}}"),
            409,
            r#"{"error":{"code":409,"message":"must provide DesiredState to update existing unit"}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/t@.service",
            json,
            r#"{"desiredState":"launched"}"#,
            400,
            r#"{"error":{"code":400,"message":"cannot activate template \"t@.service\""}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/x.service",
            Some("text/plain"),
            "{}",
            415,
            r#"{"error":{"code":415,"message":"only acceptable Content-Type is application/json"}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/x.service",
            None,
            "{}",
            415,
            r#"{"error":{"code":415,"message":"expected 1 Content-Type, got 0"}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/x.service",
            json,
            &format!(r#"{{"name":"y.service","desiredState":"launched",{run}}}"#),
            400,
            r#"{"error":{"code":400,"message":"name in URL \"x.service\" differs from unit name in request body \"y.service\""}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/x.foo",
            json,
            &launched,
            400,
            r#"{"error":{"code":400,"message":"invalid unit type: \"foo\""}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/a%20b.service",
            json,
            &launched,
            400,
            r#"{"error":{"code":400,"message":"invalid character ' ' in unit name"}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/noext",
            json,
            &launched,
            400,
            r#"{"error":{"code":400,"message":"unit name must contain \".\""}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/c.service",
            json,
            r#"{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"},{"section":"X-Fleet","name":"MachineOf","value":"x.service"},{"section":"X-Fleet","name":"Conflicts","value":"x.service"}]}"#,
            400,
            r#"{"error":{"code":400,"message":"unresolvable requirements: peer \"x.service\" matches conflict \"x.service\""}}"#,
        ),
        (
            "PUT",
            "/fleet/v1/units/g.service",
            json,
            r#"{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"},{"section":"X-Fleet","name":"Global","value":"true"},{"section":"X-Fleet","name":"MachineOf","value":"x.service"}]}"#,
            400,
            r#"{"error":{"code":400,"message":"Global cannot be used with Peers"}}"#,
        ),
        // A state outside the enum: fleetd fails writing it, with no word.
        (
            "PUT",
            "/fleet/v1/units/z.service",
            json,
            &format!(r#"{{"desiredState":"bogus",{run}}}"#),
            500,
            r#"{"error":{"code":500,"message":""}}"#,
        ),
        (
            "GET",
            "/fleet/v1/units/z.service",
            None,
            "",
            404,
            r#"{"error":{"code":404,"message":"unit does not exist"}}"#,
        ),
        (
            "POST",
            "/fleet/v1/units",
            None,
            "",
            405,
            r#"{"error":{"code":405,"message":"only GET supported against this resource"}}"#,
        ),
        (
            "POST",
            "/fleet/v1/units/x.service",
            None,
            "",
            405,
            r#"{"error":{"code":405,"message":"only GET, PUT and DELETE supported against this resource"}}"#,
        ),
        (
            "GET",
            "/fleet/v1/nosuch",
            None,
            "",
            404,
            r#"{"error":{"code":404,"message":""}}"#,
        ),
        (
            "GET",
            "/fleet/v1/units/a/b",
            None,
            "",
            404,
            r#"{"error":{"code":404,"message":""}}"#,
        ),
        (
            "GET",
            "/fleet/v1/units?nextPageToken=zzz",
            None,
            "",
            400,
            r#"{"error":{"code":400,"message":"illegal base64 data at input byte 0"}}"#,
        ),
        (
            "GET",
            "/fleet/v1/units?nextPageToken=zzzz",
            None,
            "",
            400,
            r#"{"error":{"code":400,"message":"unexpected EOF"}}"#,
        ),
        (
            "GET",
            "/fleet/v1/units?nextPageToken=a%20b",
            None,
            "",
            400,
            r#"{"error":{"code":400,"message":"illegal base64 data at input byte 1"}}"#,
        ),
        (
            "GET",
            "/fleet/v1/units?nextPageToken=ZAAAAA==",
            None,
            "",
            400,
            r#"{"error":{"code":400,"message":"token page must be greater than zero"}}"#,
        ),
        (
            "GET",
            "/fleet/v1/units?nextPageToken=CgABAA==",
            None,
            "",
            400,
            r#"{"error":{"code":400,"message":"token limit must be 100"}}"#,
        ),
        (
            "GET",
            "/fleet/v1/units?nextPageToken=a&nextPageToken=b",
            None,
            "",
            400,
            r#"{"error":{"code":400,"message":"too many values for page token"}}"#,
        ),
        // Nothing found: an empty object, no empty list.
        (
            "GET",
            "/fleet/v1/units?nextPageToken=ZAACAA==",
            None,
            "",
            200,
            "{}",
        ),
        (
            "GET",
            "/fleet/v1/state?unitName=nosuch.service",
            None,
            "",
            200,
            "{}",
        ),
        (
            "GET",
            "/fleet/v1/state?machineID=nosuch",
            None,
            "",
            200,
            "{}",
        ),
    ] {
        let got = fake.raw(method, target, content_type, body);
        let want: serde_json::Value = serde_json::from_str(answer).unwrap();
        assert_eq!(got, (status, want), "{method} {target} {body}");
    }
    // Live: `unable to decode body: invalid character 'b' looking for
    // beginning of object key string` (Go's JSON decoder's words; the
    // fake's decoder has its own).
    let (status, body) = fake.raw("PUT", "/fleet/v1/units/x.service", json, "{bad");
    assert_eq!(status, 400);
    assert!(
        (body["error"]["message"].as_str())
            .is_some_and(|m| m.starts_with("unable to decode body: ")),
        "{body}"
    );
}

// Seen live right after a roll, under load: a machine's state of a copy it
// ran was missing for a moment (fleetd's agent deletes a stopped unit's
// states by name, from a goroutine that can land after the new copy's
// state, which it publishes again every 5 s). plan named the running copy
// not running ("reports no state for it") and apply replaced it.
#[test]
fn a_state_missing_for_a_moment_is_read_again_and_nothing_is_replaced() {
    let (fake, client) = started(2);
    let desired = [web("nginx:1.25"), announce()];
    fake.hide_state("blog-staging-web@1.service", 3);
    let planned = plan(&client, PREFIX, &desired, 2).unwrap();
    assert!(!planned.has_changes(), "{planned:#?}");
    fake.hide_state("blog-staging-web@2.service", 3);
    let units = status(&client, PREFIX, Some(2)).unwrap();
    assert!(units.iter().all(|u| u.not_running.is_none()), "{units:#?}");
    fake.hide_state("blog-staging-web@1.service", 3);
    run(&client, &desired, 2).unwrap();
    assert_eq!(fake.writes(), Vec::<String>::new());
}

// As other copies (above), a global one whose states are missing for a
// moment: plan and status took it for one that does not run, and apply
// replaced it.
#[test]
fn a_global_copys_state_missing_for_a_moment_is_read_again() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    let cache = global_cache("redis:7");
    run(&client, std::slice::from_ref(&cache), 1).unwrap();
    fake.clear_log();
    fake.hide_state("blog-staging-cache@1.service", 3);
    let planned = plan(&client, PREFIX, std::slice::from_ref(&cache), 1).unwrap();
    assert!(!planned.has_changes(), "{planned:#?}");
    fake.hide_state("blog-staging-cache@1.service", 3);
    let units = status(&client, PREFIX, Some(1)).unwrap();
    assert!(units.iter().all(|u| u.not_running.is_none()), "{units:#?}");
    assert_eq!(fake.writes(), Vec::<String>::new());
}

// A global copy another apply (or a hand) replaced while this apply waited
// for it to run on every machine: it waited --fleet-wait for a unit file
// no machine would run, where other copies say so at once.
#[test]
fn a_global_copy_another_apply_replaces_meanwhile_is_said_at_once() {
    let fake = fake();
    let client = FleetClient::new(fake.endpoint()).unwrap();
    run(&client, &[global_cache("redis:7")], 1).unwrap();
    fake.clear_log();
    let theirs = parse(&global_cache("redis:9").1).unwrap();
    let theirs: Vec<_> = serde_json::from_value(options_json(&theirs)).unwrap();
    // Right after this apply launched its copy (its fourth write).
    fake.replace_options_after_writes(4, "blog-staging-cache@1.service", theirs);
    let options = ApplyOptions {
        wait_timeout: Duration::from_secs(120),
        ..opts()
    };
    let err = run_with(&client, &[global_cache("redis:8")], 1, &options).unwrap_err();
    assert_eq!(fake.writes()[3], "SUBMIT blog-staging-cache@1.service");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "waiting for blog-staging-cache@1.service to run on every machine: fleet now holds \
             other unit text under blog-staging-cache@1.service than unitgen submitted"
        ),
        "{message}"
    );
    assert!(
        message.contains("left as fleet has them: blog-staging-cache@1.service ("),
        "{message}"
    );
    assert!(exec_start(&fake, "blog-staging-cache@1.service").ends_with("redis:9"));
}

fn global_cache(image: &str) -> (String, String) {
    (
        "blog-staging-cache@.service".to_owned(),
        format!("[Service]\nExecStart=/usr/bin/docker run {image}\n\n[X-Fleet]\nGlobal=true\n"),
    )
}

// Seen live: of two applies at once, one waited --fleet-wait for fleet to
// forget the copy it had unloaded, which the other had meanwhile submitted
// again under the same name (and ran): it never is forgotten.
#[test]
fn a_copy_submitted_by_another_apply_while_the_old_one_is_forgotten_is_said_at_once() {
    let (fake, client) = started(1);
    // The old copy's state stays 3 s: the roll waits for it.
    fake.set_forget_delay(Duration::from_secs(6));
    let theirs = parse(&web("nginx:9.9").1).unwrap();
    let err = std::thread::scope(|scope| {
        let rolling = scope.spawn(|| run(&client, &[web("nginx:1.27"), announce()], 1));
        let waiting = "STATE blog-staging-web@1.service".to_owned();
        support::wait_for(Duration::from_secs(60), || {
            fake.summaries().contains(&waiting).then_some(())
        })
        .expect("the roll waits for fleet to forget copy 1");
        // Another apply's copy, launched under the name.
        client
            .put_unit("blog-staging-web@1.service", JobState::Launched, &theirs)
            .unwrap();
        rolling.join().unwrap().unwrap_err()
    });
    let message = err.to_string();
    assert!(
        message.starts_with(
            "waiting for fleet to forget blog-staging-web@1.service: fleet now holds other unit \
             text under blog-staging-web@1.service than unitgen submitted"
        ),
        "{message}"
    );
    assert!(
        message.contains("left as fleet has them: blog-staging-web@1.service ("),
        "{message}"
    );
    assert!(exec_start(&fake, "blog-staging-web@1.service").ends_with("nginx:9.9"));
    assert_eq!(
        fake.unit("blog-staging-web@1.service")
            .unwrap()
            .desired_state,
        "launched"
    );
}
