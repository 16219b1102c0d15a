//! The admin listener, for a trust's IT team and its monitoring, on its own address
//! (`[admin] listen`): `GET /livez`, `GET /readyz`, `GET /metrics` (Prometheus text) and
//! `POST /reload`. It shows no personal data: counts and states only.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::config::Config;
use crate::service::Service;

#[derive(Clone)]
pub struct State {
    pub svc: Arc<Service>,
    pub config: Config,
    pub metrics: Option<PrometheusHandle>,
}

pub fn router(state: State) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/reload", post(reload))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: State,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// 200 when the database is open and sound, the content loaded and every enabled transport
/// connected; else 503. The body names each part that is not ready, and carries notes (a failed
/// reload) either way.
async fn readyz(Extract(s): Extract<State>) -> Response {
    if s.svc.store.is_damaged() {
        s.svc
            .health
            .not_ready("database", "damaged: restore a backup");
    }
    let (ready, waiting) = s.svc.health.report();
    let notes = s.svc.health.notes();
    let body = json!({ "ready": ready, "not_ready": waiting, "notes": notes });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(Extract(s): Extract<State>) -> Response {
    let Some(handle) = s.metrics.clone() else {
        return (StatusCode::NOT_FOUND, "metrics are off\n").into_response();
    };
    // Gauges read from the database when scraped, not kept up to date on every change.
    let svc = s.svc.clone();
    let counted = tokio::task::spawn_blocking(move || {
        anyhow::Ok((svc.store.job_count()?, svc.store.outbox_depths()?))
    })
    .await;
    match counted {
        Ok(Ok((jobs, depths))) => {
            metrics::gauge!(crate::metrics::JOBS_PENDING).set(jobs as f64);
            for channel in outbox_channels() {
                let depth = depths.get(channel).copied().unwrap_or(0);
                metrics::gauge!(crate::metrics::OUTBOX_DEPTH, "transport" => channel)
                    .set(depth as f64);
            }
        }
        Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "metrics: reading the database"),
        Err(e) => tracing::error!(error = %e, "metrics: reading the database"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// Every lane channel an outbox depth is reported for, zero included.
fn outbox_channels() -> Vec<&'static str> {
    let mut channels: Vec<&str> = crate::transports::REGISTRY
        .iter()
        .map(|t| t.channel)
        .collect();
    channels.extend([crate::service::SUPPORT_LANE, crate::service::MAIL_LANE]);
    channels.sort_unstable();
    channels.dedup();
    channels
}

async fn reload(Extract(s): Extract<State>) -> Response {
    match super::reload(s.svc.clone(), s.config.clone()).await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({ "reloaded": true }))).into_response(),
        Err(problems) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "reloaded": false, "problems": problems })),
        )
            .into_response(),
    }
}
