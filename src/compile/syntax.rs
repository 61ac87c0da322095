//! Parsers for the small value languages inside a service definition
//! (ports, volumes, durations, names), shared by compile and import.
//! Each returns a message fit to show under the offending text.

use std::net::IpAddr;

use crate::diagnostic::shown;
use crate::model::{Port, Protocol};

/// App and instance names: lowercase letters, digits and `_`. No `-`, since
/// `-` joins app, instance and service in every unit name and must stay
/// unambiguous.
pub fn check_app_or_instance_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        let name = shown(name);
        Err(format!(
            "`{name}` is not a valid name: use 1 to 48 lowercase letters, digits and `_`, starting with a letter or digit"
        ))
    }
}

/// Service names: a DNS label (they are host names on the instance network),
/// not `network` (the instance's network unit), not ending in `-announce`
/// (sidekick units), not `backup` nor `backup-…` (the backup units).
pub fn check_service_name(name: &str) -> Result<(), String> {
    let label = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let name = &shown(name);
    if !label {
        return Err(format!(
            "`{name}` is not a valid service name: use 1 to 63 lowercase letters, digits and `-` (it is the service's host name on the instance network)"
        ));
    }
    if name == "network" || name.ends_with("-announce") {
        return Err(format!(
            "`{name}` is reserved: unitgen names the instance network unit `network` and sidekicks `<service>-announce`"
        ));
    }
    if name == "routes" {
        return Err(format!(
            "`{name}` is reserved: unitgen names the instance's routes unit `routes`"
        ));
    }
    if name == "backup" || name.starts_with("backup-") {
        return Err(format!(
            "`{name}` is reserved: unitgen names the instance's backup units `backup` and `backup-…`"
        ));
    }
    Ok(())
}

/// An etcd endpoint: an http(s) URL of plain characters. It is written into
/// units and scripts, and etcdctl reads a comma-separated list of them.
pub fn check_etcd_endpoint(endpoint: &str) -> Result<(), String> {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"));
    let shown = shown(endpoint);
    match rest {
        None => Err(format!("etcd endpoint `{shown}` is not an http(s) URL")),
        Some("") => Err(format!("etcd endpoint `{shown}` has no host")),
        Some(rest)
            if !rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:[]/~".contains(c)) =>
        {
            Err(format!(
                "etcd endpoint `{shown}` has a character a URL of a host and port does not (only letters, digits and `.-_:[]/~`)"
            ))
        }
        Some(_) if endpoint.len() > 256 => Err(format!("etcd endpoint `{shown}` is too long")),
        Some(_) => Ok(()),
    }
}

/// The nearest valid name, for hints: `Acme-Corp` → `acme_corp`.
pub fn suggest_name(name: &str, separator: char) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c
            } else {
                separator
            }
        })
        .collect::<String>()
        .trim_matches(separator)
        .to_string()
}

/// `8000`, `8080:8000`, `127.0.0.1:8080:8000`, `127.0.0.1::8000`, `53/udp`,
/// and an IPv6 host address as Docker and compose read it, in brackets
/// (`[::1]:8080:8000`) or not (`::1:8080:8000`: the last two fields are the
/// ports). An empty IP (`:8080:8000`, what compose's `${IP-}:8080:8000`
/// gives) means all interfaces, as in compose.
pub fn parse_port(text: &str) -> Result<Port, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, "tcp")) => (spec, Protocol::Tcp),
        Some((spec, "udp")) => (spec, Protocol::Udp),
        Some((_, other)) => return Err(format!("unknown protocol `{other}`: use tcp or udp")),
        None => (text, Protocol::Tcp),
    };
    // As Docker's nat.ParsePortSpec splits it: the container port last, the
    // host port before it, and everything before those the address.
    let (host_ip, host_port, container) = match spec.rsplitn(3, ':').collect::<Vec<_>>()[..] {
        [c] => (None, None, c),
        // `:80`, as Docker and compose read it: any free host port.
        [c, h] => (None, Some(h).filter(|h| !h.is_empty()), c),
        [c, h, ip] => {
            let ip = match ip.strip_prefix('[') {
                Some(bracketed) => bracketed.strip_suffix(']').ok_or_else(|| {
                    format!("`{text}` is not a port: an IPv6 address is written in brackets, `[::1]:8080:80`")
                })?,
                None => ip,
            };
            (Some(ip), Some(h).filter(|h| !h.is_empty()), c)
        }
        _ => unreachable!("rsplitn(3) gives one to three parts"),
    };
    let host_ip = host_ip.filter(|ip| !ip.is_empty());
    if let Some(ip) = host_ip {
        ip.parse::<IpAddr>()
            .map_err(|_| format!("`{ip}` is not an IP address"))?;
    }
    let number = |p: &str, what: &str| -> Result<u16, String> {
        if p.contains('-') {
            return Err(format!(
                "port ranges like `{p}` are not supported: list each port"
            ));
        }
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("`{p}` is not a valid {what} port (1-65535)")),
        }
    };
    Ok(Port {
        host_ip: host_ip.map(str::to_string),
        host_port: host_port.map(|h| number(h, "host")).transpose()?,
        container_port: number(container, "container")?,
        protocol,
    })
}

