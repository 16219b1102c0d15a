//! The dialogue rules: given a person's state, a message and the time, decide the reply, the new
//! state, the jobs to schedule or cancel and any escalation. No I/O and no clock reading here (the
//! time is passed in), so every rule can be tested with a virtual clock; the service commits what
//! the engine decided in one transaction. What each intent does lives in `behaviours`.

use std::cell::OnceCell;
use std::sync::{LazyLock, OnceLock};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use regex::Regex;

use crate::config::Config;
use crate::core::behaviours::{self, Turn};
use crate::core::calendar;
use crate::core::escalation::SupportHours;
use crate::core::records::{
    Attachment, Choice, Contact, Escalation, Job, JobKind, JobRef, Message, Pending, Recipient,
    UserState, Volunteered,
};
use crate::understanding::classifier::{Classification, Classifier};
use crate::understanding::content::{Content, render};
use crate::understanding::details;
use crate::understanding::intents::{Intent, OUT_OF_SCOPE, Role};
use crate::understanding::privacy;
use crate::understanding::text::{MAX_MESSAGE_CHARS, clean_input, emails, normalize};
use crate::understanding::timeexpr::{format_clock, number_word};

/// A question the bot asked, and the conversation's topic, are forgotten after this long: an old
/// "yes" must not trigger it.
const PENDING_TTL_MINUTES: i64 = 60;
/// How sure of one intent, as a share of `understanding.threshold`, the bot must be to answer
/// with it: 0.5 answered more on cross-validation but guessed at vague messages in the tuning
/// conversations ("the thing from before, the blue one" read as a greeting); 0.7 kept most of
/// the gain.
const INTENT_FLOOR: f32 = 0.7;
/// The names of the "add to calendar" files.
pub const CALENDAR_LINK_FILE: &str = "esr-reset-link.ics";
pub const CALENDAR_LOCK_FILE: &str = "esr-unlock.ics";
/// How stale a topic's time may get before a message on the same topic refreshes it.
const TOPIC_REFRESH_MS: i64 = 10 * 60_000;

/// The numbers and settings the rules use, taken from the configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    pub tz: Tz,
    pub link_life: Duration,
    pub max_attempts: u32,
    pub lock_time: Duration,
    pub warn_before: Duration,
    pub purge_after: Duration,
    pub mailbox: String,
    pub threshold: f32,
    pub margin: f32,
    /// When the support team works and how soon it aims to reply.
    pub support: SupportHours,
}

impl Rules {
    pub fn from_config(c: &Config) -> anyhow::Result<Rules> {
        Ok(Rules {
            tz: c.timezone()?,
            link_life: Duration::hours(c.guide.link_valid_hours.into()),
            max_attempts: c.guide.max_attempts,
            lock_time: Duration::hours(c.guide.lock_hours.into()),
            warn_before: Duration::minutes(c.reminders.warn_before_minutes.into()),
            purge_after: Duration::hours(c.reminders.purge_after_hours.into()),
            mailbox: c.guide.training_mailbox.clone(),
            threshold: c.understanding.threshold,
            margin: c.understanding.ambiguity_margin,
            support: SupportHours::parse(&c.support.hours, c.support.response_hours)
                .map_err(|e| anyhow::anyhow!("support.hours: {e}"))?,
        })
    }
}

/// One message being answered: its text (secrets cut out), normal form, and the classifier's
/// reading, taken at most once however many steps of the dialogue ask for it.
pub(crate) struct Incoming<'a> {
    pub text: &'a str,
    pub norm: &'a str,
    reading: OnceCell<(Classification, Understood)>,
}

impl Incoming<'_> {
    pub(crate) fn understood(&self, engine: &Engine) -> Understood {
        self.reading(engine).1.clone()
    }

    /// The classifier's ranking of the message, from the same single reading.
    pub(crate) fn classification(&self, engine: &Engine) -> &Classification {
        &self.reading(engine).0
    }

    fn reading(&self, engine: &Engine) -> &(Classification, Understood) {
        self.reading
            .get_or_init(|| engine.understand_normalized(self.norm))
    }
}

/// How the engine read a message, before acting on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Understood {
    Intent {
        id: usize,
        confidence: f32,
    },
    /// Two or three intents are about equally likely: ask which.
    Ambiguous {
        options: Vec<usize>,
    },
    OutOfScope {
        confidence: f32,
    },
}

/// The answer to one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    /// The intent acted on (None for empty or over-long input, or a dialogue step).
    pub intent: Option<String>,
    pub confidence: f32,
    /// Concerns one person's timers, lockout or address: a transport must not show it in public.
    pub personal: bool,
    /// The message carried a password or date of birth (already cut out).
    pub had_secret: bool,
    /// Quick answers offered with the reply; each transport renders them its own way.
    pub choices: Vec<Choice>,
    /// Files offered with it: an "add to calendar" file for a timer this message started.
    pub attachments: Vec<Attachment>,
}

impl Reply {
    fn empty() -> Reply {
        Reply {
            text: String::new(),
            intent: None,
            confidence: 1.0,
            personal: false,
            had_secret: false,
            choices: Vec::new(),
            attachments: Vec::new(),
        }
    }

