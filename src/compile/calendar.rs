//! systemd's calendar expressions (`OnCalendar=`, systemd.time(7)), read
//! as systemd reads them, so that a backup schedule systemd would refuse
//! is refused where it is written, not by the host after the units have
//! changed (an unreadable `OnCalendar=` leaves the timer without a trigger,
//! which systemd refuses to start). `tests::agrees_with_systemd` compares
//! this reading with `systemd-analyze calendar` on thousands of expressions.
//!
//! The grammar: a shorthand (`daily`, `weekly`, …), or
//! `[WEEKDAYS] [DATE] [TIME] [ZONE]` where each of the date's and time's
//! fields is `*` or a list of `value[..stop][/repeat]`, or `@SECONDS`.

use std::path::Path;

/// Where the host keeps its time zones, which `OnCalendar=` may name.
const ZONEINFO: &str = "/usr/share/zoneinfo";

const SHORTHANDS: &[&str] = &[
    "minutely",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "annually",
    "anually",
    "quarterly",
    "semiannually",
    "semi-annually",
    "biannually",
    "bi-annually",
];

/// Full names before their abbreviations: the longer one is tried first.
const WEEKDAYS: &[(&str, u8)] = &[
    ("monday", 0),
    ("mon", 0),
    ("tuesday", 1),
    ("tue", 1),
    ("wednesday", 2),
    ("wed", 2),
    ("thursday", 3),
    ("thu", 3),
    ("friday", 4),
    ("fri", 4),
    ("saturday", 5),
    ("sat", 5),
    ("sunday", 6),
    ("sun", 6),
];

const MICROS: i64 = 1_000_000;
/// systemd's bounds: years it computes with, and at most this many values
/// in one field's list.
const YEARS: (i64, i64) = (1970, 2199);
const MAX_LIST: usize = 241;

/// Why systemd would not read `text` as a calendar expression, if it would
/// not.
pub fn problem(text: &str) -> Option<String> {
    let (body, zone) = split_zone(text);
    if body.is_empty() {
        return Some(match zone {
            Some(zone) => format!("`{zone}` alone is a time zone, not a time"),
            None => "an empty calendar expression".into(),
        });
    }
    if SHORTHANDS.iter().any(|s| s.eq_ignore_ascii_case(body)) {
        return None;
    }
    let reading = Reader::new(body).read().err()?;
    // `03:00 Mars/Olympus`: the zone is what is wrong, not the time.
    if zone.is_none()
        && let Some((body, last)) = text.rsplit_once(' ')
        && zone_name_is_plain(last)
        && last.bytes().any(|b| b.is_ascii_alphabetic())
        && Reader::new(body).read().is_ok()
    {
        return Some(format!("`{last}` is not a time zone this machine knows"));
    }
    Some(reading)
}

/// The expression without its time zone, and the zone: ` UTC` in any case,
/// or a last word that names a zone.
fn split_zone(text: &str) -> (&str, Option<&str>) {
    let len = text.len();
    if len >= 4 && text.is_char_boundary(len - 4) && text[len - 4..].eq_ignore_ascii_case(" utc") {
        return (&text[..len - 4], Some(&text[len - 3..]));
    }
    match text.rsplit_once(' ') {
        Some((body, zone))
            if zone_name_is_plain(zone) && zone_exists(Path::new(ZONEINFO), zone) =>
        {
            (body, Some(zone))
        }
        _ => (text, None),
    }
}

/// What systemd takes for a zone's name: letters, digits, `/-_+`, no `//`,
/// no `/` at either end.
fn zone_name_is_plain(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_+".contains(&b))
}

/// Whether `name` is a zone the host has: a TZif file under its zoneinfo.
/// A machine without zoneinfo (a slim build container) cannot tell, and
/// takes names that look like a zone (`Europe/Berlin`, `CET`, `EST5EDT`).
fn zone_exists(zoneinfo: &Path, name: &str) -> bool {
    if !zoneinfo.is_dir() {
        return name.contains('/') || name.bytes().all(|b| !b.is_ascii_lowercase());
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(zoneinfo.join(name))
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut magic))
        .is_ok_and(|()| &magic == b"TZif")
}

