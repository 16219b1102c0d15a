//! The support team's card for an escalation, shared by the transports that show cards (Discord,
//! Teams): its state at a glance, the fields people typed made harmless, and the actions left.

use crate::core::records::{Choice, ChoiceStyle, Escalation, EscalationStatus, Recipient};
use crate::service::Service;
use crate::understanding::text::{Breaks, for_display};

/// The `[message]` keys the card and its actions use, for every transport that shows it.
pub const MESSAGES: &[&str] = &[
    "choice_acknowledge",
    "choice_resolve",
    "choice_retry_email",
    "card",
    "card_address",
    "card_problem",
    "card_contact",
    "card_detail",
    "card_last_change",
    "card_erased",
];

/// A field someone typed (a name, a note, an address) as the card shows it: on one line, with
/// control and bidi characters visible and harmless, so it cannot forge a line of the card.
fn shown(s: &str) -> String {
    for_display(s, Breaks::Show)
}

/// How an escalation shows for the support team: its state at a glance and the actions left.
/// `mention` is how the transport points at the staff member when it can (a Discord mention);
/// otherwise their address is shown.
pub fn card(
    svc: &Service,
    e: &Escalation,
    mention: impl Fn(&Recipient) -> Option<String>,
) -> (String, Vec<Choice>) {
    let engine = svc.engine();
    let content = engine.content();
    let who = match (mention(&e.user), &e.display_name) {
        (Some(m), Some(n)) => format!("{} ({m})", shown(n)),
        (Some(m), None) => m,
        (None, Some(n)) => format!("{} ({})", shown(n), shown(e.user.as_str())),
        (None, None) => shown(e.user.as_str()),
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
    for (label, value) in e.volunteered.lines() {
        text.push('\n');
        text.push_str(&svc.engine().message(
            "card_detail",
            &[("label", label.into()), ("value", shown(&value))],
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_break_the_card_layout() {
        assert_eq!(
            shown("Ann\nStatus: resolved\u{1b}[2J\u{202E}"),
            "Ann\\u{a}Status: resolved\\u{1b}[2J\\u{202e}"
        );
    }
}
