//! A small systemd unit-file parser.
//!
//! Turns unit text into the ordered list of `(section, name, value)` options
//! that fleet's API speaks (its `UnitOption` JSON), following the syntax in
//! systemd.syntax(7): `#`/`;` comments, `[Section]` headers, `key = value`
//! with whitespace trimmed around `=`, and a trailing backslash joining a line
//! with the next (the backslash becomes a space, comment lines in between are
//! skipped). Repeated keys are kept, in order, because many systemd settings
//! (`ExecStartPre=`, `Environment=`) are lists.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::escape::ends_in_continuation;

/// One `Name=Value` line of a unit file, with the section it sits in.
/// Serializes exactly as fleet's `UnitOption` (`{section, name, value}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UnitOption {
    pub section: String,
    pub name: String,
    pub value: String,
}

impl UnitOption {
    pub fn new(section: &str, name: &str, value: &str) -> Self {
        UnitOption {
            section: section.to_owned(),
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    /// The option as systemd reads it. fleetctl keeps a continued value's
    /// physical lines (`a \\` newline `  b`) where [`parse`] joins them as
    /// systemd does (`a   b`): the same unit, submitted one way or the
    /// other, compares equal this way.
    pub fn into_systemd_reading(self) -> UnitOption {
        if !self.value.contains('\n') {
            return self;
        }
        let text = format!("[{}]\n{}={}\n", self.section, self.name, self.value);
        match parse(&text).as_deref() {
            Ok([joined]) if joined.section == self.section && joined.name == self.name => {
                joined.clone()
            }
            _ => self,
        }
    }
}

/// A line the parser could not make sense of (1-based line number, where the
/// logical line began).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

fn is_comment(line: &str) -> bool {
    line.starts_with('#') || line.starts_with(';')
}

/// Parses unit text into its options, in file order.
///
/// Unlike systemd, which logs and skips malformed lines, this rejects them:
/// the units we parse are our own or fleet's, and a silently dropped line
/// would be a silently changed service.
pub fn parse(text: &str) -> Result<Vec<UnitOption>, ParseError> {
    let mut options = Vec::new();
    let mut section: Option<String> = None;
    // A logical line being joined from continued physical lines.
    let mut pending: Option<(usize, String)> = None;

    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();

        let (start, mut logical) = match pending.take() {
            // systemd skips comment lines inside a continued value.
            Some(joined) if is_comment(trimmed) => {
                pending = Some(joined);
                continue;
            }
            Some((start, mut joined)) => {
                joined.push_str(line);
                (start, joined)
            }
            None if trimmed.is_empty() || is_comment(trimmed) => continue,
            None => (number, line.to_owned()),
        };

        if ends_in_continuation(&logical) {
            logical.pop();
            logical.push(' ');
            pending = Some((start, logical));
            continue;
        }
        parse_logical_line(start, &logical, &mut section, &mut options)?;
    }
    if let Some((start, logical)) = pending {
        parse_logical_line(start, &logical, &mut section, &mut options)?;
    }
    Ok(options)
}

fn parse_logical_line(
    line: usize,
    logical: &str,
    section: &mut Option<String>,
    options: &mut Vec<UnitOption>,
) -> Result<(), ParseError> {
    let error = |message: String| ParseError { line, message };
    let text = logical.trim();
    if text.is_empty() {
        return Ok(());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let name = rest
            .strip_suffix(']')
            .ok_or_else(|| error(format!("section header `{text}` does not end with `]`")))?;
        if name.is_empty() || name.contains(['[', ']']) {
            return Err(error(format!("invalid section header `{text}`")));
        }
        *section = Some(name.to_owned());
        return Ok(());
    }
    let (key, value) = text.split_once('=').ok_or_else(|| {
        error(format!(
            "expected `Name=value` or `[Section]`, found `{text}`"
        ))
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(error(format!("missing option name before `=` in `{text}`")));
    }
    let Some(section) = section else {
        return Err(error(format!(
            "option `{key}` appears before any `[Section]` header"
        )));
    };
    options.push(UnitOption::new(section, key, value.trim()));
    Ok(())
}

/// The value of `name` in `section`; when the key repeats, the last one wins,
/// as it does for systemd's single-valued settings.
pub fn section_value<'a>(options: &'a [UnitOption], section: &str, name: &str) -> Option<&'a str> {
    options
        .iter()
        .rev()
        .find(|o| o.section == section && o.name == name)
        .map(|o| o.value.as_str())
}

