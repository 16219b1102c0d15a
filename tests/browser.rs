//! The web chat in a real browser: headless Chromium driven over WebDriver (chromedriver and
//! fantoccini), against the server in-process on 127.0.0.1 with a test clock. One browser session
//! runs every step, so the suite pays for starting Chromium once. Screenshots of the steps are
//! saved to `tests/screenshots/` for the README. Without Chromium this fails and says how to
//! install it (`.ci/run` does); it is never skipped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::root;
use super::support::process::free_port;
use super::web::start;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page may take to show something.
const WAIT: Duration = Duration::from_secs(15);

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser() -> (Driver, Client) {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: the browser tests need Debian's chromium and chromium-driver \
             (`sudo apt-get install -y chromium chromium-driver`; .ci/run installs them)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=900,900",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
        }),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "chromedriver did not start a Chromium session: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    (driver, client)
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    let dir = root().join("tests/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Waits for an element of the conversation whose text contains `text`.
async fn shows(c: &Client, text: &str) {
    let xpath = format!("//ol[@id='conversation']/li[contains(., \"{text}\")]");
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("the page never showed {text:?}: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_chat_in_a_real_browser() {
    let w = start(&[]).await;
    let (_driver, c) = browser().await;
    c.goto(&format!("{}/", w.base)).await.unwrap();
    // The controls are labelled as the issue says, and work from the keyboard: the box is
    // focused by its label and Enter sends.
    let label = c.find(Locator::Css("label[for='message']")).await.unwrap();
    assert_eq!(label.text().await.unwrap(), "Message");
    label.click().await.unwrap();
    let box_ = c.active_element().await.unwrap();
    assert_eq!(box_.attr("id").await.unwrap().as_deref(), Some("message"));
    c.find(Locator::XPath("//button[normalize-space()='Send']"))
        .await
        .expect("a Send button");
    c.find(Locator::XPath("//button[normalize-space()='Forget me']"))
        .await
        .expect("a Forget me button");
    // Marks this page so a reload would be noticed.
    c.execute("window.esrbotNoReload = true;", vec![]).await.unwrap();
    box_.send_keys("I'm locked out of ESR\u{E007}").await.unwrap();
    shows(&c, "12 hours").await;
    let end = (w.clock.now() + chrono::Duration::hours(12))
        .with_timezone(&chrono_tz::Europe::London)
        .format("%H:%M")
        .to_string();
    shows(&c, &end).await;
    // The person's words are on the page (shown by the script), not from the server.
    shows(&c, "I'm locked out of ESR").await;
    screenshot(&c, "chat").await;
    // The lock ends on the test clock: the notice arrives live, without a reload.
    w.clock
        .advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
    w.bot.nudge();
    shows(&c, "lock is over").await;
    let same_page = c
        .execute("return window.esrbotNoReload === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same_page, json!(true), "the reply came without a reload");
    screenshot(&c, "live-reminder").await;
    // A choice is a button that sends it.
    let input = c.find(Locator::Id("message")).await.unwrap();
    input.send_keys("I can't log in\u{E007}").await.unwrap();
    let choice = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#conversation .choices button"))
        .await
        .expect("the choices are buttons");
    let label = choice.text().await.unwrap();
    choice.click().await.unwrap();
    shows(&c, &label).await;
    c.close().await.unwrap();
    w.stop().await;
}
