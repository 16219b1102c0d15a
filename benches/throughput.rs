//! Message throughput through the service with durable commits, with the targets of issue 10
//! section 5: at least 10,000 state-changing messages a second at saturation, and a p99 reply
//! latency of at most 5 ms at an offered load of 1,000 messages a second (on a 2-core machine).
//! Run with `cargo bench --bench throughput`; `ESRBOT_BENCH_STAFF` (simulated staff at
//! saturation, a comma-separated list, default `64,256`: one figure each) and `ESRBOT_BENCH_SECS`
//! (seconds per phase, default 5) change the shape. Figures are printed, not asserted: this
//! machine is noisy.
//!
//! Each simulated person runs one of a few scripts typed the way staff write ("locked out of
//! esr", "my reset link expired", "yes", "thanks"...), some coming back hours later as returning
//! users; a calibration pass on its own database says which steps change state, so the
//! state-changing rate is counted exactly. Latency is measured open-loop: every message has a
//! send time on a fixed schedule and its latency runs from then, so a slow reply that holds up
//! the next is counted, not hidden. Each phase starts after the disk has written back the last
//! one's work, and its first second is a warm-up.
//!
//! What limits it: in redb's multi-process mode (which lets `esrbot escalations`, `support` and
//! `backup` run beside the bot) every commit is two-phase, two fsyncs, and the commit holds the
//! write lock through both. A batch's serial part is its members' writes (about 30 µs each)
//! then that commit (about 1 ms alone, 2-2.5 ms for a batch of 30 on this disk, mostly waiting
//! for it). So the rate grows with the batch, and the batch with the number of messages in
//! flight: 64 staff give batches of about 30, 256 staff larger ones. Figures for the current
//! code are in the README ("Throughput with group commit").

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use esrbot::config::Config;
use esrbot::core::records::Recipient;
use esrbot::service::{Service, load_engine};
use esrbot::store::Store;

/// One person's messages: (minutes after their first, what they type).
type Script = &'static [(i64, &'static str)];

const SCRIPTS: &[Script] = &[
    // Locked out, asks how long is left, thanks the bot.
    &[
        (0, "locked out of esr"),
        (2, "how long till i can get back in"),
        (3, "thanks"),
    ],
    // An expired link, then a new request.
    &[
        (0, "my reset link expired"),
        (5, "i requested a reset at 9am"),
        (6, "thanks"),
    ],
    // Forgot the password, requests a reset, comes back after lunch to finish.
    &[
        (0, "forgot my esr password"),
        (2, "just pressed submit on the reset page"),
        (150, "hi"),
        (151, "I've reset my password, what now?"),
        (152, "cheers"),
    ],
    // A changed nhs.net address, passed on to the training team (an escalation and its e-mail).
    &[
        (0, "my nhs.net email address has changed"),
        (1, "yes"),
        (2, "its jane.bloggs2@nhs.net"),
        (3, "thank you"),
    ],
    // Wrong password three times, locked; back the next day when the lock has ended.
    &[
        (0, "typed my password wrong 3 times"),
        (1, "now it says my account is locked"),
        (1500, "can i log in now"),
        (1501, "thanks"),
    ],
    // Can't log in, wants a person.
    &[
        (0, "cant log in to esr"),
        (1, "can i speak to someone"),
        (2, "thank you"),
    ],
];

fn t0() -> DateTime<Utc> {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

fn config() -> Config {
    Config::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml"),
        true,
        Vec::<(String, String)>::new(),
    )
    .unwrap()
}

fn service(engine: &Arc<esrbot::core::engine::Engine>, path: &Path) -> Service {
    Service::new(
        engine.clone(),
        Store::open(path).unwrap(),
        esrbot::transports::routing(&config()),
    )
}

/// Person `n`'s id: Discord snowflakes are 18 digits.
fn person(n: u64) -> Recipient {
    Recipient::new("discord", &(800_000_000_000_000_000 + n).to_string())
}

fn script_of(n: u64) -> Script {
    SCRIPTS[(n % SCRIPTS.len() as u64) as usize]
}

