//! `esrbot serve` as an IT team runs it: health and metrics on the admin listener, a content
//! reload that keeps the old content when an edit is broken, a graceful stop on SIGTERM that
//! loses nothing, backups while it runs, and a damaged database that is reported, never a panic.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use esrbot::store::Store;

use super::support::fixtures::copy_tree;
use super::support::process::{admin, free_port, wait_for};

/// `esrbot serve` on its own copy of the shipped files, with no transport configured.
struct Served {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn db(dir: &Path) -> PathBuf {
    dir.join("esrbot.redb")
}

impl Served {
    fn start(dir: tempfile::TempDir) -> Served {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_esrbot"))
            .args([
                "--config",
                dir.path().join("config.toml").to_str().unwrap(),
                "serve",
            ])
            .env("ESRBOT_ADMIN_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("DISCORD_TOKEN")
            .env_remove("ESRBOT_FAULT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s = Served { child, port, dir };
        wait_for("the admin listener", 120, || {
            http(s.port, "GET", "/livez").is_some_and(|(code, _)| code == 200)
        });
        s
    }

    fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path).expect("the admin listener answers")
    }

    fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// SIGTERM, then the exit status within `secs`.
    fn terminate(mut self, secs: u64) -> (std::process::ExitStatus, tempfile::TempDir) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
                return (status, dir);
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop within {secs} s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on loopback: (status, body), or None when nothing listens.
fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let code = raw.get(9..12)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// `esrbot chat --user WHO` on the tree in `dir`, fed `input`: (exit code, standard error).
fn chat(dir: &Path, who: &str, input: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_esrbot"))
        .args(["--config", dir.join("config.toml").to_str().unwrap()])
        .args(["chat", "--user", who])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Staff who locked themselves out and changed their address.
fn some_staff(dir: &Path, people: &[&str]) {
    for who in people {
        let input = format!("i'm locked out of esr\nmy email changed to {who}@nhs.net\nyes\n");
        let (code, err) = chat(dir, who, &input);
        assert_eq!(code, 0, "{err}");
    }
}

#[test]
fn with_no_transport_serve_is_live_ready_measured_and_stops_cleanly_on_sigterm() {
    let dir = copy_tree();
    some_staff(dir.path(), &["ann", "bob"]);
    let jobs_before = Store::open_read_only(&db(dir.path()))
        .unwrap()
        .counts()
        .unwrap();
    assert!(jobs_before.jobs >= 2, "{jobs_before}");

    let s = Served::start(dir);
    assert_eq!(s.get("/livez"), (200, "ok\n".to_string()));
    let (code, body) = s.get("/readyz");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""ready":true"#), "{body}");
    let (code, metrics) = s.get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("esrbot_build_info{version=\""),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("esrbot_jobs_pending {}", jobs_before.jobs)),
        "{metrics}"
    );
    assert!(
        metrics.contains("esrbot_outbox_depth{transport=\"mail\"} 2"),
        "{metrics}"
    );
    // No user id, address or text is ever a label.
    for private in ["ann", "bob", "nhs.net", "locked"] {
        assert!(!metrics.contains(private), "{private} in {metrics}");
    }
    assert_eq!(http(s.port, "GET", "/nowhere").map(|r| r.0), Some(404));

    let (status, dir) = s.terminate(10);
    assert!(status.success(), "exit status {status:?}");
    let after = Store::open_read_only(&db(dir.path()))
        .unwrap()
        .counts()
        .unwrap();
    assert_eq!(
        after, jobs_before,
        "nothing lost and nothing added by stopping"
    );
}

#[test]
fn a_broken_content_edit_keeps_the_old_content_and_says_so_on_readyz() {
    let s = Served::start(copy_tree());
    let replies = s.dir.path().join("data/replies.toml");
    let good = std::fs::read_to_string(&replies).unwrap();
    // A section header left unclosed, as an editor might.
    let broken = good.replacen("[intent.thanks]", "[intent.thanks", 1);
    assert!(broken != good, "the test's edit must change something");
    std::fs::write(&replies, &broken).unwrap();

    let (code, body) = http(s.port, "POST", "/reload").unwrap();
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("replies.toml:"),
        "the problem names its file and line: {body}"
    );
    assert!(body.contains("unclosed table"), "{body}");
    let (code, ready) = s.get("/readyz");
    assert_eq!(code, 200, "the old content still serves: {ready}");
    assert!(ready.contains("previous content is in force"), "{ready}");

