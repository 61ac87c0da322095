//! Compose's `${VAR}` interpolation, as unitgen instance values. Compose fills
//! variables from the shell and `.env` when it runs; unitgen fills them from
//! the instance being deployed. So `${TAG:-latest}` becomes `{{ tag }}`, and
//! `latest` the value of `tag` in the imported instance.
//!
//! An instance value is always set, so compose's difference between an unset
//! and an empty variable (`${V-x}` against `${V:-x}`) does not exist here:
//! both forms read as "when empty". A variable given different defaults at
//! different uses keeps each default at its use (`{{ v or "x" }}`); one
//! required with `${V:?message}` fails the render with that message while it
//! has no value (`{{ v | required("message") }}`).

/// A string as compose reads it: literal text and variables.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    /// `$VAR`, `${VAR}`, `${VAR:-default}` or `${VAR:?error}`.
    Var {
        name: String,
        /// As the compose file writes it (`$VAR`, `${VAR:-x}`), for messages.
        written: String,
        default: Option<Vec<Piece>>,
        /// `${VAR:?message}`: the message (possibly empty).
        required: Option<String>,
        /// The default is written at this use, not taken as the instance's
        /// value (the variable has other defaults elsewhere).
        per_use: bool,
    },
    /// `${VAR:+alternative}`: the alternative when VAR is not empty.
    IfSet {
        name: String,
        written: String,
        then: Vec<Piece>,
    },
}

/// [`parse_with`], no variable known to be set.
#[cfg(test)]
pub fn parse(text: &str) -> Result<Vec<Piece>, String> {
    parse_with(text, &|_| false)
}

/// Splits `text` into literal text and variables (`$$` is a literal `$`),
/// knowing which variables are set (in `.env`), perhaps empty:
/// for those, the forms without `:` mean what compose makes of a set
/// variable. `${V-default}` is V (the default is for an unset V only),
/// `${V+alternative}` the alternative, `${V?message}` V.
pub fn parse_with(text: &str, set: &dyn Fn(&str) -> bool) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        literal.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(after) = after.strip_prefix('$') {
            literal.push('$');
            rest = after;
            continue;
        }
        let piece;
        if let Some(inner) = after.strip_prefix('{') {
            let end =
                closing_brace(inner).ok_or_else(|| format!("`${{` without `}}` in `{text}`"))?;
            let found = braced(&inner[..end], &rest[dollar..dollar + end + 3], set)?;
            if let Some(alternative) = found.1 {
                // `${V+alternative}` of a set V: just the alternative.
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.extend(alternative);
                rest = &inner[end + 1..];
                continue;
            }
            piece = found.0;
            rest = &inner[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                return Err(format!(
                    "`$` not followed by a variable name in `{text}` (compose reads `$$` as a literal `$`)"
                ));
            }
            piece = Piece::Var {
                name: after[..len].to_string(),
                written: rest[dollar..dollar + 1 + len].to_string(),
                default: None,
                required: None,
                per_use: false,
            };
            rest = &after[len..];
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(piece);
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// Length of the variable name at the start of `text` (0 if none).
fn name_len(text: &str) -> usize {
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return 0;
    }
    text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len())
}

