//! What the support team learns from the bot's use: counters per day, and (only when
//! `[analytics] keep_declined` is on) the text of messages the bot could not place, for 30 days.
//! The counters hold no text and no person: a day, what was counted, an intent id or a kind, and a
//! number. It must never keep message text while `keep_declined` is off, nor a secret ever.
//!
//! **Days** are the configured time zone's (`bot.timezone`, Europe/London by default): the day
//! the support team would say it happened.
//!
//! **Counted**, each in the same write transaction as what it counts (summed in the transaction
//! and written once per counter when it commits, so a batch of messages committing together reads
//! and writes each counter once):
//! - every message, by the intent acted on and its outcome (answered, clarified, declined,
//!   escalated: `metrics::outcome`);
//! - every conversation: a message from someone with no topic or open question from the last
//!   hour (as the engine reads follow-ups) starts one;
//! - every escalation recorded, by kind (a conversation "handed to a person");
//! - every reminder the job dispatcher queues (link warnings, expiries, lock ends).
//!
//! A message that changes nothing is answered from a snapshot without a write transaction (the
//! bot's fast path); its counts are added in memory and written with the next flush (every
//! [`FLUSH_SECONDS`] s while a bot runs, when it stops, and before a report), so `kill -9` can
//! lose at most those seconds' counts of such messages, never anything else.
//!
//! **Containment rate** = (conversations − escalations recorded) / conversations over the
//! period: the share of conversations in which the bot handed nothing to a person. A conversation
//! the person gave up on after a decline counts as contained; the declined messages are shown
//! beside it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::core::engine::Decision;
use crate::core::records::{EscalationStatus, UserState};
use crate::store::{Store, Table, Txn, keys};
use crate::understanding::intents::OUT_OF_SCOPE;

/// How long the text of a declined message is kept.
pub const KEEP_DAYS: i64 = 30;
/// An answered message with less confidence than this is kept as "low confidence".
pub const LOW_CONFIDENCE: f32 = 0.65;
/// How often a running bot writes the counts of its fast-path messages.
pub const FLUSH_SECONDS: u64 = 10;
/// The outcomes, in the order reports show them.
pub const OUTCOMES: [&str; 4] = ["answered", "clarified", "declined", "escalated"];
/// The label of a message that acted on no single intent: a dialogue step such as "yes", an
/// empty one, or one the bot asked about because two intents were close.
pub const NO_INTENT: &str = "-";

/// What is kept, from the settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    pub keep_declined: bool,
}

/// What a counter counts (the byte after the day in its key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    /// Label: "intent/outcome".
    Message = b'm',
    Conversation = b'c',
    /// Label: the escalation's kind.
    Escalation = b'e',
    Reminder = b'r',
}

/// A counter's key: the local day as yyyymmdd (big-endian, so a range of days is a range of
/// keys), the kind, the label.
fn key(day: NaiveDate, kind: Kind, label: &str) -> Vec<u8> {
    let mut k = day_prefix(day).to_vec();
    k.push(kind as u8);
    k.extend_from_slice(label.as_bytes());
    k
}

fn day_prefix(day: NaiveDate) -> [u8; 4] {
    use chrono::Datelike;
    let n = day.year() as u32 * 10_000 + day.month() * 100 + day.day();
    n.to_be_bytes()
}

fn parse_key(k: &[u8]) -> Option<(NaiveDate, Kind, &str)> {
    let n = u32::from_be_bytes(k.get(..4)?.try_into().ok()?);
    let day = NaiveDate::from_ymd_opt((n / 10_000) as i32, n / 100 % 100, n % 100)?;
    let kind = match *k.get(4)? {
        b'm' => Kind::Message,
        b'c' => Kind::Conversation,
        b'e' => Kind::Escalation,
        b'r' => Kind::Reminder,
        _ => return None,
    };
    Some((day, kind, std::str::from_utf8(&k[5..]).ok()?))
}

