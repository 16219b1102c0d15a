//! The bot as a service: the engine's decisions committed to the store, one write transaction per
//! message (messages handled at the same time share one: group commit), per batch of due jobs and
//! per delivery outcome. Transports call only this. It knows no channel: it routes by `Routing`,
//! which the transports' registry builds.

pub mod accounts;
pub mod analytics;
pub mod health;
pub mod jobs;
pub mod outbox;
pub mod queue;
pub mod ratelimit;
pub mod tasks;

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::config::Config;
use crate::core::behaviours;
use crate::core::engine::{Decision, Engine, Reply, Rules};
use crate::core::error::UserError;
use crate::core::records::{EscalationKind, Item, Outgoing, Recipient, UserState};
use crate::store::{Store, Txn};
use crate::understanding::content::Content;
use crate::understanding::intents;

/// The lane of the support team's messages and cards, claimed by the transport that hosts it.
pub const SUPPORT_LANE: &str = "support";
/// The lane of e-mail to the training mailbox, claimed by the mail sender.
pub const MAIL_LANE: &str = "mail";

/// Which lane each recipient's jobs and messages go to: the unit a transport claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// Channels where each recipient is a lane of their own: each terminal session delivers only
    /// its own user's messages.
    pub per_recipient: Vec<String>,
    /// Whether escalations are posted as cards to the support team (its home shows them).
    pub support_cards: bool,
}

impl Routing {
    pub fn lane(&self, who: &Recipient) -> String {
        if who.is_support_team() {
            SUPPORT_LANE.to_string()
        } else if *who == Recipient::training_mailbox() {
            MAIL_LANE.to_string()
        } else if self.per_recipient.iter().any(|c| c == who.channel()) {
            who.as_str().to_string()
        } else {
            who.channel().to_string()
        }
    }
}

/// A sleeping task's wake-up call for some lanes, and the earliest due time it knows of: it is
/// woken only by work earlier than that (mini-redis's `purge_expired_tasks` pattern).
pub struct Waker {
    lanes: Vec<String>,
    next_ms: Mutex<Option<i64>>,
    notify: Notify,
}

impl Waker {
    pub fn new(lanes: Vec<String>) -> Waker {
        Waker {
            lanes,
            next_ms: Mutex::new(None),
            notify: Notify::new(),
        }
    }

    pub fn lanes(&self) -> &[String] {
        &self.lanes
    }

    /// Remembers when the task will next look (None: it waits for a wake-up or its poll).
    pub fn set_next(&self, next: Option<DateTime<Utc>>) {
        if let Ok(mut n) = self.next_ms.lock() {
            *n = next.map(|t| t.timestamp_millis());
        }
    }

    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Work due at `due_ms` arrived in `lane`.
    fn arrived(&self, lane: &str, due_ms: i64) {
        if !self.lanes.iter().any(|l| l == lane) {
            return;
        }
        let earlier = self
            .next_ms
            .lock()
            .map(|n| n.is_none_or(|next| due_ms < next))
            .unwrap_or(true);
        if earlier {
            self.notify.notify_one();
        }
    }
}

pub struct Service {
    /// The engine in force. A content reload swaps it whole; a message already being handled
    /// finishes on the engine it started with.
    engine: ArcSwap<Engine>,
    pub store: Store,
    pub routing: Routing,
    /// Readiness of this process's parts, for `/readyz`.
    pub health: health::Health,
    /// The job dispatchers running in this process.
    job_wakers: Mutex<Vec<Arc<Waker>>>,
    /// The outbox runners running in this process.
    outbox_wakers: Mutex<Vec<Arc<Waker>>>,
    /// How support accounts' sessions behave (`[web]`).
    pub accounts_policy: accounts::Policy,
    /// What analytics keep (`[analytics]`).
    pub analytics: analytics::Settings,
    /// Analytics counts of messages answered without a write, until the next flush.
    tally: analytics::Tally,
    /// Escalation numbers promised to messages being handled (`Service::reserve`).
    reserved: Mutex<Reserved>,
}

