//! A big template that `plain_yaml` does not take (block scalars, anchors,
//! …) read by serde-saphyr on two cores. Reading YAML is sequential, and
//! for a template of a thousand services it is half of `unitgen render`; but the
//! entries of `services:` are independent, so its second half can be read
//! by another thread while this one reads the rest.
//!
//! Each thread reads the whole text with the lines it does not own turned
//! into comments of the same length (`#` and spaces): every byte offset,
//! line and column it records is the file's own, so the two documents merge
//! into the one a single read would give. The text is split only where
//! that is sure to hold, and the halves are used only if both read without
//! a problem: any other file (or any mistake) is read once more, whole, so
//! that errors are exactly those of a single read.

use std::collections::HashSet;
use std::ops::Range;

use super::schema::Document;

/// Below this size a second thread costs more than it saves.
const MIN_BYTES: usize = 64 * 1024;

/// The document of `text` and whether a key was skipped (see
/// `unknown_keys::skipped`), read in two halves at once; None when the
/// text cannot be split safely or a half does not read, and the caller
/// reads it whole.
pub fn parse(text: &str) -> Option<(Document, bool)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || text.len() < MIN_BYTES {
        return None;
    }
    let split = Split::find(text)?;
    let (first, second) = split.texts(text);
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| read(&second));
        (read(&first), second.join())
    });
    let ((mut doc, first_skipped), (rest, second_skipped)) = (first?, second.ok()??);
    let services = &mut doc.services.as_mut()?.value;
    let rest = rest.services?.value;
    // The second half must start where it was cut, and a name in both
    // halves is a duplicate key, which the whole read reports.
    if rest.keys().next()?.value != split.first_name {
        return None;
    }
    let names: HashSet<&str> = services.keys().map(|k| k.value.as_str()).collect();
    if rest.keys().any(|k| names.contains(k.value.as_str())) {
        return None;
    }
    drop(names);
    services.extend(rest);
    Some((doc, first_skipped || second_skipped))
}

/// One half, with the reader's limits halved too: the two halves together
/// may use no more than one whole read may (a file over a limit fails a
/// half, and is then read whole and refused as always).
fn read(text: &str) -> Option<(Document, bool)> {
    let mut options = super::yaml_options();
    if let Some(budget) = &mut options.budget {
        for limit in [
            &mut budget.max_events,
            &mut budget.max_aliases,
            &mut budget.max_anchors,
            &mut budget.max_recorded_anchor_events,
            &mut budget.max_recorded_anchor_bytes,
            &mut budget.max_documents,
            &mut budget.max_nodes,
            &mut budget.max_total_scalar_bytes,
            &mut budget.max_merge_keys,
        ] {
            *limit /= 2;
        }
    }
    let aliases = &mut options.alias_limits;
    aliases.max_total_replayed_events /= 2;
    aliases.max_alias_expansions_per_anchor /= 2;
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |yaml| {
        super::unknown_keys::skipped::deserialize::<_, Document>(yaml)
    })
    .ok()
}

/// Where `services:` is cut in two.
#[derive(Debug, PartialEq)]
struct Split {
    /// The line `services:`.
    header: Range<usize>,
    /// The services before the cut, after the header.
    first: Range<usize>,
    /// The services from the cut to the end of the block.
    second: Range<usize>,
    /// The name of the first service after the cut.
    first_name: String,
    /// Whether the text before `services:` is read by the second half too:
    /// it may define anchors (`&defaults`) that services use.
    second_reads_prefix: bool,
}

