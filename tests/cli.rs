//! The `esrbot` command as a user runs it: each subcommand's output and exit code.

use std::io::Write;
use std::process::{Command, Stdio};

use super::root;

fn esrbot(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_esrbot"))
        .args(args)
        .current_dir(root())
        .env_remove("ESRBOT_LOG")
        .output()
        .expect("esrbot runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_passes_on_the_shipped_files() {
    let (code, out, _) = esrbot(&["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: "), "{out}");
}

#[test]
fn classify_prints_intent_confidence_candidates_and_times() {
    let (code, out, err) = esrbot(&["classify", "I submitted the reset 3 hours ago"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("intent: reset_requested (confidence 0."),
        "{out}"
    );
    assert_eq!(out.matches("\nnext: ").count(), 2, "{out}");
    assert!(out.contains("time: \"3 hours ago\""), "{out}");
}

#[test]
fn eval_prints_the_summary_line_and_json() {
    let sample = root().join("../shared/eval/sample_intents.tsv");
    let file = if sample.exists() {
        sample
    } else {
        root().join("tests/data/dev.tsv")
    };
    let file = file.to_str().unwrap();
    let (code, out, err) = esrbot(&["eval", file]);
    assert_eq!(code, 0, "{err}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("accuracy=")
            && last.contains(" oos_false_accept=")
            && last.contains(" n="),
        "{last}"
    );
    assert!(out.contains("precision"));
    let (_, json, _) = esrbot(&["eval", file, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("one JSON object");
    assert!(v["accuracy"].as_f64().is_some() && v["n"].as_u64().unwrap() > 0);
    let (code, _, err) = esrbot(&["eval", "Cargo.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("Cargo.toml:1: the first line must be the header"),
        "{err}"
    );
}

#[test]
fn test_runs_conversations_and_fails_on_a_wrong_one() {
    let (code, out, _) = esrbot(&["test", "tests/conversations/dev"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.trim_end().ends_with(" passed, 0 failed"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "start = \"2026-03-02T09:00:00Z\"\n[[turn]]\nsay = \"hello\"\nexpect = [\"goodbye\"]\n",
    )
    .unwrap();
    let (code, out, _) = esrbot(&["test", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("expected the reply to contain \"goodbye\""),
        "{out}"
    );
    assert!(out.trim_end().ends_with("0 passed, 1 failed"), "{out}");
}

#[test]
fn a_bad_setting_stops_start_up_naming_the_key() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_esrbot"))
            .args(args)
            .current_dir(root())
            .env("ESRBOT_GUIDE_LOCK_HOURS", "0")
            .output()
            .unwrap()
    };
    let out = run(&["classify", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("guide.lock_hours"), "{err}");
    // `check` lists it as one of the problems it found instead of stopping at it.
    let out = run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("config.toml:0: guide.lock_hours must be between 1 and 168 (got 0)")
            && said.contains("1 problem(s)"),
        "{said}"
    );
}

#[test]
fn chat_answers_lines_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.redb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_esrbot"))
        .args(["chat", "--user", "alex"])
        .current_dir(root())
        .env("ESRBOT_STORAGE_PATH", &db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello\nI'm locked out of ESR\nhow long is left\nquit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("get back into ESR"), "{text}");
    assert!(text.contains("12 hours"), "{text}");
    assert!(text.contains("locked until"), "{text}");
    assert!(db.exists());
}

#[test]
fn discord_without_a_token_says_what_is_missing() {
    let out = Command::new(env!("CARGO_BIN_EXE_esrbot"))
        .args(["discord"])
        .current_dir(root())
        .env_remove("DISCORD_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DISCORD_TOKEN"), "{err}");
}

#[test]
fn eval_unseen_leaves_out_rows_that_are_training_examples() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.tsv");
    // "hi" is a greeting example in intents/; the other row is not an example anywhere.
    std::fs::write(
        &file,
        "text\tintent\nHi!\tgreeting\nmy esr reset link says expired, staff room pc, what now\tlink_expired\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (code, out, err) = esrbot(&["eval", "--unseen", file]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("left out 1 row(s) that are also training examples"),
        "{err}"
    );
    assert!(out.trim_end().ends_with(" n=1"), "{out}");
    let (_, out, _) = esrbot(&["eval", file]);
    assert!(out.trim_end().ends_with(" n=2"), "{out}");
}

#[test]
fn crossval_scores_every_example_once_and_checks_its_folds() {
    let (code, out, err) = esrbot(&["crossval", "--folds", "2", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    // Every training example is held out exactly once.
    let examples: usize = esrbot::understanding::intents::load_dir(
        &root().join("intents"),
        &esrbot::service::required_intents(),
    )
    .unwrap()
    .iter()
    .map(|i| i.examples.len())
    .sum();
    assert_eq!(v["n"].as_u64(), Some(examples as u64));
    let accuracy = v["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.5 && accuracy < 1.0, "{accuracy}");
    let (code, _, err) = esrbot(&["crossval", "--folds", "11"]);
    assert_eq!(code, 2);
    assert!(err.contains("--folds must be between 2 and 10"), "{err}");
}

#[test]
fn hostile_input_gets_a_clear_answer() {
    // An over-long argument to classify is refused at once, as a message would be.
    let long = "a".repeat(120_000);
    let (code, _, err) = esrbot(&["classify", &long]);
    assert_eq!(code, 2);
    assert!(err.contains("120000 characters"), "{err}");
    // A wait past the end of time is a failure of that conversation, not a panic.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wait.toml");
    std::fs::write(
        &file,
        "start = \"2026-03-02T09:00:00Z\"\n[[turn]]\nwait = \"100000000d\"\nsay = \"hello\"\n",
    )
    .unwrap();
    let (code, out, _) = esrbot(&["test", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("takes the clock past the year 9999"), "{out}");
}

#[test]
fn invalid_utf8_on_standard_input_is_answered_and_the_chat_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_esrbot"))
        .args(["chat", "--user", "u8"])
        .current_dir(root())
        .env("ESRBOT_STORAGE_PATH", dir.path().join("e.redb"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let stdin = child.stdin.as_mut().unwrap();
        stdin
            .write_all(b"hello \xff\xfe there\nI'm locked out\nquit\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("12 hours"),
        "the line after the bad one is answered:\n{text}"
    );
    // Logs to a pipe carry no colour codes.
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\u{1b}'));
}

#[test]
fn json_logs_are_one_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_esrbot"))
        .args(["chat", "--user", "logs"])
        .current_dir(root())
        .env("ESRBOT_STORAGE_PATH", dir.path().join("l.redb"))
        .env("ESRBOT_LOG_FORMAT", "json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.as_mut().unwrap().write_all(b"quit\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    // With no relay configured the mail sender warns once: that line is JSON.
    let line = logs
        .lines()
        .find(|l| l.contains("mail.host"))
        .expect("a log line");
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
    assert_eq!(v["level"], "WARN", "{line}");
}

#[test]
fn train_writes_the_model_and_later_commands_load_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("esrbot.model");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_esrbot"))
            .args(args)
            .current_dir(root())
            .env("ESRBOT_UNDERSTANDING_MODEL_PATH", &model)
            .env("ESRBOT_LOG", "esrbot=debug")
            .output()
            .expect("esrbot runs");
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (out, _) = run(&["train"]);
    assert!(out.starts_with("trained on 19 intents in "), "{out}");
    assert!(
        out.contains(&format!("model written to {}", model.display())),
        "{out}"
    );
    let (out, err) = run(&["classify", "my esr reset link expired"]);
    assert!(out.starts_with("intent: link_expired"), "{out}");
    assert!(err.contains("source=Loaded"), "{err}");
    // A file that is not this content's model is ignored: the next command trains and saves again.
    std::fs::write(&model, b"ESRBOTM1 not a model").unwrap();
    let (_, err) = run(&["classify", "hello"]);
    assert!(err.contains("source=TrainedAndSaved"), "{err}");
    let (_, err) = run(&["classify", "hello"]);
    assert!(err.contains("source=Loaded"), "{err}");
}
