//! The support team's pages under `/support`: sign-in (with the forced change of a one-time
//! password), the queue, each escalation's detail and history, and the actions on it. Deny by
//! default: every route but the sign-in page needs a session; a page without one redirects to
//! the sign-in page and an API call (the live stream) gets 401. Accounts, sessions, throttling
//! and the audit are `service::accounts`'; the actions are the same service calls as the command
//! line's and Discord's, recorded under the signed-in name.

use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::App;
use super::pages::support_layout as layout;
use super::security::Failure;
use crate::core::escalation::Action;
use crate::core::records::{Escalation, EscalationKind, EscalationStatus};
use crate::service::accounts::{Accounts, Session, SignInError};
use crate::understanding::text::{Breaks, for_display};

/// The support session's cookie (only sent to `/support`).
const COOKIE: &str = "esrbot_support";
/// How often the live stream looks for changes made by any channel (another process included).
const WATCH_EVERY: StdDuration = StdDuration::from_secs(1);

fn accounts(web: &App) -> Accounts<'_> {
    web.svc.accounts()
}

fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::COOKIE)?
        .to_str()
        .ok()?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The signed-in session, when the cookie is a live session's.
async fn session(web: &App, headers: &HeaderMap) -> Option<(String, Session)> {
    let token = token(headers)?;
    let (w, t, now) = (web.clone(), token.clone(), web.clock.now());
    let s = tokio::task::spawn_blocking(move || accounts(&w).session(&t, now).ok())
        .await
        .ok()??;
    Some((token, s))
}

fn to_login() -> Response {
    Redirect::to("/support/login").into_response()
}

/// A state-changing request from another site is refused whatever it carries (the session
/// cookie is SameSite=Strict as well).
fn same_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|s| s == "same-origin" || s == "none")
}

/// A signed-in page: the session, or the redirect to sign in (or to change a one-time password).
pub(super) async fn page_session(
    web: &App,
    headers: &HeaderMap,
) -> Result<(String, Session), Response> {
    match session(web, headers).await {
        Some((_, s)) if s.must_change => Err(Redirect::to("/support/password").into_response()),
        Some(found) => Ok(found),
        None => Err(to_login()),
    }
}

#[derive(Deserialize, Default)]
pub struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn login_page(State(web): State<App>, headers: HeaderMap) -> Response {
    if session(&web, &headers).await.is_some() {
        return Redirect::to("/support/queue").into_response();
    }
    login_form(None).into_response()
}

fn login_form(problem: Option<&str>) -> axum::response::Html<String> {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            @if let Some(p) = problem { p class="notice" role="alert" { (p) } }
            form method="post" action="/support/login" {
                p {
                    label for="username" { "Username" }
                    input id="username" name="username" type="text" autocomplete="username" required;
                }
                p {
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub async fn login(
    State(web): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Result<Response, Failure> {
    if !same_site(&headers) {
        return Ok(StatusCode::FORBIDDEN.into_response());
    }
    let (w, now) = (web.clone(), web.clock.now());
    let signed = tokio::task::spawn_blocking(move || {
        accounts(&w).sign_in(&f.username, &f.password, peer.ip(), now)
    })
    .await?;
    match signed {
        Ok(s) => {
            let secure = if web.settings.cookie_secure {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{COOKIE}={}; Path=/support; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
                s.token,
                (s.session.expires_at - now).num_seconds().max(0)
            );
            let next = if s.session.must_change {
                "/support/password"
            } else {
                "/support/queue"
            };
            let mut r = Redirect::to(next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(r)
        }
        Err(SignInError::Internal(e)) => Err(e.into()),
        Err(e @ SignInError::Throttled { .. }) => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            login_form(Some(&e.to_string())),
        )
            .into_response()),
        Err(e) => Ok((StatusCode::UNAUTHORIZED, login_form(Some(&e.to_string()))).into_response()),
    }
}

#[derive(Deserialize, Default)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(web): State<App>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, Failure> {
    if let Some((token, s)) = session(&web, &headers).await
        && s.csrf_ok(&f.csrf)
        && same_site(&headers)
    {
        let w = web.clone();
        tokio::task::spawn_blocking(move || accounts(&w).sign_out(&token)).await??;
    }
    let mut r = to_login();
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "esrbot_support=; Path=/support; Max-Age=0; HttpOnly; SameSite=Strict",
        ),
    );
    Ok(r)
}

#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    again: String,
}

fn password_form(s: &Session, problem: Option<&str>) -> axum::response::Html<String> {
    layout(
        "Choose a new password",
        Some(s),
        html! {
            h1 { "Choose a new password" }
            @if s.must_change { p { "You signed in with a one-time password. Choose your own before you go on." } }
            @if let Some(p) = problem { p class="notice" role="alert" { (p) } }
            form method="post" action="/support/password" {
                input type="hidden" name="csrf" value=(s.csrf);
                @if !s.must_change {
                    p {
                        label for="current" { "Current password" }
                        input id="current" name="current" type="password" autocomplete="current-password" required;
                    }
                }
                p {
                    label for="new" { "New password" }
                    input id="new" name="new" type="password" autocomplete="new-password" minlength="12" required;
                }
                p {
                    label for="again" { "New password again" }
                    input id="again" name="again" type="password" autocomplete="new-password" required;
                }
                button type="submit" { "Change password" }
            }
        },
    )
}

