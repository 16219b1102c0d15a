//! Understanding: which intent a message means, and how sure the bot is. Precise regex patterns
//! from `intents/` decide when they match (unless the scope model is sure the message is not
//! about ESR); linear SVMs over IDF-weighted hashed word and character n-grams, trained on the
//! intents' examples (and saved, see `model`), carry unseen phrasings and typos; a lexicon
//! of staff's variant words (`data/synonyms.toml`) is applied first. Pure and allocation-light:
//! classifying one message is on the hot path (target < 10 µs).

use std::collections::HashMap;

use regex::RegexSet;

use crate::understanding::intents::{Intent, OUT_OF_SCOPE, Role};
use crate::understanding::spelling::Speller;
use crate::understanding::text::normalize;

/// Number of hash buckets (a power of two). The examples have about 40,000 distinct features;
/// with 2^16 buckets a quarter of them shared one, and 2^18 gained on cross-validation and on
/// both tuning sets. Only the rows with a weight are kept in the model file.
const BUCKETS: usize = 1 << 18;
/// The SVMs' cost of a margin violation (liblinear's C); 0.5 and 2 scored the same on the tuning
/// sets and within a point on cross-validation.
const COST: f32 = 1.0;
/// Dual coordinate descent stops when the projected gradients span less than `TOLERANCE`
/// (liblinear's default), or after `MAX_PASSES` passes.
const MAX_PASSES: usize = 200;
const TOLERANCE: f32 = 0.1;
/// SVM margins become probabilities: P(about ESR) = σ(SCOPE_SCALE · (margin − SCOPE_SHIFT)),
/// and P(intent | about ESR) = softmax(INTENT_SCALE · margins). The shift asks a little more than
/// the zero margin before a message counts as about ESR. With the eighth session's examples,
/// 0.15 answered two more rows of each tuning set than 0.25 and accepted no more out-of-scope
/// ones there; 0.1 accepted one more on dev2.
const SCOPE_SCALE: f32 = 4.0;
const SCOPE_SHIFT: f32 = 0.15;
const INTENT_SCALE: f32 = 4.0;
/// The scope model's share of the scope margin; the label model's margin over out_of_scope has
/// the rest (see `Classifier::probabilities`).
const SCOPE_BLEND: f32 = 0.5;
/// Lowest probability a pattern match is reported with: a pattern is a precise, hand-written signal.
const PATTERN_CONFIDENCE: f32 = 0.9;
/// A pattern is overruled only when the scope model is at least this sure the message is not
/// about ESR access ("the intranet link to the policy is broken" matches a link pattern).
const PATTERN_VETO: f32 = 0.8;
/// A pattern also yields to the classifier when it is at least this sure of an intent no
/// pattern matched: it has read the whole message, the pattern a phrase of it ("…have never
/// been issued an nhs.net account. How can I reset my ESR password without one?" matches a
/// reset pattern). Chosen on the tuning sets: 0.99 in the eleventh session (it gained six rows
/// and lost none; at 0.9 it broke conversations whose patterns were right against a classifier
/// 94–97% sure), 0.97 in the sixteenth (from 0.99 it gained eight rows over dev–dev7 and lost
/// none; at 0.95 a development conversation broke).
const CLASSIFIER_OVERRULES: f32 = 0.97;

/// What the classifier made of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Intents with their probabilities, best first (all of them).
    pub ranked: Vec<(usize, f32)>,
    /// Whether a pattern from `intents/` decided the top intent.
    pub by_pattern: bool,
    /// Another problem whose pattern matched too and is answered alongside the top one (both
    /// declare `alongside`, and neither outranks the other).
    pub also: Option<usize>,
}

impl Classification {
    pub fn top(&self) -> (usize, f32) {
        self.ranked[0]
    }
}

/// Longest phrase (in words) the lexicon maps: "electronic staff record" → esr.
pub const MAX_PHRASE_WORDS: usize = 4;

/// Variants of a word mapped to one canonical word (from `data/synonyms.toml`), applied before
/// features are taken so the examples of one spelling teach all of them.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    words: HashMap<String, String>,
    /// first word → (the words after it, canonical), longest first: looked up by `&str`, no
    /// allocation per word.
    phrases: HashMap<String, Vec<(Vec<String>, String)>>,
}

impl Lexicon {
    /// `words`: (variant, canonical) pairs of single words; `phrases`: variants of two to
    /// `MAX_PHRASE_WORDS` words. A variant whose canonical word is empty is dropped.
    pub fn new(words: Vec<(String, String)>, phrases: Vec<(Vec<String>, String)>) -> Lexicon {
        let mut by_first: HashMap<String, Vec<(Vec<String>, String)>> = HashMap::new();
        for (mut phrase, canonical) in phrases {
            if phrase.len() < 2 {
                continue;
            }
            let first = phrase.remove(0);
            by_first.entry(first).or_default().push((phrase, canonical));
        }
        for list in by_first.values_mut() {
            list.sort_by_key(|(rest, _)| std::cmp::Reverse(rest.len()));
        }
        Lexicon {
            words: words.into_iter().collect(),
            phrases: by_first,
        }
    }