/// Escalation numbers handed to messages decided outside the write transaction: two messages of
/// one batch that each record an escalation cannot both have the number their snapshot shows, so
/// the second is decided with the next one, in parallel, instead of again in the batch's serial
/// part. A promise is only a guess: the transaction still checks it against the counter (a
/// message that gave up its number, or another process's escalation, makes the next ones decide
/// again inside).
#[derive(Default)]
struct Reserved {
    next: u64,
    /// Messages holding a number now; when none does, the next starts from the snapshot again.
    holders: usize,
}

/// A promised escalation number, given back when the message is handled.
struct Reservation<'a> {
    number: u64,
    of: &'a Mutex<Reserved>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut r = self.of.lock().unwrap_or_else(PoisonError::into_inner);
        r.holders -= 1;
    }
}

/// What a transaction run through `Service::write` added, so the right tasks are woken after the
/// commit (never before: they would find nothing).
#[derive(Default)]
pub struct Added {
    jobs: Vec<(String, i64)>,
    outbox: Vec<(String, i64)>,
}

/// A decision made on a snapshot before the write transaction: the state it was made on (with
/// the display name applied), the next escalation number it saw, and what it decided.
struct Early {
    input: UserState,
    peek: u64,
    state: UserState,
    decision: Decision,
}

impl Early {
    /// Whether the engine, given what the transaction read, would decide the same. The next
    /// escalation number matters only to a message that records an escalation (the engine reads
    /// it for nothing else): other people's escalations, made meanwhile, change nothing here.
    /// `peek` reads the next number, only when it matters (it costs a table lookup in the
    /// batch's serial part).
    fn holds_for(
        &self,
        state: &UserState,
        peek: impl FnOnce() -> anyhow::Result<u64>,
    ) -> anyhow::Result<bool> {
        Ok(*state == self.input && (self.decision.escalation.is_none() || peek()? == self.peek))
    }
}

/// Loads intents and content and trains the classifier: the start-up work shared by every command.
pub fn load_engine(config: &Config) -> anyhow::Result<Engine> {
    engine_for(config, &load_intents(config)?)
}

/// The intents under the configured `intents/`, or their problems as one error.
pub fn load_intents(config: &Config) -> anyhow::Result<Vec<intents::Intent>> {
    intents::load_dir(&config.intents_dir(), &required_intents()).map_err(problems)
}

/// Intents the code relies on: every one with registered behaviour, and the catch-all.
pub fn required_intents() -> Vec<&'static str> {
    let mut ids: Vec<&str> = behaviours::BEHAVIOURS.iter().map(|b| b.intent).collect();
    ids.push(intents::OUT_OF_SCOPE);
    ids
}

/// Every `[message]` key some part of the bot uses: the core's, the typed errors' and each
/// transport's.
pub fn required_messages() -> Vec<&'static str> {
    let mut keys: Vec<&str> = behaviours::MESSAGES.to_vec();
    keys.extend(UserError::KEYS);
    keys.extend(queue::MESSAGES);
    for t in crate::transports::REGISTRY {
        keys.extend(t.messages);
    }
    keys.extend(crate::transports::card::MESSAGES);
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Loads the content for `intents` and the classifier saved for them (`understanding.model_path`),
/// training it when the saved one is missing or stale.
pub fn engine_for(config: &Config, intents: &[intents::Intent]) -> anyhow::Result<Engine> {
    let (rules, content) = rules_and_content(config, intents)?;
    let (classifier, source) = crate::understanding::model::load_or_train(
        intents,
        &content.lexicon,
        &config.data_dir(),
        &config.model_path(),
    );
    tracing::debug!(?source, "classifier");
    Ok(Engine::with_classifier(rules, intents, content, classifier))
}

/// Like `engine_for`, always training and never touching the model file: for cross-validation,
/// whose folds are not the intents the file is for.
pub fn engine_trained_for(config: &Config, intents: &[intents::Intent]) -> anyhow::Result<Engine> {
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
    Ok((rules, load_content(config, intents)?))
}

/// `data/` checked against the intents, the behaviours' variants and every required message.
pub fn load_content(config: &Config, intents: &[intents::Intent]) -> anyhow::Result<Content> {
    let ids: Vec<&str> = intents.iter().map(|i| i.id.as_str()).collect();
    Content::load(
        &config.data_dir(),
        &ids,
        &behaviours::variants(),
        &required_messages(),
        behaviours::CHOICES,
    )
    .map_err(problems)
}

