//! Records as octoDNS YAML: one file per zone, `<zone>.yaml`, as octoDNS's
//! `YamlProvider` reads them from its `directory` (keys in the order its
//! `enforce_order` checks).

use super::{Kind, Zone};

/// One zone's file. Every scalar is quoted: a name such as `123` or `on`
/// would otherwise be read as a number or a boolean.
pub fn zone(zone: &Zone, ttl: u32) -> String {
    let mut text = format!("{}\n---\n", header(&zone.origin));
    if zone.records.is_empty() {
        // An empty mapping: the zone has none of unitgen's records.
        text.push_str("{}\n");
    }
    let mut last_name = None;
    for set in &zone.records {
        if last_name != Some(&set.name) {
            text.push_str(&format!("'{}':\n", set.name));
            last_name = Some(&set.name);
        }
        text.push_str(&format!("- ttl: {ttl}\n  type: {}\n", set.kind.as_str()));
        match set.kind {
            // CNAME holds one value, under `value`.
            Kind::Cname => text.push_str(&format!("  value: '{}'\n", set.values[0])),
            Kind::A | Kind::Aaaa => {
                text.push_str("  values:\n");
                for value in &set.values {
                    text.push_str(&format!("  - '{value}'\n"));
                }
            }
        }
    }
    text
}

/// The first line of the file of zone `origin`: how `--out` knows the
/// files it wrote.
pub fn header(origin: &str) -> String {
    format!("# the records unitgen's routes need in zone {origin}.")
}

/// The record names (relative, empty at the apex) of a file [`zone`]
/// wrote: what an earlier `--out` put in DNS.
pub fn names(text: &str) -> Vec<String> {
    (text.lines())
        .filter_map(|line| line.strip_prefix('\'')?.strip_suffix("':"))
        .map(str::to_string)
        .collect()
}

/// The file name octoDNS's YamlProvider looks for: the zone's name with
/// its trailing dot, then `yaml`.
pub fn file_name(origin: &str) -> String {
    format!("{origin}.yaml")
}
