//! The metrics the bot records, named in one place. They go through the `metrics` facade: `esrbot
//! serve` installs a Prometheus recorder and serves it on `/metrics`; elsewhere recording costs
//! next to nothing. Names use the `esrbot_` prefix and base units; no label ever carries a user
//! id, an address or message text.

use crate::core::engine::Decision;
use crate::core::records::{Pending, UserState};
use crate::understanding::intents::OUT_OF_SCOPE;

/// Messages handled, by `transport` and `outcome` (answered, clarified, declined, escalated).
pub const MESSAGES: &str = "esrbot_messages_total";
/// Time to handle one message, decision and commit, by `transport`.
pub const HANDLING_SECONDS: &str = "esrbot_message_handling_seconds";
/// Time one write transaction takes to commit (its fsync).
pub const COMMIT_SECONDS: &str = "esrbot_commit_seconds";
/// Jobs (reminders, lock ends, purges) waiting to fall due.
pub const JOBS_PENDING: &str = "esrbot_jobs_pending";
/// How long after its due time a job was run.
pub const JOB_LATENESS_SECONDS: &str = "esrbot_job_lateness_seconds";
/// Entries waiting in the outbox, by `transport`.
pub const OUTBOX_DEPTH: &str = "esrbot_outbox_depth";
/// Attempts to hand an e-mail to the relay, and those that failed.
pub const MAIL_ATTEMPTS: &str = "esrbot_mail_attempts_total";
pub const MAIL_FAILURES: &str = "esrbot_mail_failures_total";
/// 1 while the Discord gateway is connected.
pub const DISCORD_CONNECTED: &str = "esrbot_discord_connected";
/// Content reloads, by `result` (ok, failed).
pub const RELOADS: &str = "esrbot_content_reloads_total";
/// Always 1, with the `version` label.
pub const BUILD_INFO: &str = "esrbot_build_info";

/// Bucket bounds (seconds) of the latency histograms: 50 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds (seconds) of job lateness: 10 ms to an hour.
pub const LATENESS_BUCKETS: &[f64] = &[0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

/// Describes every metric (their `# HELP` lines) and sets the build info.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(MESSAGES, "Messages handled, by transport and outcome");
    describe_histogram!(
        HANDLING_SECONDS,
        Unit::Seconds,
        "Time to handle one message"
    );
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "Time to commit one write transaction"
    );
    describe_gauge!(JOBS_PENDING, "Jobs waiting to fall due");
    describe_histogram!(
        JOB_LATENESS_SECONDS,
        Unit::Seconds,
        "How late due jobs were run"
    );
    describe_gauge!(OUTBOX_DEPTH, "Entries waiting in the outbox, by transport");
    describe_counter!(MAIL_ATTEMPTS, "E-mail delivery attempts");
    describe_counter!(MAIL_FAILURES, "E-mail delivery attempts that failed");
    describe_gauge!(
        DISCORD_CONNECTED,
        "1 while the Discord gateway is connected"
    );
    describe_counter!(RELOADS, "Content reloads, by result");
    describe_gauge!(BUILD_INFO, "Always 1; the version is a label");
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// What a message came to, as the `outcome` label says it.
pub fn outcome(d: &Decision, after: &UserState) -> &'static str {
    if d.escalation.is_some() {
        "escalated"
    } else if d.reply.intent.as_deref() == Some(OUT_OF_SCOPE) {
        "declined"
    } else if matches!(after.pending, Pending::Choice { .. }) {
        "clarified"
    } else {
        "answered"
    }
}

/// Records one handled message.
pub fn message(transport: &str, outcome: &'static str, took: std::time::Duration) {
    metrics::counter!(MESSAGES, "transport" => transport.to_string(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!(HANDLING_SECONDS, "transport" => transport.to_string()).record(took);
}
