//! The core's rules on their own: a person's state, a message and a time in, a decision out.
//! No store and no clock: every test is a pure function of its inputs.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, Utc};

use crate::config::Config;
use crate::core::engine::{Decision, Engine};
use crate::core::records::{Job, JobKind, JobRef, Pending, Recipient, UserState};

/// The engine on the shipped files, loaded once for every unit test of the crate.
pub(crate) fn engine() -> Arc<Engine> {
    static E: OnceLock<Arc<Engine>> = OnceLock::new();
    E.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = Config::load(
            &root.join("config.toml"),
            true,
            Vec::<(String, String)>::new(),
        )
        .expect("config");
        Arc::new(crate::service::load_engine(&c).expect("engine"))
    })
    .clone()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

/// A person's state, built field by field.
#[derive(Default)]
struct StateBuilder(UserState);

impl StateBuilder {
    fn locked_until(mut self, t: DateTime<Utc>) -> Self {
        self.0.locked_until = Some(t);
        self.0.failed_attempts = 3;
        self.0.jobs.push(JobRef::new(JobKind::LockOver, t));
        self
    }

    fn link_until(mut self, t: DateTime<Utc>) -> Self {
        self.0.link_valid_until = Some(t);
        self.0.jobs.push(JobRef::new(JobKind::LinkExpired, t));
        self
    }

    fn reminders_off(mut self) -> Self {
        self.0.reminders_off = true;
        self
    }

    fn build(self) -> UserState {
        self.0
    }
}

fn who() -> Recipient {
    Recipient::from("test:ann")
}

fn say(state: &mut UserState, text: &str, now: DateTime<Utc>) -> Decision {
    engine().handle(&who(), state, text, now, "ESC-00001")
}

#[test]
fn a_lockout_schedules_one_lock_end_and_saying_it_again_keeps_it() {
    let now = at("2026-03-02T09:00:00Z");
    let mut state = UserState::default();
    let d = say(&mut state, "I'm locked out of ESR", now);
    assert!(d.reply.text.contains("21:00"), "{}", d.reply.text);
    assert_eq!(
        d.schedule,
        vec![Job::new(
            &who(),
            JobKind::LockOver,
            at("2026-03-02T21:00:00Z")
        )]
    );
    assert_eq!(
        state.jobs,
        vec![JobRef::new(JobKind::LockOver, at("2026-03-02T21:00:00Z"))]
    );
    let d = say(&mut state, "still locked out", at("2026-03-02T10:00:00Z"));
    assert!(d.reply.text.contains("21:00"), "{}", d.reply.text);
    assert!(d.schedule.is_empty() && d.cancel.is_empty(), "{d:?}");
}

#[test]
fn a_reset_schedules_its_warning_or_straight_its_expiry() {
    let mut state = UserState::default();
    let d = say(
        &mut state,
        "I've just requested a password reset",
        at("2026-03-02T09:00:00Z"),
    );
    assert_eq!(d.schedule[0].kind, JobKind::LinkWarning);
    assert_eq!(d.schedule[0].due, at("2026-03-02T12:30:00Z"));
    // A reset requested 3 h 45 min ago: the warning time has passed, so only the expiry.
    let mut state = UserState::default();
    let d = say(
        &mut state,
        "I requested a reset at 9am",
        at("2026-03-02T12:45:00Z"),
    );
    let kinds: Vec<JobKind> = d.schedule.iter().map(|j| j.kind).collect();
    assert_eq!(kinds, vec![JobKind::LinkExpired], "{}", d.reply.text);
    assert_eq!(state.jobs.len(), 1);
}

#[test]
fn a_timer_runs_warning_then_expiry_then_purge() {
    let e = engine();
    let mut state = UserState::default();
    say(
        &mut state,
        "I've just requested a password reset",
        at("2026-03-02T09:00:00Z"),
    );
    let warning = Job::new(&who(), JobKind::LinkWarning, at("2026-03-02T12:30:00Z"));
    let out = e.on_due(&mut state, &warning, at("2026-03-02T12:30:00Z"));
    assert_eq!(
        out.tell,
        Some((JobKind::LinkWarning, at("2026-03-02T13:00:00Z")))
    );
    assert_eq!(out.next[0].kind, JobKind::LinkExpired);
    let out = e.on_due(&mut state, &out.next[0].clone(), at("2026-03-02T13:00:00Z"));
    assert_eq!(out.tell.map(|t| t.0), Some(JobKind::LinkExpired));
    assert_eq!(
        out.next[0].due,
        at("2026-03-03T13:00:00Z"),
        "purged a day later"
    );
    let out = e.on_due(&mut state, &out.next[0].clone(), at("2026-03-03T13:00:00Z"));
    assert_eq!((out.tell, out.next.len()), (None, 0));
    assert!(state.is_empty(), "{state:?}");
}

