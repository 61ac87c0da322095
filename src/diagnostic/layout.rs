//! How a report is laid out, so that what a user copies from it runs.
//! miette wraps a report's lines at the terminal's width and, by default,
//! breaks them inside a word too: after a `/` or a `-`, or anywhere in a
//! word longer than the line, drawing its margin (`│`) into the cut. A path
//! or a command then came out in pieces that no copy joins. Here a line is
//! broken only at a space outside `code` (a command or a name a sentence
//! quotes), so a path, a URL or a quoted command is never cut; and a line
//! that begins with a space (a command on a line of its own, see
//! [`super::command_line`], or a report nested in another, drawn already)
//! is never broken: longer than the terminal, the terminal folds it, with
//! no margin in it, and it is copied whole as cargo's and git's commands
//! are.
//!
//! Reports are laid out at the width of the terminal stderr is; not on a
//! terminal, at `$COLUMNS` when set (as clap lays out `--help`), else not
//! at all: a file, a pipe or a CI log is wrapped by whatever shows it, and
//! a line broken there at 80 columns only puts a margin into the text
//! (and between what `grep` looks for).

use miette::MietteHandlerOpts;
use textwrap::core::Word;
use textwrap::{WordSeparator, WordSplitter};

/// Fewer columns than this are taken for this many: miette narrows the
/// width of a nested report by its indent, and panics below zero.
const NARROWEST: usize = 40;

/// The width to lay reports out at, if any (see the module's note).
pub fn width() -> Option<usize> {
    let columns = match terminal_size::terminal_size_of(std::io::stderr()) {
        Some((terminal_size::Width(columns), _)) => Some(usize::from(columns)),
        None => std::env::var("COLUMNS").ok()?.trim().parse().ok(),
    };
    columns.filter(|&c| c > 0).map(|c| c.max(NARROWEST))
}

/// `options` laid out at `width` (unwrapped for none), as the module says.
pub fn laid_out(options: MietteHandlerOpts, width: Option<usize>) -> MietteHandlerOpts {
    match width {
        None => options.wrap_lines(false),
        Some(width) => options
            .width(width)
            .break_words(false)
            .word_separator(WordSeparator::Custom(words))
            .word_splitter(WordSplitter::NoHyphenation),
    }
}

/// The words of one line of a report, where it may be broken: after a
/// run of spaces outside a `code` span (one closed on the line), nowhere
/// in a line that begins with a space or a tab. textwrap needs the words
/// to make up the line whole.
fn words(line: &str) -> Box<dyn Iterator<Item = Word<'_>> + '_> {
    if starts_indented(line) {
        return Box::new(std::iter::once(Word::from(line)));
    }
    let mut words = Vec::new();
    let mut start = 0;
    let mut in_code = false;
    let mut chars = line.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '`' => in_code = !in_code && line[at + 1..].contains('`'),
            ' ' if !in_code => {
                while chars.next_if(|&(_, c)| c == ' ').is_some() {}
                let end = chars.peek().map_or(line.len(), |&(at, _)| at);
                words.push(Word::from(&line[start..end]));
                start = end;
            }
            _ => {}
        }
    }
    if start < line.len() {
        words.push(Word::from(&line[start..]));
    }
    Box::new(words.into_iter())
}

/// Whether `line` begins with a space or a tab, past the colour codes
/// miette may start a line of a nested report with.
fn starts_indented(line: &str) -> bool {
    let mut rest = line;
    while let Some(code) = rest.strip_prefix("\u{1b}[") {
        match code.find(|c: char| ('\u{40}'..='\u{7e}').contains(&c)) {
            Some(end) => rest = &code[end + 1..],
            None => return false,
        }
    }
    rest.starts_with([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use miette::{Diagnostic, ReportHandler as _};

    use super::*;
    use crate::diagnostic::{Problem, Problems, command_line};

    /// `error` as the installed handler shows it at `width`, without colours.
    fn shown(error: &dyn Diagnostic, width: Option<usize>) -> String {
        struct Shown<'a>(miette::MietteHandler, &'a dyn Diagnostic);
        impl fmt::Debug for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.debug(self.1, f)
            }
        }
        let options = MietteHandlerOpts::new()
            .color(false)
            .unicode(true)
            .force_graphical(true);
        format!("{:?}", Shown(laid_out(options, width).build(), error))
    }

    #[test]
    fn commands_paths_and_names_are_never_cut_and_prose_fits_the_width() {
        let path = "/var/lib/unitgen/a-rather-long-app-name-live/revisions/0003";
        let command = command_line(["mv", path, "/tmp/kept aside"]);
        let problem = Problem::new(format!(
            "{path}/revision.json: unreadable: expected value at line 1 column 1\nto go on, \
             move it out of the history (its units stay there to read):\n{command}\n\
             `unitgen apply` then records the installed units again"
        ))
        .help("the DNS name it is known by: `cname: lb-1.provider.example` (a CNAME record)");
        let two = Problems(vec![problem.clone(), problem.clone()]);
        let cause = miette::Report::new(problem.clone()).wrap_err("applying blog/live");
        for error in [&problem as &dyn Diagnostic, &two, cause.as_ref()] {
            for width in [40, 57, 80, 200] {
                let said = shown(error, Some(width));
                assert!(
                    said.lines().any(|l| l.ends_with(&command)),
                    "{width}: {said}"
                );
                for whole in [
                    "`cname: lb-1.provider.example`",
                    "`unitgen apply`",
                    &format!("{path}/revision.json:"),
                ] {
                    assert!(said.contains(whole), "{width}: {whole}: {said}");
                }
                // A line wider than the width is one piece that cannot be
                // broken: a command, a path, a quoted name.
                for line in said.lines().filter(|l| l.chars().count() > width) {
                    let text = line.trim_start_matches([' ', '│', '×', '├', '╰', '─', '▶']);
                    let pieces = words(text.trim_start_matches("help: ")).count();
                    assert!(
                        pieces == 1 || line.ends_with(&command),
                        "{width}: {line:?} in\n{said}"
                    );
                }
                assert!(!said.contains("    with"), "{said}");
            }
            // Not on a terminal and without $COLUMNS: the lines as written.
            let said = shown(error, None);
            assert!(
                said.contains(&format!(
                    "{path}/revision.json: unreadable: expected value at line 1 column 1\n"
                )),
                "{said}"
            );
        }
    }

    fn split(line: &str) -> Vec<&str> {
        words(line).map(|w| w.word).collect()
    }

    #[test]
    fn a_line_breaks_at_spaces_outside_code_only() {
        assert_eq!(
            split("move it: `mv /a-b/c d` then  `unitgen apply`; a-b/c"),
            [
                "move",
                "it:",
                "`mv /a-b/c d`",
                "then",
                "`unitgen apply`;",
                "a-b/c"
            ]
        );
        // A backtick with no other after it quotes nothing.
        assert_eq!(split("a ` b"), ["a", "`", "b"]);
        assert_eq!(split("`a b` c `d"), ["`a b`", "c", "`d"]);
        // Runs of spaces stay between the words they part.
        let whitespace: Vec<&str> = words("a  b").map(|w| w.whitespace).collect();
        assert_eq!(whitespace, ["  ", ""]);
    }

    #[test]
    fn an_indented_line_is_one_word() {
        for line in ["    mv a b", "\tx y", "\u{1b}[31m  × a b", "  │ a b"] {
            assert_eq!(split(line), [line], "{line:?}");
        }
        assert_eq!(split("\u{1b}[31mred text"), ["\u{1b}[31mred", "text"]);
    }
}
