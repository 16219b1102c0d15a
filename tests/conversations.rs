//! The development conversations under tests/conversations/dev/ (and the shared example) run through the same
//! runner as `esrbot test`, with a virtual clock.

use esrbot::tools::convtest;

use super::{config, engine, root};

#[test]
fn every_conversation_passes() {
    let mut paths = vec![root().join("tests/conversations/dev")];
    let shared = root().join("../shared/conversations");
    if shared.exists() {
        paths.push(shared);
    }
    // The development set must pass; the held-out set (tests/conversations/held_out) is scored,
    // never tuned on.
    let files = convtest::collect(&paths).expect("conversation files");
    assert!(
        files.len() >= 15,
        "expected the project's conversations, found {}",
        files.len()
    );
    let (engine, config) = (engine(), config());
    let failures: Vec<String> = files
        .iter()
        .map(|f| convtest::run_file(&engine, &config, f))
        .filter(|o| !o.failures.is_empty())
        .map(|o| format!("{}:\n  {}", o.name, o.failures.join("\n  ")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} conversation(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_failing_conversation_reports_expected_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.toml");
    std::fs::write(
        &file,
        "start = \"2026-03-02T09:00:00Z\"\n[[turn]]\nsay = \"I'm locked out\"\nintent = \"greeting\"\nexpect = [\"22:00\"]\n[[turn]]\nwait = \"1h\"\nnotify = [\"lock\"]\n",
    )
    .unwrap();
    let o = convtest::run_file(&engine(), &config(), &file);
    let text = o.failures.join("\n");
    assert_eq!(o.failures.len(), 3, "{text}");
    assert!(
        text.contains("expected intent greeting, got account_locked"),
        "{text}"
    );
    assert!(
        text.contains("\"22:00\"") && text.contains("21:00"),
        "{text}"
    );
    assert!(
        text.contains("expected a notification containing [\"lock\"]; got none"),
        "{text}"
    );
}

#[test]
fn a_malformed_conversation_is_a_located_failure() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "start = \"2026-03-02T09:00:00Z\"\n[[turn]]\nsay = \"hi\"\nexpct = [\"x\"]\n",
    )
    .unwrap();
    let o = convtest::run_file(&engine(), &config(), &file);
    assert_eq!(o.failures.len(), 1);
    assert!(o.failures[0].contains("bad.toml:4"), "{:?}", o.failures);
    std::fs::write(
        &file,
        "start = \"2026-03-02T09:00:00Z\"\n[[turn]]\nwait = \"soon\"\n",
    )
    .unwrap();
    let o = convtest::run_file(&engine(), &config(), &file);
    assert!(
        o.failures[0].contains("wait = \"soon\""),
        "{:?}",
        o.failures
    );
}
