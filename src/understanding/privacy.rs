//! Keeps secrets out of the bot: finds a password or a date of birth that someone typed into the
//! chat so that it is cut out before anything else sees the message. The bot never stores, logs or
//! repeats message text, and this makes sure a secret is not even classified or echoed in a reply.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// What kind of secret a message carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    Password,
    DateOfBirth,
}

/// The message with secrets replaced by a neutral word, and which kinds were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    pub found: Vec<Secret>,
}

/// Words for a password, in any case: "password", "pass word", "passwords", "passwd", "pwd",
/// "pw", "pword", "passcode", "passphrase", the German "Passwort", common misspellings, and
/// "pass" on its own, which is trusted less (see `Keyword::Pass`).
const PASSWORD_WORD: &str = r"(?:pass\s?words?|pass\s?worts?|passwd|passwrd|pasword|passowrd|pword|pwd?|pass\s?codes?|pass\s?phrases?|pass)";

/// Quote marks that may wrap a secret, and characters a secret cannot contain.
const SECRET: &str = r#"(?P<quote>['"‘“]?)(?P<secret>[^\s'"‘’“”]{3,})"#;

// "my password is Xyz123", "pw: hunter2", "new pass = ...", "password was Summer2024!",
// "password Summer2024!!", "passwort: ...", "password's ...", "password - ...".
static PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"(?ix)\b(?P<kw>{PASSWORD_WORD})\b
        (?P<how>
            \s*[:=]
          | \s*['’]s\b\s*[:=\-]?
          | \s+(?:is|was|will\s+be|should\s+be|ist|war|lautet
               |i\s+(?:used|tried|typed|put\s+in|put|entered)(?:\s+(?:is|was))?
               |i'?m\s+using|i\s+am\s+using
               |(?:in\s+)?(?:which|that)\s+(?:is|was))\b\s*[:=\-]?
          | \s*[-–—]
          | \s+
        )
        \s*{SECRET}"
    );
    Regex::new(&pattern).expect("password pattern")
});

// "Summer2024!! is my password", "'Bluebell22' was the old password".
static PASSWORD_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r#"(?ix)(?:^|\s){SECRET}['"’”]?,?\s+(?:is|was|=|ist|war)\s+(?:my|the|our|mein|meine|das)\s+
        (?:(?:new|old|current|temporary|temp|esr|nhs|actual|real)\s+){{0,2}}{PASSWORD_WORD}\b"#
    );
    Regex::new(&pattern).expect("password-first pattern")
});

// "i typed Password1", "I entered 'Bluebell22'", "tried Summer2024!! again", "put in Xyz123".
static TYPED: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"(?ix)\b(?:typed|typing|entered|entering|tried|trying|put(?:ting)?\s+in|input(?:ted|ting)?)
        (?:\s+in)?\s*[:=\-]?\s*{SECRET}"
    );
    Regex::new(&pattern).expect("typed pattern")
});

// Dates that look like a birth date: 12/03/1985, 1-2-85, 12.03.1985, "3rd march 1985", "march 3 1985".
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        \b(?:
            \d{1,2}\s*[/.\-]\s*\d{1,2}\s*[/.\-]\s*(?:19|20)?\d{2}
          | \d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+(?:19|20)\d{2}
          | (?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2}
          | (?:19|20)\d{2}\s*-\s*\d{1,2}\s*-\s*\d{1,2}
        )\b",
    )
    .expect("date pattern")
});

// Dates without separators or with spaces, only read as one in a message about birth:
// "DOB 12031985", "dob 120385", "dob 19850312", "born 12 03 1985".
static BARE_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)\b(?:
            [0-9]{8}
          | [0-9]{6}
          | [0-9]{1,2}\ +[0-9]{1,2}\ +(?:19|20)?[0-9]{2}
          | (?:19|20)[0-9]{2}\ +[0-9]{1,2}\ +[0-9]{1,2}
        )\b",
    )
    .expect("bare date pattern")
});

// Words that make a date a birth date rather than, say, the day a link was sent.
static BIRTH_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:dob|d\.o\.b|date\s+of\s+birth|birth\s?days?|born|birth\s?date|geburtsdatum|geboren)\b",
    )
    .expect("birth pattern")
});

