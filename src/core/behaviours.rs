//! What each intent does beyond answering with its `text`: one table, `BEHAVIOURS`, that registers
//! an intent's handler and the reply variants it picks from. An intent that only answers needs no
//! entry (its file under `intents/` and its `text` in `data/replies.toml` are enough); an intent
//! with behaviour adds one handler here. `esrbot check` insists that every listed variant exists.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;

use crate::core::engine::{Decision, Engine, attempts_phrase, plural, time_left};
use crate::core::records::{
    Choice, ChoiceStyle, EscalationKind, HandoverStep, Pending, Recipient, UserState,
};
use crate::understanding::details::new_address;
use crate::understanding::text::is_nhs_net;
use crate::understanding::timeexpr::{TimeProblem, format_when};

/// One turn of the dialogue as a handler sees it: who, their state, the message (secrets already
/// cut out) and what it carried (a time, a count of attempts), the time now, and the decision
/// being built. `notes` are `[message]` keys added after the answer.
pub struct Turn<'a> {
    pub who: &'a Recipient,
    pub state: &'a mut UserState,
    pub text: &'a str,
    pub norm: &'a str,
    pub time: Option<DateTime<Utc>>,
    pub count: Option<u32>,
    pub now: DateTime<Utc>,
    pub next_reference: &'a str,
    pub d: &'a mut Decision,
    /// Sentences added after the answer (a lock stopping a link's reminders, an assumed hour).
    pub notes: Vec<String>,
    /// A time in the message that cannot be right for something that already happened.
    pub time_problem: Option<TimeProblem>,
    /// The message's time had its hour assumed ("this morning").
    pub time_assumed: bool,
    /// The message is about someone else (or follows one, saying nothing of the writer).
    pub someone_else: bool,
}

/// An intent's registered behaviour.
pub struct Behaviour {
    pub intent: &'static str,
    /// The reply variants under `[intent.ID]` the handler uses (`text` unless listed otherwise).
    pub variants: &'static [&'static str],
    /// The variant answered, with nothing recorded, when the message is about someone else
    /// ("she is locked out"); None: the behaviour runs whoever it is about.
    pub for_someone_else: Option<&'static str>,
    pub act: fn(&Engine, &mut Turn, &str) -> String,
}

/// Every intent with behaviour. The only place to register one.
pub const BEHAVIOURS: &[Behaviour] = &[
    Behaviour {
        intent: "cant_log_in",
        variants: &["text", "locked", "link_live", "link_expired"],
        for_someone_else: Some("text"),
        act: cant_log_in,
    },
    Behaviour {
        intent: "forgot_password",
        variants: &["text", "locked", "locked_quiet", "general"],
        for_someone_else: Some("general"),
        act: forgot_password,
    },
    Behaviour {
        intent: "link_expired",
        variants: &["text", "locked", "locked_quiet", "general", "live"],
        for_someone_else: Some("general"),
        act: link_expired,
    },
    Behaviour {
        intent: "reset_requested",
        variants: &[
            "text",
            "text_quiet",
            "little_time",
            "already_expired",
            "locked",
            "locked_quiet",
            "general",
        ],
        for_someone_else: Some("general"),
        act: reset_requested,
    },
    Behaviour {
        intent: "reset_email_missing",
        variants: &["text"],
        for_someone_else: Some("text"),
        act: reset_email_missing,
    },
    Behaviour {
        intent: "login_attempts",
        variants: &[
            "text",
            "counted",
            "now_locked",
            "now_locked_quiet",
            "general",
        ],
        for_someone_else: Some("general"),
        act: login_attempts,
    },
    Behaviour {
        intent: "account_locked",
        variants: &["text", "text_quiet", "already_over", "general"],
        for_someone_else: Some("general"),
        act: account_locked,
    },
    Behaviour {
        intent: "timer_status",
        variants: &["none", "none_link", "none_lock", "general", "newest"],
        // Their rule, then the writer's own timers (or that there are none): see `timer_status`.
        for_someone_else: None,
        act: timer_status,
    },
    Behaviour {
        intent: "after_reset",
        variants: &["text", "not_yet", "not_yet_live", "general"],
        for_someone_else: Some("general"),
        act: after_reset,
    },
    Behaviour {
        intent: "thanks",
        variants: &["text"],
        for_someone_else: None,
        act: thanks,
    },
    Behaviour {
        intent: "email_changed",
        variants: &["text", "exists", "offer_address"],
        for_someone_else: None,
        act: email_changed,
    },
    Behaviour {
        intent: "talk_to_human",
        variants: &["text", "exists"],
        for_someone_else: None,
        act: talk_to_human,
    },
];

