//! The fixed notations the bot writes and reads, as opposed to the free text scanned by
//! [`super::find_past_time`]: clock times in the bot's replies ("yesterday at 20:00", or "at
//! 20:00" after a verb; days compared in the staff member's zone) and compact durations typed in commands ("2h30m"), which are
//! parsed strictly so that a typo is reported instead of guessed at.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

use super::resolve::in_safe_range;

/// Formats `t` as a 24-hour clock time in `tz`, adding the day when it is not the same local day
/// as `now`: "21:00" (today), "tomorrow at 08:00", "yesterday at 20:00", otherwise "Wednesday 26
/// Nov at 08:00" (the weekday in full, as people say it).
///
/// Days are compared as local calendar dates, so the result is right across clock changes.
/// Seconds are dropped, as on a clock. A date more than 180 days from `now` gets its year
/// ("Wednesday 26 Nov 2025 at 08:00") so that it cannot be mistaken for this year's. Instants too
/// close to chrono's limits to convert safely are shown in UTC instead of panicking.
///
/// The result is a noun phrase for "until {…}"; after a verb ("requested …") use
/// [`format_when`], which reads "at 21:00" for today.
pub fn format_clock(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    match describe(t, now, tz) {
        When::Utc(utc) => format!("{utc} UTC"),
        When::Today(clock) => clock,
        When::Tomorrow(clock) => format!("tomorrow at {clock}"),
        When::Yesterday(clock) => format!("yesterday at {clock}"),
        When::Date(date, clock) => format!("{date} at {clock}"),
    }
}

/// Formats `t` like [`format_clock`], naming tomorrow's weekday too ("tomorrow (Monday) at
/// 16:00"): for a promise read over a weekend, when "tomorrow" alone is easy to misjudge.
pub fn format_clock_named(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    match describe(t, now, tz) {
        When::Tomorrow(clock) if in_safe_range(t) => {
            let date = t.with_timezone(&tz).date_naive();
            let weekday = WEEKDAY[date.weekday().num_days_from_monday() as usize];
            format!("tomorrow ({weekday}) at {clock}")
        }
        _ => format_clock(t, now, tz),
    }
}

/// Formats `t` like [`format_clock`], but as a phrase that follows a verb, so that a template
/// can say "requested {requested_at}": "at 21:00" (today), "tomorrow at 08:00", "yesterday at
/// 20:00", otherwise "on Wednesday 26 Nov at 08:00" ("on Wednesday 26 Nov 2025 at 08:00" more
/// than 180 days from `now`). Instants too close to chrono's limits read "on 2025-11-26 at 08:00 UTC".
pub fn format_when(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    match describe(t, now, tz) {
        When::Utc(_) => format!("on {} UTC", t.format("%Y-%m-%d at %H:%M")),
        When::Today(clock) => format!("at {clock}"),
        When::Tomorrow(clock) => format!("tomorrow at {clock}"),
        When::Yesterday(clock) => format!("yesterday at {clock}"),
        When::Date(date, clock) => format!("on {date} at {clock}"),
    }
}

/// The local day of `t` relative to `now`, and its clock time ("08:00").
enum When {
    /// Too close to chrono's limits to convert: the UTC date and time.
    Utc(String),
    Today(String),
    Tomorrow(String),
    Yesterday(String),
    /// "Wednesday 26 Nov", with the year when more than 180 days away.
    Date(String, String),
}

fn describe(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> When {
    if !in_safe_range(t) || !in_safe_range(now) {
        return When::Utc(t.format("%Y-%m-%d %H:%M").to_string());
    }
    let local = t.with_timezone(&tz);
    let today = now.with_timezone(&tz).date_naive();
    let date = local.date_naive();
    let clock = format!("{:02}:{:02}", local.hour(), local.minute());
    match date.signed_duration_since(today).num_days() {
        0 => When::Today(clock),
        1 => When::Tomorrow(clock),
        -1 => When::Yesterday(clock),
        days => {
            let weekday = WEEKDAY[date.weekday().num_days_from_monday() as usize];
            let month = MONTH_ABBR[date.month0() as usize];
            let day = if days.abs() > 180 {
                format!("{weekday} {} {month} {}", date.day(), date.year())
            } else {
                format!("{weekday} {} {month}", date.day())
            };
            When::Date(day, clock)
        }
    }
}

/// Parses a duration like "45m", "4h", "2h30m", "1d", "90s", "1d2h" (units d/h/m/s, combined, no spaces) into a chrono::Duration. Err(String) with a clear message for anything else (empty, no unit, overflow, unknown unit).
///
/// Units are lower case and must go from largest to smallest, each at most once ("30m2h" and
/// "1h1h" are refused as likely typos). Surrounding whitespace is ignored; "0m" is a valid zero
/// duration, left for the caller to judge. Error messages never echo the whole input, which may
/// be long.
pub fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    const HINT: &str = "use a number and a unit (d, h, m or s), e.g. 45m, 4h, 2h30m or 1d";
    let s = s.trim();
    if s.is_empty() {
        return Err(format!("no duration given: {HINT}"));
    }
    let mut total: i64 = 0;
    let mut number: Option<i64> = None;
    // Rank of the last unit seen (d = 4 … s = 1); units must strictly decrease.
    let mut last_rank = u8::MAX;
    for c in s.chars() {
        if let Some(digit) = c.to_digit(10).filter(|_| c.is_ascii_digit()) {
            let next = number
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|n| n.checked_add(i64::from(digit)))
                .ok_or_else(|| "duration is too large".to_owned())?;
            number = Some(next);
            continue;
        }
        let (rank, unit_secs) = match c {
            'd' => (4, 86_400),
            'h' => (3, 3_600),
            'm' => (2, 60),
            's' => (1, 1),
            c if c.is_whitespace() => {
                return Err(format!("durations have no spaces: {HINT}"));
            }
            c => return Err(format!("unknown unit {c:?}: {HINT}")),
        };
        let Some(n) = number.take() else {
            return Err(format!("unit '{c}' has no number before it: {HINT}"));
        };
        if rank == last_rank {
            return Err(format!("unit '{c}' is given twice: {HINT}"));
        }
        if rank > last_rank {
            return Err(format!(
                "units must go from largest to smallest (d, h, m, s): {HINT}"
            ));
        }
        last_rank = rank;
        total = n
            .checked_mul(unit_secs)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(|| "duration is too large".to_owned())?;
    }
    if let Some(n) = number {
        return Err(format!("number {n} has no unit: {HINT}"));
    }
    chrono::Duration::try_seconds(total).ok_or_else(|| "duration is too large".to_owned())
}

const WEEKDAY: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTH_ABBR: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
