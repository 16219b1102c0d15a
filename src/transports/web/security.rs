//! What every web response gets, declared once where the router is built: the security headers
//! (a Content-Security-Policy with no inline script and `frame-ancestors` from the settings,
//! `nosniff`, a Referrer-Policy, HSTS over HTTPS, `no-store` unless a route says otherwise), limits
//! on the request's body and headers, a timeout, compression, and error pages that never show an
//! internal error or a stack trace. The static assets are compiled into the binary.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use super::{App, pages};
use crate::config::WebSettings;

/// The largest request body accepted: a message is at most 2,000 characters, percent-encoded.
pub const MAX_BODY: usize = 16 * 1024;
/// The largest request head accepted (the request line and every header).
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a request (other than the live stream) may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The files under `static/`, compiled in: (name, media type, body).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "chat.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/chat.js"),
    ),
    (
        "support.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/support.js"),
    ),
    (
        "web.css",
        "text/css; charset=utf-8",
        include_bytes!("static/web.css"),
    ),
];

/// Limits for ordinary requests: body size and a timeout.
pub fn bounded(r: Router<App>) -> Router<App> {
    r.layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            TIMEOUT,
        ))
}

/// The layers every route gets.
pub fn secured(r: Router<App>, settings: &WebSettings) -> Router<App> {
    let ancestors = if settings.frame_ancestors.is_empty() {
        "'none'".to_string()
    } else {
        settings.frame_ancestors.join(" ")
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors {ancestors}"
    );
    let mut r = r
        .layer(axum::middleware::from_fn(head_limit))
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'none'")),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    if settings.cookie_secure {
        r = r.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    r.layer(CatchPanicLayer::custom(|_| {
        tracing::error!("a web request panicked");
        plain_error()
    }))
}

/// Refuses a request whose head is larger than `MAX_HEAD`.
async fn head_limit(req: Request, next: Next) -> Response {
    let size = req.uri().to_string().len()
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if size > MAX_HEAD {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "The request's headers are too large.",
        )
            .into_response();
    }
    let response = next.run(req).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the upload is never read, so the connection cannot carry another request:
        // saying so stops a client from sending its next request into a closed socket.
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            "That message is too long.",
        )
            .into_response();
    }
    response
}

/// A compiled-in asset, cached for an hour.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, media, body)) => (
            [
                (header::CONTENT_TYPE, *media),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            Body::from(*body),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn not_found(State(web): State<App>) -> Response {
    let engine = web.svc.engine();
    (
        StatusCode::NOT_FOUND,
        pages::notice(&engine, &engine.message("web_not_found", &[])),
    )
        .into_response()
}

/// The page for a failure a person cannot do anything about: the apology, never the error.
fn plain_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Sorry, something went wrong on our side. Please try again in a moment.",
    )
        .into_response()
}

/// An internal failure in a handler: logged with its context; the person sees the apology.
pub struct Failure(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        tracing::error!(error = %format!("{:#}", self.0), "a web request failed");
        plain_error()
    }
}
