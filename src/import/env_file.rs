//! What a unit cannot deliver of a compose env file as compose does (see
//! `render::env_file`): found at import, where the file is at hand, and
//! warned about at the `env_file` that names it.

/// Each line of `text` whose value the unit would not give the container as
/// compose would, with why: `(line number, message)`.
pub fn differences(text: &str) -> Vec<(usize, String)> {
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
            let name = line.trim();
            out.push((
                i + 1,
                format!("`{name}` takes its value from compose's environment; a unit has none, so it is not set: give it a value in the file"),
            ));
            continue;
        };
        let name = line[..split].trim().to_string();
        let value = line[split + 1..].trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
        let body = match quote {
            Some(q) => {
                let rest = &value[1..];
                if closing_quote(rest, q).is_none() {
                    out.push((
                        i + 1,
                        format!("`{name}` spans several lines: docker run takes one line per variable, so the unit fails to start"),
                    ));
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
                    out.push((
                        i + 1,
                        format!("`{name}` holds a line break (`\\n`): docker run takes one line per variable, so the unit fails to start"),
                    ));
                }
                (q == '"').then_some(rest)
            }
            None => Some(value),
        };
        for variable in body.map(references).unwrap_or_default() {
            if !defined.contains(&variable) {
                out.push((
                    i + 1,
                    format!("`{name}` uses `${variable}`, which compose takes from its environment; a unit has none, so it is empty there"),
                ));
            }
        }
        defined.push(name);
    }
    out
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

/// The variables `$NAME` and `${NAME…}` in a value (not `\$`), but those
/// with a default (`${NAME:-x}`, `${NAME-x}`): the unit applies it where
/// compose, without NAME in its environment, would too.
fn references(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
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
                out.push(rest[..len].to_string());
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
        let text = "# comment\nA=1\nB=${A}/x\nC=\"$HOME/y\"\nD='$HOME'\nINHERITED\nCERT=\"-----BEGIN\nabc\n-----END\"\nE=\"x\\ny\"\nF=ok\nG=${VECTOR_STORE:-weaviate},${DB-pg}\n";
        let found = differences(text);
        let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [4, 6, 7, 10], "{found:?}");
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
