//! The support team's queue: status changes of escalations (open → sent → acknowledged →
//! resolved, or failed), each recorded with who and when, and the notices they send. Every change,
//! its audit entry, the outbox and the notice are one write transaction.

use chrono::{DateTime, Duration, Utc};

use crate::bot::Bot;
use crate::content::render;
use crate::state::{
    Escalation, EscalationKind, EscalationStatus, MailJob, MailState, Outgoing, Reminder,
    ReminderKind, SUPPORT_TEAM, StatusChange,
};
use crate::store::Txn;

/// What a member of the support team can do to an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Resolve,
    Retry,
}

/// A refusal the person at the command line should read as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("there is no escalation {0}")]
    NotFound(String),
    #[error("{reference} is {status}: it cannot be {action}")]
    NotAllowed {
        reference: String,
        status: &'static str,
        action: &'static str,
    },
    #[error("{0} has no e-mail to retry (only e-mail changes are sent by e-mail)")]
    NoMail(String),
}

/// The outcome of one failed delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: String,
    /// The server refused for good (5xx, bad address): no point retrying.
    pub permanent: bool,
}

/// When to try again after `attempts` failures: exponential backoff with jitter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// base × 2^(attempts−1), capped, then scaled by a jitter factor in [0.5, 1.0) so that many
    /// jobs failing together do not retry together. `jitter` is in [0, 1).
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let exp = self.base * 2i32.saturating_pow(attempts.saturating_sub(1).min(20));
        let capped = exp.min(self.max_delay);
        let ms = capped.num_milliseconds() as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 0.999));
        Duration::milliseconds(ms as i64)
    }
}

pub(crate) fn notice(user: &str, text: String, now: DateTime<Utc>) -> Reminder {
    Reminder {
        user: user.to_string(),
        kind: ReminderKind::Notice,
        due: now,
        about: None,
        text: Some(text),
    }
}

