//! Text hygiene shared by every part that reads what staff type: cleaning hostile input (control and
//! zero-width characters, huge messages), the normal form that patterns and the classifier see, and
//! e-mail address checks, and the safe form in which text someone typed is shown back (on a
//! terminal or in Discord). Pure functions; nothing here allocates much more than the input's size.

/// Longest message the bot reads, in characters. Longer ones get a clear answer instead.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// Removes control, zero-width and bidi-override characters (they hide text and break patterns),
/// turns line breaks and tabs into spaces and trims the result.
pub fn clean_input(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' => {}
            '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}' => {}
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

/// What [`for_display`] does with a line break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaks {
    /// Keep `\n`: the text is a message that legitimately has lines (a reply in the terminal or
    /// in a Discord message).
    Keep,
    /// Show `\n` like any other control character: the text is one field on one line (a name, a
    /// note, an address), where a line break could forge a line of its own ("status: resolved").
    Show,
}

/// Text that a person or an administrator typed, made safe to show on a terminal or in Discord.
///
/// Every C0 and C1 control character (so every ANSI/ESC sequence, which starts with ESC or the C1
/// CSI), DEL, and every character that reorders or hides text (the bidi embeddings and overrides
/// U+202A–U+202E, the isolates U+2066–U+2069, the marks U+200E, U+200F and U+061C, the line and
/// paragraph separators U+2028/U+2029, the zero-width space U+200B, word joiner U+2060 and BOM
/// U+FEFF) is replaced by its visible `\u{…}` notation, e.g. `\x1b[2J` becomes `\u{1b}[2J`: the
/// sequence can no longer act, and whoever reads it sees that something odd was typed. A tab
/// becomes a space; `\n` is kept or shown as `breaks` says. The zero-width joiner U+200D is kept,
/// since emoji sequences need it.
pub fn for_display(s: &str, breaks: Breaks) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' if breaks == Breaks::Keep => out.push('\n'),
            '\t' => out.push(' '),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{061C}'
                        | '\u{200B}'
                        | '\u{200E}'
                        | '\u{200F}'
                        | '\u{2028}'..='\u{202E}'
                        | '\u{2060}'
                        | '\u{2066}'..='\u{2069}'
                        | '\u{FEFF}'
                ) =>
            {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// The form patterns and the classifier read: lower case, curly quotes made straight, "e.s.r" made
/// "esr", anything that is not a letter, digit, apostrophe or colon made a space, runs of spaces
/// folded.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    let mut last_space = true;
    // The two characters before `c` and the one after it, as typed.
    let (mut before, mut prev) = (None::<char>, None::<char>);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let alpha = |x: Option<char>| x.is_some_and(char::is_alphabetic);
        let digit = |x: Option<char>| x.is_some_and(|x| x.is_ascii_digit());
        // Dotted initialisms ("E.S.R", "n.h.s"): drop a dot between two single letters.
        let initialism =
            c == '.' && alpha(prev) && alpha(next) && !before.is_some_and(char::is_alphanumeric);
        (before, prev) = (prev, Some(c));
        if initialism {
            continue;
        }
        match c {
            '\u{2018}' | '\u{2019}' | '`' | '\'' => {
                out.push('\'');
                last_space = false;
            }
            ':' => {
                out.push(':');
                last_space = false;
            }
            '.' if digit(before) && digit(next) => {
                out.push('.');
                last_space = false;
            }
            c if c.is_ascii_alphanumeric() => {
                out.push(c.to_ascii_lowercase());
                last_space = false;
            }
            c if c.is_alphanumeric() => {
                out.extend(c.to_lowercase());
                last_space = false;
            }
            _ => {
                if !last_space {
                    out.push(' ');
                    last_space = true;
                }
            }
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// A plain e-mail address: one `@`, a dotted domain, no spaces, quotes or control characters
/// (so nothing can be smuggled into a mail header).
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-'".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.');
    let domain_ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    local_ok && domain_ok
}

/// An address that ESR accepts for resets: an nhs.net mailbox.
pub fn is_nhs_net(s: &str) -> bool {
    is_email(s) && s.to_ascii_lowercase().ends_with("@nhs.net")
}

/// The first thing in `text` that looks like an e-mail address (possibly invalid), trimmed of
/// surrounding punctuation.
pub fn find_email(text: &str) -> Option<&str> {
    emails(text).next()
}

