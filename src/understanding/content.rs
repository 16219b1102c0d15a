//! The guide's content and the bot's wording, loaded from `data/replies.toml` (with what the bot
//! covers, `data/scope.toml`, and staff's variant words, `data/synonyms.toml`) once at start-up.
//! Replies are templates with `{placeholders}`; the set of placeholder names is fixed here so that
//! `esrbot check` can reject a typo in a data file before it reaches a member of staff.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::understanding::classifier::{Lexicon, MAX_PHRASE_WORDS};
use crate::understanding::intents::{FileProblem, line_at, line_of, line_of_value, parse_toml};
use crate::understanding::text::normalize;

/// Placeholders a reply may use. Anything else in braces is a mistake in the data.
pub const PLACEHOLDERS: &[&str] = &[
    "login_url",
    "reset_url",
    "portal_url",
    "mailbox",
    "link_hours",
    "max_attempts",
    "lock_hours",
    "warn_minutes",
    "expires_at",
    "locked_until",
    "attempts_used",
    "attempts_left",
    "attempts_word",
    "requested_at",
    "reference",
    "options",
    "address",
    "time_left",
    "note",
    "error",
    "attempts",
    "who",
    "kind",
    "name",
    "asked",
    "message_id",
    "mention",
    "count",
    "status",
    "action",
    "created",
    "by",
    "at",
    "label",
    "support_hours",
    "reply_by",
    "reply_within",
    "problem",
    "contact",
    "ran_out",
    "details",
    "value",
    "route",
    "number",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepliesFile {
    // Spanned: a problem in a value is reported at the line where that value was written.
    links: BTreeMap<String, Spanned<String>>,
    intent: BTreeMap<String, BTreeMap<String, Spanned<String>>>,
    message: BTreeMap<String, Spanned<String>>,
    /// Lists of choices offered with a message: `[label, what choosing it says]` pairs.
    #[serde(default)]
    choices: BTreeMap<String, Vec<[String; 2]>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeFile {
    esr_words: Vec<String>,
    other_systems: Vec<String>,
    mail_services: Vec<String>,
    esr_mail_context: Vec<String>,
}

/// Which systems a message names: ESR itself, or another one the bot does not cover.
#[derive(Debug, Clone)]
pub struct Scope {
    esr: Regex,
    other: Regex,
    /// Personal mail services: another system, unless named as where an ESR e-mail was sent.
    mail: Regex,
    mail_context: Regex,
}

impl Scope {
    /// True when the (normalised) message names another system and not ESR. A personal mail
    /// service named as where the reset went ("i put my hotmail in the box") is ESR's business.
    pub fn names_other_system(&self, norm: &str) -> bool {
        let other = self.other.is_match(norm)
            || (self.mail.is_match(norm) && !self.mail_context.is_match(norm));
        other && !self.esr.is_match(norm)
    }

    fn load(data_dir: &Path) -> Result<Scope, Vec<FileProblem>> {
        let file = data_dir.join("scope.toml");
        let text = std::fs::read_to_string(&file)
            .map_err(|e| vec![FileProblem::new(&file, 0, format!("cannot read: {e}"))])?;
        let raw: ScopeFile = parse_toml(&file, &text).map_err(|p| vec![p])?;
        let words = |list: &[String], key: &str| {
            if list.is_empty() || list.iter().any(|w| normalize(w).is_empty()) {
                return Err(vec![FileProblem::new(
                    &file,
                    line_of(&text, key),
                    format!("{key} must list non-empty words"),
                )]);
            }
            let alts: Vec<String> = list.iter().map(|w| regex::escape(&normalize(w))).collect();
            Regex::new(&format!(r"\b(?:{})\b", alts.join("|")))
                .map_err(|e| vec![FileProblem::new(&file, line_of(&text, key), e.to_string())])
        };
        Ok(Scope {
            esr: words(&raw.esr_words, "esr_words")?,
            other: words(&raw.other_systems, "other_systems")?,
            mail: words(&raw.mail_services, "mail_services")?,
            mail_context: words(&raw.esr_mail_context, "esr_mail_context")?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SynonymsFile {
    words: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    phrases: BTreeMap<String, Vec<String>>,
    /// Words a phone's dictation types for punctuation ("full stop"): left out.
    #[serde(default)]
    dictated: Vec<String>,
}

/// Loads `data/synonyms.toml` into the classifier's lexicon, checking that each variant is one
/// word (or two to four, for phrases; one to four, for dictated punctuation) and appears once.
fn load_lexicon(data_dir: &Path) -> Result<Lexicon, Vec<FileProblem>> {
    let file = data_dir.join("synonyms.toml");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| vec![FileProblem::new(&file, 0, format!("cannot read: {e}"))])?;
    let raw: SynonymsFile = parse_toml(&file, &text).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    let mut words = Vec::new();
    let mut phrases = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let dictated = BTreeMap::from([(String::new(), raw.dictated)]);
    // Each table with how many words its variants have, and whether it maps them to a word:
    // dictated punctuation maps to nothing.
    let tables = [
        (&raw.words, 1..=1, true),
        (&raw.phrases, 2..=MAX_PHRASE_WORDS, true),
        (&dictated, 1..=MAX_PHRASE_WORDS, false),
    ];
    for (table, size, to_a_word) in tables {
        for (canonical, variants) in table {
            let c = normalize(canonical);
            if (to_a_word && c.is_empty()) || c.contains(' ') {
                problems.push(FileProblem::new(
                    &file,
                    line_of_value(&text, canonical),
                    format!("{canonical:?} must be one word"),
                ));
            }
            for v in variants {
                let norm = normalize(v);
                let parts: Vec<&str> = norm.split(' ').collect();
                if norm.is_empty() || !size.contains(&parts.len()) {
                    let want = if size.start() == size.end() {
                        "one word".to_string()
                    } else {
                        format!("{} to {} words", size.start(), size.end())
                    };
                    problems.push(FileProblem::new(
                        &file,
                        line_of_value(&text, v),
                        format!("{v:?} must be {want}"),
                    ));
                    continue;
                }
                if !seen.insert(norm.clone()) {
                    problems.push(FileProblem::new(
                        &file,
                        line_of_value(&text, v),
                        format!("{v:?} is listed twice"),
                    ));
                }
                if parts.len() == 1 {
                    words.push((norm, c.clone()));
                } else {
                    phrases.push((parts.iter().map(|p| p.to_string()).collect(), c.clone()));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(Lexicon::new(words, phrases))
    } else {
        Err(problems)
    }
}

#[derive(Debug, Clone)]
pub struct Content {
    pub scope: Scope,
    pub lexicon: Lexicon,
    links: BTreeMap<String, String>,
    intent: BTreeMap<String, BTreeMap<String, String>>,
    message: BTreeMap<String, String>,
    choices: BTreeMap<String, Vec<[String; 2]>>,
}

impl Content {
    /// Loads `data/replies.toml` and checks it against the intent ids the bot knows, the reply
    /// variants registered behaviours use (`text` for every other intent) and the messages the
    /// code uses.
    pub fn load(
        data_dir: &Path,
        intent_ids: &[&str],
        variants: &[(&str, &[&str])],
        messages: &[&str],
        choices: &[&str],
    ) -> Result<Content, Vec<FileProblem>> {
        let file = data_dir.join("replies.toml");
        let text = std::fs::read_to_string(&file)
            .map_err(|e| vec![FileProblem::new(&file, 0, format!("cannot read: {e}"))])?;
        let raw: RepliesFile = parse_toml(&file, &text).map_err(|p| vec![p])?;
        let mut problems = Vec::new();
        for key in ["login_url", "reset_url", "portal_url"] {
            match raw.links.get(key) {
                Some(url) if url.get_ref().starts_with("https://") => {}
                Some(url) => problems.push(FileProblem::new(
                    &file,
                    line_at(&text, url.span().start),
                    format!("links.{key} must be an https:// address"),
                )),
                None => problems.push(FileProblem::new(
                    &file,
                    line_of(&text, "[links]"),
                    format!("links.{key} is missing"),
                )),
            }
        }
        for id in intent_ids {
            let needed: &[&str] = variants
                .iter()
                .find(|(i, _)| i == id)
                .map_or(&["text"], |(_, v)| v);
            let section = raw.intent.get(*id);
            for v in needed {
                if section.and_then(|s| s.get(*v)).is_none() {
                    problems.push(FileProblem::new(
                        &file,
                        section.map_or(1, |_| line_of(&text, &format!("[intent.{id}]"))),
                        format!("intent.{id}.{v} is missing"),
                    ));
                }
            }
        }
        for id in raw.intent.keys() {
            if !intent_ids.contains(&id.as_str()) {
                problems.push(FileProblem::new(
                    &file,
                    line_of(&text, &format!("[intent.{id}]")),
                    format!(
                        "required intent `{id}` has no file: [intent.{id}] answers it, but there \
                         is no intents/{id}.toml"
                    ),
                ));
            }
        }
        for m in messages {
            if !raw.message.contains_key(*m) {
                problems.push(FileProblem::new(
                    &file,
                    line_of(&text, "[message]"),
                    format!("message.{m} is missing"),
                ));
            }
        }
        for c in choices {
            match raw.choices.get(*c) {
                Some(list)
                    if !list.is_empty()
                        && list
                            .iter()
                            .all(|[l, m]| !l.trim().is_empty() && !m.trim().is_empty()) => {}
                Some(_) => problems.push(FileProblem::new(
                    &file,
                    line_of(&text, &format!("{c} =")),
                    format!("choices.{c} must list [label, message] pairs, none empty"),
                )),
                None => problems.push(FileProblem::new(
                    &file,
                    line_of(&text, "[choices]"),
                    format!("choices.{c} is missing"),
                )),
            }
        }
        let templates = raw
            .intent
            .values()
            .flat_map(|s| s.values())
            .chain(raw.message.values());
        for t in templates {
            let mut unknown: Vec<&str> = placeholders(t.get_ref())
                .filter(|name| !PLACEHOLDERS.contains(name))
                .collect();
            unknown.sort_unstable();
            unknown.dedup();
            // Each time it was written, at its own line: found in the value's own span of the
            // file (a placeholder is plain ASCII, so it is written as it reads).
            let span = t.span();
            let written = text.get(span.clone()).unwrap_or_default();
            for name in unknown {
                let typo = format!("{{{name}}}");
                let mut at: Vec<usize> = written
                    .match_indices(&typo)
                    .map(|(i, _)| line_at(&text, span.start + i))
                    .collect();
                if at.is_empty() {
                    at.push(line_at(&text, span.start));
                }
                at.dedup();
                for line in at {
                    problems.push(FileProblem::new(
                        &file,
                        line,
                        format!("unknown placeholder {typo}"),
                    ));
                }
            }
        }
        let lexicon = load_lexicon(data_dir);
        if let Err(p) = &lexicon {
            problems.extend(p.iter().cloned());
        }
        let scope = Scope::load(data_dir);
        if let Err(p) = &scope {
            problems.extend(p.iter().cloned());
        }
        let (Ok(scope), Ok(lexicon)) = (scope, lexicon) else {
            return Err(problems);
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Content {
            scope,
            lexicon,
            links: plain(raw.links),
            intent: raw
                .intent
                .into_iter()
                .map(|(id, variants)| (id, plain(variants)))
                .collect(),
            message: plain(raw.message),
            choices: raw.choices,
        })
    }

    pub fn link(&self, key: &str) -> &str {
        self.links.get(key).map_or("", String::as_str)
    }

    /// The template for an intent's variant (validated at load, so present for known variants).
    pub fn answer(&self, intent: &str, variant: &str) -> &str {
        self.intent
            .get(intent)
            .and_then(|s| s.get(variant).or_else(|| s.get("text")))
            .map_or("", String::as_str)
    }

    pub fn message(&self, key: &str) -> &str {
        self.message.get(key).map_or("", String::as_str)
    }

    /// A list of choices from `[choices]`, each saying its message when chosen.
    pub fn choices(&self, key: &str) -> Vec<crate::core::records::Choice> {
        self.choices.get(key).map_or_else(Vec::new, |list| {
            list.iter()
                .map(|[label, message]| {
                    crate::core::records::Choice::say(
                        label,
                        message,
                        crate::core::records::ChoiceStyle::Secondary,
                    )
                })
                .collect()
        })
    }
}

/// Names inside `{…}` in a template.
/// A table of values without their places in the file.
fn plain(table: BTreeMap<String, Spanned<String>>) -> BTreeMap<String, String> {
    table
        .into_iter()
        .map(|(k, v)| (k, v.into_inner()))
        .collect()
}

fn placeholders(t: &str) -> impl Iterator<Item = &str> {
    t.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
}

/// Fills `{name}` from `vars`; unknown names are left as they are (check rejects them earlier).
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_known_names() {
        assert_eq!(
            render("until {t}, {x} {", &[("t", "21:00")]),
            "until 21:00, {x} {"
        );
        assert_eq!(
            placeholders("a {b} c {d}").collect::<Vec<_>>(),
            vec!["b", "d"]
        );
    }

    #[test]
    fn a_mail_service_is_another_system_unless_an_esr_email_went_there() {
        let scope = Scope::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap();
        let n = |t: &str| crate::understanding::text::normalize(t);
        for declined in [
            "forgot my hotmail password",
            "my gmail is locked",
            "cant get into my outlook.com account",
        ] {
            assert!(scope.names_other_system(&n(declined)), "{declined}");
        }
        for esr in [
            "reset email never came. i put my hotmail in the box",
            "i think it went to my gmail instead",
            "my hotmail is locked and so is esr",
        ] {
            assert!(!scope.names_other_system(&n(esr)), "{esr}");
        }
    }
}
