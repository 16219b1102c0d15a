//! The terminal transport: `esrbot chat`. Reads lines from standard input, prints the bot's
//! replies with their choices as numbered options, and prints this user's reminders and notices
//! (and the support team's, when the terminal is where the support team works) as they fall due.
//! Each session delivers only its own lane: another person's terminal never prints or uses up
//! this person's notices. When e-mail is configured it also runs the mail sender.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::core::calendar;
use crate::core::records::{Choice, Message, Outgoing, Recipient};
use crate::service::outbox::{self, Deliver, Handed, Refused};
use crate::service::tasks::Tasks;
use crate::service::{SUPPORT_LANE, Service, jobs};
use crate::transports::TransportSpec;
use crate::understanding::text::{Breaks, for_display};

/// The terminal as the registry sees it: a lane per session, and the support team's home when no
/// other transport is.
pub const SPEC: TransportSpec = TransportSpec {
    channel: "chat",
    per_recipient_lanes: true,
    hosts_support: |_| true,
    shows_cards: false,
    messages: &["chat_welcome", "chat_reminder", "chat_support_team"],
};

/// A message as the terminal shows it: the text, then each choice as a numbered option and each
/// attachment by name. Conversation tests check replies in this form.
pub fn render(m: &Message) -> String {
    let mut out = m.text.clone();
    for (n, c) in m.choices.iter().enumerate() {
        out.push_str(&format!("\n{}. {}", n + 1, c.label));
    }
    for a in &m.attachments {
        if a.media_type == calendar::MEDIA_TYPE {
            out.push_str(&format!("\n[add to calendar: {}]", a.name));
        } else {
            out.push_str(&format!(
                "\n[attachment: {} ({} bytes)]",
                a.name,
                a.body.len()
            ));
        }
    }
    out
}

/// What a line typed after a message with choices stands for: the chosen option's message when
/// the line is its number or its label, else the line itself.
pub fn pick(choices: &[Choice], line: &str) -> String {
    let typed = line.trim().trim_end_matches(['.', ')']);
    let chosen = typed
        .parse::<usize>()
        .ok()
        .and_then(|n| choices.get(n.checked_sub(1)?))
        .or_else(|| choices.iter().find(|c| c.label.eq_ignore_ascii_case(typed)));
    chosen
        .and_then(|c| Choice::message(&c.id))
        .map_or_else(|| line.to_string(), str::to_string)
}

/// Hands the outbox's entries to the printing loop and waits until they are printed.
struct Printer {
    tx: mpsc::Sender<(Recipient, Message, oneshot::Sender<()>)>,
}

impl Deliver for Printer {
    async fn deliver(
        &self,
        svc: &Arc<Service>,
        _id: u64,
        entry: &Outgoing,
    ) -> Result<Handed, Refused> {
        // Cards and e-mail are not for the terminal: nothing to print.
        let Some(message) = svc.message_of(entry) else {
            return Ok(Handed::default());
        };
        let (done, printed) = oneshot::channel();
        self.tx
            .send((entry.to.clone(), message, done))
            .await
            .map_err(|_| Refused::transient("the terminal is closing"))?;
        printed
            .await
            .map_err(|_| Refused::transient("the terminal closed before printing"))?;
        Ok(Handed::default())
    }
}

