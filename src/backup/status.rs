//! An instance's backups as `status` shows them: the last good backup,
//! how and when the last run ended (failures included, as the backup unit
//! recorded them), the next scheduled one, and whether the last good one
//! is too old (older than twice the schedule's interval).

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use super::{LastBackup, LastRun};
use crate::cli::when;
use crate::render::{UnitFile, owner};
use crate::systemd::Systemd;

#[derive(Debug, Clone, Serialize)]
pub struct BackupStatus {
    /// The timer's calendar expression.
    pub schedule: String,
    /// The last backup that succeeded, as the backup unit recorded it.
    pub last_good: Option<LastBackup>,
    /// How the last run ended: `success`, `failed (exit-code)` (systemd's
    /// result), `interrupted`, `running`, or `never ran`.
    pub last_run: String,
    /// When the last run ended, in seconds since the epoch, as the backup
    /// unit recorded it.
    pub last_run_time: Option<u64>,
    /// When the timer fires next, in seconds since the epoch.
    pub next: Option<u64>,
    /// Seconds between two scheduled runs, when systemd could say.
    pub interval: Option<u64>,
    /// The last good backup is older than twice the interval (or there is
    /// none although a run was due).
    pub overdue: bool,
}

/// None when the instance has no backup units installed.
pub fn read(
    systemd: &Systemd,
    installed: &[UnitFile],
    backup_unit: &str,
    instance_state_dir: &Path,
) -> Result<Option<BackupStatus>, String> {
    let timer = backup_unit.replace(".service", ".timer");
    let Some(timer_file) = installed.iter().find(|u| u.name == timer) else {
        return Ok(None);
    };
    let schedule = owner(&timer_file.text)
        .and_then(|o| o.schedule)
        .unwrap_or_default();
    let (next, last_trigger) = systemd.timer_times(&timer).map_err(|e| e.to_string())?;
    let state = systemd.unit_state(backup_unit).map_err(|e| e.to_string())?;
    let recorded = LastRun::read(instance_state_dir);
    let last_run = match (state.active_state.as_str(), &recorded) {
        ("activating", _) => "running".to_string(),
        (_, Some(run)) if run.succeeded() => "success".to_string(),
        (_, Some(run)) if run.result == "interrupted" => run.result.clone(),
        (_, Some(run)) => format!("failed ({})", run.result),
        // No record (yet): what systemd remembers since it started.
        _ if last_trigger == 0 && state.result == "success" => "never ran".to_string(),
        _ if state.result == "success" => state.result,
        _ => format!("failed ({})", state.result),
    };
    let last_good = LastBackup::read(instance_state_dir);
    let interval = interval_seconds(&schedule);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let overdue = match (&last_good, interval) {
        (Some(last), Some(interval)) => now.saturating_sub(last.time) > 2 * interval,
        // Never a good one, although one was due or tried.
        (None, _) => last_trigger != 0 || recorded.is_some(),
        _ => false,
    };
    Ok(Some(BackupStatus {
        schedule,
        last_good,
        last_run,
        last_run_time: recorded.map(|r| r.time),
        // 0: none; infinity while the backup runs (the timer waits for it).
        next: (next != 0 && next != u64::MAX).then_some(next / 1_000_000),
        interval,
        overdue,
    }))
}

/// What `status` (and `docs --live`) flags when the last good backup is
/// too old.
pub const OVERDUE: &str = "OVERDUE: no good backup within twice the schedule's interval";

impl BackupStatus {
    /// How the last run ended, and when: `failed (exit-code) at 2026-…`.
    pub fn last_run_text(&self) -> String {
        match (self.last_run.as_str(), self.last_run_time) {
            ("running" | "never ran", _) | (_, None) => self.last_run.clone(),
            (_, Some(time)) => format!("{} at {}", self.last_run, when::iso(time)),
        }
    }

