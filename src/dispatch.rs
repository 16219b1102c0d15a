//! Time-driven work that survives restarts: one dispatcher sleeps until the earliest reminder in
//! the database (or until woken, or a short poll for work written by another process), claims what
//! is due and hands it to the transport. Anything that fell due while the bot was down is claimed
//! on the first pass after start.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc};

use crate::bot::{Bot, Notification};
use crate::state::Audience;
use crate::store::Txn;

/// How many reminders one transaction claims.
const BATCH: usize = 500;

/// The source of "now". The core never reads the clock itself; transports pass this in.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Runs until `shutdown` resolves or the receiver is dropped, delivering `audience`'s reminders.
/// `wake` is notified by whoever schedules new work, so an earlier reminder is not missed while
/// sleeping; `poll` bounds the sleep, because another process sharing the database (an
/// `esrbot escalations` command) may schedule work too.
pub async fn run(
    bot: Arc<Bot>,
    clock: Arc<dyn Clock>,
    out: mpsc::Sender<Notification>,
    wake: Arc<Notify>,
    poll: StdDuration,
    audience: Audience,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with(
        bot,
        clock,
        out,
        wake,
        poll,
        audience,
        |_: &mut Txn, _: &Notification| Ok(()),
        shutdown,
    )
    .await
}

/// Like `run`, and `sink` queues each notification for its transport in the transaction that
/// claims it (see `Bot::deliver_due_into`).
#[allow(clippy::too_many_arguments)]
pub async fn run_with<F>(
    bot: Arc<Bot>,
    clock: Arc<dyn Clock>,
    out: mpsc::Sender<Notification>,
    wake: Arc<Notify>,
    poll: StdDuration,
    audience: Audience,
    sink: F,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    F: Fn(&mut Txn, &Notification) -> anyhow::Result<()> + Send + Sync + Clone + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let now = clock.now();
        let (b, sink) = (bot.clone(), sink.clone());
        // redb commits block on fsync: keep them off the async worker threads.
        let due =
            tokio::task::spawn_blocking(move || b.deliver_due_into(now, BATCH, audience, sink))
                .await??;
        let full = due.len() == BATCH;
        for n in due {
            if out.send(n).await.is_err() {
                return Ok(());
            }
        }
        if full {
            continue;
        }
        if idle(
            bot.store.next_due_for(audience)?,
            clock.as_ref(),
            poll,
            &wake,
            shutdown.as_mut(),
        )
        .await
        {
            return Ok(());
        }
    }
}

/// The wait shared by the background tasks: until `next` (at most `poll`, since another process
/// may add work), or until woken. Returns true when `shutdown` fired.
pub async fn idle(
    next: Option<DateTime<Utc>>,
    clock: &dyn Clock,
    poll: StdDuration,
    wake: &Notify,
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    let wait = next
        .map(|t| (t - clock.now()).to_std().unwrap_or(StdDuration::ZERO))
        .unwrap_or(poll)
        .min(poll);
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = wake.notified() => false,
        _ = shutdown => true,
    }
}