/// The behaviour registered for `intent`, if any.
pub fn find(intent: &str) -> Option<&'static Behaviour> {
    BEHAVIOURS.iter().find(|b| b.intent == intent)
}

/// The reply variants each intent needs, for loading and checking `data/replies.toml`.
pub fn variants() -> Vec<(&'static str, &'static [&'static str])> {
    BEHAVIOURS.iter().map(|b| (b.intent, b.variants)).collect()
}

/// The messages (`[message]` in `data/replies.toml`) the core itself uses.
pub const MESSAGES: &[&str] = &[
    "empty",
    "too_long",
    "secret_warning",
    "clarify",
    "reminders_off",
    "reminders_on",
    "status_link",
    "status_link_expired",
    "status_lock",
    "status_attempts",
    "status_reminders_off",
    "status_handover",
    "status_email_change",
    "email_ask",
    "email_ask_recorded",
    "email_not_nhs",
    "email_accents",
    "email_accents_note",
    "email_cancelled",
    "email_recorded",
    "reminder_link_warning",
    "reminder_link_expired",
    "reminder_lock_over",
    "error",
    "choice_reset_requested",
    "choice_pass_on",
    "choice_no",
    "choice_yes_support",
    "lock_ends_link",
    "calendar_link_summary",
    "calendar_link_description",
    "calendar_lock_summary",
    "calendar_lock_description",
    "triage_ask",
    "rephrase",
    "still_unplaced",
    "best_guess",
    "offer_support",
    "offer_support_again",
    "offer_support_short",
    "frustration_ack",
    "support_declined",
    "explain_again",
    "explain_choice",
    "explain_email_offer",
    "explain_support_offer",
    "handover_ask_problem",
    "handover_ask_contact",
    "handover_ask_phone",
    "handover_done",
    "route_this_chat",
    "route_nhs_mail",
    "route_email",
    "route_phone",
    "handover_when",
    "details_added",
    "details_kept",
    "reference_email_change",
    "reference_support",
    "reference_none",
    "who_to_contact",
    "welsh",
    "time_impossible",
    "time_future",
    "time_vague",
    "time_assumed",
];

/// The `[choices]` lists in `data/replies.toml` the core uses.
pub const CHOICES: &[&str] = &["rephrase", "handover_problem", "handover_contact"];

/// The causes offered when someone can't get in and hasn't said why.
const TRIAGE: &[&str] = &[
    "forgot_password",
    "forgot_username",
    "reset_email_missing",
    "link_expired",
    "account_locked",
    "first_login",
];

/// A request to pass a new address on, made with it (on the normal form).
static PASS_ON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:can|could|would|will|please|pls|plz)\s+(?:you\s+)?(?:let|tell|inform|pass|send|forward|notify)\s+(?:the\s+)?(?:training|them|it|this|that)\b|\bpass\s+(?:it|this|that)\s+on\b")
        .expect("pattern")
});

/// A question about reset links or e-mails, and one about the lock (on the normal form).
static LINK_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:links?|reset e-?mails?|e-?mails?|resets?)\b").expect("pattern")
});
static LOCK_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:locks?|locked|lockout|lock out|locked out)\b").expect("pattern")
});