/// A volume as written: `data:/var/lib/x`, `/srv/conf:/etc/x:ro`, `/cache`.
#[derive(Debug, PartialEq, Eq)]
pub enum VolumeSpec<'a> {
    Named {
        name: &'a str,
        target: &'a str,
        read_only: bool,
        relabel: Option<&'a str>,
        /// `nocopy`: the image's files at the target are not copied into a
        /// new, empty volume (Docker takes it on volumes only).
        nocopy: bool,
    },
    Bind {
        path: &'a str,
        target: &'a str,
        read_only: bool,
        /// Mount propagation (`rslave`: node-exporter's `/:/host:ro,rslave`
        /// sees the host's later mounts); Docker takes it on binds only.
        propagation: Option<&'a str>,
        relabel: Option<&'a str>,
    },
    Anonymous {
        target: &'a str,
    },
}

pub fn parse_volume(text: &str) -> Result<VolumeSpec<'_>, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => {
            check_container_path(target)?;
            return Ok(VolumeSpec::Anonymous { target });
        }
        [s, t] => (*s, *t, None),
        [s, t, m] => (*s, *t, Some(*m)),
        _ => {
            return Err(format!(
                "`{text}` is not a volume: write SOURCE:TARGET[:ro]"
            ));
        }
    };
    let mut read_only = false;
    let mut propagation = None;
    // SELinux relabelling (supabase's and jitsi's `:z`, `:Z`): shared by
    // containers or private to one; Docker ignores it where SELinux is off.
    let mut relabel = None;
    let mut nocopy = false;
    // Docker reads the mode as a comma-separated list: `ro,rslave`.
    for flag in mode.map(|m| m.split(',')).into_iter().flatten() {
        match flag {
            "rw" => read_only = false,
            "ro" => read_only = true,
            "shared" | "slave" | "private" | "rshared" | "rslave" | "rprivate" => {
                propagation = Some(flag)
            }
            "z" | "Z" if relabel.is_some_and(|r| r != flag) => {
                return Err(format!(
                    "volume modes `z` and `Z` together: Docker refuses `{}`; `z` shares the relabelled content between containers, `Z` keeps it to this one",
                    mode.unwrap_or_default()
                ));
            }
            "z" | "Z" => relabel = Some(flag),
            "nocopy" => nocopy = true,
            other => {
                return Err(format!(
                    "unknown volume mode `{other}`: use ro or rw, z or Z (SELinux relabelling), on a volume nocopy, and on a bind mount a propagation (rslave, rshared, rprivate, slave, shared, private)"
                ));
            }
        }
    }
    check_container_path(target)?;
    if let Some(propagation) = propagation
        && !source.starts_with('/')
    {
        return Err(format!(
            "mount propagation `{propagation}` is for bind mounts (an absolute host path) only: Docker refuses it on a volume"
        ));
    }
    if nocopy && source.starts_with('/') {
        return Err(
            "volume mode `nocopy` is for volumes only: Docker refuses it on a bind mount (an absolute host path), which copies nothing anyway".to_string(),
        );
    }
    if source.starts_with('/') {
        Ok(VolumeSpec::Bind {
            path: source,
            target,
            read_only,
            propagation,
            relabel,
        })
    } else if source.starts_with('.') || source.starts_with('~') {
        Err(format!(
            "bind mount source `{source}` is relative: units run on the host, not in your checkout, so give an absolute host path"
        ))
    } else if is_docker_name(source) {
        Ok(VolumeSpec::Named {
            name: source,
            target,
            read_only,
            relabel,
            nocopy,
        })
    } else {
        Err(format!(
            "`{source}` is neither a volume name (letters, digits, `_`, `.`, `-`) nor an absolute host path"
        ))
    }
}

fn check_container_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(format!("container path `{path}` must be absolute"))
    }
}

