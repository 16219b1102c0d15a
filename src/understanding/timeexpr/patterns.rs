//! The regular expressions that find candidate time expressions. They are assembled once from
//! named fragments (clock time, leading word, day, "N hours ago") into one fast search pattern
//! for finding candidates, plus one anchored pattern per kind of expression for reading a
//! candidate's parts; what a match means is decided in `resolve`. `(?-u:\b)` is an ASCII word
//! boundary: Unicode `\b` would stop the fast DFA on any non-ASCII text (emoji, other scripts)
//! and fall back to slower engines. Digits are `[0-9]`, never `\d`, which would also match other
//! scripts' digits.

use std::sync::LazyLock;

use regex::Regex;

const B: &str = r"(?-u:\b)";
pub(super) const HOUR_WORDS: &str =
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve";
/// Short forms that are also English words ("sat", "sun", "wed") are left out.
const WEEKDAYS: &str =
    "monday|mon|tuesday|tues|tue|wednesday|weds|thursday|thurs|thur|thu|friday|fri|saturday|sunday";
const TENS: &str =
    r"(?:twenty|thirty|forty|fifty)(?:[-\ ](?:one|two|three|four|five|six|seven|eight|nine))?";
const UNITS: &str = "seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|s|m|h|d|w";

/// A clock time: "9", "9am", "9:30", "21:30", "9.15pm", "half 9", "quarter to ten", "noon",
/// "9 o'clock", "9 in the evening", "9ish". Its named groups are read by `parse_clock_time`.
const TIME: &str = r"
(?:
    (?:12\s*|%B%)(?P<special>noon|mid-?day|midnight)%B%
  | (?: %B%(?P<frac>half|quarter|twenty[-\ ]?five|twenty|ten|five)%B% | (?P<fracn>[0-9]{1,2}) )
    \s+(?:(?:mins?|minutes)\s+)?(?P<dir>past|to)\s+
    (?: (?P<fh>[0-9]{1,2}) | %B%(?P<fhw>%HW%)%B% )
  | %B%half\s+(?: (?P<hh>[0-9]{1,2}) | %B%(?P<hhw>%HW%)%B% )
  | (?P<h>[0-9]{1,2})(?:(?P<sep>[:.])(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2}))?)?
  | %B%(?P<hw>%HW%)%B%
)
(?:\s*(?P<oc>o['’]?\s?clock)%B%)?
(?:\s*(?P<ap>[ap])\.?\s?m%B%\.?)?
(?:\s+(?P<q>in\s+the\s+(?:morning|afternoon|evening)|at\s+night)%B%)?
(?:\s*-?\s*ish%B%)?
";

/// Words that may stand before a clock time; `Strength` says which a number needs. "until" and
/// "by" are left out on purpose: they usually set a deadline.
const PREFIX: &str = r"
(?:
    %B%(?:at|around|about|approx(?:imately|\.)?|roughly|since|before|after|(?:it|that|this)\s+was|like|nearer|nearly|closer\s+to)
    (?:\s+(?:around|about|approx(?:imately|\.)?|roughly|exactly|precisely|just|like))?\s*
  | @\s*
  | ~\s*
)
";

/// A day, day part or future day; `parse_day` gives it meaning. "N days ago" and "N weeks ago"
/// take a count of any size, so that a day phrase is never left out and its time read as today's.
const DAY: &str = r"
%B%(?:
    (?:the\s+)?day\s+before\s+yesterday
  | (?:[0-9]+|a|%HW%)\s+(?:days?|weeks?|wks?)\s+(?:ago|back)
  | (?:yesterday|y['’]?day)(?:\s+(?:morning|afternoon|evening|night))?
  | last\s+(?:night|evening|(?:%WD%)(?:\s+(?:morning|afternoon|evening|night))?)
  | (?:earlier\s+)?this\s+(?:morning|afternoon|evening)
  | toni(?:ght|te)
  | (?:earlier\s+)?today
  | (?:(?:on|this\s+past|past)\s+)?(?:%WD%)(?:\s+(?:morning|afternoon|evening|night))?
  | (?:tomorrow|tmrw|tmr|tomoz)(?:\s+(?:morning|afternoon|evening|night))?
  | next\s+(?:%WD%|week)(?:\s+(?:morning|afternoon|evening|night))?
  | later\s+(?:today|tonight|on)
)%B%
";

/// "3 hours ago", "an hour and a half ago", "2h30m ago", "a few minutes ago", "minutes ago",
/// "about an hour back".
/// Counts have any number of digits ("4320 minutes ago"): a long count must not be cut short and
/// leave "minutes ago" to be read as a few minutes.
const REL: &str = r"
%B%(?:
    (?P<rn>
        [0-9]+(?:\.[0-9])?(?:\s+and\s+a\s+half)?
      | half\s+an?
      | (?:a\s+)?quarter\s+of\s+an?
      | (?:a\s+)?couple(?:\s+of)?
      | (?:a\s+)?few
      | several
      | (?:%TENS%|fifteen|sixty|ninety|%HW%)(?:\s+and\s+a\s+half)?
      | an?
    )
    \s*(?P<ru>%UNITS%)
    (?:\s*,?\s*(?:and\s+)?(?P<rn2>[0-9]+|%TENS%|fifteen|%HW%)\s*(?P<ru2>%UNITS%)?)?
    (?P<rhalf>\s+and\s+a\s+half)?
  | (?P<rbare>seconds|secs|minutes|mins|hours|hrs)
)(?:\s+or\s+so)?(?:\s*-?\s*ish)?\s*(?:ago|back)%B%
";

const NOW: &str = r"%B%(?:just\s+now|(?:a\s+)?moments?\s+ago)%B%";

/// Which kind of expression a match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Branch {
    DayTime,
    TimeDay,
    Now,
    Rel,
    Time,
    DayPart,
}

/// Every expression, most specific first: at one start position the regex takes the first
/// alternative that matches, so "yesterday at 8pm" beats "yesterday" and "at 8pm yesterday"
/// beats "at 8pm". The day-then-time form may have up to six words between ("yesterday I sent
/// it at 9pm"), but no digits or punctuation, so it stays within one clause.
const BRANCHES: [(Branch, &str); 6] = [
    (
        Branch::DayTime,
        r"(?P<day>%DAY%)(?P<gap>\s*,?\s*(?:[\p{L}'’]+\s+){0,6}?)(?:(?P<pre>%PREFIX%)|%B%)%TIME%",
    ),
    (
        Branch::TimeDay,
        r"(?:(?P<pre>%PREFIX%)|%B%)%TIME%\s*,?\s*(?P<day>%DAY%)",
    ),
    (Branch::Now, "%NOW%"),
    (Branch::Rel, "%REL%"),
    (Branch::Time, r"(?:(?P<pre>%PREFIX%)|%B%)%TIME%"),
    (Branch::DayPart, "%DAY%"),
];

/// Any match needs a digit or one of these words; checking first keeps chat without times cheap.
const KEYWORDS: &str = "(?i)ago|back|now|noon|mid-?day|night|tonite|morning|evening|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve";

fn expand(pattern: &str) -> String {
    pattern
        .replace("%DAY%", DAY)
        .replace("%PREFIX%", PREFIX)
        .replace("%NOW%", NOW)
        .replace("%REL%", REL)
        .replace("%TIME%", &format!("(?P<time>{TIME})"))
        .replace("%TENS%", TENS)
        .replace("%UNITS%", UNITS)
        .replace("%HW%", HOUR_WORDS)
        .replace("%WD%", WEEKDAYS)
        .replace("%B%", B)
}

/// Turns every `(?P<name>` into `(?:`.
fn strip_group_names(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(i) = rest.find("(?P<") {
        out.push_str(&rest[..i]);
        out.push_str("(?:");
        rest = &rest[i..];
        rest = rest.find('>').map_or("", |j| &rest[j + 1..]);
    }
    out.push_str(rest);
    out
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern is valid")
}

/// Finds candidates. Only the match bounds are used: that is a fast DFA search, whereas reading
/// capture groups from this large pattern costs microseconds. Group names are removed since
/// branches share them.
pub(super) static FIND_RE: LazyLock<Regex> = LazyLock::new(|| {
    let all: Vec<String> = BRANCHES.iter().map(|(_, p)| format!("(?:{p})")).collect();
    compile(&format!(
        "(?ix){}",
        strip_group_names(&expand(&all.join("|")))
    ))
});

/// The branches again, each anchored, to classify a candidate and read its groups from the
/// matched text alone. Tried in the same order, so the first that matches is the one that won.
pub(super) static BRANCH_RES: LazyLock<Vec<(Branch, Regex)>> = LazyLock::new(|| {
    BRANCHES
        .iter()
        .map(|(branch, p)| (*branch, compile(&format!("(?ix)^(?:{})$", expand(p)))))
        .collect()
});
static KEYWORD_RE: LazyLock<Regex> = LazyLock::new(|| compile(KEYWORDS));

pub(super) fn worth_scanning(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit()) || KEYWORD_RE.is_match(text)
}
