//! The Discord transport (`esrbot discord`): the only module that imports serenity. Staff talk to
//! the same engine as in the terminal, in DMs, by mentioning the bot, or in listed channels;
//! anything personal is answered in a DM or an ephemeral reply. Replies, reminders and
//! support-channel posts go through the durable chat outbox, written in the same transaction as
//! the decision, and a sender task delivers them with retries; interaction responses, which
//! Discord wants within three seconds, are sent directly. Event ids are recorded so that an event
//! delivered twice is handled once.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration as StdDuration;

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use serenity::all::{
    ButtonStyle as DiscordStyle, ChannelId, ClientBuilder, Command, CommandDataOption,
    CommandDataOptionValue, CommandInteraction, CommandOptionType, ComponentInteraction, Context,
    CreateActionRow, CreateButton, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseMessage, CreateMessage, EditMessage, EventHandler, GatewayIntents,
    GuildId, Http, HttpBuilder, Interaction, Message, MessageId, Ready, UserId,
};
use serenity::async_trait;
use tokio::sync::Notify;

use crate::bot::{Bot, Notification};
use crate::config::{Config, DiscordSettings};
use crate::dispatch::{self, Clock};
use crate::engine::{Reply, button_message};
use crate::queue::{Action, RetryPolicy};
use crate::ratelimit::RateLimiter;
use crate::state::{
    Audience, Button, ButtonStyle, Escalation, EscalationStatus, OutboxEntry, Outgoing,
    SUPPORT_TEAM,
};
use crate::store::Txn;
use crate::text::split_message;

/// Discord's limit on a message's content, in characters.
const MAX_CONTENT: usize = 2000;
/// Attempts before an outgoing message is given up (and the support team told).
const MAX_SEND_ATTEMPTS: u32 = 10;
/// Discord's JSON error code for "Cannot send messages to this user" (DMs closed).
const DMS_CLOSED: isize = 50007;
const DEFAULT_API: &str = "https://discord.com";

/// The gateway intents the bot needs: messages in servers and DMs, and their content.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
}

/// How Discord users' keys start in the database.
const USER_PREFIX: &str = "discord:";

/// The user id the engine keeps state under for a Discord user.
pub fn user_key(id: UserId) -> String {
    format!("{USER_PREFIX}{id}")
}

fn discord_user(key: &str) -> Option<u64> {
    key.strip_prefix(USER_PREFIX)?.parse().ok()
}