    /// The normalised message with every variant replaced by its canonical word.
    pub fn canonical(&self, norm: &str) -> String {
        if self.words.is_empty() && self.phrases.is_empty() {
            return norm.to_string();
        }
        let words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
        let mut out = String::with_capacity(norm.len() + 8);
        // A variant mapped to nothing (dictated punctuation) is left out.
        let mut push = |w: &str| {
            if !w.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(w);
            }
        };
        let mut i = 0;
        while i < words.len() {
            let phrase = self.phrases.get(words[i]).and_then(|rests| {
                rests.iter().find(|(rest, _)| {
                    words.len() > i + rest.len()
                        && rest.iter().zip(&words[i + 1..]).all(|(a, b)| a == b)
                })
            });
            if let Some((rest, c)) = phrase {
                push(c);
                i += 1 + rest.len();
                continue;
            }
            push(self.words.get(words[i]).map_or(words[i], String::as_str));
            i += 1;
        }
        out
    }
}

pub struct Classifier {
    ids: Vec<String>,
    lexicon: Lexicon,
    /// Repairs a word no example has that is one typo from one that does ("passwrod").
    speller: Speller,
    oos: usize,
    /// Whether the intents include out_of_scope at all (`oos` is 0 when they do not).
    has_oos: bool,
    /// How much each feature bucket weighs: its inverse document frequency over the examples.
    idf: Idf,
    /// In scope or not: out_of_scope against every ESR intent together.
    scope: Linear,
    /// Which ESR intent, trained on the in-scope examples only (index = position in `in_scope`).
    intent: Linear,
    /// Label index of each class of `intent`.
    in_scope: Vec<usize>,
    /// Every label, out_of_scope included, over every example (column = label index): its
    /// margin of the best ESR intent over out_of_scope is half of the scope decision (see
    /// `probabilities`).
    labels: Linear,
    patterns: RegexSet,
    /// For each pattern in `patterns`, the intent it belongs to.
    pattern_intent: Vec<usize>,
    /// For each label, its `unless` patterns, which stop its patterns; tried only when one of
    /// them matched, so they cost nothing on most messages.
    unless: Vec<Vec<regex::Regex>>,
    /// For each label, the labels its patterns beat.
    outranks: Vec<Vec<usize>>,
    /// For each label, whether it is answered alongside another (`alongside`).
    alongside: Vec<bool>,
    /// For each label, whether its role is `Vague` (a problem without its cause).
    vague: Vec<bool>,
}

/// What a classifier is built of before training: labels, the catch-all's index (usize::MAX when
/// there is none) and the patterns with the intent each belongs to.
struct Parts {
    ids: Vec<String>,
    oos: usize,
    /// Label index of each class of the intent model: every label but the catch-all.
    in_scope: Vec<usize>,
    pattern_src: Vec<String>,
    pattern_intent: Vec<usize>,
    unless: Vec<Vec<regex::Regex>>,
    /// For each label, the labels whose patterns its patterns beat (`outranks`).
    outranks: Vec<Vec<usize>>,
    alongside: Vec<bool>,
    vague: Vec<bool>,
}

impl Parts {
    fn of(intents: &[Intent]) -> Parts {
        let ids: Vec<String> = intents.iter().map(|i| i.id.clone()).collect();
        let oos = ids
            .iter()
            .position(|l| l == OUT_OF_SCOPE)
            .unwrap_or(usize::MAX);
        let mut pattern_src = Vec::new();
        let mut pattern_intent = Vec::new();
        for (idx, intent) in intents.iter().enumerate() {
            for p in &intent.patterns {
                pattern_src.push(format!("(?i){}", p.as_str()));
                pattern_intent.push(idx);
            }
        }
        // Declared in the files, and one rule of roles: a problem with its cause outranks a
        // vague one ("esr wont let me in cause i forgot the password" is a forgotten password).
        let outranks = intents
            .iter()
            .map(|i| {
                let declared = i
                    .outranks
                    .iter()
                    .filter_map(|o| ids.iter().position(|id| id == o));
                let vague = intents
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| i.role.names_cause() && v.role == Role::Vague)
                    .map(|(v, _)| v);
                let mut all: Vec<usize> = declared.chain(vague).collect();
                all.sort_unstable();
                all.dedup();
                all
            })
            .collect();
        Parts {
            outranks,
            alongside: intents.iter().map(|i| i.alongside).collect(),
            vague: intents.iter().map(|i| i.role == Role::Vague).collect(),
            in_scope: (0..ids.len()).filter(|&i| i != oos).collect(),
            ids,
            oos,
            pattern_src,
            pattern_intent,
            unless: intents.iter().map(|i| i.unless.clone()).collect(),
        }
    }

    /// The classifier of these parts with its models, trained or loaded.
    #[allow(clippy::too_many_arguments)]
    fn build(
        self,
        lexicon: &Lexicon,
        speller: Speller,
        idf: Idf,
        scope: Linear,
        intent: Linear,
        labels: Linear,
        patterns: RegexSet,
    ) -> Classifier {
        Classifier {
            lexicon: lexicon.clone(),
            speller,
            idf,
            oos: if self.oos == usize::MAX { 0 } else { self.oos },
            has_oos: self.oos != usize::MAX,
            ids: self.ids,
            scope,
            intent,
            in_scope: self.in_scope,
            labels,
            patterns,
            pattern_intent: self.pattern_intent,
            unless: self.unless,
            outranks: self.outranks,
            alongside: self.alongside,
            vague: self.vague,
        }
    }
}