/// Names Docker accepts for containers, networks and volumes.
pub fn is_docker_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A Go-style duration as Docker and compose take it (`1m30s`, `500ms`);
/// returns it in whole seconds, rounded up.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    Ok(parse_duration_nanos(text)?.div_ceil(1_000_000_000))
}

/// A Go-style duration in whole microseconds, rounded up (compose's
/// `cpu_rt_runtime: 400ms`).
pub fn duration_micros(text: &str) -> Result<u64, String> {
    Ok(parse_duration_nanos(text)?.div_ceil(1_000))
}

/// A healthcheck's `interval`, `timeout` or `start_period`: Docker refuses
/// one shorter than a millisecond (0 means its default) when it creates the
/// container, which for a unit is at its start.
pub fn check_health_duration(text: &str) -> Result<(), String> {
    match parse_duration_nanos(text)? {
        1..1_000_000 => Err(format!(
            "`{text}` is shorter than Docker lets a healthcheck wait (at least 1ms; 0s means Docker's default)"
        )),
        _ => Ok(()),
    }
}

/// A Go-style duration in nanoseconds, as Go counts it (at most 2^63-1).
fn parse_duration_nanos(text: &str) -> Result<u64, String> {
    let err = || format!("`{text}` is not a duration: write e.g. `10s`, `1m30s` or `500ms`");
    if text.is_empty() {
        return Err(err());
    }
    let mut rest = text;
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(err)?;
        let value: f64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        nanos += value * scale;
        rest = &rest[unit_len..];
    }
    // Docker's durations are Go's, at most 2^63-1 ns (about 292 years);
    // systemd's are longer. Beyond that Docker refuses the value at the
    // container's start, and the seconds would overflow what is added to
    // them (a stop timeout's margin) into a short timeout.
    if nanos > i64::MAX as f64 {
        return Err(format!(
            "`{text}` is longer than a duration can be (at most 2562047h, about 292 years)"
        ));
    }
    Ok(nanos.ceil() as u64)
}

/// Linux's signal numbers by name, as Docker's `--stop-signal` reads them
/// (without `SIG`, any case); `RTMIN+n` and `RTMAX-n` are computed.
const SIGNALS: [(&str, u8); 36] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
    ("RTMIN", 34),
    ("RTMAX", 64),
];

/// The number of a stop signal written as Docker takes it: `SIGINT`, `int`,
/// `2`, `SIGRTMIN+3`.
pub fn signal_number(text: &str) -> Result<u8, String> {
    let err = || {
        format!("`{text}` is not a signal: write e.g. `SIGINT`, `SIGQUIT` or a number from 1 to 64")
    };
    if let Ok(n) = text.parse::<u8>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(err())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let offset = |base: &str, sign: char| -> Option<u8> {
        let n: u8 = name.strip_prefix(base)?.strip_prefix(sign)?.parse().ok()?;
        (1..=15).contains(&n).then_some(n)
    };
    if let Some(n) = offset("RTMIN", '+') {
        return Ok(34 + n);
    }
    if let Some(n) = offset("RTMAX", '-') {
        return Ok(64 - n);
    }
    SIGNALS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, number)| *number)
        .ok_or_else(err)
}

/// The bytes a memory size `check_memory` takes stands for (`1g` and
/// `1024m` alike), as compose compares two sizes; `None` if it is none.
pub fn memory_bytes(text: &str) -> Option<f64> {
    let normal = check_memory(text).ok()?;
    let digits = normal.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale = unit_scale(&normal[digits.len()..]);
    Some(digits.trim_end().parse::<f64>().ok()? * scale)
}

/// How many bytes one of a memory size's unit (lowercase: `k`, `mib`,
/// `g`...) is; 1 for bytes.
fn unit_scale(unit: &str) -> f64 {
    match unit.chars().next() {
        Some('k') => 1024f64,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        Some('p') => 1024f64.powi(5),
        _ => 1.0,
    }
}

