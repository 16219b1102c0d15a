//! The support team's queue from the command line, against the same database while the bot runs.

use esrbot::core::records::EscalationStatus;
use esrbot::store::Store;

use super::support::process::{ChatProcess, admin, wait_for};
use super::temp_db;

#[test]
fn the_queue_is_worked_from_the_command_line_while_the_bot_runs() {
    let (_dir, db) = temp_db();
    let env = vec![
        (
            "ESRBOT_STORAGE_PATH".to_string(),
            db.to_str().unwrap().to_string(),
        ),
        ("ESRBOT_MAIL_POLL_SECONDS".to_string(), "1".to_string()),
    ];
    let mut bot = ChatProcess::start(&env);
    bot.say("can I talk to a real person please");
    wait_for("the escalation", 20, || {
        Store::open(&db)
            .ok()
            .and_then(|s| s.escalation("ESC-00001").ok().flatten())
            .is_some()
    });

    let (code, out) = admin(&db, &["escalations", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ESC-00001") && out.contains("talk_to_human") && out.contains("open"),
        "{out}"
    );
    let (_, out) = admin(&db, &["escalations", "list", "--status", "resolved"]);
    assert!(out.contains("no escalations with status resolved"), "{out}");
    let (code, out) = admin(&db, &["escalations", "ack", "ESC-00001", "--by", "Sam"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ESC-00001 is now acknowledged"), "{out}");
    let (code, out) = admin(&db, &["escalations", "retry", "ESC-00001"]);
    assert_eq!(code, 1);
    assert!(out.contains("no e-mail to retry"), "{out}");
    let (code, out) = admin(
        &db,
        &[
            "escalations",
            "resolve",
            "ESC-00001",
            "--by",
            "Sam",
            "--note",
            "rang them back",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = admin(&db, &["escalations", "resolve", "ESC-00001", "--by", "Sam"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("ESC-00001 is resolved: it cannot be resolved"),
        "{out}"
    );
    let (code, out) = admin(&db, &["escalations", "show", "ESC-00001"]);
    assert_eq!(code, 0);
    for want in [
        "status:      resolved",
        "open ",
        "acknowledged  by Sam",
        "resolved      by Sam: rang them back",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    // The running bot tells the staff member (it polls the database for work from other processes).
    wait_for("the resolution notice in the chat", 20, || {
        bot.output().contains("has resolved your request ESC-00001")
    });
    bot.say("I want to speak to someone");
    wait_for("a new escalation", 20, || {
        bot.output().contains("ESC-00002")
    });
    bot.kill_9();
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.escalation("ESC-00001").unwrap().unwrap().status,
        EscalationStatus::Resolved
    );
    let (code, out) = admin(&db, &["escalations", "show", "ESC-99999"]);
    assert_eq!(code, 1);
    assert!(out.contains("there is no escalation ESC-99999"), "{out}");
}

#[test]
fn a_hand_over_records_what_it_is_about_and_how_to_contact_them() {
    let (_dir, db) = temp_db();
    let bot = super::bot_at(&db);
    let t = super::at("2026-03-02T10:00:00Z");
    let r = bot
        .handle(
            "chat:kim",
            Some("Kim"),
            "can I talk to a real person please",
            t,
        )
        .unwrap();
    assert!(r.text.contains("ESC-00001"), "{}", r.text);
    // Recorded on the turn they asked, before they say anything more.
    assert!(bot.store.escalation("ESC-00001").unwrap().is_some());
    bot.handle("chat:kim", Some("Kim"), "3", t).unwrap();
    let r = bot
        .handle(
            "chat:kim",
            Some("Kim"),
            "you can ring me on 07700 900123",
            t,
        )
        .unwrap();
    assert!(r.text.contains("added that to ESC-00001"), "{}", r.text);
    let e = bot.store.escalation("ESC-00001").unwrap().unwrap();
    assert_eq!(e.problem.as_deref(), Some("account_locked"));
    assert_eq!(
        e.contact,
        Some(esrbot::core::records::Contact::Phone("07700900123".into()))
    );
    let (code, out) = admin(&db, &["escalations", "show", "ESC-00001"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("about:       account_locked") && out.contains("phone 07700900123"),
        "{out}"
    );
}

#[test]
fn a_hostile_name_or_note_cannot_act_on_the_administrators_terminal() {
    let (_dir, db) = temp_db();
    let bot = super::bot_at(&db);
    let t = super::at("2026-03-02T10:00:00Z");
    let name = "Kim\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202E}nimda\nstatus:      resolved";
    bot.handle(
        "chat:kim",
        Some(name),
        "can I talk to a real person please",
        t,
    )
    .unwrap();
    bot.escalation_action(
        "ESC-00001",
        esrbot::core::escalation::Action::Acknowledge,
        "Sam\u{2066}",
        Some("rang\r\u{1b}[1Acalled \u{200F}back"),
        t,
    )
    .unwrap()
    .unwrap();
    drop(bot);
    for args in [
        &["escalations", "show", "ESC-00001"][..],
        &["escalations", "list"][..],
    ] {
        let (code, out) = admin(&db, args);
        assert_eq!(code, 0, "{out}");
        for raw in ['\u{1b}', '\u{7}', '\r', '\u{202E}', '\u{2066}', '\u{200F}'] {
            assert!(!out.contains(raw), "{raw:?} reached the terminal:\n{out:?}");
        }
        assert!(
            out.contains(r"Kim\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202e}nimda\u{a}status:      resolved"),
            "{out}"
        );
        // The forged line break stays on the name's own line.
        assert!(
            !out.lines().any(|l| l.starts_with("status:      resolved")),
            "{out}"
        );
    }
    let (_, out) = admin(&db, &["escalations", "show", "ESC-00001"]);
    assert!(
        out.contains(r"by Sam\u{2066}: rang\u{d}\u{1b}[1Acalled \u{200f}back"),
        "{out}"
    );
}
