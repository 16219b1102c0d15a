//! The support team's accounts: created, reset and removed at the command line, signed in with
//! through the library (as the web pages do), throttled, audited, and never a password stored.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use esrbot::service::accounts::{
    ACCOUNT_FAILURES, ADDRESS_FAILURES, Accounts, Outcome, PasswordError, Policy, SessionError,
    SignInError,
};
use esrbot::store::Store;

use super::support::process::admin;
use super::temp_db;

const HOME: &str = "127.0.0.1";
const ELSEWHERE: &str = "192.0.2.7";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The password `esrbot support add|reset` printed: alone on the last line.
fn printed_password(out: &str) -> String {
    let last = out.lines().last().unwrap_or_default();
    assert_eq!(last.len(), 19, "the last line is the password alone: {out}");
    assert_eq!(last.trim(), last, "{out}");
    last.to_string()
}

fn add(db: &std::path::Path, name: &str) -> String {
    let (code, out) = admin(db, &["support", "add", name]);
    assert_eq!(code, 0, "{out}");
    printed_password(&out)
}

/// Whether `needle` appears anywhere in the database file's bytes.
fn in_file(db: &std::path::Path, needle: &str) -> bool {
    let bytes = std::fs::read(db).unwrap();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn an_account_made_at_the_command_line_signs_in_must_change_and_is_reset_and_removed() {
    let (_dir, db) = temp_db();
    let otp = add(&db, "Ann");
    let store = Store::open(&db).unwrap();
    let accounts = Accounts::new(&store, Policy::default());
    let now = Utc::now();

    // The first sign-in works with the printed password and must choose a new one.
    let first = accounts.sign_in("ann", &otp, ip(HOME), now).unwrap();
    assert!(first.session.must_change);
    assert_eq!(first.session.account, "ann");
    let s = accounts.session(&first.token, now).unwrap();
    assert!(s.csrf_ok(&first.session.csrf));
    assert!(!s.csrf_ok("forged"));
    assert!(!s.csrf_ok(""));
    let changed = accounts
        .change_password(&first.token, None, "a much longer passphrase", now)
        .unwrap();
    assert!(!changed.must_change);

    // The one-time password no longer works; the chosen one does, with nothing to change.
    assert!(matches!(
        accounts.sign_in("ann", &otp, ip(HOME), now),
        Err(SignInError::Refused)
    ));
    let second = accounts
        .sign_in("ANN", "a much longer passphrase", ip(HOME), now)
        .unwrap();
    assert!(!second.session.must_change);
    let (code, out) = admin(&db, &["support", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ann") && out.contains("chosen"), "{out}");

    // Reset: a new one-time password, and the sessions end.
    let (code, out) = admin(&db, &["support", "reset", "ann"]);
    assert_eq!(code, 0, "{out}");
    let again = printed_password(&out);
    assert_ne!(again, otp);
    assert!(matches!(
        accounts.session(&second.token, now),
        Err(SessionError::Unknown)
    ));
    assert!(matches!(
        accounts.sign_in("ann", "a much longer passphrase", ip(HOME), now),
        Err(SignInError::Refused)
    ));
    let third = accounts.sign_in("ann", &again, ip(HOME), now).unwrap();
    assert!(third.session.must_change);
    let (_, out) = admin(&db, &["support", "list"]);
    assert!(out.contains("one-time (must change)"), "{out}");

    // Remove: no more sign-in, no more session.
    let (code, out) = admin(&db, &["support", "remove", "ann"]);
    assert_eq!(code, 0, "{out}");
    assert!(accounts.session(&third.token, now).is_err());
    assert!(matches!(
        accounts.sign_in("ann", &again, ip(HOME), now),
        Err(SignInError::Refused)
    ));
    let (code, out) = admin(&db, &["support", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no support accounts"), "{out}");

    // No password, one-time or chosen, is anywhere in the file.
    drop(store);
    for secret in [otp.as_str(), again.as_str(), "a much longer passphrase"] {
        assert!(!in_file(&db, secret), "{secret} is in the database file");
    }
}

#[test]
fn bad_account_commands_get_clear_answers() {
    let (_dir, db) = temp_db();
    add(&db, "bob");
    for (args, says) in [
        (
            &["support", "add", "bob"][..],
            "already an account called bob",
        ),
        (&["support", "add", "not a name"][..], "an account name is"),
        (
            &["support", "remove", "nobody"][..],
            "no account called nobody",
        ),
        (
            &["support", "reset", "nobody"][..],
            "no account called nobody",
        ),
    ] {
        let (code, out) = admin(&db, args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(out.contains(says), "{args:?}: {out}");
        assert!(!out.contains("panicked"), "{out}");
    }
}

#[test]
fn new_passwords_must_be_good_and_the_current_one_is_asked_once_chosen() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    let accounts = Accounts::new(&store, Policy::default());
    let now = Utc::now();
    let otp = accounts.add("cat", now).unwrap().password;
    let t = accounts.sign_in("cat", &otp, ip(HOME), now).unwrap().token;
    for (new, why) in [
        ("short", "at least 12"),
        ("cat-cat-cat-cat", "must not contain your username"),
    ] {
        let e = accounts.change_password(&t, None, new, now).unwrap_err();
        assert!(e.to_string().contains(why), "{new}: {e}");
    }
    assert!(matches!(
        accounts.change_password(&t, None, &otp, now),
        Err(PasswordError::Unchanged)
    ));
    accounts
        .change_password(&t, None, "first chosen passphrase", now)
        .unwrap();
    // Now the current password is needed.
    for current in [None, Some("wrong")] {
        assert!(matches!(
            accounts.change_password(&t, current, "second chosen passphrase", now),
            Err(PasswordError::WrongCurrent)
        ));
    }
    accounts
        .change_password(
            &t,
            Some("first chosen passphrase"),
            "second chosen passphrase",
            now,
        )
        .unwrap();
    assert!(matches!(
        accounts.change_password("no-such-token", None, "third chosen passphrase", now),
        Err(PasswordError::Session(SessionError::Unknown))
    ));
}

#[test]
fn sessions_expire_after_session_hours_and_end_at_sign_out() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    let mut config = super::config();
    config.web.session_hours = 2;
    let accounts = Accounts::new(&store, Policy::from_config(&config));
    let now: DateTime<Utc> = super::at("2026-03-02T09:00:00Z");
    let otp = accounts.add("dee", now).unwrap().password;
    let s = accounts.sign_in("dee", &otp, ip(HOME), now).unwrap();
    assert_eq!(s.session.expires_at, now + Duration::hours(2));
    assert!(
        accounts
            .session(&s.token, now + Duration::minutes(119))
            .is_ok()
    );
    let e = accounts
        .session(&s.token, now + Duration::hours(2))
        .unwrap_err();
    assert!(matches!(e, SessionError::Expired), "{e}");
    assert_eq!(e.to_string(), "Your session has expired. Sign in again.");
    let s = accounts.sign_in("dee", &otp, ip(HOME), now).unwrap();
    accounts.sign_out(&s.token).unwrap();
    accounts.sign_out(&s.token).unwrap();
    assert!(matches!(
        accounts.session(&s.token, now),
        Err(SessionError::Unknown)
    ));
    // A forged token is nobody's.
    assert!(matches!(
        accounts.session(&"0".repeat(64), now),
        Err(SessionError::Unknown)
    ));
    // The token itself is not in the file, only its hash.
    drop(store);
    assert!(!in_file(&db, &s.token));
}

#[test]
fn wrong_passwords_are_throttled_per_account_and_per_address_and_every_attempt_audited() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    let accounts = Accounts::new(&store, Policy::default());
    let now: DateTime<Utc> = super::at("2026-03-02T09:00:00Z");
    let eve = accounts.add("eve", now).unwrap().password;
    let fay = accounts.add("fay", now).unwrap().password;

    // Per account: after the limit, even the right password is refused, from anywhere.
    for i in 0..ACCOUNT_FAILURES {
        let at = now + Duration::seconds(i as i64);
        let e = accounts.sign_in("eve", "guess", ip(HOME), at).unwrap_err();
        assert!(matches!(e, SignInError::Refused), "{i}: {e}");
    }
    let later = now + Duration::minutes(1);
    let e = accounts
        .sign_in("eve", &eve, ip(ELSEWHERE), later)
        .unwrap_err();
    let SignInError::Throttled { retry_after } = e else {
        panic!("expected a refusal, got {e}");
    };
    assert!(
        retry_after > Duration::minutes(13) && retry_after <= Duration::minutes(14),
        "{retry_after}"
    );
    assert_eq!(
        e.to_string(),
        "Too many failed sign-ins. Try again in 14 minute(s)."
    );
    // Another account from the same address is not held up by eve's failures.
    accounts.sign_in("fay", &fay, ip(HOME), later).unwrap();
    // Once the window has passed, eve signs in.
    accounts
        .sign_in("eve", &eve, ip(HOME), now + Duration::minutes(16))
        .unwrap();

    // Per address: failures spread over many names, the last ones not even accounts.
    let start = now + Duration::hours(1);
    for i in 0..ADDRESS_FAILURES {
        let name = format!("user{i}");
        let e = accounts
            .sign_in(&name, "guess", ip(ELSEWHERE), start)
            .unwrap_err();
        assert!(matches!(e, SignInError::Refused), "{i}: {e}");
    }
    assert!(matches!(
        accounts.sign_in("fay", &fay, ip(ELSEWHERE), start),
        Err(SignInError::Throttled { .. })
    ));
    accounts.sign_in("fay", &fay, ip(HOME), start).unwrap();

    // Every attempt is in the audit, newest first, with who, where, when and the outcome.
    let audit = accounts.sign_ins(1000).unwrap();
    let n = |o: Outcome| audit.iter().filter(|s| s.outcome == o).count();
    assert_eq!(n(Outcome::WrongPassword), ACCOUNT_FAILURES);
    assert_eq!(n(Outcome::UnknownAccount), ADDRESS_FAILURES);
    assert_eq!(n(Outcome::Throttled), 2);
    assert_eq!(n(Outcome::SignedIn), 3);
    assert_eq!(audit[0].name.as_deref(), Some("fay"));
    assert_eq!(audit[0].address, ip(HOME));
    assert_eq!(audit[0].at, start);
    assert!(
        audit
            .iter()
            .any(|s| s.outcome == Outcome::Throttled && s.address == ip(ELSEWHERE))
    );
    drop(store);
    for secret in [eve.as_str(), fay.as_str()] {
        assert!(!in_file(&db, secret));
    }
}

#[test]
fn a_name_that_is_no_account_gets_the_same_answer_in_similar_time() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    let accounts = Accounts::new(&store, Policy::default());
    let now = Utc::now();
    accounts.add("gus", now).unwrap();
    let timed = |name: &str| {
        (0..3)
            .map(|_| {
                let started = std::time::Instant::now();
                let e = accounts
                    .sign_in(name, "not the password", ip(HOME), now)
                    .unwrap_err();
                (started.elapsed(), e.to_string())
            })
            .min()
            .unwrap()
    };
    let (real, real_says) = timed("gus");
    let (none, none_says) = timed("nobody-here");
    assert_eq!(real_says, none_says);
    assert_eq!(real_says, "The username or password is not right.");
    // Both check a password hash: the unknown name is not answered at once.
    assert!(
        none * 3 > real && real * 3 > none,
        "an account took {real:?}, no account {none:?}"
    );
    // A password typed into the name box is not kept in the audit.
    let e = accounts
        .sign_in("Secret Pass 123!", "x", ip(HOME), now)
        .unwrap_err();
    assert!(matches!(e, SignInError::Refused));
    let audit = accounts.sign_ins(1).unwrap();
    assert_eq!(audit[0].name, None);
    assert_eq!(audit[0].outcome, Outcome::UnknownAccount);
}
