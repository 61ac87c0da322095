//! A fast reader for the plain YAML most templates are written in: block
//! maps and lists, one-line scalars (plain or quoted), literal blocks (`|`,
//! `|-`), one-line lists and maps in brackets, comments. Reading a template
//! of a thousand services with serde-saphyr was most of `unitgen render`;
//! this reads the same text several times faster.
//!
//! It is only a shortcut. It gives up at the first thing outside that
//! subset (anchors, tags, folded and multi-line scalars, tabs, a scalar
//! whose type YAML would have to guess), and at the first value the schema
//! does not take, and the caller then reads the file with serde-saphyr as
//! always. So errors are always serde-saphyr's, and a document this reader
//! does return is the one serde-saphyr returns, locations included: it
//! hands the schema's types the same calls for the same text, but for a
//! [`Spanned`](super::spanned::Spanned) value's place, which it hands over
//! in one call where serde-saphyr takes some twenty (the
//! `agrees_with_serde_saphyr` tests check it on every template in the
//! repository and on generated ones).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Deserialize;

use serde::de::value::BytesDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::schema::Document;
use super::spanned::{self, At};

/// The document of `text` and whether a key was skipped (see
/// `unknown_keys::skipped`); None when the text is not plain enough, or
/// not a valid template, and must be read by serde-saphyr.
pub fn read(text: &str) -> Option<(Document, bool)> {
    let mut reader = Reader::new(text)?;
    let parts = reader.split_services();
    if parts.is_empty() {
        return typed(&reader.document()?);
    }
    // The entries of `services:` are independent: a big template's are
    // read and typed in parts on all cores, the first with the rest of the
    // file, each part by the next free thread (see `parallel::chunks`).
    let work = std::iter::once(Part::Rest(reader)).chain(parts.into_iter().map(Part::Services));
    let reads: Vec<PartRead> = crate::parallel::map_owned(work.collect(), Part::read)
        .into_iter()
        .collect::<Option<_>>()?;
    // What one reader of the whole file would have refused: too many nodes
    // (each part after the first counted its map and `services` key
    // again), or a service named in two parts.
    let nodes = reads.iter().map(|read| read.nodes).sum::<usize>() - 2 * (reads.len() - 1);
    let names: Vec<&str> = (reads.iter())
        .flat_map(|read| &read.names)
        .map(|name| name.as_ref())
        .collect();
    if nodes > MAX_NODES || !all_distinct(&names) {
        return None;
    }
    drop(names);
    let mut reads = reads.into_iter();
    let first = reads.next()?;
    let (mut doc, mut skipped) = (first.doc, first.skipped);
    let services = &mut doc.services.as_mut()?.value;
    for read in reads {
        services.extend(read.doc.services?.value);
        skipped |= read.skipped;
    }
    Some((doc, skipped))
}

/// One part of a big template read on its own (see `Reader::split_services`).
enum Part<'a> {
    /// The file without the services split off.
    Rest(Reader<'a>),
    Services(ServicesPart<'a>),
}

impl<'a> Part<'a> {
    fn read(self) -> Option<PartRead<'a>> {
        match self {
            Part::Rest(mut reader) => {
                let root = reader.document()?;
                PartRead::of(&root, reader.nodes)
            }
            Part::Services(part) => part.read(),
        }
    }
}

fn typed(root: &Node) -> Option<(Document, bool)> {
    let skipped = Cell::new(false);
    let doc = Document::deserialize(NodeDe {
        node: root,
        skipped: &skipped,
    })
    .ok()?;
    Some((doc, skipped.get()))
}

/// Below this many services in a part, reading it on its own costs more
/// than it saves.
const MIN_SERVICES_PER_PART: usize = 64;

/// How many parts a big `services:` block is cut into per core.
const PARTS_PER_CORE: usize = 4;

/// Consecutive entries of a big `services:` block, taken out of a
/// reader's lines to be read on their own (see [`Reader::split_services`]).
struct ServicesPart<'a> {
    /// A reader of only the part's lines, from its first entry on.
    reader: Reader<'a>,
    /// The line of `services:`, and the first line of the file.
    key_line: Line,
    first_line: Line,
}

/// What a reader of a part of the file read.
struct PartRead<'a> {
    doc: Document,
    /// Whether a key was skipped.
    skipped: bool,
    nodes: usize,
    /// The names of its services.
    names: Vec<Cow<'a, str>>,
}

impl<'a> ServicesPart<'a> {
    /// A document of only `services:`, with the part's entries.
    fn read(mut self) -> Option<PartRead<'a>> {
        let reader = &mut self.reader;
        let first = *reader.lines.first()?;
        reader.next = 1;
        let key = reader.key(self.key_line, 0, "services".len(), 2)?;
        let services = reader.block_map(first, first.indent(), 2)?;
        if reader.next != reader.lines.len() {
            return None;
        }
        let root = Node::Map {
            entries: vec![(key, services)],
            at: reader.mark(self.first_line, 0, 0),
        };
        PartRead::of(&root, reader.nodes)
    }
}

impl<'a> PartRead<'a> {
    /// What a reader that read `nodes` nodes into the document `root` read.
    fn of(root: &Node<'a>, nodes: usize) -> Option<Self> {
        let Node::Map { entries, .. } = root else {
            return None;
        };
        let (_, services) = (entries.iter())
            .find(|(key, _)| matches!(key, Node::Scalar { text, .. } if text == "services"))?;
        let names = service_names(services)?;
        let (doc, skipped) = typed(root)?;
        Some(PartRead {
            doc,
            skipped,
            nodes,
            names,
        })
    }
}

/// The names of a `services:` map's entries; None if one may be a number
/// (see [`comparable_key`]).
fn service_names<'a>(services: &Node<'a>) -> Option<Vec<Cow<'a, str>>> {
    let Node::Map { entries, .. } = services else {
        return None;
    };
    (entries.iter())
        .map(|(key, _)| comparable_key(key).cloned())
        .collect()
}

/// Under serde-saphyr's limits (250,000 nodes, 1,000,000 events, a depth
/// of 64, keys of 1,024 characters), with room to spare: a file near them
/// is read by serde-saphyr, which refuses it with its own message. A node
/// is counted as serde-saphyr does (each scalar, key, list and map once).
const MAX_NODES: usize = 200_000;
const MAX_DEPTH: usize = 32;
const MAX_KEY_CHARS: usize = 512;
const MAX_BYTES: usize = 16 << 20;

#[derive(Debug, Clone)]
enum Node<'a> {
    Scalar {
        text: Cow<'a, str>,
        plain: bool,
        at: At,
    },
    List {
        items: Vec<Node<'a>>,
        at: At,
    },
    Map {
        entries: Vec<(Node<'a>, Node<'a>)>,
        at: At,
    },
}

/// A line with something on it other than a comment. In 32-bit numbers
/// (a text is at most `MAX_BYTES`): a big template has tens of thousands
/// of lines, and half the size is half the memory to fill.
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Byte offset of the line's first byte.
    start: u32,
    /// Byte offset of its end (the `\n`, or the end of the text).
    end: u32,
    /// Its leading spaces.
    indent: u32,
    /// Its number, from 1.
    number: u32,
    /// The characters before it.
    char_start: u32,
    /// Whether it is all ASCII (its bytes are its characters).
    ascii: bool,
}

impl Line {
    fn start(self) -> usize {
        self.start as usize
    }

