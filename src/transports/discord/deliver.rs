//! The outbox's Discord side: a person's messages go to their DMs, a channel's to the channel,
//! the support team's to the support channel, and an escalation's card is posted once and then
//! edited in place. Each message carries its outbox id as Discord's enforced nonce, so a resend
//! after a crash is dropped by Discord instead of shown twice.

use std::sync::Arc;

use chrono::Duration;
use serenity::all::{ChannelId, CreateMessage, EditMessage, Http, MessageId, Nonce, UserId};

use super::render::{self, MAX_CONTENT, mentions_none, rows};
use super::{Place, place};
use crate::config::DiscordSettings;
use crate::core::records::{Item, Message, Outgoing};
use crate::service::Service;
use crate::service::outbox::{Deliver, Handed, Refused};
use crate::understanding::text::{Breaks, for_display, split_message};

/// Discord's JSON error code for "Cannot send messages to this user" (DMs closed).
const DMS_CLOSED: isize = 50007;

pub(super) struct Discord {
    pub http: Arc<Http>,
    pub settings: DiscordSettings,
}

impl Deliver for Discord {
    async fn deliver(
        &self,
        svc: &Arc<Service>,
        id: u64,
        entry: &Outgoing,
    ) -> Result<Handed, Refused> {
        let channel = if entry.to.is_support_team() {
            let Some(c) = self.settings.support_channel() else {
                tracing::warn!("a message for the support team has no support channel to go to");
                return Ok(Handed::default());
            };
            ChannelId::new(c)
        } else {
            match place(&entry.to) {
                Some(Place::Channel(c)) => ChannelId::new(c),
                Some(Place::User(u)) => {
                    UserId::new(u)
                        .create_dm_channel(&self.http)
                        .await
                        .map_err(|e| refused(svc, e, true))?
                        .id
                }
                None => {
                    return Err(Refused::permanent(format!(
                        "{} is not a Discord recipient",
                        entry.to
                    )));
                }
            }
        };
        let is_dm = matches!(place(&entry.to), Some(Place::User(_)));
        match &entry.item {
            Item::EscalationCard { reference } => self.card(svc, channel, reference).await,
            Item::EscalationMail { .. } => Err(Refused::permanent("e-mail is not sent by Discord")),
            Item::Message(_) | Item::Reminder { .. } => {
                let m = svc.message_of(entry).unwrap_or_default();
                send_parts(&self.http, channel, &m, id)
                    .await
                    .map_err(|e| refused(svc, e, is_dm))?;
                Ok(Handed::default())
            }
        }
    }
}

impl Discord {
    /// Posts (first time) or edits the card of an escalation, from its current record.
    async fn card(
        &self,
        svc: &Arc<Service>,
        channel: ChannelId,
        reference: &str,
    ) -> Result<Handed, Refused> {
        let key = format!("discord:card:{reference}");
        let (s, r, k) = (svc.clone(), reference.to_string(), key.clone());
        let found = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            Ok((s.store.escalation(&r)?, s.store.transport_ref(&k)?))
        })
        .await
        .map_err(|e| Refused::transient(e.to_string()))?
        .map_err(|e| Refused::transient(format!("{e:#}")))?;
        let (content, buttons, posted) = match found {
            (Some(e), posted) => {
                let (content, buttons) = render::card(svc, &e);
                (content, buttons, posted)
            }
            // Erased at the person's request: the card keeps only the reference.
            (None, Some(posted)) => (
                svc.engine()
                    .message("card_erased", &[("reference", reference.to_string())]),
                Vec::new(),
                Some(posted),
            ),
            (None, None) => return Ok(Handed::default()),
        };
        match posted.and_then(|p| p.parse::<u64>().ok()) {
            Some(id) => {
                let edit = EditMessage::new()
                    .content(content)
                    .components(rows(&buttons))
                    .allowed_mentions(mentions_none());
                channel
                    .edit_message(&self.http, MessageId::new(id), edit)
                    .await
                    .map_err(|e| refused(svc, e, false))?;
                Ok(Handed::default())
            }
            None => {
                let msg = CreateMessage::new()
                    .content(content)
                    .components(rows(&buttons))
                    .allowed_mentions(mentions_none());
                let sent = channel
                    .send_message(&self.http, msg)
                    .await
                    .map_err(|e| refused(svc, e, false))?;
                Ok(Handed {
                    receipt: None,
                    remember: Some((key, sent.id.get().to_string())),
                })
            }
        }
    }
}

fn refused(svc: &Service, e: serenity::Error, dm: bool) -> Refused {
    if let serenity::Error::Http(serenity::all::HttpError::UnsuccessfulRequest(resp)) = &e {
        if dm && resp.error.code == DMS_CLOSED {
            return Refused::permanent(svc.engine().message("discord_dms_closed", &[]));
        }
        if resp.status_code.as_u16() == 429 {
            return Refused {
                retry_after: Some(Duration::seconds(1)),
                ..Refused::transient(e.to_string())
            };
        }
    }
    Refused::transient(e.to_string())
}

/// Sends text split at Discord's limit (never mid-sentence when it can be helped); the buttons go
/// with the last piece. The first piece carries `id` as an enforced nonce. Whatever a person typed
/// that made it into the text (a name, an address, a note) is shown with its control and bidi
/// characters made visible.
async fn send_parts(http: &Http, channel: ChannelId, m: &Message, id: u64) -> serenity::Result<()> {
    let parts = split_message(&for_display(&m.text, Breaks::Keep), MAX_CONTENT);
    let last = parts.len() - 1;
    for (i, part) in parts.into_iter().enumerate() {
        let mut msg = CreateMessage::new()
            .content(part)
            .allowed_mentions(mentions_none());
        if i == 0 {
            msg = msg
                .nonce(Nonce::String(format!("esrbot-{id}")))
                .enforce_nonce(true);
        }
        if i == last {
            msg = msg.components(rows(&m.choices));
            for a in &m.attachments {
                msg = msg.add_file(serenity::all::CreateAttachment::bytes(
                    a.body.clone(),
                    a.name.clone(),
                ));
            }
        }
        channel.send_message(http, msg).await?;
    }
    Ok(())
}
