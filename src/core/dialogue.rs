//! The conversation around the intents: answers to the questions the bot asked (which did you
//! mean, shall I pass it on, what is it about, how should they contact you), side commands that
//! leave an open question open, a way out for messages the bot cannot place (a rephrase prompt,
//! then the support team), and frustration noticed.

use std::sync::LazyLock;

use regex::Regex;

use crate::core::behaviours::{self, Turn};
use crate::core::engine::{Decision, Engine, Incoming, Understood, attempts_in};
use crate::core::records::{
    Choice, ChoiceStyle, Contact, Escalation, EscalationKind, EscalationStatus, HandoverStep,
    Pending, StatusChange,
};
use crate::understanding::details::{new_address, volunteered};
use crate::understanding::intents::{OUT_OF_SCOPE, Role};
use crate::understanding::language::is_welsh;
use crate::understanding::text::{find_email, is_nhs_net};
use crate::understanding::timeexpr::find_past_time;

pub(crate) static YES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:yes|yeah|yea|yep|yup|y|ok|okay|sure|please|go on|go ahead|do it|please do|that would be great|yes please|ydw|ie|iawn|plis)\b").expect("pattern")
});
pub(crate) static NO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:no|nope|nah|n|cancel|stop|don't|dont|do not|never mind|nevermind|no thanks|not now|leave it|na|nac ydw|dim diolch)\b").expect("pattern")
});
static SKIP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:skip|no|nope|n|not sure|dunno|don't know|dont know|rather not|no thanks|nothing|none|pass)\b").expect("pattern")
});
static WHAT_DO_YOU_MEAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:what|sorry|pardon|huh|eh|come again)?\s*(?:do you mean|do u mean|d'?you mean|wdym|does that mean|you mean|what do you mean|what\?+|i don'?t understand|dont understand|not sure what you mean|what is that)\b").expect("pattern")
});
/// "yes please pass it on", "actually sorry, yes please pass it on" (on the normal form).
static PASS_IT_ON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:pass\s+it\s+on|send\s+it\s+(?:on|to\s+them)|let\s+them\s+know|tell\s+them)\b")
        .expect("pattern")
});

/// A contact route in words, in an answer of any length (on the normal form).
static CHAT_ROUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:on here|in here|here is fine|here please|here pls|this chat|in the chat|on the chat|reply here|message me here|answer here|via (?:this )?chat)\b")
        .expect("pattern")
});
static MAIL_ROUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:e-?mail me|by e-?mail|to my (?:nhs ?net|nhsmail|nhs mail|e-?mail)|on my (?:nhs ?net|nhsmail|nhs mail))\b")
        .expect("pattern")
});

static QUESTION_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:who|what|when|where|how|which|why)\b").expect("pattern"));

/// "none of those", "neither", "none of them its just broken": no offered option fits ("nothing
/// happens" is an answer, not this).
static NONE_OF_THESE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:no|nah|nope|sorry|um+|erm+)\s+)*(?:none|neither|not any)(?:\s+of\s+(?:those|these|them|the above|that))?\b|\bnone\s+of\s+(?:those|these|them|the above)\b|\b(?:it'?s|its)\s+not\s+(?:any|one)\s+of\s+(?:those|these|them)\b").expect("pattern")
});

/// "so what do i do", "ok what do i do now" (on the normal form).
static WHAT_DO_I_DO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:so|ok|okay|right|and|well|then)\s+)*what\s+(?:do|should|can|shall)\s+i\s+do(?:\s+(?:now|then|next))?\s*$")
        .expect("pattern")
});
static WHEN_CONTACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:when|how long|how soon)\b.*\b(?:contact|contacted|call|called|ring|hear|get back|reply|respond|email|e-mail|message|be in touch|get in touch)\b|\bheard nothing\b|\bany news\b|\bstill waiting\b|\bhow long\b.*\b(?:they|support|the team|it)\b.*\btake\b|\bwill\s+(?:they|someone|somebody|support|the team)\s+(?:ring|call|phone|contact|email|e-mail|message|reply|get back)\b|\b(?:nobody|no one|noone)(?:'?s| has)?\s+(?:contacted|called|rung|emailed|messaged|got back|been in touch|replied)\b").expect("pattern")
});
/// "what's my reference?", "whats the ref again", "reference number?" (on the normal form).
static ASK_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:what'?s|whats|what is|what was|what are|give me|tell me|need|forgot|lost|remind me of|quote)\b.*\b(?:ref|refs|reference|references|ref number|reference number|case number|ticket number)\b|^(?:my\s+|the\s+)?(?:ref|reference|reference number|ref number)\s*\??$").expect("pattern")
});
/// "so who do i ring then", "who should i contact", "who i should contact then?" (on the normal
/// form): asking for a person.
static WHO_TO_CONTACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:so\s+|and\s+|ok\s+|okay\s+|right\s+|then\s+)*who\s+(?:(?:do|should|can|could|would)\s+i|i\s+(?:should|can|could|would|do|need\s+to|have\s+to|must))\s+(?:ring|call|phone|contact|speak\s+to|talk\s+to|e-?mail|ask|get\s+hold\s+of|go\s+to)\b").expect("pattern")
});
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\+44\s?|0)(?:\d[\s-]?){9,10}\b").expect("pattern"));
/// Swearing and words of exasperation (matched on the normal form).
static FRUSTRATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:ridiculous|useless|rubbish|joke|pathetic|hopeless|fed up|sick of|waste of time|fuming|furious|so annoying|annoyed|angry|wtf|ffs|fuck\w*|fck\w*|shit\w*|bullshit|bs|crap|bloody|damn|sodding|pissed off|doing my head in|at my wits end|nightmare)\b")
        .expect("pattern")
});

