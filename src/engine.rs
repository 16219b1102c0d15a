//! The pure core: given a user's state, a message and the time, decide the reply, the new state,
//! the reminders to schedule or cancel and any escalation. No I/O and no clock reading here (the
//! time is passed in), so every rule can be tested with a virtual clock; the caller commits what
//! the engine decided in one transaction.

use std::cell::OnceCell;
use std::sync::{LazyLock, OnceLock};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use regex::Regex;

use crate::classifier::{Classification, Classifier};
use crate::config::Config;
use crate::content::{Content, render};
use crate::intents::{Intent, OUT_OF_SCOPE};
use crate::privacy;
use crate::state::{
    Button, ButtonStyle, Escalation, EscalationKind, EscalationStatus, Pending, Reminder,
    ReminderKind, ReminderRef, StatusChange, UserState,
};
use crate::store::is_link_reminder;
use crate::text::{MAX_MESSAGE_CHARS, clean_input, find_email, is_nhs_net, normalize};
use crate::timeexpr::{find_past_time, format_clock};

/// A question the bot asked is forgotten after this long: an old "yes" must not trigger it.
const PENDING_TTL_MINUTES: i64 = 60;

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
        })
    }
}

/// One message being answered: its text (secrets cut out), normal form, and the classifier's
/// reading, taken at most once however many steps of the dialogue ask for it.
struct Message<'a> {
    text: &'a str,
    norm: &'a str,
    reading: OnceCell<Understood>,
}

impl Message<'_> {
    fn understood(&self, engine: &Engine) -> Understood {
        self.reading
            .get_or_init(|| engine.understand(self.text).1)
            .clone()
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
    /// Quick answers a transport may show as buttons; pressing one sends `id` minus its `say:`
    /// prefix as the person's next message (the terminal shows the choices in the text instead).
    pub buttons: Vec<Button>,
}

/// The message a "say:…" button stands for.
pub fn button_message(id: &str) -> Option<&str> {
    id.strip_prefix("say:")
}

/// "I've requested a reset": starts the link timer from now.
fn reset_button() -> Button {
    say_button(
        "I've requested a reset",
        "I have just requested a password reset",
        ButtonStyle::Primary,
    )
}

fn say_button(label: &str, message: &str, style: ButtonStyle) -> Button {
    Button {
        id: format!("say:{message}"),
        label: label.chars().take(80).collect(),
        style,
    }
}

/// Everything one message changes, for the caller to commit in one transaction.
#[derive(Debug, Clone)]
pub struct Decision {
    pub reply: Reply,
    pub schedule: Vec<Reminder>,
    pub cancel: Vec<ReminderRef>,
    pub escalation: Option<Escalation>,
}

pub struct Engine {
    pub rules: Rules,
    content: Content,
    /// Trained in `new`; in `untrained`, on first use (the administrator's commands only render
    /// notices and never classify).
    classifier: OnceLock<Classifier>,
    /// The intents to train on first use; empty once trained.
    pending_training: Vec<Intent>,
    labels: Vec<String>,
    intent_labels: Vec<String>,
}

static REMINDERS_OFF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:please )?(?:stop|turn off|switch off|disable|mute|pause|no more|cancel)(?: (?:the|my|all|your))? (?:reminders?|notifications?|messages|alerts)(?: please)?$")
        .expect("pattern")
});
static REMINDERS_ON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:please )?(?:start|turn on|switch on|enable|resume|unmute)(?: (?:the|my|all|your))? (?:reminders?|notifications?|alerts)(?: again)?(?: please)?$")
        .expect("pattern")
});
static YES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:yes|yeah|yea|yep|yup|y|ok|okay|sure|please|go on|go ahead|do it|please do|that would be great|yes please)\b").expect("pattern")
});
static NO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:no|nope|nah|n|cancel|stop|don't|dont|do not|never mind|nevermind|no thanks|not now|leave it)\b").expect("pattern")
});
static ATTEMPTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        \b(?P<n>\d{1,2}|one|two|three|four|five|six)\s+(?:(?:wrong|failed|incorrect|bad|unsuccessful|more)\s+)?(?:times?|attempts?|tries|try|goes|go)\b(?P<left>\s+(?:left|remaining))?
        | \b(?P<w>once|twice|thrice)\b
        | \b(?P<ord>first|second|third|1st|2nd|3rd)\s+(?:attempt|try|go|time)\b",
    )
    .expect("pattern")
});

