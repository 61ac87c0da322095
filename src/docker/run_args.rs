//! What a unit's `docker run` asks of Docker that Docker can change (or
//! lose) behind the unit's back: the resource limits and restart policy
//! `docker update` rewrites in a running container ([`Limits`]), and the
//! named volumes a container's start makes empty when they are gone. Read
//! from the command line systemd runs (its `ExecStart=` as systemd parsed
//! it), as the Docker CLI reads it, to compare with what Docker records.

/// The settings `docker update` changes in a running container, as numbers
/// Docker records (`docker inspect`'s `HostConfig`); 0 or empty is unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: i64,
    /// None: not asked for, Docker's default (see [`Limits::differences`]).
    pub memory_swap: Option<i64>,
    pub memory_reservation: i64,
    pub kernel_memory: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_rt_period: i64,
    pub cpu_rt_runtime: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub blkio_weight: i64,
    /// 0: no limit (Docker records none, 0 or -1 for that).
    pub pids_limit: i64,
    /// Docker's restart policy (`no` when none; a unit never asks for one:
    /// systemd restarts the container).
    pub restart: String,
}

impl Limits {
    /// From a container's `HostConfig`, as the engine records it (`docker
    /// inspect`). Numbers it leaves out (or null) are 0: newer engines
    /// no longer record a kernel memory limit, and an unset pids limit is
    /// null. None when it is not an object.
    pub fn from_host_config(host_config: &serde_json::Value) -> Option<Limits> {
        host_config.as_object()?;
        let number = |key: &str| {
            host_config
                .get(key)
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0)
        };
        let text = |key: &str| {
            (host_config.get(key))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let restart = (host_config.get("RestartPolicy"))
            .and_then(|policy| policy.get("Name")?.as_str())
            .filter(|name| !name.is_empty())
            .unwrap_or("no");
        Some(Limits {
            memory: number("Memory"),
            memory_swap: Some(number("MemorySwap")),
            memory_reservation: number("MemoryReservation"),
            kernel_memory: number("KernelMemory"),
            nano_cpus: number("NanoCpus"),
            cpu_shares: number("CpuShares"),
            cpu_period: number("CpuPeriod"),
            cpu_quota: number("CpuQuota"),
            cpu_rt_period: number("CpuRealtimePeriod"),
            cpu_rt_runtime: number("CpuRealtimeRuntime"),
            blkio_weight: number("BlkioWeight"),
            pids_limit: number("PidsLimit").max(0),
            restart: restart.to_string(),
            cpuset_cpus: text("CpusetCpus"),
            cpuset_mems: text("CpusetMems"),
        })
    }

    /// How the container's settings (`recorded`, from Docker) differ from
    /// these (asked for by the unit), one phrase each: `memory 128 MiB, the
    /// unit asks for 64 MiB`.
    pub fn differences(&self, recorded: &Limits) -> Vec<String> {
        // (what, asked for, recorded), in words.
        let mut pairs: Vec<(&str, String, String)> = Vec::new();
        let mut compare = |what, asked, is| pairs.push((what, asked, is));
        let bytes = |n: i64| match n {
            0 => "none".to_string(),
            -1 => "unlimited".to_string(),
            n if n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
            n => format!("{n} bytes"),
        };
        let plain = |n: i64| match n {
            0 => "none".to_string(),
            n => n.to_string(),
        };
        compare("memory", bytes(self.memory), bytes(recorded.memory));
        // Unasked, Docker gives twice the memory limit as memory + swap, or
        // no swap limit (-1) where the kernel cannot limit swap.
        let swap = recorded.memory_swap.unwrap_or(0);
        let swap_as_asked = match self.memory_swap {
            Some(asked) => asked == swap,
            // (Or twice the memory `docker update` set: only memory differs.)
            None => [2 * self.memory, 2 * recorded.memory, -1].contains(&swap),
        };
        if !swap_as_asked {
            let asked = self
                .memory_swap
                .map_or_else(|| "Docker's default".to_string(), bytes);
            compare("memory + swap", asked, bytes(swap));
        }
        for (what, asked, is) in [
            (
                "memory reservation",
                self.memory_reservation,
                recorded.memory_reservation,
            ),
            ("kernel memory", self.kernel_memory, recorded.kernel_memory),
        ] {
            compare(what, bytes(asked), bytes(is));
        }
        let cpus = |n: i64| match n {
            0 => "none".to_string(),
            n => format!("{}", n as f64 / 1e9),
        };
        compare("cpus", cpus(self.nano_cpus), cpus(recorded.nano_cpus));
        for (what, asked, is) in [
            ("cpu shares", self.cpu_shares, recorded.cpu_shares),
            ("cpu period", self.cpu_period, recorded.cpu_period),
            ("cpu quota", self.cpu_quota, recorded.cpu_quota),
            ("cpu rt period", self.cpu_rt_period, recorded.cpu_rt_period),
            (
                "cpu rt runtime",
                self.cpu_rt_runtime,
                recorded.cpu_rt_runtime,
            ),
            ("blkio weight", self.blkio_weight, recorded.blkio_weight),
            ("pids limit", self.pids_limit, recorded.pids_limit),
        ] {
            compare(what, plain(asked), plain(is));
        }
        let set = |s: &str| if s.is_empty() { "any" } else { s }.to_string();
        compare(
            "cpuset cpus",
            set(&self.cpuset_cpus),
            set(&recorded.cpuset_cpus),
        );
        compare(
            "cpuset mems",
            set(&self.cpuset_mems),
            set(&recorded.cpuset_mems),
        );
        compare(
            "Docker restart policy",
            self.restart.clone(),
            recorded.restart.clone(),
        );
        (pairs.into_iter())
            .filter(|(_, asked, is)| asked != is)
            .map(|(what, asked, is)| format!("{what} {is}, the unit asks for {asked}"))
            .collect()
    }
}

