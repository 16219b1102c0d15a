//! The staff chat's handlers: thin, as axum's examples are. Each reads the browser's identity,
//! calls the service and renders a page. Without script the forms post and redirect back to the
//! page (POST/redirect/GET); with it (`static/chat.js`) the same forms post in the background and
//! the new entries come back as HTML, while `/events` streams whatever else arrives.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::stream::Stream;
use serde::Deserialize;

use super::identity::{COOKIE, Identity};
use super::pages;
use super::security::Failure;
use super::{App, KEEP};
use crate::core::records::Recipient;

/// The header the script sends with its posts: answer with the new entries, not a redirect.
const FETCH: &str = "x-esrbot-fetch";
/// How long the identity cookie lasts (a reminder can come days later).
const COOKIE_DAYS: i64 = 30;

#[derive(Deserialize, Default)]
pub struct PageQuery {
    forgotten: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct SendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    nonce: String,
    #[serde(default)]
    after: Option<u64>,
}

#[derive(Deserialize, Default)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize, Default)]
pub struct EventsQuery {
    after: Option<u64>,
}

fn cookies(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::COOKIE).and_then(|v| v.to_str().ok())
}

/// The browser's identity, or a new one (and the cookie that makes it so).
fn identity(web: &App, headers: &HeaderMap) -> (Identity, Option<HeaderValue>) {
    if let Some(who) = web.keys.read_cookies(cookies(headers)) {
        return (who, None);
    }
    let who = web.keys.fresh();
    let cookie = set_cookie(web, &web.keys.cookie_value(&who), COOKIE_DAYS * 86_400);
    (who, cookie)
}