/// Where the `}` closing a `${` is, skipping nested `${…}` in defaults.
fn closing_brace(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The inside of `${…}`; with the pieces it stands for instead, when that
/// is known already (`${V+alternative}` of a set V).
fn braced(
    inner: &str,
    written: &str,
    set: &dyn Fn(&str) -> bool,
) -> Result<(Piece, Option<Vec<Piece>>), String> {
    let len = name_len(inner);
    if len == 0 {
        return Err(format!(
            "`${{{inner}}}` does not start with a variable name"
        ));
    }
    let name = inner[..len].to_string();
    let op = &inner[len..];
    let arg = |prefix: &str| op.strip_prefix(':').unwrap_or(op).strip_prefix(prefix);
    // Without `:`, the operator looks at whether V is set, not empty.
    let set_counts = !op.starts_with(':') && set(&name);
    let var = |piece: Piece| Ok((piece, None));
    if op.is_empty() || (set_counts && (op.starts_with('-') || op.starts_with('?'))) {
        var(Piece::Var {
            name,
            written: written.to_string(),
            default: None,
            required: None,
            per_use: false,
        })
    } else if let Some(default) = arg("-") {
        var(Piece::Var {
            name,
            written: written.to_string(),
            default: Some(parse_with(default, set)?),
            required: None,
            per_use: false,
        })
    } else if let Some(message) = arg("?") {
        var(Piece::Var {
            name,
            written: written.to_string(),
            default: None,
            required: Some(message.to_string()),
            per_use: false,
        })
    } else if let Some(then) = arg("+") {
        let then = parse_with(then, set)?;
        if set_counts {
            return Ok((Piece::Text(String::new()), Some(then)));
        }
        var(Piece::IfSet {
            name,
            written: written.to_string(),
            then,
        })
    } else {
        Err(format!(
            "`${{{inner}}}`: unknown operator `{op}` (compose knows `:-`, `-`, `:?`, `?`, `:+`, `+`)"
        ))
    }
}

/// The instance value a compose variable becomes: `DB_PASSWORD` → `db_password`.
/// Names that could not be an instance value get a `_` (`APP` → `app_`):
/// those unitgen sets itself, the instance entry's own keys (`SERVICES`
/// would be read as the entry's `services:` switches) and the words of the
/// expression language.
pub fn value_name(variable: &str) -> String {
    use crate::template::schema::instance::{BUILT_IN, RESERVED};
    const WORDS: &[&str] = &[
        "true", "false", "none", "and", "or", "not", "in", "is", "if", "else",
    ];
    let name = variable.to_ascii_lowercase();
    if (BUILT_IN.iter().chain(&RESERVED).chain(WORDS)).any(|r| *r == name) {
        name + "_"
    } else {
        name
    }
}

/// The literal text, if there is no variable in it.
pub fn literal(pieces: &[Piece]) -> Option<String> {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// The unitgen template for these pieces: `{{ tag }}` for `${TAG:-1}`.
/// Literal `{{`, `{%` and `{#` are kept out of the template language.
pub fn template(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(text) => {
                let before_template = text.ends_with('{') && i + 1 < pieces.len();
                if text.contains("endraw") {
                    // It would end a raw block early: a string expression.
                    out.push_str(&format!("{{{{ {} }}}}", string_literal(text)));
                } else if ["{{", "{%", "{#"].iter().any(|m| text.contains(m)) || before_template {
                    out.push_str(&format!("{{% raw %}}{text}{{% endraw %}}"));
                } else {
                    out.push_str(text);
                }
            }
            Piece::Var {
                name,
                default,
                required,
                per_use,
                ..
            } => match (default, required) {
                (Some(d), _) if *per_use || literal(d).is_none() => {
                    out.push_str(&format!("{{{{ {} or {} }}}}", value_name(name), expr(d)));
                }
                (_, Some(message)) => out.push_str(&format!(
                    "{{{{ {} | required({}) }}}}",
                    value_name(name),
                    string_literal(message)
                )),
                _ => out.push_str(&format!("{{{{ {} }}}}", value_name(name))),
            },
            Piece::IfSet { name, then, .. } => out.push_str(&format!(
                "{{% if {} %}}{}{{% endif %}}",
                value_name(name),
                template(then)
            )),
        }
    }
    out
}

/// Text of the compose file taken as it is (a name, a key), as a unitgen
/// template that renders exactly it.
pub fn verbatim(text: &str) -> String {
    template(&[Piece::Text(text.to_string())])
}

/// `text` as a string literal of the template language: its escapes are
/// JSON's (`\u0007`), not Rust's (`\u{7}`, which `{:?}` writes).
fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The pieces as one template expression, for a default that holds variables.
fn expr(pieces: &[Piece]) -> String {
    let parts: Vec<String> = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(text) => string_literal(text),
            Piece::Var {
                name,
                default,
                per_use,
                ..
            } => match default {
                Some(d) if *per_use || literal(d).is_none() => {
                    format!("({} or {})", value_name(name), expr(d))
                }
                _ => value_name(name),
            },
            Piece::IfSet { name, then, .. } => {
                format!("({} if {} else \"\")", expr(then), value_name(name))
            }
        })
        .collect();
    match parts.len() {
        0 => "\"\"".to_string(),
        1 => parts[0].clone(),
        _ => format!("({})", parts.join(" ~ ")),
    }
}

/// The text as an instance with these values would see it.
pub fn resolve(pieces: &[Piece], value: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var { name, default, .. } => {
                let v = value(name);
                match default {
                    Some(d) if v.is_empty() => out.push_str(&resolve(d, value)),
                    _ => out.push_str(&v),
                }
            }
            Piece::IfSet { name, then, .. } => {
                if !value(name).is_empty() {
                    out.push_str(&resolve(then, value));
                }
            }
        }
    }
    out
}