/// A follow-up gives way to another problem the classifier is at least this sure the message
/// names ("thanks but it didnt work, no email yet" after a reset is the missing e-mail).
const NAMED_OUTRIGHT: f32 = 0.9;

/// An answer to a choice that the scope model doubts still picks an option when that option has
/// at least this probability and this share of what the options have together.
const CHOICE_LEAN_FLOOR: f32 = 0.2;
const CHOICE_LEAN_SHARE: f32 = 0.8;

/// "ive done the reset 3 TIMES": a count shouted (a calm "typed it wrong 3 times" is a count).
static SHOUTED_COUNT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d+\s+TIMES\b").expect("pattern"));

/// Good news ("found it in junk!!", "GOT IN!! THANK YOU"): its capitals and "!!" are not
/// frustration, unless it also says something still fails (matched on the normal form).
static GLAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:found it|found the|thank you|thanks|thank u|thanku|cheers|worked|it works|works now|got in|i'?m in|im in|i am in|logged in|brilliant|amazing|lovely|perfect|yay|woo\w*|hooray|sorted)\b").expect("pattern")
});
static STILL_FAILS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:not|didn'?t|didnt|doesn'?t|doesnt|won'?t|wont|can'?t|cant|cannot|still|no)\b")
        .expect("pattern")
});

/// Clear frustration: a message mostly in capitals, "!!!", or words of exasperation.
pub fn frustrated(text: &str, norm: &str) -> bool {
    if FRUSTRATED.is_match(norm) {
        return true;
    }
    if GLAD.is_match(norm) && !STILL_FAILS.is_match(norm) {
        return false;
    }
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let capitals = letters.iter().filter(|c| c.is_uppercase()).count();
    (letters.len() >= 8 && capitals * 10 >= letters.len() * 7)
        || text.contains("!!")
        || text.contains("?!")
        || SHOUTED_COUNT.is_match(text)
}

impl Engine {
    /// Side commands and questions about the conversation itself, answered before anything else
    /// (they leave an open question open).
    pub(crate) fn meta(&self, t: &mut Turn, msg: &Incoming) -> Option<String> {
        if WHAT_DO_YOU_MEAN.is_match(msg.norm) {
            if t.state.pending != Pending::Nothing {
                return Some(self.ask_again(t));
            }
            // No question open: what the last answer was about, again (nothing is recorded).
            if let Some(again) = self.explain_again(t) {
                return Some(again);
            }
        }
        if ASK_REFERENCE.is_match(msg.norm) {
            return Some(self.open_references(t));
        }
        // Asking whom to contact is asking for a person: offered, recorded only on "yes".
        if WHO_TO_CONTACT.is_match(msg.norm)
            && t.state
                .open_escalation(EscalationKind::TalkToHuman)
                .is_none()
        {
            t.state.pending = Pending::SupportOffer { asked_at: t.now };
            t.d.reply.choices = self.yes_no("choice_yes_support");
            return Some(self.message("who_to_contact", &[]));
        }
        if WHEN_CONTACT.is_match(msg.norm)
            && let Some(reference) = t.state.open_escalation(EscalationKind::TalkToHuman)
        {
            t.d.reply.personal = true;
            let vars = self.support_vars(t, reference);
            return Some(self.message("handover_when", &vars));
        }
        None
    }

    /// "what do you mean?" after an answer: their times, when any are running, else the
    /// topic's answer again.
    fn explain_again(&self, t: &mut Turn) -> Option<String> {
        let topic = Self::recent_topic(t)?.to_string();
        if self.has_timers(t.state, t.now) && !t.state.topic_for_someone_else {
            t.d.reply.personal = true;
            let status = self.status(t.state, t.now);
            return Some(format!(
                "{}\n\n{status}",
                self.message("explain_again", &[])
            ));
        }
        let idx = self.classifier().index_of(&topic)?;
        match self.role(idx) {
            // Its answer is the question of what happens, with the choices.
            Role::Vague => Some(self.act(idx, t)),
            Role::Problem => Some(self.say(self.content().answer(&topic, "text"), &[])),
            _ => None,
        }
    }

    /// The open question, asked again with what it means.
    fn ask_again(&self, t: &mut Turn) -> String {
        match t.state.pending.clone() {
            Pending::Choice { options, .. } => {
                let q = self.clarify(&options, t.d);
                format!("{}\n\n{q}", self.content().message("explain_choice"))
            }
            Pending::EmailOffer { .. } => self.message("explain_email_offer", &[]),
            Pending::EmailAddress { .. } => self.message("email_ask", &[]),
            Pending::SupportOffer { .. } => {
                self.offer_choices(t.d);
                self.message("explain_support_offer", &[])
            }
            Pending::Handover {
                step, reference, ..
            } => self.handover_question(t, step, &reference),
            Pending::Nothing => String::new(),
        }
    }

