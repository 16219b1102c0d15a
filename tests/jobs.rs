//! The job table and the outbox at work: each terminal delivers only its own person's notices,
//! a crash between claiming and printing loses nothing, repeated messages do not pile jobs up,
//! and one damaged record stops nothing else.

use chrono::Duration;
use esrbot::core::records::{JobKind, Recipient};
use esrbot::service::jobs;
use redb::{Database, TableDefinition};

use super::at;
use super::support::fixtures::Scene;
use super::support::process::{ChatProcess, admin, chat_command, wait_for};

fn env(db: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("ESRBOT_STORAGE_PATH".into(), db.to_str().unwrap().into()),
        ("ESRBOT_OUTBOX_POLL_SECONDS".into(), "1".into()),
        ("ESRBOT_OUTBOX_LEASE_SECONDS".into(), "1".into()),
    ]
}

#[test]
fn each_terminal_prints_only_its_own_persons_notices() {
    let (_dir, db) = super::temp_db();
    let mut ann = ChatProcess::start_as("ann", &env(&db));
    let mut bob = ChatProcess::start_as("bob", &env(&db));
    ann.say("can I talk to a real person please");
    wait_for("ann's escalation", 20, || {
        ann.output().contains("ESC-00001")
    });
    bob.say("i need to speak to someone in the support team");
    wait_for("bob's escalation", 20, || {
        bob.output().contains("ESC-00002")
    });

    let (code, out) = admin(
        &db,
        &[
            "escalations",
            "resolve",
            "ESC-00002",
            "--by",
            "Sam",
            "--note",
            "bob called back",
        ],
    );
    assert_eq!(code, 0, "{out}");
    wait_for("bob's resolution notice", 20, || {
        bob.output().contains("resolved your request ESC-00002")
    });
    // Ann's terminal has had every chance to pick it up: it polls every second too.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(
        !ann.output().contains("ESC-00002") && !ann.output().contains("bob called back"),
        "ann saw bob's notice:\n{}",
        ann.output()
    );
    let (code, out) = admin(&db, &["escalations", "resolve", "esc-00001", "--by", "Sam"]);
    assert_eq!(code, 0, "{out}");
    wait_for("ann's resolution notice", 20, || {
        ann.output().contains("resolved your request ESC-00001")
    });
    assert!(!bob.output().contains("resolved your request ESC-00001"));
}