/// Linear scores over hashed features: one column per class (one-vs-rest SVMs, see `fit`).
struct Linear {
    k: usize,
    /// For each of the BUCKETS feature buckets, which row of `rows` holds its weights, or
    /// `NO_ROW` when they are all zero. Only about one bucket in seven has weights: a dense table
    /// cost start-up more than anything else (every page of it written at load) and spread the
    /// weights a message reads over 20 MB.
    row_of: Vec<u32>,
    /// Row-major: `k` weights per bucket that has any, so one feature touches one cache line or two.
    rows: Vec<f32>,
    bias: Vec<f32>,
}

/// `Linear::row_of` for a bucket whose weights are all zero.
const NO_ROW: u32 = u32::MAX;

impl Classifier {
    /// Trains on every intent's examples. Deterministic: the same files give the same model.
    pub fn train(intents: &[Intent], lexicon: &Lexicon) -> Self {
        let parts = Parts::of(intents);
        let (oos, in_scope, pattern_src) = (parts.oos, &parts.in_scope, &parts.pattern_src);
        // Start-up time is a target: the examples' features are taken on two threads, the
        // second also compiling the patterns. The order of the examples is kept, so the model
        // is the same as a serial run.
        let examples: Vec<(usize, &str)> = intents
            .iter()
            .enumerate()
            .flat_map(|(idx, i)| i.examples.iter().map(move |e| (idx, e.as_str())))
            .collect();
        let featurize = |part: &[(usize, &str)]| -> Vec<(Hashed, usize)> {
            part.iter()
                .map(|&(idx, ex)| (Hashed::of(&lexicon.canonical(&normalize(ex))), idx))
                .collect()
        };
        let (first, second) = examples.split_at(examples.len() / 2);
        let (patterns, labelled) = std::thread::scope(|s| {
            let other = s.spawn(|| {
                let patterns =
                    RegexSet::new(pattern_src).expect("patterns were validated when loaded");
                (patterns, featurize(second))
            });
            let mut labelled = featurize(first);
            let (patterns, rest) = other
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            labelled.extend(rest);
            (patterns, labelled)
        });

        let idf = Idf::of(
            labelled.iter().map(|(f, _)| f.ids.as_slice()),
            labelled.len(),
        );
        // Each example weighed once; the three models see it under their own labels.
        let label_data: Vec<(Vec<(u32, f32)>, usize)> = labelled
            .iter()
            .map(|(f, idx)| (idf.weigh(f).collect(), *idx))
            .collect();
        let scope_data: Vec<(&[(u32, f32)], usize)> = label_data
            .iter()
            .map(|(x, idx)| (x.as_slice(), usize::from(*idx != oos)))
            .collect();
        let intent_data: Vec<(&[(u32, f32)], usize)> = label_data
            .iter()
            .filter_map(|(x, idx)| Some((x.as_slice(), in_scope.iter().position(|i| i == idx)?)))
            .collect();
        // The models are independent: train them side by side.
        let classes = parts.ids.len().max(2);
        let (scope, intent, labels) = std::thread::scope(|s| {
            let scope = s.spawn(|| Linear::fit(&scope_data, 1));
            let intent = Linear::fit(&intent_data, in_scope.len().max(1));
            let labels = Linear::fit(&label_data, classes);
            let scope = scope
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (scope, intent, labels)
        });
        let canonical: Vec<String> = examples
            .iter()
            .map(|&(_, ex)| lexicon.canonical(&normalize(ex)))
            .collect();
        let speller = Speller::of(canonical.iter().map(String::as_str));
        parts.build(lexicon, speller, idf, scope, intent, labels, patterns)
    }

    /// What the trained weights depend on besides the intents and the lexicon: a saved model made
    /// with other settings is stale (see `understanding::model`).
    pub fn training_signature() -> String {
        format!(
            "svm-v4 labels-in-scope idf speller buckets={BUCKETS} cost={COST} passes={MAX_PASSES} tolerance={TOLERANCE}"
        )
    }

