//! `env_file` read as compose reads it. `docker run --env-file` takes each
//! line as `NAME=value` byte for byte, so `SECRET='r(m)9'` from a compose
//! env file would reach the container with its quotes. Before the container
//! starts, the unit rewrites the files into the form Docker takes, reading
//! them with compose's rules (its `dotenv` parser): blank lines and `#`
//! comments skipped, an `export ` prefix, `NAME=value` or `NAME: value`,
//! spaces around both trimmed; a value in single quotes taken literally; in
//! double quotes with `\"`, `\\` and `\$` escapes and `${VAR}` expanded; an
//! unquoted value up to a ` #` comment, `${VAR}` expanded. Variables are
//! those the files set before (compose also looks in its own environment,
//! which a unit does not have); `$$` is a `$`, and `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?message}` and
//! `${VAR?message}` work as in compose (the last two fail the start). An
//! unquoted `\$VAR` is a backslash and VAR's value: compose-go escapes `$`
//! only in double quotes.
//! A bare `NAME` line (compose: "from my environment") sets nothing. A value
//! that spans lines (`\n`, or quotes closed on a later line) cannot be given
//! to `docker run`: the start fails, naming the file and line.
//!
//! Each variable is written once, with its last value, and none that the
//! service sets itself (`environment`, `secrets`), which win as compose has
//! them win: `docker run` would pass every copy, so the container's config
//! (`docker inspect`) listed `SHARED=from a` beside `SHARED=from b`, and an
//! env file's value beside the `environment` one that replaces it.
//!
//! The reader is an awk program (`awk` is on every Debian host, as `sh`
//! is); `tests` run it against compose's own cases.

/// Where the rewritten variables go (mode 0600, in /run).
pub fn converted_path(container: &str) -> String {
    format!("{}/{container}.env-files", super::RUN_DIR)
}

/// The awk program, one statement group per line: systemd joins the lines
/// of a unit's command into one, so every line ends where awk may go on.
const READER: &[&str] = &[
    "function fail(msg) { printf \"%s:%d: %s\\n\", FILENAME, FNR, msg > \"/dev/stderr\"; failed = 1; exit 1 };",
    "function expand(v,    out, ref, op, arg, set, got) { out = \"\";",
    "  while (match(v, /\\$(\\$|\\{[A-Za-z_][A-Za-z0-9_]*(:?[-+?][^}]*)?\\}|[A-Za-z_][A-Za-z0-9_]*)/)) {",
    "    ref = substr(v, RSTART + 1, RLENGTH - 1); out = out substr(v, 1, RSTART - 1); v = substr(v, RSTART + RLENGTH);",
    "    if (ref == \"$\") { out = out \"$\"; continue };",
    "    op = \"\"; arg = \"\";",
    "    if (substr(ref, 1, 1) == \"{\") { ref = substr(ref, 2, length(ref) - 2);",
    "      if (match(ref, /:?[-+?]/)) { op = substr(ref, RSTART, RLENGTH); arg = substr(ref, RSTART + RLENGTH); ref = substr(ref, 1, RSTART - 1) } };",
    "    set = (ref in val) && (val[ref] != \"\" || substr(op, 1, 1) != \":\"); got = (ref in val) ? val[ref] : \"\";",
    "    if (op == \"\") out = out got; else if (op ~ /-/) out = out (set ? got : arg); else if (op ~ /[+]/) out = out (set ? arg : \"\");",
    "    else if (set) out = out got; else fail(ref \": \" (arg == \"\" ? \"required\" : arg)) };",
    "  return out v };",
    "{ line = $0; sub(/\\r$/, \"\", line); sub(/^[ \\t]+/, \"\", line);",
    "  if (line == \"\" || substr(line, 1, 1) == \"#\") next;",
    "  sub(/^export[ \\t]+/, \"\", line);",
    "  if (!match(line, /^[A-Za-z0-9_.]+[ \\t]*[=:]/)) { if (line ~ /^[A-Za-z0-9_.]+[ \\t]*$/) next; fail(\"not NAME=value\") };",
    "  key = substr(line, 1, RLENGTH - 1); sub(/[ \\t]+$/, \"\", key);",
    "  v = substr(line, RLENGTH + 1); sub(/^[ \\t]+/, \"\", v); q = substr(v, 1, 1);",
    "  several = key \": a value on several lines cannot be given to docker run\";",
    "  if (q == \"'\") { v = substr(v, 2); i = index(v, \"'\"); if (!i) fail(several); v = substr(v, 1, i - 1) }",
    "  else if (q == \"\\\"\") { s = substr(v, 2); v = \"\"; closed = 0;",
    "    while (s != \"\") { c = substr(s, 1, 1); s = substr(s, 2);",
    "      if (c == \"\\\"\") { closed = 1; break };",
    "      if (c == \"\\\\\" && s != \"\") { c = substr(s, 1, 1); s = substr(s, 2);",
    "        if (c == \"n\" || c == \"r\") fail(several); if (c == \"$\") c = \"\\001\" };",
    "      v = v c };",
    "    if (!closed) fail(several); v = expand(v); gsub(/\\001/, \"$\", v) }",
    "  else { sub(/[ \\t]+#.*$/, \"\", v); sub(/[ \\t]+$/, \"\", v); v = expand(v) };",
    "  if (!(key in val)) order[++n] = key; val[key] = v }",
    "END { if (failed) exit 1; for (i = 1; i <= n; i++) if (!(order[i] in given)) print order[i] \"=\" val[order[i]] }",
];

