//! Discord's gateway events: messages, button presses and slash commands, each handled through
//! the service (once per event id) and answered the Discord way. When handling fails, the person
//! still gets a short apology; the error itself is logged.

use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use serenity::all::{
    CommandInteraction, ComponentInteraction, Context, CreateInteractionResponse,
    CreateInteractionResponseMessage, EventHandler, GuildId, Interaction, Message, Ready, RoleId,
    UserId,
};
use serenity::async_trait;
use tokio::sync::Notify;

use super::commands::{esr_command, string_option};
use super::render::{self, ephemeral, mentions_none, rows};
use super::{channel_recipient, user_key};
use crate::clock::Clock;
use crate::config::DiscordSettings;
use crate::core::engine::Reply;
use crate::core::error::UserError;
use crate::core::escalation::Action;
use crate::core::records::{Choice, EscalationStatus, Message as OutMessage, Outgoing};
use crate::service::Service;
use crate::service::ratelimit::RateLimiter;
use crate::understanding::text::{Breaks, for_display, split_message};

pub(super) struct Handler {
    pub svc: Arc<Service>,
    pub settings: DiscordSettings,
    pub clock: Arc<dyn Clock>,
    pub bot_id: OnceLock<UserId>,
    pub limiter: Mutex<RateLimiter>,
    /// Notified when the gateway says it is ready.
    pub connected: Arc<Notify>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let _ = self.bot_id.set(ready.user.id);
        ctx.http.set_application_id(ready.application.id);
        if let Err(e) = self.register_commands(&ctx).await {
            tracing::error!(error = %e, "could not register the slash commands");
        }
        self.connected.notify_waiters();
        self.svc.health.ready(super::SPEC.channel);
        metrics::gauge!(crate::metrics::DISCORD_CONNECTED).set(1.0);
        tracing::info!(user = %ready.user.name, "connected to Discord");
    }

    async fn shard_stage_update(&self, _ctx: Context, event: serenity::all::ShardStageUpdateEvent) {
        // Connected again after a resume (which sends no READY), or not.
        if event.new == serenity::all::ConnectionStage::Connected {
            self.svc.health.ready(super::SPEC.channel);
            metrics::gauge!(crate::metrics::DISCORD_CONNECTED).set(1.0);
            return;
        }
        self.svc.health.not_ready(
            super::SPEC.channel,
            format!("{:?}", event.new).to_lowercase(),
        );
        metrics::gauge!(crate::metrics::DISCORD_CONNECTED).set(0.0);
        tracing::warn!(stage = ?event.new, "the Discord connection is down");
    }

    async fn message(&self, ctx: Context, msg: Message) {
        if msg.author.bot {
            return;
        }
        if let Err(e) = self.on_message(&ctx, &msg).await {
            tracing::error!(error = %format!("{e:#}"), "handling a Discord message failed");
            let sorry = serenity::all::CreateMessage::new()
                .content(self.text("error"))
                .allowed_mentions(mentions_none());
            let _ = msg.channel_id.send_message(&ctx.http, sorry).await;
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
            let sorry = ephemeral(&self.text("error"));
            let _ = match &interaction {
                Interaction::Component(c) => c.create_response(&ctx.http, sorry).await,
                Interaction::Command(c) => c.create_response(&ctx.http, sorry).await,
                _ => Ok(()),
            };
        }
    }
}

/// Where a reply to a message goes.
#[derive(Clone, Copy)]
enum From {
    Dm,
    Channel(u64),
}

impl Handler {
    /// A message from `data/replies.toml`, with the guide's facts filled in.
    fn text(&self, key: &str) -> String {
        self.svc.engine().message(key, &[])
    }

