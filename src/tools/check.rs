//! `esrbot check`: validates config.toml, intents/ and data/ and reports every problem with its
//! file and line, so a mistake in a declaration is found before the bot starts, not by staff.

use std::path::Path;

use crate::config::Config;
use crate::core::behaviours;
use crate::service::{required_intents, required_messages};
use crate::understanding::content::Content;
use crate::understanding::intents::{self, FileProblem};

/// Every problem in the settings file at `path` (missing is fine unless `required`) and in the
/// intents/ and data/ it names, all in one run (empty when everything is fine), plus a one-line
/// summary of what was read. Broken settings do not stop the check of the declarations: those are
/// then found where the readable settings, or else the defaults, say.
///
/// With `database`, redb's integrity check of the configured database runs too (see
/// `Store::check_integrity`: redb repairs what it can and says so).
pub fn check_all(
    path: &Path,
    required: bool,
    env: impl IntoIterator<Item = (String, String)>,
    database: bool,
) -> (Vec<FileProblem>, String) {
    let (config, mut problems) = Config::check_file(path, required, env);
    let (mut more, mut summary) = check(&config);
    problems.append(&mut more);
    if database {
        let db = config.storage_path();
        match crate::store::Store::check_integrity(&db) {
            Ok(true) => summary.push_str(&format!("; database {} passed its integrity check", db.display())),
            Ok(false) => summary.push_str(&format!(
                "; database {} failed its integrity check and redb repaired it: check recent changes, or restore a backup",
                db.display()
            )),
            Err(e) => problems.push(FileProblem::new(&db, 0, format!("{e:#}"))),
        }
    }
    (problems, summary)
}

/// All problems found in intents/ and data/ (empty when everything is fine), plus a one-line
/// summary of what was read.
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
    let mut ids: Vec<String> = intent_files(&config.intents_dir());
    for id in required_intents() {
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    if let Err(mut p) = Content::load(
        &config.data_dir(),
        &id_refs,
        &behaviours::variants(),
        &required_messages(),
        behaviours::CHOICES,
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

/// The intent ids the files under `dir` declare by their names.
fn intent_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect()
}
