//! The web transport (`esrbot serve` with `[web] listen`): the staff chat at `/` for browsers on
//! a trust's intranet, on the same engine, timers and reminders as every other channel. A browser
//! is the recipient `web:<id>` of a signed cookie (`identity`). What the bot says to it is kept in
//! its inbox table, written in the same transaction as the decision (a reply) or the outbox's
//! hand-over (a reminder), so nothing is lost when the page is closed or the process is killed:
//! the next visit shows it, and an open page gets it live over server-sent events. The person's
//! own words are never stored. Only this module imports the HTTP stack's layers and templates.
//!
//! This file wires the parts: `chat` (the staff chat's handlers), `support` (the support team's
//! sign-in, queue and actions), `analytics` (its figures, charts and declined questions), `pages`
//! (maud templates), `identity` (the chat's cookie and CSRF token) and `security` (headers,
//! limits and error pages).

mod analytics;
mod chat;
mod identity;
mod pages;
mod security;
mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use chrono::Duration;
use tokio::sync::{broadcast, watch};

use crate::clock::Clock;
use crate::config::{Config, WebSettings};
use crate::core::records::{Outgoing, Recipient};
use crate::service::Service;
use crate::service::outbox::{self, Deliver, Handed, Refused};
use crate::service::ratelimit::RateLimiter;
use crate::service::tasks::Tasks;
use crate::transports::TransportSpec;

/// The web chat as the registry sees it: one lane for every browser (the server delivers them
/// all); the support team works on its own pages, not here.
pub const SPEC: TransportSpec = TransportSpec {
    channel: "web",
    per_recipient_lanes: false,
    hosts_support: |_| false,
    shows_cards: false,
    messages: &[
        "web_title",
        "web_intro",
        "web_message_label",
        "web_send",
        "web_you",
        "web_bot",
        "web_forget",
        "web_forget_confirm",
        "web_forget_done",
        "web_session_changed",
        "web_not_found",
        "web_download",
        "web_back",
        "choice_forget_confirm",
        "choice_cancel",
        "error_rate_limited",
        "error",
    ],
};

/// How many of the bot's messages a browser's conversation keeps (older ones are dropped).
const KEEP: usize = 50;
/// How long the conversation is kept after a message was shown in it.
const KEEP_FOR: Duration = Duration::days(7);

/// What every handler shares.
pub(crate) struct Web {
    svc: Arc<Service>,
    clock: Arc<dyn Clock>,
    settings: WebSettings,
    /// The zone times are shown in (`bot.timezone`).
    tz: chrono_tz::Tz,
    keys: identity::Keys,
    per_cookie: Mutex<RateLimiter>,
    per_address: Mutex<RateLimiter>,
    /// A browser's inbox grew: its open pages read it again.
    live: broadcast::Sender<Recipient>,
    /// Becomes true when the server stops, so live streams end and the server can close.
    stopping: watch::Receiver<bool>,
}

type App = Arc<Web>;

/// Runs the web chat alone until `shutdown` resolves: the server on `listener`, its outbox
/// sender, the job dispatcher and the mail sender (tests run it in-process).
pub async fn run(
    config: Config,
    svc: Arc<Service>,
    clock: Arc<dyn Clock>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let mut tasks = Tasks::new();
    start(&mut tasks, &config, &svc, &clock, listener)?;
    crate::service::start_common(&mut tasks, &config, &svc, &clock)?;
    let outcome = tokio::select! {
        e = tasks.failure() => Err(e),
        () = shutdown => Ok(()),
    };
    outcome.and(tasks.stop().await)
}

/// Binds `[web] listen` (None when it is empty).
pub async fn bind(settings: &WebSettings) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(address) = settings.address()? else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("web.listen: cannot listen on {address}: {e}"))?;
    tracing::info!(%address, "web server");
    Ok(Some(listener))
}

