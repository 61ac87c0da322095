//! `unitgen dns`: the DNS records the site's routes need, and whether the
//! world's DNS has them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use miette::{IntoDiagnostic, Result, WrapErr};

use super::output::{out, outln, showln};
use super::{FileArgs, Outcome};
use crate::dns::{self, bind, check, octodns, resolve};

#[derive(Debug, Args)]
pub struct DnsArgs {
    #[command(flatten)]
    pub file: FileArgs,
    /// `bind`: zone-file lines, for inside each zone's file (after its SOA
    /// and NS records). `octodns`: one YAML file per zone, `ZONE.yaml`, as
    /// octoDNS's YamlProvider reads them from its `directory`.
    #[arg(long, value_enum, default_value = "bind")]
    pub format: Format,
    /// A zone the records go into (repeatable): each domain goes to the
    /// longest zone it is in, and only these zones are printed. Without it,
    /// each domain's zone is its last two labels (`blog.example.com` →
    /// `example.com`): name the zone under suffixes such as `co.uk`.
    #[arg(long = "zone", value_name = "ZONE")]
    pub zones: Vec<String>,
    /// The records' time to live, in seconds (at most 2147483647: DNS
    /// takes a larger one as 0, RFC 2181).
    #[arg(long, default_value_t = 300, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(i32::MAX)))]
    pub ttl: u32,
    /// Write one file per zone into DIR (`ZONE.zone` or `ZONE.yaml`)
    /// instead of printing them. A zone whose file an earlier run wrote
    /// there and that needs no record now gets a file with none (without
    /// --zone), so that its removed records leave DNS too.
    #[arg(long, value_name = "DIR", conflicts_with = "check")]
    pub out: Option<PathBuf>,
    /// Print nothing; resolve every routed domain instead and list those
    /// that do not point at their host (exit 1 if any).
    #[arg(long)]
    pub check: bool,
    /// With --check: the resolver to ask (default: the first nameserver of
    /// /etc/resolv.conf).
    #[arg(long, value_name = "IP:PORT", requires = "check")]
    pub resolver: Option<SocketAddr>,
    /// With --check: how long to wait for each answer, in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3.0,
        requires = "check"
    )]
    pub timeout: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Bind,
    Octodns,
}

pub fn run(args: DnsArgs) -> Result<Outcome> {
    let site = super::site_view(&args.file)?;
    let needs = dns::needs(&site)?;
    if needs.is_empty() {
        crate::say!(
            "{}: no instance routes a domain: no record is needed",
            site.source
        );
        // With --out, the folder may hold records that must now go.
        if args.out.is_none() {
            return Ok(Outcome::Clean);
        }
    }
    if args.check {
        return check(&args, &needs);
    }
    let (mut zones, outside) = dns::zones(&needs, &args.zones)?;
    for domain in &outside {
        crate::say!("warning: {domain} is in none of the zones given with --zone: left out");
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .and_then(|()| crate::unit_dir::sweep_leftovers(dir))
            .into_diagnostic()
            .wrap_err_with(|| format!("creating {}", crate::diagnostic::shown_path(dir)))?;
        // Given zones are printed whole, empty ones too; without --zone, a
        // zone an earlier run wrote whose last domain went is written
        // empty, or its old records would stay at the DNS host.
        if args.zones.is_empty() {
            for origin in written_zones(dir, args.format)? {
                if !zones.iter().any(|z| z.origin == origin) {
                    crate::say!("zone {origin}: no route needs a record in it any more");
                    zones.push(dns::Zone {
                        origin,
                        records: Vec::new(),
                    });
                }
            }
            zones.sort_by(|a, b| a.origin.cmp(&b.origin));
        }
    }
    let files: Vec<(String, String)> = zones
        .iter()
        .map(|zone| match args.format {
            Format::Bind => (bind::file_name(&zone.origin), bind::zone(zone, args.ttl)),
            Format::Octodns => (
                octodns::file_name(&zone.origin),
                octodns::zone(zone, args.ttl),
            ),
        })
        .collect();
    let Some(dir) = &args.out else {
        let texts: Vec<&str> = files.iter().map(|(_, text)| text.as_str()).collect();
        out!("{}", texts.join("\n"))?;
        return Ok(Outcome::Clean);
    };
    for ((name, text), zone) in files.iter().zip(&zones) {
        let path = dir.join(name);
        say_dropped(&path, zone, args.format, &site.source);
        crate::unit_dir::write_atomic(&path, text.as_bytes())
            .into_diagnostic()
            .wrap_err_with(|| format!("writing {}", crate::diagnostic::shown_path(&path)))?;
        outln!("{}", crate::diagnostic::shown_path(&path))?;
    }
    Ok(Outcome::Clean)
}

