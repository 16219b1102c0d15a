//! The module's tests, moved unchanged from the single-file module: scanning messages against
//! fixed `now` values in London (and other zones), clock changes, formatting and durations.

use super::resolve::resolve_local;
use super::*;
use chrono::{NaiveDate, TimeDelta};
use chrono_tz::Europe::London;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("test timestamp")
}

/// The past moment found in `text` at `now` (London), as RFC 3339 UTC for readable failures.
/// A mention with a `problem` is no past moment, so it counts as none here; `problem_in` and
/// the tests after `nonsense_is_not_even_a_problem` check those.
fn find(text: &str, now: &str) -> Option<String> {
    let found = find_past_time(text, utc(now), London);
    if let Some(m) = &found {
        assert_eq!(&text[m.span.clone()], m.text, "span and text agree");
        if m.problem.is_some() {
            assert_eq!(m.at, utc(now), "a problem's time is now");
            assert!(!m.assumed, "a problem is not an assumption");
        }
    }
    found.filter(|m| m.problem.is_none()).map(|m| {
        assert_eq!(&text[m.span.clone()], m.text, "span and text agree");
        m.at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    })
}

#[track_caller]
fn check(text: &str, now: &str, expected: Option<&str>) {
    assert_eq!(find(text, now).as_deref(), expected, "{text:?} at {now}");
}

// Wednesday 14 January 2026, 12:00 GMT.
const WED_NOON: &str = "2026-01-14T12:00:00Z";

#[test]
fn clock_times() {
    let cases = [
        ("I submitted it at 9am", "2026-01-14T09:00:00Z"),
        ("I submitted it AT 9AM", "2026-01-14T09:00:00Z"),
        ("at 9:30", "2026-01-14T09:30:00Z"),
        ("at 21:30", "2026-01-13T21:30:00Z"),
        ("done 9.15pm", "2026-01-13T21:15:00Z"),
        ("9.30am it went in", "2026-01-14T09:30:00Z"),
        ("tried at 9 pm", "2026-01-13T21:00:00Z"),
        ("tried 9 am", "2026-01-14T09:00:00Z"),
        ("tried @ 9am", "2026-01-14T09:00:00Z"),
        ("tried @9am", "2026-01-14T09:00:00Z"),
        ("tried at9am", "2026-01-14T09:00:00Z"),
        ("tried at 9 a.m. and failed", "2026-01-14T09:00:00Z"),
        ("around 11:05 it crashed", "2026-01-14T11:05:00Z"),
        ("at 10:15:30", "2026-01-14T10:15:30Z"),
        ("at 12:30am", "2026-01-14T00:30:00Z"),
        ("at 12pm", "2026-01-14T12:00:00Z"),
        ("at half 9", "2026-01-14T09:30:00Z"),
        // A correction: "no it was half 9".
        ("sorry no it was half 9", "2026-01-14T09:30:00Z"),
        ("at half past 9", "2026-01-14T09:30:00Z"),
        ("quarter to ten", "2026-01-14T09:45:00Z"),
        ("at ten past 9", "2026-01-14T09:10:00Z"),
        ("at 20 past 11", "2026-01-14T11:20:00Z"),
        ("at noon", "2026-01-14T12:00:00Z"),
        ("at 12 noon", "2026-01-14T12:00:00Z"),
        ("at midday", "2026-01-14T12:00:00Z"),
        ("at midnight", "2026-01-14T00:00:00Z"),
        ("at 9 o'clock", "2026-01-14T09:00:00Z"),
        ("at nine", "2026-01-14T09:00:00Z"),
        ("at 9ish", "2026-01-14T09:00:00Z"),
        ("at 9 in the evening", "2026-01-13T21:00:00Z"),
        ("at 11 at night", "2026-01-13T23:00:00Z"),
        ("at 09", "2026-01-14T09:00:00Z"),
        ("since 8am", "2026-01-14T08:00:00Z"),
    ];
    for (text, expected) in cases {
        check(text, WED_NOON, Some(expected));
    }
}

#[test]
fn span_and_text() {
    let text = "Hi, I submitted it at 9am but nothing 👍";
    let m = find_past_time(text, utc(WED_NOON), London).unwrap();
    assert_eq!(m.text, "at 9am");
    assert_eq!(&text[m.span.clone()], "at 9am");
    let text = "sent 3 hours ago";
    let m = find_past_time(text, utc(WED_NOON), London).unwrap();
    assert_eq!((m.span, m.text.as_str()), (5..16, "3 hours ago"));
}

#[test]
fn bare_clock_time_is_the_most_recent_past_one() {
    // 08:00: 9pm is yesterday's, and bare 9 is 21:00 yesterday (09:00 today is to come).
    check(
        "at 9pm",
        "2026-01-14T08:00:00Z",
        Some("2026-01-13T21:00:00Z"),
    );
    check("at 9", "2026-01-14T08:00:00Z", Some("2026-01-13T21:00:00Z"));
    check(
        "locked out since about 2",
        "2026-01-14T03:00:00Z",
        Some("2026-01-14T02:00:00Z"),
    );
    check("at 9", "2026-01-14T10:00:00Z", Some("2026-01-14T09:00:00Z"));
    check("at 9", "2026-01-14T22:00:00Z", Some("2026-01-14T21:00:00Z"));
    check("at 9", "2026-01-14T09:00:00Z", Some("2026-01-14T09:00:00Z"));
    check(
        "at 12",
        "2026-01-14T11:00:00Z",
        Some("2026-01-14T00:00:00Z"),
    );
    check(
        "at noon",
        "2026-01-14T11:00:00Z",
        Some("2026-01-13T12:00:00Z"),
    );
    check(
        "at 09",
        "2026-01-14T22:00:00Z",
        Some("2026-01-14T09:00:00Z"),
    );
    check(
        "at ten to 12",
        "2026-01-14T00:05:00Z",
        Some("2026-01-13T23:50:00Z"),
    );
    // A clock a few minutes ahead of ours: today's time, not 00:15; further ahead, the past one.
    check(
        "done it at 12.15",
        "2026-03-09T12:10:00Z",
        Some("2026-03-09T12:15:00Z"),
    );
    check("at 9", "2026-01-14T08:45:00Z", Some("2026-01-13T21:00:00Z"));
}