    /// The reply as a channel-neutral message.
    pub fn message(&self) -> Message {
        Message {
            text: self.text.clone(),
            choices: self.choices.clone(),
            attachments: self.attachments.clone(),
        }
    }
}

/// Everything one message changes, for the caller to commit in one transaction. The engine keeps
/// `UserState::jobs` in step with `schedule` and `cancel` itself.
#[derive(Debug, Clone)]
pub struct Decision {
    pub reply: Reply,
    pub schedule: Vec<Job>,
    pub cancel: Vec<JobRef>,
    pub escalation: Option<Escalation>,
    /// What the person added to an escalation already recorded (a hand-over's follow-ups).
    pub escalation_update: EscalationUpdate,
}

/// Details added to a recorded escalation: what it is about and how to contact them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EscalationUpdate {
    pub reference: Option<String>,
    pub problem: Option<String>,
    pub contact: Option<Contact>,
    /// The new nhs.net address of an e-mail change recorded before they gave it; the e-mail to
    /// the training mailbox is queued with it.
    pub new_address: Option<String>,
    /// Details they offered about themselves, added to what it has.
    pub volunteered: Volunteered,
}

impl Decision {
    fn new() -> Decision {
        Decision {
            reply: Reply::empty(),
            schedule: Vec::new(),
            cancel: Vec::new(),
            escalation: None,
            escalation_update: EscalationUpdate::default(),
        }
    }

    /// True when committing it would write nothing but the state itself.
    pub fn changes_nothing_else(&self) -> bool {
        self.schedule.is_empty()
            && self.cancel.is_empty()
            && self.escalation.is_none()
            && self.escalation_update.reference.is_none()
    }
}

/// What a due job leads to: what to tell the person (if anything) and the next job of its timer.
/// The words are chosen when the reminder is shown (`Engine::reminder_text`), so a queued
/// reminder is a few bytes and follows the content in force when it is delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct DueOutcome {
    /// The reminder to send: its kind and the time of the timer it is about.
    pub tell: Option<(JobKind, DateTime<Utc>)>,
    pub next: Vec<Job>,
    /// Jobs the next one replaces (an earlier purge).
    pub cancel: Vec<JobRef>,
}

pub struct Engine {
    pub rules: Rules,
    content: Content,
    /// Trained in `new`; in `untrained`, on first use (the administrator's commands only render
    /// notices and never classify).
    classifier: OnceLock<Classifier>,
    /// The intents to train on first use; empty once trained.
    pending_training: Vec<Intent>,
    /// Intent ids by classifier index.
    ids: Vec<String>,
    /// How each intent reads as an option ("did you mean…"), by classifier index.
    option_labels: Vec<String>,
    /// What each intent is to the conversation (`role` in its file), by classifier index.
    roles: Vec<Role>,
    /// Every intent's follow-ups (`[[follow_up]]` in its file), with the intent's id.
    follow_ups: Vec<(String, crate::understanding::intents::FollowUp)>,
    /// The guide's facts every template may name (`{login_url}`, `{lock_hours}`…), made once.
    facts: Vec<(&'static str, String)>,
}

/// "stop reminders", "no reminders thanks", "stop reminders pls my phone keeps buzzing": the
/// command first, whatever follows it (on the normal form).
static REMINDERS_OFF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:(?:stop|turn off|switch off|disable|mute|pause|no more|cancel)(?: (?:the|my|all|your|these|those|any))? (?:reminders?|notifications?|alerts)|(?:turn|switch) (?:the |my |all |your )?(?:reminders?|notifications?|alerts) off|stop reminding me)\b|^(?:(?:please|pls|ok|okay|actually|can you|could you|can u|oh|and|also|oh and|right|so)\s+)*(?:(?:stop|no more|cancel) (?:the |my |all |your |these |those |any )?messages|no (?:reminders?|notifications?|alerts)(?: (?:please|pls|thanks|thank you|ta|cheers))*$)\b")
        .expect("pattern")
});
/// "start reminders", "reminders back on please", "actually turn the reminders back on", "ok
/// you can send reminders again", "ugh ok. turn reminders back on".
static REMINDERS_ON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:(?:start|turn on|switch on|enable|resume|unmute)(?: (?:the|my|all|your))? (?:reminders?|notifications?|alerts)|(?:turn|switch|put) (?:the |my |all |your )?(?:reminders?|notifications?|alerts) (?:back )?on|(?:the |my )?(?:reminders?|notifications?|alerts) back on)\b|^(?:(?:please|pls|ok|okay|actually|can you|could you|can u|oh|and|also|oh and|right|so)\s+)*(?:(?:the |my )?(?:reminders?|notifications?|alerts) on|(?:you can |can you |could you )?(?:send|give) (?:me )?(?:the |my )?(?:reminders?|notifications?|alerts)(?: again| back)?)\b")
        .expect("pattern")
});
static ATTEMPTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        \b(?P<n>\d{1,2}|one|two|three|four|five|six)\s+(?:(?:wrong|failed|incorrect|bad|unsuccessful|more)\s+)?(?:times?|attempts?|tries|try|goes|go)\b(?P<left>\s+(?:left|remaining))?
        | \bthat'?s\s+(?P<now>\d|two|three)\s+(?:now|times|goes|tries|wrong|failed|incorrect)\b
        | \b(?:done|had|got|made|typed|entered|put\s+in)\s+(?P<done>\d|one|two|three)\s+wrong\b
        | \b(?P<w>once|twice|thrice)\b
        | \b(?P<ord>first|second|third|1st|2nd|3rd)\s+(?:attempt|try|go|time)\b",
    )
    .expect("pattern")
});

