//! The Teams transport end to end against a fake Bot Framework on 127.0.0.1
//! (tests/support/bot_framework.rs), on a test clock: a 1:1 answer, every bad token refused, one
//! token for many replies, a proactive lock-end reminder, a channel mention moved to the 1:1 chat,
//! the support team's card worked from Teams, a non-support member refused, a duplicated activity,
//! a 429 and a 502 retried, a person who blocked the bot, and forget-me.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use esrbot::clock::{Clock, ManualClock};
use esrbot::config::Config;
use esrbot::core::records::EscalationStatus;
use esrbot::service::Service;
use serde_json::Value;
use tokio::sync::oneshot;

use super::support::bot_framework::{
    self as bf, FakeBotFramework, Fault, PASSWORD, Sender, actions, activities_path, person,
    personal_conversation, shown,
};
use super::support::process::wait_until;
use super::{engine, root, temp_db};

const SUPPORT: &str = "19:support@thread.tacv2";
const CHANNEL: &str = "19:general@thread.tacv2";
/// The support member's account number (`aad-900` is in `support_user_ids`).
const SUPPORT_MEMBER: u32 = 900;

struct Running {
    fake: FakeBotFramework,
    bot: Arc<Service>,
    clock: Arc<ManualClock>,
    sender: Sender,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    let fake = FakeBotFramework::start().await;
    let (dir, db) = temp_db();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let mut env = fake.env();
    env.extend([
        ("ESRBOT_STORAGE_PATH".into(), db.to_str().unwrap().into()),
        ("ESRBOT_TEAMS_LISTEN".into(), address.to_string()),
        (
            "ESRBOT_TEAMS_SUPPORT_CONVERSATION_ID".into(),
            SUPPORT.into(),
        ),
        (
            "ESRBOT_TEAMS_SUPPORT_USER_IDS".into(),
            person(SUPPORT_MEMBER).1,
        ),
    ]);
    let config = Config::load(&root().join("config.toml"), true, env).unwrap();
    let bot = Arc::new(Service::open(engine(), &config).unwrap());
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(esrbot::transports::teams::run(
        config,
        bot.clone(),
        PASSWORD.into(),
        clock.clone(),
        listener,
        async move {
            let _ = rx.await;
        },
    ));
    Running {
        fake,
        bot,
        clock,
        sender: Sender::new(address),
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the bot stops in time")
            .unwrap()
            .unwrap();
    }

    /// A good token for now.
    fn token(&self) -> String {
        format!(
            "Bearer {}",
            self.fake.sign(&self.fake.good_token(self.clock.now()))
        )
    }

    /// Sends `activity` signed as the Bot Connector does; the bot must take it.
    async fn send(&self, activity: &Value) {
        let status = self.sender.send(Some(self.token()), activity).await;
        assert_eq!(status, 200, "the bot takes a signed activity: {activity}");
    }

    async fn say(&self, id: &str, user: u32, text: &str) {
        let url = self.fake.service_url();
        self.send(&bf::personal_message(&url, id, user, text)).await;
    }

    /// The `n`th activity posted in `user`'s 1:1 chat (1-based), waiting for it.
    async fn in_1on1(&self, user: u32, n: usize) -> Value {
        let path = activities_path(&personal_conversation(&person(user).0));
        self.fake.wait_for("POST", &path, n).await[n - 1]
            .body
            .clone()
    }

    /// Waits until the failed delivery has been put back for a retry.
    async fn wait_for_retry(&self) {
        let bot = self.bot.clone();
        wait_until("a failed delivery kept for a retry", 5, move || {
            bot.store
                .outbox("teams")
                .unwrap()
                .iter()
                .any(|o| o.attempts > 0)
        })
        .await;
    }

    fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
        self.bot.nudge();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_personal_question_is_answered_in_reply_with_a_card_whose_choice_works() {
    let r = start().await;
    r.say("m1", 1, "how do I reset my esr password").await;
    let path = activities_path(&personal_conversation(&person(1).0));
    let reply = &r.fake.wait_for("POST", &path, 1).await[0];
    assert_eq!(
        reply.path,
        format!("{path}/m1"),
        "posted as a reply to the message"
    );
    assert!(
        shown(&reply.body).contains("Leave the Username box blank"),
        "{}",
        reply.body
    );
    let card = &reply.body["attachments"][0]["content"];
    assert!(
        card["fallbackText"]
            .as_str()
            .is_some_and(|f| f.contains("Reply with one of")),
        "a text fallback: {card}"
    );
    let choice = actions(&reply.body)
        .into_iter()
        .find(|a| a.starts_with("say:"))
        .expect("a choice to press");
    // Pressing "I've requested a reset" is handled like typing it: the link timer starts.
    let press = bf::submit(
        bf::personal_message(&r.fake.service_url(), "m2", 1, ""),
        &choice,
    );
    r.send(&press).await;
    let answer = r.in_1on1(1, 2).await;
    assert!(shown(&answer).contains("works until"), "{answer}");
    let state = r.bot.store.user(&"teams:29:user-1".into()).unwrap();
    assert!(state.link_valid_until.is_some(), "{state:?}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_token_is_refused_and_nothing_is_handled() {
    let r = start().await;
    let now = r.clock.now();
    let url = r.fake.service_url();
    let activity = bf::personal_message(&url, "bad", 2, "I'm locked out");
    let good = r.fake.good_token(now);
    let cases: Vec<(&str, Option<bf::TokenSpec>, u16)> = vec![
        ("no token", None, 401),
        (
            "wrong audience",
            Some(bf::TokenSpec {
                audience: "some-other-app".into(),
                ..good.clone()
            }),
            401,
        ),
        (
            "wrong issuer",
            Some(bf::TokenSpec {
                issuer: "https://sts.windows.net/evil/".into(),
                ..good.clone()
            }),
            401,
        ),
        (
            "expired beyond the 5 minutes of skew",
            Some(bf::TokenSpec {
                expires: now - chrono::Duration::minutes(6),
                not_before: now - chrono::Duration::hours(1),
                ..good.clone()
            }),
            401,
        ),
        (
            "not valid yet",
            Some(bf::TokenSpec {
                not_before: now + chrono::Duration::minutes(6),
                ..good.clone()
            }),
            401,
        ),
        (
            "bad signature (another key under the endorsed key's kid)",
            Some(bf::TokenSpec {
                key: "b",
                ..good.clone()
            }),
            401,
        ),
        (
            "a key not endorsed for msteams",
            Some(bf::TokenSpec {
                key: "b",
                kid: "key-b".into(),
                ..good.clone()
            }),
            401,
        ),
        (
            "a serviceUrl other than the activity's",
            Some(bf::TokenSpec {
                service_url: "https://smba.trafficmanager.net/emea/".into(),
                ..good.clone()
            }),
            403,
        ),
        (
            "an unknown kid nobody publishes",
            Some(bf::TokenSpec {
                kid: "made-up".into(),
                ..good.clone()
            }),
            401,
        ),
    ];
    for (what, token, want) in &cases {
        let header = token.as_ref().map(|t| format!("Bearer {}", r.fake.sign(t)));
        let got = r.sender.send(header, &activity).await;
        assert_eq!(got, *want, "{what}");
    }
    let garbage = r
        .sender
        .send(Some("Bearer not.a.jwt".into()), &activity)
        .await;
    assert_eq!(garbage, 401, "not a JWT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        r.fake.requests().is_empty(),
        "nothing was sent: {:?}",
        r.fake.requests()
    );
    assert!(
        r.bot
            .store
            .user(&"teams:29:user-2".into())
            .unwrap()
            .locked_until
            .is_none(),
        "nothing was handled"
    );
    // Within the skew, a just-expired token is still good; the keys were fetched once for all.
    let late = bf::TokenSpec {
        expires: now - chrono::Duration::minutes(2),
        ..good.clone()
    };
    let ok = r
        .sender
        .send(Some(format!("Bearer {}", r.fake.sign(&late))), &activity)
        .await;
    assert_eq!(ok, 200, "2 minutes past exp is within the skew");
    assert_eq!(
        r.fake.jwks_fetches(),
        1,
        "the keys are cached, not fetched per request"
    );

    // A key published later: its unknown kid makes the bot fetch the keys again, once.
    r.fake.publish_key("key-late");
    r.advance(chrono::Duration::minutes(2));
    let rotated = bf::TokenSpec {
        kid: "key-late".into(),
        expires: r.clock.now() + chrono::Duration::minutes(30),
        ..good.clone()
    };
    let next = bf::personal_message(&url, "after-rotation", 2, "thanks");
    let ok = r
        .sender
        .send(Some(format!("Bearer {}", r.fake.sign(&rotated))), &next)
        .await;
    assert_eq!(ok, 200, "the new key was fetched and accepted");
    assert_eq!(r.fake.jwks_fetches(), 2);

    // A day later the keys are fetched again, even with no unknown kid.
    r.advance(chrono::Duration::hours(25));
    let tomorrow = bf::personal_message(&url, "next-day", 2, "hello");
    r.send(&tomorrow).await;
    assert_eq!(r.fake.jwks_fetches(), 3, "refreshed at least daily");

    // Bodies are size-limited.
    let mut huge = bf::personal_message(&url, "huge", 2, "hello");
    huge["text"] = Value::String("x".repeat(300 * 1024));
    assert_eq!(r.sender.send(Some(r.token()), &huge).await, 413);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_token_serves_many_replies() {
    let r = start().await;
    for (i, text) in [
        "hello",
        "I'm locked out",
        "how long till i can get back in",
        "thanks",
    ]
    .iter()
    .enumerate()
    {
        r.say(&format!("t{i}"), 3, text).await;
    }
    let path = activities_path(&personal_conversation(&person(3).0));
    let sent = r.fake.wait_for("POST", &path, 4).await;
    assert!(
        sent.iter()
            .all(|s| s.authorization == "Bearer connector-token-1"),
        "{sent:?}"
    );
    assert_eq!(r.fake.token_requests(), 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_end_is_sent_proactively_when_the_clock_passes_it() {
    let r = start().await;
    r.say("l1", 4, "I'm locked out").await;
    assert!(shown(&r.in_1on1(4, 1).await).contains("12 hours"));
    r.advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
    let path = activities_path(&personal_conversation(&person(4).0));
    let all = r.fake.wait_for("POST", &path, 2).await;
    assert_eq!(all[1].path, path, "a proactive message, not a reply");
    assert!(
        shown(&all[1].body).contains("lock is over"),
        "{}",
        all[1].body
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_mention_with_personal_content_goes_to_the_1on1_chat() {
    let r = start().await;
    let url = r.fake.service_url();
    r.send(&bf::channel_message(
        &url,
        "c1",
        CHANNEL,
        5,
        "Sam",
        "I'm locked out of ESR",
        true,
    ))
    .await;
    // Nobody had a 1:1 chat with the bot yet: it is created.
    let created = r.fake.wait_for("POST", "/v3/conversations", 1).await;
    let create = created
        .iter()
        .find(|c| c.path == "/v3/conversations")
        .unwrap();
    assert_eq!(create.body["members"][0]["id"], person(5).0);
    assert_eq!(create.body["tenantId"], bf::TENANT);
    let private = r.in_1on1(5, 1).await;
    assert!(shown(&private).contains("12 hours"), "{private}");
    let public = &r.fake.wait_for("POST", &activities_path(CHANNEL), 1).await[0];
    assert_eq!(public.path, format!("{}/c1", activities_path(CHANNEL)));
    assert!(
        shown(&public.body).contains("sent you a private message"),
        "{}",
        public.body
    );
    assert!(!shown(&public.body).contains("12 hours"));

    // Without a mention the bot stays quiet; a password is never repeated anywhere.
    r.send(&bf::channel_message(
        &url,
        "c2",
        CHANNEL,
        5,
        "Sam",
        "I'm locked out",
        false,
    ))
    .await;
    r.send(&bf::channel_message(
        &url,
        "c3",
        CHANNEL,
        5,
        "Sam",
        "my password is Hunter2!! and it doesnt work",
        true,
    ))
    .await;
    let privately = r
        .fake
        .wait_for(
            "POST",
            &activities_path(&personal_conversation(&person(5).0)),
            3,
        )
        .await;
    let texts: Vec<String> = privately.iter().map(|p| shown(&p.body)).collect();
    assert!(
        texts.iter().any(|t| t.contains("delete it yourself")),
        "{texts:?}"
    );
    assert_eq!(
        r.fake.matching("POST", &activities_path(CHANNEL)).len(),
        2,
        "c2 got no answer"
    );
    for req in r.fake.requests() {
        assert!(!req.body.to_string().contains("Hunter2"), "{req:?}");
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_escalation_card_is_posted_and_resolved_by_a_support_member_only() {
    let r = start().await;
    let url = r.fake.service_url();
    r.say("e1", 6, "can I talk to a real person please").await;
    assert!(shown(&r.in_1on1(6, 1).await).contains("ESC-00001"));
    let card = r.fake.wait_for("POST", &activities_path(SUPPORT), 1).await[0]
        .body
        .clone();
    assert!(
        shown(&card).contains("ESC-00001") && shown(&card).contains("talk_to_human"),
        "{card}"
    );
    assert!(
        actions(&card).contains(&"esc:resolve:ESC-00001".to_string()),
        "{card}"
    );

    // Someone not in support_user_ids: refused privately, and nothing changes.
    let press = |id: &str, user: u32, name: &str| {
        bf::submit(
            bf::channel_message(&url, id, SUPPORT, user, name, "", false),
            "esc:resolve:ESC-00001",
        )
    };
    r.send(&press("p1", 7, "Nosy")).await;
    let refusal = r.in_1on1(7, 1).await;
    assert!(
        shown(&refusal).contains("Only the support team"),
        "{refusal}"
    );
    assert_eq!(
        r.bot.store.escalation("ESC-00001").unwrap().unwrap().status,
        EscalationStatus::Open
    );

    // A support member resolves it: the card is updated in place, the staff member told.
    r.send(&press("p2", SUPPORT_MEMBER, "Sue Support")).await;
    let update = &r.fake.wait_for("PUT", &activities_path(SUPPORT), 1).await[0];
    assert!(
        update
            .path
            .starts_with(&format!("{}/act-", activities_path(SUPPORT))),
        "the posted card's activity: {}",
        update.path
    );
    assert!(shown(&update.body).contains("resolved"), "{}", update.body);
    assert!(
        actions(&update.body).is_empty(),
        "nothing left to do: {}",
        update.body
    );
    let told = r.in_1on1(6, 2).await;
    assert!(
        shown(&told).contains("resolved your request ESC-00001"),
        "{told}"
    );
    let e = r.bot.store.escalation("ESC-00001").unwrap().unwrap();
    assert_eq!(e.status, EscalationStatus::Resolved);
    assert!(
        e.history.last().unwrap().by.contains("Sue Support"),
        "{:?}",
        e.history
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_activity_delivered_twice_is_handled_once() {
    let r = start().await;
    r.say("d1", 8, "I've got my password wrong twice").await;
    r.say("d1", 8, "I've got my password wrong twice").await;
    assert!(shown(&r.in_1on1(8, 1).await).contains("1 attempt left"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let path = activities_path(&personal_conversation(&person(8).0));
    assert_eq!(r.fake.matching("POST", &path).len(), 1);
    assert_eq!(
        r.bot
            .store
            .user(&"teams:29:user-8".into())
            .unwrap()
            .failed_attempts,
        2
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_waits_for_its_retry_after_and_a_502_is_retried() {
    let r = start().await;
    r.fake.fail_next(Fault::TooManyRequests {
        retry_after_secs: 30,
    });
    r.say("r1", 10, "I'm locked out").await;
    let path = activities_path(&personal_conversation(&person(10).0));
    r.fake.wait_for("POST", &path, 1).await;
    r.wait_for_retry().await;
    let due = r
        .bot
        .store
        .outbox_next_due("teams")
        .unwrap()
        .expect("kept for a retry");
    assert!(
        due >= r.clock.now() + chrono::Duration::seconds(29),
        "Retry-After is honoured: due {due}, now {}",
        r.clock.now()
    );
    r.advance(chrono::Duration::seconds(31));
    let both = r.fake.wait_for("POST", &path, 2).await;
    assert_eq!(
        both[0].body, both[1].body,
        "the same reply, delivered on the retry"
    );
    assert!(shown(&both[1].body).contains("12 hours"));

    r.fake.fail_next(Fault::BadGateway);
    r.say("r2", 10, "thanks").await;
    r.fake.wait_for("POST", &path, 3).await;
    r.wait_for_retry().await;
    r.advance(chrono::Duration::seconds(5));
    let all = r.fake.wait_for("POST", &path, 4).await;
    assert_eq!(all[2].body, all[3].body);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_who_blocked_the_bot_is_unreachable_and_the_support_team_is_told() {
    let r = start().await;
    let url = r.fake.service_url();
    r.send(&bf::installation(&url, "i1", 11)).await;
    r.say("b1", 11, "I'm locked out").await;
    assert!(shown(&r.in_1on1(11, 1).await).contains("12 hours"));
    r.fake.block(&person(11).0);
    r.say("b2", 11, "how long till i can get back in").await;
    let told = r.fake.wait_for("POST", &activities_path(SUPPORT), 1).await[0]
        .body
        .clone();
    assert!(
        shown(&told).contains("couldn't deliver a message to") && shown(&told).contains("blocked"),
        "{told}"
    );
    assert!(
        !shown(&told).contains("ends at") && !shown(&told).contains("12 hours"),
        "without the message: {told}"
    );
    let who = "teams:29:user-11".into();
    assert!(
        r.bot.store.user(&who).unwrap().reminders_off,
        "their reminders stop"
    );
    // The lock's end comes and goes without another attempt to reach them.
    let before = r.fake.requests().len();
    r.advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let path = activities_path(&personal_conversation(&person(11).0));
    assert_eq!(
        r.fake.matching("POST", &path).len(),
        2,
        "{:?}",
        &r.fake.requests()[before..]
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forget_me_erases_everything_after_a_confirmation_card() {
    let r = start().await;
    r.say("f1", 12, "I'm locked out").await;
    r.in_1on1(12, 1).await;
    r.say("f2", 12, "forget me").await;
    let ask = r.in_1on1(12, 2).await;
    assert!(
        actions(&ask).contains(&"forget:confirm".to_string()),
        "{ask}"
    );
    let press = bf::submit(
        bf::personal_message(&r.fake.service_url(), "f3", 12, ""),
        "forget:confirm",
    );
    r.send(&press).await;
    let done = r.in_1on1(12, 3).await;
    assert!(shown(&done).contains("erased"), "{done}");
    let who = "teams:29:user-12".into();
    assert!(r.bot.store.user(&who).unwrap().is_empty());
    assert_eq!(
        r.bot
            .store
            .transport_ref("teams:29:user-12#reference")
            .unwrap(),
        None,
        "how to reach them is erased too"
    );
    r.stop().await;
}

/// `esrbot serve` as a process: Teams runs when `[teams] listen` is set, and not without its
/// secret.
#[tokio::test(flavor = "multi_thread")]
async fn esrbot_serve_runs_teams_when_its_listener_is_set() {
    use std::process::{Command, Stdio};
    let (_dir, db) = temp_db();
    let port = super::support::process::free_port();
    let serve = |password: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_esrbot"));
        c.args([
            "--config",
            root().join("config.toml").to_str().unwrap(),
            "serve",
        ])
        .env("ESRBOT_STORAGE_PATH", &db)
        .env("ESRBOT_ADMIN_LISTEN", "")
        .env("ESRBOT_TEAMS_LISTEN", format!("127.0.0.1:{port}"))
        .env("ESRBOT_TEAMS_APP_ID", bf::APP_ID)
        .env("ESRBOT_TEAMS_TENANT_ID", bf::TENANT)
        .env_remove("DISCORD_TOKEN")
        .env_remove("TEAMS_APP_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if let Some(p) = password {
            c.env("TEAMS_APP_PASSWORD", p);
        }
        c.spawn().unwrap()
    };
    let out = serve(None).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("TEAMS_APP_PASSWORD"), "{err}");

    let mut child = serve(Some(PASSWORD));
    let sender = Sender::new(format!("127.0.0.1:{port}").parse().unwrap());
    let http = reqwest::Client::new();
    let mut answered = None;
    for _ in 0..600 {
        if let Ok(r) = http.post(&sender.endpoint).body("{}").send().await {
            answered = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(answered, Some(401), "an unsigned request is refused");
    assert_eq!(status.code(), Some(0), "SIGTERM stops it cleanly");
}
