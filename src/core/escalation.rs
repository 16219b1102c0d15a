//! How an escalation's status may change (open → sent → acknowledged → resolved, or failed), each
//! change recorded with who and when. Pure: the service applies these in the transaction that
//! also queues the notices they imply.

use chrono::{DateTime, Utc};

use crate::core::error::UserError;
use crate::core::records::{Escalation, EscalationKind, EscalationStatus, StatusChange};

/// What a member of the support team can do to an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Resolve,
    Retry,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "ack" => Some(Action::Acknowledge),
            "resolve" => Some(Action::Resolve),
            "retry" => Some(Action::Retry),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Acknowledge => "ack",
            Action::Resolve => "resolve",
            Action::Retry => "retry",
        }
    }
}

/// Records a change of status.
pub fn change(
    e: &mut Escalation,
    status: EscalationStatus,
    by: &str,
    at: DateTime<Utc>,
    note: Option<String>,
) {
    e.status = status;
    e.history.push(StatusChange {
        status,
        by: by.to_string(),
        at,
        note,
    });
}

/// Applies a support team member's action, or says why it cannot be done.
pub fn apply(
    e: &mut Escalation,
    action: Action,
    by: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), UserError> {
    let refuse = |action: &'static str, e: &Escalation| {
        Err(UserError::NotAllowed {
            reference: e.reference.clone(),
            status: e.status.as_str(),
            action,
        })
    };
    let note = note.map(str::to_string);
    match action {
        Action::Acknowledge => {
            if matches!(
                e.status,
                EscalationStatus::Acknowledged | EscalationStatus::Resolved
            ) {
                return refuse("acknowledged", e);
            }
            change(e, EscalationStatus::Acknowledged, by, now, note);
        }
        Action::Resolve => {
            if e.status == EscalationStatus::Resolved {
                return refuse("resolved", e);
            }
            change(e, EscalationStatus::Resolved, by, now, note);
        }
        Action::Retry => {
            if e.kind != EscalationKind::EmailChanged {
                return Err(UserError::NoMail(e.reference.clone()));
            }
            if e.status != EscalationStatus::Failed {
                return refuse("retried (only failed e-mails are)", e);
            }
            change(
                e,
                EscalationStatus::Open,
                by,
                now,
                Some("e-mail retry requested".into()),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::records::Recipient;

    fn escalation(kind: EscalationKind) -> Escalation {
        let at: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        Escalation {
            reference: "ESC-00001".into(),
            kind,
            user: Recipient::from("chat:ann"),
            display_name: None,
            new_address: None,
            volunteered: Default::default(),
            problem: None,
            contact: None,
            created_at: at,
            status: EscalationStatus::Open,
            history: Vec::new(),
        }
    }

    #[test]
    fn an_escalation_is_acknowledged_then_resolved_once() {
        let now = "2026-03-02T10:00:00Z".parse().unwrap();
        let mut e = escalation(EscalationKind::TalkToHuman);
        apply(&mut e, Action::Acknowledge, "sam", None, now).unwrap();
        assert_eq!(e.status, EscalationStatus::Acknowledged);
        assert!(apply(&mut e, Action::Acknowledge, "sam", None, now).is_err());
        apply(&mut e, Action::Resolve, "sam", Some("called back"), now).unwrap();
        assert_eq!(e.history.len(), 2);
        assert_eq!(e.history[1].note.as_deref(), Some("called back"));
        assert_eq!(
            apply(&mut e, Action::Resolve, "sam", None, now),
            Err(UserError::NotAllowed {
                reference: "ESC-00001".into(),
                status: "resolved",
                action: "resolved"
            })
        );
    }

    #[test]
    fn only_a_failed_email_can_be_retried() {
        let now = "2026-03-02T10:00:00Z".parse().unwrap();
        let mut talk = escalation(EscalationKind::TalkToHuman);
        assert_eq!(
            apply(&mut talk, Action::Retry, "sam", None, now),
            Err(UserError::NoMail("ESC-00001".into()))
        );
        let mut mail = escalation(EscalationKind::EmailChanged);
        assert!(apply(&mut mail, Action::Retry, "sam", None, now).is_err());
        mail.status = EscalationStatus::Failed;
        apply(&mut mail, Action::Retry, "sam", None, now).unwrap();
        assert_eq!(mail.status, EscalationStatus::Open);
    }
}

/// When the support team works ("Mon-Fri 08:00-17:00") and how many working hours it aims to
/// reply within: enough to tell a person when they will hear back.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportHours {
    /// Working days, Monday first.
    days: [bool; 7],
    open: chrono::NaiveTime,
    close: chrono::NaiveTime,
    response: chrono::Duration,
    text: String,
}

impl SupportHours {
    /// Parses "Mon-Fri 08:00-17:00" (days as a range or a comma list, a hyphen or en dash).
    pub fn parse(text: &str, response_hours: u32) -> Result<SupportHours, String> {
        use chrono::NaiveTime;
        let norm = text.replace(['–', '—'], "-");
        let (days, times) = norm.trim().split_once(' ').ok_or_else(|| {
            format!("expected days and hours, like \"Mon-Fri 08:00-17:00\" (got {text:?})")
        })?;
        let day = |d: &str| -> Result<usize, String> {
            const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
            let d = d.trim().to_ascii_lowercase();
            NAMES
                .iter()
                .position(|n| d.starts_with(n))
                .ok_or_else(|| format!("{d:?} is not a day"))
        };
        let mut on = [false; 7];
        for part in days.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day(a)?, day(b)?);
                    let mut d = a;
                    loop {
                        on[d] = true;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => on[day(part)?] = true,
            }
        }
        let (open, close) = times
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("expected hours like 08:00-17:00 (got {times:?})"))?;
        let time = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .map_err(|_| format!("{t:?} is not a time (HH:MM)"))
        };
        let (open, close) = (time(open)?, time(close)?);
        if close <= open {
            return Err("the closing time must be after the opening time".into());
        }
        if !(1..=24 * 14).contains(&response_hours) {
            return Err(format!(
                "the response target must be 1 to 336 working hours (got {response_hours})"
            ));
        }
        Ok(SupportHours {
            days: on,
            open,
            close,
            response: chrono::Duration::hours(response_hours.into()),
            text: text.trim().to_string(),
        })
    }

    /// As written in the settings, for replies.
    pub fn describe(&self) -> String {
        self.text.clone()
    }

    /// The response target in words: whole 8-hour working days ("one working day"), otherwise
    /// working hours ("4 working hours").
    pub fn describe_target(&self) -> String {
        let hours = self.response.num_hours();
        match (hours / 8, hours % 8) {
            (1, 0) => "one working day".into(),
            (d, 0) => format!("{d} working days"),
            _ if hours == 1 => "one working hour".into(),
            _ => format!("{hours} working hours"),
        }
    }

    /// When a request made at `now` should be answered by: `response` of working time later,
    /// counted in the support team's hours in `tz`.
    pub fn reply_by(&self, now: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
        use chrono::{Datelike, TimeZone};
        let mut left = self.response;
        let mut local = now.with_timezone(&tz).naive_local();
        for _ in 0..60 {
            let date = local.date();
            let working = self.days[date.weekday().num_days_from_monday() as usize];
            let (open, close) = (date.and_time(self.open), date.and_time(self.close));
            if working && local < close {
                let start = local.max(open);
                let room = close - start;
                if left <= room {
                    let at = start + left;
                    return tz
                        .from_local_datetime(&at)
                        .earliest()
                        .map_or(now + self.response, |t| t.with_timezone(&Utc));
                }
                left -= room;
            }
            local = (date + chrono::Duration::days(1)).and_time(chrono::NaiveTime::MIN);
        }
        now + self.response
    }
}