impl Engine {
    pub fn new(rules: Rules, intents: &[Intent], content: Content) -> Engine {
        let classifier = Classifier::train(intents, &content.lexicon);
        Engine::with_classifier(rules, intents, content, classifier)
    }

    /// An engine with a classifier trained (or loaded) beforehand for these intents and content.
    pub fn with_classifier(
        rules: Rules,
        intents: &[Intent],
        content: Content,
        classifier: Classifier,
    ) -> Engine {
        Engine::with(
            rules,
            intents,
            content,
            OnceLock::from(classifier),
            Vec::new(),
        )
    }

    /// An engine that trains its classifier only when a message is first classified: start-up
    /// for commands that only act on escalations.
    pub fn untrained(rules: Rules, intents: &[Intent], content: Content) -> Engine {
        Engine::with(rules, intents, content, OnceLock::new(), intents.to_vec())
    }

    fn with(
        rules: Rules,
        intents: &[Intent],
        content: Content,
        classifier: OnceLock<Classifier>,
        pending_training: Vec<Intent>,
    ) -> Engine {
        let facts = vec![
            ("login_url", content.link("login_url").to_string()),
            ("reset_url", content.link("reset_url").to_string()),
            ("portal_url", content.link("portal_url").to_string()),
            ("mailbox", rules.mailbox.clone()),
            ("link_hours", rules.link_life.num_hours().to_string()),
            ("max_attempts", rules.max_attempts.to_string()),
            ("lock_hours", rules.lock_time.num_hours().to_string()),
            ("warn_minutes", rules.warn_before.num_minutes().to_string()),
        ];
        Engine {
            facts,
            rules,
            content,
            classifier,
            pending_training,
            ids: intents.iter().map(|i| i.id.clone()).collect(),
            option_labels: intents.iter().map(|i| i.label.clone()).collect(),
            roles: intents.iter().map(|i| i.role).collect(),
            follow_ups: intents
                .iter()
                .flat_map(|i| i.follow_ups.iter().map(|f| (i.id.clone(), f.clone())))
                .collect(),
        }
    }

    /// The intents whose own patterns match `norm` ("locked at 8, when will it unlock" states a
    /// lock even when the timer question is the reading), in one pass over the patterns.
    pub fn pattern_intents(&self, norm: &str) -> Vec<&str> {
        let classifier = self.classifier();
        classifier
            .pattern_hits(norm)
            .into_iter()
            .map(|idx| classifier.intent_id(idx))
            .collect()
    }

    /// Whether intent `id`'s own patterns match `norm`.
    pub fn pattern_says(&self, id: &str, norm: &str) -> bool {
        self.pattern_intents(norm).contains(&id)
    }

    pub fn classifier(&self) -> &Classifier {
        self.classifier
            .get_or_init(|| Classifier::train(&self.pending_training, &self.content.lexicon))
    }

    pub fn content(&self) -> &Content {
        &self.content
    }

    /// Classifies and applies the confidence threshold and ambiguity margin.
    pub fn understand(&self, text: &str) -> (Classification, Understood) {
        self.understand_normalized(&normalize(text))
    }

    /// `understand` for a message already in normal form (`text::normalize`).
    pub fn understand_normalized(&self, norm: &str) -> (Classification, Understood) {
        let c = self.classifier().classify_normalized(norm);
        let u = if self.content.scope.names_other_system(norm) {
            Understood::OutOfScope { confidence: 1.0 }
        } else {
            self.decide(&c)
        };
        (c, u)
    }

    fn decide(&self, c: &Classification) -> Understood {
        let oos = self.classifier().out_of_scope();
        let (top, p) = c.top();
        if c.by_pattern {
            return Understood::Intent {
                id: top,
                confidence: p,
            };
        }
        // Declined when the bot is not `threshold` sure the message is about ESR access, or less
        // than `INTENT_FLOOR` of that sure of any one ESR intent (a vague message spread over
        // many);
        // otherwise the likeliest intent, or a question when two or three are close.
        let p_oos = c
            .ranked
            .iter()
            .find(|(i, _)| *i == oos)
            .map_or(0.0, |r| r.1);
        let p_in = 1.0 - p_oos;
        let mut candidates = c.ranked.iter().filter(|(i, _)| *i != oos);
        let Some(&(best, q)) = candidates.next() else {
            return Understood::OutOfScope { confidence: 1.0 };
        };
        if p_in < self.rules.threshold || q < self.rules.threshold * INTENT_FLOOR {
            return Understood::OutOfScope { confidence: p_oos };
        }
        // Closeness is judged among the ESR readings alone (probabilities given it is about ESR).
        let close: Vec<usize> = std::iter::once(best)
            .chain(
                candidates
                    .take(2)
                    .filter(|(_, r)| (q - r) / p_in < self.rules.margin)
                    .map(|(i, _)| *i),
            )
            .collect();
        if close.len() >= 2 {
            return Understood::Ambiguous { options: close };
        }
        Understood::Intent {
            id: best,
            confidence: q,
        }
    }

