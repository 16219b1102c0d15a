//! The web chat over HTTP, without a browser: the server runs in-process on 127.0.0.1 with a test
//! clock, and each test is a browser that keeps its own cookie. Covers the no-script
//! conversation, reminders shown on the next visit and live, the identity cookie (a forged one
//! gets a new identity and nobody's data), CSRF, the rate limits, the security headers, body and
//! header limits, "Forget me", and that no message text reaches the database file.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use esrbot::clock::{Clock, ManualClock};
use esrbot::config::Config;
use esrbot::service::Service;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use tokio::sync::oneshot;

use super::{engine, root, temp_db};

pub struct WebBot {
    pub base: String,
    pub bot: Arc<Service>,
    pub clock: Arc<ManualClock>,
    pub db: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

/// The bot with the web chat on a free loopback port, plain HTTP (`cookie_secure = false` unless
/// `extra` says otherwise).
pub async fn start(extra: &[(&str, &str)]) -> WebBot {
    let (dir, db) = temp_db();
    let mut env: Vec<(String, String)> = vec![
        ("ESRBOT_STORAGE_PATH".into(), db.to_str().unwrap().into()),
        ("ESRBOT_WEB_COOKIE_SECURE".into(), "false".into()),
        (
            "ESRBOT_WEB_FRAME_ANCESTORS".into(),
            "https://intranet.example.nhs.uk".into(),
        ),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    let config = Config::load(&root().join("config.toml"), true, env).unwrap();
    let bot = Arc::new(Service::open(engine(), &config).unwrap());
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(esrbot::transports::web::run(
        config,
        bot.clone(),
        clock.clone(),
        listener,
        async move {
            let _ = rx.await;
        },
    ));
    WebBot {
        base,
        bot,
        clock,
        db,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

impl WebBot {
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the web chat stops in time")
            .unwrap()
            .unwrap();
    }

    /// A browser without script: no cookie yet.
    pub fn browser(&self) -> Browser {
        Browser {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }
}

pub struct Browser {
    base: String,
    http: reqwest::Client,
    pub cookie: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The CSRF token in the page's forms.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

impl Browser {
    /// Keeps what `Set-Cookie` says, one cookie per name (as `name=value; name2=value2`).
    fn keep_cookie(&mut self, headers: &HeaderMap) {
        for c in headers.get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let value = c.split(';').next().unwrap().to_string();
            let name = value.split('=').next().unwrap().to_string();
            let mut all: Vec<String> = self
                .cookie
                .iter()
                .flat_map(|c| c.split("; "))
                .filter(|c| !c.starts_with(&format!("{name}=")))
                .map(str::to_string)
                .collect();
            if !value.ends_with('=') {
                all.push(value);
            }
            self.cookie = (!all.is_empty()).then(|| all.join("; "));
        }
    }

    async fn page(&mut self, r: reqwest::Response) -> Page {
        let (status, headers) = (r.status(), r.headers().clone());
        self.keep_cookie(&headers);
        Page {
            status,
            headers,
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        self.page(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        self.page(r).await
    }

    /// Types `text` and presses Send as a browser without script does: post, then follow the
    /// redirect back to the chat.
    pub async fn say(&mut self, text: &str) -> Page {
        let csrf = self.get("/").await.csrf();
        let sent = self
            .post("/send", &[("csrf", &csrf), ("message", text)])
            .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        assert_eq!(sent.headers[LOCATION], "/#send");
        self.get("/").await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_without_script_gets_the_answer_and_the_end_time() {
    let w = start(&[]).await;
    let mut b = w.browser();
    let first = b.get("/").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        first
            .body
            .contains("<label for=\"message\">Message</label>"),
        "{}",
        first.body
    );
    assert!(first.body.contains(">Send</button>"));
    assert!(first.body.contains(">Forget me</button>"));
    let page = b.say("I'm locked out of ESR").await;
    assert!(page.body.contains("12 hours"), "{}", page.body);
    let end = (w.clock.now() + chrono::Duration::hours(12))
        .with_timezone(&chrono_tz::Europe::London)
        .format("%H:%M")
        .to_string();
    assert!(
        page.body.contains(&end),
        "the end time {end}: {}",
        page.body
    );
    // The person's own words are not kept, so not shown again either.
    assert!(!page.body.contains("locked out of ESR"));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reminder_that_falls_due_while_the_page_is_closed_is_shown_on_the_next_visit() {
    let w = start(&[]).await;
    let mut b = w.browser();
    b.say("I'm locked out of ESR").await;
    w.clock
        .advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
    w.bot.nudge();
    let mut page = b.get("/").await;
    for _ in 0..100 {
        if page.body.contains("lock is over") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        page = b.get("/").await;
    }
    assert!(page.body.contains("lock is over"), "{}", page.body);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_page_gets_the_reminder_live() {
    let w = start(&[]).await;
    let mut b = w.browser();
    b.say("I'm locked out of ESR").await;
    let mut stream = w
        .browser()
        .http
        .get(format!("{}/events", w.base))
        .header("cookie", b.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    // First what the page may have missed: the answer.
    while !seen.contains("12 hours") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("the stream sends the conversation")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    w.clock
        .advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
    w.bot.nudge();
    while !seen.contains("lock is over") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("the lock's end arrives live")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // Without an identity the stream is refused.
    let anon = w.browser().get("/events").await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    drop(stream);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_cookie_gets_a_new_identity_and_nobody_elses_data() {
    let w = start(&[]).await;
    let mut ann = w.browser();
    let hers = ann.say("I'm locked out of ESR").await;
    assert!(hers.body.contains("12 hours"));
    let cookie = ann.cookie.clone().unwrap();
    let (name, value) = cookie.split_once('=').unwrap();
    let (id, tag) = value.split_once('.').unwrap();
    let flipped = if tag.starts_with('0') { "1" } else { "0" };
    let forgeries = [
        format!("{name}={id}.{flipped}{}", &tag[1..]),
        format!("{name}={id}"),
        format!("{name}={id}.{}", "0".repeat(64)),
        format!("{name}=ffffffffffffffffffffffffffffffff.{tag}"),
    ];
    for forged in forgeries {
        let mut mallory = w.browser();
        mallory.cookie = Some(forged.clone());
        let page = mallory.get("/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("12 hours"), "{forged} saw Ann's chat");
        let new = mallory.cookie.clone().expect("a new identity is issued");
        assert_ne!(new, cookie);
        assert_ne!(new, forged);
        // Ann's answer is not there for the forged cookie's live stream or downloads either.
        mallory.cookie = Some(forged.clone());
        assert_eq!(
            mallory.get("/events").await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            mallory.get("/files/1/0").await.status,
            StatusCode::NOT_FOUND
        );
    }
    // Ann still has hers.
    assert!(ann.get("/").await.body.contains("12 hours"));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_without_its_csrf_token_is_refused_and_changes_nothing() {
    let w = start(&[]).await;
    let mut b = w.browser();
    let page = b.get("/").await;
    let who: esrbot::core::records::Recipient = format!(
        "web:{}",
        b.cookie
            .as_ref()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .split_once('.')
            .unwrap()
            .0
    )
    .as_str()
    .into();
    for form in [
        vec![("message", "I'm locked out of ESR")],
        vec![("csrf", "00"), ("message", "I'm locked out of ESR")],
    ] {
        let r = b.post("/send", &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("nothing was sent"), "{}", r.body);
    }
    // Another browser's token does not work either.
    let other = w.browser().get("/").await.csrf();
    let r = b
        .post(
            "/send",
            &[("csrf", &other), ("message", "I'm locked out of ESR")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(w.bot.store.user(&who).unwrap().is_empty());
    let r = b.post("/forget", &[("csrf", "nope")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // With the page's token it works.
    let r = b
        .post(
            "/send",
            &[("csrf", &page.csrf()), ("message", "I'm locked out of ESR")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!w.bot.store.user(&who).unwrap().is_empty());
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sending_too_fast_is_refused_politely_per_browser_and_per_address() {
    let w = start(&[("ESRBOT_WEB_ADDRESS_RATE_LIMIT_PER_MINUTE", "15")]).await;
    let mut b = w.browser();
    let csrf = b.get("/").await.csrf();
    for i in 0..10 {
        let r = b
            .post("/send", &[("csrf", &csrf), ("message", "thanks")])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "message {i}");
    }
    let r = b
        .post("/send", &[("csrf", &csrf), ("message", "thanks")])
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("Please wait a minute"), "{}", r.body);
    // A second browser on the same address has its own allowance, until the address's runs out.
    let mut c = w.browser();
    let c_csrf = c.get("/").await.csrf();
    let mut refused = 0;
    for _ in 0..10 {
        let r = c
            .post("/send", &[("csrf", &c_csrf), ("message", "thanks")])
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 5, "the address allows 15 a minute in all");
    w.clock.advance(chrono::Duration::seconds(61));
    let r = b
        .post("/send", &[("csrf", &csrf), ("message", "thanks")])
        .await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "a minute later it is allowed again"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_has_the_security_headers_and_chat_pages_are_not_cached() {
    let w = start(&[("ESRBOT_WEB_COOKIE_SECURE", "true")]).await;
    let mut b = w.browser();
    for path in ["/", "/forget", "/no-such-page"] {
        let p = b.get(path).await;
        let h = &p.headers;
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(
            csp.contains("frame-ancestors https://intranet.example.nhs.uk"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["strict-transport-security"], "max-age=31536000", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(!p.body.contains("<script>"), "{path}: no inline script");
    }
    assert_eq!(b.get("/no-such-page").await.status, StatusCode::NOT_FOUND);
    // The identity cookie.
    let mut fresh = w.browser();
    let p = fresh.get("/").await;
    let cookie = p.headers[SET_COOKIE].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    // The script is a file of our own, served as script.
    let js = b.get("/static/chat.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(
        js.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    w.stop().await;
    // Over plain HTTP (a loopback test set-up) there is no HSTS and the cookie is not Secure.
    let w = start(&[]).await;
    let p = w.browser().get("/").await;
    assert!(p.headers.get("strict-transport-security").is_none());
    assert!(!p.headers[SET_COOKIE].to_str().unwrap().contains("Secure"));
    assert!(
        p.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors https://intranet.example.nhs.uk")
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_and_headers_are_refused() {
    let w = start(&[]).await;
    let mut b = w.browser();
    let csrf = b.get("/").await.csrf();
    let huge = "a".repeat(40_000);
    // The server answers 413 without reading the rest of the upload, so the connection may be
    // reset while the client is still sending (seen once under load): that is refused too, and
    // the request is tried again until an answer comes back. Every answer must be a 413.
    let mut refused = None;
    for _ in 0..5 {
        let sent = b
            .http
            .post(format!("{}/send", w.base))
            .header("cookie", b.cookie.clone().unwrap_or_default())
            .form(&[("csrf", csrf.as_str()), ("message", huge.as_str())])
            .send()
            .await;
        if let Ok(r) = sent {
            let closes = r
                .headers()
                .get("connection")
                .map(|v| v.to_str().unwrap_or("").to_string());
            refused = Some((r.status(), closes));
            break;
        }
    }
    // The answer also closes the connection, so the next request (below, on the same client's
    // pool) is not written into a socket the server has stopped reading.
    assert_eq!(
        refused,
        Some((StatusCode::PAYLOAD_TOO_LARGE, Some("close".to_string())))
    );
    // Just under the limit, a long message gets the bot's own answer, not an error.
    let long = "a".repeat(5_000);
    let page = {
        let r = b
            .post("/send", &[("csrf", &csrf), ("message", &long)])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        b.get("/").await
    };
    assert!(page.body.contains("too long for me"), "{}", page.body);
    let r = w
        .browser()
        .http
        .get(format!("{}/", w.base))
        .header("x-padding", "b".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forget_me_asks_first_then_erases_everything_and_the_cookie() {
    let w = start(&[]).await;
    let mut b = w.browser();
    b.say("I'm locked out of ESR").await;
    let who: esrbot::core::records::Recipient = format!(
        "web:{}",
        b.cookie
            .as_ref()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .split_once('.')
            .unwrap()
            .0
    )
    .as_str()
    .into();
    assert!(!w.bot.store.user(&who).unwrap().is_empty());
    let confirm = b.get("/forget").await;
    assert!(confirm.body.contains("Are you sure?"), "{}", confirm.body);
    assert!(
        !w.bot.store.user(&who).unwrap().is_empty(),
        "asking erased nothing"
    );
    let done = b.post("/forget", &[("csrf", &confirm.csrf())]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(
        done.headers[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(b.cookie.is_none());
    assert!(w.bot.store.user(&who).unwrap().is_empty());
    assert!(w.bot.store.web_inbox(&who, 0, 100).unwrap().is_empty());
    let after = b.get("/?forgotten=1").await;
    assert!(after.body.contains("has been erased"), "{}", after.body);
    assert!(!after.body.contains("12 hours"));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_message_text_reaches_the_database_file() {
    let w = start(&[]).await;
    let mut b = w.browser();
    let words = "zebra ukulele marmalade";
    b.say(&format!("I'm locked out of ESR, {words}")).await;
    b.say(&format!("{words} quantum teapot")).await;
    // Every reply was committed (durably) before it was shown, so the file holds all there is.
    let bytes = std::fs::read(&w.db).unwrap();
    w.stop().await;
    for w in ["zebra", "ukulele", "marmalade", "teapot"] {
        assert!(
            !bytes.windows(w.len()).any(|x| x == w.as_bytes()),
            "{w} was written to the database"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lock_answer_offers_a_calendar_file_to_that_browser_only() {
    let w = start(&[]).await;
    let mut b = w.browser();
    let page = b.say("I'm locked out of ESR").await;
    let at = page.body.find("href=\"/files/").expect("a download link");
    let href = &page.body[at + 6..];
    let href = href[..href.find('"').unwrap()].to_string();
    let r = b.get(&href).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/calendar; charset=utf-8");
    let disposition = r.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(disposition.ends_with(".ics\""), "{disposition}");
    assert!(r.body.starts_with("BEGIN:VCALENDAR\r\n"), "{}", r.body);
    assert!(r.body.contains("BEGIN:VALARM"));
    assert_eq!(r.headers["cache-control"], "no-store");
    // Nobody else gets it by its address.
    let mut other = w.browser();
    other.get("/").await;
    assert_eq!(other.get(&href).await.status, StatusCode::NOT_FOUND);
    w.stop().await;
}

/// A support account made as `esrbot support add` makes it; returns its one-time password.
pub fn support_account(w: &WebBot, name: &str) -> String {
    w.bot
        .accounts()
        .add(name, w.clock.now())
        .expect("the account is added")
        .password
}

/// Signs in at `/support/login`; returns the page it leads to (after the redirect).
pub async fn sign_in(b: &mut Browser, name: &str, password: &str) -> Page {
    let r = b
        .post(
            "/support/login",
            &[("username", name), ("password", password)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let next = r.headers[LOCATION].to_str().unwrap().to_string();
    b.get(&next).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_support_route_denies_without_a_session() {
    let w = start(&[]).await;
    let mut b = w.browser();
    for path in [
        "/support",
        "/support/queue",
        "/support/escalations/ESC-00001",
        "/support/analytics",
        "/support/analytics.csv",
        "/support/declined",
        "/support/password",
    ] {
        let mut r = b.get(path).await;
        if path == "/support" {
            r = b.get(r.headers[LOCATION].to_str().unwrap()).await;
        }
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers[LOCATION], "/support/login", "{path}");
    }
    let r = b
        .post("/support/escalations/ESC-00001/resolve", &[("csrf", "x")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[LOCATION], "/support/login");
    // The live stream is an API: 401, not a redirect.
    assert_eq!(
        b.get("/support/events").await.status,
        StatusCode::UNAUTHORIZED
    );
    // A forged session cookie is no session.
    b.cookie = Some("esrbot_support=0123456789abcdef".into());
    assert_eq!(b.get("/support/queue").await.status, StatusCode::SEE_OTHER);
    let login = b.get("/support/login").await;
    for label in [
        ">Username</label>",
        ">Password</label>",
        ">Sign in</button>",
    ] {
        assert!(login.body.contains(label), "{label}: {}", login.body);
    }
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_are_rate_limited() {
    let w = start(&[]).await;
    let password = support_account(&w, "ann");
    let mut b = w.browser();
    for _ in 0..5 {
        let r = b
            .post(
                "/support/login",
                &[("username", "ann"), ("password", "not it at all")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(
            r.body.contains("username or password is not right"),
            "{}",
            r.body
        );
    }
    // Now even the right password is refused for a while, without being checked.
    let r = b
        .post(
            "/support/login",
            &[("username", "ann"), ("password", &password)],
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("Too many failed sign-ins"), "{}", r.body);
    assert!(b.cookie.is_none());
    w.clock.advance(chrono::Duration::minutes(16));
    let page = sign_in(&mut b, "ann", &password).await;
    assert!(page.body.contains("Choose a new password"), "{}", page.body);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_support_action_needs_its_csrf_token_and_is_recorded_under_the_signed_in_name() {
    let w = start(&[]).await;
    let mut staff = w.browser();
    let page = staff.say("can I talk to a real person please").await;
    assert!(page.body.contains("ESC-00001"), "{}", page.body);
    let password = support_account(&w, "ann");
    let mut b = w.browser();
    let first = sign_in(&mut b, "ann", &password).await;
    // The one-time password must be changed before anything else.
    assert_eq!(
        b.get("/support/queue").await.headers[LOCATION],
        "/support/password"
    );
    let r = b
        .post(
            "/support/password",
            &[
                ("csrf", &first.csrf()),
                ("new", "a long new passphrase"),
                ("again", "a long new passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let queue = b.get("/support/queue").await;
    assert!(queue.body.contains("ESC-00001"), "{}", queue.body);
    let detail = b.get("/support/escalations/ESC-00001").await;
    assert!(
        detail.body.contains(">Acknowledge</button>"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains(">Resolve</button>"));
    // Without the token nothing changes.
    let r = b
        .post(
            "/support/escalations/ESC-00001/resolve",
            &[("note", "done")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let e = w.bot.store.escalation("ESC-00001").unwrap().unwrap();
    assert_eq!(e.status, esrbot::core::records::EscalationStatus::Open);
    let r = b
        .post(
            "/support/escalations/ESC-00001/resolve",
            &[("csrf", &detail.csrf()), ("note", "called them back")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let e = w.bot.store.escalation("ESC-00001").unwrap().unwrap();
    assert_eq!(e.status, esrbot::core::records::EscalationStatus::Resolved);
    let last = e.history.last().unwrap();
    assert_eq!(last.by, "ann");
    assert_eq!(last.note.as_deref(), Some("called them back"));
    // The staff member's chat shows the resolution.
    let mut shown = staff.get("/").await;
    for _ in 0..100 {
        if shown.body.contains("called them back") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        shown = staff.get("/").await;
    }
    assert!(shown.body.contains("called them back"), "{}", shown.body);
    w.stop().await;
}
