//! Messages in Teams' terms: text as a message activity, choices as an Adaptive Card of
//! `Action.Submit` buttons (with the choices written out as a text fallback for clients that
//! cannot show cards), and the support team's card for an escalation. Whatever a person typed is
//! shown with its control and bidi characters made harmless, and `<at>` mentions never come from
//! the bot, so nothing it sends can ping anyone.

use serde_json::{Value, json};

use crate::core::records::{Choice, ChoiceStyle, Escalation, Message};
use crate::service::Service;
use crate::understanding::text::{Breaks, for_display};

/// What an `Action.Submit` sends back in its `value`: the choice's id under this key.
pub(super) const SUBMIT_KEY: &str = "esrbot";

const CARD_TYPE: &str = "application/vnd.microsoft.card.adaptive";

/// A message as a Teams activity: plain text, or an Adaptive Card when there are choices.
pub(super) fn activity(svc: &Service, m: &Message) -> Value {
    let text = shown(&m.text);
    if m.choices.is_empty() {
        return json!({"type": "message", "text": text, "textFormat": "plain"});
    }
    let labels: Vec<String> = m.choices.iter().map(|c| format!("• {}", c.label)).collect();
    let options = svc
        .engine()
        .message("teams_choices_fallback", &[("options", labels.join("\n"))]);
    let fallback = format!("{text}\n\n{options}");
    card_activity(&text_blocks(&text), &m.choices, &fallback)
}

/// An escalation's card for the support team (the text shared with Discord's, in Adaptive Card
/// markdown), with the actions left.
pub(super) fn escalation_card(svc: &Service, e: &Escalation) -> Value {
    // The bot sends no `<at>` mentions: the card names the staff member and their Teams id.
    let (text, choices) = crate::transports::card::card(svc, e, |_| None);
    card_activity(&text_blocks(&text), &choices, &text)
}

/// The card an erased escalation leaves behind.
pub(super) fn erased_card(text: &str) -> Value {
    card_activity(&text_blocks(text), &[], text)
}

/// One wrapped text block a line: Adaptive Cards do not keep single line breaks.
fn text_blocks(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| json!({"type": "TextBlock", "text": l, "wrap": true}))
        .collect()
}

fn card_activity(body: &[Value], choices: &[Choice], fallback: &str) -> Value {
    let actions: Vec<Value> = choices
        .iter()
        .map(|c| {
            let mut a = json!({
                "type": "Action.Submit",
                "title": c.label,
                "data": {SUBMIT_KEY: c.id},
            });
            match c.style {
                ChoiceStyle::Danger => a["style"] = json!("destructive"),
                ChoiceStyle::Primary | ChoiceStyle::Success => a["style"] = json!("positive"),
                ChoiceStyle::Secondary => {}
            }
            a
        })
        .collect();
    json!({
        "type": "message",
        "summary": fallback.lines().next().unwrap_or_default(),
        "attachments": [{
            "contentType": CARD_TYPE,
            "content": {
                "type": "AdaptiveCard",
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "version": "1.4",
                "fallbackText": fallback,
                "body": body,
                "actions": actions,
            },
        }],
    })
}

/// Text as Teams shows it, with what a person typed made harmless (line breaks kept).
fn shown(text: &str) -> String {
    for_display(text, Breaks::Keep)
}

/// The `<at>…</at>` mentions taken out of a channel message's text.
pub(super) fn strip_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<at>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</at>") {
            Some(end) => rest = &rest[start + end + "</at>".len()..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_stripped() {
        assert_eq!(
            strip_mentions("<at>ESR Helper</at> I'm locked out"),
            "I'm locked out"
        );
        assert_eq!(strip_mentions("hi <at>Bot</at>"), "hi");
        assert_eq!(strip_mentions("broken <at>Bot"), "broken");
    }

    #[test]
    fn choices_become_submit_actions_with_their_ids() {
        let body = text_blocks("one\n\ntwo");
        assert_eq!(body.len(), 2);
        let a = card_activity(
            &body,
            &[Choice::say("Yes", "yes please", ChoiceStyle::Primary)],
            "fallback",
        );
        let card = &a["attachments"][0]["content"];
        assert_eq!(card["actions"][0]["data"][SUBMIT_KEY], "say:yes please");
        assert_eq!(card["fallbackText"], "fallback");
    }
}