/// `512m`, `1g`, `1.5G`, `2GiB`, `1073741824`: what `docker run --memory`
/// takes (Docker's and compose's `RAMInBytes`: a number, an optional unit
/// b/k/m/g/t/p, an optional `i` and `b`). Written lowercase.
pub fn check_memory(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let number = digits.trim_end_matches(' ');
    let unit = &lower[digits.len()..];
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let rest = unit.strip_prefix(['k', 'm', 'g', 't', 'p']).unwrap_or(unit);
    let rest = rest.strip_prefix('i').unwrap_or(rest);
    let unit_ok = rest.is_empty() || rest == "b";
    // Docker counts bytes in a signed 64-bit number: past it, it refuses
    // the size at the container's start.
    let scale = unit_scale(unit);
    let fits = |n: f64| n * scale <= i64::MAX as f64;
    if all_digits(whole) && all_digits(fraction) && unit_ok {
        let Some(bytes) = number.parse::<f64>().ok().filter(|&n| fits(n)) else {
            return Err(format!(
                "`{text}` is more memory than Docker can count (at most 8191p)"
            ));
        };
        // Docker's floor, checked when it creates the container (0 is no
        // limit, as when the key is left out).
        let bytes = bytes * scale;
        if bytes > 0.0 && bytes < DOCKER_MIN_MEMORY {
            return Err(format!(
                "`{text}` is less memory than Docker gives a container (at least 6m)"
            ));
        }
        Ok(format!("{number}{unit}"))
    } else {
        Err(format!(
            "`{text}` is not a memory size: write e.g. `512m`, `1.5g` or `2g`"
        ))
    }
}

/// `/run` or `/run:rw,size=64m,mode=1777`: what `docker run --tmpfs` takes.
/// Docker itself refuses an option it does not know when it creates the
/// container, and the kernel a bad value when it mounts it: both at the
/// unit's start. Worse, the kernel reads a size too big for it as another
/// size (it wraps) and a size of 0 as no limit at all. So the options are
/// checked here, the numbers as the kernel reads them.
pub fn check_tmpfs(mount: &str) -> Result<(), String> {
    let (path, options) = mount.split_once(':').unwrap_or((mount, ""));
    if !path.starts_with('/') {
        return Err(format!(
            "tmpfs `{path}` is not an absolute path in the container"
        ));
    }
    if options.is_empty() {
        return Ok(());
    }
    for option in options.split(',') {
        let (name, value) = option.split_once('=').unwrap_or((option, ""));
        // One page is 4 KiB: a size counted in pages is checked as bytes.
        let checked = match name {
            "size" => check_tmpfs_size(value, 1),
            "nr_blocks" | "nr_inodes" => check_tmpfs_size(value, 4096),
            "mode" => match u32::from_str_radix(value, 8) {
                Ok(0..=0o7777) => Ok(()),
                _ => Err("is not a mode: write octal digits, e.g. `1777`, at most `7777`".into()),
            },
            "uid" | "gid" => match value.parse::<u32>() {
                // (uid_t)-1 is no one: the kernel refuses it.
                Ok(id) if id != u32::MAX => Ok(()),
                _ => Err("is not a user or group id: write a number from 0 to 4294967294".into()),
            },
            "mpol" if !value.is_empty() => Ok(()),
            _ if !option.contains('=') && TMPFS_FLAGS.contains(&name) => Ok(()),
            _ => Err(format!(
                "is not a tmpfs option Docker knows: use `size=`, `mode=`, `uid=`, `gid=`, `nr_inodes=`, `nr_blocks=`, `mpol=` or a mount flag ({})",
                TMPFS_FLAGS.join(", ")
            )),
        };
        checked.map_err(|why| format!("tmpfs option `{option}` of `{path}` {why}"))?;
    }
    Ok(())
}

/// The mount flags Docker's `--tmpfs` takes (moby's mount flag table).
const TMPFS_FLAGS: &[&str] = &[
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// A tmpfs size as the kernel's `memparse` reads it (`64m`, `1G`, `4096`),
/// `unit` bytes each; a size also as a share of the host's RAM (`50%`).
fn check_tmpfs_size(value: &str, unit: u64) -> Result<(), String> {
    let bad = || Err("is not a size: write e.g. `64m`, `1g` or `50%` (of the host's RAM)".into());
    if let Some(percent) = value.strip_suffix('%') {
        return match percent.parse::<u8>() {
            Ok(1..=100) => Ok(()),
            Ok(0) => Err(TMPFS_ZERO.into()),
            _ if percent.chars().all(|c| c.is_ascii_digit()) && !percent.is_empty() => {
                Err("is more than the host's RAM: at most `100%`".into())
            }
            _ => bad(),
        };
    }
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale: u64 = match value[digits.len()..].to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        "e" => 1 << 60,
        _ => return bad(),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return bad();
    }
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale)?.checked_mul(unit))
        .filter(|&b| b <= i64::MAX as u64);
    match bytes {
        None => Err("is more than the kernel can count (at most 8191p bytes)".into()),
        Some(0) => Err(TMPFS_ZERO.into()),
        Some(_) => Ok(()),
    }
}

