//! The outbox's Teams side: a person's messages go to their 1:1 chat (created with
//! `POST /v3/conversations` when none is known yet), a conversation's to that conversation, the
//! support team's to the support channel, and an escalation's card is posted once and then
//! updated in place (`PUT …/activities/{id}`). A reply is posted as a reply to the activity that
//! asked for it. A person who blocked or removed the bot is marked unreachable: their reminders
//! stop and the support team is told, without the message.

use std::sync::Arc;

use super::connector::Failed;
use super::{ConversationRef, LAST_SERVICE_URL, PersonRef, Place, Teams, place, read_ref, render};
use crate::core::records::{Item, Outgoing, Recipient};
use crate::service::Service;
use crate::service::outbox::{Deliver, Handed, Refused};

pub(super) struct TeamsDelivery(pub Arc<Teams>);

/// Runs a blocking store operation off the async workers.
async fn blocking<T: Send + 'static>(
    svc: &Arc<Service>,
    f: impl FnOnce(&Service) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Refused> {
    let svc = svc.clone();
    tokio::task::spawn_blocking(move || f(&svc))
        .await
        .map_err(|e| Refused::transient(e.to_string()))?
        .map_err(|e| Refused::transient(format!("{e:#}")))
}

fn refused(f: Failed) -> Refused {
    match f {
        Failed::Refused(r) => r,
        Failed::Blocked => {
            Refused::permanent("the bot was blocked or removed (MessageWritesBlocked)")
        }
    }
}

impl Deliver for TeamsDelivery {
    async fn deliver(
        &self,
        svc: &Arc<Service>,
        _id: u64,
        entry: &Outgoing,
    ) -> Result<Handed, Refused> {
        let t = &self.0;
        if entry.to.is_support_team() {
            let Some(conversation) = t.settings.support_conversation() else {
                tracing::warn!(
                    "a message for the support team has no support conversation to go to"
                );
                return Ok(Handed::default());
            };
            let service_url = service_url_for(svc, conversation).await?;
            return match &entry.item {
                Item::EscalationCard { reference } => {
                    t.card(svc, &service_url, conversation, reference).await
                }
                Item::EscalationMail { .. } => {
                    Err(Refused::permanent("e-mail is not sent by Teams"))
                }
                Item::Message(_) | Item::Reminder { .. } => {
                    let m = svc.message_of(entry).unwrap_or_default();
                    t.connector
                        .post(&service_url, conversation, None, &render::activity(svc, &m))
                        .await
                        .map_err(refused)?;
                    Ok(Handed::default())
                }
            };
        }
        match place(&entry.to) {
            Some(Place::Conversation(c)) => {
                let id = c.clone();
                let Some(r) = blocking(svc, move |s| ConversationRef::load(s, &id)).await? else {
                    return Err(Refused::permanent(
                        "no serviceUrl is known for this conversation",
                    ));
                };
                let m = svc.message_of(entry).unwrap_or_default();
                let reply_to = reply_to(&r.reply_to, entry);
                t.connector
                    .post(&r.service_url, &c, reply_to, &render::activity(svc, &m))
                    .await
                    .map_err(refused)?;
                Ok(Handed::default())
            }
            Some(Place::User(_)) => t.to_person(svc, entry).await,
            None => Err(Refused::permanent(format!(
                "{} is not a Teams recipient",
                entry.to
            ))),
        }
    }
}

/// The activity to reply to: the one whose handling queued `entry` (a later message's reply, or
/// a reminder, is posted on its own).
fn reply_to<'a>(last: &'a Option<(String, i64)>, entry: &Outgoing) -> Option<&'a str> {
    let queued = entry.queued_at.timestamp_millis();
    match (&entry.item, last) {
        (Item::Message(_), Some((id, at))) if *at == queued => Some(id.as_str()),
        _ => None,
    }
}

/// Where the service of `conversation` is: as last heard from it, or as last heard from anyone.
async fn service_url_for(svc: &Arc<Service>, conversation: &str) -> Result<String, Refused> {
    let id = conversation.to_string();
    blocking(svc, move |s| {
        if let Some(r) = ConversationRef::load(s, &id)? {
            return Ok(Some(r.service_url));
        }
        s.store.transport_ref(LAST_SERVICE_URL)
    })
    .await?
    .ok_or_else(|| {
        Refused::transient("no serviceUrl known yet: mention the bot in the support channel once")
    })
}