static SOMEONE_ELSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?x)
        ^(?:she|he|they)\b
        | \b(?:she|he)(?:'s|\s+is|\s+has|\s+was|\s+cant|\s+can't|\s+cannot|\s+got|\s+keeps)\b
        | \bmy\s+(?:colleague|colleagues|friend|mate|manager|staff|team\s+member|student|nurse|hca|mentee|mentor|preceptor|preceptee|supervisor|boss|consultant|registrar|doctor|secretary|clerk|wife|husband|partner|mum|daughter|son|(?:ward|line|team|unit|deputy)\s+(?:manager|leader|sister))\b
        | \b(?:a|one\s+of\s+my|one\s+of\s+our|one\s+of\s+the|our\s+new|a\s+new)\s+(?:staff\s+members?|members?\s+of\s+staff|colleagues?|nurses?|hcas?|starters?|students?|members?\s+of\s+my\s+team)\b
        | \bfor\s+(?:her|him|someone|a\s+colleague|my\s+colleague)\b
        | \bthe\s+(?:new\s+starter|new\s+starters|new\s+girl|new\s+lad|new\s+nurse|new\s+hca|student|agency\s+nurse|bank\s+nurse)\b
        | \b(?:guess|guessing|typed|type|reset|forgot|forgotten)\s+(?:hers|his)\b
        | \b(?:her|his)\s+(?:esr|account|password|login|reset|link|manager|lock|username)\b
        | \b(?:she|he)\s+(?:just\s+)?(?:reset|unlock|log|get|do|use|change|try)\b
        | \b(?:unlock|unblock|reset|help|sort|override)\s+(?:it\s+for\s+)?(?:her|him)\b
    ").expect("pattern")
});
static DONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:(?:i'?ve|ive|i have|just)\s+(?:reset|changed|set|created|made|done)|done|finished|complete|completed|worked|working now|works now|successful|i'?m in|im in|i am in|got in|logged in|managed|sorted|changed it|changed (?:the|my) password|took me back to the login|reset it|it'?s reset|new password (?:is )?(?:set|saved|done)|set (?:a|my) new|chose a new|created a new)\b")
        .expect("pattern")
});
/// The reset e-mail arrived, and not a new one ("email came through", "got it, email is here").
static ARRIVED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\be-?\s?mail\s+(?:has\s+)?(?:came|come|arrived|is\s+here|just\s+came)\b")
        .expect("pattern")
});

/// "doing it now", "ok ok doing it": about to use the link, or to request one.
static DOING_IT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:doing|doin)\s+it\b").expect("pattern"));

/// A new request named with a broken link ("link expired so i did a new one at 2"): that time
/// is the new link's, not the broken one's.
static NEW_REQUEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:new|another|fresh)\s+(?:one|reset|link|request|e-?\s?mail)\b|\b(?:did|done|requested|sent|redone|redid)\s+(?:it\s+|one\s+)?again\b")
        .expect("pattern")
});

/// "does the link still work?", "can i still use it": a question whether a link is still good.
static STILL_GOOD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bstill\s+(?:work|works|valid|ok|okay|good|usable|live|in\s+date|be\s+ok)\b|\bcan\s+i\s+still\b")
        .expect("pattern")
});
/// A link reported broken: "still doesnt work", "not working", "it says invalid".
static BROKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:not|doesn'?t|doesnt|dont|don'?t|won'?t|wont|isn'?t|isnt|never|invalid|error|expired|broken|dead)\b")
        .expect("pattern")
});

/// A question about lifting a lock: its times are not when the lock began.
static UNLOCK_ASKED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:unlock|unlocked|override|overide|overrule|lift)\b").expect("pattern")
});

/// "found both emails in junk, which one do i use": the newest.
static WHICH_ONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bwhich\s+(?:one|e-?\s?mail|link)\b").expect("pattern"));

/// True when the message says the reset is finished or they are in ("ok im in").
pub(crate) fn says_done(norm: &str) -> bool {
    DONE.is_match(norm)
}

static WRONG_AGAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:wrong again|another wrong|failed again|typed it wrong|got it wrong|entered it wrong|put it in wrong|incorrect again|still wrong|one more wrong|wrong one|once more|tried again|one more go|one more try|(?:typed|put|entered|got)\s+(?:mine|my\s+(?:esr\s+)?|the\s+)?(?:password|pw)?\s*(?:in\s+)?wrong|says\s+(?:it'?s\s+|its\s+)?(?:wrong|incorrect)|tried\s+(?:my\s+)?(?:old\s+)?password\b.*\bwrong$)\b")
        .expect("pattern")
});

/// The writer's own problem, whoever else the message names ("got locked out of esr this
/// morning… my manager needs my training done").
static ABOUT_ME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?x)
        ^(?:i\s+)?(?:got|been|am|just\s+got)\s+locked\b
        | \b(?:i'?m|im|i\s+am|i'?ve\s+been|ive\s+been|i\s+got|i\s+was|i\s+have\s+been)\s+(?:locked|blocked)\b
        | \bmy\s+(?:esr\s+)?(?:account|password|login|username|reset|link)\b
        | \bi\s+(?:forgot|forget|cant\s+remember|can't\s+remember)\b
    ").expect("pattern")
});