    fn end(self) -> usize {
        self.end as usize
    }

    fn indent(self) -> usize {
        self.indent as usize
    }

    fn char_start(self) -> usize {
        self.char_start as usize
    }
}

struct Reader<'a> {
    text: &'a str,
    lines: Vec<Line>,
    /// The next line not yet read.
    next: usize,
    nodes: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Option<Self> {
        // Tabs, CRs and other controls are left to serde-saphyr: they have
        // rules of their own. So are the characters YAML reads as line
        // breaks or spaces beyond ASCII, and a byte order mark.
        let unusual = |c: char| {
            matches!(
                c,
                '\u{80}'
                    ..='\u{a0}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            )
        };
        // Whole chunks at a time, without an early exit: that the compiler
        // turns into vector instructions (a byte at a time took longer than
        // reading the lines).
        let control = |chunk: &[u8]| {
            (chunk.iter()).fold(false, |found, &b| {
                found | ((b < b' ' && b != b'\n') | (b == 0x7f))
            })
        };
        if text.len() > MAX_BYTES
            || text.as_bytes().chunks(256).any(control)
            || (!text.is_ascii() && text.chars().any(unusual))
        {
            return None;
        }
        let line_breaks = (text.as_bytes().chunks(256))
            .map(|chunk| chunk.iter().filter(|&&b| b == b'\n').count())
            .sum::<usize>();
        let mut lines = Vec::with_capacity(line_breaks + 1);
        let (mut start, mut char_start) = (0, 0);
        for (number, content) in text.split('\n').enumerate() {
            let end = start + content.len();
            let ascii = content.is_ascii();
            let indent = content.len() - content.trim_start_matches(' ').len();
            let rest = &content[indent..];
            if indent == 0
                && (rest.starts_with("---") || rest.starts_with("...") || rest.starts_with('%'))
            {
                return None;
            }
            if !rest.is_empty() && !rest.starts_with('#') {
                lines.push(Line {
                    start: start as u32,
                    end: end as u32,
                    indent: indent as u32,
                    number: number as u32 + 1,
                    char_start: char_start as u32,
                    ascii,
                });
            }
            start = end + 1;
            char_start += if ascii {
                content.len()
            } else {
                content.chars().count()
            } + 1;
        }
        Some(Reader {
            text,
            lines,
            next: 0,
            nodes: 0,
        })
    }

    /// Takes the entries of a big top-level `services:` block but its
    /// first ones out of the lines, in parts of consecutive entries, each
    /// for a reader of its own: what is left reads as the file with only
    /// the first entries, and each part as the rest of the block, every
    /// node in the same place. None taken (an empty list) for a file with
    /// no such block, or one too small to be worth it.
    fn split_services(&mut self) -> Vec<ServicesPart<'a>> {
        // Not inside work already spread over the cores (see `parallel`).
        let cores = crate::parallel::cores();
        if cores < 2 {
            return Vec::new();
        }
        const KEY: &[u8] = b"services:";
        let Some(key_index) = (self.lines.iter()).position(|&line| {
            let bytes = self.bytes(line);
            let spaces = count_spaces(bytes.get(KEY.len()..).unwrap_or_default());
            let after = KEY.len() + spaces;
            line.indent() == 0
                && bytes.starts_with(KEY)
                // Nothing after the key but a comment.
                && (after == bytes.len() || (spaces > 0 && bytes[after] == b'#'))
        }) else {
            return Vec::new();
        };
        let Some(&first) = self.lines.get(key_index + 1) else {
            return Vec::new();
        };
        if first.indent() == 0 || self.is_entry(first, first.indent()) {
            return Vec::new();
        }
        // The block ends at the first line less indented than its entries;
        // the reader of the rest reads whatever that line is.
        let end = (key_index + 1..self.lines.len())
            .find(|&i| self.lines[i].indent() < first.indent())
            .unwrap_or(self.lines.len());
        let entries: Vec<usize> = (key_index + 1..end)
            .filter(|&i| self.lines[i].indent() == first.indent())
            .collect();
        // Several parts per core, so that a core the machine runs slower
        // leaves its share to the others (see `parallel::chunks`).
        let parts = (cores * PARTS_PER_CORE).min(entries.len() / MIN_SERVICES_PER_PART);
        if parts < 2 {
            return Vec::new();
        }
        let cuts: Vec<usize> = (1..parts)
            .map(|i| entries[i * entries.len() / parts])
            .collect();
        let mut taken: Vec<Line> = self.lines.drain(cuts[0]..end).collect();
        let (key_line, first_line) = (self.lines[key_index], self.lines[0]);
        // Cut from the last part to the first, each off the end of the rest.
        let mut split = Vec::with_capacity(cuts.len());
        for &cut in cuts.iter().rev() {
            split.push(ServicesPart {
                reader: Reader {
                    text: self.text,
                    lines: taken.split_off(cut - cuts[0]),
                    next: 0,
                    nodes: 0,
                },
                key_line,
                first_line,
            });
        }
        split.reverse();
        split
    }

    /// The whole text: one block map.
    fn document(&mut self) -> Option<Node<'a>> {
        let first = *self.lines.first()?;
        if first.indent() != 0 || self.key_end(first, 0).is_none() {
            return None;
        }
        self.next = 1;
        let root = self.block_map(first, 0, 1)?;
        (self.next == self.lines.len()).then_some(root)
    }

    fn bytes(&self, line: Line) -> &'a [u8] {
        &self.text.as_bytes()[line.start()..line.end()]
    }

    fn mark(&self, line: Line, column: usize, len: usize) -> At {
        let start = line.start() + column;
        let chars = |bytes: &str| bytes.chars().count();
        // In an ASCII line a byte is a character.
        let (char_column, char_len) = if line.ascii {
            (column, len)
        } else {
            (
                chars(&self.text[line.start()..start]),
                chars(&self.text[start..start + len]),
            )
        };
        At::new(
            line.number,
            char_column as u32 + 1,
            (line.char_start() + char_column) as u32,
            char_len as u32,
            start as u32,
            len as u32,
        )
    }

    fn count(&mut self, depth: usize) -> Option<()> {
        self.nodes += 1;
        (self.nodes <= MAX_NODES && depth <= MAX_DEPTH).then_some(())
    }

    /// The next line, if it is deeper than `indent`.
    fn deeper(&self, indent: usize) -> Option<Line> {
        self.lines
            .get(self.next)
            .filter(|l| l.indent() > indent)
            .copied()
    }

    /// Whether `line` is a list entry (`-` then a space or its end) at `column`.
    fn is_entry(&self, line: Line, column: usize) -> bool {
        let bytes = self.bytes(line);
        bytes.get(column) == Some(&b'-') && matches!(bytes.get(column + 1), None | Some(b' '))
    }

    /// A block map whose first key starts at `column` of `line` (already
    /// taken); its other keys are the following lines at that indentation.
    fn block_map(&mut self, line: Line, column: usize, depth: usize) -> Option<Node<'a>> {
        self.count(depth)?;
        let at = self.mark(line, column, 0);
        let mut entries: Vec<(Node<'a>, Node<'a>)> = Vec::new();
        let (mut line, mut column) = (line, column);
        loop {
            let key_end = self.key_end(line, column)?;
            let key = self.key(line, column, key_end, depth + 1)?;
            let value = self.value_after(line, key_end + 1, column, depth + 1)?;
            entries.push((key, value));
            match self.lines.get(self.next) {
                Some(&next) if next.indent() == column && !self.is_entry(next, column) => {
                    self.next += 1;
                    (line, column) = (next, next.indent());
                }
                Some(next) if next.indent() > column => return None,
                _ => break,
            }
        }
        no_duplicate_keys(&entries)?;
        Some(Node::Map { entries, at })
    }

    /// A block list whose first `-` is at `column` of `line` (already
    /// taken); `indentless` when it stands at its key's indentation.
    fn block_list(
        &mut self,
        line: Line,
        column: usize,
        indentless: bool,
        depth: usize,
    ) -> Option<Node<'a>> {
        self.count(depth)?;
        let mut at = None;
        let mut items = Vec::new();
        let mut line = line;
        loop {
            let bytes = self.bytes(line);
            let start = column + 1 + count_spaces(&bytes[(column + 1).min(bytes.len())..]);
            // serde-saphyr places an indentless list at its first item.
            at.get_or_insert(self.mark(line, if indentless { start } else { column }, 0));
            if start >= bytes.len() || bytes[start] == b'#' || self.is_entry(line, start) {
                // An entry whose value is on the next lines, or a list in
                // a list: rare enough to leave to serde-saphyr.
                return None;
            }
            let item = if self.key_end(line, start).is_some() {
                self.block_map(line, start, depth + 1)?
            } else {
                let item = self.inline(line, start, column, depth + 1)?;
                if self.deeper(column).is_some() {
                    return None;
                }
                item
            };
            items.push(item);
            match self.lines.get(self.next) {
                Some(&next) if next.indent() == column && self.is_entry(next, column) => {
                    self.next += 1;
                    line = next;
                }
                Some(next) if next.indent() > column => return None,
                _ => break,
            }
        }
        Some(Node::List { items, at: at? })
    }

    /// The value of a map entry whose `:` is just before `from` on `line`,
    /// in a map whose keys are at `indent`.
    fn value_after(
        &mut self,
        line: Line,
        from: usize,
        indent: usize,
        depth: usize,
    ) -> Option<Node<'a>> {
        let bytes = self.bytes(line);
        let start = from + count_spaces(&bytes[from..]);
        if start < bytes.len() && bytes[start] != b'#' {
            let value = self.inline(line, start, indent, depth)?;
            // More on deeper lines would continue a plain scalar.
            return self.deeper(indent).is_none().then_some(value);
        }
        let next = self.lines.get(self.next).copied();
        match next {
            Some(next) if next.indent() > indent => {
                self.next += 1;
                let column = next.indent();
                if self.is_entry(next, column) {
                    self.block_list(next, column, false, depth)
                } else if self.key_end(next, column).is_some() {
                    self.block_map(next, column, depth)
                } else {
                    None // a scalar on a line of its own
                }
            }
            // A list may stand at its key's indentation.
            Some(next) if next.indent() == indent && self.is_entry(next, indent) => {
                self.next += 1;
                self.block_list(next, indent, true, depth)
            }
            // An empty value (`volumes: {data:}`), a null.
            _ => {
                self.count(depth)?;
                Some(Node::Scalar {
                    text: "".into(),
                    plain: true,
                    at: self.mark(line, from - 1, 0),
                })
            }
        }
    }

    /// Where the `:` of a key starting at `column` of `line` is, if the line
    /// holds one there.
    fn key_end(&self, line: Line, column: usize) -> Option<usize> {
        let bytes = self.bytes(line);
        let end = match bytes.get(column)? {
            b'"' | b'\'' => {
                let close = quoted_end(bytes, column)?;
                close + count_spaces(&bytes[close..])
            }
            _ => {
                plain_start(bytes, column, false)?;
                let mut i = column;
                loop {
                    match bytes.get(i) {
                        None => return None,
                        Some(b':') if matches!(bytes.get(i + 1), None | Some(b' ')) => break i,
                        Some(b'#') if bytes[i - 1] == b' ' => return None,
                        _ => i += 1,
                    }
                }
            }
        };
        (bytes.get(end) == Some(&b':')
            && matches!(bytes.get(end + 1), None | Some(b' '))
            && end - column <= MAX_KEY_CHARS)
            .then_some(end)
    }

    fn key(&mut self, line: Line, column: usize, colon: usize, depth: usize) -> Option<Node<'a>> {
        let bytes = self.bytes(line);
        let node = if matches!(bytes[column], b'"' | b'\'') {
            self.quoted(line, column, depth)?.0
        } else {
            let end = column + trimmed_len(&bytes[column..colon]);
            self.plain(line, column, end, depth)?
        };
        // `<<` merges and `?` keys are serde-saphyr's.
        match &node {
            Node::Scalar {
                text, plain: true, ..
            } if text == "<<" => None,
            _ => Some(node),
        }
    }

    /// A value that ends on its own line: a bracketed list, `{}`, a quoted
    /// or a plain scalar. Nothing but a comment may follow it.
    fn inline(
        &mut self,
        line: Line,
        column: usize,
        parent: usize,
        depth: usize,
    ) -> Option<Node<'a>> {
        let bytes = self.bytes(line);
        let (node, end) = match bytes[column] {
            b'[' | b'{' => self.flow(line, column, depth)?,
            b'|' => self.literal(line, column, parent, depth)?,
            b'"' | b'\'' => self.quoted(line, column, depth)?,
            _ => {
                plain_start(bytes, column, false)?;
                let mut end = column;
                while end < bytes.len() && !(bytes[end] == b'#' && bytes[end - 1] == b' ') {
                    if bytes[end] == b':' && matches!(bytes.get(end + 1), None | Some(b' ')) {
                        return None; // a map where a scalar was expected
                    }
                    end += 1;
                }
                let trimmed = column + trimmed_len(&bytes[column..end]);
                (self.plain(line, column, trimmed, depth)?, trimmed)
            }
        };
        let rest = &bytes[end..];
        let spaces = count_spaces(rest);
        (spaces == rest.len() || (spaces > 0 && rest[spaces] == b'#')).then_some(node)
    }

    fn plain(&mut self, line: Line, start: usize, end: usize, depth: usize) -> Option<Node<'a>> {
        self.count(depth)?;
        Some(Node::Scalar {
            text: self.text[line.start() + start..line.start() + end].into(),
            plain: true,
            at: self.mark(line, start, end - start),
        })
    }

    /// A quoted scalar starting at `column`, and where it ends. Double
    /// quotes with a backslash (escapes) are serde-saphyr's.
    fn quoted(&mut self, line: Line, column: usize, depth: usize) -> Option<(Node<'a>, usize)> {
        self.count(depth)?;
        let bytes = self.bytes(line);
        let end = quoted_end(bytes, column)?;
        let inner = &self.text[line.start() + column + 1..line.start() + end - 1];
        let text = if bytes[column] == b'\'' && inner.contains('\'') {
            inner.replace("''", "'").into()
        } else if bytes[column] == b'"' && inner.contains('\\') {
            unescape(inner)?.into()
        } else {
            inner.into()
        };
        let at = self.mark(line, column, end - column);
        Some((
            Node::Scalar {
                text,
                plain: false,
                at,
            },
            end,
        ))
    }

    /// A literal block scalar (`|` or `|-`) whose header is at `column` of
    /// `line`, in a map or list at indentation `parent`: the lines below
    /// it, deeper than `parent`, as they are (less their indentation),
    /// with one line break at the end (`|`) or none (`|-`); and where its
    /// header line ends. `|+`, an indentation number, leading blank lines,
    /// non-ASCII text and a last line without a line break are
    /// serde-saphyr's.
    fn literal(
        &mut self,
        line: Line,
        column: usize,
        parent: usize,
        depth: usize,
    ) -> Option<(Node<'a>, usize)> {
        self.count(depth)?;
        let bytes = self.bytes(line);
        let strip = bytes.get(column + 1) == Some(&b'-');
        let rest = &bytes[column + 1 + usize::from(strip)..];
        let spaces = count_spaces(rest);
        if !(spaces == rest.len() || (spaces > 0 && rest[spaces] == b'#')) {
            return None;
        }
        let text = self.text;
        let (mut value, mut blank_lines, mut indent) = (String::new(), 0, None);
        let first = line.end() + 1;
        let (mut start, mut stop) = (first, text.len());
        while start < text.len() {
            let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let raw = &text[start..line_end];
            let spaces = count_spaces(raw.as_bytes());
            let blank = spaces == raw.len();
            let n = match indent {
                None if blank || spaces <= parent || !raw.is_ascii() || line_end == text.len() => {
                    return None;
                }
                None => *indent.insert(spaces),
                Some(n) if !blank && spaces < n => {
                    stop = start + spaces;
                    break;
                }
                Some(_) if !raw.is_ascii() || line_end == text.len() => return None,
                Some(n) => n,
            };
            if blank && raw.len() <= n {
                blank_lines += 1;
            } else {
                // Blank lines count only before more text: at the end,
                // `|` keeps one line break and `|-` none.
                value.extend(std::iter::repeat_n('\n', blank_lines));
                blank_lines = 0;
                value.push_str(&raw[n..]);
                value.push('\n');
            }
            start = line_end + 1;
        }
        let n = indent?;
        if value.is_empty() {
            return None;
        }
        if strip {
            value.pop();
        }
        while self.lines.get(self.next).is_some_and(|l| l.start() < start) {
            self.next += 1;
        }
        // serde-saphyr places it from its first character to where the
        // next token starts.
        let header_chars = if line.ascii {
            bytes.len()
        } else {
            text[line.start()..line.end()].chars().count()
        };
        let len = (stop - first - n) as u32;
        let at = At::new(
            line.number + 1,
            n as u32 + 1,
            (line.char_start() + header_chars + 1 + n) as u32,
            len,
            (first + n) as u32,
            len,
        );
        Some((
            Node::Scalar {
                text: value.into(),
                plain: false,
                at,
            },
            bytes.len(),
        ))
    }

    /// A value in brackets or braces, on one line (`[a, "b"]`,
    /// `{volumes: [files]}`), or a scalar inside one; and where it ends.
    fn flow(&mut self, line: Line, column: usize, depth: usize) -> Option<(Node<'a>, usize)> {
        match self.bytes(line)[column] {
            b'[' => self.flow_list(line, column, depth),
            b'{' => self.flow_map(line, column, depth),
            b'"' | b'\'' => self.quoted(line, column, depth),
            _ => self.flow_plain(line, column, depth),
        }
    }

    fn flow_list(&mut self, line: Line, column: usize, depth: usize) -> Option<(Node<'a>, usize)> {
        self.count(depth)?;
        let at = self.mark(line, column, 1);
        let mut items = Vec::new();
        let end = self.flow_entries(line, column, b']', |reader, i| {
            let (item, end) = reader.flow(line, i, depth + 1)?;
            items.push(item);
            Some(end)
        })?;
        Some((Node::List { items, at }, end))
    }

    fn flow_map(&mut self, line: Line, column: usize, depth: usize) -> Option<(Node<'a>, usize)> {
        self.count(depth)?;
        let at = self.mark(line, column, 1);
        let mut entries = Vec::new();
        let end = self.flow_entries(line, column, b'}', |reader, i| {
            let bytes = reader.bytes(line);
            let (key, colon) = match bytes[i] {
                b'"' | b'\'' => reader.quoted(line, i, depth + 1)?,
                b'[' | b'{' => return None,
                _ => reader.flow_plain(line, i, depth + 1)?,
            };
            // `key: value`; `{a:1}` and keys without values are serde-saphyr's.
            if bytes.get(colon) != Some(&b':') || bytes.get(colon + 1) != Some(&b' ') {
                return None;
            }
            let start = colon + 1 + count_spaces(&bytes[colon + 1..]);
            bytes.get(start)?;
            let (value, end) = reader.flow(line, start, depth + 1)?;
            entries.push((key, value));
            Some(end)
        })?;
        no_duplicate_keys(&entries)?;
        Some((Node::Map { entries, at }, end))
    }

    /// The entries of a flow list or map opened at `column`, each read by
    /// `entry` from where it starts (returning where it ends), up to the
    /// `close` bracket; where the collection ends.
    fn flow_entries(
        &mut self,
        line: Line,
        column: usize,
        close: u8,
        mut entry: impl FnMut(&mut Self, usize) -> Option<usize>,
    ) -> Option<usize> {
        let bytes = self.bytes(line);
        let mut i = column + 1;
        i += count_spaces(&bytes[i..]);
        if bytes.get(i) == Some(&close) {
            return Some(i + 1);
        }
        loop {
            bytes.get(i)?;
            i = entry(self, i)?;
            i += count_spaces(&bytes[i..]);
            match *bytes.get(i)? {
                b',' => {
                    i += 1;
                    i += count_spaces(&bytes[i..]);
                    // `[a, ]`: a trailing comma is serde-saphyr's.
                    if bytes.get(i).is_none_or(|&b| b == close) {
                        return None;
                    }
                }
                b if b == close => return Some(i + 1),
                _ => return None,
            }
        }
    }

    /// A plain scalar inside brackets or braces, and where it ends: at a
    /// `,`, a closing bracket or a `:` that makes it a key.
    fn flow_plain(&mut self, line: Line, column: usize, depth: usize) -> Option<(Node<'a>, usize)> {
        let bytes = self.bytes(line);
        plain_start(bytes, column, true)?;
        let mut i = column;
        while let Some(&b) = bytes.get(i) {
            match b {
                b',' | b']' | b'}' => break,
                b'[' | b'{' => return None,
                b'#' if bytes[i - 1] == b' ' => return None,
                b':' if matches!(bytes.get(i + 1), None | Some(b' ' | b',' | b']' | b'}')) => break,
                _ => i += 1,
            }
        }
        let end = column + trimmed_len(&bytes[column..i]);
        Some((self.plain(line, column, end, depth)?, end))
    }
}