/// One value of a field, `start[..stop][/repeat]` (seconds in µs).
#[derive(Clone, Copy)]
struct Part {
    start: i64,
    stop: Option<i64>,
    repeat: i64,
}

type Reading<T> = Result<T, String>;

/// The date's fields (none: every value), and whether a time may follow
/// (not after `@SECONDS`).
#[derive(Default)]
struct Date {
    year: Vec<Part>,
    month: Vec<Part>,
    day: Vec<Part>,
    time_follows: bool,
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
    end_of_month: bool,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            at: 0,
            end_of_month: false,
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn peek(&self) -> Option<u8> {
        self.rest().bytes().next()
    }

    fn skip_spaces(&mut self) {
        self.at += self.rest().len() - self.rest().trim_start_matches(' ').len();
    }

    fn wrong(&self, what: &str) -> String {
        match self.rest() {
            "" => format!("{what} at the end"),
            rest => format!("{what} at `{rest}`"),
        }
    }

    fn read(mut self) -> Reading<()> {
        self.weekdays()?;
        let Date {
            mut year,
            month,
            day,
            time_follows,
        } = self.date()?;
        let time = if time_follows {
            self.time()?
        } else {
            Vec::new()
        };
        if !self.rest().is_empty() {
            return Err(self.wrong("unexpected text"));
        }
        for part in &mut year {
            part.start = full_year(part.start);
            part.stop = part.stop.map(full_year);
        }
        let fields = [
            ("year", year, YEARS, false),
            ("month", month, (1, 12), false),
            ("day", day, (1, 31), self.end_of_month),
            (
                "hour",
                time.first().cloned().unwrap_or_default(),
                (0, 23),
                false,
            ),
            (
                "minute",
                time.get(1).cloned().unwrap_or_default(),
                (0, 59),
                false,
            ),
            (
                "second",
                time.get(2).cloned().unwrap_or_default(),
                (0, 60 * MICROS - 1),
                false,
            ),
        ];
        for (name, parts, bounds, from_end) in fields {
            if let Some(why) = out_of_bounds(parts, bounds, from_end) {
                return Err(format!("the {name} {why}"));
            }
        }
        Ok(())
    }

    /// `Mon`, `Mon,Wed`, `Mon..Fri` (or `Mon-Fri`), any case, then spaces.
    fn weekdays(&mut self) -> Reading<()> {
        let mut range_from: Option<u8> = None;
        let mut first = true;
        loop {
            let rest = self.rest();
            let Some(&(name, day)) = WEEKDAYS.iter().find(|(name, _)| {
                rest.len() >= name.len()
                    && rest.is_char_boundary(name.len())
                    && rest[..name.len()].eq_ignore_ascii_case(name)
            }) else {
                return if first {
                    Ok(())
                } else {
                    Err(self.wrong("a weekday expected"))
                };
            };
            self.at += name.len();
            if !matches!(self.peek(), None | Some(b'-' | b'.' | b',' | b' ')) {
                return Err(self.wrong("a weekday's name goes on"));
            }
            if range_from.is_some_and(|from| from > day) {
                return Err(format!(
                    "the weekdays' range ends before it starts, at `{rest}`"
                ));
            }
            match self.peek() {
                None => return Ok(()),
                Some(b' ') => {
                    self.skip_spaces();
                    return Ok(());
                }
                Some(b'.') => {
                    if range_from.is_some() || !self.rest().starts_with("..") {
                        return Err(self.wrong("not a range of weekdays"));
                    }
                    range_from = Some(day);
                    self.at += 2;
                }
                Some(b'-') => {
                    if range_from.is_some() {
                        return Err(self.wrong("not a range of weekdays"));
                    }
                    range_from = Some(day);
                    self.at += 1;
                }
                _ => {
                    range_from = None;
                    self.at += 1;
                }
            }
            // A trailing comma is taken, an open range is not.
            if matches!(self.peek(), None | Some(b' ')) {
                self.skip_spaces();
                return match range_from {
                    Some(_) => Err("a range of weekdays without its end".into()),
                    None => Ok(()),
                };
            }
            first = false;
        }
    }