impl Engine {
    pub fn new(rules: Rules, intents: &[Intent], content: Content) -> Engine {
        let classifier = Classifier::train(intents, &content.lexicon);
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
        Engine {
            rules,
            content,
            classifier,
            pending_training,
            labels: intents.iter().map(|i| i.id.clone()).collect(),
            intent_labels: intents.iter().map(|i| i.label.clone()).collect(),
        }
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
        let c = self.classifier().classify(text);
        let u = if self.content.scope.names_other_system(&normalize(text)) {
            Understood::OutOfScope { confidence: 1.0 }
        } else {
            self.decide(&c)
        };
        (c, u)
    }

    fn decide(&self, c: &Classification) -> Understood {
        let oos = self.classifier().out_of_scope();
        let (top, p) = c.top();
        if top == oos {
            return Understood::OutOfScope { confidence: p };
        }
        if c.by_pattern {
            return Understood::Intent {
                id: top,
                confidence: p,
            };
        }
        if p < self.rules.threshold {
            return Understood::OutOfScope {
                confidence: 1.0 - p,
            };
        }
        let close: Vec<usize> = c
            .ranked
            .iter()
            .take(3)
            .filter(|(i, q)| *i != oos && p - q < self.rules.margin)
            .map(|(i, _)| *i)
            .collect();
        if close.len() >= 2 {
            return Understood::Ambiguous { options: close };
        }
        Understood::Intent {
            id: top,
            confidence: p,
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
            Understood::Intent { id, confidence } => (self.label(id), confidence),
            Understood::Ambiguous { .. } => (self.label(c.top().0), c.top().1),
            Understood::OutOfScope { confidence } => (OUT_OF_SCOPE, confidence),
        }
    }

    pub fn label(&self, idx: usize) -> &str {
        &self.labels[idx]
    }

    /// Handles one message from a user whose state is `state` (changed in place).
    /// `next_reference` is the reference an escalation made by this message would get.
    pub fn handle(
        &self,
        user: &str,
        state: &mut UserState,
        raw: &str,
        now: DateTime<Utc>,
        next_reference: &str,
    ) -> Decision {
        let mut d = Decision {
            reply: Reply {
                text: String::new(),
                intent: None,
                confidence: 1.0,
                personal: false,
                had_secret: false,
                buttons: Vec::new(),
            },
            schedule: Vec::new(),
            cancel: Vec::new(),
            escalation: None,
        };
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

        let body = if REMINDERS_OFF.is_match(&norm) {
            state.reminders_off = true;
            state.pending = Pending::Nothing;
            d.reply.personal = true;
            self.content.message("reminders_off").to_string()
        } else if REMINDERS_ON.is_match(&norm) {
            state.reminders_off = false;
            state.pending = Pending::Nothing;
            d.reply.personal = true;
            self.content.message("reminders_on").to_string()
        } else {
            let msg = Message {
                text: &text,
                norm: &norm,
                reading: OnceCell::new(),
            };
            match self.continue_dialogue(user, state, &msg, now, next_reference, &mut d) {
                Some(reply) => reply,
                None => self.answer_fresh(user, state, &msg, now, next_reference, &mut d),
            }
        };
        d.reply.text = format!("{prefix}{body}");
        d
    }

