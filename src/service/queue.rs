//! The support team's queue as the service runs it: escalation actions with their audit trail and
//! the notices they send, what follows a delivery (an e-mail accepted marks its escalation sent),
//! and what follows giving up (the support team is told). Each change, its audit entry and its
//! notices are one write transaction.

use chrono::{DateTime, Utc};

use crate::core::error::UserError;
use crate::core::escalation::{self, Action};
use crate::core::records::{EscalationKind, EscalationStatus, Item, Outgoing, Pending, Recipient};
use crate::service::outbox::Handed;
use crate::service::{Added, MAIL_LANE, Service};
use crate::store::{Store, Txn};

/// The `[message]` keys used here.
pub const MESSAGES: &[&str] = &[
    "escalation_sent",
    "escalation_resolved",
    "escalation_failed",
    "undeliverable",
];

/// Where an escalation's e-mail is.
#[derive(Debug, Clone, PartialEq)]
pub enum MailState {
    /// Waiting in the outbox to be sent (again).
    Queued,
    /// The server accepted it: never sent again (unless an administrator retries).
    Accepted { at: DateTime<Utc>, response: String },
    /// Given up after its attempts or a permanent refusal.
    Failed { at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MailStatus {
    /// Attempts so far (while queued).
    pub attempts: u32,
    pub state: MailState,
    pub last_error: Option<String>,
}

/// An escalation's e-mail as the outbox and the escalation's history show it.
pub fn mail_status(store: &Store, reference: &str) -> anyhow::Result<Option<MailStatus>> {
    let Some(e) = store.escalation(reference)? else {
        return Ok(None);
    };
    if e.kind != EscalationKind::EmailChanged {
        return Ok(None);
    }
    let queued = store
        .outbox(MAIL_LANE)?
        .into_iter()
        .find(|o| matches!(&o.item, Item::EscalationMail { reference: r } if *r == e.reference));
    if let Some(o) = queued {
        return Ok(Some(MailStatus {
            attempts: o.attempts,
            state: MailState::Queued,
            last_error: o.last_error,
        }));
    }
    let last_by_mail = e.history.iter().rev().find(|h| h.by == "mail");
    Ok(last_by_mail.map(|h| MailStatus {
        attempts: 0,
        state: match h.status {
            EscalationStatus::Failed => MailState::Failed { at: h.at },
            _ => MailState::Accepted {
                at: h.at,
                response: h.note.clone().unwrap_or_default(),
            },
        },
        last_error: (h.status == EscalationStatus::Failed)
            .then(|| h.note.clone())
            .flatten(),
    }))
}

impl Service {
    fn say(&self, key: &str, vars: &[(&str, &str)]) -> String {
        let vars: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self.engine().message(key, &vars)
    }

    /// The words of a typed error, from `data/replies.toml`.
    pub fn explain(&self, e: &UserError) -> String {
        self.engine().message(e.key(), &e.vars())
    }

    /// Acknowledge, resolve or retry an escalation on behalf of `by`.
    pub fn escalation_action(
        &self,
        reference: &str,
        action: Action,
        by: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<crate::core::records::Escalation, UserError>> {
        self.write(|svc, txn, added| {
            svc.escalation_action_in(txn, added, reference, action, by, note, now)
        })
    }

    /// `escalation_action` inside the caller's transaction, so that a caller can commit it
    /// together with something else (a transport event's id, for dedupe).
    #[allow(clippy::too_many_arguments)]
    pub fn escalation_action_in(
        &self,
        txn: &mut Txn,
        added: &mut Added,
        reference: &str,
        action: Action,
        by: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<crate::core::records::Escalation, UserError>> {
        let Some(mut e) = txn.escalation(reference)? else {
            return Ok(Err(UserError::NotFound(reference.to_ascii_uppercase())));
        };
        if let Err(refusal) = escalation::apply(&mut e, action, by, note, now) {
            return Ok(Err(refusal));
        }
        match action {
            Action::Acknowledge => {}
            Action::Resolve => {
                let mut state = txn.user(&e.user)?;
                state.open_escalations.retain(|(_, r)| r != &e.reference);
                if state.open_escalation(EscalationKind::TalkToHuman).is_none() {
                    state.handover_at = None;
                }
                // A hand-over question about it no longer needs an answer.
                if matches!(&state.pending, Pending::Handover { reference, .. } if *reference == e.reference)
                {
                    state.pending = Pending::Nothing;
                }
                txn.put_user(&e.user, &state)?;
                let note_line = note
                    .map(|n| format!(" Note from the support team: {n}"))
                    .unwrap_or_default();
                let text = self.say(
                    "escalation_resolved",
                    &[("reference", &e.reference), ("note", &note_line)],
                );
                self.tell(txn, added, &e.user, text, now)?;
            }
            Action::Retry => {
                self.queue_training_mail(txn, added, &e.reference, now, now)?;
            }
        }
        txn.put_escalation(&e)?;
        self.card_update(txn, added, &e.reference, now)?;
        Ok(Ok(e))
    }

    /// What follows a delivery, in its transaction: an accepted e-mail marks its escalation sent
    /// (so it is never sent again) and tells the staff member.
    pub(crate) fn after_delivery(
        &self,
        txn: &mut Txn,
        added: &mut Added,
        _lane: &str,
        entry: &Outgoing,
        handed: &Handed,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Item::EscalationMail { reference } = &entry.item else {
            return Ok(());
        };
        let Some(mut e) = txn.escalation(reference)? else {
            return Ok(());
        };
        tracing::info!(reference = %reference, "e-mail accepted");
        escalation::change(
            &mut e,
            EscalationStatus::Sent,
            "mail",
            now,
            handed.receipt.clone(),
        );
        txn.put_escalation(&e)?;
        self.card_update(txn, added, reference, now)?;
        let text = self.say("escalation_sent", &[("reference", reference)]);
        self.tell(txn, added, &e.user, text, now)
    }

    /// What follows giving up on an entry, in its transaction: a failed e-mail marks its
    /// escalation failed; either way the support team is told (without the message's content).
    pub(crate) fn gave_up(
        &self,
        txn: &mut Txn,
        added: &mut Added,
        entry: &Outgoing,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let error = entry.last_error.clone().unwrap_or_default();
        match &entry.item {
            Item::EscalationMail { reference } => {
                if let Some(mut e) = txn.escalation(reference)? {
                    escalation::change(
                        &mut e,
                        EscalationStatus::Failed,
                        "mail",
                        now,
                        Some(error.clone()),
                    );
                    txn.put_escalation(&e)?;
                    self.card_update(txn, added, reference, now)?;
                }
                let attempts = entry.attempts.to_string();
                let text = self.say(
                    "escalation_failed",
                    &[
                        ("reference", reference),
                        ("error", &error),
                        ("attempts", &attempts),
                    ],
                );
                tracing::error!(reference = %reference, attempts = entry.attempts, "e-mail gave up; support team told");
                self.tell(txn, added, &Recipient::support_team(), text, now)
            }
            // Nobody to tell when the support team's own messages cannot be delivered.
            _ if entry.to.is_support_team() => Ok(()),
            _ => {
                let state = txn.user(&entry.to)?;
                let who = match &state.display_name {
                    Some(name) => format!("{name} ({})", entry.to),
                    None => entry.to.to_string(),
                };
                let text = self.say("undeliverable", &[("who", &who), ("error", &error)]);
                self.tell(txn, added, &Recipient::support_team(), text, now)
            }
        }
    }
}