    /// `[[YEAR-]MONTH-]DAY` (`~` before the day counts from the month's
    /// end) and whether a time may follow; nothing when what comes is a
    /// time (`HH:MM`).
    fn date(&mut self) -> Reading<Date> {
        let none = || Date {
            time_follows: true,
            ..Date::default()
        };
        if self.rest().is_empty() {
            return Ok(none());
        }
        if let Some(seconds) = self.rest().strip_prefix('@') {
            let digits = seconds.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(self.wrong("seconds expected after `@`"));
            }
            self.at += 1 + digits;
            let year = seconds[..digits]
                .parse::<i64>()
                .ok()
                .filter(|s| *s < i64::MAX / 2)
                .map_or(i64::MAX, year_of_timestamp);
            let year = vec![Part {
                start: year,
                stop: None,
                repeat: 0,
            }];
            return Ok(Date {
                year,
                ..Date::default()
            });
        }
        let start = self.at;
        let first = self.field(false)?;
        if matches!(self.peek(), None | Some(b':')) {
            self.at = start;
            return Ok(none());
        }
        self.date_separator()?;
        let second = self.field(false)?;
        if matches!(self.peek(), None | Some(b' ')) {
            self.skip_spaces();
            return Ok(Date {
                month: first,
                day: second,
                ..none()
            });
        }
        if self.end_of_month {
            return Err(self.wrong("`~` may only come before the day"));
        }
        self.date_separator()?;
        let third = self.field(false)?;
        if !matches!(self.peek(), None | Some(b' ')) {
            return Err(self.wrong("unexpected text after the date"));
        }
        self.skip_spaces();
        Ok(Date {
            year: first,
            month: second,
            day: third,
            time_follows: true,
        })
    }

    fn date_separator(&mut self) -> Reading<()> {
        match self.peek() {
            Some(b'~') => self.end_of_month = true,
            Some(b'-') => {}
            _ => return Err(self.wrong("`-` expected in the date")),
        }
        self.at += 1;
        Ok(())
    }

    /// `HH:MM[:SS[.fraction]]`; none means midnight.
    fn time(&mut self) -> Reading<Vec<Vec<Part>>> {
        let midnight = |n: usize| {
            let zero = Part {
                start: 0,
                stop: None,
                repeat: 0,
            };
            vec![vec![zero]; n]
        };
        if self.rest().is_empty() {
            return Ok(midnight(3));
        }
        let hour = self.field(false)?;
        self.expect(b':', "`:` expected after the hour")?;
        let minute = self.field(false)?;
        if self.rest().is_empty() {
            let mut fields = vec![hour, minute];
            fields.extend(midnight(1));
            return Ok(fields);
        }
        self.expect(b':', "`:` expected after the minute")?;
        let second = self.field(true)?;
        Ok(vec![hour, minute, second])
    }

    fn expect(&mut self, byte: u8, why: &str) -> Reading<()> {
        if self.peek() != Some(byte) {
            return Err(self.wrong(why));
        }
        self.at += 1;
        Ok(())
    }

    /// `*` or a list of values; `*` seconds are every second.
    fn field(&mut self, seconds: bool) -> Reading<Vec<Part>> {
        if self.peek() == Some(b'*') {
            self.at += 1;
            return Ok(if seconds {
                vec![Part {
                    start: 0,
                    stop: None,
                    repeat: MICROS,
                }]
            } else {
                Vec::new()
            });
        }
        let mut parts = Vec::new();
        loop {
            if parts.len() == MAX_LIST {
                return Err(format!("more than {MAX_LIST} values in one field"));
            }
            parts.push(self.part(seconds)?);
            if self.peek() != Some(b',') {
                return Ok(parts);
            }
            self.at += 1;
        }
    }

    fn part(&mut self, seconds: bool) -> Reading<Part> {
        let start = self.number(seconds)?;
        let mut stop = None;
        let mut repeat = 0;
        if self.rest().starts_with("..") {
            self.at += 2;
            stop = Some(self.number(seconds)?);
            repeat = if seconds { MICROS } else { 1 };
        }
        if self.peek() == Some(b'/') {
            self.at += 1;
            repeat = self.number(seconds)?;
            if repeat == 0 {
                return Err("a repetition of 0".into());
            }
        } else if seconds && stop.is_some_and(|stop| start + repeat > stop) {
            return Err("a range of seconds shorter than a second needs a repetition".into());
        }
        if start > i64::from(i32::MAX) - repeat {
            return Err("a value out of range".into());
        }
        if !matches!(self.peek(), None | Some(b' ' | b',' | b'-' | b'~' | b':')) {
            return Err(self.wrong("unexpected text after a value"));
        }
        Ok(Part {
            start,
            stop,
            repeat,
        })
    }

    /// Digits (for seconds, with up to six of a fraction, in µs).
    fn number(&mut self, seconds: bool) -> Reading<i64> {
        let digits = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(self.wrong("a number expected"));
        }
        let too_big = || "a value out of range".to_string();
        let mut value: i64 = self.rest()[..digits].parse().map_err(|_| too_big())?;
        self.at += digits;
        if seconds {
            value = value.checked_mul(MICROS).ok_or_else(too_big)?;
            let rest = self.rest();
            if rest.starts_with('.') && !rest.starts_with("..") {
                self.at += 1;
                let fraction = self.rest().bytes().take_while(u8::is_ascii_digit).count();
                if fraction == 0 {
                    return Err(self.wrong("digits expected after the decimal point"));
                }
                let kept = &self.rest()[..fraction.min(6)];
                let micros = format!("{kept:0<6}").parse::<i64>().unwrap_or(0);
                self.at += fraction;
                value += micros;
            }
        }
        if value > i64::from(i32::MAX) {
            return Err(too_big());
        }
        Ok(value)
    }
}

