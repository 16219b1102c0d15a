//! What each intent does beyond answering with its `text`: one table, `BEHAVIOURS`, that registers
//! an intent's handler and the reply variants it picks from. An intent that only answers needs no
//! entry (its file under `intents/` and its `text` in `data/replies.toml` are enough); an intent
//! with behaviour adds one handler here. `esrbot check` insists that every listed variant exists.

use chrono::{DateTime, Utc};

use crate::core::engine::{Decision, Engine, attempts_phrase, plural};
use crate::core::records::{
    Choice, ChoiceStyle, EscalationKind, JobKind, Pending, Recipient, UserState,
};
use crate::understanding::content::render;
use crate::understanding::text::{find_email, is_nhs_net};

/// One turn of the dialogue as a handler sees it: who, their state, what the message carried
/// (a time, a count of attempts), the time now, and the decision being built.
pub struct Turn<'a> {
    pub who: &'a Recipient,
    pub state: &'a mut UserState,
    pub time: Option<DateTime<Utc>>,
    pub count: Option<u32>,
    pub now: DateTime<Utc>,
    pub next_reference: &'a str,
    pub d: &'a mut Decision,
}

/// An intent's registered behaviour.
pub struct Behaviour {
    pub intent: &'static str,
    /// The reply variants under `[intent.ID]` the handler uses (`text` unless listed otherwise).
    pub variants: &'static [&'static str],
    pub act: fn(&Engine, &mut Turn, &str) -> String,
}

/// Every intent with behaviour. The only place to register one.
pub const BEHAVIOURS: &[Behaviour] = &[
    Behaviour {
        intent: "forgot_password",
        variants: &["text", "locked"],
        act: forgot_password,
    },
    Behaviour {
        intent: "link_expired",
        variants: &["text", "locked"],
        act: link_expired,
    },
    Behaviour {
        intent: "reset_requested",
        variants: &["text", "already_expired", "locked"],
        act: reset_requested,
    },
    Behaviour {
        intent: "login_attempts",
        variants: &["text", "counted", "now_locked"],
        act: login_attempts,
    },
    Behaviour {
        intent: "account_locked",
        variants: &["text", "already_over"],
        act: account_locked,
    },
    Behaviour {
        intent: "timer_status",
        variants: &["none"],
        act: timer_status,
    },
    Behaviour {
        intent: "after_reset",
        variants: &["text"],
        act: after_reset,
    },
    Behaviour {
        intent: "email_changed",
        variants: &["text", "exists"],
        act: email_changed,
    },
    Behaviour {
        intent: "talk_to_human",
        variants: &["text", "exists"],
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
    "email_ask",
    "email_not_nhs",
    "email_cancelled",
    "email_recorded",
    "reminder_link_warning",
    "reminder_link_expired",
    "reminder_lock_over",
    "error",
    "choice_reset_requested",
    "choice_pass_on",
    "choice_no",
];

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
    vec![("locked_until", engine.clock(until, now))]
}

fn answer(engine: &Engine, id: &str, variant: &str, vars: &[(&str, String)]) -> String {
    engine.say(engine.content().answer(id, variant), vars)
}

fn forgot_password(engine: &Engine, t: &mut Turn, id: &str) -> String {
    if let Some(until) = t.state.locked_at(t.now) {
        t.d.reply.personal = true;
        return answer(engine, id, "locked", &locked_vars(engine, until, t.now));
    }
    t.d.reply.choices = vec![reset_choice(engine)];
    answer(engine, id, "text", &[])
}

fn link_expired(engine: &Engine, t: &mut Turn, id: &str) -> String {
    if let Some(until) = t.state.locked_at(t.now) {
        t.d.reply.personal = true;
        return answer(engine, id, "locked", &locked_vars(engine, until, t.now));
    }
    // The person's link is dead whatever we thought: stop reminding about it.
    engine.clear_link(t);
    t.d.reply.choices = vec![reset_choice(engine)];
    answer(engine, id, "text", &[])
}