#[test]
fn a_job_the_state_no_longer_lists_does_nothing() {
    let mut state = StateBuilder::default()
        .locked_until(at("2026-03-02T21:00:00Z"))
        .build();
    let stale = Job::new(&who(), JobKind::LockOver, at("2026-03-02T20:00:00Z"));
    let out = engine().on_due(&mut state, &stale, at("2026-03-02T21:00:00Z"));
    assert_eq!((out.tell, out.next.len()), (None, 0));
    assert!(state.locked_until.is_some());
}

#[test]
fn with_reminders_off_a_lock_ends_silently() {
    let until = at("2026-03-02T21:00:00Z");
    let mut state = StateBuilder::default()
        .locked_until(until)
        .reminders_off()
        .build();
    let out = engine().on_due(
        &mut state,
        &Job::new(&who(), JobKind::LockOver, until),
        until,
    );
    assert_eq!(out.tell, None);
    assert_eq!(
        (state.locked_until, state.failed_attempts),
        (None, 0),
        "the lock is over all the same"
    );
}

#[test]
fn one_purge_per_person_moved_later_never_earlier() {
    let mut state = UserState::default();
    let t = at("2026-03-02T09:00:00Z");
    say(&mut state, "2 wrong attempts", t);
    say(&mut state, "1 wrong attempt", t + Duration::hours(1));
    let purges: Vec<JobRef> = state
        .jobs
        .iter()
        .copied()
        .filter(|j| j.kind == JobKind::Purge)
        .collect();
    assert_eq!(
        purges,
        vec![JobRef::new(JobKind::Purge, t + Duration::hours(25))]
    );
    say(&mut state, "2 wrong attempts", t + Duration::minutes(30));
    assert_eq!(
        state.job(JobKind::Purge).map(|p| p.due()),
        Some(t + Duration::hours(25))
    );
}

#[test]
fn saying_the_link_expired_cancels_its_reminders() {
    let until = at("2026-03-02T13:00:00Z");
    let mut state = StateBuilder::default().link_until(until).build();
    let d = say(
        &mut state,
        "my reset link has expired",
        at("2026-03-02T10:00:00Z"),
    );
    assert_eq!(d.cancel, vec![JobRef::new(JobKind::LinkExpired, until)]);
    assert!(state.link_valid_until.is_none() && !state.jobs.iter().any(|j| j.kind.is_link()));
}

#[test]
fn an_old_question_is_forgotten_after_an_hour() {
    let mut state = UserState::default();
    let t = at("2026-03-02T09:00:00Z");
    say(&mut state, "my nhs.net email address has changed", t);
    assert!(matches!(state.pending, Pending::EmailOffer { .. }));
    let d = say(&mut state, "yes", t + Duration::minutes(61));
    assert!(d.escalation.is_none());
    assert!(
        !matches!(state.pending, Pending::EmailAddress { .. }),
        "{:?}",
        state.pending
    );
}

/// The text of the calendar file a decision offers under `name`, if any.
fn calendar_file(d: &Decision, name: &str) -> Option<String> {
    let a = d.reply.attachments.iter().find(|a| a.name == name)?;
    assert_eq!(a.media_type, crate::core::calendar::MEDIA_TYPE);
    Some(String::from_utf8(a.body.clone()).expect("UTF-8"))
}

#[test]
fn a_new_lock_and_a_new_link_come_with_calendar_files_at_their_times() {
    let now = at("2026-03-02T09:00:00Z");
    let mut state = UserState::default();
    let d = say(&mut state, "I'm locked out of ESR", now);
    let ics = calendar_file(&d, "esr-unlock.ics").expect("a file for the lock's end");
    assert!(ics.contains("DTSTART:20260302T210000Z\r\n"), "{ics}");
    assert!(ics.contains("TRIGGER:-PT0M\r\n"), "{ics}");
    // Asking again starts nothing new, so no new file.
    let again = say(
        &mut state,
        "I'm locked out of ESR",
        now + Duration::minutes(5),
    );
    assert!(again.reply.attachments.is_empty());

    let mut state = UserState::default();
    let d = say(&mut state, "I requested a password reset at 9am", now);
    let ics = calendar_file(&d, "esr-reset-link.ics").expect("a file for the link's expiry");
    let expires = state.link_valid_until.expect("a link timer");
    assert!(
        ics.contains(&format!("DTSTART:{}\r\n", expires.format("%Y%m%dT%H%M%SZ"))),
        "{ics}"
    );
    let warn = engine().rules.warn_before.num_minutes();
    assert!(ics.contains(&format!("TRIGGER:-PT{warn}M\r\n")), "{ics}");
    // A general question offers no file.
    let d = say(&mut UserState::default(), "what is ESR", now);
    assert!(d.reply.attachments.is_empty());
}