    /// The intent a message is finally answered with (what `eval` scores): the top intent, or
    /// out_of_scope under the threshold. An ambiguous message counts as its best guess.
    pub fn predict(&self, text: &str) -> (&str, f32) {
        let (c, u) = self.understand_raw(text);
        self.answered_as(&c, &u)
    }

    /// `understand` for a message as typed: cleaned and with secrets cut out first, as `handle`
    /// does.
    pub fn understand_raw(&self, text: &str) -> (Classification, Understood) {
        self.understand(&privacy::redact(&clean_input(text)).text)
    }

    /// The intent a reading is scored as, with its confidence.
    pub fn answered_as(&self, c: &Classification, u: &Understood) -> (&str, f32) {
        match *u {
            Understood::Intent { id, confidence } => (self.intent_id(id), confidence),
            Understood::Ambiguous { ref options } => {
                let best = options[0];
                let p = c
                    .ranked
                    .iter()
                    .find(|(i, _)| *i == best)
                    .map_or(0.0, |r| r.1);
                (self.intent_id(best), p)
            }
            Understood::OutOfScope { confidence } => (OUT_OF_SCOPE, confidence),
        }
    }

    /// The id of the intent at classifier index `idx`.
    pub fn intent_id(&self, idx: usize) -> &str {
        &self.ids[idx]
    }

    /// What the intent at `idx` is to the conversation.
    pub fn role(&self, idx: usize) -> Role {
        self.roles[idx]
    }

    /// Every intent's id, in the classifier's order.
    pub fn intent_ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    /// Handles one message from `who`, whose state is `state` (changed in place).
    /// `next_reference` is the reference an escalation made by this message would get.
    pub fn handle(
        &self,
        who: &Recipient,
        state: &mut UserState,
        raw: &str,
        now: DateTime<Utc>,
        next_reference: &str,
    ) -> Decision {
        let mut d = Decision::new();
        let cleaned = clean_input(raw);
        if cleaned.chars().count() > MAX_MESSAGE_CHARS {
            d.reply.text = self.content.message("too_long").to_string();
            return d;
        }
        let redacted = privacy::redact(&cleaned);
        let mut prefix = String::new();
        if !redacted.found.is_empty() {
            d.reply.had_secret = true;
            d.reply.personal = true;
            prefix = format!("{}\n\n", self.content.message("secret_warning"));
        }
        let text = redacted.text;
        let norm = normalize(&text);
        if norm.is_empty() {
            d.reply.text = format!("{prefix}{}", self.content.message("empty"));
            return d;
        }
        if pending_expired(&state.pending, now) {
            state.pending = Pending::Nothing;
        }

        // Side commands leave an open question open.
        let body = if REMINDERS_OFF.is_match(&norm) && !REMINDERS_ON.is_match(&norm) {
            state.reminders_off = true;
            d.reply.personal = true;
            let off = self.content.message("reminders_off");
            // With no reminders coming, the times to note.
            if self.has_timers(state, now) {
                format!("{off}\n\n{}", self.status(state, now))
            } else {
                off.to_string()
            }
        } else if REMINDERS_ON.is_match(&norm) {
            state.reminders_off = false;
            d.reply.personal = true;
            self.content.message("reminders_on").to_string()
        } else {
            let msg = Incoming {
                text: &text,
                norm: &norm,
                reading: OnceCell::new(),
            };
            let mut turn = Turn {
                who,
                state,
                text: &text,
                norm: &norm,
                time: None,
                count: None,
                now,
                next_reference,
                d: &mut d,
                notes: Vec::new(),
                time_problem: None,
                time_assumed: false,
                someone_else: false,
            };
            let before = (
                turn.state.declines,
                turn.state.pending.clone(),
                turn.state.topic.clone(),
            );
            let body = match self.meta(&mut turn, &msg) {
                Some(reply) => reply,
                None => match self.continue_dialogue(&mut turn, &msg) {
                    Some(reply) => reply,
                    None => self.answer_fresh(&mut turn, &msg),
                },
            };
            // A secret and nothing the bot can place, in the middle of a conversation ("do you
            // need my dob? its …"): the warning is the whole answer, not a decline, and the
            // topic and an open question stay.
            let mid_conversation = before.1 != Pending::Nothing
                || before.2.as_ref().is_some_and(|(_, at)| {
                    now.timestamp_millis() - at <= PENDING_TTL_MINUTES * 60_000
                });
            let body = if turn.d.reply.had_secret
                && mid_conversation
                && turn.d.reply.intent.as_deref() == Some(OUT_OF_SCOPE)
            {
                (turn.state.declines, turn.state.pending, turn.state.topic) = before.clone();
                turn.d.reply.choices.clear();
                String::new()
            } else {
                body
            };
            let body = match self.take_volunteered(&mut turn) {
                // Nothing but the details ("my assignment number is 12345678"): that is the
                // answer, not a decline, and an open question stays open.
                Some(noted) if turn.d.reply.intent.as_deref() == Some(OUT_OF_SCOPE) => {
                    (turn.state.declines, turn.state.pending, turn.state.topic) = before;
                    turn.d.reply.intent = None;
                    turn.d.reply.choices.clear();
                    turn.d.reply.personal = true;
                    noted
                }
                Some(noted) => {
                    turn.notes.push(noted);
                    body
                }
                None => body,
            };
            // "Siân.Owen@nhs.net": an address with an accent is never an nhs.net address as
            // typed, wherever it comes.
            if let Some(address) = emails(&text).find(|a| !a.is_ascii())
                && !body.contains(self.content.message("email_accents"))
            {
                let note = self.message("email_accents_note", &[("address", address.to_string())]);
                turn.notes.push(note);
            }
            // Whatever is kept must be forgotten some day: a record with no job gets a purge.
            if turn.state.jobs.is_empty() && !turn.state.is_empty() {
                self.purge_at(&mut turn, now + self.rules.purge_after);
            }
            turn.d.reply.attachments = self.calendar_files(&turn);
            let notes = std::mem::take(&mut turn.notes);
            std::iter::once(body)
                .chain(notes)
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n")
        };
        d.reply.text = format!("{prefix}{body}").trim_end().to_string();
        d
    }

