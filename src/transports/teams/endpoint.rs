//! The messaging endpoint, `POST /api/messages`: nothing is read from a request before its token
//! passes (`auth`), bodies are size-limited, and each activity is handled through the service
//! once, with its id recorded in the same transaction as what it decided and queued. The answer
//! is given as soon as that transaction is durable (Teams wants one within 15 s): replies, e-mail
//! and everything slow go through the outbox. When handling fails the person still gets a short
//! apology; the error itself is logged.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpListener;

use super::render::{self, SUBMIT_KEY};
use super::{
    ConversationRef, LAST_SERVICE_URL, PersonRef, Teams, conversation_recipient, user_key,
};
use crate::core::engine::Reply;
use crate::core::error::UserError;
use crate::core::escalation::Action;
use crate::core::records::{Choice, Message, Outgoing, Recipient};
use crate::service::{Added, Service};
use crate::store::Txn;

/// The largest activity accepted. Teams' own are a few kilobytes; a message's text is limited to
/// 2,000 characters further on.
const MAX_BODY: usize = 256 * 1024;

/// What staff type to have everything about them erased (after a confirmation card).
const FORGET_ME: &[&str] = &["forget me", "forget-me", "/forget-me", "/esr forget-me"];

pub(super) async fn serve(
    listener: TcpListener,
    teams: Arc<Teams>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/api/messages", post(messages))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(teams);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the Teams messaging endpoint")
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Account {
    id: String,
    name: Option<String>,
    aad_object_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Conversation {
    id: String,
    conversation_type: Option<String>,
    tenant_id: Option<String>,
}

/// The parts of a Bot Framework activity the bot reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Activity {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    service_url: String,
    from: Account,
    recipient: Account,
    conversation: Conversation,
    text: Option<String>,
    value: Option<Value>,
    entities: Option<Vec<Value>>,
    channel_data: Option<Value>,
}

impl Activity {
    /// A 1:1 chat with the bot (Teams says "personal"; other channels may say nothing).
    fn personal(&self) -> bool {
        self.conversation
            .conversation_type
            .as_deref()
            .is_none_or(|t| t == "personal")
    }

    fn tenant(&self) -> String {
        self.conversation
            .tenant_id
            .clone()
            .or_else(|| {
                self.channel_data
                    .as_ref()
                    .and_then(|c| c["tenant"]["id"].as_str().map(str::to_string))
            })
            .unwrap_or_default()
    }

    fn mentions_bot(&self) -> bool {
        self.entities.iter().flatten().any(|e| {
            e["type"] == "mention" && e["mentioned"]["id"].as_str() == Some(&self.recipient.id)
        })
    }

    /// The id its handling is recorded under (activity ids are unique within a conversation).
    fn event(&self) -> String {
        format!("teams:activity:{}:{}", self.conversation.id, self.id)
    }

    fn who(&self) -> Recipient {
        user_key(&self.from.id)
    }

    /// What an `Action.Submit` sent back.
    fn submitted(&self) -> Option<&str> {
        self.value.as_ref().and_then(|v| v[SUBMIT_KEY].as_str())
    }
}

async fn messages(
    State(t): State<Arc<Teams>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let claims = match t.verifier.verify(authorization).await {
        Ok(c) => c,
        Err(r) => {
            tracing::warn!(why = %r.why, "a Teams request was refused");
            return (status(r.status), "unauthorized");
        }
    };
    let Ok(activity) = serde_json::from_slice::<Activity>(&body) else {
        tracing::warn!("a Teams request with a signed token had an unreadable activity");
        return (StatusCode::BAD_REQUEST, "unreadable activity");
    };
    if let Err(r) = claims.check_service_url(&activity.service_url) {
        tracing::warn!(why = %r.why, "a Teams request was refused");
        return (status(r.status), "forbidden");
    }
    if !t.settings.allows(&activity.service_url) {
        tracing::warn!("a Teams activity's serviceUrl is not under teams.allowed_service_urls");
        return (StatusCode::FORBIDDEN, "serviceUrl not allowed");
    }
    match t.on_activity(&activity).await {
        Ok(()) => (StatusCode::OK, ""),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "handling a Teams activity failed");
            if activity.kind == "message" {
                // The apology is not queued (the transaction failed): sent directly, off the
                // request path.
                let t = t.clone();
                tokio::spawn(async move {
                    let sorry = Message::text(t.svc.engine().message("error", &[]));
                    let _ = t.reply_now(&activity, &sorry).await;
                });
            }
            (StatusCode::INTERNAL_SERVER_ERROR, "")
        }
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::UNAUTHORIZED)
}

/// Runs a blocking store operation off the async workers.
async fn blocking<T: Send + 'static>(
    svc: &Arc<Service>,
    f: impl FnOnce(&Service) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let svc = svc.clone();
    tokio::task::spawn_blocking(move || f(&svc)).await?
}