/// The local day of `at`.
pub fn day_of(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The counter keys one handled message adds to.
pub fn message_keys(
    before: &UserState,
    d: &Decision,
    outcome: &str,
    now: DateTime<Utc>,
    tz: Tz,
) -> Vec<Vec<u8>> {
    let day = day_of(now, tz);
    let intent = d.reply.intent.as_deref().unwrap_or(NO_INTENT);
    let mut message = key(day, Kind::Message, intent);
    message.push(b'/');
    message.extend_from_slice(outcome.as_bytes());
    let mut out = vec![message];
    if !crate::core::engine::in_conversation(before, now) {
        out.push(key(day, Kind::Conversation, ""));
    }
    if let Some(e) = &d.escalation {
        out.push(key(day, Kind::Escalation, e.kind.as_str()));
    }
    out
}

/// The counter key of reminders queued at `now`.
pub fn reminder_key(now: DateTime<Utc>, tz: Tz) -> Vec<u8> {
    key(day_of(now, tz), Kind::Reminder, "")
}

/// Counts not yet written: those of messages answered without a write transaction.
#[derive(Default)]
pub struct Tally {
    counts: Mutex<BTreeMap<Vec<u8>, u64>>,
}

impl Tally {
    pub fn add(&self, keys: Vec<Vec<u8>>) {
        if let Ok(mut c) = self.counts.lock() {
            for k in keys {
                *c.entry(k).or_insert(0) += 1;
            }
        }
    }

    fn take(&self) -> BTreeMap<Vec<u8>, u64> {
        self.counts
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    /// Puts counts back that could not be written.
    fn restore(&self, counts: BTreeMap<Vec<u8>, u64>) {
        if let Ok(mut c) = self.counts.lock() {
            for (k, n) in counts {
                *c.entry(k).or_insert(0) += n;
            }
        }
    }
}

/// Whether a message with this decision is kept as "could not answer" (when keeping is on):
/// declined, answered with little confidence, or asked about because two intents were close
/// (then no intent was acted on and the bot asked which was meant).
pub fn is_kept(d: &Decision, outcome: &str) -> bool {
    match d.reply.intent.as_deref() {
        None => outcome == "clarified",
        Some(OUT_OF_SCOPE) => true,
        Some(_) => d.reply.confidence < LOW_CONFIDENCE,
    }
}

/// A message the bot could not place, kept (with secrets cut out) for the support team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Declined {
    pub at: DateTime<Utc>,
    /// The message as the bot read it: cleaned, passwords and dates of birth cut out.
    pub text: String,
    /// What the bot answered it as (`out_of_scope` for a decline) and how sure it was.
    pub answered_as: String,
    pub confidence: f32,
    /// "declined", "asked which was meant" or "low confidence" (answered, unsure).
    pub why: String,
    pub mark: Option<Mark>,
}

/// A support person's verdict on a kept message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub verdict: Verdict,
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// It should have been answered as this intent (an example for the content team).
    ShouldHaveBeen(String),
    RightlyDeclined,
}

