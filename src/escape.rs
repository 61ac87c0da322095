//! Quoting for the two languages unitgen writes command lines in: systemd's
//! `Exec*=` syntax and POSIX `sh`. Every argument of every generated command
//! line goes through here, so that values with `%`, `$`, quotes, spaces,
//! backslashes, newlines or non-ASCII text reach the process byte for byte.

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
    if !arg.is_empty() && arg.chars().all(is_plain_word_char) {
        return arg.replace('%', "%%").replace('$', "$$");
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    push_quoted(&mut out, arg);
    out.push('"');
    out
}

/// Appends `text` escaped for the inside of a double-quoted systemd word.
fn push_quoted(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// A `/bin/sh -c` command line whose script is shown one statement per
/// line: systemd joins a line ending in `\` with the next (the backslash
/// becomes a space), inside quotes too, so each element of `script` must
/// end where sh may continue on the same line (`;`, `do`, `then`, `in`,
/// `;;`, `|`, `&&`, …).
pub fn systemd_shell(script: &[&str]) -> String {
    let mut out = String::from("/bin/sh -c \"");
    for (i, line) in script.iter().enumerate() {
        if i > 0 {
            out.push_str(" \\\n        ");
        }
        push_quoted(&mut out, line);
    }
    out.push('"');
    out
}

/// Characters that may stand unquoted in a systemd command-line word.
fn is_plain_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-+=.,/:@%$".contains(c)
}

/// Joins arguments into one systemd command line (a single logical line).
pub fn systemd_command<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .map(|a| systemd_arg(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Escapes a value for a non-command systemd key (`Description=`, …), where
/// only specifiers are expanded. Line breaks cannot be represented in such a
/// value, so they become spaces.
pub fn systemd_value(value: &str) -> String {
    value
        .replace('%', "%%")
        .replace(['\n', '\r'], " ")
        .trim_end_matches('\\')
        .to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a systemd command line the way systemd 252 does (words, double
    /// quotes, C escapes, `%%`, `$$`) so the tests can check the round trip.
    fn systemd_split(line: &str) -> Vec<String> {
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
                                word.push(u8::from_str_radix(&hex, 16).unwrap() as char);
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
        "héllo wörld ✓",
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
    fn values_for_plain_keys_escape_specifiers_and_drop_line_breaks() {
        assert_eq!(systemd_value("blog: 100% \nfun\\"), "blog: 100%%  fun");
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
