//! Keeps secrets out of the bot: finds a password or a date of birth that someone typed into the
//! chat so that it is cut out before anything else sees the message. The bot never stores, logs or
//! repeats message text, and this makes sure a secret is not even classified or echoed in a reply.

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

// "my password is Xyz123", "pw: hunter2", "new pass = ...", "password was Summer2024!"
static PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b(?:pass\s?words?|passwd|pwd?|pword|passcode)\b(?P<how>\s+(?:is|was|will be|should be|i (?:used|tried|typed|put|entered)|i'?m using)\b|\s*[:=])\s*(?P<quote>['"]?)(?P<secret>[^\s'"]{3,})"#,
    )
    .expect("password pattern")
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

// Words that make a date a birth date rather than, say, the day a link was sent.
static BIRTH_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:dob|d\.o\.b|date of birth|birth ?day|born|birth date)\b")
        .expect("birth pattern")
});

/// Cuts out passwords and birth dates. Any full date with a year counts as a birth date when the
/// message talks about birth, and a date with a year before 2010 counts anyway: nobody reports an
/// ESR reset from that long ago, while staff do paste their date of birth.
pub fn redact(text: &str) -> Redacted {
    let mut found = Vec::new();
    let mut out = text.to_string();
    let mut hidden_password = false;
    out = PASSWORD
        .replace_all(&out, |caps: &regex::Captures| {
            let whole = caps.get(0).map_or("", |m| m.as_str());
            let secret = caps.name("secret").map_or("", |m| m.as_str());
            let explicit = caps
                .name("how")
                .is_some_and(|m| m.as_str().contains([':', '=']))
                || caps.name("quote").is_some_and(|m| !m.as_str().is_empty());
            if explicit || looks_like_password(secret) {
                hidden_password = true;
                whole.replacen(secret, "[hidden]", 1)
            } else {
                whole.to_string()
            }
        })
        .into_owned();
    if hidden_password {
        found.push(Secret::Password);
    }
    let birth_words = BIRTH_CONTEXT.is_match(&out);
    let mut hit_date = false;
    out = DATE
        .replace_all(&out, |caps: &regex::Captures| {
            let m = caps.get(0).map_or("", |m| m.as_str());
            if birth_words || looks_old(m) {
                hit_date = true;
                "[hidden]".to_string()
            } else {
                m.to_string()
            }
        })
        .into_owned();
    if hit_date {
        found.push(Secret::DateOfBirth);
    }
    Redacted { text: out, found }
}

/// "is wrong", "was rejected": a plain lower-case word describes the password. ESR passwords need
/// mixed characters, so a word with a digit, a capital inside or a symbol is taken as the secret.
fn looks_like_password(word: &str) -> bool {
    let word = word.trim_end_matches(['.', ',', '!', '?']);
    word.chars()
        .any(|c| c.is_ascii_digit() || c.is_uppercase() || "!@#$%^&*()_+=[]{}<>~|\\/".contains(c))
        && (word.len() >= 4 || !word.chars().all(|c| c.is_ascii_digit()))
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
}
