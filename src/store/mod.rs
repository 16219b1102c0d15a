//! All persistent state, behind one module: the redb tables, what their keys and values are, and
//! the one-transaction-per-change rule. Whatever must survive a crash (a person's state, the jobs
//! it implies, the messages it queues, an escalation) is written in a single write transaction,
//! so a `kill -9` leaves either all of a change or none of it.
//!
//! The job table and the outbox are time-ordered per *lane* (see `service::Routing`): a transport
//! finds and claims its own due work with a range read of its lanes and never reads another's.

mod group;
pub mod keys;
mod panic_guard;
mod support;

pub use support::Table;

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use redb::{
    ConcurrencyMode, Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;

use crate::core::records::{Escalation, Job, JobRef, Message, Outgoing, Recipient, UserState};

/// recipient (`keys::recipient`) → `UserState`.
const USERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("users");
/// (lane, due time, recipient, kind) (`keys::job`) → nothing: timed work, earliest first per lane.
const JOBS: TableDefinition<&[u8], ()> = TableDefinition::new("jobs");
/// (lane, due time, id) (`keys::outbox`) → `Outgoing`: messages, cards and e-mail waiting to be
/// handed to their transport, written in the transaction that decided them.
const OUTBOX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outbox");
/// escalation reference (e.g. "ESC-00042") → `Escalation`.
const ESCALATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("escalations");
/// transport event id ("discord:message:123") → when it was handled (Unix ms): the same event
/// delivered twice is handled once.
const SEEN: TableDefinition<&str, i64> = TableDefinition::new("seen_events");
/// A transport's own references ("discord:card:ESC-00001" → the message id to edit). Those about
/// one person are keyed "<recipient>#<what>" ("teams:29:1a#reference" → how to reach them) and
/// are erased with the person.
const TRANSPORT_REFS: TableDefinition<&str, &str> = TableDefinition::new("transport_refs");
/// (recipient, 0xFF, sequence number) → `keys::encode((Unix ms, Message))`: what the web chat has
/// delivered to one browser identity, shown on every visit until it is trimmed or forgotten.
const WEB_INBOX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("web_inbox");
/// counter name → last value handed out (escalation references, outbox ids).
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// "table/key in hex" → the bytes of a record that could not be decoded, set aside so that one
/// damaged record stops nothing else. Kept for an administrator to inspect.
const QUARANTINE: TableDefinition<&str, &[u8]> = TableDefinition::new("quarantine");

/// support account name → `service::accounts::Account`: its argon2id hash and flags.
const SUPPORT_ACCOUNTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("support_accounts");
/// BLAKE2s-256 of a session token → `service::accounts::Session`. The token itself is never kept.
const SUPPORT_SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("support_sessions");
/// (time in Unix ms, id), big-endian → `service::accounts::SignIn`: every sign-in attempt,
/// oldest first.
const SIGN_INS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sign_ins");
/// "account:NAME" or "address:IP" → the times (Unix ms) of its recent failed sign-ins.
const SIGN_IN_FAILURES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sign_in_failures");
/// (local day, kind, label) (`service::analytics::Key`) → a count. No text, no person.
const ANALYTICS: TableDefinition<&[u8], u64> = TableDefinition::new("analytics");
/// (time in Unix ms, id), big-endian → `service::analytics::Declined`: the text (secrets cut
/// out) of a declined message, only while `[analytics] keep_declined` is on; 30 days at most.
const DECLINED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("declined");

/// The database's page cache. redb's default (1 GiB) lets a large claim grow the process to that
/// size; the working set here is small.
const CACHE_BYTES: usize = 32 << 20;

pub struct Store {
    /// Dropped only while undamaged: closing a damaged file would write to it.
    db: ManuallyDrop<Db>,
    path: PathBuf,
    damaged: AtomicBool,
    /// The batch of messages committing together (`write_grouped`).
    group: group::Group,
    /// The message path's recent read snapshot (`read_recent`).
    recent: Mutex<Recent>,
}

/// A read snapshot shared by messages arriving close together, and the count of this handle's
/// commits, which each make it stale.
#[derive(Default)]
struct Recent {
    snapshot: Option<(Arc<ReadTransaction>, Instant)>,
    commits: u64,
}

/// How long the message path may reuse a read snapshot. Every commit through this handle ends it
/// at once, so a person always reads their own last message's changes; another process's commits
/// are seen at most this late.
const RECENT_FOR: Duration = Duration::from_millis(2);

/// The file opened for writing (the bot, an admin's action) or only for reading (listing, backups),
/// which leaves it byte for byte as it was.
enum Db {
    Writable(Database),
    ReadOnly(ReadOnlyDatabase),
}

impl Db {
    fn begin_read(&self) -> Result<ReadTransaction, redb::TransactionError> {
        match self {
            Db::Writable(db) => db.begin_read(),
            Db::ReadOnly(db) => db.begin_read(),
        }
    }

    fn begin_write(&self) -> anyhow::Result<WriteTransaction> {
        match self {
            Db::Writable(db) => Ok(db.begin_write()?),
            Db::ReadOnly(_) => anyhow::bail!("the database was opened only for reading"),
        }
    }
}

/// Set once any store met damage: the command's exit status says so even when it was found only
/// while closing the file.
static DAMAGE_SEEN: AtomicBool = AtomicBool::new(false);

/// Whether a store of this process met a damaged file.
pub fn damage_seen() -> bool {
    DAMAGE_SEEN.load(Ordering::Relaxed)
}

impl Drop for Store {
    fn drop(&mut self) {
        // No snapshot may outlive the database it reads.
        self.recent
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot = None;
        if self.is_damaged() {
            tracing::warn!(path = %self.path.display(), "the damaged database is left as it is");
            return;
        }
        // Closing commits redb's allocator state, which reads pages and can meet damage too.
        // SAFETY: `db` is dropped here once and never used again.
        let closed = panic_guard::catch(|| unsafe { ManuallyDrop::drop(&mut self.db) });
        if let Err(detail) = closed {
            DAMAGE_SEEN.store(true, Ordering::Relaxed);
            tracing::error!(path = %self.path.display(), detail, "the database is damaged (found while closing it)");
            eprintln!("{}", damage_message(&self.path));
        }
    }
}

/// What follows a claimed job, for `Txn::claim_due` to write: jobs it replaces, the next jobs
/// of its timer, and an entry to queue for its recipient (all in the job's lane).
#[derive(Debug, Default)]
pub struct Claimed {
    pub cancel: Vec<JobRef>,
    pub schedule: Vec<Job>,
    pub send: Option<Outgoing>,
}

/// The key of an outbox entry.
pub type OutboxKey = Vec<u8>;

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
        // An empty file is a truncated database, not a new one: creating tables in it would hide
        // the loss. A missing file is created.
        if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            anyhow::bail!(
                "the database {} is an empty file: it may have been truncated. Restore it from a \
                 backup, or remove it to start afresh",
                path.display()
            );
        }
        if !path.exists() {
            Self::create_whole(path)?;
        }
        let store = Store {
            db: ManuallyDrop::new(Db::Writable(Self::create(path)?)),
            path: path.to_path_buf(),
            damaged: AtomicBool::new(false),
            group: group::Group::default(),
            recent: Mutex::default(),
        };
        // A file from before the compact format has the same table names with other key types:
        // redb refuses to open them, and the person running it must be told why. Tables are
        // created up front so read transactions never meet a missing one; a file that has them
        // all is only read, so opening a damaged file changes nothing in it.
        let have_all = store.read(|r| {
            Ok(r.open_table(USERS).is_ok()
                && r.open_table(JOBS).is_ok()
                && r.open_table(OUTBOX).is_ok()
                && r.open_table(ESCALATIONS).is_ok()
                && r.open_table(SEEN).is_ok()
                && r.open_table(TRANSPORT_REFS).is_ok()
                && r.open_table(COUNTERS).is_ok()
                && r.open_table(QUARANTINE).is_ok()
                && r.open_table(WEB_INBOX).is_ok()
                && support::TABLES.iter().all(|t| r.open_table(*t).is_ok())
                && r.open_table(ANALYTICS).is_ok())
        })?;
        if !have_all {
            store
                .write(|txn| {
                    txn.w.open_table(USERS)?;
                    txn.w.open_table(JOBS)?;
                    txn.w.open_table(OUTBOX)?;
                    txn.w.open_table(ESCALATIONS)?;
                    txn.w.open_table(SEEN)?;
                    txn.w.open_table(TRANSPORT_REFS)?;
                    txn.w.open_table(COUNTERS)?;
                    txn.w.open_table(QUARANTINE)?;
                    txn.w.open_table(WEB_INBOX)?;
                    for t in support::TABLES {
                        txn.w.open_table(t)?;
                    }
                    txn.w.open_table(ANALYTICS)?;
                    Ok(())
                })
                .map_err(|e| {
                    if store.is_damaged() {
                        return e;
                    }
                    e.context(format!(
                        "the database {} is not in this version's format (it may have been \
                         written by an earlier esrbot, whose records were JSON): keep it as a \
                         backup and point storage.path at a new file",
                        path.display()
                    ))
                })?;
        }
        Ok(store)
    }

    /// Opens an existing database only to read it: nothing in the file changes, not even on close.
    /// It sees the running bot's commits as they are made.
    pub fn open_read_only(path: &Path) -> anyhow::Result<Store> {
        if !path.exists() {
            anyhow::bail!("there is no database at {}", path.display());
        }
        let opened = panic_guard::catch(|| {
            Database::builder()
                .set_concurrency_mode(ConcurrencyMode::MultiWriter)
                .set_cache_size(CACHE_BYTES)
                .open_read_only(path)
        });
        let db = match opened {
            Ok(db) => db.with_context(|| format!("cannot open the database {}", path.display()))?,
            Err(detail) => {
                DAMAGE_SEEN.store(true, Ordering::Relaxed);
                anyhow::bail!("{} ({detail})", damage_message(path))
            }
        };
        Ok(Store {
            db: ManuallyDrop::new(Db::ReadOnly(db)),
            path: path.to_path_buf(),
            damaged: AtomicBool::new(false),
            group: group::Group::default(),
            recent: Mutex::default(),
        })
    }

    /// Makes a new database file that appears whole: it is initialised beside `path` and linked
    /// into place. Two processes starting at once on a new path (two terminals, or the bot and an
    /// administrator's command) then never see it empty, which reads as a truncated file. Where
    /// the file system has no hard links, redb initialises it in place as before.
    fn create_whole(path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".esrbot-new-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        drop(Self::create(tmp.path())?);
        match std::fs::hard_link(tmp.path(), path) {
            Ok(()) => {
                // The new name is durable before anything is committed under it.
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
                Ok(())
            }
            // Another process made it first: open theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "no hard link: the database is initialised in place");
                Ok(())
            }
        }
    }

    fn create(path: &Path) -> anyhow::Result<Database> {
        let opened = panic_guard::catch(|| {
            Database::builder()
                .set_concurrency_mode(ConcurrencyMode::MultiWriter)
                .set_cache_size(CACHE_BYTES)
                .create(path)
        });
        match opened {
            Ok(db) => db.with_context(|| format!("cannot open the database {}", path.display())),
            Err(detail) => {
                DAMAGE_SEEN.store(true, Ordering::Relaxed);
                anyhow::bail!("{} ({detail})", damage_message(path))
            }
        }
    }

    /// Runs `f` in one write transaction and commits it durably; on error nothing is written.
    pub fn write<R>(&self, f: impl FnOnce(&mut Txn) -> anyhow::Result<R>) -> anyhow::Result<R> {
        self.guarded(|| {
            let w = self.db.begin_write().context("begin write transaction")?;
            let mut txn = Txn::new(w);
            let out = f(&mut txn)?;
            self.commit(txn).context("commit")?;
            Ok(out)
        })
    }

    /// Runs `f` on one read transaction (a consistent snapshot).
    fn read<R>(&self, f: impl FnOnce(&ReadTransaction) -> anyhow::Result<R>) -> anyhow::Result<R> {
        self.guarded(|| f(&self.db.begin_read()?))
    }

    /// Like `read`, on a snapshot that may be shared with other messages of the last
    /// `RECENT_FOR` (none of this handle's commits since). Beginning a read transaction costs
    /// file locks and a header read in redb's multi-process mode, more than the read itself;
    /// the message path validates what it decided on the snapshot inside its write transaction.
    fn read_recent<R>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        self.guarded(|| {
            let (cached, commits) = {
                let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
                let fresh = recent
                    .snapshot
                    .as_ref()
                    .filter(|(_, taken)| taken.elapsed() < RECENT_FOR)
                    .map(|(txn, _)| txn.clone());
                (fresh, recent.commits)
            };
            let txn = match cached {
                Some(txn) => txn,
                None => {
                    let txn = Arc::new(self.db.begin_read()?);
                    let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
                    // Kept only if no commit ended between the two locks: it may predate it.
                    if recent.commits == commits {
                        recent.snapshot = Some((txn.clone(), Instant::now()));
                    }
                    txn
                }
            };
            f(&txn)
        })
    }

    /// Commits `txn` durably (with the analytics counts it gathered), timing it, and retires the
    /// shared recent snapshot it makes stale.
    fn commit(&self, txn: Txn) -> anyhow::Result<()> {
        let done = timed_commit(txn);
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.commits += 1;
        recent.snapshot = None;
        done
    }

    /// Whether a damaged page was met: from then on every call fails, and `/readyz` says so.
    pub fn is_damaged(&self) -> bool {
        self.damaged.load(Ordering::Relaxed)
    }

    /// Runs one call into redb, turning a panic into an error. redb raises some damage as a
    /// panic rather than an error (a zeroed page reaches `unreachable!()` in its b-tree cursor)
    /// and has no setting to stop that, so this is the storage boundary where it is caught. The
    /// store is marked damaged and refuses everything after: a half-read file is never written.
    fn guarded<R>(&self, f: impl FnOnce() -> anyhow::Result<R>) -> anyhow::Result<R> {
        if self.is_damaged() {
            anyhow::bail!("{}", damage_message(&self.path));
        }
        match panic_guard::catch(f) {
            Ok(out) => out,
            Err(detail) => {
                self.damaged.store(true, Ordering::Relaxed);
                DAMAGE_SEEN.store(true, Ordering::Relaxed);
                tracing::error!(path = %self.path.display(), detail, "the database is damaged");
                anyhow::bail!("{} ({detail})", damage_message(&self.path))
            }
        }
    }

    /// A person's state as last committed (default when unknown or undecodable).
    pub fn user(&self, who: &Recipient) -> anyhow::Result<UserState> {
        self.read(|r| {
            let t = r.open_table(USERS)?;
            let key = keys::recipient(who);
            Ok(t.get(key.as_slice())?
                .and_then(|v| decode_or_log("users", &key, v.value()))
                .unwrap_or_default())
        })
    }

    /// A person's state and the value a counter would hand out next, from one snapshot.
    pub fn user_and_next_id(
        &self,
        who: &Recipient,
        counter: &str,
    ) -> anyhow::Result<(UserState, u64)> {
        self.read_recent(|r| {
            let key = keys::recipient(who);
            let state = r
                .open_table(USERS)?
                .get(key.as_slice())?
                .and_then(|v| decode_or_log("users", &key, v.value()))
                .unwrap_or_default();
            Ok((state, next_value(&r.open_table(COUNTERS)?, counter)?))
        })
    }

    /// When the earliest job of `lane` falls due, if any: one lookup, whatever else is pending.
    pub fn next_job_due(&self, lane: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
        self.read(|r| first_due(&r.open_table(JOBS)?, lane))
    }

    /// Every pending job of `lane`, earliest first (for tools and tests).
    pub fn jobs(&self, lane: &str) -> anyhow::Result<Vec<Job>> {
        self.read(|r| {
            let t = r.open_table(JOBS)?;
            let (start, end) = keys::lane_all(lane);
            let mut out = Vec::new();
            for row in t.range(start.as_slice()..end.as_slice())? {
                if let Some(job) = keys::parse_job(row?.0.value()) {
                    out.push(job);
                }
            }
            Ok(out)
        })
    }

    pub fn job_count(&self) -> anyhow::Result<u64> {
        self.read(|r| Ok(r.open_table(JOBS)?.len()?))
    }

    pub fn escalation(&self, reference: &str) -> anyhow::Result<Option<Escalation>> {
        self.read(|r| {
            let t = r.open_table(ESCALATIONS)?;
            let key = reference.to_ascii_uppercase();
            Ok(t.get(key.as_str())?
                .and_then(|v| decode_or_log("escalations", key.as_bytes(), v.value())))
        })
    }

    /// Every escalation, oldest first.
    pub fn escalations(&self) -> anyhow::Result<Vec<Escalation>> {
        let mut all = self.read(|r| {
            let t = r.open_table(ESCALATIONS)?;
            let mut all = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                if let Some(e) =
                    decode_or_log::<Escalation>("escalations", k.value().as_bytes(), v.value())
                {
                    all.push(e);
                }
            }
            Ok(all)
        })?;
        all.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then(a.reference.cmp(&b.reference))
        });
        Ok(all)
    }

    /// Up to `limit` outbox entries of `lane` due by `now`, earliest first, with their keys.
    /// An entry that cannot be decoded is set aside (logged with its table and key) so that it
    /// holds up nothing else.
    pub fn outbox_due(
        &self,
        lane: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<(OutboxKey, Outgoing)>> {
        let (out, bad) = self.read(|r| {
            let t = r.open_table(OUTBOX)?;
            let (start, end) = keys::lane_until(lane, now.timestamp_millis());
            let mut out = Vec::new();
            let mut bad = Vec::new();
            for row in t.range(start.as_slice()..end.as_slice())? {
                let (k, v) = row?;
                match keys::decode::<Outgoing>(v.value()) {
                    Ok(o) => out.push((k.value().to_vec(), o)),
                    Err(e) => bad.push((k.value().to_vec(), v.value().to_vec(), e)),
                }
                if out.len() >= limit {
                    break;
                }
            }
            Ok((out, bad))
        })?;
        if !bad.is_empty() {
            self.write(|txn| {
                for (key, value, e) in &bad {
                    txn.quarantine("outbox", key, value, e)?;
                    txn.w.open_table(OUTBOX)?.remove(key.as_slice())?;
                }
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// When the earliest outbox entry of `lane` is due.
    pub fn outbox_next_due(&self, lane: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
        self.read(|r| first_due(&r.open_table(OUTBOX)?, lane))
    }

    /// Everything waiting in `lane`'s outbox, due or not, earliest first.
    pub fn outbox(&self, lane: &str) -> anyhow::Result<Vec<Outgoing>> {
        Ok(self
            .outbox_due(lane, DateTime::<Utc>::MAX_UTC, usize::MAX)?
            .into_iter()
            .map(|(_, o)| o)
            .collect())
    }

    /// What the web chat delivered to `who` after sequence number `after`, oldest first (at most
    /// `limit`). An entry that cannot be decoded is skipped (and logged).
    pub fn web_inbox(
        &self,
        who: &Recipient,
        after: u64,
        limit: usize,
    ) -> anyhow::Result<Vec<(u64, i64, Message)>> {
        self.read(|r| {
            let t = r.open_table(WEB_INBOX)?;
            let (start, end) = web_inbox_range(who, after.saturating_add(1));
            let mut out = Vec::new();
            for row in t.range(start.as_slice()..end.as_slice())? {
                let (k, v) = row?;
                let Some(seq) = web_inbox_seq(k.value()) else {
                    continue;
                };
                if let Some((at, m)) =
                    decode_or_log::<(i64, Message)>("web_inbox", k.value(), v.value())
                {
                    out.push((seq, at, m));
                }
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
    }

    pub fn transport_ref(&self, key: &str) -> anyhow::Result<Option<String>> {
        self.read(|r| {
            let t = r.open_table(TRANSPORT_REFS)?;
            Ok(t.get(key)?.map(|v| v.value().to_string()))
        })
    }

    /// How many entries wait in the outbox, by the channel part of their lane ("chat" for every
    /// terminal session's, "discord", "support", "mail"): the outbox depth metric.
    pub fn outbox_depths(&self) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        self.read(|r| {
            let mut depths = std::collections::BTreeMap::new();
            for row in r.open_table(OUTBOX)?.iter()? {
                let (k, _) = row?;
                let lane = keys::lane_of(k.value()).unwrap_or("?");
                let channel = lane.split(':').next().unwrap_or(lane);
                *depths.entry(channel.to_string()).or_insert(0) += 1;
            }
            Ok(depths)
        })
    }

    /// Writes a consistent copy of everything to `dest` while others keep writing: one read
    /// transaction is copied into a new file beside `dest`, which is made durable, renamed into
    /// place and reopened to check that it holds what was copied. Copying the file itself during
    /// writes would not be safe.
    pub fn backup_to(&self, dest: &Path) -> anyhow::Result<Counts> {
        let dir = match dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_path_buf(),
            None => PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{} is not a file name", dest.display()))?;
        if dest.is_dir() {
            anyhow::bail!(
                "{} is a folder; give the backup a file name",
                dest.display()
            );
        }
        let partial = dir.join(format!(".{}.partial", name.to_string_lossy()));
        let _ = std::fs::remove_file(&partial);
        let copied = self.read(|r| {
            let copy = Database::builder()
                .create(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?;
            let w = copy.begin_write()?;
            let counts = Counts {
                users: copy_table(r, &w, USERS)?,
                jobs: copy_table(r, &w, JOBS)?,
                outbox: copy_table(r, &w, OUTBOX)?,
                escalations: copy_table(r, &w, ESCALATIONS)?,
            };
            copy_table(r, &w, SEEN)?;
            copy_table(r, &w, TRANSPORT_REFS)?;
            copy_table(r, &w, COUNTERS)?;
            copy_table(r, &w, QUARANTINE)?;
            copy_table(r, &w, WEB_INBOX)?;
            for t in support::TABLES {
                copy_table(r, &w, t)?;
            }
            copy_table(r, &w, ANALYTICS)?;
            // A durable commit: the copy's pages are on disk before it is renamed.
            w.commit()?;
            Ok(counts)
        });
        let copied = match copied {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, dest)
            .with_context(|| format!("cannot move the backup into place at {}", dest.display()))?;
        // The rename itself must survive a crash.
        std::fs::File::open(&dir)?.sync_all()?;
        let check = Store::open_read_only(dest).context("reopening the backup")?;
        let found = check.counts()?;
        anyhow::ensure!(
            found == copied,
            "the backup at {} holds {found}, not the {copied} copied",
            dest.display()
        );
        Ok(found)
    }

    /// How many records the main tables hold.
    pub fn counts(&self) -> anyhow::Result<Counts> {
        self.read(|r| {
            Ok(Counts {
                users: r.open_table(USERS)?.len()?,
                jobs: r.open_table(JOBS)?.len()?,
                outbox: r.open_table(OUTBOX)?.len()?,
                escalations: r.open_table(ESCALATIONS)?.len()?,
            })
        })
    }

    /// redb's own integrity check of the whole file (`esrbot check --database`). redb repairs
    /// what it can (allocator state, an interrupted commit); Ok(false) says it had to.
    pub fn check_integrity(path: &Path) -> anyhow::Result<bool> {
        let checked = panic_guard::catch(|| -> anyhow::Result<bool> {
            let mut db = Database::builder()
                .set_concurrency_mode(ConcurrencyMode::MultiWriter)
                .set_cache_size(CACHE_BYTES)
                .open(path)?;
            Ok(db.check_integrity()?)
        });
        match checked {
            Ok(r) => r.with_context(|| format!("the database {} is damaged", path.display())),
            Err(detail) => anyhow::bail!("the database {} is damaged ({detail})", path.display()),
        }
    }

    /// The records set aside as undecodable: (table/key, size in bytes).
    pub fn quarantined(&self) -> anyhow::Result<Vec<(String, usize)>> {
        self.read(|r| {
            let t = r.open_table(QUARANTINE)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                out.push((k.value().to_string(), v.value().len()));
            }
            Ok(out)
        })
    }
}

/// Commits durably, recording how long the commit (its fsync) took.
fn timed_commit(mut txn: Txn) -> anyhow::Result<()> {
    txn.write_counts()?;
    let started = std::time::Instant::now();
    let done = txn.w.commit().map_err(anyhow::Error::from);
    metrics::histogram!(crate::metrics::COMMIT_SECONDS).record(started.elapsed());
    done
}

/// Record counts of the main tables (what `esrbot backup` prints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub users: u64,
    pub jobs: u64,
    pub escalations: u64,
    pub outbox: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} jobs, {} escalations, {} outbox entries",
            self.users, self.jobs, self.escalations, self.outbox
        )
    }
}

/// The web inbox keys of `who` from sequence number `from` on: the recipient, 0xFF (never in a
/// recipient key's text, which is UTF-8), then the number big-endian so they sort in order.
fn web_inbox_range(who: &Recipient, from: u64) -> (Vec<u8>, Vec<u8>) {
    let mut start = keys::recipient(who);
    start.push(0xFF);
    let mut end = start.clone();
    start.extend_from_slice(&from.to_be_bytes());
    end.extend_from_slice(&[0xFF; 9]);
    (start, end)
}

fn web_inbox_seq(key: &[u8]) -> Option<u64> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// Copies every row of `def` from a snapshot into a write transaction; returns how many.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> anyhow::Result<u64> {
    let source = from.open_table(def)?;
    let mut target = to.open_table(def)?;
    let mut n = 0;
    for row in source.iter()? {
        let (k, v) = row?;
        target.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

fn damage_message(path: &Path) -> String {
    format!(
        "the database {} is damaged; esrbot writes nothing more to it. Stop esrbot, keep the file \
         for investigation, and restore the latest backup (README: Backups and restore)",
        path.display()
    )
}

/// One open write transaction. Dropping it without `Store::write` finishing aborts it.
pub struct Txn {
    w: WriteTransaction,
    /// Analytics counts to add when it commits (`Txn::count`).
    counts: std::collections::BTreeMap<Vec<u8>, u64>,
}

impl Txn {
    fn new(w: WriteTransaction) -> Txn {
        Txn {
            w,
            counts: Default::default(),
        }
    }

    /// A person's state as this transaction sees it. A record that cannot be decoded is set
    /// aside and the person starts afresh.
    pub fn user(&mut self, who: &Recipient) -> anyhow::Result<UserState> {
        let key = keys::recipient(who);
        let raw = {
            let t = self.w.open_table(USERS)?;
            t.get(key.as_slice())?.map(|v| v.value().to_vec())
        };
        let Some(raw) = raw else {
            return Ok(UserState::default());
        };
        match keys::decode(&raw) {
            Ok(s) => Ok(s),
            Err(e) => {
                self.quarantine("users", &key, &raw, &e)?;
                self.w.open_table(USERS)?.remove(key.as_slice())?;
                Ok(UserState::default())
            }
        }
    }

    pub fn put_user(&mut self, who: &Recipient, state: &UserState) -> anyhow::Result<()> {
        let mut t = self.w.open_table(USERS)?;
        let key = keys::recipient(who);
        if state.is_empty() {
            t.remove(key.as_slice())?;
        } else {
            t.insert(key.as_slice(), keys::encode(state)?.as_slice())?;
        }
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

    pub fn schedule(&mut self, lane: &str, job: &Job) -> anyhow::Result<()> {
        self.w
            .open_table(JOBS)?
            .insert(keys::job(lane, job).as_slice(), ())?;
        Ok(())
    }

    pub fn cancel(&mut self, lane: &str, who: &Recipient, job: JobRef) -> anyhow::Result<()> {
        let job = Job::new(who, job.kind, job.due());
        self.w
            .open_table(JOBS)?
            .remove(keys::job(lane, &job).as_slice())?;
        Ok(())
    }

    /// Claims up to `limit` of `lane`'s jobs due at or before `now`, earliest first, reading only
    /// `lane`'s part of the table. For each, `run` gets the job and its person's state and says
    /// what follows; the job's removal, the new state, the next jobs and the message to send are
    /// written here, with each table opened once for the whole batch (this is the hot loop of a
    /// large backlog). A person's record that cannot be decoded is set aside and they start
    /// afresh. Returns how many jobs were claimed.
    pub fn claim_due(
        &mut self,
        lane: &str,
        now: DateTime<Utc>,
        limit: usize,
        mut run: impl FnMut(&Job, &mut UserState) -> Claimed,
    ) -> anyhow::Result<usize> {
        let mut jobs_t = self.w.open_table(JOBS)?;
        let mut users = self.w.open_table(USERS)?;
        let mut outbox = self.w.open_table(OUTBOX)?;
        let mut counters = self.w.open_table(COUNTERS)?;
        let mut quarantine = self.w.open_table(QUARANTINE)?;
        let (start, end) = keys::lane_until(lane, now.timestamp_millis());
        let mut due = Vec::new();
        for row in jobs_t.range(start.as_slice()..end.as_slice())? {
            if due.len() == limit {
                break;
            }
            due.push(row?.0.value().to_vec());
        }
        let mut next_out = next_value(&counters, "outbox")?;
        for key in &due {
            jobs_t.remove(key.as_slice())?;
            let Some(job) = keys::parse_job(key) else {
                tracing::error!(table = "jobs", key = %keys::hex(key), "a job key could not be read; it was set aside");
                quarantine.insert(format!("jobs/{}", keys::hex(key)).as_str(), &[][..])?;
                continue;
            };
            let who = keys::recipient(&job.recipient);
            let raw = users.get(who.as_slice())?.map(|v| v.value().to_vec());
            let mut state = match raw.as_deref().map(keys::decode::<UserState>) {
                None => UserState::default(),
                Some(Ok(state)) => state,
                Some(Err(e)) => {
                    let name = format!("users/{}", keys::hex(&who));
                    tracing::error!(table = "users", key = %keys::hex(&who), error = %format!("{e:#}"), "a record could not be decoded; it was set aside in the quarantine table");
                    quarantine.insert(name.as_str(), raw.as_deref().unwrap_or_default())?;
                    UserState::default()
                }
            };
            let claimed = run(&job, &mut state);
            for old in &claimed.cancel {
                let old = Job::new(&job.recipient, old.kind, old.due());
                jobs_t.remove(keys::job(lane, &old).as_slice())?;
            }
            for next in &claimed.schedule {
                jobs_t.insert(keys::job(lane, next).as_slice(), ())?;
            }
            if state.is_empty() {
                users.remove(who.as_slice())?;
            } else {
                users.insert(who.as_slice(), keys::encode(&state)?.as_slice())?;
            }
            if let Some(entry) = &claimed.send {
                let k = keys::outbox(lane, entry.queued_at.timestamp_millis(), next_out);
                next_out += 1;
                outbox.insert(k.as_slice(), keys::encode(entry)?.as_slice())?;
            }
        }
        counters.insert("outbox", next_out - 1)?;
        Ok(due.len())
    }

    pub fn escalation(&self, reference: &str) -> anyhow::Result<Option<Escalation>> {
        let t = self.w.open_table(ESCALATIONS)?;
        let key = reference.to_ascii_uppercase();
        let v = t.get(key.as_str())?;
        v.map(|v| keys::decode(v.value()))
            .transpose()
            .with_context(|| format!("escalations/{key}"))
    }

    pub fn put_escalation(&mut self, e: &Escalation) -> anyhow::Result<()> {
        self.w
            .open_table(ESCALATIONS)?
            .insert(e.reference.as_str(), keys::encode(e)?.as_slice())?;
        Ok(())
    }

    /// Queues `entry` in `lane`'s outbox, due at `due`.
    pub fn enqueue(
        &mut self,
        lane: &str,
        entry: &Outgoing,
        due: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let id = self.next_id("outbox")?;
        self.w.open_table(OUTBOX)?.insert(
            keys::outbox(lane, due.timestamp_millis(), id).as_slice(),
            keys::encode(entry)?.as_slice(),
        )?;
        Ok(())
    }

    /// Takes up to `limit` of `lane`'s entries due by `now` for delivery: each is moved to `until`,
    /// so no other process delivers it meanwhile and, if this one dies, it falls due again then.
    /// Returns the entries with their new keys. An entry that cannot be decoded is set aside.
    pub fn lease_due(
        &mut self,
        lane: &str,
        now: DateTime<Utc>,
        limit: usize,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(OutboxKey, Outgoing)>> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = {
            let t = self.w.open_table(OUTBOX)?;
            let (start, end) = keys::lane_until(lane, now.timestamp_millis());
            let mut rows = Vec::new();
            for row in t.range(start.as_slice()..end.as_slice())? {
                let (k, v) = row?;
                rows.push((k.value().to_vec(), v.value().to_vec()));
                if rows.len() >= limit {
                    break;
                }
            }
            rows
        };
        let mut out = Vec::with_capacity(rows.len());
        for (key, value) in rows {
            self.w.open_table(OUTBOX)?.remove(key.as_slice())?;
            match keys::decode::<Outgoing>(&value) {
                Ok(entry) => {
                    let id = keys::outbox_id(&key).context("outbox key")?;
                    let leased = keys::outbox(lane, until.timestamp_millis(), id);
                    self.w
                        .open_table(OUTBOX)?
                        .insert(leased.as_slice(), value.as_slice())?;
                    out.push((leased, entry));
                }
                Err(e) => self.quarantine("outbox", &key, &value, &e)?,
            }
        }
        Ok(out)
    }

    /// Removes an outbox entry: handed over, or given up.
    pub fn outbox_done(&mut self, key: &[u8]) -> anyhow::Result<()> {
        self.w.open_table(OUTBOX)?.remove(key)?;
        Ok(())
    }

    /// Moves an outbox entry to `at` with its bookkeeping updated (a failed attempt).
    pub fn outbox_retry(
        &mut self,
        lane: &str,
        key: &[u8],
        at: DateTime<Utc>,
        entry: &Outgoing,
    ) -> anyhow::Result<()> {
        let id = keys::outbox_id(key).context("outbox key")?;
        let mut t = self.w.open_table(OUTBOX)?;
        t.remove(key)?;
        t.insert(
            keys::outbox(lane, at.timestamp_millis(), id).as_slice(),
            keys::encode(entry)?.as_slice(),
        )?;
        Ok(())
    }

    /// Removes `lane`'s outbox entries that `drop` picks; returns how many.
    pub fn outbox_remove_where(
        &mut self,
        lane: &str,
        drop: impl Fn(&Outgoing) -> bool,
    ) -> anyhow::Result<usize> {
        let mut t = self.w.open_table(OUTBOX)?;
        let (start, end) = keys::lane_all(lane);
        let mut doomed = Vec::new();
        for row in t.range(start.as_slice()..end.as_slice())? {
            let (k, v) = row?;
            if keys::decode::<Outgoing>(v.value()).is_ok_and(|o| drop(&o)) {
                doomed.push(k.value().to_vec());
            }
        }
        for k in &doomed {
            t.remove(k.as_slice())?;
        }
        Ok(doomed.len())
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

    pub fn transport_ref(&self, key: &str) -> anyhow::Result<Option<String>> {
        let t = self.w.open_table(TRANSPORT_REFS)?;
        Ok(t.get(key)?.map(|v| v.value().to_string()))
    }

    /// The transport reference kept about one person under `what` ("<recipient>#<what>").
    pub fn person_ref_key(who: &Recipient, what: &str) -> String {
        format!("{who}#{what}")
    }

    pub fn set_transport_ref(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        self.w.open_table(TRANSPORT_REFS)?.insert(key, value)?;
        Ok(())
    }

    /// Adds a message to `who`'s web inbox under the next sequence number (returned), keeping only
    /// their `keep` newest entries.
    pub fn web_deliver(
        &mut self,
        who: &Recipient,
        at: DateTime<Utc>,
        message: &Message,
        keep: usize,
    ) -> anyhow::Result<u64> {
        let seq = self.next_id("web_inbox")?;
        let mut t = self.w.open_table(WEB_INBOX)?;
        let (start, end) = web_inbox_range(who, 0);
        let mut key = start.clone();
        key.truncate(start.len() - 8);
        key.extend_from_slice(&seq.to_be_bytes());
        t.insert(
            key.as_slice(),
            keys::encode(&(at.timestamp_millis(), message))?.as_slice(),
        )?;
        let held: Vec<Vec<u8>> = t
            .range(start.as_slice()..end.as_slice())?
            .map(|row| row.map(|(k, _)| k.value().to_vec()))
            .collect::<Result<_, _>>()?;
        for old in held.iter().take(held.len().saturating_sub(keep)) {
            t.remove(old.as_slice())?;
        }
        Ok(seq)
    }

    /// Removes web inbox entries delivered before `before` (anyone's); returns how many.
    pub fn web_forget_before(&mut self, before: DateTime<Utc>) -> anyhow::Result<usize> {
        let cutoff = before.timestamp_millis();
        let mut n = 0;
        self.w.open_table(WEB_INBOX)?.retain(|_, v| {
            let keep = keys::decode::<(i64, Message)>(v).is_ok_and(|(at, _)| at >= cutoff);
            n += usize::from(!keep);
            keep
        })?;
        Ok(n)
    }

    /// Erases what is stored about `who`: their state, their jobs in `lane`, their escalations
    /// and what is queued for them. Returns the references of the escalations removed.
    pub fn erase_user(&mut self, who: &Recipient, lane: &str) -> anyhow::Result<Vec<String>> {
        let state = self.user(who)?;
        for j in &state.jobs {
            self.cancel(lane, who, *j)?;
        }
        self.w
            .open_table(USERS)?
            .remove(keys::recipient(who).as_slice())?;
        let mut refs = Vec::new();
        {
            let t = self.w.open_table(ESCALATIONS)?;
            for row in t.iter()? {
                let (k, v) = row?;
                if keys::decode::<Escalation>(v.value()).is_ok_and(|e| e.user == *who) {
                    refs.push(k.value().to_string());
                }
            }
        }
        for r in &refs {
            self.w.open_table(ESCALATIONS)?.remove(r.as_str())?;
        }
        self.outbox_remove_where(lane, |o| o.to == *who)?;
        // "<recipient>#…": '$' is the character after '#'.
        let (from, to) = (format!("{who}#"), format!("{who}$"));
        self.w
            .open_table(TRANSPORT_REFS)?
            .retain_in(from.as_str()..to.as_str(), |_, _| false)?;
        let (start, end) = web_inbox_range(who, 0);
        let mut t = self.w.open_table(WEB_INBOX)?;
        let shown: Vec<Vec<u8>> = t
            .range(start.as_slice()..end.as_slice())?
            .map(|row| row.map(|(k, _)| k.value().to_vec()))
            .collect::<Result<_, _>>()?;
        for k in &shown {
            t.remove(k.as_slice())?;
        }
        Ok(refs)
    }

    /// Sets a record aside that cannot be decoded, and logs where it was.
    fn quarantine(
        &mut self,
        table: &str,
        key: &[u8],
        value: &[u8],
        e: &anyhow::Error,
    ) -> anyhow::Result<()> {
        let name = format!("{table}/{}", keys::hex(key));
        tracing::error!(table, key = %keys::hex(key), error = %format!("{e:#}"), "a record could not be decoded; it was set aside in the quarantine table");
        self.w
            .open_table(QUARANTINE)?
            .insert(name.as_str(), value)?;
        Ok(())
    }
}

/// When the earliest entry of `lane` in a lane-keyed table is due: one lookup.
fn first_due<V: redb::Value + 'static>(
    t: &impl ReadableTable<&'static [u8], V>,
    lane: &str,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let (start, end) = keys::lane_all(lane);
    let first = t
        .range(start.as_slice()..end.as_slice())?
        .next()
        .transpose()?;
    Ok(first
        .and_then(|(k, _)| keys::due_of(k.value()))
        .and_then(DateTime::from_timestamp_millis))
}

/// The value `counter` hands out next (1 for a counter never used).
fn next_value(t: &impl ReadableTable<&'static str, u64>, counter: &str) -> anyhow::Result<u64> {
    Ok(t.get(counter)?.map_or(0, |v| v.value()) + 1)
}

/// Decodes a record read outside a write transaction; one that cannot be decoded is logged with
/// its table and key and read as missing (the next write transaction that meets it sets it aside).
fn decode_or_log<T: DeserializeOwned>(table: &str, key: &[u8], bytes: &[u8]) -> Option<T> {
    match keys::decode(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(table, key = %keys::hex(key), error = %format!("{e:#}"), "a record could not be decoded");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::records::{JobKind, Message};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn the_shared_snapshot_never_hides_this_handles_last_commit() {
        let (_dir, store) = store();
        let who = Recipient::new("test", "ann");
        for n in 1..=200u32 {
            // Read (and so cache a snapshot), write through either path, read again at once.
            let (before, _) = store.user_and_next_id(&who, "c").unwrap();
            assert_eq!(before.failed_attempts, n - 1);
            let next = UserState {
                failed_attempts: n,
                ..UserState::default()
            };
            if n % 2 == 0 {
                store.write(|t| t.put_user(&who, &next)).unwrap();
            } else {
                store.write_grouped(|t| t.put_user(&who, &next)).unwrap();
            }
            let (after, _) = store.user_and_next_id(&who, "c").unwrap();
            assert_eq!(after.failed_attempts, n, "round {n}");
        }
    }

    #[test]
    fn each_lane_sees_only_its_own_jobs_earliest_first() {
        let (_dir, s) = store();
        let (ann, bob) = (Recipient::from("chat:ann"), Recipient::from("discord:1"));
        s.write(|t| {
            t.schedule(
                "chat:ann",
                &Job::new(&ann, JobKind::LockOver, at("2026-03-02T21:00:00Z")),
            )?;
            t.schedule(
                "discord",
                &Job::new(&bob, JobKind::LinkWarning, at("2026-03-02T12:30:00Z")),
            )?;
            t.schedule(
                "discord",
                &Job::new(&bob, JobKind::Purge, at("2026-03-03T12:30:00Z")),
            )
        })
        .unwrap();
        assert_eq!(
            s.next_job_due("chat:ann").unwrap(),
            Some(at("2026-03-02T21:00:00Z"))
        );
        assert_eq!(
            s.next_job_due("discord").unwrap(),
            Some(at("2026-03-02T12:30:00Z"))
        );
        assert_eq!(s.next_job_due("chat:bob").unwrap(), None);
        let kinds: Vec<JobKind> = s.jobs("discord").unwrap().iter().map(|j| j.kind).collect();
        assert_eq!(kinds, vec![JobKind::LinkWarning, JobKind::Purge]);
    }

    #[test]
    fn a_leased_entry_is_not_due_again_until_its_lease_runs_out() {
        let (_dir, s) = store();
        let now = at("2026-03-02T09:00:00Z");
        let entry = Outgoing::message("chat:ann".into(), Message::text("hi"), now);
        s.write(|t| t.enqueue("chat:ann", &entry, now)).unwrap();
        let until = now + chrono::Duration::minutes(1);
        let leased = s
            .write(|t| t.lease_due("chat:ann", now, 10, until))
            .unwrap();
        assert_eq!(leased.len(), 1);
        assert!(s.outbox_due("chat:ann", now, 10).unwrap().is_empty());
        assert_eq!(
            s.outbox_due("chat:ann", until, 10).unwrap().len(),
            1,
            "a crash would not lose it"
        );
        s.write(|t| t.outbox_done(&leased[0].0)).unwrap();
        assert!(s.outbox("chat:ann").unwrap().is_empty());
    }

    #[test]
    fn escalation_references_are_read_in_any_case() {
        let (_dir, s) = store();
        let e = Escalation {
            reference: "ESC-00002".into(),
            kind: crate::core::records::EscalationKind::TalkToHuman,
            user: "chat:ann".into(),
            display_name: None,
            new_address: None,
            volunteered: Default::default(),
            problem: None,
            contact: None,
            created_at: at("2026-03-02T09:00:00Z"),
            status: crate::core::records::EscalationStatus::Open,
            history: Vec::new(),
        };
        s.write(|t| t.put_escalation(&e)).unwrap();
        assert_eq!(s.escalation("esc-00002").unwrap(), Some(e));
    }
}
