//! How fast `unitgen render` is on a big template: 1,000 services, 10
//! instances, so 10,000 service units. Measures parse + compile + render end
//! to end through the library, then each phase alone, then how each phase
//! grows with the number of services (it must grow linearly).
//!
//! Run with `cargo bench --bench render`. Reports timings; never fails on them.

#[path = "support/report.rs"]
mod report;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use unitgen::compile::{Overrides, compile};
use unitgen::model::Instance;
use unitgen::render::Renderer;
use unitgen::template::Template;

use report::report;

const SERVICES: usize = 1_000;
const INSTANCES: usize = 10;
/// Services per `depends_on` chain: web → api → ... → db, declared front
/// first, as compose files usually are (each depends on one declared later).
const CHAIN: usize = 10;

fn main() {
    let dir = tempfile::Builder::new()
        .prefix("bench-render-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a temporary directory");
    let file = dir.path().join("unitgen.yaml");
    let yaml = template_yaml(SERVICES, INSTANCES);
    std::fs::write(&file, &yaml).expect("writing the template");
    let names = load(&file).instance_names();
    assert_eq!(names.len(), INSTANCES);
    let units = SERVICES * INSTANCES;
    println!(
        "template: {SERVICES} services, {INSTANCES} instances, {} KiB of YAML; {units} service units",
        yaml.len() / 1024
    );

    let (warmup, reps) = (2, 10);
    let per_unit = Some((units, "units"));
    println!("\nend to end (parse once, then compile and render every instance):");
    bench("parse + compile + render", warmup, reps, per_unit, || {
        let template = load(&file);
        let renderer = Renderer::default();
        let mut count = 0;
        for name in &names {
            count += renderer.render(&compile_ok(&template, name)).len();
        }
        black_box(count)
    });

    println!("\nphases:");
    let per_service = Some((SERVICES, "services"));
    bench("parse (Template::load)", warmup, reps, per_service, || {
        load(&file)
    });
    let template = load(&file);
    bench(
        "compile (10 instances)",
        warmup,
        reps,
        per_unit,
        || -> Vec<Instance> {
            names
                .iter()
                .map(|name| compile_ok(&template, name))
                .collect()
        },
    );
    let instances: Vec<Instance> = names
        .iter()
        .map(|name| compile_ok(&template, name))
        .collect();
    bench("render (10 instances)", warmup, reps, per_unit, || {
        let renderer = Renderer::default();
        instances
            .iter()
            .map(|i| renderer.render(i).len())
            .sum::<usize>()
    });

    // Linear phases take the same time per service at every size; a
    // quadratic one shows as a per-service time growing with the size.
    println!("\nscaling (one instance; time per service should stay flat):");
    for services in [250, 1_000, 4_000] {
        let per = Some((services, "services"));
        let file = dir.path().join(format!("scale-{services}.yaml"));
        std::fs::write(&file, template_yaml(services, 1)).expect("writing the template");
        let template = load(&file);
        let instance = compile_ok(&template, "i0");
        let renderer = Renderer::default();
        bench(&format!("parse, {services} services"), 1, 5, per, || {
            load(&file)
        });
        bench(&format!("compile, {services} services"), 1, 5, per, || {
            compile_ok(&template, "i0")
        });
        bench(&format!("render, {services} services"), 1, 5, per, || {
            renderer.render(&instance)
        });
    }
}

/// Runs `f` `warmup` times unmeasured, then `reps` times measured, and
/// reports the timings.
fn bench<T>(
    name: &str,
    warmup: usize,
    reps: usize,
    per: Option<(usize, &str)>,
    mut f: impl FnMut() -> T,
) {
    for _ in 0..warmup {
        black_box(f());
    }
    let samples: Vec<Duration> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    report(name, &samples, per);
}

fn load(file: &Path) -> Template {
    Template::load(file).unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}

fn compile_ok(template: &Template, instance: &str) -> Instance {
    compile(template, instance, &Overrides::default())
        .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}

/// A realistic big template: every service has an image whose tag is an
/// instance value, a few environment variables (one templated), a named
/// volume; one in five publishes a port; services form `depends_on` chains.
fn template_yaml(services: usize, instances: usize) -> String {
    let mut y = String::from("app: big\nvolumes:\n  shared: {}\nservices:\n");
    for i in 0..services {
        let kind = ["web", "api", "worker", "cache", "db"][i % 5];
        y.push_str(&format!(
            "  svc{i:04}:\n\
             \x20   image: \"registry.example.com/team/{kind}:{{{{ version }}}}\"\n\
             \x20   command: [\"/usr/local/bin/{kind}\", \"--listen\", \"0.0.0.0:8080\", \"--id\", \"{i}\"]\n\
             \x20   environment:\n\
             \x20     LOG_LEVEL: info\n\
             \x20     SERVICE_ID: \"{i}\"\n\
             \x20     PUBLIC_URL: \"https://{{{{ domain }}}}/svc{i:04}\"\n\
             \x20     CACHE_URL: redis://cache:6379/0\n\
             \x20   volumes: [\"data{i:04}:/var/lib/{kind}\", \"shared:/shared:ro\"]\n\
             \x20   restart: always\n\
             \x20   init: true\n"
        ));
        if i.is_multiple_of(5) {
            y.push_str(&format!(
                "    ports: [\"127.0.0.1:{{{{ port_base + {n} }}}}:8080\"]\n",
                n = i / 5
            ));
        }
        if !(i + 1).is_multiple_of(CHAIN) && i + 1 < services {
            y.push_str(&format!("    depends_on: [svc{:04}]\n", i + 1));
        }
    }
    y.push_str("instances:\n");
    for n in 0..instances {
        y.push_str(&format!(
            "  i{n}: {{version: \"1.{n}.0\", domain: i{n}.example.com, port_base: {}}}\n",
            10_000 + n * 1_000
        ));
    }
    y
}