fn say(svc: &Service, n: u64, step: usize) {
    let (minutes, text) = script_of(n)[step];
    svc.handle(
        person(n),
        Some("Staff Member"),
        text,
        t0() + Duration::minutes(minutes),
    )
    .unwrap();
}

/// Which steps of each script change something (state, jobs, outbox or escalations), found by
/// running each once on a database of its own.
fn calibrate(engine: &Arc<esrbot::core::engine::Engine>, show: bool) -> Vec<Vec<bool>> {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(engine, &dir.path().join("calibrate.redb"));
    let mut flags = Vec::new();
    for (s, script) in SCRIPTS.iter().enumerate() {
        let n = s as u64;
        let who = person(n);
        let lane = svc.lane(&who);
        let mut steps = Vec::new();
        for (step, (minutes, text)) in script.iter().enumerate() {
            let before = (
                svc.store.user(&who).unwrap(),
                svc.store.job_count().unwrap(),
                svc.store.outbox(&lane).unwrap().len(),
                svc.store.outbox("mail").unwrap().len(),
                svc.store.escalations().unwrap().len(),
            );
            let reply = svc
                .handle(
                    who.clone(),
                    Some("Staff Member"),
                    text,
                    t0() + Duration::minutes(*minutes),
                )
                .unwrap();
            let after = (
                svc.store.user(&who).unwrap(),
                svc.store.job_count().unwrap(),
                svc.store.outbox(&lane).unwrap().len(),
                svc.store.outbox("mail").unwrap().len(),
                svc.store.escalations().unwrap().len(),
            );
            let changed = before != after;
            if show {
                let first = reply.text.lines().next().unwrap_or_default();
                println!("  [{s}.{step}] {text:?} -> changed: {changed}; {first:.80}");
            }
            steps.push(changed);
        }
        flags.push(steps);
    }
    flags
}