/// 0 is no limit to the kernel: a tmpfs that can fill the host's RAM.
const TMPFS_ZERO: &str = "means no limit to the kernel (the tmpfs can fill the host's RAM): give a size, or leave the option out for the kernel's default (half the RAM)";

/// Docker's smallest memory limit (`linuxMinMemory`, 6 MiB).
const DOCKER_MIN_MEMORY: f64 = 6.0 * 1024.0 * 1024.0;

/// `0.5`, `2`: what `docker run --cpus` takes. The most a host allows is
/// its number of CPUs, which only the host knows: Docker says so at start.
pub fn check_cpus(text: &str) -> Result<(), String> {
    match text.parse::<f64>() {
        // Docker counts billionths of a CPU in a signed 64-bit number.
        Ok(n) if n > 0.0 && n * 1e9 <= i64::MAX as f64 => {
            // The kernel's CFS quota is at least 1ms of each 100ms period:
            // below that the container fails to start.
            if n < 0.01 {
                Err(format!(
                    "`{text}` is fewer CPUs than Docker can give a container (at least 0.01)"
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(format!(
            "`{text}` is not a number of CPUs: write e.g. `0.5` or `2`"
        )),
    }
}

/// Environment variable names as a shell would accept them.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid environment variable name: use letters, digits and `_`, not starting with a digit"
        ))
    }
}

/// A label's name as `docker run --label NAME=value` reads it back: Docker
/// ends the name at the first `=` and refuses one that is empty or holds
/// whitespace. Names under `unitgen.` are unitgen's own: they tell which
/// app, instance and service a container is (`status`, the network unit's
/// clean-up) and which image it runs (`plan`), and Docker keeps the last of
/// two labels of one name, so a service may not set them.
pub fn check_label_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('=') || name.contains(char::is_whitespace) {
        return Err(format!(
            "`{name}` is not a label name Docker reads back: no `=`, no whitespace, not empty"
        ));
    }
    if is_unitgen_label(name) {
        return Err(format!(
            "`{name}` is unitgen's: labels under `unitgen.` say which app, instance and service a container is, and which image it runs"
        ));
    }
    Ok(())
}

/// Whether a label name is one of unitgen's own (`unitgen.app`, …), which
/// no service may set (see [`check_label_name`]).
pub fn is_unitgen_label(name: &str) -> bool {
    name.starts_with("unitgen.")
}

/// A name Docker's local volume driver takes (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn check_volume_name(name: &str) -> Result<(), String> {
    let ok = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a Docker volume name: two or more letters, digits, `_`, `.` or `-`, starting with a letter or digit"
        ))
    }
}

/// The Linux capabilities, as `docker run --cap-add` names them (without
/// `CAP_`; any case; `ALL` for every one).
const CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
    "ALL",
];

/// A capability Docker knows: it refuses to start a container with another
/// ("invalid CapAdd: unknown capability").
pub fn check_capability(cap: &str) -> Result<(), String> {
    let upper = cap.to_ascii_uppercase();
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if CAPABILITIES.contains(&name) {
        return Ok(());
    }
    let mut message = format!("`{cap}` is not a Linux capability");
    if let Some(hint) = crate::diagnostic::did_you_mean(name, CAPABILITIES.iter().copied()) {
        message.push_str(&format!(": {hint}"));
    }
    Err(message)
}

/// Secret names appear in units (`Secret=VAR NAME …`): one word.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid secret name: use letters, digits, `_`, `-` and `.`"
        ))
    }
}

/// Docker image references, by Docker's own grammar (the distribution
/// `reference` package): `[domain[:port]/]path[:tag][@algorithm:hex]`. The
/// engine refuses any other at pull or `docker run`, so a reference it
/// would refuse (`Traefik:3`: a repository must be lowercase) is refused
/// here, at its line, rather than when the unit starts.
pub fn check_image(image: &str) -> Result<(), String> {
    image_reference(image).map_err(|why| format!("`{image}` is not a valid image reference: {why}"))
}

/// A reference's name, tag and digest: `name[:tag][@digest]`, the tag
/// after the last `:` that follows the last `/` (an earlier `:` is a
/// registry's port).
pub fn image_parts(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => (
            &rest[..last_slash + i],
            Some(&rest[last_slash + i + 1..]),
            digest,
        ),
        None => (rest, None, digest),
    }
}

