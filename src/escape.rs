//! Quoting for the two languages unitgen writes command lines in: systemd's
//! `Exec*=` syntax and POSIX `sh`. Every argument of every generated command
//! line goes through here, so that values with `%`, `$`, quotes, spaces,
//! backslashes, newlines or non-ASCII text reach the process byte for byte.
//!
//! It also holds the one rule for text that stands in a unit file as it is
//! ([`check_raw_value`]): systemd ends a line at `\n`, `\r` and NUL, joins a
//! line ending in a backslash with the next, and trims spaces around a
//! value, so such text is refused rather than written.

use std::fmt::Write as _;

use crate::diagnostic::{acts_on_terminal, unicode_escape};

/// The longest value unitgen writes into a unit: systemd reads at most
/// 1 MiB per (joined) line (`LONG_LINE_MAX`) and refuses to load a unit with
/// a longer one; escaping can grow a value up to four times, and one
/// `docker run` line carries all of a service's values (see
/// [`MAX_SERVICE_BYTES`]).
pub const MAX_VALUE_BYTES: usize = 32 * 1024;

/// The most text one service may carry in all its values together, so that
/// its `ExecStart=` line, escaped, stays well under systemd's 1 MiB.
pub const MAX_SERVICE_BYTES: usize = 128 * 1024;

/// Quotes one argument for a systemd `Exec*=` line.
///
/// systemd reads such a line in three passes, and each needs its own escape:
/// 1. specifiers (`%n`, `%i`, …) are expanded on the raw line: `%` → `%%`;
/// 2. the line is split into words, honouring double quotes and C escapes:
///    anything but a plain word is double-quoted with `\\`, `\"` and `\n`-style
///    escapes;
/// 3. `$VAR` and `${VAR}` are expanded in each word at exec time: `$` → `$$`.
///
/// A lone `;` is quoted too, since older systemd treated it as a command
/// separator.
pub fn systemd_arg(arg: &str) -> String {
    systemd_word(arg, Dollars::Double)
}

/// [`systemd_arg`] of `own` followed by `arg`, where `own` is unitgen's
/// own text holding specifiers that systemd is to expand
/// (`--certificatesResolvers.unitgen-%m.acme.email=`): `own` is written as
/// it is, `arg` escaped. `own` must be plain word characters and
/// specifiers systemd resolves (checked).
pub fn systemd_arg_after_specifiers(own: &str, arg: &str) -> String {
    assert!(
        !own.is_empty()
            && own.bytes().all(|b| b != b'$' && is_plain_word_byte(b))
            && check_specifiers(own).is_ok(),
        "{own:?} is no plain text with specifiers"
    );
    // Specifiers are expanded on the raw line, before word splitting: they
    // stand in quotes as well as outside.
    let mut out = String::with_capacity(own.len() + arg.len() + 2);
    if arg.bytes().all(is_plain_word_byte) {
        out.push_str(own);
        push_doubling(&mut out, arg, Dollars::Double);
    } else {
        out.push('"');
        out.push_str(own);
        push_quoted(&mut out, arg, Dollars::Double);
        out.push('"');
    }
    out
}

/// One word as systemd's word splitting reads it back: plain, or quoted.
fn systemd_word(word: &str, dollars: Dollars) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    push_word(&mut out, word, dollars);
    out
}

/// Appends [`systemd_word`]'s quoting of `word` to `out`.
fn push_word(out: &mut String, word: &str, dollars: Dollars) {
    push_word_of(out, &[word], dollars);
}

/// [`push_word`] of the word that is `parts` one after the other: each
/// character is quoted on its own, so the parts need no joining first.
fn push_word_of(out: &mut String, parts: &[&str], dollars: Dollars) {
    let plain = parts.iter().any(|part| !part.is_empty())
        && parts
            .iter()
            .all(|part| part.bytes().all(is_plain_word_byte));
    if plain {
        for part in parts {
            push_doubling(out, part, dollars);
        }
        return;
    }
    out.push('"');
    for part in parts {
        push_quoted(out, part, dollars);
    }
    out.push('"');
}