impl Teams {
    async fn to_person(&self, svc: &Arc<Service>, entry: &Outgoing) -> Result<Handed, Refused> {
        let who = entry.to.clone();
        let key = super::person_ref_key(&who);
        let Some(r) = blocking(svc, move |s| {
            Ok(read_ref::<PersonRef>(s.store.transport_ref(&key)?))
        })
        .await?
        else {
            return Err(Refused::permanent(
                "nothing is known yet about how to reach them in Teams",
            ));
        };
        if r.unreachable {
            tracing::info!("a message was not sent: the person blocked or removed the bot");
            return Ok(Handed::default());
        }
        let conversation = match &r.conversation_id {
            Some(c) => c.clone(),
            None => {
                let c = self
                    .connector
                    .create_conversation(&r.service_url, &r.tenant_id, &r.user_id)
                    .await;
                let c = match c {
                    Err(Failed::Blocked) => return Err(self.blocked(svc, &who).await),
                    other => other.map_err(refused)?,
                };
                let (w, id) = (who.clone(), c.clone());
                blocking(svc, move |s| {
                    s.store.write(|txn| {
                        let mut r = PersonRef::load(txn, &w)?.unwrap_or_default();
                        r.conversation_id = Some(id);
                        r.save(txn, &w)
                    })
                })
                .await?;
                c
            }
        };
        let m = svc.message_of(entry).unwrap_or_default();
        let sent = self
            .connector
            .post(
                &r.service_url,
                &conversation,
                reply_to(&r.reply_to, entry),
                &render::activity(svc, &m),
            )
            .await;
        match sent {
            Ok(_) => Ok(Handed::default()),
            Err(Failed::Blocked) => Err(self.blocked(svc, &who).await),
            Err(other) => Err(refused(other)),
        }
    }

    /// `who` blocked or removed the bot: nothing more is sent to them and their reminders stop,
    /// in one transaction. The refusal returned gives the entry up, which tells the support team
    /// (without its content).
    async fn blocked(&self, svc: &Arc<Service>, who: &Recipient) -> Refused {
        tracing::warn!("a person blocked or removed the bot in Teams; marked unreachable");
        let w = who.clone();
        let marked = blocking(svc, move |s| {
            s.store.write(|txn| {
                let mut r = PersonRef::load(txn, &w)?.unwrap_or_default();
                let mut state = txn.user(&w)?;
                if !state.reminders_off {
                    state.reminders_off = true;
                    r.silenced = true;
                    txn.put_user(&w, &state)?;
                }
                r.unreachable = true;
                r.save(txn, &w)
            })
        })
        .await;
        if let Err(e) = marked {
            return e;
        }
        Refused::permanent(svc.engine().message("teams_blocked", &[]))
    }

    /// Posts (first time) or updates the card of an escalation, from its current record.
    async fn card(
        &self,
        svc: &Arc<Service>,
        service_url: &str,
        conversation: &str,
        reference: &str,
    ) -> Result<Handed, Refused> {
        let key = format!("teams:card:{reference}");
        let (r, k) = (reference.to_string(), key.clone());
        let (found, posted) = blocking(svc, move |s| {
            Ok((s.store.escalation(&r)?, s.store.transport_ref(&k)?))
        })
        .await?;
        let activity = match (&found, &posted) {
            (Some(e), _) => render::escalation_card(svc, e),
            // Erased at the person's request: the card keeps only the reference.
            (None, Some(_)) => render::erased_card(
                &svc.engine()
                    .message("card_erased", &[("reference", reference.to_string())]),
            ),
            (None, None) => return Ok(Handed::default()),
        };
        match posted {
            Some(id) => {
                self.connector
                    .update(service_url, conversation, &id, &activity)
                    .await
                    .map_err(refused)?;
                Ok(Handed::default())
            }
            None => {
                let id = self
                    .connector
                    .post(service_url, conversation, None, &activity)
                    .await
                    .map_err(refused)?;
                Ok(Handed {
                    receipt: None,
                    remember: Some((key, id)),
                })
            }
        }
    }
}