#[cfg(test)]
mod support_tests {
    use super::*;

    #[test]
    fn working_hours_count_towards_the_reply() {
        let h = SupportHours::parse("Mon–Fri 08:00-17:00", 8).unwrap();
        let tz = chrono_tz::Europe::London;
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Monday 09:00: eight working hours is the rest of Monday.
        assert_eq!(
            h.reply_by(t("2026-03-02T09:00:00Z"), tz),
            t("2026-03-02T17:00:00Z")
        );
        // Monday 10:00: seven hours on Monday, one on Tuesday.
        assert_eq!(
            h.reply_by(t("2026-03-02T10:00:00Z"), tz),
            t("2026-03-03T09:00:00Z")
        );
        // Friday 18:00 (after hours): Monday 16:00.
        assert_eq!(
            h.reply_by(t("2026-03-06T18:00:00Z"), tz),
            t("2026-03-09T16:00:00Z")
        );
        // Saturday: Monday 16:00 too; in summer time the clock hours are local.
        assert_eq!(
            h.reply_by(t("2026-07-04T10:00:00Z"), tz),
            t("2026-07-06T15:00:00Z")
        );
        assert!(SupportHours::parse("weekdays", 8).is_err());
        assert!(SupportHours::parse("Mon-Fri 17:00-08:00", 8).is_err());
    }
}