/// Runs the bot until `shutdown` resolves.
pub async fn run(
    config: Config,
    bot: Arc<Bot>,
    token: String,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let settings = config.discord.clone();
    let mut http = HttpBuilder::new(&token);
    if settings.api_base.trim_end_matches('/') != DEFAULT_API {
        // Behind a proxy (a shared rate-limit proxy, or the tests' fake Discord): serenity's own
        // rate limiter does not know about the proxy, so the proxy is trusted to do that job.
        http = http
            .proxy(settings.api_base.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    if settings.application_id != 0 {
        http = http.application_id(settings.application_id.into());
    }
    let http = http.build();
    let wake_out = Arc::new(Notify::new());
    let wake_due = Arc::new(Notify::new());
    let handler = Handler {
        bot: bot.clone(),
        settings: settings.clone(),
        clock: clock.clone(),
        bot_id: OnceLock::new(),
        limiter: Mutex::new(RateLimiter::new(settings.rate_limit_per_minute)),
        wake_out: wake_out.clone(),
        wake_due: wake_due.clone(),
    };
    let mut client = ClientBuilder::new_with_http(http, intents())
        .event_handler(handler)
        .await
        .context("starting the Discord client")?;
    let http = client.http.clone();
    let shards = client.shard_manager.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let poll = StdDuration::from_secs(config.mail.poll_seconds.into());
    let sender = tokio::spawn(send_outbox(
        bot.clone(),
        http.clone(),
        settings.clone(),
        clock.clone(),
        wake_out.clone(),
        poll,
        stopped(stop_rx.clone()),
    ));
    let reminders = tokio::spawn(route_reminders(
        bot.clone(),
        clock.clone(),
        wake_due.clone(),
        wake_out.clone(),
        settings.support_channel(),
        poll,
        stopped(stop_rx.clone()),
    ));
    let mail_wake = Arc::new(Notify::new());
    let mail = crate::chat::start_mail(
        &config,
        &bot,
        &clock,
        &mail_wake,
        &wake_due,
        stopped(stop_rx.clone()),
    )?;
    let result = tokio::select! {
        r = client.start() => r.context("Discord connection"),
        () = shutdown => {
            shards.shutdown_all().await;
            Ok(())
        }
    };
    let _ = stop_tx.send(true);
    sender.await??;
    reminders.await??;
    if let Some(m) = mail {
        m.await??;
    }
    result
}

struct Handler {
    bot: Arc<Bot>,
    settings: DiscordSettings,
    clock: Arc<dyn Clock>,
    bot_id: OnceLock<UserId>,
    limiter: Mutex<RateLimiter>,
    wake_out: Arc<Notify>,
    wake_due: Arc<Notify>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let _ = self.bot_id.set(ready.user.id);
        ctx.http.set_application_id(ready.application.id);
        if let Err(e) = self.register_commands(&ctx).await {
            tracing::error!(error = %e, "could not register the slash commands");
        }
        tracing::info!(user = %ready.user.name, "connected to Discord");
    }

    async fn message(&self, ctx: Context, msg: Message) {
        if msg.author.bot {
            return;
        }
        if let Err(e) = self.on_message(&ctx, &msg).await {
            tracing::error!(error = %format!("{e:#}"), "handling a Discord message failed");
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let result = match &interaction {
            Interaction::Component(c) => self.on_button(&ctx, c).await,
            Interaction::Command(c) => self.on_command(&ctx, c).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(error = %format!("{e:#}"), "handling a Discord interaction failed");
        }
    }
}

/// Where a reply to a message goes.
#[derive(Clone, Copy)]
enum Place {
    Dm,
    Channel(u64),
}

impl Handler {
    async fn bot_id(&self, ctx: &Context) -> anyhow::Result<UserId> {
        if let Some(id) = self.bot_id.get() {
            return Ok(*id);
        }
        let me = ctx.http.get_current_user().await?;
        Ok(*self.bot_id.get_or_init(|| me.id))
    }

    async fn register_commands(&self, ctx: &Context) -> anyhow::Result<()> {
        let commands = vec![esr_command()];
        match self.settings.guild_id {
            Some(g) => {
                GuildId::new(g).set_commands(&ctx.http, commands).await?;
            }
            None => {
                Command::set_global_commands(&ctx.http, commands).await?;
            }
        }
        Ok(())
    }

    /// Runs a blocking store operation off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Arc<Bot>) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let bot = self.bot.clone();
        tokio::task::spawn_blocking(move || f(bot)).await?
    }

    async fn on_message(&self, ctx: &Context, msg: &Message) -> anyhow::Result<()> {
        let in_dm = msg.guild_id.is_none();
        let me = self.bot_id(ctx).await?;
        let mentioned = msg.mentions_user_id(me);
        let listened = self
            .settings
            .listen_channel_ids
            .contains(&msg.channel_id.get());
        if !in_dm && !mentioned && !listened {
            return Ok(());
        }
        let text = strip_mentions(&msg.content, me);
        let place = if in_dm {
            Place::Dm
        } else {
            Place::Channel(msg.channel_id.get())
        };
        let author = msg.author.id;
        let now = self.clock.now();
        if !self
            .limiter
            .lock()
            .map(|mut l| l.allow(&user_key(author), now))
            .unwrap_or(true)
        {
            msg.channel_id
                .say(&ctx.http, "You're sending messages faster than I can help. Please wait a minute and try again.")
                .await?;
            return Ok(());
        }
        let name = msg
            .author
            .global_name
            .clone()
            .unwrap_or_else(|| msg.author.name.clone());
        let event = format!("message:{}", msg.id);
        let reply = self
            .blocking(move |bot| {
                bot.handle_once(
                    &event,
                    &user_key(author),
                    Some(&name),
                    &text,
                    now,
                    |txn, reply| queue_reply(txn, reply, author.get(), place, now),
                )
            })
            .await?;
        let Some(reply) = reply else {
            tracing::info!(message = %msg.id, "duplicate message event ignored");
            return Ok(());
        };
        self.wake_out.notify_one();
        self.wake_due.notify_one();
        if reply.had_secret && !in_dm {
            // Take the secret out of the open channel if we are allowed to, and say why in a DM.
            let removed = msg.delete(&ctx.http).await.is_ok();
            let why = if removed {
                "I removed your message from the channel because it contained a password or a date of birth. Please never post those anywhere."
            } else {
                "Your message in the channel contained a password or a date of birth. I couldn't remove it: please delete it yourself."
            };
            self.blocking(move |bot| {
                bot.store.write(|txn| {
                    txn.send_later(
                        Outgoing::Dm {
                            user: author.get(),
                            text: why.into(),
                            buttons: Vec::new(),
                        },
                        now,
                    )
                })
            })
            .await?;
            self.wake_out.notify_one();
        }
        Ok(())
    }

    fn is_support(&self, roles: Option<&[serenity::all::RoleId]>) -> bool {
        // Deny by default: no member information (a DM, or it could not be read) means no.
        roles.is_some_and(|roles| {
            roles
                .iter()
                .any(|r| self.settings.support_role_ids.contains(&r.get()))
        })
    }

    async fn on_button(&self, ctx: &Context, c: &ComponentInteraction) -> anyhow::Result<()> {
        let id = c.data.custom_id.as_str();
        let now = self.clock.now();
        let user = c.user.id;
        if let Some(rest) = id.strip_prefix("esc:") {
            let (action, reference) = rest.split_once(':').unwrap_or((rest, ""));
            let action = match action {
                "ack" => Action::Acknowledge,
                "resolve" => Action::Resolve,
                "retry" => Action::Retry,
                _ => return Ok(()),
            };
            if !self.is_support(c.member.as_ref().map(|m| m.roles.as_slice())) {
                tracing::warn!(user = %user, button = id, "support action refused: not in a support role");
                return respond_ephemeral_component(ctx, c, "Only the support team can do that.")
                    .await;
            }
            let by = format!("{} (discord:{})", c.user.name, user);
            let reference = reference.to_string();
            let event = format!("interaction:{}", c.id);
            let outcome = self
                .blocking(move |bot| {
                    // The event id and the action commit together: a crash can neither
                    // lose the press nor apply it twice when Discord redelivers it.
                    bot.store.write(|txn| {
                        if !txn.first_sighting(&event, now)? {
                            return Ok(None);
                        }
                        bot.escalation_action_in(txn, &reference, action, &by, None, now)
                            .map(Some)
                    })
                })
                .await?;
            self.wake_out.notify_one();
            self.wake_due.notify_one();
            return match outcome {
                None => Ok(()),
                Some(Ok(e)) => {
                    let (content, buttons) = support_post(&e);
                    let msg = CreateInteractionResponseMessage::new()
                        .content(content)
                        .components(rows(&buttons));
                    c.create_response(&ctx.http, CreateInteractionResponse::UpdateMessage(msg))
                        .await?;
                    Ok(())
                }
                Some(Err(refusal)) => {
                    respond_ephemeral_component(ctx, c, &refusal.to_string()).await
                }
            };
        }
        if id == "forget:confirm" || id == "forget:cancel" {
            let text = if id == "forget:confirm" {
                let key = user_key(user);
                let n = self.blocking(move |bot| bot.forget(&key, now)).await?;
                format!(
                    "Done: everything I stored about you has been erased ({n} escalation(s) included)."
                )
            } else {
                "OK, nothing was erased.".to_string()
            };
            let msg = CreateInteractionResponseMessage::new()
                .content(text)
                .components(Vec::new());
            c.create_response(&ctx.http, CreateInteractionResponse::UpdateMessage(msg))
                .await?;
            return Ok(());
        }
        if let Some(message) = button_message(id) {
            let in_dm = c.guild_id.is_none();
            return self
                .answer_interaction(
                    ctx,
                    InteractionRef::Component(c),
                    user,
                    &c.user.name,
                    message,
                    in_dm,
                    now,
                )
                .await;
        }
        Ok(())
    }

    /// Handles `text` as the person's message and answers the interaction with the reply
    /// (ephemeral in a server, so personal answers never show in the channel).
    #[allow(clippy::too_many_arguments)]
    async fn answer_interaction(
        &self,
        ctx: &Context,
        it: InteractionRef<'_>,
        user: UserId,
        name: &str,
        text: &str,
        in_dm: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let event = format!("interaction:{}", it.id());
        let (name, text) = (name.to_string(), text.to_string());
        let reply = self
            .blocking(move |bot| {
                bot.handle_once(&event, &user_key(user), Some(&name), &text, now, |_, _| {
                    Ok(())
                })
            })
            .await?;
        self.wake_due.notify_one();
        let Some(reply) = reply else { return Ok(()) };
        let parts = split_message(&reply.text, MAX_CONTENT);
        let first = parts.first().cloned().unwrap_or_default();
        let mut msg = CreateInteractionResponseMessage::new()
            .content(first)
            .ephemeral(!in_dm);
        if parts.len() == 1 {
            msg = msg.components(rows(&reply.buttons));
        }
        it.respond(ctx, CreateInteractionResponse::Message(msg))
            .await?;
        // The rest of a long answer follows as ordinary messages through the outbox.
        if parts.len() > 1 {
            let rest = parts[1..].join("\n");
            let buttons = reply.buttons.clone();
            self.blocking(move |bot| {
                bot.store.write(|txn| {
                    txn.send_later(
                        Outgoing::Dm {
                            user: user.get(),
                            text: rest,
                            buttons,
                        },
                        now,
                    )
                })
            })
            .await?;
            self.wake_out.notify_one();
        }
        Ok(())
    }

    async fn on_command(&self, ctx: &Context, c: &CommandInteraction) -> anyhow::Result<()> {
        if c.data.name != "esr" {
            return Ok(());
        }
        let Some(sub) = c.data.options.first() else {
            return Ok(());
        };
        let now = self.clock.now();
        let user = c.user.id;
        let in_dm = c.guild_id.is_none();
        let it = InteractionRef::Command(c);
        match sub.name.as_str() {
            "ask" => {
                let text = string_option(sub, "text").unwrap_or_default();
                self.answer_interaction(ctx, it, user, &c.user.name, &text, in_dm, now)
                    .await
            }
            "status" => {
                let key = user_key(user);
                let text = self
                    .blocking(move |bot| {
                        let state = bot.store.user(&key)?;
                        Ok(bot.engine.status(&state, now))
                    })
                    .await?;
                it.respond(ctx, ephemeral(&text)).await
            }
            "reminders" => {
                let on = string_option(sub, "switch").is_some_and(|s| s == "on");
                let text = if on {
                    "start reminders"
                } else {
                    "stop reminders"
                };
                self.answer_interaction(ctx, it, user, &c.user.name, text, in_dm, now)
                    .await
            }
            "forget-me" => {
                let buttons = vec![
                    Button {
                        id: "forget:confirm".into(),
                        label: "Yes, erase everything".into(),
                        style: ButtonStyle::Danger,
                    },
                    Button {
                        id: "forget:cancel".into(),
                        label: "Cancel".into(),
                        style: ButtonStyle::Secondary,
                    },
                ];
                let msg = CreateInteractionResponseMessage::new()
                    .content("This erases your timers, reminders and any escalations I hold for you. Are you sure?")
                    .ephemeral(true)
                    .components(rows(&buttons));
                it.respond(ctx, CreateInteractionResponse::Message(msg))
                    .await
            }
            "escalations" => {
                if !self.is_support(c.member.as_ref().map(|m| m.roles.as_slice())) {
                    tracing::warn!(user = %user, "escalation list refused: not in a support role");
                    return it
                        .respond(
                            ctx,
                            ephemeral("Only the support team can list escalations."),
                        )
                        .await;
                }
                let status = string_option(sub, "status");
                let text = self
                    .blocking(move |bot| {
                        let wanted = status.as_deref().and_then(EscalationStatus::parse);
                        let lines: Vec<String> = bot
                            .store
                            .escalations()?
                            .iter()
                            .filter(|e| wanted.is_none_or(|w| e.status == w))
                            .map(|e| {
                                format!(
                                    "**{}** · {} · {} · {}",
                                    e.reference,
                                    e.kind.as_str(),
                                    e.status.as_str(),
                                    e.created_at.format("%Y-%m-%d %H:%M UTC")
                                )
                            })
                            .collect();
                        Ok(if lines.is_empty() {
                            "No escalations.".to_string()
                        } else {
                            lines.join("\n")
                        })
                    })
                    .await?;
                let first = split_message(&text, MAX_CONTENT).remove(0);
                it.respond(ctx, ephemeral(&first)).await
            }
            _ => Ok(()),
        }
    }
}

/// A component or command interaction, answered the same way.
enum InteractionRef<'a> {
    Component(&'a ComponentInteraction),
    Command(&'a CommandInteraction),
}

impl InteractionRef<'_> {
    fn id(&self) -> u64 {
        match self {
            InteractionRef::Component(c) => c.id.get(),
            InteractionRef::Command(c) => c.id.get(),
        }
    }

    async fn respond(&self, ctx: &Context, r: CreateInteractionResponse) -> anyhow::Result<()> {
        match self {
            InteractionRef::Component(c) => c.create_response(&ctx.http, r).await?,
            InteractionRef::Command(c) => c.create_response(&ctx.http, r).await?,
        }
        Ok(())
    }
}

fn ephemeral(text: &str) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(text)
            .ephemeral(true),
    )
}