/// Appends a plain word, doubling `%` (and `$`, for `Dollars::Double`).
/// Runs of other characters are copied whole: this is on the path of every
/// argument of every unit.
fn push_doubling(out: &mut String, word: &str, dollars: Dollars) {
    let mut rest = word;
    while let Some(at) = rest
        .bytes()
        .position(|b| b == b'%' || (b == b'$' && dollars == Dollars::Double))
    {
        // ASCII at `at`: a char boundary, and the character is doubled.
        out.push_str(&rest[..=at]);
        out.push_str(&rest[at..=at]);
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// Whether systemd expands `$VAR` in the value being quoted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dollars {
    /// `Exec*=` lines: `$` is written `$$`.
    Double,
    /// `Environment=`: `$` stands for itself.
    Keep,
}

/// Appends `text` escaped for the inside of a double-quoted systemd word.
/// This is on the path of every script line of every unit: the text is
/// searched byte by byte for what needs an escape (a table lookup), and the
/// runs between are copied whole, rather than decoded char by char.
fn push_quoted(out: &mut String, text: &str, dollars: Dollars) {
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..]
        .iter()
        .position(|&b| MAY_NEED_ESCAPE[b as usize])
    {
        at += found;
        let byte = bytes[at];
        let escape = match byte {
            b'%' => "%%",
            b'$' if dollars == Dollars::Double => "$$",
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            b'\t' => "\\t",
            b'\r' => "\\r",
            // `\xNN` is one byte: right for ASCII controls only.
            0..=0x1f | 0x7f => "",
            // The first byte of a character that may act on a terminal
            // (a C1 control, a bidirectional override, a line separator,
            // a zero-width space): see below.
            0xc2 | 0xcd | 0xd8 | 0xe1 | 0xe2 | 0xe3 | 0xef | 0xf0 | 0xf3 => "",
            // `$` kept.
            _ => {
                at += 1;
                continue;
            }
        };
        out.push_str(&text[plain_from..at]);
        if !escape.is_empty() {
            out.push_str(escape);
            at += 1;
        } else if byte >= 0x80 {
            // `at` is a character's first byte (0xC2, 0xD8 and 0xE2 are no
            // continuation bytes). A C1 control as `\x85` would reach the
            // process as a lone byte that is not UTF-8: `\u0085` is the
            // character. A bidirectional override (U+202E) or isolate
            // written as it is would reorder what a reviewer's terminal or
            // pull request shows of the unit, hiding what it runs; as
            // `\u202e` the process gets the same character; so does a
            // zero-width one as `\u200b`, seen. Other characters with these
            // first bytes are kept.
            let c = text[at..].chars().next().expect("a character starts here");
            if acts_on_terminal(c) {
                out.push_str(&unicode_escape(c));
            } else {
                out.push(c);
            }
            at += c.len_utf8();
        } else {
            let _ = write!(out, "\\x{byte:02x}");
            at += 1;
        }
        plain_from = at;
    }
    out.push_str(&text[plain_from..]);
}

/// The bytes [`push_quoted`] stops at: the characters it escapes, ASCII
/// controls, `$` (escaped in `Exec*=` lines only) and the first bytes of the
/// other characters that act on a terminal ([`acts_on_terminal`]: 0xC2 for
/// the C1 controls and U+00AD, 0xD8 for U+061C, 0xE2 for U+200B-U+206F,
/// 0xCD, 0xE1, 0xE3, 0xEF, 0xF0 and 0xF3 for the other characters drawn as
/// nothing), and of other characters, which are kept.
const MAY_NEED_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    with_bytes(table, b"%$\\\"\x7f\xc2\xcd\xd8\xe1\xe2\xe3\xef\xf0\xf3")
};

/// A `/bin/sh -c` command line whose script is shown one statement per
/// line: systemd joins a line ending in `\` with the next (the backslash
/// becomes a space), inside quotes too, so each element of `script` must
/// end where sh may continue on the same line (`;`, `do`, `then`, `in`,
/// `;;`, `|`, `&&`, …).
pub fn systemd_shell(script: &[&str]) -> String {
    systemd_script("/bin/sh", script)
}

/// [`systemd_shell`] for a script that needs bash (`read -t`, process
/// substitution), which every systemd distribution ships as `/bin/bash`.
pub fn systemd_bash(script: &[&str]) -> String {
    systemd_script("/bin/bash", script)
}

/// A [`systemd_bash`] command line that many units share but for one word
/// (a container's name), escaped once: the pieces around the word.
pub struct PreparedBash {
    pieces: Vec<String>,
}

impl PreparedBash {
    /// `script` with `placeholder` wherever the word goes, never where a
    /// line starts.
    pub fn new(script: &[&str], placeholder: &str) -> Self {
        // Escaping maps each character on its own, but for a `#` or `;`
        // that starts a line: the escaped script is the escaped pieces
        // around the escaped word.
        assert!(
            !script
                .iter()
                .any(|line| line.trim_start().starts_with(placeholder)),
            "{placeholder} starts a line"
        );
        let mut hole = String::new();
        push_quoted(&mut hole, placeholder, Dollars::Double);
        let pieces: Vec<String> = (systemd_bash(script).split(&hole))
            .map(String::from)
            .collect();
        let holes: usize = script.iter().map(|l| l.matches(placeholder).count()).sum();
        assert_eq!(pieces.len(), holes + 1, "{placeholder} reads as other text");
        PreparedBash { pieces }
    }

