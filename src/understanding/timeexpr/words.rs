//! Word lists and checks on the words around a match that a regular expression cannot express:
//! numbers and day names written as words, and the context that decides whether "at 9" is a
//! time at all ("at 3 attempts", "by 5pm", "7am to 7pm", "5th Jan at 9am"), because a missed time
//! is cheaper than a wrong one.

use std::ops::Range;

use chrono::Weekday;

use super::patterns::HOUR_WORDS;
use super::resolve::Part;

/// The value of a number written as a word ("two", "twenty-five").
pub(crate) fn number_word(word: &str) -> Option<f64> {
    if let Some((tens, ones)) = word.split_once('-') {
        return Some(number_word(tens)? + number_word(ones)?);
    }
    let n = match word {
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "fifteen" => 15,
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "ninety" => 90,
        _ => return None,
    };
    Some(f64::from(n))
}

pub(super) fn hour_word(word: &str) -> Option<u32> {
    HOUR_WORDS
        .split('|')
        .position(|w| w.eq_ignore_ascii_case(word))
        .and_then(|i| u32::try_from(i + 1).ok())
}

pub(super) fn part_word(word: &str) -> Option<Part> {
    match word {
        "morning" => Some(Part::Morning),
        "afternoon" => Some(Part::Afternoon),
        "evening" => Some(Part::Evening),
        "night" => Some(Part::Night),
        _ => None,
    }
}

