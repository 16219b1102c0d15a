//! The shipped declarations load cleanly, and mistakes in them are reported with file and line.

use esrbot::config::Config;
use esrbot::tools::check::check;

use super::{config, root};

#[test]
fn shipped_config_intents_and_data_are_valid() {
    let (problems, summary) = check(&config());
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(summary.starts_with("19 intents"), "{summary}");
}

/// A copy of intents/ and data/ in a temp folder, to break on purpose.
fn copy_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["intents", "data"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(root().join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(root().join("config.toml"), dir.path().join("config.toml")).unwrap();
    dir
}

fn check_in(dir: &std::path::Path) -> Vec<String> {
    let c = Config::load(
        &dir.join("config.toml"),
        true,
        Vec::<(String, String)>::new(),
    )
    .unwrap();
    check(&c).0.iter().map(ToString::to_string).collect()
}

#[test]
fn a_broken_pattern_is_reported_with_file_and_line() {
    let dir = copy_tree();
    let file = dir.path().join("intents/greeting.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replacen("patterns = [", "patterns = [\n  '''(unclosed''',", 1);
    std::fs::write(&file, &text).unwrap();
    let line = text.lines().position(|l| l.contains("(unclosed")).unwrap() + 1;
    let problems = check_in(dir.path());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains(&format!("greeting.toml:{line}: pattern does not compile")),
        "{problems:?}"
    );
}

#[test]
fn unknown_placeholders_and_missing_intents_are_reported() {
    let dir = copy_tree();
    let replies = dir.path().join("data/replies.toml");
    let text = std::fs::read_to_string(&replies).unwrap().replacen(
        "works for {link_hours} hours",
        "works for {link_hourz} hours",
        1,
    );
    std::fs::write(&replies, text).unwrap();
    std::fs::remove_file(dir.path().join("intents/thanks.toml")).unwrap();
    let problems = check_in(dir.path()).join("\n");
    assert!(
        problems.contains("unknown placeholder {link_hourz}"),
        "{problems}"
    );
    assert!(
        problems.contains("required intent `thanks` has no file"),
        "{problems}"
    );
    assert!(problems.contains("replies.toml:"), "{problems}");
}

#[test]
fn a_typo_in_an_intent_file_is_not_ignored() {
    let dir = copy_tree();
    let file = dir.path().join("intents/thanks.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("examples = [", "exampels = [", 1);
    std::fs::write(&file, text).unwrap();
    let problems = check_in(dir.path()).join("\n");
    assert!(problems.contains("thanks.toml:"), "{problems}");
    assert!(problems.contains("exampels"), "{problems}");
}

#[test]
fn a_bad_synonym_is_reported_with_file_and_line() {
    let dir = copy_tree();
    let file = dir.path().join("data/synonyms.toml");
    let text =
        std::fs::read_to_string(&file)
            .unwrap()
            .replacen("\"logon\"", "\"logon\", \"pw\"", 1);
    std::fs::write(&file, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("login = [\"logon\""))
        .unwrap()
        + 1;
    let problems = check_in(dir.path()).join("\n");
    assert!(
        problems.contains(&format!("synonyms.toml:{line}: \"pw\" is listed twice")),
        "{problems}"
    );
}

#[test]
fn a_synonym_phrase_longer_than_four_words_is_reported() {
    let dir = copy_tree();
    let file = dir.path().join("data/synonyms.toml");
    let text = std::fs::read_to_string(&file).unwrap().replacen(
        "\"e s r\"",
        "\"e s r\", \"the electronic staff record system\"",
        1,
    );
    std::fs::write(&file, &text).unwrap();
    let problems = check_in(dir.path()).join("\n");
    assert!(
        problems.contains("\"the electronic staff record system\" must be 2 to 4 words"),
        "{problems}"
    );
}
