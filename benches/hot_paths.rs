//! Benchmarks of the hot paths, with the issues' targets: classifying one message (< 10 µs), the
//! whole understanding path with the decision (the standing target is <= 10 µs),
//! handling one message end to end with its durable redb commit (< 2 ms), start-up, and
//! scheduling then claiming 100,000 jobs. Run with `cargo bench --bench hot_paths`; the job
//! queue at a million users is `benches/job_queue_scale.rs`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, Utc};
use divan::Bencher;
use esrbot::config::Config;
use esrbot::core::engine::Engine;
use esrbot::core::records::{Job, JobKind, Recipient, UserState};
use esrbot::service::{Routing, Service, jobs, load_engine};
use esrbot::store::Store;

fn main() {
    divan::main();
}

fn config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    Config::load(&path, true, Vec::<(String, String)>::new()).expect("config")
}

fn engine() -> Arc<Engine> {
    static E: OnceLock<Arc<Engine>> = OnceLock::new();
    E.get_or_init(|| Arc::new(load_engine(&config()).expect("engine")))
        .clone()
}

fn t0() -> DateTime<Utc> {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

const MESSAGES: &[&str] = &[
    "my esr reset link has expired, what do I do now",
    "i'm locked out",
    "forgot my pw for E.S.R and i'm on nights",
    "where can I see my payslip",
];

#[divan::bench(args = MESSAGES)]
fn classify_one_message(msg: &str) {
    let e = engine();
    divan::black_box(e.classifier().classify(divan::black_box(msg)));
}

/// The whole understanding path and the decision, pure (no store): cleaning, redaction, scope,
/// patterns, times, the classifier, the dialogue rules and the reply's words, for a person with
/// nothing on record. The standing target for the understanding part is <= 10 µs.
#[divan::bench(args = MESSAGES)]
fn understand_and_decide_one_message(b: Bencher, msg: &str) {
    let e = engine();
    let who = Recipient::new("bench", "ann");
    b.bench(|| {
        let mut state = UserState::default();
        divan::black_box(e.handle(&who, &mut state, divan::black_box(msg), t0(), "ESC-00001"))
    });
}

/// A message that changes state (a lockout: state and its lock-end job) committed durably.
#[divan::bench(sample_count = 200)]
fn handle_message_with_durable_commit(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let bot = Service::new(
        engine(),
        Store::open(&dir.path().join("bench.redb")).unwrap(),
        Routing::default(),
    );
    let mut i = 0u64;
    b.bench_local(|| {
        i += 1;
        bot.handle(
            format!("bench:{i}"),
            Some("Bench"),
            "I'm locked out of ESR",
            t0(),
        )
        .unwrap()
    });
}

/// A question that changes nothing: answered from a read snapshot, no write transaction.
#[divan::bench(sample_count = 200)]
fn handle_question_read_only(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let bot = Service::new(
        engine(),
        Store::open(&dir.path().join("bench.redb")).unwrap(),
        Routing::default(),
    );
    b.bench_local(|| {
        bot.handle("bench:q", None, "how do I reset my esr password", t0())
            .unwrap()
    });
}

/// Start-up as every command does it: load intents and data, load the saved model (written once
/// before timing), open the database.
#[divan::bench(sample_count = 10)]
fn start_up(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.understanding.model_path = dir.path().join("esrbot.model");
    load_engine(&c).unwrap();
    assert!(c.model_path().exists(), "the model was saved");
    let path = dir.path().join("start.redb");
    b.bench_local(|| {
        let e = load_engine(&c).unwrap();
        let store = Store::open(&path).unwrap();
        (e, store)
    });
}

/// Start-up when the saved model is missing or stale: the classifier is trained.
#[divan::bench(sample_count = 10)]
fn start_up_training(b: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    // A folder that does not exist: nothing is loaded, and nothing can be saved.
    c.understanding.model_path = dir.path().join("missing/esrbot.model");
    let path = dir.path().join("start.redb");
    b.bench_local(|| {
        let e = load_engine(&c).unwrap();
        let store = Store::open(&path).unwrap();
        (e, store)
    });
}

/// Schedule 100,000 lock-end jobs for 100,000 people (one transaction), then claim them all as
/// the dispatcher does: each person's state updated, a purge scheduled, a reminder queued.
#[divan::bench(sample_count = 3)]
fn schedule_and_claim_100k_jobs(b: Bencher) {
    b.with_inputs(|| {
        let dir = tempfile::tempdir().unwrap();
        let svc = Service::new(
            engine(),
            Store::open(&dir.path().join("r.redb")).unwrap(),
            Routing::default(),
        );
        (dir, svc)
    })
    .bench_local_values(|(_dir, svc)| {
        svc.store
            .write(|t| {
                for i in 0..100_000i64 {
                    let who = Recipient::new("u", &i.to_string());
                    let until = t0() + Duration::seconds(i);
                    let job = Job::new(&who, JobKind::LockOver, until);
                    let state = UserState {
                        locked_until: Some(until),
                        jobs: vec![job.job_ref()],
                        ..UserState::default()
                    };
                    t.put_user(&who, &state)?;
                    t.schedule("u", &job)?;
                }
                Ok(())
            })
            .unwrap();
        let end = t0() + Duration::days(2);
        let claimed = jobs::claim_due(&svc, &["u".into()], end, usize::MAX, |_, _, _| {}).unwrap();
        assert_eq!(claimed, 100_000);
    });
}