/// Writes options back as unit text (one `[Section]` header per run of
/// options in the same section), e.g. to show what fleet holds in a diff.
pub fn to_text(options: &[UnitOption]) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for option in options {
        if current != Some(option.section.as_str()) {
            if current.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("[{}]\n", option.section));
            current = Some(&option.section);
        }
        out.push_str(&format!("{}={}\n", option.name, option.value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(section: &str, name: &str, value: &str) -> UnitOption {
        UnitOption::new(section, name, value)
    }

    #[test]
    fn sections_keys_and_trimming() {
        let text =
            "[Unit]\nDescription = Blog web  \n\n[Service]\nExecStart=/usr/bin/docker run nginx\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![
                opt("Unit", "Description", "Blog web"),
                opt("Service", "ExecStart", "/usr/bin/docker run nginx"),
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let text =
            "# leading comment\n; another\n[Unit]\n  # indented comment\n\nAfter=docker.service\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![opt("Unit", "After", "docker.service")]
        );
    }

    #[test]
    fn repeated_keys_are_kept_in_order() {
        let text = "[Service]\nExecStartPre=-/usr/bin/docker rm -f web\nEnvironment=A=1\nExecStartPre=/usr/bin/docker pull nginx\nEnvironment=B=2\n";
        let options = parse(text).unwrap();
        let pre: Vec<_> = options
            .iter()
            .filter(|o| o.name == "ExecStartPre")
            .map(|o| o.value.as_str())
            .collect();
        assert_eq!(
            pre,
            ["-/usr/bin/docker rm -f web", "/usr/bin/docker pull nginx"]
        );
        // The value keeps everything after the first `=`.
        assert_eq!(options[1], opt("Service", "Environment", "A=1"));
        assert_eq!(
            section_value(&options, "Service", "Environment"),
            Some("B=2")
        );
    }

    #[test]
    fn backslash_joins_lines_with_a_space_and_skips_comments_between() {
        let text = "[Service]\nExecStart=/usr/bin/docker run \\\n  --name web \\\n# a comment inside\n  nginx\nRestart=always\n";
        let options = parse(text).unwrap();
        assert_eq!(
            options[0],
            opt(
                "Service",
                "ExecStart",
                "/usr/bin/docker run    --name web    nginx"
            )
        );
        assert_eq!(options[1], opt("Service", "Restart", "always"));
    }

    #[test]
    fn a_value_fleetctl_kept_continued_reads_as_systemd_joins_it() {
        let fleetctl = UnitOption::new(
            "Service",
            "ExecStart",
            "/usr/bin/docker run \\\n    --name web \\\n# a comment\n    nginx",
        );
        let text = "[Service]\nExecStart=/usr/bin/docker run \\\n    --name web \\\n# a comment\n    nginx\n";
        assert_eq!(
            parse(text).unwrap(),
            [fleetctl.clone().into_systemd_reading()]
        );
        let plain = UnitOption::new("Service", "ExecStart", "/bin/true");
        assert_eq!(plain.clone().into_systemd_reading(), plain);
    }

    #[test]
    fn escaped_backslash_is_not_a_continuation() {
        let text = "[Service]\nX=a\\\\\nY=b\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![opt("Service", "X", "a\\\\"), opt("Service", "Y", "b")]
        );
    }

    #[test]
    fn continuation_at_end_of_file_is_kept() {
        assert_eq!(
            parse("[Service]\nExecStart=/bin/true \\").unwrap(),
            vec![opt("Service", "ExecStart", "/bin/true")]
        );
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(
            parse("[Unit]\r\nDescription=x\r\n").unwrap(),
            vec![opt("Unit", "Description", "x")]
        );
    }

    #[test]
    fn empty_value_is_an_option() {
        assert_eq!(
            parse("[Service]\nExecStart=\n").unwrap(),
            vec![opt("Service", "ExecStart", "")]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("[Unit]\nDescription=x\njust words\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("just words"), "{err}");

        assert_eq!(parse("Description=x\n").unwrap_err().line, 1);
        assert_eq!(parse("[Unit\nA=b\n").unwrap_err().line, 1);
        assert_eq!(parse("[Unit]\n = b\n").unwrap_err().line, 2);
        // A continued line reports where it started.
        assert_eq!(
            parse("[Unit]\nA=b \\\nstill a\n[Bad\n").unwrap_err().line,
            4
        );
    }

    #[test]
    fn serializes_like_fleet_option_json() {
        let json = serde_json::to_string(&opt("X-Fleet", "Conflicts", "web@*.service")).unwrap();
        assert_eq!(
            json,
            r#"{"section":"X-Fleet","name":"Conflicts","value":"web@*.service"}"#
        );
    }

    #[test]
    fn to_text_round_trips() {
        let text = "[Unit]\nDescription=web\nAfter=docker.service\n\n[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nConflicts=web@*.service\n";
        let options = parse(text).unwrap();
        assert_eq!(to_text(&options), text);
        assert_eq!(parse(&to_text(&options)).unwrap(), options);
    }
}
