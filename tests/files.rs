//! The shipped declarations load cleanly, and mistakes in them are reported with file and line.

use esrbot::config::Config;
use esrbot::tools::check::{check, check_all};

use super::config;
use super::support::fixtures::copy_tree;

#[test]
fn shipped_config_intents_and_data_are_valid() {
    let (problems, summary) = check(&config());
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(summary.starts_with("19 intents"), "{summary}");
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

/// What `check` reports for a copy of the shipped tree with one edit to `file`: its first `from`
/// replaced by `to`. `from` must be there, or the test would check the unedited tree.
fn check_with_edit(file: &str, from: &str, to: &str) -> String {
    let dir = copy_tree();
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} no longer has {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    check_in(dir.path()).join("\n")
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
    let problems = check_with_edit("intents/thanks.toml", "examples = [", "exampels = [");
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
    let problems = check_with_edit(
        "data/synonyms.toml",
        "\"e s r\"",
        "\"e s r\", \"the electronic staff record system\"",
    );
    assert!(
        problems.contains("\"the electronic staff record system\" must be 2 to 4 words"),
        "{problems}"
    );
}

#[test]
fn a_typo_repeated_on_several_lines_is_reported_at_each() {
    let dir = copy_tree();
    let replies = dir.path().join("data/replies.toml");
    let text = std::fs::read_to_string(&replies)
        .unwrap()
        .replace("{locked_until}", "{lok_end}");
    std::fs::write(&replies, &text).unwrap();
    let want: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("{lok_end}") && !l.trim_start().starts_with('#'))
        .map(|(i, _)| i + 1)
        .collect();
    assert!(want.len() >= 2, "the typo should be on several lines");
    let mut got: Vec<usize> = check_in(dir.path())
        .iter()
        .filter(|p| p.contains("unknown placeholder {lok_end}"))
        .map(|p| {
            let (_, rest) = p.split_once("replies.toml:").expect("the file is named");
            rest.split(':')
                .next()
                .unwrap()
                .parse()
                .expect("a line number")
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, want, "each line with the typo, once");
}

#[test]
fn config_and_content_problems_are_all_listed_in_one_run() {
    let dir = copy_tree();
    let config = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replacen(
            "lock_hours = 12",
            "lock_hours = 12\nlock_hourz = 10\nmax_attempts_ = 2",
            1,
        )
        .replacen("max_attempts = 3", "max_attempts = 0", 1)
        + "\n[discrod]\ntoken = \"x\"\n";
    std::fs::write(&config, &text).unwrap();
    let line = |needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let replies = dir.path().join("data/replies.toml");
    let data = std::fs::read_to_string(&replies).unwrap().replacen(
        "works for {link_hours} hours",
        "works for {link_hourz} hours",
        1,
    );
    std::fs::write(&replies, data).unwrap();
    let (problems, _) = check_all(&config, true, Vec::<(String, String)>::new(), false);
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let all = problems.join("\n");
    for want in [
        format!(
            "config.toml:{}: unknown key guide.lock_hourz",
            line("lock_hourz")
        ),
        format!(
            "config.toml:{}: unknown key guide.max_attempts_",
            line("max_attempts_")
        ),
        format!(
            "config.toml:{}: unknown section [discrod]",
            line("[discrod]")
        ),
        format!(
            "config.toml:{}: guide.max_attempts must be between 1 and 20",
            line("max_attempts = 0")
        ),
        "unknown placeholder {link_hourz}".to_string(),
    ] {
        assert!(all.contains(&want), "{want:?} missing from:\n{all}");
    }
    assert_eq!(problems.len(), 5, "{all}");
    // The settings as the bot would load them are refused with the same list.
    let e = Config::load(&config, true, Vec::<(String, String)>::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown key guide.lock_hourz") && e.contains("[discrod]"),
        "{e}"
    );
}

#[test]
fn a_config_that_does_not_parse_still_gets_its_declarations_checked() {
    let dir = copy_tree();
    let config = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap() + "\n[guide\n";
    std::fs::write(&config, &text).unwrap();
    std::fs::remove_file(dir.path().join("intents/thanks.toml")).unwrap();
    let (problems, _) = check_all(&config, true, Vec::<(String, String)>::new(), false);
    let all = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        all.contains(&format!("config.toml:{}:", text.lines().count())),
        "{all}"
    );
    assert!(
        all.contains("required intent `thanks` has no file"),
        "{all}"
    );
}

#[test]
fn dictated_punctuation_longer_than_four_words_is_reported() {
    let problems = check_with_edit(
        "data/synonyms.toml",
        "\"full stop\"",
        "\"full stop\", \"open the brackets please now\"",
    );
    assert!(
        problems.contains("\"open the brackets please now\" must be 1 to 4 words"),
        "{problems}"
    );
}
