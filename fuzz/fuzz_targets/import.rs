//! Any text as a compose file, and after a NUL byte, as the `.env` beside it
//! (whose values compose's `${VAR}` take): `unitgen import` does not panic,
//! and what it writes parses, holds no character a terminal obeys, and
//! compiles to units systemd reads as intended; a refusal is a report with
//! no character a terminal obeys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitgen::template::{self, Template};

mod check;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (compose, dotenv) = text.split_once('\0').unwrap_or((text, ""));
    let file = std::sync::Arc::new(miette::NamedSource::new(
        "docker-compose.yml",
        compose.to_string(),
    ));
    let options = unitgen::import::Options {
        app: Some("imp".into()),
        instance: "default".into(),
        dir: "/srv/imp".into(),
        home: None,
        dotenv: unitgen::import::parse_dotenv(dotenv),
        beside_notes: unitgen::import::dotenv_warnings(dotenv, ".env"),
        profiles: Vec::new(),
        read: |_| Err(std::io::ErrorKind::NotFound.into()),
    };
    let imported = match unitgen::import::import(&file, &options) {
        Ok(imported) => imported,
        Err(problems) => {
            check::check_report(&problems);
            // Each refusal is one line, its values shown with `\n`: a line
            // feed of the compose file's would start a line of its own.
            for problem in &problems.0 {
                assert!(
                    !problem.message.contains('\n'),
                    "a refusal of several lines: {:?}",
                    problem.message
                );
            }
            return;
        }
    };
    check::check_shown(&imported.yaml);
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
