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