fn reset_requested(engine: &Engine, t: &mut Turn, id: &str) -> String {
    t.d.reply.personal = true;
    if let Some(until) = t.state.locked_at(t.now) {
        return answer(engine, id, "locked", &locked_vars(engine, until, t.now));
    }
    let at = t.time.unwrap_or(t.now);
    let expires = at + engine.rules.link_life;
    let vars = [
        ("requested_at", engine.clock(at, t.now)),
        ("expires_at", engine.clock(expires, t.now)),
    ];
    if expires <= t.now {
        return answer(engine, id, "already_expired", &vars);
    }
    engine.clear_link(t);
    t.state.reset_requested_at = Some(at);
    t.state.link_valid_until = Some(expires);
    // One job at a time per timer: the warning, or the expiry when the warning time has passed.
    let warn_at = expires - engine.rules.warn_before;
    if warn_at > t.now {
        engine.schedule(t, JobKind::LinkWarning, warn_at);
    } else {
        engine.schedule(t, JobKind::LinkExpired, expires);
    }
    answer(engine, id, "text", &vars)
}

fn login_attempts(engine: &Engine, t: &mut Turn, id: &str) -> String {
    let Some(n) = t.count else {
        return answer(engine, id, "text", &[]);
    };
    t.d.reply.personal = true;
    let max = engine.rules.max_attempts;
    t.state.failed_attempts = n.min(max);
    t.state.attempts_at = Some(t.now);
    if n >= max {
        let until = engine.lock(t, t.time.unwrap_or(t.now));
        let mut vars = locked_vars(engine, until, t.now);
        vars.push(("attempts_used", n.to_string()));
        return answer(engine, id, "now_locked", &vars);
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
    // Saying "still locked out" again must not restart a running lock.
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
    answer(engine, id, "text", &locked_vars(engine, until, t.now))
}

fn timer_status(engine: &Engine, t: &mut Turn, _id: &str) -> String {
    t.d.reply.personal = true;
    engine.status(t.state, t.now)
}

fn after_reset(engine: &Engine, t: &mut Turn, id: &str) -> String {
    t.d.reply.personal = true;
    engine.clear_link(t);
    t.state.failed_attempts = 0;
    t.state.attempts_at = None;
    answer(engine, id, "text", &[])
}

fn email_changed(engine: &Engine, t: &mut Turn, id: &str) -> String {
    t.d.reply.personal = true;
    if let Some(existing) = t.state.open_escalation(EscalationKind::EmailChanged) {
        return answer(engine, id, "exists", &[("reference", existing.to_string())]);
    }
    t.state.pending = Pending::EmailOffer { asked_at: t.now };
    t.d.reply.choices = vec![
        Choice::say(
            engine.content().message("choice_pass_on"),
            "yes",
            ChoiceStyle::Primary,
        ),
        Choice::say(
            engine.content().message("choice_no"),
            "no",
            ChoiceStyle::Secondary,
        ),
    ];
    answer(engine, id, "text", &[])
}

fn talk_to_human(engine: &Engine, t: &mut Turn, id: &str) -> String {
    t.d.reply.personal = true;
    if let Some(existing) = t.state.open_escalation(EscalationKind::TalkToHuman) {
        return answer(engine, id, "exists", &[("reference", existing.to_string())]);
    }
    engine.escalate(t, EscalationKind::TalkToHuman, None);
    answer(
        engine,
        id,
        "text",
        &[("reference", t.next_reference.to_string())],
    )
}

/// The new nhs.net address in an answer to "what is your new address?".
pub(crate) fn email_address(engine: &Engine, t: &mut Turn, text: &str) -> String {
    t.d.reply.personal = true;
    t.d.reply.intent = Some("email_changed".into());
    let content = engine.content();
    let mailbox = engine.rules.mailbox.as_str();
    let address = find_email(text).unwrap_or_default();
    if !is_nhs_net(address) {
        t.state.pending = Pending::EmailAddress { asked_at: t.now };
        return content.message("email_not_nhs").to_string();
    }
    let address = address.to_ascii_lowercase();
    if let Some(existing) = t.state.open_escalation(EscalationKind::EmailChanged) {
        return render(
            content.answer("email_changed", "exists"),
            &[("reference", existing), ("mailbox", mailbox)],
        );
    }
    engine.escalate(t, EscalationKind::EmailChanged, Some(address.clone()));
    render(
        content.message("email_recorded"),
        &[
            ("address", &address),
            ("mailbox", mailbox),
            ("reference", t.next_reference),
        ],
    )
}