/// The awk program, with `given`: the variables the service sets itself.
fn reader(given: &[&str]) -> String {
    // Names are checked (`syntax::check_env_name`: letters, digits, `_`),
    // so they are awk string literals as they are.
    let names: Vec<String> = given
        .iter()
        .map(|name| format!("given[\"{name}\"] = 1;"))
        .collect();
    let mut lines = Vec::new();
    if !names.is_empty() {
        lines.push(format!("BEGIN {{ {} }};", names.join(" ")));
    }
    lines.extend(READER.iter().map(|line| line.to_string()));
    lines.join("\n")
}

/// The `ExecStartPre` script: the files, read as compose reads them, into
/// `converted_path`, but for the variables in `given`, which the service
/// sets itself. One statement per element (see `escape::systemd_shell`).
pub fn convert_script(files: &[String], container: &str, given: &[&str]) -> Vec<String> {
    use crate::escape::sh_quote;
    let out = converted_path(container);
    let mut script = vec![format!("umask 077 && mkdir -p {} &&", super::RUN_DIR)];
    let program = reader(given);
    let quoted = sh_quote(&program);
    let mut lines = quoted.lines();
    if let Some(first) = lines.next() {
        script.push(format!("awk {first}"));
    }
    script.extend(lines.map(|line| format!("  {line}")));
    let files: Vec<String> = files.iter().map(|f| sh_quote(f)).collect();
    if let Some(last) = script.last_mut() {
        last.push_str(&format!(" {} > {out}.tmp &&", files.join(" ")));
    }
    script.push(format!("mv {out}.tmp {out}"));
    script
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// The reader as the unit runs it (one line, as systemd joins it), on
    /// `text`: its output, or its error.
    fn read(text: &str) -> Result<String, String> {
        read_files(&[text], &[])
    }

    /// The reader on several files, with the variables the service sets.
    fn read_files(texts: &[&str], given: &[&str]) -> Result<String, String> {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let file = dir.path().join(if i == 0 {
                    "app.env".into()
                } else {
                    format!("app{i}.env")
                });
                std::fs::write(&file, text).unwrap();
                file
            })
            .collect();
        let out = Command::new("awk")
            .arg(reader(given).replace('\n', " "))
            .args(&files)
            .output()
            .expect("awk runs");
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).unwrap())
        } else {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "",
                "written on a failure"
            );
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// What compose v2 delivers for each line (compose-go's dotenv tests).
    #[test]
    fn values_arrive_as_compose_delivers_them() {
        let text = r#"# a comment
SECRET_KEY='r(m)9$x "q"'
export DB_URL="postgres://u:p@db/x"
PLAIN=value # inline comment
HASH=pa#ss
  SPACED = hello world  
YAML: style
EMPTY=
QUOTED_EMPTY=""
ESCAPES="a \"b\" c\\d"
REF=${PLAIN}-x
REF2="$PLAIN/y"
DEFAULT=${NOPE:-fallback}
LITERAL='${PLAIN}'
DOLLAR="\$HOME"
FROM_ENVIRONMENT
TWO_DOLLARS=$$PLAIN and $${PLAIN}
QUOTED_TWO_DOLLARS="$$PLAIN"
UNQUOTED_BACKSLASH=x\$PLAIN
EMPTY_OR=${EMPTY:-or}
EMPTY_DASH=${EMPTY-unused}
UNSET_DASH=${NOPE-dash}
PLUS=${PLAIN:+alt}
EMPTY_PLUS=${EMPTY:+alt}
EMPTY_DASH_PLUS=${EMPTY+alt}
REQUIRED=${PLAIN:?set}
"#;
        assert_eq!(
            read(text).unwrap(),
            "SECRET_KEY=r(m)9$x \"q\"\n\
             DB_URL=postgres://u:p@db/x\n\
             PLAIN=value\n\
             HASH=pa#ss\n\
             SPACED=hello world\n\
             YAML=style\n\
             EMPTY=\n\
             QUOTED_EMPTY=\n\
             ESCAPES=a \"b\" c\\d\n\
             REF=value-x\n\
             REF2=value/y\n\
             DEFAULT=fallback\n\
             LITERAL=${PLAIN}\n\
             DOLLAR=$HOME\n\
             TWO_DOLLARS=$PLAIN and ${PLAIN}\n\
             QUOTED_TWO_DOLLARS=$PLAIN\n\
             UNQUOTED_BACKSLASH=x\\value\n\
             EMPTY_OR=or\n\
             EMPTY_DASH=\n\
             UNSET_DASH=dash\n\
             PLUS=alt\n\
             EMPTY_PLUS=\n\
             EMPTY_DASH_PLUS=alt\n\
             REQUIRED=value\n"
        );
        // `${VAR:?message}` of a variable not set: compose refuses to start.
        let err = read("A=${NOPE:?must be set}\n").unwrap_err();
        assert!(err.contains("app.env:1: NOPE: must be set"), "{err}");
        assert!(read("A=\nB=${A?unset}\n").is_ok());
        assert!(read("A=\nB=${A:?empty}\n").is_err());
    }

    /// The script as the unit line holds it (systemd's quoting, then sh's)
    /// writes what the reader gives, the file's name and `$`s intact.
    #[test]
    fn the_unit_line_runs_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("it's 100% $HOME.env");
        std::fs::write(
            &file,
            "SECRET='r(m)9 $x'\nexport URL=\"http://a/$SECRET\"\nGIVEN=set by the service\n",
        )
        .unwrap();
        let script = convert_script(
            &[file.to_str().unwrap().to_string()],
            "shop-live-web",
            &["GIVEN"],
        );
        let lines: Vec<&str> = script.iter().map(String::as_str).collect();
        let words = crate::escape::tests::systemd_split(&crate::escape::systemd_shell(&lines));
        assert_eq!(words[..2], ["/bin/sh", "-c"]);
        let out_dir = dir.path().to_str().unwrap();
        let status = Command::new("sh")
            .arg("-c")
            .arg(words[2].replace("/run/unitgen", out_dir))
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("shop-live-web.env-files")).unwrap(),
            "SECRET=r(m)9 $x\nURL=http://a/r(m)9 $x\n"
        );
    }

    /// As compose merges them: a later file's value replaces an earlier
    /// one's (and a later line's), and `environment` replaces both; each
    /// variable once, so the container's config lists it once.
    #[test]
    fn each_variable_once_with_the_value_compose_gives_it() {
        let a = "SHARED=from a\nA=1\nOWN=from a\nA=2\n";
        let b = "B=${A}\nSHARED=from b\n";
        assert_eq!(
            read_files(&[a, b], &["OWN", "NOT_IN_FILES"]).unwrap(),
            "SHARED=from b\nA=2\nB=2\n"
        );
        // A failure writes nothing but the message.
        let err = read_files(&["A=1\n", "B=\"x\n"], &[]).unwrap_err();
        assert!(
            err.contains("app1.env:1: B: a value on several lines"),
            "{err}"
        );
    }

    #[test]
    fn a_value_on_several_lines_is_refused_with_its_place() {
        let err = read("A=1\nCERT=\"-----BEGIN\nx\n-----END\"\n").unwrap_err();
        assert!(
            err.ends_with(
                "app.env:2: CERT: a value on several lines cannot be given to docker run\n"
            ),
            "{err}"
        );
        assert!(read("B=\"x\\ny\"\n").is_err());
        assert!(
            read("not a line\n")
                .unwrap_err()
                .contains(":1: not NAME=value")
        );
    }
}