    /// A reply to a question the bot asked, if the message answers it.
    fn continue_dialogue(
        &self,
        user: &str,
        state: &mut UserState,
        msg: &Message,
        now: DateTime<Utc>,
        next_reference: &str,
        d: &mut Decision,
    ) -> Option<String> {
        let (text, norm) = (msg.text, msg.norm);
        match std::mem::take(&mut state.pending) {
            Pending::Nothing => None,
            Pending::Choice {
                options,
                time,
                count,
                asked_at,
            } => {
                let chosen = self.pick_option(&options, norm);
                match chosen {
                    Some(id) => {
                        let idx = self.classifier().index_of(&id)?;
                        d.reply.intent = Some(id);
                        d.reply.confidence = 1.0;
                        Some(self.act(idx, user, state, time, count, now, next_reference, d))
                    }
                    None => {
                        // Not an answer to the question: read it as a new message, but keep the
                        // question open if the new message is not understood either.
                        let u = msg.understood(self);
                        if matches!(u, Understood::OutOfScope { .. }) && norm.len() <= 3 {
                            state.pending = Pending::Choice {
                                options: options.clone(),
                                time,
                                count,
                                asked_at,
                            };
                            Some(self.clarify_text(&options))
                        } else {
                            None
                        }
                    }
                }
            }
            Pending::EmailOffer { .. } => {
                if YES.is_match(norm) {
                    d.reply.personal = true;
                    state.pending = Pending::EmailAddress { asked_at: now };
                    Some(self.content.message("email_ask").to_string())
                } else if NO.is_match(norm) {
                    d.reply.personal = true;
                    Some(self.email_cancelled())
                } else if find_email(text).is_some() {
                    // They gave the address straight away.
                    Some(self.email_address(user, state, text, now, next_reference, d))
                } else {
                    None
                }
            }
            Pending::EmailAddress { .. } => {
                if find_email(text).is_some() {
                    Some(self.email_address(user, state, text, now, next_reference, d))
                } else if NO.is_match(norm) {
                    d.reply.personal = true;
                    Some(self.email_cancelled())
                } else {
                    match msg.understood(self) {
                        Understood::Intent { .. } | Understood::Ambiguous { .. } => None,
                        Understood::OutOfScope { .. } => {
                            d.reply.personal = true;
                            state.pending = Pending::EmailAddress { asked_at: now };
                            Some(self.content.message("email_ask").to_string())
                        }
                    }
                }
            }
        }
    }

    fn email_cancelled(&self) -> String {
        render(
            self.content.message("email_cancelled"),
            &[("mailbox", &self.rules.mailbox)],
        )
    }

    fn email_address(
        &self,
        user: &str,
        state: &mut UserState,
        text: &str,
        now: DateTime<Utc>,
        next_reference: &str,
        d: &mut Decision,
    ) -> String {
        d.reply.personal = true;
        d.reply.intent = Some("email_changed".into());
        let address = find_email(text).unwrap_or_default();
        if !is_nhs_net(address) {
            state.pending = Pending::EmailAddress { asked_at: now };
            return self.content.message("email_not_nhs").to_string();
        }
        let address = address.to_ascii_lowercase();
        if let Some(existing) = state.open_escalation(EscalationKind::EmailChanged) {
            return render(
                self.content.answer("email_changed", "exists"),
                &[("reference", existing), ("mailbox", &self.rules.mailbox)],
            );
        }
        self.escalate(
            user,
            state,
            EscalationKind::EmailChanged,
            Some(address.clone()),
            now,
            next_reference,
            d,
        );
        render(
            self.content.message("email_recorded"),
            &[
                ("address", &address),
                ("mailbox", &self.rules.mailbox),
                ("reference", next_reference),
            ],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn escalate(
        &self,
        user: &str,
        state: &mut UserState,
        kind: EscalationKind,
        new_address: Option<String>,
        now: DateTime<Utc>,
        reference: &str,
        d: &mut Decision,
    ) {
        state.open_escalations.push((kind, reference.to_string()));
        d.escalation = Some(Escalation {
            reference: reference.to_string(),
            kind,
            user: user.to_string(),
            display_name: state.display_name.clone(),
            new_address,
            created_at: now,
            status: EscalationStatus::Open,
            history: vec![StatusChange {
                status: EscalationStatus::Open,
                by: "esrbot".into(),
                at: now,
                note: None,
            }],
        });
    }

    /// Which offered option the answer names: its number, or words that classify as one of them.
    fn pick_option(&self, options: &[String], norm: &str) -> Option<String> {
        let trimmed = norm.trim_end_matches(['.', ')']).trim();
        if let Ok(n) = trimmed.parse::<usize>() {
            return options.get(n.checked_sub(1)?).cloned();
        }
        let words = ["first", "second", "third"];
        if let Some(n) = words
            .iter()
            .position(|w| trimmed == *w || trimmed == format!("the {w}").as_str())
        {
            return options.get(n).cloned();
        }
        let c = self.classifier().classify(norm);
        let best = c
            .ranked
            .iter()
            .find(|(i, _)| options.iter().any(|o| o == self.label(*i)))?;
        // Only a confident reading counts as choosing; otherwise it's a new message.
        (best.1 >= self.rules.threshold).then(|| self.label(best.0).to_string())
    }

    fn clarify_text(&self, options: &[String]) -> String {
        let list: Vec<String> = options
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let label = self
                    .classifier()
                    .index_of(id)
                    .map_or(id.as_str(), |i| self.intent_labels[i].as_str());
                format!("{}. {label}", n + 1)
            })
            .collect();
        render(
            self.content.message("clarify"),
            &[("options", &list.join("\n"))],
        )
    }

