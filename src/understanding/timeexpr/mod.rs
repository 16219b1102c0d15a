//! Finds when staff say something happened ("I submitted it at 9am", "20 mins ago", "last
//! night at 11") and formats clock times for the bot's replies, so the bot can work out how long
//! ago something was done without asking again. It never reads the system clock (`now` is always
//! passed in, which keeps results reproducible and testable), never returns a moment in the
//! future from [`find_past_time`], never panics on any text, and answers `None` rather than guess
//! when a message is vague ("yesterday"), out of range ("a week ago") or names a date it cannot
//! resolve ("on 12/11 at 9am"). A time that is stated but cannot be when something happened
//! ("at 25:00", "tomorrow at 9") is reported as a [`TimeProblem`] instead of being dropped, so
//! that the caller can ask rather than fall back to now.

use std::sync::LazyLock;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use regex::Regex;

use patterns::{FIND_RE, worth_scanning};
use resolve::{Ctx, Outcome};

pub use format::{format_clock, format_clock_named, format_when, parse_duration};
pub(crate) use words::number_word;

mod format;
mod patterns;
mod resolve;
mod words;

#[cfg(test)]
mod tests;

/// A moment mentioned in a message, resolved against `now` in the zone `tz`.
///
/// Check [`problem`](Self::problem) before using [`at`](Self::at): when it is `Some`, the words
/// named a time that cannot be when something happened, and `at` is only a placeholder (`now`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeMention {
    /// The moment meant; just `now`, and not to be used, when `problem` is `Some`.
    pub at: DateTime<Utc>,
    /// byte range of the expression in the input text
    pub span: std::ops::Range<usize>,
    /// the words matched, e.g. "3 hours ago"
    pub text: String,
    /// `Some` when the message states a time that cannot be the moment something happened:
    /// one that does not exist ("at 25:00") or one still to come ("at 13:00 tomorrow").
    pub problem: Option<TimeProblem>,
    /// True when the message gave no hour or count and `at` is a typical one: "this morning" is
    /// taken as 09:00, "last night" as 22:00, "a few hours ago" as 3 hours ago. The bot should
    /// then say what it assumed ("I've taken that as 09:00"). Always false with a `problem`.
    pub assumed: bool,
}

/// Why a stated time cannot be when something that already happened happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeProblem {
    /// No such clock time: "at 25:00", "at 13:75", "at 13pm", "yesterday at 0am".
    Impossible,
    /// A day and time still to come: "at 13:00 tomorrow", "next Monday at 9", "today at 11am"
    /// said at 09:00, "tonight at 11" said at noon.
    Future,
    /// A mealtime with no hour: "after tea", "at dinner", "just after lunch". "Dinner" is midday
    /// to some and evening to others, so the hour is asked for, never guessed.
    Vague,
}

