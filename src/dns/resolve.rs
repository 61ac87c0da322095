//! A small stub resolver: one question (A, AAAA or CNAME) over UDP to one
//! recursive resolver, and the answer's records. It is all `dns --check`
//! needs; it reads CNAMEs too, which the system's getaddrinfo hides.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::Kind;

/// One record of an answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Address { name: String, address: IpAddr },
    Cname { name: String, target: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The answer section (may be empty: the name exists, with no record
    /// of this type).
    Answer(Vec<Record>),
    /// NXDOMAIN: no such name.
    NoSuchName,
    /// Another response code (SERVFAIL, REFUSED, ...).
    Failed(u8),
}

/// The resolver the system uses: the first `nameserver` of
/// /etc/resolv.conf.
pub fn system_resolver() -> io::Result<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf")?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .ok_or_else(|| io::Error::other("/etc/resolv.conf names no nameserver"))
}

/// Asks `server` for `name`'s records of type `kind` (recursion desired),
/// waiting at most `timeout` in all (one resend halfway).
pub fn query(server: SocketAddr, name: &str, kind: Kind, timeout: Duration) -> io::Result<Reply> {
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(server)?;
    let id = query_id();
    let question = question(id, name, kind)?;
    let deadline = Instant::now() + timeout;
    let mut resend = Instant::now() + timeout / 2;
    socket.send(&question)?;
    let mut buffer = [0u8; 4096];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{server} did not answer within {timeout:?}"),
            ));
        }
        if now >= resend {
            socket.send(&question)?;
            resend = deadline;
        }
        socket.set_read_timeout(Some(resend.min(deadline) - now))?;
        let len = match socket.recv(&mut buffer) {
            Ok(len) => len,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let reply = &buffer[..len];
        // Not ours (a late answer to another socket's query): keep waiting.
        if reply.len() < 12 || reply[..2] != id.to_be_bytes() || reply[2] & 0x80 == 0 {
            continue;
        }
        return parse(reply).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{server} sent a malformed answer"),
            )
        });
    }
}

fn query_id() -> u16 {
    let mut bytes = [0u8; 2];
    // Only used to match the answer to the question; a clock fallback
    // is good enough if the system has no randomness.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = (std::process::id() as u16).to_be_bytes();
    }
    u16::from_be_bytes(bytes)
}

fn type_code(kind: Kind) -> u16 {
    match kind {
        Kind::A => 1,
        Kind::Cname => 5,
        Kind::Aaaa => 28,
    }
}

