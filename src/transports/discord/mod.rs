//! The Discord transport (`esrbot discord`): the only module that imports serenity. Staff talk to
//! the same engine as everywhere else, in DMs, by mentioning the bot, or in listed channels;
//! anything personal is answered in a DM or an ephemeral reply. Replies, reminders and support
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
use std::time::Duration as StdDuration;

use anyhow::Context as _;
use serenity::all::{ClientBuilder, GatewayIntents, HttpBuilder, UserId};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Config;
use crate::core::records::Recipient;
use crate::service::ratelimit::RateLimiter;
use crate::service::{SUPPORT_LANE, Service, jobs, outbox};
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
        "choice_acknowledge",
        "choice_resolve",
        "choice_retry_email",
        "card",
        "card_address",
        "card_problem",
        "card_contact",
        "card_last_change",
        "card_erased",
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

/// Runs the bot until `shutdown` resolves.
pub async fn run(
    config: Config,
    svc: Arc<Service>,
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut lanes = vec![SPEC.channel.to_string()];
    if crate::transports::claims_support(&SPEC, &config) {
        lanes.push(SUPPORT_LANE.to_string());
    }
    let sender = tokio::spawn(outbox::run(
        svc.clone(),
        clock.clone(),
        config.outbox.runner(lanes.clone()),
        deliver::Discord {
            http: http.clone(),
            settings: settings.clone(),
        },
        stopped(stop_rx.clone()),
    ));
    let dispatcher = tokio::spawn(jobs::run(
        svc.clone(),
        clock.clone(),
        lanes,
        StdDuration::from_secs(config.reminders.poll_seconds.into()),
        stopped(stop_rx.clone()),
    ));
    let housekeeping = tokio::spawn(deliver::forget_old_events(
        svc.clone(),
        clock.clone(),
        stopped(stop_rx.clone()),
    ));
    let mail = crate::transports::mail::start(&config, &svc, &clock, stopped(stop_rx.clone()))?;
    let result = tokio::select! {
        r = client.start() => r.context("Discord connection"),
        () = shutdown => {
            shards.shutdown_all().await;
            Ok(())
        }
    };
    let _ = stop_tx.send(true);
    sender.await??;
    dispatcher.await??;
    housekeeping.await??;
    if let Some(m) = mail {
        m.await??;
    }
    result
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
