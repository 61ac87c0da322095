//! Whether the world's DNS already points each routed domain at its host:
//! each domain is asked of one resolver, and what it answers is compared
//! with what the site needs.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::resolve::{self, Record, Reply};
use super::{Answer, Kind, Need};

/// A domain that does not point where the site needs it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrong {
    pub domain: String,
    /// What it should be and what it is, in words.
    pub why: String,
}

/// Asks `server` about every need, all at once, each question waiting at
/// most `timeout` (so the whole check takes at most about twice that). A
/// resolver that does not answer is reported for each domain, not an
/// error: the others are still checked.
pub fn check(needs: &[Need], server: SocketAddr, timeout: Duration) -> Vec<Wrong> {
    std::thread::scope(|scope| {
        let asked: Vec<_> = needs
            .iter()
            .map(|need| scope.spawn(move || compare(need, server, timeout)))
            .collect();
        needs
            .iter()
            .zip(asked)
            .filter_map(|(need, asked)| {
                let answer = asked
                    .join()
                    .unwrap_or_else(|_| Err("the check of this domain panicked".into()));
                answer.err().map(|why| Wrong {
                    domain: need.domain.clone(),
                    why,
                })
            })
            .collect()
    })
}

fn compare(need: &Need, server: SocketAddr, timeout: Duration) -> Result<(), String> {
    let hosts = need.hosts.join(", ");
    match &need.answer {
        Answer::Addresses(wanted) => {
            let mut found = BTreeSet::new();
            for kind in [Kind::A, Kind::Aaaa] {
                found.extend(addresses(ask(server, &need.domain, kind, timeout)?));
            }
            if &found == wanted {
                return Ok(());
            }
            Err(format!(
                "resolves to {}, not to {} ({hosts})",
                list(&found),
                list(wanted)
            ))
        }
        Answer::Alias(target) => {
            let records = ask(server, &need.domain, Kind::Cname, timeout)?;
            let cnames: Vec<&str> = records
                .iter()
                .filter_map(|r| match r {
                    Record::Cname { name, target } if name == &need.domain => Some(target.as_str()),
                    _ => None,
                })
                .collect();
            match cnames.as_slice() {
                [found] if found == target => Ok(()),
                [found] => Err(format!("is a CNAME to {found}, not to {target} ({hosts})")),
                _ => Err(format!(
                    "is no CNAME, but should be one to {target} ({hosts})"
                )),
            }
        }
    }
}

fn ask(
    server: SocketAddr,
    domain: &str,
    kind: Kind,
    timeout: Duration,
) -> Result<Vec<Record>, String> {
    match resolve::query(server, domain, kind, timeout) {
        Ok(Reply::Answer(records)) => Ok(records),
        Ok(Reply::NoSuchName) => Err("does not exist (NXDOMAIN)".into()),
        Ok(Reply::Failed(code)) => Err(format!(
            "cannot be resolved: {server} answered {kind} with response code {code}",
            kind = kind.as_str()
        )),
        Err(e) => Err(format!("cannot be resolved: {e}")),
    }
}

/// The addresses a resolver gave, whether directly or at the end of a
/// CNAME chain.
fn addresses(records: Vec<Record>) -> impl Iterator<Item = IpAddr> {
    records.into_iter().filter_map(|r| match r {
        Record::Address { address, .. } => Some(address),
        Record::Cname { .. } => None,
    })
}

fn list(addresses: &BTreeSet<IpAddr>) -> String {
    if addresses.is_empty() {
        return "no address".into();
    }
    let all: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
    all.join(", ")
}