/// The text of a double-quoted scalar with YAML's escapes (`\n`, `\"`,
/// `\u00e9`, …); None for the rare ones left to serde-saphyr (`\N`, `\_`,
/// `\L`, `\P`: Unicode line breaks and spaces).
fn unescape(inner: &str) -> Option<String> {
    let mut text = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        let hex = |chars: &mut std::str::Chars, digits: usize| {
            let code: String = chars.take(digits).collect();
            (code.len() == digits && code.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| char::from_u32(u32::from_str_radix(&code, 16).ok()?))
                .flatten()
        };
        text.push(match chars.next()? {
            '0' => '\0',
            'a' => '\x07',
            'b' => '\x08',
            't' => '\t',
            'n' => '\n',
            'v' => '\x0b',
            'f' => '\x0c',
            'r' => '\r',
            'e' => '\x1b',
            c @ (' ' | '"' | '/' | '\\') => c,
            'x' => hex(&mut chars, 2)?,
            'u' => hex(&mut chars, 4)?,
            'U' => hex(&mut chars, 8)?,
            _ => return None,
        });
    }
    Some(text)
}

/// Where a quoted scalar starting at `column` ends (after its closing quote).
fn quoted_end(bytes: &[u8], column: usize) -> Option<usize> {
    let quote = bytes[column];
    let mut i = column + 1;
    loop {
        match *bytes.get(i)? {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Whether a plain scalar may start at `column` (YAML's indicators may not
/// start one, but for `-`, `?` and `:` before a character that can follow).
fn plain_start(bytes: &[u8], column: usize, in_flow: bool) -> Option<()> {
    let first = *bytes.get(column)?;
    let next = bytes.get(column + 1).copied();
    let ok = match first {
        b'-' | b'?' | b':' => match next {
            None | Some(b' ') => false,
            Some(b',' | b'[' | b']' | b'{' | b'}') => !in_flow,
            Some(_) => true,
        },
        b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' => false,
        _ => true,
    };
    ok.then_some(())
}

fn count_spaces(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| b == b' ').count()
}

fn trimmed_len(bytes: &[u8]) -> usize {
    bytes.len() - bytes.iter().rev().take_while(|&&b| b == b' ').count()
}

/// None if two keys of a map are the same text, or may be the same number:
/// serde-saphyr refuses duplicates (and compares numbers by value).
fn no_duplicate_keys(entries: &[(Node, Node)]) -> Option<()> {
    let keys = (entries.iter())
        .map(|(key, _)| comparable_key(key).map(|key| key.as_ref()))
        .collect::<Option<Vec<&str>>>()?;
    all_distinct(&keys).then_some(())
}

/// A key's text, if comparing texts is comparing keys: not for a key that
/// may be a number, or is not a scalar.
fn comparable_key<'n, 'a>(key: &'n Node<'a>) -> Option<&'n Cow<'a, str>> {
    match key {
        Node::Scalar { text, plain, .. } => {
            let numeric =
                *plain && text.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-');
            (!numeric).then_some(text)
        }
        _ => None,
    }
}

fn all_distinct(keys: &[&str]) -> bool {
    // A few keys are compared pairwise; many (`services:`) through a set.
    if keys.len() < 16 {
        return (1..keys.len()).all(|i| !keys[..i].contains(&keys[i]));
    }
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    keys.iter().all(|key| seen.insert(key))
}

/// Any reason to leave the file to serde-saphyr; which one does not matter.
#[derive(Debug)]
struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("not plain YAML")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<T: fmt::Display>(_: T) -> Self {
        GiveUp
    }
}

/// Text serde-saphyr reads as null: a string field refuses it.
fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Plain text that serde-saphyr, asked for any type, surely reads as a
/// string: not a YAML 1.1 boolean, nor `inf` or `nan`; and if it starts
/// like a number (a digit or a dot, after a sign), with a character no
/// number has in any of its spellings (`10min`) or more dots than one
/// (`1.4.2`, `10.0.0.1`).
fn surely_a_string(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let words = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "inf", "infinity", "nan",
    ];
    if words.iter().any(|word| unsigned.eq_ignore_ascii_case(word)) {
        return false;
    }
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return true;
    }
    let numeric =
        |b: u8| b.is_ascii_digit() || b"+-._:abcdefinotxy".contains(&b.to_ascii_lowercase());
    text.bytes().any(|b| !numeric(b)) || text.matches('.').count() > 1
}

