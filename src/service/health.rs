//! What `/readyz` reports: each part of the process that must be up (the database, the content,
//! each enabled transport) says whether it is, and why not.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Health {
    /// part → None when ready, or what is wrong.
    parts: Mutex<BTreeMap<String, Option<String>>>,
    /// part → something an operator should see that does not stop the process serving (a
    /// content edit that failed to load while the old content stays in force).
    notes: Mutex<BTreeMap<String, String>>,
}

impl Health {
    /// Sets or clears (None) the note on `part`.
    pub fn note(&self, part: &str, note: Option<String>) {
        if let Ok(mut notes) = self.notes.lock() {
            match note {
                Some(n) => notes.insert(part.to_string(), n),
                None => notes.remove(part),
            };
        }
    }

    pub fn notes(&self) -> BTreeMap<String, String> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }

    pub fn ready(&self, part: &str) {
        self.set(part, None);
    }

    pub fn not_ready(&self, part: &str, why: impl Into<String>) {
        self.set(part, Some(why.into()));
    }

    fn set(&self, part: &str, state: Option<String>) {
        if let Ok(mut parts) = self.parts.lock() {
            parts.insert(part.to_string(), state);
        }
    }

    /// Whether every part is ready, and those that are not with their reasons.
    pub fn report(&self) -> (bool, BTreeMap<String, String>) {
        let waiting: BTreeMap<String, String> = self
            .parts
            .lock()
            .map(|p| {
                p.iter()
                    .filter_map(|(k, v)| v.as_ref().map(|why| (k.clone(), why.clone())))
                    .collect()
            })
            .unwrap_or_default();
        (waiting.is_empty(), waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_part_is() {
        let h = Health::default();
        assert!(h.report().0, "nothing registered is nothing waiting");
        h.not_ready("discord", "connecting");
        h.ready("content");
        let (ready, waiting) = h.report();
        assert!(!ready);
        assert_eq!(
            waiting.get("discord").map(String::as_str),
            Some("connecting")
        );
        h.ready("discord");
        assert!(h.report().0);
    }
}