const HIDDEN: &str = "[hidden]";

/// How sure the words before a candidate secret make us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    /// "password: X", "password 'X'": anything there is the secret.
    Explicit,
    /// "password is X": any word with a digit, capital or symbol.
    Stated,
    /// "password X", "X is my password", "i typed X", or the bare word "pass": only a token
    /// that could not be anything but a password (see `strong_password`).
    Weak,
}

/// Cuts out passwords and birth dates. Any full date with a year counts as a birth date when the
/// message talks about birth, and a date with a year before 2010 counts anyway: nobody reports an
/// ESR reset from that long ago, while staff do paste their date of birth. A date written without
/// separators ("12031985") or with spaces only counts in a message about birth.
///
/// A password is taken from after a password word ("pw: …", "my pass is …", "password …",
/// "passwort: …"), before one ("… is my password") or after "typed", "entered", "tried" or
/// "put in". The less the words say, the more the token itself must look like a password, so
/// "password reset not working" and "I typed my password wrong" are left alone.
pub fn redact(text: &str) -> Redacted {
    let mut found = Vec::new();
    let passwords = password_spans(text);
    if !passwords.is_empty() {
        found.push(Secret::Password);
    }
    let mut out = hide(text, passwords);
    let birth_words = BIRTH_CONTEXT.is_match(&out);
    let mut hit_date = false;
    out = DATE
        .replace_all(&out, |caps: &regex::Captures| {
            let m = caps.get(0).map_or("", |m| m.as_str());
            if birth_words || looks_old(m) {
                hit_date = true;
                HIDDEN.to_string()
            } else {
                m.to_string()
            }
        })
        .into_owned();
    if birth_words {
        out = BARE_DATE
            .replace_all(&out, |caps: &regex::Captures| {
                let m = caps.get(0).map_or("", |m| m.as_str());
                if plausible_date(m) {
                    hit_date = true;
                    HIDDEN.to_string()
                } else {
                    m.to_string()
                }
            })
            .into_owned();
    }
    if hit_date {
        found.push(Secret::DateOfBirth);
    }
    Redacted { text: out, found }
}

/// Byte ranges of the passwords in `text`, possibly overlapping.
fn password_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    for caps in PASSWORD.captures_iter(text) {
        let how = caps.name("how").map_or("", |m| m.as_str());
        let bare_pass = caps
            .name("kw")
            .is_some_and(|k| k.as_str().eq_ignore_ascii_case("pass"));
        let quoted = caps.name("quote").is_some_and(|m| !m.as_str().is_empty());
        let evidence = if how.contains([':', '=']) || quoted {
            Evidence::Explicit
        } else if how.trim().is_empty() || how.trim().starts_with(['-', '–', '—']) {
            Evidence::Weak
        } else {
            Evidence::Stated
        };
        // "pass" is also an ordinary word ("bus pass", "pass the test"): it needs a verb or a
        // colon, and then a real-looking password.
        let evidence = match (bare_pass, evidence) {
            (true, Evidence::Weak) => continue,
            (true, _) if !quoted => Evidence::Weak,
            (_, e) => e,
        };
        push_if_secret(&mut spans, &caps, evidence);
    }
    for re in [&*PASSWORD_FIRST, &*TYPED] {
        for caps in re.captures_iter(text) {
            let quoted = caps.name("quote").is_some_and(|m| !m.as_str().is_empty());
            let evidence = if quoted {
                Evidence::Stated
            } else {
                Evidence::Weak
            };
            push_if_secret(&mut spans, &caps, evidence);
        }
    }
    spans
}

fn push_if_secret(spans: &mut Vec<Range<usize>>, caps: &regex::Captures, evidence: Evidence) {
    let Some(secret) = caps.name("secret") else {
        return;
    };
    let word = secret.as_str();
    let is_secret = word != HIDDEN
        && match evidence {
            Evidence::Explicit => !plain_english(word),
            Evidence::Stated => looks_like_password(word),
            Evidence::Weak => strong_password(word),
        };
    if is_secret {
        spans.push(secret.range());
    }
}

