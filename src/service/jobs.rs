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
use crate::core::records::{Item, Job, JobKind, Outgoing, Reminder};
use crate::service::{Service, Waker};
use crate::store::Claimed;

/// How many jobs one transaction claims: large enough that a backlog is not paced by fsync, small
/// enough that the write lock is held for tens of milliseconds at most.
pub const BATCH: usize = 5000;

/// Claims up to `limit` jobs of `lanes` due by `now`, runs each (state change, next job of its
/// timer) and queues the reminder it gives for its recipient, one transaction per batch. A job
/// whose next job is already due (a warning found after its link expired) is followed at once.
/// `told` sees each reminder queued. Returns how many jobs were claimed.
pub fn claim_due(
    svc: &Service,
    lanes: &[String],
    now: DateTime<Utc>,
    limit: usize,
    mut told: impl FnMut(&Job, JobKind, DateTime<Utc>),
) -> anyhow::Result<usize> {
    let mut claimed = 0;
    for lane in lanes {
        while claimed < limit {
            if svc.store.next_job_due(lane)?.is_none_or(|t| t > now) {
                break;
            }
            let room = (limit - claimed).min(BATCH);
            let n = svc.write(|svc, txn, added| {
                let (mut earliest_next, mut sent) = (None::<i64>, 0u64);
                let engine = svc.engine();
                let n = txn.claim_due(lane, now, room, |job, state| {
                    let late = (now - job.due).num_milliseconds().max(0) as f64 / 1000.0;
                    metrics::histogram!(crate::metrics::JOB_LATENESS_SECONDS).record(late);
                    let outcome = engine.on_due(state, job, now);
                    for next in &outcome.next {
                        let due = next.due.timestamp_millis();
                        earliest_next = Some(earliest_next.map_or(due, |e| e.min(due)));
                    }
                    // A reminder goes to the job's recipient, whose lane this is.
                    let send = outcome.tell.map(|(kind, at)| {
                        told(job, kind, at);
                        sent += 1;
                        Outgoing::new(job.recipient.clone(), Item::Reminder { kind, at }, now)
                    });
                    Claimed {
                        cancel: outcome.cancel,
                        schedule: outcome.next,
                        send,
                    }
                })?;
                if let Some(due) = earliest_next {
                    added.jobs.push((lane.clone(), due));
                }
                if sent > 0 {
                    added.outbox.push((lane.clone(), now.timestamp_millis()));
                    // Counted with the claim that queued them.
                    let day = crate::service::analytics::reminder_key(now, engine.rules.tz);
                    txn.count([(day.as_slice(), sent)]);
                }
                Ok(n)
            })?;
            // Loop again even after a short batch: a claimed job's next job may be due already.
            claimed += n;
        }
    }
    Ok(claimed)
}

/// `claim_due`, returning the reminders queued with their words (for tools and tests).
pub fn run_due(
    svc: &Service,
    lanes: &[String],
    now: DateTime<Utc>,
    limit: usize,
) -> anyhow::Result<Vec<Reminder>> {
    let mut out = Vec::new();
    claim_due(svc, lanes, now, limit, |job, kind, at| {
        out.push(Reminder {
            to: job.recipient.clone(),
            kind,
            due: job.due,
            text: svc.engine().reminder_text(kind, at, now),
        });
    })?;
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
            let claimed = claim_due(&s, &l, now, BATCH, |_, _, _| {})?;
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