/// `12` is 2012 and `89` is 1989, as systemd reads two-digit years.
fn full_year(year: i64) -> i64 {
    match year {
        0..70 => year + 2000,
        70..100 => year + 1900,
        _ => year,
    }
}

/// The year (UTC) of a Unix timestamp.
fn year_of_timestamp(seconds: i64) -> i64 {
    // Civil-from-days (Howard Hinnant's algorithm), years only.
    let days = seconds.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    year_of_era + era * 400 + i64::from(month_index >= 10)
}

/// Why a field's values fall outside what systemd takes, if they do: each
/// within the bounds, and a repetition that can happen at least once.
/// From the month's end (`~`), days count back, at most 28 of them.
fn out_of_bounds(parts: Vec<Part>, (from, to): (i64, i64), from_end: bool) -> Option<String> {
    // systemd first trims a range to whole repetitions, and drops a
    // repetition that cannot happen, or a range of one value; then sorts
    // the values and drops repeated ones.
    let mut parts: Vec<Part> = parts.into_iter().map(normalized).collect();
    parts.sort_by_key(|p| (p.start, p.stop.unwrap_or(-1), p.repeat));
    parts.dedup_by_key(|p| (p.start, p.stop, p.repeat));
    let mut to = to;
    for part in parts {
        // From the end, systemd lowers the bound by 3 days for each value
        // in turn (its check recurses with the lowered bound): `~5,27` is
        // refused where `~27` is taken. Refusing the same keeps
        // `validate` true to what the host will do.
        if from_end {
            to -= 3;
        }
        let within = |v: i64| (from..=to).contains(&v);
        if !within(part.start) || part.stop.is_some_and(|stop| !within(stop)) {
            return Some(format!("is out of its range ({from}..{to})"));
        }
        let repeats = match part.stop {
            _ if part.repeat > to - from => false,
            Some(stop) => part.start + part.repeat <= stop,
            None if from_end => part.start - part.repeat >= from,
            None => part.start + part.repeat <= to,
        };
        if !repeats {
            return Some("repeats too seldom to happen once".into());
        }
    }
    None
}