    fn answer_fresh(
        &self,
        user: &str,
        state: &mut UserState,
        msg: &Message,
        now: DateTime<Utc>,
        next_reference: &str,
        d: &mut Decision,
    ) -> String {
        let (text, norm) = (msg.text, msg.norm);
        let time = find_past_time(text, now, self.rules.tz).map(|m| m.at);
        let count = attempts_in(norm, self.rules.max_attempts);
        match msg.understood(self) {
            Understood::Intent { id, confidence } => {
                d.reply.intent = Some(self.label(id).to_string());
                d.reply.confidence = confidence;
                self.act(id, user, state, time, count, now, next_reference, d)
            }
            Understood::Ambiguous { options } => {
                let ids: Vec<String> = options.iter().map(|i| self.label(*i).to_string()).collect();
                d.reply.intent = None;
                state.pending = Pending::Choice {
                    options: ids.clone(),
                    time,
                    count,
                    asked_at: now,
                };
                d.reply.buttons = options
                    .iter()
                    .enumerate()
                    .map(|(n, i)| {
                        say_button(
                            &self.intent_labels[*i],
                            &(n + 1).to_string(),
                            ButtonStyle::Secondary,
                        )
                    })
                    .collect();
                self.clarify_text(&ids)
            }
            Understood::OutOfScope { confidence } => {
                d.reply.intent = Some(OUT_OF_SCOPE.into());
                d.reply.confidence = confidence;
                self.content.answer(OUT_OF_SCOPE, "text").to_string()
            }
        }
    }

