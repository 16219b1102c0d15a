//! Time-driven work that survives restarts. One dispatcher per process sleeps until the earliest
//! job of its lanes (or until woken by an earlier one, or a long poll for work another process
//! wrote), claims what is due and turns each job into what it says, queued in the outbox, in the
//! same transaction: a crash can neither lose nor repeat a reminder. Anything that fell due while
//! the bot was down is claimed on the first pass after start.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::core::records::{Message, Outgoing, Reminder};
use crate::service::{Service, Waker};

/// How many jobs one transaction claims.
pub const BATCH: usize = 1000;

/// Claims up to `limit` jobs of `lanes` due by `now`, runs each (state change, next job of its
/// timer) and queues what it says for its recipient, all in one transaction per lane. A job whose
/// next job is already due (a warning found after its link expired) is followed at once. Returns
/// the reminders queued.
pub fn run_due(
    svc: &Service,
    lanes: &[String],
    now: DateTime<Utc>,
    limit: usize,
) -> anyhow::Result<Vec<Reminder>> {
    let mut out = Vec::new();
    for lane in lanes {
        if out.len() >= limit {
            break;
        }
        if svc.store.next_job_due(lane)?.is_none_or(|t| t > now) {
            continue;
        }
        let room = limit - out.len();
        let said = svc.write(|svc, txn, added| {
            let mut said = Vec::new();
            let mut claimed = 0;
            while claimed < room {
                let due = txn.take_due_jobs(lane, now, (room - claimed).min(BATCH))?;
                if due.is_empty() {
                    break;
                }
                claimed += due.len();
                for job in due {
                    let mut state = txn.user(&job.recipient)?;
                    let outcome = svc.engine.on_due(&mut state, &job, now);
                    for old in &outcome.cancel {
                        txn.cancel(lane, &job.recipient, *old)?;
                    }
                    for next in &outcome.next {
                        txn.schedule(lane, next)?;
                        added.jobs.push((lane.clone(), next.due.timestamp_millis()));
                    }
                    txn.put_user(&job.recipient, &state)?;
                    if let Some(text) = outcome.say {
                        let entry = Outgoing::message(
                            job.recipient.clone(),
                            Message::text(text.clone()),
                            now,
                        );
                        svc.enqueue(txn, added, &entry, now)?;
                        said.push(Reminder {
                            to: job.recipient.clone(),
                            kind: job.kind,
                            due: job.due,
                            text,
                        });
                    }
                }
            }
            Ok(said)
        })?;
        out.extend(said);
    }
    Ok(out)
}

/// The earliest due job of `lanes`.
pub fn next_due(svc: &Service, lanes: &[String]) -> anyhow::Result<Option<DateTime<Utc>>> {
    let mut next: Option<DateTime<Utc>> = None;
    for lane in lanes {
        if let Some(t) = svc.store.next_job_due(lane)? {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    }
    Ok(next)
}

/// Runs until `shutdown` resolves, claiming `lanes`' jobs as they fall due. `poll` bounds the
/// sleep only for work another process may have scheduled in these lanes; this process's own
/// scheduling wakes the dispatcher directly, and only when the new job is earlier than the next.
pub async fn run(
    svc: Arc<Service>,
    clock: Arc<dyn Clock>,
    lanes: Vec<String>,
    poll: StdDuration,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let waker = Arc::new(Waker::new(lanes.clone()));
    svc.register_jobs(waker.clone());
    loop {
        let now = clock.now();
        let (s, l) = (svc.clone(), lanes.clone());
        // redb commits block on fsync: keep them off the async worker threads.
        let (claimed, next) = tokio::task::spawn_blocking(move || {
            let claimed = run_due(&s, &l, now, BATCH)?.len();
            anyhow::Ok((claimed, next_due(&s, &l)?))
        })
        .await??;
        if claimed > 0 {
            tracing::debug!(claimed, "jobs claimed");
        }
        if next.is_some_and(|t| t <= now) {
            continue;
        }
        waker.set_next(next);
        if idle(next, clock.as_ref(), poll, &waker, shutdown.as_mut()).await {
            return Ok(());
        }
    }
}

/// The wait shared by the background tasks: until `next` (at most `poll`), or until woken.
/// Returns true when `shutdown` fired.
pub async fn idle(
    next: Option<DateTime<Utc>>,
    clock: &dyn Clock,
    poll: StdDuration,
    waker: &Waker,
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    let wait = next
        .map(|t| (t - clock.now()).to_std().unwrap_or(StdDuration::ZERO))
        .unwrap_or(poll)
        .min(poll);
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = waker.notified() => false,
        _ = shutdown => true,
    }
}