fn change(
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

impl Bot {
    fn say(&self, key: &str, vars: &[(&str, &str)]) -> String {
        let mut all = vec![("mailbox", self.engine.rules.mailbox.as_str())];
        all.extend_from_slice(vars);
        render(self.engine.content().message(key), &all)
    }

    /// Schedules a notice in the same transaction as the change it reports.
    fn notify(
        &self,
        txn: &mut Txn,
        user: &str,
        text: String,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let key = txn.schedule(&notice(user, text, now))?;
        if user != SUPPORT_TEAM {
            let mut state = txn.user(user)?;
            state.reminders.push(key);
            txn.put_user(user, &state)?;
        }
        Ok(())
    }

    /// Queues an update of the escalation's support-channel message (when there is one).
    fn support_update(
        &self,
        txn: &mut Txn,
        reference: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if self.support_channel.is_some() {
            txn.send_later(
                Outgoing::SupportPost {
                    reference: reference.to_string(),
                },
                now,
            )?;
        }
        Ok(())
    }

    /// Acknowledge, resolve or retry an escalation on behalf of `by`.
    pub fn escalation_action(
        &self,
        reference: &str,
        action: Action,
        by: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<Escalation, QueueError>> {
        self.store
            .write(|txn| self.escalation_action_in(txn, reference, action, by, note, now))
    }

    /// `escalation_action` inside the caller's transaction, so that a caller can commit it
    /// together with something else (the Discord button's event id, for dedupe).
    pub fn escalation_action_in(
        &self,
        txn: &mut Txn,
        reference: &str,
        action: Action,
        by: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<Escalation, QueueError>> {
        let Some(mut e) = txn.escalation(reference)? else {
            return Ok(Err(QueueError::NotFound(reference.to_string())));
        };
        let refuse = |action: &'static str, e: &Escalation| {
            Ok(Err(QueueError::NotAllowed {
                reference: e.reference.clone(),
                status: e.status.as_str(),
                action,
            }))
        };
        let note = note.map(str::to_string);
        match action {
            Action::Acknowledge => {
                if matches!(
                    e.status,
                    EscalationStatus::Acknowledged | EscalationStatus::Resolved
                ) {
                    return refuse("acknowledged", &e);
                }
                change(&mut e, EscalationStatus::Acknowledged, by, now, note);
            }
            Action::Resolve => {
                if e.status == EscalationStatus::Resolved {
                    return refuse("resolved", &e);
                }
                change(&mut e, EscalationStatus::Resolved, by, now, note.clone());
                let mut state = txn.user(&e.user)?;
                state.open_escalations.retain(|(_, r)| r != &e.reference);
                txn.put_user(&e.user, &state)?;
                let note_line = note
                    .map(|n| format!(" Note from the support team: {n}"))
                    .unwrap_or_default();
                let text = self.say(
                    "escalation_resolved",
                    &[("reference", &e.reference), ("note", &note_line)],
                );
                self.notify(txn, &e.user, text, now)?;
            }
            Action::Retry => {
                if e.kind != EscalationKind::EmailChanged {
                    return Ok(Err(QueueError::NoMail(e.reference.clone())));
                }
                if e.status != EscalationStatus::Failed {
                    return refuse("retried (only failed e-mails are)", &e);
                }
                change(
                    &mut e,
                    EscalationStatus::Open,
                    by,
                    now,
                    Some("e-mail retry requested".into()),
                );
                txn.put_mail_job(&MailJob {
                    reference: e.reference.clone(),
                    attempts: 0,
                    next_attempt: now,
                    state: MailState::Queued,
                    last_error: None,
                })?;
            }
        }
        txn.put_escalation(&e)?;
        self.support_update(txn, &e.reference, now)?;
        Ok(Ok(e))
    }

    /// The server accepted the e-mail: record it first (so it is never sent again), mark the
    /// escalation sent and tell the staff member, all in one transaction.
    pub fn mail_accepted(
        &self,
        reference: &str,
        response: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.store.write(|txn| {
            let Some(mut job) = txn.mail_job(reference)? else {
                return Ok(());
            };
            job.state = MailState::Accepted {
                at: now,
                response: response.to_string(),
            };
            job.attempts += 1;
            txn.put_mail_job(&job)?;
            if let Some(mut e) = txn.escalation(reference)? {
                if e.status == EscalationStatus::Open {
                    change(
                        &mut e,
                        EscalationStatus::Sent,
                        "mail",
                        now,
                        Some(response.to_string()),
                    );
                }
                txn.put_escalation(&e)?;
                self.support_update(txn, reference, now)?;
                let text = self.say("escalation_sent", &[("reference", reference)]);
                self.notify(txn, &e.user, text, now)?;
            }
            Ok(())
        })
    }

    /// A delivery attempt failed: schedule the next one, or give up and tell the support team.
    pub fn mail_failed(
        &self,
        reference: &str,
        failure: &Failure,
        policy: &RetryPolicy,
        jitter: f64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.store.write(|txn| {
            let Some(mut job) = txn.mail_job(reference)? else {
                return Ok(());
            };
            job.attempts += 1;
            job.last_error = Some(failure.error.clone());
            if failure.permanent || job.attempts >= policy.max_attempts {
                job.state = MailState::Failed { at: now };
                txn.put_mail_job(&job)?;
                if let Some(mut e) = txn.escalation(reference)? {
                    change(
                        &mut e,
                        EscalationStatus::Failed,
                        "mail",
                        now,
                        Some(failure.error.clone()),
                    );
                    txn.put_escalation(&e)?;
                }
                let attempts = job.attempts.to_string();
                let text = self.say(
                    "escalation_failed",
                    &[
                        ("reference", reference),
                        ("error", &failure.error),
                        ("attempts", &attempts),
                    ],
                );
                self.notify(txn, SUPPORT_TEAM, text, now)?;
                tracing::error!(
                    reference,
                    attempts = job.attempts,
                    "e-mail gave up; support team told"
                );
            } else {
                job.next_attempt = now + policy.delay(job.attempts, jitter);
                txn.put_mail_job(&job)?;
                tracing::warn!(
                    reference,
                    attempts = job.attempts,
                    "e-mail not delivered; will retry"
                );
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 8,
            base: Duration::seconds(30),
            max_delay: Duration::minutes(30),
        };
        assert_eq!(p.delay(1, 0.999).num_seconds(), 29);
        assert_eq!(p.delay(1, 0.0).num_seconds(), 15);
        assert_eq!(p.delay(3, 0.0).num_seconds(), 60);
        assert_eq!(p.delay(30, 0.0), Duration::minutes(15));
        assert!(p.delay(30, 0.999) <= Duration::minutes(30));
    }
}