    fn vars<'a>(&'a self, extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
        let r = &self.rules;
        let mut v = vec![
            ("login_url", self.content.link("login_url").to_string()),
            ("reset_url", self.content.link("reset_url").to_string()),
            ("portal_url", self.content.link("portal_url").to_string()),
            ("mailbox", r.mailbox.clone()),
            ("link_hours", r.link_life.num_hours().to_string()),
            ("max_attempts", r.max_attempts.to_string()),
            ("lock_hours", r.lock_time.num_hours().to_string()),
            ("warn_minutes", r.warn_before.num_minutes().to_string()),
        ];
        v.extend(extra.iter().cloned());
        v
    }

    fn say(&self, template: &str, extra: &[(&str, String)]) -> String {
        let vars = self.vars(extra);
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        render(template, &refs)
    }

    fn clock(&self, t: DateTime<Utc>, now: DateTime<Utc>) -> String {
        format_clock(t, now, self.rules.tz)
    }

    /// Acts on a recognised intent: the state rules of the guide live here.
    #[allow(clippy::too_many_arguments)]
    fn act(
        &self,
        intent: usize,
        user: &str,
        state: &mut UserState,
        time: Option<DateTime<Utc>>,
        count: Option<u32>,
        now: DateTime<Utc>,
        next_reference: &str,
        d: &mut Decision,
    ) -> String {
        let id = self.label(intent).to_string();
        let locked = state.locked_at(now);
        let locked_vars = |t: DateTime<Utc>| vec![("locked_until", self.clock(t, now))];
        match id.as_str() {
            "forgot_password" | "link_expired" if locked.is_some() => {
                d.reply.personal = true;
                let until = locked.unwrap_or(now);
                self.say(self.content.answer(&id, "locked"), &locked_vars(until))
            }
            "link_expired" => {
                // The user's link is dead whatever we thought: stop reminding about it.
                self.clear_link(state, d);
                d.reply.buttons = vec![reset_button()];
                self.say(self.content.answer(&id, "text"), &[])
            }
            "forgot_password" => {
                d.reply.buttons = vec![reset_button()];
                self.say(self.content.answer(&id, "text"), &[])
            }
            "reset_requested" => {
                d.reply.personal = true;
                if let Some(until) = locked {
                    return self.say(self.content.answer(&id, "locked"), &locked_vars(until));
                }
                let at = time.unwrap_or(now);
                let expires = at + self.rules.link_life;
                let vars = [
                    ("requested_at", self.clock(at, now)),
                    ("expires_at", self.clock(expires, now)),
                ];
                if expires <= now {
                    return self.say(self.content.answer(&id, "already_expired"), &vars);
                }
                self.clear_link(state, d);
                state.reset_requested_at = Some(at);
                state.link_valid_until = Some(expires);
                let warn_at = expires - self.rules.warn_before;
                if warn_at > now {
                    d.schedule.push(reminder(
                        user,
                        ReminderKind::LinkWarning,
                        warn_at,
                        Some(expires),
                    ));
                }
                d.schedule.push(reminder(
                    user,
                    ReminderKind::LinkExpired,
                    expires,
                    Some(expires),
                ));
                d.schedule.push(reminder(
                    user,
                    ReminderKind::Purge,
                    expires + self.rules.purge_after,
                    None,
                ));
                self.say(self.content.answer(&id, "text"), &vars)
            }
            "login_attempts" => match count {
                None => self.say(self.content.answer(&id, "text"), &[]),
                Some(n) => {
                    d.reply.personal = true;
                    state.failed_attempts = n.min(self.rules.max_attempts);
                    state.attempts_at = Some(now);
                    if n >= self.rules.max_attempts {
                        let until = self.lock(user, state, time.unwrap_or(now), d);
                        let mut vars = locked_vars(until);
                        vars.push(("attempts_used", n.to_string()));
                        return self.say(self.content.answer(&id, "now_locked"), &vars);
                    }
                    d.schedule.push(reminder(
                        user,
                        ReminderKind::Purge,
                        now + self.rules.purge_after,
                        None,
                    ));
                    let left = self.rules.max_attempts - n;
                    self.say(
                        self.content.answer(&id, "counted"),
                        &[
                            ("attempts_used", n.to_string()),
                            ("attempts_word", plural(n, "attempt", "attempts").into()),
                            ("attempts_left", attempts_phrase(left)),
                        ],
                    )
                }
            },
            "account_locked" => {
                d.reply.personal = true;
                // Saying "still locked out" again must not restart a running lock.
                let until = match (locked, time) {
                    (Some(until), None) => until,
                    _ => {
                        let start = time.unwrap_or(now);
                        if start + self.rules.lock_time <= now {
                            return self.say(
                                self.content.answer(&id, "already_over"),
                                &locked_vars(start + self.rules.lock_time),
                            );
                        }
                        self.lock(user, state, start, d)
                    }
                };
                self.say(self.content.answer(&id, "text"), &locked_vars(until))
            }
            "timer_status" => {
                d.reply.personal = true;
                self.status(state, now)
            }
            "after_reset" => {
                d.reply.personal = true;
                self.clear_link(state, d);
                state.failed_attempts = 0;
                state.attempts_at = None;
                self.say(self.content.answer(&id, "text"), &[])
            }
            "email_changed" => {
                d.reply.personal = true;
                if let Some(existing) = state.open_escalation(EscalationKind::EmailChanged) {
                    return self.say(
                        self.content.answer(&id, "exists"),
                        &[("reference", existing.to_string())],
                    );
                }
                state.pending = Pending::EmailOffer { asked_at: now };
                d.reply.buttons = vec![
                    say_button("Yes, pass it on", "yes", ButtonStyle::Primary),
                    say_button("No", "no", ButtonStyle::Secondary),
                ];
                self.say(self.content.answer(&id, "text"), &[])
            }
            "talk_to_human" => {
                d.reply.personal = true;
                if let Some(existing) = state.open_escalation(EscalationKind::TalkToHuman) {
                    return self.say(
                        self.content.answer(&id, "exists"),
                        &[("reference", existing.to_string())],
                    );
                }
                self.escalate(
                    user,
                    state,
                    EscalationKind::TalkToHuman,
                    None,
                    now,
                    next_reference,
                    d,
                );
                self.say(
                    self.content.answer(&id, "text"),
                    &[("reference", next_reference.to_string())],
                )
            }
            _ => self.say(self.content.answer(&id, "text"), &[]),
        }
    }

    /// Starts a lock at `start` (replacing any earlier one) and schedules its end notice.
    fn lock(
        &self,
        user: &str,
        state: &mut UserState,
        start: DateTime<Utc>,
        d: &mut Decision,
    ) -> DateTime<Utc> {
        let until = start + self.rules.lock_time;
        let old: Vec<ReminderRef> = state
            .reminders
            .iter()
            .filter(|r| r.kind == ReminderKind::LockOver)
            .copied()
            .collect();
        state.reminders.retain(|r| r.kind != ReminderKind::LockOver);
        d.cancel.extend(old);
        state.locked_until = Some(until);
        state.failed_attempts = self.rules.max_attempts;
        state.attempts_at = Some(start);
        d.schedule
            .push(reminder(user, ReminderKind::LockOver, until, Some(until)));
        d.schedule.push(reminder(
            user,
            ReminderKind::Purge,
            until + self.rules.purge_after,
            None,
        ));
        until
    }

    fn clear_link(&self, state: &mut UserState, d: &mut Decision) {
        state.reset_requested_at = None;
        state.link_valid_until = None;
        d.cancel.extend(
            state
                .reminders
                .iter()
                .filter(|r| is_link_reminder(r.kind))
                .copied(),
        );
        state.reminders.retain(|r| !is_link_reminder(r.kind));
    }

    /// The user's timers as clock times.
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
            lines.push(self.say(self.content.message(key), &vars));
        }
        if let Some(until) = state.locked_at(now) {
            lines.push(self.say(
                self.content.message("status_lock"),
                &[
                    ("locked_until", self.clock(until, now)),
                    ("time_left", time_left(until - now)),
                ],
            ));
        } else if state.failed_attempts > 0 && state.failed_attempts < self.rules.max_attempts {
            let left = self.rules.max_attempts - state.failed_attempts;
            lines.push(self.say(
                self.content.message("status_attempts"),
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

    /// A reminder fell due: what to tell the user, if it still means anything. Changes `state`
    /// (a purge clears what can no longer matter).
    pub fn on_due(
        &self,
        state: &mut UserState,
        r: &Reminder,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let shown = |key: &str, vars: &[(&str, String)]| {
            (!state.reminders_off).then(|| self.say(self.content.message(key), vars))
        };
        match r.kind {
            ReminderKind::LinkWarning => {
                let exp = r.about?;
                // A warning for a link that has already expired is replaced by the expiry notice.
                if state.link_valid_until != Some(exp) || now >= exp {
                    return None;
                }
                shown(
                    "reminder_link_warning",
                    &[("expires_at", self.clock(exp, now))],
                )
            }
            ReminderKind::LinkExpired => {
                let exp = r.about?;
                if state.link_valid_until != Some(exp) {
                    return None;
                }
                shown(
                    "reminder_link_expired",
                    &[("expires_at", self.clock(exp, now))],
                )
            }
            ReminderKind::LockOver => {
                let until = r.about?;
                if state.locked_until != Some(until) {
                    return None;
                }
                state.failed_attempts = 0;
                state.attempts_at = None;
                shown(
                    "reminder_lock_over",
                    &[("locked_until", self.clock(until, now))],
                )
            }
            ReminderKind::Purge => {
                self.purge(state, now);
                None
            }
            // Escalation updates are not reminders: "stop reminders" does not silence them.
            ReminderKind::Notice => r.text.clone(),
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
        if pending_expired(&state.pending, now) {
            state.pending = Pending::Nothing;
        }
    }
}

fn reminder(
    user: &str,
    kind: ReminderKind,
    due: DateTime<Utc>,
    about: Option<DateTime<Utc>>,
) -> Reminder {
    Reminder {
        user: user.to_string(),
        kind,
        due,
        about,
        text: None,
    }
}

fn pending_expired(p: &Pending, now: DateTime<Utc>) -> bool {
    let asked = match p {
        Pending::Nothing => return false,
        Pending::Choice { asked_at, .. }
        | Pending::EmailOffer { asked_at }
        | Pending::EmailAddress { asked_at } => *asked_at,
    };
    now - asked > Duration::minutes(PENDING_TTL_MINUTES)
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
fn attempts_phrase(n: u32) -> String {
    format!("{n} {}", plural(n, "attempt", "attempts"))
}

fn plural(n: u32, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// How many failed attempts a message reports ("wrong twice", "3 tries", "1 attempt left").
pub fn attempts_in(norm: &str, max: u32) -> Option<u32> {
    let caps = ATTEMPTS.captures(norm)?;
    let n = if let Some(n) = caps.name("n") {
        let v = match n.as_str().parse::<u32>() {
            Ok(v) => v,
            Err(_) => crate::timeexpr::number_word(n.as_str())? as u32,
        };
        if caps.name("left").is_some() {
            max.checked_sub(v)?
        } else {
            v
        }
    } else if let Some(w) = caps.name("w") {
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
