//! A throw-away ACME CA: Debian's `pebble`, with `pebble-challtestsrv` as
//! its DNS (every name resolves to 127.0.0.1), on free loopback ports. It
//! validates HTTP-01 challenges on `http_port` of the name: the router's
//! HTTP entry point must listen there.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::net::free_port;
use super::{docker, tempdir, wait_for};

pub struct Pebble {
    pebble: Child,
    dns: Child,
    dir: tempfile::TempDir,
    listen_port: u16,
    management_port: u16,
    dns_management: u16,
}

impl Pebble {
    /// Starts the CA and its DNS; waits until the CA's directory answers.
    pub fn start(http_port: u16) -> Pebble {
        docker::ensure_testbed();
        let dir = tempdir("pebble-");
        let path = |name: &str| dir.path().join(name);
        // Pebble's own HTTPS certificate: the router trusts it through
        // LEGO_CA_CERTIFICATES.
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(path("key.pem"))
            .arg("-out")
            .arg(path("cert.pem"))
            .output()
            .unwrap_or_else(|e| panic!("running openssl: {e}"));
        assert!(
            made.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let (listen_port, management_port, dns_port, dns_management) =
            (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": path("cert.pem"),
            "privateKey": path("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(path("pebble.json"), config.to_string()).unwrap();
        let log = |name: &str| {
            let file = File::create(path(name)).unwrap();
            (Stdio::from(file.try_clone().unwrap()), Stdio::from(file))
        };
        let (dns_out, dns_err) = log("challtestsrv.log");
        let dns = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .stdin(Stdio::null())
            .stdout(dns_out)
            .stderr(dns_err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting pebble-challtestsrv: {e}"));
        let (out, err) = log("pebble.log");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(path("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            // No random waits before validating: tests poll.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting pebble: {e}"));
        let pebble = Pebble {
            pebble,
            dns,
            dir,
            listen_port,
            management_port,
            dns_management,
        };
        let up = wait_for(Duration::from_secs(20), || {
            pebble.curl_ok(&pebble.directory_url()).then_some(())
        });
        assert!(up.is_some(), "pebble did not answer:\n{}", pebble.log());
        pebble
    }

    /// Makes pebble's DNS answer `address` for `name` (every other name
    /// is 127.0.0.1): its HTTP-01 check then goes there.
    pub fn resolve(&self, name: &str, address: &str) {
        let body = serde_json::json!({"host": format!("{name}."), "addresses": [address]});
        let out = Command::new("curl")
            .args(["-sSf", "-X", "POST", "-d", &body.to_string()])
            .arg(format!("http://127.0.0.1:{}/add-a", self.dns_management))
            .output()
            .unwrap_or_else(|e| panic!("running curl: {e}"));
        assert!(
            out.status.success(),
            "pebble-challtestsrv add-a: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The ACME directory URL (the router's `acme.ca_server`).
    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.listen_port)
    }

    /// Pebble's own HTTPS certificate (the router's `acme.ca_certificate`).
    pub fn tls_certificate(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The root that issues pebble's certificates (new on every start),
    /// written to a file, for verifying what the router serves.
    pub fn issuing_root(&self) -> PathBuf {
        let path = self.dir.path().join("root.pem");
        let out = Command::new("curl")
            .args(["-sSf", "--cacert"])
            .arg(self.tls_certificate())
            .arg(format!(
                "https://127.0.0.1:{}/roots/0",
                self.management_port
            ))
            .output()
            .unwrap_or_else(|e| panic!("running curl: {e}"));
        assert!(
            out.status.success(),
            "fetching pebble's root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&path, out.stdout).unwrap();
        path
    }

    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- pebble ---\n{}\n--- challtestsrv ---\n{}",
            read("pebble.log"),
            read("challtestsrv.log")
        )
    }

    fn curl_ok(&self, url: &str) -> bool {
        Command::new("curl")
            .args(["-sSf", "-o", "/dev/null", "--cacert"])
            .arg(self.tls_certificate())
            .arg(url)
            // Polled until pebble listens: its refusals meanwhile are no news.
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in [&mut self.pebble, &mut self.dns] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