/// A whole number as serde-saphyr reads it too: digits, no leading zero.
fn whole_number(text: &str) -> Option<u64> {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    (digits && !text.is_empty() && (text == "0" || !text.starts_with('0')))
        .then(|| text.parse().ok())
        .flatten()
}

/// Serde's view of a node. `skipped` notes that a value was skipped (a
/// key the schema lacks), as `unknown_keys::skipped` does for serde-saphyr.
#[derive(Clone, Copy)]
struct NodeDe<'n, 'a> {
    node: &'n Node<'a>,
    skipped: &'n Cell<bool>,
}

impl<'n, 'a> NodeDe<'n, 'a> {
    /// The same view of another node.
    fn of(self, node: &'n Node<'a>) -> Self {
        NodeDe { node, ..self }
    }

    /// The text of a scalar that is no null.
    fn text(&self) -> Result<&'n str, GiveUp> {
        match self.node {
            Node::Scalar { text, plain, .. } if !(*plain && is_null(text)) => Ok(text),
            _ => Err(GiveUp),
        }
    }

    /// The text of a plain whole number.
    fn number(&self) -> Result<u64, GiveUp> {
        match self.node {
            Node::Scalar {
                text, plain: true, ..
            } => whole_number(text).ok_or(GiveUp),
            _ => Err(GiveUp),
        }
    }
}