/// Why a mark was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("there is no kept message {0} (it may have expired)")]
    NotFound(String),
    #[error("there is no intent called {0:?}")]
    UnknownIntent(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A kept message's key: its time, then a sequence number (its id is this in hex).
fn declined_key(txn: &mut Txn, at: DateTime<Utc>) -> anyhow::Result<Vec<u8>> {
    let mut k = at.timestamp_millis().to_be_bytes().to_vec();
    k.extend_from_slice(&txn.next_id("declined")?.to_be_bytes());
    Ok(k)
}

fn cutoff(now: DateTime<Utc>) -> [u8; 8] {
    (now - Duration::days(KEEP_DAYS))
        .timestamp_millis()
        .to_be_bytes()
}

/// Keeps `raw`'s text as a declined message, and lets the ones past [`KEEP_DAYS`] go.
pub fn keep(
    txn: &mut Txn,
    raw: &str,
    d: &Decision,
    outcome: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    use crate::understanding::{privacy, text};
    let entry = Declined {
        at: now,
        text: privacy::redact(&text::clean_input(raw)).text,
        answered_as: d.reply.intent.clone().unwrap_or_default(),
        confidence: d.reply.confidence,
        why: if d.reply.intent.as_deref() == Some(OUT_OF_SCOPE) {
            "declined".into()
        } else if outcome == "clarified" {
            "asked which was meant".into()
        } else {
            "low confidence".into()
        },
        mark: None,
    };
    let key = declined_key(txn, now)?;
    txn.put_record(Table::Declined, &key, &entry)?;
    txn.remove_records_before(Table::Declined, &cutoff(now))?;
    Ok(())
}

/// The kept messages younger than [`KEEP_DAYS`], oldest first, each with its id.
pub fn declined(store: &Store, now: DateTime<Utc>) -> anyhow::Result<Vec<(String, Declined)>> {
    Ok(store
        .records_in::<Declined>(Table::Declined, &cutoff(now), None)?
        .into_iter()
        .map(|(k, d)| (keys::hex(&k), d))
        .collect())
}

/// Records a verdict on a kept message. `intents` are the known intent ids.
pub fn mark(
    store: &Store,
    id: &str,
    verdict: Verdict,
    by: &str,
    intents: &[String],
    now: DateTime<Utc>,
) -> Result<(), MarkError> {
    if let Verdict::ShouldHaveBeen(intent) = &verdict
        && !intents.iter().any(|i| i == intent)
    {
        return Err(MarkError::UnknownIntent(intent.clone()));
    }
    let key = unhex(id).ok_or_else(|| MarkError::NotFound(id.to_string()))?;
    store.write(|txn| {
        let Some(mut entry) = txn
            .record::<Declined>(Table::Declined, &key)?
            .filter(|e| e.at > now - Duration::days(KEEP_DAYS))
        else {
            return Ok(Err(MarkError::NotFound(id.to_string())));
        };
        entry.mark = Some(Mark {
            verdict: verdict.clone(),
            by: by.to_string(),
            at: now,
        });
        txn.put_record(Table::Declined, &key, &entry)?;
        Ok(Ok(()))
    })?
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The kept messages marked "should have been INTENT", as a `text<TAB>intent` file that
/// `esrbot eval` reads (tabs and line breaks in the text become spaces).
pub fn export_tsv(store: &Store, now: DateTime<Utc>) -> anyhow::Result<(String, usize)> {
    let mut out = String::from("text\tintent\n");
    let mut n = 0;
    for (_, d) in declined(store, now)? {
        if let Some(Mark {
            verdict: Verdict::ShouldHaveBeen(intent),
            ..
        }) = &d.mark
        {
            let text: String = d
                .text
                .chars()
                .map(|c| if c.is_whitespace() { ' ' } else { c })
                .collect();
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            out.push_str(&format!("{text}\t{intent}\n"));
            n += 1;
        }
    }
    Ok((out, n))
}

/// Writes `tally`'s counts, and lets kept messages past [`KEEP_DAYS`] go (they also go whenever
/// one is kept). Counts that could not be written are kept for the next flush.
pub fn flush(store: &Store, tally: &Tally, now: DateTime<Utc>) -> anyhow::Result<()> {
    let counts = tally.take();
    let expired = store
        .records_in::<Declined>(Table::Declined, &[], Some(&cutoff(now)))?
        .len();
    if counts.is_empty() && expired == 0 {
        return Ok(());
    }
    let written = store.write(|txn| {
        txn.count(counts.iter().map(|(k, n)| (k.as_slice(), *n)));
        txn.remove_records_before(Table::Declined, &cutoff(now))?;
        Ok(())
    });
    if written.is_err() {
        tally.restore(counts);
    }
    written
}

/// Flushes the counts held in memory every [`FLUSH_SECONDS`] until `shutdown`, and once more
/// then.
pub async fn run(
    svc: std::sync::Arc<crate::service::Service>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let stop = tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(FLUSH_SECONDS)) => false,
            _ = &mut shutdown => true,
        };
        let (s, now) = (svc.clone(), clock.now());
        // A commit blocks on fsync: off the async worker threads.
        tokio::task::spawn_blocking(move || s.flush_analytics(now)).await??;
        if stop {
            return Ok(());
        }
    }
}

/// One day's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    pub conversations: u64,
    /// Escalations recorded, by kind.
    pub escalations: BTreeMap<String, u64>,
    pub reminders_sent: u64,
    /// Messages by outcome (answered, clarified, declined, escalated).
    pub outcomes: BTreeMap<String, u64>,
    /// Messages by intent, then outcome.
    pub intents: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Day {
    pub fn escalated(&self) -> u64 {
        self.escalations.values().sum()
    }

    pub fn messages(&self) -> u64 {
        self.outcomes.values().sum()
    }

    /// This day's containment rate (None with no conversations).
    pub fn containment(&self) -> Option<f64> {
        containment(self.conversations, self.escalated())
    }
}

fn containment(conversations: u64, escalated: u64) -> Option<f64> {
    (conversations > 0)
        .then(|| conversations.saturating_sub(escalated) as f64 / conversations as f64)
}

