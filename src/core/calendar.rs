//! "Add to calendar" files (RFC 5545 iCalendar) for a reset link's expiry and a lock's end, so a
//! person's own calendar (Outlook on NHSmail) reminds them even when no chat is open.
//!
//! Times are written in UTC (`…Z`). A UTC instant needs no time-zone rules, so the event lands at
//! the right local time on either side of a clock change, in any client.

use chrono::{DateTime, Duration, Utc};

use crate::core::records::Attachment;

/// The media type of an iCalendar file.
pub const MEDIA_TYPE: &str = "text/calendar";

/// One timed event with a reminder before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Stable for the same timer, so importing the file twice updates one event.
    pub uid: String,
    pub summary: String,
    pub description: String,
    pub at: DateTime<Utc>,
    /// How long before `at` the calendar alerts (zero: at the time itself).
    pub alert_before: Duration,
}

impl Event {
    /// The event as a calendar file attachment named `name`.
    pub fn attachment(&self, name: &str, now: DateTime<Utc>) -> Attachment {
        Attachment {
            name: name.to_string(),
            media_type: MEDIA_TYPE.to_string(),
            body: self.ics(now).into_bytes(),
        }
    }

    /// The iCalendar text: one VEVENT with a display VALARM, CRLF line ends, long lines folded.
    pub fn ics(&self, now: DateTime<Utc>) -> String {
        let alert = self.alert_before.num_minutes().max(0);
        let mut out = String::with_capacity(640);
        for line in [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//esrbot//ESR access reminders//EN",
            "CALSCALE:GREGORIAN",
            "METHOD:PUBLISH",
            "BEGIN:VEVENT",
        ] {
            fold_into(&mut out, line);
        }
        fold_into(&mut out, &format!("UID:{}", escape(&self.uid)));
        fold_into(&mut out, &format!("DTSTAMP:{}", utc(now)));
        fold_into(&mut out, &format!("DTSTART:{}", utc(self.at)));
        fold_into(
            &mut out,
            &format!("DTEND:{}", utc(self.at + Duration::minutes(15))),
        );
        fold_into(&mut out, &format!("SUMMARY:{}", escape(&self.summary)));
        fold_into(
            &mut out,
            &format!("DESCRIPTION:{}", escape(&self.description)),
        );
        // A reminder, not a meeting: it must not show them as busy.
        for line in ["TRANSP:TRANSPARENT", "BEGIN:VALARM", "ACTION:DISPLAY"] {
            fold_into(&mut out, line);
        }
        fold_into(&mut out, &format!("DESCRIPTION:{}", escape(&self.summary)));
        fold_into(&mut out, &format!("TRIGGER:-PT{alert}M"));
        for line in ["END:VALARM", "END:VEVENT", "END:VCALENDAR"] {
            fold_into(&mut out, line);
        }
        out
    }
}

/// A UTC date-time in iCalendar's basic form.
fn utc(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Escapes a TEXT value (RFC 5545 §3.3.11).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded so no line is longer than 75 octets (never inside a
/// character), and ended with CRLF (RFC 5545 §3.1).
fn fold_into(out: &mut String, line: &str) {
    if line.len() <= 75 {
        out.push_str(line);
        out.push_str("\r\n");
        return;
    }
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn event(description: &str) -> Event {
        Event {
            uid: "esrbot-unlock-1@esrbot".into(),
            summary: "ESR: you can sign in again".into(),
            description: description.into(),
            at: at("2026-10-25T09:30:00Z"),
            alert_before: Duration::minutes(15),
        }
    }

    /// Unfolds the text and returns its content lines, checking the line rules on the way.
    fn lines(ics: &str) -> Vec<String> {
        assert!(ics.ends_with("\r\n"));
        let mut out: Vec<String> = Vec::new();
        for raw in ics.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(raw.len() <= 75, "line over 75 octets: {raw:?}");
            assert!(!raw.contains('\n') && !raw.contains('\r'));
            match raw.strip_prefix(' ') {
                Some(rest) => out.last_mut().expect("a first line").push_str(rest),
                None => out.push(raw.to_string()),
            }
        }
        out
    }

    #[test]
    fn an_event_is_a_calendar_with_one_event_and_an_alarm_before_it() {
        let ics = event("Try again at 09:30.").ics(at("2026-10-24T21:30:00Z"));
        let l = lines(&ics);
        assert_eq!(l.first().map(String::as_str), Some("BEGIN:VCALENDAR"));
        assert_eq!(l.last().map(String::as_str), Some("END:VCALENDAR"));
        for needed in [
            "VERSION:2.0",
            "BEGIN:VEVENT",
            "DTSTAMP:20261024T213000Z",
            "DTSTART:20261025T093000Z",
            "DTEND:20261025T094500Z",
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "TRIGGER:-PT15M",
            "END:VALARM",
            "END:VEVENT",
        ] {
            assert!(l.iter().any(|x| x == needed), "{needed} missing from {l:?}");
        }
        assert!(l.iter().any(|x| x.starts_with("PRODID:")));
    }

    #[test]
    fn text_is_escaped_and_long_lines_fold_without_splitting_a_character() {
        let long = "Sign in again, then; change it\\now\nsecond line — ".repeat(6);
        let ics = event(&long).ics(at("2026-10-24T21:30:00Z"));
        let l = lines(&ics);
        let d = l
            .iter()
            .find(|x| x.starts_with("DESCRIPTION:Sign"))
            .expect("description");
        assert!(d.contains("again\\, then\\; change it\\\\now\\nsecond line — "));
        // Folding kept every character whole (the text is valid UTF-8 and decodes unchanged).
        assert_eq!(d.matches('—').count(), 6);
    }

    #[test]
    fn a_time_after_the_clock_change_is_the_same_instant() {
        // A 12-hour lock from 21:30 BST on Saturday 24 October 2026 ends at 08:30 GMT on Sunday,
        // after the clocks go back: the file says 08:30 UTC, which every client shows as 08:30.
        let start = at("2026-10-24T20:30:00Z");
        let e = Event {
            at: start + Duration::hours(12),
            ..event("x")
        };
        let l = lines(&e.ics(start));
        assert!(l.iter().any(|x| x == "DTSTART:20261025T083000Z"), "{l:?}");
    }
}
