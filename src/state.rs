//! The records the bot keeps: one `UserState` per member of staff (timers, attempts, preferences,
//! an open dialogue), scheduled `Reminder`s and `Escalation`s. Plain data with serde; no message
//! text, password or date of birth ever appears in them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything the bot remembers about one person. Missing means "nothing known".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserState {
    pub display_name: Option<String>,
    pub reset_requested_at: Option<DateTime<Utc>>,
    pub link_valid_until: Option<DateTime<Utc>>,
    pub failed_attempts: u32,
    pub attempts_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub reminders_off: bool,
    pub pending: Pending,
    /// Keys of this user's entries in the reminder index, so they can be cancelled.
    pub reminders: Vec<ReminderRef>,
    /// References of this user's open escalations, one per kind.
    pub open_escalations: Vec<(EscalationKind, String)>,
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
}

/// A question the bot asked and is waiting for an answer to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "waiting_for", rename_all = "snake_case")]
pub enum Pending {
    #[default]
    Nothing,
    /// "Which did you mean?": the offered intent ids, and what the question carried that the
    /// chosen intent may need (never the text itself).
    Choice {
        options: Vec<String>,
        time: Option<DateTime<Utc>>,
        count: Option<u32>,
        asked_at: DateTime<Utc>,
    },
    /// "Shall I pass your new address on?"
    EmailOffer { asked_at: DateTime<Utc> },
    /// "What is your new nhs.net address?"
    EmailAddress { asked_at: DateTime<Utc> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    LinkWarning,
    LinkExpired,
    LockOver,
    /// Not shown to anyone: clears state that can no longer matter.
    Purge,
    /// A message written when it was scheduled (escalation updates, notices to the support team),
    /// delivered through the same channel as reminders.
    Notice,
}

/// Where a reminder sits in the time-ordered index: (due time in ms, unique id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderRef {
    pub due_ms: i64,
    pub id: u64,
    pub kind: ReminderKind,
}

/// A scheduled piece of work for one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminder {
    pub user: String,
    pub kind: ReminderKind,
    pub due: DateTime<Utc>,
    /// The timer this reminder is about (link expiry or lock end): a reminder whose timer has
    /// since been replaced is stale and is dropped.
    pub about: Option<DateTime<Utc>>,
    /// The words of a `Notice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
#[serde(rename_all = "snake_case")]
pub enum EscalationStatus {
    Open,
    Sent,
    Acknowledged,
    Resolved,
    Failed,
}

impl EscalationStatus {
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
        [
            EscalationStatus::Open,
            EscalationStatus::Sent,
            EscalationStatus::Acknowledged,
            EscalationStatus::Resolved,
            EscalationStatus::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Still needs someone's attention.
    pub fn is_open(self) -> bool {
        self != EscalationStatus::Resolved
    }
}

/// One change of an escalation's status: who, when, and an optional note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: EscalationStatus,
    pub by: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

/// A case handed to people: the training mailbox (e-mail change) or the support team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub reference: String,
    pub kind: EscalationKind,
    pub user: String,
    pub display_name: Option<String>,
    pub new_address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub status: EscalationStatus,
    pub history: Vec<StatusChange>,
}

/// Where an escalation's e-mail is in the durable outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MailState {
    /// Waiting to be sent (again) at `next_attempt`.
    Queued,
    /// The server accepted it: never send again (unless an administrator retries).
    Accepted { at: DateTime<Utc>, response: String },
    /// Gave up after `attempts` tries or a permanent refusal.
    Failed { at: DateTime<Utc> },
}

/// One e-mail in the outbox, keyed by its escalation's reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailJob {
    pub reference: String,
    pub attempts: u32,
    pub next_attempt: DateTime<Utc>,
    pub state: MailState,
    pub last_error: Option<String>,
}

/// Pseudo-user that notices for the support team are addressed to.
pub const SUPPORT_TEAM: &str = "support:team";

/// Whose reminders and notices a transport delivers. Each transport claims only its own, so
/// `esrbot chat` and `esrbot discord` can share a database without taking (or printing) each
/// other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Everyone (the conversation tests and tools that deliver everything).
    Everyone,
    /// Users whose key starts with `prefix` ("chat:", "discord:"), and the support team's notices
    /// when `support_team` is set.
    Prefix {
        prefix: &'static str,
        support_team: bool,
    },
}

impl Audience {
    pub fn includes(&self, user: &str) -> bool {
        match *self {
            Audience::Everyone => true,
            Audience::Prefix {
                prefix,
                support_team,
            } => {
                if user == SUPPORT_TEAM {
                    support_team
                } else {
                    user.starts_with(prefix)
                }
            }
        }
    }
}

/// A button under a chat message (Discord components); `id` comes back when it is pressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub id: String,
    pub label: String,
    pub style: ButtonStyle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonStyle {
    Primary,
    Secondary,
    Success,
    Danger,
}

/// Something a chat transport must send, kept in the durable outbox until it has been sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outgoing {
    /// A direct message to one person.
    Dm {
        user: u64,
        text: String,
        buttons: Vec<Button>,
    },
    /// A message in a channel.
    Post {
        channel: u64,
        text: String,
        buttons: Vec<Button>,
    },
    /// Post (first time) or edit the support channel's message for an escalation, from its
    /// current record.
    SupportPost { reference: String },
}

/// One outbox entry with its delivery bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub message: Outgoing,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audience_is_its_prefix_and_maybe_the_support_team() {
        let chat = Audience::Prefix {
            prefix: "chat:",
            support_team: false,
        };
        let discord = Audience::Prefix {
            prefix: "discord:",
            support_team: true,
        };
        assert!(chat.includes("chat:ann") && !chat.includes("discord:1"));
        assert!(discord.includes("discord:1") && !discord.includes("chat:ann"));
        assert!(!chat.includes(SUPPORT_TEAM) && discord.includes(SUPPORT_TEAM));
        assert!(Audience::Everyone.includes("anyone") && Audience::Everyone.includes(SUPPORT_TEAM));
    }
}