#[test]
fn a_stated_hour_beats_a_part_of_the_day() {
    // "tonight" alone is assumed to be 20:00-ish; the hour said later in the message wins.
    check(
        "done the reset 3 times tonight, last one was about 7",
        "2026-03-23T19:30:00Z",
        Some("2026-03-23T19:00:00Z"),
    );
}

#[test]
fn relative_times() {
    let cases = [
        ("3 hours ago", "2026-01-14T09:00:00Z"),
        ("about 20 minutes ago", "2026-01-14T11:40:00Z"),
        ("20 mins ago", "2026-01-14T11:40:00Z"),
        ("20mins ago", "2026-01-14T11:40:00Z"),
        ("an hour ago", "2026-01-14T11:00:00Z"),
        ("half an hour ago", "2026-01-14T11:30:00Z"),
        ("a few minutes ago", "2026-01-14T11:55:00Z"),
        ("a few hours ago", "2026-01-14T09:00:00Z"),
        ("minutes ago", "2026-01-14T11:55:00Z"),
        ("2 hrs ago", "2026-01-14T10:00:00Z"),
        ("1h ago", "2026-01-14T11:00:00Z"),
        ("2h30m ago", "2026-01-14T09:30:00Z"),
        ("1h20 ago", "2026-01-14T10:40:00Z"),
        ("1 hour and 15 mins ago", "2026-01-14T10:45:00Z"),
        ("an hour and a half ago", "2026-01-14T10:30:00Z"),
        ("2 and a half hours ago", "2026-01-14T09:30:00Z"),
        ("1.5 hours ago", "2026-01-14T10:30:00Z"),
        ("a couple of hours ago", "2026-01-14T10:00:00Z"),
        ("two hours ago", "2026-01-14T10:00:00Z"),
        ("twenty-five minutes ago", "2026-01-14T11:35:00Z"),
        ("a minute ago", "2026-01-14T11:59:00Z"),
        ("90s ago", "2026-01-14T11:58:30Z"),
        ("a day ago", "2026-01-13T12:00:00Z"),
        ("72 hours ago", "2026-01-11T12:00:00Z"),
        ("just now", WED_NOON),
        ("a moment ago", WED_NOON),
        ("Just Now", WED_NOON),
    ];
    for (text, expected) in cases {
        check(text, WED_NOON, Some(expected));
    }
}

#[test]
fn day_and_time() {
    let cases = [
        ("yesterday at 8pm", "2026-01-13T20:00:00Z"),
        ("yesterday 8pm", "2026-01-13T20:00:00Z"),
        ("Yesterday, at 8pm", "2026-01-13T20:00:00Z"),
        ("at 8pm yesterday", "2026-01-13T20:00:00Z"),
        ("yesterday at 8", "2026-01-13T08:00:00Z"),
        ("yesterday at 3", "2026-01-13T15:00:00Z"),
        ("yesterday I sent it at 5pm", "2026-01-13T17:00:00Z"),
        ("last night at 11", "2026-01-13T23:00:00Z"),
        ("at 11 last night", "2026-01-13T23:00:00Z"),
        (
            "last night at 11 trying to do my stat and mand",
            "2026-01-13T23:00:00Z",
        ),
        ("last night at 2", "2026-01-14T02:00:00Z"),
        ("last night at midnight", "2026-01-14T00:00:00Z"),
        ("this morning at 7", "2026-01-14T07:00:00Z"),
        ("at 7 this morning", "2026-01-14T07:00:00Z"),
        ("today at 10:15", "2026-01-14T10:15:00Z"),
        ("today at 9", "2026-01-14T09:00:00Z"),
        ("yesterday afternoon at 3", "2026-01-13T15:00:00Z"),
        ("yesterday evening at 8", "2026-01-13T20:00:00Z"),
        ("on Monday at 9am", "2026-01-12T09:00:00Z"),
        ("monday at 4", "2026-01-12T16:00:00Z"),
        ("Wednesday at 10am", "2026-01-14T10:00:00Z"),
        ("Wednesday at 3pm", "2026-01-07T15:00:00Z"),
        ("last Wednesday at 10", "2026-01-07T10:00:00Z"),
        ("the day before yesterday at 9am", "2026-01-12T09:00:00Z"),
        ("2 days ago at 9am", "2026-01-12T09:00:00Z"),
        ("at 9am on Monday", "2026-01-12T09:00:00Z"),
    ];
    for (text, expected) in cases {
        check(text, WED_NOON, Some(expected));
    }
    // A day time still to come is not a past time.
    check("today at 9pm", WED_NOON, None);
    check("this evening at 7", WED_NOON, None);
    check("tonight at 11", WED_NOON, None);
    // In the early hours, "tonight" is the night under way: "at 2 tonight" said at 03:00.
    check(
        "esr locked me out at 2 tonight",
        "2026-01-10T03:00:00Z",
        Some("2026-01-10T02:00:00Z"),
    );
    // "last night at 2" said at 00:30 is the night before.
    check(
        "last night at 2",
        "2026-01-14T00:30:00Z",
        Some("2026-01-13T02:00:00Z"),
    );
    // A different day in the gap takes over.
    check(
        "yesterday was slow and today at 9 it failed",
        WED_NOON,
        Some("2026-01-14T09:00:00Z"),
    );
}

