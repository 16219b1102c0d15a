//! The bot as a service: the engine's decisions committed to the store, one write transaction per
//! message and per batch of due reminders. Transports (terminal, Discord) call only this.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::content::Content;
use crate::engine::{Decision, Engine, Reply, Rules};
use crate::intents;
use crate::state::{EscalationKind, MailJob, MailState, ReminderKind, UserState};
use crate::store::{Store, Txn};

/// A message the bot sends on its own (a reminder), for a transport to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub user: String,
    pub text: String,
    pub due: DateTime<Utc>,
    pub kind: ReminderKind,
}

pub struct Bot {
    pub engine: Arc<Engine>,
    pub store: Store,
}

/// Loads intents and content and trains the classifier: the start-up work shared by every command.
pub fn load_engine(config: &Config) -> anyhow::Result<Engine> {
    let rules = Rules::from_config(config)?;
    let intents = intents::load_dir(&config.intents_dir()).map_err(problems)?;
    let ids: Vec<&str> = intents.iter().map(|i| i.id.as_str()).collect();
    let content = Content::load(&config.data_dir(), &ids).map_err(problems)?;
    Ok(Engine::new(rules, &intents, content))
}

fn problems(list: Vec<intents::FileProblem>) -> anyhow::Error {
    let lines: Vec<String> = list.iter().map(ToString::to_string).collect();
    anyhow::anyhow!(
        "{}\n(run `esrbot check` for the full list)",
        lines.join("\n")
    )
}

/// Reference format for escalations: short enough to read out on the phone.
pub fn reference(n: u64) -> String {
    format!("ESC-{n:05}")
}

impl Bot {
    pub fn open(engine: Arc<Engine>, config: &Config) -> anyhow::Result<Bot> {
        let store = Store::open(&config.storage_path())?;
        Ok(Bot { engine, store })
    }

    /// Answers one message from `user`; everything it changes is committed before the reply is
    /// returned, so a reply the user saw is never forgotten.
    pub fn handle(
        &self,
        user: &str,
        display_name: Option<&str>,
        text: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Reply> {
        // Most messages (questions about the guide) change nothing: decide on a snapshot first and
        // only open a write transaction when there is something to write.
        let before = self.store.user(user)?;
        let mut state = before.clone();
        let peek = self.store.peek_id("escalation")?;
        let d = self
            .engine
            .handle(user, &mut state, text, now, &reference(peek));
        if state == before && d.schedule.is_empty() && d.cancel.is_empty() && d.escalation.is_none()
        {
            return Ok(d.reply);
        }
        self.store.write(|txn| {
            // Decide again inside the transaction: another process may have written meanwhile.
            let mut state = txn.user(user)?;
            if let Some(name) = display_name {
                state.display_name = Some(name.to_string());
            }
            let next = reference(txn.peek_id("escalation")?);
            let d = self.engine.handle(user, &mut state, text, now, &next);
            commit_decision(txn, user, &mut state, &d)?;
            Ok(d.reply)
        })
    }

    /// Claims up to `limit` reminders due by `now` and returns what to tell whom. Claiming and the
    /// state changes it implies are one transaction.
    pub fn deliver_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<Notification>> {
        if self.store.next_due()?.is_none_or(|t| t > now) {
            return Ok(Vec::new());
        }
        self.store.write(|txn| {
            let mut out = Vec::new();
            for (key, r) in txn.take_due(now, limit)? {
                let mut state: UserState = txn.user(&r.user)?;
                state.reminders.retain(|x| x.id != key.id);
                let text = self.engine.on_due(&mut state, &r, now);
                txn.put_user(&r.user, &state)?;
                if let Some(text) = text {
                    out.push(Notification {
                        user: r.user.clone(),
                        text,
                        due: r.due,
                        kind: r.kind,
                    });
                }
            }
            Ok(out)
        })
    }
}

fn commit_decision(
    txn: &mut Txn,
    user: &str,
    state: &mut UserState,
    d: &Decision,
) -> anyhow::Result<()> {
    for r in &d.cancel {
        txn.cancel(r)?;
    }
    for r in &d.schedule {
        let key = txn.schedule(r)?;
        state.reminders.push(key);
    }
    if let Some(e) = &d.escalation {
        let n = txn.next_id("escalation")?;
        anyhow::ensure!(
            reference(n) == e.reference,
            "escalation reference changed under us"
        );
        txn.put_escalation(e).context("record escalation")?;
        // The e-mail is queued in the same transaction as the escalation: neither exists without
        // the other, whatever happens next.
        if e.kind == EscalationKind::EmailChanged {
            txn.put_mail_job(&MailJob {
                reference: e.reference.clone(),
                attempts: 0,
                next_attempt: e.created_at,
                state: MailState::Queued,
                last_error: None,
            })?;
        }
    }
    txn.put_user(user, state)
}