    /// A reply to a question the bot asked, if the message answers it.
    pub(crate) fn continue_dialogue(&self, t: &mut Turn, msg: &Incoming) -> Option<String> {
        let (text, norm) = (msg.text, msg.norm);
        match std::mem::take(&mut t.state.pending) {
            Pending::Nothing => self.after_the_question(t, msg),
            Pending::Choice {
                options,
                time,
                count,
                asked_at,
            } => match self.pick_option(&options, norm) {
                Some(id) => {
                    let idx = self.classifier().index_of(&id)?;
                    t.d.reply.intent = Some(id);
                    t.d.reply.confidence = 1.0;
                    // "3. did it about 20 mins ago": a time or count given with the choice
                    // counts, else the one from the message that was asked about.
                    self.read_time(t, text);
                    t.time = t.time.or(time);
                    t.count = attempts_in(norm, self.rules.max_attempts).or(count);
                    Some(self.act(idx, t))
                }
                // "none of those, its just broken": the support team is offered.
                None if NONE_OF_THESE.is_match(norm) => {
                    t.d.reply.personal = true;
                    t.state.pending = Pending::SupportOffer { asked_at: t.now };
                    self.offer_choices(t.d);
                    Some(format!(
                        "{}\n\n{}",
                        self.message("none_of_these", &[]),
                        self.message("offer_support", &[])
                    ))
                }
                None => {
                    // Not an answer to the question: read it as a new message, but keep the
                    // question open if the new message is not understood either.
                    let u = msg.understood(self);
                    if matches!(u, Understood::OutOfScope { .. }) && norm.len() <= 3 {
                        t.state.pending = Pending::Choice {
                            options: options.clone(),
                            time,
                            count,
                            asked_at,
                        };
                        Some(self.clarify(&options, t.d))
                    } else {
                        None
                    }
                }
            },
            Pending::EmailOffer { address, .. } => {
                let given = new_address(text).is_some();
                if accepts(norm) && !given {
                    Some(self.accept_email_offer(t, address))
                } else if NO.is_match(norm) {
                    t.d.reply.personal = true;
                    Some(self.email_cancelled())
                } else if given {
                    // They gave the address straight away.
                    Some(behaviours::email_address(self, t, text, false))
                } else if !volunteered(text).is_empty() {
                    // Only their old address or a number: noted (`take_volunteered`), and the
                    // offer stands.
                    t.d.reply.personal = true;
                    t.d.reply.choices = self.yes_no("choice_pass_on");
                    t.state.pending = Pending::EmailOffer {
                        asked_at: t.now,
                        address,
                    };
                    Some(self.message("explain_email_offer", &[]))
                } else {
                    None
                }
            }
            Pending::EmailAddress { .. } => {
                if new_address(text).is_some() {
                    Some(behaviours::email_address(self, t, text, true))
                } else if !volunteered(text).is_empty() {
                    t.d.reply.personal = true;
                    t.state.pending = Pending::EmailAddress { asked_at: t.now };
                    Some(self.content().message("email_ask").to_string())
                } else if NO.is_match(norm) {
                    t.d.reply.personal = true;
                    Some(self.email_cancelled())
                } else {
                    match msg.understood(self) {
                        Understood::Intent { .. } | Understood::Ambiguous { .. } => None,
                        Understood::OutOfScope { .. } => {
                            t.d.reply.personal = true;
                            t.state.pending = Pending::EmailAddress { asked_at: t.now };
                            Some(self.content().message("email_ask").to_string())
                        }
                    }
                }
            }
            Pending::SupportOffer { asked_at } => {
                // "ok thank you. and what is the esr website please?": a question of its own,
                // not a yes.
                let asks_another = msg.text.contains('?')
                    && matches!(msg.understood(self), Understood::Intent { id, .. }
                        if self.role(id).is_question());
                if accepts(norm) && !asks_another {
                    let id = "talk_to_human";
                    t.d.reply.intent = Some(id.into());
                    t.d.reply.confidence = 1.0;
                    let idx = self.classifier().index_of(id)?;
                    Some(self.act(idx, t))
                } else if NO.is_match(norm) {
                    t.state.declines = 0;
                    // "no dont bother. what time was it again": the "no" answers the offer and
                    // the rest is a question of its own, answered as one.
                    // "no its fine, just tell me when i can get back on" follows the topic.
                    let question = norm.split_whitespace().count() > 3
                        && (matches!(msg.understood(self), Understood::Intent { id, .. }
                            if self.role(id).is_question())
                            || self.follow_up(t).is_some());
                    if question {
                        return None;
                    }
                    Some(self.message("support_declined", &[]))
                } else {
                    // Something else: read it afresh, and keep the offer open if it is not placed.
                    if matches!(msg.understood(self), Understood::OutOfScope { .. }) {
                        t.state.pending = Pending::SupportOffer { asked_at };
                    }
                    None
                }
            }
            Pending::Handover {
                reference,
                step,
                asked_at,
            } => self.handover_answer(t, msg, reference, step, asked_at),
        }
    }

