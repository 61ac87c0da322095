//! Any text as a compose file: `unitgen import` does not panic, and what it
//! writes parses, and compiles to units systemd reads as intended.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitgen::template::{self, Template};

mod check;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = std::sync::Arc::new(miette::NamedSource::new(
        "docker-compose.yml",
        text.to_string(),
    ));
    let options = unitgen::import::Options {
        app: Some("imp".into()),
        instance: "default".into(),
        dir: "/srv/imp".into(),
        home: None,
        dotenv: Vec::new(),
        profiles: Vec::new(),
        read: |_| Err(std::io::ErrorKind::NotFound.into()),
    };
    let Ok(imported) = unitgen::import::import(&file, &options) else {
        return;
    };
    let app = template::parse(std::path::Path::new("unitgen.yaml"), imported.yaml.clone())
        .unwrap_or_else(|e| {
            panic!(
                "import wrote a template that does not parse: {e:?}\n{}",
                imported.yaml
            )
        });
    check::render_every_instance(&Template {
        app,
        deployments: None,
    });
});