#[test]
fn day_parts_alone() {
    check("this morning", WED_NOON, Some("2026-01-14T09:00:00Z"));
    check(
        "earlier this morning",
        WED_NOON,
        Some("2026-01-14T09:00:00Z"),
    );
    check(
        "this afternoon",
        "2026-01-14T16:00:00Z",
        Some("2026-01-14T14:00:00Z"),
    );
    check(
        "this evening",
        "2026-01-14T21:00:00Z",
        Some("2026-01-14T19:00:00Z"),
    );
    check(
        "tonight",
        "2026-01-14T21:00:00Z",
        Some("2026-01-14T19:00:00Z"),
    );
    check("last night", WED_NOON, Some("2026-01-13T22:00:00Z"));
    check(
        "last night",
        "2026-01-14T00:30:00Z",
        Some("2026-01-13T22:00:00Z"),
    );
    check("yesterday morning", WED_NOON, Some("2026-01-13T09:00:00Z"));
    check(
        "yesterday afternoon",
        WED_NOON,
        Some("2026-01-13T14:00:00Z"),
    );
    check("yesterday evening", WED_NOON, Some("2026-01-13T19:00:00Z"));
    check("monday morning", WED_NOON, Some("2026-01-12T09:00:00Z"));
    // Part begun but its usual hour still to come: clamped to now.
    check(
        "this morning",
        "2026-01-14T07:00:00Z",
        Some("2026-01-14T07:00:00Z"),
    );
    check(
        "this afternoon",
        "2026-01-14T13:00:00Z",
        Some("2026-01-14T13:00:00Z"),
    );
    check(
        "this evening",
        "2026-01-14T18:00:00Z",
        Some("2026-01-14T18:00:00Z"),
    );
    // Part not begun: future.
    check("this evening", "2026-01-14T15:00:00Z", None);
    check("tonight", "2026-01-14T15:00:00Z", None);
    // Too vague.
    check("yesterday", WED_NOON, None);
    check("I did it yesterday", WED_NOON, None);
    check("today", WED_NOON, None);
    check("on Monday", WED_NOON, None);
}

#[test]
fn case_and_spacing_do_not_matter() {
    let cases = [
        ("YESTERDAY AT 8PM", "2026-01-13T20:00:00Z"),
        ("Half Past Nine", "2026-01-14T09:30:00Z"),
        ("3 HOURS AGO", "2026-01-14T09:00:00Z"),
        ("This Morning", "2026-01-14T09:00:00Z"),
        ("Last Night At 11", "2026-01-13T23:00:00Z"),
        ("at  9   am", "2026-01-14T09:00:00Z"),
        ("at 9\u{a0}am", "2026-01-14T09:00:00Z"),
        ("yesterday\nat 8pm", "2026-01-13T20:00:00Z"),
        ("tonite", "2026-01-13T19:00:00Z"),
    ];
    for (text, expected) in cases {
        let now = if text == "tonite" {
            "2026-01-13T21:00:00Z"
        } else {
            WED_NOON
        };
        check(text, now, Some(expected));
    }
    // Unicode case folding lets "ſ" match "s"; it must be refused, not misread.
    check("at ſix", WED_NOON, None);
    check("ſunday at 9am", WED_NOON, Some("2026-01-14T09:00:00Z"));
}

#[test]
fn future_references_are_skipped() {
    check("tomorrow at 9am", WED_NOON, None);
    check("at 9am tomorrow", WED_NOON, None);
    check("next monday at 9", WED_NOON, None);
    check("tomorrow morning", WED_NOON, None);
    check("later today", WED_NOON, None);
    check(
        "tomorrow at 9am, but yesterday at 10am it failed",
        WED_NOON,
        Some("2026-01-13T10:00:00Z"),
    );
    check("in 3 hours", WED_NOON, None);
}

#[test]
fn nonsense_and_numbers_that_are_not_times() {
    let none = [
        "at 25:00",
        "at 24:00",
        "at 13pm",
        "at 0am",
        "at 9:75",
        "at 0",
        "99 hours ago",
        "73 hours ago",
        "a week ago",
        "2 weeks ago",
        "5 days ago",
        "I tried 3 times",
        "band 5",
        "ward 21",
        "2 attempts",
        "1 attempt left",
        "I'm 40",
        "I was at 3 attempts",
        "I looked at 9 of them",
        "we're at 40%",
        "at 2.5 hours",
        "it cost £9.30",
        "version 9.30 is out",
        "at 9.30.1",
        "2130",
        "at 2130",
        "call 0800 123 4567",
        "on 12/11 at 9am",
        "at 9am on the 12th",
        "on 3 March at 9am",
        "every day at 9",
        "last week at 9",
        "1.30 hours ago",
        "9 to 5",
        "scored 9 out of 10",
        "that 9 is wrong",
        "I have nine forms",
        "at one point",
        "about 9.",
        "the athalf 9",
    ];
    for text in none {
        check(text, WED_NOON, None);
    }
}

#[test]
fn context_decides_whether_a_number_is_a_time() {
    let found = [
        ("sent it yesterday around 4", "2026-01-13T16:00:00Z"),
        ("i requested an esr reset around 9", "2026-01-14T09:00:00Z"),
        ("locked out about 11", "2026-01-14T11:00:00Z"),
        ("this morning around 6", "2026-01-14T06:00:00Z"),
        ("half 9 this morning", "2026-01-14T09:30:00Z"),
        ("9.30 this morning", "2026-01-14T09:30:00Z"),
        ("around 9.30", "2026-01-14T09:30:00Z"),
        ("mon 9am", "2026-01-12T09:00:00Z"),
        ("fri at 5", "2026-01-09T17:00:00Z"),
        ("an hour or so ago", "2026-01-14T11:00:00Z"),
        ("at 3, then again at 4", "2026-01-14T03:00:00Z"),
        ("at 9 or so", "2026-01-14T09:00:00Z"),
        ("at 9 I think", "2026-01-14T09:00:00Z"),
        // The event a few filler words before "about" ("of", "esr"), or the event's own word.
        ("locked out of esr about 7", "2026-01-14T07:00:00Z"),
        ("did the forgot password about 11", "2026-01-14T11:00:00Z"),
        ("the last one was about 10", "2026-01-14T10:00:00Z"),
        ("submitted it, that was 10.30", "2026-01-14T10:30:00Z"),
        ("went at like 8 this morning", "2026-01-14T08:00:00Z"),
        ("at 3 attempts, then at 10:30", "2026-01-14T10:30:00Z"),
    ];
    for (text, expected) in found {
        check(text, WED_NOON, Some(expected));
    }
    let refused = [
        "sent it around 4",
        "9.30",
        "half 9",
        "10 to 9",
        "I need it by 5pm",
        "the deadline is 5pm",
        "open until 8pm",
        "my shift is 7am to 7pm",
        "my shift was 07:30 to 20:00 yesterday",
        "07:30-20:00",
        "need to get into esr before my shift at 7, just requested a reset",
        "my shift starts at 7",
        "at 9: 30",
        "at 9. 30",
        "5th Jan at 9am",
        "2026-01-12 09:00",
    ];
    for text in refused {
        check(text, WED_NOON, None);
    }
}

