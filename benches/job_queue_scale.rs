//! The job queue at scale, with the targets of the "One house" issue: 1,000,000 people, each with
//! a pending lock end, in ≤ 150 MB on disk, built with ≤ 200 MB peak memory; every due job claimed
//! in ≤ 10 s; an idle transport (a terminal session) using < 1% of a core with the million other
//! jobs pending. Run with `cargo bench --bench job_queue_scale`; `ESRBOT_SCALE_USERS=100000`
//! runs a smaller one. Figures are printed, not asserted: this machine is noisy.
//!
//! The fixture is written through the store in batches of 10,000 people per transaction, with the
//! records a lockout gives (state with its lock, one lock-end job); building it in a child
//! process lets the peak memory of the build be measured on its own.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use esrbot::clock::SystemClock;
use esrbot::config::Config;
use esrbot::core::records::{Job, JobKind, Recipient, UserState};
use esrbot::service::{Service, jobs, load_engine};
use esrbot::store::Store;

const BATCH: u64 = 10_000;

fn t0() -> DateTime<Utc> {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--build") {
        let path = Path::new(&args[at + 1]);
        let n: u64 = args[at + 2].parse().unwrap();
        build(path, n);
        println!("{}", peak_rss_mb());
        return;
    }
    let n: u64 = std::env::var("ESRBOT_SCALE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scale.redb");

    let started = Instant::now();
    let out = std::process::Command::new(&args[0])
        .args(["--build", path.to_str().unwrap(), &n.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let build_rss: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let build_secs = started.elapsed().as_secs_f64();
    let size_mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    println!("people with a pending lock end: {n}");
    println!("build: {build_secs:.1} s, peak memory {build_rss:.0} MB (target <= 200 MB)");
    println!("database on disk: {size_mb:.1} MB (target <= 150 MB at 1,000,000)");

    let config = Config::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml"),
        true,
        Vec::<(String, String)>::new(),
    )
    .unwrap();
    let engine = Arc::new(load_engine(&config).unwrap());
    let svc = Arc::new(Service::new(
        engine,
        Store::open(&path).unwrap(),
        esrbot::transports::routing(&config),
    ));

    // An idle terminal session: its dispatcher and outbox runner, with everyone else's jobs due.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let idle_secs = 5.0;
    let cpu_before = cpu_seconds();
    rt.block_on(async {
        let me = Recipient::new("chat", "idle");
        let lanes = vec![svc.lane(&me)];
        let (stop, rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let d = tokio::spawn(jobs::run(
            svc.clone(),
            Arc::new(SystemClock),
            lanes.clone(),
            StdDuration::from_secs(config.reminders.poll_seconds.into()),
            stopped(rx.clone()),
        ));
        tokio::time::sleep(StdDuration::from_secs_f64(idle_secs)).await;
        let _ = stop.send(true);
        d.await.unwrap().unwrap();
    });
    let idle_cpu = (cpu_seconds() - cpu_before) / idle_secs * 100.0;
    println!("idle terminal with {n} other jobs pending: {idle_cpu:.2}% of a core (target < 1%)");

    // Every lock has ended: the Discord transport claims all of them.
    let now = t0() + Duration::hours(13);
    let started = Instant::now();
    let mut claimed = 0;
    loop {
        let n = jobs::claim_due(
            &svc,
            &["discord".to_string()],
            now,
            jobs::BATCH,
            |_, _, _| {},
        )
        .unwrap();
        if n == 0 {
            break;
        }
        claimed += n;
    }
    let claim_secs = started.elapsed().as_secs_f64();
    assert_eq!(claimed as u64, n);
    println!(
        "claimed {claimed} due jobs (each: the lock cleared from the state, a reminder queued) in {claim_secs:.1} s (target <= 10 s); peak memory of this process {:.0} MB",
        peak_rss_mb()
    );
}

/// Writes `n` people locked out at `t0`, each with their lock-end job, as a lockout leaves them.
fn build(path: &Path, n: u64) {
    let store = Store::open(path).unwrap();
    let until = t0() + Duration::hours(12);
    let mut i = 0;
    while i < n {
        let end = (i + BATCH).min(n);
        let write = |txn: &mut esrbot::store::Txn| {
            for k in i..end {
                // Discord snowflakes are 18 digits.
                let who = Recipient::new("discord", &(800_000_000_000_000_000 + k).to_string());
                let job = Job::new(&who, JobKind::LockOver, until);
                let state = UserState {
                    display_name: Some(format!("Staff {k}")),
                    failed_attempts: 3,
                    attempts_at: Some(t0()),
                    locked_until: Some(until),
                    jobs: vec![job.job_ref()],
                    ..UserState::default()
                };
                txn.put_user(&who, &state)?;
                txn.schedule("discord", &job)?;
            }
            Ok(())
        };
        store.write(write).unwrap();
        i = end;
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}