    /// The last run did not succeed (it failed or was interrupted).
    pub fn last_run_failed(&self) -> bool {
        !matches!(self.last_run.as_str(), "success" | "running" | "never ran")
    }
}

/// The lines `status` prints under the services (the command shows them
/// as it shows every value read back: escaped, never obeyed).
pub fn lines(status: &BackupStatus) -> Vec<String> {
    let last = match &status.last_good {
        Some(last) => format!(
            "{}, snapshot {} (revision {})",
            when::iso(last.time),
            last.snapshot,
            last.revision
        ),
        None => "none yet".to_string(),
    };
    let mut lines = vec![
        format!(
            "backup: last good {last}; last run: {}",
            status.last_run_text()
        ),
        format!(
            "  next {} (schedule `{}`{})",
            match (status.next, status.last_run.as_str()) {
                (Some(next), _) => when::iso(next),
                (None, "running") => "after this run".to_string(),
                (None, _) => "not scheduled".to_string(),
            },
            status.schedule,
            status
                .interval
                .map_or(String::new(), |i| format!(", every {}", format_interval(i)))
        ),
    ];
    if status.overdue {
        lines.push(format!("  {OVERDUE}"));
    }
    lines
}

/// The time between the next two elapses of a calendar expression, as
/// `systemd-analyze calendar` computes them.
fn interval_seconds(schedule: &str) -> Option<u64> {
    let out = Command::new("systemd-analyze")
        .args(["calendar", "--iterations=2", schedule])
        .env("TZ", "UTC")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let times: Vec<i64> = text
        .lines()
        .filter_map(|l| {
            let (key, value) = l.trim().split_once(": ")?;
            matches!(key, "Next elapse" | "Iter. #2").then(|| parse_utc(value))?
        })
        .collect();
    match times[..] {
        [a, b] if b > a => Some((b - a) as u64),
        _ => None,
    }
}

/// `Mon 2026-11-30 00:00:00 UTC` → seconds since the epoch.
fn parse_utc(text: &str) -> Option<i64> {
    let mut words = text.split_whitespace();
    let _weekday = words.next()?;
    let date: Vec<i64> = words
        .next()?
        .split('-')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let time: Vec<i64> = words
        .next()?
        .split(':')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let ([y, m, d], [hh, mm, ss]) = (date[..].try_into().ok()?, time[..].try_into().ok()?);
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `1d`, `6h`, `10s`: an interval for people.
pub fn format_interval(secs: u64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemds_calendar_times_parse() {
        let t = parse_utc("Sun 2026-11-29 10:03:16 UTC").unwrap();
        assert_eq!(when::iso(t as u64), "2026-11-29T10:03:16Z");
        assert_eq!(parse_utc("Thu 1970-01-01 00:00:00 UTC"), Some(0));
    }

    #[test]
    fn the_last_run_says_how_and_when_it_ended() {
        let status = |last_run: &str, time| BackupStatus {
            schedule: "daily".into(),
            last_good: None,
            last_run: last_run.into(),
            last_run_time: time,
            next: None,
            interval: None,
            overdue: false,
        };
        let failed = status("failed (exit-code)", Some(951_782_400));
        assert_eq!(
            failed.last_run_text(),
            "failed (exit-code) at 2000-02-29T00:00:00Z"
        );
        assert!(failed.last_run_failed());
        assert!(status("interrupted", Some(0)).last_run_failed());
        assert!(!status("success", Some(0)).last_run_failed());
        assert!(!status("running", Some(0)).last_run_failed());
        assert_eq!(status("running", Some(0)).last_run_text(), "running");
        assert_eq!(status("never ran", None).last_run_text(), "never ran");
    }

    #[test]
    fn intervals_come_from_systemds_calendar() {
        assert_eq!(interval_seconds("daily"), Some(86_400));
        assert_eq!(interval_seconds("*:*:0/10"), Some(10));
        assert_eq!(format_interval(86_400), "1d");
        assert_eq!(format_interval(90), "90s");
    }
}