#[test]
fn british_summer_time() {
    // 2026-07-01T12:00Z is 13:00 BST.
    let now = "2026-07-01T12:00:00Z";
    check("at 9am", now, Some("2026-07-01T08:00:00Z"));
    check("at 1pm", now, Some("2026-07-01T12:00:00Z"));
    check("at 2pm", now, Some("2026-06-30T13:00:00Z"));
    check("yesterday at 8pm", now, Some("2026-06-30T19:00:00Z"));
    check("this morning", now, Some("2026-07-01T08:00:00Z"));
    // 00:30 BST on 2 July: "at 11pm" is 23:00 BST on 1 July.
    check(
        "at 11pm",
        "2026-07-01T23:30:00Z",
        Some("2026-07-01T22:00:00Z"),
    );
}

#[test]
fn spring_forward_gap() {
    // 2026-03-29 01:00 GMT → 02:00 BST: local 01:30 does not exist and moves forward by the
    // gap to 02:30 BST, which is 01:30 UTC.
    let naive = NaiveDate::from_ymd_opt(2026, 3, 29)
        .unwrap()
        .and_hms_opt(1, 30, 0)
        .unwrap();
    assert_eq!(
        resolve_local(London, naive),
        Some(utc("2026-03-29T01:30:00Z"))
    );
    let naive = NaiveDate::from_ymd_opt(2026, 3, 29)
        .unwrap()
        .and_hms_opt(1, 0, 0)
        .unwrap();
    assert_eq!(
        resolve_local(London, naive),
        Some(utc("2026-03-29T01:00:00Z"))
    );
    // 03:00 BST = 02:00Z.
    check(
        "at 1:30am",
        "2026-03-29T02:00:00Z",
        Some("2026-03-29T01:30:00Z"),
    );
    check(
        "at 1:30",
        "2026-03-29T02:00:00Z",
        Some("2026-03-29T01:30:00Z"),
    );
    // Just after the change (02:10 BST) the moved 01:30 is still to come: yesterday's.
    check(
        "at 1:30am",
        "2026-03-29T01:10:00Z",
        Some("2026-03-28T01:30:00Z"),
    );
    // Either side of the change.
    check(
        "at 12:30am",
        "2026-03-29T02:00:00Z",
        Some("2026-03-29T00:30:00Z"),
    );
    check(
        "at 2:30am",
        "2026-03-29T02:00:00Z",
        Some("2026-03-29T01:30:00Z"),
    );
    check(
        "at 9am",
        "2026-03-29T12:00:00Z",
        Some("2026-03-29T08:00:00Z"),
    );
    check(
        "yesterday at 8pm",
        "2026-03-29T12:00:00Z",
        Some("2026-03-28T20:00:00Z"),
    );
    // Elapsed time is absolute, not wall time.
    check(
        "3 hours ago",
        "2026-03-29T03:00:00Z",
        Some("2026-03-29T00:00:00Z"),
    );
}

#[test]
fn fall_back_repeat() {
    // 2026-10-25 02:00 BST → 01:00 GMT: local 01:30 happens at 00:30Z and 01:30Z.
    let naive = NaiveDate::from_ymd_opt(2026, 10, 25)
        .unwrap()
        .and_hms_opt(1, 30, 0)
        .unwrap();
    assert_eq!(
        resolve_local(London, naive),
        Some(utc("2026-10-25T00:30:00Z"))
    );
    // After both: the earlier one.
    check(
        "at 1:30am",
        "2026-10-25T01:45:00Z",
        Some("2026-10-25T00:30:00Z"),
    );
    // Between them (01:45 BST, first pass): the earlier one, which has happened.
    check(
        "at 1:30am",
        "2026-10-25T00:45:00Z",
        Some("2026-10-25T00:30:00Z"),
    );
    // Before both (01:15 BST): yesterday's 01:30 BST.
    check(
        "at 1:30am",
        "2026-10-25T00:15:00Z",
        Some("2026-10-24T00:30:00Z"),
    );
    check(
        "at 9am",
        "2026-10-25T12:00:00Z",
        Some("2026-10-25T09:00:00Z"),
    );
    check(
        "yesterday at 8pm",
        "2026-10-25T12:00:00Z",
        Some("2026-10-24T19:00:00Z"),
    );
}

#[test]
fn format_clock_days() {
    let now = utc("2025-11-24T12:00:00Z");
    let f = |t: &str| format_clock(utc(t), now, London);
    assert_eq!(f("2025-11-24T21:00:00Z"), "21:00");
    assert_eq!(f("2025-11-24T00:00:00Z"), "00:00");
    assert_eq!(f("2025-11-24T23:59:59Z"), "23:59");
    assert_eq!(f("2025-11-25T08:00:00Z"), "tomorrow at 08:00");
    assert_eq!(f("2025-11-23T20:00:00Z"), "yesterday at 20:00");
    assert_eq!(f("2025-11-26T08:00:00Z"), "Wednesday 26 Nov at 08:00");
    assert_eq!(f("2025-11-20T08:05:00Z"), "Thursday 20 Nov at 08:05");
    assert_eq!(f("2026-11-26T08:00:00Z"), "Thursday 26 Nov 2026 at 08:00");
}

