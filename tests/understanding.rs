//! Understanding: confidences, the "which did you mean?" question, counting attempts, and the
//! accuracy targets on the held-out file.

use std::sync::Arc;

use esrbot::core::engine::{Engine, Rules, Understood, attempts_in};
use esrbot::service::{Routing, Service};
use esrbot::store::Store;
use esrbot::tools::eval;
use esrbot::transports::chat;
use esrbot::understanding::intents;

use super::{at, config, engine, root, temp_db};

/// An engine trained on the shipped intents after `edit`, with the shipped rules after `rules`.
fn engine_with(
    edit: impl FnOnce(&mut [intents::Intent]),
    rules: impl FnOnce(Rules) -> Rules,
) -> Engine {
    let c = config();
    let mut list =
        intents::load_dir(&c.intents_dir(), &esrbot::service::required_intents()).unwrap();
    edit(&mut list);
    let content = esrbot::service::load_content(&c, &list).unwrap();
    Engine::new(rules(Rules::from_config(&c).unwrap()), &list, content)
}

/// An engine whose forgot_password and forgot_username intents were trained on the same
/// examples, so the bot cannot tell them apart and must ask.
fn confusable_engine() -> Engine {
    engine_with(
        |list| {
            let shared = list
                .iter()
                .find(|i| i.id == "forgot_password")
                .unwrap()
                .examples
                .clone();
            for i in list
                .iter_mut()
                .filter(|i| i.id == "forgot_password" || i.id == "forgot_username")
            {
                i.examples = shared.clone();
                i.patterns.clear();
            }
        },
        // Trained on the same examples, the two split the probability nearly evenly; the order
        // of stochastic training leaves one a little ahead, so "close" is taken generously here.
        |rules| Rules {
            margin: 0.3,
            ..rules
        },
    )
}

#[test]
fn close_intents_make_the_bot_ask_and_a_number_chooses() {
    let (_dir, path) = temp_db();
    let bot = Service::new(
        Arc::new(confusable_engine()),
        Store::open(&path).unwrap(),
        Routing::default(),
    );
    let now = at("2026-03-02T09:00:00Z");
    let (_, u) = bot.engine().understand("forgot my esr password");
    assert!(
        matches!(u, Understood::Ambiguous { ref options } if options.len() >= 2),
        "{u:?}"
    );
    let r = bot
        .handle("u", None, "forgot my esr password", now)
        .unwrap();
    assert_eq!(r.intent, None);
    // As the terminal shows it: the question, then the options as numbered choices.
    let shown = chat::render(&r.message());
    assert!(
        shown.contains("Reply with a number") && shown.contains("1. ") && shown.contains("2. "),
        "{shown}"
    );
    let which = if shown.find("username").unwrap() < shown.find("password").unwrap_or(usize::MAX) {
        1
    } else {
        2
    };
    let r = bot.handle("u", None, &which.to_string(), now).unwrap();
    assert_eq!(r.intent.as_deref(), Some("forgot_username"), "{}", r.text);
    assert!(r.text.contains("reset e-mail contains your ESR username"));
    // The question is answered: a bare number now means nothing special.
    let r = bot.handle("u", None, "2", now).unwrap();
    assert_ne!(r.intent.as_deref(), Some("forgot_username"));
}

#[test]
fn every_classification_has_a_confidence_and_ranked_candidates() {
    let e = engine();
    let c = e.classifier().classify("my esr reset link has expired");
    assert_eq!(e.intent_id(c.top().0), "link_expired");
    assert!(c.top().1 > 0.5 && c.top().1 <= 1.0);
    assert_eq!(c.ranked.len(), 19);
    assert!(c.ranked.windows(2).skip(1).all(|w| w[0].1 >= w[1].1));
    let (intent, _) = e.predict("what's the weather like in Leeds tomorrow");
    assert_eq!(intent, "out_of_scope");
}

/// The real intents with one broad pattern added to `intent`, and none left on `bare`.
fn engine_with_pattern(intent: &str, pattern: &str, bare: &str) -> Engine {
    engine_with(
        |list| {
            for i in list.iter_mut() {
                if i.id == intent {
                    i.patterns.push(regex::Regex::new(pattern).unwrap());
                } else if i.id == bare {
                    i.patterns.clear();
                }
            }
        },
        |rules| rules,
    )
}