    // The same by SIGHUP, then a fixed edit clears the note.
    s.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(&replies, &good).unwrap();
    s.signal(libc::SIGHUP);
    wait_for("the fixed content to load", 60, || {
        !s.get("/readyz").1.contains("previous content")
    });
    let (code, body) = http(s.port, "POST", "/reload").unwrap();
    assert_eq!(code, 200, "{body}");
    let metrics = s.get("/metrics").1;
    assert!(
        metrics.contains("esrbot_content_reloads_total{result=\"failed\"}"),
        "{metrics}"
    );
    let (status, _) = s.terminate(10);
    assert!(status.success());
}

#[test]
fn a_backup_taken_while_the_bot_runs_is_complete_and_verified() {
    let dir = copy_tree();
    some_staff(dir.path(), &["cat", "dev", "eve"]);
    let s = Served::start(dir);
    let copy = s.dir.path().join("backups/esrbot-copy.redb");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let (code, out) = admin(&db(s.dir.path()), &["backup", copy.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified: 3 users,"), "{out}");
    assert!(out.contains("3 escalations"), "{out}");
    // The copy is a database in its own right, with the same queue.
    let (_, listed_live) = admin(&db(s.dir.path()), &["escalations", "list"]);
    let (code, listed_copy) = admin(&copy, &["escalations", "list"]);
    assert_eq!(code, 0, "{listed_copy}");
    assert_eq!(listed_copy, listed_live);
    let (code, checked) = admin(&copy, &["check", "--database"]);
    assert_eq!(code, 0, "{checked}");
    assert!(checked.contains("passed its integrity check"), "{checked}");
    // Never over the database itself.
    let (code, out) = admin(
        &db(s.dir.path()),
        &["backup", db(s.dir.path()).to_str().unwrap()],
    );
    assert_eq!(code, 2, "{out}");
}

#[test]
fn a_damaged_database_is_a_clear_error_never_a_panic_and_reading_leaves_it_untouched() {
    let dir = copy_tree();
    some_staff(dir.path(), &["fay", "gus", "hal", "ivy"]);
    let good = std::fs::read(db(dir.path())).unwrap();
    let pages = good.len() / 4096;
    let (mut refused_list, mut refused_chat) = (0, 0);
    for page in 1..pages {
        let mut damaged = good.clone();
        damaged[page * 4096..(page + 1) * 4096].fill(0);
        std::fs::write(db(dir.path()), &damaged).unwrap();
        // Reading (the support team's list) never changes the file.
        let (code, out) = admin(&db(dir.path()), &["escalations", "list"]);
        assert!(code == 0 || code == 2, "page {page}: exit {code}: {out}");
        assert!(!out.contains("panicked"), "page {page}: {out}");
        if code == 2 {
            refused_list += 1;
            assert!(out.contains("is damaged"), "page {page}: {out}");
        }
        assert!(
            std::fs::read(db(dir.path())).unwrap() == damaged,
            "page {page}: the file changed"
        );
        // Chatting reports it and stops; it never panics.
        let (code, err) = chat(dir.path(), "fay", "locked out\n");
        assert!(
            code == 0 || code == 2,
            "page {page}: chat exit {code}: {err}"
        );
        assert!(!err.contains("panicked"), "page {page}: {err}");
        if code == 2 {
            refused_chat += 1;
            assert!(err.contains("is damaged"), "page {page}: {err}");
        }
    }
    assert!(
        refused_list > 0 && refused_chat > 0,
        "some page held data: {refused_list}, {refused_chat}"
    );
    let (code, out) = admin(&db(dir.path()), &["check", "--database"]);
    // The last page damaged may hold nothing: the check runs either way and says what it found.
    assert!(code == 0 || code == 1, "{out}");
}
