//! Printing timings, shared by the benches: minimum and median of repeated
//! runs (the minimum is the least disturbed by the rest of the machine, the
//! median the typical run), and a rate when the work has a size.

use std::time::Duration;

/// Prints one line: `name  min …  median …  [rate what/s]`.
/// `per`: how many things one run handles, and what they are.
pub fn report(name: &str, samples: &[Duration], per: Option<(usize, &str)>) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let (min, median) = (sorted[0], sorted[sorted.len() / 2]);
    let rate = per
        .map(|(count, what)| {
            format!(
                "  {:>10.0} {what}/s",
                count as f64 / median.as_secs_f64().max(1e-9)
            )
        })
        .unwrap_or_default();
    println!(
        "  {name:<44} min {:>10}  median {:>10}  (n={}){rate}",
        human(min),
        human(median),
        samples.len()
    );
}

fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else if secs >= 1e-3 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{:.1} µs", secs * 1e6)
    }
}