#[test]
fn a_pattern_yields_to_a_classifier_that_has_read_the_whole_message() {
    // A greeting pattern that catches any message naming ESR: the classifier is all but certain
    // this is a forgotten password, so it is answered as one.
    let e = engine_with_pattern("greeting", r"\besr\b", "forgot_password");
    let text = "my esr password has gone clean out of my head, how do i get a new one";
    let (c, u) = e.understand(text);
    assert_eq!(e.intent_id(c.top().0), "forgot_password", "{text}");
    assert!(!c.by_pattern);
    assert!(matches!(u, Understood::Intent { .. }));
    // Where the classifier is not that sure, the pattern still decides.
    let (c, _) = e.understand("hiya esr");
    assert_eq!(e.intent_id(c.top().0), "greeting");
    assert!(c.by_pattern);

    // A vague pattern yields sooner, to a classifier 90% sure of a cause, as it yields to a
    // cause's pattern.
    let e = engine_with_pattern("cant_log_in", r"\bworking\b", "shared_computer");
    let text = "on the shared ward login and the esr reset keeps not working";
    let (c, _) = e.understand(text);
    assert_eq!(e.intent_id(c.top().0), "shared_computer", "{text}");
    assert!(!c.by_pattern);
    let (c, _) = e.understand("esr not working");
    assert_eq!(e.intent_id(c.top().0), "cant_log_in");
    assert!(c.by_pattern);
}

#[test]
fn attempts_are_read_from_the_message() {
    for (text, n) in [
        ("got it wrong twice", Some(2)),
        ("tried 2 times", Some(2)),
        ("that's my third attempt", Some(3)),
        ("it says 1 attempt left", Some(2)),
        ("one wrong try", Some(1)),
        ("ive done 2 wrong already", Some(2)),
        ("had one wrong so far", Some(1)),
        ("how many tries do i get", None),
        ("band 5 nurse on ward 21", None),
    ] {
        assert_eq!(attempts_in(text, 3), n, "{text}");
    }
}

/// Held-out quality, measured on files never used for training or tuning. The issue's targets
/// are at least 95% accuracy and under 5% of out-of-scope messages accepted; the model measures
/// 97.4% / 0.9% (eval.tsv), 97.3% / 2.0% (fresh.tsv), 97.5% / 0.0% (fresh2.tsv) and
/// 98.7% / 0.0% (fresh3.tsv) — see the README. Each floor keeps the target and
/// sits just under the measured level, so a change that loses ground fails here.
#[test]
fn held_out_accuracy_meets_the_target() {
    let e = engine();
    for (file, accuracy_floor, oos_ceiling) in [
        ("eval.tsv", 0.97, 0.015),
        ("fresh.tsv", 0.97, 0.025),
        ("fresh2.tsv", 0.96, 0.015),
        ("fresh3.tsv", 0.985, 0.01),
    ] {
        let rows = eval::read_tsv(
            &root().join("tests/data").join(file),
            e.classifier().intent_ids(),
        )
        .unwrap();
        let report = eval::evaluate(&e, &rows);
        eprintln!("{file}: {}", report.summary());
        assert!(
            report.accuracy >= accuracy_floor,
            "{file}\n{}",
            report.table()
        );
        assert!(
            report.oos_false_accept <= oos_ceiling,
            "{file}\n{}",
            report.table()
        );
    }
}

#[test]
fn esr_spelled_out_or_dictated_reads_as_esr() {
    let e = engine();
    let c = e.classifier();
    for (variant, plain) in [
        (
            "locked out of my electronic staff record",
            "locked out of my esr",
        ),
        ("forgot my E S R password", "forgot my esr password"),
    ] {
        // The lexicon maps the phrase to "esr" before the statistical model reads it, so both
        // spellings get the same probabilities (patterns still see the message as written).
        assert_eq!(
            c.classify(variant).ranked,
            c.classify(plain).ranked,
            "{variant}"
        );
        assert_eq!(e.predict(variant).0, e.predict(plain).0, "{variant}");
    }
}

#[test]
fn an_untrained_engine_trains_on_first_use_and_reads_the_same() {
    let c = config();
    let lazy = esrbot::service::load_engine_untrained(&c).unwrap();
    let e = engine();
    for text in ["my esr link expired", "where do i get my payslip", "hello"] {
        assert_eq!(lazy.predict(text), e.predict(text), "{text}");
    }
}
