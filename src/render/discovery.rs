//! The shell scripts of service discovery through etcd: the sidekick that
//! announces a service, and the resolver a consumer runs before it starts.
//! They use only what a host already has (sh, docker, etcdctl), so unitgen
//! itself need not be installed where the units run.

use super::docker::DOCKER;
use super::route::etcd as route_etcd;
use crate::escape::sh_quote;
use crate::model::route::Route;
use crate::model::{Discovery, EtcdApi, Instance, Port, Service};

/// `DB_HOST`, `DB_PORT`, `DB_ADDR` for service `db`.
pub fn env_prefix(service: &str) -> String {
    service.to_ascii_uppercase().replace('-', "_")
}

/// How often a sidekick refreshes its key: three times per TTL, so one
/// missed refresh does not let it expire.
pub fn refresh_interval(discovery: &Discovery) -> u64 {
    (discovery.ttl_seconds / 3).max(1)
}

/// The port a service is announced by: its first published one.
pub fn announced_port(service: &Service) -> Option<&Port> {
    // A oneshot has exited by the time anything could reach it.
    service.ports.first().filter(|_| !service.oneshot)
}

/// The routes to `service` whose backends its sidekick writes to etcd
/// (see `render::route::etcd`): with routes in etcd, all of them.
pub fn routes_announced<'a>(instance: &'a Instance, service: &Service) -> Vec<&'a Route> {
    match instance.routes_in_etcd() {
        Some(discovery) if discovery.api == EtcdApi::V3 => (instance.routes.iter())
            .filter(|r| r.service == service.name)
            .collect(),
        _ => Vec::new(),
    }
}

/// The sidekick's main loop: while the container runs (and is healthy, if it
/// has a healthcheck), write `host:port` as Docker published it under
/// `<key>/<hostname>`, with a lease (v3) or TTL (v2); otherwise withdraw it.
/// With routes in etcd, the service's backends go under the same lease.
/// One statement per element (see `escape::systemd_shell`).
pub fn announce_script(
    instance: &Instance,
    discovery: &Discovery,
    service: &Service,
    healthcheck: bool,
) -> Vec<String> {
    let container = instance.container(&service.name);
    let port = announced_port(service).expect("only services with ports are announced");
    let key = sh_quote(&instance.discovery_key(discovery, &service.name));
    let ttl = discovery.ttl_seconds;
    let ready = if healthcheck {
        "running/healthy"
    } else {
        "running/*"
    };
    let wildcard_host = match &discovery.address {
        Some(address) => format!("host={}", sh_quote(address)),
        None => "host=$(hostname -I | cut -d' ' -f1)".to_string(),
    };
    let routes = routes_announced(instance, service);
    let mut script = vec![
        format!("key={key}/$(hostname); lease=;"),
        "while :; do".to_string(),
        format!(
            "  case $({DOCKER} inspect --format '{}' {container} 2>/dev/null) in",
            super::docker::STATE_AND_HEALTH
        ),
        format!("    {ready})"),
        format!(
            "      published=$({DOCKER} port {container} {}/{} | head -n 1);",
            port.container_port,
            port.protocol.as_str()
        ),
        "      if [ -n \"$published\" ]; then".to_string(),
        "        host=${published%:*};".to_string(),
        format!("        case \"$host\" in 0.0.0.0|::|\"[::]\") {wildcard_host};; esac;"),
        "        addr=\"$host:${published##*:}\";".to_string(),
    ];
    match discovery.api {
        EtcdApi::V3 => script.extend([
            "        if [ -z \"$lease\" ] || ! etcdctl lease keep-alive --once \"$lease\" >/dev/null 2>&1; then".to_string(),
            format!("          lease=$(etcdctl lease grant {ttl} | sed -n 's/^lease \\([0-9a-f]*\\) granted.*/\\1/p');"),
            "        fi;".to_string(),
            "        etcdctl put --lease=\"$lease\" \"$key\" \"$addr\" >/dev/null;".to_string(),
        ]),
        EtcdApi::V2 => script.push(format!("        etcdctl set \"$key\" \"$addr\" --ttl {ttl} >/dev/null;")),
    }
    script.extend(route_etcd::announce_lines(
        &routes,
        &container,
        &wildcard_host,
    ));
    script.push("      fi;;".to_string());
    script.push("    *)".to_string());
    script.extend(
        route_etcd::withdraw_lines(&routes)
            .into_iter()
            .map(|line| format!("      {} 2>&1", line.trim_end_matches(';')) + ";"),
    );
    script.extend([
        format!(
            "      {} >/dev/null 2>&1;;",
            withdraw_command(discovery.api)
        ),
        "  esac;".to_string(),
        format!("  sleep {};", refresh_interval(discovery)),
        "done".to_string(),
    ]);
    script
}