pub async fn password_page(State(web): State<App>, headers: HeaderMap) -> Response {
    match session(&web, &headers).await {
        Some((_, s)) => password_form(&s, None).into_response(),
        None => to_login(),
    }
}

pub async fn password(
    State(web): State<App>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Result<Response, Failure> {
    let Some((token, s)) = session(&web, &headers).await else {
        return Ok(to_login());
    };
    if !s.csrf_ok(&f.csrf) || !same_site(&headers) {
        return Ok(StatusCode::FORBIDDEN.into_response());
    }
    if f.new != f.again {
        return Ok((
            StatusCode::BAD_REQUEST,
            password_form(&s, Some("The two new passwords are not the same.")),
        )
            .into_response());
    }
    let (w, now) = (web.clone(), web.clock.now());
    let current = (!s.must_change).then_some(f.current);
    let changed = tokio::task::spawn_blocking(move || {
        accounts(&w).change_password(&token, current.as_deref(), &f.new, now)
    })
    .await?;
    match changed {
        Ok(_) => Ok(Redirect::to("/support/queue").into_response()),
        Err(crate::service::accounts::PasswordError::Internal(e)) => Err(e.into()),
        Err(e) => Ok((
            StatusCode::BAD_REQUEST,
            password_form(&s, Some(&e.to_string())),
        )
            .into_response()),
    }
}

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    status: Option<String>,
    kind: Option<String>,
}