/// A correction of a lock just recorded: "no sorry, only 2 goes", "misread it", "not locked".
static NOT_LOCKED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:only|misread|not\s+locked|isn'?t\s+locked|isnt\s+locked|not\s+actually\s+locked)\b|^(?:oh\s+)?(?:wait|no|sorry|actually)\b")
        .expect("pattern")
});

/// A ward or shared computer or login named with a reset.
static SHARED_PC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:ward|shared|generic|communal|team|nurses?\s+station)\s+(?:pc|computer|laptop|login|log\s*in|account|desktop)\b")
        .expect("pattern")
});

/// The writer speaking of themselves: any first-person word.
static FIRST_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:i|i'?m|im|i'?ve|ive|i'?d|id|i'?ll|me|my|mine|myself)\b").expect("pattern")
});

/// Someone who might lift the lock or do the reset for the writer ("can my ward manager do it
/// then", "my manager reckons she can ring ESR and get it unlocked").
static HELPER_ASKED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:manager|matron|supervisor|boss|admin|administrator|it\s+(?:dept|department|team|desk)|support|helpdesk|service\s+desk|team\s+leader|sister|charge\s+nurse|esr)\b.*\b(?:unlock|unlocked|override|overide|do\s+it|sort\s+it|fix\s+it|reset\s+it|lift\s+it|clear\s+it)\b")
        .expect("pattern")
});

/// True when the message asks whether someone else can fix the writer's problem.
pub fn asks_a_helper(norm: &str) -> bool {
    HELPER_ASKED.is_match(norm)
}

/// True when the message is about someone other than the person writing.
pub fn about_someone_else(norm: &str) -> bool {
    SOMEONE_ELSE.is_match(norm) && !ABOUT_ME.is_match(norm)
}

/// True when the message is about someone else, or follows a message about someone else
/// without a word about the writer ("my mentor is locked out" then "can you unlock it?").
pub fn still_about_someone_else(norm: &str, after_someone_else: bool) -> bool {
    about_someone_else(norm) || (after_someone_else && !FIRST_PERSON.is_match(norm))
}

/// "I've requested a reset": starts the link timer from now.
fn reset_choice(engine: &Engine) -> Choice {
    Choice::say(
        engine.content().message("choice_reset_requested"),
        "I have just requested a password reset",
        ChoiceStyle::Primary,
    )
}

fn locked_vars(
    engine: &Engine,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    vec![
        ("locked_until", engine.clock(until, now)),
        ("time_left", time_left(until - now)),
    ]
}

fn answer(engine: &Engine, id: &str, variant: &str, vars: &[(&str, String)]) -> String {
    engine.say(engine.content().answer(id, variant), vars)
}

/// `variant`, or its `_quiet` form (which promises no reminder) when the person turned reminders
/// off.
fn promise(engine: &Engine, t: &Turn, id: &str, variant: &str, vars: &[(&str, String)]) -> String {
    if t.state.reminders_off {
        answer(engine, id, &format!("{variant}_quiet"), vars)
    } else {
        answer(engine, id, variant, vars)
    }
}

fn cant_log_in(engine: &Engine, t: &mut Turn, id: &str) -> String {
    // What their own state already explains comes first.
    if let Some(until) = t.state.locked_at(t.now) {
        t.d.reply.personal = true;
        return answer(engine, id, "locked", &locked_vars(engine, until, t.now));
    }
    if let Some(exp) = t.state.link_valid_until {
        t.d.reply.personal = true;
        let vars = [
            ("expires_at", engine.clock(exp, t.now)),
            ("time_left", time_left(exp - t.now)),
        ];
        if exp > t.now {
            return answer(engine, id, "link_live", &vars);
        }
        t.d.reply.choices = vec![reset_choice(engine)];
        return answer(engine, id, "link_expired", &vars);
    }
    let options: Vec<String> = TRIAGE.iter().map(|s| s.to_string()).collect();
    let ask = engine.ask_which(t, options, "triage_ask");
    format!("{}\n\n{ask}", answer(engine, id, "text", &[]))
}

