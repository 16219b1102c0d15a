//! The edges: one folder per channel. Each renders the service's channel-neutral messages its own
//! way and delivers them. Adding a transport means one folder and one line in `REGISTRY`.

pub mod card;
pub mod chat;
pub mod discord;
pub mod mail;
pub mod teams;
pub mod web;

use crate::config::Config;
use crate::core::engine::Engine;
use crate::core::records::{Choice, ChoiceStyle};
use crate::service::Routing;

/// What the service needs to know about a transport to route to it.
pub struct TransportSpec {
    /// The channel part of its recipients' addresses ("discord" in "discord:42").
    pub channel: &'static str,
    /// Each recipient is a lane of its own (one terminal session per person) rather than the
    /// whole channel being one lane (one Discord connection for everyone).
    pub per_recipient_lanes: bool,
    /// Whether, with these settings, the support team works here.
    pub hosts_support: fn(&Config) -> bool,
    /// Whether the support team sees escalations here as cards that follow their status.
    pub shows_cards: bool,
    /// The `[message]` keys of `data/replies.toml` it uses (checked by `esrbot check`).
    pub messages: &'static [&'static str],
}

/// Every transport, in order of preference for the support team's home: the first whose
/// `hosts_support` holds is it.
pub const REGISTRY: &[TransportSpec] = &[
    discord::SPEC,
    teams::SPEC,
    chat::SPEC,
    web::SPEC,
    mail::SPEC,
];

/// The transport where the support team works with these settings.
pub fn support_home(config: &Config) -> Option<&'static TransportSpec> {
    REGISTRY.iter().find(|t| (t.hosts_support)(config))
}

/// How recipients map to lanes with these settings.
pub fn routing(config: &Config) -> Routing {
    Routing {
        per_recipient: REGISTRY
            .iter()
            .filter(|t| t.per_recipient_lanes)
            .map(|t| t.channel.to_string())
            .collect(),
        support_cards: support_home(config).is_some_and(|t| t.shows_cards),
    }
}

/// Whether `spec` claims the support team's lane with these settings.
pub fn claims_support(spec: &TransportSpec, config: &Config) -> bool {
    support_home(config).is_some_and(|home| home.channel == spec.channel)
}

/// The lanes whose jobs a long-running process (`esrbot serve`) runs: every channel that is one
/// lane for everyone on it. A terminal session runs its own person's.
pub fn shared_lanes() -> Vec<String> {
    REGISTRY
        .iter()
        .filter(|t| !t.per_recipient_lanes)
        .map(|t| t.channel.to_string())
        .collect()
}

/// The two answers to "erase everything about me?" (`forget:confirm`, `forget:cancel`), the same
/// on every transport that asks it with buttons.
pub fn forget_choices(engine: &Engine) -> Vec<Choice> {
    let content = engine.content();
    vec![
        Choice {
            id: "forget:confirm".into(),
            label: content.message("choice_forget_confirm").into(),
            style: ChoiceStyle::Danger,
        },
        Choice {
            id: "forget:cancel".into(),
            label: content.message("choice_cancel").into(),
            style: ChoiceStyle::Secondary,
        },
    ]
}
