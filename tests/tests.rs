//! Integration tests, one binary with a module per area (see each module's header).

mod accounts;
mod analytics;
mod bad_input;
mod browser;
mod cli;
mod conversations;
mod discord;
mod escalations;
mod files;
mod jobs;
mod mail;
mod restart;
mod serve;
mod teams;
mod understanding;
mod web;

mod support {
    pub mod bot_framework;
    pub mod discord;
    pub mod fixtures;
    pub mod process;
    pub mod smtp_server;
}

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use esrbot::config::Config;
use esrbot::core::engine::Engine;
use esrbot::service::{Routing, Service, load_engine};
use esrbot::store::Store;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The project's own configuration, with no environment overrides.
pub fn config() -> Config {
    Config::load(
        &root().join("config.toml"),
        true,
        Vec::<(String, String)>::new(),
    )
    .expect("config.toml loads")
}

/// The engine trained on the shipped intents (trained once for all tests).
pub fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Arc::new(load_engine(&config()).expect("engine loads")))
        .clone()
}

/// A bot on a database file at `path` (which may already exist).
pub fn bot_at(path: &Path) -> Service {
    Service::new(
        engine(),
        Store::open(path).expect("database opens"),
        Routing::default(),
    )
}

pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("esrbot.redb");
    (dir, path)
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("RFC 3339 time")
}