    /// The command line with `word` for the placeholder.
    pub fn with(&self, word: &str) -> String {
        let bytes = self.pieces.iter().map(String::len).sum::<usize>();
        let mut out = String::with_capacity(bytes + self.pieces.len() * word.len() * 2);
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                push_quoted(&mut out, word, Dollars::Double);
            }
            out.push_str(piece);
        }
        out
    }
}

fn systemd_script(shell: &str, script: &[&str]) -> String {
    let mut out = format!("{shell} -c \"");
    for (i, line) in script.iter().enumerate() {
        if i == 0 {
            push_quoted(&mut out, line, Dollars::Double);
            continue;
        }
        out.push_str(" \\\n        ");
        // systemd reads a continued line whose first character (after
        // blanks) is `;` or `#` as a comment, and drops it: that character
        // is written as a C escape, which reads back as itself.
        let text = line.trim_start();
        let (blanks, text) = line.split_at(line.len() - text.len());
        push_quoted(&mut out, blanks, Dollars::Double);
        match text.strip_prefix(['#', ';']) {
            Some(rest) => {
                let _ = write!(out, "\\x{:02x}", text.as_bytes()[0]);
                push_quoted(&mut out, rest, Dollars::Double);
            }
            None => push_quoted(&mut out, text, Dollars::Double),
        }
    }
    out.push('"');
    out
}

/// Bytes that may stand unquoted in a systemd command-line word (all ASCII:
/// any other character is quoted).
fn is_plain_word_byte(b: u8) -> bool {
    PLAIN_WORD_BYTE[usize::from(b)]
}

/// [`is_plain_word_byte`] as a table: it is asked of every byte of every
/// argument of every unit.
const PLAIN_WORD_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric();
        byte += 1;
    }
    with_bytes(table, b"_-+=.,/:@%$")
};

/// `table` with each of `bytes` marked too (for the byte tables above).
const fn with_bytes(mut table: [bool; 256], bytes: &[u8]) -> [bool; 256] {
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

/// Joins arguments into one systemd command line (a single logical line).
pub fn systemd_command<S: AsRef<str>>(args: &[S]) -> String {
    let mut out = String::with_capacity(args.iter().map(|a| a.as_ref().len() + 3).sum());
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_word(&mut out, arg.as_ref(), Dollars::Double);
    }
    out
}

/// A command line written one group of words per line (`docker run`: the
/// program, then each flag with its value), so that a changed flag is a
/// one-line diff: systemd joins a line ending in ` \` with the next. The
/// words are quoted as by [`systemd_command`], into the one string.
pub struct CommandLines {
    text: String,
}

impl CommandLines {
    /// The command's first line: the program and its first words.
    pub fn new(first: &[&str]) -> Self {
        // A service's `docker run` is most of a kilobyte: no regrowth.
        let mut lines = CommandLines {
            text: String::with_capacity(1024),
        };
        lines.push_words(first);
        lines
    }

    /// Adds a line of `words`.
    pub fn line(&mut self, words: &[&str]) {
        self.text.push_str(" \\\n    ");
        self.push_words(words);
    }

    /// Adds a line of `flag` and its value, given in parts (`KEY`, `=`,
    /// `value`) that are quoted as one word.
    pub fn flag(&mut self, flag: &str, value: &[&str]) {
        self.line(&[flag]);
        self.text.push(' ');
        push_word_of(&mut self.text, value, Dollars::Double);
    }

    fn push_words(&mut self, words: &[&str]) {
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                self.text.push(' ');
            }
            push_word(&mut self.text, word, Dollars::Double);
        }
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

/// Quotes one `NAME=value` assignment for `Environment=`: as an `Exec*=`
/// argument, except that systemd expands no `$VAR` there, so `$` stays.
pub fn systemd_env(assignment: &str) -> String {
    systemd_word(assignment, Dollars::Keep)
}