/// What the dashboard shows for a range of days (both ends included).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Every day of the range, in order, with zeros for quiet days.
    pub days: Vec<Day>,
    /// Escalations recorded in the range (whose records still exist), by their status now.
    pub escalations_by_status: BTreeMap<String, u64>,
    /// Escalations resolved in the range, and the median time from recorded to resolved.
    pub resolved: u64,
    pub median_time_to_resolve: Option<Duration>,
}

impl Report {
    pub fn conversations(&self) -> u64 {
        self.days.iter().map(|d| d.conversations).sum()
    }

    pub fn escalated(&self) -> u64 {
        self.days.iter().map(Day::escalated).sum()
    }

    pub fn reminders_sent(&self) -> u64 {
        self.days.iter().map(|d| d.reminders_sent).sum()
    }

    /// Messages by outcome over the range.
    pub fn outcomes(&self) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = OUTCOMES.iter().map(|o| (o.to_string(), 0)).collect();
        for d in &self.days {
            for (o, n) in &d.outcomes {
                *out.entry(o.clone()).or_insert(0) += n;
            }
        }
        out
    }

    /// Messages by intent, then outcome, over the range.
    pub fn intents(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for d in &self.days {
            for (i, outcomes) in &d.intents {
                let row = out.entry(i.clone()).or_default();
                for (o, n) in outcomes {
                    *row.entry(o.clone()).or_insert(0) += n;
                }
            }
        }
        out
    }

    /// The containment rate over the range (see the module header); None with no conversations.
    pub fn containment(&self) -> Option<f64> {
        containment(self.conversations(), self.escalated())
    }

    /// The report as CSV, one figure a row: `date,measure,label,value`. Per day: `conversations`,
    /// `containment_rate` (0 to 1, empty with no conversations), `escalations_recorded` (label:
    /// kind), `reminders_sent` and `messages` (label: `intent/outcome`); for the whole range (date
    /// `FROM..TO`): the same totals, `escalations_by_status` (label: status), `resolved` and
    /// `median_minutes_to_resolve`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("date,measure,label,value\n");
        let mut row = |date: &str, measure: &str, label: &str, value: String| {
            out.push_str(&format!("{date},{measure},{},{value}\n", csv_field(label)));
        };
        let rate = |r: Option<f64>| r.map(|r| format!("{r:.4}")).unwrap_or_default();
        for d in &self.days {
            let date = d.date.to_string();
            row(&date, "conversations", "", d.conversations.to_string());
            row(&date, "containment_rate", "", rate(d.containment()));
            for (k, n) in &d.escalations {
                row(&date, "escalations_recorded", k, n.to_string());
            }
            row(&date, "reminders_sent", "", d.reminders_sent.to_string());
            for (i, outcomes) in &d.intents {
                for (o, n) in outcomes {
                    row(&date, "messages", &format!("{i}/{o}"), n.to_string());
                }
            }
        }
        let all = format!("{}..{}", self.from, self.to);
        row(&all, "conversations", "", self.conversations().to_string());
        row(&all, "containment_rate", "", rate(self.containment()));
        row(
            &all,
            "escalations_recorded",
            "",
            self.escalated().to_string(),
        );
        row(
            &all,
            "reminders_sent",
            "",
            self.reminders_sent().to_string(),
        );
        for (o, n) in self.outcomes() {
            row(&all, "messages", &o, n.to_string());
        }
        for (s, n) in &self.escalations_by_status {
            row(&all, "escalations_by_status", s, n.to_string());
        }
        row(&all, "resolved", "", self.resolved.to_string());
        row(
            &all,
            "median_minutes_to_resolve",
            "",
            self.median_time_to_resolve
                .map(|d| format!("{:.1}", d.num_seconds() as f64 / 60.0))
                .unwrap_or_default(),
        );
        out
    }
}

