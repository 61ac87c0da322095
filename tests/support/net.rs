//! Loopback ports and a minimal HTTP client, std only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A loopback TCP port that was free a moment ago (bound, read, released),
/// and that no other test on this machine was given in the last half hour.
/// Test binaries run side by side, and the kernel may hand a port one of
/// them just released to another's `bind(0)`: two tests then publish
/// containers on the same port, and the second start fails ("port is
/// already allocated"; seen once in CI). Ports given are marked by a file
/// each under the temporary folder, taken with `create_new`.
pub fn free_port() -> u16 {
    let given = std::env::temp_dir().join("unitgen-test-ports");
    std::fs::create_dir_all(&given).unwrap_or_else(|e| panic!("creating {}: {e}", given.display()));
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("finding a free loopback port: {e}"));
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
