//! The shell scripts of service discovery through etcd: the sidekick that
//! announces a service, and the resolver a consumer runs before it starts.
//! They use only what a host already has (sh, docker, etcdctl), so unitgen
//! itself need not be installed where the units run.

use crate::escape::sh_quote;
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
    service.ports.first()
}

/// The sidekick's main loop: while the container runs (and is healthy, if it
/// has a healthcheck), write `host:port` as Docker published it under
/// `<key>/<hostname>`, with a lease (v3) or TTL (v2); otherwise withdraw it.
pub fn announce_script(
    instance: &Instance,
    discovery: &Discovery,
    service: &Service,
    healthcheck: bool,
) -> String {
    let container = instance.container(&service.name);
    let port = announced_port(service).expect("only services with ports are announced");
    let key = sh_quote(&instance.discovery_key(discovery, &service.name));
    let ttl = discovery.ttl_seconds;
    let interval = refresh_interval(discovery);
    let ready = if healthcheck {
        "running/healthy"
    } else {
        "running/*"
    };
    let host = match &discovery.address {
        Some(address) => format!("host={}", sh_quote(address)),
        None => "host=$(hostname -I | cut -d' ' -f1)".to_string(),
    };
    let publish = match discovery.api {
        EtcdApi::V3 => format!(
            "if [ -z \"$lease\" ] || ! etcdctl lease keep-alive --once \"$lease\" >/dev/null 2>&1; then \
lease=$(etcdctl lease grant {ttl} | sed -n 's/^lease \\([0-9a-f]*\\) granted.*/\\1/p'); fi; \
etcdctl put --lease=\"$lease\" \"$key\" \"$addr\" >/dev/null"
        ),
        EtcdApi::V2 => format!("etcdctl set \"$key\" \"$addr\" --ttl {ttl} >/dev/null"),
    };
    let withdraw = withdraw_command(discovery.api);
    format!(
        "key={key}/$(hostname); lease=; \
while :; do \
case $(docker inspect --format '{{{{.State.Status}}}}/{{{{if .State.Health}}}}{{{{.State.Health.Status}}}}{{{{end}}}}' {container} 2>/dev/null) in \
{ready}) \
published=$(docker port {container} {port}/{proto} | head -n 1); \
if [ -n \"$published\" ]; then \
host=${{published%:*}}; \
case \"$host\" in 0.0.0.0|::|\"[::]\") {host};; esac; \
addr=\"$host:${{published##*:}}\"; \
{publish}; \
fi;; \
*) {withdraw} >/dev/null 2>&1;; \
esac; \
sleep {interval}; \
done",
        port = port.container_port,
        proto = port.protocol.as_str(),
    )
}

fn withdraw_command(api: EtcdApi) -> &'static str {
    match api {
        EtcdApi::V3 => "etcdctl del \"$key\"",
        EtcdApi::V2 => "etcdctl rm \"$key\"",
    }
}

/// Removes the announcement when the sidekick stops. Errors still reach
/// the journal; etcdctl's "1 key deleted" does not.
pub fn withdraw_script(instance: &Instance, discovery: &Discovery, service: &Service) -> String {
    format!(
        "key={}/$(hostname); {} >/dev/null",
        sh_quote(&instance.discovery_key(discovery, &service.name)),
        withdraw_command(discovery.api)
    )
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
pub fn resolve_script(
    instance: &Instance,
    discovery: &Discovery,
    dependencies: &[&Service],
    env_file: &str,
) -> String {
    let env_dir = env_file.rsplit_once('/').map_or(".", |(dir, _)| dir);
    // A consumer's unit does not set etcdctl's environment as a
    // sidekick's does: the script brings its own.
    let mut script = format!(
        "export ETCDCTL_API={} ETCDCTL_ENDPOINTS={}; here=$(hostname); deadline=$(($(date +%s)+{})); mkdir -p {}; f={}; : > \"$f\"; ",
        api_number(discovery.api),
        sh_quote(&discovery.endpoints.join(",")),
        discovery.wait_seconds,
        sh_quote(env_dir),
        sh_quote(&format!("{env_file}.tmp")),
    );
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
        script.push_str(&format!(
            "key={key}; \
until addr=$({read_here}) && [ -n \"$addr\" ] && addr={local} || \
{{ addr=$({read_all} | grep -v -e '^127\\.' -e '^\\[::1\\]:' -e '^localhost:' | head -n 1) && [ -n \"$addr\" ]; }}; do \
if [ \"$(date +%s)\" -ge \"$deadline\" ]; then echo {missing} >&2; rm -f \"$f\"; exit 1; fi; sleep 1; done; \
printf '%s\\n' \"{var}_HOST=${{addr%:*}}\" \"{var}_PORT=${{addr##*:}}\" \"{var}_ADDR=$addr\" >> \"$f\"; ",
            key = sh_quote(&key),
            local = sh_quote(&local),
            missing = sh_quote(&missing),
            var = env_prefix(&dep.name),
        ));
    }
    script.push_str(&format!("mv \"$f\" {}", sh_quote(env_file)));
    script
}

/// `ETCDCTL_API`'s value for an API.
pub fn api_number(api: EtcdApi) -> &'static str {
    match api {
        EtcdApi::V2 => "2",
        EtcdApi::V3 => "3",
    }
}
