//! Any text as a template file (with its instances): no panic, and every
//! unit rendered from it is read by systemd as intended (check.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitgen::template::{self, Template};

mod check;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(app) = template::parse(std::path::Path::new("unitgen.yaml"), text.to_string()) else {
        return;
    };
    check::render_every_instance(&Template {
        app,
        deployments: None,
    });
});