#[test]
fn a_message_that_is_only_a_secret_gets_the_warning_and_keeps_the_conversation() {
    let now = at("2026-02-20T16:00:00Z");
    let mut s = UserState::default();
    say(&mut s, "esr keeps saying my password is wrong", now);
    let topic = s.topic.clone();
    assert!(topic.is_some());
    let d = say(&mut s, "do you need my dob? its 12/07/1991", now);
    assert!(d.reply.text.contains("don't share"), "{}", d.reply.text);
    assert!(!d.reply.text.contains("1991") && !d.reply.text.contains("can only help"));
    assert!(d.reply.choices.is_empty());
    assert_eq!((s.declines, s.topic.clone()), (0, topic));
}

#[test]
fn reminders_are_switched_by_the_command_whatever_follows_it() {
    let now = at("2026-02-20T16:00:00Z");
    for (text, off) in [
        (
            "stop reminders pls my phone keeps buzzing on the ward",
            true,
        ),
        ("no reminders thanks", true),
        ("actually turn the reminders back on", false),
        ("reminders back on please", false),
        (
            "ugh got called away. stop reminders again, ill sort it later",
            true,
        ),
        ("right ok, put reminders back on", false),
    ] {
        let mut s = StateBuilder::default().build();
        s.reminders_off = !off;
        say(&mut s, text, now);
        assert_eq!(s.reminders_off, off, "{text}");
    }
    // "no reminder came" is not a command.
    let mut s = UserState::default();
    say(&mut s, "no reminder came through", now);
    assert!(!s.reminders_off);
}

#[test]
fn turning_reminders_off_gives_the_times_to_note() {
    let now = at("2026-02-17T20:20:00Z");
    let mut s = UserState::default();
    say(&mut s, "just requested a reset for esr", now);
    let d = say(
        &mut s,
        "stop reminders pls, phone has to stay quiet on the ward",
        now,
    );
    assert!(s.reminders_off);
    assert!(d.reply.text.contains("00:20"), "{}", d.reply.text);
}

#[test]
fn two_problems_named_in_one_message_are_both_acted_on() {
    let now = at("2026-01-20T13:10:00Z");
    let mut s = UserState::default();
    let d = say(
        &mut s,
        "locked out AND my nhs.net has changed, its m.patel22@nhs.net now",
        now,
    );
    // The lock is recorded and said first; the offer to pass the address on is the open
    // question, asked last.
    assert_eq!(s.locked_until, Some(at("2026-01-21T01:10:00Z")));
    assert!(
        matches!(s.pending, Pending::EmailOffer { .. }),
        "{:?}",
        s.pending
    );
    let text = &d.reply.text;
    let (lock, offer) = (text.find("01:10"), text.find("m.patel22@nhs.net"));
    assert!(lock.is_some() && offer.is_some() && lock < offer, "{text}");
}

#[test]
fn the_reply_by_time_is_the_one_promised_when_the_hand_over_was_recorded() {
    // Friday 16:00: the support team's target runs into Monday.
    let friday = at("2026-01-16T16:00:00Z");
    let mut s = UserState::default();
    let first = say(&mut s, "can i talk to a person please", friday);
    let promised = first
        .reply
        .text
        .split(", by ")
        .nth(1)
        .expect("a reply-by time");
    let clock: String = promised
        .chars()
        .rev()
        .skip_while(|c| !c.is_ascii_digit())
        .collect();
    let clock: String = clock.chars().rev().collect();
    let clock = &clock[clock.len() - 5..];
    // Asked again on Monday morning, the same time, not a day later.
    let monday = at("2026-01-19T09:00:00Z");
    let again = say(&mut s, "when will they contact me?", monday);
    assert!(
        again.reply.text.contains(&format!("by {clock}")),
        "{} / {}",
        first.reply.text,
        again.reply.text
    );
    assert!(
        !again.reply.text.contains("tomorrow"),
        "{}",
        again.reply.text
    );
}

#[test]
fn an_unless_pattern_stops_its_intents_patterns_and_only_those() {
    let e = engine();
    // The lock patterns match "im locked out"; the `unless` in account_locked.toml stops them
    // when the lock is only what would come of more tries.
    assert!(e.pattern_says("account_locked", "ive been locked out since 9"));
    assert!(!e.pattern_says("account_locked", "how many attempts before im locked out"));
    assert!(e.pattern_says("login_attempts", "how many attempts before im locked out"));
    // cant_log_in's "account is disabled" is stopped when it is the nhsmail account.
    assert!(e.pattern_says("cant_log_in", "my account is disabled"));
    assert!(!e.pattern_says("cant_log_in", "my nhsmail account has been deactivated"));
}