    /// Acts on a recognised intent: its registered behaviour, or its `text` answer. A message
    /// about someone else gets the behaviour's general answer, and nothing is recorded.
    pub(crate) fn act(&self, intent: usize, t: &mut Turn) -> String {
        // "locked at 8 this morning, when will it unlock": the timer question states its event,
        // which is recorded (or, for someone else, answered in general) as that event.
        let intent = match behaviours::states_event(self, self.intent_id(intent), t.norm)
            .and_then(|event| self.classifier().index_of(event))
        {
            Some(event) => {
                t.d.reply.intent = Some(self.intent_id(event).to_string());
                event
            }
            None => intent,
        };
        let id = self.intent_id(intent).to_string();
        let after_someone_else = t.state.topic_for_someone_else && Self::recent_topic(t).is_some();
        // "can my manager unlock it? she's on at 8", in the writer's own conversation: the
        // manager is who might help, not whose account it is.
        let own_topic = !t.state.topic_for_someone_else && Self::recent_topic(t).is_some();
        let someone_else = behaviours::still_about_someone_else(t.norm, after_someone_else)
            && !(own_topic && behaviours::asks_a_helper(t.norm));
        t.someone_else = someone_else;
        if self.role(intent).is_topic() {
            self.set_topic(t, &id);
            t.state.topic_for_someone_else = someone_else;
        }
        match behaviours::find(&id) {
            Some(b) => match b.for_someone_else {
                Some(variant) if someone_else => self.say(self.content.answer(&id, variant), &[]),
                _ => (b.act)(self, t, &id),
            },
            None => self.say(self.content.answer(&id, "text"), &[]),
        }
    }

    /// Remembers what the conversation is about. The time is refreshed only when the topic
    /// changes or has gone stale, so repeated questions on one topic stay read-only; a purge
    /// forgets it once it no longer matters (see `handle`: a record never outlives its jobs).
    fn set_topic(&self, t: &mut Turn, id: &str) {
        let now = t.now.timestamp_millis();
        let fresh =
            matches!(&t.state.topic, Some((old, at)) if old == id && now - at < TOPIC_REFRESH_MS);
        if fresh {
            return;
        }
        t.state.topic = Some((id.to_string(), now));
    }

    /// The intent a short follow-up means after the conversation's recent topic, if any.
    /// With no recent topic, a running timer is the context: a lock reads as `account_locked`,
    /// a live link as `reset_requested` ("had a poorly patient, has it gone?" three hours on).
    pub(crate) fn follow_up(&self, t: &Turn) -> Option<usize> {
        let topic = Self::recent_topic(t).or_else(|| {
            if t.state.locked_at(t.now).is_some() {
                Some("account_locked")
            } else if t.state.link_valid_until.is_some_and(|exp| exp > t.now) {
                Some("reset_requested")
            } else {
                None
            }
        })?;
        let (id, _) = self
            .follow_ups
            .iter()
            .find(|(_, f)| f.matches(topic, t.norm))?;
        self.classifier().index_of(id)
    }

