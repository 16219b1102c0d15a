//! Messages in Discord's terms: choices as buttons (five a row), text split at Discord's limit,
//! the support team's card for an escalation, and no pings from anything the bot sends.

use serenity::all::{
    ButtonStyle as DiscordStyle, CreateActionRow, CreateAllowedMentions, CreateButton,
    CreateInteractionResponse, CreateInteractionResponseMessage, UserId,
};

use super::{Place, place};
use crate::core::records::{Choice, ChoiceStyle, Escalation};
use crate::service::Service;

/// Discord's limit on a message's content, in characters.
pub(super) const MAX_CONTENT: usize = 2000;

/// Nobody is pinged by what the bot sends: a name or a note can never reach `@everyone`, a role
/// or a user.
pub(super) fn mentions_none() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
        .everyone(false)
        .all_users(false)
        .all_roles(false)
}

pub(super) fn ephemeral(text: &str) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(text)
            .ephemeral(true)
            .allowed_mentions(mentions_none()),
    )
}

/// Removes `<@id>` / `<@!id>` mentions of the bot from a message.
pub(super) fn strip_mentions(content: &str, me: UserId) -> String {
    content
        .replace(&format!("<@{me}>"), " ")
        .replace(&format!("<@!{me}>"), " ")
        .trim()
        .to_string()
}

pub(super) fn rows(choices: &[Choice]) -> Vec<CreateActionRow> {
    if choices.is_empty() {
        return Vec::new();
    }
    // Discord allows five buttons a row.
    choices
        .chunks(5)
        .map(|chunk| {
            CreateActionRow::Buttons(
                chunk
                    .iter()
                    .map(|b| {
                        CreateButton::new(b.id.chars().take(100).collect::<String>())
                            .label(b.label.clone())
                            .style(match b.style {
                                ChoiceStyle::Primary => DiscordStyle::Primary,
                                ChoiceStyle::Secondary => DiscordStyle::Secondary,
                                ChoiceStyle::Success => DiscordStyle::Success,
                                ChoiceStyle::Danger => DiscordStyle::Danger,
                            })
                    })
                    .collect(),
            )
        })
        .collect()
}

/// How an escalation shows for the support team on Discord (`transports::card`), with the staff
/// member mentioned when they are on Discord.
pub fn card(svc: &Service, e: &Escalation) -> (String, Vec<Choice>) {
    crate::transports::card::card(svc, e, |user| match place(user) {
        Some(Place::User(id)) => Some(format!("<@{id}>")),
        _ => None,
    })
}

/// One line of `/esr escalations`.
pub(super) fn list_line(e: &Escalation) -> String {
    format!(
        "**{}** · {} · {} · {}",
        e.reference,
        e.kind.as_str(),
        e.status.as_str(),
        e.created_at.format("%Y-%m-%d %H:%M UTC")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_stripped() {
        let me = UserId::new(42);
        assert_eq!(strip_mentions("<@42> I'm locked out", me), "I'm locked out");
        assert_eq!(strip_mentions("hey <@!42>", me), "hey");
    }
}