impl Split {
    /// A cut between two services near the middle of the work, where the
    /// text is plain enough to be sure of it: one document; `services:` a
    /// block map at the top level, its keys plain names on lines of their
    /// own at one indentation; only ASCII in what a half turns to comments
    /// before what it reads (so that character counts stay the file's);
    /// Unix line ends.
    fn find(text: &str) -> Option<Split> {
        if text.contains('\r') {
            return None;
        }
        let mut lines = Lines::new(text);
        let mut header = None;
        for line in lines.by_ref() {
            let content = &text[line.clone()];
            if content.starts_with("---") || content.starts_with("...") || content.starts_with('%')
            {
                return None;
            }
            if let Some(rest) = content.strip_prefix("services:") {
                let rest = rest.trim_start_matches(' ');
                if !(rest.is_empty() || rest.starts_with('#')) {
                    return None;
                }
                header = Some(line);
                break;
            }
        }
        let header = header?;
        // The block: up to the next line that starts at the first column.
        let mut starts = Vec::new();
        let mut indent = None;
        let mut end = header.end;
        for line in lines.by_ref() {
            let content = &text[line.clone()];
            let spaces = content.len() - content.trim_start_matches(' ').len();
            let rest = &content[spaces..];
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            if spaces == 0 {
                break;
            }
            end = line.end;
            if *indent.get_or_insert(spaces) != spaces {
                continue;
            }
            // Only `name:` keys, as they would be in a compose file.
            let name = plain_key(rest)?;
            starts.push((line.start, name));
        }
        let rest = &text[end..];
        if rest
            .lines()
            .any(|l| l.starts_with("---") || l.starts_with("..."))
        {
            return None;
        }
        let block = header.end..end;
        let prefix = &text[..header.start];
        if !text[block.clone()].is_ascii() {
            return None;
        }
        // Balance the work of the halves: the first reads everything but
        // the second's services. Comment lines cost the reader little (an
        // imported template opens with a long one): only other bytes count.
        let mut marks: Vec<usize> = starts.iter().map(|(start, _)| *start).collect();
        marks.push(end);
        let mut work_before = Vec::with_capacity(marks.len());
        let mut work = 0;
        for line in Lines::new(text) {
            while work_before.len() < marks.len() && marks[work_before.len()] <= line.start {
                work_before.push(work);
            }
            if !text[line.clone()].trim_start().starts_with('#') {
                work += line.len() + 1;
            }
        }
        work_before.resize(marks.len(), work);
        let block_end = work_before[starts.len()];
        let (cut, name) = (1..starts.len())
            .min_by_key(|&i| {
                let second = block_end - work_before[i];
                (work - second).abs_diff(second)
            })
            .map(|i| &starts[i])?;
        let second_reads_prefix = prefix.contains('&') || !prefix.is_ascii();
        Some(Split {
            first: header.end..*cut,
            second: *cut..end,
            header,
            first_name: name.to_string(),
            second_reads_prefix,
        })
    }

    /// The texts the two halves read: the file with the lines of the other
    /// half's services as comments; the second half also without anything
    /// but its services (and the prefix, when it may hold anchors).
    fn texts(&self, text: &str) -> (String, String) {
        let mut first = text.as_bytes().to_vec();
        blank(&mut first, self.second.clone());
        let mut second = text.as_bytes().to_vec();
        if !self.second_reads_prefix {
            blank(&mut second, 0..self.header.start);
        }
        blank(&mut second, self.first.clone());
        blank(&mut second, self.second.end..text.len());
        // Only whole ASCII lines were replaced, by ASCII.
        let utf8 = |bytes| String::from_utf8(bytes).expect("lines of ASCII replaced by ASCII");
        (utf8(first), utf8(second))
    }
}

/// The name of a `name:` key line (`name: value` or `name:`), if it is one.
fn plain_key(rest: &str) -> Option<&str> {
    let (name, after) = rest.split_once(':')?;
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    (plain && (after.is_empty() || after.starts_with(' '))).then_some(name)
}

/// Turns every line in `range` (whole lines) into a comment of the same
/// length: `#` and spaces; empty lines stay empty.
fn blank(bytes: &mut [u8], range: Range<usize>) {
    let mut line_start = true;
    for byte in &mut bytes[range] {
        if *byte == b'\n' {
            line_start = true;
        } else if line_start {
            *byte = b'#';
            line_start = false;
        } else {
            *byte = b' ';
        }
    }
}