    /// A "yes" with no question open. Just after saying no to passing an address on
    /// ("actually sorry, yes please pass it on"), it is that offer, accepted. With an escalation
    /// open, a stray "yes" gets its reference rather than a guess at a problem.
    fn after_the_question(&self, t: &mut Turn, msg: &Incoming) -> Option<String> {
        let norm = msg.norm;
        let yes = accepts(norm) || PASS_IT_ON.is_match(norm);
        if !yes || behaviours::says_done(norm) {
            return None;
        }
        let email_topic = Self::recent_topic(t) == Some("email_changed");
        if email_topic
            && PASS_IT_ON.is_match(norm)
            && t.state
                .open_escalation(EscalationKind::EmailChanged)
                .is_none()
        {
            t.state.pending = Pending::EmailOffer {
                asked_at: t.now,
                address: None,
            };
            return Some(self.accept_email_offer(t, None));
        }
        let short = norm.split_whitespace().count() <= 3;
        (short && !t.state.open_escalations.is_empty()).then(|| self.open_references(t))
    }

    /// "yes" to passing the new address on: passed on when it is known; otherwise recorded now,
    /// so nothing is lost if they walk away, and the address asked for (added to the record and
    /// sent with the e-mail when it comes).
    fn accept_email_offer(&self, t: &mut Turn, address: Option<String>) -> String {
        t.d.reply.personal = true;
        if let Some(address) = address {
            return behaviours::pass_on_address(self, t, address, false);
        }
        t.state.pending = Pending::EmailAddress { asked_at: t.now };
        t.d.reply.intent = Some("email_changed".into());
        self.escalate(t, EscalationKind::EmailChanged, None);
        let reference = t.next_reference.to_string();
        self.message("email_ask_recorded", &[("reference", reference)])
    }

    /// The references of the person's open escalations, a line each.
    fn open_references(&self, t: &mut Turn) -> String {
        t.d.reply.personal = true;
        if t.state.open_escalations.is_empty() {
            return self.message("reference_none", &[]);
        }
        let open: Vec<String> = t
            .state
            .open_escalations
            .iter()
            .map(|(kind, reference)| {
                let key = match kind {
                    EscalationKind::EmailChanged => "reference_email_change",
                    EscalationKind::TalkToHuman => "reference_support",
                };
                self.message(key, &[("reference", reference.clone())])
            })
            .collect();
        open.join("\n")
    }

    pub(crate) fn email_cancelled(&self) -> String {
        self.message("email_cancelled", &[])
    }

    /// Records an escalation of `kind` for this turn's person under the next reference.
    pub(crate) fn escalate(&self, t: &mut Turn, kind: EscalationKind, new_address: Option<String>) {
        let reference = t.next_reference.to_string();
        t.state.open_escalations.push((kind, reference.clone()));
        if kind == EscalationKind::TalkToHuman {
            t.state.handover_at = Some(t.now.timestamp_millis());
        }
        t.d.escalation = Some(Escalation {
            reference,
            kind,
            user: t.who.clone(),
            display_name: t.state.display_name.clone(),
            new_address,
            problem: None,
            contact: None,
            volunteered: Default::default(),
            created_at: t.now,
            status: EscalationStatus::Open,
            history: vec![StatusChange {
                status: EscalationStatus::Open,
                by: "esrbot".into(),
                at: t.now,
                note: None,
            }],
        });
    }

    /// Which offered option the answer names: its number, or words that classify as one of them.
    pub(crate) fn pick_option(&self, options: &[String], norm: &str) -> Option<String> {
        let trimmed = norm.trim_end_matches(['.', ')']).trim();
        // "yes" takes up the offer of a person made with the question.
        if YES.is_match(trimmed) && options.iter().any(|o| o == "talk_to_human") {
            return Some("talk_to_human".into());
        }
        if let Ok(n) = trimmed.parse::<usize>() {
            return options.get(n.checked_sub(1)?).cloned();
        }
        let words = ["first", "second", "third", "fourth", "fifth", "sixth"];
        if let Some(n) = words
            .iter()
            .position(|w| trimmed == *w || trimmed == format!("the {w}").as_str())
        {
            return options.get(n).cloned();
        }
        let c = self.classifier().classify_normalized(norm);
        // A message a pattern reads as something else ("password reset not working" after "what
        // happens when you try?") says something new; it does not pick the option it resembles.
        if c.by_pattern && !options.iter().any(|o| o == self.intent_id(c.top().0)) {
            return None;
        }
        let offered = |i: usize| options.iter().any(|o| o == self.intent_id(i));
        let best = c.ranked.iter().find(|(i, _)| offered(*i))?;
        // Only a confident reading counts as choosing; otherwise it's a new message. An answer
        // in words the scope model doubts ("the locked one. since about 7") still chooses when
        // it clearly leans to one offered option: most of the weight the options share.
        let shared: f32 = c
            .ranked
            .iter()
            .filter(|(i, _)| offered(*i))
            .map(|(_, p)| p)
            .sum();
        let leans = best.1 >= CHOICE_LEAN_FLOOR && best.1 >= CHOICE_LEAN_SHARE * shared;
        (best.1 >= self.rules.threshold || leans).then(|| self.intent_id(best.0).to_string())
    }