fn problems(list: Vec<intents::FileProblem>) -> anyhow::Error {
    let lines: Vec<String> = list.iter().map(ToString::to_string).collect();
    anyhow::anyhow!(
        "{}\n(run `esrbot check` for the full list)",
        lines.join("\n")
    )
}

/// Starts what every running bot needs besides its transports: the job dispatcher of `lanes` plus
/// the shared lanes of every registered transport, and the mail sender when `[mail]` is set.
pub fn start_common(
    tasks: &mut tasks::Tasks,
    config: &Config,
    svc: &Arc<Service>,
    clock: &Arc<dyn crate::clock::Clock>,
) -> anyhow::Result<()> {
    tasks.spawn(
        "the job dispatcher",
        jobs::run(
            svc.clone(),
            clock.clone(),
            crate::transports::shared_lanes(),
            std::time::Duration::from_secs(config.reminders.poll_seconds.into()),
            tasks.stopped(),
        ),
    );
    if let Some(mail) = crate::transports::mail::sender(config, svc, clock, tasks.stopped())? {
        tasks.spawn("the mail sender", mail);
    }
    tasks.spawn(
        "the analytics flush",
        analytics::run(svc.clone(), clock.clone(), tasks.stopped()),
    );
    Ok(())
}

/// Reference format for escalations: short enough to read out on the phone.
pub fn reference(n: u64) -> String {
    format!("ESC-{n:05}")
}

impl Service {
    pub fn new(engine: Arc<Engine>, store: Store, routing: Routing) -> Service {
        Service {
            engine: ArcSwap::new(engine),
            store,
            routing,
            health: health::Health::default(),
            job_wakers: Mutex::new(Vec::new()),
            outbox_wakers: Mutex::new(Vec::new()),
            accounts_policy: accounts::Policy::default(),
            analytics: analytics::Settings::default(),
            tally: analytics::Tally::default(),
            reserved: Mutex::default(),
        }
    }

    /// The service on the configured database, routed as the registered transports say.
    pub fn open(engine: Arc<Engine>, config: &Config) -> anyhow::Result<Service> {
        let store = Store::open(&config.storage_path())?;
        let mut svc = Service::new(engine, store, crate::transports::routing(config));
        svc.configure(config);
        Ok(svc)
    }

    /// Takes the accounts' and analytics' settings from `config`.
    pub fn configure(&mut self, config: &Config) {
        self.accounts_policy = accounts::Policy::from_config(config);
        self.analytics = analytics::Settings {
            keep_declined: config.analytics.keep_declined,
        };
    }

