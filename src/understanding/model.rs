//! The trained classifier kept in a file, so that start-up loads it in milliseconds instead of
//! training. The file is keyed by a hash of everything the weights depend on (the intents'
//! examples and patterns, every file in `data/`, the training settings and the bot's version): a
//! file with another key is stale and ignored, never half used.

use std::io::Write;
use std::path::Path;

use crate::understanding::classifier::Classifier;
use crate::understanding::intents::Intent;

const MAGIC: &[u8; 8] = b"ESRBOTM1";

/// FNV-1a, 64-bit: stable across builds and platforms (std's hasher is not).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, b: &[u8]) {
        // Length first, so that ("ab", "c") and ("a", "bc") differ.
        for byte in (b.len() as u64).to_le_bytes().iter().chain(b) {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The key of a model trained on `intents` with the lexicon from `data_dir`.
pub fn key(intents: &[Intent], data_dir: &Path) -> u64 {
    let mut h = Fnv::new();
    h.bytes(env!("CARGO_PKG_VERSION").as_bytes());
    h.bytes(Classifier::training_signature().as_bytes());
    for i in intents {
        h.bytes(i.id.as_bytes());
        for p in &i.patterns {
            h.bytes(p.as_str().as_bytes());
        }
        for p in &i.unless {
            h.bytes(b"unless");
            h.bytes(p.as_str().as_bytes());
        }
        for e in &i.examples {
            h.bytes(e.as_bytes());
        }
    }
    let mut files: Vec<_> = std::fs::read_dir(data_dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        if let Ok(bytes) = std::fs::read(&f) {
            h.bytes(f.file_name().unwrap_or_default().as_encoded_bytes());
            h.bytes(&bytes);
        }
    }
    h.0
}

/// The saved weights at `path` when they carry `key`; None when the file is missing, stale or
/// not a model file.
pub fn load(path: &Path, key: u64) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let rest = bytes.strip_prefix(MAGIC)?;
    let (stored, payload) = rest.split_at_checked(8)?;
    (u64::from_le_bytes(stored.try_into().ok()?) == key).then(|| payload.to_vec())
}

/// Saves `weights` under `key`: written beside `path`, made durable and renamed into place, so a
/// reader never sees half a file.
pub fn save(path: &Path, key: u64, weights: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(MAGIC)?;
    tmp.write_all(&key.to_le_bytes())?;
    tmp.write_all(weights)?;
    // Readable by the service's own user when `esrbot train` ran as another (nothing secret).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The classifier for `intents`: loaded from `path` when its key matches, otherwise trained and,
/// where the file can be written, saved for next time. Says which it did.
pub fn load_or_train(
    intents: &[Intent],
    lexicon: &crate::understanding::classifier::Lexicon,
    data_dir: &Path,
    path: &Path,
) -> (Classifier, Source) {
    let key = key(intents, data_dir);
    if let Some(c) = load(path, key).and_then(|w| Classifier::with_weights(intents, lexicon, &w)) {
        return (c, Source::Loaded);
    }
    let c = Classifier::train(intents, lexicon);
    match save(path, key, &c.weights_bytes()) {
        Ok(()) => (c, Source::TrainedAndSaved),
        Err(e) => {
            tracing::info!(path = %path.display(), error = %e, "the trained model could not be saved: run `esrbot train` where it can");
            (c, Source::Trained)
        }
    }
}

/// Where a classifier came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Loaded,
    TrainedAndSaved,
    Trained,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::service::{load_content, load_intents};

    #[test]
    fn a_saved_model_classifies_exactly_as_the_trained_one_and_a_stale_one_is_ignored() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = Config::load(
            &root.join("config.toml"),
            true,
            Vec::<(String, String)>::new(),
        )
        .expect("config");
        let intents = load_intents(&config).expect("intents");
        let lexicon = load_content(&config, &intents).expect("content").lexicon;
        let trained = Classifier::train(&intents, &lexicon);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("esrbot.model");
        let k = key(&intents, &config.data_dir());
        save(&path, k, &trained.weights_bytes()).unwrap();

        let weights = load(&path, k).expect("the key matches");
        let loaded = Classifier::with_weights(&intents, &lexicon, &weights).expect("it fits");
        let texts = intents
            .iter()
            .flat_map(|i| i.examples.iter().map(String::as_str))
            .chain(["esr wont let me in", "what's the canteen menu", ""]);
        for t in texts {
            assert_eq!(
                trained.classify(t).ranked,
                loaded.classify(t).ranked,
                "{t:?}"
            );
        }

        assert!(load(&path, k ^ 1).is_none(), "another key is stale");
        let cut = &weights[..weights.len() - 3];
        assert!(
            Classifier::with_weights(&intents, &lexicon, cut).is_none(),
            "a cut file"
        );
        // Fewer intents than the file was trained for: it does not fit.
        assert!(Classifier::with_weights(&intents[1..], &lexicon, &weights).is_none());
        // A stale file is retrained over and replaced.
        save(&path, k ^ 1, &weights).unwrap();
        let (_, source) = load_or_train(&intents, &lexicon, &config.data_dir(), &path);
        assert_eq!(source, Source::TrainedAndSaved);
        let (_, source) = load_or_train(&intents, &lexicon, &config.data_dir(), &path);
        assert_eq!(source, Source::Loaded);
    }
}
