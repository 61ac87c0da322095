//! Writing the imported template: a small YAML writer that keeps the order it
//! is given, puts comments where the user must look, and quotes a scalar only
//! when YAML would otherwise read it as something else.

/// A scalar to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A string: quoted when it would not read back as the same string.
    Text(String),
    /// Written as is: a number or boolean for a key that takes one.
    Plain(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    List(Vec<Scalar>),
    Map(Map),
}

impl Value {
    pub fn text(s: impl Into<String>) -> Value {
        Value::Scalar(Scalar::Text(s.into()))
    }

    pub fn plain(s: impl Into<String>) -> Value {
        Value::Scalar(Scalar::Plain(s.into()))
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map {
    pub entries: Vec<Entry>,
    /// Write a blank line between entries (the document's sections, the
    /// services), as compose files are written.
    pub spaced: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    /// Comment lines written above the key.
    pub comment: Vec<String>,
}

impl Map {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// Sets `key`, keeping its place if it is there already.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(entry) => entry.value = value,
            None => self.entries.push(Entry {
                key: key.to_string(),
                value,
                comment: Vec::new(),
            }),
        }
    }

    /// Appends to the list at `key`, creating it here if it is new.
    pub fn push(&mut self, key: &str, item: Scalar) {
        if !matches!(self.get(key), Some(Value::List(_))) {
            self.set(key, Value::List(Vec::new()));
        }
        if let Some(Entry {
            value: Value::List(list),
            ..
        }) = self.entries.iter_mut().find(|e| e.key == key)
        {
            list.push(item);
        }
    }

    /// The map at `key`, created here if it is new.
    pub fn map(&mut self, key: &str) -> &mut Map {
        if !matches!(self.get(key), Some(Value::Map(_))) {
            self.set(key, Value::Map(Map::default()));
        }
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(Entry {
                value: Value::Map(map),
                ..
            }) => map,
            _ => unreachable!("set above"),
        }
    }

    /// Adds a comment line above `key`, which must be set.
    pub fn comment(&mut self, key: &str, line: impl Into<String>) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.key == key) {
            entry.comment.push(line.into());
        }
    }

    pub fn write(&self, out: &mut String) {
        write_map(self, 0, out);
    }
}

/// Lists longer than this are written one item per line.
const FLOW_WIDTH: usize = 80;

fn write_map(map: &Map, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (i, entry) in map.entries.iter().enumerate() {
        if map.spaced && i > 0 {
            out.push('\n');
        }
        for line in &entry.comment {
            comment_line(&pad, line, out);
        }
        let key = quote(&entry.key, false);
        match &entry.value {
            Value::Scalar(s) => out.push_str(&format!("{pad}{key}: {}\n", scalar(s, false))),
            Value::Map(m) if m.is_empty() => out.push_str(&format!("{pad}{key}: {{}}\n")),
            Value::Map(m) => {
                out.push_str(&format!("{pad}{key}:\n"));
                write_map(m, indent + 2, out);
            }
            Value::List(items) => {
                let flow: Vec<String> = items.iter().map(|i| scalar(i, true)).collect();
                let line = format!("{pad}{key}: [{}]", flow.join(", "));
                if line.len() <= FLOW_WIDTH && !line.contains('\n') {
                    out.push_str(&line);
                    out.push('\n');
                } else {
                    out.push_str(&format!("{pad}{key}:\n"));
                    for item in items {
                        out.push_str(&format!("{pad}  - {}\n", scalar(item, false)));
                    }
                }
            }
        }
    }
}

/// `# line`, or a bare `#` for an empty line. Comments quote the compose
/// file (a network's or a container's name): a line break or a character
/// YAML does not allow in a file is written as an escape, so that no text
/// of the compose file ends the comment and becomes keys of the template.
pub fn comment_line(pad: &str, line: &str, out: &mut String) {
    if line.is_empty() {
        out.push_str(&format!("{pad}#\n"));
        return;
    }
    out.push_str(pad);
    out.push_str("# ");
    for c in line.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&yaml_escape(c)),
            c => out.push(c),
        }
    }
    out.push('\n');
}