async fn respond_ephemeral_component(
    ctx: &Context,
    c: &ComponentInteraction,
    text: &str,
) -> anyhow::Result<()> {
    c.create_response(&ctx.http, ephemeral(text)).await?;
    Ok(())
}

fn string_option(sub: &CommandDataOption, name: &str) -> Option<String> {
    let CommandDataOptionValue::SubCommand(opts) = &sub.value else {
        return None;
    };
    opts.iter()
        .find(|o| o.name == name)
        .and_then(|o| o.value.as_str().map(str::to_string))
}

/// `/esr ask|status|reminders|forget-me|escalations`.
pub fn esr_command() -> CreateCommand {
    let sub = |name: &str, what: &str| {
        CreateCommandOption::new(CommandOptionType::SubCommand, name, what)
    };
    CreateCommand::new("esr")
        .description("Help getting back into ESR")
        .add_option(
            sub("ask", "Ask about ESR access").add_sub_option(
                CreateCommandOption::new(CommandOptionType::String, "text", "What's happening?")
                    .required(true),
            ),
        )
        .add_option(sub("status", "Your reset link and lockout times"))
        .add_option(
            sub("reminders", "Turn reminders on or off").add_sub_option(
                CreateCommandOption::new(CommandOptionType::String, "switch", "on or off")
                    .required(true)
                    .add_string_choice("on", "on")
                    .add_string_choice("off", "off"),
            ),
        )
        .add_option(sub("forget-me", "Erase everything stored about you"))
        .add_option(
            sub("escalations", "Support team: list escalations").add_sub_option(
                CreateCommandOption::new(CommandOptionType::String, "status", "Only this status")
                    .add_string_choice("open", "open")
                    .add_string_choice("sent", "sent")
                    .add_string_choice("acknowledged", "acknowledged")
                    .add_string_choice("resolved", "resolved")
                    .add_string_choice("failed", "failed"),
            ),
        )
}