#[test]
fn terminals_started_together_on_a_new_database_all_open_it() {
    // Each starts on a path that does not exist yet: none may find the file another has just
    // made still empty (which reads as a truncated database) and give up.
    for round in 0..4 {
        let (dir, db) = super::temp_db();
        let children: Vec<std::process::Child> = (0..6)
            .map(|i| {
                let mut child = chat_command(&format!("nurse{i}"), &env(&db))
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                let _ = child.stdin.take().unwrap().write_all(b"hello\n");
                child
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success() && !out.stdout.is_empty(),
                "round {round}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .filter(|n| n != "esrbot.redb")
            .collect();
        assert!(left.is_empty(), "files left beside the database: {left:?}");
    }
}

#[test]
fn a_crash_between_claiming_a_notice_and_printing_it_loses_nothing() {
    let (_dir, db) = super::temp_db();
    let mut kim = ChatProcess::start(&env(&db));
    kim.say("can I talk to a real person please");
    wait_for("the escalation", 20, || kim.output().contains("ESC-00001"));
    kim.kill_9();
    // A terminal that dies right after taking the notice from the outbox, before printing it.
    let mut faulty = env(&db);
    faulty.push(("ESRBOT_FAULT".into(), "abort_before_handover".into()));
    let (code, out) = admin(&db, &["escalations", "resolve", "ESC-00001", "--by", "Sam"]);
    assert_eq!(code, 0, "{out}");
    let crashing = ChatProcess::start(&faulty);
    crashing.wait_exit(20);
    // The next session prints it once its lease has run out.
    let kim = ChatProcess::start(&env(&db));
    wait_for("the resolution notice after the crash", 20, || {
        kim.output().contains("resolved your request ESC-00001")
    });
}

#[test]
fn repeated_reset_requests_keep_one_job_per_timer() {
    let scene = Scene::new();
    let t = at("2026-03-02T09:00:00Z");
    for i in 0..600 {
        let r = scene.say(
            "discord:77",
            "I've just requested a password reset",
            t + Duration::seconds(i),
        );
        assert_eq!(r.intent.as_deref(), Some("reset_requested"), "{}", r.text);
    }
    let jobs = scene.svc.store.jobs("discord").unwrap();
    let kinds: Vec<JobKind> = jobs.iter().map(|j| j.kind).collect();
    assert_eq!(kinds, vec![JobKind::LinkWarning], "{jobs:?}");
    assert_eq!(scene.state("discord:77").jobs.len(), 1);
    // Repeated wrong-attempt reports share one purge job too.
    for n in [
        "1 wrong attempt",
        "2 wrong attempts",
        "i got it wrong twice",
    ] {
        scene.say("discord:78", n, t);
    }
    let purges = scene
        .svc
        .store
        .jobs("discord")
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == JobKind::Purge)
        .count();
    assert_eq!(purges, 1);
}

#[test]
fn a_record_that_cannot_be_decoded_is_set_aside_and_stops_nothing_else() {
    let t = at("2026-03-02T09:00:00Z");
    let scene = Scene::new();
    scene.say("discord:1", "I'm locked out of ESR", t);
    scene.say("discord:2", "I'm locked out of ESR", t);
    let scene = scene.with_closed(|path| {
        let db = Database::open(path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut users: redb::Table<&[u8], &[u8]> =
                w.open_table(TableDefinition::new("users")).unwrap();
            let key = esrbot::store::keys::recipient(&Recipient::from("discord:1"));
            users
                .insert(key.as_slice(), &b"\x01\xff\xff\xff garbage"[..])
                .unwrap();
            let mut outbox: redb::Table<&[u8], &[u8]> =
                w.open_table(TableDefinition::new("outbox")).unwrap();
            let key = esrbot::store::keys::outbox("discord", t.timestamp_millis(), 999);
            outbox.insert(key.as_slice(), &b"not a record"[..]).unwrap();
        }
        w.commit().unwrap();
    });
    // Both locks end at 21:00: the damaged person starts afresh, the other is told.
    let said = jobs::run_due(
        &scene.svc,
        &["discord".into()],
        at("2026-03-02T21:00:00Z"),
        100,
    )
    .unwrap();
    let to: Vec<&str> = said.iter().map(|r| r.to.as_str()).collect();
    assert_eq!(to, vec!["discord:2"], "{said:?}");
    // The undeliverable outbox entry is set aside; the good one is still there to deliver.
    let queued = scene.svc.store.outbox("discord").unwrap();
    assert_eq!(queued.len(), 1, "the lock-over notice: {queued:?}");
    assert_eq!(queued[0].to, Recipient::from("discord:2"));
    let aside: Vec<String> = scene
        .svc
        .store
        .quarantined()
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(aside.len(), 2, "{aside:?}");
    assert!(
        aside.iter().any(|k| k.starts_with("users/"))
            && aside.iter().any(|k| k.starts_with("outbox/"))
    );
    // The person whose record was damaged can carry on.
    let r = scene.say("discord:1", "hello", at("2026-03-02T21:05:00Z"));
    assert!(r.text.contains("ESR"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dispatcher_sleeps_until_the_next_job_and_runs_it_when_the_clock_gets_there() {
    use std::sync::Arc;

    use esrbot::clock::ManualClock;
    use esrbot::service::Service;
    use esrbot::store::Store;

    use super::support::process::wait_until;

    let (_dir, db) = super::temp_db();
    let svc = Arc::new(Service::new(
        super::engine(),
        Store::open(&db).unwrap(),
        esrbot::transports::routing(&super::config()),
    ));
    let clock = Arc::new(ManualClock::new(at("2026-03-02T09:00:00Z")));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    // A poll of an hour: only the clock and the service's own wake-ups move it.
    let dispatcher = tokio::spawn(jobs::run(
        svc.clone(),
        clock.clone(),
        vec!["discord".into()],
        std::time::Duration::from_secs(3600),
        async {
            let _ = rx.await;
        },
    ));
    svc.handle(
        "discord:9",
        None,
        "I'm locked out of ESR",
        at("2026-03-02T09:00:00Z"),
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        svc.store.outbox("discord").unwrap().is_empty(),
        "nothing is due yet"
    );
    clock.set(at("2026-03-02T21:00:00Z"));
    svc.nudge();
    wait_until("the lock-over reminder", 5, || {
        svc.store.outbox("discord").unwrap().len() == 1
    })
    .await;
    let entry = &svc.store.outbox("discord").unwrap()[0];
    let text = svc.message_of(entry).unwrap().text;
    assert!(
        text.contains("lock is over") && text.contains("21:00"),
        "{text}"
    );
    let _ = stop.send(());
    dispatcher.await.unwrap().unwrap();
}
