//! No value can change a unit's meaning beyond its own (issue 7). Every
//! source of text that reaches a unit file gets hostile values; the units
//! are read back the way systemd reads them (`support/systemd_syntax.rs`)
//! and compared, directive by directive, with the units rendered from a
//! harmless placeholder: the same directives, and in each, the placeholder
//! replaced by exactly the hostile value. A value that cannot be written so
//! must be refused with a located error.
//!
//! The proptest suites at the end run the same check over generated values,
//! and mutate the examples' templates to check that nothing panics and that
//! every unit rendered from them reads back as unitgen's own parser reads it.

#[path = "support/systemd_syntax.rs"]
mod systemd_syntax;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{LazyLock, Mutex};

use proptest::prelude::*;
use unitgen::compile::{Overrides, compile};
use unitgen::render::{Flavour, Renderer, UnitFile};
use unitgen::template::{self, Template};

use systemd_syntax::{Directive, meaning, parse};

/// Lowercase: a host name must be.
const PLACEHOLDER: &str = "placeholder";

/// How a source treats a value it cannot carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Escaped (a `docker run` argument): anything but NUL is accepted and
    /// must arrive exactly.
    Escaped,
    /// Written as systemd syntax (`systemd:` values): accepted only if it
    /// stays one directive, compared as written.
    Raw,
    /// Checked against a strict syntax (names, URLs, …): refusing is fine.
    Checked,
    /// A word of a shell script in a command line (`env_file`'s paths, which
    /// the unit reads before the start): anything but NUL is accepted, and it
    /// must add, drop or reorder no directive. Its text is quoted for `sh`
    /// inside systemd's quoting, so it is not compared word for word here;
    /// `render::env_file`'s tests run that round trip through a real `sh`.
    ShellWord,
    /// Checked against a syntax so strict (a duration, a signal, a size)
    /// that the placeholder is no valid value: the value is put after a
    /// valid one, and the units of the valid one alone are the comparison.
    /// A hostile value must be refused, or add, drop or reorder no directive.
    Strict,
    /// Checked, so refusing is fine, and passed on as one argument: a value
    /// accepted must arrive exactly, as with `Escaped`.
    Exact,
}

/// One place a value can come from, as a template with `{{ v }}` there.
struct Source {
    name: &'static str,
    kind: Kind,
    /// Service `web`'s extra lines (indented 4), or `None` for `template`.
    web: &'static str,
    /// Top-level lines after `services:` (etcd, fleet).
    top: &'static str,
    /// The instance's entry (`{}` when empty).
    entry: &'static str,
    /// Whether the value is written into the file as a YAML string where
    /// `{{ v }}` stands (for keys read as written, without expressions),
    /// rather than set with `--set v=…`.
    literal: bool,
}