    /// The trained weights, for a model file: the rows that are not all zero.
    pub fn weights_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.idf.encode(&mut out);
        self.scope.encode(&mut out);
        self.intent.encode(&mut out);
        self.labels.encode(&mut out);
        encode_words(self.speller.words(), &mut out);
        out
    }

    /// A classifier for `intents` with weights saved by `weights_bytes` from a classifier trained
    /// on the same intents and lexicon; None when they do not fit.
    pub fn with_weights(intents: &[Intent], lexicon: &Lexicon, bytes: &[u8]) -> Option<Self> {
        let parts = Parts::of(intents);
        let mut rest = bytes;
        let idf = Idf::decode(&mut rest)?;
        let scope = Linear::decode(&mut rest, 1)?;
        let intent = Linear::decode(&mut rest, parts.in_scope.len().max(1))?;
        let labels = Linear::decode(&mut rest, parts.ids.len().max(2))?;
        let speller = Speller::from_words(decode_words(&mut rest)?);
        if !rest.is_empty() {
            return None;
        }
        let patterns = RegexSet::new(&parts.pattern_src).ok()?;
        Some(parts.build(lexicon, speller, idf, scope, intent, labels, patterns))
    }

    /// Probability of each label: P(out of scope) from the scope margin, and
    /// P(in scope) × P(intent | in scope) for the others. The scope margin is the mean of two
    /// readings: the scope model's, and the label model's margin of its best ESR intent over
    /// out_of_scope (halved: it spans two one-vs-rest margins). The second has learnt which
    /// intent each example was, so it declines less of what is close to one ESR intent and more
    /// of what is near none.
    fn probabilities(&self, feats: &[(u32, f32)], probs: &mut [f32]) {
        let mut margin = [0.0f32; 1];
        self.scope.scores(feats.iter().copied(), &mut margin);
        // One buffer for both score vectors: the label model's, then the intent model's.
        let mut buffer = vec![0.0f32; self.labels.k + self.intent.k];
        let (all, inner) = buffer.split_at_mut(self.labels.k);
        let p_in = if self.has_oos {
            self.labels.scores(feats.iter().copied(), all);
            let best_in = all
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != self.oos)
                .map(|(_, m)| *m)
                .fold(f32::NEG_INFINITY, f32::max);
            let m = SCOPE_BLEND * margin[0] + (1.0 - SCOPE_BLEND) * (best_in - all[self.oos]) / 2.0;
            1.0 / (1.0 + (-SCOPE_SCALE * (m - SCOPE_SHIFT)).exp())
        } else {
            1.0
        };
        self.intent.scores(feats.iter().copied(), inner);
        let scale = INTENT_SCALE;
        inner.iter_mut().for_each(|s| *s *= scale);
        softmax(inner);
        probs.iter_mut().for_each(|p| *p = 0.0);
        if self.has_oos {
            probs[self.oos] = 1.0 - p_in;
        }
        for (pos, &label) in self.in_scope.iter().enumerate() {
            probs[label] = p_in * inner[pos];
        }
    }

    /// Classifies a cleaned message (see `text::clean_input`).
    pub fn classify(&self, text: &str) -> Classification {
        self.classify_normalized(&normalize(text))
    }

    /// Classifies a message already in normal form (`text::normalize`), as the engine has it.
    pub fn classify_normalized(&self, norm: &str) -> Classification {
        let canonical = self.lexicon.canonical(norm);
        let feats = Hashed::of(&self.speller.correct(&canonical));
        let k = self.ids.len();
        let mut probs = vec![0.0f32; k];
        if feats.ids.is_empty() {
            probs[self.oos] = 1.0;
        } else {
            let weighed: Vec<(u32, f32)> = self.idf.weigh(&feats).collect();
            self.probabilities(&weighed, &mut probs);
        }
        let mut ranked: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));

        let mut by_pattern = false;
        let mut also = None;
        let vetoed = self.has_oos && probs[self.oos] >= PATTERN_VETO;
        if !self.patterns.is_empty() && !vetoed {
            let hits = self.pattern_hits(norm);
            if !hits.is_empty() {
                // Among the intents whose patterns match, and that no other match outranks, the
                // classifier's favourite wins.
                let best = hits
                    .iter()
                    .copied()
                    .filter(|i| !hits.iter().any(|h| self.outranks[*h].contains(i)))
                    .max_by(|a, b| probs[*a].total_cmp(&probs[*b]))
                    .filter(|&b| !self.classifier_overrules(b, &hits, &ranked));
                if let Some(best) = best {
                    also = hits.iter().copied().find(|&i| {
                        i != best
                            && self.alongside[i]
                            && self.alongside[best]
                            && !hits.iter().any(|h| self.outranks[*h].contains(&i))
                    });
                    let pos = ranked.iter().position(|(c, _)| *c == best).unwrap_or(0);
                    let (c, p) = ranked.remove(pos);
                    ranked.insert(0, (c, p.max(PATTERN_CONFIDENCE)));
                    by_pattern = true;
                }
            }
        }
        Classification {
            ranked,
            by_pattern,
            also,
        }
    }

    /// Whether the classifier's favourite ESR intent, which no pattern matched, wins over the
    /// pattern's intent `matched`: when it is `CLASSIFIER_OVERRULES` sure, or when `matched` is
    /// vague and the classifier is `PATTERN_CONFIDENCE` sure of a cause, the rule of roles
    /// that cause-naming patterns follow ("i use my colleague login on computer, reset not
    /// work" is a shared login, not just a failed log-in).
    fn classifier_overrules(
        &self,
        matched: usize,
        hits: &[usize],
        ranked: &[(usize, f32)],
    ) -> bool {
        let Some(&(top, p)) = ranked.iter().find(|(c, _)| !self.has_oos || *c != self.oos) else {
            return false;
        };
        top != matched
            && !hits.contains(&top)
            && (p >= CLASSIFIER_OVERRULES
                || (p >= PATTERN_CONFIDENCE
                    && self.vague[matched]
                    && self.outranks[top].contains(&matched)))
    }

    /// The intents whose patterns match `norm` and are not stopped by one of their `unless`
    /// patterns, once per match.
    pub fn pattern_hits(&self, norm: &str) -> Vec<usize> {
        let matched = self.patterns.matches(norm);
        if !matched.matched_any() {
            return Vec::new();
        }
        let mut hits: Vec<usize> = matched.iter().map(|p| self.pattern_intent[p]).collect();
        hits.retain(|&i| !self.unless[i].iter().any(|r| r.is_match(norm)));
        hits
    }

    /// The id of the intent at index `idx`.
    pub fn intent_id(&self, idx: usize) -> &str {
        &self.ids[idx]
    }

    /// Intent ids by index.
    pub fn intent_ids(&self) -> &[String] {
        &self.ids
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|l| l == id)
    }

    pub fn out_of_scope(&self) -> usize {
        self.oos
    }
}