/// A lower-case function word that starts a sentence rather than being a password: "new
/// password: how many numbers does it want", "Confirm Password: they must match".
fn plain_english(word: &str) -> bool {
    const WORDS: &[&str] = &[
        "how",
        "what",
        "why",
        "when",
        "where",
        "which",
        "who",
        "they",
        "them",
        "their",
        "the",
        "this",
        "that",
        "these",
        "those",
        "its",
        "it's",
        "is",
        "are",
        "was",
        "were",
        "not",
        "isn't",
        "doesn't",
        "doesnt",
        "does",
        "did",
        "didn't",
        "can",
        "can't",
        "cant",
        "will",
        "won't",
        "wont",
        "has",
        "have",
        "any",
        "same",
        "must",
        "should",
        "you",
        "your",
        "our",
        "and",
        "but",
        "for",
        "with",
        "help",
        "please",
        "reset",
        "expired",
        "wrong",
        "forgot",
        "forgotten",
        "invalid",
        "incorrect",
        "rejected",
        "locked",
        "none",
    ];
    let word = word.trim_end_matches(['.', ',', '!', '?', ';', ':']);
    WORDS.contains(&word.replace('’', "'").as_str())
}

/// `text` with each range (merged where they overlap) replaced by [`HIDDEN`].
fn hide(text: &str, mut spans: Vec<Range<usize>>) -> String {
    spans.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for span in spans {
        if span.start < done {
            done = done.max(span.end);
            continue;
        }
        out.push_str(&text[done..span.start]);
        out.push_str(HIDDEN);
        done = span.end;
    }
    out.push_str(&text[done..]);
    out
}

/// "is wrong", "was rejected": a plain lower-case word describes the password. ESR passwords need
/// mixed characters, so a word with a digit, a capital inside or a symbol is taken as the secret.
fn looks_like_password(word: &str) -> bool {
    let word = word.trim_end_matches(['.', ',', '!', '?']);
    word.chars()
        .any(|c| c.is_ascii_digit() || c.is_uppercase() || "!@#$%^&*()_+=[]{}<>~|\\/".contains(c))
        && (word.len() >= 4 || !word.chars().all(|c| c.is_ascii_digit()))
}

/// A token that is a password whatever the words around it: at least six characters with
/// letters and digits ("Password1", "Bluebell22", "Summer2024!!"), or letters of both cases and
/// a symbol ("Tr&ub!dor"), and not an e-mail address, a link, a reference ("ESC-00012"), a
/// time ("10:30am") or a count ("3times", "12th").
fn strong_password(word: &str) -> bool {
    static NOT_A_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?ix)^(?:
                [^@\s]+@[^@\s]+\.[^@\s]+
              | (?:https?://|www\.).*
              | [a-z]{2,6}-[0-9]+
              | [0-9]{1,2}(?:[:.][0-9]{2})?\s*[ap]\.?m\.?
              | (?-i:[0-9]+[a-z]*)
            )$",
        )
        .expect("not-a-password pattern")
    });
    let word = word.trim_end_matches(['.', ',', '!', '?', ';', ':', ')']);
    if word.chars().count() < 6 || NOT_A_PASSWORD.is_match(word) {
        return false;
    }
    let letters = word.chars().any(char::is_alphabetic);
    let digits = word.chars().any(|c| c.is_ascii_digit());
    let mixed_case = word.chars().any(char::is_uppercase) && word.chars().any(char::is_lowercase);
    let symbol = word.chars().any(|c| "!@#$%^&*?~+=_£€".contains(c));
    letters && (digits || (mixed_case && symbol))
}

/// A separator-free or space-separated date that can be real: day and month in range, in
/// either order of day-month-year or year-month-day, with a year 1900–2099 or two digits.
fn plausible_date(date: &str) -> bool {
    let parts: Vec<&str> = date.split_whitespace().collect();
    let (a, b, c) = match parts.as_slice() {
        [a, b, c] => (*a, *b, *c),
        [d] if d.len() == 8 => (&d[..2], &d[2..4], &d[4..]),
        [d] if d.len() == 6 => (&d[..2], &d[2..4], &d[4..]),
        _ => return false,
    };
    let day_month = |d: &str, m: &str| matches!((d.parse::<u32>(), m.parse::<u32>()), (Ok(d), Ok(m)) if (1..=31).contains(&d) && (1..=12).contains(&m));
    let year = |y: &str| y.len() == 2 || y.parse::<u32>().is_ok_and(|y| (1900..=2099).contains(&y));
    let compact_iso = parts.len() == 1
        && date.len() == 8
        && year(&date[..4])
        && day_month(&date[6..], &date[4..6]);
    let iso = parts.len() == 3 && a.len() == 4 && year(a) && day_month(c, b);
    (day_month(a, b) && year(c)) || compact_iso || iso
}