const SOURCES: &[Source] = &[
    Source {
        name: "environment value",
        kind: Kind::Escaped,
        web: "    environment: {GREETING: \"{{ v }}\"}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "label",
        kind: Kind::Escaped,
        web: "    labels: {note: \"{{ v }}\"}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "label name",
        kind: Kind::Exact,
        web: "    labels: [\"{{ v }}=x\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "command word",
        kind: Kind::Escaped,
        web: "    command: [echo, \"{{ v }}\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "entrypoint word",
        kind: Kind::Escaped,
        web: "    entrypoint: [/bin/sh, \"{{ v }}\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "user",
        kind: Kind::Escaped,
        web: "    user: \"{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "working_dir",
        kind: Kind::Escaped,
        web: "    working_dir: \"/srv/{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "env_file",
        kind: Kind::ShellWord,
        web: "    env_file: \"/etc/{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "healthcheck",
        kind: Kind::Escaped,
        web: "    healthcheck: {test: [CMD-SHELL, \"{{ v }}\"]}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "docker_args",
        kind: Kind::Escaped,
        web: "    docker_args: [\"--add-host={{ v }}\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "tmpfs",
        // After its first `:` come Docker's tmpfs options, checked as Docker
        // and the kernel read them (`syntax::check_tmpfs`).
        kind: Kind::Exact,
        web: "    tmpfs: \"/run/{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "systemd: Environment",
        kind: Kind::Raw,
        web: "    systemd: {Service: {Environment: \"GREETING={{ v }}\", ProtectSystem: strict}}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "systemd: Description",
        kind: Kind::Raw,
        web: "    systemd: {Unit: {Description: \"web {{ v }}\"}, Service: {ProtectSystem: strict}}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "systemd: X- section",
        kind: Kind::Raw,
        web: "    systemd: {X-Mine: {Note: \"{{ v }} here\"}}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "image",
        kind: Kind::Checked,
        web: "    image: \"busybox:{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "hostname",
        kind: Kind::Escaped,
        web: "    hostname: \"{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "volume",
        kind: Kind::Exact,
        web: "    volumes: [\"/srv/{{ v }}:/data\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "etcd endpoint",
        kind: Kind::Checked,
        web: "",
        top: "etcd: {endpoints: \"http://{{ v }}:2379\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "etcd prefix",
        kind: Kind::Checked,
        web: "",
        top: "etcd: {endpoints: \"http://127.0.0.1:2379\", prefix: \"/{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "etcd address",
        kind: Kind::Exact,
        web: "",
        top: "etcd: {endpoints: \"http://127.0.0.1:2379\", address: \"{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "external volume name",
        kind: Kind::Checked,
        web: "    volumes: [\"shared:/shared\"]\n",
        top: "volumes: {shared: {external: true, name: \"ext{{ v }}\"}}\n",
        entry: "",
        literal: true,
    },
    Source {
        // The flags the unit supervises its container by are refused
        // (`-d…`, `--rm`, …); any other word arrives as written.
        name: "docker_args flag",
        kind: Kind::Exact,
        web: "    docker_args: [\"{{ v }}\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "health_path",
        kind: Kind::Checked,
        web: "    health_path: \"/{{ v }}\"\n",
        top: "",
        entry: ROUTED,
        literal: false,
    },
    Source {
        name: "route host",
        kind: Kind::Checked,
        web: "",
        top: "",
        entry: "{routes: [{hosts: \"{{ v }}.example.com\", service: web, port: 80}]}",
        literal: true,
    },
    Source {
        name: "route alias",
        kind: Kind::Checked,
        web: "",
        top: "",
        entry: "{routes: [{hosts: a.example.com, aliases: [\"{{ v }}\"], service: web, port: 80}]}",
        literal: true,
    },
    Source {
        name: "route path",
        kind: Kind::Checked,
        web: "",
        top: "",
        entry: "{routes: [{hosts: a.example.com, path: \"/{{ v }}\", service: web, port: 80}]}",
        literal: true,
    },
    Source {
        name: "route path (etcd)",
        kind: Kind::Checked,
        web: "",
        top: "etcd: {endpoints: \"http://127.0.0.1:2379\", api: v3}\n",
        entry: "{routes: [{hosts: a.example.com, path: \"/{{ v }}\", service: web, port: 80}]}",
        literal: true,
    },
    Source {
        name: "router image",
        kind: Kind::Checked,
        web: "",
        top: "router: {image: \"traefik:{{ v }}\"}\n",
        entry: ROUTED,
        literal: true,
    },
    Source {
        name: "router directory",
        kind: Kind::Checked,
        web: "",
        top: "router: {directory: \"/srv/{{ v }}\"}\n",
        entry: ROUTED,
        literal: true,
    },
    Source {
        name: "router acme email",
        kind: Kind::Checked,
        web: "",
        top: "router: {acme: {email: \"{{ v }}@example.com\"}}\n",
        entry: ROUTED,
        literal: true,
    },
    Source {
        name: "router acme ca_server",
        kind: Kind::Checked,
        web: "",
        top: "router: {acme: {ca_server: \"https://ca.example/{{ v }}\"}}\n",
        entry: ROUTED,
        literal: true,
    },
    Source {
        name: "router acme ca_certificate",
        kind: Kind::Checked,
        web: "",
        top: "router: {acme: {ca_certificate: \"/etc/{{ v }}\"}}\n",
        entry: ROUTED,
        literal: true,
    },
    Source {
        name: "backup repository",
        kind: Kind::Checked,
        web: BACKED_UP,
        top: "backup: {repository: \"/srv/{{ v }}\", password_file: /etc/pw}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "backup password_file",
        kind: Kind::Checked,
        web: BACKED_UP,
        top: "backup: {repository: /srv/b, password_file: \"/etc/{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "backup environment_file",
        kind: Kind::Checked,
        web: BACKED_UP,
        top: "backup: {repository: /srv/b, password_file: /etc/pw, environment_file: \"/etc/{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "backup on_failure",
        kind: Kind::ShellWord,
        web: BACKED_UP,
        top: "backup: {repository: /srv/b, password_file: /etc/pw, on_failure: \"{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "backup helper_image",
        kind: Kind::Checked,
        web: BACKED_UP,
        top: "backup: {repository: /srv/b, password_file: /etc/pw, helper_image: \"busybox:{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "backup dump",
        kind: Kind::ShellWord,
        web: "    volumes: [\"data:/data\"]\n    backup: {dump: \"{{ v }}\", restore: cat}\n",
        top: "backup: {repository: /srv/b, password_file: /etc/pw}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "secret file",
        kind: Kind::Checked,
        web: "    secrets: {PW: pw}\n",
        top: "secrets: {pw: {file: \"/etc/{{ v }}\"}}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "secret name",
        kind: Kind::Checked,
        web: "    secrets: {PW: \"{{ v }}\"}\n",
        top: "secrets: {\"{{ v }}\": {file: /etc/pw}}\n",
        entry: "",
        literal: true,
    },
    Source {
        name: "fleet metadata",
        kind: Kind::Checked,
        web: "",
        top: "fleet: {metadata: {region: \"{{ v }}\"}}\n",
        entry: "",
        literal: true,
    },
    Source {
        name: "environment name",
        kind: Kind::Exact,
        web: "    environment: {\"{{ v }}\": x}\n",
        top: "",
        entry: "",
        literal: true,
    },
    Source {
        name: "environment list entry",
        kind: Kind::Escaped,
        web: "    environment: [\"GREETING={{ v }}\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "label name (map)",
        kind: Kind::Exact,
        web: "    labels: {\"{{ v }}\": x}\n",
        top: "",
        entry: "",
        literal: true,
    },
    Source {
        name: "command string",
        kind: Kind::Checked,
        web: "    command: \"echo '{{ v }}'\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "healthcheck CMD word",
        kind: Kind::ShellWord,
        web: "    healthcheck: {test: [CMD, /bin/check, \"{{ v }}\"]}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "healthcheck string",
        kind: Kind::Escaped,
        web: "    healthcheck: {test: \"{{ v }}\"}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "healthcheck interval",
        kind: Kind::Strict,
        web: "    healthcheck: {test: [CMD, true], interval: \"1s{{ v }}\"}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "port",
        kind: Kind::Strict,
        web: "    ports: [\"127.0.0.1:9{{ v }}:80\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "restart",
        kind: Kind::Strict,
        web: "    restart: \"on-failure{{ v }}\"\n",
        top: "",
        entry: "",
        literal: true,
    },
    Source {
        name: "mem_limit",
        kind: Kind::Strict,
        web: "    mem_limit: \"512m{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "cpus",
        kind: Kind::Strict,
        web: "    cpus: \"1{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "cap_add",
        kind: Kind::Strict,
        web: "    cap_add: [\"NET_ADMIN{{ v }}\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "stop_grace_period",
        kind: Kind::Strict,
        web: "    stop_grace_period: \"5s{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "stop_signal",
        kind: Kind::Strict,
        web: "    stop_signal: \"SIGINT{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "volume options",
        kind: Kind::Strict,
        web: "    volumes: [\"data:/data:ro{{ v }}\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "volume target",
        kind: Kind::Exact,
        web: "    volumes: [\"data:/data/{{ v }}\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "systemd: section name",
        kind: Kind::Checked,
        web: "    systemd: {\"X-{{ v }}\": {Note: x}}\n",
        top: "",
        entry: "",
        literal: true,
    },
    Source {
        name: "systemd: key name",
        kind: Kind::Checked,
        web: "    systemd: {Service: {\"X-{{ v }}\": x}}\n",
        top: "",
        entry: "",
        literal: true,
    },
    Source {
        name: "systemd: ExecStartPre",
        kind: Kind::Raw,
        web: "    systemd: {Service: {ExecStartPre: \"/bin/echo {{ v }}\", ProtectSystem: strict}}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "systemd: list value",
        kind: Kind::Raw,
        web: "    systemd: {Service: {Environment: [\"GREETING={{ v }}\", B=c], ProtectSystem: strict}}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "instance map value",
        kind: Kind::Escaped,
        web: "    environment: {GREETING: \"{{ deep.inner[0] }}\"}\n",
        top: "",
        entry: "{deep: {inner: [\"{{ v }}\"]}}",
        literal: true,
    },
    Source {
        name: "etcd ttl",
        kind: Kind::Strict,
        web: "",
        top: "etcd: {endpoints: \"http://127.0.0.1:2379\", ttl: \"3s{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "etcd wait",
        kind: Kind::Strict,
        web: "",
        top: "etcd: {endpoints: \"http://127.0.0.1:2379\", wait: \"3s{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "fleet metadata name",
        kind: Kind::Checked,
        web: "",
        top: "fleet: {metadata: {\"{{ v }}\": eu}}\n",
        entry: "",
        literal: true,
    },
    Source {
        name: "fleet global",
        kind: Kind::Strict,
        web: "",
        top: "fleet: {metadata: {region: eu}, global: [\"web{{ v }}\"]}\n",
        entry: "",
        literal: true,
    },
    Source {
        name: "backup schedule",
        kind: Kind::Strict,
        web: BACKED_UP,
        top: "backup: {repository: /srv/b, password_file: /etc/pw, schedule: \"daily{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "backup check",
        kind: Kind::Strict,
        web: BACKED_UP,
        top: "backup: {repository: /srv/b, password_file: /etc/pw, check: \"Sun{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "backup randomized_delay",
        kind: Kind::Strict,
        web: BACKED_UP,
        top: "backup: {repository: /srv/b, password_file: /etc/pw, randomized_delay: \"3s{{ v }}\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "backup keep name",
        kind: Kind::Strict,
        web: BACKED_UP,
        top: "backup: {repository: /srv/b, password_file: /etc/pw, keep: {\"daily{{ v }}\": 3}}\n",
        entry: "",
        literal: true,
    },
    Source {
        name: "backup restore",
        kind: Kind::ShellWord,
        web: "    volumes: [\"data:/data\"]\n    backup: {dump: cat, restore: \"{{ v }}\"}\n",
        top: "backup: {repository: /srv/b, password_file: /etc/pw}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "backup consistency",
        kind: Kind::Strict,
        web: "    volumes: [\"data:/data\"]\n    backup: {consistency: \"pause{{ v }}\"}\n",
        top: "backup: {repository: /srv/b, password_file: /etc/pw}\n",
        entry: "",
        literal: true,
    },
    Source {
        name: "backup volume name",
        kind: Kind::Strict,
        web: "    volumes: [\"data:/data\"]\n    backup: {volumes: [\"data{{ v }}\"]}\n",
        top: "backup: {repository: /srv/b, password_file: /etc/pw}\n",
        entry: "",
        literal: true,
    },
    Source {
        name: "secret environment",
        kind: Kind::Checked,
        web: "    secrets: {PW: pw}\n",
        top: "secrets: {pw: {environment: \"PW{{ v }}\"}}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "secret command",
        kind: Kind::Checked,
        web: "    secrets: {PW: pw}\n",
        top: "secrets: {pw: {command: [pass, \"{{ v }}\"]}}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "secret variable",
        kind: Kind::Checked,
        web: "    secrets: {\"PW{{ v }}\": pw}\n",
        top: "secrets: {pw: {file: /etc/pw}}\n",
        entry: "",
        literal: true,
    },
    Source {
        name: "router address",
        kind: Kind::Strict,
        web: "",
        top: "router: {address: \"127.0.0.1{{ v }}\"}\n",
        entry: ROUTED,
        literal: true,
    },
    Source {
        name: "route tls mode",
        kind: Kind::Strict,
        web: "",
        top: "",
        entry: "{routes: [{hosts: a.example.com, tls: \"acme{{ v }}\", service: web, port: 80}]}",
        literal: true,
    },
    Source {
        name: "route service",
        kind: Kind::Strict,
        web: "",
        top: "",
        entry: "{routes: [{hosts: a.example.com, service: \"web{{ v }}\", port: 80}]}",
        literal: true,
    },
    Source {
        name: "network_mode container",
        kind: Kind::Strict,
        web: "    ports: []\n    network_mode: \"container:other{{ v }}\"\n",
        top: "",
        entry: "",
        literal: true,
    },
    Source {
        name: "cap_drop",
        kind: Kind::Strict,
        web: "    cap_drop: [\"NET_RAW{{ v }}\"]\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "healthcheck timeout",
        kind: Kind::Strict,
        web: "    healthcheck: {test: [CMD, true], timeout: \"1s{{ v }}\"}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "healthcheck start_period",
        kind: Kind::Strict,
        web: "    healthcheck: {test: [CMD, true], start_period: \"1s{{ v }}\"}\n",
        top: "",
        entry: "",
        literal: false,
    },
    Source {
        name: "etcd api",
        kind: Kind::Strict,
        web: "",
        top: "etcd: {endpoints: \"http://127.0.0.1:2379\", api: \"v3{{ v }}\"}\n",
        entry: "",
        literal: true,
    },
    Source {
        name: "backup instances",
        kind: Kind::Strict,
        web: BACKED_UP,
        top: "backup: {repository: /srv/b, password_file: /etc/pw, instances: [\"live{{ v }}\"]}\n",
        entry: "",
        literal: true,
    },
    Source {
        // unitgen's own client reads it; no unit names it.
        name: "fleet endpoint",
        kind: Kind::Checked,
        web: "",
        top: "fleet: {metadata: {region: eu}, endpoint: \"http://{{ v }}:49153\"}\n",
        entry: "",
        literal: false,
    },
    Source {
        name: "router http_port",
        kind: Kind::Strict,
        web: "",
        top: "router: {http_port: \"8{{ v }}\"}\n",
        entry: ROUTED,
        literal: true,
    },
    Source {
        name: "image, whole",
        // Last before the command: one starting with `-` would be a flag.
        kind: Kind::Checked,
        web: "    image: \"{{ v }}\"\n",
        top: "",
        entry: "",
        literal: false,
    },
];