    /// The options as numbered choices.
    fn option_choices(&self, options: &[String]) -> Vec<Choice> {
        options
            .iter()
            .enumerate()
            .map(|(n, id)| {
                Choice::say(
                    self.option_label(id),
                    &(n + 1).to_string(),
                    ChoiceStyle::Secondary,
                )
            })
            .collect()
    }

    /// "Which did you mean?" with the options as numbered choices.
    pub(crate) fn clarify(&self, options: &[String], d: &mut Decision) -> String {
        d.reply.choices = self.option_choices(options);
        self.content().message("clarify").to_string()
    }

    /// Asks which of `options` it is, keeping what the message carried for the chosen intent.
    pub(crate) fn ask_which(&self, t: &mut Turn, options: Vec<String>, question: &str) -> String {
        t.d.reply.choices = self.option_choices(&options);
        t.state.pending = Pending::Choice {
            options,
            time: t.time,
            count: t.count,
            asked_at: t.now,
        };
        self.message(question, &[])
    }

    /// The time the message gives for what happened (after a correction word, the last one), or
    /// the problem with it, into the turn.
    fn read_time(&self, t: &mut Turn, text: &str) {
        // "sorry i meant 1, only did it the once" corrects a count, not a time.
        let count = attempts_in(t.norm, self.rules.max_attempts).is_some();
        let mention = corrected_time(text, t.now, self.rules.tz)
            .filter(|_| !count)
            .or_else(|| find_past_time(text, t.now, self.rules.tz));
        t.time_problem = mention.as_ref().and_then(|m| m.problem);
        t.time_assumed = mention.as_ref().is_some_and(|m| m.assumed);
        t.time = mention.filter(|m| m.problem.is_none()).map(|m| m.at);
    }

    pub(crate) fn answer_fresh(&self, t: &mut Turn, msg: &Incoming) -> String {
        let (text, norm) = (msg.text, msg.norm);
        self.read_time(t, text);
        t.count = attempts_in(norm, self.rules.max_attempts);
        // A follow-up is read with the conversation's topic before the classifier sees it alone.
        // Unless the message names another problem outright: "it still doesnt work, im on the
        // ward computer" is about the shared computer, whatever the topic.
        let named_otherwise = |idx: usize| {
            let c = msg.classification(self);
            let (top, p) = c.top();
            (c.by_pattern || p >= NAMED_OUTRIGHT) && top != idx && self.role(top).names_cause()
        };
        if let Some(idx) = self.follow_up(t).filter(|&i| !named_otherwise(i)) {
            t.state.declines = 0;
            let intent = self.intent_id(idx).to_string();
            t.d.reply.intent = Some(intent.clone());
            t.d.reply.confidence = 1.0;
            let answer = self.act(idx, t);
            return self.with_frustration(t, msg, &intent, answer);
        }
        let mut understood = msg.understood(self);
        // Two close readings, one of them what the conversation is about: the topic decides
        // ("what do i need to fill in on the form" after a forgotten username).
        if let Understood::Ambiguous { options } = &understood {
            let topic = Self::recent_topic(t).and_then(|id| self.classifier().index_of(id));
            // With a timer running, a question among the readings is about it ("what was the
            // time limit again").
            let question = options
                .iter()
                .copied()
                .find(|&i| self.role(i) == Role::Question)
                .filter(|_| self.has_timers(t.state, t.now));
            // "did the forgot password at quarter to 7, how long does the link last": an event
            // with its time and a question about that time; the event's answer records the
            // time and gives the times asked for.
            let stated = options
                .iter()
                .copied()
                .find(|&i| self.role(i) == Role::Problem)
                .filter(|_| t.time.is_some())
                .filter(|_| options.iter().any(|&i| self.role(i) == Role::Question));
            if let Some(id) = topic
                .filter(|i| options.contains(i))
                .or(stated)
                .or(question)
            {
                understood = Understood::Intent {
                    id,
                    confidence: self.rules.threshold,
                };
            }
        }
        // "ok IT sorted it, new one is priya.shah7@nhs.net": an nhs.net address is news of one.
        let address = find_email(msg.text);
        let nhs_address = address
            .filter(|a| is_nhs_net(a))
            .and_then(|_| self.classifier().index_of("email_changed"));
        let personal_address = address
            .filter(|a| !is_nhs_net(a) && a.is_ascii())
            .and_then(|_| self.classifier().index_of("no_nhs_email"));
        match understood {
            Understood::Intent { id, confidence } => {
                t.state.declines = 0;
                let intent = self.intent_id(id).to_string();
                // A Welsh greeting can read as an English one: say what the bot understands.
                if intent == "greeting" && is_welsh(text) {
                    return self.welsh(t);
                }
                t.d.reply.intent = Some(intent.clone());
                t.d.reply.confidence = confidence;
                let mut answer = self.act(id, t);
                let c = msg.classification(self);
                if let Some(other) = c.also.filter(|_| c.by_pattern && c.top().0 == id) {
                    answer = self.with_alongside(t, answer, other);
                }
                self.with_frustration(t, msg, &intent, answer)
            }
            Understood::Ambiguous { options } => {
                t.state.declines = 0;
                let mut ids: Vec<String> = options
                    .iter()
                    .map(|i| self.intent_id(*i).to_string())
                    .collect();
                t.d.reply.intent = None;
                // Frustration is acknowledged here too, with a person as one more option.
                let frustrated = frustrated(text, norm);
                if frustrated && !ids.iter().any(|i| i == "talk_to_human") {
                    ids.push("talk_to_human".into());
                }
                let question = self.ask_which(t, ids, "clarify");
                if frustrated {
                    return format!(
                        "{}\n\n{question}\n\n{}",
                        self.message("frustration_ack", &[]),
                        self.message("offer_support_short", &[])
                    );
                }
                question
            }
            // "send it to kelly88@hotmail.co.uk": an address that is not nhs.net, given on its
            // own, is where they want the reset to go, and it can only go to nhs.net.
            Understood::OutOfScope { .. } if let Some(id) = nhs_address => {
                t.state.declines = 0;
                t.d.reply.intent = Some("email_changed".into());
                t.d.reply.confidence = self.rules.threshold;
                self.act(id, t)
            }
            Understood::OutOfScope { .. } if let Some(id) = personal_address => {
                t.d.reply.intent = Some("no_nhs_email".into());
                t.d.reply.confidence = self.rules.threshold;
                self.act(id, t)
            }
            // "so what do i do" after an answer: that answer again, or their times.
            Understood::OutOfScope { .. }
                if WHAT_DO_I_DO.is_match(norm)
                    && let Some(again) = self.explain_again(t) =>
            {
                t.state.declines = 0;
                again
            }
            Understood::OutOfScope { confidence } => {
                t.d.reply.intent = Some(OUT_OF_SCOPE.into());
                t.d.reply.confidence = confidence;
                self.way_out(t, msg)
            }
        }
    }

