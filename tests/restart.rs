//! Reminders live in the database: a restart (a new process on the same file) loses none, and
//! what fell due while the bot was down is delivered if it still means something.

use esrbot::core::records::{JobKind, Recipient};
use esrbot::service::Service;
use esrbot::store::Store;

use super::{at, bot_at, engine, temp_db};

#[test]
fn reminders_survive_a_restart() {
    let (_dir, path) = temp_db();
    {
        let bot = bot_at(&path);
        let r = bot
            .handle(
                "u:1",
                None,
                "I've just submitted the reset",
                at("2026-03-02T09:00:00Z"),
            )
            .unwrap();
        assert!(r.text.contains("13:00"), "{}", r.text);
    } // the bot stops here
    let bot = bot_at(&path);
    assert_eq!(
        bot.store.next_job_due("u").unwrap(),
        Some(at("2026-03-02T12:30:00Z"))
    );
    let due = bot
        .deliver_due_in("u", at("2026-03-02T12:31:00Z"), 100)
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, JobKind::LinkWarning);
    assert!(due[0].text.contains("13:00"));
    // Claimed reminders are gone for good: a second process start does not repeat them.
    drop(bot);
    let bot = bot_at(&path);
    assert!(
        bot.deliver_due_in("u", at("2026-03-02T12:32:00Z"), 100)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_late_start_replaces_the_warning_with_the_expiry_notice() {
    let (_dir, path) = temp_db();
    bot_at(&path)
        .handle(
            "u:1",
            None,
            "I've just submitted the reset",
            at("2026-03-02T09:00:00Z"),
        )
        .unwrap();
    // Down from 12:00 to 15:00: both the warning (12:30) and the expiry (13:00) fell due.
    let bot = bot_at(&path);
    let due = bot
        .deliver_due_in("u", at("2026-03-02T15:00:00Z"), 100)
        .unwrap();
    let kinds: Vec<JobKind> = due.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, vec![JobKind::LinkExpired], "{due:?}");
    assert!(due[0].text.contains("expired"));
}

#[test]
fn a_lock_notice_is_kept_across_restarts_and_state_is_purged_later() {
    let (_dir, path) = temp_db();
    bot_at(&path)
        .handle("u:2", None, "locked out", at("2026-03-02T09:00:00Z"))
        .unwrap();
    let bot = bot_at(&path);
    assert!(
        bot.store
            .user(&"u:2".into())
            .unwrap()
            .locked_until
            .is_some()
    );
    let due = bot
        .deliver_due_in("u", at("2026-03-02T21:00:00Z"), 100)
        .unwrap();
    assert_eq!(due.len(), 1);
    assert!(due[0].text.contains("lock is over"));
    // A day after the lock ended, nothing about it is kept.
    assert!(
        bot.deliver_due_in("u", at("2026-03-03T21:00:00Z"), 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(bot.store.user(&"u:2".into()).unwrap(), Default::default());
    assert_eq!(bot.store.job_count().unwrap(), 0);
}

#[test]
fn many_reminders_are_claimed_in_order_across_batches() {
    let (_dir, path) = temp_db();
    let bot = bot_at(&path);
    for i in 0..50 {
        let start = at("2026-03-02T09:00:00Z") + chrono::Duration::minutes(i);
        bot.handle(format!("u:{i}"), None, "locked out", start)
            .unwrap();
    }
    let mut seen = Vec::new();
    loop {
        let batch = bot
            .deliver_due_in("u", at("2026-03-02T23:00:00Z"), 7)
            .unwrap();
        if batch.is_empty() {
            break;
        }
        seen.extend(batch);
    }
    assert_eq!(seen.len(), 50);
    assert!(seen.windows(2).all(|w| w[0].due <= w[1].due));
}

#[test]
fn event_ids_are_remembered_across_restarts_then_forgotten_after_a_day() {
    let (_dir, path) = temp_db();
    let t = at("2026-03-02T09:00:00Z");
    assert!(
        bot_at(&path)
            .store
            .write(|txn| txn.first_sighting("message:1", t))
            .unwrap()
    );
    let bot = bot_at(&path);
    assert!(
        !bot.store
            .write(|txn| txn.first_sighting("message:1", t))
            .unwrap()
    );
    bot.store
        .write(|txn| txn.forget_events_before(t + chrono::Duration::days(1)))
        .unwrap();
    assert!(
        bot.store
            .write(|txn| txn.first_sighting("message:1", t))
            .unwrap()
    );
}

#[test]
fn each_transport_claims_only_its_own_users_reminders() {
    let (_dir, path) = temp_db();
    let config = super::config();
    let bot = Service::new(
        engine(),
        Store::open(&path).unwrap(),
        esrbot::transports::routing(&config),
    );
    // A terminal user locked out at 09:00 (lock ends 21:00), a Discord user at 10:00 (ends 22:00).
    for (user, text) in [
        ("chat:ann", "I'm locked out of ESR, it happened at 9am"),
        ("discord:42", "locked out of esr at 10am"),
    ] {
        let r = bot
            .handle(user, None, text, at("2026-03-02T10:00:00Z"))
            .unwrap();
        assert_eq!(r.intent.as_deref(), Some("account_locked"), "{}", r.text);
    }
    // Ann's terminal has a lane of its own; Discord has one for everyone on it.
    let chat = bot.lane(&Recipient::from("chat:ann"));
    assert_eq!(chat, "chat:ann");
    let discord = bot.lane(&Recipient::from("discord:42"));
    assert_eq!(
        bot.store.next_job_due(&discord).unwrap(),
        Some(at("2026-03-02T22:00:00Z"))
    );
    // At 23:00 both locks are over; the terminal claims only its own user's notice.
    let now = at("2026-03-02T23:00:00Z");
    let got = bot.deliver_due_in(&chat, now, 100).unwrap();
    let users: Vec<&str> = got.iter().map(|n| n.to.as_str()).collect();
    assert_eq!(users, vec!["chat:ann"]);
    let next = bot.store.next_job_due(&chat).unwrap();
    assert!(next.is_none_or(|t| t > now), "{next:?}");
    // The Discord user's notice is still there for the Discord transport, after a restart too.
    drop(bot);
    let bot = Service::new(
        engine(),
        Store::open(&path).unwrap(),
        esrbot::transports::routing(&config),
    );
    let got = bot.deliver_due_in(&discord, now, 100).unwrap();
    let users: Vec<&str> = got.iter().map(|n| n.to.as_str()).collect();
    assert_eq!(users, vec!["discord:42"]);
    let next = bot.store.next_job_due(&discord).unwrap();
    assert!(next.is_none_or(|t| t > now), "{next:?}");
}