fn forgot_password(engine: &Engine, t: &mut Turn, id: &str) -> String {
    if let Some(until) = t.state.locked_at(t.now) {
        t.d.reply.personal = true;
        return promise(engine, t, id, "locked", &locked_vars(engine, until, t.now));
    }
    t.d.reply.choices = vec![reset_choice(engine)];
    answer(engine, id, "text", &[])
}

fn link_expired(engine: &Engine, t: &mut Turn, id: &str) -> String {
    // "does the link still work", asked with a live link on record: its times, not its end.
    if t.time.is_none()
        && t.state.link_valid_until.is_some_and(|exp| exp > t.now)
        && STILL_GOOD.is_match(t.norm)
        && !BROKEN.is_match(t.norm)
        && let Some(b) = find("timer_status")
    {
        t.d.reply.intent = Some("timer_status".into());
        return (b.act)(engine, t, "timer_status");
    }
    if let Some(until) = t.state.locked_at(t.now) {
        t.d.reply.personal = true;
        return promise(engine, t, id, "locked", &locked_vars(engine, until, t.now));
    }
    // "I did the reset at 7am ... the link isn't working", said at 12:30: when it ran out.
    if let Some(at) = t.time
        && at + engine.rules.link_life <= t.now
        && t.time_problem.is_none()
    {
        engine.clear_link(t);
        t.d.reply.personal = true;
        t.d.reply.choices = vec![reset_choice(engine)];
        return reset_requested(engine, t, "reset_requested");
    }
    // "got the email at 1 but the link gives an error", said at 13:10: it has not run out, so
    // what else stops a live link, and its times recorded as for `reset_requested`.
    if t.time.is_some() && t.time_problem.is_none() {
        if NEW_REQUEST.is_match(t.norm) {
            return reset_requested(engine, t, "reset_requested");
        }
        let advice = answer(engine, id, "live", &[]);
        let times = reset_requested(engine, t, "reset_requested");
        return format!("{advice}\n\n{times}");
    }
    // The person's link is dead whatever we thought: stop reminding about it.
    engine.clear_link(t);
    t.d.reply.choices = vec![reset_choice(engine)];
    answer(engine, id, "text", &[])
}

/// A time that cannot be right is asked about, never taken as now; an assumed hour is said.
fn check_time(engine: &Engine, t: &mut Turn) -> Option<String> {
    match t.time_problem {
        Some(TimeProblem::Impossible) => Some(engine.message("time_impossible", &[])),
        Some(TimeProblem::Future) => Some(engine.message("time_future", &[])),
        Some(TimeProblem::Vague) => Some(engine.message("time_vague", &[])),
        None => {
            if let Some(at) = t.time.filter(|_| t.time_assumed) {
                let note = engine.message(
                    "time_assumed",
                    &[("at", format_when(at, t.now, engine.rules.tz))],
                );
                t.notes.push(note);
            }
            None
        }
    }
}

fn reset_requested(engine: &Engine, t: &mut Turn, id: &str) -> String {
    t.d.reply.personal = true;
    if let Some(until) = t.state.locked_at(t.now) {
        return promise(engine, t, id, "locked", &locked_vars(engine, until, t.now));
    }
    // "email came through" with a link on record: that link's e-mail, its time unchanged.
    // "ok ok doing it" after the reminder: using that link, not a new request.
    if (ARRIVED.is_match(t.norm) || DOING_IT.is_match(t.norm))
        && t.time.is_none()
        && let Some(exp) = t.state.link_valid_until.filter(|exp| *exp > t.now)
    {
        let vars = [
            ("expires_at", engine.clock(exp, t.now)),
            ("time_left", time_left(exp - t.now)),
        ];
        return answer(engine, "after_reset", "not_yet_live", &vars);
    }
    if let Some(ask) = check_time(engine, t) {
        return ask;
    }
    let at = t.time.unwrap_or(t.now);
    let expires = at + engine.rules.link_life;
    let tz = engine.rules.tz;
    let vars = [
        ("requested_at", format_when(at, t.now, tz)),
        ("expires_at", engine.clock(expires, t.now)),
        ("ran_out", format_when(expires, t.now, tz)),
        ("time_left", time_left(expires - t.now)),
    ];
    if expires <= t.now {
        return answer(engine, id, "already_expired", &vars);
    }
    // "just did the reset on the ward pc": the shared computer's advice goes with the times.
    if SHARED_PC.is_match(t.norm) {
        t.notes.push(answer(engine, "shared_computer", "text", &[]));
    }
    engine.clear_link(t);
    t.state.reset_requested_at = Some(at);
    t.state.link_valid_until = Some(expires);
    // One job at a time per timer: the warning, or the expiry when the warning time has passed.
    let warn_at = expires - engine.rules.warn_before;
    if warn_at > t.now {
        engine.schedule(t, crate::core::records::JobKind::LinkWarning, warn_at);
        promise(engine, t, id, "text", &vars)
    } else {
        engine.schedule(t, crate::core::records::JobKind::LinkExpired, expires);
        answer(engine, id, "little_time", &vars)
    }
}

