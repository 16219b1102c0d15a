//! Helpers for tests that run `esrbot` as a separate process or wait for something to happen:
//! a free loopback port, `esrbot chat` with its output collected, an administrator's command,
//! and bounded waits.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::super::root;

/// A port on 127.0.0.1 that nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `esrbot chat` as a separate process, with its output collected as it comes.
pub struct ChatProcess {
    pub child: Child,
    pub out: Arc<Mutex<String>>,
}

impl ChatProcess {
    /// `esrbot chat --user kim` with these settings.
    pub fn start(env: &[(String, String)]) -> ChatProcess {
        ChatProcess::start_as("kim", env)
    }

    /// `esrbot chat --user USER` with these settings (and `ESRBOT_FAULT` only if `env` sets it).
    pub fn start_as(user: &str, env: &[(String, String)]) -> ChatProcess {
        let mut child = chat_command(user, env)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        ChatProcess { child, out }
    }

    pub fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// SIGKILL: no destructor, no flush, no goodbye.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }

    /// Waits for the process to end by itself (a fault hook aborting it).
    pub fn wait_exit(mut self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the process did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChatProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command for `esrbot chat --user USER` with these settings, standard input and output
/// piped (and `ESRBOT_FAULT` only if `env` sets it).
pub fn chat_command(user: &str, env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_esrbot"));
    command
        .args(["chat", "--user", user])
        .current_dir(root())
        .env_remove("ESRBOT_FAULT")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    command
}

/// Runs `esrbot ARGS` on the database at `db`: (exit code, standard output and error).
pub fn admin(db: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_esrbot"))
        .args(args)
        .current_dir(root())
        .env("ESRBOT_STORAGE_PATH", db)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// Waits (polling) until `ok`, failing the test after `secs` seconds.
pub fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `wait_for` for async tests.
pub async fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