#[test]
fn format_clock_across_clock_changes() {
    let f = |t: DateTime<Utc>, now: DateTime<Utc>| format_clock(t, now, London);
    // Summer: 20:00Z is 21:00 BST.
    let now = utc("2026-07-01T12:00:00Z");
    assert_eq!(f(utc("2026-07-01T20:00:00Z"), now), "21:00");
    // 00:30 BST on 2 July: 23:30 BST on 1 July is yesterday though the UTC date agrees.
    let now = utc("2026-07-01T23:30:00Z");
    assert_eq!(f(utc("2026-07-01T22:30:00Z"), now), "yesterday at 23:30");
    // Spring forward: 20:00 GMT Saturday + 12h is 09:00 BST Sunday.
    let now = utc("2026-03-28T20:00:00Z");
    assert_eq!(f(now + TimeDelta::hours(12), now), "tomorrow at 09:00");
    // Fall back: 21:00 BST Saturday + 12h is 08:00 GMT Sunday.
    let now = utc("2026-10-24T20:00:00Z");
    assert_eq!(f(now + TimeDelta::hours(12), now), "tomorrow at 08:00");
    // The repeated hour shows as wall time both times.
    let now = utc("2026-10-25T12:00:00Z");
    assert_eq!(f(utc("2026-10-25T00:30:00Z"), now), "01:30");
    assert_eq!(f(utc("2026-10-25T01:30:00Z"), now), "01:30");
}

#[test]
fn format_clock_extremes_do_not_panic() {
    let now = utc(WED_NOON);
    for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        assert!(format_clock(t, now, London).ends_with("UTC"));
        assert!(format_clock(now, t, London).ends_with("UTC"));
        assert_eq!(find_past_time("at 9am", t, London), None);
    }
}

#[test]
fn parse_duration_good() {
    let cases = [
        ("45m", 45 * 60),
        ("4h", 4 * 3600),
        ("2h30m", 2 * 3600 + 30 * 60),
        ("1d", 86_400),
        ("90s", 90),
        ("1d2h", 86_400 + 7200),
        ("1d2h3m4s", 86_400 + 7200 + 180 + 4),
        (" 15m ", 900),
        ("0m", 0),
        ("007m", 420),
    ];
    for (text, secs) in cases {
        assert_eq!(
            parse_duration(text),
            Ok(TimeDelta::seconds(secs)),
            "{text:?}"
        );
    }
}

#[test]
fn parse_duration_bad() {
    let cases = [
        ("", "no duration"),
        ("   ", "no duration"),
        ("45", "no unit"),
        ("h", "no number"),
        ("4x", "unknown unit"),
        ("4H", "unknown unit"),
        ("4 h", "no spaces"),
        ("2h 30m", "no spaces"),
        ("1h1h", "twice"),
        ("30m2h", "largest to smallest"),
        ("-4h", "unknown unit"),
        ("1.5h", "unknown unit"),
        ("٣h", "unknown unit"),
        ("99999999999999999999d", "too large"),
        ("9999999999999999h", "too large"),
        ("106751991167300d", "too large"),
        ("4h🙂", "unknown unit"),
    ];
    for (text, needle) in cases {
        let err = parse_duration(text).expect_err(text);
        assert!(err.contains(needle), "{text:?}: {err}");
        assert!(err.len() < 200, "short message");
    }
}

/// Every match must be a char-boundary span of the input and not in the future.
fn assert_sane(text: &str, now: DateTime<Utc>) {
    if let Some(m) = find_past_time(text, now, London) {
        assert!(text.is_char_boundary(m.span.start) && text.is_char_boundary(m.span.end));
        assert_eq!(text.get(m.span.clone()), Some(m.text.as_str()));
        assert!(m.at <= now, "{text:?} gave a future time");
    }
}

#[test]
fn bad_input_never_panics() {
    let now = utc(WED_NOON);
    let big_a = "a".repeat(100_000);
    let big_digits = "9".repeat(100_000);
    let big_emoji = "🙂".repeat(25_000);
    let big_mixed = "at 25:00 at 9 forms 👍 yesterday ".repeat(3_000);
    let big_then_time = format!("{}at 9am", "x ".repeat(50_000));
    let inputs = [
        "",
        " ",
        "\0",
        "\u{200b}at\u{200b}9\u{200b}am\u{200b}",
        "at 9\u{200d}am",
        "\u{feff}at 9am",
        "at 9\u{0}am \u{7}\u{1b}[31m",
        "\r\n\t at 9:30 \r\n",
        "وصلت الساعة at 9am شكرا",
        "‏at 9am‏ בסדר",
        "午前9時に送りました at 9am",
        "9時 ٩:٣٠ ९ बजे",
        "at ９am",
        "🙂at🙂9🙂am🙂",
        "e\u{301}9am",
        "at 9am\u{301}",
        "K at 9 Kelvin ſ",
        "@",
        "at",
        "ago",
        "9",
        ":",
        "at 99999999999999999999",
        "99999999999999999999 hours ago",
        "9.99999999999 hours ago",
        &big_a,
        &big_digits,
        &big_emoji,
        &big_mixed,
        &big_then_time,
    ];
    for text in inputs {
        assert_sane(text, now);
        assert_sane(text, utc("2026-03-29T01:30:00Z"));
        assert_sane(text, utc("2026-10-25T01:30:00Z"));
    }
    let m = find_past_time(&big_then_time, now, London).unwrap();
    assert_eq!(m.text, "at 9am");
}

