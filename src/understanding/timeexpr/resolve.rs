//! Turns a candidate match into a moment, or decides it is not one. It reads the clock time and
//! day from the match's groups, applies the context checks from `words`, and resolves the local
//! time against `now` in the staff member's zone, so that the result is never in the future and
//! clock changes are handled the same way everywhere.

use std::ops::Range;

use chrono::{
    DateTime, Datelike, Days, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use regex::Captures;

use super::TimeProblem;
use super::patterns::{BRANCH_RES, Branch};
use super::words::{
    COUNT_CONTEXT, EVENT_FILLER, EVENT_WORDS, NOT_YET_DONE, PLANNED, hour_word,
    mentions_another_day, near_unresolvable_date, number_word, part_of_range, part_word,
    plausible_after_bare_hour, time_is_the_message, touches_number, weekday_word, words_before,
};

/// Longest "N hours ago" that is believed: past three days people mean a date, and a wrong
/// date is worse than asking.
const MAX_AGO_SECS: f64 = 72.0 * 3600.0;
/// How many words before "around 9" may name the event it is the time of.
const EVENT_LOOKBACK: usize = 4;

/// How far ahead of ours a person's clock may be: a bare time this little after now is today's.
const CLOCK_AHEAD: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

pub(super) enum Outcome {
    /// A past moment; `assumed` when the message gave no hour or count and one was taken
    /// ("this morning" as 09:00, "a few hours ago" as 3 hours).
    Found { at: DateTime<Utc>, assumed: bool },
    /// A time that cannot be when something happened ("at 25:00", "tomorrow at 9"): report it,
    /// and skip it and what is inside it.
    Problem(TimeProblem),
    /// Recognised but vague or out of range: skip it and what is inside it.
    Skip,
    /// Not a usable time after all: keep looking from the next character.
    Invalid,
}

/// How to read an hour written without am/pm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    /// Both readings; the caller picks the most recent past one.
    Any,
    Am,
    Pm,
    /// 6–11 evening, 12 midnight, 1–5 early hours of the next day.
    Night,
    /// 7–11 morning, 12 noon, 1–6 afternoon: how staff talk about a past working day.
    WorkDay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Morning,
    Afternoon,
    Evening,
    Tonight,
    Night,
}

impl Part {
    /// (representative hour, hour the part begins)
    fn hours(self) -> (u32, u32) {
        match self {
            Part::Morning => (9, 0),
            Part::Afternoon => (14, 12),
            Part::Evening | Part::Tonight => (19, 17),
            Part::Night => (22, 18),
        }
    }