/// Removes `<@id>` / `<@!id>` mentions of the bot from a message.
fn strip_mentions(content: &str, me: UserId) -> String {
    content
        .replace(&format!("<@{me}>"), " ")
        .replace(&format!("<@!{me}>"), " ")
        .trim()
        .to_string()
}

/// Queues the reply to a message: in a DM as it is; in a channel, personal answers go to the
/// person's DMs with a short pointer in the channel.
fn queue_reply(
    txn: &mut Txn,
    reply: &Reply,
    author: u64,
    place: Place,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let dm = |txn: &mut Txn| {
        txn.send_later(
            Outgoing::Dm {
                user: author,
                text: reply.text.clone(),
                buttons: reply.buttons.clone(),
            },
            now,
        )
    };
    match place {
        Place::Dm => dm(txn),
        Place::Channel(channel) if reply.personal || reply.had_secret => {
            dm(txn)?;
            txn.send_later(
                Outgoing::Post {
                    channel,
                    text: format!("<@{author}> I've sent you a DM."),
                    buttons: Vec::new(),
                },
                now,
            )
        }
        Place::Channel(channel) => txn.send_later(
            Outgoing::Post {
                channel,
                text: reply.text.clone(),
                buttons: reply.buttons.clone(),
            },
            now,
        ),
    }
}

