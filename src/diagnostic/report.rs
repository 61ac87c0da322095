//! The one way an error reaches the terminal: every report unitgen prints
//! (a template's problems, an error of Docker, systemd, etcd or fleet, a
//! path it could not read) is copied into a [`Printable`] first, whose
//! message, help, labels, causes and source snippet have the characters a
//! terminal obeys written as escapes (see [`super::printable`]). Then no
//! value in any error, whatever made it and however its message was
//! formatted, can move the cursor, clear the screen or reorder the line.
//! miette's own colours are added after, by its handler, so they stay,
//! and its lines are laid out to be copied from (see [`super::layout`]).

use std::fmt;

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteHandler, MietteHandlerOpts, MietteSpanContents,
    ReportHandler, Severity, SourceCode, SourceSpan, SpanContents,
};

use super::{acts_on_terminal, layout, printable};

/// Installs the handler that prints every report as a [`Printable`].
pub fn install() {
    // Only fails if one is installed already, which is then this one.
    let _ = miette::set_hook(Box::new(|_| {
        let handler = layout::laid_out(MietteHandlerOpts::new(), layout::width());
        Box::new(Escaping(handler.build()))
    }));
}

struct Escaping(MietteHandler);

impl ReportHandler for Escaping {
    fn debug(&self, error: &dyn Diagnostic, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(&Printable::of(error), f)
    }
}

/// A diagnostic as it may be shown: an owned copy with every text escaped.
#[derive(Debug)]
pub struct Printable {
    message: String,
    code: Option<String>,
    help: Option<String>,
    url: Option<String>,
    severity: Option<Severity>,
    labels: Vec<LabeledSpan>,
    source: Option<Window>,
    related: Vec<Printable>,
    cause: Option<Box<Printable>>,
    /// Whether the cause was a diagnostic (drawn as one) or an error only
    /// (drawn as a line of the chain), as miette draws the original.
    cause_is_diagnostic: bool,
}

impl Printable {
    pub fn of(error: &dyn Diagnostic) -> Self {
        let text = |d: Option<Box<dyn fmt::Display + '_>>| d.map(|d| printable(&d.to_string()));
        let labels: Vec<LabeledSpan> = (error.labels().into_iter().flatten())
            .map(|label| {
                let text = label.label().map(printable);
                match label.primary() {
                    true => LabeledSpan::new_primary_with_span(text, *label.inner()),
                    false => LabeledSpan::new_with_span(text, *label.inner()),
                }
            })
            .collect();
        let source = error
            .source_code()
            .and_then(|code| Window::around(code, &labels));
        let cause_is_diagnostic = error.diagnostic_source().is_some();
        let cause = match error.diagnostic_source() {
            Some(inner) => Some(Box::new(Printable::of(inner))),
            None => std::error::Error::source(error).map(|e| Box::new(Printable::plain(e))),
        };
        Printable {
            message: printable(&error.to_string()),
            code: text(error.code()),
            help: text(error.help()),
            url: text(error.url()),
            severity: error.severity(),
            labels,
            source,
            related: (error.related().into_iter().flatten())
                .map(Printable::of)
                .collect(),
            cause,
            cause_is_diagnostic,
        }
    }