    fn hint(self) -> Hint {
        match self {
            Part::Morning => Hint::Am,
            Part::Afternoon | Part::Evening => Hint::Pm,
            Part::Tonight | Part::Night => Hint::Night,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayRef {
    Today,
    /// Any count; one too large for a date is `u32::MAX`, which resolves to no date.
    DaysAgo(u32),
    /// Most recent such weekday; `strict` ("last Monday") excludes today.
    Weekday {
        day: Weekday,
        strict: bool,
    },
    Future,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DaySpec {
    day: DayRef,
    part: Option<Part>,
}

/// Why the words of a clock time do not give one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotAClock {
    /// Not a time after all ("at 0", "half past 25"): keep looking.
    NotATime,
    /// Unmistakably written as a time but no such time exists ("25:00", "13:75", "13pm").
    Impossible,
}

/// A validated clock time as written.
#[derive(Debug, Clone, Copy)]
struct ClockTime {
    /// 0–23; 1–12 unless `fixed` or `meridiem` says how to read it.
    hour: u32,
    minute: u32,
    second: u32,
    /// Minutes before the hour ("ten to 9").
    minus: u32,
    /// Some(true) for pm.
    meridiem: Option<bool>,
    /// Already a 24-hour value (13–23, 0, "09", noon, midnight).
    fixed: bool,
    midnight: bool,
    /// From "in the morning", "at night".
    own_hint: Option<Hint>,
    strength: Strength,
}

/// How sure the words alone make us that a number is a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    /// Unmistakable: am/pm, "9:30", "noon", "half past 9", "9 o'clock".
    Strong,
    /// Has minutes but could be a decimal or a range ("9.30", "half 9", "10 to 9"): needs a
    /// word in front ("at", "around") or a day ("9.30 this morning").
    Soft,
    /// A lone number ("9"): needs "at"/"@" in front, or a day and any such word ("yesterday
    /// around 4").
    Bare,
}

impl ClockTime {
    /// The 24-hour readings, each with a day shift relative to its anchor day. Shifts only apply
    /// to an anchored day: "last night at 1" is early in the day after the night began.
    fn readings(&self, hint: Hint, anchored: bool) -> [Option<(i64, NaiveTime)>; 2] {
        let h = self.hour;
        let hours = match (self.meridiem, self.fixed) {
            (Some(pm), _) => [Some(h % 12 + if pm { 12 } else { 0 }), None],
            (None, true) => [Some(h), None],
            (None, false) => match hint {
                Hint::Any if h == 12 => [Some(12), Some(0)],
                Hint::Any => [Some(h), Some(h + 12)],
                Hint::Am => [Some(h), None],
                Hint::Pm if h == 12 => [Some(12), None],
                Hint::Pm => [Some(h + 12), None],
                Hint::Night => [
                    Some(match h {
                        12 => 0,
                        1..=5 => h,
                        _ => h + 12,
                    }),
                    None,
                ],
                Hint::WorkDay => [Some(if (1..=6).contains(&h) { h + 12 } else { h }), None],
            },
        };
        hours.map(|h24| {
            let h24 = h24?;
            let mut minutes = i64::from(h24 * 60 + self.minute) - i64::from(self.minus);
            let mut shift = 0;
            if minutes < 0 {
                minutes += 24 * 60;
                shift -= 1;
            }
            if anchored && (self.midnight || (hint == Hint::Night && h24 < 12)) {
                shift += 1;
            }
            let time = NaiveTime::from_hms_opt(
                u32::try_from(minutes / 60).ok()?,
                u32::try_from(minutes % 60).ok()?,
                self.second,
            )?;
            Some((shift, time))
        })
    }
}

pub(super) struct Ctx {
    now: DateTime<Utc>,
    tz: Tz,
    today: NaiveDate,
}

impl Ctx {
    pub(super) fn new(now: DateTime<Utc>, tz: Tz) -> Option<Ctx> {
        in_safe_range(now).then(|| Ctx {
            now,
            tz,
            today: now.with_timezone(&tz).date_naive(),
        })
    }

    fn local(&self, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        resolve_local(self.tz, date.and_time(time))
    }

    /// Judges the candidate at `range`: which branch it is, whether its context makes it a
    /// time, and which moment it means.
    pub(super) fn evaluate(&self, text: &str, range: Range<usize>) -> Outcome {
        let Some(span) = text.get(range.clone()) else {
            return Outcome::Invalid;
        };
        let Some((branch, caps)) = BRANCH_RES
            .iter()
            .find_map(|(branch, re)| re.captures(span).map(|caps| (*branch, caps)))
        else {
            return Outcome::Invalid;
        };
        // Group positions in `text`.
        let at = |name: &str| caps.name(name).map(|m| m.start() + range.start);
        let glued = touches_number(text, range.clone());
        match branch {
            Branch::Rel => {
                // A rejected "99 hours ago" must not leave "hours ago" to be read as a few hours.
                return match self.relative(&caps) {
                    Some((at, assumed)) if !glued => Outcome::Found { at, assumed },
                    _ => Outcome::Skip,
                };
            }
            _ if glued => return Outcome::Invalid,
            Branch::Now => {
                return Outcome::Found {
                    at: self.now,
                    assumed: false,
                };
            }
            Branch::DayPart => {
                return match parse_day(span) {
                    Some(spec) => self.day_part(spec),
                    None => Outcome::Invalid,
                };
            }
            Branch::DayTime | Branch::TimeDay | Branch::Time => {}
        }
        let clock = match parse_clock_time(&caps) {
            Ok(clock) => clock,
            // Only a time introduced as one ("at 25:00", "yesterday 13:75", "13pm") is reported;
            // a bare "25:00" may be a duration or a score.
            Err(NotAClock::Impossible)
                if caps.name("pre").is_some()
                    || caps.name("day").is_some()
                    || caps.name("ap").is_some() =>
            {
                return if self.context_allows(text, range, &caps) {
                    Outcome::Problem(TimeProblem::Impossible)
                } else {
                    Outcome::Invalid
                };
            }
            Err(_) => return Outcome::Invalid,
        };
        if clock.strength != Strength::Strong {
            let pre = caps.name("pre");
            let has_day = caps.name("day").is_some();
            let lead_is_at = pre.is_some_and(|pre| {
                let lead = pre.as_str().trim_start();
                // "at 9", "@9", "since about 2": a lone number that is a time.
                lead.starts_with('@')
                    || lead.get(..2).is_some_and(|w| w.eq_ignore_ascii_case("at"))
                    || lead
                        .get(..5)
                        .is_some_and(|w| w.eq_ignore_ascii_case("since"))
            });
            // "requested a reset around 9", "locked out of esr about 2": a lone number a few
            // words after an event and "around" is when it happened.
            let after_event = pre.is_some()
                && words_before(text, at("pre").unwrap_or(range.start), EVENT_LOOKBACK)
                    .iter()
                    .map(String::as_str)
                    .find(|w| !EVENT_FILLER.contains(w))
                    .is_some_and(|w| EVENT_WORDS.contains(&w));
            // "about 6ish", "dinner time, like 12", "it was nearer 2": a time that is the whole
            // message and says it is one ("ish", or a leading word other than "about", which
            // also leads counts: "about 9." alone is not a time).
            let marked = text
                .get(range.start..)
                .and_then(|from| from.get(..from.len().min(range.len() + 5)))
                .is_some_and(|near| near.to_ascii_lowercase().contains("ish"))
                || pre.is_some_and(|pre| {
                    let lead = pre.as_str().trim().to_ascii_lowercase();
                    ![
                        "about",
                        "around",
                        "roughly",
                        "approx",
                        "approximately",
                        "approx.",
                    ]
                    .contains(&lead.as_str())
                });
            let alone = pre.is_some() && marked && time_is_the_message(text, range.clone());
            let introduced = match clock.strength {
                Strength::Soft => pre.is_some() || has_day,
                _ => lead_is_at || (pre.is_some() && (has_day || after_event)) || alone,
            };
            if !introduced {
                return Outcome::Invalid;
            }
            let start = at("pre").or(at("time")).unwrap_or(range.start);
            let before = words_before(text, start, 1);
            if before
                .first()
                .is_some_and(|w| COUNT_CONTEXT.contains(&w.as_str()))
            {
                return Outcome::Invalid;
            }
            let time_ends_match = branch != Branch::TimeDay;
            if time_ends_match && !plausible_after_bare_hour(text, range.end) {
                return Outcome::Invalid;
            }
        }
        if !self.context_allows(text, range, &caps) {
            return Outcome::Invalid;
        }
        match caps.name("day") {
            None => self.bare(&clock),
            Some(day) => match parse_day(day.as_str()) {
                Some(spec) => self.on_day(spec, &clock),
                None => Outcome::Invalid,
            },
        }
    }

    /// The checks on the words around any clock time: not a deadline ("by 5pm"), not next to
    /// a date or repeat we cannot resolve, not part of a range, and no other day in the gap.
    fn context_allows(&self, text: &str, range: Range<usize>, caps: &Captures<'_>) -> bool {
        let deadline = words_before(text, range.start, 2)
            .iter()
            .any(|w| NOT_YET_DONE.contains(&w.as_str()))
            || words_before(text, range.start, 3)
                .iter()
                .any(|w| PLANNED.contains(&w.as_str()));
        let other_day = caps
            .name("gap")
            .is_some_and(|g| mentions_another_day(g.as_str()));
        !deadline
            && !other_day
            && !near_unresolvable_date(text, range.clone())
            && !part_of_range(text, range)
    }

    /// A clock time with no day: the latest reading on today or yesterday that is not future.
    fn bare(&self, clock: &ClockTime) -> Outcome {
        let hint = clock.own_hint.unwrap_or(Hint::Any);
        // "done it at 12.15" said at 12:10: a phone or ward clock a few minutes ahead of ours
        // means that time today, not 00:15.
        let ahead = clock
            .readings(hint, false)
            .into_iter()
            .flatten()
            .filter_map(|(_, time)| self.local(self.today, time))
            .filter(|t| *t > self.now && *t - self.now <= CLOCK_AHEAD)
            .min();
        if let Some(at) = ahead {
            return Outcome::Found { at, assumed: false };
        }
        let mut best = None;
        for back in 0..=1 {
            let Some(date) = shift_date(self.today, -back) else {
                continue;
            };
            for (_, time) in clock.readings(hint, false).into_iter().flatten() {
                if let Some(t) = self.local(date, time).filter(|t| *t <= self.now) {
                    best = best.max(Some(t));
                }
            }
        }
        best.map_or(Outcome::Invalid, |at| Outcome::Found { at, assumed: false })
    }

    /// A clock time on a named day. The day is never dropped: a day too far back for a date
    /// gives no time at all rather than the clock time today, and a day and time that are
    /// still to come ("tomorrow at 9", "today at 11am" said at 09:00) are a future problem.
    /// Before 06:00 local time, when "tonight" is the night already under way.
    fn early_hours(&self) -> bool {
        self.now.with_timezone(&self.tz).hour() < 6
    }

    fn on_day(&self, spec: DaySpec, clock: &ClockTime) -> Outcome {
        let Some(mut date) = self.day_date(spec.day) else {
            return match spec.day {
                DayRef::Future => Outcome::Problem(TimeProblem::Future),
                _ => Outcome::Skip,
            };
        };
        let hint =
            clock
                .own_hint
                .or(spec.part.map(Part::hint))
                .unwrap_or(if spec.day == DayRef::Today {
                    Hint::Any
                } else {
                    Hint::WorkDay
                });
        // One retry: a weekday whose time has not come yet means last week's; "last night at 2"
        // said at 00:30 means the night before.
        let retry = match spec.day {
            DayRef::Weekday { strict: false, .. } => 7,
            DayRef::DaysAgo(1) if spec.part == Some(Part::Night) => 1,
            // "locked me out at 2 tonight" said at 03:00: tonight is the night now ending.
            DayRef::Today if spec.part == Some(Part::Tonight) && self.early_hours() => 1,
            _ => 0,
        };
        let mut any_reading = false;
        for attempt in 0..2 {
            let best = clock
                .readings(hint, true)
                .into_iter()
                .flatten()
                .filter_map(|(shift, time)| self.local(shift_date(date, shift)?, time))
                .inspect(|_| any_reading = true)
                .filter(|t| *t <= self.now)
                .max();
            if let Some(at) = best {
                return Outcome::Found { at, assumed: false };
            }
            if attempt > 0 || retry == 0 {
                break;
            }
            match shift_date(date, -retry) {
                Some(d) => date = d,
                None => break,
            }
        }
        // Every reading was later than now.
        if any_reading {
            Outcome::Problem(TimeProblem::Future)
        } else {
            Outcome::Skip
        }
    }

    /// A day part with no clock time ("this morning", "last night").
    fn day_part(&self, spec: DaySpec) -> Outcome {
        let Some(part) = spec.part else {
            return Outcome::Skip;
        };
        let Some(date) = self.day_date(spec.day) else {
            return Outcome::Skip;
        };
        let (typical, begins) = part.hours();
        let at =
            |date: NaiveDate, hour: u32| self.local(date, NaiveTime::from_hms_opt(hour, 0, 0)?);
        // The message gave no hour, so whatever is found was assumed.
        let found = |at| Outcome::Found { at, assumed: true };
        if let Some(t) = at(date, typical).filter(|t| *t <= self.now) {
            return found(t);
        }
        if date == self.today && at(date, begins).is_some_and(|t| t <= self.now) {
            return found(self.now);
        }
        if let DayRef::Weekday { strict: false, .. } = spec.day
            && let Some(t) = shift_date(date, -7)
                .and_then(|d| at(d, typical))
                .filter(|t| *t <= self.now)
        {
            return found(t);
        }
        // A part of the day still to come ("tonight" said at 15:00, "tomorrow morning") is
        // usually a plan rather than a wrong report, so it is skipped without a problem.
        Outcome::Skip
    }

    fn day_date(&self, day: DayRef) -> Option<NaiveDate> {
        match day {
            DayRef::Today => Some(self.today),
            DayRef::DaysAgo(n) => shift_date(self.today, -i64::from(n)),
            DayRef::Future => None,
            DayRef::Weekday { day, strict } => {
                let back = (self.today.weekday().num_days_from_monday() + 7
                    - day.num_days_from_monday())
                    % 7;
                let back = if strict && back == 0 { 7 } else { back };
                shift_date(self.today, -i64::from(back))
            }
        }
    }

    /// The moment "N units ago" means, and whether the count was assumed ("a few", "several",
    /// a bare "minutes ago"). Counts of any length are read in full and then held to
    /// [`MAX_AGO_SECS`], so "3000000000 hours ago" is no time rather than a few hours.
    fn relative(&self, caps: &Captures<'_>) -> Option<(DateTime<Utc>, bool)> {
        let (secs, assumed) = if let Some(bare) = caps.name("rbare") {
            let unit = unit_seconds(bare.as_str());
            (unit.map(|u| few(u) * u), true)
        } else {
            let vague = caps.name("rn").is_some_and(|n| {
                let n = n.as_str().to_ascii_lowercase();
                n.contains("few") || n.contains("several")
            });
            (relative_seconds(caps), vague)
        };
        let secs = secs.filter(|s| s.is_finite() && (0.0..=MAX_AGO_SECS).contains(s))?;
        // In range by the check above, so the cast cannot overflow.
        let delta = TimeDelta::try_seconds(secs.round() as i64)?;
        Some((self.now.checked_sub_signed(delta)?, assumed))
    }
}

fn relative_seconds(caps: &Captures<'_>) -> Option<f64> {
    let unit = unit_seconds(caps.name("ru")?.as_str())?;
    let mut secs = count_value(caps.name("rn")?.as_str(), unit)? * unit;
    if let Some(n2) = caps.name("rn2") {
        let unit2 = match caps.name("ru2") {
            Some(u) => unit_seconds(u.as_str())?,
            // "1h20 ago": the next smaller unit.
            None => match unit {
                3600.0 => 60.0,
                60.0 => 1.0,
                86_400.0 => 3600.0,
                _ => return None,
            },
        };
        if unit2 >= unit {
            return None;
        }
        secs += count_value(n2.as_str(), unit2)? * unit2;
    }
    if caps.name("rhalf").is_some() {
        secs += unit / 2.0;
    }
    Some(secs)
}

fn unit_seconds(unit: &str) -> Option<f64> {
    match unit.bytes().next()?.to_ascii_lowercase() {
        b's' => Some(1.0),
        b'm' => Some(60.0),
        b'h' => Some(3600.0),
        b'd' => Some(86_400.0),
        b'w' => Some(604_800.0),
        _ => None,
    }
}

/// "a few": five seconds or minutes, but three hours or days.
fn few(unit: f64) -> f64 {
    if unit <= 60.0 { 5.0 } else { 3.0 }
}

fn count_value(count: &str, unit: f64) -> Option<f64> {
    let lower = count.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let (words, half) = match words.as_slice() {
        [rest @ .., "and", "a", "half"] => (rest, 0.5),
        all => (all, 0.0),
    };
    let base = match words {
        [] => return None,
        ["a" | "an"] => 1.0,
        ["half", _] => 0.5,
        [.., "quarter", "of", _] => 0.25,
        ["couple" | "a", ..] if words.contains(&"couple") => 2.0,
        ["few" | "a", ..] | ["several"] if !words.contains(&"couple") => few(unit),
        [n] => match n.parse::<f64>() {
            Ok(v) => v,
            Err(_) => number_word(n)?,
        },
        [tens, ones] => number_word(tens)? + number_word(ones)?,
        _ => return None,
    };
    Some(base + half)
}

/// Reads and validates the clock time from a branch's capture groups. A time written with a
/// colon or am/pm whose hour, minute or second cannot exist ("25:00", "13:75", "13pm", "0am")
/// is [`NotAClock::Impossible`]; anything else that does not read as a time is `NotATime`.
fn parse_clock_time(caps: &Captures<'_>) -> Result<ClockTime, NotAClock> {
    use NotAClock::{Impossible, NotATime};
    let group = |name: &str| caps.name(name).map(|m| m.as_str());
    let meridiem = group("ap").map(|p| p.eq_ignore_ascii_case("p"));
    let oclock = group("oc").is_some();
    let own_hint = group("q").map(|q| {
        let q = q.to_ascii_lowercase();
        if q.contains("morning") {
            Hint::Am
        } else if q.contains("night") {
            Hint::Night
        } else {
            Hint::Pm
        }
    });
    if let Some(special) = group("special") {
        if meridiem.is_some() || oclock || own_hint.is_some() {
            return Err(NotATime);
        }
        let midnight = special.eq_ignore_ascii_case("midnight");
        return Ok(ClockTime {
            hour: if midnight { 0 } else { 12 },
            minute: 0,
            second: 0,
            minus: 0,
            meridiem: None,
            fixed: true,
            midnight,
            own_hint: None,
            strength: Strength::Strong,
        });
    }
    // (value, already 24-hour)
    let hour_of = |digits: Option<&str>, word: Option<&str>| -> Option<(u32, bool)> {
        match (digits, word) {
            (Some(d), _) => {
                let v: u32 = d.parse().ok()?;
                Some((v, v >= 13 || v == 0 || (d.len() == 2 && d.starts_with('0'))))
            }
            (None, Some(w)) => Some((hour_word(w)?, false)),
            (None, None) => None,
        }
    };
    let mut strong = meridiem.is_some() || oclock || own_hint.is_some();
    let (hour, fixed, minute, second, minus, has_minutes);
    if let Some(dir) = group("dir") {
        let frac = match group("frac") {
            Some(w) => {
                strong = true;
                match w.to_ascii_lowercase().as_str() {
                    "half" => 30,
                    "quarter" => 15,
                    "five" => 5,
                    "ten" => 10,
                    "twenty" => 20,
                    _ => 25,
                }
            }
            None => group("fracn")
                .and_then(|n| n.parse().ok())
                .ok_or(NotATime)?,
        };
        if !(1..=59).contains(&frac) || oclock {
            return Err(NotATime);
        }
        (hour, fixed) = hour_of(group("fh"), group("fhw")).ok_or(NotATime)?;
        if dir.eq_ignore_ascii_case("past") {
            (minute, minus) = (frac, 0);
        } else {
            (minute, minus) = (0, frac);
        }
        (second, has_minutes) = (0, true);
        if hour == 0 {
            return Err(NotATime);
        }
    } else if group("hh").is_some() || group("hhw").is_some() {
        (hour, fixed) = hour_of(group("hh"), group("hhw")).ok_or(NotATime)?;
        (minute, second, minus, has_minutes) = (30, 0, 0, true);
        if !(1..=12).contains(&hour) || oclock {
            return Err(NotATime);
        }
    } else {
        (hour, fixed) = hour_of(group("h"), group("hw")).ok_or(NotATime)?;
        minute = group("m")
            .map_or(Some(0), |m| m.parse().ok())
            .ok_or(NotATime)?;
        second = group("s")
            .map_or(Some(0), |s| s.parse().ok())
            .ok_or(NotATime)?;
        minus = 0;
        has_minutes = group("m").is_some();
        if group("sep") == Some(":") {
            strong = true;
        }
        if oclock && (has_minutes || !(1..=12).contains(&hour)) {
            return Err(NotATime);
        }
    }
    let hour_ok = match meridiem {
        Some(_) => (1..=12).contains(&hour),
        None => hour <= 23 && (has_minutes || hour != 0),
    };
    if !hour_ok || minute > 59 || second > 59 {
        // Written unmistakably as a time ("25:00", "9:75am", "13pm"), so it is a mistake to
        // report rather than some other number. "9.75" and "at 0" may be anything.
        let written_as_time = meridiem.is_some() || group("sep") == Some(":");
        return Err(if written_as_time && !oclock && group("dir").is_none() {
            Impossible
        } else {
            NotATime
        });
    }
    Ok(ClockTime {
        hour,
        minute,
        second,
        minus,
        meridiem,
        fixed,
        midnight: false,
        own_hint,
        strength: if strong {
            Strength::Strong
        } else if has_minutes {
            Strength::Soft
        } else {
            Strength::Bare
        },
    })
}

fn parse_day(text: &str) -> Option<DaySpec> {
    let lower = text.to_lowercase().replace('’', "'");
    let words: Vec<&str> = lower.split_whitespace().collect();
    let has = |w: &str| words.contains(&w);
    let spec = |day, part| Some(DaySpec { day, part });
    if words
        .iter()
        .any(|w| matches!(*w, "tomorrow" | "tmrw" | "tmr" | "tomoz" | "next" | "later"))
    {
        return spec(DayRef::Future, None);
    }
    let part = words.iter().find_map(|w| part_word(w));
    if has("before") {
        return spec(DayRef::DaysAgo(2), None);
    }
    if has("ago") || has("back") {
        let first = *words.first()?;
        let n = match first {
            "a" => 1,
            // A count too long for a number is far too far back for a date.
            w if w.bytes().all(|b| b.is_ascii_digit()) => w.parse().unwrap_or(u32::MAX),
            w => hour_word(w)?,
        };
        let weeks = words.get(1).is_some_and(|w| w.starts_with('w'));
        let days = if weeks { n.saturating_mul(7) } else { n };
        return spec(DayRef::DaysAgo(days), None);
    }
    if let Some(day) = words.iter().find_map(|w| weekday_word(w)) {
        let strict = has("last") || has("past");
        return spec(DayRef::Weekday { day, strict }, part);
    }
    if has("yesterday") || has("yday") || has("y'day") {
        return spec(DayRef::DaysAgo(1), part);
    }
    if has("last") {
        return spec(DayRef::DaysAgo(1), Some(part.unwrap_or(Part::Night)));
    }
    if has("tonight") || has("tonite") {
        return spec(DayRef::Today, Some(Part::Tonight));
    }
    if has("this") || has("today") {
        return spec(DayRef::Today, part);
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Time zones.

/// Far enough from chrono's limits that converting to any zone cannot overflow (chrono panics
/// when a local time falls outside its range).
pub(super) fn in_safe_range(t: DateTime<Utc>) -> bool {
    let naive = t.naive_utc();
    let margin = TimeDelta::days(400);
    naive.checked_add_signed(margin).is_some() && naive.checked_sub_signed(margin).is_some()
}

fn shift_date(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    let n = Days::new(days.unsigned_abs());
    if days >= 0 {
        date.checked_add_days(n)
    } else {
        date.checked_sub_days(n)
    }
}

/// The instant of a local wall time in `tz`. A repeated wall time (clocks going back) is the
/// earlier instant. A skipped one (clocks going forward) is read with the offset in force before
/// the gap, which moves it forward by the gap: London's 01:30 on spring-forward day is 01:30 UTC,
/// shown as 02:30 BST.
pub(super) fn resolve_local(tz: Tz, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        MappedLocalTime::Single(t) => Some(t.with_timezone(&Utc)),
        MappedLocalTime::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        MappedLocalTime::None => {
            // Walk back to a wall time that exists; gaps are at most a day long.
            let offset = (1..=50).find_map(|k| {
                let probe = naive.checked_sub_signed(TimeDelta::minutes(30 * k))?;
                tz.from_local_datetime(&probe).latest()
            })?;
            let seconds = offset.offset().fix().local_minus_utc();
            naive
                .checked_sub_signed(TimeDelta::seconds(i64::from(seconds)))
                .map(|utc| utc.and_utc())
        }
    }
}
