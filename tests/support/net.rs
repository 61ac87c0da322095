//! Loopback ports and a minimal HTTP client, std only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A loopback TCP port that was free a moment ago (bound, read, released),
/// and that no other test on this machine was given in the last half hour.
///
/// Ports come from below the kernel's ephemeral range (Linux's default is
/// 32768-60999), never from `bind(0)`: the kernel and the engine hand out
/// ephemeral ports to anyone (a container published without a host port,
/// any client's outgoing connection, another checkout's processes), so a
/// port found by `bind(0)` could be taken again before the test's etcd,
/// registry or container bound it ("address already in use", "port is
/// already allocated"; seen in CI). Below that range only explicit binds
/// compete: test binaries running side by side, which mark each port
/// given by a file under the temporary folder, taken with `create_new`,
/// and scripts/fleet-live's fixed ports, which lie outside the range.
pub fn free_port() -> u16 {
    const FIRST: u16 = 10_000;
    const LAST: u16 = 23_999;
    let given = std::env::temp_dir().join("unitgen-test-ports");
    std::fs::create_dir_all(&given).unwrap_or_else(|e| panic!("creating {}: {e}", given.display()));
    // Each process starts at its own place so side-by-side binaries
    // rarely meet on the same marks.
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos() as u64);
    let span = u64::from(LAST - FIRST) + 1;
    for step in 0..span {
        let port = FIRST + ((seed.wrapping_mul(2_654_435_761) + step) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mark = given.join(port.to_string());
        // A mark older than any test run is from an earlier run.
        let stale = std::fs::metadata(&mark)
            .and_then(|meta| meta.modified())
            .is_ok_and(|at| {
                at.elapsed()
                    .is_ok_and(|age| age > Duration::from_secs(30 * 60))
            });
        if stale {
            let _ = std::fs::remove_file(&mark);
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&mark)
        {
            Ok(_) => return port,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("marking port {port} given in {}: {e}", given.display()),
        }
    }
    panic!(
        "no free loopback port left in {FIRST}-{LAST} (marks in {})",
        given.display()
    )
}

/// `GET path` on 127.0.0.1:`port`; the status code and body, or `None` if
/// nothing answered with HTTP.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}
