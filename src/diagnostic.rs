//! Errors that point at the user's text: every problem found in a template
//! carries the file, the byte range of the offending text and, where one
//! helps, a hint. They are reported together through miette, which draws the
//! `file:line:column` header, the snippet and the underline.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

mod layout;
mod report;
pub use report::{Printable, install as install_report_hook};

/// `eprintln!` for unitgen's own lines (warnings, progress, notes): one
/// line, [`shown`] (a line feed too: a Docker or systemd error, a fleet
/// answer or a file's name it quotes adds no line of its own).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::diagnostic::shown(&format!($($arg)*)))
    };
}

/// A loaded input file: its name as shown to the user and its text.
pub type SourceFile = Arc<NamedSource<String>>;

/// Where in a source file something was written.
#[derive(Clone, Debug)]
pub struct Location {
    pub file: SourceFile,
    pub span: SourceSpan,
}

impl Location {
    /// The location of a value of `file` at the place its reader recorded.
    pub fn from_yaml(file: &SourceFile, at: &crate::template::spanned::At) -> Self {
        // Syntax errors come from the scanner, which knows only line and
        // column (in characters): the byte offset is computed from them, or
        // every such error would point at the file's first byte.
        let (offset, len) = match (at.byte_offset(), at.byte_len()) {
            (Some(offset), len) => (offset as usize, len.unwrap_or(0) as usize),
            (None, _) => (
                byte_offset(file.inner(), at.line() as usize, at.column() as usize),
                1,
            ),
        };
        Location {
            file: file.clone(),
            span: (offset, len).into(),
        }
    }

    /// A sub-range of this location, for pointing into a templated string.
    pub fn narrow(&self, start: usize, len: usize) -> Self {
        Location {
            file: self.file.clone(),
            span: (self.span.offset() + start, len).into(),
        }
    }
}

/// Past this column, a problem's snippet is not drawn: a line that wide
/// shows nothing one can read, and miette's renderer panics on a column
/// past 65535 ("Formatting argument out of range"), which a one-line file
/// or a long value reaches. Such a problem says `file:line:column` in its
/// message instead.
const WIDEST_SHOWN: usize = 10_000;

impl Location {
    /// The 1-based line and column (in characters) where this location
    /// starts, when it reaches past [`WIDEST_SHOWN`] on its line.
    fn too_wide(&self) -> Option<(usize, usize)> {
        let text = self.file.inner().as_bytes();
        let start = self.span.offset().min(text.len());
        let end = (start + self.span.len()).min(text.len());
        let line_start = |at: usize| {
            text[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
        };
        // UTF-8 continuation bytes are no characters of their own.
        let column = |at: usize| {
            (text[line_start(at)..at].iter())
                .filter(|&&b| b & 0xC0 != 0x80)
                .count()
        };
        if column(start).max(column(end)) <= WIDEST_SHOWN {
            return None;
        }
        let line = text[..start].iter().filter(|&&b| b == b'\n').count() + 1;
        Some((line, column(start) + 1))
    }
}

/// The byte offset of a 1-based line and column (counted in characters),
/// clamped to the text.
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let line_start = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>();
    let rest = &text[line_start.min(text.len())..];
    let within = rest
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(rest.len(), |(i, _)| i);
    (line_start + within).min(text.len())
}

/// One problem in the user's input.
#[derive(Debug, Clone)]
pub struct Problem {
    pub message: String,
    pub at: Option<Location>,
    pub label: Option<String>,
    pub help: Option<String>,
    /// Other places the problem involves (the first of two claims), drawn
    /// with `at` when they are in its file.
    pub also: Vec<(Location, String)>,
}

impl Problem {
    pub fn new(message: impl Into<String>) -> Self {
        Problem {
            message: printable(&message.into()),
            at: None,
            label: None,
            help: None,
            also: Vec::new(),
        }
    }