/// "did the reset 20 mins ago and nothing has come": where the e-mail goes, and the request's
/// time recorded as for `reset_requested`, so its link times and reminder follow.
fn reset_email_missing(engine: &Engine, t: &mut Turn, id: &str) -> String {
    let advice = answer(engine, id, "text", &[]);
    if t.time.is_none() && t.time_problem.is_none() {
        return advice;
    }
    let times = reset_requested(engine, t, "reset_requested");
    format!("{advice}\n\n{times}")
}

fn login_attempts(engine: &Engine, t: &mut Turn, id: &str) -> String {
    // "wrong again", "typed it wrong": one more than we knew of.
    let count = t.count.or_else(|| {
        (WRONG_AGAIN.is_match(t.norm) || t.norm.contains("again"))
            .then(|| t.state.failed_attempts + 1)
    });
    // "only 3 goes?", "is it 3 tries?": a question about the rule counts nothing.
    let asks_rule = t.text.trim_end().ends_with('?') && !FIRST_PERSON.is_match(t.norm);
    let Some(n) = count.filter(|_| !asks_rule) else {
        return answer(engine, id, "text", &[]);
    };
    t.d.reply.personal = true;
    let max = engine.rules.max_attempts;
    // "oh wait no, ive only had 2 goes" just after a lock was recorded: not locked after all.
    if n < max && t.state.locked_at(t.now).is_some() && NOT_LOCKED.is_match(t.norm) {
        engine.cancel(t, |k| k == crate::core::records::JobKind::LockOver);
        t.state.locked_until = None;
    }
    t.state.failed_attempts = n.min(max);
    t.state.attempts_at = Some(t.now);
    if n >= max {
        let until = engine.lock(t, t.time.unwrap_or(t.now));
        let mut vars = locked_vars(engine, until, t.now);
        vars.push(("attempts_used", n.to_string()));
        return promise(engine, t, id, "now_locked", &vars);
    }
    engine.purge_at(t, t.now + engine.rules.purge_after);
    answer(
        engine,
        id,
        "counted",
        &[
            ("attempts_used", n.to_string()),
            ("attempts_word", plural(n, "attempt", "attempts").into()),
            ("attempts_left", attempts_phrase(max - n)),
        ],
    )
}

fn account_locked(engine: &Engine, t: &mut Turn, id: &str) -> String {
    t.d.reply.personal = true;
    // Saying "still locked out" again must not restart a running lock, nor does a part of the
    // day with no hour ("can you not unlock it, i need to do my training tonight") or a time in
    // a question about unlocking ("can my manager unlock it? she's on at 8").
    if t.state.locked_at(t.now).is_some() && (t.time_assumed || UNLOCK_ASKED.is_match(t.norm)) {
        t.time = None;
        t.time_assumed = false;
    }
    if let Some(ask) = check_time(engine, t) {
        return ask;
    }
    let until = match (t.state.locked_at(t.now), t.time) {
        (Some(until), None) => until,
        _ => {
            let start = t.time.unwrap_or(t.now);
            let end = start + engine.rules.lock_time;
            if end <= t.now {
                return answer(engine, id, "already_over", &locked_vars(engine, end, t.now));
            }
            engine.lock(t, start)
        }
    };
    promise(engine, t, id, "text", &locked_vars(engine, until, t.now))
}

