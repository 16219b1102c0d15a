//! What a person volunteers about themselves for a hand-over: the address they had before an
//! e-mail change, and a staff or assignment number. Only values are taken, so the record of a
//! hand-over never carries the words they came in. Pure; the message has already had its
//! secrets cut out (`privacy`), and a bare eight-digit number is read as a date of birth only next
//! to words like "DOB", so a number named as an assignment number stays.

use std::sync::LazyLock;

use regex::Regex;

use crate::core::records::{NumberKind, StaffNumber, Volunteered};
use crate::understanding::text::emails;

/// An address-like word (as `text::emails` splits them), in a group of each alternative's own
/// (a pattern's group names must differ).
fn address(group: &str) -> String {
    format!(r#"(?P<{group}>[^\s<>,;()\[\]"]+@[^\s<>,;()\[\]"]+)"#)
}

/// "my old address was a@nhs.net", "previous email: a@nhs.net", "it used to be a@nhs.net",
/// "changed from a@nhs.net to b@nhs.net", "a@nhs.net was my old one".
static OLD_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    let before = r"(?:old|previous|former|prior|original|last)\s+(?:(?:nhs\.?net|nhs|nhsmail|work|e-?mail|address|one|account)\b\s*){0,3}(?:(?:was|is)\b\s*)?[:=\-]?\s*";
    let (a1, a2, a3, a4) = (address("a1"), address("a2"), address("a3"), address("a4"));
    let pattern = format!(
        r"(?ix)
        \b{before}{a1}
      | \b(?:used\s+to\s+be|was\s+previously|previously\s+was)\s*[:\-]?\s*{a2}
      | \bfrom\s+{a3}\s+to\b
      | (?:^|\s){a4}\s+(?:is|was)\s+(?:my\s+|the\s+)?(?:old|previous|former)\b"
    );
    Regex::new(&pattern).expect("old address pattern")
});

/// "assignment number 12345678-2", "my staff no. is 123456", "assignment: 12345678".
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        \b(?:
            (?P<assignment>assignment|assignmnet|asignment|assigment)\s*(?:number|no\.?|num|nr|\#)?
          | (?P<staff>staff|employee|payroll|esr|person)\s*(?:number|no\.?|num|nr|\#|id)
        )
        \s*(?:is|was|=|:|-)?\s*(?:is\s+)?
        (?P<value>[0-9]{5,10}(?:-[0-9]{1,2})?)\b",
    )
    .expect("staff number pattern")
});

/// The details `text` offers.
pub fn volunteered(text: &str) -> Volunteered {
    // Most messages have neither an address nor five digits: two cheap looks spare the patterns.
    if !text.contains('@') && text.bytes().filter(u8::is_ascii_digit).count() < 5 {
        return Volunteered::default();
    }
    let old_address = OLD_ADDRESS.captures_iter(text).find_map(|c| {
        let raw = ["a1", "a2", "a3", "a4"]
            .iter()
            .find_map(|g| c.name(g))?
            .as_str();
        // Trimmed the way every other address is read.
        emails(raw).next().map(str::to_ascii_lowercase)
    });
    let number = NUMBER.captures(text).and_then(|c| {
        let kind = if c.name("assignment").is_some() {
            NumberKind::Assignment
        } else {
            NumberKind::Staff
        };
        Some(StaffNumber {
            kind,
            value: c.name("value")?.as_str().to_string(),
        })
    });
    Volunteered {
        old_address,
        number,
    }
}

/// The address in `text` that is not the old one it names: the new address of an e-mail change
/// ("changed from a@nhs.net to b@nhs.net" gives b@nhs.net).
pub fn new_address(text: &str) -> Option<&str> {
    let old = volunteered(text).old_address;
    emails(text).find(|a| old.as_deref() != Some(a.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(text: &str) -> Option<String> {
        volunteered(text).old_address
    }

    fn number(text: &str) -> Option<(NumberKind, String)> {
        volunteered(text).number.map(|n| (n.kind, n.value))
    }

    #[test]
    fn an_old_address_is_read_however_it_is_put() {
        for (text, address) in [
            ("my old email was Jane.Smith@nhs.net", "jane.smith@nhs.net"),
            ("previous address: j.smith1@nhs.net.", "j.smith1@nhs.net"),
            ("old nhs.net address is js@nhs.net", "js@nhs.net"),
            ("it used to be jane.s@nhs.net", "jane.s@nhs.net"),
            (
                "my email changed from jane.smith@nhs.net to jane.jones@nhs.net",
                "jane.smith@nhs.net",
            ),
            ("jane.smith@nhs.net was my old one", "jane.smith@nhs.net"),
            ("the old one - tom.b@nhs.net", "tom.b@nhs.net"),
        ] {
            assert_eq!(old(text).as_deref(), Some(address), "{text}");
        }
        for text in [
            "my new email is jane.jones@nhs.net",
            "its jane.bloggs2@nhs.net",
            "my email address has changed",
            "send it to my old address please",
        ] {
            assert_eq!(old(text), None, "{text}");
        }
    }

    #[test]
    fn the_new_address_is_the_one_that_is_not_old() {
        assert_eq!(
            new_address("changed from jane.smith@nhs.net to jane.jones@nhs.net"),
            Some("jane.jones@nhs.net")
        );
        assert_eq!(
            new_address("new one is tom.b@nhs.net, old one was tb@nhs.net"),
            Some("tom.b@nhs.net")
        );
        assert_eq!(
            new_address("its jane.bloggs2@nhs.net"),
            Some("jane.bloggs2@nhs.net")
        );
        assert_eq!(new_address("my old address was a@nhs.net"), None);
    }

    #[test]
    fn staff_and_assignment_numbers_are_read_with_their_kind() {
        use NumberKind::*;
        for (text, kind, value) in [
            ("my assignment number is 12345678", Assignment, "12345678"),
            ("assignment no. 12345678-2", Assignment, "12345678-2"),
            ("Assignment: 20345678", Assignment, "20345678"),
            ("staff number 123456", Staff, "123456"),
            ("my employee no is 7654321", Staff, "7654321"),
            ("esr number: 30123456", Staff, "30123456"),
        ] {
            assert_eq!(number(text), Some((kind, value.to_string())), "{text}");
        }
        for text in [
            "my number is 07700 900123",
            "i tried 3 times",
            "ward 12345",
            "staff 123456",
            "my assignment number is on my payslip",
        ] {
            assert_eq!(number(text), None, "{text}");
        }
    }

    #[test]
    fn nothing_is_taken_from_an_ordinary_message() {
        for text in [
            "locked out of esr",
            "can i speak to someone",
            "my nhs.net email address has changed",
        ] {
            assert!(volunteered(text).is_empty(), "{text}");
        }
    }
}
