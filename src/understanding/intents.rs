//! The intent registry: every file under `intents/` (id, patterns, examples) loaded and validated
//! once at start-up. Adding an intent means adding one file here and its answer under `data/`; a
//! typo in a file is an error with the file and line, never a silent default.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

/// The id of the catch-all intent for everything the bot does not cover.
pub const OUT_OF_SCOPE: &str = "out_of_scope";

/// Fewest examples an intent file may carry: fewer cannot train the classifier.
pub const MIN_EXAMPLES: usize = 30;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentFile {
    id: String,
    description: String,
    /// How the option reads when the bot asks "did you mean…"; defaults to the description.
    label: Option<String>,
    #[serde(default)]
    patterns: Vec<String>,
    /// Patterns that stop this intent's patterns: "how many attempts before im locked out" is
    /// not a lock.
    #[serde(default)]
    unless: Vec<String>,
    examples: Vec<String>,
    #[serde(default)]
    follow_up: Vec<FollowUpFile>,
    /// Intents whose patterns this one's beat when both match the same message.
    #[serde(default)]
    outranks: Vec<String>,
    /// What the intent is to the conversation; a problem unless it says otherwise.
    #[serde(default)]
    role: Role,
    /// Answered as well when another `alongside` intent's pattern matches the same message
    /// ("locked out AND my nhs.net has changed").
    #[serde(default)]
    alongside: bool,
}

/// What an intent is to the conversation (`role` in its file): how the dialogue treats a message
/// read as it, beyond its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A problem with getting in, with its cause (the default): it becomes the conversation's
    /// topic, answers "what is it about?", and its pattern wins over a follow-up reading.
    #[default]
    Problem,
    /// A problem that names no cause ("I can't get in"): a topic and an answer, but its pattern
    /// never wins over a follow-up ("it still doesnt work" after a lock is about the lock).
    Vague,
    /// A question about the person's own timers ("how long left?"): a topic, not a problem.
    Question,
    /// Asks for a person: a topic, not a problem, and not a question of its own after "no" to
    /// the offer of a person.
    Handover,
    /// Small talk (hello, thanks): never a topic, a problem or a question.
    Social,
    /// Everything the bot does not cover: `out_of_scope`, and only it.
    Outside,
}

impl Role {
    /// The conversation's topic becomes this intent.
    pub fn is_topic(self) -> bool {
        !matches!(self, Role::Social | Role::Outside)
    }

    /// An answer to "what is it about?" when a person is asked for.
    pub fn is_problem(self) -> bool {
        matches!(self, Role::Problem | Role::Vague)
    }

    /// Its pattern names a problem outright, over whatever the topic makes of the message.
    pub fn names_cause(self) -> bool {
        matches!(self, Role::Problem | Role::Question | Role::Handover)
    }

    /// A question of its own after "no" to the offer of a person ("no, what time was it again").
    pub fn is_question(self) -> bool {
        matches!(self, Role::Problem | Role::Vague | Role::Question)
    }
}

/// `[[follow_up]]`: a short message that means this intent when it follows one of `after`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowUpFile {
    /// The topics (intent ids) it may follow; `"*"` for any.
    after: Vec<String>,
    /// Patterns over the normal form.
    when: Vec<String>,
    /// Patterns that stop it even when one of `when` matches ("sorry i meant 2 attempts" is a
    /// count, not a time).
    #[serde(default)]
    unless: Vec<String>,
}

/// A follow-up: read as the intent declaring it when the conversation's topic is in `after`.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub after: Vec<String>,
    pub when: Vec<Regex>,
    pub unless: Vec<Regex>,
}

impl FollowUp {
    /// True when `norm` follows `topic` this way.
    pub fn matches(&self, topic: &str, norm: &str) -> bool {
        self.after.iter().any(|a| a == "*" || a == topic)
            && self.when.iter().any(|r| r.is_match(norm))
            && !self.unless.iter().any(|r| r.is_match(norm))
    }
}

/// One intent, ready to use.
#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    pub description: String,
    pub label: String,
    pub patterns: Vec<Regex>,
    /// When one of these matches, none of `patterns` counts (`unless` in the file).
    pub unless: Vec<Regex>,
    pub examples: Vec<String>,
    /// Short messages that mean this intent after another (`[[follow_up]]`).
    pub follow_ups: Vec<FollowUp>,
    /// When this intent's pattern and one of these intents' patterns both match, this one wins:
    /// the cause over its symptom ("my nhs.net address changed and now the reset e-mail never
    /// comes" is an e-mail change).
    pub outranks: Vec<String>,
    pub role: Role,
    /// Answered together with another `alongside` intent named by pattern in one message.
    pub alongside: bool,
    pub file: PathBuf,
}

