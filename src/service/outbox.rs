//! Delivery of the durable outbox, the same for every transport: a runner reads its lanes' due
//! entries, hands each to the transport's `Deliver`, and only then removes it, so delivery is at
//! least once (a crash between handing over and recording repeats one delivery, which the
//! entry's id lets the other side drop). Failures follow the one `RetryPolicy`; an entry given up
//! is reported by `queue::gave_up`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;

use crate::clock::Clock;
use crate::core::records::Outgoing;
use crate::core::retry::{Failure, Next, RetryPolicy};
use crate::service::{Service, Waker, jobs};
use crate::store::OutboxKey;

/// How many entries one pass reads.
const BATCH: usize = 50;

/// What a transport reports when it has handed an entry over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Handed {
    /// The other side's answer, kept in the record (an SMTP server's "250 OK").
    pub receipt: Option<String>,
    /// A transport reference to remember in the same transaction (a posted card's message id).
    pub remember: Option<(String, String)>,
}

/// A failed attempt, with how long the other side asked us to wait (HTTP 429).
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub failure: Failure,
    pub retry_after: Option<Duration>,
}

impl Refused {
    pub fn transient(error: impl Into<String>) -> Refused {
        Refused {
            failure: Failure {
                error: error.into(),
                permanent: false,
            },
            retry_after: None,
        }
    }

    pub fn permanent(error: impl Into<String>) -> Refused {
        Refused {
            failure: Failure {
                error: error.into(),
                permanent: true,
            },
            retry_after: None,
        }
    }
}

/// A transport's delivery of one entry. `id` is the entry's stable id, for the other side's
/// duplicate detection.
pub trait Deliver: Send + Sync + 'static {
    fn deliver(
        &self,
        svc: &Arc<Service>,
        id: u64,
        entry: &Outgoing,
    ) -> impl Future<Output = Result<Handed, Refused>> + Send;
}

/// How a runner behaves.
#[derive(Debug, Clone)]
pub struct Runner {
    pub lanes: Vec<String>,
    pub policy: RetryPolicy,
    pub poll: StdDuration,
    /// How long an entry being delivered is held against other processes (longer than one
    /// attempt may take).
    pub lease: Duration,
    /// Test hook for crash tests (`ESRBOT_FAULT`): `abort_after_accept` kills the process right
    /// after the transport accepted an entry and before that is recorded; `abort_before_handover`
    /// right after the entry was read and before it is handed over.
    pub fault: Option<String>,
}

/// Runs until `shutdown` resolves, delivering `runner.lanes`' entries as they fall due.
pub async fn run<D: Deliver>(
    svc: Arc<Service>,
    clock: Arc<dyn Clock>,
    runner: Runner,
    deliver: D,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let waker = Arc::new(Waker::new(runner.lanes.clone()));
    svc.register_outbox(waker.clone());
    loop {
        let now = clock.now();
        let (s, lanes, until) = (svc.clone(), runner.lanes.clone(), now + runner.lease);
        let due = tokio::task::spawn_blocking(move || {
            let mut due: Vec<(String, OutboxKey, Outgoing)> = Vec::new();
            for lane in &lanes {
                if s.store.outbox_next_due(lane)?.is_none_or(|t| t > now) {
                    continue;
                }
                for (key, entry) in s
                    .store
                    .write(|txn| txn.lease_due(lane, now, BATCH, until))?
                {
                    due.push((lane.clone(), key, entry));
                }
            }
            anyhow::Ok(due)
        })
        .await??;
        for (lane, key, entry) in due {
            if runner.fault.as_deref() == Some("abort_before_handover") {
                std::process::abort();
            }
            let id = crate::store::keys::outbox_id(&key).unwrap_or_default();
            let result = tokio::select! {
                r = deliver.deliver(&svc, id, &entry) => r,
                _ = &mut shutdown => return Ok(()),
            };
            let (s, now, policy) = (svc.clone(), clock.now(), runner.policy.clone());
            match result {
                Ok(handed) => {
                    if runner.fault.as_deref() == Some("abort_after_accept") {
                        std::process::abort();
                    }
                    tokio::task::spawn_blocking(move || {
                        s.delivered(&lane, &key, &entry, &handed, now)
                    })
                    .await??;
                }
                Err(refused) => {
                    let jitter: f64 = rand::random();
                    tokio::task::spawn_blocking(move || {
                        s.refused(&lane, &key, &entry, &refused, &policy, jitter, now)
                    })
                    .await??;
                }
            }
        }
        let (s, lanes) = (svc.clone(), runner.lanes.clone());
        let next = tokio::task::spawn_blocking(move || {
            let mut next = None;
            for lane in &lanes {
                if let Some(t) = s.store.outbox_next_due(lane)? {
                    next = Some(next.map_or(t, |n: chrono::DateTime<chrono::Utc>| n.min(t)));
                }
            }
            anyhow::Ok(next)
        })
        .await??;
        if next.is_some_and(|t| t <= clock.now()) {
            continue;
        }
        waker.set_next(next);
        if jobs::idle(next, clock.as_ref(), runner.poll, &waker, shutdown.as_mut()).await {
            return Ok(());
        }
    }
}

impl Service {
    /// An entry was handed over: remove it and record what follows, in one transaction.
    pub fn delivered(
        &self,
        lane: &str,
        key: &[u8],
        entry: &Outgoing,
        handed: &Handed,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        self.write(|svc, txn, added| {
            txn.outbox_done(key)?;
            if let Some((k, v)) = &handed.remember {
                txn.set_transport_ref(k, v)?;
            }
            svc.after_delivery(txn, added, lane, entry, handed, now)
        })
    }

    /// An attempt failed: retry later, or give up and say so.
    #[allow(clippy::too_many_arguments)]
    pub fn refused(
        &self,
        lane: &str,
        key: &[u8],
        entry: &Outgoing,
        refused: &Refused,
        policy: &RetryPolicy,
        jitter: f64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        let mut entry = entry.clone();
        entry.attempts += 1;
        entry.last_error = Some(refused.failure.error.clone());
        self.write(|svc, txn, added| {
            match policy.next(entry.attempts, &refused.failure, refused.retry_after, jitter) {
                Next::RetryAfter(wait) => {
                    tracing::warn!(lane, attempts = entry.attempts, error = %refused.failure.error, "not delivered; will retry");
                    txn.outbox_retry(lane, key, now + wait, &entry)
                }
                Next::GiveUp => {
                    tracing::error!(lane, attempts = entry.attempts, error = %refused.failure.error, "not delivered; given up");
                    txn.outbox_done(key)?;
                    svc.gave_up(txn, added, &entry, now)
                }
            }
        })
    }
}
