//! How systemd 252 reads a unit file, written for the tests from systemd's
//! own C code and independent of unitgen's: `read_line_full` (fileio.c: a
//! line ends at `\n`, `\r` or NUL, `\r\n` being one end), `config_parse` and
//! `parse_line` (conf-parser.c: comments, a trailing unescaped backslash
//! joins the next line, whitespace trimmed around `=`), `config_parse_exec`
//! and `extract_first_word` with C unescaping (extract-word.c, escape.c),
//! specifiers, and `$VAR` expansion at exec time.
//!
//! The tests render units from hostile values and check with this reader
//! that systemd gets exactly the intended directives and values.

/// systemd's `LONG_LINE_MAX`: a longer (joined) line fails the whole unit.
pub const LONG_LINE_MAX: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub section: String,
    pub key: String,
    pub value: String,
}

/// Splits `text` into lines as `read_line_full` does: each `\n`, `\r` and
/// NUL ends a line, but a run of different line-end characters (`\r\n`,
/// `\n\r`) is one end, and nothing joins a NUL with what follows.
pub fn read_lines(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    fn eol(byte: u8) -> u8 {
        match byte {
            b'\n' => 1,
            b'\r' => 2,
            0 => 4,
            _ => 0,
        }
    }
    let mut lines = Vec::new();
    let mut line = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let kind = eol(text[i]);
        i += 1;
        if kind == 0 {
            line.push(text[i - 1]);
            if line.len() > LONG_LINE_MAX {
                return Err("line longer than LONG_LINE_MAX".into());
            }
            continue;
        }
        let mut seen = kind;
        while i < text.len() && seen & 4 == 0 {
            let next = eol(text[i]);
            if next == 0 || seen & next != 0 {
                break;
            }
            seen |= next;
            i += 1;
        }
        lines.push(std::mem::take(&mut line));
    }
    if !line.is_empty() {
        lines.push(line);
    }
    Ok(lines)
}

const WHITESPACE: &[u8] = b" \t\n\r";

fn strip(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !WHITESPACE.contains(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !WHITESPACE.contains(b))
        .map_or(start, |e| e + 1);
    &bytes[start..end.max(start)]
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("not UTF-8: {bytes:?}"))
}

/// The directives of a unit, in order, as `config_parse` hands them to the
/// settings' parsers. Anything systemd would log and skip is an error here.
pub fn parse(unit: &str) -> Result<Vec<Directive>, String> {
    let mut directives = Vec::new();
    let mut section: Option<String> = None;
    let mut continuation: Option<Vec<u8>> = None;
    let mut logical_lines = Vec::new();
    for (index, raw) in read_lines(unit.as_bytes())?.into_iter().enumerate() {
        let mut buf = raw;
        if index == 0 && buf.starts_with("\u{feff}".as_bytes()) {
            buf.drain(..3);
        }
        // Comments are skipped first, inside a continuation too.
        let lead = buf
            .iter()
            .position(|b| !WHITESPACE.contains(b))
            .map(|p| buf[p]);
        if matches!(lead, Some(b'#' | b';')) {
            continue;
        }
        let mut line = match continuation.take() {
            Some(mut joined) => {
                joined.extend_from_slice(&buf);
                if joined.len() > LONG_LINE_MAX {
                    return Err("continuation line too long".into());
                }
                joined
            }
            None => buf,
        };
        // systemd scans the whole line, an escape taking the next byte: the
        // line ends escaped when its last run of backslashes is odd (read
        // from the end, so that a long continued line costs no square).
        let escaped = line.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1;
        if escaped {
            let last = line.len() - 1;
            line[last] = b' ';
            continuation = Some(line);
            continue;
        }
        logical_lines.push(line);
    }
    logical_lines.extend(continuation);
    for line in logical_lines {
        let line = strip(&line);
        if line.is_empty() || matches!(line[0], b'#' | b';') {
            continue;
        }
        if line.starts_with(b".include") {
            return Err(format!(".include line: {}", String::from_utf8_lossy(line)));
        }
        if line[0] == b'[' {
            if line.last() != Some(&b']') || line.len() < 2 {
                return Err(format!(
                    "invalid section header: {}",
                    String::from_utf8_lossy(line)
                ));
            }
            section = Some(text(&line[1..line.len() - 1])?);
            continue;
        }
        let Some(section) = &section else {
            return Err("assignment outside of a section".into());
        };
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            return Err(format!("missing '=': {}", String::from_utf8_lossy(line)));
        };
        directives.push(Directive {
            section: section.clone(),
            key: text(strip(&line[..eq]))?,
            value: text(strip(&line[eq + 1..]))?,
        });
    }
    Ok(directives)
}

