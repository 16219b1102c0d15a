//! What the support team's analytics count after real conversations through the service, the
//! report and its CSV, and the declined questions: kept only when `keep_declined` is on, with
//! secrets cut out, gone after 30 days, marked, and exported as a file `esrbot eval` reads. And
//! that no message text reaches the database file while it is off.

use chrono::{DateTime, Duration, NaiveDate};
use esrbot::core::escalation::Action;
use esrbot::service::analytics::{KEEP_DAYS, MarkError, Verdict};
use esrbot::service::{Routing, Service};
use esrbot::store::Store;

use super::support::process::admin;
use super::{at, engine, temp_db};

/// The day the conversations happen (a Monday in GMT: UTC and local days agree).
const DAY: &str = "2026-03-02";

fn morning() -> DateTime<chrono::Utc> {
    at("2026-03-02T09:00:00Z")
}

fn bot(db: &std::path::Path, keep_declined: bool) -> Service {
    let mut svc = Service::new(engine(), Store::open(db).unwrap(), Routing::default());
    svc.analytics.keep_declined = keep_declined;
    svc
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn in_file(db: &std::path::Path, needle: &str) -> bool {
    let bytes = std::fs::read(db).unwrap();
    let needle = needle.to_lowercase();
    let lower: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
    lower.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn conversations_are_counted_by_day_intent_and_outcome_and_the_csv_says_so() {
    let (_dir, db) = temp_db();
    let svc = bot(&db, false);
    let t = morning();
    // Ann: locked out (answered), asks again (the same conversation), thanks.
    svc.handle("discord:ann", None, "locked out of esr", t)
        .unwrap();
    svc.handle("discord:ann", None, "how long till i can get back in", t)
        .unwrap();
    svc.handle("discord:ann", None, "thanks", t).unwrap();
    // Bob: wants a person (escalated).
    let r = svc
        .handle("discord:bob", None, "can I talk to a real person please", t)
        .unwrap();
    assert!(r.text.contains("ESC-00001"), "{}", r.text);
    // Cy: something else altogether (declined).
    svc.handle("discord:cy", None, "my gmail is locked", t)
        .unwrap();
    // The support team resolves Bob's case 90 minutes later.
    svc.escalation_action(
        "ESC-00001",
        Action::Resolve,
        "ann.support",
        None,
        t + Duration::minutes(90),
    )
    .unwrap()
    .unwrap();
    // Ann's lock ends twelve hours later, at 21:00: a notice is sent then.
    let later = t + Duration::hours(13);
    let reminders = svc.deliver_due_in("discord", later, 100).unwrap();
    assert_eq!(reminders.len(), 1, "{reminders:?}");

    let report = svc
        .analytics_report(day(DAY), day("2026-03-03"), later)
        .unwrap();
    let first = &report.days[0];
    assert_eq!(first.conversations, 3, "{first:?}");
    assert_eq!(first.messages(), 5, "{first:?}");
    assert_eq!(first.outcomes["answered"], 3, "{first:?}");
    assert_eq!(first.outcomes["escalated"], 1, "{first:?}");
    assert_eq!(first.outcomes["declined"], 1, "{first:?}");
    assert_eq!(first.intents["account_locked"]["answered"], 1, "{first:?}");
    assert_eq!(first.intents["talk_to_human"]["escalated"], 1, "{first:?}");
    assert_eq!(first.intents["out_of_scope"]["declined"], 1, "{first:?}");
    assert_eq!(first.escalations["talk_to_human"], 1);
    assert_eq!(first.reminders_sent, 1);
    assert_eq!(
        report.days[1],
        esrbot::service::analytics::Day {
            date: day("2026-03-03"),
            outcomes: report.days[1].outcomes.clone(),
            ..Default::default()
        },
        "a quiet day is all zeros"
    );
    assert!(report.days[1].outcomes.values().all(|n| *n == 0));
    assert_eq!(report.reminders_sent(), 1);
    // Three conversations, one handed to a person.
    let rate = report.containment().unwrap();
    assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{rate}");
    assert_eq!(report.escalations_by_status["resolved"], 1);
    assert_eq!(report.resolved, 1);
    assert_eq!(report.median_time_to_resolve, Some(Duration::minutes(90)));

    let csv = report.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "date,measure,label,value");
    for row in [
        "2026-03-02,conversations,,3",
        "2026-03-02,containment_rate,,0.6667",
        "2026-03-02,messages,account_locked/answered,1",
        "2026-03-02,escalations_recorded,talk_to_human,1",
        "2026-03-02,reminders_sent,,1",
        "2026-03-03,containment_rate,,",
        "2026-03-02..2026-03-03,escalations_by_status,resolved,1",
        "2026-03-02..2026-03-03,median_minutes_to_resolve,,90.0",
    ] {
        assert!(lines.contains(&row), "{row} missing from\n{csv}");
    }
    assert!(lines.iter().all(|l| l.split(',').count() == 4), "{csv}");

    // Counts survive a restart, the fast path's too (they were flushed for the report).
    drop(svc);
    let svc = bot(&db, false);
    let again = svc
        .analytics_report(day(DAY), day("2026-03-03"), later)
        .unwrap();
    assert_eq!(again, report);
    // A range with nothing in it is all zeros, and a backwards range is refused.
    let quiet = svc
        .analytics_report(day("2026-01-01"), day("2026-01-31"), later)
        .unwrap();
    assert_eq!(quiet.days.len(), 31);
    assert_eq!(quiet.conversations(), 0);
    assert_eq!(quiet.containment(), None);
    assert!(
        svc.analytics_report(day("2026-02-01"), day("2026-01-01"), later)
            .is_err()
    );
}

#[test]
fn no_message_text_reaches_the_database_file_while_keep_declined_is_off() {
    let (_dir, db) = temp_db();
    let svc = bot(&db, false);
    let t = morning();
    let talks = [
        ("discord:1", "locked out of esr zorblaxian"),
        ("discord:1", "how long till i can get back in quixotrance"),
        ("discord:2", "my reset link expired flumbergast"),
        ("discord:2", "i requested a reset at 9am wibblecorn"),
        ("discord:3", "can i speak to someone snorkelbrat"),
        ("discord:3", "it says invalid plinkerdoo"),
        ("discord:4", "what is a payslip grumbleweed"),
        ("discord:4", "my gmail is broken zappitude"),
        (
            "discord:5",
            "my nhs.net email address has changed yodelfrond",
        ),
    ];
    for (who, text) in talks {
        svc.handle(who, None, text, t).unwrap();
    }
    svc.flush_analytics(t).unwrap();
    assert!(svc.declined(t).unwrap().is_empty());
    drop(svc);
    for (_, text) in talks {
        let word = text.rsplit(' ').next().unwrap();
        assert!(!in_file(&db, word), "{word:?} is in the database file");
    }
    // The check can see text: the intent ids counted are there.
    assert!(in_file(&db, "account_locked"));
}

#[test]
fn declined_questions_are_kept_when_on_without_secrets_marked_expired_and_exported() {
    let (dir, db) = temp_db();
    let svc = bot(&db, true);
    // Now: the export command keeps to the last 30 days by the system clock.
    let t = chrono::Utc::now();
    svc.handle(
        "discord:1",
        None,
        "my gmail password is Hunter2Secret! and my date of birth is 12/03/1985",
        t,
    )
    .unwrap();
    svc.handle(
        "discord:2",
        None,
        "what is a payslip",
        t + Duration::minutes(1),
    )
    .unwrap();
    // Answered well: not kept.
    svc.handle("discord:3", None, "locked out of esr", t)
        .unwrap();
    let kept = svc.declined(t).unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let (first_id, first) = &kept[0];
    assert!(first.text.contains("gmail"), "{first:?}");
    assert!(!first.text.contains("Hunter2Secret"), "{first:?}");
    assert!(!first.text.contains("1985"), "{first:?}");
    assert_eq!(first.why, "declined");
    assert_eq!(first.answered_as, "out_of_scope");
    let (second_id, second) = &kept[1];
    assert!(second.text.contains("payslip"), "{second:?}");

    // Marking: a known intent or "rightly declined", by whoever is signed in.
    svc.mark_declined(first_id, Verdict::RightlyDeclined, "ann", t)
        .unwrap();
    assert!(matches!(
        svc.mark_declined(second_id, Verdict::ShouldHaveBeen("nope".into()), "ann", t),
        Err(MarkError::UnknownIntent(_))
    ));
    assert!(matches!(
        svc.mark_declined("00", Verdict::RightlyDeclined, "ann", t),
        Err(MarkError::NotFound(_))
    ));
    svc.mark_declined(
        second_id,
        Verdict::ShouldHaveBeen("first_login".into()),
        "bob",
        t,
    )
    .unwrap();
    let kept = svc.declined(t).unwrap();
    let mark = kept[1].1.mark.as_ref().unwrap();
    assert_eq!(mark.by, "bob");
    assert_eq!(mark.verdict, Verdict::ShouldHaveBeen("first_login".into()));
    drop(svc);
    assert!(!in_file(&db, "Hunter2Secret"));

    // The export holds the "should have been" one only, and `esrbot eval` reads it.
    let tsv = dir.path().join("marked.tsv");
    let (code, out) = admin(
        &db,
        &["analytics", "export", "--output", tsv.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("wrote 1 marked question(s)"), "{out}");
    let text = std::fs::read_to_string(&tsv).unwrap();
    assert_eq!(text, "text\tintent\nwhat is a payslip\tfirst_login\n");
    let (code, out) = admin(&db, &["eval", tsv.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("n=1"), "{out}");

    // After 30 days they are gone: not listed, and removed from the table by the next flush.
    let svc = bot(&db, true);
    let expired = t + Duration::days(KEEP_DAYS) + Duration::minutes(2);
    assert!(svc.declined(expired).unwrap().is_empty());
    svc.flush_analytics(expired).unwrap();
    assert!(
        svc.declined(t).unwrap().is_empty(),
        "removed, not only hidden"
    );
    // redb does not scrub freed pages, so the bytes may linger in the file until reused; a
    // backup copies only what is live.
    let copy = dir.path().join("copy.redb");
    svc.store.backup_to(&copy).unwrap();
    assert!(
        in_file(&copy, "account_locked"),
        "the copy holds the counters"
    );
    assert!(!in_file(&copy, "payslip"));
}

#[test]
fn keeping_declined_questions_is_off_in_the_shipped_settings() {
    assert!(!super::config().analytics.keep_declined);
    let (_dir, db) = temp_db();
    let engine = engine();
    let svc = Service::open(
        engine,
        &esrbot::config::Config {
            storage: esrbot::config::StorageSettings { path: db.clone() },
            ..super::config()
        },
    )
    .unwrap();
    svc.handle("discord:1", None, "what is a payslip", morning())
        .unwrap();
    assert!(svc.declined(morning()).unwrap().is_empty());
}