fn main() {
    // Simulated staff at saturation: one figure per count.
    let staff: Vec<u64> = std::env::var("ESRBOT_BENCH_STAFF")
        .unwrap_or_else(|_| "64,256".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let secs: f64 = env_or("ESRBOT_BENCH_SECS", 5.0);
    let show = std::env::args().any(|a| a == "--show");
    let engine = Arc::new(load_engine(&config()).unwrap());
    let flags = calibrate(&engine, show);
    let (changing, total): (usize, usize) = flags
        .iter()
        .flatten()
        .fold((0, 0), |(c, t), f| (c + usize::from(*f), t + 1));
    println!(
        "mix: {} scripts, {total} messages, {changing} of them state-changing",
        SCRIPTS.len()
    );

    engine_alone(&engine);
    commit_alone(&engine);
    settle_disk();
    latency(&engine, 1_000.0, 32, secs);
    for n in staff {
        settle_disk();
        saturation(&engine, &flags, n, secs);
    }
}

/// The engine's decisions for the whole mix with no store: the part of each message's work that
/// no batching saves.
fn engine_alone(engine: &Arc<esrbot::core::engine::Engine>) {
    let rounds = 200;
    let started = Instant::now();
    let mut n = 0;
    for r in 0..rounds {
        for (s, script) in SCRIPTS.iter().enumerate() {
            let who = person((r * SCRIPTS.len() + s) as u64);
            let mut state = esrbot::core::records::UserState::default();
            for (minutes, text) in script.iter() {
                let d = engine.handle(
                    &who,
                    &mut state,
                    text,
                    t0() + Duration::minutes(*minutes),
                    "ESC-00001",
                );
                std::hint::black_box(d);
                n += 1;
            }
        }
    }
    println!(
        "the engine alone, one thread: {:.0} µs per message",
        started.elapsed().as_secs_f64() / f64::from(n) * 1e6
    );
}

/// One person's messages one at a time: each is a commit of its own, so this is the disk's fsync
/// time plus one message's work.
fn commit_alone(engine: &Arc<esrbot::core::engine::Engine>) {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(engine, &dir.path().join("alone.redb"));
    let mut took: Vec<StdDuration> = (0..300u64)
        .map(|n| {
            let started = Instant::now();
            say(&svc, n * SCRIPTS.len() as u64, 0);
            started.elapsed()
        })
        .collect();
    took.sort();
    println!(
        "one message alone (its own durable commit): p50 {:.2} ms, p99 {:.2} ms",
        took[took.len() / 2].as_secs_f64() * 1e3,
        took[took.len() * 99 / 100].as_secs_f64() * 1e3
    );
}

/// `staff` people at once, each sending their next message as soon as they have a reply.
fn saturation(
    engine: &Arc<esrbot::core::engine::Engine>,
    flags: &[Vec<bool>],
    staff: u64,
    secs: f64,
) {
    let dir = tempfile::tempdir().unwrap();
    let svc = Arc::new(service(engine, &dir.path().join("saturation.redb")));
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let (sent, changed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Arc::new(Barrier::new(staff as usize + 1));
    let workers: Vec<_> = (0..staff)
        .map(|t| {
            let (svc, stop, counting, sent, changed, start) = (
                svc.clone(),
                stop.clone(),
                counting.clone(),
                sent.clone(),
                changed.clone(),
                start.clone(),
            );
            let flags = flags.to_vec();
            std::thread::spawn(move || {
                start.wait();
                // Person numbers: this thread's, interleaved with the others'.
                let mut n = t;
                while !stop.load(Ordering::Relaxed) {
                    let changes = &flags[(n % SCRIPTS.len() as u64) as usize];
                    for (step, changes) in changes.iter().enumerate() {
                        say(&svc, n, step);
                        if counting.load(Ordering::Relaxed) {
                            sent.fetch_add(1, Ordering::Relaxed);
                            if *changes {
                                changed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    n += staff;
                }
            })
        })
        .collect();
    start.wait();
    // A short warm-up, so the figures are of the steady state.
    std::thread::sleep(StdDuration::from_secs_f64((secs / 5.0).min(1.0)));
    counting.store(true, Ordering::Relaxed);
    let began = Instant::now();
    let cpu_before = cpu_seconds();
    std::thread::sleep(StdDuration::from_secs_f64(secs));
    counting.store(false, Ordering::Relaxed);
    let took = began.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let (sent, changed) = (
        sent.load(Ordering::Relaxed) as f64,
        changed.load(Ordering::Relaxed) as f64,
    );
    println!(
        "saturation, {staff} staff: {:.0} messages/s, {:.0} state-changing messages/s (target >= 10,000)",
        sent / took,
        changed / took
    );
    // Other people's work on a shared machine lowers the rate; this does not depend on it.
    println!(
        "  CPU per message: {:.0} µs ({:.2} cores busy)",
        cpu / sent * 1e6,
        cpu / took
    );
}

/// Messages offered at `rate` a second on a fixed schedule, spread over `staff` threads.
fn latency(engine: &Arc<esrbot::core::engine::Engine>, rate: f64, staff: u64, secs: f64) {
    let dir = tempfile::tempdir().unwrap();
    let svc = Arc::new(service(engine, &dir.path().join("latency.redb")));
    // The first second is a warm-up, not measured (as at saturation): new threads build their
    // regex caches on their first messages.
    let warm_up = (secs / 5.0).min(1.0);
    let total = (rate * (secs + warm_up)) as u64;
    let measured_from = (rate * warm_up) as u64;
    let gap = StdDuration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + StdDuration::from_millis(200);
    let workers: Vec<_> = (0..staff)
        .map(|t| {
            let svc = svc.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                // Message k of the schedule is sent by thread k % staff at start + k * gap; each
                // thread works through its people one script at a time.
                let mut n = t;
                let mut step = 0;
                let mut k = t;
                while k < total {
                    let due = start + gap * k as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    say(&svc, n, step);
                    if k >= measured_from {
                        lat.push(due.elapsed());
                    }
                    step += 1;
                    if step == script_of(n).len() {
                        step = 0;
                        n += staff;
                    }
                    k += staff;
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<StdDuration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    all.sort();
    let pct = |p: f64| all[((all.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "latency at {rate:.0} messages/s offered ({} messages): p50 {:.2} ms, p99 {:.2} ms (target <= 5 ms), max {:.2} ms",
        all.len(),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}

/// Lets the disk finish writing back (and discarding) what the phase before wrote: otherwise the
/// next phase's fsyncs wait behind it, and it is measured instead of this one.
fn settle_disk() {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(StdDuration::from_secs(1));
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
