//! The Discord transport (`esrbot serve` with `DISCORD_TOKEN`): the only module that imports
//! serenity. Staff talk to the same engine as everywhere else, in DMs, by mentioning the bot, or
//! in listed channels; anything personal is answered in a DM or an ephemeral reply. Replies, reminders and support
//! cards go through the durable outbox, written in the same transaction as the decision;
//! interaction responses, which Discord wants within three seconds, are sent directly. Event ids
//! are recorded so that an event delivered twice is handled once.
//!
//! This file wires the parts together: `handlers` (gateway events), `commands` (the `/esr`
//! slash command), `render` (messages, buttons and cards in Discord's terms) and `deliver` (the
//! outbox's Discord side).

mod commands;
mod deliver;
mod handlers;
mod render;

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;
use serenity::all::{ClientBuilder, GatewayIntents, HttpBuilder, UserId};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Config;
use crate::core::records::Recipient;
use crate::service::ratelimit::RateLimiter;
use crate::service::tasks::Tasks;
use crate::service::{SUPPORT_LANE, Service, outbox};
use crate::transports::TransportSpec;

pub use commands::esr_command;

/// Discord as the registry sees it: one lane for everyone on it, and the support team's home when
/// a support channel is set.
pub const SPEC: TransportSpec = TransportSpec {
    channel: "discord",
    per_recipient_lanes: false,
    hosts_support: |c| c.discord.support_channel().is_some(),
    shows_cards: true,
    messages: &[
        "discord_sent_privately",
        "discord_secret_removed",
        "discord_secret_not_removed",
        "discord_forget_confirm",
        "discord_forget_done",
        "discord_forget_cancelled",
        "discord_no_escalations",
        "discord_dms_closed",
        "choice_forget_confirm",
        "choice_cancel",
    ],
};

const DEFAULT_API: &str = "https://discord.com";

/// The gateway intents the bot needs: messages in servers and DMs, and their content.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
}

/// The recipient a Discord user is kept under.
pub fn user_key(id: UserId) -> Recipient {
    Recipient::new(SPEC.channel, &id.get().to_string())
}

/// A channel of Discord's, as a recipient (a reply posted in the channel it was asked in).
fn channel_recipient(channel: u64) -> Recipient {
    Recipient::new(SPEC.channel, &format!("channel/{channel}"))
}

/// Where a Discord recipient is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A person: their DMs.
    User(u64),
    /// A channel.
    Channel(u64),
}

fn place(r: &Recipient) -> Option<Place> {
    if r.channel() != SPEC.channel {
        return None;
    }
    match r.id().strip_prefix("channel/") {
        Some(c) => c.parse().ok().map(Place::Channel),
        None => r.id().parse().ok().map(Place::User),
    }
}

/// Runs the bot on Discord alone until `shutdown` resolves: Discord's tasks, the job dispatcher
/// and the mail sender (what `esrbot serve` runs when only Discord is configured).
pub async fn run(
    config: Config,
    svc: Arc<Service>,
    token: String,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let mut tasks = Tasks::new();
    start(&mut tasks, &config, &svc, token, &clock).await?;
    crate::service::start_common(&mut tasks, &config, &svc, &clock)?;
    let outcome = tokio::select! {
        e = tasks.failure() => Err(e),
        () = shutdown => Ok(()),
    };
    let stopped = tasks.stop().await;
    outcome.and(stopped)
}

/// Starts Discord's tasks: the gateway connection, the sender of its outbox lanes (and the support
/// team's, when its channel is set) and the forgetting of old event ids. They stop with `tasks`.
pub async fn start(
    tasks: &mut Tasks,
    config: &Config,
    svc: &Arc<Service>,
    token: String,
    clock: &Arc<dyn Clock>,
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
    svc.health.not_ready(SPEC.channel, "connecting");
    metrics::gauge!(crate::metrics::DISCORD_CONNECTED).set(0.0);
    let handler = handlers::Handler {
        svc: svc.clone(),
        settings: settings.clone(),
        clock: clock.clone(),
        bot_id: OnceLock::new(),
        limiter: Mutex::new(RateLimiter::new(settings.rate_limit_per_minute)),
        connected: Arc::new(Notify::new()),
    };
    let mut client = ClientBuilder::new_with_http(http, intents())
        .event_handler(handler)
        .await
        .context("starting the Discord client")?;
    let http = client.http.clone();
    let shards = client.shard_manager.clone();
    let mut lanes = vec![SPEC.channel.to_string()];
    if crate::transports::claims_support(&SPEC, config) {
        lanes.push(SUPPORT_LANE.to_string());
    }
    tasks.spawn(
        "the Discord sender",
        outbox::run(
            svc.clone(),
            clock.clone(),
            config.outbox.runner(lanes),
            deliver::Discord {
                http: http.clone(),
                settings: settings.clone(),
            },
            tasks.stopped(),
        ),
    );
    tasks.spawn(
        "the Discord housekeeping",
        crate::service::forget_old_events(svc.clone(), clock.clone(), tasks.stopped()),
    );
    let stopped = tasks.stopped();
    let health = svc.clone();
    tasks.spawn("the Discord connection", async move {
        tokio::select! {
            r = client.start() => r.context("Discord connection"),
            () = stopped => {
                // No new events from here on; those being handled finish their commits.
                shards.shutdown_all().await;
                health.health.not_ready(SPEC.channel, "stopped");
                Ok(())
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_people_or_channels() {
        assert_eq!(place(&user_key(UserId::new(42))), Some(Place::User(42)));
        assert_eq!(place(&channel_recipient(7)), Some(Place::Channel(7)));
        assert_eq!(place(&"chat:42".into()), None);
        assert_eq!(place(&"discord:bob".into()), None);
    }
}