/// Marks the uses of `variables` as keeping their own default.
pub fn keep_defaults(pieces: &mut [Piece], variables: &std::collections::HashSet<String>) {
    for piece in pieces {
        match piece {
            Piece::Text(_) => {}
            Piece::Var {
                name,
                default,
                per_use,
                ..
            } => {
                *per_use = default.is_some() && variables.contains(name.as_str());
                keep_defaults(default.as_deref_mut().unwrap_or_default(), variables);
            }
            Piece::IfSet { then, .. } => keep_defaults(then, variables),
        }
    }
}

/// Every variable in the pieces, nested ones too, in order of appearance.
pub fn variables(pieces: &[Piece]) -> Vec<&Piece> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(_) => {}
            Piece::Var { default, .. } => {
                out.push(piece);
                out.extend(variables(default.as_deref().unwrap_or_default()));
            }
            Piece::IfSet { then, .. } => {
                out.push(piece);
                out.extend(variables(then));
            }
        }
    }
    out
}

/// Splits the pieces at each `separator` in their literal text (a port's or
/// a volume's parts), leaving variables whole.
pub fn split(pieces: &[Piece], separator: char) -> Vec<Vec<Piece>> {
    let mut parts = vec![Vec::new()];
    for piece in pieces {
        match piece {
            Piece::Text(text) => {
                for (i, chunk) in text.split(separator).enumerate() {
                    if i > 0 {
                        parts.push(Vec::new());
                    }
                    if !chunk.is_empty() {
                        parts
                            .last_mut()
                            .unwrap()
                            .push(Piece::Text(chunk.to_string()));
                    }
                }
            }
            other => parts.last_mut().unwrap().push(other.clone()),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(written: &str, name: &str, default: Option<&str>) -> Piece {
        Piece::Var {
            name: name.into(),
            written: written.into(),
            default: default.map(|d| vec![Piece::Text(d.into())]),
            required: None,
            per_use: false,
        }
    }

    fn convert(text: &str) -> String {
        template(&parse(text).unwrap())
    }

    #[test]
    fn every_compose_form() {
        assert_eq!(convert("plain"), "plain");
        assert_eq!(convert("$TAG"), "{{ tag }}");
        assert_eq!(convert("nginx:${TAG}"), "nginx:{{ tag }}");
        assert_eq!(
            parse("${TAG:-1.27}").unwrap(),
            vec![var("${TAG:-1.27}", "TAG", Some("1.27"))]
        );
        assert_eq!(
            parse("${TAG-x}").unwrap(),
            vec![var("${TAG-x}", "TAG", Some("x"))]
        );
        assert_eq!(parse("$TAG").unwrap(), vec![var("$TAG", "TAG", None)]);
        assert_eq!(convert("${TAG:-1.27}-alpine"), "{{ tag }}-alpine");
        assert_eq!(
            parse("${PW:?set a password}").unwrap(),
            vec![Piece::Var {
                name: "PW".into(),
                written: "${PW:?set a password}".into(),
                default: None,
                required: Some("set a password".into()),
                per_use: false,
            }]
        );
        assert_eq!(
            convert("${PW:?set a password}"),
            "{{ pw | required(\"set a password\") }}"
        );
        assert_eq!(
            convert("-v${DEBUG:+ --debug}"),
            "-v{% if debug %} --debug{% endif %}"
        );
        assert_eq!(
            convert("${DATA:-${HOME}/data}"),
            "{{ data or (home ~ \"/data\") }}"
        );
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        assert_eq!(convert("echo $$HOME"), "echo $HOME");
        assert_eq!(convert("$${X}"), "${X}");
        assert_eq!(convert("a$$$B"), "a${{ b }}");
    }

    #[test]
    fn literal_braces_stay_out_of_the_template_language() {
        assert_eq!(convert("{{.State}}"), "{% raw %}{{.State}}{% endraw %}");
        assert_eq!(convert("{$X}"), "{% raw %}{{% endraw %}{{ x }}}");
        assert_eq!(convert("{a}"), "{a}");
    }

    #[test]
    fn templates_render_as_compose_interpolates() {
        let env = minijinja::Environment::new();
        let cases = [
            ("{$X}", [("x", "1")], "{1}"),
            ("{{.State}}:$X", [("x", "1")], "{{.State}}:1"),
            ("${A:-${X}/data}", [("x", "/srv")], "/srv/data"),
            ("-v${X:+ --debug}", [("x", "1")], "-v --debug"),
            ("-v${X:+ --debug}", [("x", "")], "-v"),
        ];
        for (compose, values, expected) in cases {
            let mut context: std::collections::BTreeMap<&str, &str> = values.into();
            context.entry("a").or_insert("");
            let out = env
                .render_str(&template(&parse(compose).unwrap()), context)
                .unwrap();
            assert_eq!(out, expected, "{compose}");
        }
    }

    /// A `${X:?message}` whose message holds what Rust's `{:?}` writes
    /// its own way (`\u{202e}`, `\u{1b}`) made a template the expression
    /// language could not read ("bad string escape"): the message is a
    /// string literal of that language, and reads back as written.
    #[test]
    fn a_required_message_reads_back_as_written() {
        let mut env = minijinja::Environment::new();
        env.add_filter("required", |value: String, message: String| {
            format!("{value}|{message}")
        });
        for message in [
            "set it",
            "a \u{202e} b",
            "\u{1b}[2J",
            "q\"uote\\ \t {% x % {{",
            "line\nbreak",
        ] {
            let compose = format!("${{X:?{message}}}");
            let out = env
                .render_str(
                    &template(&parse(&compose).unwrap()),
                    [("x", "1")]
                        .into_iter()
                        .collect::<std::collections::BTreeMap<_, _>>(),
                )
                .unwrap_or_else(|e| panic!("{compose:?}: {e}"));
            assert_eq!(out, format!("1|{message}"), "{compose:?}");
        }
    }

    /// Literal text of any shape renders as itself: no part of it becomes
    /// template code.
    #[test]
    fn literal_text_renders_as_itself() {
        let env = minijinja::Environment::new();
        for text in [
            "{{ 7*7 }}",
            "{% raw %}a{% endraw %}",
            "{%endraw%}{{ x }}",
            "{#c#} {{- x -}} {%- if 1 -%}",
            "a{",
            "}}{%}",
            "{{ \"\\\u{1b}\u{202e}\" }}",
            "endraw {{",
        ] {
            let compose = text.replace('$', "$$");
            let out = env
                .render_str(&template(&parse(&compose).unwrap()), ())
                .unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(out, text);
        }
    }

    #[test]
    fn invalid_forms_are_errors() {
        assert!(parse("cost: $5").unwrap_err().contains("`$$`"));
        assert!(parse("${TAG").unwrap_err().contains("without"));
        assert!(parse("${}").is_err());
        assert!(
            parse("${TAG/x/y}")
                .unwrap_err()
                .contains("unknown operator")
        );
    }

    #[test]
    fn reserved_names_get_a_suffix() {
        assert_eq!(value_name("DB_PASSWORD"), "db_password");
        assert_eq!(value_name("APP"), "app_");
        assert_eq!(value_name("instance"), "instance_");
        for entry_key in ["SERVICES", "extends", "Routes", "HOST"] {
            assert_eq!(value_name(entry_key), entry_key.to_ascii_lowercase() + "_");
        }
    }

    #[test]
    fn resolving_uses_values_then_defaults() {
        let pieces = parse("${HOST:-localhost}:${PORT}${TLS:+s}").unwrap();
        let none = |_: &str| String::new();
        assert_eq!(resolve(&pieces, &none), "localhost:");
        let some = |name: &str| match name {
            "HOST" => "example.org".to_string(),
            "PORT" => "80".to_string(),
            _ => "1".to_string(),
        };
        assert_eq!(resolve(&pieces, &some), "example.org:80s");
        let names: Vec<_> = variables(&pieces)
            .iter()
            .map(|p| match p {
                Piece::Var { name, .. } | Piece::IfSet { name, .. } => name.as_str(),
                Piece::Text(_) => "",
            })
            .collect();
        assert_eq!(names, ["HOST", "PORT", "TLS"]);
    }

    #[test]
    fn splitting_leaves_variables_whole() {
        let parts = split(&parse("${DIR:-./a:b}:/data:ro").unwrap(), ':');
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], vec![var("${DIR:-./a:b}", "DIR", Some("./a:b"))]);
        assert_eq!(literal(&parts[1]).as_deref(), Some("/data"));
        assert_eq!(literal(&parts[2]).as_deref(), Some("ro"));
    }
}