/// `text` for a URL (a path segment, or a query value): every byte but the
/// unreserved ones (RFC 3986) and those in `kept` percent-encoded. The
/// names put there (units, containers, images) are the user's text.
pub fn percent_encoded(text: &str, kept: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || kept.contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Escapes a value for a non-command systemd key (`Description=`,
/// `MachineMetadata=`, …), where only specifiers are expanded. The value
/// must pass [`check_raw_value`] (compile refuses those that do not).
pub fn systemd_value(value: &str) -> String {
    debug_assert!(check_raw_value(value).is_ok(), "{value:?}");
    value.replace('%', "%%")
}

/// Whether `value` can stand, as written, as the whole value of one unit-file
/// directive and be read back by systemd exactly: `Err` says why not.
pub fn check_raw_value(value: &str) -> Result<(), String> {
    if let Some(c) = value.chars().find(|c| matches!(c, '\n' | '\r' | '\0')) {
        return Err(format!(
            "a unit value cannot contain {}: systemd ends the line there, and the rest would be read as directives of its own",
            match c {
                '\n' => "a line feed (\\n)",
                '\r' => "a carriage return (\\r)",
                _ => "a NUL byte",
            }
        ));
    }
    // Written as it is, such a character would act on the terminal of
    // whoever reads the unit (`render`, `plan`, `cat`, a pull request): an
    // escape sequence, a backspace or a bidirectional override can hide or
    // reorder what the unit says. A tab is only space.
    if let Some(c) = value.chars().find(|&c| c != '\t' && acts_on_terminal(c)) {
        return Err(format!(
            "a unit value cannot contain the character U+{:04X} as it is: it would act on the terminal of whoever reads the unit rather than be seen (in a quoted `Environment=` or `Exec*=` word, write it as `{}`)",
            u32::from(c),
            unicode_escape(c)
        ));
    }
    if ends_in_continuation(value) {
        return Err(
            "a unit value cannot end in a backslash: systemd would join the next line of the unit to it"
                .into(),
        );
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err(
            "a unit value cannot start or end with a space or tab: systemd drops them".into(),
        );
    }
    check_size(value)
}

/// The specifiers systemd 252 resolves in a unit (`unit_full_printf`:
/// `%n`, `%i`, `%h`, …), less the deprecated `%c`, `%r` and `%R`, which it
/// warns about. Any other letter (`%z`, `%k`, `%D`) makes it drop the
/// whole directive ("Invalid slot").
const SPECIFIERS: &str = "abdfghijlmnopqstuvwyABCEGHIJLMNPSTUVWY";

/// Whether every `%` of a value written as it is starts a specifier systemd
/// can resolve: `%%`, or `%` and one of [`SPECIFIERS`] (`%n`, `%i`, …).
/// Anything else (`%.`, `%z`, a final `%`) makes systemd drop the whole
/// directive.
pub fn check_specifiers(value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some(next) if next == '%' || SPECIFIERS.contains(next) => {}
            Some(next @ ('c' | 'r' | 'R')) => {
                return Err(format!(
                    "`%{next}` is a deprecated systemd specifier that does not work as intended: write `%%{next}` for the text"
                ));
            }
            next => {
                let what = next.map_or("the end of the value".to_string(), |c| format!("`%{c}`"));
                return Err(format!(
                    "{what} is no systemd specifier: systemd would drop this directive"
                ));
            }
        }
    }
    Ok(())
}

/// Whether systemd takes every word of a raw `Environment=` value as an
/// assignment: it splits the value at blanks (quotes group, C escapes are
/// read) and ignores, with a warning, each word that is not `NAME=value`
/// with a valid name and a value without control characters (a line feed
/// aside). `Environment: "GREETING=hi there"` sets `GREETING=hi` only.
pub fn check_environment_words(value: &str) -> Result<(), String> {
    for (word, _) in systemd_words(value, "Environment")? {
        let assignment = word.split_once('=').filter(|(name, value)| {
            name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !value.chars().any(|c| c.is_ascii_control() && c != '\n')
        });
        if assignment.is_none() {
            return Err(format!(
                "systemd would ignore `{word}` here: each word of an `Environment=` is one `NAME=value` (quote a value with spaces: `\"NAME=a b\"`), without control characters"
            ));
        }
    }
    Ok(())
}

/// Whether systemd can read a raw `Exec*=` value (`ExecStartPre`, …) as
/// commands: an unclosed quote, a command of prefixes only (`-`, `@`, `+`
/// with no program after them) or `@` without the argv[0] after the program
/// is a fatal error there (the whole unit is not loaded; with `-`, the line
/// is dropped), an escape it does not know a warning. The words themselves,
/// `$VAR`, a lone `;` between commands and the `-@:+!` prefixes keep the
/// meaning systemd gives them.
pub fn check_command_words(value: &str, key: &str) -> Result<(), String> {
    let words = systemd_words(value, key)?;
    // A lone unquoted `;` separates commands (`\;` is the word `;`).
    for command in words.split(|(word, plain)| *plain && word == ";") {
        let Some(((first, _), rest)) = command.split_first() else {
            continue;
        };
        let program = first.trim_start_matches(['-', '@', ':', '+', '!']);
        let prefixes = &first[..first.len() - program.len()];
        if program.is_empty() {
            return Err(format!(
                "`{first}` names no program: systemd would not load the unit (or, after `-`, drop the line), for this `{key}=`"
            ));
        }
        if prefixes.contains('@') && rest.is_empty() {
            return Err(format!(
                "after `@{program}` comes the argv[0] to run it with, and there is none: systemd would not load the unit (or, after `-`, drop the line), for this `{key}=`"
            ));
        }
    }
    Ok(())
}

