//! systemd's notify protocol (`Type=notify`): READY once the database is open and the content
//! loaded, RELOADING around a content reload, STOPPING on the way out, and watchdog pings. Outside
//! systemd (no `NOTIFY_SOCKET`) every call does nothing.

use std::future::Future;
use std::time::Duration;

use sd_notify::NotifyState;

fn tell(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

pub fn ready() {
    tell(&[NotifyState::Ready]);
}

pub fn reloading() {
    tell(&[NotifyState::Reloading]);
}

pub fn stopping() {
    tell(&[NotifyState::Stopping]);
}

/// How often to ping the watchdog: half its timeout, when the unit sets `WatchdogSec=`.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|timeout| timeout / 2)
}

/// Pings the watchdog every `every` until `shutdown`. A process whose runtime is stuck stops
/// pinging, and systemd restarts it.
pub async fn watchdog(every: Duration, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => tell(&[NotifyState::Watchdog]),
            () = &mut shutdown => return Ok(()),
        }
    }
}