/// Starts the web server on `listener`, the sender of the web lane and the housekeeping; they
/// stop with `tasks`.
pub fn start(
    tasks: &mut Tasks,
    config: &Config,
    svc: &Arc<Service>,
    clock: &Arc<dyn Clock>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    let settings = config.web.clone();
    let keys = identity::Keys::load(svc, std::env::var("ESRBOT_WEB_KEY").ok())?;
    let (live, _) = broadcast::channel(256);
    let (stop, stopping) = watch::channel(false);
    let web: App = Arc::new(Web {
        svc: svc.clone(),
        clock: clock.clone(),
        per_cookie: Mutex::new(RateLimiter::new(settings.rate_limit_per_minute)),
        per_address: Mutex::new(RateLimiter::new(settings.address_rate_limit_per_minute)),
        settings,
        tz: config.timezone()?,
        keys,
        live,
        stopping,
    });
    tasks.spawn(
        "the web sender",
        outbox::run(
            svc.clone(),
            clock.clone(),
            config.outbox.runner(vec![SPEC.channel.to_string()]),
            Inbox { web: web.clone() },
            tasks.stopped(),
        ),
    );
    tasks.spawn(
        "the web housekeeping",
        housekeeping(web.clone(), tasks.stopped()),
    );
    let app = router(web);
    let stopped = tasks.stopped();
    tasks.spawn("the web server", async move {
        let shutdown = async move {
            stopped.await;
            let _ = stop.send(true);
        };
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| anyhow::anyhow!("web server: {e}"))
    });
    Ok(())
}

fn router(web: App) -> Router {
    let settings = web.settings.clone();
    let pages = Router::new()
        .route("/", get(chat::page))
        .route("/send", axum::routing::post(chat::send))
        .route("/forget", get(chat::forget_page).post(chat::forget))
        .route("/files/{seq}/{n}", get(chat::file))
        .route("/static/{name}", get(security::asset))
        .route("/support", get(support::home))
        .route(
            "/support/login",
            get(support::login_page).post(support::login),
        )
        .route("/support/logout", axum::routing::post(support::logout))
        .route(
            "/support/password",
            get(support::password_page).post(support::password),
        )
        .route("/support/queue", get(support::queue))
        .route("/support/escalations/{reference}", get(support::detail))
        .route(
            "/support/escalations/{reference}/{action}",
            axum::routing::post(support::act),
        )
        .route("/support/analytics", get(analytics::page))
        .route("/support/analytics.csv", get(analytics::csv))
        .route("/support/declined", get(analytics::declined))
        .route(
            "/support/declined/{id}",
            axum::routing::post(analytics::mark),
        )
        .fallback(security::not_found);
    let pages = security::bounded(pages);
    // The live stream stays open: it has no request timeout.
    let streams = Router::new()
        .route("/events", get(chat::events))
        .route("/support/events", get(support::events));
    security::secured(pages.merge(streams), &settings).with_state(web)
}

/// The outbox's web side: a message is put in its browser's inbox and its open pages are told.
/// A repeat after a crash (the same outbox id) is recognised and not shown twice.
struct Inbox {
    web: App,
}

impl Deliver for Inbox {
    async fn deliver(
        &self,
        svc: &Arc<Service>,
        id: u64,
        entry: &Outgoing,
    ) -> Result<Handed, Refused> {
        if entry.to.channel() != SPEC.channel {
            return Err(Refused::permanent(format!(
                "{} is not a web recipient",
                entry.to
            )));
        }
        let Some(message) = svc.message_of(entry) else {
            return Err(Refused::permanent(
                "cards and e-mail are not shown in the web chat",
            ));
        };
        let (s, to, now) = (svc.clone(), entry.to.clone(), self.web.clock.now());
        let event = format!("web:outbox:{id}");
        let to_store = to.clone();
        tokio::task::spawn_blocking(move || {
            s.store.write(|txn| {
                if txn.first_sighting(&event, now)? {
                    txn.web_deliver(&to_store, now, &message, KEEP)?;
                }
                Ok(())
            })
        })
        .await
        .map_err(|e| Refused::transient(e.to_string()))?
        .map_err(|e| Refused::transient(format!("{e:#}")))?;
        let _ = self.web.live.send(to);
        Ok(Handed::default())
    }
}

/// Once an hour: forgets conversations not added to for `KEEP_FOR`, and event ids older than a
/// day (a repeat comes within minutes).
async fn housekeeping(web: App, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (s, now) = (web.svc.clone(), web.clock.now());
        tokio::task::spawn_blocking(move || {
            s.store.write(|txn| {
                txn.forget_events_before(now - Duration::days(1))?;
                txn.web_forget_before(now - KEEP_FOR)
            })
        })
        .await??;
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = &mut shutdown => return Ok(()),
        }
    }
}
