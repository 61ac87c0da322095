//! The shell scripts of service discovery through etcd: the sidekick that
//! announces a service, and the resolver a consumer runs before it starts.
//! They use only what a host already has (sh, docker, etcdctl), so unitgen
//! itself need not be installed where the units run.

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
    let key = instance.discovery_key(discovery, &service.name);
    let ttl = discovery.ttl_seconds;
    let interval = refresh_interval(discovery);
    let ready = if healthcheck {
        "running/healthy"
    } else {
        "running/*"
    };
    let host = match &discovery.address {
        Some(address) => format!("host={}", crate::escape::sh_quote(address)),
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
addr=${{published##*:}}; host=${{published%:*}}; \
case \"$host\" in 0.0.0.0|\"[::]\"|\"\") {host};; esac; \
addr=\"$host:$addr\"; \
{publish};; \
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

/// Removes the announcement when the sidekick stops.
pub fn withdraw_script(instance: &Instance, discovery: &Discovery, service: &Service) -> String {
    format!(
        "key={}/$(hostname); {}",
        instance.discovery_key(discovery, &service.name),
        withdraw_command(discovery.api)
    )
}

/// Writes `<DEP>_HOST`, `<DEP>_PORT` and `<DEP>_ADDR` of every announced
/// dependency into `env_file`, waiting up to `wait_seconds` for each to
/// appear in etcd, and fails (so the unit does not start) if one does not.
pub fn resolve_script(
    instance: &Instance,
    discovery: &Discovery,
    dependencies: &[&Service],
    env_file: &str,
) -> String {
    let mut script = format!("mkdir -p /run/unitgen; f={env_file}.tmp; : > $f; ");
    for dep in dependencies {
        let key = instance.discovery_key(discovery, &dep.name);
        let read = match discovery.api {
            EtcdApi::V3 => format!("etcdctl get --prefix --print-value-only {key}/ | head -n 1"),
            EtcdApi::V2 => {
                format!("etcdctl ls {key} 2>/dev/null | head -n 1 | xargs -r etcdctl get")
            }
        };
        let var = env_prefix(&dep.name);
        script.push_str(&format!(
            "i=0; until addr=$({read}) && [ -n \"$addr\" ]; do \
i=$((i+1)); if [ $i -ge {wait} ]; then echo \"{name}: no address announced under {key} after {wait}s\" >&2; exit 1; fi; sleep 1; done; \
printf '%s\\n' \"{var}_HOST=${{addr%:*}}\" \"{var}_PORT=${{addr##*:}}\" \"{var}_ADDR=$addr\" >> $f; ",
            wait = discovery.wait_seconds,
            name = dep.name,
        ));
    }
    script.push_str(&format!("mv $f {env_file}"));
    script
}