/// `\u202E`, or `\U000E0041` past the Basic Multilingual Plane.
fn yaml_escape(c: char) -> String {
    match u32::from(c) {
        n @ 0..=0xffff => format!("\\u{n:04X}"),
        n => format!("\\U{n:08X}"),
    }
}

/// Characters written as escapes: controls (C0 and C1, tab aside), the
/// byte-order mark and the noncharacters YAML does not allow in a file,
/// the line and paragraph separators, which YAML 1.1 readers take for line
/// breaks, the bidirectional overrides, isolates and marks, which reorder
/// what a reviewer reads of the template (Trojan Source), and the
/// characters drawn as nothing (zero-width spaces, tags), which hide in it.
fn needs_escape(c: char) -> bool {
    (crate::diagnostic::acts_on_terminal(c) && c != '\t')
        || matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

fn scalar(s: &Scalar, flow: bool) -> String {
    match s {
        Scalar::Text(t) => quote(t, flow),
        Scalar::Plain(p) => p.clone(),
    }
}

/// `text` as a YAML scalar that reads back as the same string: plain when
/// that is safe, else double-quoted. `flow`: inside `[…]`, where `,[]{}`
/// end a plain scalar.
pub fn quote(text: &str, flow: bool) -> String {
    if is_plain_safe(text, flow) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&yaml_escape(c)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_plain_safe(text: &str, flow: bool) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    // Characters that start something else in YAML (`-` only before a space
    // or digit: `-b` and `--rm` are plain words).
    let starts_ok = match first {
        '-' => {
            let flag = text.strip_prefix("--").unwrap_or(&text[1..]);
            flag.starts_with(|c: char| c.is_ascii_alphabetic())
        }
        c => !c.is_whitespace() && !"?:,[]{}#&*!|>'\"%@`.".contains(c),
    };
    // Text that would end the scalar early, or start a comment or a map.
    let breaks = text.ends_with([' ', ':'])
        || text.contains(": ")
        || text.contains(['#', '{', '}'])
        // In `[…]`, older parsers also stop at any `:`.
        || (flow && text.contains([',', '[', ']', ':']))
        || text.chars().any(|c| c == '\t' || needs_escape(c));
    starts_ok && !breaks && !reads_as_other_type(text)
}

/// Text a YAML parser (1.1 or 1.2) could take for a boolean, null or number.
fn reads_as_other_type(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~", "=", "<<",
    ];
    if WORDS.contains(&text.to_ascii_lowercase().as_str()) {
        return true;
    }
    // Numbers in any base or form (`1e3`, `0x1F`, `1_000`, `1:30`, `.5`).
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && unsigned
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "xXoO._:+-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        for plain in [
            "redis:7",
            "postgres:15-alpine",
            "ghcr.io/acme/blog@sha256:ab12",
            "/var/lib/postgresql/data",
            "db-data:/var/lib/postgresql/data",
            "-b",
            "--rm",
            "5s",
            "512m",
            "hello world",
            "echo $HOME",
        ] {
            assert_eq!(quote(plain, false), plain, "{plain}");
        }
        for (text, quoted) in [
            ("", r#""""#),
            ("8080:80", r#""8080:80""#),
            ("1.10", r#""1.10""#),
            ("0x1F", r#""0x1F""#),
            ("1e3", r#""1e3""#),
            ("-1", r#""-1""#),
            ("no", r#""no""#),
            ("Yes", r#""Yes""#),
            ("off", r#""off""#),
            ("null", r#""null""#),
            ("~", r#""~""#),
            ("a: b", r#""a: b""#),
            ("key:", r#""key:""#),
            ("x #y", r#""x #y""#),
            ("{{ tag }}", r#""{{ tag }}""#),
            ("nginx:{{ tag }}", r#""nginx:{{ tag }}""#),
            ("*star", r#""*star""#),
            ("&anchor", r#""&anchor""#),
            ("!tag", r#""!tag""#),
            ("%x", r#""%x""#),
            ("@x", r#""@x""#),
            ("./data", r#""./data""#),
            (" lead", r#"" lead""#),
            ("say \"hi\"\n", r#""say \"hi\"\n""#),
            ("back\\slash\t", r#""back\\slash\t""#),
        ] {
            assert_eq!(quote(text, false), quoted, "{text}");
        }
        assert_eq!(quote("a,b", false), "a,b");
        assert_eq!(quote("a,b", true), r#""a,b""#);
        assert_eq!(quote("http://x", true), r#""http://x""#);
        assert_eq!(quote("---", false), r#""---""#);
    }

    #[test]
    fn a_comment_stays_one_comment_line() {
        let mut out = String::new();
        comment_line(
            "  ",
            "`front\ninstances: {x: {}}\r\u{2028}\u{85}\u{202e}`",
            &mut out,
        );
        assert_eq!(
            out,
            "  # `front\\ninstances: {x: {}}\\r\\u2028\\u0085\\u202E`\n"
        );
    }

    #[test]
    fn every_quoted_scalar_reads_back_the_same() {
        let hostile = [
            "8080:80",
            "1.10",
            "no",
            "a: b",
            "x #y",
            "{{ x }}",
            "*a",
            "&a",
            "!a",
            "|",
            ">",
            "'",
            "\"",
            "\\",
            "\n",
            "tab\there",
            "\u{7}",
            "\u{feff}bom",
            "line\u{2028}sep\u{85}",
            "bidi\u{202e}over\u{2066}isolate\u{200f}mark",
            "zero\u{200b}width\u{e0041}tag",
            "é ü 👍",
            "- x",
            "? x",
            "",
            " ",
        ];
        for text in hostile {
            let mut map = Map::default();
            map.set("k", Value::text(text));
            map.set("l", Value::List(vec![Scalar::Text(text.into())]));
            let mut yaml = String::new();
            map.write(&mut yaml);
            #[derive(serde::Deserialize)]
            struct Doc {
                k: String,
                l: Vec<String>,
            }
            let doc: Doc = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            assert_eq!((doc.k.as_str(), doc.l[0].as_str()), (text, text), "{yaml}");
            // As a key too, and the file shows every character as it reads.
            let mut map = Map::default();
            map.set(text, Value::text("v"));
            let mut as_key = String::new();
            map.write(&mut as_key);
            let doc: indexmap::IndexMap<String, String> =
                serde_saphyr::from_str(&as_key).unwrap_or_else(|e| panic!("{as_key}: {e}"));
            assert_eq!(doc.keys().collect::<Vec<_>>(), [text], "{as_key}");
            assert!(
                !(yaml + &as_key)
                    .chars()
                    .any(|c| crate::diagnostic::acts_on_terminal(c) && c != '\n'),
                "{text:?}"
            );
        }
    }

    #[test]
    fn writes_maps_lists_and_comments() {
        let mut map = Map::default();
        map.set("app", Value::text("blog"));
        let web = map.map("services").map("web");
        web.set("image", Value::text("nginx:1.27"));
        web.comment("image", "check this");
        web.push("ports", Scalar::Text("8080:80".into()));
        web.push("ports", Scalar::Text("443".into()));
        web.set("init", Value::plain("true"));
        web.map("environment");
        let mut yaml = String::new();
        map.write(&mut yaml);
        assert_eq!(
            yaml,
            "app: blog\n\
             services:\n  web:\n    # check this\n    image: nginx:1.27\n    \
             ports: [\"8080:80\", \"443\"]\n    init: true\n    environment: {}\n"
        );
        let long = "x".repeat(40);
        let mut map = Map::default();
        map.set(
            "command",
            Value::List(vec![Scalar::Text(long.clone()), Scalar::Text(long.clone())]),
        );
        let mut yaml = String::new();
        map.write(&mut yaml);
        assert_eq!(yaml, format!("command:\n  - {long}\n  - {long}\n"));
    }
}
