//! esrbot: a chat bot that gets NHS staff back into ESR (the Electronic Staff Record) by answering
//! with the right step of the official access guide, working out their own times, reminding them
//! before a reset link runs out and passing cases on to people.
//!
//! # Layout
//!
//! - [`config`]: settings from `config.toml` and `ESRBOT_*` variables, validated once.
//! - [`intents`]: the intent registry loaded from `intents/` (patterns and examples).
//! - [`content`]: the guide's wording from `data/replies.toml`, and template rendering.
//! - [`text`]: cleaning hostile input, the normal form, e-mail address checks.
//! - [`privacy`]: cuts passwords and dates of birth out of messages.
//! - [`timeexpr`]: time expressions in messages ("at 9am", "3 hours ago") and clock formatting.
//! - [`classifier`]: patterns plus a linear model over n-grams, with confidences.
//! - [`engine`]: the pure core: message + state + time → reply, state, reminders, escalation.
//! - [`state`]: the records kept per user, reminders and escalations.
//! - [`store`]: the redb tables and one-transaction-per-change writes.
//! - [`queue`]: the support team's escalation queue, its audit trail, and mail outcomes.
//! - [`mail`]: the SMTP edge (lettre): settings, the escalation e-mail, sending.
//! - [`outbox`]: the sender task that delivers queued e-mail with retries.
//! - [`ratelimit`]: per-person message allowance for chat transports.
//! - [`bot`]: the engine's decisions committed to the store: what transports call.
//! - [`dispatch`]: the restart-proof reminder dispatcher and the clock.
//! - [`discord`]: the Discord transport (serenity): DMs, channels, slash commands, buttons.
//! - [`chat`]: the terminal transport (`esrbot chat`).
//! - [`convtest`]: conversation tests with a virtual clock (`esrbot test`).
//! - [`eval`]: accuracy figures on a labelled file (`esrbot eval`).
//! - [`check`]: validation of config, intents and data (`esrbot check`).

pub mod clock;
pub mod config;
pub mod core;
pub mod service;
pub mod store;
pub mod tools;
pub mod transports;
pub mod understanding;