/// What a `docker run` command line asks for, of [`Limits`] and volumes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunArgs {
    pub limits: Limits,
    /// The image it runs, as named (None: no word after the flags).
    pub image: Option<String>,
    /// The words after the image: the container's command (its `Cmd`).
    pub command: Vec<String>,
    /// The named volumes it mounts (`--volume NAME:/path`, `--mount
    /// type=volume,source=NAME,...`): Docker makes a missing one, empty.
    pub named_volumes: Vec<String>,
    /// The networks it joins (`--network`, `--net`); none: Docker's
    /// `bridge`.
    pub networks: Vec<String>,
}

/// Reads `argv`, a unit's `docker run` command line (program first); None
/// when it is not one, or asks for a value Docker would refuse.
pub fn read(argv: &[String]) -> Option<RunArgs> {
    let (program, rest) = argv.split_first()?;
    if !program.ends_with("/docker") && program != "docker" {
        return None;
    }
    let (run, flags) = rest.split_first()?;
    if run != "run" {
        return None;
    }
    let mut read = RunArgs {
        limits: Limits {
            restart: "no".into(),
            ..Limits::default()
        },
        ..RunArgs::default()
    };
    let (values, image_on) = flag_values(flags);
    // systemd's ExecStart= keeps `$$` (a `$`) and `$VAR` as written, and
    // expands them at each start: a word with a `$VAR` is not compared.
    let as_run: Option<Vec<String>> = image_on.iter().map(|word| dollars_as_run(word)).collect();
    if let Some((image, command)) = as_run.as_deref().and_then(<[String]>::split_first) {
        read.image = Some(image.clone());
        read.command = command.to_vec();
    }
    let limits = &mut read.limits;
    for (name, value) in values {
        let value = value.as_str();
        match name.as_str() {
            "memory" => limits.memory = ram_in_bytes(value)?,
            "memory-swap" => {
                limits.memory_swap = Some(match value {
                    "-1" => -1,
                    _ => ram_in_bytes(value)?,
                });
            }
            "memory-reservation" => limits.memory_reservation = ram_in_bytes(value)?,
            "kernel-memory" => limits.kernel_memory = ram_in_bytes(value)?,
            "cpus" => limits.nano_cpus = nano_cpus(value)?,
            "cpu-shares" => limits.cpu_shares = value.parse().ok()?,
            "cpu-period" => limits.cpu_period = value.parse().ok()?,
            "cpu-quota" => limits.cpu_quota = value.parse().ok()?,
            "cpu-rt-period" => limits.cpu_rt_period = value.parse().ok()?,
            "cpu-rt-runtime" => limits.cpu_rt_runtime = value.parse().ok()?,
            "blkio-weight" => limits.blkio_weight = value.parse().ok()?,
            "pids-limit" => limits.pids_limit = value.parse::<i64>().ok()?.max(0),
            "cpuset-cpus" => limits.cpuset_cpus = value.to_string(),
            "cpuset-mems" => limits.cpuset_mems = value.to_string(),
            "restart" => limits.restart = value.split(':').next()?.to_string(),
            "network" | "net" => read.networks.push(value.to_string()),
            "volume" => {
                // NAME:/path[:mode]; a bind mount's source is a path, an
                // anonymous volume has no source.
                if let Some((source, _)) = value.split_once(':')
                    && !source.starts_with(['/', '.', '~'])
                    && !source.is_empty()
                {
                    read.named_volumes.push(source.to_string());
                }
            }
            "mount" => {
                let fields: Vec<(&str, &str)> = (value.split(','))
                    .filter_map(|field| field.split_once('='))
                    .collect();
                let field = |names: &[&str]| {
                    (fields.iter()).find_map(|(k, v)| names.contains(k).then_some(*v))
                };
                if field(&["type"]).is_none_or(|kind| kind == "volume")
                    && let Some(source) = field(&["source", "src"])
                {
                    read.named_volumes.push(source.to_string());
                }
            }
            _ => {}
        }
    }
    Some(read)
}