pub async fn queue(
    State(web): State<App>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Result<Response, Failure> {
    let (_, s) = match page_session(&web, &headers).await {
        Ok(found) => found,
        Err(r) => return Ok(r),
    };
    let status = q.status.as_deref().and_then(EscalationStatus::parse);
    let kind = q.kind.as_deref().and_then(EscalationKind::parse);
    let svc = web.svc.clone();
    let mut all = tokio::task::spawn_blocking(move || svc.store.escalations()).await??;
    all.retain(|e| status.is_none_or(|st| e.status == st) && kind.is_none_or(|k| e.kind == k));
    all.sort_by_key(|e| e.created_at);
    let tz = web.tz;
    let body = html! {
        h1 { "Escalations" }
        form method="get" action="/support/queue" class="filters" {
            label for="status" { "Status" }
            select id="status" name="status" {
                option value="" { "any" }
                @for st in EscalationStatus::ALL {
                    option value=(st.as_str()) selected[status == Some(st)] { (st.as_str()) }
                }
            }
            label for="kind" { "Kind" }
            select id="kind" name="kind" {
                option value="" { "any" }
                @for k in [EscalationKind::EmailChanged, EscalationKind::TalkToHuman] {
                    option value=(k.as_str()) selected[kind == Some(k)] { (k.as_str()) }
                }
            }
            button type="submit" { "Filter" }
        }
        @if all.is_empty() {
            p { "No escalations." }
        } @else {
            table id="queue" {
                thead { tr { th { "Reference" } th { "Kind" } th { "Status" } th { "Staff member" } th { "Created" } } }
                tbody {
                    @for e in &all {
                        tr data-status=(e.status.as_str()) {
                            td { a href={"/support/escalations/" (e.reference)} { (e.reference) } }
                            td { (e.kind.as_str()) }
                            td { (e.status.as_str()) }
                            td { (who(e)) }
                            td { (e.created_at.with_timezone(&tz).format("%Y-%m-%d %H:%M")) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Escalations", Some(&s), body).into_response())
}

fn who(e: &Escalation) -> String {
    for_display(
        e.display_name.as_deref().unwrap_or(e.user.as_str()),
        Breaks::Show,
    )
}

pub async fn detail(
    State(web): State<App>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Result<Response, Failure> {
    let (_, s) = match page_session(&web, &headers).await {
        Ok(found) => found,
        Err(r) => return Ok(r),
    };
    let reference = reference.to_ascii_uppercase();
    let (svc, r) = (web.svc.clone(), reference.clone());
    let found = tokio::task::spawn_blocking(move || svc.store.escalation(&r)).await??;
    let Some(e) = found else {
        return Ok((
            StatusCode::NOT_FOUND,
            layout(
                "Not found",
                Some(&s),
                html! { p { "There is no escalation " (reference) "." } },
            ),
        )
            .into_response());
    };
    Ok(layout(&e.reference, Some(&s), escalation(&web, &s, &e, None)).into_response())
}

fn escalation(web: &App, s: &Session, e: &Escalation, problem: Option<&str>) -> Markup {
    let tz = web.tz;
    let action = |name: &str, label: &str, note: bool| {
        html! {
            form method="post" action={"/support/escalations/" (e.reference) "/" (name)} class="action" {
                input type="hidden" name="csrf" value=(s.csrf);
                @if note {
                    label for="note" { "Note for the staff member (optional)" }
                    textarea id="note" name="note" rows="3" maxlength="500" {}
                }
                button type="submit" { (label) }
            }
        }
    };
    html! {
        h1 { (e.reference) }
        @if let Some(p) = problem { p class="notice" role="alert" { (p) } }
        dl id="detail" {
            dt { "Kind" } dd { (e.kind.as_str()) }
            dt { "Status" } dd id="status" { (e.status.as_str()) }
            dt { "Staff member" } dd { (who(e)) }
            @if let Some(a) = &e.new_address { dt { "New address" } dd { (for_display(a, Breaks::Show)) } }
            @if let Some(p) = &e.problem { dt { "About" } dd { (p) } }
            @if let Some(c) = &e.contact { dt { "Contact" } dd { (for_display(&c.describe(), Breaks::Show)) } }
            @for (label, value) in e.volunteered.lines() { dt { (label) } dd { (for_display(&value, Breaks::Show)) } }
            dt { "Created" } dd { (e.created_at.with_timezone(&tz).format("%Y-%m-%d %H:%M")) }
        }
        h2 { "History" }
        ol id="history" {
            @for h in &e.history {
                li {
                    (h.at.with_timezone(&tz).format("%Y-%m-%d %H:%M")) " · " (h.status.as_str()) " by " (for_display(&h.by, Breaks::Show))
                    @if let Some(n) = &h.note { " · " (for_display(n, Breaks::Show)) }
                }
            }
        }
        @if !matches!(e.status, EscalationStatus::Resolved) {
            div class="actions" {
                @if !matches!(e.status, EscalationStatus::Acknowledged) { (action("acknowledge", "Acknowledge", false)) }
                (action("resolve", "Resolve", true))
                @if matches!(e.status, EscalationStatus::Failed) { (action("retry", "Retry e-mail", false)) }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

pub async fn act(
    State(web): State<App>,
    headers: HeaderMap,
    Path((reference, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Result<Response, Failure> {
    let (_, s) = match page_session(&web, &headers).await {
        Ok(found) => found,
        Err(r) => return Ok(r),
    };
    if !s.csrf_ok(&f.csrf) || !same_site(&headers) {
        return Ok(StatusCode::FORBIDDEN.into_response());
    }
    let Some(action) = Action::parse(&action) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let note = Some(f.note.trim().to_string()).filter(|n| !n.is_empty());
    let (svc, by, now, r) = (
        web.svc.clone(),
        s.account.clone(),
        web.clock.now(),
        reference.clone(),
    );
    let done = tokio::task::spawn_blocking(move || {
        svc.escalation_action(&r, action, &by, note.as_deref(), now)
    })
    .await??;
    match done {
        Ok(e) => Ok(Redirect::to(&format!("/support/escalations/{}", e.reference)).into_response()),
        Err(refusal) => {
            let text = web.svc.explain(&refusal);
            let (svc, r) = (web.svc.clone(), reference.to_ascii_uppercase());
            let found = tokio::task::spawn_blocking(move || svc.store.escalation(&r)).await??;
            let body = match found {
                Some(e) => escalation(&web, &s, &e, Some(&text)),
                None => html! { p class="notice" { (text) } },
            };
            Ok((StatusCode::CONFLICT, layout(&reference, Some(&s), body)).into_response())
        }
    }
}

/// `GET /support/events`: an event whenever any escalation changes (from any channel or
/// process: the records are compared once a second). Without a session: 401.
pub async fn events(State(web): State<App>, headers: HeaderMap) -> Response {
    match session(&web, &headers).await {
        Some((_, s)) if !s.must_change => {}
        _ => return StatusCode::UNAUTHORIZED.into_response(),
    }
    let stream = futures_util::stream::unfold(
        (web.clone(), None::<u64>, web.stopping.clone()),
        |(web, mut last, mut stopping)| async move {
            loop {
                let svc = web.svc.clone();
                let now = tokio::task::spawn_blocking(move || fingerprint(&svc))
                    .await
                    .ok()?
                    .ok()?;
                if last.is_some_and(|l| l != now) {
                    let e = Event::default().event("escalations").data("changed");
                    return Some((
                        Ok::<_, std::convert::Infallible>(e),
                        (web, Some(now), stopping),
                    ));
                }
                last = Some(now);
                tokio::select! {
                    _ = tokio::time::sleep(WATCH_EVERY) => {}
                    _ = stopping.changed() => return None,
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A digest of every escalation's reference, status and history length.
fn fingerprint(svc: &crate::service::Service) -> anyhow::Result<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for e in svc.store.escalations()? {
        e.reference.hash(&mut h);
        e.status.as_str().hash(&mut h);
        e.history.len().hash(&mut h);
    }
    Ok(h.finish())
}

/// `GET /support`: the queue, or the sign-in page.
pub async fn home() -> Response {
    Redirect::to("/support/queue").into_response()
}
