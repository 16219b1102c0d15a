//! Escalation e-mail against a real SMTP server on 127.0.0.1 (tests/support/smtp_server.rs):
//! headers and body, STARTTLS and AUTH, a relay that is down and comes back, giving up and
//! retrying, header injection, and `kill -9` at the two dangerous moments.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use esrbot::clock::SystemClock;
use esrbot::config::Config;
use esrbot::core::escalation::Action;
use esrbot::core::records::{EscalationStatus, Recipient};
use esrbot::service::SUPPORT_LANE;
use esrbot::service::Service;
use esrbot::service::outbox;
use esrbot::service::queue::{MailState, mail_status};
use esrbot::store::Store;
use esrbot::transports::mail::{MailDelivery, Mailer, Settings, escalation_message, runner};
use tokio::sync::oneshot;

use super::support::process::{ChatProcess, free_port, wait_until};
use super::support::smtp_server::{TestSmtp, TestSmtpOptions};
use super::{engine, root, temp_db};

/// The project's config pointed at a relay on 127.0.0.1:`port`, with fast retries.
pub fn mail_env(db: &Path, port: u16) -> Vec<(String, String)> {
    [
        ("ESRBOT_STORAGE_PATH", db.to_str().unwrap()),
        ("ESRBOT_MAIL_HOST", "127.0.0.1"),
        ("ESRBOT_MAIL_PORT", &port.to_string()),
        ("ESRBOT_MAIL_TLS", "none"),
        ("ESRBOT_MAIL_FROM", "esrbot@test.nhs.net"),
        ("ESRBOT_MAIL_TIMEOUT_SECONDS", "5"),
        ("ESRBOT_MAIL_RETRY_BASE_SECONDS", "1"),
        ("ESRBOT_MAIL_RETRY_MAX_SECONDS", "2"),
        ("ESRBOT_MAIL_POLL_SECONDS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn config_with(env: Vec<(String, String)>) -> Config {
    Config::load(&root().join("config.toml"), true, env).unwrap()
}

/// The e-mail-change dialogue; returns the reference the bot gave.
fn email_change(bot: &Service, user: &str, name: &str, address: &str) -> String {
    let now = Utc::now();
    bot.handle(
        user,
        Some(name),
        "my nhs.net email address has changed",
        now,
    )
    .unwrap();
    bot.handle(user, Some(name), "yes", now).unwrap();
    let r = bot.handle(user, Some(name), address, now).unwrap();
    let at = r
        .text
        .find("ESC-")
        .unwrap_or_else(|| panic!("no reference in {:?}", r.text));
    r.text[at..at + 9].to_string()
}

/// Runs the sender in this process until the returned handle is dropped or stopped.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

fn start_sender(bot: Arc<Service>, config: &Config, password: Option<String>) -> Running {
    let settings = Settings::from_config(config, password).unwrap();
    let mailer = Mailer::new(&settings).unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(outbox::run(
        bot,
        Arc::new(SystemClock),
        runner(config),
        MailDelivery { mailer },
        async {
            let _ = rx.await;
        },
    ));
    Running {
        stop: Some(tx),
        task,
    }
}

/// What waits in `lane`'s outbox: (recipient, text).
fn queued(bot: &Service, lane: &str) -> Vec<(String, String)> {
    bot.store
        .outbox(lane)
        .unwrap()
        .iter()
        .map(|o| (o.to.to_string(), o.text().unwrap_or_default().to_string()))
        .collect()
}

fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    data.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_email_arrives_with_headers_and_body_and_the_staff_member_is_told() {
    let smtp = TestSmtp::start(TestSmtpOptions::default()).await;
    let (_dir, db) = temp_db();
    let config = config_with(mail_env(&db, smtp.port()));
    let bot = Arc::new(Service::open(engine(), &config).unwrap());
    let reference = email_change(&bot, "chat:kim", "Kim Patel", "kim.patel3@nhs.net");
    assert_eq!(reference, "ESC-00001");
    let sender = start_sender(bot.clone(), &config, None);
    wait_until("the e-mail", 10, || smtp.messages().len() == 1).await;
    sender.stop().await;

    let m = &smtp.messages()[0];
    assert_eq!(
        m.rcpt_to,
        vec!["stees.mandatorytraining@nhs.net".to_string()]
    );
    assert_eq!(m.mail_from, "esrbot@test.nhs.net");
    let data = m.data_str();
    assert_eq!(
        header(&data, "Message-ID"),
        Some("<ESC-00001@esrbot>"),
        "{data}"
    );
    assert_eq!(header(&data, "To"), Some("stees.mandatorytraining@nhs.net"));
    assert!(header(&data, "Subject").unwrap().contains("ESC-00001"));
    let parsed = mail_parser::MessageParser::default()
        .parse(&m.data)
        .unwrap();
    let body = parsed.body_text(0).unwrap();
    for want in [
        "ESC-00001",
        "email_changed",
        "Kim Patel",
        "chat:kim",
        "kim.patel3@nhs.net",
        "sent automatically by esrbot",
    ] {
        assert!(body.contains(want), "{want} missing from:\n{body}");
    }
    // The acceptance is recorded, the escalation is `sent`, and the staff member gets a notice.
    let e = bot.store.escalation("ESC-00001").unwrap().unwrap();
    assert_eq!(e.status, EscalationStatus::Sent);
    assert!(matches!(
        mail_status(&bot.store, "ESC-00001").unwrap().unwrap().state,
        MailState::Accepted { .. }
    ));
    let notes = queued(&bot, &bot.lane(&Recipient::from("chat:kim")));
    assert!(
        notes.iter().any(|(to, text)| to == "chat:kim"
            && text.contains("passed on")
            && text.contains("ESC-00001")),
        "{notes:?}"
    );
}

/// What the person volunteered (the old address, an assignment number) reaches the training
/// team, as values on their own lines; the words they came in do not.
#[tokio::test(flavor = "multi_thread")]
async fn the_email_carries_what_the_staff_member_volunteered_and_never_their_words() {
    let smtp = TestSmtp::start(TestSmtpOptions::default()).await;
    let (_dir, db) = temp_db();
    let config = config_with(mail_env(&db, smtp.port()));
    let bot = Arc::new(Service::open(engine(), &config).unwrap());
    let now = Utc::now();
    let said = [
        "my email changed from sam.old@nhs.net to sam.new@nhs.net",
        "yes",
        "oh and my assignment number is 12345678-2",
    ];
    for text in said {
        bot.handle("chat:sam", Some("Sam Lee"), text, now).unwrap();
    }
    let sender = start_sender(bot.clone(), &config, None);
    wait_until("the e-mail", 10, || smtp.messages().len() == 1).await;
    sender.stop().await;
    let sent = smtp.messages();
    let parsed = mail_parser::MessageParser::default()
        .parse(&sent[0].data)
        .unwrap();
    let body = parsed.body_text(0).unwrap();
    let lines: Vec<&str> = body.lines().map(str::trim_end).collect();
    for want in [
        "New address:      sam.new@nhs.net",
        "Old address:      sam.old@nhs.net",
        "Assignment number: 12345678-2",
        "Staff member:     Sam Lee",
    ] {
        assert!(lines.contains(&want), "{want:?} missing from:\n{body}");
    }
    for words in said.iter().filter(|w| w.len() > 3) {
        assert!(!body.contains(words), "{words:?} is in:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_yes_records_the_change_at_once_and_the_email_waits_for_the_address() {
    let smtp = TestSmtp::start(TestSmtpOptions::default()).await;
    let (_dir, db) = temp_db();
    let config = config_with(mail_env(&db, smtp.port()));
    let bot = Arc::new(Service::open(engine(), &config).unwrap());
    let now = Utc::now();
    bot.handle(
        "chat:ali",
        Some("Ali Khan"),
        "my nhs.net email has changed",
        now,
    )
    .unwrap();
    let yes = bot
        .handle("chat:ali", Some("Ali Khan"), "yes", now)
        .unwrap();
    assert!(yes.text.contains("ESC-00001"), "{}", yes.text);
    // Recorded on the "yes": the support team can see it if they walk away now...
    let e = bot.store.escalation("ESC-00001").unwrap().unwrap();
    assert_eq!(e.new_address, None);
    // ...but nothing goes to the training mailbox without the address.
    assert!(mail_status(&bot.store, "ESC-00001").unwrap().is_none());
    let given = bot
        .handle("chat:ali", Some("Ali Khan"), "ali.khan7@nhs.net", now)
        .unwrap();
    assert!(given.text.contains("ESC-00001"), "{}", given.text);
    let e = bot.store.escalation("ESC-00001").unwrap().unwrap();
    assert_eq!(e.new_address.as_deref(), Some("ali.khan7@nhs.net"));
    // No second escalation for the same change.
    assert!(bot.store.escalation("ESC-00002").unwrap().is_none());
    let sender = start_sender(bot.clone(), &config, None);
    wait_until("the e-mail", 10, || smtp.messages().len() == 1).await;
    sender.stop().await;
    let sent = smtp.messages();
    assert_eq!(sent.len(), 1);
    let body = mail_parser::MessageParser::default()
        .parse(&sent[0].data)
        .unwrap()
        .body_text(0)
        .unwrap()
        .to_string();
    assert!(body.contains("ali.khan7@nhs.net"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_and_auth_are_used_when_configured() {
    let smtp = TestSmtp::start(TestSmtpOptions {
        require_tls: true,
        auth: Some(("esrbot".into(), "s3cret-from-env".into())),
        ..Default::default()
    })
    .await;
    let (_dir, db) = temp_db();
    let mut env = mail_env(&db, smtp.port());
    env.extend([
        ("ESRBOT_MAIL_TLS".into(), "starttls".into()),
        ("ESRBOT_MAIL_HOST".into(), "localhost".into()),
        ("ESRBOT_MAIL_USERNAME".into(), "esrbot".into()),
        ("ESRBOT_MAIL_ACCEPT_INVALID_CERTS".into(), "true".into()),
    ]);
    let config = config_with(env);
    let bot = Arc::new(Service::open(engine(), &config).unwrap());
    email_change(&bot, "chat:lee", "Lee", "lee.m@nhs.net");
    let sender = start_sender(bot.clone(), &config, Some("s3cret-from-env".into()));
    wait_until("the e-mail", 10, || smtp.messages().len() == 1).await;
    sender.stop().await;
    let m = &smtp.messages()[0];
    assert!(m.tls, "STARTTLS was not used");
    assert_eq!(m.authenticated_as.as_deref(), Some("esrbot"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_that_is_down_gets_the_email_once_it_comes_up() {
    let port = free_port();
    let (_dir, db) = temp_db();
    let config = config_with(mail_env(&db, port));
    let bot = Arc::new(Service::open(engine(), &config).unwrap());
    email_change(&bot, "chat:ash", "Ash", "ash.k@nhs.net");
    let sender = start_sender(bot.clone(), &config, None);
    wait_until("a failed attempt", 10, || {
        mail_status(&bot.store, "ESC-00001")
            .unwrap()
            .unwrap()
            .attempts
            >= 1
    })
    .await;
    let job = mail_status(&bot.store, "ESC-00001").unwrap().unwrap();
    assert_eq!(
        job.state,
        MailState::Queued,
        "a refused connection is retried"
    );
    assert!(job.last_error.is_some());
    let smtp = TestSmtp::start(TestSmtpOptions {
        port: Some(port),
        ..Default::default()
    })
    .await;
    wait_until("the e-mail", 15, || smtp.messages().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    sender.stop().await;
    assert_eq!(smtp.messages().len(), 1, "delivered exactly once");
    assert_eq!(
        bot.store.escalation("ESC-00001").unwrap().unwrap().status,
        EscalationStatus::Sent
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_email_fails_tells_the_support_team_and_can_be_retried() {
    let smtp = TestSmtp::start(TestSmtpOptions {
        reject_data_with: Some(554),
        ..Default::default()
    })
    .await;
    let (_dir, db) = temp_db();
    let config = config_with(mail_env(&db, smtp.port()));
    let bot = Arc::new(Service::open(engine(), &config).unwrap());
    email_change(&bot, "chat:jo", "Jo", "jo.r@nhs.net");
    let sender = start_sender(bot.clone(), &config, None);
    wait_until("the failure", 10, || {
        bot.store.escalation("ESC-00001").unwrap().unwrap().status == EscalationStatus::Failed
    })
    .await;
    sender.stop().await;
    let notes = queued(&bot, SUPPORT_LANE);
    assert!(
        notes
            .iter()
            .any(|(to, text)| *to == Recipient::support_team().to_string()
                && text.contains("ESC-00001")
                && text.contains("554")),
        "{notes:?}"
    );
    let e = bot.store.escalation("ESC-00001").unwrap().unwrap();
    assert!(
        e.history
            .iter()
            .any(|h| h.status == EscalationStatus::Failed && h.by == "mail")
    );

    // An administrator fixes the relay and retries.
    let good = TestSmtp::start(TestSmtpOptions::default()).await;
    let config = config_with(mail_env(&db, good.port()));
    let r = bot
        .escalation_action("ESC-00001", Action::Retry, "sam", None, Utc::now())
        .unwrap()
        .unwrap();
    assert_eq!(r.status, EscalationStatus::Open);
    let sender = start_sender(bot.clone(), &config, None);
    wait_until("the retried e-mail", 10, || good.messages().len() == 1).await;
    sender.stop().await;
    assert_eq!(
        bot.store.escalation("ESC-00001").unwrap().unwrap().status,
        EscalationStatus::Sent
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn header_injection_and_odd_names_are_made_safe() {
    let smtp = TestSmtp::start(TestSmtpOptions::default()).await;
    let (_dir, db) = temp_db();
    let config = config_with(mail_env(&db, smtp.port()));
    let bot = Arc::new(Service::open(engine(), &config).unwrap());
    let long_name = "Zoë Åsa-Łucja Ní Bhriain ".repeat(12) + "\r\nBcc: attacker@evil.example";
    // An address with a header smuggled in is not accepted as an address.
    bot.handle(
        "chat:z",
        Some(&long_name),
        "my nhs.net address changed",
        Utc::now(),
    )
    .unwrap();
    bot.handle("chat:z", Some(&long_name), "yes", Utc::now())
        .unwrap();
    let r = bot
        .handle(
            "chat:z",
            Some(&long_name),
            "zoe@nhs.net\r\nBcc: attacker@evil.example",
            Utc::now(),
        )
        .unwrap();
    // The message is cleaned of line breaks first, so the address is read alone and accepted.
    assert!(r.text.contains("ESC-00001"), "{}", r.text);
    let sender = start_sender(bot.clone(), &config, None);
    wait_until("the e-mail", 10, || smtp.messages().len() == 1).await;
    sender.stop().await;
    let m = &smtp.messages()[0];
    assert_eq!(
        m.rcpt_to,
        vec!["stees.mandatorytraining@nhs.net".to_string()]
    );
    let data = m.data_str();
    assert!(
        !data
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{data}"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&m.data)
        .unwrap();
    let subject = parsed.subject().unwrap();
    assert!(subject.contains("Zoë Åsa-Łucja Ní Bhriain"), "{subject}");
    assert!(
        data.lines().all(|l| l.len() <= 998),
        "a line longer than SMTP allows"
    );
    // Building a mail from a name with CR/LF never panics and never makes a header.
    let e = bot.store.escalation("ESC-00001").unwrap().unwrap();
    let mail = escalation_message(&e, chrono_tz::Europe::London, engine().content());
    assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
    // A configured address with a line break is refused at start-up.
    let settings = Settings {
        from: "bot@test.nhs.net\r\nBcc: x@y.z".into(),
        ..Settings::from_config(&config, None).unwrap()
    };
    let err = Mailer::new(&settings).err().unwrap();
    assert!(err.contains("control characters"), "{err}");
}

/// After a restart, the first escalation's e-mail is recorded as sent.
fn assert_sent(db: &Path) {
    let store = Store::open(db).unwrap();
    let e = store.escalation("ESC-00001").unwrap().unwrap();
    assert_eq!(e.status, EscalationStatus::Sent);
}

/// Reads the database the way an administrator's command would, while the bot has it open.
fn job_attempts(db: &Path) -> Option<(u32, MailState)> {
    let store = Store::open(db).ok()?;
    mail_status(&store, "ESC-00001")
        .ok()?
        .map(|j| (j.attempts, j.state))
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_between_queueing_and_sending_loses_nothing() {
    let port = free_port(); // nothing listens yet: the relay is down
    let (_dir, db) = temp_db();
    let env = mail_env(&db, port);
    let mut a = ChatProcess::start(&env);
    for line in ["my nhs.net email has changed", "yes", "kim.new@nhs.net"] {
        a.say(line);
    }
    wait_until("the queued e-mail's first attempt", 20, || {
        job_attempts(&db).is_some_and(|(n, s)| n >= 1 && s == MailState::Queued)
    })
    .await;
    a.kill_9();

    let smtp = TestSmtp::start(TestSmtpOptions {
        port: Some(port),
        ..Default::default()
    })
    .await;
    let b = ChatProcess::start(&env);
    wait_until("the e-mail after restart", 20, || {
        smtp.messages().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    b.kill_9();
    assert_eq!(smtp.messages().len(), 1, "exactly once");
    assert_sent(&db);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_after_the_server_accepted_resends_once_with_the_same_message_id() {
    let smtp = TestSmtp::start(TestSmtpOptions::default()).await;
    let (_dir, db) = temp_db();
    let env = mail_env(&db, smtp.port());
    let mut faulty = env.clone();
    faulty.push(("ESRBOT_FAULT".into(), "abort_after_accept".into()));
    let mut a = Command::new(env!("CARGO_BIN_EXE_esrbot"))
        .args(["chat", "--user", "kim"])
        .current_dir(root())
        .envs(faulty.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    a.stdin
        .as_mut()
        .unwrap()
        .write_all(b"my nhs.net email has changed\nyes\nkim.new@nhs.net\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = a.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the process did not crash");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "expected an abort");
    assert_eq!(
        smtp.messages().len(),
        1,
        "the server accepted before the crash"
    );
    // The acceptance was never recorded: the e-mail is still queued.
    assert!(
        matches!(job_attempts(&db), Some((0, MailState::Queued))),
        "{:?}",
        job_attempts(&db)
    );

    let b = ChatProcess::start(&env);
    wait_until("the resend", 20, || smtp.messages().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    b.kill_9();
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 2, "one duplicate at worst");
    let ids: Vec<String> = msgs
        .iter()
        .map(|m| header(&m.data_str(), "Message-ID").unwrap().to_string())
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0], "<ESC-00001@esrbot>");
    assert_sent(&db);
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_test_prints_the_servers_answer() {
    let smtp = TestSmtp::start(TestSmtpOptions::default()).await;
    let (_dir, db) = temp_db();
    let run = |env: Vec<(String, String)>| {
        Command::new(env!("CARGO_BIN_EXE_esrbot"))
            .args(["mail", "test"])
            .current_dir(root())
            .envs(env)
            .output()
            .unwrap()
    };
    let out = tokio::task::spawn_blocking({
        let env = mail_env(&db, smtp.port());
        move || run(env)
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("accepted: 250 2.0.0 Ok: queued as TEST"),
        "{text}"
    );
    assert_eq!(smtp.messages().len(), 1);
    assert!(
        smtp.messages()[0]
            .data_str()
            .contains("test e-mail from esrbot")
    );

    let down = mail_env(&db, free_port());
    let out = tokio::task::spawn_blocking(move || run(down))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not sent: transient mail error"));

    let mut unset = mail_env(&db, 25);
    unset.push(("ESRBOT_MAIL_HOST".into(), String::new()));
    let out = tokio::task::spawn_blocking(move || run(unset))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("e-mail is not configured"));
}
