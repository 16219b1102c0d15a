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

#[test]
fn a_start_or_wait_near_the_end_of_time_is_a_clear_failure_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let locked = "[[turn]]\nsay = \"I'm locked out\"\n";
    for (name, head, want) in [
        (
            "late.toml",
            "start = \"+262142-12-31T23:59:00Z\"\n".to_string(),
            "start = \"+262142-12-31T23:59:00+00:00\" is outside the years 1970 to 9999",
        ),
        (
            "early.toml",
            "start = \"-262143-01-01T00:01:00Z\"\n".to_string(),
            "is outside the years 1970 to 9999",
        ),
        (
            // Far in the future but still inside chrono's range: the lock's end would overflow.
            "far.toml",
            "start = \"2026-03-02T09:00:00Z\"\n[[turn]]\nwait = \"50000000d\"\n".to_string(),
            "turn 1: wait = \"50000000d\" takes the clock past the year 9999",
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, format!("{head}{locked}")).unwrap();
        let o = convtest::run_file(&engine(), &config(), &file);
        assert_eq!(o.failures.len(), 1, "{name}: {:?}", o.failures);
        assert!(o.failures[0].contains(want), "{name}: {:?}", o.failures);
    }
}
