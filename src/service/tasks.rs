//! The background tasks of one process (dispatcher, senders, listeners), supervised together: one
//! stop signal for all, and the first that fails stops the process with its error instead of
//! leaving it half alive.

use std::future::Future;

use tokio::sync::watch;
use tokio::task::JoinSet;

pub struct Tasks {
    set: JoinSet<(&'static str, anyhow::Result<()>)>,
    stop: watch::Sender<bool>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks::new()
    }
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks {
            set: JoinSet::new(),
            stop: watch::channel(false).0,
        }
    }

    /// Resolves when `stop` is called: each task's shutdown signal.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Runs `task`, known in errors as `name`.
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.set.spawn(async move { (name, task.await) });
    }

    /// Waits until a task fails (an error or a panic) and returns its error. A task that ends
    /// well is simply gone; with none left this never resolves.
    pub async fn failure(&mut self) -> anyhow::Error {
        loop {
            match self.set.join_next().await {
                None => std::future::pending::<()>().await,
                Some(Ok((_, Ok(())))) => {}
                Some(Ok((name, Err(e)))) => return e.context(format!("{name} stopped")),
                Some(Err(e)) => return anyhow::anyhow!("a background task failed: {e}"),
            }
        }
    }

    /// Signals every task to stop and waits for them all; the first error, if any.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut first = None;
        while let Some(joined) = self.set.join_next().await {
            let err = match joined {
                Ok((_, Ok(()))) => continue,
                Ok((name, Err(e))) => e.context(format!("{name} stopped")),
                Err(e) => anyhow::anyhow!("a background task failed: {e}"),
            };
            tracing::error!(error = %format!("{err:#}"), "while stopping");
            first.get_or_insert(err);
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_failure_is_reported_and_stop_waits_for_the_rest() {
        let mut tasks = Tasks::new();
        let stopped = tasks.stopped();
        tasks.spawn("waiter", async move {
            stopped.await;
            Ok(())
        });
        tasks.spawn("done", async { Ok(()) });
        tasks.spawn("broken", async { anyhow::bail!("database damaged") });
        let e = tasks.failure().await;
        assert_eq!(format!("{e:#}"), "broken stopped: database damaged");
        tokio::time::timeout(std::time::Duration::from_secs(5), tasks.stop())
            .await
            .expect("stop ends every task")
            .expect("the rest ended well");
    }
}