    /// "locked out AND my nhs.net has changed, its m.patel22@nhs.net now": the second problem is
    /// acted on too. An answer that asks a question goes last, so the question is the last thing
    /// read and the one left open.
    fn with_alongside(&self, t: &mut Turn, first: String, other: usize) -> String {
        let pending = std::mem::take(&mut t.state.pending);
        let choices = std::mem::take(&mut t.d.reply.choices);
        let intent = t.d.reply.intent.clone();
        let second = self.act(other, t);
        t.d.reply.intent = intent;
        if t.state.pending == Pending::Nothing {
            t.state.pending = pending;
            let extra = std::mem::replace(&mut t.d.reply.choices, choices);
            t.d.reply.choices.extend(extra);
            format!("{second}\n\n{first}")
        } else {
            format!("{first}\n\n{second}")
        }
    }

    /// Frustration is acknowledged, and a person offered: as the offer itself, or as one more
    /// option when the answer asks which it is ("still doesnt work!!! this is ridiculous").
    fn with_frustration(
        &self,
        t: &mut Turn,
        msg: &Incoming,
        intent: &str,
        answer: String,
    ) -> String {
        if !frustrated(msg.text, msg.norm) || intent == "talk_to_human" {
            return answer;
        }
        match &mut t.state.pending {
            Pending::Nothing => t.state.pending = Pending::SupportOffer { asked_at: t.now },
            Pending::Choice { options, .. } => {
                options.push("talk_to_human".into());
                let n = options.len().to_string();
                t.d.reply.choices.push(Choice::say(
                    self.option_label("talk_to_human"),
                    &n,
                    ChoiceStyle::Secondary,
                ));
            }
            _ => return answer,
        }
        format!(
            "{}\n\n{answer}\n\n{}",
            self.message("frustration_ack", &[]),
            self.message("offer_support_short", &[])
        )
    }

    /// A message the bot cannot place. The first gets the out-of-scope answer and a prompt to
    /// rephrase, with what the bot covers as choices; a second in a row, or a frustrated one, an
    /// acknowledgement, the best guess, and an offer of the support team. The wording alternates,
    /// so the same sentence never comes back three times running.
    fn way_out(&self, t: &mut Turn, msg: &Incoming) -> String {
        if is_welsh(msg.text) {
            return self.welsh(t);
        }
        t.state.declines = t.state.declines.saturating_add(1);
        let angry = frustrated(msg.text, msg.norm);
        if t.state.declines == 1 && !angry {
            t.d.reply.choices = self.content().choices("rephrase");
            return format!(
                "{}\n\n{}",
                self.say(self.content().answer(OUT_OF_SCOPE, "text"), &[]),
                self.message("rephrase", &[])
            );
        }
        t.state.pending = Pending::SupportOffer { asked_at: t.now };
        self.offer_choices(t.d);
        let guess = self
            .best_guess(msg)
            .map(|label| self.message("best_guess", &[("label", label)]))
            .unwrap_or_default();
        let key = if t.state.declines.is_multiple_of(2) {
            "offer_support"
        } else {
            "offer_support_again"
        };
        let ack = if angry {
            "frustration_ack"
        } else {
            "still_unplaced"
        };
        format!(
            "{}{guess}\n\n{}",
            self.message(ack, &[]),
            self.message(key, &[])
        )
    }

    /// A Welsh message: in Welsh and English, the bot understands English for now; the support
    /// team is offered.
    fn welsh(&self, t: &mut Turn) -> String {
        t.d.reply.intent = Some(OUT_OF_SCOPE.into());
        t.state.pending = Pending::SupportOffer { asked_at: t.now };
        self.offer_choices(t.d);
        self.message("welsh", &[])
    }