macro_rules! whole_numbers {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
            visitor.$visit(<$ty>::try_from(self.number()?).map_err(|_| GiveUp)?)
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'_, '_> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.node {
            Node::Map { .. } => self.deserialize_map(visitor),
            Node::List { .. } => self.deserialize_seq(visitor),
            Node::Scalar {
                text, plain: false, ..
            } => visitor.visit_str(text),
            Node::Scalar { text, .. } if is_null(text) => visitor.visit_unit(),
            Node::Scalar { text, .. } => match text.as_ref() {
                "true" | "True" | "TRUE" => visitor.visit_bool(true),
                "false" | "False" | "FALSE" => visitor.visit_bool(false),
                text if surely_a_string(text) => visitor.visit_str(text),
                _ => visitor.visit_u64(self.number()?),
            },
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.node {
            Node::Scalar {
                text, plain: true, ..
            } => match text.as_ref() {
                "true" | "True" | "TRUE" => visitor.visit_bool(true),
                "false" | "False" | "FALSE" => visitor.visit_bool(false),
                _ => Err(GiveUp),
            },
            _ => Err(GiveUp),
        }
    }

    whole_numbers!(
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64,
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16,
        deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64
    );

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.node {
            Node::Scalar {
                text, plain: true, ..
            } if is_null(text) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.node {
            Node::Scalar {
                text, plain: true, ..
            } if is_null(text) => visitor.visit_unit(),
            _ => Err(GiveUp),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        if name == spanned::NEWTYPE_NAME {
            let at = spanned::at_bytes(&at_of(self.node));
            visitor.visit_seq(SpannedSeq {
                value: Some(self),
                at: Some(at),
            })
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.node {
            Node::List { items, .. } => {
                let mut items = items.iter();
                let value = visitor.visit_seq(Items {
                    items: &mut items,
                    de: self,
                })?;
                items.next().is_none().then_some(value).ok_or(GiveUp)
            }
            _ => Err(GiveUp),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.node {
            Node::Map { entries, .. } => {
                let mut entries = Entries {
                    entries: entries.iter(),
                    value: None,
                    de: self,
                };
                let value = visitor.visit_map(&mut entries)?;
                entries
                    .entries
                    .next()
                    .is_none()
                    .then_some(value)
                    .ok_or(GiveUp)
            }
            _ => Err(GiveUp),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        self.deserialize_map(visitor)
    }

    // Serde skips a value of a key the schema lacks. serde-saphyr reads it
    // as any other (and may refuse it).
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.skipped.set(true);
        self.deserialize_any(visitor)
    }

    // The schema reads no floats, characters, bytes nor enums from YAML: a
    // file that asks for one is serde-saphyr's.
    fn deserialize_f32<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_char<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }
}

struct Items<'i, 'n, 'a> {
    items: &'i mut std::slice::Iter<'n, Node<'a>>,
    de: NodeDe<'n, 'a>,
}

impl<'de> SeqAccess<'de> for Items<'_, '_, '_> {
    type Error = GiveUp;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, GiveUp> {
        self.items
            .next()
            .map(|item| seed.deserialize(self.de.of(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Entries<'n, 'a> {
    entries: std::slice::Iter<'n, (Node<'a>, Node<'a>)>,
    value: Option<&'n Node<'a>>,
    de: NodeDe<'n, 'a>,
}

impl<'de> MapAccess<'de> for &mut Entries<'_, '_> {
    type Error = GiveUp;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, GiveUp> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(self.de.of(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, GiveUp> {
        let value = self.value.take().ok_or(GiveUp)?;
        seed.deserialize(self.de.of(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// What [`Spanned`](super::spanned::Spanned) takes from this reader in one
/// call (see its `deserialize`): the value, then its place as bytes, where
/// it was referenced and defined alike (this reader takes no aliases).
struct SpannedSeq<'n, 'a> {
    value: Option<NodeDe<'n, 'a>>,
    at: Option<[u8; 24]>,
}

impl<'de> SeqAccess<'de> for SpannedSeq<'_, '_> {
    type Error = GiveUp;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, GiveUp> {
        if let Some(value) = self.value.take() {
            return seed.deserialize(value).map(Some);
        }
        match self.at.take() {
            Some(at) => seed.deserialize(BytesDeserializer::new(&at)).map(Some),
            None => Ok(None),
        }
    }
}

fn at_of(node: &Node) -> At {
    match node {
        Node::Scalar { at, .. } | Node::List { at, .. } | Node::Map { at, .. } => *at,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn saphyr(text: &str) -> Result<(Document, bool), serde_saphyr::Error> {
        serde_saphyr::with_deserializer_from_str_with_options(
            text,
            super::super::yaml_options(),
            |yaml| super::super::unknown_keys::skipped::deserialize::<_, Document>(yaml),
        )
    }

    /// Whether the quick reader read `text`; when it did, it must have read
    /// what serde-saphyr reads, to the last location.
    fn agrees(text: &str) -> bool {
        let Some(quick) = read(text) else {
            return false;
        };
        let slow = saphyr(text).unwrap_or_else(|e| {
            panic!("serde-saphyr refuses what the quick reader read: {e}\n{text}")
        });
        let (quick, slow) = (format!("{quick:#?}"), format!("{slow:#?}"));
        if quick != slow {
            let diff = similar::TextDiff::from_lines(&slow, &quick);
            panic!(
                "the quick reader disagrees:\n{}\n{text}",
                diff.unified_diff().context_radius(8)
            );
        }
        true
    }

    fn yaml_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                yaml_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }

    #[test]
    fn agrees_with_serde_saphyr_on_every_yaml_file_of_the_repository() {
        let mut files = Vec::new();
        for dir in ["examples", "templates"] {
            yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut files);
        }
        let read = files
            .iter()
            .filter(|file| agrees(&std::fs::read_to_string(file).unwrap()))
            .count();
        // The examples are the plain YAML this reader is for.
        assert!(
            read * 2 > files.len(),
            "read quickly: {read} of {}",
            files.len()
        );
    }

    /// The YAML in the tests' raw strings (templates with hostile values,
    /// compose files, mistakes): any text will do, since the quick reader
    /// must read it as serde-saphyr does or not at all.
    #[test]
    fn agrees_with_serde_saphyr_on_the_yaml_in_the_tests() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let (mut texts, mut read) = (0, 0);
        for entry in std::fs::read_dir(dir).unwrap() {
            let source = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            for text in string_literals(&source) {
                if text.contains("services:") || text.contains("app:") {
                    texts += 1;
                    read += usize::from(agrees(&text));
                }
            }
        }
        assert!(
            texts > 100 && read * 4 > texts,
            "read quickly: {read} of {texts}"
        );
    }

    /// The string literals of Rust source, roughly (`"…"` unescaped, and
    /// `r#"…"#`): a test's input, not a compiler's.
    fn string_literals(source: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find('"') {
            if rest[..start].ends_with("r#") {
                let Some(end) = rest[start + 1..].find("\"#") else {
                    break;
                };
                found.push(rest[start + 1..start + 1 + end].to_string());
                rest = &rest[start + 1 + end + 2..];
                continue;
            }
            let mut text = String::new();
            let mut chars = rest[start + 1..].char_indices();
            let mut end = rest.len() - start - 1;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => text.push('\n'),
                        Some('t') => text.push('\t'),
                        Some('r') => text.push('\r'),
                        Some('0') => text.push('\0'),
                        // A line continuation: the next line's indentation goes.
                        Some('\n') => {
                            let skip = chars.clone().take_while(|(_, c)| c.is_whitespace()).count();
                            if skip > 0 {
                                chars.nth(skip - 1);
                            }
                        }
                        Some(c) => text.push(c),
                        None => {}
                    },
                    c => text.push(c),
                }
            }
            found.push(text);
            rest = &rest[start + 1 + end..];
        }
        found
    }

    /// What the quick reader is for: each of these is read by it (and
    /// read as serde-saphyr reads it).
    #[test]
    fn reads_the_yaml_templates_are_written_in() {
        for text in [
            "app: blog\nservices:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n",
            "services:\n  web:\n    command:\n    - serve\n    - --port=80\n    environment:\n      A: b\n",
            "services:\n  web:\n    image: x\n    labels: {a: b, 'c': \"d\"}\n    depends_on: []\n",
            "services:\n  db:\n    image: postgres\n    volumes: [\"data:/var/lib/postgresql\"]\nvolumes:\n  data: {external: true}\n",
            "services:\n  web:\n    image: x\n    labels:\n      a:\n      b: c # note\n",
            "# Café — the menu\nservices:\n  web:\n    image: x\n    environment:\n      NAME: \"caf\\u00e9 \\\"menu\\\"\"\n      CITY: Zürich\n",
            "services:\n  web:\n    image: x\n    healthcheck:\n      test: [CMD-SHELL, 'curl -f http://localhost || exit 1']\n      retries: 3\ninstances:\n  live: {version: 1.4.2, port: 8080}\n",
        ] {
            assert!(agrees(text), "not read quickly:\n{text}");
        }
    }

    /// Text that YAML may read as null, booleans, numbers or structure, or
    /// that a reader may cut in the wrong place.
    const TRICKY: &[&str] = &[
        "",
        "~",
        "null",
        "Null",
        "NULL",
        "true",
        "True",
        "TRUE",
        "tRUE",
        "false",
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "n",
        "0",
        "00",
        "007",
        "1",
        "42",
        "-1",
        "+1",
        "1.5",
        ".5",
        "1e3",
        "0x1F",
        "0X1F",
        "0o17",
        "0b101",
        "1_000",
        ".inf",
        "-.inf",
        ".nan",
        "-.nan",
        "nan",
        "inf",
        "Infinity",
        "18446744073709551616",
        "4294967296",
        "10min",
        "5s",
        "512m",
        "redis:7",
        "a: b",
        "a:b",
        "a #b",
        "a#b",
        "#x",
        "- x",
        "-x",
        "--listen",
        "?x",
        "? x",
        ":x",
        "x:",
        "x: ",
        "[a]",
        "{a}",
        "{}",
        "[]",
        "a,b",
        "a]",
        "a}",
        "*x",
        "&x",
        "!x",
        "|",
        ">",
        "%x",
        "@x",
        "`x",
        "it's",
        "a  b",
        "{{ domain }}",
        "https://{{ domain }}/x",
        "0.0.0.0:8080",
        "127.0.0.1:10000:8080",
        "1.4.2",
        "0.82.0",
        "1..2",
        ".5.",
        "1.2e3.4",
        "de_DE",
        "+inf",
        "-Infinity",
        "+nan",
        "+",
        "+x",
        "beef",
        "0xbeef",
        "e5",
        "1e5",
        "1:30",
        "2001-12-14",
        "x\\y",
        "a''b",
        "<<",
        "define",
        "CMD-SHELL",
        "é",
        "a\"b",
        "naïve café",
        "日本",
        "x\u{a0}y",
        "\u{85}",
        "\u{2028}",
    ];

    /// A small random generator (xorshift), so that a failing seed can be
    /// replayed.
    struct Dice(u64);

    impl Dice {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<'t>(&mut self, from: &[&'t str]) -> &'t str {
            from[self.below(from.len())]
        }

        /// A scalar: tricky or ordinary text, plain or quoted.
        fn scalar(&mut self) -> String {
            let text = if self.below(4) == 0 {
                self.pick(TRICKY).to_string()
            } else {
                self.pick(&[
                    "web",
                    "postgres:16",
                    "{{ version }}",
                    "8080",
                    "x y",
                    "a#b",
                    "10s",
                ])
                .to_string()
            };
            match self.below(5) {
                // Escapes, valid or not, as written.
                4 => format!(
                    "\"{}\"",
                    self.pick(&[
                        r"a\nb",
                        r"\u00e9t\u00E9",
                        r"\x41",
                        r"\N",
                        r"\t",
                        r"\/",
                        r"\\",
                        r#"\""#,
                        r"\q",
                        r"\u12",
                        r"\UFFFFFFFF",
                        r"\U0001F600",
                        r"\ud800",
                        r"\e[0m",
                        r"\ ",
                        r"x\",
                    ])
                ),
                0 => format!("'{}'", text.replace('\'', "''")),
                1 => format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")),
                _ => text,
            }
        }

        /// Spaces, a comment or nothing after a value.
        fn line_end(&mut self) -> &'static str {
            ["", "", "", "  ", " # note", "  #: x", " # café — ok"][self.below(7)]
        }

        /// A value at `indent` after `key:`: a scalar, a list or a map, in
        /// block or flow style.
        fn value(&mut self, indent: usize, depth: usize) -> String {
            let pad = " ".repeat(indent + 2);
            match self.below(if depth > 2 { 2 } else { 6 }) {
                0 if self.below(4) == 0 => format!("{}\n", self.line_end()),
                0 if self.below(3) == 0 => self.literal(indent),
                0 | 1 => format!(" {}{}\n", self.scalar(), self.line_end()),
                2 => {
                    let items: Vec<String> = (0..self.below(4)).map(|_| self.scalar()).collect();
                    format!(" [{}]{}\n", items.join(", "), self.line_end())
                }
                3 => {
                    let entries: Vec<String> = (0..self.below(3))
                        .map(|_| {
                            format!(
                                "{}: {}",
                                self.pick(&["a", "b", "KEY", "\"q\""]),
                                self.scalar()
                            )
                        })
                        .collect();
                    format!(" {{{}}}{}\n", entries.join(", "), self.line_end())
                }
                4 => {
                    let pad = if self.below(3) == 0 {
                        " ".repeat(indent)
                    } else {
                        pad
                    };
                    let mut text = format!("{}\n", self.line_end());
                    for _ in 0..1 + self.below(3) {
                        text += &format!("{pad}-{}", self.value(pad.len(), depth + 1));
                    }
                    text
                }
                _ => {
                    let mut text = format!("{}\n", self.line_end());
                    for _ in 0..1 + self.below(3) {
                        if self.below(5) == 0 {
                            text += &format!("{}# a comment\n\n", " ".repeat(self.below(8)));
                        }
                        let key = self.pick(&[
                            "Service", "KEY", "a", "b", "'quoted'", "\"x\"", "1", "<<", "on",
                            "true", "~", "-x", "0x1",
                        ]);
                        text += &format!("{pad}{key}:{}", self.value(indent + 2, depth + 1));
                    }
                    text
                }
            }
        }

        /// A literal block scalar after `key:`, with blank lines, lines that
        /// look like comments or keys, and deeper lines among its own.
        fn literal(&mut self, indent: usize) -> String {
            let pad = " ".repeat(indent + 2);
            let mut text = format!(
                " {}{}\n",
                self.pick(&["|", "|-", "|+", "|2", "| # c", "|#c", ">"]),
                ""
            );
            for _ in 0..1 + self.below(4) {
                text += &match self.below(6) {
                    0 => "\n".to_string(),
                    1 => format!("{pad}  \n"),
                    2 => format!("{pad}# not a comment\n"),
                    3 => format!("{pad}  deeper: {}\n", self.scalar()),
                    _ => format!("{pad}{}\n", self.scalar()),
                };
            }
            if self.below(3) == 0 {
                text += &format!("{}# after\n", " ".repeat(indent));
            }
            text
        }

        /// A list of scalars after `key:`, in flow or block style.
        fn list(&mut self, indent: usize) -> String {
            let items: Vec<String> = (0..1 + self.below(3)).map(|_| self.scalar()).collect();
            if self.below(2) == 0 {
                return format!(" [{}]{}\n", items.join(", "), self.line_end());
            }
            let pad = " ".repeat(indent + 2 * self.below(2));
            let lines: Vec<String> = items
                .iter()
                .map(|item| format!("{pad}- {item}{}\n", self.line_end()))
                .collect();
            format!("\n{}", lines.concat())
        }

        /// A map of `keys` to scalars after `key:`, in flow or block style.
        fn map(&mut self, indent: usize, keys: &[&str]) -> String {
            let count = 1 + self.below(3);
            let entries: Vec<(String, String)> = (0..count)
                .map(|_| (self.pick(keys).to_string(), self.scalar()))
                .collect();
            if self.below(3) == 0 {
                let entries: Vec<String> =
                    entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                return format!(" {{{}}}{}\n", entries.join(", "), self.line_end());
            }
            let pad = " ".repeat(indent + 2);
            let lines: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{pad}{k}: {v}{}\n", self.line_end()))
                .collect();
            format!("\n{}", lines.concat())
        }

        /// A template: services with the schema's keys (most values of the
        /// shape the key takes), instances and defaults with values of
        /// every shape, and keys the schema lacks.
        fn template(&mut self) -> String {
            let mut text = format!("app: {}\nservices:\n", self.pick(&["blog", "x", "'q'"]));
            for n in 0..1 + self.below(3) {
                text += &self.service(&format!("s{n}"));
            }
            text += &self.instances();
            text
        }

        /// A service with some of the schema's keys (most values of the
        /// shape the key takes), and keys the schema lacks.
        fn service(&mut self, name: &str) -> String {
            const KEYS: &[&str] = &["KEY", "a", "'q'", "\"d\"", "PORT"];
            let mut text = String::new();
            {
                text += &format!("  {name}:\n");
                let mut keys = vec![
                    "image",
                    "command",
                    "environment",
                    "ports",
                    "volumes",
                    "depends_on",
                    "restart",
                    "init",
                    "systemd",
                    "healthcheck",
                    "mem_limit",
                    "labels",
                    "user",
                    "unknown_key",
                    "oneshot",
                    "tmpfs",
                    "env_file",
                    "docker_args",
                ];
                for _ in 0..1 + self.below(6) {
                    // Mostly distinct keys: a duplicate only fails the file.
                    let key = keys.swap_remove(self.below(keys.len()));
                    let value = match key {
                        "image" | "restart" | "user" | "mem_limit" => {
                            format!(" {}{}\n", self.scalar(), self.line_end())
                        }
                        "init" | "oneshot" => format!(
                            " {}\n",
                            self.pick(&["true", "false", "True", "yes", "'true'", "1"])
                        ),
                        "command" if self.below(3) == 0 => self.literal(4),
                        "command" | "tmpfs" | "env_file" if self.below(2) == 0 => {
                            format!(" {}\n", self.scalar())
                        }
                        "command" | "tmpfs" | "env_file" | "ports" | "volumes" | "docker_args" => {
                            self.list(4)
                        }
                        "environment" | "labels" if self.below(3) == 0 => self.list(4),
                        "environment" | "labels" => self.map(4, KEYS),
                        "depends_on" => self.list(4),
                        "systemd" => format!(
                            "\n      Service:{}",
                            self.map(6, &["TimeoutStartSec", "Nice", "X"])
                        ),
                        "healthcheck" => format!(
                            "\n      test:{}      interval: {}\n",
                            self.list(6),
                            self.scalar()
                        ),
                        _ => self.value(4, 0),
                    };
                    text += &format!("    {key}:{value}");
                }
            }
            text
        }

        /// `instances:` and `defaults:`, or either, or neither, with values
        /// of every shape.
        fn instances(&mut self) -> String {
            let mut text = String::new();
            for section in ["instances", "defaults"] {
                if self.below(2) == 0 {
                    text += &format!("{section}:\n");
                    for name in ["live", "staging"] {
                        text += &format!("  {name}:{}", self.value(2, 1));
                    }
                }
            }
            text
        }
    }

    /// Literal block scalars (`|`), the usual way to write a script, with
    /// what may follow and surround their lines: read as serde-saphyr
    /// reads them, value and place.
    #[test]
    fn agrees_with_serde_saphyr_on_literal_blocks() {
        let mut read = 0;
        for seed in 1..3000u64 {
            let mut dice = Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let block = |dice: &mut Dice, indent: usize| {
                let pad = " ".repeat(indent + 2 + dice.below(2) * 2);
                let header = dice.pick(&[
                    "|",
                    "|",
                    "|-",
                    "| # a note",
                    "|-  #x",
                    "|+",
                    "|2",
                    ">",
                    "|x",
                ]);
                let mut text = format!(" {header}\n");
                for _ in 0..1 + dice.below(5) {
                    text += &match dice.below(7) {
                        0 => "\n".to_string(),
                        1 => format!("{}\n", " ".repeat(dice.below(indent + 6))),
                        2 => format!("{pad}# not a comment\n"),
                        3 => format!("{pad}  deeper: {}\n", dice.scalar()),
                        4 => format!("{}less\n", " ".repeat(indent + 1)),
                        _ => format!("{pad}{}\n", dice.scalar()),
                    };
                }
                text
            };
            let mut text = "app: x\nservices:\n  web:\n    image: nginx\n    command:".to_string();
            text += &block(&mut dice, 4);
            text += ["", "    # after\n", "  # after\n", "# after\n", "\n\n"][dice.below(5)];
            if dice.below(2) == 0 {
                text += "    environment:\n      A:";
                text += &block(&mut dice, 6);
            }
            if dice.below(2) == 0 {
                text += "  db:\n    image: postgres\n";
            }
            read += usize::from(agrees(&text));
        }
        assert!(read > 300, "read quickly: {read} of 3000");
    }

    /// A big `services:` block is read in parts on all cores (see
    /// `Reader::split_services`): read as one reader reads it, whatever
    /// stands around the places it is cut (a literal block, comments, blank
    /// lines, a less indented comment) and after the block; and refused
    /// when a service is named in two parts.
    #[test]
    fn agrees_with_serde_saphyr_on_big_templates_read_in_parts() {
        let (mut read, mut refused_duplicates) = (0, 0);
        for seed in 1..48u64 {
            let mut dice = Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            // From two parts to more than two cores have.
            let count = MIN_SERVICES_PER_PART * (2 + dice.below(8)) + dice.below(40);
            let mut text = format!(
                "# a big template\napp: big\nservices:{}\n",
                dice.pick(&["", " # the services", "  "])
            );
            // In some files a service of a later part has the name of one
            // of an earlier part: serde-saphyr refuses them.
            let duplicate = (dice.below(6) == 0).then(|| count / 2 + 1 + dice.below(count / 2 - 1));
            for n in 0..count {
                let name = match duplicate {
                    Some(at) if n == at => format!("s{}", dice.below(count / 2)),
                    _ => format!("s{n}"),
                };
                // Mostly services of the kind big templates have; one in
                // many with tricky scalars in every style, which the quick
                // reader often leaves to serde-saphyr.
                text += &if dice.below(600) == 0 {
                    dice.service(&name)
                } else {
                    format!(
                        "  {name}:\n    image: app/{name}:1.{n}\n    command:{}    environment:\n      PORT: \"80{n}\"\n      {}: \"{{{{ instance }}}}\"\n    ports: [\"{n}:80\"]\n",
                        dice.pick(&[
                            " [serve, --port, \"80\"]\n",
                            " |\n      run\n\n        --fast\n",
                            " |-\n      run\n    # less\n"
                        ]),
                        dice.pick(&["HOST", "'q'", "\"d\""]),
                    )
                };
                text += ["", "", "", "\n", "    # note\n", "# note\n", " # note\n"][dice.below(7)];
            }
            if dice.below(2) == 0 {
                text += "volumes:\n  data: {}\n";
            }
            text += &if dice.below(4) == 0 {
                dice.instances()
            } else {
                "instances:\n  live: {domain: a.example}\n  staging:\n".to_string()
            };
            if let Some(mut reader) = Reader::new(&text).filter(|_| crate::parallel::cores() > 1) {
                let parts = reader.split_services().len() + 1;
                let expected =
                    (crate::parallel::cores() * PARTS_PER_CORE).min(count / MIN_SERVICES_PER_PART);
                assert_eq!(parts, expected, "not cut as expected:\n{text}");
            }
            let agreed = agrees(&text);
            read += usize::from(agreed);
            if duplicate.is_some() {
                assert!(!agreed, "a service named twice was read:\n{text}");
                refused_duplicates += 1;
            }
        }
        assert!(read > 15, "read quickly: {read} of 47");
        assert!(
            refused_duplicates > 2,
            "{refused_duplicates} with a name twice"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// Generated templates, tricky scalars in every place and style:
        /// whatever the quick reader reads, serde-saphyr reads the same.
        #[test]
        fn agrees_with_serde_saphyr_on_generated_templates(seed in 1..u64::MAX) {
            agrees(&Dice(seed).template());
        }
    }
}
