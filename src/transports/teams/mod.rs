//! The Microsoft Teams transport (`esrbot serve` with `[teams] listen` set), built directly on the
//! Bot Connector REST API: no Bot Framework SDK. Staff talk to the same engine as everywhere else,
//! in their 1:1 chat with the bot or by mentioning it in a channel; anything personal goes to the
//! 1:1 chat. Every incoming request must carry a Bearer JWT that passes Microsoft's checks
//! (`auth`), and nothing unsigned is ever handled. Replies, reminders and the support team's cards
//! go through the durable outbox, written in the same transaction as the decision, with the
//! activity id recorded there too so that an activity delivered twice is handled once.
//!
//! This file wires the parts together: `auth` (incoming JWTs, the bot's own tokens), `connector`
//! (the REST calls), `endpoint` (`POST /api/messages`), `render` (Adaptive Cards) and `deliver`
//! (the outbox's Teams side). It must never send a token outside `allowed_service_urls`.

mod auth;
mod connector;
mod deliver;
mod endpoint;
mod render;

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::{Config, TeamsSettings};
use crate::core::records::Recipient;
use crate::service::tasks::Tasks;
use crate::service::{SUPPORT_LANE, Service, outbox};
use crate::store::Txn;
use crate::transports::TransportSpec;

/// Teams as the registry sees it: one lane for everyone on it, and the support team's home when a
/// support conversation is set (and Discord's is not: Discord comes first in the registry).
pub const SPEC: TransportSpec = TransportSpec {
    channel: "teams",
    per_recipient_lanes: false,
    hosts_support: |c| c.teams.enabled() && c.teams.support_conversation().is_some(),
    shows_cards: true,
    messages: &[
        "teams_sent_privately",
        "teams_blocked",
        "teams_choices_fallback",
        "discord_secret_not_removed",
        "discord_forget_confirm",
        "discord_forget_done",
        "discord_forget_cancelled",
        "choice_forget_confirm",
        "choice_cancel",
    ],
};

/// The recipient a Teams user is kept under: their Bot Framework user id (`29:…`).
pub fn user_key(id: &str) -> Recipient {
    Recipient::new(SPEC.channel, id)
}

/// A conversation of Teams (a channel, a group chat), as a recipient: replies posted where they
/// were asked.
fn conversation_recipient(id: &str) -> Recipient {
    Recipient::new(SPEC.channel, &format!("conv/{id}"))
}

/// Where a Teams recipient is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// A person: their 1:1 chat with the bot.
    User(String),
    /// A conversation.
    Conversation(String),
}

fn place(r: &Recipient) -> Option<Place> {
    if r.channel() != SPEC.channel || r.id().is_empty() {
        return None;
    }
    Some(match r.id().strip_prefix("conv/") {
        Some(c) => Place::Conversation(c.to_string()),
        None => Place::User(r.id().to_string()),
    })
}

/// How to reach a person proactively: what Microsoft calls a conversation reference. Kept under
/// "teams:<user id>#reference", so it is erased with the person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PersonRef {
    service_url: String,
    tenant_id: String,
    user_id: String,
    aad_object_id: Option<String>,
    /// The 1:1 conversation, once known (from their own 1:1 activity, or created).
    conversation_id: Option<String>,
    /// Their last 1:1 message (activity id, when it was handled in ms): the reply queued while
    /// handling it is posted as a reply to it.
    reply_to: Option<(String, i64)>,
    /// The bot was blocked or removed (403 MessageWritesBlocked): nothing more is sent.
    unreachable: bool,
    /// Their reminders were switched off because of that (and come back on when they return).
    silenced: bool,
}

/// A conversation that is not a person's 1:1 chat, kept under "teams:conversation:<id>": where
/// its service is, and its last message to reply to (as `PersonRef::reply_to`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct ConversationRef {
    service_url: String,
    reply_to: Option<(String, i64)>,
}

/// The last serviceUrl seen: for the support conversation before anything was heard from it.
const LAST_SERVICE_URL: &str = "teams:service_url";

fn person_ref_key(who: &Recipient) -> String {
    Txn::person_ref_key(who, "reference")
}

fn conversation_ref_key(id: &str) -> String {
    format!("teams:conversation:{id}")
}

