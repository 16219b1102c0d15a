//! All persistent state, behind one module: the redb tables, what their keys and values are, and
//! the one-transaction-per-change rule. Whatever must survive a crash (a user's state, the
//! reminders it implies, an escalation) is written in a single write transaction, so a `kill -9`
//! leaves either all of a change or none of it.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use redb::{
    ConcurrencyMode, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::state::{
    Audience, Escalation, MailJob, OutboxEntry, Outgoing, Reminder, ReminderKind, ReminderRef,
    UserState,
};

/// The tables whose values are JSON records keyed by text.
type JsonTable = TableDefinition<'static, &'static str, &'static [u8]>;

/// user id (transport-qualified, e.g. "chat:alice") → JSON `UserState`.
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// (due time in Unix ms, reminder id) → JSON `Reminder`. Ordered by time: the dispatcher reads
/// from the front, so finding due work is a range scan, not a full scan.
const REMINDERS: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("reminders");
/// escalation reference (e.g. "ESC-00042") → JSON `Escalation`.
const ESCALATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("escalations");
/// escalation reference → JSON `MailJob`: the durable e-mail outbox. Written in the same
/// transaction as the escalation it belongs to.
const MAIL: TableDefinition<&str, &[u8]> = TableDefinition::new("mail_outbox");
/// (due time in Unix ms, id) → JSON `OutboxEntry`: chat messages waiting to be sent (Discord
/// DMs, channel posts, support-channel updates), written in the transaction that decided them.
const CHAT_OUT: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("chat_outbox");
/// transport event id (a Discord message or interaction id) → when it was handled (Unix ms):
/// the same event delivered twice is handled once.
const SEEN: TableDefinition<&str, i64> = TableDefinition::new("seen_events");
/// escalation reference → id of its message in the support channel (to edit as it changes).
const SUPPORT_POSTS: TableDefinition<&str, u64> = TableDefinition::new("support_posts");
/// counter name → last value handed out (ids for reminders and escalation references).
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database file. Several processes may open it at once: the running
    /// bot and an administrator's `esrbot escalations …` command. redb's multi-writer mode lets one
    /// write transaction run at a time across them, so neither corrupts nor blocks the other for
    /// longer than one short transaction.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the folder {}", dir.display()))?;
        }
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        let store = Store { db };
        store.write(|txn| {
            // Create every table up front so read transactions never meet a missing table.
            txn.w.open_table(USERS)?;
            txn.w.open_table(REMINDERS)?;
            txn.w.open_table(ESCALATIONS)?;
            txn.w.open_table(COUNTERS)?;
            txn.w.open_table(MAIL)?;
            txn.w.open_table(CHAT_OUT)?;
            txn.w.open_table(SEEN)?;
            txn.w.open_table(SUPPORT_POSTS)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// One JSON record from a table keyed by text, as last committed.
    fn read_one<T: DeserializeOwned>(
        &self,
        table: JsonTable,
        key: &str,
    ) -> anyhow::Result<Option<T>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(table)?;
        t.get(key)?.map(|v| decode(v.value())).transpose()
    }

    /// Every JSON record of a table keyed by text, in key order.
    fn read_all<T: DeserializeOwned>(&self, table: JsonTable) -> anyhow::Result<Vec<T>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(table)?;
        t.iter()?.map(|row| decode(row?.1.value())).collect()
    }

    /// Runs `f` in one write transaction and commits it durably; on error nothing is written.
    pub fn write<R>(&self, f: impl FnOnce(&mut Txn) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let w = self.db.begin_write().context("begin write transaction")?;
        let mut txn = Txn { w };
        let out = f(&mut txn)?;
        txn.w.commit().context("commit")?;
        Ok(out)
    }

    /// A user's state as last committed (default when unknown).
    pub fn user(&self, user: &str) -> anyhow::Result<UserState> {
        Ok(self.read_one(USERS, user)?.unwrap_or_default())
    }

    /// A user's state and the value a counter would hand out next, from one snapshot.
    pub fn user_and_next_id(&self, user: &str, counter: &str) -> anyhow::Result<(UserState, u64)> {
        let r = self.db.begin_read()?;
        let state = r
            .open_table(USERS)?
            .get(user)?
            .map(|v| decode(v.value()))
            .transpose()?
            .unwrap_or_default();
        Ok((state, next_value(&r.open_table(COUNTERS)?, counter)?))
    }

    /// When the earliest reminder falls due, if any.
    pub fn next_due(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        self.next_due_for(Audience::Everyone)
    }

    /// When the earliest reminder for `audience` falls due, if any. Another transport's
    /// reminders ahead of it are stepped over (one transport per database reads only the first).
    pub fn next_due_for(&self, audience: Audience) -> anyhow::Result<Option<DateTime<Utc>>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(REMINDERS)?;
        for row in t.iter()? {
            let (k, v) = row?;
            if audience != Audience::Everyone {
                let reminder: Reminder = decode(v.value())?;
                if !audience.includes(&reminder.user) {
                    continue;
                }
            }
            return Ok(DateTime::from_timestamp_millis(k.value().0));
        }
        Ok(None)
    }

    pub fn reminder_count(&self) -> anyhow::Result<u64> {
        let r = self.db.begin_read()?;
        Ok(r.open_table(REMINDERS)?.len()?)
    }

    pub fn escalation(&self, reference: &str) -> anyhow::Result<Option<Escalation>> {
        self.read_one(ESCALATIONS, reference)
    }

    /// Every escalation, oldest first.
    pub fn escalations(&self) -> anyhow::Result<Vec<Escalation>> {
        let mut all: Vec<Escalation> = self.read_all(ESCALATIONS)?;
        all.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then(a.reference.cmp(&b.reference))
        });
        Ok(all)
    }
}

