//! The records the bot keeps and the messages it sends, channel-neutral: a `Recipient` is an
//! address the core never looks inside, a `Message` is text with choices and attachments that each
//! transport renders its own way. No message text, password or date of birth is ever part of a
//! person's record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who something is for: a channel name and an id within it, written `channel:id`
/// ("chat:alice", "discord:80351110224678912"). Only the transport that owns the channel reads
/// the id; everything else treats the address as opaque.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Recipient(String);

impl Recipient {
    pub fn new(channel: &str, id: &str) -> Recipient {
        Recipient(format!("{channel}:{id}"))
    }

    /// The support team, wherever the deployment has it (each transport maps it to its place).
    pub fn support_team() -> Recipient {
        Recipient::new("support", "team")
    }

    /// The training mailbox that is told about changed nhs.net addresses.
    pub fn training_mailbox() -> Recipient {
        Recipient::new("mail", "training")
    }

    /// The channel part ("chat" in "chat:alice"); the whole address when it has no colon.
    pub fn channel(&self) -> &str {
        self.0.split_once(':').map_or(self.0.as_str(), |(c, _)| c)
    }

    /// The id within the channel ("alice" in "chat:alice").
    pub fn id(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, id)| id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_support_team(&self) -> bool {
        *self == Recipient::support_team()
    }
}

impl std::fmt::Display for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Recipient {
    fn from(s: &str) -> Recipient {
        Recipient(s.to_string())
    }
}

impl From<String> for Recipient {
    fn from(s: String) -> Recipient {
        Recipient(s)
    }
}

impl From<&String> for Recipient {
    fn from(s: &String) -> Recipient {
        Recipient(s.clone())
    }
}

impl From<&Recipient> for Recipient {
    fn from(r: &Recipient) -> Recipient {
        r.clone()
    }
}

/// Everything the bot remembers about one person. Missing means "nothing known".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    pub display_name: Option<String>,
    #[serde(with = "time::opt")]
    pub reset_requested_at: Option<DateTime<Utc>>,
    #[serde(with = "time::opt")]
    pub link_valid_until: Option<DateTime<Utc>>,
    pub failed_attempts: u32,
    #[serde(with = "time::opt")]
    pub attempts_at: Option<DateTime<Utc>>,
    #[serde(with = "time::opt")]
    pub locked_until: Option<DateTime<Utc>>,
    pub reminders_off: bool,
    pub pending: Pending,
    /// This person's jobs in the time-ordered job table (with the recipient, each is the job's
    /// whole key), so they can be cancelled or replaced.
    pub jobs: Vec<JobRef>,
    /// References of this person's open escalations, one per kind.
    pub open_escalations: Vec<(EscalationKind, String)>,
    /// Messages in a row the bot could not place (never their text): the second gets an offer of
    /// the support team.
    pub declines: u8,
    /// What the conversation is about (the last intent acted on) and since when: a short
    /// follow-up ("it still doesn't work") is read against it.
    pub topic: Option<(String, i64)>,
    /// Details offered while an e-mail change is being offered, for its record once they say
    /// yes; dropped with the offer (appended in a later version: see `appended`).
    #[serde(default, deserialize_with = "appended")]
    pub volunteered: Volunteered,
    /// The topic was last acted on for someone else ("my mentor is locked out"), so a follow-up
    /// that says nothing of the writer is about them too (appended after `volunteered`).
    #[serde(default, deserialize_with = "appended")]
    pub topic_for_someone_else: bool,
    /// When the open hand-over to the support team was recorded (Unix ms), so "when will they
    /// contact me?" the next day gives the time promised then (appended after
    /// `topic_for_someone_else`).
    #[serde(default, deserialize_with = "appended")]
    pub handover_at: Option<i64>,
}

impl UserState {
    /// True when nothing worth keeping is left (the record can be deleted).
    pub fn is_empty(&self) -> bool {
        let blank = UserState {
            display_name: self.display_name.clone(),
            ..UserState::default()
        };
        *self == blank
    }

