//! The web chat's pages, as compile-time templates (maud): everything a person reads comes from
//! `data/replies.toml`, and everything that came from outside (the bot's text can carry a name or
//! an address) is escaped by the template and shown with control characters made visible.

use axum::response::Html;
use maud::{DOCTYPE, Markup, html};

use crate::core::engine::Engine;
use crate::core::records::Message;
use crate::understanding::text::{Breaks, for_display};

/// The form fields every state-changing form carries.
pub struct Form<'a> {
    pub csrf: &'a str,
}

fn layout(engine: &Engine, body: Markup) -> Html<String> {
    let title = engine.message("web_title", &[]);
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) }
                    link rel="stylesheet" href="/static/web.css";
                    script src="/static/chat.js" defer {}
                }
                body {
                    header class="banner" { p class="service" { (title) } }
                    main id="main" { (body) }
                }
            }
        }
        .into_string(),
    )
}

/// A page that only says something, with the way back.
pub fn notice(engine: &Engine, text: &str) -> Html<String> {
    layout(
        engine,
        html! {
            p class="notice" { (text) }
            p { a href="/" { (engine.message("web_back", &[])) } }
        },
    )
}

/// The chat: the conversation so far, the message box, and "Forget me".
pub fn chat(
    engine: &Engine,
    form: &Form,
    entries: &[(u64, i64, Message)],
    banner: Option<&str>,
) -> Html<String> {
    let after = entries.last().map_or(0, |(seq, _, _)| *seq);
    layout(
        engine,
        html! {
            @if let Some(b) = banner { p class="notice" role="status" { (b) } }
            p class="intro" { (engine.message("web_intro", &[])) }
            ol id="conversation" class="conversation" aria-live="polite" data-after=(after) {
                @for (seq, _, m) in entries { (entry(engine, form, *seq, m)) }
            }
            form id="send" class="send" method="post" action="/send" {
                (hidden(form))
                input type="hidden" name="nonce" value=(super::identity::random_hex(12));
                label for="message" { (engine.message("web_message_label", &[])) }
                input id="message" name="message" type="text" maxlength="2000" autocomplete="off" required;
                button type="submit" { (engine.message("web_send", &[])) }
            }
            form class="forget" method="get" action="/forget" {
                button type="submit" class="secondary" { (engine.message("web_forget", &[])) }
            }
        },
    )
}

/// Entries of the conversation on their own (for the live stream and script posts).
pub fn entries(engine: &Engine, form: &Form, entries: &[(u64, i64, Message)]) -> String {
    html! { @for (seq, _, m) in entries { (entry(engine, form, *seq, m)) } }.into_string()
}

/// One of the bot's messages: its paragraphs, its choices as buttons (each a form that sends the
/// choice) and its attachments as download links.
fn entry(engine: &Engine, form: &Form, seq: u64, m: &Message) -> Markup {
    let text = for_display(&m.text, Breaks::Keep);
    html! {
        li class="bot" data-seq=(seq) id={"m" (seq)} {
            span class="who" { (engine.message("web_bot", &[])) }
            @for para in text.split("\n\n") {
                p {
                    @for (i, line) in para.lines().enumerate() {
                        @if i > 0 { br; }
                        (line)
                    }
                }
            }
            @if !m.choices.is_empty() {
                div class="choices" {
                    @for c in &m.choices {
                        @if let Some(say) = crate::core::records::Choice::message(&c.id) {
                            form method="post" action="/send" class="choice" {
                                (hidden(form))
                                input type="hidden" name="message" value=(say);
                                button type="submit" { (c.label) }
                            }
                        }
                    }
                }
            }
            @for (n, a) in m.attachments.iter().enumerate() {
                p class="attachment" {
                    a href={"/files/" (seq) "/" (n)} download=(a.name) {
                        (engine.message("web_download", &[])) " " (a.name)
                    }
                }
            }
        }
    }
}

fn hidden(form: &Form) -> Markup {
    html! { input type="hidden" name="csrf" value=(form.csrf); }
}

/// "Forget me": the confirmation, as a form, with the way back.
pub fn forget(engine: &Engine, form: &Form) -> Html<String> {
    layout(
        engine,
        html! {
            p class="notice" { (engine.message("web_forget_confirm", &[])) }
            form method="post" action="/forget" {
                (hidden(form))
                button type="submit" class="danger" { (engine.message("choice_forget_confirm", &[])) }
            }
            p { a href="/" { (engine.message("choice_cancel", &[])) } }
        },
    )
}

/// A support page: the navigation and "Sign out" when signed in, and the script that follows
/// changes live.
pub fn support_layout(
    title: &str,
    session: Option<&crate::service::accounts::Session>,
    body: Markup,
) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · esrbot support" }
                    link rel="stylesheet" href="/static/web.css";
                    @if session.is_some_and(|s| !s.must_change) {
                        script src="/static/support.js" defer {}
                    }
                }
                body class="support" {
                    header class="banner" {
                        p class="service" { "esrbot support" }
                        @if let Some(s) = session {
                            nav {
                                @if !s.must_change {
                                    a href="/support/queue" { "Queue" }
                                    a href="/support/analytics" { "Analytics" }
                                    a href="/support/password" { "Password" }
                                }
                                span class="account" { "Signed in as " (s.account) }
                                form method="post" action="/support/logout" {
                                    input type="hidden" name="csrf" value=(s.csrf);
                                    button type="submit" class="secondary" { "Sign out" }
                                }
                            }
                        }
                    }
                    main id="main" { (body) }
                }
            }
        }
        .into_string(),
    )
}
