//! `esrbot escalations …`: the support team's queue at the command line, working on the same
//! database as the running bot. Actions go through the service, so they leave the same audit trail
//! and send the same notices as a button press on Discord.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;

use crate::config::Config;
use crate::core::escalation::Action;
use crate::core::records::{Escalation, EscalationStatus};
use crate::service::queue::{MailState, mail_status};
use crate::service::{self, Service};
use crate::store::Store;
use crate::understanding::text::{Breaks, for_display};

/// Prints the escalations (with `status` only those), oldest first.
pub fn list(store: &Store, status: Option<&str>) -> anyhow::Result<ExitCode> {
    let wanted = match status {
        Some(s) => Some(EscalationStatus::parse(s).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown status {s:?}: use open, sent, acknowledged, resolved or failed"
            )
        })?),
        None => None,
    };
    let all = store.escalations()?;
    let shown: Vec<_> = all
        .iter()
        .filter(|e| wanted.is_none_or(|w| e.status == w))
        .collect();
    if shown.is_empty() {
        println!(
            "no escalations{}",
            status
                .map(|s| format!(" with status {s}"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:<14} {:<13} {:<17} who",
        "reference", "kind", "status", "created (UTC)"
    );
    for e in shown {
        println!(
            "{:<10} {:<14} {:<13} {:<17} {}",
            e.reference,
            e.kind.as_str(),
            e.status.as_str(),
            e.created_at.format("%Y-%m-%d %H:%M"),
            who(e)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints everything about one escalation, with its history and e-mail.
pub fn show(store: &Store, reference: &str) -> anyhow::Result<ExitCode> {
    let Some(e) = store.escalation(reference)? else {
        println!("there is no escalation {}", safe(reference));
        return Ok(ExitCode::FAILURE);
    };
    println!("reference:   {}", e.reference);
    println!("kind:        {}", e.kind.as_str());
    println!("status:      {}", e.status.as_str());
    println!("staff:       {}", who(&e));
    if let Some(a) = &e.new_address {
        println!("new address: {}", safe(a));
    }
    if let Some(p) = &e.problem {
        println!("about:       {}", safe(p));
    }
    if let Some(c) = &e.contact {
        println!("contact:     {}", safe(&c.describe()));
    }
    for (label, value) in e.volunteered.lines() {
        println!(
            "{:<13}{}",
            format!("{}: ", label.to_lowercase()),
            safe(&value)
        );
    }
    println!(
        "created:     {} UTC",
        e.created_at.format("%Y-%m-%d %H:%M:%S")
    );
    if let Some(m) = mail_status(store, &e.reference)? {
        let state = match &m.state {
            MailState::Queued => format!("queued, {} attempt(s) so far", m.attempts),
            MailState::Accepted { at, response } => format!(
                "accepted {} UTC ({})",
                at.format("%Y-%m-%d %H:%M:%S"),
                safe(response)
            ),
            MailState::Failed { at } => format!("failed {} UTC", at.format("%Y-%m-%d %H:%M:%S")),
        };
        println!(
            "e-mail:      {state}{}",
            m.last_error
                .as_ref()
                .map(|x| format!("; last error: {}", safe(x)))
                .unwrap_or_default()
        );
    }
    println!("history:");
    for h in &e.history {
        println!(
            "  {} UTC  {:<13} by {}{}",
            h.at.format("%Y-%m-%d %H:%M:%S"),
            h.status.as_str(),
            safe(&h.by),
            h.note
                .as_ref()
                .map(|n| format!(": {}", safe(n)))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Acknowledges, resolves or retries an escalation on behalf of `by`.
pub fn act(
    config: &Config,
    store: Store,
    reference: &str,
    action: Action,
    by: &str,
    note: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if by.trim().is_empty() {
        anyhow::bail!("--by must name who is acting");
    }
    let engine = Arc::new(service::load_engine_untrained(config)?);
    let svc = Service::new(engine, store, crate::transports::routing(config));
    match svc.escalation_action(reference, action, by, note, Utc::now())? {
        Ok(e) => {
            println!("{} is now {}", e.reference, e.status.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            println!("{}", svc.explain(&refusal));
            Ok(ExitCode::FAILURE)
        }
    }
}

fn who(e: &Escalation) -> String {
    match &e.display_name {
        Some(n) => format!("{} ({})", safe(n), safe(e.user.as_str())),
        None => safe(e.user.as_str()),
    }
}

/// Anything stored from what someone typed, as an administrator's terminal shows it: one line,
/// with escapes and bidi controls made visible and harmless.
fn safe(s: &str) -> String {
    for_display(s, Breaks::Show)
}
