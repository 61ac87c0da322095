//! What compose makes of an unquoted number where it wants text. Its YAML
//! reader reads `FEED_RELEASE: 24.10` as the float 24.1 and `ADMIN_PIN:
//! 0123` as the octal 83, and compose turns the number back into text with
//! Go's `fmt.Sprint` (compose-go's `mappingValue`): the container gets
//! `24.1` and `83`, not what the file shows. The reader is go-yaml's
//! (`go.yaml.in/yaml/v4` since compose-go's PR #838, Nov. 2025; docker
//! compose v5 requires compose-go v2.11 and yaml/v4 v4.0.0-rc.4; goccy's
//! reader was PR #790, never merged), whose `resolve` is followed here: a
//! few exact words (`.inf`, `-0`, …); else `strconv.ParseInt(s, 0, 64)`
//! with `_` dropped (so a leading `0` is octal, as YAML 1.1 has it, not
//! decimal as YAML 1.2's core schema has it), then `ParseUint`, then a
//! float where its `yamlStyleFloat` pattern matches (`1e3` is 1000, `08`
//! is 8: no octal, but digits).
/// The text compose gives the container for an untagged, unquoted scalar
/// written `written`, when compose's YAML reader reads it as a number;
/// `None` when it reads it as text.
pub fn compose_text(written: &str) -> Option<String> {
    match written {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some("+Inf".into()),
        "-.inf" | "-.Inf" | "-.INF" => return Some("-Inf".into()),
        ".nan" | ".NaN" | ".NAN" => return Some("NaN".into()),
        // go-yaml's negative zero, a float.
        "-0" | "-0.0" => return Some("-0".into()),
        _ => {}
    }
    match written.chars().next()? {
        '.' => finite(written).map(go_float),
        '+' | '-' | '0'..='9' => {
            // A date (`2024-01-02`) is a timestamp go-yaml hands over as
            // the text written.
            if is_timestamp(written) {
                return None;
            }
            let plain = written.replace('_', "");
            if let Some(n) = go_parse_int(&plain) {
                return Some(n);
            }
            // Else a float, where it looks like one: `1e3`, `08`, and an
            // integer past 64 bits.
            is_yaml_float(&plain)
                .then(|| finite(&plain))
                .flatten()
                .map(go_float)
        }
        _ => None,
    }
}

fn finite(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint`: a sign, then
/// `0x`, `0o`, `0b` or a bare leading `0` (octal) for the base.
fn go_parse_int(text: &str) -> Option<String> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex)
    } else if let Some(octal) = lower.strip_prefix("0o") {
        (8, octal)
    } else if let Some(binary) = lower.strip_prefix("0b") {
        (2, binary)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    match (negative, magnitude) {
        (_, 0) => Some("0".into()),
        (true, m) if m <= i64::MAX as u64 + 1 => Some(format!("-{m}")),
        (true, _) => None,
        // Past ParseInt's range, ParseUint takes no sign.
        (false, m) if text.starts_with('+') && m > i64::MAX as u64 => None,
        (false, m) => Some(m.to_string()),
    }
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// go-yaml's timestamp forms all start with four digits and a dash.
fn is_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() > 5 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-'
}

/// Go's `fmt.Sprint` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`):
/// the shortest digits, in exponent form below 1e-4 and from 1e6 on
/// (`1e+06`, `1.5e-05`).
fn go_float(f: f64) -> String {
    // Rust's `{:e}` gives the same shortest digits: `1.5e-5`, `1e6`.
    let scientific = format!("{:e}", f.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        let sign_e = if exponent < 0 { '-' } else { '+' };
        let rest = &digits[1..];
        let point = if rest.is_empty() { "" } else { "." };
        return format!(
            "{sign}{}{point}{rest}e{sign_e}{:02}",
            &digits[..1],
            exponent.abs()
        );
    }
    // Plain form: the digits around the decimal point.
    let point = exponent + 1;
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::compose_text;

    #[test]
    fn numbers_are_the_text_compose_makes_of_them() {
        for (written, given) in [
            ("24.10", Some("24.1")),
            ("1.10", Some("1.1")),
            ("0.10", Some("0.1")),
            ("1.0", Some("1")),
            ("8.0", Some("8")),
            ("0123", Some("83")),
            ("0755", Some("493")),
            ("0129", Some("129")),
            ("08", Some("8")),
            ("09.5", Some("9.5")),
            ("0x1F", Some("31")),
            ("0o17", Some("15")),
            ("0b101", Some("5")),
            ("1_000", Some("1000")),
            ("+12", Some("12")),
            ("-7", Some("-7")),
            ("-0", Some("-0")),
            ("-0.0", Some("-0")),
            ("-00", Some("0")),
            ("+0", Some("0")),
            ("1.5e3", Some("1500")),
            ("1e3", Some("1000")),
            ("1E-3", Some("0.001")),
            ("0o123", Some("83")),
            ("18446744073709551616", Some("1.8446744073709552e+19")),
            ("-99999999999999999999", Some("-1e+20")),
            ("1500000.5", Some("1.5000005e+06")),
            ("123456", Some("123456")),
            (".5", Some("0.5")),
            ("0.00001", Some("1e-05")),
            ("0.0001", Some("0.0001")),
            ("3.14159265358979323846", Some("3.141592653589793")),
            ("100000000000000000000.0", Some("1e+20")),
            ("18446744073709551615", Some("18446744073709551615")),
            (".inf", Some("+Inf")),
            ("-.Inf", Some("-Inf")),
            (".NaN", Some("NaN")),
            // Text to go-yaml.
            ("2024-01-02", None),
            ("1.2.3", None),
            ("12abc", None),
            ("0x", None),
            ("1:30", None),
            ("v1.10", None),
            ("", None),
        ] {
            assert_eq!(compose_text(written).as_deref(), given, "{written}");
        }
    }
}