fn rows(buttons: &[Button]) -> Vec<CreateActionRow> {
    if buttons.is_empty() {
        return Vec::new();
    }
    // Discord allows five buttons a row.
    buttons
        .chunks(5)
        .map(|chunk| {
            CreateActionRow::Buttons(
                chunk
                    .iter()
                    .map(|b| {
                        CreateButton::new(b.id.chars().take(100).collect::<String>())
                            .label(b.label.clone())
                            .style(match b.style {
                                ButtonStyle::Primary => DiscordStyle::Primary,
                                ButtonStyle::Secondary => DiscordStyle::Secondary,
                                ButtonStyle::Success => DiscordStyle::Success,
                                ButtonStyle::Danger => DiscordStyle::Danger,
                            })
                    })
                    .collect(),
            )
        })
        .collect()
}

/// How an escalation shows in the support channel: its state at a glance and the actions left.
pub fn support_post(e: &Escalation) -> (String, Vec<Button>) {
    let who = match (discord_user(&e.user), &e.display_name) {
        (Some(id), Some(n)) => format!("{n} (<@{id}>)"),
        (Some(id), None) => format!("<@{id}>"),
        (None, Some(n)) => format!("{n} ({})", e.user),
        (None, None) => e.user.clone(),
    };
    let mut text = format!(
        "**{}** · {} · status: **{}**\nStaff: {who}\nCreated: {} UTC",
        e.reference,
        e.kind.as_str(),
        e.status.as_str(),
        e.created_at.format("%Y-%m-%d %H:%M")
    );
    if let Some(a) = &e.new_address {
        text.push_str(&format!("\nNew address: {a}"));
    }
    if let Some(last) = e.history.last().filter(|_| e.history.len() > 1) {
        text.push_str(&format!(
            "\nLast change: {} by {} at {} UTC{}",
            last.status.as_str(),
            last.by,
            last.at.format("%Y-%m-%d %H:%M"),
            last.note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
    }
    let b = |id: &str, label: &str, style| Button {
        id: format!("esc:{id}:{}", e.reference),
        label: label.into(),
        style,
    };
    let mut buttons = Vec::new();
    if !matches!(
        e.status,
        EscalationStatus::Acknowledged | EscalationStatus::Resolved
    ) {
        buttons.push(b("ack", "Acknowledge", ButtonStyle::Primary));
    }
    if e.status != EscalationStatus::Resolved {
        buttons.push(b("resolve", "Resolve", ButtonStyle::Success));
    }
    if e.status == EscalationStatus::Failed {
        buttons.push(b("retry", "Retry e-mail", ButtonStyle::Danger));
    }
    (text, buttons)
}

/// Claims due reminders and notices and queues them as DMs (or support-channel posts) in the
/// same transaction.
async fn route_reminders(
    bot: Arc<Bot>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    wake_out: Arc<Notify>,
    support_channel: Option<u64>,
    poll: StdDuration,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Notification>(64);
    let dispatcher = dispatch::run_with(
        bot,
        clock,
        tx,
        wake,
        poll,
        Audience::Prefix {
            prefix: USER_PREFIX,
            support_team: support_channel.is_some(),
        },
        move |txn: &mut Txn, n: &Notification| route(txn, n, support_channel),
        shutdown,
    );
    let forward = async move {
        while rx.recv().await.is_some() {
            wake_out.notify_one();
        }
    };
    let (r, ()) = tokio::join!(dispatcher, forward);
    r
}

fn route(txn: &mut Txn, n: &Notification, support_channel: Option<u64>) -> anyhow::Result<()> {
    let message = if let Some(user) = discord_user(&n.user) {
        Outgoing::Dm {
            user,
            text: n.text.clone(),
            buttons: Vec::new(),
        }
    } else if n.user == SUPPORT_TEAM {
        match support_channel {
            Some(channel) => Outgoing::Post {
                channel,
                text: n.text.clone(),
                buttons: Vec::new(),
            },
            None => {
                tracing::warn!("a notice for the support team has no support channel to go to");
                return Ok(());
            }
        }
    } else {
        tracing::warn!(user = %n.user, "a reminder for a non-Discord user was dropped by the Discord transport");
        return Ok(());
    };
    txn.send_later(message, n.due)
}

/// Delivers the chat outbox: sends, edits, retries with backoff, and gives up on closed DMs
/// (recorded, and the support team told) instead of retrying forever.
async fn send_outbox(
    bot: Arc<Bot>,
    http: Arc<Http>,
    settings: DiscordSettings,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    poll: StdDuration,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let policy = RetryPolicy {
        max_attempts: MAX_SEND_ATTEMPTS,
        base: Duration::seconds(2),
        max_delay: Duration::minutes(5),
    };
    let mut last_purge: Option<DateTime<Utc>> = None;
    loop {
        let now = clock.now();
        if last_purge.is_none_or(|t| now - t > Duration::hours(1)) {
            // Duplicates arrive within minutes: a day of event ids is plenty.
            let b = bot.clone();
            tokio::task::spawn_blocking(move || {
                b.store
                    .write(|txn| txn.forget_events_before(now - Duration::days(1)))
            })
            .await??;
            last_purge = Some(now);
        }
        let b = bot.clone();
        let due = tokio::task::spawn_blocking(move || b.store.chat_due(now, 50)).await??;
        for (key, entry) in due {
            let result = deliver(&bot, &http, &settings, &entry.message).await;
            let b = bot.clone();
            let now = clock.now();
            let policy = policy.clone();
            let support = settings.support_channel();
            tokio::task::spawn_blocking(move || {
                b.store.write(|txn| match result {
                    Ok(posted) => {
                        if let (Outgoing::SupportPost { reference }, Some(id)) = (&entry.message, posted) {
                            txn.set_support_post(reference, id)?;
                        }
                        txn.finish_outgoing(key, None)
                    }
                    Err(SendFailure::DmsClosed(user)) => {
                        tracing::warn!(user, "DM not delivered: the person's DMs are closed");
                        txn.finish_outgoing(key, None)?;
                        if let Some(channel) = support {
                            let text = format!("I couldn't deliver a message to <@{user}>: their DMs are closed. Please contact them another way.");
                            txn.send_later(Outgoing::Post { channel, text, buttons: Vec::new() }, now)?;
                        }
                        Ok(())
                    }
                    Err(SendFailure::Other(error)) => {
                        let mut entry: OutboxEntry = entry.clone();
                        entry.attempts += 1;
                        entry.last_error = Some(error.clone());
                        if entry.attempts >= policy.max_attempts {
                            tracing::error!(error, "giving up on a Discord message after {} attempts", entry.attempts);
                            txn.finish_outgoing(key, None)
                        } else {
                            tracing::warn!(error, attempts = entry.attempts, "Discord message not sent; will retry");
                            let at = now + policy.delay(entry.attempts, rand::random());
                            txn.finish_outgoing(key, Some((at, &entry)))
                        }
                    }
                })
            })
            .await??;
        }
        let next = bot.store.chat_next_due()?;
        if dispatch::idle(next, clock.as_ref(), poll, &wake, shutdown.as_mut()).await {
            return Ok(());
        }
    }
}

enum SendFailure {
    DmsClosed(u64),
    Other(String),
}

fn failure(e: serenity::Error, dm_user: Option<u64>) -> SendFailure {
    if let (serenity::Error::Http(serenity::all::HttpError::UnsuccessfulRequest(resp)), Some(user)) =
        (&e, dm_user)
        && resp.error.code == DMS_CLOSED
    {
        return SendFailure::DmsClosed(user);
    }
    SendFailure::Other(e.to_string())
}

/// Sends one outbox entry; for a support post, returns the message id to edit later.
async fn deliver(
    bot: &Arc<Bot>,
    http: &Http,
    settings: &DiscordSettings,
    m: &Outgoing,
) -> Result<Option<u64>, SendFailure> {
    match m {
        Outgoing::Dm {
            user,
            text,
            buttons,
        } => {
            let channel = UserId::new(*user)
                .create_dm_channel(http)
                .await
                .map_err(|e| failure(e, Some(*user)))?;
            send_parts(http, channel.id, text, buttons)
                .await
                .map_err(|e| failure(e, Some(*user)))?;
            Ok(None)
        }
        Outgoing::Post {
            channel,
            text,
            buttons,
        } => {
            send_parts(http, ChannelId::new(*channel), text, buttons)
                .await
                .map_err(|e| failure(e, None))?;
            Ok(None)
        }
        Outgoing::SupportPost { reference } => {
            let Some(channel) = settings.support_channel() else {
                return Ok(None);
            };
            let (b, r) = (bot.clone(), reference.clone());
            let found = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                Ok((b.store.escalation(&r)?, b.store.support_post(&r)?))
            })
            .await
            .map_err(|e| SendFailure::Other(e.to_string()))?
            .map_err(|e| SendFailure::Other(e.to_string()))?;
            let (content, buttons, posted) = match found {
                (Some(e), posted) => {
                    let (content, buttons) = support_post(&e);
                    (content, buttons, posted)
                }
                // Erased at the person's request: the post keeps only the reference.
                (None, Some(posted)) => (
                    format!("**{reference}** · erased at the staff member's request"),
                    Vec::new(),
                    Some(posted),
                ),
                (None, None) => return Ok(None),
            };
            let channel = ChannelId::new(channel);
            match posted {
                Some(id) => {
                    let edit = EditMessage::new()
                        .content(content)
                        .components(rows(&buttons));
                    channel
                        .edit_message(http, MessageId::new(id), edit)
                        .await
                        .map_err(|e| failure(e, None))?;
                    Ok(Some(id))
                }
                None => {
                    let msg = CreateMessage::new()
                        .content(content)
                        .components(rows(&buttons));
                    let sent = channel
                        .send_message(http, msg)
                        .await
                        .map_err(|e| failure(e, None))?;
                    Ok(Some(sent.id.get()))
                }
            }
        }
    }
}

/// Sends text split at Discord's limit (never mid-sentence when it can be helped); the buttons go
/// with the last piece.
async fn send_parts(
    http: &Http,
    channel: ChannelId,
    text: &str,
    buttons: &[Button],
) -> serenity::Result<()> {
    let parts = split_message(text, MAX_CONTENT);
    let last = parts.len() - 1;
    for (i, part) in parts.into_iter().enumerate() {
        let mut msg = CreateMessage::new().content(part);
        if i == last {
            msg = msg.components(rows(buttons));
        }
        channel.send_message(http, msg).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_stripped() {
        let me = UserId::new(42);
        assert_eq!(strip_mentions("<@42> I'm locked out", me), "I'm locked out");
        assert_eq!(strip_mentions("hey <@!42>", me), "hey");
    }
}
