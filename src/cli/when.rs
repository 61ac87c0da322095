//! Times as commands print them: ISO 8601 in UTC (`2026-11-29T10:02:03Z`),
//! and "3 min ago" for people at a terminal.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `2026-11-29T10:02:03Z`.
pub fn iso(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Writes seconds since the epoch as [`iso`] text (in JSON output), so a
/// struct holds the time once, as a number.
pub fn serialize_iso<S: serde::Serializer>(secs: &u64, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(&iso(*secs))
}

/// [`serialize_iso`] for a time that may be missing (`null`).
pub fn serialize_iso_opt<S: serde::Serializer>(
    secs: &Option<u64>,
    to: S,
) -> Result<S::Ok, S::Error> {
    match secs {
        Some(secs) => to.serialize_some(&iso(*secs)),
        None => to.serialize_none(),
    }
}

/// "just now", "42 s ago", "3 min ago", "5 h ago", "2 days ago".
pub fn ago(secs: u64, now: u64) -> String {
    let elapsed = now.saturating_sub(secs);
    match elapsed {
        0..=1 => "just now".to_string(),
        2..=59 => format!("{elapsed} s ago"),
        60..=3599 => format!("{} min ago", elapsed / 60),
        3600..=172_799 => format!("{} h ago", elapsed / 3600),
        _ => format!("{} days ago", elapsed / 86_400),
    }
}

/// Seconds since the epoch of an RFC 3339 time in UTC as Docker writes it
/// (`2026-11-29T10:02:03.123456789Z`); None for anything else (Docker's
/// zero time included).
pub fn parse_iso(text: &str) -> Option<u64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<u64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let time = time.split('.').next()?;
    let mut time = time.split(':').map(|p| p.parse::<u64>().ok());
    let (hour, minute, second) = (time.next()??, time.next()??, time.next()??);
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Seconds since the epoch of an RFC 3339 time with any offset: restic
/// writes a snapshot's time in the local time of the machine that took it
/// (`2026-11-29T11:00:01.5+01:00`), Docker in UTC (`…Z`).
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    if text.ends_with('Z') {
        return parse_iso(text);
    }
    let at = text.len().checked_sub(6)?;
    let (local, offset) = (text.get(..at)?, text.get(at..)?);
    let east = match offset.as_bytes().first()? {
        b'+' => true,
        b'-' => false,
        _ => return None,
    };
    let (hours, minutes) = offset[1..].split_once(':')?;
    let (hours, minutes) = (hours.parse::<u64>().ok()?, minutes.parse::<u64>().ok()?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    let local = parse_iso(&format!("{local}Z"))?;
    let shift = hours * 3600 + minutes * 60;
    if east {
        local.checked_sub(shift)
    } else {
        Some(local + shift)
    }
}

/// An RFC 3339 UTC time as Docker writes it (`2026-11-30T11:09:33.103010852Z`)
/// in microseconds since the epoch, as systemd counts.
pub fn parse_iso_micros(text: &str) -> Option<u64> {
    let seconds = parse_iso(text)?;
    let fraction = (text.strip_suffix('Z')?.split_once('.')).map_or("", |(_, fraction)| fraction);
    let micros: String = fraction.chars().chain("000000".chars()).take(6).collect();
    Some(seconds * 1_000_000 + micros.parse::<u64>().ok()?)
}

/// Days since 1970-01-01 of a date on or after it (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let yoe = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso(1_795_687_323), "2026-11-26T10:02:03Z");
    }

    #[test]
    fn docker_times_parse() {
        assert_eq!(
            parse_iso("2026-11-26T10:02:03.123456789Z"),
            Some(1_795_687_323)
        );
        assert_eq!(parse_iso("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_iso("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_iso("yesterday"), None);
    }

    #[test]
    fn restic_times_with_an_offset_parse_as_the_same_instant() {
        let utc = Some(1_795_687_323);
        assert_eq!(parse_rfc3339("2026-11-26T10:02:03.5Z"), utc);
        assert_eq!(parse_rfc3339("2026-11-26T11:02:03.123456789+01:00"), utc);
        assert_eq!(parse_rfc3339("2026-11-26T05:32:03-04:30"), utc);
        assert_eq!(parse_rfc3339("2026-11-26T10:02:03"), None);
        assert_eq!(parse_rfc3339("2026-11-26T10:02:03+1:00"), None);
    }

    #[test]
    fn ago_reads_naturally() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(100, 142), "42 s ago");
        assert_eq!(ago(0, 190), "3 min ago");
        assert_eq!(ago(0, 5 * 3600 + 10), "5 h ago");
        assert_eq!(ago(0, 3 * 86_400), "3 days ago");
    }

    #[test]
    fn times_are_iso_text_in_json() {
        #[derive(serde::Serialize)]
        struct Row {
            #[serde(serialize_with = "serialize_iso")]
            at: u64,
            #[serde(serialize_with = "serialize_iso_opt")]
            known: Option<u64>,
            #[serde(serialize_with = "serialize_iso_opt")]
            unknown: Option<u64>,
        }
        let row = Row {
            at: 951_782_400,
            known: Some(1_795_687_323),
            unknown: None,
        };
        assert_eq!(
            serde_json::to_value(row).unwrap(),
            serde_json::json!({
                "at": "2000-02-29T00:00:00Z",
                "known": "2026-11-26T10:02:03Z",
                "unknown": null,
            })
        );
    }
}
