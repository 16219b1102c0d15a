//! Messages in Discord's terms: choices as buttons (five a row), text split at Discord's limit,
//! the support team's card for an escalation, and no pings from anything the bot sends.

use serenity::all::{
    ButtonStyle as DiscordStyle, CreateActionRow, CreateAllowedMentions, CreateButton,
    CreateInteractionResponse, CreateInteractionResponseMessage, UserId,
};

use super::{Place, place};
use crate::core::records::{Choice, ChoiceStyle, Escalation, EscalationStatus};
use crate::service::Service;
use crate::understanding::text::{Breaks, for_display};

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

/// A field someone typed (a name, a note, an address) as the card shows it: on one line, with
/// control and bidi characters visible and harmless, so it cannot forge a line of the card.
fn shown(s: &str) -> String {
    for_display(s, Breaks::Show)
}

/// How an escalation shows for the support team: its state at a glance and the actions left.
pub fn card(svc: &Service, e: &Escalation) -> (String, Vec<Choice>) {
    let engine = svc.engine();
    let content = engine.content();
    let who = match (place(&e.user), &e.display_name) {
        (Some(Place::User(id)), Some(n)) => format!("{} (<@{id}>)", shown(n)),
        (Some(Place::User(id)), None) => format!("<@{id}>"),
        (_, Some(n)) => format!("{} ({})", shown(n), shown(e.user.as_str())),
        (_, None) => shown(e.user.as_str()),
    };
    let mut text = svc.engine().message(
        "card",
        &[
            ("reference", e.reference.clone()),
            ("kind", e.kind.as_str().into()),
            ("status", e.status.as_str().into()),
            ("who", who),
            ("created", e.created_at.format("%Y-%m-%d %H:%M").to_string()),
        ],
    );
    if let Some(a) = &e.new_address {
        text.push('\n');
        text.push_str(
            &svc.engine()
                .message("card_address", &[("address", shown(a))]),
        );
    }
    if let Some(p) = &e.problem {
        text.push('\n');
        text.push_str(&svc.engine().message(
            "card_problem",
            &[("problem", shown(svc.engine().option_label(p)))],
        ));
    }
    if let Some(c) = &e.contact {
        text.push('\n');
        text.push_str(
            &svc.engine()
                .message("card_contact", &[("contact", shown(&c.describe()))]),
        );
    }
    if let Some(last) = e.history.last().filter(|_| e.history.len() > 1) {
        text.push('\n');
        text.push_str(
            &svc.engine().message(
                "card_last_change",
                &[
                    ("status", last.status.as_str().into()),
                    ("by", shown(&last.by)),
                    ("at", last.at.format("%Y-%m-%d %H:%M").to_string()),
                    (
                        "note",
                        last.note
                            .as_ref()
                            .map(|n| format!(" ({})", shown(n)))
                            .unwrap_or_default(),
                    ),
                ],
            ),
        );
    }
    let b = |id: &str, key: &str, style| Choice {
        id: format!("esc:{id}:{}", e.reference),
        label: content.message(key).into(),
        style,
    };
    let mut buttons = Vec::new();
    if !matches!(
        e.status,
        EscalationStatus::Acknowledged | EscalationStatus::Resolved
    ) {
        buttons.push(b("ack", "choice_acknowledge", ChoiceStyle::Primary));
    }
    if e.status != EscalationStatus::Resolved {
        buttons.push(b("resolve", "choice_resolve", ChoiceStyle::Success));
    }
    if e.status == EscalationStatus::Failed {
        buttons.push(b("retry", "choice_retry_email", ChoiceStyle::Danger));
    }
    (text, buttons)
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

    #[test]
    fn names_cannot_break_the_card_layout() {
        assert_eq!(
            shown("Ann\nStatus: resolved\u{1b}[2J\u{202E}"),
            "Ann\\u{a}Status: resolved\\u{1b}[2J\\u{202e}"
        );
    }
}
