//! The terminal transport: `esrbot chat`. Reads lines from standard input, prints the bot's
//! replies, and prints reminders and escalation updates as they fall due while the conversation
//! runs. When e-mail is configured it also runs the outbox sender.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc, watch};

use crate::bot::Bot;
use crate::config::Config;
use crate::dispatch::{self, Clock, SystemClock};
use crate::mail::{Mailer, Settings};
use crate::outbox::{self, Sender};
use crate::state::{Audience, SUPPORT_TEAM};

/// How terminal users' keys start in the database.
const CHAT_PREFIX: &str = "chat:";

pub async fn run(bot: Arc<Bot>, config: &Config, user: String) -> anyhow::Result<()> {
    let user_id = format!("{CHAT_PREFIX}{user}");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let wake = Arc::new(Notify::new());
    let mail_wake = Arc::new(Notify::new());
    let (tx, mut rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let poll = Duration::from_secs(config.mail.poll_seconds.into());
    let dispatcher = tokio::spawn(dispatch::run(
        bot.clone(),
        clock.clone(),
        tx,
        wake.clone(),
        poll,
        Audience::Prefix {
            prefix: CHAT_PREFIX,
            support_team: config.discord.support_channel().is_none(),
        },
        stopped(stop_rx.clone()),
    ));
    let sender = start_mail(
        config,
        &bot,
        &clock,
        &mail_wake,
        &wake,
        stopped(stop_rx.clone()),
    )?;

    println!(
        "esrbot: help getting back into ESR. Type your question (\"quit\" or Ctrl-D to leave)."
    );
    prompt();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                if matches!(line.trim(), "quit" | "exit" | "/quit") {
                    break;
                }
                let b = bot.clone();
                let (u, name, now) = (user_id.clone(), user.clone(), clock.now());
                let reply = tokio::task::spawn_blocking(move || b.handle(&u, Some(&name), &line, now)).await?;
                match reply {
                    Ok(r) => println!("{}", indent(&r.text)),
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "handling a message failed");
                        println!("{}", indent(bot.engine.content().message("error")));
                    }
                }
                wake.notify_one();
                mail_wake.notify_one();
                prompt();
            }
            Some(n) = rx.recv() => {
                let who = if n.user == user_id {
                    "reminder".to_string()
                } else if n.user == SUPPORT_TEAM {
                    "support team".to_string()
                } else {
                    format!("for {}", n.user)
                };
                println!("\n[{who}] {}", n.text);
                prompt();
            }
        }
    }
    let _ = stop_tx.send(true);
    dispatcher.await??;
    if let Some(s) = sender {
        s.await??;
    }
    Ok(())
}

/// Starts the e-mail sender when `[mail]` is configured. `wake` wakes the sender when new mail
/// may be queued; `delivered` is notified after each outcome (which may have scheduled a notice).
pub fn start_mail(
    config: &Config,
    bot: &Arc<Bot>,
    clock: &Arc<dyn Clock>,
    wake: &Arc<Notify>,
    delivered: &Arc<Notify>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    if config.mail.host.is_empty() {
        tracing::warn!("mail.host is not set: e-mail changes stay queued until it is");
        return Ok(None);
    }
    let settings = Settings::from_config(config, std::env::var("ESRBOT_SMTP_PASSWORD").ok())?;
    let mailer = Mailer::new(&settings).map_err(anyhow::Error::msg)?;
    Ok(Some(tokio::spawn(outbox::run(
        bot.clone(),
        Sender::from_config(config, mailer),
        clock.clone(),
        wake.clone(),
        delivered.clone(),
        shutdown,
    ))))
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn prompt() {
    print!("> ");
    let _ = std::io::stdout().flush();
}