impl Store {
    /// Every job in the e-mail outbox (the queue is small: one job per e-mail change).
    pub fn mail_jobs(&self) -> anyhow::Result<Vec<MailJob>> {
        self.read_all(MAIL)
    }

    pub fn mail_job(&self, reference: &str) -> anyhow::Result<Option<MailJob>> {
        self.read_one(MAIL, reference)
    }
}

impl Store {
    /// Outbox entries due by `now`, earliest first, with their keys.
    pub fn chat_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<((i64, u64), OutboxEntry)>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(CHAT_OUT)?;
        let mut out = Vec::new();
        for row in t.range(..=(now.timestamp_millis(), u64::MAX))? {
            let (k, v) = row?;
            out.push((k.value(), decode(v.value())?));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// When the earliest outbox entry is due.
    pub fn chat_next_due(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(CHAT_OUT)?;
        Ok(t.first()?
            .and_then(|(k, _)| DateTime::from_timestamp_millis(k.value().0)))
    }

    pub fn support_post(&self, reference: &str) -> anyhow::Result<Option<u64>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(SUPPORT_POSTS)?;
        Ok(t.get(reference)?.map(|v| v.value()))
    }
}

/// One open write transaction. Dropping it without `Store::write` finishing aborts it.
pub struct Txn {
    w: WriteTransaction,
}

impl Txn {
    /// One JSON record from a table keyed by text, as this transaction sees it.
    fn get<T: DeserializeOwned>(&self, table: JsonTable, key: &str) -> anyhow::Result<Option<T>> {
        let t = self.w.open_table(table)?;
        let v = t.get(key)?;
        v.map(|v| decode(v.value())).transpose()
    }

    pub fn user(&self, user: &str) -> anyhow::Result<UserState> {
        Ok(self.get(USERS, user)?.unwrap_or_default())
    }

    pub fn put_user(&mut self, user: &str, state: &UserState) -> anyhow::Result<()> {
        let mut t = self.w.open_table(USERS)?;
        if state.is_empty() {
            t.remove(user)?;
        } else {
            t.insert(user, encode(state)?.as_slice())?;
        }
        Ok(())
    }

    pub fn delete_user(&mut self, user: &str) -> anyhow::Result<()> {
        self.w.open_table(USERS)?.remove(user)?;
        Ok(())
    }

    /// Next value of a named counter (starts at 1).
    pub fn next_id(&mut self, counter: &str) -> anyhow::Result<u64> {
        let mut t = self.w.open_table(COUNTERS)?;
        let next = next_value(&t, counter)?;
        t.insert(counter, next)?;
        Ok(next)
    }

    /// Value the counter would hand out next, without taking it.
    pub fn peek_id(&self, counter: &str) -> anyhow::Result<u64> {
        next_value(&self.w.open_table(COUNTERS)?, counter)
    }

    pub fn schedule(&mut self, reminder: &Reminder) -> anyhow::Result<ReminderRef> {
        let id = self.next_id("reminder")?;
        let due_ms = reminder.due.timestamp_millis();
        self.w
            .open_table(REMINDERS)?
            .insert((due_ms, id), encode(reminder)?.as_slice())?;
        Ok(ReminderRef {
            due_ms,
            id,
            kind: reminder.kind,
        })
    }

    pub fn cancel(&mut self, r: &ReminderRef) -> anyhow::Result<()> {
        self.w.open_table(REMINDERS)?.remove((r.due_ms, r.id))?;
        Ok(())
    }

