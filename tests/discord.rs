//! The real serenity client against a fake Discord on 127.0.0.1 (tests/support/discord): DMs,
//! channel mentions moved to DMs, reminders as DMs, the support channel's escalation posts and
//! buttons, role checks, duplicate events, closed DMs, secrets in channels and a dropped gateway.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use esrbot::clock::ManualClock;
use esrbot::config::Config;
use esrbot::core::records::EscalationStatus;
use esrbot::service::Service;
use serde_json::Value;
use tokio::sync::oneshot;

use super::support::discord::json::{self, bot_user, user};
use super::support::discord::{CLOSED_DMS_USER, FakeDiscord, T, TOKEN, dm_channel_of};
use super::support::process::wait_until;
use super::{engine, root, temp_db};

const GUILD: u64 = 30;
const CHANNEL: u64 = 20;
const SUPPORT_CHANNEL: u64 = 4000;
const SUPPORT_ROLE: u64 = 777;

struct Running {
    fake: FakeDiscord,
    bot: Arc<Service>,
    clock: Arc<ManualClock>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(extra: &[(&str, &str)]) -> Running {
    let fake = FakeDiscord::start().await;
    let (dir, db) = temp_db();
    let mut env: Vec<(String, String)> = vec![
        ("ESRBOT_STORAGE_PATH".into(), db.to_str().unwrap().into()),
        ("ESRBOT_DISCORD_API_BASE".into(), fake.api_base()),
        (
            "ESRBOT_DISCORD_APPLICATION_ID".into(),
            json::APP_ID.to_string(),
        ),
        (
            "ESRBOT_DISCORD_SUPPORT_CHANNEL_ID".into(),
            SUPPORT_CHANNEL.to_string(),
        ),
        (
            "ESRBOT_DISCORD_SUPPORT_ROLE_IDS".into(),
            SUPPORT_ROLE.to_string(),
        ),
        ("ESRBOT_DISCORD_GUILD_ID".into(), GUILD.to_string()),
        ("ESRBOT_MAIL_POLL_SECONDS".into(), "1".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::load(&root().join("config.toml"), true, env).unwrap();
    let bot = Arc::new(Service::open(engine(), &config).unwrap());
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(esrbot::transports::discord::run(
        config,
        bot.clone(),
        TOKEN.into(),
        clock.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    fake.wait_connected(T).await;
    Running {
        fake,
        bot,
        clock,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

impl Running {
    /// Stops the bot and waits for it, keeping the fake and the database to look at.
    async fn halt(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the bot stops in time")
            .unwrap()
            .unwrap();
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the bot stops in time")
            .unwrap()
            .unwrap();
    }

    async fn dm(&self, id: u64, from: u64, text: &str) {
        let m = json::dm_message(id, dm_channel_of(from), user(from, "staff", false), text);
        self.fake.push_dispatch("MESSAGE_CREATE", m).await;
    }

    /// The next message the bot posts in `channel`.
    async fn posted(&self, channel: u64) -> Value {
        self.fake
            .wait_for_request("POST", &format!("/api/v10/channels/{channel}/messages"), T)
            .await
    }

    async fn callback(&self, interaction: u64) -> Value {
        self.fake
            .wait_for_request("POST", &format!("/api/v10/interactions/{interaction}/"), T)
            .await
    }

    fn count(&self, method: &str, path: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }
}

fn content(v: &Value) -> &str {
    v["content"].as_str().unwrap_or_default()
}

fn button_ids(v: &Value) -> Vec<String> {
    v["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dm_question_gets_the_right_answer_with_a_button() {
    let r = start(&[]).await;
    r.dm(1, 500, "how do I reset my esr password").await;
    let reply = r.posted(dm_channel_of(500)).await;
    assert!(
        content(&reply).contains("Leave the Username box blank"),
        "{reply}"
    );
    assert!(
        button_ids(&reply).iter().any(|b| b.starts_with("say:")),
        "{reply}"
    );
    // Pressing "I've requested a reset" starts the timer and answers the interaction.
    let press = json::button_interaction(
        70,
        "tok",
        dm_channel_of(500),
        None,
        user(500, "staff", false),
        "say:I have just requested a password reset",
        1,
    );
    r.fake.push_dispatch("INTERACTION_CREATE", press).await;
    let cb = r.callback(70).await;
    assert_eq!(cb["type"], 4);
    assert!(content(&cb["data"]).contains("works until"), "{cb}");
    assert!(
        r.bot
            .store
            .user(&"discord:500".into())
            .unwrap()
            .link_valid_until
            .is_some()
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_mention_with_personal_content_is_answered_in_a_dm() {
    let r = start(&[]).await;
    let m = json::guild_message(
        2,
        CHANNEL,
        GUILD,
        user(501, "staff", false),
        "<@1000> I'm locked out of ESR",
        vec![bot_user()],
    );
    r.fake.push_dispatch("MESSAGE_CREATE", m).await;
    let public = r.posted(CHANNEL).await;
    assert!(content(&public).contains("I've sent you a DM"), "{public}");
    assert!(!content(&public).contains("12 hours"));
    let private = r.posted(dm_channel_of(501)).await;
    assert!(content(&private).contains("12 hours"), "{private}");
    // With the lock's end as an "add to calendar" file, in the DM only.
    let file = &private["files"][0];
    assert_eq!(file["name"], "esr-unlock.ics", "{private}");
    let ics = file["body"].as_str().unwrap_or_default();
    assert!(
        ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.contains("BEGIN:VALARM"),
        "{ics}"
    );
    assert!(
        public["files"].as_array().is_none_or(Vec::is_empty),
        "{public}"
    );
    // Without a mention, in a channel that is not listed, the bot stays quiet.
    let m = json::guild_message(
        3,
        CHANNEL,
        GUILD,
        user(501, "staff", false),
        "I'm locked out",
        vec![],
    );
    r.fake.push_dispatch("MESSAGE_CREATE", m).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        r.count("POST", &format!("/api/v10/channels/{CHANNEL}/messages")),
        1
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lockout_ends_with_a_dm_when_the_time_comes() {
    let r = start(&[]).await;
    r.dm(4, 502, "I'm locked out").await;
    let reply = r.posted(dm_channel_of(502)).await;
    assert!(content(&reply).contains("12 hours"));
    r.clock
        .advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
    r.bot.nudge();
    let notice = r.posted(dm_channel_of(502)).await;
    assert!(content(&notice).contains("lock is over"), "{notice}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn escalations_are_posted_and_worked_from_the_support_channel() {
    let r = start(&[]).await;
    r.dm(5, 503, "can I talk to a real person please").await;
    let reply = r.posted(dm_channel_of(503)).await;
    assert!(content(&reply).contains("ESC-00001"), "{reply}");
    let post = r.posted(SUPPORT_CHANNEL).await;
    assert!(
        content(&post).contains("ESC-00001") && content(&post).contains("talk_to_human"),
        "{post}"
    );
    assert!(
        button_ids(&post).contains(&"esc:resolve:ESC-00001".to_string()),
        "{post}"
    );

    // Someone without the support role is refused, and nothing changes.
    let press = json::button_interaction(
        80,
        "t1",
        SUPPORT_CHANNEL,
        Some(GUILD),
        user(601, "nosy", false),
        "esc:resolve:ESC-00001",
        1,
    );
    r.fake.push_dispatch("INTERACTION_CREATE", press).await;
    let cb = r.callback(80).await;
    assert_eq!(cb["type"], 4);
    assert_eq!(cb["data"]["flags"], 64, "the refusal is ephemeral");
    assert!(content(&cb["data"]).contains("Only the support team"));
    assert_eq!(
        r.bot.store.escalation("ESC-00001").unwrap().unwrap().status,
        EscalationStatus::Open
    );

    // A support member resolves it: the post is updated and the staff member gets a DM.
    let press = json::with_roles(
        json::button_interaction(
            81,
            "t2",
            SUPPORT_CHANNEL,
            Some(GUILD),
            user(600, "sam", false),
            "esc:resolve:ESC-00001",
            1,
        ),
        &[SUPPORT_ROLE],
    );
    r.fake.push_dispatch("INTERACTION_CREATE", press).await;
    let cb = r.callback(81).await;
    assert_eq!(cb["type"], 7, "the support post is updated in place: {cb}");
    assert!(
        content(&cb["data"]).contains("status: **resolved**"),
        "{cb}"
    );
    let dm = r.posted(dm_channel_of(503)).await;
    assert!(
        content(&dm).contains("resolved your request ESC-00001"),
        "{dm}"
    );
    let e = r.bot.store.escalation("ESC-00001").unwrap().unwrap();
    assert_eq!(e.status, EscalationStatus::Resolved);
    assert!(e.history.last().unwrap().by.contains("sam"));
    // The support channel's message is also edited from the record (outbox).
    r.fake
        .wait_for_request(
            "PATCH",
            &format!("/api/v10/channels/{SUPPORT_CHANNEL}/messages/"),
            T,
        )
        .await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_event_delivered_twice_is_handled_once() {
    let r = start(&[]).await;
    r.dm(6, 504, "I've got my password wrong twice").await;
    r.dm(6, 504, "I've got my password wrong twice").await;
    let reply = r.posted(dm_channel_of(504)).await;
    assert!(content(&reply).contains("1 attempt left"), "{reply}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        r.count(
            "POST",
            &format!("/api/v10/channels/{}/messages", dm_channel_of(504))
        ),
        1
    );
    assert_eq!(
        r.bot
            .store
            .user(&"discord:504".into())
            .unwrap()
            .failed_attempts,
        2
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_gateway_connection_is_survived() {
    let r = start(&[]).await;
    // `/readyz` follows the connection.
    wait_until("Discord ready", 10, || r.bot.health.report().0).await;
    r.fake.drop_connection().await;
    r.fake.wait_for_session_start(T).await;
    r.dm(7, 505, "where do I log in to ESR").await;
    let reply = r.posted(dm_channel_of(505)).await;
    assert!(content(&reply).contains("my.esr.nhs.uk"), "{reply}");
    r.fake.kill_connection().await;
    r.fake.wait_for_session_start(T).await;
    r.dm(8, 505, "thanks").await;
    assert!(content(&r.posted(dm_channel_of(505)).await).contains("welcome"));
    wait_until("Discord ready again", 10, || r.bot.health.report().0).await;
    let bot = r.bot.clone();
    r.stop().await;
    let (ready, waiting) = bot.health.report();
    assert!(!ready, "a stopped connection is not ready");
    assert_eq!(waiting.get("discord").map(String::as_str), Some("stopped"));
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_dms_are_recorded_for_the_support_team_not_retried() {
    let r = start(&[]).await;
    let m = json::guild_message(
        9,
        CHANNEL,
        GUILD,
        user(CLOSED_DMS_USER, "closed", false),
        "<@1000> I'm locked out",
        vec![bot_user()],
    );
    r.fake.push_dispatch("MESSAGE_CREATE", m).await;
    let notice = r.posted(SUPPORT_CHANNEL).await;
    assert!(content(&notice).contains("DMs are closed"), "{notice}");
    assert!(
        !content(&notice).contains("12 hours"),
        "the support notice carries no personal content"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tries = r.count(
        "POST",
        &format!(
            "/api/v10/channels/{}/messages",
            dm_channel_of(CLOSED_DMS_USER)
        ),
    );
    assert_eq!(tries, 1, "not retried");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_in_a_channel_is_deleted_and_never_repeated() {
    let r = start(&[]).await;
    let m = json::guild_message(
        10,
        CHANNEL,
        GUILD,
        user(506, "staff", false),
        "<@1000> my password is Bluebell2024! it won't work",
        vec![bot_user()],
    );
    r.fake.push_dispatch("MESSAGE_CREATE", m).await;
    r.fake
        .wait_for_request(
            "DELETE",
            &format!("/api/v10/channels/{CHANNEL}/messages/10"),
            T,
        )
        .await;
    let public = r.posted(CHANNEL).await;
    assert!(content(&public).contains("I've sent you a DM"));
    let first = r.posted(dm_channel_of(506)).await;
    let second = r.posted(dm_channel_of(506)).await;
    let both = format!("{} {}", content(&first), content(&second));
    assert!(both.contains("don't share your password"), "{both}");
    assert!(both.contains("removed your message"), "{both}");
    assert!(
        r.fake
            .requests()
            .iter()
            .all(|q| !q.body.to_string().contains("Bluebell2024"))
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slash_commands_answer_ephemerally_and_support_lists_are_role_checked() {
    let r = start(&[]).await;
    let ask = json::with_options(
        json::slash_command_interaction(
            90,
            "s1",
            CHANNEL,
            Some(GUILD),
            user(507, "staff", false),
            "esr",
            "ask",
        ),
        &[("text", "I'm locked out of ESR")],
    );
    r.fake.push_dispatch("INTERACTION_CREATE", ask).await;
    let cb = r.callback(90).await;
    assert_eq!(cb["data"]["flags"], 64);
    assert!(content(&cb["data"]).contains("12 hours"), "{cb}");
    let status = json::slash_command_interaction(
        91,
        "s2",
        CHANNEL,
        Some(GUILD),
        user(507, "staff", false),
        "esr",
        "status",
    );
    r.fake.push_dispatch("INTERACTION_CREATE", status).await;
    let cb = r.callback(91).await;
    assert_eq!(cb["data"]["flags"], 64);
    assert!(content(&cb["data"]).contains("locked until"), "{cb}");
    let list = json::slash_command_interaction(
        92,
        "s3",
        CHANNEL,
        Some(GUILD),
        user(507, "staff", false),
        "esr",
        "escalations",
    );
    r.fake.push_dispatch("INTERACTION_CREATE", list).await;
    assert!(content(&r.callback(92).await["data"]).contains("Only the support team"));
    // Forget me: a confirmation button, then everything is erased.
    let forget = json::slash_command_interaction(
        93,
        "s4",
        CHANNEL,
        Some(GUILD),
        user(507, "staff", false),
        "esr",
        "forget-me",
    );
    r.fake.push_dispatch("INTERACTION_CREATE", forget).await;
    let cb = r.callback(93).await;
    assert!(
        button_ids(&cb["data"]).contains(&"forget:confirm".to_string()),
        "{cb}"
    );
    let confirm = json::button_interaction(
        94,
        "s5",
        CHANNEL,
        Some(GUILD),
        user(507, "staff", false),
        "forget:confirm",
        1,
    );
    r.fake.push_dispatch("INTERACTION_CREATE", confirm).await;
    assert!(content(&r.callback(94).await["data"]).contains("erased"));
    assert_eq!(
        r.bot.store.user(&"discord:507".into()).unwrap(),
        Default::default()
    );
    assert_eq!(r.bot.store.job_count().unwrap(), 0);
    // The commands were registered in the configured server.
    assert!(
        r.fake
            .requests()
            .iter()
            .any(|q| q.method == "PUT" && q.path.ends_with(&format!("/guilds/{GUILD}/commands")))
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_sending_too_fast_gets_a_polite_answer() {
    let r = start(&[("ESRBOT_DISCORD_RATE_LIMIT_PER_MINUTE", "2")]).await;
    for id in 11..14 {
        r.dm(id, 508, "hello").await;
    }
    let mut texts = Vec::new();
    for _ in 0..3 {
        texts.push(content(&r.posted(dm_channel_of(508)).await).to_string());
    }
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("faster than I can help"))
            .count(),
        1,
        "{texts:?}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forget_me_also_clears_the_persons_support_channel_post() {
    let r = start(&[]).await;
    r.dm(20, 509, "I want to speak to a person").await;
    r.posted(dm_channel_of(509)).await;
    let post = r.posted(SUPPORT_CHANNEL).await;
    assert!(content(&post).contains("ESC-00001"));
    let confirm = json::button_interaction(
        95,
        "f1",
        dm_channel_of(509),
        None,
        user(509, "staff", false),
        "forget:confirm",
        1,
    );
    r.fake.push_dispatch("INTERACTION_CREATE", confirm).await;
    assert!(content(&r.callback(95).await["data"]).contains("1 escalation(s)"));
    let edit = r
        .fake
        .wait_for_request(
            "PATCH",
            &format!("/api/v10/channels/{SUPPORT_CHANNEL}/messages/"),
            T,
        )
        .await;
    assert!(
        content(&edit).contains("ESC-00001") && content(&edit).contains("erased"),
        "{edit}"
    );
    assert!(
        !content(&edit).contains("509"),
        "the erased post names nobody: {edit}"
    );
    assert!(r.bot.store.escalation("ESC-00001").unwrap().is_none());
    r.stop().await;
}

/// `allowed_mentions` that lets nothing ping: an empty `parse` list and no users or roles.
fn pings_nobody(v: &Value) -> bool {
    let m = &v["allowed_mentions"];
    [&m["parse"], &m["users"], &m["roles"]]
        .iter()
        .all(|l| l.as_array().is_some_and(Vec::is_empty))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_name_reaches_the_support_card_harmless_and_nothing_pings() {
    let r = start(&[]).await;
    let name = "Kim\u{1b}[2J\u{202E}nimda\nstatus: **resolved** @everyone";
    let m = json::dm_message(
        30,
        dm_channel_of(510),
        user(510, name, false),
        "@everyone <@&777> can I talk to a real person please",
    );
    r.fake.push_dispatch("MESSAGE_CREATE", m).await;
    let reply = r.posted(dm_channel_of(510)).await;
    assert!(content(&reply).contains("ESC-00001"), "{reply}");
    let post = r.posted(SUPPORT_CHANNEL).await;
    let card = content(&post);
    assert!(
        !card.contains('\u{1b}') && !card.contains('\u{202E}'),
        "{card:?}"
    );
    assert!(
        card.contains(r"Kim\u{1b}[2J\u{202e}nimda\u{a}status: **resolved** @everyone"),
        "{card:?}"
    );
    assert!(
        !card.lines().any(|l| l.starts_with("status:")),
        "a name cannot forge a line of the card: {card:?}"
    );
    // A support member acknowledges it: the card is updated in the interaction's answer and
    // edited in the support channel, both still unable to ping.
    let press = json::with_roles(
        json::button_interaction(
            96,
            "h1",
            SUPPORT_CHANNEL,
            Some(GUILD),
            user(600, "sam", false),
            "esc:ack:ESC-00001",
            1,
        ),
        &[SUPPORT_ROLE],
    );
    r.fake.push_dispatch("INTERACTION_CREATE", press).await;
    let cb = r.callback(96).await;
    assert_eq!(cb["type"], 7, "{cb}");
    assert!(!content(&cb["data"]).contains('\u{1b}'), "{cb}");
    r.fake
        .wait_for_request(
            "PATCH",
            &format!("/api/v10/channels/{SUPPORT_CHANNEL}/messages/"),
            T,
        )
        .await;
    let ask = json::with_options(
        json::slash_command_interaction(
            97,
            "h2",
            CHANNEL,
            Some(GUILD),
            user(510, name, false),
            "esr",
            "ask",
        ),
        &[("text", "@everyone where do I log in")],
    );
    r.fake.push_dispatch("INTERACTION_CREATE", ask).await;
    r.callback(97).await;

    // Every message the bot posted, edited or answered with carries allowed_mentions that lets
    // nothing ping: its replies, the DM, the support card (post and edit), interaction answers.
    let sent: Vec<_> = r
        .fake
        .requests()
        .into_iter()
        .filter(|q| {
            (q.method == "POST" || q.method == "PATCH")
                && (q.path.contains("/messages") || q.path.contains("/callback"))
        })
        .collect();
    let kinds = |want: &str, method: &str| {
        sent.iter()
            .filter(|q| q.method == method && q.path.contains(want))
            .count()
    };
    assert!(kinds(&format!("/channels/{}/", dm_channel_of(510)), "POST") >= 1);
    assert!(kinds(&format!("/channels/{SUPPORT_CHANNEL}/"), "POST") >= 1);
    assert!(kinds(&format!("/channels/{SUPPORT_CHANNEL}/"), "PATCH") >= 1);
    assert!(kinds("/callback", "POST") >= 2);
    for q in &sent {
        let body = if q.path.contains("/callback") {
            &q.body["data"]
        } else {
            &q.body
        };
        assert!(
            pings_nobody(body),
            "{} {} lets something ping: {body}",
            q.method,
            q.path
        );
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_with_messages_in_flight_loses_no_reply() {
    let mut r = start(&[]).await;
    let staff: Vec<u64> = (0..30).map(|i| 600 + i).collect();
    for (n, &who) in staff.iter().enumerate() {
        r.dm(2000 + n as u64, who, "I'm locked out of ESR").await;
    }
    // Stop once a few are answered, while the rest are still being handled and delivered.
    let answered = |r: &Running| {
        staff
            .iter()
            .filter(|&&w| {
                let path = format!("/api/v10/channels/{}/messages", dm_channel_of(w));
                r.count("POST", &path) > 0
            })
            .count()
    };
    wait_until("the first replies", 10, || answered(&r) >= 3).await;
    r.halt().await;
    let queued = r.bot.store.outbox("discord").unwrap();
    let mut handled = 0;
    for &who in &staff {
        let key = format!("discord:{who}");
        let state = r.bot.store.user(&key.as_str().into()).unwrap();
        let path = format!("/api/v10/channels/{}/messages", dm_channel_of(who));
        let replied = r.count("POST", &path) > 0;
        let waiting = queued.iter().any(|o| o.to.as_str() == key);
        if state.locked_until.is_some() {
            handled += 1;
            // A decision that was committed has its reply sent or still waiting: never lost.
            assert!(
                replied || waiting,
                "{key}: locked, but no reply sent or queued"
            );
        } else {
            // Nothing committed: nothing was said either.
            assert!(!replied && !waiting, "{key}: a reply without its state");
        }
    }
    assert!(handled > 0, "some messages were handled before the stop");
}