fn image_reference(image: &str) -> Result<(), &'static str> {
    let (name, tag, digest) = image_parts(image);
    if let Some(digest) = digest {
        let (algorithm, hex) = digest
            .split_once(':')
            .ok_or("a digest is `algorithm:hex` (`sha256:…`)")?;
        let algorithm_ok = !algorithm.is_empty()
            && (algorithm.split(['+', '.', '_', '-'])).all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            });
        if !algorithm_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err("a digest is `algorithm:hex` (`sha256:` and 64 hex digits)");
        }
    }
    if let Some(tag) = tag {
        let tag_ok = (1..=128).contains(&tag.len())
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !tag_ok {
            return Err(
                "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            );
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    // The first component is a registry when it looks like a host (a `.`
    // or a port, `localhost`, or capitals, which only a host may have).
    if components.len() > 1 {
        let first = components[0];
        if first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase())
        {
            let (host, port) = match first.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (first, None),
            };
            let host_ok = !host.is_empty()
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            let port_ok =
                port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            if !host_ok || !port_ok {
                return Err("its registry is not a host name with an optional port");
            }
            components.remove(0);
        }
    }
    for component in components {
        if component.chars().any(|c| c.is_ascii_uppercase()) {
            return Err("a repository name must be lowercase");
        }
        // Lowercase letters and digits, joined by `.`, `_`, `__` or `-`s.
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let mut ok =
            bytes.first().is_some_and(|&b| alnum(b)) && bytes.last().is_some_and(|&b| alnum(b));
        let mut i = 0;
        while ok && i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let separator = &component[start..i];
            ok = separator == "."
                || separator == "_"
                || separator == "__"
                || separator.chars().all(|c| c == '-');
        }
        if !ok {
            return Err(
                "a repository path is lowercase letters and digits, joined by `/`, `.`, `_`, `__` or `-`",
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_in_every_compose_short_form() {
        let p = parse_port("8000").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port),
            (None, None, 8000)
        );
        let p = parse_port("8080:8000").unwrap();
        assert_eq!((p.host_port, p.container_port), (Some(8080), 8000));
        let p = parse_port("127.0.0.1:8080:8000").unwrap();
        assert_eq!(p.publish_arg(), "127.0.0.1:8080:8000");
        let p = parse_port("127.0.0.1::8000").unwrap();
        assert_eq!(p.publish_arg(), "127.0.0.1::8000");
        let p = parse_port(":2283:2283").unwrap();
        assert_eq!(
            (p.host_ip.clone(), p.publish_arg()),
            (None, "2283:2283".into())
        );
        // Plane's `${NGINX_PORT}:80` with NGINX_PORT unset: any free port.
        let p = parse_port(":80").unwrap();
        assert_eq!((p.host_port, p.publish_arg()), (None, "80".into()));
        let p = parse_port("53/udp").unwrap();
        assert_eq!(
            (p.protocol, p.publish_arg()),
            (Protocol::Udp, "53/udp".into())
        );
        // IPv6 addresses, as Docker takes them: in brackets or bare, written
        // in brackets (element-web's `[::1]:8081:80` was refused).
        for (text, ip, arg) in [
            ("[::1]:8081:80", "::1", "[::1]:8081:80"),
            ("::1:8081:80", "::1", "[::1]:8081:80"),
            (
                "[2001:db8::5]::53/udp",
                "2001:db8::5",
                "[2001:db8::5]::53/udp",
            ),
            ("[::]:8080:80", "::", "[::]:8080:80"),
        ] {
            let p = parse_port(text).unwrap();
            assert_eq!(
                (p.host_ip.as_deref(), p.publish_arg()),
                (Some(ip), arg.into())
            );
        }
    }

    #[test]
    fn bad_ports_say_why() {
        assert!(
            parse_port("[::1:8080:80")
                .unwrap_err()
                .contains("in brackets")
        );
        assert!(
            parse_port("::1::8080:80")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(
            parse_port("80:http")
                .unwrap_err()
                .contains("`http` is not a valid container port")
        );
        assert!(parse_port("70000").unwrap_err().contains("1-65535"));
        assert!(
            parse_port("8000/sctp")
                .unwrap_err()
                .contains("unknown protocol")
        );
        assert!(
            parse_port("8000-8010:8000-8010")
                .unwrap_err()
                .contains("ranges")
        );
        assert!(parse_port("nope:1:2").unwrap_err().contains("not an IP"));
    }

    #[test]
    fn volumes_named_bind_anonymous() {
        assert_eq!(
            parse_volume("data:/var/lib/pg").unwrap(),
            VolumeSpec::Named {
                name: "data",
                target: "/var/lib/pg",
                read_only: false,
                relabel: None,
                nocopy: false,
            }
        );
        assert_eq!(
            parse_volume("/srv/conf:/etc/app:ro").unwrap(),
            VolumeSpec::Bind {
                path: "/srv/conf",
                target: "/etc/app",
                read_only: true,
                propagation: None,
                relabel: None,
            }
        );
        // node-exporter's root filesystem, as Docker reads either order.
        for text in ["/:/host:ro,rslave", "/:/host:rslave,ro"] {
            assert_eq!(
                parse_volume(text).unwrap(),
                VolumeSpec::Bind {
                    path: "/",
                    target: "/host",
                    read_only: true,
                    propagation: Some("rslave"),
                    relabel: None,
                }
            );
        }
        // SELinux relabelling (supabase's `:z`, jitsi's `ro,z`) and a
        // volume's nocopy, in any order, as Docker reads them.
        assert_eq!(
            parse_volume("/srv/kong.yml:/home/kong/temp.yml:z,ro").unwrap(),
            VolumeSpec::Bind {
                path: "/srv/kong.yml",
                target: "/home/kong/temp.yml",
                read_only: true,
                propagation: None,
                relabel: Some("z"),
            }
        );
        assert_eq!(
            parse_volume("cache:/x:nocopy,Z").unwrap(),
            VolumeSpec::Named {
                name: "cache",
                target: "/x",
                read_only: false,
                relabel: Some("Z"),
                nocopy: true,
            }
        );
        // Docker refuses both.
        assert!(
            parse_volume("/srv:/x:z,Z")
                .unwrap_err()
                .contains("`z` and `Z` together")
        );
        assert!(
            parse_volume("/srv:/x:nocopy")
                .unwrap_err()
                .contains("volumes only")
        );
        assert!(
            parse_volume("data:/x:rslave")
                .unwrap_err()
                .contains("for bind mounts")
        );
        assert_eq!(
            parse_volume("/cache").unwrap(),
            VolumeSpec::Anonymous { target: "/cache" }
        );
        assert!(
            parse_volume("./conf:/etc/app")
                .unwrap_err()
                .contains("relative")
        );
        assert!(
            parse_volume("data:relative")
                .unwrap_err()
                .contains("must be absolute")
        );
        assert!(
            parse_volume("data:/x:rx")
                .unwrap_err()
                .contains("unknown volume mode")
        );
    }

    #[test]
    fn signals_read_as_docker_reads_them() {
        for (text, number) in [
            ("SIGINT", 2),
            ("int", 2),
            ("TERM", 15),
            ("9", 9),
            ("SIGRTMIN+3", 37),
            ("SIGRTMAX-1", 63),
            ("SIGRTMAX", 64),
        ] {
            assert_eq!(signal_number(text), Ok(number), "{text}");
        }
        for bad in ["SIGFOO", "0", "65", "SIGRTMIN+16", ""] {
            assert!(signal_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(10));
        assert_eq!(parse_duration("1m30s"), Ok(90));
        assert_eq!(parse_duration("500ms"), Ok(1));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ten seconds").is_err());
        // Go's longest duration, and past it.
        assert_eq!(parse_duration("2562047h"), Ok(9_223_369_200));
        assert!(parse_duration("2562048h").is_err());
        assert!(parse_duration("18446744073709551615s").is_err());
        assert_eq!(parse_duration("1.1s"), Ok(2));
        assert_eq!(parse_duration("1ns"), Ok(1));
        // Docker's shortest healthcheck wait; 0 is its default.
        assert!(check_health_duration("1ms").is_ok());
        assert!(check_health_duration("0s").is_ok());
        assert!(check_health_duration("999us").is_err());
        assert!(check_health_duration("1ns").is_err());
    }

    // Values the kernel took at the container's start as another size (it
    // wraps past 2^64) or as no limit (0), or refused then (Docker's
    // unknown options, `-1`, `abc`): each tried by hand with Docker 20.10
    // on Linux 6.18.
    #[test]
    fn tmpfs_options_as_docker_and_the_kernel_read_them() {
        for ok in [
            "/run",
            "/run:size=64m",
            "/run:rw,size=64M,mode=1777,uid=1000,gid=0,noexec",
            "/run:size=50%",
            "/run:size=100%",
            "/run:size=7e",
            "/run:nr_inodes=1k,nr_blocks=10",
            "/run:mpol=default",
            "/run:size=9223372036854775807",
        ] {
            assert_eq!(check_tmpfs(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("run", "not an absolute path"),
            ("/run:size=0", "no limit"),
            ("/run:size=0%", "no limit"),
            ("/run:nr_blocks=0", "no limit"),
            ("/run:size=-1", "not a size"),
            ("/run:size=abc", "not a size"),
            ("/run:size=1.5g", "not a size"),
            ("/run:size=10x", "not a size"),
            ("/run:size=", "not a size"),
            (
                "/run:size=99999999999999999999",
                "more than the kernel can count",
            ),
            (
                "/run:size=18446744073709551615",
                "more than the kernel can count",
            ),
            ("/run:size=8e", "more than the kernel can count"),
            (
                "/run:nr_blocks=9223372036854775807",
                "more than the kernel can count",
            ),
            ("/run:size=101%", "more than the host's RAM"),
            ("/run:size=99999999999999%", "more than the host's RAM"),
            ("/run:mode=abc", "not a mode"),
            ("/run:mode=77777", "not a mode"),
            ("/run:uid=-1", "not a user or group id"),
            ("/run:gid=4294967295", "not a user or group id"),
            ("/run:inode64", "not a tmpfs option Docker knows"),
            ("/run:size=64m,", "not a tmpfs option Docker knows"),
            ("/run:ro=1", "not a tmpfs option Docker knows"),
        ] {
            let err = check_tmpfs(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn names() {
        assert!(check_app_or_instance_name("blog").is_ok());
        assert!(check_app_or_instance_name("customer_42").is_ok());
        assert!(check_app_or_instance_name("acme-corp").is_err());
        assert!(check_app_or_instance_name("Live").is_err());
        assert!(check_service_name("web-api").is_ok());
        assert!(check_service_name("web_api").is_err());
        assert!(
            check_service_name("network")
                .unwrap_err()
                .contains("reserved")
        );
        assert!(
            check_service_name("web-announce")
                .unwrap_err()
                .contains("reserved")
        );
        assert_eq!(suggest_name("Acme-Corp", '_'), "acme_corp");
    }

    #[test]
    fn memory_cpus_env_images() {
        assert_eq!(check_memory("512M"), Ok("512m".into()));
        assert_eq!(check_memory("1.5G"), Ok("1.5g".into()));
        assert_eq!(check_memory("2GiB"), Ok("2gib".into()));
        assert_eq!(check_memory("1 g"), Ok("1g".into()));
        assert_eq!(check_memory("1073741824"), Ok("1073741824".into()));
        assert!(check_memory("lots").is_err());
        assert!(check_memory("1.5.2g").is_err());
        assert!(check_memory("1gg").is_err());
        // What Docker can count, and past it.
        assert!(check_memory("8191p").is_ok());
        assert!(check_memory("8193p").is_err());
        assert!(check_memory("99999999999999999999").is_err());
        // Docker's floor (6 MiB); 0 is no limit.
        assert!(check_memory("6m").is_ok());
        assert!(check_memory("6291455").is_err());
        assert!(check_memory("1k").is_err());
        assert!(check_memory("0").is_ok());
        for (cpus, ok) in [
            ("0.5", true),
            ("64", true),
            ("inf", false),
            ("1e308", false),
            // The kernel's smallest CPU quota.
            ("0.01", true),
            ("0.009", false),
        ] {
            assert_eq!(check_cpus(cpus).is_ok(), ok, "{cpus}");
        }
        assert!(check_cpus("0.5").is_ok());
        assert!(check_cpus("-1").is_err());
        assert!(check_env_name("DATABASE_URL").is_ok());
        assert!(check_env_name("1X").is_err());
        assert!(check_image("ghcr.io/acme/blog:1.4.2").is_ok());
        assert!(check_image("bad image").is_err());
    }

    // `Traefik:3` passed and failed only at pull: every reference the
    // engine takes passes, and what it refuses is refused.
    #[test]
    fn image_references_as_docker_reads_them() {
        for good in [
            "busybox",
            "busybox:1.36",
            "unitgen-test/busybox:1",
            "library/postgres:16-alpine",
            "ghcr.io/acme/blog:1.4.2",
            "localhost:5000/app",
            "localhost/app:v2",
            "Registry.Example.com:443/team/app:Latest_1.2",
            "my_org__x/app-name--2.x:3.7",
            "postgres@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "postgres:16@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check_image(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("Traefik:3", "lowercase"),
            ("acme/Blog", "lowercase"),
            ("bad image", "repository path"),
            ("app:", "tag"),
            ("app:-x", "tag"),
            ("app/", "repository path"),
            ("-app", "repository path"),
            ("app.", "repository path"),
            ("a..b", "repository path"),
            ("a___b", "repository path"),
            ("localhost:port/app", "registry"),
            ("app@sha256:xyz", "digest"),
            ("app@sha256", "digest"),
            ("", "repository path"),
        ] {
            let err = check_image(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