    /// Removes and returns up to `limit` of `audience`'s reminders due at or before `now`,
    /// earliest first. Other reminders stay for their own transport.
    pub fn take_due(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        audience: Audience,
    ) -> anyhow::Result<Vec<(ReminderRef, Reminder)>> {
        let mut t = self.w.open_table(REMINDERS)?;
        let mut out = Vec::new();
        for row in t.range(..=(now.timestamp_millis(), u64::MAX))? {
            if out.len() == limit {
                break;
            }
            let (k, v) = row?;
            let (due_ms, id) = k.value();
            let reminder: Reminder = decode(v.value())?;
            if audience.includes(&reminder.user) {
                let r = ReminderRef {
                    due_ms,
                    id,
                    kind: reminder.kind,
                };
                out.push((r, reminder));
            }
        }
        for (r, _) in &out {
            t.remove((r.due_ms, r.id))?;
        }
        Ok(out)
    }

    pub fn escalation(&self, reference: &str) -> anyhow::Result<Option<Escalation>> {
        self.get(ESCALATIONS, reference)
    }

    pub fn mail_job(&self, reference: &str) -> anyhow::Result<Option<MailJob>> {
        self.get(MAIL, reference)
    }

    pub fn put_mail_job(&mut self, job: &MailJob) -> anyhow::Result<()> {
        self.w
            .open_table(MAIL)?
            .insert(job.reference.as_str(), encode(job)?.as_slice())?;
        Ok(())
    }

    /// Queues a chat message for the transport, due now.
    pub fn send_later(&mut self, message: Outgoing, now: DateTime<Utc>) -> anyhow::Result<()> {
        let id = self.next_id("chat_out")?;
        let entry = OutboxEntry {
            message,
            attempts: 0,
            created_at: now,
            last_error: None,
        };
        self.w
            .open_table(CHAT_OUT)?
            .insert((now.timestamp_millis(), id), encode(&entry)?.as_slice())?;
        Ok(())
    }

    /// Removes an outbox entry (sent, or given up); re-queues it at `retry_at` if given.
    pub fn finish_outgoing(
        &mut self,
        key: (i64, u64),
        retry: Option<(DateTime<Utc>, &OutboxEntry)>,
    ) -> anyhow::Result<()> {
        let mut t = self.w.open_table(CHAT_OUT)?;
        t.remove(key)?;
        if let Some((at, entry)) = retry {
            t.insert((at.timestamp_millis(), key.1), encode(entry)?.as_slice())?;
        }
        Ok(())
    }

    /// Records an event id; false when it was already seen (the caller must not handle it again).
    pub fn first_sighting(&mut self, event: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let mut t = self.w.open_table(SEEN)?;
        if t.get(event)?.is_some() {
            return Ok(false);
        }
        t.insert(event, now.timestamp_millis())?;
        Ok(true)
    }

    /// Forgets event ids older than `before` (duplicates come within seconds or minutes).
    pub fn forget_events_before(&mut self, before: DateTime<Utc>) -> anyhow::Result<()> {
        let cutoff = before.timestamp_millis();
        self.w.open_table(SEEN)?.retain(|_, at| at >= cutoff)?;
        Ok(())
    }

    pub fn set_support_post(&mut self, reference: &str, message: u64) -> anyhow::Result<()> {
        self.w
            .open_table(SUPPORT_POSTS)?
            .insert(reference, message)?;
        Ok(())
    }

    /// Erases everything stored about `user`: state, reminders, escalations and their e-mail.
    /// Returns the references of the escalations removed.
    pub fn erase_user(&mut self, user: &str) -> anyhow::Result<Vec<String>> {
        let state = self.user(user)?;
        for r in &state.reminders {
            self.cancel(r)?;
        }
        self.delete_user(user)?;
        let mut refs = Vec::new();
        {
            let t = self.w.open_table(ESCALATIONS)?;
            for row in t.iter()? {
                let (k, v) = row?;
                let e: Escalation = decode(v.value())?;
                if e.user == user {
                    refs.push(k.value().to_string());
                }
            }
        }
        for r in &refs {
            self.w.open_table(ESCALATIONS)?.remove(r.as_str())?;
            self.w.open_table(MAIL)?.remove(r.as_str())?;
        }
        Ok(refs)
    }

    pub fn put_escalation(&mut self, e: &Escalation) -> anyhow::Result<()> {
        self.w
            .open_table(ESCALATIONS)?
            .insert(e.reference.as_str(), encode(e)?.as_slice())?;
        Ok(())
    }
}

/// The reminder kinds that belong to a reset link's timer.
/// The value `counter` hands out next (1 for a counter never used).
fn next_value(t: &impl ReadableTable<&'static str, u64>, counter: &str) -> anyhow::Result<u64> {
    Ok(t.get(counter)?.map_or(0, |v| v.value()) + 1)
}

pub fn is_link_reminder(kind: ReminderKind) -> bool {
    matches!(kind, ReminderKind::LinkWarning | ReminderKind::LinkExpired)
}

fn encode<T: Serialize>(v: &T) -> anyhow::Result<Vec<u8>> {
    serde_json::to_vec(v).context("encode record")
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(bytes).context("decode record")
}
