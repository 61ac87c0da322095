//! Records as BIND zone-file lines: the lines to put inside each zone's
//! file (which keeps its own SOA and NS records), after an `$ORIGIN` line.

use super::Zone;

/// One zone's lines, names relative to the origin (`@` at the apex), each
/// record with its TTL, so they read the same in any zone file.
pub fn zone(zone: &Zone, ttl: u32) -> String {
    let name = |n: &str| {
        if n.is_empty() {
            "@".to_string()
        } else {
            n.to_string()
        }
    };
    let width = zone
        .records
        .iter()
        .map(|r| name(&r.name).len())
        .max()
        .unwrap_or(1);
    let mut text = format!("{}\n$ORIGIN {}.\n", header(&zone.origin), zone.origin);
    for set in &zone.records {
        for value in &set.values {
            text.push_str(&format!(
                "{:width$} {ttl} IN {:5} {value}\n",
                name(&set.name),
                set.kind.as_str(),
            ));
        }
    }
    text
}

/// The first line of zone `origin`'s lines: how `--out` knows the files
/// it wrote.
pub fn header(origin: &str) -> String {
    format!("; the records unitgen's routes need in zone {origin}")
}

/// The record names (relative, empty at the apex) of lines [`zone`]
/// wrote: what an earlier `--out` put in DNS.
pub fn names(text: &str) -> Vec<String> {
    let records = text.lines().skip(2);
    let mut names: Vec<String> = (records.filter_map(|line| line.split_whitespace().next()))
        .map(|name| if name == "@" { "" } else { name }.to_string())
        .collect();
    names.dedup();
    names
}

/// The file name `--out` writes a zone's lines to.
pub fn file_name(origin: &str) -> String {
    format!("{origin}.zone")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Kind, RecordSet};

    #[test]
    fn lines_are_aligned_and_absolute_names_end_with_a_dot() {
        let zone = Zone {
            origin: "example.com".into(),
            records: vec![
                RecordSet {
                    name: String::new(),
                    kind: Kind::A,
                    values: vec!["203.0.113.10".into(), "203.0.113.11".into()],
                },
                RecordSet {
                    name: "staging".into(),
                    kind: Kind::Cname,
                    values: vec!["edge.provider.example.".into()],
                },
            ],
        };
        assert_eq!(
            super::zone(&zone, 300),
            "; the records unitgen's routes need in zone example.com\n\
             $ORIGIN example.com.\n\
             @       300 IN A     203.0.113.10\n\
             @       300 IN A     203.0.113.11\n\
             staging 300 IN CNAME edge.provider.example.\n"
        );
    }
}