    /// The conversation's topic, while it is recent enough to read a message with.
    pub(crate) fn recent_topic<'t>(t: &'t Turn) -> Option<&'t str> {
        let (topic, at) = t.state.topic.as_ref()?;
        let recent = t.now.timestamp_millis() - at <= PENDING_TTL_MINUTES * 60_000;
        recent.then_some(topic.as_str())
    }

    /// How an intent reads as an option ("did you mean…").
    pub fn option_label<'a>(&'a self, id: &'a str) -> &'a str {
        self.classifier()
            .index_of(id)
            .map_or(id, |i| self.option_labels[i].as_str())
    }

    /// Fills a template with the guide's facts and `extra`.
    pub fn say(&self, template: &str, extra: &[(&str, String)]) -> String {
        let vars: Vec<(&str, &str)> = self
            .facts
            .iter()
            .chain(extra)
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        render(template, &vars)
    }

    /// Puts what the person volunteered about themselves (`understanding::details`) on the
    /// hand-over it belongs to: the escalation this turn records, else (while an e-mail change is
    /// being offered) their state until they say yes, else their newest open escalation. With no
    /// hand-over in sight it is not kept at all.
    /// Returns what to tell them about it, when this message offered something.
    fn take_volunteered(&self, t: &mut Turn) -> Option<String> {
        let found = details::volunteered(t.text);
        let mut all = std::mem::take(&mut t.state.volunteered);
        all.merge(&found);
        if all.is_empty() {
            return None;
        }
        let reference = if let Some(e) = &mut t.d.escalation {
            e.volunteered.merge(&all);
            Some(e.reference.clone())
        } else if matches!(
            t.state.pending,
            Pending::EmailOffer { .. } | Pending::EmailAddress { .. }
        ) {
            t.state.volunteered = all;
            None
        } else if let Some((_, reference)) = t.state.open_escalations.last() {
            let u = &mut t.d.escalation_update;
            if u.reference.is_none() {
                u.reference = Some(reference.clone());
            }
            if u.reference.as_ref() != Some(reference) {
                return None;
            }
            u.volunteered.merge(&all);
            Some(reference.clone())
        } else {
            return None;
        };
        if found.is_empty() {
            return None;
        }
        let what = found
            .lines()
            .iter()
            .map(|(label, value)| format!("{} ({value})", label.to_lowercase()))
            .collect::<Vec<_>>()
            .join(" and ");
        Some(match reference {
            Some(reference) => self.message(
                "details_added",
                &[("details", what), ("reference", reference)],
            ),
            None => self.message("details_kept", &[("details", what)]),
        })
    }

    /// A message from `data/replies.toml` filled with the guide's facts and `extra`.
    pub fn message(&self, key: &str, extra: &[(&str, String)]) -> String {
        self.say(self.content.message(key), extra)
    }

    pub fn clock(&self, t: DateTime<Utc>, now: DateTime<Utc>) -> String {
        format_clock(t, now, self.rules.tz)
    }

    /// A local clock time with no day ("21:00"), for text read on the day it names (a calendar
    /// event's description), where "tomorrow" would go stale.
    fn local_hhmm(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.rules.tz).format("%H:%M").to_string()
    }

    /// Adds a job for this turn's person.
    pub(crate) fn schedule(&self, t: &mut Turn, kind: JobKind, due: DateTime<Utc>) {
        let job = Job::new(t.who, kind, due);
        t.state.jobs.push(job.job_ref());
        t.d.schedule.push(job);
    }

    /// Cancels this turn's person's jobs that `which` picks.
    pub(crate) fn cancel(&self, t: &mut Turn, which: impl Fn(JobKind) -> bool) {
        let (gone, kept): (Vec<JobRef>, Vec<JobRef>) =
            t.state.jobs.iter().partition(|j| which(j.kind));
        t.state.jobs = kept;
        t.d.cancel.extend(gone);
    }

    /// Makes sure a purge runs no earlier than `at`: one purge job per person, moved later when
    /// needed, so repeated messages never pile purges up.
    pub(crate) fn purge_at(&self, t: &mut Turn, at: DateTime<Utc>) {
        if t.state.job(JobKind::Purge).is_some_and(|p| p.due() >= at) {
            return;
        }
        self.cancel(t, |k| k == JobKind::Purge);
        self.schedule(t, JobKind::Purge, at);
    }

    /// Starts a lock at `start` (replacing any earlier one) and schedules its end notice.
    pub(crate) fn lock(&self, t: &mut Turn, start: DateTime<Utc>) -> DateTime<Utc> {
        let until = start + self.rules.lock_time;
        self.cancel(t, |k| k == JobKind::LockOver);
        // A link that was still live cannot be used through the lock: stop its reminders.
        if t.state.link_valid_until.is_some_and(|exp| exp > t.now) {
            self.clear_link(t);
            t.notes.push(self.message("lock_ends_link", &[]));
        }
        t.state.locked_until = Some(until);
        t.state.failed_attempts = self.rules.max_attempts;
        t.state.attempts_at = Some(start);
        self.schedule(t, JobKind::LockOver, until);
        until
    }

    /// "Add to calendar" files for the timers this turn started: a new reset link's expiry
    /// (alerting as the bot's own warning would) and a new lock's end.
    fn calendar_files(&self, t: &Turn) -> Vec<Attachment> {
        let started = |kind: JobKind| t.d.schedule.iter().any(|j| j.kind == kind);
        let mut files = Vec::new();
        let link = started(JobKind::LinkWarning) || started(JobKind::LinkExpired);
        if let Some(exp) = t.state.link_valid_until.filter(|_| link) {
            let vars = [("expires_at", self.local_hhmm(exp))];
            let event = calendar::Event {
                uid: format!("esrbot-link-{}@esrbot", exp.timestamp()),
                summary: self.message("calendar_link_summary", &vars),
                description: self.message("calendar_link_description", &vars),
                at: exp,
                alert_before: self.rules.warn_before,
            };
            files.push(event.attachment(CALENDAR_LINK_FILE, t.now));
        }
        if let Some(until) = t.state.locked_until.filter(|_| started(JobKind::LockOver)) {
            let vars = [("locked_until", self.local_hhmm(until))];
            let event = calendar::Event {
                uid: format!("esrbot-unlock-{}@esrbot", until.timestamp()),
                summary: self.message("calendar_lock_summary", &vars),
                description: self.message("calendar_lock_description", &vars),
                at: until,
                alert_before: Duration::zero(),
            };
            files.push(event.attachment(CALENDAR_LOCK_FILE, t.now));
        }
        files
    }

    /// Forgets the reset link and its reminders.
    pub(crate) fn clear_link(&self, t: &mut Turn) {
        t.state.reset_requested_at = None;
        t.state.link_valid_until = None;
        self.cancel(t, JobKind::is_link);
    }

    /// The person's timers as clock times.
    /// A live link or a running lock.
    pub(crate) fn has_timers(&self, state: &UserState, now: DateTime<Utc>) -> bool {
        state.link_valid_until.is_some_and(|exp| exp > now) || state.locked_at(now).is_some()
    }

    pub fn status(&self, state: &UserState, now: DateTime<Utc>) -> String {
        let mut lines = Vec::new();
        if let Some(exp) = state.link_valid_until {
            let vars = [
                ("expires_at", self.clock(exp, now)),
                ("time_left", time_left(exp - now)),
            ];
            let key = if exp > now {
                "status_link"
            } else {
                "status_link_expired"
            };
            lines.push(self.message(key, &vars));
        }
        if let Some(until) = state.locked_at(now) {
            lines.push(self.message(
                "status_lock",
                &[
                    ("locked_until", self.clock(until, now)),
                    ("time_left", time_left(until - now)),
                ],
            ));
        } else if state.failed_attempts > 0 && state.failed_attempts < self.rules.max_attempts {
            let left = self.rules.max_attempts - state.failed_attempts;
            lines.push(self.message(
                "status_attempts",
                &[
                    ("attempts_used", state.failed_attempts.to_string()),
                    (
                        "attempts_word",
                        plural(state.failed_attempts, "attempt", "attempts").into(),
                    ),
                    ("attempts_left", attempts_phrase(left)),
                ],
            ));
        }
        if lines.is_empty() {
            return self.say(self.content.answer("timer_status", "none"), &[]);
        }
        if state.reminders_off {
            lines.push(self.content.message("status_reminders_off").to_string());
        }
        lines.join("\n")
    }

    /// A job fell due: what to tell the person, if it still means anything, and the next job of
    /// its timer. Changes `state` (the job leaves `state.jobs`; a purge clears what can no longer
    /// matter). A job the state no longer lists was replaced or cancelled: it does nothing.
    pub fn on_due(&self, state: &mut UserState, job: &Job, now: DateTime<Utc>) -> DueOutcome {
        let mut out = DueOutcome {
            tell: None,
            next: Vec::new(),
            cancel: Vec::new(),
        };
        let this = job.job_ref();
        let Some(at) = state.jobs.iter().position(|j| *j == this) else {
            return out;
        };
        state.jobs.remove(at);
        self.forget_stale_conversation(state, now);
        let (tell, next) = match job.kind {
            JobKind::LinkWarning => {
                let Some(exp) = state.link_valid_until else {
                    return out;
                };
                // A warning for a link that has already expired gives way to the expiry notice.
                let tell = (now < exp).then_some((JobKind::LinkWarning, exp));
                (tell, Some((JobKind::LinkExpired, exp)))
            }
            JobKind::LinkExpired => {
                let Some(exp) = state.link_valid_until else {
                    return out;
                };
                (
                    Some((JobKind::LinkExpired, exp)),
                    Some((JobKind::Purge, exp + self.rules.purge_after)),
                )
            }
            JobKind::LockOver => {
                // Nothing reads a lock once it has ended: forget it, and the attempts that led to
                // it, at once (no purge needed).
                let Some(until) = state.locked_until.take() else {
                    return out;
                };
                state.failed_attempts = 0;
                state.attempts_at = None;
                (Some((JobKind::LockOver, until)), None)
            }
            JobKind::Purge => {
                self.purge(state, now);
                (None, None)
            }
        };
        out.tell = tell.filter(|_| !state.reminders_off);
        // A reminder starts a conversation of its own: "what do i do now" answers it.
        if let Some((kind, _)) = out.tell {
            let topic = match kind {
                JobKind::LockOver => "forgot_password",
                JobKind::LinkExpired => "link_expired",
                JobKind::LinkWarning | JobKind::Purge => "reset_requested",
            };
            state.topic = Some((topic.to_string(), now.timestamp_millis()));
        }
        // A record never outlives its jobs: what is left after this one is purged later.
        let next = next.or_else(|| {
            (job.kind != JobKind::Purge && state.jobs.is_empty() && !state.is_empty())
                .then(|| (JobKind::Purge, now + self.rules.purge_after))
        });
        if let Some((kind, due)) = next {
            let existing = state.job(JobKind::Purge).filter(|_| kind == JobKind::Purge);
            if existing.is_none_or(|p| p.due() < due) {
                if let Some(p) = existing {
                    state.jobs.retain(|j| *j != p);
                    out.cancel.push(p);
                }
                let next = Job::new(&job.recipient, kind, due);
                state.jobs.push(next.job_ref());
                out.next.push(next);
            }
        }
        out
    }

    /// The words of a reminder about the timer ending at `at`, as shown at `now`.
    pub fn reminder_text(&self, kind: JobKind, at: DateTime<Utc>, now: DateTime<Utc>) -> String {
        match kind {
            JobKind::LinkWarning => self.message(
                "reminder_link_warning",
                &[("expires_at", self.clock(at, now))],
            ),
            JobKind::LinkExpired => self.message(
                "reminder_link_expired",
                &[("expires_at", self.clock(at, now))],
            ),
            JobKind::LockOver => self.message(
                "reminder_lock_over",
                &[("locked_until", self.clock(at, now))],
            ),
            JobKind::Purge => String::new(),
        }
    }

    /// Forgets timers that ended at least `purge_after` ago.
    pub fn purge(&self, state: &mut UserState, now: DateTime<Utc>) {
        let old = |t: Option<DateTime<Utc>>| t.is_some_and(|t| t + self.rules.purge_after <= now);
        if old(state.link_valid_until) {
            state.link_valid_until = None;
            state.reset_requested_at = None;
        }
        if old(state.locked_until) {
            state.locked_until = None;
        }
        if old(state.attempts_at) && state.locked_at(now).is_none() {
            state.failed_attempts = 0;
            state.attempts_at = None;
        }
        self.forget_stale_conversation(state, now);
    }

    /// Forgets an open question and a topic older than an hour: the conversation has moved on.
    pub fn forget_stale_conversation(&self, state: &mut UserState, now: DateTime<Utc>) {
        if pending_expired(&state.pending, now) {
            state.pending = Pending::Nothing;
        }
        if state
            .topic
            .as_ref()
            .is_some_and(|(_, at)| now.timestamp_millis() - at > PENDING_TTL_MINUTES * 60_000)
        {
            state.topic = None;
            state.declines = 0;
        }
    }
}

