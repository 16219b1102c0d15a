//! Fixtures as builders: a service on a fresh database, routed as the shipped settings route it,
//! that can be closed and damaged.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use esrbot::core::engine::Reply;
use esrbot::core::records::{Recipient, UserState};
use esrbot::service::Service;
use esrbot::store::Store;

use super::super::{config, engine};

/// A service on its own temporary database file, which outlives the service (`reopen`).
pub struct Scene {
    pub svc: Service,
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Scene {
    pub fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("esrbot.redb");
        Scene {
            svc: open(&path),
            path,
            _dir: dir,
        }
    }

    /// The database closed while `f` runs (to damage it the way a disk or a person might).
    pub fn with_closed(self, f: impl FnOnce(&std::path::Path)) -> Scene {
        let Scene { svc, path, _dir } = self;
        drop(svc);
        f(&path);
        Scene {
            svc: open(&path),
            path,
            _dir,
        }
    }

    pub fn say(&self, who: &str, text: &str, at: DateTime<Utc>) -> Reply {
        self.svc.handle(who, None, text, at).unwrap()
    }

    pub fn state(&self, who: &str) -> UserState {
        self.svc.store.user(&Recipient::from(who)).unwrap()
    }
}

fn open(path: &std::path::Path) -> Service {
    Service::new(
        engine(),
        Store::open(path).unwrap(),
        esrbot::transports::routing(&config()),
    )
}

/// A copy of config.toml, intents/ and data/ in a temporary folder, to edit or break on purpose
/// (the database, when a test makes one, goes beside them).
pub fn copy_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["intents", "data"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(crate::root().join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(
        crate::root().join("config.toml"),
        dir.path().join("config.toml"),
    )
    .unwrap();
    dir
}

/// Whether `needle` appears anywhere in the file's raw bytes, in any case (for "nothing secret
/// reaches the database file").
pub fn file_contains(path: &std::path::Path, needle: &str) -> bool {
    let bytes = std::fs::read(path).unwrap();
    let needle = needle.to_ascii_lowercase();
    let lower: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
    lower.windows(needle.len()).any(|w| w == needle.as_bytes())
}