    /// The support team's accounts and sessions on this service's database.
    pub fn accounts(&self) -> accounts::Accounts<'_> {
        accounts::Accounts::new(&self.store, self.accounts_policy.clone())
    }

    /// Writes the analytics counts held in memory (see `analytics`), and lets expired kept
    /// messages go.
    pub fn flush_analytics(&self, now: DateTime<Utc>) -> anyhow::Result<()> {
        analytics::flush(&self.store, &self.tally, now)
    }

    /// The analytics report for local days `from..=to`, with every count made so far.
    pub fn analytics_report(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<analytics::Report> {
        self.flush_analytics(now)?;
        analytics::report(&self.store, self.engine().rules.tz, from, to)
    }

    /// The kept messages the bot could not place (none unless `keep_declined` was on), oldest
    /// first, each with the id to mark it by.
    pub fn declined(
        &self,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(String, analytics::Declined)>> {
        analytics::declined(&self.store, now)
    }

    /// Marks a kept message "should have been INTENT" (a known intent id) or "rightly
    /// declined", as `by` (the signed-in account).
    pub fn mark_declined(
        &self,
        id: &str,
        verdict: analytics::Verdict,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), analytics::MarkError> {
        let engine = self.engine();
        analytics::mark(
            &self.store,
            id,
            verdict,
            by,
            engine.classifier().intent_ids(),
            now,
        )
    }

    /// The engine in force now.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// Puts `engine` in force (a content reload); messages being handled finish on the old one.
    pub fn replace_engine(&self, engine: Arc<Engine>) {
        self.engine.store(engine);
    }

    /// The lane `who`'s jobs and messages go to.
    pub fn lane(&self, who: &Recipient) -> String {
        self.routing.lane(who)
    }

    /// Registers a job dispatcher's wake-up call.
    pub fn register_jobs(&self, waker: Arc<Waker>) {
        if let Ok(mut w) = self.job_wakers.lock() {
            w.push(waker);
        }
    }

    /// Registers an outbox runner's wake-up call.
    pub fn register_outbox(&self, waker: Arc<Waker>) {
        if let Ok(mut w) = self.outbox_wakers.lock() {
            w.push(waker);
        }
    }

    /// Wakes every job dispatcher and outbox runner of this process to look again now: after a
    /// test moved its clock, or an operator's signal.
    pub fn nudge(&self) {
        for wakers in [&self.job_wakers, &self.outbox_wakers] {
            if let Ok(wakers) = wakers.lock() {
                for w in wakers.iter() {
                    w.notify.notify_one();
                }
            }
        }
    }

    /// The escalation number for a message whose snapshot shows `peek` as the next (see
    /// `Reserved`).
    fn reserve(&self, peek: u64) -> Reservation<'_> {
        let mut r = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        let number = if r.holders == 0 {
            peek
        } else {
            r.next.max(peek)
        };
        r.next = number + 1;
        r.holders += 1;
        Reservation {
            number,
            of: &self.reserved,
        }
    }

    /// Runs `f` in one write transaction, then wakes whoever delivers what it added.
    pub fn write<R>(
        &self,
        f: impl FnOnce(&Service, &mut Txn, &mut Added) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let mut added = Added::default();
        let out = self.store.write(|txn| f(self, txn, &mut added))?;
        self.wake(&added);
        Ok(out)
    }

    /// Like `write`, for the message path: commits together with the other messages being
    /// handled meanwhile (`Store::write_grouped`), and returns only once this message's changes are
    /// durable. `f` may run more than once, in a new transaction each time.
    fn write_message<R: Send>(
        &self,
        mut f: impl FnMut(&Service, &mut Txn, &mut Added) -> anyhow::Result<R> + Send,
    ) -> anyhow::Result<R> {
        let (out, added) = self.store.write_grouped(|txn| {
            let mut added = Added::default();
            let out = f(self, txn, &mut added)?;
            Ok((out, added))
        })?;
        self.wake(&added);
        Ok(out)
    }

    fn wake(&self, added: &Added) {
        for (wakers, list) in [
            (&self.job_wakers, &added.jobs),
            (&self.outbox_wakers, &added.outbox),
        ] {
            if list.is_empty() {
                continue;
            }
            if let Ok(wakers) = wakers.lock() {
                for w in wakers.iter() {
                    for (lane, due) in list {
                        w.arrived(lane, *due);
                    }
                }
            }
        }
    }

    /// Queues `entry` for delivery, due at `due`, inside the caller's transaction.
    /// Queues the e-mail to the training mailbox about escalation `reference`, due at `due`.
    pub(crate) fn queue_training_mail(
        &self,
        txn: &mut Txn,
        added: &mut Added,
        reference: &str,
        now: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mail = Outgoing::new(
            Recipient::training_mailbox(),
            Item::EscalationMail {
                reference: reference.to_string(),
            },
            now,
        );
        self.enqueue(txn, added, &mail, due)
    }

    pub fn enqueue(
        &self,
        txn: &mut Txn,
        added: &mut Added,
        entry: &Outgoing,
        due: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let lane = self.lane(&entry.to);
        txn.enqueue(&lane, entry, due)?;
        added.outbox.push((lane, due.timestamp_millis()));
        Ok(())
    }

    /// Queues a message to `to`, due now.
    pub fn tell(
        &self,
        txn: &mut Txn,
        added: &mut Added,
        to: &Recipient,
        text: String,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let entry = Outgoing::message(to.clone(), crate::core::records::Message::text(text), now);
        self.enqueue(txn, added, &entry, now)
    }

    /// Queues an update of the escalation's card for the support team, when its home shows cards.
    pub fn card_update(
        &self,
        txn: &mut Txn,
        added: &mut Added,
        reference: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if !self.routing.support_cards {
            return Ok(());
        }
        let entry = Outgoing::new(
            Recipient::support_team(),
            Item::EscalationCard {
                reference: reference.to_string(),
            },
            now,
        );
        self.enqueue(txn, added, &entry, now)
    }

    /// What a person reads for an outbox entry: its message, or a reminder worded now from the
    /// content in force (None for cards and e-mail, which their transports render).
    pub fn message_of(&self, entry: &Outgoing) -> Option<crate::core::records::Message> {
        match &entry.item {
            Item::Message(m) => Some(m.clone()),
            Item::Reminder { kind, at } => Some(crate::core::records::Message::text(
                self.engine().reminder_text(*kind, *at, entry.queued_at),
            )),
            Item::EscalationCard { .. } | Item::EscalationMail { .. } => None,
        }
    }

    /// Answers one message from `who`; everything it changes is committed before the reply is
    /// returned, so a reply the person saw is never forgotten.
    pub fn handle(
        &self,
        who: impl Into<Recipient>,
        display_name: Option<&str>,
        text: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Reply> {
        let who = who.into();
        let started = std::time::Instant::now();
        // Most messages (questions about the guide) change nothing: decide on a snapshot first and
        // only open a write transaction when there is something to write.
        let engine = self.engine();
        let (before, peek) = self.store.user_and_next_id(&who, "escalation")?;
        // Decided on what the transaction would read: the state with the display name applied.
        // The name is read only into an escalation's record, so a message that changes nothing
        // else is answered the same with or without it, and the name is kept only with a change.
        let mut input = before;
        if let Some(name) = display_name {
            input.display_name = Some(name.to_string());
        }
        let mut state = input.clone();
        let mut d = engine.handle(&who, &mut state, text, now, &reference(peek));
        let mut peek = peek;
        let _promised = if d.escalation.is_some() {
            let promised = self.reserve(peek);
            if promised.number != peek {
                peek = promised.number;
                state = input.clone();
                d = engine.handle(&who, &mut state, text, now, &reference(peek));
            }
            Some(promised)
        } else {
            None
        };
        let outcome = crate::metrics::outcome(&d, &state);
        let keep = self.analytics.keep_declined && analytics::is_kept(&d, outcome);
        let (reply, outcome) = if state == input && d.changes_nothing_else() && !keep {
            // Counted in memory: the fast path stays free of writes (see `analytics`).
            self.tally.add(analytics::message_keys(
                &input,
                &d,
                outcome,
                now,
                engine.rules.tz,
            ));
            (d.reply, outcome)
        } else {
            // The engine is a pure function of its inputs, so when the transaction reads what
            // this snapshot did (nothing was written for this person meanwhile) the decision made
            // here, outside it, is the one it would make: messages are decided in parallel, and
            // only their writes wait for the single writer.
            let early = Early {
                input,
                peek,
                state,
                decision: d,
            };
            self.write_message(|svc, txn, added| {
                svc.decide_in(
                    &engine,
                    txn,
                    added,
                    &who,
                    display_name,
                    text,
                    now,
                    Some(&early),
                )
            })?
        };
        crate::metrics::message(who.channel(), outcome, started.elapsed());
        Ok(reply)
    }

    /// Handles a transport event at most once, however often it is delivered: the event id, the
    /// state change and whatever `deliver` queues (the reply) are one transaction. Returns None
    /// for a duplicate. `deliver` may run more than once (only the committed run counts): it
    /// must only write to the transaction it is given.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_once(
        &self,
        event: &str,
        who: &Recipient,
        display_name: Option<&str>,
        text: &str,
        now: DateTime<Utc>,
        mut deliver: impl FnMut(&Service, &mut Txn, &mut Added, &Reply) -> anyhow::Result<()> + Send,
    ) -> anyhow::Result<Option<Reply>> {
        let started = std::time::Instant::now();
        let handled = self.write_message(|svc, txn, added| {
            if !txn.first_sighting(event, now)? {
                return Ok(None);
            }
            let (reply, outcome) = svc.decide_in(
                &svc.engine(),
                txn,
                added,
                who,
                display_name,
                text,
                now,
                None,
            )?;
            deliver(svc, txn, added, &reply)?;
            Ok(Some((reply, outcome)))
        })?;
        Ok(handled.map(|(reply, outcome)| {
            crate::metrics::message(who.channel(), outcome, started.elapsed());
            reply
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_in(
        &self,
        engine: &Engine,
        txn: &mut Txn,
        added: &mut Added,
        who: &Recipient,
        display_name: Option<&str>,
        text: &str,
        now: DateTime<Utc>,
        early: Option<&Early>,
    ) -> anyhow::Result<(Reply, &'static str)> {
        let mut state = txn.user(who)?;
        if let Some(name) = display_name {
            state.display_name = Some(name.to_string());
        }
        let tz = engine.rules.tz;
        if let Some(e) = early
            && e.holds_for(&state, || txn.peek_id("escalation"))?
        {
            self.commit_decision(txn, added, who, &e.state, &e.decision, now)?;
            let outcome = crate::metrics::outcome(&e.decision, &e.state);
            self.count_in(txn, &e.input, &e.decision, outcome, text, now, tz)?;
            return Ok((e.decision.reply.clone(), outcome));
        }
        let peek = txn.peek_id("escalation")?;
        let before = state.clone();
        let d = engine.handle(who, &mut state, text, now, &reference(peek));
        self.commit_decision(txn, added, who, &state, &d, now)?;
        let outcome = crate::metrics::outcome(&d, &state);
        self.count_in(txn, &before, &d, outcome, text, now, tz)?;
        Ok((d.reply, outcome))
    }

    /// Counts a decision in its own transaction, and keeps the message's text when it was not
    /// placed and `keep_declined` is on.
    #[allow(clippy::too_many_arguments)]
    fn count_in(
        &self,
        txn: &mut Txn,
        before: &UserState,
        d: &Decision,
        outcome: &str,
        text: &str,
        now: DateTime<Utc>,
        tz: chrono_tz::Tz,
    ) -> anyhow::Result<()> {
        let keys = analytics::message_keys(before, d, outcome, now, tz);
        txn.count(keys.iter().map(|k| (k.as_slice(), 1)));
        if self.analytics.keep_declined && analytics::is_kept(d, outcome) {
            analytics::keep(txn, text, d, outcome, now)?;
        }
        Ok(())
    }

    fn commit_decision(
        &self,
        txn: &mut Txn,
        added: &mut Added,
        who: &Recipient,
        state: &UserState,
        d: &Decision,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let lane = self.lane(who);
        for j in &d.cancel {
            txn.cancel(&lane, who, *j)?;
        }
        for job in &d.schedule {
            txn.schedule(&lane, job)?;
            added.jobs.push((lane.clone(), job.due.timestamp_millis()));
        }
        if let Some(e) = &d.escalation {
            let n = txn.next_id("escalation")?;
            anyhow::ensure!(
                reference(n) == e.reference,
                "escalation reference changed under us"
            );
            txn.put_escalation(e)?;
            // The e-mail is queued in the same transaction as the escalation: neither exists
            // without the other, whatever happens next.
            // An e-mail change accepted before the address was given waits for the address.
            if e.kind == EscalationKind::EmailChanged && e.new_address.is_some() {
                self.queue_training_mail(txn, added, &e.reference, now, e.created_at)?;
            }
            self.card_update(txn, added, &e.reference, now)?;
        }
        // What the person added to a hand-over goes on its record (never their words).
        let u = &d.escalation_update;
        if let Some(reference) = &u.reference
            && let Some(mut e) = txn.escalation(reference)?
        {
            if u.problem.is_some() {
                e.problem.clone_from(&u.problem);
            }
            if u.contact.is_some() {
                e.contact.clone_from(&u.contact);
            }
            e.volunteered.merge(&u.volunteered);
            let address_now = e.kind == EscalationKind::EmailChanged
                && e.new_address.is_none()
                && u.new_address.is_some();
            if address_now {
                e.new_address.clone_from(&u.new_address);
            }
            txn.put_escalation(&e)?;
            if address_now {
                self.queue_training_mail(txn, added, &e.reference, now, now)?;
            }
            self.card_update(txn, added, reference, now)?;
        }
        txn.put_user(who, state)
    }

    /// Erases everything stored about `who` (state, jobs, escalations and what is queued for
    /// them). Returns how many escalations were removed. The support team's cards of the erased
    /// escalations are rewritten to say so (they showed the person's name and address).
    pub fn forget(&self, who: &Recipient, now: DateTime<Utc>) -> anyhow::Result<usize> {
        self.write(|svc, txn, added| {
            let refs = txn.erase_user(who, &svc.lane(who))?;
            for reference in &refs {
                // Their e-mail to the training mailbox goes too, if it was still waiting.
                txn.outbox_remove_where(
                    MAIL_LANE,
                    |o| matches!(&o.item, Item::EscalationMail { reference: r } if r == reference),
                )?;
                svc.card_update(txn, added, reference, now)?;
            }
            Ok(refs.len())
        })
    }

    /// Runs `lane`'s jobs due by `now` (at most `limit`), queueing what they say; see
    /// `jobs::run_due`.
    pub fn deliver_due_in(
        &self,
        lane: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<crate::core::records::Reminder>> {
        jobs::run_due(self, &[lane.to_string()], now, limit)
    }
}

/// Forgets handled transport event ids after a day (duplicates arrive within minutes), once an
/// hour: for every transport that records them.
pub async fn forget_old_events(
    svc: Arc<Service>,
    clock: Arc<dyn crate::clock::Clock>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (s, now) = (svc.clone(), clock.now());
        tokio::task::spawn_blocking(move || {
            s.store
                .write(|txn| txn.forget_events_before(now - chrono::Duration::days(1)))
        })
        .await??;
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = &mut shutdown => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::tests::engine;

    /// Conversations that reach most of what the engine decides, escalations included.
    const TALKS: &[&[&str]] = &[
        &[
            "locked out of esr",
            "how long till i can get back in",
            "thanks",
        ],
        &["my reset link expired", "i requested a reset at 9am", "yes"],
        &[
            "my nhs.net email address has changed",
            "yes",
            "its jane.bloggs2@nhs.net",
        ],
        &[
            "cant log in to esr",
            "can i speak to someone",
            "it says invalid",
            "07700 900123",
        ],
        &["what is a payslip", "no", "still no", "yes"],
    ];

    /// `Early::holds_for` relies on this: a message that records no escalation is decided the
    /// same whatever the next escalation number.
    #[test]
    fn only_an_escalation_depends_on_the_next_reference() {
        let e = engine();
        let now: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let who = Recipient::new("discord", "1");
        let mut escalations = 0;
        for talk in TALKS {
            let (mut a, mut b) = (UserState::default(), UserState::default());
            for text in *talk {
                let da = e.handle(&who, &mut a, text, now, "ESC-00001");
                let db = e.handle(&who, &mut b, text, now, "ESC-00777");
                if da.escalation.is_some() {
                    escalations += 1;
                    assert!(db.escalation.is_some(), "{text:?}");
                    // Carry on from the same state.
                    b = a.clone();
                    continue;
                }
                assert_eq!(format!("{da:?}"), format!("{db:?}"), "{text:?}");
                assert_eq!(a, b, "{text:?}");
            }
        }
        assert!(
            escalations >= 2,
            "the talks made escalations: {escalations}"
        );
    }

    /// `Service::handle` relies on this: the display name changes nothing but the record of an
    /// escalation, so a message is answered the same with or without it.
    #[test]
    fn the_display_name_is_read_only_into_an_escalation() {
        let e = engine();
        let now: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let who = Recipient::new("discord", "1");
        for talk in TALKS {
            let mut a = UserState::default();
            let mut b = UserState {
                display_name: Some("Ann".into()),
                ..UserState::default()
            };
            for text in *talk {
                let da = e.handle(&who, &mut a, text, now, "ESC-00001");
                let mut db = e.handle(&who, &mut b, text, now, "ESC-00001");
                if let Some(esc) = &mut db.escalation {
                    assert_eq!(esc.display_name.as_deref(), Some("Ann"));
                    esc.display_name = None;
                }
                assert_eq!(format!("{da:?}"), format!("{db:?}"), "{text:?}");
                let unnamed = UserState {
                    display_name: None,
                    ..b.clone()
                };
                assert_eq!(a, unnamed, "{text:?}");
            }
        }
    }

    /// Escalation numbers promised outside the transaction (`Reserved`) never reach a record or
    /// a reply unchecked: people asking for a person at the same moment each get their own
    /// reference, with no gaps, and the one their reply names.
    #[test]
    fn people_asking_for_a_person_at_once_each_get_their_own_reference() {
        let dir = tempfile::tempdir().unwrap();
        let svc = Arc::new(Service::new(
            engine(),
            Store::open(&dir.path().join("s.redb")).unwrap(),
            Routing::default(),
        ));
        let now: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let workers: Vec<_> = (0..24)
            .map(|n| {
                let svc = svc.clone();
                std::thread::spawn(move || {
                    let who = Recipient::new("discord", &format!("9{n:03}"));
                    let reply = svc
                        .handle(who.clone(), Some("Staff"), "can i speak to someone", now)
                        .unwrap();
                    (who, reply.text)
                })
            })
            .collect();
        let replies: Vec<(Recipient, String)> =
            workers.into_iter().map(|w| w.join().unwrap()).collect();
        let escalations = svc.store.escalations().unwrap();
        let mut refs: Vec<String> = escalations.iter().map(|e| e.reference.clone()).collect();
        refs.sort();
        let expected: Vec<String> = (1..=24).map(reference).collect();
        assert_eq!(refs, expected);
        for (who, text) in replies {
            let mine = escalations.iter().find(|e| e.user == who).unwrap();
            assert!(text.contains(&mine.reference), "{who:?}: {text}");
        }
        // Nothing is promised once everyone is answered: the next starts from the counter.
        assert_eq!(svc.reserve(25).number, 25);
    }

    #[test]
    fn many_people_at_once_all_get_their_replies_and_all_is_there_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let svc = Arc::new(Service::new(
            engine(),
            Store::open(&path).unwrap(),
            Routing::default(),
        ));
        let now: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let (threads, each) = (8, 10);
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let svc = svc.clone();
                std::thread::spawn(move || {
                    for k in 0..each {
                        let who = Recipient::new("discord", &format!("{t}{k:03}"));
                        let r = svc
                            .handle(who, Some("Staff"), "locked out of esr", now)
                            .unwrap();
                        assert!(!r.text.is_empty());
                    }
                    // Every thread is handed the same transport event: it is handled once.
                    svc.handle_once(
                        "discord:message:1",
                        &Recipient::new("discord", "shared"),
                        None,
                        "my reset link expired",
                        now,
                        |_, _, _, _| Ok(()),
                    )
                    .unwrap()
                    .is_some()
                })
            })
            .collect();
        let handled = workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .filter(|first| *first)
            .count();
        assert_eq!(handled, 1, "a duplicate event is handled once");
        drop(svc);
        let store = Store::open(&path).unwrap();
        for t in 0..threads {
            for k in 0..each {
                let state = store
                    .user(&Recipient::new("discord", &format!("{t}{k:03}")))
                    .unwrap();
                assert!(state.locked_until.is_some(), "{t}/{k}: {state:?}");
            }
        }
        let shared = store.user(&Recipient::new("discord", "shared")).unwrap();
        assert_eq!(
            store.job_count().unwrap(),
            (threads * each + shared.jobs.len()) as u64,
            "one lock end each, and the shared event's jobs once"
        );
    }

    #[test]
    fn lanes_are_per_person_on_the_terminal_and_per_channel_elsewhere() {
        let r = Routing {
            per_recipient: vec!["chat".into()],
            support_cards: false,
        };
        assert_eq!(r.lane(&"chat:ann".into()), "chat:ann");
        assert_eq!(r.lane(&"discord:42".into()), "discord");
        assert_eq!(r.lane(&Recipient::support_team()), SUPPORT_LANE);
        assert_eq!(r.lane(&Recipient::training_mailbox()), MAIL_LANE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleeping_task_is_woken_only_by_earlier_work_in_its_lanes() {
        let w = Waker::new(vec!["discord".into()]);
        w.set_next(DateTime::from_timestamp_millis(1_000));
        w.arrived("discord", 5_000);
        w.arrived("chat:ann", 10);
        let woken = tokio::time::timeout(std::time::Duration::from_millis(10), w.notified()).await;
        assert!(
            woken.is_err(),
            "later work or another lane's does not wake it"
        );
        w.arrived("discord", 500);
        tokio::time::timeout(std::time::Duration::from_millis(10), w.notified())
            .await
            .expect("earlier work wakes it");
    }
}