/// A date whose year is before 2010 (two-digit years 30–99 count as 19xx).
fn looks_old(date: &str) -> bool {
    let digits: Vec<&str> = date
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    let year = if date.trim_start().starts_with(|c: char| c.is_ascii_digit())
        && digits.first().is_some_and(|d| d.len() == 4)
    {
        digits.first()
    } else {
        digits.last()
    };
    match year.and_then(|y| y.parse::<u32>().ok()) {
        Some(y) if y >= 1000 => y < 2010,
        Some(y) => y >= 30,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_cut_out() {
        let r = redact("my password is Hunter2! and it wont work");
        assert_eq!(r.found, vec![Secret::Password]);
        assert!(!r.text.contains("Hunter2"), "{}", r.text);
        let r = redact("pw: Summer2024");
        assert!(!r.text.contains("Summer2024"));
        let r = redact("i forgot my password");
        assert!(r.found.is_empty());
        for ok in [
            "my password isn't working",
            "my password is wrong",
            "password was rejected",
        ] {
            assert!(redact(ok).found.is_empty(), "{ok}");
        }
        let r = redact("my new password is 'abcdefgh' ok?");
        assert!(!r.text.contains("abcdefgh"), "{}", r.text);
    }

    #[test]
    fn birth_dates_are_cut_out() {
        for m in [
            "my dob is 12/03/1985",
            "born 3rd March 1985",
            "it asks for 01-02-79 right?",
        ] {
            let r = redact(m);
            assert_eq!(r.found, vec![Secret::DateOfBirth], "{m}");
            assert!(
                !r.text.contains("85") && !r.text.contains("79"),
                "{}",
                r.text
            );
        }
        // A recent date that is not about birth is ordinary content.
        assert!(redact("I requested it on 24/11/2026").found.is_empty());
    }

    /// `message` loses `secret`, keeps `kept`, and reports `kind`.
    #[track_caller]
    fn hides(message: &str, secret: &str, kind: Secret, kept: &str) {
        let r = redact(message);
        assert!(!r.text.contains(secret), "{message:?} -> {:?}", r.text);
        assert!(r.text.contains(HIDDEN), "{message:?} -> {:?}", r.text);
        assert!(r.text.contains(kept), "{message:?} -> {:?}", r.text);
        assert!(r.found.contains(&kind), "{message:?} -> {:?}", r.found);
    }

    #[test]
    fn passwords_named_other_ways_are_cut_out() {
        let cases = [
            ("my pass is Summer2024!!", "Summer2024", "my pass is"),
            (
                "I have typed my password in which is Bluebell2019, exactly as always",
                "Bluebell2019",
                "exactly as always",
            ),
            ("MY PASS IS Summer2024!!", "Summer2024", "MY PASS IS"),
            ("my pass was Winter1999?", "Winter1999", "my pass was"),
            ("pass: Summer2024!!", "Summer2024", "pass:"),
            ("password Summer2024!!", "Summer2024", "password"),
            (
                "Password   Summer2024!! doesnt work",
                "Summer2024",
                "doesnt work",
            ),
            ("password - Summer2024!!", "Summer2024", "password -"),
            (
                "my password is: Summer2024!!",
                "Summer2024",
                "my password is:",
            ),
            ("password's Summer2024!!", "Summer2024", "password's"),
            (
                "Summer2024!! is my password",
                "Summer2024",
                "is my password",
            ),
            (
                "i think Summer2024!! is my new password",
                "Summer2024",
                "i think",
            ),
            (
                "\"Summer2024!!\" is my password",
                "Summer2024",
                "is my password",
            ),
            (
                "Bluebell22 was the old password",
                "Bluebell22",
                "was the old",
            ),
            ("passwort: Summer2024!!", "Summer2024", "passwort:"),
            ("Passwort ist Summer2024!!", "Summer2024", "Passwort ist"),
            ("mein PASSWORT:Summer2024!!", "Summer2024", "mein"),
            ("pw: Tr0ub4dor&3", "Tr0ub4dor", "pw:"),
            ("PW:Tr0ub4dor&3", "Tr0ub4dor", "PW:"),
            ("pw = Tr0ub4dor&3", "Tr0ub4dor", "pw ="),
            ("pw - Tr0ub4dor&3 ok", "Tr0ub4dor", " ok"),
            ("pwd: Xyz!2abc", "Xyz!2abc", "pwd:"),
            (
                "my password is Bluebell22 and it says invalid",
                "Bluebell22",
                "and it says invalid",
            ),
            (
                "My Password Is Bluebell22, it says invalid",
                "Bluebell22",
                "it says invalid",
            ),
        ];
        for (message, secret, kept) in cases {
            hides(message, secret, Secret::Password, kept);
        }
        // The placeholder replaces the secret itself, never a word before it that contains it.
        assert_eq!(redact("password: pass").text, "password: [hidden]");
        assert_eq!(redact("pw: pw12345").text, "pw: [hidden]");
    }

    #[test]
    fn typed_passwords_are_cut_out() {
        let cases = [
            ("it keeps saying invalid, i typed Password1", "Password1"),
            ("I TYPED Password1", "Password1"),
            ("i typed in Password1 and nothing", "Password1"),
            ("i entered Summer2024!! twice", "Summer2024"),
            ("entered: Tr0ub4dor&3", "Tr0ub4dor"),
            ("tried Hospital9! twice and now it says locked", "Hospital9"),
            ("I tried 'Bluebell22' again", "Bluebell22"),
            ("I put in Bluebell22", "Bluebell22"),
            ("keep typing Password1 but no", "Password1"),
        ];
        for (message, secret) in cases {
            hides(message, secret, Secret::Password, "");
        }
    }

    #[test]
    fn birth_dates_in_other_forms_are_cut_out() {
        let cases = [
            ("DOB 12031985", "12031985"),
            ("dob 12031985 please", "12031985"),
            ("D.O.B. 12031985", "12031985"),
            ("my dob is 19850312", "19850312"),
            ("date of birth 120385", "120385"),
            ("dob: 12 03 1985", "1985"),
            ("dob: 12/03/1985", "1985"),
            ("DOB:12-03-1985", "1985"),
            ("born 12.03.1985", "1985"),
            ("Born 12 . 03 . 1985", "1985"),
            ("date of birth is 3rd March 1985", "1985"),
            ("Date Of Birth is March 3rd, 1985", "1985"),
            ("it wants my D.O.B 12031985 but says no match", "12031985"),
        ];
        for (message, secret) in cases {
            hides(message, secret, Secret::DateOfBirth, "");
        }
        let r = redact("DOB 12031985 and password Summer2024!!");
        assert_eq!(r.text, "DOB [hidden] and password [hidden]");
        assert_eq!(r.found, vec![Secret::Password, Secret::DateOfBirth]);
    }

    #[test]
    fn ordinary_messages_are_not_secrets() {
        for message in [
            "I forgot my password",
            "password reset not working",
            "Password Reset not working",
            "my password has expired",
            "I typed my password wrong 3 times",
            "the link expires at 13:00",
            "I was locked out at 9am on 12/03",
            "my nhs.net email is tom.b@nhs.net",
            "reference ESC-00012",
            "new password: how many numbers does it want",
            "Confirm Password: they must match",
            "this is my password problem",
            "bus pass is 1234",
            "I couldn't pass Level2 training",
            "I tried 3 times",
            "I tried again at 10:30am",
            "i typed tom.b@nhs.net",
            "I entered ESC-00012 as the reference",
            "I tried 3times",
            "my employee number is 12031985",
            "password expired on 12/03/2026",
            "i put in my username",
            "it said my password was invalid",
        ] {
            let r = redact(message);
            assert!(r.found.is_empty(), "{message:?} -> {:?}", r.text);
            assert_eq!(r.text, message);
        }
    }
}