/// One C escape after a backslash (`cunescape_one`): the bytes it stands
/// for and how many input bytes it used.
fn cunescape_one(input: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let hex = |digits: &[u8]| -> Result<u32, String> {
        let s = std::str::from_utf8(digits).map_err(|e| e.to_string())?;
        u32::from_str_radix(s, 16).map_err(|_| format!("bad hex escape {s}"))
    };
    let simple = |b: u8| Ok((vec![b], 1));
    match input.first().copied().ok_or("backslash at the end")? {
        b'a' => simple(7),
        b'b' => simple(8),
        b'f' => simple(12),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(11),
        b'\\' => simple(b'\\'),
        b'"' => simple(b'"'),
        b'\'' => simple(b'\''),
        b's' => simple(b' '),
        b'x' => {
            let v = hex(input.get(1..3).ok_or("short \\x")?)?;
            if v == 0 {
                return Err("\\x00 is refused".into());
            }
            // One byte, whatever it is: `\x85` is not a character.
            Ok((vec![v as u8], 3))
        }
        b'u' | b'U' => {
            let n = if input[0] == b'u' { 4 } else { 8 };
            let v = hex(input.get(1..1 + n).ok_or("short \\u")?)?;
            let c = char::from_u32(v).filter(|_| v != 0).ok_or("bad \\u")?;
            Ok((c.to_string().into_bytes(), 1 + n))
        }
        d @ b'0'..=b'7' => {
            let digits = input.get(..3).ok_or("short octal")?;
            if !digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
                return Err(format!("bad octal escape starting {}", d as char));
            }
            let v = digits.iter().fold(0u32, |a, b| a * 8 + u32::from(b - b'0'));
            if v == 0 || v > 255 {
                return Err("bad octal escape".into());
            }
            Ok((vec![v as u8], 3))
        }
        other => Err(format!("unknown escape \\{}", other as char)),
    }
}

/// `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)` over the whole
/// value: the words, unquoted and unescaped, as bytes. In a command line
/// (`exec`), a lone unquoted `;` would start a second command: refused.
pub fn words(value: &str, exec: bool) -> Result<Vec<Vec<u8>>, String> {
    let bytes = value.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && WHITESPACE.contains(&bytes[i]) {
            i += 1;
        }
        if i == bytes.len() {
            return Ok(words);
        }
        if exec && bytes[i] == b';' && bytes.get(i + 1).is_none_or(|b| WHITESPACE.contains(b)) {
            return Err(format!("a lone `;` separates commands: {value:?}"));
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        while i < bytes.len() {
            let b = bytes[i];
            match (quote, b) {
                (_, b'\\') => {
                    let (out, used) = cunescape_one(&bytes[i + 1..])?;
                    word.extend(out);
                    i += 1 + used;
                    continue;
                }
                (None, b'"' | b'\'') => quote = Some(b),
                (Some(q), b) if b == q => quote = None,
                (None, b) if WHITESPACE.contains(&b) => break,
                (_, b) => word.push(b),
            }
            i += 1;
        }
        if quote.is_some() {
            return Err(format!("unterminated quote in {value:?}"));
        }
        words.push(word);
    }
}

/// Specifier expansion: `%%` is `%`; another `%X` becomes a marker, so a
/// specifier the value did not mean to hold shows up in comparisons.
pub fn specifiers(word: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < word.len() {
        if word[i] != b'%' {
            out.push(word[i]);
            i += 1;
            continue;
        }
        match word.get(i + 1) {
            Some(b'%') => out.push(b'%'),
            Some(c) if c.is_ascii_alphabetic() => {
                out.extend_from_slice(format!("<specifier %{}>", *c as char).as_bytes())
            }
            _ => return Err("invalid specifier".into()),
        }
        i += 2;
    }
    Ok(out)
}