fn normalized(mut part: Part) -> Part {
    if let Some(stop) = part.stop
        && stop > part.start
        && part.repeat > 0
    {
        let stop = stop - (stop - part.start) % part.repeat;
        part.stop = Some(stop);
        if part.start + part.repeat > stop {
            (part.stop, part.repeat) = (None, 0);
        }
    }
    if part.stop == Some(part.start) {
        (part.stop, part.repeat) = (None, 0);
    }
    part
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn reads_what_systemd_reads() {
        for good in [
            "daily",
            "WEEKLY",
            "semi-annually",
            "*-*-* 02:30:00",
            "Mon..Fri 22:30",
            "mon,wed,fri *-*-* 04:00",
            "Sat,Sun 10:00 Europe/Berlin",
            "*-*~07/1",
            "*-02~03",
            "2025-*-01 03:00",
            "12-10-15",
            "*:0/15",
            "*:*:0.5/0.25",
            "03:00 UTC",
            "03:00 utc",
            "@1700000000",
            "Mon",
            "Mon,",
        ] {
            assert_eq!(problem(good), None, "{good}");
        }
        for bad in [
            "dailyx",
            "daily foo",
            "",
            "25:00",
            "10:60",
            "*-13-01",
            "*-*-32",
            "Mon..Fry 10:00",
            "Fri..Mon",
            "Mon..",
            "*-*-* 10:00:00:00",
            "*:0/0",
            "1969-01-01",
            "2200-01-01",
            "@99999999999",
            "*-*~29",
            "10:00 Nowhere/City",
        ] {
            assert!(problem(bad).is_some(), "{bad:?} was taken");
        }
    }

    /// What reaches `OnCalendar=` is a calendar or nothing: every line
    /// end, continuation, comment, specifier and quote is refused, wherever
    /// it is put in an expression systemd takes.
    #[test]
    fn hostile_text_never_passes_for_a_calendar() {
        let hostile = [
            "\n[Service]\nExecStartPre=/bin/touch /tmp/pwned",
            "\r",
            "\\",
            "%n",
            "%%",
            "#x",
            ";x",
            "$HOME",
            "\"",
            "'",
            "\t",
            "\0",
            "\u{85}",
            " Mon",
            "ü",
        ];
        for text in hostile {
            for expression in [
                format!("daily{text}"),
                format!("{text}weekly"),
                format!("*-*-* 03:00{text}"),
                format!("Mon{text} 03:00"),
                format!("03:00 Europe/Berlin{text}"),
            ] {
                let taken = super::super::backup::is_calendar_text(&expression)
                    && problem(&expression).is_none();
                assert!(!taken, "{expression:?} was taken");
            }
        }
    }

    /// Thousands of expressions, made as calendar expressions are (and
    /// some of them then damaged), read both ways: the same ones refused.
    #[test]
    fn agrees_with_systemd() {
        // A fixed generator: the same expressions on every run.
        let mut seed: u64 = 0x5eed;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let pick = |choices: &[&'static str], next: &mut dyn FnMut(usize) -> usize| {
            choices[next(choices.len())]
        };
        // Everyday values three times in four, else bounds and beyond.
        let common = [
            "0", "1", "2", "3", "5", "7", "10", "12", "15", "23", "28", "30", "31", "45", "59",
            "2024", "2030",
        ];
        let edges = [
            "60",
            "24",
            "32",
            "61",
            "69",
            "70",
            "99",
            "1969",
            "2199",
            "2200",
            "007",
            "99999999999",
        ];
        let number = |next: &mut dyn FnMut(usize) -> usize| match next(4) {
            0 => edges[next(edges.len())],
            _ => common[next(common.len())],
        };
        let field = |next: &mut dyn FnMut(usize) -> usize, seconds: bool| -> String {
            if next(4) == 0 {
                return "*".into();
            }
            let mut text = String::new();
            for i in 0..1 + next(3) {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(number(next));
                if seconds && next(4) == 0 {
                    text.push_str([".5", ".25", ".1234567", "."][next(4)]);
                }
                if next(4) == 0 {
                    text.push_str("..");
                    text.push_str(number(next));
                }
                if next(4) == 0 {
                    text.push('/');
                    text.push_str(["1", "2", "5", "15", "30", "0.5", "0", "1", "2", "7"][next(10)]);
                }
            }
            text
        };
        let mut expressions = Vec::new();
        while expressions.len() < 4_000 {
            let mut text = String::new();
            if next(8) == 0 {
                text.push_str(pick(
                    &[
                        "daily",
                        "Weekly",
                        "semi-annually",
                        "quarterly",
                        "hourlyx",
                        "@1700000000",
                        "@",
                    ],
                    &mut next,
                ));
            } else {
                if next(3) == 0 {
                    let days = [
                        "Mon",
                        "tue",
                        "Wednesday",
                        "Thu",
                        "Fri",
                        "sat",
                        "Sunday",
                        "Mo",
                        "Monx",
                    ];
                    text.push_str(days[next(days.len())]);
                    for _ in 0..next(3) {
                        text.push_str(pick(&["..", "-", ",", "."], &mut next));
                        text.push_str(days[next(days.len())]);
                    }
                    if next(6) == 0 {
                        text.push(',');
                    }
                    text.push(' ');
                }
                if next(2) == 0 {
                    if next(2) == 0 {
                        text.push_str(&field(&mut next, false));
                        text.push('-');
                    }
                    text.push_str(&field(&mut next, false));
                    text.push_str(pick(&["-", "-", "~"], &mut next));
                    text.push_str(&field(&mut next, false));
                    text.push(' ');
                }
                if next(4) > 0 {
                    text.push_str(&field(&mut next, false));
                    text.push(':');
                    text.push_str(&field(&mut next, false));
                    if next(2) == 0 {
                        text.push(':');
                        text.push_str(&field(&mut next, true));
                    }
                }
            }
            if next(5) == 0 {
                text.push(' ');
                text.push_str(pick(
                    &[
                        "UTC",
                        "utc",
                        "Europe/Berlin",
                        "CET",
                        "Etc/GMT+5",
                        "Nowhere/City",
                        "foo",
                    ],
                    &mut next,
                ));
            }
            // Damage some: a character dropped, doubled or put in.
            if next(5) == 0 && !text.is_empty() {
                let at = next(text.len());
                if text.is_char_boundary(at) && text.is_char_boundary(at + 1) {
                    match next(3) {
                        0 => drop(text.remove(at)),
                        1 => text.insert(at, text[at..].chars().next().unwrap_or('x')),
                        _ => text.insert(
                            at,
                            pick(&["*", "-", "~", ":", ",", "/", "x", "9"], &mut next)
                                .chars()
                                .next()
                                .unwrap(),
                        ),
                    }
                }
            }
            let text = text.trim_end().to_string();
            // systemd-analyze takes an argument that starts with `-` as an
            // option; leading and trailing spaces unitgen refuses first.
            if !text.starts_with('-') && text.trim() == text && !text.is_empty() {
                expressions.push(text);
            }
        }
        let output = std::process::Command::new("systemd-analyze")
            .arg("calendar")
            .args(&expressions)
            .env("TZ", "UTC")
            .output()
            .expect("systemd-analyze (the test bed installs systemd)");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        let mut disagree = Vec::new();
        for expression in &expressions {
            let refused = text.contains(&format!(
                "Failed to parse calendar specification '{expression}'"
            ));
            if refused != problem(expression).is_some() {
                disagree.push(format!(
                    "{expression:?}: systemd {}, unitgen {:?}",
                    if refused { "refuses" } else { "takes" },
                    problem(expression)
                ));
            }
        }
        assert!(
            disagree.is_empty(),
            "{} of {} disagree:\n{}",
            disagree.len(),
            expressions.len(),
            disagree.join("\n")
        );
    }
}