pub async fn run(svc: Arc<Service>, config: &Config, user: String) -> anyhow::Result<()> {
    let me = Recipient::new(SPEC.channel, &user);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = svc.engine();
    let content = engine.content();
    let mut lanes = vec![svc.lane(&me)];
    if crate::transports::claims_support(&SPEC, config) {
        lanes.push(SUPPORT_LANE.to_string());
    }
    let mut tasks = Tasks::new();
    tasks.spawn(
        "the job dispatcher",
        jobs::run(
            svc.clone(),
            clock.clone(),
            lanes.clone(),
            Duration::from_secs(config.reminders.poll_seconds.into()),
            tasks.stopped(),
        ),
    );
    let (tx, mut rx) = mpsc::channel(16);
    tasks.spawn(
        "the message sender",
        outbox::run(
            svc.clone(),
            clock.clone(),
            config.outbox.runner(lanes),
            Printer { tx },
            tasks.stopped(),
        ),
    );
    if let Some(mail) = crate::transports::mail::sender(config, &svc, &clock, tasks.stopped())? {
        tasks.spawn("the mail sender", mail);
    }
    tasks.spawn(
        "the analytics flush",
        crate::service::analytics::run(svc.clone(), clock.clone(), tasks.stopped()),
    );

    println!("{}", content.message("chat_welcome"));
    prompt();
    let mut input = BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    let mut choices: Vec<Choice> = Vec::new();
    loop {
        line.clear();
        tokio::select! {
            read = input.read_until(b'\n', &mut line) => {
                if read? == 0 {
                    break;
                }
                // A line that is not valid UTF-8 is read as best it can be, never the end.
                let typed = String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_string();
                if matches!(typed.trim(), "quit" | "exit" | "/quit") {
                    break;
                }
                let text = pick(&choices, &typed);
                let s = svc.clone();
                let (who, name, now) = (me.clone(), user.clone(), clock.now());
                let reply = tokio::task::spawn_blocking(move || s.handle(&who, Some(&name), &text, now)).await?;
                match reply {
                    Ok(r) => {
                        println!("{}", indent(&shown(&r.message())));
                        for saved in save_attachments(&r.message(), &user) {
                            println!("{}", indent(&saved));
                        }
                        choices = r.choices;
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "handling a message failed");
                        println!("{}", indent(content.message("error")));
                        choices.clear();
                    }
                }
                prompt();
            }
            // A background task that fails ends the session with its error: reminders that can no
            // longer be delivered must not be promised.
            e = tasks.failure() => return Err(e),
            Some((to, message, printed)) = rx.recv() => {
                let tag = if to.is_support_team() {
                    content.message("chat_support_team")
                } else {
                    content.message("chat_reminder")
                };
                println!("\n{tag} {}", shown(&message));
                let _ = printed.send(());
                prompt();
            }
        }
    }
    tasks.stop().await
}

/// A message as it is printed: [`render`]ed, with anything someone typed that made it into it (a
/// name, an address, a support team's note) unable to move the cursor, clear the screen or
/// reorder the line. Its own line breaks stay.
fn shown(m: &Message) -> String {
    for_display(&render(m), Breaks::Keep)
}

/// Saves a message's files (an "add to calendar" file) where the person can open them, in a
/// folder of their own under the system's temporary directory, and says where each went.
fn save_attachments(m: &Message, user: &str) -> Vec<String> {
    if m.attachments.is_empty() {
        return Vec::new();
    }
    // Only letters, digits and dashes from the user name reach the path.
    let safe: String = user
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let dir = std::env::temp_dir().join(format!("esrbot-{safe}"));
    m.attachments
        .iter()
        .map(|a| {
            let path = dir.join(&a.name);
            match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &a.body)) {
                Ok(()) => format!(
                    "(saved {} to {}: open it to add it to your calendar)",
                    a.name,
                    path.display()
                ),
                Err(e) => format!("(could not save {} to {}: {e})", a.name, path.display()),
            }
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::records::ChoiceStyle;

    #[test]
    fn choices_show_as_numbered_options_and_are_picked_by_number_or_label() {
        let m = Message {
            text: "Which?".into(),
            choices: vec![
                Choice::say("Reset link expired", "1", ChoiceStyle::Secondary),
                Choice::say(
                    "I've requested a reset",
                    "I have just requested a password reset",
                    ChoiceStyle::Primary,
                ),
            ],
            attachments: Vec::new(),
        };
        assert_eq!(
            render(&m),
            "Which?\n1. Reset link expired\n2. I've requested a reset"
        );
        assert_eq!(
            pick(&m.choices, "2"),
            "I have just requested a password reset"
        );
        assert_eq!(
            pick(&m.choices, " i've requested a RESET "),
            "I have just requested a password reset"
        );
        assert_eq!(pick(&m.choices, "1."), "1");
        assert_eq!(pick(&m.choices, "9"), "9");
        assert_eq!(pick(&[], "hello"), "hello");
    }
}