impl Teams {
    async fn on_activity(&self, a: &Activity) -> anyhow::Result<()> {
        match a.kind.as_str() {
            "message" => self.on_message(a).await,
            "conversationUpdate" | "installationUpdate" => {
                let (a, now) = (a.clone(), self.clock.now());
                blocking(&self.svc, move |svc| {
                    svc.write(|_, txn, _| {
                        if txn.first_sighting(&a.event(), now)? {
                            remember(txn, &a, now)?;
                        }
                        Ok(())
                    })
                })
                .await
            }
            _ => Ok(()),
        }
    }

    async fn on_message(&self, a: &Activity) -> anyhow::Result<()> {
        if a.from.id.is_empty() || a.conversation.id.is_empty() || a.id.is_empty() {
            anyhow::bail!("a message activity without its sender, conversation or id");
        }
        if let Some(id) = a.submitted() {
            return self.on_submit(a, id).await;
        }
        if !a.personal() && !a.mentions_bot() {
            return Ok(());
        }
        let text = render::strip_mentions(a.text.as_deref().unwrap_or_default());
        if FORGET_ME.iter().any(|f| text.eq_ignore_ascii_case(f)) {
            return self.forget_prompt(a).await;
        }
        self.answer(a, text).await
    }

    /// Handles `text` as the person's message: the reply in their 1:1 chat, or in the channel
    /// when nothing in it is personal.
    async fn answer(&self, a: &Activity, text: String) -> anyhow::Result<()> {
        let now = self.clock.now();
        let engine = self.svc.engine();
        let pointer = engine.message("teams_sent_privately", &[]);
        let secret = engine.message("discord_secret_not_removed", &[]);
        let a = a.clone();
        let handled = blocking(&self.svc, move |svc| {
            let who = a.who();
            svc.handle_once(
                &a.event(),
                &who,
                a.from.name.as_deref(),
                &text,
                now,
                |svc, txn, added, reply| {
                    remember(txn, &a, now)?;
                    for entry in reply_entries(reply, &a, &pointer, now) {
                        svc.enqueue(txn, added, &entry, now)?;
                    }
                    if reply.had_secret && !a.personal() {
                        // Teams lets no bot delete a person's message: they are asked to.
                        svc.tell(txn, added, &who, secret.clone(), now)?;
                    }
                    Ok(())
                },
            )
        })
        .await?;
        if handled.is_none() {
            tracing::info!("duplicate Teams activity ignored");
        }
        Ok(())
    }

    /// A card's button: a choice said as a message, a support action, or forget-me's answer.
    async fn on_submit(&self, a: &Activity, id: &str) -> anyhow::Result<()> {
        if let Some(rest) = id.strip_prefix("esc:") {
            let (action, reference) = rest.split_once(':').unwrap_or((rest, ""));
            let Some(action) = Action::parse(action) else {
                return Ok(());
            };
            return self.support_action(a, action, reference.to_string()).await;
        }
        match id {
            "forget:confirm" => self.forget(a).await,
            "forget:cancel" => {
                let text = self.svc.engine().message("discord_forget_cancelled", &[]);
                self.queue_once(a, move |svc, txn, added, a, now| {
                    svc.tell(txn, added, &a.who(), text, now)
                })
                .await
            }
            _ => match Choice::message(id) {
                Some(text) => self.answer(a, text.to_string()).await,
                None => Ok(()),
            },
        }
    }

    /// Runs `f` in one transaction with the activity's id and its sender's reference, once.
    async fn queue_once(
        &self,
        a: &Activity,
        f: impl FnOnce(&Service, &mut Txn, &mut Added, &Activity, DateTime<Utc>) -> anyhow::Result<()>
        + Send
        + 'static,
    ) -> anyhow::Result<()> {
        let (a, now) = (a.clone(), self.clock.now());
        blocking(&self.svc, move |svc| {
            svc.write(|svc, txn, added| {
                if !txn.first_sighting(&a.event(), now)? {
                    return Ok(());
                }
                remember(txn, &a, now)?;
                f(svc, txn, added, &a, now)
            })
        })
        .await
    }

    fn is_support(&self, a: &Activity) -> bool {
        // Deny by default: no Entra object id means no.
        a.from.aad_object_id.as_deref().is_some_and(|id| {
            self.settings
                .support_user_ids
                .iter()
                .any(|s| s.trim().eq_ignore_ascii_case(id))
        })
    }