fn timer_status(engine: &Engine, t: &mut Turn, id: &str) -> String {
    t.d.reply.personal = true;
    // About someone else: the rules for them, and what the writer has, so nothing of theirs is
    // taken for the writer's.
    if t.someone_else {
        let general = answer(engine, id, "general", &[]);
        return format!("{general}\n\n{}", engine.status(t.state, t.now));
    }
    // With nothing running, "how long does the link last?" asks for the rule, not their times.
    let running = t.state.link_valid_until.is_some()
        || t.state.locked_at(t.now).is_some()
        || t.state.failed_attempts > 0;
    let event = match (LINK_WORDS.is_match(t.norm), LOCK_WORDS.is_match(t.norm)) {
        (true, false) => Some(("reset_requested", "none_link")),
        (false, true) => Some(("account_locked", "none_lock")),
        _ => None,
    };
    // "locked out about 10 mins ago, when can i try again": the event, with its time, when
    // nothing runs yet (an event its own pattern states is acted on as itself: `states_event`).
    if let Some((event, _)) = event
        && t.time.is_some()
        && !running
        && let Some(b) = find(event)
    {
        t.d.reply.intent = Some(event.into());
        return (b.act)(engine, t, event);
    }
    let about = event.filter(|_| !running);
    let mut status = match about {
        Some((_, rule)) => answer(engine, id, rule, &[]),
        None => engine.status(t.state, t.now),
    };
    if WHICH_ONE.is_match(t.norm) {
        status = format!("{}\n\n{status}", answer(engine, id, "newest", &[]));
    }
    if let Some(reference) = t.state.open_escalation(EscalationKind::TalkToHuman) {
        let vars = engine.support_vars(t, reference);
        status = format!("{status}\n{}", engine.message("status_handover", &vars));
    }
    if let Some(reference) = t.state.open_escalation(EscalationKind::EmailChanged) {
        let vars = [("reference", reference.to_string())];
        status = format!("{status}\n{}", engine.message("status_email_change", &vars));
    }
    status
}

/// The event a timer question states in words its own patterns know ("locked at 8 this
/// morning, when will it unlock", "found it, it came in at 9:05. how long have i got"): the
/// turn is acted on as that event, which records it and gives its times.
pub(crate) fn states_event(engine: &Engine, id: &str, norm: &str) -> Option<&'static str> {
    if id != "timer_status" {
        return None;
    }
    let said = engine.pattern_intents(norm);
    ["reset_requested", "account_locked"]
        .into_iter()
        .find(|event| said.contains(event))
}

fn after_reset(engine: &Engine, t: &mut Turn, id: &str) -> String {
    t.d.reply.personal = true;
    // "what now?" is not a statement that the reset was finished: the link stays.
    if !DONE.is_match(t.norm) {
        return match t.state.link_valid_until.filter(|exp| *exp > t.now) {
            Some(exp) => {
                let vars = [
                    ("expires_at", engine.clock(exp, t.now)),
                    ("time_left", time_left(exp - t.now)),
                ];
                answer(engine, id, "not_yet_live", &vars)
            }
            None => answer(engine, id, "not_yet", &[]),
        };
    }
    now_in(engine, t);
    answer(engine, id, "text", &[])
}

/// They are in: no link to warn about, no lock holding them, and the count starts again.
fn now_in(engine: &Engine, t: &mut Turn) {
    engine.clear_link(t);
    engine.cancel(t, |k| k == crate::core::records::JobKind::LockOver);
    t.state.locked_until = None;
    t.state.failed_attempts = 0;
    t.state.attempts_at = None;
}

/// "done, it worked!! im in, thanks": thanked, and the recorded problem cleared as for
/// `after_reset`, so no reminder follows about a link they no longer need.
fn thanks(engine: &Engine, t: &mut Turn, id: &str) -> String {
    if DONE.is_match(t.norm) && !about_someone_else(t.norm) {
        now_in(engine, t);
    }
    answer(engine, id, "text", &[])
}