    pub fn open_escalation(&self, kind: EscalationKind) -> Option<&str> {
        self.open_escalations
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, r)| r.as_str())
    }

    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|t| *t > now)
    }

    /// This person's pending job of `kind`, if any.
    pub fn job(&self, kind: JobKind) -> Option<JobRef> {
        self.jobs.iter().copied().find(|j| j.kind == kind)
    }
}

/// A question the bot asked and is waiting for an answer to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Pending {
    #[default]
    Nothing,
    /// "Which did you mean?": the offered intent ids, and what the question carried that the
    /// chosen intent may need (never the text itself).
    Choice {
        options: Vec<String>,
        #[serde(with = "time::opt")]
        time: Option<DateTime<Utc>>,
        count: Option<u32>,
        #[serde(with = "time::ms")]
        asked_at: DateTime<Utc>,
    },
    /// "Shall I pass your new address on?", with the new nhs.net address when the person already
    /// gave it.
    EmailOffer {
        #[serde(with = "time::ms")]
        asked_at: DateTime<Utc>,
        address: Option<String>,
    },
    /// "What is your new nhs.net address?"
    EmailAddress {
        #[serde(with = "time::ms")]
        asked_at: DateTime<Utc>,
    },
    /// "Shall I pass this to the support team?"
    SupportOffer {
        #[serde(with = "time::ms")]
        asked_at: DateTime<Utc>,
    },
    /// A hand-over already recorded under `reference`: what it is about, then how to contact them.
    Handover {
        reference: String,
        step: HandoverStep,
        #[serde(with = "time::ms")]
        asked_at: DateTime<Utc>,
    },
}

impl Pending {
    pub fn asked_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Pending::Nothing => None,
            Pending::Choice { asked_at, .. }
            | Pending::EmailOffer { asked_at, .. }
            | Pending::EmailAddress { asked_at }
            | Pending::SupportOffer { asked_at }
            | Pending::Handover { asked_at, .. } => Some(*asked_at),
        }
    }
}

/// Which question of a hand-over is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandoverStep {
    /// "What is it about?" (optional)
    Problem,
    /// "How would you like them to contact you?"
    Contact,
    /// "What number should they ring?"
    Phone,
}

/// How a person would like the support team to contact them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Contact {
    /// Here, in the chat they asked from.
    ThisChat,
    /// By e-mail to their nhs.net address (as ESR holds it).
    NhsMail,
    /// By e-mail to this nhs.net address, which they gave.
    Email(String),
    /// By phone on this number.
    Phone(String),
}

impl Contact {
    /// How the support team reads it.
    pub fn describe(&self) -> String {
        match self {
            Contact::ThisChat => "reply in this chat".into(),
            Contact::NhsMail => "e-mail their nhs.net address".into(),
            Contact::Email(a) => format!("e-mail {a}"),
            Contact::Phone(n) => format!("phone {n}"),
        }
    }
}

/// What a person offered about themselves for a hand-over, beyond the problem and the contact
/// route: what the people who take it on would otherwise have to ask for. Values only, never the
/// message they came in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volunteered {
    /// The address they had before an e-mail change.
    pub old_address: Option<String>,
    /// A staff or assignment number.
    pub number: Option<StaffNumber>,
}

/// A number that identifies someone in ESR, as they named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffNumber {
    pub kind: NumberKind,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NumberKind {
    Assignment,
    Staff,
}

impl Volunteered {
    pub fn is_empty(&self) -> bool {
        self.old_address.is_none() && self.number.is_none()
    }

    /// Adds what `newer` has, which replaces what this had.
    pub fn merge(&mut self, newer: &Volunteered) {
        if newer.old_address.is_some() {
            self.old_address.clone_from(&newer.old_address);
        }
        if newer.number.is_some() {
            self.number.clone_from(&newer.number);
        }
    }

    /// Each detail as (label, value), for the support team and the training mailbox.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(a) = &self.old_address {
            out.push(("Old address", a.clone()));
        }
        if let Some(n) = &self.number {
            out.push((n.kind.label(), n.value.clone()));
        }
        out
    }
}

impl NumberKind {
    pub fn label(self) -> &'static str {
        match self {
            NumberKind::Assignment => "Assignment number",
            NumberKind::Staff => "Staff number",
        }
    }
}