/// The words systemd reads from a raw value of `key` (`Environment`, an
/// `Exec*` key): split at blanks, quotes group (also mid-word), C escapes
/// are read. An unclosed quote makes systemd ignore the directive (in a
/// command line, refuse the whole unit); an unknown escape (`\d`, `\ `)
/// makes it ignore an `Environment=`, and keep the backslash of a command
/// line with a warning, which is refused too: `C:\dir` is not what it means.
/// Escapes stand for a character of their class only: a control character
/// for `\x01`, `\0` or `\x7f`, which is what the callers look for.
/// Each word comes with whether it was written plain (no quote, no escape).
fn systemd_words(value: &str, key: &str) -> Result<Vec<(String, bool)>, String> {
    let command = key.starts_with("Exec");
    let mut words = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars
            .next_if(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
            .is_some()
        {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote = None;
        let mut plain = true;
        while let Some(c) = chars.next() {
            if matches!(c, '\\' | '"' | '\'') {
                plain = false;
            }
            match (quote, c) {
                (_, '\\') => word.push(match chars.next() {
                    Some('a') => '\u{7}',
                    Some('b') => '\u{8}',
                    Some('f') => '\u{c}',
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('v') => '\u{b}',
                    // `\xNN`, octal: whatever they stand for, a control
                    // character is what to look for (the first digit says).
                    Some('x') => match chars.next() {
                        Some('0' | '1') => '\u{1}',
                        Some('7') if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'f')) => {
                            '\u{7f}'
                        }
                        _ => 'x',
                    },
                    Some('0') => '\u{0}',
                    // What systemd's C unescaping takes (`\s` is a space,
                    // `\u…` and octal stand for characters); any other
                    // escape makes it ignore the whole directive.
                    Some(c @ ('\\' | '"' | '\'' | 's' | 'u' | 'U' | '1'..='7')) => c,
                    // A command line's word `\;`: a `;` that separates
                    // nothing.
                    Some(';')
                        if command
                            && word.is_empty()
                            && chars.peek().is_none_or(|c| matches!(c, ' ' | '\t')) =>
                    {
                        ';'
                    }
                    Some(other) => {
                        let what = if command {
                            "keep it as written, with a warning"
                        } else {
                            "ignore this"
                        };
                        return Err(format!(
                            "`\\{other}` is no escape systemd knows: it would {what} `{key}=` (write `\\\\` for a backslash)"
                        ));
                    }
                    None => return Err("a value cannot end in a lone backslash".into()),
                }),
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, ' ' | '\t' | '\n' | '\r') => break,
                (_, c) => word.push(c),
            }
        }
        if quote.is_some() {
            let what = if command {
                "would not load the unit, for this"
            } else {
                "would ignore this"
            };
            return Err(format!(
                "an unclosed quote: systemd {what} `{key}=` ({value})"
            ));
        }
        words.push((word, plain));
    }
}

/// Whether `value` fits in a unit (see [`MAX_VALUE_BYTES`]).
pub fn check_size(value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "this value is {} bytes long; unitgen writes at most {} KiB per value (systemd cannot load a unit with a line over 1 MiB)",
            value.len(),
            MAX_VALUE_BYTES / 1024
        ));
    }
    Ok(())
}

