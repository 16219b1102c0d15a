//! The sender task: delivers the e-mails queued in the durable outbox. It retries transient
//! failures with exponential backoff and jitter, gives up after the configured number of attempts
//! (or at once on a permanent refusal) and tells the support team. The server's acceptance is
//! recorded before anything else happens, so after a crash the worst case is one resend of the
//! same message, with the same Message-ID.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::sync::Notify;

use crate::bot::Bot;
use crate::config::Config;
use crate::dispatch::Clock;
use crate::mail::{Mailer, escalation_message};
use crate::queue::{Failure, RetryPolicy};
use crate::state::{Escalation, MailJob, MailState};

/// Everything the sender needs besides the bot.
pub struct Sender {
    pub mailer: Mailer,
    pub policy: RetryPolicy,
    pub poll: StdDuration,
    /// Test hook for crash tests: `abort_after_accept` kills the process right after the server
    /// accepted a message and before that is recorded (set by `ESRBOT_FAULT`).
    pub fault: Option<String>,
}

impl Sender {
    pub fn from_config(c: &Config, mailer: Mailer) -> Sender {
        Sender {
            mailer,
            policy: RetryPolicy {
                max_attempts: c.mail.max_attempts,
                base: Duration::seconds(c.mail.retry_base_seconds.into()),
                max_delay: Duration::seconds(c.mail.retry_max_seconds.into()),
            },
            poll: StdDuration::from_secs(c.mail.poll_seconds.into()),
            fault: std::env::var("ESRBOT_FAULT").ok(),
        }
    }
}

/// Runs until `shutdown` resolves. `wake` is notified when new mail is queued; `delivered` is
/// notified after each outcome is recorded (it may have scheduled a notice to deliver).
pub async fn run(
    bot: Arc<Bot>,
    sender: Sender,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    delivered: Arc<Notify>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let tz = bot.engine.rules.tz;
    loop {
        let now = clock.now();
        // One read of the (small) outbox: what is due now, and when the rest will be.
        let queued: Vec<MailJob> = bot
            .store
            .mail_jobs()?
            .into_iter()
            .filter(|j| j.state == MailState::Queued)
            .collect();
        // A job whose escalation is gone (forget-me removes both together, so only a record
        // damaged by hand) is left alone rather than retried in a tight loop.
        let mut due: Vec<(&MailJob, Escalation)> = Vec::new();
        for job in queued.iter().filter(|j| j.next_attempt <= now) {
            if let Some(e) = bot.store.escalation(&job.reference)? {
                due.push((job, e));
            }
        }
        if due.is_empty() {
            let next = queued
                .iter()
                .map(|j| j.next_attempt)
                .filter(|t| *t > now)
                .min();
            if crate::dispatch::idle(next, clock.as_ref(), sender.poll, &wake, shutdown.as_mut())
                .await
            {
                return Ok(());
            }
            continue;
        }
        due.sort_by_key(|(j, _)| j.next_attempt);
        for (job, e) in due {
            let mail = escalation_message(&e, tz);
            let result = tokio::select! {
                r = sender.mailer.send(&mail) => r,
                _ = &mut shutdown => return Ok(()),
            };
            let (b, reference, now) = (bot.clone(), job.reference.clone(), clock.now());
            match result {
                Ok(answer) => {
                    if sender.fault.as_deref() == Some("abort_after_accept") {
                        std::process::abort();
                    }
                    tracing::info!(reference = %reference, "e-mail accepted");
                    tokio::task::spawn_blocking(move || b.mail_accepted(&reference, &answer, now))
                        .await??;
                }
                Err(err) => {
                    let failure = Failure {
                        error: err.to_string(),
                        permanent: !err.is_transient(),
                    };
                    let policy = sender.policy.clone();
                    let jitter: f64 = rand::random();
                    tokio::task::spawn_blocking(move || {
                        b.mail_failed(&reference, &failure, &policy, jitter, now)
                    })
                    .await??;
                }
            }
            delivered.notify_one();
        }
        // The outcomes changed the queue: read it again before sleeping.
    }
}
