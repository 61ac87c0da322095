//! What a unit cannot deliver of a compose env file as compose does (see
//! `render::env_file`): found at import, where the file is at hand, and
//! warned about at the `env_file` that names it.

/// What a line of an env file needs that a file alone does not give.
enum Note {
    /// A bare `NAME`: compose's own environment gives its value.
    Inherited { line: usize, name: String },
    /// A quoted value closed on a later line.
    SeveralLines { line: usize, name: String },
    /// A double-quoted `\n` or `\r`.
    LineBreak { line: usize, name: String },
    /// `$VARIABLE` of no line before, without a default: compose takes it
    /// from its own environment. `backslash`: written `\$VARIABLE` unquoted,
    /// where the backslash is kept and escapes nothing (compose-go escapes
    /// `$` only in double quotes), most likely meant as a literal `$`.
    Uses {
        line: usize,
        name: String,
        variable: String,
        backslash: bool,
    },
}

/// Each line of `text`, read as compose's dotenv reads it, that needs more
/// than the file.
fn notes(text: &str) -> Vec<Note> {
    let mut out = Vec::new();
    let mut defined: Vec<String> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some(split) = line.find(['=', ':']) else {
            let name = line.trim().to_string();
            out.push(Note::Inherited { line: i + 1, name });
            continue;
        };
        let name = line[..split].trim().to_string();
        let value = line[split + 1..].trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
        let body = match quote {
            Some(q) => {
                let rest = &value[1..];
                if closing_quote(rest, q).is_none() {
                    out.push(Note::SeveralLines {
                        line: i + 1,
                        name: name.clone(),
                    });
                    // Skip the rest of the value, as compose reads it.
                    for (_, more) in lines.by_ref() {
                        if closing_quote(more, q).is_some() {
                            break;
                        }
                    }
                    defined.push(name);
                    continue;
                }
                if q == '"' && (rest.contains("\\n") || rest.contains("\\r")) {
                    out.push(Note::LineBreak {
                        line: i + 1,
                        name: name.clone(),
                    });
                }
                (q == '"').then(|| references(rest, true))
            }
            // Unquoted: up to a ` #` comment.
            None => Some(references(value.split(" #").next().unwrap_or(value), false)),
        };
        for (variable, backslash) in body.unwrap_or_default() {
            if !defined.contains(&variable) {
                out.push(Note::Uses {
                    line: i + 1,
                    name: name.clone(),
                    variable,
                    backslash,
                });
            }
        }
        defined.push(name);
    }
    out
}

/// Each line of `text` whose value the unit would not give the container as
/// compose would, with why: `(line number, message)`.
pub fn differences(text: &str) -> Vec<(usize, String)> {
    notes(text)
        .into_iter()
        .map(|note| match note {
            Note::Inherited { line, name } => (
                line,
                format!("`{name}` takes its value from compose's environment; a unit has none, so it is not set: give it a value in the file"),
            ),
            Note::SeveralLines { line, name } => (
                line,
                format!("`{name}` spans several lines: docker run takes one line per variable, so the unit fails to start"),
            ),
            Note::LineBreak { line, name } => (
                line,
                format!("`{name}` holds a line break (`\\n`): docker run takes one line per variable, so the unit fails to start"),
            ),
            Note::Uses { line, name, variable, backslash } => (
                line,
                format!(
                    "`{name}` uses `${variable}`, which compose takes from its environment; a unit has none, so it is empty there{}",
                    literal_hint(&variable, backslash)
                ),
            ),
        })
        .collect()
}

/// Each line of a `format: raw` env file (`text`) whose variable the unit
/// gives otherwise than compose: compose reads such a file as `docker run
/// --env-file` does (docker/cli's kvfile: `NAME=` and the rest of the line
/// as written, quotes, `#` and `$` included), the unit as a `.env` (quotes
/// taken off, `${VAR}` expanded, a ` #` comment cut). `(line number,
/// message)` at the line that sets the variable last.
pub fn raw_differences(text: &str) -> Vec<(usize, String)> {
    let mut raw: Vec<(String, String, usize)> = Vec::new();
    let mut out = Vec::new();
    for (line, name, value) in raw_lines(text) {
        let Some(value) = value else {
            out.push((
                line,
                format!("`{name}` takes its value from compose's environment; a unit has none, so it is not set: give it a value in the file"),
            ));
            continue;
        };
        match raw.iter_mut().find(|(n, _, _)| *n == name) {
            Some(var) => (var.1, var.2) = (value, line),
            None => raw.push((name, value, line)),
        }
    }
    let read = super::parse_dotenv(text);
    for (name, value, line) in raw {
        let unit = read
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str());
        // A `$` the unit's reader expands (`$$`, `${`, `$NAME`), where
        // `parse_dotenv` keeps a value compose's dotenv refuses (`$2y$10$…`).
        let expanded = value.as_bytes().windows(2).any(|pair| {
            pair[0] == b'$'
                && (matches!(pair[1], b'$' | b'{' | b'_') || pair[1].is_ascii_alphabetic())
        });
        if unit != Some(value.as_str()) || expanded {
            let unit = match unit {
                Some(v) if v != value => format!("`{v}`"),
                Some(_) => "another value: it expands `$`".into(),
                None => "no value (the start fails on the line)".into(),
            };
            let hint = match value.contains('\'') {
                true => String::new(),
                false => format!(
                    "; in single quotes (`{name}='{value}'`) that format gives it as written"
                ),
            };
            out.push((
                line,
                format!("`{name}` is `{value}` to compose, which reads a `format: raw` file as written; the unit reads env files in compose's default format, which gives {unit}{hint}"),
            ));
        }
    }
    out.sort();
    out
}