    /// One more place the problem involves, with what it is there.
    pub fn also_at(mut self, at: &Location, label: impl Into<String>) -> Self {
        self.also.push((at.clone(), printable(&label.into())));
        self
    }

    /// Where the problem is. A located problem is one line, the snippet
    /// below it showing the value as written: a line feed in a value the
    /// message quotes (a name, a path from the file) is shown as `\n`, or
    /// the file could put lines of its own into the error.
    pub fn at(mut self, at: &Location) -> Self {
        self.at = Some(at.clone());
        self.message = self.message.replace('\n', "\\n");
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(printable(&label.into()));
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(printable(&help.into()));
        self
    }
}

/// `value` as a message quotes it: every character that would act on the
/// terminal rather than be seen is written as an escape (`\n`, `\r`, `\t`,
/// `\u{1b}`). A value is one piece of text: a line feed in it is shown, not
/// obeyed, or a name could add lines of its own to an error. Every message
/// that shows a value the user (or a file, Docker, etcd or fleet) gave goes
/// through this or through [`printable`].
pub fn shown(value: &str) -> String {
    escaped(value, false)
}

/// A command a message tells the user to run, as a line of its own (the
/// message puts it between line breaks): indented, so that no report
/// breaks it at any width (see `layout`) and it is copied whole, as cargo
/// and git print theirs. Each of `words` is one word for the shell,
/// quoted as sh needs it, and what a terminal would obey is shown escaped.
pub fn command_line<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    let words: Vec<String> = (words.into_iter())
        .map(|word| crate::escape::sh_quote(word.as_ref()))
        .collect();
    format!("    {}", shown(&words.join(" ")))
}

/// A path as a message quotes it (see [`shown`]).
pub fn shown_path(path: &std::path::Path) -> String {
    shown(&path.display().to_string())
}

/// `text` (a whole message, which may have lines of its own) with every
/// character that would act on the terminal but line feeds and tabs written
/// as an escape: a carriage return, an escape sequence, a backspace or a
/// bidirectional override in a value would rewrite what the terminal shows.
/// The net under every message unitgen prints (see `report` and `say!`).
pub fn printable(text: &str) -> String {
    escaped(text, true)
}

/// What another program wrote as its error (Docker, restic, etcdctl, a
/// D-Bus peer, fleet), as one of unitgen's messages quotes it. Such text
/// may span lines (Docker's and restic's do) and is kept so, but each line
/// after its first is indented under a margin (`  | `), as a failure
/// report quotes a command's last lines: a line feed in it cannot start a
/// line that passes for unitgen's own (`nothing on the host was
/// changed`). Blank space around it goes; what else a terminal would obey
/// is escaped (see [`printable`]).
pub fn quoted_output(text: &str) -> String {
    let mut lines = (text.trim().lines()).map(|line| escaped(line.trim_end(), true));
    let mut out = lines.next().unwrap_or_default();
    for line in lines {
        out.push_str("\n  | ");
        out.push_str(&line);
    }
    out
}

/// Characters a terminal obeys rather than shows: controls (C0, DEL, C1)
/// and the Unicode formatting characters that reorder or break what follows
/// them (bidirectional embeddings, overrides, isolates and marks; line and
/// paragraph separators); and those drawn as nothing, which hide in what a
/// reader is shown (`/srv/da\u{200b}ta` reads as `/srv/data`; tag
/// characters carry a hidden ASCII text).
pub(crate) fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
        || invisible(c)
}

/// Unicode's default-ignorable characters, which a font draws as nothing
/// (zero-width spaces and joiners, the word joiner and invisible operators,
/// the byte-order mark, fillers, tags), but the variation selectors
/// U+FE00-FE0F, which choose how the character before them is drawn
/// (emoji).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{34f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2065}'
        | '\u{206a}'..='\u{206f}' | '\u{3164}' | '\u{feff}' | '\u{ffa0}'
        | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// `\uXXXX`, or `\UXXXXXXXX` past the Basic Multilingual Plane: how