/// A problem in a declaration file, located for the person fixing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct FileProblem {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl FileProblem {
    pub fn new(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// The 1-based line of `needle` in `text`, or of the byte offset `at`.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle).map_or(1, |at| line_at(text, at))
}

/// The 1-based line of the last non-comment line where `"value"` appears quoted (the place a
/// repeated entry was written again), or 1.
pub fn line_of_value(text: &str, value: &str) -> usize {
    let quoted = format!("\"{value}\"");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && l.contains(&quoted))
        .map(|(i, _)| i + 1)
        .last()
        .unwrap_or(1)
}

pub fn line_at(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses a TOML declaration, turning a syntax error into a located problem.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, FileProblem> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_at(text, s.start));
        FileProblem::new(file, line, e.message().to_string())
    })
}

/// Loads every `*.toml` under `dir`, sorted by file name so that training is reproducible, and
/// insists that each of `required` (the intents the code relies on) is there.
/// Returns all problems found, not just the first.
pub fn load_dir(dir: &Path, required: &[&str]) -> Result<Vec<Intent>, Vec<FileProblem>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => return Err(vec![FileProblem::new(dir, 0, format!("cannot read: {e}"))]),
    };
    files.sort();
    let mut intents = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        match load_file(&file) {
            Ok(intent) => intents.push(intent),
            Err(mut p) => problems.append(&mut p),
        }
    }
    for (i, a) in intents.iter().enumerate() {
        if let Some(b) = intents[..i].iter().find(|b| b.id == a.id) {
            problems.push(FileProblem::new(
                &a.file,
                1,
                format!(
                    "intent id `{}` is also declared in {}",
                    a.id,
                    b.file.display()
                ),
            ));
        }
    }
    for i in &intents {
        for f in &i.follow_ups {
            for a in f.after.iter().filter(|a| *a != "*") {
                if !intents.iter().any(|j| j.id == *a) {
                    problems.push(FileProblem::new(
                        &i.file,
                        1,
                        format!("follow_up after `{a}`: there is no such intent"),
                    ));
                }
            }
        }
    }
    for i in &intents {
        for o in &i.outranks {
            if o == &i.id || !intents.iter().any(|j| j.id == *o) {
                problems.push(FileProblem::new(
                    &i.file,
                    1,
                    format!("outranks `{o}`: there is no such other intent"),
                ));
            }
        }
    }
    for i in &intents {
        if (i.id == OUT_OF_SCOPE) != (i.role == Role::Outside) {
            problems.push(FileProblem::new(
                &i.file,
                1,
                format!(
                    "role \"outside\" is for `{OUT_OF_SCOPE}`, and `{OUT_OF_SCOPE}` must have it"
                ),
            ));
        }
    }
    for id in required {
        let has_file = dir.join(format!("{id}.toml")).exists();
        if !has_file && !intents.iter().any(|i| i.id == *id) {
            problems.push(FileProblem::new(
                dir,
                0,
                format!("required intent `{id}` has no file"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(intents)
    } else {
        Err(problems)
    }
}

fn load_file(file: &Path) -> Result<Intent, Vec<FileProblem>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![FileProblem::new(file, 0, format!("cannot read: {e}"))])?;
    let raw: IntentFile = parse_toml(file, &text).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if raw.id != stem {
        problems.push(FileProblem::new(
            file,
            line_of(&text, "id"),
            format!("id `{}` must match the file name `{stem}`", raw.id),
        ));
    }
    if !raw.id.chars().all(|c| c.is_ascii_lowercase() || c == '_') || raw.id.is_empty() {
        problems.push(FileProblem::new(
            file,
            line_of(&text, "id"),
            "id must be lower_snake_case",
        ));
    }
    let mut patterns = Vec::new();
    let mut unless = Vec::new();
    for (list, out, what) in [
        (&raw.patterns, &mut patterns, "pattern"),
        (&raw.unless, &mut unless, "unless pattern"),
    ] {
        for p in list {
            // Patterns see the normalised (lower-case) message, so they are compiled
            // case-insensitive only as a safety net for capitals written in the file.
            match regex::RegexBuilder::new(p)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
            {
                Ok(re) => out.push(re),
                Err(e) => problems.push(FileProblem::new(
                    file,
                    line_of(&text, p),
                    format!("{what} does not compile: {e}"),
                )),
            }
        }
    }
    if !raw.unless.is_empty() && raw.patterns.is_empty() {
        problems.push(FileProblem::new(
            file,
            line_of(&text, "unless"),
            "`unless` stops patterns, and this intent has none",
        ));
    }
    let mut follow_ups = Vec::new();
    for f in &raw.follow_up {
        let mut compile = |patterns: &[String]| {
            let mut out = Vec::new();
            for p in patterns {
                match regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
                    Ok(re) => out.push(re),
                    Err(e) => problems.push(FileProblem::new(
                        file,
                        line_of(&text, p),
                        format!("follow_up pattern does not compile: {e}"),
                    )),
                }
            }
            out
        };
        let when = compile(&f.when);
        let unless = compile(&f.unless);
        if f.after.is_empty() || f.when.is_empty() {
            problems.push(FileProblem::new(
                file,
                line_of(&text, "[[follow_up]]"),
                "a follow_up needs `after` (intent ids or \"*\") and `when` (patterns)",
            ));
        }
        follow_ups.push(FollowUp {
            after: f.after.clone(),
            when,
            unless,
        });
    }
    if raw.examples.len() < MIN_EXAMPLES {
        problems.push(FileProblem::new(
            file,
            line_of(&text, "examples"),
            format!(
                "{} examples; at least {MIN_EXAMPLES} are needed",
                raw.examples.len()
            ),
        ));
    }
    for (i, ex) in raw.examples.iter().enumerate() {
        if ex.trim().is_empty() {
            problems.push(FileProblem::new(
                file,
                line_of(&text, "examples"),
                format!("example {} is empty", i + 1),
            ));
        }
        if raw.examples[..i].contains(ex) {
            problems.push(FileProblem::new(
                file,
                line_of(&text, ex),
                format!("duplicate example {ex:?}"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Intent {
        label: raw.label.unwrap_or_else(|| raw.description.clone()),
        id: raw.id,
        description: raw.description,
        patterns,
        unless,
        examples: raw.examples,
        follow_ups,
        outranks: raw.outranks,
        alongside: raw.alongside,
        role: raw.role,
        file: file.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, id: &str, extra: &str) {
        let examples: Vec<String> = (0..MIN_EXAMPLES)
            .map(|n| format!("\"{id} example {n}\""))
            .collect();
        let text = format!(
            "id = \"{id}\"\ndescription = \"{id}\"\n{extra}\nexamples = [{}]\n",
            examples.join(", ")
        );
        std::fs::write(dir.join(format!("{id}.toml")), text).unwrap();
    }

    #[test]
    fn a_role_is_read_and_outside_belongs_to_out_of_scope_alone() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "hello", "role = \"social\"");
        write(dir.path(), "locked", "");
        write(dir.path(), OUT_OF_SCOPE, "role = \"outside\"");
        let intents = load_dir(dir.path(), &[]).expect("valid");
        let roles: Vec<Role> = intents.iter().map(|i| i.role).collect();
        assert_eq!(roles, vec![Role::Social, Role::Problem, Role::Outside]);
        assert!(!Role::Social.is_topic() && Role::Vague.is_problem() && !Role::Vague.names_cause());

        write(dir.path(), "locked", "role = \"outside\"");
        write(dir.path(), OUT_OF_SCOPE, "");
        let problems = load_dir(dir.path(), &[]).expect_err("outside on the wrong intent");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|p| p.message.contains("role \"outside\""))
        );

        write(dir.path(), "locked", "role = \"smalltalk\"");
        let problems = load_dir(dir.path(), &[]).expect_err("no such role");
        assert!(
            problems[0].message.contains("unknown variant"),
            "{problems:?}"
        );
        assert_eq!(problems[0].line, 3, "located at the role's line");
    }

    #[test]
    fn unless_needs_patterns_to_stop_and_must_compile() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "lonely", "unless = ['\\bnot\\b']");
        let err = load_dir(dir.path(), &[]).unwrap_err();
        assert!(
            err.iter()
                .any(|p| p.message.contains("`unless` stops patterns")),
            "{err:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "broken",
            "patterns = ['\\bx\\b']\nunless = ['(unclosed']",
        );
        let err = load_dir(dir.path(), &[]).unwrap_err();
        assert!(
            err.iter()
                .any(|p| p.message.contains("unless pattern does not compile")),
            "{err:?}"
        );
    }

    #[test]
    fn outranks_must_name_another_intent() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "cause", "outranks = [\"symptom\"]");
        write(dir.path(), "symptom", "");
        let intents = load_dir(dir.path(), &[]).expect("valid");
        assert_eq!(intents[0].outranks, vec!["symptom".to_string()]);

        write(dir.path(), "cause", "outranks = [\"sympton\", \"cause\"]");
        let problems = load_dir(dir.path(), &[]).expect_err("a typo and itself");
        let said: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        assert_eq!(
            said,
            vec![
                "outranks `sympton`: there is no such other intent",
                "outranks `cause`: there is no such other intent",
            ],
            "{said:?}"
        );
    }
}