impl Linear {
    fn new(k: usize) -> Linear {
        Linear {
            k,
            row_of: vec![NO_ROW; BUCKETS],
            rows: Vec::new(),
            bias: vec![0.0; k],
        }
    }

    /// The weights of bucket `r`, if any is not zero.
    fn row(&self, r: usize) -> Option<&[f32]> {
        let i = *self.row_of.get(r)?;
        (i != NO_ROW).then(|| &self.rows[i as usize * self.k..(i as usize + 1) * self.k])
    }

    /// Gives bucket `r` a row of zeros and returns it; None if it has one already.
    fn add_row(&mut self, r: usize) -> Option<&mut [f32]> {
        let slot = self.row_of.get_mut(r).filter(|i| **i == NO_ROW)?;
        let i = self.rows.len() / self.k;
        *slot = u32::try_from(i).ok()?;
        self.rows.resize(self.rows.len() + self.k, 0.0);
        Some(&mut self.rows[i * self.k..])
    }

    /// `k`, the bias, then each row with a non-zero weight as (row, its k weights), little-endian.
    fn encode(&self, out: &mut Vec<u8>) {
        let k = self.k;
        out.extend_from_slice(&(k as u32).to_le_bytes());
        for b in &self.bias {
            out.extend_from_slice(&b.to_le_bytes());
        }
        let rows: Vec<(usize, &[f32])> = (0..BUCKETS)
            .filter_map(|r| Some((r, self.row(r)?)))
            .filter(|(_, w)| w.iter().any(|w| *w != 0.0))
            .collect();
        out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        for (r, weights) in rows {
            out.extend_from_slice(&(r as u32).to_le_bytes());
            for w in weights {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
    }

    /// Reads what `encode` wrote, expecting `k` classes; None for anything else.
    fn decode(bytes: &mut &[u8], k: usize) -> Option<Linear> {
        fn u32_of(bytes: &mut &[u8]) -> Option<usize> {
            Some(u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?) as usize)
        }
        fn f32s(bytes: &mut &[u8], into: &mut [f32]) -> Option<()> {
            let raw = take(bytes, into.len() * 4)?;
            for (w, b) in into.iter_mut().zip(raw.chunks_exact(4)) {
                *w = f32::from_le_bytes(b.try_into().ok()?);
            }
            Some(())
        }
        if u32_of(bytes)? != k {
            return None;
        }
        let mut linear = Linear::new(k);
        f32s(bytes, &mut linear.bias)?;
        let n = u32_of(bytes)?;
        // The count comes from the file: reserve no more than the bytes left could hold.
        linear.rows.reserve(n.min(bytes.len() / (4 * (k + 1))) * k);
        for _ in 0..n {
            let r = u32_of(bytes)?;
            // A bucket out of range, or given twice, is a damaged file.
            f32s(bytes, linear.add_row(r)?)?;
        }
        Some(linear)
    }

    /// One-vs-rest linear SVMs: `k` = 1 trains one (label 1 against label 0), otherwise one per
    /// class against the rest. Each example is weighted inversely to its class's size, so that
    /// the catch-all, with a quarter of the examples, does not swallow the others.
    fn fit<X: AsRef<[(u32, f32)]> + Sync>(data: &[(X, usize)], k: usize) -> Linear {
        let classes = if k == 1 { 2 } else { k };
        let mut counts = vec![0usize; classes];
        for (_, l) in data {
            counts[*l] += 1;
        }
        let c = COST;
        let cost: Vec<f32> = counts
            .iter()
            .map(|&n| c * data.len() as f32 / (classes * n.max(1)) as f32)
            .collect();
        let positive: Vec<usize> = if k == 1 { vec![1] } else { (0..k).collect() };
        // The one-vs-rest problems are independent: two threads share them.
        let solved: Vec<(Vec<f32>, f32)> = std::thread::scope(|s| {
            let half = positive.len().div_ceil(2);
            let (a, b) = positive.split_at(half);
            let other = s.spawn(|| b.iter().map(|&p| solve(data, p, &cost)).collect::<Vec<_>>());
            let mut out: Vec<_> = a.iter().map(|&p| solve(data, p, &cost)).collect();
            out.extend(
                other
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            );
            out
        });
        let mut linear = Linear::new(k);
        for (class, (_, b)) in solved.iter().enumerate() {
            linear.bias[class] = *b;
        }
        for r in 0..BUCKETS {
            if solved.iter().any(|(w, _)| w[r] != 0.0)
                && let Some(row) = linear.add_row(r)
            {
                for (x, (w, _)) in row.iter_mut().zip(&solved) {
                    *x = w[r];
                }
            }
        }
        linear
    }

    fn scores(&self, feats: impl IntoIterator<Item = (u32, f32)>, out: &mut [f32]) {
        out.copy_from_slice(&self.bias);
        for (f, x) in feats {
            let Some(row) = self.row(f as usize) else {
                continue;
            };
            for (o, w) in out.iter_mut().zip(row) {
                *o += w * x;
            }
        }
    }
}

/// A binary L2-regularised, squared-hinge linear SVM (`positive` against every other label),
/// solved in the dual by coordinate descent (Hsieh et al., 2008, as in liblinear): deterministic,
/// and converged in a few dozen passes. The bias is a constant feature of 1, as in liblinear.
fn solve<X: AsRef<[(u32, f32)]>>(
    data: &[(X, usize)],
    positive: usize,
    cost: &[f32],
) -> (Vec<f32>, f32) {
    let n = data.len();
    let mut w = vec![0.0f32; BUCKETS];
    let mut bias = 0.0f32;
    let mut alpha = vec![0.0f32; n];
    let diag: Vec<f32> = data.iter().map(|(_, l)| 0.5 / cost[*l]).collect();
    let q: Vec<f32> = data
        .iter()
        .zip(&diag)
        .map(|((x, _), d)| x.as_ref().iter().map(|(_, v)| v * v).sum::<f32>() + 1.0 + d)
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64 ^ positive as u64;
    for _ in 0..MAX_PASSES {
        // Fisher–Yates with a fixed xorshift seed: reproducible training.
        for i in (1..n).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let (mut most, mut least) = (f32::NEG_INFINITY, f32::INFINITY);
        for &i in &order {
            let (x, label) = &data[i];
            let x = x.as_ref();
            let y = if *label == positive { 1.0 } else { -1.0 };
            let score = bias + x.iter().map(|&(f, v)| w[f as usize] * v).sum::<f32>();
            let g = y * score - 1.0 + diag[i] * alpha[i];
            let pg = if alpha[i] == 0.0 { g.min(0.0) } else { g };
            most = most.max(pg);
            least = least.min(pg);
            if pg != 0.0 {
                let old = alpha[i];
                alpha[i] = (old - g / q[i]).max(0.0);
                let step = (alpha[i] - old) * y;
                for &(f, v) in x {
                    w[f as usize] += step * v;
                }
                bias += step;
            }
        }
        if most - least < TOLERANCE {
            break;
        }
    }
    (w, bias)
}

/// A message's hashed features: its word n-grams, then its character n-grams, each part sorted
/// and without repeats.
struct Hashed {
    ids: Vec<u32>,
    /// How many of `ids` are word n-grams.
    words: usize,
}

impl Hashed {
    fn of(canonical: &str) -> Hashed {
        let mut words = Vec::with_capacity(16);
        let mut chars = Vec::with_capacity(canonical.len() * 3);
        features(canonical, &mut words, &mut chars);
        words.sort_unstable();
        words.dedup();
        chars.sort_unstable();
        chars.dedup();
        let n = words.len();
        words.extend(chars);
        Hashed {
            ids: words,
            words: n,
        }
    }
}

/// Inverse document frequency of each bucket over the training examples, smoothed as
/// `ln((1 + n) / (1 + df)) + 1`: a feature most examples share ("esr", " es") weighs less than
/// one that names the problem ("locked"). A bucket no example has gets the highest weight, so a
/// message of unknown words stays unsure instead of resting on its one familiar word.
struct Idf(Vec<f32>);

impl Idf {
    fn of<'a>(examples: impl Iterator<Item = &'a [u32]>, n: usize) -> Idf {
        let mut df = vec![0u32; BUCKETS];
        for feats in examples {
            for &f in feats {
                df[f as usize] += 1;
            }
        }
        let n = n as f32;
        Idf(df
            .into_iter()
            .map(|d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
            .collect())
    }

    /// Each feature with its weight, the word part and the character part each scaled to unit
    /// length: otherwise the many character n-grams would drown the few words. Weighed as it is
    /// read, so classifying a message allocates nothing here.
    fn weigh<'a>(&'a self, feats: &'a Hashed) -> impl Iterator<Item = (u32, f32)> + Clone + 'a {
        let (words, chars) = feats.ids.split_at(feats.words);
        let length = |part: &[u32]| {
            part.iter()
                .map(|&f| self.0[f as usize].powi(2))
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE)
        };
        let (w, c) = (length(words), length(chars));
        let scaled =
            |part: &'a [u32], by: f32| part.iter().map(move |&f| (f, self.0[f as usize] / by));
        scaled(words, w).chain(scaled(chars, c))
    }