/// `$VAR` expansion at exec time: `$$` is `$`; a variable becomes a marker.
fn variables(word: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < word.len() {
        if word[i] == b'$' {
            match word.get(i + 1) {
                Some(b'$') => {
                    out.push(b'$');
                    i += 2;
                    continue;
                }
                Some(b'{') | Some(b'A'..=b'Z' | b'a'..=b'z' | b'_') => {
                    out.extend_from_slice(b"<variable>");
                    i += 1;
                    if word[i] == b'{' {
                        while i < word.len() && word[i] != b'}' {
                            i += 1;
                        }
                        i += 1;
                    } else {
                        while i < word.len() && (word[i].is_ascii_alphanumeric() || word[i] == b'_')
                        {
                            i += 1;
                        }
                    }
                    continue;
                }
                _ => {}
            }
        }
        out.push(word[i]);
        i += 1;
    }
    out
}

/// The argument vector an `Exec*=` value runs (`config_parse_exec`): the
/// `-@:+!` prefixes dropped, words split and unescaped, a lone unquoted `;`
/// refused (it would start a second command), specifiers and variables
/// expanded.
pub fn exec_argv(value: &str) -> Result<Vec<Vec<u8>>, String> {
    let value = value.trim_start_matches(['-', '@', ':', '+', '!']);
    words(value, true)?
        .iter()
        .map(|w| Ok(variables(&specifiers(w)?)))
        .collect()
}

/// The assignments of an `Environment=` value (`config_parse_environ`):
/// specifiers expanded on the whole value, then split into words.
pub fn environment(value: &str) -> Result<Vec<Vec<u8>>, String> {
    let expanded = text(&specifiers(value.as_bytes())?)?;
    words(&expanded, false)
}

/// A directive's value as the process or setting finally sees it.
pub fn meaning(directive: &Directive) -> Result<Vec<Vec<u8>>, String> {
    let value = &directive.value;
    if directive.section.starts_with("X-") {
        // systemd reads nothing here but the lines themselves.
        Ok(vec![value.as_bytes().to_vec()])
    } else if directive.key.starts_with("Exec") {
        exec_argv(value)
    } else if directive.key == "Environment" {
        environment(value)
    } else {
        Ok(vec![specifiers(value.as_bytes())?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_end_systemd_knows_ends_a_line() {
        let lines = read_lines(b"a\nb\rc\0d\r\ne\n\rf\n\ng").unwrap();
        let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        assert_eq!(lines, [&b"a"[..], b"b", b"c", b"d", b"e", b"f", b"", b"g"]);
    }

    #[test]
    fn the_issue_injections_add_or_swallow_directives() {
        let injected = parse(
            "[Service]\nEnvironment=GREETING=hi\r[Service]\rExecStartPre=/bin/touch /tmp/pwned\n",
        )
        .unwrap();
        assert_eq!(injected[1].key, "ExecStartPre");
        let swallowed = parse("[Service]\nEnvironment=A=b\\\nProtectSystem=strict\n").unwrap();
        assert_eq!(swallowed.len(), 1);
        assert_eq!(swallowed[0].value, "A=b ProtectSystem=strict");
        // A comment inside a continuation is skipped; a blank line ends it.
        let joined = parse("[S]\nA=1 \\\n# c\n 2\nB=3\\\n\nC=4\n").unwrap();
        let values: Vec<&str> = joined.iter().map(|d| d.value.as_str()).collect();
        assert_eq!(values, ["1   2", "3", "4"]);
    }

    #[test]
    fn exec_words_unquote_and_unescape_as_systemd_does() {
        let argv = exec_argv(r#"-/bin/echo "a b" c\x41 "\u0085" "%%" $$x"#).unwrap();
        let expected: Vec<Vec<u8>> = vec![
            b"/bin/echo".to_vec(),
            b"a b".to_vec(),
            b"cA".to_vec(),
            "\u{85}".as_bytes().to_vec(),
            b"%".to_vec(),
            b"$x".to_vec(),
        ];
        assert_eq!(argv, expected);
        // `\x85` is one byte, not the character U+0085.
        assert_eq!(exec_argv(r#"/bin/echo "\x85""#).unwrap()[1], vec![0x85]);
    }
}
