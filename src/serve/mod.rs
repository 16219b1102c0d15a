//! `esrbot serve`: the one long-running process a trust runs under systemd or in a container. It
//! starts every configured transport, the job dispatcher, the mail sender and the admin listener;
//! reloads the content on SIGHUP; and on SIGTERM or SIGINT stops taking messages, lets commits
//! in flight finish and exits. Jobs claimed but not delivered stay in the database.

pub mod admin;
mod systemd;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::clock::Clock;
use crate::config::Config;
use crate::service::tasks::Tasks;
use crate::service::{Service, load_engine};

/// How long the tasks get to stop after a signal before the process gives up on them.
pub const STOP_WITHIN: Duration = Duration::from_secs(9);

/// What `serve` runs with: the settings, the service, and the secrets from the environment.
pub struct Serve {
    pub config: Config,
    pub svc: Arc<Service>,
    pub clock: Arc<dyn Clock>,
    pub discord_token: Option<String>,
    /// The Teams app's client secret (TEAMS_APP_PASSWORD); Teams runs when `[teams] listen` is set.
    pub teams_password: Option<String>,
    /// The metrics recorder's handle, rendered on `/metrics` (None: no metrics route).
    pub metrics: Option<PrometheusHandle>,
}

/// Installs the Prometheus recorder (once per process) with the latency histograms' buckets.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            crate::metrics::LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(crate::metrics::JOB_LATENESS_SECONDS.into()),
            crate::metrics::LATENESS_BUCKETS,
        )?
        .install_recorder()?;
    crate::metrics::describe();
    Ok(handle)
}

/// Runs until `shutdown` resolves or a task fails (then the error is returned).
pub async fn run(s: Serve, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let Serve {
        config,
        svc,
        clock,
        discord_token,
        teams_password,
        metrics,
    } = s;
    let mut tasks = Tasks::new();
    if let Some(handle) = metrics.clone() {
        // Histogram samples are folded into their buckets here, so memory stays bounded even
        // when nothing scrapes `/metrics`.
        let stopped = tasks.stopped();
        tasks.spawn("the metrics upkeep", async move {
            tokio::pin!(stopped);
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => handle.run_upkeep(),
                    () = &mut stopped => return Ok(()),
                }
            }
        });
    }
    // The admin listener first: a health check can see the rest come up.
    if let Some(address) = config.admin.address()? {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| anyhow::anyhow!("admin.listen: cannot listen on {address}: {e}"))?;
        tracing::info!(%address, "admin listener");
        let state = admin::State {
            svc: svc.clone(),
            config: config.clone(),
            metrics,
        };
        tasks.spawn(
            "the admin listener",
            admin::serve(listener, state, tasks.stopped()),
        );
    }
    crate::service::start_common(&mut tasks, &config, &svc, &clock)?;
    match discord_token {
        Some(token) => {
            crate::transports::discord::start(&mut tasks, &config, &svc, token, &clock).await?
        }
        None => tracing::info!("DISCORD_TOKEN is not set: Discord is off"),
    }
    // Teams on its own listener, when `[teams] listen` is set.
    match crate::transports::teams::bind(&config.teams).await? {
        Some(listener) => {
            let password = teams_password.ok_or_else(|| {
                anyhow::anyhow!(
                    "teams.listen is set: put the app's client secret in the environment variable TEAMS_APP_PASSWORD"
                )
            })?;
            crate::transports::teams::start(&mut tasks, &config, &svc, password, &clock, listener)?
        }
        None => tracing::info!("teams.listen is empty: Teams is off"),
    }
    match crate::transports::web::bind(&config.web).await? {
        Some(listener) => {
            crate::transports::web::start(&mut tasks, &config, &svc, &clock, listener)?
        }
        None => tracing::info!("web.listen is empty: the web chat is off"),
    }
    systemd::ready();
    if let Some(every) = systemd::watchdog_interval() {
        let stopped = tasks.stopped();
        tasks.spawn("the systemd watchdog", systemd::watchdog(every, stopped));
    }
    let outcome = tokio::select! {
        e = tasks.failure() => Err(e),
        () = reload_on_hangup(&svc, &config) => Ok(()),
        () = shutdown => Ok(()),
    };
    systemd::stopping();
    tracing::info!("stopping");
    let stopped = match tokio::time::timeout(STOP_WITHIN, tasks.stop()).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!(
            "the background tasks did not stop within {} s",
            STOP_WITHIN.as_secs()
        )),
    };
    outcome.and(stopped)
}

/// Reloads on every SIGHUP; never resolves.
async fn reload_on_hangup(svc: &Arc<Service>, config: &Config) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the content");
                    let _ = reload(svc.clone(), config.clone()).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: reload with POST /reload")
            }
        }
    }
    std::future::pending::<()>().await;
}

/// Loads `intents/` and `data/` afresh and trains the classifier; when that works, the new engine
/// replaces the old in one step (messages being handled finish on the old one). A broken edit
/// keeps the old content: each problem is logged with its file and line and shown on `/readyz`.
pub async fn reload(svc: Arc<Service>, config: Config) -> Result<(), Vec<String>> {
    systemd::reloading();
    let loaded = tokio::task::spawn_blocking(move || load_engine(&config))
        .await
        .map_err(|e| vec![format!("reload failed: {e}")])
        .and_then(|r| r.map_err(|e| problem_lines(&e)));
    let result = match loaded {
        Ok(engine) => {
            svc.replace_engine(Arc::new(engine));
            svc.health.note("content", None);
            metrics::counter!(crate::metrics::RELOADS, "result" => "ok").increment(1);
            tracing::info!("content reloaded");
            Ok(())
        }
        Err(problems) => {
            for p in &problems {
                tracing::error!(problem = %p, "content not reloaded");
            }
            svc.health.note(
                "content",
                Some(format!(
                    "the last reload failed and the previous content is in force: {}",
                    problems.join("; ")
                )),
            );
            metrics::counter!(crate::metrics::RELOADS, "result" => "failed").increment(1);
            Err(problems)
        }
    };
    systemd::ready();
    result
}

/// A load error's problems, one a line (file and line first), without the hint to run check.
fn problem_lines(e: &anyhow::Error) -> Vec<String> {
    format!("{e:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("(run `esrbot check`"))
        .map(str::to_string)
        .collect()
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
