//! TEMPORARY placeholder while the real module is written.
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeMention {
    pub at: DateTime<Utc>,
    pub span: std::ops::Range<usize>,
    pub text: String,
}

pub fn find_past_time(_text: &str, _now: DateTime<Utc>, _tz: Tz) -> Option<TimeMention> {
    None
}

pub fn format_clock(t: DateTime<Utc>, _now: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%H:%M").to_string()
}

pub fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    let mut total = chrono::Duration::zero();
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() { num.push(c); continue; }
        let n: i64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
        num.clear();
        total += match c { 'd' => chrono::Duration::days(n), 'h' => chrono::Duration::hours(n), 'm' => chrono::Duration::minutes(n), 's' => chrono::Duration::seconds(n), _ => return Err(format!("bad unit in {s:?}")) };
    }
    if !num.is_empty() { return Err(format!("missing unit in {s:?}")); }
    Ok(total)
}