    fn offer_choices(&self, d: &mut Decision) {
        d.reply.choices = self.yes_no("choice_yes_support");
    }

    /// "yes" (labelled by the `[message]` `yes_label`) and "no", as choices.
    pub(crate) fn yes_no(&self, yes_label: &str) -> Vec<Choice> {
        vec![
            Choice::say(
                self.content().message(yes_label),
                "yes",
                ChoiceStyle::Primary,
            ),
            Choice::say(
                self.content().message("choice_no"),
                "no",
                ChoiceStyle::Secondary,
            ),
        ]
    }

    /// The in-scope intent the classifier leans to, when it leans at all.
    fn best_guess(&self, msg: &Incoming) -> Option<String> {
        let c = msg.classification(self);
        let oos = self.classifier().out_of_scope();
        let (idx, p) = c.ranked.iter().copied().find(|(i, _)| *i != oos)?;
        (p >= 0.25).then(|| self.option_label(self.intent_id(idx)).to_string())
    }

    /// The facts the hand-over messages use: the reference, the support team's hours and when
    /// they aim to reply by.
    pub(crate) fn support_vars(&self, t: &Turn, reference: &str) -> Vec<(&'static str, String)> {
        // From when the hand-over was recorded: the promise does not move each time it is asked.
        let asked = t
            .state
            .handover_at
            .and_then(chrono::DateTime::from_timestamp_millis)
            .filter(|at| *at <= t.now)
            .unwrap_or(t.now);
        let by = self.rules.support.reply_by(asked, self.rules.tz);
        vec![
            ("reference", reference.to_string()),
            ("support_hours", self.rules.support.describe()),
            (
                "reply_by",
                crate::understanding::timeexpr::format_clock_named(by, t.now, self.rules.tz),
            ),
            ("reply_within", self.rules.support.describe_target()),
        ]
    }

    /// The hand-over's last step: the route is added, and said back so a mistyped number shows.
    fn handover_done(&self, t: &mut Turn, reference: &str, contact: Contact) -> String {
        let route = match &contact {
            Contact::ThisChat => self.message("route_this_chat", &[]),
            Contact::NhsMail => self.message("route_nhs_mail", &[]),
            Contact::Email(address) => self.message("route_email", &[("address", address.clone())]),
            Contact::Phone(number) => self.message("route_phone", &[("number", number.clone())]),
        };
        t.d.escalation_update.contact = Some(contact);
        let mut vars = self.support_vars(t, reference);
        vars.push(("route", route));
        self.message("handover_done", &vars)
    }

    /// The next question of a hand-over.
    pub(crate) fn handover_question(
        &self,
        t: &mut Turn,
        step: HandoverStep,
        reference: &str,
    ) -> String {
        t.state.pending = Pending::Handover {
            reference: reference.to_string(),
            step,
            asked_at: t.now,
        };
        match step {
            HandoverStep::Problem => {
                t.d.reply.choices = self.content().choices("handover_problem");
                self.message("handover_ask_problem", &[])
            }
            HandoverStep::Contact => {
                t.d.reply.choices = self.content().choices("handover_contact");
                self.message("handover_ask_contact", &[])
            }
            HandoverStep::Phone => self.message("handover_ask_phone", &[]),
        }
    }