/// Finds the first time expression in `text` that refers to a moment in the past or now, as staff use when
/// reporting when something happened ("I submitted it at 9am"). Returns None when there is none.
/// A part of the day with no hour ("this morning") is only the answer when no stated hour
/// follows it ("3 times tonight, the last one was about 7" is 19:00).
///
/// **Callers must check [`TimeMention::problem`] first.** When the message names no usable past
/// time but does state an impossible or future one ("at 25:00", "reset requested at 13:00
/// tomorrow"), the first such is returned with `problem` set and `at == now`, so that the caller
/// can ask for the time again instead of silently taking now. A usable past time anywhere in the
/// message wins over a problem ("tomorrow at 9am, but yesterday at 10am it failed").
///
/// Choices, so that callers know what to expect:
/// - A clock time with no day ("at 9pm", "21:30", "at 9") is the most recent such local time
///   that is not in the future; a bare hour is read as both am and pm and the later past one
///   wins. A two-digit hour with a leading zero ("at 09") is taken as 24-hour.
/// - With a past day ("yesterday at 8", "on Monday at 3", "8 days ago at 9") a bare hour follows the working day:
///   7–11 morning, 12 noon, 1–6 afternoon. "this morning" means am, "this afternoon/evening" pm,
///   "last night"/"tonight" 6–11 pm and 12–5 in the early hours after it. "today at 9" takes
///   the most recent of 09:00 and 21:00 today. Weekdays are the most recent such day, today
///   included unless the time has not come yet ("last Monday" never means today).
/// - Day parts alone: "this morning" 09:00, "this afternoon" 14:00, "this evening"/"tonight"
///   19:00, "last night" 22:00 yesterday, "yesterday morning/afternoon/evening" the same hours
///   yesterday. If that hour is still to come but the part has begun (morning from 00:00,
///   afternoon from 12:00, evening from 17:00) the answer is `now`, because the event cannot be
///   later than now; a part that has not begun is the future and is skipped (as a plan, without
///   a problem). These hours are assumptions, so `assumed` is true. A day alone ("yesterday",
///   "today", "on Monday") is too vague and gives nothing.
/// - A day phrase is never dropped: "N days ago" and "N weeks ago" with a time take any count
///   ("8 days ago at 9" is 09:00 eight days ago), and a count too large for a date gives no time
///   rather than the clock time today.
/// - Relative: "3 hours ago", "an hour and a half ago", "2h30m ago". "a few" is 5 for seconds
///   and minutes and 3 for hours and days (a bare "minutes ago" counts as a few), "a couple" is
///   2; anything over 72 hours is rejected. Counts are read in full whatever their length
///   ("4320 minutes ago" is 3 days, "3000000000 hours ago" is over 72 hours and gives nothing).
///   A vague count ("a few", "several", "minutes ago") sets `assumed`.
///   "just now" and "a moment ago" are `now`.
/// - Local times are in `tz`. A local time skipped by a clock change (01:30 on the spring-forward
///   day in London) is moved forward by the gap (01:30 GMT = 02:30 BST); a repeated one (01:30
///   on the fall-back day) is the earlier instant, and if even that is in the future the
///   expression counts as future like any other.
/// - Future references ("tomorrow at 9", "at 9 tonight" said at 15:00, "next Monday") are
///   skipped together with the time inside them, and the search goes on after them. If nothing
///   usable follows, one with a clock time is reported as [`TimeProblem::Future`]. A clock time
///   with no day is never future: "at 11am" said at 09:00 is yesterday's 11:00. The one
///   exception is a clock a few minutes ahead of ours: "at 12.15" said at 12:10 is today's.
/// - An impossible clock time written as one ("at 25:00", "at 13:75", "13pm", "yesterday 24:00")
///   is reported as [`TimeProblem::Impossible`] unless a usable time follows. Without "at", a day
///   or am/pm ("it said 25:00") it is not taken as a time at all.
/// - Numbers must look like times: a lone number needs "at"/"@" ("at 9"), or a day and a word
///   such as "around" ("yesterday around 4"); "9.30", "half 9" and "10 to 9" need any such word
///   or a day. A number is refused when the next word makes it a count ("at 3 attempts"), when
///   it is glued to other digits ("9.5", "2130"), when it is part of a range ("7am to 7pm"),
///   a deadline ("by 5pm", "the deadline is 5pm"), or next to a date or repeat we cannot
///   resolve ("on 12/11 at 9", "5th Jan at 9am", "every day at 9").
/// - `span` and `text` cover the whole expression, including a leading "at" and, for "yesterday
///   I sent it at 9", the words between the day and the time.
pub fn find_past_time(text: &str, now: DateTime<Utc>, tz: Tz) -> Option<TimeMention> {
    if !worth_scanning(text) {
        return past_the_hour(text, now, tz).or_else(|| mealtime(text, now));
    }
    let ctx = Ctx::new(now, tz)?;
    let mention = |whole: regex::Match<'_>, at, problem, assumed| TimeMention {
        at,
        span: whole.range(),
        text: whole.as_str().to_owned(),
        problem,
        assumed,
    };
    let mut first_problem = None;
    let mut first_assumed = None;
    let mut pos = 0;
    while pos <= text.len() {
        let Some(whole) = FIND_RE.find_at(text, pos) else {
            break;
        };
        match ctx.evaluate(text, whole.range()) {
            // "3 times tonight ... last one was about 7": a stated hour beats an assumed one.
            Outcome::Found { at, assumed: true } => {
                first_assumed.get_or_insert_with(|| mention(whole, at, None, true));
                pos = whole.end().max(next_char(text, whole.start()));
            }
            Outcome::Found { at, assumed } => return Some(mention(whole, at, None, assumed)),
            // Kept in case nothing usable follows; it hides any time inside it, like Skip.
            Outcome::Problem(problem) => {
                first_problem.get_or_insert_with(|| mention(whole, now, Some(problem), false));
                pos = whole.end().max(next_char(text, whole.start()));
            }
            // A future or vague phrase also hides any time inside it ("tomorrow at 9").
            Outcome::Skip => pos = whole.end().max(next_char(text, whole.start())),
            // A rejected match may still contain a real one, so move on by a single character.
            Outcome::Invalid => pos = next_char(text, whole.start()),
        }
    }
    first_assumed
        .or(first_problem)
        .or_else(|| past_the_hour(text, now, tz))
        .or_else(|| mealtime(text, now))
}