/// Says which names the file at `path`, as an earlier `--out` wrote it,
/// had records for that `zone` has none for now: DNS tools that read the
/// folder delete them, while an instance taken out of the file may still
/// serve them (plan and apply name it, left alone, until it is destroyed).
fn say_dropped(path: &std::path::Path, zone: &dns::Zone, format: Format, source: &str) {
    let Ok(old) = std::fs::read_to_string(path) else {
        return;
    };
    let (header, had) = match format {
        Format::Bind => (bind::header(&zone.origin), bind::names(&old)),
        Format::Octodns => (octodns::header(&zone.origin), octodns::names(&old)),
    };
    if old.lines().next() != Some(header.as_str()) {
        return;
    }
    let dropped: Vec<String> = (had.iter())
        .filter(|name| !zone.records.iter().any(|r| &r.name == *name))
        .map(|name| match name.as_str() {
            "" => zone.origin.clone(),
            name => format!("{name}.{}", zone.origin),
        })
        .collect();
    if !dropped.is_empty() {
        crate::say!(
            "zone {}: drops the records of {}: no route of {source} names {} any more",
            zone.origin,
            dropped.join(", "),
            if dropped.len() == 1 { "it" } else { "them" }
        );
    }
}

/// The zones whose files in `dir` an earlier `--out` of this format wrote:
/// named as it names them, and starting with its first line.
fn written_zones(dir: &std::path::Path, format: Format) -> Result<Vec<String>> {
    let listing = std::fs::read_dir(dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading {}", crate::diagnostic::shown_path(dir)))?;
    let mut origins = Vec::new();
    for entry in listing {
        let path = entry.into_diagnostic()?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let (origin, header) = match format {
            Format::Bind => {
                let Some(origin) = name.strip_suffix(".zone") else {
                    continue;
                };
                (origin, bind::header(origin))
            }
            Format::Octodns => {
                let Some(origin) = name.strip_suffix(".yaml") else {
                    continue;
                };
                (origin, octodns::header(origin))
            }
        };
        // Its name goes into the zone's lines (`$ORIGIN`, the header): one
        // that is no DNS name (`x.example $INCLUDE y`, a `;`) was never
        // written by unitgen, and is left alone.
        if dns::check_name(origin).is_err() {
            continue;
        }
        // Not ours (or not readable as text): left alone.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.lines().next() == Some(header.as_str()) {
            origins.push(origin.to_string());
        }
    }
    Ok(origins)
}

fn check(args: &DnsArgs, needs: &[dns::Need]) -> Result<Outcome> {
    let server = match args.resolver {
        Some(server) => server,
        None => resolve::system_resolver()
            .into_diagnostic()
            .wrap_err("finding the system's resolver (pass --resolver IP:PORT)")?,
    };
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .into_diagnostic()
        .wrap_err("--timeout")?;
    let wrong = check::check(needs, server, timeout);
    for need in needs {
        match wrong.iter().find(|w| w.domain == need.domain) {
            Some(w) => showln!("wrong  {} {}", w.domain, w.why)?,
            None => showln!("ok     {} ({})", need.domain, need.hosts.join(", "))?,
        }
    }
    if wrong.is_empty() {
        crate::say!(
            "{} point at their hosts (asked {server})",
            crate::progress::count(needs.len(), "domain")
        );
        return Ok(Outcome::Clean);
    }
    Err(miette::miette!(
        help = "set the records `unitgen dns` prints at your DNS provider; changes can take the old records' TTL to be seen",
        "{} of {} do not point at their host (asked {server})",
        wrong.len(),
        crate::progress::count(needs.len(), "domain"),
    ))
}

/// How long `plan` waits for DNS answers: it warns, it must not hang.
const PLAN_TIMEOUT: Duration = Duration::from_secs(1);

/// The resolver `plan` asks instead of the system's, as `IP:PORT`.
pub const RESOLVER_VARIABLE: &str = "UNITGEN_DNS_RESOLVER";

/// `plan`'s DNS check of one instance with routes: each of its domains that
/// does not point at its host is a warning, never an error, and the check
/// takes at most about [`PLAN_TIMEOUT`]. Only a site file says where
/// domains point: with a single app's file nothing is checked. Where a site
/// cannot be checked (no resolver, a host with no address), it says why.
pub(super) fn warn_in_plan(file: &FileArgs, instance: &crate::model::Instance) {
    if instance.routes.is_empty() {
        return;
    }
    let name = format!("{}/{}", instance.app, instance.instance);
    let not_checked = |why: &str| crate::say!("dns: {name}: domains not checked: {why}");
    let Ok(site) = super::site_view(file) else {
        return not_checked("the file does not compile as a whole");
    };
    // A single app's file names no host: DNS is the site's business, and
    // plan says nothing of it (as documented) rather than a note each time.
    if site.hosts.is_empty() {
        return;
    }
    let needs = match dns::needs(&site) {
        Ok(needs) => needs,
        Err(problems) => {
            let first = problems.0.first().map_or("", |p| p.message.as_str());
            return not_checked(first);
        }
    };
    let mine: Vec<dns::Need> = needs
        .into_iter()
        .filter(|n| n.instances.contains(&name))
        .collect();
    let server = match std::env::var(RESOLVER_VARIABLE) {
        Ok(given) => match given.parse() {
            Ok(server) => server,
            Err(_) => {
                return not_checked(&format!(
                    "${RESOLVER_VARIABLE} is not IP:PORT: `{}`",
                    crate::diagnostic::shown(&given)
                ));
            }
        },
        Err(_) => match resolve::system_resolver() {
            Ok(server) => server,
            Err(e) => return not_checked(&format!("no resolver to ask: {e}")),
        },
    };
    for wrong in check::check(&mine, server, PLAN_TIMEOUT) {
        crate::say!(
            "warning: dns: {} {} (asked {server}; `unitgen dns` prints the records)",
            wrong.domain,
            wrong.why
        );
    }
}