    /// An answer to a hand-over question: it is added to the escalation already recorded.
    fn handover_answer(
        &self,
        t: &mut Turn,
        msg: &Incoming,
        reference: String,
        step: HandoverStep,
        asked_at: chrono::DateTime<chrono::Utc>,
    ) -> Option<String> {
        let norm = msg.norm;
        t.d.reply.personal = true;
        match step {
            HandoverStep::Problem => {
                let options: Vec<String> = self
                    .content()
                    .choices("handover_problem")
                    .iter()
                    .filter_map(|c| Choice::message(&c.id).map(str::to_string))
                    .collect();
                // "also im locked out, since about 2", "i think i just forgot my password,
                // what do i do": an answer in their own words that says more than the problem's
                // name is answered too, before the next question.
                let mut answered = None;
                let route = contact_in(msg.text);
                let chosen = if SKIP.is_match(norm) {
                    None
                } else if let Ok(n) = norm.trim_end_matches('.').parse::<usize>() {
                    options.get(n.checked_sub(1)?).cloned()
                } else if route.is_some() {
                    // "best to ring me, 07700 900987": the route, and the problem if it says one.
                    match msg.understood(self) {
                        Understood::Intent { id, .. } if self.role(id).is_problem() => {
                            Some(self.intent_id(id).to_string())
                        }
                        Understood::Ambiguous { options } => {
                            options.first().map(|&i| self.intent_id(i).to_string())
                        }
                        _ => None,
                    }
                } else {
                    // Their own words: the intent they read as, if confident.
                    match msg.understood(self) {
                        Understood::Intent { id, .. } if self.role(id).is_problem() => {
                            self.read_time(t, msg.text);
                            t.count = attempts_in(norm, self.rules.max_attempts);
                            let says_more = norm.split_whitespace().count() > 3;
                            if says_more || t.time.is_some() || t.time_problem.is_some() {
                                answered = Some(self.act(id, t));
                            }
                            Some(self.intent_id(id).to_string())
                        }
                        _ => {
                            // Not an answer: keep the question open and read the message afresh.
                            return keep_open(t, reference, step, asked_at);
                        }
                    }
                };
                if let Some(problem) = chosen.filter(|p| self.classifier().index_of(p).is_some()) {
                    t.d.escalation_update.problem = Some(problem);
                }
                t.d.escalation_update.reference = Some(reference.clone());
                // "username problem. ring me on 07700 900461": the route came with it.
                let next = match route {
                    Some(c) => self.handover_done(t, &reference, c),
                    None => self.handover_question(t, HandoverStep::Contact, &reference),
                };
                Some(match answered {
                    Some(answer) => format!("{answer}\n\n{next}"),
                    None => next,
                })
            }
            HandoverStep::Contact => {
                let contact = if let Some(c) = contact_in(msg.text) {
                    Some(c)
                } else if CHAT_ROUTE.is_match(norm) {
                    // "just reply on here is fine, im on nights til 8"
                    Some(Contact::ThisChat)
                } else if MAIL_ROUTE.is_match(norm) {
                    Some(Contact::NhsMail)
                } else if norm.split_whitespace().count() > 5 {
                    // "and where does that email even go": a question of its own, not a route.
                    return keep_open(t, reference, step, asked_at);
                } else {
                    match norm.trim_end_matches('.') {
                        "1" => Some(Contact::ThisChat),
                        "2" => Some(Contact::NhsMail),
                        "3" => None,
                        n if n.contains("phone") || n.contains("ring") || n.contains("call") => {
                            None
                        }
                        n if n.contains("mail") => Some(Contact::NhsMail),
                        n if n.contains("chat") || n.contains("here") || YES.is_match(n) => {
                            Some(Contact::ThisChat)
                        }
                        n if SKIP.is_match(n) => Some(Contact::ThisChat),
                        _ => {
                            return keep_open(t, reference, step, asked_at);
                        }
                    }
                };
                t.d.escalation_update.reference = Some(reference.clone());
                match contact {
                    Some(c) => Some(self.handover_done(t, &reference, c)),
                    None => Some(self.handover_question(t, HandoverStep::Phone, &reference)),
                }
            }
            HandoverStep::Phone => {
                t.d.escalation_update.reference = Some(reference.clone());
                match phone_in(msg.text) {
                    Some(phone) => Some(self.handover_done(t, &reference, phone)),
                    None if SKIP.is_match(norm) => {
                        Some(self.handover_done(t, &reference, Contact::ThisChat))
                    }
                    None => {
                        keep_open(t, reference, step, asked_at);
                        Some(self.message("handover_ask_phone", &[]))
                    }
                }
            }
        }
    }
}

/// A phone number given as the way to reach someone, without its spaces.
/// "yes", "ok go on": the offer just made is accepted. "ok im in now" is news, not a yes.
/// "ok who does he email then" is a question, not a yes.
fn accepts(norm: &str) -> bool {
    let asks = norm.split_whitespace().count() > 3 && QUESTION_WORD.is_match(norm);
    YES.is_match(norm) && !behaviours::says_done(norm) && !asks
}

fn phone_in(text: &str) -> Option<Contact> {
    PHONE
        .find(text)
        .map(|n| Contact::Phone(n.as_str().split_whitespace().collect()))
}

/// A phone number or an nhs.net address given as the way to reach someone.
fn contact_in(text: &str) -> Option<Contact> {
    phone_in(text).or_else(|| {
        find_email(text)
            .filter(|a| is_nhs_net(a))
            .map(|a| Contact::Email(a.to_ascii_lowercase()))
    })
}

/// Not an answer to the hand-over question: it stays open, and the message is read afresh.
fn keep_open(
    t: &mut Turn,
    reference: String,
    step: HandoverStep,
    asked_at: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    t.state.pending = Pending::Handover {
        reference,
        step,
        asked_at,
    };
    None
}

/// "sorry 3am. no actually more like half 3": the time after the last correction word, when
/// there is one; the person's final word on it.
static CORRECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:actually|more like|i mean|i meant|no wait|or rather|make that)\b|\bnot\s+(?:at\s+)?[0-9]{1,2}(?:[:.][0-9]{2})?\s*(?:am|pm)?\s*[,.;]?\s*(?:it\s+was|it'?s|but|was)\b")
        .expect("pattern")
});

/// " not 2", " not 9:30" after a corrected time.
static NOT_THAT_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\s+not\s+(?:at\s+)?[0-9]{1,2}(?:[:.][0-9]{2})?\b").expect("pattern")
});

fn corrected_time(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
    tz: chrono_tz::Tz,
) -> Option<crate::understanding::timeexpr::TimeMention> {
    let last = CORRECTION.find_iter(text).last()?;
    let rest = text[last.end()..].trim_start();
    // "more like half 1 not 2": the time it was not is left out.
    let rest = NOT_THAT_TIME
        .find(rest)
        .map_or(rest, |m| rest[..m.start()].trim_end());
    // The correction word introduces the time as "at" would: "more like half 3".
    find_past_time(rest, now, tz)
        .or_else(|| find_past_time(&format!("at {rest}"), now, tz))
        .filter(|m| m.problem.is_none())
}
