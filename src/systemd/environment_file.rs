//! A file of `EnvironmentFile=` read as systemd 252 reads it
//! (`parse_env_file_internal` in its `env-file.c`, then the check of each
//! assignment its service manager makes), so that what unitgen runs with
//! such a file (restic for `backups` and `restore`) gets the variables the
//! units get: the same credentials, or the same failure.
//!
//! The syntax: `#` and `;` start comment lines; `NAME=value`, blanks
//! around both trimmed; a value may be in single quotes (literal) or double
//! quotes (`\"`, `\\`, `` \` `` and `\$` escaped, any other backslash kept),
//! and quoted and unquoted parts join (`'a'b` is `ab`); unquoted, a
//! backslash keeps the next character; a backslash at a line's end joins
//! the next line. A line feed or a carriage return ends a line. An
//! assignment whose name is no variable name (letters, digits, `_`, not
//! starting with a digit) is dropped; the last of several wins.

/// Why a file cannot be read the same by every systemd: said with the line,
/// never with a value (the file holds credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub line: usize,
    pub why: &'static str,
}

/// The variables `text` sets, in the order first set.
pub fn read(text: &str) -> Result<Vec<(String, String)>, Unreadable> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        PreKey,
        Key,
        PreValue,
        Value,
        ValueEscape,
        Single,
        Double,
        DoubleEscape,
        Comment,
        CommentEscape,
    }
    use State::*;
    let newline = |c: char| c == '\n' || c == '\r';
    let blank = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut push = |key: &str, value: &str| {
        if !is_name(key) {
            return;
        }
        match vars.iter_mut().find(|(k, _)| k == key) {
            Some(var) => var.1 = value.to_string(),
            None => vars.push((key.to_string(), value.to_string())),
        }
    };
    let mut state = PreKey;
    let (mut key, mut value) = (String::new(), String::new());
    // Where the key's or the value's trailing blanks begin.
    let (mut key_blank, mut value_blank): (Option<usize>, Option<usize>) = (None, None);
    let mut line = 1;
    for c in text.chars() {
        match state {
            PreKey => {
                if c == '#' || c == ';' {
                    state = Comment;
                } else if !blank(c) {
                    state = Key;
                    key_blank = None;
                    key.push(c);
                }
            }
            Key => {
                if newline(c) {
                    // A name alone sets nothing.
                    state = PreKey;
                    key.clear();
                } else if c == '=' {
                    state = PreValue;
                    value_blank = None;
                } else {
                    if !blank(c) {
                        key_blank = None;
                    } else if key_blank.is_none() {
                        key_blank = Some(key.len());
                    }
                    key.push(c);
                }
            }
            PreValue | Value if newline(c) => {
                if state == Value {
                    value.truncate(value_blank.unwrap_or(value.len()));
                }
                key.truncate(key_blank.unwrap_or(key.len()));
                push(&key, &value);
                key.clear();
                value.clear();
                state = PreKey;
            }
            PreValue => match c {
                '\'' => state = Single,
                '"' => state = Double,
                '\\' => state = ValueEscape,
                c if blank(c) => {}
                c => {
                    state = Value;
                    value.push(c);
                }
            },
            Value => {
                if c == '\\' {
                    state = ValueEscape;
                    value_blank = None;
                } else {
                    if !blank(c) {
                        value_blank = None;
                    } else if value_blank.is_none() {
                        value_blank = Some(value.len());
                    }
                    value.push(c);
                }
            }
            ValueEscape => {
                state = Value;
                // An escaped line break joins the lines.
                if !newline(c) {
                    value.push(c);
                }
            }
            Single => match c {
                '\'' => state = PreValue,
                c => value.push(c),
            },
            Double => match c {
                '"' => state = PreValue,
                '\\' => state = DoubleEscape,
                c => value.push(c),
            },
            DoubleEscape => {
                state = Double;
                match c {
                    '"' | '\\' | '`' | '$' => value.push(c),
                    '\n' => {}
                    c => {
                        value.push('\\');
                        value.push(c);
                    }
                }
            }
            Comment => {
                if c == '\\' {
                    state = CommentEscape;
                } else if newline(c) {
                    state = PreKey;
                }
            }
            CommentEscape => {
                // systemd 252 reads the next line as the comment's too,
                // 254 and later as a line of its own.
                if newline(c) {
                    return Err(Unreadable {
                        line,
                        why: "a comment ending with a backslash, whose next line systemd 252 skips and later versions read",
                    });
                }
                state = Comment;
            }
        }
        if c == '\n' {
            line += 1;
        }
    }
    if matches!(
        state,
        PreValue | Value | ValueEscape | Single | Double | DoubleEscape
    ) {
        if state == Value {
            value.truncate(value_blank.unwrap_or(value.len()));
        }
        key.truncate(key_blank.unwrap_or(key.len()));
        push(&key, &value);
    }
    Ok(vars)
}

/// A name systemd passes on: letters, digits and `_`, not starting with a
/// digit.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, String)> {
        read(text).unwrap()
    }

    #[test]
    fn quotes_escapes_and_continuations_as_systemd_reads_them() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            (list.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            vars(
                "A=\"x\\\"y\"\nB='it''s'\n  C = spaced out  \n; comment\n# another\nD=a\\\nb\nE=\"\\n\"\n"
            ),
            pairs(&[
                ("A", "x\"y"),
                ("B", "its"),
                ("C", "spaced out"),
                ("D", "ab"),
                ("E", "\\n"),
            ])
        );
        assert_eq!(
            vars("A=1\nA=2\nexport B=3\n9X=4\nONLY\nC=\r"),
            pairs(&[("A", "2"), ("C", "")])
        );
        assert_eq!(vars("K='open\nline'"), pairs(&[("K", "open\nline")]));
        assert_eq!(
            read("# ends \\\nK=v\n"),
            Err(Unreadable {
                line: 1,
                why: "a comment ending with a backslash, whose next line systemd 252 skips and later versions read"
            })
        );
    }
}