    fn text_with(&self, key: &str, vars: &[(&str, String)]) -> String {
        self.svc.engine().message(key, vars)
    }

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
                serenity::all::Command::set_global_commands(&ctx.http, commands).await?;
            }
        }
        Ok(())
    }

    /// Runs a blocking store operation off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Arc<Service>) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let svc = self.svc.clone();
        tokio::task::spawn_blocking(move || f(svc)).await?
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
        let text = render::strip_mentions(&msg.content, me);
        let from = if in_dm {
            From::Dm
        } else {
            From::Channel(msg.channel_id.get())
        };
        let author = msg.author.id;
        let now = self.clock.now();
        if !self
            .limiter
            .lock()
            .map(|mut l| l.allow(user_key(author).as_str(), now))
            .unwrap_or(true)
        {
            let slow = serenity::all::CreateMessage::new()
                .content(self.svc.explain(&UserError::RateLimited))
                .allowed_mentions(mentions_none());
            msg.channel_id.send_message(&ctx.http, slow).await?;
            return Ok(());
        }
        let name = msg
            .author
            .global_name
            .clone()
            .unwrap_or_else(|| msg.author.name.clone());
        let event = format!("discord:message:{}", msg.id);
        let pointer = self.text_with(
            "discord_sent_privately",
            &[("mention", format!("<@{author}>"))],
        );
        let reply = self
            .blocking(move |svc| {
                svc.handle_once(
                    &event,
                    &user_key(author),
                    Some(&name),
                    &text,
                    now,
                    |svc, txn, added, reply| {
                        for entry in reply_entries(reply, author, from, &pointer, now) {
                            svc.enqueue(txn, added, &entry, now)?;
                        }
                        Ok(())
                    },
                )
            })
            .await?;
        let Some(reply) = reply else {
            tracing::info!(message = %msg.id, "duplicate message event ignored");
            return Ok(());
        };
        if reply.had_secret && !in_dm {
            // Take the secret out of the open channel if we are allowed to, and say why in a DM.
            let removed = msg.delete(&ctx.http).await.is_ok();
            let why = self.text(if removed {
                "discord_secret_removed"
            } else {
                "discord_secret_not_removed"
            });
            self.blocking(move |svc| {
                svc.write(|svc, txn, added| svc.tell(txn, added, &user_key(author), why, now))
            })
            .await?;
        }
        Ok(())
    }

    fn is_support(&self, roles: Option<&[RoleId]>) -> bool {
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
            let Some(action) = Action::parse(action) else {
                return Ok(());
            };
            if !self.is_support(c.member.as_ref().map(|m| m.roles.as_slice())) {
                tracing::warn!(user = %user, button = id, "support action refused: not in a support role");
                let no = self.svc.explain(&UserError::NotSupport);
                c.create_response(&ctx.http, ephemeral(&no)).await?;
                return Ok(());
            }
            let by = format!("{} (discord:{})", c.user.name, user);
            let reference = reference.to_string();
            let event = format!("discord:interaction:{}", c.id);
            let outcome = self
                .blocking(move |svc| {
                    // The event id and the action commit together: a crash can neither
                    // lose the press nor apply it twice when Discord redelivers it.
                    svc.write(|svc, txn, added| {
                        if !txn.first_sighting(&event, now)? {
                            return Ok(None);
                        }
                        svc.escalation_action_in(txn, added, &reference, action, &by, None, now)
                            .map(Some)
                    })
                })
                .await?;
            return match outcome {
                None => Ok(()),
                Some(Ok(e)) => {
                    let (content, buttons) = render::card(&self.svc, &e);
                    let msg = CreateInteractionResponseMessage::new()
                        .content(content)
                        .components(rows(&buttons))
                        .allowed_mentions(mentions_none());
                    c.create_response(&ctx.http, CreateInteractionResponse::UpdateMessage(msg))
                        .await?;
                    Ok(())
                }
                Some(Err(refusal)) => {
                    c.create_response(&ctx.http, ephemeral(&self.svc.explain(&refusal)))
                        .await?;
                    Ok(())
                }
            };
        }
        if id == "forget:confirm" || id == "forget:cancel" {
            let text = if id == "forget:confirm" {
                let who = user_key(user);
                let n = self.blocking(move |svc| svc.forget(&who, now)).await?;
                self.text_with("discord_forget_done", &[("count", n.to_string())])
            } else {
                self.text("discord_forget_cancelled")
            };
            let msg = CreateInteractionResponseMessage::new()
                .content(text)
                .components(Vec::new())
                .allowed_mentions(mentions_none());
            c.create_response(&ctx.http, CreateInteractionResponse::UpdateMessage(msg))
                .await?;
            return Ok(());
        }
        if let Some(message) = Choice::message(id) {
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
        let event = format!("discord:interaction:{}", it.id());
        let (name, text) = (name.to_string(), text.to_string());
        let reply = self
            .blocking(move |svc| {
                svc.handle_once(
                    &event,
                    &user_key(user),
                    Some(&name),
                    &text,
                    now,
                    |_, _, _, _| Ok(()),
                )
            })
            .await?;
        let Some(reply) = reply else { return Ok(()) };
        let parts = split_message(&for_display(&reply.text, Breaks::Keep), render::MAX_CONTENT);
        let first = parts.first().cloned().unwrap_or_default();
        let mut msg = CreateInteractionResponseMessage::new()
            .content(first)
            .ephemeral(!in_dm)
            .allowed_mentions(mentions_none());
        if parts.len() == 1 {
            msg = msg.components(rows(&reply.choices));
        }
        it.respond(ctx, CreateInteractionResponse::Message(msg))
            .await?;
        // The rest of a long answer follows as ordinary messages through the outbox.
        if parts.len() > 1 {
            let rest = OutMessage {
                text: parts[1..].join("\n"),
                choices: reply.choices.clone(),
                attachments: Vec::new(),
            };
            self.blocking(move |svc| {
                svc.write(|svc, txn, added| {
                    let entry = Outgoing::message(user_key(user), rest, now);
                    svc.enqueue(txn, added, &entry, now)
                })
            })
            .await?;
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
                let who = user_key(user);
                let text = self
                    .blocking(move |svc| {
                        let state = svc.store.user(&who)?;
                        Ok(svc.engine().status(&state, now))
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
                let buttons = crate::transports::forget_choices(&self.svc.engine());
                let msg = CreateInteractionResponseMessage::new()
                    .content(self.text("discord_forget_confirm"))
                    .ephemeral(true)
                    .components(rows(&buttons))
                    .allowed_mentions(mentions_none());
                it.respond(ctx, CreateInteractionResponse::Message(msg))
                    .await
            }
            "escalations" => {
                if !self.is_support(c.member.as_ref().map(|m| m.roles.as_slice())) {
                    tracing::warn!(user = %user, "escalation list refused: not in a support role");
                    let no = self.svc.explain(&UserError::NotSupport);
                    return it.respond(ctx, ephemeral(&no)).await;
                }
                let status = string_option(sub, "status");
                let none = self.text("discord_no_escalations");
                let text = self
                    .blocking(move |svc| {
                        let wanted = status.as_deref().and_then(EscalationStatus::parse);
                        let lines: Vec<String> = svc
                            .store
                            .escalations()?
                            .iter()
                            .filter(|e| wanted.is_none_or(|w| e.status == w))
                            .map(render::list_line)
                            .collect();
                        Ok(if lines.is_empty() {
                            none
                        } else {
                            lines.join("\n")
                        })
                    })
                    .await?;
                let first = split_message(&text, render::MAX_CONTENT).remove(0);
                it.respond(ctx, ephemeral(&first)).await
            }
            _ => Ok(()),
        }
    }
}

/// What a reply to a message queues: in a DM as it is; in a channel, personal answers go to the
/// person's DMs with a short pointer in the channel.
fn reply_entries(
    reply: &Reply,
    author: UserId,
    from: From,
    pointer: &str,
    now: DateTime<Utc>,
) -> Vec<Outgoing> {
    let to_dm = Outgoing::message(user_key(author), reply.message(), now);
    match from {
        From::Dm => vec![to_dm],
        From::Channel(channel) if reply.personal || reply.had_secret => vec![
            to_dm,
            Outgoing::message(channel_recipient(channel), OutMessage::text(pointer), now),
        ],
        From::Channel(channel) => vec![Outgoing::message(
            channel_recipient(channel),
            reply.message(),
            now,
        )],
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