/// systemd's quoted words and YAML's double-quoted scalars write a
/// character by its number.
pub(crate) fn unicode_escape(c: char) -> String {
    match u32::from(c) {
        n @ 0..=0xffff => format!("\\u{n:04x}"),
        n => format!("\\U{n:08x}"),
    }
}

fn escaped(text: &str, keep_lines: bool) -> String {
    if !text.chars().any(acts_on_terminal) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\t' if keep_lines => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if acts_on_terminal(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl Problem {
    /// Where the problem is, when its snippet is drawn.
    fn shown_at(&self) -> Option<&Location> {
        self.at.as_ref().filter(|at| at.too_wide().is_none())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match &self.at {
            Some(at) => match at.too_wide() {
                Some((line, column)) => write!(f, "\n  at {}:{line}:{column}", at.file.name()),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.shown_at()
            .map(|at| at.file.as_ref() as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let at = self.shown_at()?;
        let label = self.label.clone().or_else(|| Some(String::from("here")));
        let first = LabeledSpan::new_with_span(label, at.span);
        // A snippet shows one file: other places in it are drawn, each once.
        let also = (self.also.iter())
            .filter(|(place, _)| {
                place.file.name() == at.file.name()
                    && place.span != at.span
                    && place.too_wide().is_none()
            })
            .map(|(place, label)| LabeledSpan::new_with_span(Some(label.clone()), place.span));
        Some(Box::new(std::iter::once(first).chain(also)))
    }
}

/// Every problem found in one run, reported at once.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the problems `found` has that are not here yet: a problem of a
    /// template (or of an entry instances share) is found once per
    /// instance compiled, and is reported once.
    pub fn extend_unique(&mut self, found: Problems) {
        for problem in found.0 {
            let duplicate = self.0.iter().any(|p| {
                p.message == problem.message
                    && p.at.as_ref().map(|a| (a.span, a.file.name()))
                        == problem.at.as_ref().map(|a| (a.span, a.file.name()))
            });
            if !duplicate {
                self.push(problem);
            }
        }
    }

    /// `Ok(value)` when nothing was found, else every problem.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Problem> for Problems {
    fn from(problem: Problem) -> Self {
        Problems(vec![problem])
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many if many.len() > MAX_SHOWN => write!(
                f,
                "{} problems found (the first {MAX_SHOWN} are shown)",
                many.len()
            ),
            many => write!(f, "{} problems found", many.len()),
        }
    }
}

impl std::error::Error for Problems {}

impl Diagnostic for Problems {
    // A single problem is shown as itself; several as a list of related
    // diagnostics, each with its own snippet.
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.0.as_slice() {
            [one] => one.help(),
            _ => None,
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self.0.as_slice() {
            [one] => one.source_code(),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self.0.as_slice() {
            [one] => one.labels(),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.0.len() < 2 {
            return None;
        }
        Some(Box::new(
            self.0.iter().take(MAX_SHOWN).map(|p| p as &dyn Diagnostic),
        ))
    }
}

/// How many problems one report shows: past that, more of them helps no
/// one, and drawing each snippet of a big file costs time.
const MAX_SHOWN: usize = 50;

/// "did you mean `environment`?" for a misspelt name, when one is close:
/// few edits away (a swap of two neighbours is one edit, as in `imgae` or
/// `bd` for `db`, which a likeness score alone misses in short names), or
/// else much alike (a name shortened or lengthened: `env`).
pub fn did_you_mean<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let length = wrong.chars().count();
    let most_edits = match length {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    known
        .into_iter()
        .filter_map(|k| {
            let edits = strsim::osa_distance(wrong, k);
            let alike = strsim::jaro_winkler(wrong, k);
            let close = edits <= most_edits && edits < length;
            (close || alike > 0.8).then_some((edits, alike, k))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, k)| format!("did you mean `{k}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found in round 10: a program's error was put into unitgen's
    /// messages with its line feeds, so a registry's or a D-Bus peer's
    /// message could add a line that read as unitgen's own.
    #[test]
    fn a_programs_error_cannot_add_a_line_of_unitgens() {
        let docker = "Error response from daemon: denied\nthe previous revision was restored \
                      and is running again\r\n\u{1b}[2Kdone\u{2028}x\n\n";
        let quoted = quoted_output(docker);
        assert_eq!(
            quoted,
            "Error response from daemon: denied\n  | the previous revision was restored and \
             is running again\n  | \\u{1b}[2Kdone\\u{2028}x"
        );
        let message =
            format!("apply of blog/prod failed: {quoted}\nnothing on the host was changed");
        // Each line of the program's but its first is under the margin.
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 4, "{message}");
        assert!(
            lines[1..3].iter().all(|l| l.starts_with("  | ")),
            "{message}"
        );
        assert_eq!(quoted_output("  one line\n"), "one line");
        assert_eq!(quoted_output("a\r\nb"), "a\n  | b");
    }

    #[test]
    fn control_characters_of_quoted_values_are_shown_as_escapes() {
        let problem = Problem::new("`a\rb\u{1b}[2Jc\u{9b}` is not a name\nsecond line")
            .help("x\u{8}")
            .label("\u{7}");
        assert_eq!(
            problem.message,
            "`a\\rb\\u{1b}[2Jc\\u{9b}` is not a name\nsecond line"
        );
        assert_eq!(problem.help.as_deref(), Some("x\\u{8}"));
        assert_eq!(problem.label.as_deref(), Some("\\u{7}"));
    }

    #[test]
    fn a_problem_far_along_a_long_line_says_where_without_a_snippet() {
        // miette's renderer panicked on a column past 65535.
        let text = format!("a: [{}, oops]\nb: 1\n", "\"é\"".repeat(30_000));
        let file: SourceFile = Arc::new(NamedSource::new("u.yaml", text.clone()));
        let far = text.find("oops").unwrap();
        let problem = Problem::new("bad").at(&Location {
            file: file.clone(),
            span: (far, 4).into(),
        });
        let mut shown = String::new();
        miette::GraphicalReportHandler::new()
            .render_report(&mut shown, &problem)
            .unwrap();
        assert!(shown.contains("at u.yaml:1:90007"), "{shown}");
        // Near the start of a line, the snippet is drawn as before.
        let near = Problem::new("bad").at(&Location {
            file,
            span: (text.find("b: 1").unwrap(), 1).into(),
        });
        let mut shown = String::new();
        miette::GraphicalReportHandler::new()
            .render_report(&mut shown, &near)
            .unwrap();
        assert!(shown.contains("[u.yaml:2:1]"), "{shown}");
        assert_eq!(near.to_string(), "bad");
    }

    #[test]
    fn a_swap_of_two_letters_is_one_edit_away() {
        let keys = [
            "image",
            "environment",
            "healthcheck",
            "db",
            "web",
            "volumes",
        ];
        for (wrong, meant) in [
            ("imgae", "image"),
            ("bd", "db"),
            ("ewb", "web"),
            ("enviroment", "environment"),
            ("healtcheck", "healthcheck"),
            ("env", "environment"),
            ("volumse", "volumes"),
        ] {
            let hint = did_you_mean(wrong, keys);
            assert_eq!(hint, Some(format!("did you mean `{meant}`?")), "{wrong}");
        }
        for unlike in ["x", "zz", "network_mode"] {
            assert_eq!(did_you_mean(unlike, keys), None, "{unlike}");
        }
    }

    #[test]
    fn line_and_column_become_a_byte_offset() {
        let text = "a: 1\nb: ü\n  c: 2\n";
        assert_eq!(byte_offset(text, 1, 1), 0);
        assert_eq!(byte_offset(text, 2, 4), 8);
        // Columns count characters: `ü` is two bytes.
        assert_eq!(byte_offset(text, 3, 3), 13);
        assert_eq!(byte_offset(text, 9, 9), text.len());
    }
}