#[test]
fn random_text_never_panics() {
    // A small xorshift generator keeps the test deterministic and dependency-free.
    let alphabet: Vec<char> =
        "0123456789 :.,@apmAPhdsago at yesterday night noon \u{200b}é🙂ٍ٣\t\n/-½"
            .chars()
            .collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let now = utc(WED_NOON);
    for _ in 0..3_000 {
        let mut text = String::new();
        for _ in 0..40 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        assert_sane(&text, now);
    }
    let words = [
        "at",
        "9",
        "9am",
        "yesterday",
        "last",
        "night",
        "ago",
        "hours",
        "3",
        "half",
        "past",
        "tomorrow",
        "this",
        "morning",
        "21:30",
        "on",
        "monday",
        "12/11",
        "🙂",
        "\u{200b}",
        "noon",
        "a",
        "few",
        "minutes",
        "just",
        "now",
        ",",
        ".",
        "25:00",
        "13pm",
    ];
    for _ in 0..3_000 {
        let mut text = String::new();
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push_str(words[(state % words.len() as u64) as usize]);
            text.push(' ');
        }
        assert_sane(&text, now);
    }
}

#[test]
fn other_zones() {
    let tz: Tz = "America/New_York".parse().unwrap();
    // 12:00Z is 07:00 EST.
    let m = find_past_time("at 6am", utc(WED_NOON), tz).unwrap();
    assert_eq!(m.at, utc("2026-01-14T11:00:00Z"));
    // Lord Howe has a 30-minute gap; any zone must work without panicking.
    let tz: Tz = "Australia/Lord_Howe".parse().unwrap();
    assert_sane("at 2:15am", utc("2026-10-04T00:00:00Z"));
    assert!(find_past_time("at 2:15am", utc("2026-10-04T00:00:00Z"), tz).is_some());
}

// ---------------------------------------------------------------------------------------------
// Long counts, day phrases, problems, assumptions and `format_when`.

/// The whole mention, problems included.
fn mention(text: &str, now: &str) -> Option<TimeMention> {
    find_past_time(text, utc(now), London)
}

/// The problem reported for `text`, checking that its time is the harmless `now`.
#[track_caller]
fn problem_in(text: &str, now: &str) -> Option<TimeProblem> {
    let m = mention(text, now)?;
    if m.problem.is_some() {
        assert_eq!(m.at, utc(now), "{text:?}: a problem's time is now");
        assert!(!m.assumed, "{text:?}");
    }
    m.problem
}

#[test]
fn counts_of_any_length_are_read_in_full() {
    let cases = [
        ("4320 minutes ago", "2026-01-11T12:00:00Z"),
        ("locked out 4320 minutes ago", "2026-01-11T12:00:00Z"),
        ("3600 seconds ago", "2026-01-14T11:00:00Z"),
        ("3600 secs ago", "2026-01-14T11:00:00Z"),
        ("10000 seconds ago", "2026-01-14T09:13:20Z"),
        ("1440 mins ago", "2026-01-13T12:00:00Z"),
        ("0120 minutes ago", "2026-01-14T10:00:00Z"),
        ("1 hour and 1800 seconds ago", "2026-01-14T10:30:00Z"),
    ];
    for (text, expected) in cases {
        check(text, WED_NOON, Some(expected));
        assert!(!mention(text, WED_NOON).unwrap().assumed, "{text:?}");
    }
    // Too far back: no time at all, and never "a few hours" from the words left over.
    for text in [
        "3000000000 hours ago",
        "I was locked out 3000000000 hours ago",
        "4321 minutes ago",
        "1000 hours ago",
        "99999999999999999999 minutes ago",
        "3000000000 seconds ago",
    ] {
        assert_eq!(mention(text, WED_NOON), None, "{text:?}");
    }
}

#[test]
fn day_phrases_are_never_dropped() {
    let cases = [
        ("locked out 8 days ago at 9", "2026-01-06T09:00:00Z"),
        ("8 days ago at 9pm", "2026-01-06T21:00:00Z"),
        ("at 9am 8 days ago", "2026-01-06T09:00:00Z"),
        ("10 days ago at 9am it locked", "2026-01-04T09:00:00Z"),
        ("8 days ago I tried at 9", "2026-01-06T09:00:00Z"),
        ("a week ago at 9am", "2026-01-07T09:00:00Z"),
        ("2 weeks ago at 3pm", "2025-12-31T15:00:00Z"),
        ("two weeks ago at 10", "2025-12-31T10:00:00Z"),
        ("eight days ago at 9", "2026-01-06T09:00:00Z"),
        // 6 October 2025 is in BST.
        ("100 days ago at 9", "2025-10-06T08:00:00Z"),
        ("locked out 2 days ago at 9pm", "2026-01-12T21:00:00Z"),
        ("locked out last tuesday at 8", "2026-01-13T08:00:00Z"),
        ("last Tuesday at 8pm", "2026-01-13T20:00:00Z"),
    ];
    for (text, expected) in cases {
        check(text, WED_NOON, Some(expected));
    }
    // Said on a Tuesday, "last tuesday" is a week back.
    check(
        "last tuesday at 8",
        "2026-01-13T12:00:00Z",
        Some("2026-01-06T08:00:00Z"),
    );
    // A day too far back for a date gives nothing, not the clock time today.
    for text in [
        "99999999999 days ago at 9",
        "4000000000 days ago at 9am",
        "locked out 9999999999 weeks ago at 9",
    ] {
        assert_eq!(mention(text, WED_NOON), None, "{text:?}");
    }
    // On their own, long ago days are still too vague or far.
    for text in ["8 days ago", "a week ago", "2 weeks ago"] {
        assert_eq!(mention(text, WED_NOON), None, "{text:?}");
    }
}