/// Reads a field added to a stored record after records were written without it: an older record
/// ends before the field (postcard has no field names), and reads as its default. Only for the
/// last fields of a record, each added after the one before.
fn appended<'de, D: serde::Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(T::deserialize(d).unwrap_or_default())
}

/// Timed work for one person. Each job, when it falls due, may tell them something and may
/// schedule the next job of its timer (a link's warning is followed by its expiry, an ended timer
/// by a purge), so a timer has one pending job at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JobKind {
    LinkWarning,
    LinkExpired,
    LockOver,
    /// Not shown to anyone: clears state that can no longer matter. At most one per person.
    Purge,
}

impl JobKind {
    pub const ALL: [JobKind; 4] = [
        JobKind::LinkWarning,
        JobKind::LinkExpired,
        JobKind::LockOver,
        JobKind::Purge,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<JobKind> {
        JobKind::ALL.get(usize::from(code)).copied()
    }

    /// The jobs that belong to a reset link's timer.
    pub fn is_link(self) -> bool {
        matches!(self, JobKind::LinkWarning | JobKind::LinkExpired)
    }
}

/// One of a person's pending jobs: with the recipient, its key in the job table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    pub kind: JobKind,
    pub due_ms: i64,
}

impl JobRef {
    pub fn new(kind: JobKind, due: DateTime<Utc>) -> JobRef {
        JobRef {
            kind,
            due_ms: due.timestamp_millis(),
        }
    }

    pub fn due(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.due_ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// A job with its recipient: what the job table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub recipient: Recipient,
    pub kind: JobKind,
    pub due: DateTime<Utc>,
}

impl Job {
    pub fn new(recipient: &Recipient, kind: JobKind, due: DateTime<Utc>) -> Job {
        Job {
            recipient: recipient.clone(),
            kind,
            due,
        }
    }

    pub fn job_ref(&self) -> JobRef {
        JobRef::new(self.kind, self.due)
    }
}

/// What a job said when it fell due (a reminder), as queued for its recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Reminder {
    pub to: Recipient,
    pub kind: JobKind,
    pub due: DateTime<Utc>,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EscalationKind {
    EmailChanged,
    TalkToHuman,
}

impl EscalationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationKind::EmailChanged => "email_changed",
            EscalationKind::TalkToHuman => "talk_to_human",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email_changed" => Some(EscalationKind::EmailChanged),
            "talk_to_human" => Some(EscalationKind::TalkToHuman),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EscalationStatus {
    Open,
    Sent,
    Acknowledged,
    Resolved,
    Failed,
}

impl EscalationStatus {
    pub const ALL: [EscalationStatus; 5] = [
        EscalationStatus::Open,
        EscalationStatus::Sent,
        EscalationStatus::Acknowledged,
        EscalationStatus::Resolved,
        EscalationStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EscalationStatus::Open => "open",
            EscalationStatus::Sent => "sent",
            EscalationStatus::Acknowledged => "acknowledged",
            EscalationStatus::Resolved => "resolved",
            EscalationStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        EscalationStatus::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// One change of an escalation's status: who, when, and an optional note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: EscalationStatus,
    pub by: String,
    #[serde(with = "time::ms")]
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

/// A case handed to people: the training mailbox (e-mail change) or the support team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub reference: String,
    pub kind: EscalationKind,
    pub user: Recipient,
    pub display_name: Option<String>,
    pub new_address: Option<String>,
    /// What it is about, as the person chose it (an intent id), if they said.
    pub problem: Option<String>,
    /// How they would like to be contacted, if they said.
    pub contact: Option<Contact>,
    #[serde(with = "time::ms")]
    pub created_at: DateTime<Utc>,
    pub status: EscalationStatus,
    pub history: Vec<StatusChange>,
    /// What they offered about themselves (appended in a later version: see `appended`).
    #[serde(default, deserialize_with = "appended")]
    pub volunteered: Volunteered,
}

/// How a choice looks where a transport can show it (a Discord button's colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChoiceStyle {
    Primary,
    Secondary,
    Success,
    Danger,
}

/// A quick answer offered with a message. `id` is what choosing it does: `say:<text>` sends the
/// text as the person's next message; other ids are actions the transport routes (a support
/// team's "Resolve").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub id: String,
    pub label: String,
    pub style: ChoiceStyle,
}