    /// A cause that is an error only, not a diagnostic.
    fn plain(error: &(dyn std::error::Error + 'static)) -> Self {
        Printable {
            message: printable(&error.to_string()),
            code: None,
            help: None,
            url: None,
            severity: None,
            labels: Vec::new(),
            source: None,
            related: Vec::new(),
            cause: error.source().map(|e| Box::new(Printable::plain(e))),
            cause_is_diagnostic: false,
        }
    }
}

impl fmt::Display for Printable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Printable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl Diagnostic for Printable {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code
            .as_ref()
            .map(|c| Box::new(c) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<Severity> {
        self.severity
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.url
            .as_ref()
            .map(|u| Box::new(u) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self.labels.is_empty() {
            true => None,
            false => Some(Box::new(self.labels.iter().cloned())),
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self.related.is_empty() {
            true => None,
            false => Some(Box::new(self.related.iter().map(|r| r as &dyn Diagnostic))),
        }
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        (self.cause.as_deref())
            .filter(|_| self.cause_is_diagnostic)
            .map(|c| c as &dyn Diagnostic)
    }
}

/// Lines a snippet may show around its labels: more than the handler draws
/// (one before and one after), so that every read it makes is inside.
const CONTEXT: usize = 4;

/// The part of a source file a report's snippet shows, with the characters a
/// terminal obeys replaced one byte for one byte: miette places labels,
/// lines and columns by byte offsets, which stay those of the file.
#[derive(Debug)]
struct Window {
    name: Option<String>,
    /// Where the window starts in the file: its byte offset and line.
    offset: usize,
    line: usize,
    text: Vec<u8>,
}

impl Window {
    fn around(code: &dyn SourceCode, labels: &[LabeledSpan]) -> Option<Window> {
        let start = labels.iter().map(|l| l.offset()).min()?;
        let end = labels.iter().map(|l| l.offset() + l.len()).max()?;
        let read = code
            .read_span(&(start, end - start).into(), CONTEXT, CONTEXT)
            .ok()?;
        Some(Window {
            name: read.name().map(printable),
            offset: read.span().offset(),
            line: read.line(),
            text: shown_in_place(read.data()),
        })
    }
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let within = span
            .offset()
            .checked_sub(self.offset)
            .ok_or(MietteError::OutOfBounds)?;
        let read = self
            .text
            .as_slice()
            .read_span(&(within, span.len()).into(), before, after)?;
        let at: SourceSpan = (read.span().offset() + self.offset, read.span().len()).into();
        // The window starts at a line's start: columns need no shift.
        let (line, column, lines) = (
            read.line() + self.line,
            read.column(),
            read.line_count() + self.line,
        );
        Ok(Box::new(match &self.name {
            Some(name) => {
                MietteSpanContents::new_named(name.clone(), read.data(), at, line, column, lines)
            }
            None => MietteSpanContents::new(read.data(), at, line, column, lines),
        }))
    }
}

/// `data` with each character a terminal obeys (but line ends and tabs)
/// replaced by as many bytes: `?` for one byte (a C0 control, DEL), and for
/// more (a C1 control, a bidirectional override) U+FFFD padded with `?` to
/// the same length; a carriage return alone (a line end for YAML and for
/// miette's count of lines, but printed as it is) by a line feed. The
/// message says which character it was.
fn shown_in_place(data: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(data) else {
        // Not UTF-8: miette would show it as replacement characters anyway.
        return (data.iter().enumerate())
            .map(|(i, &b)| match b {
                b'\r' if data.get(i + 1) == Some(&b'\n') => b,
                b'\r' => b'\n',
                b'\n' | b'\t' => b,
                b if b < 0x20 || b == 0x7f => b'?',
                b => b,
            })
            .collect();
    };
    let mut out = Vec::with_capacity(data.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let obeyed = acts_on_terminal(c);
        match c {
            '\n' | '\t' => out.push(c as u8),
            '\r' if chars.peek() == Some(&'\n') => out.push(b'\r'),
            '\r' => out.push(b'\n'),
            c if obeyed && c.len_utf8() == 1 => out.push(b'?'),
            c if obeyed && c.len_utf8() == 2 => out.extend_from_slice(b"??"),
            c if obeyed => {
                out.extend_from_slice("\u{fffd}".as_bytes());
                out.extend(std::iter::repeat_n(b'?', c.len_utf8() - 3));
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource};

    use super::*;
    use crate::diagnostic::{Location, Problem};

    fn rendered(error: &dyn Diagnostic) -> String {
        let mut out = String::new();
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
            .render_report(&mut out, &Printable::of(error))
            .unwrap();
        out
    }

    #[test]
    fn no_text_of_a_report_reaches_the_terminal_raw() {
        // A carriage return alone ends a line, for YAML as for miette.
        let text = "a: 1\rz: 0\nimage: \"x\u{1b}[2J\u{202e}y\"\nb: 2\n".to_string();
        let file = Arc::new(NamedSource::new("t\u{7}.yaml", text.clone()));
        let at = text.find('\u{1b}').unwrap();
        let problem = Problem::new("bad").at(&Location {
            file,
            span: (at, 1).into(),
        });
        let shown = rendered(&problem);
        let raw = |c: char| (c.is_control() && c != '\n') || c == '\u{202e}';
        assert!(!shown.chars().any(raw), "{shown:?}");
        // The place is the file's own: line 3, byte column 10.
        assert!(shown.contains("[t\\u{7}.yaml:3:10]"), "{shown}");
        assert!(shown.contains("image: \"x?[2J\u{fffd}y\""), "{shown}");

        // An error made anywhere else, with a cause chain.
        let io = std::io::Error::other("gone\r\u{1b}[1A");
        let report = miette::Report::msg(io).wrap_err("reading `a\u{9b}b`");
        let shown = rendered(report.as_ref());
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert!(shown.contains("gone\\r\\u{1b}[1A"), "{shown}");
        assert!(shown.contains("reading `a\\u{9b}b`"), "{shown}");
    }
}
