//! The bot as a service: the engine's decisions committed to the store, one write transaction per
//! message and per batch of due reminders. Transports (terminal, Discord) call only this.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::content::Content;
use crate::engine::{Decision, Engine, Reply, Rules};
use crate::intents;
use crate::state::{
    Audience, EscalationKind, MailJob, MailState, Outgoing, ReminderKind, UserState,
};
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
    /// Set when the support team works escalations in a Discord channel: every new escalation
    /// and status change queues an update of its message there, in the same transaction.
    pub support_channel: Option<u64>,
}

/// Loads intents and content and trains the classifier: the start-up work shared by every command.
pub fn load_engine(config: &Config) -> anyhow::Result<Engine> {
    engine_for(config, &load_intents(config)?)
}

/// The intents under the configured `intents/`, or their problems as one error.
pub fn load_intents(config: &Config) -> anyhow::Result<Vec<intents::Intent>> {
    intents::load_dir(&config.intents_dir()).map_err(problems)
}

/// Loads the content for `intents` and trains the classifier on them.
pub fn engine_for(config: &Config, intents: &[intents::Intent]) -> anyhow::Result<Engine> {
    let (rules, content) = rules_and_content(config, intents)?;
    Ok(Engine::new(rules, intents, content))
}

/// Like `load_engine`, with the classifier trained only if a message is ever classified: for the
/// administrator's escalation commands, which only render notices.
pub fn load_engine_untrained(config: &Config) -> anyhow::Result<Engine> {
    let intents = load_intents(config)?;
    let (rules, content) = rules_and_content(config, &intents)?;
    Ok(Engine::untrained(rules, &intents, content))
}

fn rules_and_content(
    config: &Config,
    intents: &[intents::Intent],
) -> anyhow::Result<(Rules, Content)> {
    let rules = Rules::from_config(config)?;
    let ids: Vec<&str> = intents.iter().map(|i| i.id.as_str()).collect();
    let content = Content::load(&config.data_dir(), &ids).map_err(problems)?;
    Ok((rules, content))
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
        Ok(Bot {
            engine,
            store,
            support_channel: config.discord.support_channel(),
        })
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
        let (before, peek) = self.store.user_and_next_id(user, "escalation")?;
        let mut state = before.clone();
        let d = self
            .engine
            .handle(user, &mut state, text, now, &reference(peek));
        if state == before && d.schedule.is_empty() && d.cancel.is_empty() && d.escalation.is_none()
        {
            return Ok(d.reply);
        }
        // Decide again inside the transaction: another process may have written meanwhile.
        self.store
            .write(|txn| self.decide_in(txn, user, display_name, text, now))
    }

    /// Handles a transport event at most once, however often it is delivered: the event id, the
    /// state change and whatever `deliver` queues for sending (the reply) are one transaction.
    /// Returns None for a duplicate.
    pub fn handle_once(
        &self,
        event: &str,
        user: &str,
        display_name: Option<&str>,
        text: &str,
        now: DateTime<Utc>,
        deliver: impl FnOnce(&mut Txn, &Reply) -> anyhow::Result<()>,
    ) -> anyhow::Result<Option<Reply>> {
        self.store.write(|txn| {
            if !txn.first_sighting(event, now)? {
                return Ok(None);
            }
            let reply = self.decide_in(txn, user, display_name, text, now)?;
            deliver(txn, &reply)?;
            Ok(Some(reply))
        })
    }

    fn decide_in(
        &self,
        txn: &mut Txn,
        user: &str,
        display_name: Option<&str>,
        text: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Reply> {
        let mut state = txn.user(user)?;
        if let Some(name) = display_name {
            state.display_name = Some(name.to_string());
        }
        let next = reference(txn.peek_id("escalation")?);
        let d = self.engine.handle(user, &mut state, text, now, &next);
        commit_decision(txn, user, &mut state, &d)?;
        if let (Some(e), Some(_)) = (&d.escalation, self.support_channel) {
            txn.send_later(
                Outgoing::SupportPost {
                    reference: e.reference.clone(),
                },
                now,
            )?;
        }
        Ok(d.reply)
    }

    /// Erases everything stored about `user` (state, reminders, escalations and their e-mail).
    /// Returns how many escalations were removed.
    /// Support-channel posts of the erased escalations are rewritten to say so (they showed the
    /// person's name and address).
    pub fn forget(&self, user: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
        self.store.write(|txn| {
            let refs = txn.erase_user(user)?;
            if self.support_channel.is_some() {
                for reference in &refs {
                    txn.send_later(
                        Outgoing::SupportPost {
                            reference: reference.clone(),
                        },
                        now,
                    )?;
                }
            }
            Ok(refs.len())
        })
    }

    /// Claims up to `limit` reminders due by `now` and returns what to tell whom. Claiming and the
    /// state changes it implies are one transaction.
    pub fn deliver_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<Notification>> {
        self.deliver_due_into(now, limit, Audience::Everyone, |_, _| Ok(()))
    }

    /// Like `deliver_due`, for `audience` only, and `sink` may queue each notification for a
    /// transport in the same transaction that claims it, so a crash can neither lose nor repeat it.
    pub fn deliver_due_into(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        audience: Audience,
        sink: impl Fn(&mut Txn, &Notification) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<Notification>> {
        if self.store.next_due_for(audience)?.is_none_or(|t| t > now) {
            return Ok(Vec::new());
        }
        self.store.write(|txn| {
            let mut out = Vec::new();
            for (key, r) in txn.take_due(now, limit, audience)? {
                let mut state: UserState = txn.user(&r.user)?;
                state.reminders.retain(|x| x.id != key.id);
                let text = self.engine.on_due(&mut state, &r, now);
                txn.put_user(&r.user, &state)?;
                if let Some(text) = text {
                    let n = Notification {
                        user: r.user.clone(),
                        text,
                        due: r.due,
                        kind: r.kind,
                    };
                    sink(txn, &n)?;
                    out.push(n);
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