/// An instance entry with a route to `web`, for sources of the router.
const ROUTED: &str = "{routes: [{hosts: a.example.com, service: web, port: 80}]}";

/// `web`'s lines for sources of the backup: a volume it backs up.
const BACKED_UP: &str = "    volumes: [\"data:/data\"]\n    backup: {}\n";

/// A template with `api` depending on an announced `web`, so that every
/// kind of unit (network, service, sidekick, resolving consumer) renders.
fn template_text(source: &Source) -> String {
    let web_image = if source.web.contains("image:") {
        ""
    } else {
        "    image: busybox:1\n"
    };
    let etcd = if source.top.contains("etcd:") {
        ""
    } else {
        "etcd: {endpoints: \"http://127.0.0.1:2379\"}\n"
    };
    let fleet = if source.top.contains("fleet:") {
        ""
    } else {
        "fleet: {metadata: {region: eu}}\n"
    };
    let entry = if source.entry.is_empty() {
        "{}"
    } else {
        source.entry
    };
    format!(
        "app: inj\n\
         services:\n\
         \x20 web:\n{web_image}{web}\
         {ports}\
         \x20 api:\n\
         \x20   image: busybox:1\n\
         \x20   depends_on: [web]\n\
         {top}{etcd}{fleet}\
         instances:\n\
         \x20 live: {entry}\n",
        web = source.web,
        ports = if source.web.contains("ports:") {
            ""
        } else {
            "    ports: [\"8080:80\"]\n"
        },
        top = source.top,
    )
}

/// Rendered units, each with the flavour it was rendered for.
type Units = Vec<(Flavour, UnitFile)>;

/// The units of `source`'s template with `value` in it (set as `--set
/// v=…`, or written into the file), in every flavour, or the problems
/// compile found.
fn render_with(source: &Source, value: &str) -> Result<Units, String> {
    render_app(source, value, "inj")
}

/// [`render_with`], for app `app`.
fn render_app(source: &Source, value: &str, app: &str) -> Result<Units, String> {
    let mut text = template_text(source).replacen("app: inj\n", &format!("app: {app}\n"), 1);
    let mut overrides = Overrides::default();
    if source.literal {
        let quoted = yaml_string(value);
        text = text.replace("{{ v }}", &quoted[1..quoted.len() - 1]);
    } else {
        overrides.set.push(("v".into(), value.into()));
    }
    let loaded =
        template::parse(Path::new("unitgen.yaml"), text).map_err(|e| format!("parse: {e:?}"))?;
    let template = Template {
        app: loaded,
        deployments: None,
    };
    let instance = compile(&template, "live", &overrides).map_err(|problems| {
        // A refusal must point at the text it is about.
        for problem in &problems.0 {
            assert!(
                problem.at.is_some(),
                "refusal without a location: {}",
                problem.message
            );
        }
        format!("{problems:?}")
    })?;
    let mut units = Vec::new();
    for (flavour, renderer) in RENDERERS.iter() {
        for unit in renderer.render(&instance) {
            units.push((*flavour, unit));
        }
    }
    Ok(units)
}

/// The units of each source rendered with the placeholder, made once.
static BENIGN: LazyLock<Mutex<HashMap<&str, Units>>> = LazyLock::new(Mutex::default);

static RENDERERS: LazyLock<Vec<(Flavour, Renderer)>> = LazyLock::new(|| {
    [Flavour::System, Flavour::User, Flavour::Fleet]
        .into_iter()
        .map(|f| (f, Renderer::new(f)))
        .collect()
});

/// What each directive means, with the digest (which hashes the rest) left
/// out. `raw`: compare `systemd:` values as written, since they are systemd
/// syntax by contract (their specifiers are the template author's).
fn meanings(unit: &UnitFile, raw: bool) -> Vec<(String, String, Vec<Vec<u8>>)> {
    let directives: Vec<Directive> = parse(&unit.text)
        .unwrap_or_else(|e| panic!("systemd would not read {}: {e}\n{}", unit.name, unit.text));
    directives
        .into_iter()
        .filter(|d| d.key != "Digest")
        .map(|d| {
            let meaning = if raw {
                vec![d.value.as_bytes().to_vec()]
            } else {
                meaning(&d).unwrap_or_else(|e| {
                    panic!(
                        "systemd would refuse {}={} in {}: {e}",
                        d.key, d.value, unit.name
                    )
                })
            };
            (d.section, d.key, meaning)
        })
        .collect()
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// The value the hostile ones are compared with.
fn benign_value(source: &Source) -> &'static str {
    match source.kind {
        Kind::Strict => "",
        _ => PLACEHOLDER,
    }
}