#[test]
fn impossible_times_are_reported() {
    let cases = [
        ("at 25:00", "at 25:00"),
        ("reset requested at 25:00", "at 25:00"),
        ("locked out at 13:75", "at 13:75"),
        ("at 9:75", "at 9:75"),
        ("at 24:00", "at 24:00"),
        ("at 23:60", "at 23:60"),
        ("at 10:15:75", "at 10:15:75"),
        ("at 13pm", "at 13pm"),
        ("13pm it locked", "13pm"),
        ("at 0am", "at 0am"),
        ("At 25:00 Yesterday", "At 25:00 Yesterday"),
        ("yesterday at 25:00", "yesterday at 25:00"),
        ("around 25:00", "around 25:00"),
    ];
    for (text, words) in cases {
        let m = mention(text, WED_NOON).unwrap_or_else(|| panic!("{text:?}"));
        assert_eq!(m.problem, Some(TimeProblem::Impossible), "{text:?}");
        assert_eq!((m.text.as_str(), m.at), (words, utc(WED_NOON)), "{text:?}");
        assert!(!m.assumed);
    }
    // A usable time later in the message wins.
    check(
        "tried at 25:00, no sorry at 11pm",
        WED_NOON,
        Some("2026-01-13T23:00:00Z"),
    );
    // Numbers that only might be times are still not times, nor problems.
    for text in [
        "the video was 25:00 long",
        "at 25",
        "at 9.75",
        "at 0",
        "by 25:00",
        "at 25:00-26:00",
        "on 12/11 at 25:00",
        "half past 25",
        "at 13 o'clock",
    ] {
        assert_eq!(mention(text, WED_NOON), None, "{text:?}");
    }
}

#[test]
fn future_times_are_reported() {
    let nine = "2026-01-14T09:00:00Z";
    let cases = [
        (
            "reset requested at 13:00 tomorrow",
            WED_NOON,
            "at 13:00 tomorrow",
        ),
        (
            "Reset requested at 1pm tomorrow.",
            WED_NOON,
            "at 1pm tomorrow",
        ),
        ("tomorrow at 9am", WED_NOON, "tomorrow at 9am"),
        ("next monday at 9", WED_NOON, "next monday at 9"),
        ("today at 11am", nine, "today at 11am"),
        ("reset requested today at 11am", nine, "today at 11am"),
        ("at 11am today", nine, "at 11am today"),
        ("at 11:00 today", nine, "at 11:00 today"),
        ("this morning at 11", nine, "this morning at 11"),
        ("today at 9pm", WED_NOON, "today at 9pm"),
        ("tonight at 11", WED_NOON, "tonight at 11"),
        ("this evening at 7", WED_NOON, "this evening at 7"),
    ];
    for (text, now, words) in cases {
        let m = mention(text, now).unwrap_or_else(|| panic!("{text:?}"));
        assert_eq!(m.problem, Some(TimeProblem::Future), "{text:?}");
        assert_eq!((m.text.as_str(), m.at), (words, utc(now)), "{text:?}");
        assert!(!m.assumed);
    }
    // A clock time with no day is the most recent past one, so never future.
    let m = mention("at 11am", nine).unwrap();
    assert_eq!((m.problem, m.at), (None, utc("2026-01-13T11:00:00Z")));
    // A usable past time wins wherever it is; otherwise the first problem is reported.
    let m = mention("tomorrow at 9am, but yesterday at 10am it failed", WED_NOON).unwrap();
    assert_eq!((m.problem, m.at), (None, utc("2026-01-13T10:00:00Z")));
    assert_eq!(
        problem_in("at 13:00 tomorrow, or was it at 25:00", WED_NOON),
        Some(TimeProblem::Future)
    );
    // Day parts still to come are plans, deadlines are not reports: no time and no problem.
    for (text, now) in [
        ("tomorrow morning", WED_NOON),
        ("tonight", "2026-01-14T15:00:00Z"),
        ("this evening", "2026-01-14T15:00:00Z"),
        ("later today", WED_NOON),
        ("tomorrow", WED_NOON),
        ("I need it by 5pm", WED_NOON),
        ("in 3 hours", WED_NOON),
    ] {
        assert_eq!(mention(text, now), None, "{text:?}");
    }
}

#[test]
fn nonsense_is_not_even_a_problem() {
    // The `nonsense_and_numbers_that_are_not_times` inputs that are not impossible times give
    // no mention at all.
    for text in [
        "99 hours ago",
        "73 hours ago",
        "a week ago",
        "I tried 3 times",
        "band 5",
        "I was at 3 attempts",
        "I looked at 9 of them",
        "we're at 40%",
        "at 2.5 hours",
        "it cost £9.30",
        "version 9.30 is out",
        "at 9.30.1",
        "2130",
        "at 2130",
        "call 0800 123 4567",
        "on 12/11 at 9am",
        "at 9am on the 12th",
        "on 3 March at 9am",
        "every day at 9",
        "last week at 9",
        "1.30 hours ago",
        "9 to 5",
        "my shift is 7am to 7pm",
        "the deadline is 5pm",
    ] {
        assert_eq!(mention(text, WED_NOON), None, "{text:?}");
    }
}

#[test]
fn assumed_hours_are_flagged() {
    let assumed = [
        ("this morning", WED_NOON, "2026-01-14T09:00:00Z"),
        (
            "I requested it earlier this morning",
            WED_NOON,
            "2026-01-14T09:00:00Z",
        ),
        (
            "this afternoon",
            "2026-01-14T16:00:00Z",
            "2026-01-14T14:00:00Z",
        ),
        ("last night", WED_NOON, "2026-01-13T22:00:00Z"),
        ("yesterday morning", WED_NOON, "2026-01-13T09:00:00Z"),
        ("monday morning", WED_NOON, "2026-01-12T09:00:00Z"),
        // Clamped to now, which is assumed too.
        (
            "this morning",
            "2026-01-14T07:00:00Z",
            "2026-01-14T07:00:00Z",
        ),
        ("a few hours ago", WED_NOON, "2026-01-14T09:00:00Z"),
        ("several minutes ago", WED_NOON, "2026-01-14T11:55:00Z"),
        ("minutes ago", WED_NOON, "2026-01-14T11:55:00Z"),
    ];
    for (text, now, at) in assumed {
        let m = mention(text, now).unwrap_or_else(|| panic!("{text:?}"));
        assert_eq!(
            (m.at, m.assumed, m.problem),
            (utc(at), true, None),
            "{text:?}"
        );
    }
    for text in [
        "this morning at 7",
        "at 7 this morning",
        "last night at 11",
        "at 9am",
        "3 hours ago",
        "a couple of hours ago",
        "an hour ago",
        "just now",
        "yesterday at 8",
    ] {
        let m = mention(text, WED_NOON).unwrap_or_else(|| panic!("{text:?}"));
        assert!(!m.assumed, "{text:?}");
        assert_eq!(m.problem, None, "{text:?}");
    }
}