/// `word` of an `ExecStart=` as systemd runs it when it holds no variable:
/// `$$` is one `$`. None when it names one (`$VAR`, `${VAR}`).
fn dollars_as_run(word: &str) -> Option<String> {
    let mut run = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c == '$' && chars.next() != Some('$') {
            return None;
        }
        run.push(c);
    }
    Some(run)
}

/// The flags of a `docker run` command line (after `run`) that take a
/// value, by their long name, with the value: `--flag=value`, `--flag
/// value`, and the short forms (`-m 64m`, `-m64m`, `-v a:/b`). Stops at
/// the image (the first word that is not a flag) or `--`; with the words
/// from the image on.
fn flag_values(words: &[String]) -> (Vec<(String, String)>, &[String]) {
    let mut found = Vec::new();
    let mut words = words.iter();
    loop {
        let from_here = words.as_slice();
        let Some(word) = words.next() else {
            return (found, from_here);
        };
        if word == "--" {
            return (found, words.as_slice());
        }
        if !word.starts_with('-') || word == "-" {
            return (found, from_here);
        }
        if let Some(long) = word.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => found.push((name.to_string(), value.to_string())),
                None if crate::compile::docker_args::takes_value(long) => {
                    if let Some(value) = words.next() {
                        found.push((long.to_string(), value.clone()));
                    }
                }
                None => {}
            }
            continue;
        }
        let shorts = &word[1..];
        for (offset, flag) in shorts.char_indices() {
            if matches!(flag, 'd' | 'i' | 't' | 'P') {
                continue;
            }
            let rest = &shorts[offset + flag.len_utf8()..];
            let value = match rest {
                "" => words.next().cloned(),
                rest => Some(rest.strip_prefix('=').unwrap_or(rest).to_string()),
            };
            let name = match flag {
                'm' => "memory",
                'c' => "cpu-shares",
                'v' => "volume",
                _ => "",
            };
            if let Some(value) = value
                && !name.is_empty()
            {
                found.push((name.to_string(), value));
            }
            break;
        }
    }
}

/// A size as the Docker CLI reads `--memory` (go-units' RAMInBytes): a
/// number, optionally decimal, then an optional unit `b`, `k`, `m`, `g`,
/// `t` or `p` (powers of 1024), optionally followed by `b` or `ib`.
fn ram_in_bytes(text: &str) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim_start();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(unit);
    let power = match unit {
        "" | "b" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    Some((number * 1024f64.powi(power)) as i64)
}