pub(super) fn weekday_word(word: &str) -> Option<Weekday> {
    Some(match word {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tues" | "tue" => Weekday::Tue,
        "wednesday" | "weds" => Weekday::Wed,
        "thursday" | "thurs" | "thur" | "thu" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        "sunday" => Weekday::Sun,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Context checks that a regex cannot express.

/// Words after a bare "at 9" that keep it a time. Anything else alphabetic ("at 3 attempts",
/// "at 9 forms") suggests a count, and a missed time is cheaper than a wrong one.
const AFTER_BARE_HOUR: &[&str] = &[
    "and",
    "or",
    "but",
    "then",
    "so",
    "when",
    "while",
    "as",
    "because",
    "cos",
    "coz",
    "i",
    "i'd",
    "i'm",
    "i've",
    "i'll",
    "it",
    "it's",
    "its",
    "we",
    "they",
    "he",
    "she",
    "you",
    "my",
    "our",
    "the",
    "this",
    "that",
    "today",
    "tonight",
    "yesterday",
    "last",
    "on",
    "in",
    "for",
    "to",
    "with",
    "before",
    "after",
    "until",
    "till",
    "sharp",
    "exactly",
    "roughly",
    "just",
    "local",
    "gmt",
    "bst",
    "uk",
    "time",
    "please",
    "pls",
    "thanks",
    "thx",
    "yet",
    "still",
    "again",
    "too",
    "though",
    "however",
    "if",
    "which",
    "was",
    "were",
    "is",
    "had",
    "has",
    "did",
    "got",
    "and",
    "ish",
    "lol",
];

/// Words before "at N" that make N a level or a count ("looked at 9 of them", "band at 5").
pub(super) const COUNT_CONTEXT: &[&str] = &[
    "look",
    "looked",
    "looking",
    "looks",
    "stuck",
    "capped",
    "set",
    "priced",
    "rated",
    "scored",
    "aged",
    "level",
    "levels",
    "band",
    "grade",
    "page",
    "line",
    "step",
    "stage",
    "version",
    "room",
    "bed",
    "bay",
    "ward",
    "unit",
    "floor",
    "ranked",
    "currently",
    "still",
    "sitting",
    "cost",
    "costs",
    "paid",
    "number",
];

/// Words just before a clock time that make it a deadline or a plan, not when something
/// happened ("need it by 5pm", "the deadline is 5pm", "open until 8pm").
pub(super) const NOT_YET_DONE: &[&str] = &[
    "by", "due", "deadline", "until", "till", "til", "expires", "closes", "opens", "every",
    "starts", "begins",
];

/// Words that name the event just before "around 9" (or before it and `EVENT_FILLER` words):
/// then the number is when it happened ("locked out of esr about 7", "did the forgot password about 4", "the last one was
/// about 7").
pub(super) const EVENT_WORDS: &[&str] = &[
    "did",
    "done",
    "went",
    "was",
    "password",
    "reset",
    "requested",
    "request",
    "submitted",
    "sent",
    "out",
    "locked",
    "happened",
    "expired",
];

/// Words that may stand between the event and "around 9" ("locked out of esr about 7"); any
/// other word in between ("sent it around 4") means the number is not the event's time.
pub(super) const EVENT_FILLER: &[&str] = &["of", "esr", "the", "my", "a", "on", "thing", "link"];

/// Words up to three before a clock time that make it a plan: "before my shift at 7", "need
/// to get in before 9".
pub(super) const PLANNED: &[&str] = &["before", "b4"];

const MONTHS: &[&str] = &[
    "jan",
    "january",
    "feb",
    "february",
    "mar",
    "march",
    "apr",
    "april",
    "june",
    "jun",
    "july",
    "jul",
    "aug",
    "august",
    "sep",
    "sept",
    "september",
    "oct",
    "october",
    "nov",
    "november",
    "dec",
    "december",
];

/// Words near a clock time that tie it to a date or a repeat we cannot resolve.
const DATE_WORDS: &[&str] = &[
    "week",
    "weeks",
    "weekend",
    "month",
    "fortnight",
    "every",
    "daily",
    "weekly",
    "each",
];

/// Day words inside the gap of "yesterday … at 9": another day there means the time belongs to
/// that one ("yesterday was slow and today at 9 it failed").
pub(super) fn mentions_another_day(gap: &str) -> bool {
    gap.split_whitespace().any(|w| {
        let w = normalise_word(w);
        weekday_word(&w).is_some()
            || part_word(&w).is_some()
            || matches!(
                w.as_str(),
                "today"
                    | "tonight"
                    | "tonite"
                    | "tomorrow"
                    | "yesterday"
                    | "yday"
                    | "last"
                    | "next"
                    | "ago"
                    | "week"
                    | "weekend"
                    | "month"
            )
    })
}

pub(super) fn plausible_after_bare_hour(text: &str, end: usize) -> bool {
    let rest = text.get(end..).unwrap_or("").trim_start();
    let Some(c) = rest.chars().next() else {
        return true;
    };
    if c.is_ascii_digit() || matches!(c, '%' | '£' | '$' | '€' | '/' | '×' | '*' | '+' | '=') {
        return false;
    }
    if !c.is_alphabetic() {
        return true;
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_alphabetic() || matches!(c, '\'' | '’'))
        .take(16)
        .collect();
    let word = normalise_word(&word);
    // "last night at 11 trying to do my training": a verb in -ing goes on the sentence.
    AFTER_BARE_HOUR.contains(&word.as_str()) || (word.len() > 4 && word.ends_with("ing"))
}

/// A match glued to other numbers ("1.30 hours", "9.5", "£9.30pm", "2130") is not a time.
pub(super) fn touches_number(text: &str, range: Range<usize>) -> bool {
    let (Some(before), Some(after)) = (text.get(..range.start), text.get(range.end..)) else {
        return true;
    };
    let mut back = before.chars().rev();
    match back.next() {
        Some(c) if c.is_ascii_digit() || matches!(c, '£' | '$' | '€') => return true,
        Some('.' | ',' | ':') if back.next().is_some_and(|c| c.is_ascii_digit()) => return true,
        _ => {}
    }
    let mut ahead = after.chars();
    match ahead.next() {
        Some(c) if c.is_alphanumeric() => true,
        Some(',') => ahead.next().is_some_and(|c| c.is_ascii_digit()),
        // Also "at 9: 30" and "at 9. 30": a mistyped time we should not half-read.
        Some('.' | ':') => {
            let rest = ahead.as_str();
            rest.strip_prefix(' ')
                .unwrap_or(rest)
                .starts_with(|c: char| c.is_ascii_digit())
        }
        _ => false,
    }
}

/// "7am to 7pm", "07:30-20:00": shift patterns or opening hours, not a moment.
pub(super) fn part_of_range(text: &str, range: Range<usize>) -> bool {
    const JOINERS: [&str; 6] = ["-", "–", "—", "to ", "until ", "till "];
    let after = text.get(range.end..).unwrap_or("").trim_start();
    let joined_ahead = JOINERS.iter().any(|j| {
        after
            .get(..j.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(j))
            && after[j.len()..]
                .trim_start()
                .starts_with(|c: char| c.is_ascii_digit())
    });
    if joined_ahead {
        return true;
    }
    let before = text.get(..range.start).unwrap_or("").trim_end();
    ["-", "–", "—", " to"].iter().any(|j| {
        let Some(cut) = before.len().checked_sub(j.len()) else {
            return false;
        };
        let (rest, tail) = (before.get(..cut), before.get(cut..));
        tail.is_some_and(|t| t.eq_ignore_ascii_case(j))
            && rest.is_some_and(|rest| {
                let rest = rest.trim_end().to_ascii_lowercase();
                rest.ends_with(|c: char| c.is_ascii_digit())
                    || rest.ends_with("am")
                    || rest.ends_with("pm")
            })
    })
}

/// Only words in the same clause count: "at 7 this morning, first week on the bank" is a time.
pub(super) fn near_unresolvable_date(text: &str, range: Range<usize>) -> bool {
    const BREAKS: [char; 4] = [',', ';', '!', '?'];
    let from = text[..range.start].rfind(BREAKS).map_or(0, |i| i + 1);
    let to = text[range.end..]
        .find(BREAKS)
        .map_or(text.len(), |i| range.end + i);
    words_before(&text[from..], range.start - from, 2)
        .iter()
        .chain(words_after(&text[..to], range.end, 3).iter())
        .any(|w| is_date_like(w))
}

fn is_date_like(word: &str) -> bool {
    let has_digit = word.bytes().any(|b| b.is_ascii_digit());
    if has_digit && (word.contains('/') || word.contains('-')) {
        return true;
    }
    let ordinal = ["st", "nd", "rd", "th"].iter().any(|suffix| {
        word.strip_suffix(suffix)
            .is_some_and(|n| (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
    });
    ordinal || MONTHS.contains(&word) || DATE_WORDS.contains(&word)
}

/// Up to `n` words before byte `at`, nearest first, lower case, trimmed of punctuation. Looks at
/// most 64 bytes back so that long messages stay linear.
pub(super) fn words_before(text: &str, at: usize, n: usize) -> Vec<String> {
    let mut from = at.saturating_sub(64);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text.get(from..at)
        .unwrap_or("")
        .split_whitespace()
        .rev()
        .take(n)
        .map(normalise_word)
        .collect()
}

fn words_after(text: &str, at: usize, n: usize) -> Vec<String> {
    let mut to = at.saturating_add(64).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    text.get(at..to)
        .unwrap_or("")
        .split_whitespace()
        .take(n)
        .map(normalise_word)
        .collect()
}

fn normalise_word(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’')
        .to_lowercase()
        .replace('’', "'")
}

/// Words that may stand around a time that is the whole message ("about 6ish", "quarter past 7
/// i think", "dinner time, like 12", "actually i think it was nearer 2").
const TIME_ANSWER_FILLER: &[&str] = &[
    "i", "think", "maybe", "ish", "it", "was", "were", "about", "like", "probably", "prob", "ok",
    "okay", "oh", "um", "erm", "er", "sorry", "actually", "so", "yeah", "yes", "no", "nope",
    "more", "roughly", "dinner", "lunch", "tea", "time", "just", "then", "or", "around", "at",
    "nearer", "nearly", "closer", "to", "not", "sure", "guess", "reckon", "tbh", "hmm", "ah",
    "well", "thats", "that", "right",
];

/// True when the words of `text` outside `range` are all `TIME_ANSWER_FILLER`: the time is
/// the whole message, as when answering "when did it happen?".
pub(super) fn time_is_the_message(text: &str, range: Range<usize>) -> bool {
    let (Some(before), Some(after)) = (text.get(..range.start), text.get(range.end..)) else {
        return false;
    };
    let words = before.split_whitespace().chain(after.split_whitespace());
    let mut n = 0;
    for w in words {
        let w = normalise_word(w);
        n += 1;
        if n > 8 || !(w.is_empty() || TIME_ANSWER_FILLER.contains(&w.as_str())) {
            return false;
        }
    }
    true
}