fn withdraw_command(api: EtcdApi) -> &'static str {
    match api {
        EtcdApi::V3 => "etcdctl del \"$key\"",
        EtcdApi::V2 => "etcdctl rm \"$key\"",
    }
}

/// Removes the announcement when the sidekick stops. Errors still reach
/// the journal; etcdctl's "1 key deleted" does not.
pub fn withdraw_script(
    instance: &Instance,
    discovery: &Discovery,
    service: &Service,
) -> Vec<String> {
    let mut script = vec![format!(
        "key={}/$(hostname);",
        sh_quote(&instance.discovery_key(discovery, &service.name))
    )];
    script.extend(route_etcd::withdraw_lines(&routes_announced(
        instance, service,
    )));
    script.push(format!("{} >/dev/null", withdraw_command(discovery.api)));
    script
}

/// Writes `<DEP>_HOST`, `<DEP>_PORT` and `<DEP>_ADDR` of every announced
/// dependency into `env_file`, waiting up to `wait_seconds` in all for them
/// to appear in etcd, and fails (so the unit does not start) if one does
/// not. The wait is measured on the clock, not in tries: one etcdctl call
/// to an etcd that does not answer takes seconds.
///
/// The consumer runs in a container, where the host's addresses are not
/// its own: a port published on the host's 127.0.0.1 cannot be reached from
/// it. So a dependency announced by this very host is reached the way any
/// container of the instance reaches it, by its service name and container
/// port on the instance network (`db:5432`); etcd then only says that it is
/// up. A dependency on another host is reached at the address it announced,
/// skipping loopback ones, which only mean something on their own host.
/// One statement per element (see `escape::systemd_shell`).
pub fn resolve_script(
    instance: &Instance,
    discovery: &Discovery,
    dependencies: &[&Service],
    env_file: &str,
) -> Vec<String> {
    let env_dir = env_file.rsplit_once('/').map_or(".", |(dir, _)| dir);
    // A consumer's unit does not set etcdctl's environment as a
    // sidekick's does: the script brings its own.
    let mut script = vec![
        format!(
            "export ETCDCTL_API={} ETCDCTL_ENDPOINTS={};",
            api_number(discovery.api),
            sh_quote(&discovery.endpoints.join(","))
        ),
        format!(
            "here=$(hostname); deadline=$(($(date +%s)+{}));",
            discovery.wait_seconds
        ),
        format!(
            "mkdir -p {}; f={}; : > \"$f\";",
            sh_quote(env_dir),
            sh_quote(&format!("{env_file}.tmp"))
        ),
    ];
    let (read_here, read_all) = match discovery.api {
        EtcdApi::V3 => (
            "etcdctl get --print-value-only \"$key/$here\"",
            "etcdctl get --prefix --print-value-only \"$key/\"",
        ),
        EtcdApi::V2 => (
            "etcdctl get \"$key/$here\" 2>/dev/null",
            "etcdctl ls \"$key\" 2>/dev/null | xargs -r -n 1 etcdctl get 2>/dev/null",
        ),
    };
    for dep in dependencies {
        let key = instance.discovery_key(discovery, &dep.name);
        let port = announced_port(dep).expect("only announced services are resolved");
        let local = format!("{}:{}", dep.name, port.container_port);
        let missing = format!(
            "{}: no address announced under {key}/ after {}s",
            dep.name, discovery.wait_seconds
        );
        let var = env_prefix(&dep.name);
        script.extend([
            format!("key={};", sh_quote(&key)),
            format!(
                "until addr=$({read_here}) && [ -n \"$addr\" ] && addr={} ||",
                sh_quote(&local)
            ),
            format!(
                "  {{ addr=$({read_all} | grep -v -e '^127\\.' -e '^\\[::1\\]:' -e '^localhost:' | head -n 1) && [ -n \"$addr\" ]; }}; do"
            ),
            format!(
                "  if [ \"$(date +%s)\" -ge \"$deadline\" ]; then echo {} >&2; rm -f \"$f\"; exit 1; fi;",
                sh_quote(&missing)
            ),
            "  sleep 1;".to_string(),
            "done;".to_string(),
            format!(
                "printf '%s\\n' \"{var}_HOST=${{addr%:*}}\" \"{var}_PORT=${{addr##*:}}\" \"{var}_ADDR=$addr\" >> \"$f\";"
            ),
        ]);
    }
    script.push(format!("mv \"$f\" {}", sh_quote(env_file)));
    script
}

/// `ETCDCTL_API`'s value for an API.
pub fn api_number(api: EtcdApi) -> &'static str {
    match api {
        EtcdApi::V2 => "2",
        EtcdApi::V3 => "3",
    }
}