/// `--cpus` as Docker records it: billionths of a CPU.
fn nano_cpus(text: &str) -> Option<i64> {
    let cpus: f64 = text.trim().parse().ok()?;
    Some((cpus * 1e9).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        ["/usr/bin/docker", "run"]
            .iter()
            .chain(words)
            .map(|w| w.to_string())
            .collect()
    }

    #[test]
    fn limits_and_volumes_are_read_in_every_form_docker_reads() {
        let read = read(&argv(&[
            "--rm",
            "--name",
            "a-live-db",
            "--env",
            "--memory=1g",
            "-m64m",
            "--cpus",
            "1.5",
            "--pids-limit=100",
            "-c",
            "512",
            "--volume",
            "a-live-data:/data",
            "-v",
            "/srv/x:/x:ro",
            "-v/tmp:/tmp",
            "--mount",
            "type=volume,src=a-live-cache,dst=/cache",
            "--mount=type=bind,source=/etc,target=/e",
            "image",
            "--memory",
            "2g",
        ]))
        .unwrap();
        assert_eq!(read.limits.memory, 64 << 20, "--env's value is not a flag");
        assert_eq!(read.limits.nano_cpus, 1_500_000_000);
        assert_eq!(read.limits.pids_limit, 100);
        assert_eq!(read.limits.cpu_shares, 512);
        assert_eq!(read.limits.restart, "no");
        assert_eq!(read.named_volumes, ["a-live-data", "a-live-cache"]);
        assert!(super::read(&["/bin/sh".into(), "-c".into()]).is_none());
    }

    #[test]
    fn the_image_and_command_are_read_as_docker_gets_them() {
        let read = read(&argv(&[
            "--rm", "-m", "1g", "--name=x", "img:1", "sh", "-c", "echo $$A",
        ]));
        let read = read.unwrap();
        assert_eq!(read.image.as_deref(), Some("img:1"));
        assert_eq!(read.command, ["sh", "-c", "echo $A"]);
        let after = super::read(&argv(&["--", "img:1", "a"])).unwrap();
        assert_eq!(
            (after.image.as_deref(), after.command),
            (Some("img:1"), vec!["a".to_string()])
        );
        // A variable systemd expands at start: what runs is not known here.
        let expanded = super::read(&argv(&["img:1", "echo", "$HOME"])).unwrap();
        assert_eq!(
            (expanded.image, expanded.command),
            (None, Vec::<String>::new())
        );
    }

    #[test]
    fn sizes_are_read_as_the_docker_cli_reads_them() {
        for (text, bytes) in [
            ("64m", 64 << 20),
            ("64MB", 64 << 20),
            ("1.5g", 3 << 29),
            ("2GiB", 2 << 30),
            ("1024", 1024),
            ("10b", 10),
        ] {
            assert_eq!(ram_in_bytes(text), Some(bytes), "{text}");
        }
        assert_eq!(ram_in_bytes("1x"), None);
    }

    #[test]
    fn a_container_updated_by_hand_differs_where_it_was_changed() {
        let asked = read(&argv(&["--memory", "64m", "--cpus", "0.5", "i"]))
            .unwrap()
            .limits;
        let recorded = |json: serde_json::Value| Limits::from_host_config(&json).unwrap();
        let as_run = recorded(serde_json::json!({
            "Memory": 67108864, "MemorySwap": 134217728, "NanoCpus": 500000000,
            "PidsLimit": null, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
            "CpusetCpus": "", "CpusetMems": "",
        }));
        assert!(asked.differences(&as_run).is_empty());
        // No swap limit where the kernel has none.
        let no_swap = recorded(serde_json::json!({
            "Memory": 67108864, "MemorySwap": -1, "NanoCpus": 500000000,
            "RestartPolicy": {"Name": "no"},
        }));
        assert!(asked.differences(&no_swap).is_empty());
        let updated = recorded(serde_json::json!({
            "Memory": 134217728, "MemorySwap": 268435456, "NanoCpus": 1000000000,
            "PidsLimit": 50, "RestartPolicy": {"Name": "on-failure"},
        }));
        let updated = &updated;
        assert_eq!(Limits::from_host_config(&serde_json::Value::Null), None);
        let unlimited = read(&argv(&["i"])).unwrap().limits;
        assert_eq!(
            unlimited.differences(updated)[..2],
            [
                "memory 128 MiB, the unit asks for none",
                "cpus 1, the unit asks for none"
            ]
        );
        assert_eq!(
            asked.differences(updated),
            [
                "memory 128 MiB, the unit asks for 64 MiB",
                "cpus 1, the unit asks for 0.5",
                "pids limit 50, the unit asks for none",
                "Docker restart policy on-failure, the unit asks for no",
            ]
        );
    }
}
