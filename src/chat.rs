//! The terminal transport: `esrbot chat`. Reads lines from standard input, prints the bot's
//! replies, and prints reminders as they fall due while the conversation runs.

use std::io::Write;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc};

use crate::bot::Bot;
use crate::dispatch::{self, Clock, SystemClock};

pub async fn run(bot: Arc<Bot>, user: String) -> anyhow::Result<()> {
    let user_id = format!("chat:{user}");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let wake = Arc::new(Notify::new());
    let (tx, mut rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = tokio::spawn(dispatch::run(
        bot.clone(),
        clock.clone(),
        tx,
        wake.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));

    println!(
        "esrbot: help getting back into ESR. Type your question (\"quit\" or Ctrl-D to leave)."
    );
    prompt();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let trimmed = line.trim();
                if matches!(trimmed, "quit" | "exit" | "/quit") {
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
                prompt();
            }
            Some(n) = rx.recv() => {
                let who = if n.user == user_id { String::new() } else { format!(" for {}", n.user) };
                println!("\n[reminder{who}] {}", n.text);
                prompt();
            }
        }
    }
    let _ = stop_tx.send(());
    dispatcher.await??;
    Ok(())
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
