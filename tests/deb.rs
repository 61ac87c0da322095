//! The Debian package, installed for real on this machine with apt-get:
//! the binary runs and renders, man finds the page, the completions are
//! where bash, zsh and fish look.

#[path = "support/lib.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_debian_package_installs_a_working_unitgen_with_its_manual_and_completions() {
    // The machine-wide lock (this test installs a package) and cargo-deb.
    support::docker::ensure_testbed();
    let build = Command::new("scripts/deb")
        // Faster compression: packing the debug binary at cargo-deb's
        // default level took about 35 s of this test, with --fast 9 s.
        .arg("--fast")
        // `cargo test` holds the build folder: package the binary it built.
        .env("PROFILE", "dev")
        .env("NO_BUILD", "1")
        .output()
        .unwrap();
    assert!(build.status.success(), "scripts/deb: {}", text(&build));
    let version = env!("CARGO_PKG_VERSION");
    let deb = std::fs::read_dir("target/debian")
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("unitgen_{version}-")) && name.ends_with(".deb")
        })
        .expect("scripts/deb wrote target/debian/unitgen_<version>-1_<arch>.deb");

    let was_installed = run("dpkg-query", &["-W", "-f=${Status}", "unitgen"]);
    let was_installed = text(&was_installed).contains("ok installed");
    let install = run(
        "apt-get",
        &[
            "install",
            "-y",
            "--reinstall",
            deb.canonicalize().unwrap().to_str().unwrap(),
        ],
    );
    assert!(
        install.status.success(),
        "apt-get install: {}",
        text(&install)
    );

    let shown = run("/usr/bin/unitgen", &["--version"]);
    assert_eq!(text(&shown).trim(), format!("unitgen {version}"));
    let rendered = run(
        "/usr/bin/unitgen",
        &["render", "live", "-f", "examples/hello/unitgen.yaml"],
    );
    assert!(rendered.status.success(), "{}", text(&rendered));
    assert!(text(&rendered).contains("# ==> hello-live-api.service <=="));
    let page = run("man", &["-w", "unitgen-logs"]);
    assert_eq!(text(&page).trim(), "/usr/share/man/man1/unitgen-logs.1.gz");
    for completion in [
        "/usr/share/bash-completion/completions/unitgen",
        "/usr/share/zsh/vendor-completions/_unitgen",
        "/usr/share/fish/vendor_completions.d/unitgen.fish",
    ] {
        assert!(Path::new(completion).exists(), "{completion}");
    }

    if !was_installed {
        let remove = run("apt-get", &["remove", "-y", "--purge", "unitgen"]);
        assert!(remove.status.success(), "{}", text(&remove));
    }
}