/// Whether a message from someone in `state` continues a conversation: a topic or an open
/// question from the last hour (what the engine itself still reads a follow-up against).
pub fn in_conversation(state: &UserState, now: DateTime<Utc>) -> bool {
    let topic = state
        .topic
        .as_ref()
        .is_some_and(|(_, at)| now.timestamp_millis() - at <= PENDING_TTL_MINUTES * 60_000);
    topic || (!matches!(state.pending, Pending::Nothing) && !pending_expired(&state.pending, now))
}

fn pending_expired(p: &Pending, now: DateTime<Utc>) -> bool {
    p.asked_at()
        .is_some_and(|asked| now - asked > Duration::minutes(PENDING_TTL_MINUTES))
}

/// "3 h 20 min", "45 min", "less than a minute".
pub fn time_left(d: Duration) -> String {
    let mins = d.num_minutes();
    match (mins / 60, mins % 60) {
        (0, 0) => "less than a minute".into(),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// "1 attempt", "2 attempts".
pub(crate) fn attempts_phrase(n: u32) -> String {
    format!("{n} {}", plural(n, "attempt", "attempts"))
}

pub(crate) fn plural(n: u32, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// How many failed attempts a message reports ("wrong twice", "3 tries", "1 attempt left").
pub fn attempts_in(norm: &str, max: u32) -> Option<u32> {
    let caps = ATTEMPTS.captures(norm)?;
    let n = if let Some(n) = caps.name("n") {
        let v = match n.as_str().parse::<u32>() {
            Ok(v) => v,
            Err(_) => number_word(n.as_str())? as u32,
        };
        if caps.name("left").is_some() {
            max.checked_sub(v)?
        } else {
            v
        }
    } else if let Some(n) = caps.name("now").or(caps.name("done")) {
        // "ugh thats 3 now", "ive done 2 wrong already"
        match n.as_str() {
            "one" => 1,
            "two" => 2,
            "three" => 3,
            d => d.parse().ok()?,
        }
    } else if let Some(w) = caps.name("w") {
        // "tried once more", "once again": one more, not one in all (see `WRONG_AGAIN`).
        let rest = norm[w.end()..].trim_start();
        if w.as_str() == "once" && (rest.starts_with("more") || rest.starts_with("again")) {
            return None;
        }
        match w.as_str() {
            "once" => 1,
            "twice" => 2,
            _ => 3,
        }
    } else {
        match caps.name("ord")?.as_str() {
            "first" | "1st" => 1,
            "second" | "2nd" => 2,
            _ => 3,
        }
    };
    (n <= 20).then_some(n)
}
