//! The web chat in a real browser: headless Chromium driven over WebDriver (chromedriver and
//! fantoccini), against the server in-process on 127.0.0.1 with a test clock. One browser session
//! runs every step, so the suite pays for starting Chromium once. Screenshots of the steps are
//! saved to `tests/screenshots/` for the README. Without Chromium this fails and says how to
//! install it (`.ci/run` does); it is never skipped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use esrbot::clock::Clock;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::root;
use super::support::process::free_port;
use super::web::{start, support_account};

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

/// Types `text` into the control labelled `label`.
async fn fill(c: &Client, label: &str, text: &str) {
    let xpath = format!("//label[normalize-space()='{label}']");
    let l = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no control labelled {label:?}: {e}"));
    let id = l
        .attr("for")
        .await
        .unwrap()
        .expect("the label names its control");
    c.find(Locator::Id(&id))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// Presses the button reading `text`.
async fn press(c: &Client, text: &str) {
    let xpath = format!("//button[normalize-space()='{text}']");
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no button {text:?}: {e}"))
        .click()
        .await
        .unwrap();
}

/// An iCalendar file as RFC 5545 lays it out: CRLF lines, each (unfolded) a `NAME:value` or
/// `NAME;params:value`, BEGIN/END nested properly, one VEVENT with a VALARM and a UTC start.
fn check_ics(text: &str) {
    assert!(text.ends_with("\r\n"), "CRLF line ends: {text:?}");
    let unfolded = text.replace("\r\n ", "").replace("\r\n\t", "");
    let mut open: Vec<&str> = Vec::new();
    let mut start = None;
    for line in unfolded.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not a property: {line:?}"));
        let name = name.split(';').next().unwrap();
        match name {
            "BEGIN" => open.push(value),
            "END" => assert_eq!(open.pop(), Some(value), "END:{value} closes what was open"),
            "DTSTART" if open.last() == Some(&"VEVENT") => start = Some(value.to_string()),
            _ => {}
        }
        assert!(line.len() > name.len(), "{line:?}");
    }
    assert!(open.is_empty(), "left open: {open:?}");
    assert!(
        unfolded.contains("BEGIN:VEVENT") && unfolded.contains("BEGIN:VALARM"),
        "{text}"
    );
    let start = start.expect("the event has a start");
    assert!(
        chrono::NaiveDateTime::parse_from_str(&start, "%Y%m%dT%H%M%SZ").is_ok(),
        "a UTC start: {start}"
    );
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
    c.execute("window.esrbotNoReload = true;", vec![])
        .await
        .unwrap();
    box_.send_keys("I'm locked out of ESR\u{E007}")
        .await
        .unwrap();
    shows(&c, "12 hours").await;
    let end = (w.clock.now() + chrono::Duration::hours(12))
        .with_timezone(&chrono_tz::Europe::London)
        .format("%H:%M")
        .to_string();
    shows(&c, &end).await;
    // The person's words are on the page (shown by the script), not from the server.
    shows(&c, "I'm locked out of ESR").await;
    screenshot(&c, "chat").await;
    // The lock's end as a calendar file: the link downloads an .ics that parses.
    let ics = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const a = document.querySelector('#conversation .attachment a');
             fetch(a.href).then(r => r.text()).then(done, e => done('failed: ' + e));",
            vec![],
        )
        .await
        .unwrap();
    check_ics(ics.as_str().expect("the file's text"));
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
    // A hand-over raised from the chat, resolved by a support account in the same browser.
    let input = c.find(Locator::Id("message")).await.unwrap();
    input
        .send_keys("can I talk to a real person please\u{E007}")
        .await
        .unwrap();
    shows(&c, "ESC-00001").await;
    let password = support_account(&w, "ann");
    c.goto(&format!("{}/support/login", w.base)).await.unwrap();
    fill(&c, "Username", "ann").await;
    fill(&c, "Password", &password).await;
    press(&c, "Sign in").await;
    // The first sign-in asks for a new password.
    fill(&c, "New password", "a long new passphrase").await;
    fill(&c, "New password again", "a long new passphrase").await;
    press(&c, "Change password").await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::LinkText("ESC-00001"))
        .await
        .expect("the queue lists the escalation")
        .click()
        .await
        .unwrap();
    fill(
        &c,
        "Note for the staff member (optional)",
        "We have called you back",
    )
    .await;
    screenshot(&c, "support-escalation").await;
    press(&c, "Resolve").await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(
            "//dd[@id='status' and normalize-space()='resolved']",
        ))
        .await
        .expect("the escalation shows resolved");
    c.goto(&format!("{}/support/queue", w.base)).await.unwrap();
    screenshot(&c, "support-queue").await;
    c.goto(&format!("{}/", w.base)).await.unwrap();
    shows(&c, "We have called you back").await;
    // The analytics page has its charts, drawn as SVG, with the numbers beside them.
    c.goto(&format!("{}/support/analytics", w.base))
        .await
        .unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#containment svg"))
        .await
        .expect("the containment chart");
    let figure = c
        .find(Locator::Css("#containment"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        figure.contains("conversations") && !figure.contains(" of 0 conversations"),
        "{figure}"
    );
    screenshot(&c, "support-analytics").await;
    c.close().await.unwrap();
    w.stop().await;
}