impl Choice {
    /// A choice that sends `message` as the person's next message.
    pub fn say(label: &str, message: &str, style: ChoiceStyle) -> Choice {
        Choice {
            id: format!("say:{message}"),
            label: label.chars().take(80).collect(),
            style,
        }
    }

    /// The message a `say:` choice stands for.
    pub fn message(id: &str) -> Option<&str> {
        id.strip_prefix("say:")
    }
}

/// A file sent with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub media_type: String,
    pub body: Vec<u8>,
}

/// A channel-neutral message: each transport renders it (buttons on Discord, numbered options in
/// the terminal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub text: String,
    pub choices: Vec<Choice>,
    pub attachments: Vec<Attachment>,
}

impl Message {
    pub fn text(text: impl Into<String>) -> Message {
        Message {
            text: text.into(),
            ..Message::default()
        }
    }
}

/// What the outbox delivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Item {
    Message(Message),
    /// A reminder about a timer ending at `at` (a link's expiry, a lock's end), worded when it is
    /// delivered (`Service::message_of`).
    Reminder {
        kind: JobKind,
        #[serde(with = "time::ms")]
        at: DateTime<Utc>,
    },
    /// The support team's view of an escalation, rendered from its current record when it is
    /// delivered (a transport may post it once and then edit it in place).
    EscalationCard {
        reference: String,
    },
    /// The e-mail to the training mailbox about an escalation.
    EscalationMail {
        reference: String,
    },
}

/// One entry of the durable outbox: something to deliver and its delivery bookkeeping. It stays
/// in the outbox until its transport has handed it over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub to: Recipient,
    pub item: Item,
    pub attempts: u32,
    #[serde(with = "time::ms")]
    pub queued_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

impl Outgoing {
    pub fn new(to: Recipient, item: Item, now: DateTime<Utc>) -> Outgoing {
        Outgoing {
            to,
            item,
            attempts: 0,
            queued_at: now,
            last_error: None,
        }
    }

    pub fn message(to: Recipient, message: Message, now: DateTime<Utc>) -> Outgoing {
        Outgoing::new(to, Item::Message(message), now)
    }

    /// The text of a message (not of a reminder, which is worded when delivered).
    pub fn text(&self) -> Option<&str> {
        match &self.item {
            Item::Message(m) => Some(&m.text),
            _ => None,
        }
    }
}

/// Times stored as Unix milliseconds: compact, and exact to what the bot shows.
mod time {
    pub mod ms {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_i64(t.timestamp_millis())
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
            let ms = i64::deserialize(d)?;
            DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| serde::de::Error::custom("time out of range"))
        }
    }

    pub mod opt {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&t.timestamp_millis()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<i64>::deserialize(d)?
                .map(|ms| {
                    DateTime::from_timestamp_millis(ms)
                        .ok_or_else(|| serde::de::Error::custom("time out of range"))
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipient_is_a_channel_and_an_id() {
        let r = Recipient::new("discord", "42");
        assert_eq!(
            (r.channel(), r.id(), r.as_str()),
            ("discord", "42", "discord:42")
        );
        assert!(Recipient::support_team().is_support_team());
        assert_eq!(Recipient::from("chat:ann:x").id(), "ann:x");
    }

    #[test]
    fn job_kinds_round_trip_through_their_codes() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::from_code(k.code()), Some(k));
        }
        assert_eq!(JobKind::from_code(200), None);
    }

    #[test]
    fn statuses_parse_in_any_case() {
        assert_eq!(
            EscalationStatus::parse("Resolved"),
            Some(EscalationStatus::Resolved)
        );
        assert_eq!(EscalationStatus::parse("closed"), None);
    }

    #[test]
    fn an_empty_state_may_keep_only_a_name() {
        let s = UserState {
            display_name: Some("Ann".into()),
            ..UserState::default()
        };
        assert!(s.is_empty());
        let s = UserState {
            failed_attempts: 1,
            ..s
        };
        assert!(!s.is_empty());
    }
}
