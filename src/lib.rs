//! esrbot: a chat bot that gets NHS staff back into ESR (the Electronic Staff Record) by answering
//! with the right step of the official access guide, working out their own times, reminding them
//! before a reset link runs out and passing cases on to people.
//!
//! # Layout
//!
//! One line a module:
//!
//! - [`config`]: settings from `config.toml` and `ESRBOT_*` variables, validated once.
//! - [`clock`]: the source of "now": the system clock, or a manual one for tests.
//! - [`metrics`]: the names of every metric, and what a message's outcome was.
//! - [`core`]: pure rules: no I/O, no clock reading, nothing from storage or a transport.
//! - [`core::engine`]: the dialogue rules: message + state + time → reply, state, jobs.
//! - [`core::behaviours`]: the one table of intents with behaviour, and their handlers.
//! - [`core::records`]: a person's state, jobs, escalations and channel-neutral messages.
//! - [`core::escalation`]: how an escalation's status may change.
//! - [`core::retry`]: the one retry policy: backoff with jitter, then give up.
//! - [`core::error`]: errors a person may read, worded in `data/replies.toml`.
//! - [`understanding`]: reading a message.
//! - [`understanding::intents`]: the intent files under `intents/`, validated.
//! - [`understanding::content`]: `data/`: replies, scope words, variant words; templates.
//! - [`understanding::classifier`]: patterns plus linear models over n-grams.
//! - [`understanding::language`]: English or Welsh (lingua, two models only).
//! - [`understanding::details`]: an old address or staff number a person offers for a hand-over.
//! - [`understanding::text`]: cleaning hostile input, the normal form, address checks.
//! - [`understanding::privacy`]: cutting passwords and dates of birth out.
//! - [`understanding::timeexpr`]: times in messages: patterns, resolution, words, formatting.
//! - [`service`]: commits the core's decisions, routes by lane, wakes the background tasks.
//! - [`service::jobs`]: the job dispatcher: claims due jobs and queues their reminders.
//! - [`service::outbox`]: delivery of the outbox for every transport (`Deliver`).
//! - [`service::queue`]: escalation actions, and what follows a delivery or giving up.
//! - [`service::ratelimit`]: per-person message allowance.
//! - [`service::tasks`]: a process's background tasks, stopped together; the first failure ends it.
//! - [`service::health`]: what `/readyz` reports, part by part.
//! - [`service::accounts`]: support accounts: argon2id, sessions, CSRF, throttled, audited sign-in.
//! - [`service::analytics`]: per-day counters, the report and CSV, the kept declined questions.
//! - [`serve`]: `esrbot serve`: every configured transport in one process, reload, graceful stop.
//! - [`serve::admin`]: the admin listener: `/livez`, `/readyz`, `/metrics`, `POST /reload`.
//! - [`store`]: the redb tables, one transaction per change.
//! - [`store::keys`]: compact keys and values: lanes, due times, recipients.
//! - `store::group`: group commit: messages handled at once share one transaction and fsync.
//! - `store::panic_guard`: redb's panics on a damaged file, turned into errors.
//! - `store::support`: the support team's tables, from accounts to kept questions.
//! - [`transports`]: one folder per channel, and the registry.
//! - [`transports::chat`]: the terminal: numbered choices, its own person's notices.
//! - [`transports::card`]: the support team's card for an escalation (Discord, Teams).
//! - [`transports::discord`]: serenity: wiring, handlers, commands, rendering, delivery.
//! - [`transports::teams`]: the Bot Connector: signed requests in, tokens, cards, delivery.
//! - [`transports::mail`]: lettre: the escalation e-mail and its delivery.
//! - [`transports::web`]: axum: the staff chat at `/` (signed-cookie identity, live reminders).
//! - [`tools`]: commands for the people who run and improve the bot.
//! - [`tools::check`]: validation of config, intents and data (`esrbot check`).
//! - [`tools::eval`]: accuracy figures on a labelled file (`esrbot eval`).
//! - [`tools::convtest`]: conversation tests with a virtual clock (`esrbot test`).
//! - [`tools::escalations`]: the support team's queue at the command line.
//! - [`tools::backup`]: a consistent, verified copy of the database while the bot runs.
//! - [`tools::support`]: support accounts and the analytics export at the command line.

/// mimalloc for every binary built on the library (the bot, its tests and benchmarks): under
/// group commit dozens of threads allocate at once, and glibc's malloc spent a sixth of the CPU
/// at saturation on its arenas (`benches/throughput.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod clock;
pub mod config;
pub mod core;
pub mod metrics;
pub mod serve;
pub mod service;
pub mod store;
pub mod tools;
pub mod transports;
pub mod understanding;
