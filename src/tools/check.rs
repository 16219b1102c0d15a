//! `esrbot check`: validates config.toml, intents/ and data/ and reports every problem with its
//! file and line, so a mistake in a declaration is found before the bot starts, not by staff.

use crate::config::Config;
use crate::core::behaviours;
use crate::service::{required_intents, required_messages};
use crate::understanding::content::Content;
use crate::understanding::intents::{self, FileProblem};

/// All problems found (empty when everything is fine), plus a one-line summary of what was read.
pub fn check(config: &Config) -> (Vec<FileProblem>, String) {
    let mut problems = Vec::new();
    let intents = match intents::load_dir(&config.intents_dir(), &required_intents()) {
        Ok(list) => list,
        Err(mut p) => {
            problems.append(&mut p);
            Vec::new()
        }
    };
    // Check replies against whatever intent files exist, even if some failed to load.
    let mut ids: Vec<String> = intents.iter().map(|i| i.id.clone()).collect();
    if ids.is_empty() {
        ids = required_intents().iter().map(|s| s.to_string()).collect();
    }
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    if let Err(mut p) = Content::load(
        &config.data_dir(),
        &id_refs,
        &behaviours::variants(),
        &required_messages(),
    ) {
        problems.append(&mut p);
    }
    let examples: usize = intents.iter().map(|i| i.examples.len()).sum();
    let patterns: usize = intents.iter().map(|i| i.patterns.len()).sum();
    let summary = format!(
        "{} intents, {examples} examples, {patterns} patterns; replies in {}",
        intents.len(),
        config.data_dir().join("replies.toml").display()
    );
    (problems, summary)
}
