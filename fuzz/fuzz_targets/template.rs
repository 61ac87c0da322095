//! Any text as a template file (with its instances), and with it what else a
//! user gives: a deployments file that names it, `--set` values and an
//! instance name from the command line. No panic; every unit rendered is
//! read by systemd as intended and says whose it is (check.rs); a refusal
//! is a report with no character a terminal would obey.
//!
//! The input is split at NUL bytes: the template; then, if present, a
//! deployments file (`template: ./app.yaml` is put first in it), `--set`
//! lines (`NAME=VALUE`), and an instance name as given on the command line.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use unitgen::compile::{Overrides, compile};
use unitgen::template::{self, Template};

mod check;

/// A folder of this process's for the two files of a split template.
fn folder() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("unitgen-fuzz-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let app_text = parts.next().unwrap_or_default();
    let deployments = parts.next();
    let set: Vec<(String, String)> = (parts.next().unwrap_or_default().lines())
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let given = parts.next();
    let template = match deployments {
        None => match template::parse(Path::new("unitgen.yaml"), app_text.to_string()) {
            Ok(app) => Template {
                app,
                deployments: None,
            },
            Err(problems) => return check::check_report(&problems),
        },
        Some(deployments) => {
            std::fs::write(folder().join("app.yaml"), app_text).unwrap();
            let path = folder().join("unitgen.yaml");
            std::fs::write(&path, format!("template: ./app.yaml\n{deployments}")).unwrap();
            match Template::load(&path) {
                Ok(template) => template,
                Err(problems) => return check::check_report(&problems),
            }
        }
    };
    check::render_every_instance(&template);
    let overrides = Overrides {
        set,
        allow_undeclared: true,
        ..Overrides::default()
    };
    let names = template.instance_names();
    for instance in names.iter().map(String::as_str).chain(given) {
        match compile(&template, instance, &overrides) {
            Ok(model) => check::render_every_flavour(&model),
            Err(problems) => check::check_report(&problems),
        }
    }
});