/// A `format: raw` file read as `docker run --env-file` reads it
/// (docker/cli's kvfile): `NAME=` and the rest of the line as written;
/// blank and `#` lines skipped. `(line number, name, value)`, `None` for a
/// bare `NAME`, which compose looks up elsewhere.
fn raw_lines(text: &str) -> impl Iterator<Item = (usize, String, Option<String>)> + '_ {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        Some(match line.split_once('=') {
            Some((name, value)) => (i + 1, name.to_string(), Some(value.to_string())),
            None => (i + 1, line.trim_end().to_string(), None),
        })
    })
}

/// The variables of a `format: raw` file, the last value of each; a bare
/// `NAME` takes its value from `lookup` (compose's), or sets nothing.
pub fn parse_raw(text: &str, lookup: &[(String, String)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for (_, name, value) in raw_lines(text) {
        let found = || {
            lookup
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        let Some(value) = value.or_else(found) else {
            continue;
        };
        match vars.iter_mut().find(|(n, _)| *n == name) {
            Some(var) => var.1 = value,
            None => vars.push((name, value)),
        }
    }
    vars
}

/// Each line of a project's `.env` whose value compose completes from the
/// shell it runs in, which import does not read: `(line number, message)`;
/// but a variable `given` names (an including project's, which compose
/// looks up first for an included project's `.env`).
pub fn shell_values(text: &str, given: &dyn Fn(&str) -> bool) -> Vec<(usize, String)> {
    notes(text)
        .into_iter()
        .filter_map(|note| match note {
            Note::Inherited { name, .. } | Note::Uses { variable: name, .. } if given(&name) => {
                None
            }
            Note::Inherited { line, name } => Some((
                line,
                format!("`{name}` takes its value from the shell compose runs in, which import does not read: it is not set"),
            )),
            Note::Uses { line, name, variable, backslash } => Some((
                line,
                format!(
                    "`{name}` uses `${variable}`, which compose takes from the shell it runs in; import does not read the shell, so it is empty in `{name}`'s value{}",
                    literal_hint(&variable, backslash)
                ),
            )),
            Note::SeveralLines { .. } | Note::LineBreak { .. } => None,
        })
        .collect()
}

/// For `\$VARIABLE` unquoted: what compose makes of it, and how to write a
/// literal `$`.
fn literal_hint(variable: &str, backslash: bool) -> String {
    match backslash {
        true => format!(
            " (unquoted, a backslash does not escape `$`: compose keeps the `\\` and puts `${variable}`'s value after it; for a literal `${variable}` write `$${variable}`, or the value in double quotes)"
        ),
        false => String::new(),
    }
}

/// Where an unescaped `quote` closes the value in `text`.
fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// The variables `$NAME` and `${NAME…}` in a value, each with whether a
/// backslash is before it, but `$$` (a literal `$`), `\$` in double quotes
/// (one too) and those with a default (`${NAME:-x}`, `${NAME-x}`): the unit
/// applies it where compose, without NAME in its environment, would too.
fn references(value: &str, double_quoted: bool) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && double_quoted {
            i += 2;
            continue;
        }
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        if bytes[i] == b'$' {
            let rest = &value[i + 1..];
            let braced = rest.strip_prefix('{');
            let rest = braced.unwrap_or(rest);
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let defaulted =
                braced.is_some() && (rest[len..].starts_with(":-") || rest[len..].starts_with('-'));
            if len > 0 && !defaulted && !rest.starts_with(|c: char| c.is_ascii_digit()) {
                let backslash = i > 0 && bytes[i - 1] == b'\\';
                out.push((rest[..len].to_string(), backslash));
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_unit_cannot_deliver_is_found_by_line() {
        // G: dify's `COMPOSE_PROFILES=${VECTOR_STORE:-weaviate}`, whose
        // default applies in the unit as in compose.
        // H: unquoted, the backslash escapes nothing (compose-go's dotenv
        // escapes `$` only in double quotes); I, J, K: no variable at all.
        let text = "# comment\nA=1\nB=${A}/x\nC=\"$HOME/y\"\nD='$HOME'\nINHERITED\nCERT=\"-----BEGIN\nabc\n-----END\"\nE=\"x\\ny\"\nF=ok\nG=${VECTOR_STORE:-weaviate},${DB-pg}\nH=x\\$HOME\nI=$$HOME\nJ=j # $HOME\nK=\"\\$HOME\"\n";
        let found = differences(text);
        let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [4, 6, 7, 10, 13], "{found:?}");
        assert!(found[4].1.starts_with("`H` uses `$HOME`, which compose takes from its environment; a unit has none, so it is empty there (unquoted, a backslash does not escape `$`"), "{found:?}");
        assert!(found[0].1.contains("`C` uses `$HOME`"));
        assert!(
            found[1]
                .1
                .contains("`INHERITED` takes its value from compose's environment")
        );
        assert!(found[2].1.contains("`CERT` spans several lines"));
        assert!(found[3].1.contains("`E` holds a line break"));
    }
}