/// The byte ranges of a text's lines, without their line feeds.
struct Lines<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { text, at: 0 }
    }
}

impl Iterator for Lines<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.at >= self.text.len() {
            return None;
        }
        let start = self.at;
        let end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        self.at = end + 1;
        Some(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(count: usize) -> String {
        let mut text = String::from("# a template\napp: big\nservices:\n");
        for i in 0..count {
            text.push_str(&format!(
                "  svc{i}:\n    image: \"nginx:{i}\"\n    command: |\n      run\n        {i}\n\n    environment: {{A: \"{i}\"}}\n"
            ));
        }
        text.push_str("volumes:\n  data: {}\ninstances:\n  live: {}\n");
        text
    }

    fn whole(text: &str) -> (Document, bool) {
        read(text).expect("the test text reads")
    }

    #[test]
    fn two_halves_read_as_the_whole() {
        let text = services(2_000);
        assert!(text.len() > MIN_BYTES);
        let split = Split::find(&text).expect("a plain template splits");
        assert!(split.first.len() > 1_000 && split.second.len() > 1_000);
        let (halves, skipped) = parse(&text).expect("read in halves");
        let (one, one_skipped) = whole(&text);
        assert_eq!(skipped, one_skipped);
        // Every value and every place (spans are compared by Debug).
        assert_eq!(format!("{halves:?}"), format!("{one:?}"));
    }

    #[test]
    fn the_halves_share_the_services_not_the_comments() {
        // An imported template opens with a long comment (what import did
        // not carry over), which costs the reader little.
        let comment = "# a long note about volumes the import renamed\n".repeat(4_000);
        let text = format!("{comment}{}", services(2_000));
        let split = Split::find(&text).expect("a plain template splits");
        let second_half = text[split.second.clone()].matches("\n  svc").count() + 1;
        assert!(
            (900..=1_100).contains(&second_half),
            "the second half reads {second_half} of 2000 services"
        );
    }

    #[test]
    fn texts_it_cannot_be_sure_of_are_not_split() {
        let text = services(2_000);
        for (what, changed) in [
            (
                "a second document",
                text.replacen("volumes:", "---\nvolumes:", 1),
            ),
            ("Windows line ends", text.replace('\n', "\r\n")),
            (
                "a quoted key",
                text.replacen("  svc1500:", "  \"svc1500\":", 1),
            ),
            (
                "a flow map",
                text.replacen("services:\n", "services: {}\nx:\n", 1),
            ),
            ("non-ASCII services", text.replacen("nginx:7", "nginx:é", 1)),
        ] {
            let split = Split::find(&changed);
            assert!(
                split.is_none() || parse(&changed).is_none(),
                "{what}: {split:?}"
            );
        }
    }

    #[test]
    fn a_mistake_or_a_duplicate_across_the_halves_reads_whole() {
        let text = services(2_000);
        let split = Split::find(&text).unwrap();
        // A service of the second half named like one of the first.
        let duplicate = format!(
            "{}  svc0:{}",
            &text[..split.second.start],
            &text[split.second.start..].split_once(':').unwrap().1
        );
        assert!(parse(&duplicate).is_none());
        assert!(read(&duplicate).is_none(), "the whole read refuses it");
        // An alias to an anchor of the first half.
        let anchored = text.replacen("  svc1:\n    image:", "  svc1:\n    image: &img", 1);
        let cut = Split::find(&anchored).unwrap().second.start;
        let aliased = format!(
            "{}{}",
            &anchored[..cut],
            anchored[cut..].replacen("image: \"", "image: *img\n    x: \"", 1)
        );
        assert!(parse(&aliased).is_none());
        assert!(read(&aliased).is_some(), "the whole read takes it");
    }
}
