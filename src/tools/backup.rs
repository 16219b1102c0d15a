//! `esrbot backup PATH`: a consistent, verified copy of the database, taken while the bot runs.

use std::path::Path;

use anyhow::Context;

use crate::store::{Counts, Store};

/// Copies the database at `source` to `dest` (see `Store::backup_to`). The source is opened
/// only for reading, so the running bot is not disturbed and nothing in it changes.
pub fn backup(source: &Path, dest: &Path) -> anyhow::Result<Counts> {
    if same_file(source, dest) {
        anyhow::bail!("the backup must not be written over the database itself");
    }
    let store = Store::open_read_only(source).context("opening the database")?;
    store
        .backup_to(dest)
        .with_context(|| format!("backing up to {}", dest.display()))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