fn email_changed(engine: &Engine, t: &mut Turn, id: &str) -> String {
    t.d.reply.personal = true;
    if let Some(existing) = t.state.open_escalation(EscalationKind::EmailChanged) {
        return answer(engine, id, "exists", &[("reference", existing.to_string())]);
    }
    t.d.reply.choices = engine.yes_no("choice_pass_on");
    // The new address given with the news is confirmed, not asked for again; given with a
    // request to pass it on ("can you let the training team know"), it is passed on.
    if let Some(address) = new_address(t.text).filter(|a| is_nhs_net(a)) {
        let address = address.to_ascii_lowercase();
        if PASS_ON.is_match(t.norm) {
            t.d.reply.choices.clear();
            return pass_on_address(engine, t, address, false);
        }
        t.state.pending = Pending::EmailOffer {
            asked_at: t.now,
            address: Some(address.clone()),
        };
        return answer(engine, id, "offer_address", &[("address", address)]);
    }
    t.state.pending = Pending::EmailOffer {
        asked_at: t.now,
        address: None,
    };
    answer(engine, id, "text", &[])
}

fn talk_to_human(engine: &Engine, t: &mut Turn, id: &str) -> String {
    t.d.reply.personal = true;
    if let Some(existing) = t.state.open_escalation(EscalationKind::TalkToHuman) {
        let vars = engine.support_vars(t, existing);
        return answer(engine, id, "exists", &vars);
    }
    // Recorded now, on the turn they asked: nothing is lost if they walk away. What they say
    // next is added to it.
    engine.escalate(t, EscalationKind::TalkToHuman, None);
    let reference = t.next_reference.to_string();
    let vars = engine.support_vars(t, &reference);
    let ask = engine.handover_question(t, HandoverStep::Problem, &reference);
    format!("{}\n\n{ask}", answer(engine, id, "text", &vars))
}

/// The new nhs.net address in an answer to "what is your new address?".
pub(crate) fn email_address(engine: &Engine, t: &mut Turn, text: &str, awaited: bool) -> String {
    t.d.reply.personal = true;
    t.d.reply.intent = Some("email_changed".into());
    let address = new_address(text).unwrap_or_default();
    if !is_nhs_net(address) {
        t.state.pending = Pending::EmailAddress { asked_at: t.now };
        let key = if address.is_ascii() {
            "email_not_nhs"
        } else {
            "email_accents"
        };
        return engine.message(key, &[]);
    }
    pass_on_address(engine, t, address.to_ascii_lowercase(), awaited)
}

/// Records the e-mail change with the new address.
/// Passes the new address on: a new e-mail-change escalation, or, when `awaited` (the answer to
/// "what is your new address?" after a "yes"), the address added to the one recorded then.
pub(crate) fn pass_on_address(
    engine: &Engine,
    t: &mut Turn,
    address: String,
    awaited: bool,
) -> String {
    t.d.reply.personal = true;
    t.d.reply.intent = Some("email_changed".into());
    if let Some(existing) = t.state.open_escalation(EscalationKind::EmailChanged) {
        // Recorded on their "yes", before the address: this is the address it waits for.
        if awaited {
            let reference = existing.to_string();
            t.d.escalation_update.reference = Some(reference.clone());
            t.d.escalation_update.new_address = Some(address.clone());
            return engine.message(
                "email_recorded",
                &[("address", address), ("reference", reference)],
            );
        }
        return answer(
            engine,
            "email_changed",
            "exists",
            &[("reference", existing.to_string())],
        );
    }
    engine.escalate(t, EscalationKind::EmailChanged, Some(address.clone()));
    engine.message(
        "email_recorded",
        &[
            ("address", address),
            ("reference", t.next_reference.to_string()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_about_someone_else_are_told_apart() {
        for other in [
            "she is locked out of esr",
            "my colleague cant get in",
            "one of my staff forgot her password",
            "a staff member on my ward is locked out",
            "how do i reset it for her",
            "one of my hcas is locked out of esr",
            "can you unlock her? she needs to finish her appraisal today",
            "my mentor got locked out of esr at 8 this morning",
        ] {
            assert!(about_someone_else(other), "{other}");
        }
        // After a message about someone else, one without a word about the writer is still
        // about them; one with such a word is the writer's own.
        assert!(still_about_someone_else("can you unlock it", true));
        assert!(!still_about_someone_else("can you unlock it", false));
        assert!(!still_about_someone_else(
            "ok and if i forget mine where do i reset it",
            true
        ));
        for own in [
            "i'm locked out",
            "locked out of esr",
            "the reset link expired",
            "got locked out of esr this morning at 8 my manager needs my training done today",
            "i forgot my password and my manager wants it done today",
            "she",
        ] {
            assert!(!about_someone_else(own) || own == "she", "{own}");
        }
    }
}