fn read_ref<T: for<'de> Deserialize<'de>>(found: Option<String>) -> Option<T> {
    found.and_then(|s| serde_json::from_str(&s).ok())
}

impl PersonRef {
    fn load(txn: &Txn, who: &Recipient) -> anyhow::Result<Option<PersonRef>> {
        Ok(read_ref(txn.transport_ref(&person_ref_key(who))?))
    }

    fn save(&self, txn: &mut Txn, who: &Recipient) -> anyhow::Result<()> {
        txn.set_transport_ref(&person_ref_key(who), &serde_json::to_string(self)?)
    }
}

impl ConversationRef {
    fn load(svc: &Service, id: &str) -> anyhow::Result<Option<ConversationRef>> {
        Ok(read_ref(
            svc.store.transport_ref(&conversation_ref_key(id))?,
        ))
    }

    fn save(&self, txn: &mut Txn, id: &str) -> anyhow::Result<()> {
        txn.set_transport_ref(&conversation_ref_key(id), &serde_json::to_string(self)?)
    }
}

/// What the transport's parts share.
struct Teams {
    svc: Arc<Service>,
    settings: TeamsSettings,
    clock: Arc<dyn Clock>,
    verifier: auth::Verifier,
    connector: connector::Connector,
}

/// Runs the bot on Teams alone until `shutdown` resolves: the messaging endpoint on `listener`,
/// its sender, the job dispatcher and the mail sender (what `esrbot serve` runs when only Teams
/// is configured; the tests use it).
pub async fn run(
    config: Config,
    svc: Arc<Service>,
    password: String,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let mut tasks = Tasks::new();
    start(&mut tasks, &config, &svc, password, &clock, listener)?;
    crate::service::start_common(&mut tasks, &config, &svc, &clock)?;
    let outcome = tokio::select! {
        e = tasks.failure() => Err(e),
        () = shutdown => Ok(()),
    };
    let stopped = tasks.stop().await;
    outcome.and(stopped)
}

/// Binds the messaging endpoint's address (`teams.listen`).
pub async fn bind(settings: &TeamsSettings) -> anyhow::Result<Option<TcpListener>> {
    let Some(address) = settings.address()? else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("teams.listen: cannot listen on {address}: {e}"))?;
    tracing::info!(%address, "Teams messaging endpoint");
    Ok(Some(listener))
}

/// Starts Teams' tasks: the messaging endpoint, the sender of its outbox lane (and the support
/// team's, when its conversation is set) and the forgetting of old activity ids. They stop with
/// `tasks`.
pub fn start(
    tasks: &mut Tasks,
    config: &Config,
    svc: &Arc<Service>,
    password: String,
    clock: &Arc<dyn Clock>,
    listener: TcpListener,
) -> anyhow::Result<()> {
    let settings = config.teams.clone();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()?;
    let teams = Arc::new(Teams {
        svc: svc.clone(),
        settings: settings.clone(),
        clock: clock.clone(),
        verifier: auth::Verifier::new(http.clone(), &settings, clock.clone()),
        connector: connector::Connector::new(http, &settings, password, clock.clone()),
    });
    let mut lanes = vec![SPEC.channel.to_string()];
    if crate::transports::claims_support(&SPEC, config) {
        lanes.push(SUPPORT_LANE.to_string());
    }
    tasks.spawn(
        "the Teams sender",
        outbox::run(
            svc.clone(),
            clock.clone(),
            config.outbox.runner(lanes),
            deliver::TeamsDelivery(teams.clone()),
            tasks.stopped(),
        ),
    );
    tasks.spawn(
        "the Teams housekeeping",
        crate::service::forget_old_events(svc.clone(), clock.clone(), tasks.stopped()),
    );
    svc.health.ready(SPEC.channel);
    tasks.spawn(
        "the Teams messaging endpoint",
        endpoint::serve(listener, teams, tasks.stopped()),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_people_or_conversations() {
        assert_eq!(
            place(&user_key("29:1abc")),
            Some(Place::User("29:1abc".into()))
        );
        assert_eq!(
            place(&conversation_recipient("19:x@thread.tacv2;messageid=1")),
            Some(Place::Conversation("19:x@thread.tacv2;messageid=1".into()))
        );
        assert_eq!(place(&"discord:42".into()), None);
        assert_eq!(place(&"teams:".into()), None);
    }
}