/// Everything in `text` that looks like an e-mail address, in order, trimmed like `find_email`.
pub fn emails(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || "<>,;()[]\"".contains(c))
        .map(|w| w.trim_matches(|c: char| ".:!?'".contains(c)))
        .filter(|w| w.contains('@'))
}

/// Splits a reply into pieces of at most `max` characters for transports with a length limit,
/// breaking at a paragraph, then a line, then a sentence, then a word: never mid-sentence when a
/// sentence fits, and never losing a character.
pub fn split_message(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > max {
        let limit = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let head = &rest[..limit];
        let cut = ["\n\n", "\n", ". ", "! ", "? ", " "]
            .iter()
            .find_map(|sep| head.rfind(sep).filter(|&i| i > 0).map(|i| i + sep.len()))
            .unwrap_or(limit);
        out.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_characters_are_removed() {
        assert_eq!(clean_input("lo\u{200B}cked\u{0007} out\r\n"), "locked out");
        assert_eq!(clean_input("\u{202E}tuo dekcol"), "tuo dekcol");
        assert_eq!(clean_input("   "), "");
    }

    #[test]
    fn shown_text_cannot_act_on_a_terminal_or_reorder_itself() {
        assert_eq!(
            for_display("Ann\u{1b}[2J\u{1b}]0;owned\u{7}", Breaks::Show),
            "Ann\\u{1b}[2J\\u{1b}]0;owned\\u{7}"
        );
        assert_eq!(
            for_display(
                "\u{202E}tuo dekcol\u{2066}x\u{2069}\u{200F}\u{61C}",
                Breaks::Show
            ),
            "\\u{202e}tuo dekcol\\u{2066}x\\u{2069}\\u{200f}\\u{61c}"
        );
        // C1 controls (CSI on its own, NEL), DEL, carriage return.
        assert_eq!(
            for_display("a\u{9b}2Jb\u{85}c\u{7f}d\re", Breaks::Keep),
            "a\\u{9b}2Jb\\u{85}c\\u{7f}d\\u{d}e"
        );
        assert_eq!(
            for_display("Ann\nstatus: resolved", Breaks::Show),
            "Ann\\u{a}status: resolved"
        );
        assert_eq!(for_display("two\nlines\tok", Breaks::Keep), "two\nlines ok");
        // Ordinary text, accents, Welsh, emoji with joiners are left alone.
        let fine = "Siân Llŷr 👩\u{200D}⚕️ — «ok»";
        assert_eq!(for_display(fine, Breaks::Show), fine);
    }

    #[test]
    fn normal_form() {
        assert_eq!(
            normalize("My E.S.R pw  DOESN’T work!!"),
            "my esr pw doesn't work"
        );
        assert_eq!(normalize("at 9.30am, ok?"), "at 9.30am ok");
        assert_eq!(normalize("at 21:30"), "at 21:30");
        assert_eq!(normalize("🙂🙂"), "");
        assert_eq!(normalize("Привет ESR"), "привет esr");
    }

    #[test]
    fn long_messages_split_at_sentences_without_losing_text() {
        let text = "First sentence here. Second one is a bit longer! Third? ".repeat(60);
        let parts = split_message(&text, 200);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.chars().count() <= 200));
        assert!(
            parts.iter().all(|p| p.ends_with(['.', '!', '?'])),
            "{parts:?}"
        );
        let joined: String = parts.join(" ");
        assert_eq!(
            joined.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
        assert_eq!(split_message("short", 2000), vec!["short"]);
        let word = "x".repeat(450);
        assert_eq!(split_message(&word, 200).concat(), word);
        assert_eq!(split_message(&"é".repeat(5), 2), vec!["éé", "éé", "é"]);
    }

    #[test]
    fn email_checks() {
        assert!(is_nhs_net("jane.smith12@nhs.net"));
        assert!(is_nhs_net("Jane.Smith@NHS.NET"));
        assert!(!is_nhs_net("jane@gmail.com"));
        assert!(!is_nhs_net("jane@nhs.net.evil.com"));
        assert!(!is_email("jane@nhs.net\r\nBcc: x@y.z"));
        assert!(!is_email("a b@nhs.net"));
        assert!(!is_email("@nhs.net"));
        assert_eq!(
            find_email("it's now <j.bloggs@nhs.net>."),
            Some("j.bloggs@nhs.net")
        );
        assert_eq!(find_email("no address here"), None);
    }
}
