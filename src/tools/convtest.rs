//! Conversation tests (`esrbot test`): each `.toml` file is one conversation run against the real
//! bot with a virtual clock and a fresh temporary database, checking replies, recognised intents,
//! reminders delivered while time passes, and escalations.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;

use crate::config::Config;
use crate::core::engine::Engine;
use crate::core::records::{Choice, Recipient, Reminder};
use crate::service::{Routing, Service};
use crate::store::Store;
use crate::transports::chat;
use crate::understanding::intents::{FileProblem, parse_toml};
use crate::understanding::timeexpr::parse_duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Conversation {
    name: Option<String>,
    start: DateTime<Utc>,
    user: Option<String>,
    #[serde(default)]
    turn: Vec<Turn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    wait: Option<String>,
    say: Option<String>,
    intent: Option<String>,
    #[serde(default)]
    expect: Vec<String>,
    #[serde(default)]
    reject: Vec<String>,
    #[serde(default)]
    notify: Vec<String>,
    #[serde(default)]
    silent: bool,
    escalation: Option<String>,
}

/// The years a conversation's clock may show. The bot's time arithmetic (a lock's end, a link's
/// expiry, a purge days later) is only meaningful on a real calendar, and near the end of chrono's
/// range (year 262142) adding hours to "now" would overflow; so a `start` or a `wait` outside these
/// years is a mistake in the test file, reported as such.
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// The result of one file.
#[derive(Debug)]
pub struct Outcome {
    pub file: PathBuf,
    pub name: String,
    pub failures: Vec<String>,
}

/// Every `.toml` file under the given files and folders, sorted.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir)? {
                    let path = e?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|x| x == "toml") {
                        out.push(path);
                    }
                }
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or folder", p.display());
        }
    }
    out.sort();
    Ok(out)
}

/// Runs one conversation file with a shared, already trained engine.
pub fn run_file(engine: &Arc<Engine>, config: &Config, file: &Path) -> Outcome {
    let mut outcome = Outcome {
        file: file.to_path_buf(),
        name: file.display().to_string(),
        failures: Vec::new(),
    };
    let conv: Conversation = match std::fs::read_to_string(file)
        .map_err(|e| FileProblem::new(file, 0, format!("cannot read: {e}")))
        .and_then(|text| parse_toml(file, &text))
    {
        Ok(c) => c,
        Err(p) => {
            outcome.failures.push(p.to_string());
            return outcome;
        }
    };
    if let Some(name) = &conv.name {
        outcome.name = format!("{} ({})", name, file.display());
    }
    if let Err(e) = run_conversation(engine, config, &conv, &mut outcome.failures) {
        outcome.failures.push(format!("error: {e:#}"));
    }
    outcome
}

fn run_conversation(
    engine: &Arc<Engine>,
    _config: &Config,
    conv: &Conversation,
    failures: &mut Vec<String>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bot = Service::new(
        engine.clone(),
        Store::open(&dir.path().join("conversation.redb"))?,
        Routing::default(),
    );
    let user = Recipient::new("test", conv.user.as_deref().unwrap_or("staff"));
    let lane = bot.lane(&user);
    if !YEARS.contains(&conv.start.year()) {
        failures.push(format!(
            "start = {:?} is outside the years {} to {} a conversation may use",
            conv.start.to_rfc3339(),
            YEARS.start(),
            YEARS.end()
        ));
        return Ok(());
    }
    let mut now = conv.start;
    // The choices offered by the last reply: a turn may answer them by number, as in the terminal.
    let mut choices: Vec<Choice> = Vec::new();
    for (i, turn) in conv.turn.iter().enumerate() {
        let at = format!("turn {}", i + 1);
        let mut sent: Vec<Reminder> = Vec::new();
        if let Some(w) = &turn.wait {
            let d = parse_duration(w).map_err(|e| anyhow::anyhow!("{at}: wait = {w:?}: {e}"))?;
            let Some(target) = now
                .checked_add_signed(d)
                .filter(|t| YEARS.contains(&t.year()))
            else {
                failures.push(format!(
                    "{at}: wait = {w:?} takes the clock past the year {}",
                    YEARS.end()
                ));
                return Ok(());
            };
            // Deliver reminders at the moment each falls due, in order, as the dispatcher would.
            while let Some(due) = bot.store.next_job_due(&lane)?.filter(|t| *t <= target) {
                now = due.max(now);
                sent.extend(bot.deliver_due_in(&lane, now, usize::MAX)?);
            }
            now = target;
        }
        let said: Vec<&str> = sent.iter().map(|n| n.text.as_str()).collect();
        if turn.silent && !sent.is_empty() {
            failures.push(format!(
                "{at}: expected no notification during the wait; got:\n{}",
                quote(&said.join("\n---\n"))
            ));
        }
        if !turn.notify.is_empty() {
            let ok = sent
                .iter()
                .any(|n| turn.notify.iter().all(|want| contains(&n.text, want)));
            if !ok {
                failures.push(format!(
                    "{at}: expected a notification containing {:?}; got {}",
                    turn.notify,
                    if said.is_empty() {
                        "none".to_string()
                    } else {
                        format!(":\n{}", quote(&said.join("\n---\n")))
                    }
                ));
            }
        }
        let Some(say) = &turn.say else {
            if turn.intent.is_some() || !turn.expect.is_empty() || turn.escalation.is_some() {
                failures.push(format!("{at}: intent/expect/escalation need a `say`"));
            }
            continue;
        };
        let before = bot.store.escalations()?.len();
        let reply = bot.handle(&user, Some("Test User"), &chat::pick(&choices, say), now)?;
        choices = reply.choices.clone();
        // Replies are checked as the terminal shows them, choices included.
        let shown = chat::render(&reply.message());
        if let Some(want) = &turn.intent {
            let got = reply
                .intent
                .as_deref()
                .unwrap_or("(none: the bot asked which was meant)");
            if got != want {
                failures.push(format!(
                    "{at}: said {say:?}: expected intent {want}, got {got}\n  reply:\n{}",
                    quote(&shown)
                ));
            }
        }
        for want in &turn.expect {
            if !contains(&shown, want) {
                failures.push(format!(
                    "{at}: said {say:?}: expected the reply to contain {want:?}; the bot said:\n{}",
                    quote(&shown)
                ));
            }
        }
        for bad in &turn.reject {
            if contains(&shown, bad) {
                failures.push(format!(
                    "{at}: said {say:?}: the reply must not contain {bad:?}; the bot said:\n{}",
                    quote(&shown)
                ));
            }
        }
        if let Some(kind) = &turn.escalation {
            let all = bot.store.escalations()?;
            let made = all.get(before..).unwrap_or_default();
            if !made.iter().any(|e| e.kind.as_str() == kind) {
                let got: Vec<&str> = made.iter().map(|e| e.kind.as_str()).collect();
                failures.push(format!(
                    "{at}: said {say:?}: expected a {kind} escalation; got {got:?}"
                ));
            }
        }
    }
    Ok(())
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn quote(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