/// The check itself, for one source and one value. Returns whether the
/// value was accepted.
fn check(source: &Source, value: &str) -> bool {
    let strict = source.kind == Kind::Strict;
    let benign = BENIGN
        .lock()
        // A failed check (panicked while holding it) leaves the map whole.
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(source.name)
        .or_insert_with(|| {
            render_with(source, benign_value(source))
                .unwrap_or_else(|e| panic!("{}: the placeholder is refused: {e}", source.name))
        })
        .clone();
    let hostile = match render_with(source, value) {
        Ok(units) => units,
        Err(problems) => {
            assert!(
                !matches!(source.kind, Kind::Escaped | Kind::ShellWord) || value.contains('\0'),
                "{}: {value:?} could have been escaped but was refused: {problems}",
                source.name
            );
            return false;
        }
    };
    assert_eq!(benign.len(), hostile.len(), "{}: {value:?}", source.name);
    let raw = source.kind == Kind::Raw;
    for ((flavour, benign), (_, hostile)) in benign.iter().zip(&hostile) {
        assert_eq!(benign.name, hostile.name);
        // Units are read on terminals and in pull requests: no character
        // of the value acts there (an escape sequence, a C1 control, a
        // bidirectional override that reorders what a reviewer sees).
        if let Some(c) =
            (hostile.text.chars()).find(|&c| !matches!(c, '\n' | '\t') && acts_on_terminal(c))
        {
            panic!(
                "{} ({flavour:?}, {}): {value:?} put U+{:04X} into the unit as it is:\n{}",
                source.name,
                hostile.name,
                u32::from(c),
                hostile.text
            );
        }
        // What unitgen reads back from the unit (whose it is, its image,
        // secrets and routes file) is as it wrote it.
        let owner =
            |text: &str| unitgen::render::owner(text).map(|o| (o.app, o.instance, o.service));
        assert_eq!(
            owner(&hostile.text),
            owner(&benign.text),
            "{} ({flavour:?}, {}): {value:?} changed whose unit it is:\n{}",
            source.name,
            hostile.name,
            hostile.text
        );
        if !strict && !benign.text.contains(PLACEHOLDER) {
            // A unit the value does not reach stays as it was, byte for byte.
            assert_eq!(benign.text, hostile.text, "{}: {value:?}", source.name);
            continue;
        }
        // A name (a section's, a key's) may be the value's place too.
        let put = |text: &[u8]| replace(text, PLACEHOLDER.as_bytes(), value.as_bytes());
        let put_name = |name: String| String::from_utf8(put(name.as_bytes())).unwrap();
        let expected: Vec<_> = meanings(benign, raw)
            .into_iter()
            .map(|(section, key, words)| {
                let words = words.iter().map(|w| put(w)).collect::<Vec<_>>();
                (put_name(section), put_name(key), words)
            })
            .collect();
        let got = meanings(hostile, raw);
        if matches!(source.kind, Kind::Checked | Kind::ShellWord | Kind::Strict) {
            // A checked value may be normalised (`/prefix/` → `/prefix`):
            // it must still add, drop or reorder no directive.
            let shape = |m: &[(String, String, Vec<Vec<u8>>)]| {
                m.iter()
                    .map(|(s, k, _)| (s.clone(), k.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                shape(&got),
                shape(&expected),
                "{} ({flavour:?}, {}): {value:?} changed the unit:\n{}",
                source.name,
                hostile.name,
                hostile.text
            );
            continue;
        }
        assert_eq!(
            got, expected,
            "{} ({flavour:?}, {}): {value:?} changed the unit:\n{}",
            source.name, hostile.name, hostile.text
        );
    }
    true
}

/// Characters a terminal obeys rather than shows (as `diagnostic::shown`
/// lists them).
fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
        // Drawn as nothing: zero-width spaces and joiners, fillers, tags.
        || matches!(c, '\u{ad}' | '\u{34f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
            | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2065}'
            | '\u{206a}'..='\u{206f}' | '\u{3164}' | '\u{feff}' | '\u{ffa0}'
            | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// Values from the issue and from systemd's syntax: every line end, line
/// continuation, comment and section syntax, quoting, specifiers, variables,
/// C0 and C1 controls.
const HOSTILE: &[&str] = &[
    "hi\r[Service]\rExecStartPre=/bin/touch /tmp/pwned",
    "hi\n[Service]\nExecStartPre=/bin/touch /tmp/pwned",
    "hi\0ExecStartPre=/bin/touch /tmp/pwned",
    "swallow\\",
    "two\\\\",
    "x\\\r\nProtectSystem=false",
    "\r\n",
    "#not a comment",
    "; nor this",
    "[Section]",
    "a = b",
    "100% %n %i %%",
    "$HOME ${HOME} $$",
    "quote \" and ' and \\\" and \\x41",
    " leading and trailing ",
    "\t",
    "a ; b",
    ";",
    "a\u{85}b\u{9f}c\u{80}",
    "\u{feff}bom",
    "bell\u{7} esc\u{1b} del\u{7f}",
    "line\u{2028}sep",
    // Trojan Source: what follows is shown reversed, or out of order.
    "\u{202e}desrever\u{202c} \u{2066}isolate\u{2069} \u{200f}mark \u{61c}",
    // Drawn as nothing: reads as /srv/data; a hidden tag text.
    "/srv/da\u{200b}t\u{2060}a\u{ad}\u{3164} \u{e0041}\u{e007f}",
    "ünïcödé 日本語 🚀",
    ".include /etc/shadow",
    "",
    "{{ 7 * 7 }} {% if true %}x{% endif %} {# c #}",
    "-dash",
    "@at",
    "+plus",
    "!bang",
    ":colon",
    "%h/%n",
    "para\u{2029}sep",
    "null",
    "~",
    "*alias &anchor !!binary",
    "- item",
    "key: value",
    "ctl\u{1}\u{1f}\u{8}",
    // After `X-` (a section name): unitgen's and fleet's own.
    "Unitgen",
    "Fleet",
];

#[test]
fn hostile_values_from_every_source_mean_exactly_themselves() {
    // Every source and value is tried, and every failure reported at once.
    let mut failures = Vec::new();
    for source in SOURCES {
        let mut accepted = 0;
        for value in HOSTILE {
            match std::panic::catch_unwind(|| check(source, value)) {
                Ok(ok) => accepted += usize::from(ok),
                Err(panic) => failures.push(format!(
                    "{} with {value:?}: {}",
                    source.name,
                    panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("panicked")
                )),
            }
        }
        if source.kind == Kind::Escaped && accepted != HOSTILE.len() - 1 {
            failures.push(format!("{}: only NUL may be refused", source.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The units of every source, rendered with hostile values it accepts,
/// read by systemd itself: `systemd-analyze verify` has nothing to say.
/// (Each source's template gets an app name of its own, so that all are
/// checked in one run.)
#[test]
fn hostile_units_pass_systemd_analyze_verify() {
    let values = [
        "quote \" ' \\\" \\x41 100% %n $HOME ${HOME} $$ a ; b ü\u{85}\t#x",
        "line\nbreak\r\n[Service]\\",
        "50%;\u{2028}\u{feff}é\u{1b}$",
        // Specifiers, for `systemd:` values (which keep them): those
        // accepted must be ones systemd resolves.
        "%n%i%h%C%%z%y",
        // Words, for `Environment=` as written (systemd splits it there).
        "a = b",
    ];
    // System units, then user units (`--user`, as systemd's user manager).
    for flavour in [Flavour::System, Flavour::User] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let mut written = Vec::new();
        for (i, source) in SOURCES.iter().enumerate() {
            // `systemd:` values are written as they are: every hostile value.
            let values: Vec<&str> = match source.kind {
                Kind::Raw => values.iter().chain(HOSTILE).copied().collect(),
                _ => values.to_vec(),
            };
            for (j, value) in values.iter().enumerate() {
                let Ok(units) = render_app(source, value, &format!("inj{i}v{j}")) else {
                    continue;
                };
                for (_, unit) in units.iter().filter(|(f, _)| *f == flavour) {
                    let path = dir.path().join(&unit.name);
                    std::fs::write(&path, &unit.text).unwrap();
                    written.push(path);
                }
            }
        }
        assert!(written.len() > 150, "{} units", written.len());
        let mut verify = std::process::Command::new("systemd-analyze");
        if flavour == Flavour::User {
            // The user manager needs a runtime directory to start.
            verify.arg("--user").env("XDG_RUNTIME_DIR", dir.path());
        }
        let verify = verify
            .args(["verify", "--man=no"])
            .args(&written)
            .output()
            .expect("systemd-analyze is installed");
        // verify can exit 0 and still complain: stderr is the verdict.
        assert_eq!(String::from_utf8_lossy(&verify.stderr), "", "{flavour:?}");
        assert!(verify.status.success(), "{flavour:?}");
    }
}

#[test]
fn the_issue_injections_are_refused_where_they_cannot_be_escaped() {
    let source = |name: &str| SOURCES.iter().find(|s| s.name == name).unwrap();
    let env = source("systemd: Environment");
    for value in [
        "hi\r[Service]\rExecStartPre=/bin/touch /tmp/pwned",
        "hi\n[Service]\nExecStartPre=/bin/touch /tmp/pwned",
        "swallow\\",
    ] {
        assert!(!check(env, value), "{value:?} was accepted");
    }
    let endpoint = source("etcd endpoint");
    assert!(!check(endpoint, "a\nExecStartPre=/bin/touch /tmp/pwned"));
}

/// Names become parts of unit, container and network names: anything but
/// their plain syntax is refused.
#[test]
fn hostile_app_and_instance_names_are_refused() {
    let with_v = Overrides {
        set: vec![("v".into(), "x".into())],
        ..Overrides::default()
    };
    let text = template_text(&SOURCES[0]);
    let loaded = template::parse(Path::new("unitgen.yaml"), text.clone()).unwrap();
    let template = Template {
        app: loaded,
        deployments: None,
    };
    assert!(
        compile(&template, "live", &with_v).is_ok(),
        "the control compiles"
    );
    // `null` is a name like any other: quoted, it is no YAML null.
    for value in HOSTILE.iter().filter(|v| **v != "null") {
        assert!(compile(&template, value, &with_v).is_err(), "{value:?}");
        let app = text.replace(
            "app: inj",
            &format!("app: {}", serde_json::to_string(value).unwrap()),
        );
        if let Ok(loaded) = template::parse(Path::new("unitgen.yaml"), app) {
            let template = Template {
                app: loaded,
                deployments: None,
            };
            assert!(compile(&template, "live", &with_v).is_err(), "{value:?}");
        }
    }
}

/// `--etcd` endpoints come from the command line, not the file.
#[test]
fn etcd_endpoints_on_the_command_line_are_checked_too() {
    let text = template_text(&SOURCES[0]);
    let loaded = template::parse(Path::new("unitgen.yaml"), text).unwrap();
    let template = Template {
        app: loaded,
        deployments: None,
    };
    let overrides = Overrides {
        set: vec![("v".into(), "x".into())],
        etcd: Some(vec![
            "http://a:2379\nExecStartPre=/bin/touch /tmp/pwned".into(),
        ]),
        ..Overrides::default()
    };
    let problems = compile(&template, "live", &overrides).unwrap_err();
    assert!(
        format!("{problems:?}").contains("etcd endpoint"),
        "{problems:?}"
    );
}

/// Characters that matter to systemd's, sh's or YAML's syntax, and any other.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '\n', '\r', '\0', '\\', '%', '$', '"', '\'', ' ', '\t', ';', '#', '[', ']', '=',
            '{', '}', '\u{85}', '\u{9f}', '\u{7f}', '\u{1b}', '\u{feff}', '\u{2028}', 'x',
            // sh, Markdown, Mermaid and YAML syntax; ExecStart prefixes.
            '`', '|', '&', '(', ')', '<', '>', '*', '!', '@', '+', '-', ':', '\u{2029}', '\u{a0}',
        ]),
        1 => any::<char>(),
    ]
}

fn hostile_value() -> impl Strategy<Value = String> {
    prop::collection::vec(hostile_char(), 0..16).prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    /// The escaper alone: any argument, as systemd splits it back.
    #[test]
    fn any_argument_survives_systemd_word_splitting(arg in hostile_value()) {
        prop_assume!(!arg.contains('\0'));
        let line = format!("/bin/echo {}", unitgen::escape::systemd_arg(&arg));
        let argv = systemd_syntax::exec_argv(&line).unwrap();
        prop_assert_eq!(&argv[1], arg.as_bytes());
        let unit = format!("[Service]\nExecStart={line}\n");
        prop_assert_eq!(parse(&unit).unwrap().len(), 1);
    }

    /// Compile and render: any value, from any source, means itself or is
    /// refused.
    #[test]
    fn any_value_from_any_source_means_itself_or_is_refused(
        source in 0..SOURCES.len(),
        value in hostile_value(),
    ) {
        check(&SOURCES[source], &value);
    }
}

/// The examples, the seeds of the template fuzzing: each a list of
/// (file name, text), the first the one passed with `-f`.
fn seeds() -> Vec<Vec<(&'static str, String)>> {
    let read = |p: &str| std::fs::read_to_string(Path::new("examples").join(p)).unwrap();
    vec![
        vec![("unitgen.yaml", read("blog/unitgen.yaml"))],
        vec![("unitgen.yaml", read("hello/unitgen.yaml"))],
        vec![("unitgen.yaml", read("voting/unitgen.yaml"))],
        vec![
            ("deployments.yaml", read("wiki/deployments.yaml")),
            ("app.yaml", read("wiki/app.yaml")),
        ],
    ]
}

/// An edit of a template: at a position (a fraction of its length), delete
/// some bytes and insert some text.
fn mutation() -> impl Strategy<Value = (f64, usize, String)> {
    (0.0..1.0f64, 0..4usize, hostile_value())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Parser and compiler over mutated examples: no panic, and every unit
    /// rendered reads back, line by line, as unitgen's own parser (which
    /// knows only `\n` line ends) reads it: no hidden line end anywhere.
    #[test]
    fn mutated_examples_never_panic_and_render_units_systemd_reads_as_intended(
        seed in 0..4usize,
        file in 0..2usize,
        edits in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut files = seeds().swap_remove(seed);
        let file = file % files.len();
        let text = &mut files[file].1;
        for (at, delete, insert) in edits {
            let mut pos = ((text.len() as f64) * at) as usize;
            while !text.is_char_boundary(pos) {
                pos -= 1;
            }
            let mut end = (pos + delete).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(pos..end, &insert);
        }
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        for (name, text) in &files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let Ok(template) = Template::load(&dir.path().join(files[0].0)) else {
            return Ok(());
        };
        for instance in template.instance_names() {
            let Ok(model) = compile(&template, &instance, &Overrides::default()) else {
                continue;
            };
            for flavour in [Flavour::System, Flavour::Fleet] {
                for unit in RENDERERS.iter().find(|(f, _)| *f == flavour).unwrap().1.render(&model) {
                    let systemd: Vec<(String, String, String)> = parse(&unit.text)
                        .unwrap_or_else(|e| panic!("{e}\n{}", unit.text))
                        .into_iter()
                        .map(|d| (d.section, d.key, d.value))
                        .collect();
                    let ours: Vec<(String, String, String)> = unitgen::unit_file::parse(&unit.text)
                        .unwrap()
                        .into_iter()
                        .map(|o| (o.section, o.name, o.value))
                        .collect();
                    prop_assert_eq!(systemd, ours, "{}", unit.text);
                    for d in parse(&unit.text).unwrap() {
                        prop_assert!(meaning(&d).is_ok(), "{}={}", d.key, d.value);
                    }
                }
            }
        }
    }
}

/// The template `unitgen import` makes of `compose`, compiled for its
/// instance `default`, with its text; or why not.
fn import_compose(compose: &str) -> Result<(unitgen::model::Instance, String), String> {
    import_compose_with(compose, "")
}

/// [`import_compose`], with `dotenv` as the `.env` beside the compose file.
fn import_compose_with(
    compose: &str,
    dotenv: &str,
) -> Result<(unitgen::model::Instance, String), String> {
    let file = std::sync::Arc::new(miette::NamedSource::new(
        "docker-compose.yml",
        compose.to_string(),
    ));
    let options = unitgen::import::Options {
        app: Some("imp".into()),
        instance: "default".into(),
        dir: "/srv/imp".into(),
        home: None,
        dotenv: unitgen::import::parse_dotenv(dotenv),
        beside_notes: unitgen::import::dotenv_warnings(dotenv, ".env"),
        profiles: Vec::new(),
        read: |path| std::fs::read_to_string(path),
    };
    let imported =
        unitgen::import::import(&file, &options).map_err(|p| format!("import: {p:?}"))?;
    let loaded = template::parse(Path::new("unitgen.yaml"), imported.yaml.clone())
        .map_err(|e| format!("parse: {e:?}\n{}", imported.yaml))?;
    let template = Template {
        app: loaded,
        deployments: None,
    };
    let instance = compile(&template, "default", &Overrides::default())
        .map_err(|p| format!("compile: {p:?}\n{}", imported.yaml))?;
    Ok((instance, imported.yaml))
}

/// A value as a compose file's double-quoted YAML string (characters YAML
/// does not allow in a file as escapes).
fn yaml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Values that compose reads as themselves (no `$`: compose interpolates
/// it) and that can stand in a compose file (no NUL).
fn compose_value() -> impl Strategy<Value = String> {
    hostile_value().prop_map(|v| v.replace(['$', '\0'], ""))
}

/// Template syntax in compose values, which the import must keep literal.
fn template_like() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        "{% raw %}",
        "{% endraw %}",
        "{%- endraw -%}",
        "{{ instance }}",
        "{{.Name}}",
        "\\u{7}",
        "\"",
        "'",
        "\\",
        "{",
        "}",
        " ",
    ]);
    prop::collection::vec(
        prop_oneof![piece.prop_map(String::from), compose_value()],
        0..6,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// compose import: an environment value, a label, a command word and a
    /// variable's default reach the compiled service exactly as compose
    /// would hand them to the container; names quoted in the template's
    /// comments (a container's, a network's, a build's) stay in them.
    #[test]
    fn compose_values_mean_themselves_after_import(
        text in prop_oneof![compose_value(), template_like()],
        default in prop_oneof![compose_value(), template_like()],
    ) {
        // In a default, `}` ends the variable.
        let default = default.replace('}', "");
        let compose = format!(
            "services:\n  web:\n    image: busybox:1\n    command: [echo, {v}]\n    \
             environment:\n      V: {v}\n      D: {d}\n      E: {e}\n    labels:\n      note: {v}\n    \
             container_name: {v}\n    build: {v}\n    networks: [{v}]\n    \
             working_dir: {v}\n    hostname: {v}\n    entrypoint: [sh, {v}]\n    \
             healthcheck: {{test: {v}}}\nnetworks:\n  {v}: {{}}\n",
            v = yaml_string(&text),
            d = yaml_string(&format!("${{X:-{default}}}")),
            // A default holding a variable is an expression at its use.
            e = yaml_string(&format!("${{Y:-{default}${{Z}}}}")),
        );
        let (instance, _) = import_compose(&compose).map_err(TestCaseError::fail)?;
        let web = &instance.services[0];
        prop_assert_eq!(
            &web.environment,
            &vec![
                ("V".to_string(), text.clone()),
                ("D".to_string(), default.clone()),
                ("E".to_string(), default.clone()),
            ]
        );
        prop_assert_eq!(&web.labels[..1], &[("note".to_string(), text.clone())]);
        prop_assert_eq!(web.command.as_deref(), Some(&["echo".to_string(), text.clone()][..]));
        prop_assert_eq!(instance.services.len(), 1);
        // The container's name is kept as a network alias.
        let alias = (text != "web").then(|| format!("--network-alias={text}"));
        prop_assert_eq!(&web.docker_args, &Vec::from_iter(alias));
        // Docker needs an absolute one: a relative one is warned and left out.
        let dir = text.starts_with('/').then_some(text.as_str());
        prop_assert_eq!(web.working_dir.as_deref(), dir);
        // Linux takes at most 64 bytes: a longer one is warned and left out.
        let host = (text.len() <= 64).then_some(text.as_str());
        prop_assert_eq!(web.hostname.as_deref(), host);
        prop_assert_eq!(web.entrypoint.as_deref(), Some(&["sh".to_string(), text.clone()][..]));
        let health = match &web.healthcheck {
            Some(unitgen::model::Healthcheck::Check { test, .. }) => Some(test.clone()),
            _ => None,
        };
        prop_assert_eq!(health, Some(unitgen::model::HealthTest::Shell(text.clone())));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// compose import: keys that become `docker_args` (`dns`, `extra_hosts`,
    /// `sysctls`, `logging` options, `devices`, `ulimits`, `security_opt`)
    /// and `user` carry the value exactly, each as one flag.
    #[test]
    fn compose_flags_mean_themselves_after_import(
        text in prop_oneof![compose_value(), template_like()],
    ) {
        let compose = format!(
            "services:\n  web:\n    image: busybox:1\n    user: {v}\n    dns: {v}\n    \
             dns_search: [{v}]\n    extra_hosts: [{v}]\n    sysctls: {{net.core.somaxconn: {v}}}\n    \
             logging: {{driver: json-file, options: {{tag: {v}}}}}\n    devices: [{v}]\n    \
             ulimits: {{nofile: {v}}}\n    security_opt: [{v}]\n",
            v = yaml_string(&text),
        );
        let (instance, _) = import_compose(&compose).map_err(TestCaseError::fail)?;
        let web = &instance.services[0];
        prop_assert_eq!(web.user.as_deref(), Some(text.as_str()));
        let mut args = web.docker_args.clone();
        args.sort();
        let mut expected: Vec<String> = [
            "--dns=", "--dns-search=", "--sysctl=net.core.somaxconn=",
            "--log-opt=tag=", "--device=", "--ulimit=nofile=", "--security-opt=",
        ]
        .iter()
        .map(|flag| format!("{flag}{text}"))
        .chain(["--log-driver=json-file".to_string()])
        .chain([format!("--add-host={}", as_docker_takes_a_host(&text))])
        .collect();
        expected.sort();
        prop_assert_eq!(args, expected);
    }
}

/// An `extra_hosts` entry as compose hands it to Docker: `HOST=IP` (or
/// `HOST:IP`) is `HOST:IP`, an address in brackets without them.
fn as_docker_takes_a_host(entry: &str) -> String {
    match entry.split_once('=').or_else(|| entry.split_once(':')) {
        Some((host, address)) => {
            let address = address
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(address);
            format!("{host}:{address}")
        }
        None => entry.to_string(),
    }
}

/// Found by the property above: `{% endraw %}` in a value ended the import's
/// raw block; a default's control character was written in Rust's escape
/// syntax, which the template language cannot read; a container name went
/// into the template unprotected; a BOM in a value was written as it is,
/// which no YAML reader takes inside a document; a network's name, quoted
/// in a comment, ended the comment with its line break (its next line
/// became a key of the template).
#[test]
fn template_syntax_and_controls_in_compose_values_stay_literal() {
    let compose = "services:\n  web:\n    image: busybox:1\n    \
                   container_name: \"{{ instance }}\"\n    environment:\n      \
                   A: \"{% endraw %}{{ instance }}{% raw %}\"\n      \
                   B: \"${X:-a\\u0007\\u2028${Z}}\"\n      \
                   C: \"\\uFEFFbom\"\n    \
                   networks: [\"front\\ndefaults: {evil: 1}\"]\n\
                   networks: {\"front\\ndefaults: {evil: 1}\": {}}\n";
    let (instance, yaml) = import_compose(compose).unwrap();
    let web = &instance.services[0];
    let literal = "{% endraw %}{{ instance }}{% raw %}";
    assert_eq!(
        web.environment,
        [
            ("A".to_string(), literal.to_string()),
            ("B".to_string(), "a\u{7}\u{2028}".to_string()),
            ("C".to_string(), "\u{feff}bom".to_string()),
        ]
    );
    assert_eq!(web.docker_args, ["--network-alias={{ instance }}"]);
    let header = yaml.split("\napp:").next().unwrap();
    assert!(header.lines().all(|l| l.starts_with('#')), "{yaml}");
}

/// A `.env` value that compose puts into the file (`${X}`) is a value like
/// any other: template syntax, specifiers, variables, quotes and controls
/// in it reach the container exactly, through units systemd reads as meant.
#[test]
fn hostile_dotenv_values_reach_the_container_exactly() {
    let compose = "services:\n  web:\n    image: busybox:1\n    \
                   environment: {A: \"${X}\"}\n    labels: {l: \"${X}\"}\n    \
                   command: [echo, \"${X}\"]\n";
    for value in HOSTILE {
        if value.contains(['\0', '\n', '\r']) {
            continue;
        }
        // Single quotes in `.env` keep the value as written, but for a
        // backslash before a quote.
        if value.contains(['\'', '\\']) {
            continue;
        }
        let dotenv = format!("X='{value}'\n");
        let (instance, yaml) =
            import_compose_with(compose, &dotenv).unwrap_or_else(|e| panic!("{value:?}: {e}"));
        let web = &instance.services[0];
        assert_eq!(
            web.environment,
            [("A".to_string(), value.to_string())],
            "{yaml}"
        );
        for (_, renderer) in RENDERERS.iter() {
            for unit in renderer.render(&instance) {
                let argv: Vec<Vec<u8>> = parse(&unit.text)
                    .unwrap()
                    .into_iter()
                    .filter(|d| d.key == "ExecStart" && unit.name.ends_with("-web.service"))
                    .flat_map(|d| meaning(&d).unwrap())
                    .collect();
                if argv.is_empty() {
                    continue;
                }
                let want = format!("A={value}");
                assert!(
                    argv.iter().any(|w| *w == want.as_bytes()),
                    "{value:?}:\n{}",
                    unit.text
                );
                assert!(
                    argv.last().is_some_and(|w| *w == value.as_bytes()),
                    "{value:?}:\n{}",
                    unit.text
                );
            }
        }
    }
}

/// A template whose instance `live` has `routes` routes of the largest
/// shape (TLS files, an alias, a path, basic auth, a health check), each
/// with `aliases` more aliases of 253 characters; with etcd, the routes
/// are written there.
fn many_routes(dir: &Path, app: &str, routes: usize, aliases: usize, etcd: bool) -> Template {
    let long = |i: usize, j: usize| {
        let label = "a".repeat(61);
        format!(
            "{label}.{label}.{label}.{:0>59}",
            format!("x{i}-{j}.example")
        )
    };
    let mut text = format!(
        "app: {app}\nservices:\n  web:\n    image: busybox:1\n    health_path: /healthz\n    \
         ports: [\"127.0.0.1:8080:80\"]\ninstances:\n  live:\n    routes:\n",
    );
    for i in 0..routes {
        let mut names = vec![format!("www-{i}.example.com")];
        names.extend((0..aliases).map(|j| long(i, j)));
        text.push_str(&format!(
            "      - hosts: [host-{i}.example.com]\n        aliases: [{}]\n        \
             path: /path-{i}\n        service: web\n        port: 80\n        \
             basic_auth: ./users\n        tls: {{certificate: ./a.crt, key: ./a.key}}\n",
            names.join(", ")
        ));
    }
    if etcd {
        text.push_str("etcd: {endpoints: \"http://127.0.0.1:2379\"}\n");
    }
    let file = dir.join("unitgen.yaml");
    std::fs::write(&file, text).unwrap();
    Template::load(&file).unwrap()
}

/// The most of something (routes, aliases) an instance is allowed, by
/// bisection: `accepted(n)` must hold up to some n and fail after it.
fn largest_accepted(
    mut accepted: impl FnMut(usize) -> bool,
    mut low: usize,
    mut high: usize,
) -> usize {
    assert!(
        accepted(low) && !accepted(high),
        "{low}..{high} brackets no limit"
    );
    while high - low > 1 {
        let mid = (low + high) / 2;
        if accepted(mid) { low = mid } else { high = mid }
    }
    low
}

/// systemd refuses to load a unit with a (joined) line over 1 MiB, and the
/// routes unit writes all of an instance's routes in one command line:
/// found with 200 routes through etcd, or 1,200 long aliases, whose routes
/// unit failed to load at apply. The largest instance compile accepts, in
/// routes and in aliases, with routes in a file or in etcd, renders a routes
/// unit systemd loads; one more is refused where the routes are written.
#[test]
fn the_most_routes_an_instance_may_have_fit_in_a_unit_systemd_loads() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for file in ["users", "a.crt", "a.key"] {
        std::fs::write(dir.path().join(file), "x\n").unwrap();
    }
    // A route's own name (app, instance, service) is in every etcd key it
    // writes: the longest app name unitgen takes too.
    let longest_app = "m".repeat(48);
    for (app, etcd) in [("many", false), ("many", true), (&longest_app[..], true)] {
        let compiled = |routes, aliases, etcd| {
            let template = many_routes(dir.path(), app, routes, aliases, etcd);
            compile(&template, "live", &Overrides::default())
        };
        let most_routes = largest_accepted(|n| compiled(n, 0, etcd).is_ok(), 1, 300);
        let most_aliases = largest_accepted(|n| compiled(1, n, etcd).is_ok(), 1, 800);
        for (routes, aliases) in [(most_routes, 0), (1, most_aliases)] {
            let instance = compiled(routes, aliases, etcd).unwrap();
            let renderer = &RENDERERS[0].1;
            let unit = (renderer.render(&instance).into_iter())
                .find(|u| u.name.ends_with("-routes.service"))
                .unwrap();
            if let Err(e) = parse(&unit.text) {
                panic!("app {app}: {routes} routes, {aliases} aliases, etcd {etcd}: {e}");
            }
        }
        let problems = compiled(most_routes + 1, 0, etcd).unwrap_err();
        let problem = &problems.0[0];
        assert!(
            problem.message.contains("too many for one routes unit"),
            "{problem:?}"
        );
        assert!(problem.at.is_some());
    }
}

/// Places in a site file whose values reach a DNS zone (`unitgen dns`), a
/// Traefik rule (the routes unit's etcd keys) or the docs (`unitgen
/// docs`), with `{{ v }}` where the hostile value goes.
const SITE_PLACES: &[(&str, &str)] = &[
    (
        "host address",
        "hosts:\n  web1: {address: \"203.0.113.10{{ v }}\"}\n",
    ),
    (
        "host cname",
        "hosts:\n  web1: {address: 203.0.113.10, cname: \"lb.example.net{{ v }}\"}\n",
    ),
    (
        "host name",
        "hosts:\n  \"web1{{ v }}\": {address: 203.0.113.10}\n",
    ),
    ("route host", "hosts:\n  web1: {address: 203.0.113.10}\n"),
    ("route alias", "hosts:\n  web1: {address: 203.0.113.10}\n"),
    ("route path", "hosts:\n  web1: {address: 203.0.113.10}\n"),
    ("domain", "hosts:\n  web1: {address: 203.0.113.10}\n"),
];

/// Zone, rule and Markdown syntax: a record's end and a new one, a comment,
/// a directive, a rule's quote and operators, a table's cell and a
/// diagram's label.
const SITE_HOSTILE: &[&str] = &[
    "\nevil 300 IN A 198.51.100.1",
    " ; comment",
    "\n$ORIGIN evil.example.",
    "`) || Host(`evil.example",
    "`) || PathPrefix(`/",
    ")",
    " | x | y |",
    "\"] --> X[\"",
    "\\",
    "%n",
    "\u{202e}",
    "\r",
];

#[test]
fn hostile_site_values_never_reach_a_zone_a_router_rule_or_the_docs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shop.yaml"),
        "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: [\"127.0.0.1:8001:80\"]\n",
    )
    .unwrap();
    let mut failures = Vec::new();
    for (place, hosts) in SITE_PLACES {
        // The first value is the control: harmless, accepted, and
        // reaching the zone, the rule and the docs.
        for (i, value) in [""].iter().chain(SITE_HOSTILE).chain(HOSTILE).enumerate() {
            if value.contains('\0') {
                continue;
            }
            let v = yaml_string(value);
            let v = &v[1..v.len() - 1];
            let put = |text: &str, at: &str| match *place == at {
                true => text.replace("{{ v }}", v),
                false => text.replace("{{ v }}", ""),
            };
            let site = format!(
                "{}apps:\n  shop:\n    template: shop.yaml\n    instances:\n      live:\n        host: web1\n        domains: [{}]\n        routes:\n          - {{hosts: \"{}\", aliases: [\"{}\"], path: \"{}\", service: web, port: 80, tls: off}}\n",
                hosts.replace("{{ v }}", if place.starts_with("host") { v } else { "" }),
                put("\"shop.example.com{{ v }}\"", "domain"),
                put("shop.example.com{{ v }}", "route host"),
                put("www.example.com{{ v }}", "route alias"),
                put("/shop{{ v }}", "route path"),
            );
            let site = if *place == "host name" {
                site.replace("host: web1", &format!("host: \"web1{v}\""))
            } else {
                site
            };
            let file = dir.path().join("site.yaml");
            std::fs::write(&file, &site).unwrap();
            let run = |args: &[&str]| {
                std::process::Command::new(env!("CARGO_BIN_EXE_unitgen"))
                    .env("NO_COLOR", "1")
                    .current_dir(dir.path())
                    .args(args)
                    .output()
                    .unwrap()
            };
            let validated = run(&["validate", "-f", "site.yaml"]);
            let said = String::from_utf8_lossy(&validated.stderr).to_string();
            if i == 0 {
                assert!(validated.status.success(), "{place}: the control: {said}");
            }
            if !validated.status.success() {
                // Refused where written.
                if !said.contains("site.yaml:") {
                    failures.push(format!("{place} {value:?}: refused with no place:\n{said}"));
                }
                continue;
            }
            let zone =
                String::from_utf8_lossy(&run(&["dns", "-f", "site.yaml"]).stdout).to_string();
            if i == 0 {
                assert!(
                    zone.contains("shop 300 IN "),
                    "{place}: the control: {zone}"
                );
            }
            let records = (zone.lines()).filter(|l| !l.is_empty() && !l.starts_with([';', '$']));
            for line in records {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if !matches!(fields.as_slice(), [_, _, "IN", "A" | "AAAA" | "CNAME", _]) {
                    failures.push(format!("{place} {value:?}: zone line {line:?}"));
                }
            }
            let units =
                String::from_utf8_lossy(&run(&["render", "shop/live", "-f", "site.yaml"]).stdout)
                    .to_string();
            if i == 0 {
                assert!(
                    units.contains("Host(`shop.example.com"),
                    "{place}: the control: {units}"
                );
            }
            for rule in units.lines().filter(|l| l.contains("rule")) {
                let quotes = rule.matches('`').count();
                if quotes % 2 != 0 || rule.contains("||") || rule.contains("evil") {
                    failures.push(format!("{place} {value:?}: rule {rule:?}"));
                }
            }
            let docs = dir.path().join("docs");
            let _ = std::fs::remove_dir_all(&docs);
            run(&["docs", "-f", "site.yaml", "--out", "docs"]);
            let pages: Vec<String> = (std::fs::read_dir(&docs).into_iter().flatten())
                .map(|page| std::fs::read_to_string(page.unwrap().path()).unwrap())
                .collect();
            if i == 0 {
                assert!(
                    pages.iter().any(|p| p.contains("shop.example.com")),
                    "{place}: the control"
                );
            }
            for text in pages {
                if text.contains("evil") || text.contains("--> X[") || text.contains('\u{202e}') {
                    failures.push(format!("{place} {value:?}: docs carry it:\n{text}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The longest names unitgen takes (app and instance 48 characters, a
/// service 63) make units whose names fit systemd's 255 bytes and hold only
/// the characters of a unit name (none `systemd-escape --unit` would have
/// to escape but the `-` unitgen joins them with), and containers Docker
/// names; one character more is refused.
#[test]
fn the_longest_names_fit_systemd_and_docker_and_one_more_is_refused() {
    let (app, instance, service) = ("a".repeat(48), "i".repeat(48), "s".repeat(63));
    let text = |app: &str, service: &str| {
        format!(
            "app: {app}\nservices:\n  {service}:\n    image: busybox:1\n    ports: [\"127.0.0.1:8080:80\"]\n    volumes: [\"data:/data\"]\n    backup: {{}}\n    healthcheck: {{test: [CMD, \"true\"]}}\n\
             backup: {{repository: /srv/b, password_file: /etc/pw}}\n\
             etcd: {{endpoints: \"http://127.0.0.1:2379\"}}\n\
             instances:\n  {instance}:\n    routes: [{{hosts: a.example.com, service: {service}, port: 80}}]\n"
        )
    };
    let loaded = template::parse(Path::new("unitgen.yaml"), text(&app, &service)).unwrap();
    let template = Template {
        app: loaded,
        deployments: None,
    };
    let model = compile(&template, &instance, &Overrides::default()).unwrap();
    let mut names = Vec::new();
    for (_, renderer) in RENDERERS.iter() {
        names.extend(renderer.render(&model).into_iter().map(|u| u.name));
    }
    assert!(names.len() > 6, "{names:?}");
    for name in &names {
        assert!(name.len() <= 255, "{name}: {} bytes", name.len());
        let (stem, _) = name.rsplit_once('.').unwrap();
        let stem = stem.trim_end_matches('@');
        for part in stem.split('-') {
            let escaped = std::process::Command::new("systemd-escape")
                .arg(part)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&escaped.stdout).trim(),
                part,
                "{name}"
            );
        }
    }
    let container = model.container(&service);
    let docker_name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    assert!(container.chars().all(docker_name), "{container}");

    for (app, service) in [
        (format!("{app}a"), service.clone()),
        (app.clone(), format!("{service}s")),
    ] {
        let loaded = template::parse(Path::new("unitgen.yaml"), text(&app, &service)).unwrap();
        let template = Template {
            app: loaded,
            deployments: None,
        };
        let problems = compile(&template, &instance, &Overrides::default()).unwrap_err();
        let shown = format!("{problems:?}");
        assert!(problems.0.iter().any(|p| p.at.is_some()), "{shown}");
    }
    let long_instance = format!("{instance}i");
    assert!(compile(&template, &long_instance, &Overrides::default()).is_err());
}