/// True when `line` ends in a backslash that is not itself escaped: systemd
/// then joins the next line to it.
pub fn ends_in_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// One `Environment=` assignment, `"NAME=value"`: systemd unquotes it and
/// expands specifiers, but (unlike `Exec*=`) does not expand `$`. systemd
/// ignores an assignment whose value holds an ASCII control character
/// other than a line feed (`env_value_is_valid`): compile refuses those.
pub fn systemd_environment(name: &str, value: &str) -> String {
    debug_assert!(
        !value.chars().any(|c| c.is_ascii_control() && c != '\n'),
        "{value:?}"
    );
    let mut out = String::from("\"");
    out.push_str(name);
    out.push('=');
    for c in value.chars() {
        match c {
            '%' => out.push_str("%%"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            // As in `push_quoted`: `\x85` would be a byte that is not UTF-8
            // (systemd drops the assignment), and a bidirectional override
            // written as it is would reorder what a reviewer sees.
            c if acts_on_terminal(c) => out.push_str(&unicode_escape(c)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The name and value of an assignment [`systemd_environment`] wrote, read
/// back (`status` reads what an applied unit was given); None for any other
/// text.
pub fn read_systemd_environment(quoted: &str) -> Option<(String, String)> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let (name, value) = inner.split_once('=')?;
    let mut out = String::new();
    let mut chars = value.chars();
    let hex = |chars: &mut std::str::Chars, n: usize| -> Option<char> {
        let digits: String = chars.by_ref().take(n).collect();
        char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
    };
    while let Some(c) = chars.next() {
        out.push(match c {
            '%' if chars.next()? == '%' => '%',
            '\\' => match chars.next()? {
                '\\' => '\\',
                '"' => '"',
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'x' => hex(&mut chars, 2)?,
                'u' => hex(&mut chars, 4)?,
                'U' => hex(&mut chars, 8)?,
                _ => return None,
            },
            '"' | '%' => return None,
            c => c,
        });
    }
    Some((name.to_string(), out))
}

/// Quotes one word for POSIX `sh`, e.g. to build a healthcheck command that
/// Docker runs through `/bin/sh -c`.
pub fn sh_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-+=.,/:@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r#"'\''"#))
    }
}

/// Quotes one word of an `etcdctl txn` request line (`put -- KEY VALUE`):
/// etcdctl splits the line at spaces and reads a word in double quotes as a
/// Go string literal (`strconv.Unquote`), which takes Go's escapes and no
/// raw line break. A word it cannot unquote would be read as empty, so
/// every character that needs it is escaped.
pub fn txn_quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_each_word_as_a_command_line_does() {
        let mut lines = CommandLines::new(&["/usr/bin/docker", "run"]);
        let mut expected = vec![systemd_command(&["/usr/bin/docker", "run"])];
        for word in [
            "plain",
            "",
            "a b",
            "%n $HOME",
            "tab\there",
            "é\u{85}x",
            "\"q\\",
        ] {
            lines.line(&["--x", word]);
            expected.push(systemd_command(&["--x", word]));
            // A value in parts is quoted as the one word they make.
            let middle = word.char_indices().nth(word.chars().count() / 2);
            let (head, tail) = word.split_at(middle.map_or(word.len(), |(at, _)| at));
            lines.flag("--env", &["K=", head, "", tail]);
            expected.push(systemd_command(&["--env", &format!("K={word}")]));
            lines.flag("--label", &[head, tail]);
            expected.push(systemd_command(&["--label", word]));
        }
        assert_eq!(lines.into_text(), expected.join(" \\\n    "));
    }

    /// The router's resolver flags: `%m` is systemd's to expand, the
    /// user's value (an email, a CA's URL) reaches Traefik as written.
    #[test]
    fn specifiers_of_unitgens_own_text_stay_and_the_value_is_escaped() {
        let own = "--certificatesResolvers.unitgen-%m.acme.email=";
        for value in ["ops@example.com", "a b", "%m $HOME", "\"q\\", "", "é\u{85}"] {
            let word = systemd_arg_after_specifiers(own, value);
            // systemd expands specifiers on the raw line first: unitgen's
            // `%m` is the first `%` of the word that is no `%%`.
            let expanded = word.replacen("%m", "abc123", 1);
            assert_eq!(
                systemd_split(&expanded),
                [format!(
                    "--certificatesResolvers.unitgen-abc123.acme.email={value}"
                )],
                "{word}"
            );
        }
    }

    #[test]
    fn txn_words_are_go_strings_that_keep_every_character() {
        assert_eq!(txn_quote("Host(`a`) && b"), r#""Host(`a`) && b""#);
        assert_eq!(txn_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(txn_quote("l1\nl2\t\u{85}é"), r#""l1\nl2\x09\u0085é""#);
    }

    /// Splits a systemd command line the way systemd 252 does (words, double
    /// quotes, C escapes, `%%`, `$$`) so the tests can check the round trip.
    pub(crate) fn systemd_split(line: &str) -> Vec<String> {
        let line = line.replace("\\\n", " ").replace("%%", "%");
        let mut words = Vec::new();
        let mut chars = line.chars().peekable();
        loop {
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            let Some(&first) = chars.peek() else { break };
            let mut word = String::new();
            if first == '"' {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next().unwrap() {
                            'n' => word.push('\n'),
                            't' => word.push('\t'),
                            'r' => word.push('\r'),
                            'x' => {
                                let hex: String = chars.by_ref().take(2).collect();
                                let byte = u8::from_str_radix(&hex, 16).unwrap();
                                assert!(byte.is_ascii(), "\\x{hex} is not a character");
                                word.push(byte as char);
                            }
                            u @ ('u' | 'U') => {
                                let digits = if u == 'u' { 4 } else { 8 };
                                let hex: String = chars.by_ref().take(digits).collect();
                                word.push(
                                    char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap(),
                                );
                            }
                            other => word.push(other),
                        },
                        c => word.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    assert!(c != '\\' && c != '"', "unquoted special char in {line}");
                    word.push(c);
                    chars.next();
                }
            }
            words.push(word.replace("$$", "$"));
        }
        words
    }

    const HOSTILE: &[&str] = &[
        "plain",
        "two words",
        "",
        " ",
        "100%",
        "%n%i%%",
        "$HOME",
        "${HOME}",
        "$$",
        "a;b",
        ";",
        "it's",
        "say \"hi\"",
        "back\\slash",
        "ends with \\",
        "line\nbreak",
        "tab\there",
        "cr\rhere",
        "bell\u{7}",
        "c1\u{85}\u{9f}",
        "héllo wörld ✓",
        "\u{202e}rtl\u{202c} \u{2066}iso\u{2069} \u{200f}\u{61c}\u{2028}\u{2029}",
        // Drawn as nothing: a path that reads as /srv/data, hidden tag text.
        "/srv/da\u{200b}t\u{2060}a\u{feff}\u{ad}\u{3164}\u{e0041}\u{e007f}",
        "‘quotes’ – … € 한국어 日本 👍🏽 ❤\u{fe0f}",
        "--flag=value with space",
        "'single' and \"double\" and \\ and $ and %",
        "-dash-first",
        "@at",
        "{{.State.Running}}",
    ];

    #[test]
    fn every_hostile_value_survives_systemd_parsing() {
        for value in HOSTILE {
            let line = systemd_arg(value);
            assert_eq!(
                systemd_split(&line),
                vec![value.to_string()],
                "line: {line}"
            );
            assert!(
                !line.contains('\n'),
                "a unit line must stay one line: {line:?}"
            );
            assert!(
                !line.chars().any(acts_on_terminal),
                "a unit is read on terminals: {line:?}"
            );
        }
    }

    #[test]
    fn a_command_line_keeps_word_boundaries() {
        let args: Vec<&str> = HOSTILE.to_vec();
        let line = systemd_command(&args);
        let expected: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        assert_eq!(systemd_split(&line), expected);
    }

    #[test]
    fn a_shell_script_keeps_one_statement_per_line_and_its_bytes() {
        let script = ["x=\"$1\";", "printf '%s\\n' \"$x\";", "echo 100% done"];
        let line = systemd_shell(&script);
        assert_eq!(line.lines().count(), 3, "{line}");
        assert!(line.lines().take(2).all(|l| l.ends_with(" \\")));
        let words = systemd_split(&line);
        assert_eq!(words[..2], ["/bin/sh", "-c"]);
        // Continuations become spaces; the statements arrive intact.
        let joined = words[2].split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(joined, script.join(" "));
    }

    #[test]
    fn a_script_line_starting_like_a_comment_is_kept() {
        // A user's command (a backup's `on_failure`) may be any line.
        for first in ["# a comment to sh", "; true", "  #x"] {
            let script = ["true;", first, "echo done"];
            let line = systemd_shell(&script);
            let unit = format!("[Service]\nExecStart={line}\n");
            let joined: Vec<&str> = unit.lines().collect();
            assert!(
                joined[2..]
                    .iter()
                    .all(|l| !l.trim_start().starts_with(['#', ';'])),
                "{unit}"
            );
            let words = systemd_split(&line);
            let normal = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(normal(&words[2]), normal(&script.join(" ")), "{line}");
        }
    }

    #[test]
    fn plain_words_stay_readable() {
        assert_eq!(
            systemd_command(&[
                "/usr/bin/docker",
                "run",
                "--name",
                "blog-live-web",
                "-p",
                "8080:80"
            ]),
            "/usr/bin/docker run --name blog-live-web -p 8080:80"
        );
        assert_eq!(systemd_arg("POSTGRES_DB=blog"), "POSTGRES_DB=blog");
    }

    #[test]
    fn environment_values_keep_dollars_and_escape_the_rest() {
        assert_eq!(
            systemd_environment("R", r#"/srv/$x "50%"\"#),
            r#""R=/srv/$x \"50%%\"\\""#
        );
        // A C1 control as `\x85` would be a byte that is not UTF-8.
        assert_eq!(
            systemd_environment("R", "a\u{85}\u{202e}b€"),
            r#""R=a\u0085\u202eb€""#
        );
    }

    #[test]
    fn environment_assignments_read_back_as_written() {
        for value in [
            "/etc/restic/pw",
            r#"/srv/$x "50%"\"#,
            "a\u{85}\u{202e}b€\u{200b}\u{e0041}",
            "line\nbreak",
            "",
        ] {
            let written = systemd_environment("RESTIC_PASSWORD_FILE", value);
            assert_eq!(
                read_systemd_environment(&written),
                Some(("RESTIC_PASSWORD_FILE".to_string(), value.to_string())),
                "{written}"
            );
        }
        for other in [r#"R=a"#, r#""R=50%""#, r#""R=a\q""#, r#""R=a"b""#] {
            assert_eq!(read_systemd_environment(other), None, "{other}");
        }
    }

    #[test]
    fn raw_values_that_would_act_on_a_terminal_are_refused() {
        for bad in [
            "a\u{1b}[31m",
            "a\u{8}",
            "a\u{85}",
            "\u{202e}x",
            "a\u{2028}b",
        ] {
            assert!(check_raw_value(bad).is_err(), "{bad:?}");
        }
        for good in ["a\tb", "ünï 日本 🚀", "‘q’"] {
            assert!(check_raw_value(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn raw_values_may_only_hold_specifiers_systemd_resolves() {
        for good in [
            "%n.service",
            "100%%",
            "https://example.com/%i",
            "plain",
            "%h/%C",
        ] {
            assert!(check_specifiers(good).is_ok(), "{good}");
        }
        // `%z`, `%k`, `%D`: letters systemd 252 does not know (it drops the
        // directive: "Invalid slot"); `%c`: deprecated.
        for bad in [
            "https://docs%.example.com",
            "50%",
            "%-x",
            "%é",
            "%z",
            "a%kb",
            "%D",
            "%c",
        ] {
            assert!(check_specifiers(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn raw_environment_values_must_be_assignments_systemd_takes() {
        for good in [
            "A=b",
            "A=b C=d",
            "\"A=hi there\" 'B=x y'",
            "PATH=/usr/bin:%h/bin",
            "A=",
            "A=line\\nbreak",
        ] {
            assert_eq!(check_environment_words(good), Ok(()), "{good}");
        }
        for bad in [
            "GREETING=hi there",
            "a = b",
            "=x",
            "1A=x",
            "A=tab\\there",
            "A=\\x01",
            "A=C:\\dir",
            "\"A=unclosed",
        ] {
            assert!(check_environment_words(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn raw_command_lines_must_be_words_systemd_can_split() {
        for good in [
            "/bin/echo hi",
            "-/bin/echo \"a b\" 'c d' $HOME ; /bin/true",
            "/bin/echo a\\\\b \\x41 \\u00e9",
            "",
            "@/bin/busybox sh -c true",
            "/bin/true ; -/bin/false \\; ;",
        ] {
            assert_eq!(check_command_words(good, "ExecStartPre"), Ok(()), "{good}");
        }
        // systemd 252: "Unbalanced quoting" (and the unit is not loaded at
        // all), or "Ignoring unknown escape sequences".
        for bad in [
            "/bin/echo \"unclosed",
            "/bin/echo it's",
            "/bin/echo C:\\dir",
            "/bin/echo a\\ b",
            "/bin/echo \\",
            // systemd 252: "Empty path in command line", "Empty executable
            // name or zeroeth argument".
            "-",
            "@",
            "+",
            "\"\" x",
            "@/bin/true",
            "/bin/true ; !!",
        ] {
            let err = check_command_words(bad, "ExecStartPre").unwrap_err();
            assert!(
                err.contains("ExecStartPre=") || err.contains("backslash"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn specifiers_and_variables_are_doubled() {
        assert_eq!(systemd_arg("50%"), "50%%");
        assert_eq!(systemd_arg("$HOME"), "$$HOME");
        assert_eq!(systemd_arg("a b$"), "\"a b$$\"");
    }

    #[test]
    fn quotes_and_backslashes_are_escaped_inside_double_quotes() {
        assert_eq!(systemd_arg(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(systemd_arg(r"C:\"), r#""C:\\""#);
        assert_eq!(systemd_arg(";"), "\";\"");
    }

    #[test]
    fn values_for_plain_keys_escape_specifiers() {
        assert_eq!(systemd_value("blog: 100% fun"), "blog: 100%% fun");
    }

    #[test]
    fn raw_values_that_would_break_the_line_are_refused() {
        for bad in [
            "a\nb",
            "hi\r[Service]\rExecStartPre=/bin/touch /tmp/pwned",
            "nul\0",
            "ends \\",
            "three \\\\\\",
            " leading",
            "trailing\t",
        ] {
            assert!(check_raw_value(bad).is_err(), "{bad:?}");
        }
        for good in ["", "plain", "a\\\\", "GREETING=hi there", "100%"] {
            assert_eq!(check_raw_value(good), Ok(()), "{good:?}");
        }
        assert!(check_raw_value(&"x".repeat(MAX_VALUE_BYTES + 1)).is_err());
    }

    #[test]
    fn c1_controls_are_written_as_characters_not_bytes() {
        // `\x85` would be one byte (not UTF-8) after systemd unquotes it.
        assert_eq!(systemd_arg("a\u{85}b"), r#""a\u0085b""#);
        assert_eq!(systemd_arg("bell\u{7}"), r#""bell\x07""#);
    }

    #[test]
    fn environment_assignments_keep_dollars() {
        assert_eq!(systemd_env("A=$HOME 100%"), r#""A=$HOME 100%%""#);
        assert_eq!(systemd_env("A=$HOME"), "A=$HOME");
    }

    #[test]
    fn sh_quoting_round_trips_through_a_real_shell() {
        for value in HOSTILE {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", sh_quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), *value);
        }
    }
}