#[test]
fn format_when_follows_a_verb() {
    let now = utc("2025-11-24T12:00:00Z");
    let f = |t: &str| format_when(utc(t), now, London);
    assert_eq!(f("2025-11-24T21:00:00Z"), "at 21:00");
    assert_eq!(f("2025-11-24T00:00:00Z"), "at 00:00");
    assert_eq!(f("2025-11-25T08:00:00Z"), "tomorrow at 08:00");
    assert_eq!(f("2025-11-23T23:00:00Z"), "yesterday at 23:00");
    assert_eq!(f("2025-11-26T08:00:00Z"), "on Wednesday 26 Nov at 08:00");
    assert_eq!(f("2025-11-20T08:05:00Z"), "on Thursday 20 Nov at 08:05");
    assert_eq!(
        f("2026-11-26T08:00:00Z"),
        "on Thursday 26 Nov 2026 at 08:00"
    );
    let march = utc("2026-03-05T12:00:00Z");
    assert_eq!(
        format_when(utc("2026-03-02T23:00:00Z"), march, London),
        "on Monday 2 Mar at 23:00"
    );
    // The sentence the reset reply builds.
    assert_eq!(
        format!("requested {}", f("2025-11-23T23:00:00Z")),
        "requested yesterday at 23:00"
    );
    assert_eq!(
        format!("requested {}", f("2025-11-24T09:30:00Z")),
        "requested at 09:30"
    );
    // Local days and clock times, as in `format_clock`.
    let summer = utc("2026-07-01T23:30:00Z");
    assert_eq!(
        format_when(utc("2026-07-01T22:30:00Z"), summer, London),
        "yesterday at 23:30"
    );
    assert_eq!(
        format_when(utc("2026-07-01T23:00:00Z"), summer, London),
        "at 00:00"
    );
    // `format_clock` is unchanged beside it.
    assert_eq!(
        format_clock(utc("2025-11-24T21:00:00Z"), now, London),
        "21:00"
    );
    assert_eq!(
        format_clock(utc("2025-11-26T08:00:00Z"), now, London),
        "Wednesday 26 Nov at 08:00"
    );
    for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        let s = format_when(t, now, London);
        assert!(s.starts_with("on ") && s.ends_with(" UTC"), "{s}");
        assert!(format_when(now, t, London).ends_with(" UTC"));
    }
}

#[test]
fn a_time_of_day_followed_by_more_words_is_kept() {
    // Said at 07:20: the words after the day part do not undo it.
    for text in [
        "locked out of esr at 7 this morning, first week on the bank porters",
        "locked out at 7 this morning",
    ] {
        check(text, "2026-02-24T07:20:00Z", Some("2026-02-24T07:00:00Z"));
    }
}

#[test]
fn minutes_past_an_unnamed_hour_and_counts_back() {
    // 15:25 GMT: "ten past" is 15:10; "quarter past" 15:15; "half past", still to come, 14:30.
    check(
        "did it at ten past",
        "2026-01-14T15:25:00Z",
        Some("2026-01-14T15:10:00Z"),
    );
    check(
        "sent the reset at quarter past, whens it run out",
        "2026-01-14T15:25:00Z",
        Some("2026-01-14T15:15:00Z"),
    );
    check(
        "locked at half past",
        "2026-01-14T15:25:00Z",
        Some("2026-01-14T14:30:00Z"),
    );
    // With its hour it is an ordinary clock time.
    check(
        "did it at ten past 9",
        "2026-01-14T15:25:00Z",
        Some("2026-01-14T09:10:00Z"),
    );
    // "an hour back" is an hour ago.
    check(
        "got the email about an hour back",
        "2026-01-14T15:25:00Z",
        Some("2026-01-14T14:25:00Z"),
    );
    check(
        "locked 2 days back",
        "2026-01-14T15:25:00Z",
        Some("2026-01-12T15:25:00Z"),
    );
}

#[test]
fn a_time_that_is_the_whole_message_is_a_time() {
    // 19:05 GMT: the answer to "when did you do it?".
    check(
        "about 6ish",
        "2026-01-14T19:05:00Z",
        Some("2026-01-14T18:00:00Z"),
    );
    check(
        "dinner time, like 12",
        "2026-01-14T19:05:00Z",
        Some("2026-01-14T12:00:00Z"),
    );
    check(
        "actually i think it was nearer 2",
        "2026-01-14T19:05:00Z",
        Some("2026-01-14T14:00:00Z"),
    );
    // With other words around it, a lone number is not a time, and a count is never one.
    check("like 3 times", "2026-01-14T19:05:00Z", None);
    check("about 6 of us share the pc", "2026-01-14T19:05:00Z", None);
}

#[test]
fn a_mealtime_with_no_hour_is_asked_about() {
    let problem = |text: &str| {
        find_past_time(text, utc("2026-07-21T18:05:00Z"), London).and_then(|m| m.problem)
    };
    assert_eq!(
        problem("did my esr reset after tea but then the baby needed a bath"),
        Some(TimeProblem::Vague)
    );
    assert_eq!(
        problem("locked out of esr. it happened at lunch"),
        Some(TimeProblem::Vague)
    );
    assert_eq!(problem("did esr reset at dinner"), Some(TimeProblem::Vague));
    // With an hour it is that hour; a meal that is not when it happened is nothing.
    check(
        "dinner time, like 12",
        "2026-07-21T18:05:00Z",
        Some("2026-07-21T11:00:00Z"),
    );
    check(
        "is the canteen open for lunch",
        "2026-07-21T18:05:00Z",
        None,
    );
}

#[test]
fn a_planned_mealtime_is_not_when_it_happened() {
    check(
        "just sent myself an esr reset link, gonna do it after lunch",
        "2026-07-21T18:05:00Z",
        None,
    );
}
