//! Every example under `examples/` validates, and renders for each instance
//! it declares, as a user would run them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The file a user passes for each example: its deployments file if it is
/// split, else its template.
fn example_files() -> Vec<PathBuf> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples)
        .unwrap()
        .filter_map(|entry| {
            let dir = entry.unwrap().path();
            ["deployments.yaml", "unitgen.yaml"]
                .iter()
                .map(|name| dir.join(name))
                .find(|file| file.exists())
        })
        .collect();
    files.sort();
    files
}

fn unitgen(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .output()
        .expect("unitgen runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_example_validates_and_renders_each_instance() {
    let files = example_files();
    assert!(files.len() >= 3, "examples: {files:?}");
    for file in &files {
        let path = file.to_str().unwrap();
        let (ok, _, stderr) = unitgen(&["validate", "-f", path]);
        assert!(ok, "validate {path}: {stderr}");
        let instances = unitgen::template::Template::load(file)
            .unwrap()
            .instance_names();
        assert!(instances.len() >= 2, "{path} declares {instances:?}");
        for instance in &instances {
            let (ok, stdout, stderr) = unitgen(&["render", instance, "-f", path]);
            assert!(ok, "render {instance} of {path}: {stderr}");
            assert!(stdout.contains("-network.service <=="), "{stdout}");
        }
    }
}
