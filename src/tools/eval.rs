//! Measuring understanding (`esrbot eval`): reads `text<TAB>intent` rows, scores what the bot
//! would answer with, and reports per-intent precision/recall/F1, the common confusions, and the
//! headline figures staff care about (accuracy, out-of-scope messages wrongly answered, ESR
//! questions wrongly declined).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::core::engine::Engine;
use crate::understanding::intents::{Intent, OUT_OF_SCOPE};
use crate::understanding::text::normalize;

#[derive(Debug, Clone, Serialize)]
pub struct IntentScore {
    pub intent: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub oos_false_accept: f64,
    pub in_scope_false_reject: f64,
    pub n: usize,
    pub per_intent: Vec<IntentScore>,
    /// (gold, predicted, count), most common first.
    pub confusions: Vec<(String, String, usize)>,
}

/// Reads a TSV file with a `text<TAB>intent` header. Intents must be ones the bot knows.
pub fn read_tsv(path: &Path, known: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            if line.trim() != "text\tintent" {
                bail!(
                    "{}:1: the first line must be the header `text<TAB>intent`",
                    path.display()
                );
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let Some((t, intent)) = line.rsplit_once('\t') else {
            bail!("{}:{}: expected `text<TAB>intent`", path.display(), i + 1);
        };
        let intent = intent.trim();
        if !known.iter().any(|k| k == intent) {
            bail!("{}:{}: unknown intent `{intent}`", path.display(), i + 1);
        }
        rows.push((t.to_string(), intent.to_string()));
    }
    if rows.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(rows)
}

/// The rows whose text is not also a training example (compared as the classifier normalises
/// text: case, spacing and punctuation other than apostrophes), and how many were left out. Independent writers sometimes type the same
/// short message ("hi", "thanks"): this measures messages the bot has truly never seen.
pub fn unseen_rows(
    rows: Vec<(String, String)>,
    intents: &[Intent],
) -> (Vec<(String, String)>, usize) {
    let seen: std::collections::HashSet<String> = intents
        .iter()
        .flat_map(|i| i.examples.iter().map(|e| normalize(e)))
        .collect();
    let before = rows.len();
    let kept: Vec<_> = rows
        .into_iter()
        .filter(|(text, _)| !seen.contains(&normalize(text)))
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

/// One fold of a cross-validation: what to train on, and the (text, intent) rows held out.
pub struct Fold {
    pub train: Vec<Intent>,
    pub held: Vec<(String, String)>,
}

/// K-fold cross-validation sets over the examples: example j of every intent is held out in fold
/// j mod k. The training side has no patterns (they were written with the examples in view), so
/// the figure measures how the statistical model carries phrasings it has not seen.
pub fn folds(intents: &[Intent], k: usize) -> Vec<Fold> {
    (0..k)
        .map(|fold| {
            let mut held = Vec::new();
            let train = intents
                .iter()
                .map(|i| {
                    let mut keep = Vec::new();
                    for (j, e) in i.examples.iter().enumerate() {
                        if j % k == fold {
                            held.push((e.clone(), i.id.clone()));
                        } else {
                            keep.push(e.clone());
                        }
                    }
                    Intent {
                        examples: keep,
                        patterns: Vec::new(),
                        ..i.clone()
                    }
                })
                .collect();
            Fold { train, held }
        })
        .collect()
}

pub fn evaluate(engine: &Engine, rows: &[(String, String)]) -> Report {
    let pairs: Vec<(String, String)> = rows
        .iter()
        .map(|(text, gold)| (gold.clone(), engine.predict(text).0.to_string()))
        .collect();
    score(&pairs)
}

/// Scores (gold, predicted) pairs.
pub fn score(pairs: &[(String, String)]) -> Report {
    let n = pairs.len();
    let mut labels: Vec<&str> = pairs
        .iter()
        .flat_map(|(g, p)| [g.as_str(), p.as_str()])
        .collect();
    labels.sort_unstable();
    labels.dedup();
    let mut per_intent = Vec::new();
    for l in &labels {
        let tp = pairs.iter().filter(|(g, p)| g == l && p == l).count();
        let gold = pairs.iter().filter(|(g, _)| g == l).count();
        let pred = pairs.iter().filter(|(_, p)| p == l).count();
        let precision = ratio(tp, pred);
        let recall = ratio(tp, gold);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        per_intent.push(IntentScore {
            intent: l.to_string(),
            precision,
            recall,
            f1,
            support: gold,
        });
    }
    let scored: Vec<&IntentScore> = per_intent.iter().filter(|s| s.support > 0).collect();
    let macro_f1 = scored.iter().map(|s| s.f1).sum::<f64>() / scored.len().max(1) as f64;
    let correct = pairs.iter().filter(|(g, p)| g == p).count();
    let oos: Vec<_> = pairs.iter().filter(|(g, _)| g == OUT_OF_SCOPE).collect();
    let ins: Vec<_> = pairs.iter().filter(|(g, _)| g != OUT_OF_SCOPE).collect();
    let mut conf: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (g, p) in pairs.iter().filter(|(g, p)| g != p) {
        *conf.entry((g.clone(), p.clone())).or_default() += 1;
    }
    let mut confusions: Vec<(String, String, usize)> =
        conf.into_iter().map(|((g, p), c)| (g, p, c)).collect();
    confusions.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    Report {
        accuracy: ratio(correct, n),
        macro_f1,
        oos_false_accept: ratio(
            oos.iter().filter(|(_, p)| p != OUT_OF_SCOPE).count(),
            oos.len(),
        ),
        in_scope_false_reject: ratio(
            ins.iter().filter(|(_, p)| p == OUT_OF_SCOPE).count(),
            ins.len(),
        ),
        n,
        per_intent,
        confusions,
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Report {
    /// The closing line, also what the README quotes.
    pub fn summary(&self) -> String {
        format!(
            "accuracy={:.4} macro_f1={:.4} oos_false_accept={:.4} in_scope_false_reject={:.4} n={}",
            self.accuracy, self.macro_f1, self.oos_false_accept, self.in_scope_false_reject, self.n
        )
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<22} {:>9} {:>9} {:>9} {:>8}\n",
            "intent", "precision", "recall", "f1", "support"
        );
        for s in &self.per_intent {
            out.push_str(&format!(
                "{:<22} {:>9.3} {:>9.3} {:>9.3} {:>8}\n",
                s.intent, s.precision, s.recall, s.f1, s.support
            ));
        }
        if !self.confusions.is_empty() {
            out.push_str("\nmost common confusions (expected -> answered):\n");
            for (g, p, c) in self.confusions.iter().take(10) {
                out.push_str(&format!("  {c:>3}  {g} -> {p}\n"));
            }
        }
        out.push('\n');
        out.push_str(&self.summary());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_computed_from_pairs() {
        let p = |g: &str, q: &str| (g.to_string(), q.to_string());
        let r = score(&[
            p("a", "a"),
            p("a", "b"),
            p("b", "b"),
            p(OUT_OF_SCOPE, "a"),
            p(OUT_OF_SCOPE, OUT_OF_SCOPE),
            p("b", OUT_OF_SCOPE),
        ]);
        assert_eq!(r.n, 6);
        assert!((r.accuracy - 0.5).abs() < 1e-9);
        assert!((r.oos_false_accept - 0.5).abs() < 1e-9);
        assert!((r.in_scope_false_reject - 0.25).abs() < 1e-9);
        assert_eq!(r.confusions.len(), 3);
        assert!(r.summary().starts_with("accuracy=0.5000 macro_f1="));
    }
}