fn question(id: u16, name: &str, kind: Kind) -> io::Result<Vec<u8>> {
    let mut message = Vec::with_capacity(64);
    message.extend(id.to_be_bytes());
    // Flags: a standard query with recursion desired; one question.
    message.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{name}` is not a DNS name"),
            ));
        }
        message.push(label.len() as u8);
        message.extend(label.as_bytes());
    }
    message.push(0);
    message.extend(type_code(kind).to_be_bytes());
    message.extend(1u16.to_be_bytes()); // class IN
    Ok(message)
}

fn parse(message: &[u8]) -> Option<Reply> {
    let code = message[3] & 0x0f;
    match code {
        0 => {}
        3 => return Some(Reply::NoSuchName),
        other => return Some(Reply::Failed(other)),
    }
    let questions = u16::from_be_bytes([message[4], message[5]]);
    let answers = u16::from_be_bytes([message[6], message[7]]);
    let mut at = 12;
    for _ in 0..questions {
        at = read_name(message, at)?.1 + 4;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        let (name, next) = read_name(message, at)?;
        let fixed = message.get(next..next + 10)?;
        let kind = u16::from_be_bytes([fixed[0], fixed[1]]);
        let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let data_at = next + 10;
        let data = message.get(data_at..data_at + len)?;
        match kind {
            1 => records.push(Record::Address {
                name,
                address: IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?)),
            }),
            28 => records.push(Record::Address {
                name,
                address: IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?)),
            }),
            5 => records.push(Record::Cname {
                name,
                target: read_name(message, data_at)?.0,
            }),
            _ => {}
        }
        at = data_at + len;
    }
    Some(Reply::Answer(records))
}

/// A (possibly compressed) name at `at`: the name in lower case without
/// the trailing dot, and where the bytes after it start.
fn read_name(message: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    // Each pointer must go backwards, so a loop of pointers ends.
    let mut limit = at;
    loop {
        let len = *message.get(at)?;
        match len {
            0 => {
                return Some((labels.join("."), end.unwrap_or(at + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let target = usize::from(u16::from_be_bytes([l & 0x3f, *message.get(at + 1)?]));
                end.get_or_insert(at + 2);
                if target >= limit {
                    return None;
                }
                limit = target;
                at = target;
            }
            l if l < 64 => {
                let label = message.get(at + 1..at + 1 + usize::from(l))?;
                labels.push(presentation(label));
                at += 1 + usize::from(l);
            }
            _ => return None,
        }
    }
}

/// A label as `dig` shows it, lower case: a dot or backslash in it
/// escaped, a byte that is not printable ASCII as `\DDD`. A label holding
/// a dot (`edge.provider` in one label) is another name than the labels
/// `edge` and `provider`: joined raw it read the same, and `dns --check`
/// said "ok" of a CNAME to a name nobody asked for.
fn presentation(label: &[u8]) -> String {
    let mut out = String::with_capacity(label.len());
    for &byte in label {
        match byte {
            b'.' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            b'!'..=b'~' => out.push(char::from(byte.to_ascii_lowercase())),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_with_a_compressed_cname_and_address_is_read() {
        let mut message = question(7, "www.Example.com", Kind::A).unwrap();
        message[2] = 0x81; // a response
        message[3] = 0x80;
        message[7] = 2; // two answers
        // www.example.com CNAME edge.example.com (pointer to "example.com" at 16)
        message.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7, 4]);
        message.extend(b"edge");
        message.extend([0xc0, 16]);
        let edge = message.len() - 7;
        // edge.example.com A 203.0.113.10
        message.extend([
            0xc0, edge as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 10,
        ]);
        assert_eq!(
            parse(&message),
            Some(Reply::Answer(vec![
                Record::Cname {
                    name: "www.example.com".into(),
                    target: "edge.example.com".into()
                },
                Record::Address {
                    name: "edge.example.com".into(),
                    address: "203.0.113.10".parse().unwrap()
                },
            ]))
        );
    }

    /// Found in hostile values round 6: a CNAME to the one label
    /// `edge.example` under `com` read as `edge.example.com`, the name the
    /// site wanted, and control bytes in a label came through raw.
    #[test]
    fn a_label_holding_a_dot_or_a_control_is_not_another_name() {
        let mut message = question(7, "www.example.com", Kind::Cname).unwrap();
        message[2] = 0x81;
        message[3] = 0x80;
        message[7] = 1;
        message.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 22, 12]);
        message.extend(b"Edge.example");
        message.extend([3]);
        message.extend(b"com");
        message.extend([3, 0x1b, b'\\', b' ', 0]);
        let Some(Reply::Answer(records)) = parse(&message) else {
            panic!("not read")
        };
        assert_eq!(
            records,
            [Record::Cname {
                name: "www.example.com".into(),
                target: "edge\\.example.com.\\027\\\\\\032".into()
            }]
        );
    }

    #[test]
    fn nxdomain_and_failures_are_told_apart() {
        let mut message = question(7, "example.com", Kind::A).unwrap();
        message[3] = 3;
        assert_eq!(parse(&message), Some(Reply::NoSuchName));
        message[3] = 2;
        assert_eq!(parse(&message), Some(Reply::Failed(2)));
    }

    #[test]
    fn a_pointer_loop_is_malformed_not_endless() {
        let mut message = question(7, "example.com", Kind::A).unwrap();
        message[7] = 1;
        let at = message.len();
        message.extend([0xc0, at as u8]);
        message.extend([0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse(&message), None);
    }

    /// A real answer with `edits` (offset, byte) applied and `tail` added.
    fn mangled(edits: &[(usize, u8)], tail: &[u8]) -> Vec<u8> {
        let mut message = question(7, "www.example.com", Kind::Cname).unwrap();
        message[2] = 0x81;
        message[3] = 0x80;
        message[7] = 2;
        message.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7, 4]);
        message.extend(b"edge");
        message.extend([
            0xc0, 16, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1,
        ]);
        for &(at, byte) in edits {
            let len = message.len();
            message[at % len] = byte;
        }
        message.extend(tail);
        message
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// Whatever a resolver answers (`dns --check` prints the names it
        /// gives): no panic, and every name read is as `dig` shows it,
        /// printable ASCII only, so that no answer acts on the terminal or
        /// passes for another name.
        #[test]
        fn any_answer_is_read_without_panic_into_printable_names(
            edits in proptest::collection::vec((0..80usize, proptest::prelude::any::<u8>()), 0..6),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let reply = parse(&mangled(&edits, &tail));
            if edits.is_empty() {
                // Unchanged, it is a sound answer: the CNAME and the address.
                let read = matches!(&reply, Some(Reply::Answer(r)) if r.len() == 2);
                proptest::prop_assert!(read, "{reply:?}");
            }
            if let Some(Reply::Answer(records)) = reply {
                for record in records {
                    let names = match &record {
                        Record::Address { name, .. } => vec![name],
                        Record::Cname { name, target } => vec![name, target],
                    };
                    for name in names {
                        proptest::prop_assert!(
                            name.bytes().all(|b| b.is_ascii_graphic()),
                            "{name:?}"
                        );
                    }
                }
            }
        }
    }
}