fn set_cookie(web: &App, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if web.settings.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

fn with_cookie(mut r: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

async fn inbox(
    web: &App,
    who: Recipient,
    after: u64,
) -> Result<Vec<(u64, i64, crate::core::records::Message)>, Failure> {
    let s = web.svc.clone();
    Ok(tokio::task::spawn_blocking(move || s.store.web_inbox(&who, after, KEEP)).await??)
}

/// `GET /`: the conversation so far and the message box.
pub async fn page(
    State(web): State<App>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, Failure> {
    let (who, cookie) = identity(&web, &headers);
    let entries = inbox(&web, who.recipient(), 0).await?;
    let engine = web.svc.engine();
    let banner = q
        .forgotten
        .is_some()
        .then(|| engine.message("web_forget_done", &[]));
    let csrf = web.keys.csrf(&who);
    let page = pages::chat(
        &engine,
        &pages::Form { csrf: &csrf },
        &entries,
        banner.as_deref(),
    );
    Ok(with_cookie(page.into_response(), cookie))
}

/// A refusal a person can read: a page, or for the script the text alone.
fn refusal(web: &App, headers: &HeaderMap, status: StatusCode, key: &str) -> Response {
    let engine = web.svc.engine();
    let text = engine.message(key, &[]);
    if headers.contains_key(FETCH) {
        return (status, text).into_response();
    }
    (status, pages::notice(&engine, &text)).into_response()
}

/// The identity of a state-changing request, when its cookie and CSRF token hold.
fn verified(web: &App, headers: &HeaderMap, csrf: &str) -> Option<Identity> {
    web.keys
        .read_cookies(cookies(headers))
        .filter(|who| web.keys.csrf_holds(who, csrf))
}

/// `POST /send`: one message (or a choice's) from this browser.
pub async fn send(
    State(web): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<SendForm>,
) -> Result<Response, Failure> {
    let Some(who) = verified(&web, &headers, &f.csrf) else {
        return Ok(refusal(
            &web,
            &headers,
            StatusCode::FORBIDDEN,
            "web_session_changed",
        ));
    };
    let now = web.clock.now();
    // A browser over its own limit does not use up its address's allowance.
    let allowed = web
        .per_cookie
        .lock()
        .map(|mut l| l.allow(&who.id, now))
        .unwrap_or(false)
        && web
            .per_address
            .lock()
            .map(|mut l| l.allow(&peer.ip().to_string(), now))
            .unwrap_or(false);
    if !allowed {
        return Ok(refusal(
            &web,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            "error_rate_limited",
        ));
    }
    // A form posted twice (a double click, a browser's retry) is handled once.
    let nonce: String = f
        .nonce
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    let nonce = if nonce.is_empty() {
        super::identity::random_hex(12)
    } else {
        nonce
    };
    let event = format!("web:{}:{nonce}", who.id);
    let (s, to, text) = (web.svc.clone(), who.recipient(), f.message);
    let recipient = to.clone();
    tokio::task::spawn_blocking(move || {
        // The reply goes into the browser's inbox in the decision's own transaction.
        s.handle_once(&event, &to, None, &text, now, |_, txn, _, reply| {
            txn.web_deliver(&to, now, &reply.message(), KEEP)?;
            Ok(())
        })
    })
    .await??;
    let _ = web.live.send(recipient.clone());
    if !headers.contains_key(FETCH) {
        return Ok(Redirect::to("/#send").into_response());
    }
    let entries = inbox(&web, recipient, f.after.unwrap_or(0)).await?;
    let csrf = web.keys.csrf(&who);
    let html = pages::entries(&web.svc.engine(), &pages::Form { csrf: &csrf }, &entries);
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// `GET /events`: the entries after the last one the page has, then each new one as it arrives.
/// Without an identity: 401.
pub async fn events(
    State(web): State<App>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Response {
    let Some(who) = web.keys.read_cookies(cookies(&headers)) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or(q.after)
        .unwrap_or(0);
    Sse::new(live(web, who, after))
        .keep_alive(KeepAlive::default())
        .into_response()
}

struct Live {
    web: App,
    who: Identity,
    after: u64,
    rx: tokio::sync::broadcast::Receiver<Recipient>,
    stopping: tokio::sync::watch::Receiver<bool>,
    ready: std::collections::VecDeque<Event>,
}

fn live(web: App, who: Identity, after: u64) -> impl Stream<Item = Result<Event, Infallible>> {
    // Subscribed before the first read, so nothing delivered in between is missed.
    let state = Live {
        rx: web.live.subscribe(),
        stopping: web.stopping.clone(),
        web,
        who,
        after,
        ready: Default::default(),
    };
    futures_util::stream::unfold((state, true), |(mut s, mut look)| async move {
        loop {
            if let Some(e) = s.ready.pop_front() {
                return Some((Ok(e), (s, look)));
            }
            if look {
                look = false;
                let Ok(entries) = inbox(&s.web, s.who.recipient(), s.after).await else {
                    return None;
                };
                let csrf = s.web.keys.csrf(&s.who);
                let engine = s.web.svc.engine();
                for entry in entries {
                    s.after = entry.0;
                    let html = pages::entries(
                        &engine,
                        &pages::Form { csrf: &csrf },
                        std::slice::from_ref(&entry),
                    );
                    s.ready
                        .push_back(Event::default().id(entry.0.to_string()).data(html));
                }
                continue;
            }
            if *s.stopping.borrow() {
                return None;
            }
            let mine = s.who.recipient();
            tokio::select! {
                r = s.rx.recv() => match r {
                    Ok(to) => look = to == mine,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => look = true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
                _ = s.stopping.changed() => return None,
            }
        }
    })
}

/// `GET /forget`: the confirmation.
pub async fn forget_page(State(web): State<App>, headers: HeaderMap) -> Response {
    let (who, cookie) = identity(&web, &headers);
    let csrf = web.keys.csrf(&who);
    let page = pages::forget(&web.svc.engine(), &pages::Form { csrf: &csrf });
    with_cookie(page.into_response(), cookie)
}

/// `POST /forget`: erases everything about this browser, and the cookie with it.
pub async fn forget(
    State(web): State<App>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, Failure> {
    let Some(who) = verified(&web, &headers, &f.csrf) else {
        return Ok(refusal(
            &web,
            &headers,
            StatusCode::FORBIDDEN,
            "web_session_changed",
        ));
    };
    let (s, to, now) = (web.svc.clone(), who.recipient(), web.clock.now());
    tokio::task::spawn_blocking(move || s.forget(&to, now)).await??;
    let gone = set_cookie(&web, "", 0);
    Ok(with_cookie(
        Redirect::to("/?forgotten=1").into_response(),
        gone,
    ))
}

/// `GET /files/{seq}/{n}`: an attachment of one of this browser's messages, as a download.
pub async fn file(
    State(web): State<App>,
    headers: HeaderMap,
    Path((seq, n)): Path<(u64, usize)>,
) -> Result<Response, Failure> {
    let Some(who) = web.keys.read_cookies(cookies(&headers)) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let entries = inbox(&web, who.recipient(), seq.saturating_sub(1)).await?;
    let Some(a) = entries
        .into_iter()
        .find(|(s, _, _)| *s == seq)
        .and_then(|(_, _, m)| m.attachments.into_iter().nth(n))
    else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let media = if a.media_type == "text/calendar" {
        "text/calendar; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    let name: String = a
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(100)
        .collect();
    let name = if name.is_empty() {
        "file".to_string()
    } else {
        name
    };
    Ok((
        [
            (header::CONTENT_TYPE, media.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        a.body,
    )
        .into_response())
}