    /// The weight of a bucket no example has, then (bucket, weight) for the others.
    fn encode(&self, out: &mut Vec<u8>) {
        let unseen = self.0.iter().copied().fold(0.0f32, f32::max);
        out.extend_from_slice(&unseen.to_le_bytes());
        let seen: Vec<(usize, f32)> = self
            .0
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, w)| *w != unseen)
            .collect();
        out.extend_from_slice(&(seen.len() as u32).to_le_bytes());
        for (bucket, w) in seen {
            out.extend_from_slice(&(bucket as u32).to_le_bytes());
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    fn decode(bytes: &mut &[u8]) -> Option<Idf> {
        let mut word = || -> Option<[u8; 4]> {
            let (head, rest) = bytes.split_at_checked(4)?;
            *bytes = rest;
            head.try_into().ok()
        };
        let unseen = f32::from_le_bytes(word()?);
        let mut weights = vec![unseen; BUCKETS];
        for _ in 0..u32::from_le_bytes(word()?) {
            let bucket = u32::from_le_bytes(word()?) as usize;
            *weights.get_mut(bucket)? = f32::from_le_bytes(word()?);
        }
        weights
            .iter()
            .all(|w| w.is_finite())
            .then_some(Idf(weights))
    }
}

/// The speller's vocabulary: the count, then each word as its length (u16), its bytes and how
/// many examples have it (u32), little-endian.
fn encode_words(words: &[(String, u32)], out: &mut Vec<u8>) {
    out.extend_from_slice(&(words.len() as u32).to_le_bytes());
    for (w, n) in words {
        out.extend_from_slice(&(w.len() as u16).to_le_bytes());
        out.extend_from_slice(w.as_bytes());
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// The first `n` bytes, moved past; None when fewer are left.
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = bytes.split_at_checked(n)?;
    *bytes = rest;
    Some(head)
}

fn decode_words(bytes: &mut &[u8]) -> Option<Vec<(String, u32)>> {
    let n = u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?) as usize;
    let mut words = Vec::with_capacity(n.min(bytes.len() / 6));
    for _ in 0..n {
        let len = u16::from_le_bytes(take(bytes, 2)?.try_into().ok()?) as usize;
        let word = std::str::from_utf8(take(bytes, len)?).ok()?.to_string();
        let count = u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?);
        words.push((word, count));
    }
    Some(words)
}

fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// FNV-1a, seeded per feature family so a word and a same-looking n-gram land apart.
#[inline]
pub(crate) fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ seed;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[inline]
fn bucket(h: u64) -> u32 {
    // Fold the high bits in: FNV's low bits alone are weak for short inputs.
    ((h ^ (h >> 29)) as usize & (BUCKETS - 1)) as u32
}

/// Word unigrams and bigrams, and character 3–5-grams of each word padded with spaces (so
/// "pasword" still shares most of its n-grams with "password").
fn features(norm: &str, words: &mut Vec<u32>, chars: &mut Vec<u32>) {
    let mut prev: Option<&str> = None;
    let mut padded = Vec::with_capacity(32);
    for word in norm.split(' ').filter(|w| !w.is_empty()) {
        words.push(bucket(fnv(1, word.as_bytes())));
        if let Some(p) = prev {
            let h = fnv(2, p.as_bytes());
            words.push(bucket(fnv(h, word.as_bytes())));
        }
        prev = Some(word);
        padded.clear();
        padded.push(b' ');
        padded.extend_from_slice(word.as_bytes());
        padded.push(b' ');
        for n in 3..=5 {
            if padded.len() < n {
                break;
            }
            for gram in padded.windows(n) {
                chars.push(bucket(fnv(n as u64 * 7, gram)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_weights_read_back_row_by_row_and_a_damaged_row_list_is_refused() {
        let data: Vec<(Vec<(u32, f32)>, usize)> = (0..30)
            .map(|i| (vec![(5, 0.5), (100 + (i % 3) as u32, 0.9)], i % 3))
            .collect();
        let fitted = Linear::fit(&data, 3);
        let mut bytes = Vec::new();
        fitted.encode(&mut bytes);
        let loaded = Linear::decode(&mut bytes.as_slice(), 3).expect("it reads back");
        let (mut a, mut b) = ([0.0f32; 3], [0.0f32; 3]);
        fitted.scores([(101, 1.0), (5, 0.5), (7, 1.0)], &mut a);
        loaded.scores([(101, 1.0), (5, 0.5), (7, 1.0)], &mut b);
        assert_eq!(a, b);
        assert!(loaded.row(7).is_none(), "a feature never seen has no row");
        // The rows are (bucket, 3 weights) after k and the bias: 4 + 12 + 4 bytes in.
        let first_row = 4 + 12 + 4;
        let rows = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
        assert!(rows >= 2, "{rows}");
        let second_row = first_row + 16;
        let mut twice = bytes.clone();
        twice.copy_within(first_row..first_row + 4, second_row);
        assert!(
            Linear::decode(&mut twice.as_slice(), 3).is_none(),
            "a bucket given twice"
        );
        let mut outside = bytes.clone();
        outside[first_row..first_row + 4].copy_from_slice(&(BUCKETS as u32).to_le_bytes());
        assert!(
            Linear::decode(&mut outside.as_slice(), 3).is_none(),
            "a bucket out of range"
        );
        assert!(Linear::decode(&mut &bytes[..bytes.len() - 1], 3).is_none());
    }

    #[test]
    fn the_svm_separates_what_can_be_separated_with_a_margin() {
        // Label 1 has feature 7, label 0 feature 9; a shared feature 3 says nothing.
        let data: Vec<(Vec<(u32, f32)>, usize)> = (0..40)
            .map(|i| {
                let label = i % 2;
                let own = if label == 1 { 7 } else { 9 };
                (vec![(3, 0.6), (own, 0.8)], label)
            })
            .collect();
        let (w, bias) = solve(&data, 1, &[1.0, 1.0]);
        let margin =
            |x: &[(u32, f32)]| bias + x.iter().map(|&(f, v)| w[f as usize] * v).sum::<f32>();
        for (x, label) in &data {
            let m = margin(x);
            if *label == 1 {
                assert!(m > 0.5, "{m}");
            } else {
                assert!(m < -0.5, "{m}");
            }
        }
        assert!(w[7] > 0.0 && w[9] < 0.0);
        // Deterministic: the same data give the same weights.
        assert_eq!(solve(&data, 1, &[1.0, 1.0]).0, w);
    }

    #[test]
    fn the_lexicon_maps_variants_to_one_word() {
        let lex = Lexicon::new(
            vec![
                ("pw".into(), "password".into()),
                ("tries".into(), "attempts".into()),
            ],
            vec![
                (vec!["log".into(), "in".into()], "login".into()),
                (vec!["e".into(), "s".into(), "r".into()], "esr".into()),
                (vec!["e".into(), "s".into()], "es".into()),
            ],
        );
        assert_eq!(lex.canonical("into e s r now"), "into esr now");
        assert_eq!(lex.canonical("e s"), "es");
        assert_eq!(lex.canonical("log"), "log");
        assert_eq!(
            lex.canonical("cant log in forgot my pw"),
            "cant login forgot my password"
        );
        assert_eq!(lex.canonical("3 tries"), "3 attempts");
        assert_eq!(lex.canonical(""), "");
        assert_eq!(Lexicon::default().canonical("log in"), "log in");
    }

    #[test]
    fn dictated_punctuation_is_left_out() {
        let lex = Lexicon::new(
            vec![],
            vec![(vec!["full".into(), "stop".into()], String::new())],
        );
        assert_eq!(lex.canonical("hi full stop"), "hi");
        assert_eq!(
            lex.canonical("full stop it wont take my password full stop"),
            "it wont take my password"
        );
        assert_eq!(lex.canonical("full"), "full");
    }
}