/// A label as one CSV field (intent ids and kinds never need quoting; this is for safety).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The report for `from..=to` (local days in `tz`) from the counters and the escalation records.
pub fn report(store: &Store, tz: Tz, from: NaiveDate, to: NaiveDate) -> anyhow::Result<Report> {
    anyhow::ensure!(
        from <= to,
        "the report's first day {from} is after its last {to}"
    );
    anyhow::ensure!(
        (to - from).num_days() <= 3660,
        "a report covers at most ten years"
    );
    let mut days: Vec<Day> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|date| Day {
            date,
            outcomes: OUTCOMES.iter().map(|o| (o.to_string(), 0)).collect(),
            ..Day::default()
        })
        .collect();
    let end = to.succ_opt().unwrap_or(to);
    for (k, n) in store.counters_in(&day_prefix(from), &day_prefix(end))? {
        let Some((date, kind, label)) = parse_key(&k) else {
            continue;
        };
        let Some(day) = days.get_mut((date - from).num_days() as usize) else {
            continue;
        };
        match kind {
            Kind::Conversation => day.conversations += n,
            Kind::Reminder => day.reminders_sent += n,
            Kind::Escalation => *day.escalations.entry(label.to_string()).or_insert(0) += n,
            Kind::Message => {
                let (intent, outcome) = label.rsplit_once('/').unwrap_or((label, "answered"));
                *day.outcomes.entry(outcome.to_string()).or_insert(0) += n;
                *day.intents
                    .entry(intent.to_string())
                    .or_default()
                    .entry(outcome.to_string())
                    .or_insert(0) += n;
            }
        }
    }
    let in_range = |at: DateTime<Utc>| (from..=to).contains(&day_of(at, tz));
    let mut by_status: BTreeMap<String, u64> = EscalationStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    let mut times = Vec::new();
    for e in store.escalations()? {
        if in_range(e.created_at) {
            *by_status.entry(e.status.as_str().to_string()).or_insert(0) += 1;
        }
        if let Some(done) = e
            .history
            .iter()
            .find(|h| h.status == EscalationStatus::Resolved)
            && in_range(done.at)
        {
            times.push(done.at - e.created_at);
        }
    }
    times.sort();
    let median = match times.len() {
        0 => None,
        n if !n.is_multiple_of(2) => Some(times[n / 2]),
        n => Some((times[n / 2 - 1] + times[n / 2]) / 2),
    };
    Ok(Report {
        from,
        to,
        days,
        escalations_by_status: by_status,
        resolved: times.len() as u64,
        median_time_to_resolve: median,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_day_and_read_back() {
        let a = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let b = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let ka = key(a, Kind::Message, "account_locked/answered");
        let kb = key(b, Kind::Conversation, "");
        assert!(ka < kb);
        assert_eq!(
            parse_key(&ka),
            Some((a, Kind::Message, "account_locked/answered"))
        );
        assert_eq!(parse_key(&kb), Some((b, Kind::Conversation, "")));
    }

    #[test]
    fn a_day_is_the_configured_zones_day() {
        let tz: Tz = "Europe/London".parse().unwrap();
        // 23:30 UTC in summer is 00:30 the next day in London.
        let at: DateTime<Utc> = "2026-07-01T23:30:00Z".parse().unwrap();
        assert_eq!(day_of(at, tz), NaiveDate::from_ymd_opt(2026, 7, 2).unwrap());
    }

    #[test]
    fn ids_read_back_from_hex() {
        let k = vec![0, 1, 0x9a, 0xff, 0x10];
        assert_eq!(unhex(&keys::hex(&k)), Some(k));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn kept_are_declines_unsure_answers_and_questions_between_two_intents() {
        let e = crate::core::tests::engine();
        let who = crate::core::records::Recipient::new("discord", "1");
        let now: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let decide = |text: &str| {
            let mut state = UserState::default();
            let d = e.handle(&who, &mut state, text, now, "ESC-00001");
            let outcome = crate::metrics::outcome(&d, &state);
            (d, outcome)
        };
        let (d, outcome) = decide("what is a payslip");
        assert!(is_kept(&d, outcome), "{:?}", d.reply);
        let (mut d, outcome) = decide("locked out of esr");
        assert!(!is_kept(&d, outcome), "{:?}", d.reply);
        d.reply.confidence = LOW_CONFIDENCE - 0.1;
        assert!(is_kept(&d, outcome));
        d.reply.intent = None;
        assert!(is_kept(&d, "clarified"), "asked which of two was meant");
        assert!(!is_kept(&d, "answered"), "a step of a dialogue");
    }

    #[test]
    fn containment_is_the_share_of_conversations_not_handed_over() {
        assert_eq!(containment(0, 0), None);
        assert_eq!(containment(4, 1), Some(0.75));
        assert_eq!(containment(1, 2), Some(0.0), "never below zero");
    }
}