    /// Acknowledge, resolve or retry, for `support_user_ids` only. The action, its audit entry,
    /// the card's update and the staff member's notice commit with the activity's id; a refusal
    /// goes to the presser's 1:1 chat, not the channel.
    async fn support_action(
        &self,
        a: &Activity,
        action: Action,
        reference: String,
    ) -> anyhow::Result<()> {
        if !self.is_support(a) {
            tracing::warn!(user = %a.from.id, action = ?action, reference = %reference, "support action refused: not in teams.support_user_ids");
            let no = self.svc.explain(&UserError::NotSupport);
            return self
                .queue_once(a, move |svc, txn, added, a, now| {
                    svc.tell(txn, added, &a.who(), no, now)
                })
                .await;
        }
        let by = format!(
            "{} (teams:{})",
            a.from.name.as_deref().unwrap_or("someone"),
            a.from.aad_object_id.as_deref().unwrap_or_default()
        );
        self.queue_once(a, move |svc, txn, added, a, now| {
            match svc.escalation_action_in(txn, added, &reference, action, &by, None, now)? {
                Ok(_) => Ok(()),
                Err(refusal) => svc.tell(txn, added, &a.who(), svc.explain(&refusal), now),
            }
        })
        .await
    }

    /// "forget me": a confirmation card in their 1:1 chat.
    async fn forget_prompt(&self, a: &Activity) -> anyhow::Result<()> {
        let engine = self.svc.engine();
        let card = Message {
            text: engine.message("discord_forget_confirm", &[]),
            choices: crate::transports::forget_choices(&engine),
            attachments: Vec::new(),
        };
        let pointer = engine.message("teams_sent_privately", &[]);
        self.queue_once(a, move |svc, txn, added, a, now| {
            svc.enqueue(txn, added, &Outgoing::message(a.who(), card, now), now)?;
            if !a.personal() {
                let here = conversation_recipient(&a.conversation.id);
                svc.enqueue(
                    txn,
                    added,
                    &Outgoing::message(here, Message::text(pointer), now),
                    now,
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Erases everything about the person (their reference to reach them included), then says
    /// so directly: nothing is left to queue a message to them with.
    async fn forget(&self, a: &Activity) -> anyhow::Result<()> {
        let (who, now) = (a.who(), self.clock.now());
        let n = blocking(&self.svc, move |svc| svc.forget(&who, now)).await?;
        let done = self
            .svc
            .engine()
            .message("discord_forget_done", &[("count", n.to_string())]);
        if let Err(e) = self.reply_now(a, &Message::text(done)).await {
            tracing::warn!(error = ?e, "the erasure was done but could not be confirmed in Teams");
        }
        Ok(())
    }

    /// Replies to `a` at once, outside the outbox (when there is nothing to queue it with).
    async fn reply_now(
        &self,
        a: &Activity,
        m: &Message,
    ) -> Result<String, super::connector::Failed> {
        self.connector
            .post(
                &a.service_url,
                &a.conversation.id,
                Some(&a.id),
                &render::activity(&self.svc, m),
            )
            .await
    }
}

/// Keeps how to reach whoever sent `a`, and where its conversation is, in the caller's
/// transaction. A person heard from again after blocking the bot is reachable again, with their
/// reminders back on if the block had switched them off.
fn remember(txn: &mut Txn, a: &Activity, now: DateTime<Utc>) -> anyhow::Result<()> {
    txn.set_transport_ref(LAST_SERVICE_URL, &a.service_url)?;
    let reply_to = (a.kind == "message").then(|| (a.id.clone(), now.timestamp_millis()));
    if !a.personal() {
        ConversationRef {
            service_url: a.service_url.clone(),
            reply_to: reply_to.clone(),
        }
        .save(txn, &a.conversation.id)?;
    }
    // Activities about the bot itself (its own install in a team) name no person.
    if a.from.id.is_empty() || a.from.id == a.recipient.id {
        return Ok(());
    }
    let who = a.who();
    let mut r = PersonRef::load(txn, &who)?.unwrap_or_default();
    r.service_url.clone_from(&a.service_url);
    r.tenant_id = a.tenant();
    r.user_id.clone_from(&a.from.id);
    if a.from.aad_object_id.is_some() {
        r.aad_object_id.clone_from(&a.from.aad_object_id);
    }
    if a.personal() {
        r.conversation_id = Some(a.conversation.id.clone());
        r.reply_to = reply_to;
    }
    if r.unreachable {
        r.unreachable = false;
        if r.silenced {
            let mut state = txn.user(&who)?;
            state.reminders_off = false;
            txn.put_user(&who, &state)?;
            r.silenced = false;
        }
    }
    r.save(txn, &who)
}

/// What a reply to a message queues: in a 1:1 chat as it is; in a channel, personal answers go to
/// the person's 1:1 chat with a short pointer in the channel.
fn reply_entries(reply: &Reply, a: &Activity, pointer: &str, now: DateTime<Utc>) -> Vec<Outgoing> {
    let to_person = Outgoing::message(a.who(), reply.message(), now);
    if a.personal() {
        return vec![to_person];
    }
    let here = conversation_recipient(&a.conversation.id);
    if reply.personal || reply.had_secret {
        vec![
            to_person,
            Outgoing::message(here, Message::text(pointer), now),
        ]
    } else {
        vec![Outgoing::message(here, reply.message(), now)]
    }
}