/// Whether any of `parts` (lower-case ASCII) is in `text`, ignoring ASCII case: a cheap test
/// before a regex search that most messages would fail.
fn has_word_part(text: &str, parts: &[&str]) -> bool {
    let bytes = text.as_bytes();
    parts.iter().any(|p| {
        bytes
            .windows(p.len())
            .any(|w| w.eq_ignore_ascii_case(p.as_bytes()))
    })
}

/// "did the reset after tea", "it happened at lunch": a mealtime and no hour.
static MEALTIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:(?:just\s+|straight\s+)?(?:after|before)|at|around|about|during|over)\s+(?:my\s+|the\s+|our\s+)?(?:tea|dinner|lunch|breakfast|brekkie|supper)(?:\s*time)?\b|\b(?:dinner|lunch|tea)\s*time\b",
    )
    .expect("pattern")
});

/// Words just before a mealtime that make it a plan: "gonna do it after lunch".
static PLAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:gonna|going\s+to|will|ill|i'?ll|shall|plan(?:ning)?\s+to|later|do\s+it|doing\s+it|use\s+it|try|finish)\b[^.!?]*$")
        .expect("pattern")
});

fn mealtime(text: &str, now: DateTime<Utc>) -> Option<TimeMention> {
    if !has_word_part(
        text,
        &["tea", "dinner", "lunch", "breakfast", "brekkie", "supper"],
    ) {
        return None;
    }
    let m = MEALTIME.find(text)?;
    let mut from = m.start().saturating_sub(40);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    if text
        .get(from..m.start())
        .is_some_and(|before| PLAN.is_match(before))
    {
        return None;
    }
    Some(TimeMention {
        at: now,
        span: m.range(),
        text: m.as_str().to_owned(),
        problem: Some(TimeProblem::Vague),
        assumed: false,
    })
}

/// "did it at ten past", "sent it at quarter past": minutes past an hour it does not name, which
/// is the latest such time that is not in the future (ten past, said at 15:25, is 15:10).
static PAST_THE_HOUR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:at|about|around|bout|abt|roughly|since)\s+(?:(five|ten|twenty|twenty[\s-]five|quarter|half)\s+past)\b(?:\s+(\w+))?",
    )
    .expect("pattern")
});

fn past_the_hour(text: &str, now: DateTime<Utc>, tz: Tz) -> Option<TimeMention> {
    // Most messages say no "past": a byte scan spares them the search.
    if !has_word_part(text, &["past"]) {
        return None;
    }
    let caps = PAST_THE_HOUR.captures(text)?;
    // "ten past 9" names its hour, and was read (or refused) above.
    if caps.get(2).is_some_and(|w| {
        w.as_str().bytes().all(|b| b.is_ascii_digit()) || number_word(w.as_str()).is_some()
    }) {
        return None;
    }
    let minutes: i64 = match caps[1].to_ascii_lowercase().as_str() {
        "five" => 5,
        "ten" => 10,
        "twenty" => 20,
        "quarter" => 15,
        "half" => 30,
        _ => 25,
    };
    let local_minute = i64::from(now.with_timezone(&tz).minute());
    let back = (local_minute - minutes).rem_euclid(60);
    let whole = caps.get(0)?;
    let end = caps
        .get(2)
        .map_or(whole.end(), |w| w.start())
        .min(whole.end());
    let at = now - chrono::TimeDelta::minutes(back);
    Some(TimeMention {
        at: at.with_second(0)?.with_nanosecond(0)?,
        span: whole.start()..end,
        text: text.get(whole.start()..end)?.trim_end().to_owned(),
        problem: None,
        assumed: false,
    })
}

fn next_char(text: &str, at: usize) -> usize {
    at + text
        .get(at..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}
