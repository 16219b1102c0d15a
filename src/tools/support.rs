//! `esrbot support …` and `esrbot analytics export`: the support team's accounts and the content
//! team's export at the command line, on the same database as the running bot (redb's
//! multi-writer mode, as `esrbot escalations` uses). A generated password is printed once, alone
//! on the last line of standard output, so a script can take it with `tail -n 1`; it is never
//! logged or stored.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use crate::service::accounts::{Accounts, Policy};
use crate::service::analytics;
use crate::store::Store;

/// `esrbot support add NAME`.
pub fn add(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let made = Accounts::new(store, Policy::default()).add(name, Utc::now())?;
    println!(
        "created the support account {}; it must choose a new password at first sign-in",
        made.name
    );
    print_password(&made.password);
    Ok(ExitCode::SUCCESS)
}

/// `esrbot support reset NAME`.
pub fn reset(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let made = Accounts::new(store, Policy::default()).reset(name, Utc::now())?;
    println!(
        "reset the support account {}: its sessions are ended and it must choose a new password \
         at next sign-in",
        made.name
    );
    print_password(&made.password);
    Ok(ExitCode::SUCCESS)
}

/// The one-time password, alone on the last line.
fn print_password(password: &str) {
    println!("one-time password (shown only now; give it to its owner privately):");
    println!("{password}");
}

/// `esrbot support remove NAME`.
pub fn remove(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let name = Accounts::new(store, Policy::default()).remove(name)?;
    println!("removed the support account {name} and ended its sessions");
    Ok(ExitCode::SUCCESS)
}

/// `esrbot support list`.
pub fn list(store: &Store) -> anyhow::Result<ExitCode> {
    let accounts = Accounts::new(store, Policy::default()).list()?;
    if accounts.is_empty() {
        println!("no support accounts (add one with `esrbot support add NAME`)");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<32} {:<17} {:<17} password",
        "name", "created (UTC)", "changed (UTC)"
    );
    for a in accounts {
        println!(
            "{:<32} {:<17} {:<17} {}",
            a.name,
            a.created_at.format("%Y-%m-%d %H:%M"),
            a.password_changed_at.format("%Y-%m-%d %H:%M"),
            if a.must_change {
                "one-time (must change)"
            } else {
                "chosen"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `esrbot analytics export [--output PATH]`: the kept messages marked "should have been
/// INTENT", as `esrbot eval` reads them; to standard output without a path.
pub fn export(store: &Store, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (tsv, rows) = analytics::export_tsv(store, Utc::now())?;
    match output {
        Some(path) => {
            std::fs::write(path, &tsv)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {rows} marked question(s) to {}", path.display());
        }
        None => {
            print!("{tsv}");
            eprintln!("{rows} marked question(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
