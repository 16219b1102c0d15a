//! Which language a message is in, English or Welsh (lingua, with only those two models). The bot
//! answers in English for now; a Welsh message is told so, in both languages. Detection runs only
//! on messages the classifier could not place, so the common path never pays for it.

use std::sync::LazyLock;

use lingua::{Language, LanguageDetector, LanguageDetectorBuilder};

static DETECTOR: LazyLock<LanguageDetector> = LazyLock::new(|| {
    LanguageDetectorBuilder::from_languages(&[Language::English, Language::Welsh]).build()
});

/// How sure lingua must be before a message is taken as Welsh.
const MIN_CONFIDENCE: f64 = 0.8;

/// Everyday Welsh words that short messages are made of (lingua alone is unsure of "Bore da").
const WELSH_WORDS: &[&str] = &[
    "bore",
    "da",
    "nos",
    "prynhawn",
    "noswaith",
    "diolch",
    "shwmae",
    "sut",
    "mae",
    "wyt",
    "dw",
    "dwi",
    "rwy",
    "yn",
    "fy",
    "ddim",
    "wedi",
    "ac",
    "a",
    "y",
    "yr",
    "i",
    "chi",
    "ti",
    "fawr",
    "helpu",
    "gallu",
    "cyfrinair",
    "nghyfrinair",
    "anghofio",
    "cloi",
    "allan",
    "mewngofnodi",
    "plis",
    "os",
    "gwelwch",
    "gwelwch'n",
    "dda",
    "hwyl",
    "croeso",
];
/// Of those, the ones English never uses.
const DISTINCTIVE: &[&str] = &[
    "bore",
    "nos",
    "prynhawn",
    "noswaith",
    "diolch",
    "shwmae",
    "dwi",
    "rwy",
    "ddim",
    "wedi",
    "fawr",
    "cyfrinair",
    "nghyfrinair",
    "anghofio",
    "mewngofnodi",
    "gwelwch",
    "hwyl",
    "croeso",
];
/// Everyday English words Welsh never uses. A message with one of them and no distinctive Welsh
/// word is English without asking lingua, whose check costs more than all the rest of
/// understanding a message.
const ENGLISH_ONLY: &[&str] = &[
    "the", "my", "are", "was", "cant", "can't", "where", "what", "how", "when", "why", "who", "of",
    "and", "it", "you", "does", "not", "with", "for", "this", "that", "have", "has", "get", "see",
    "im", "i'm", "it's", "its", "please", "hello", "thanks",
];

/// True when `text` reads as Welsh rather than English.
pub fn is_welsh(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphabetic() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let known = words
        .iter()
        .filter(|w| WELSH_WORDS.contains(&w.as_str()))
        .count();
    let distinctive = words.iter().any(|w| DISTINCTIVE.contains(&w.as_str()));
    if distinctive && known * 10 >= words.len() * 6 {
        return true;
    }
    if !distinctive && words.iter().any(|w| ENGLISH_ONLY.contains(&w.as_str())) {
        return false;
    }
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    letters >= 8 && DETECTOR.compute_language_confidence(text, Language::Welsh) >= MIN_CONFIDENCE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welsh_is_told_from_english() {
        for cy in [
            "Bore da",
            "Wedi anghofio fy nghyfrinair ESR",
            "Dw i ddim yn gallu mewngofnodi i ESR",
            "Diolch yn fawr",
            "bore da, dwi wedi cloi allan",
            "nos da",
        ] {
            assert!(is_welsh(cy), "{cy}");
        }
        for en in [
            "good morning",
            "i've forgotten my esr password",
            "esr wont let me in",
            "where can I see my payslip",
            "hi",
            "hello",
            "ta",
            "I'm locked out, a reset is no use",
        ] {
            assert!(!is_welsh(en), "{en}");
        }
    }
}
