//! Hostile and odd input: always a reply or a clear error, never a panic; secrets never echoed or
//! stored.

use super::{at, bot_at, temp_db};

const NOW: &str = "2026-03-02T09:00:00Z";

#[test]
fn odd_messages_get_a_reply() {
    let (_dir, path) = temp_db();
    let bot = bot_at(&path);
    let huge = "locked out ".repeat(10_000); // ~110 KB
    let cases: Vec<String> = vec![
        String::new(),
        "   \t\n ".into(),
        huge,
        "lo\u{200B}cked o\u{200D}ut\u{FEFF}".into(),
        "\u{0000}\u{0007}\u{001B}[31mhello\u{001B}[0m".into(),
        "🔒🔒🔒 😭".into(),
        "我的密码忘了".into(),
        "نسيت كلمة المرور".into(),
        "\u{202E}tuo dekcol m'I".into(),
        "9".repeat(500),
        "at 99:99 yesterday 25pm 3 hours ago ago ago".into(),
        "{expires_at} {reference} {{}}".into(),
        "e\u{0301}sr pa\u{0301}ssword".into(),
    ];
    for (i, text) in cases.iter().enumerate() {
        let r = bot
            .handle(format!("u:{i}"), Some("Test"), text, at(NOW))
            .unwrap_or_else(|e| panic!("case {i} failed: {e:#}"));
        assert!(!r.text.trim().is_empty(), "case {i}: empty reply");
        assert!(
            !r.text.contains("{expires_at}"),
            "case {i}: template leaked: {}",
            r.text
        );
    }
}

#[test]
fn empty_and_huge_messages_are_explained() {
    let (_dir, path) = temp_db();
    let bot = bot_at(&path);
    let r = bot.handle("u", None, "", at(NOW)).unwrap();
    assert!(r.text.contains("didn't catch anything"), "{}", r.text);
    let r = bot
        .handle("u", None, &"x".repeat(100 * 1024), at(NOW))
        .unwrap();
    assert!(r.text.contains("too long"), "{}", r.text);
}

#[test]
fn zero_width_characters_do_not_hide_a_lockout() {
    let (_dir, path) = temp_db();
    let bot = bot_at(&path);
    let r = bot
        .handle("u", None, "I'm lo\u{200B}cked out of E\u{200D}SR", at(NOW))
        .unwrap();
    assert_eq!(r.intent.as_deref(), Some("account_locked"));
    assert!(r.text.contains("21:00"));
}

#[test]
fn secrets_are_neither_repeated_nor_stored() {
    let (dir, path) = temp_db();
    {
        let bot = bot_at(&path);
        for msg in [
            "my password is Bluebell2024! and I'm locked out",
            "pw: Tr0ub4dor&3 doesn't work",
            "my dob is 14/07/1985 and the reset says no",
            "I requested a reset, my date of birth is 3rd March 1979",
        ] {
            let r = bot.handle("u:secret", Some("Sam"), msg, at(NOW)).unwrap();
            assert!(r.had_secret, "{msg}");
            assert!(
                r.text
                    .contains("don't share your password or date of birth"),
                "{}",
                r.text
            );
            for secret in [
                "Bluebell2024",
                "Tr0ub4dor",
                "14/07/1985",
                "1985",
                "1979",
                "3rd March",
            ] {
                assert!(!r.text.contains(secret), "{secret} echoed in {}", r.text);
            }
        }
    }
    let bytes = std::fs::read(&path).unwrap();
    for secret in ["Bluebell2024", "Tr0ub4dor", "14/07/1985", "3rd March 1979"] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} found in the database file"
        );
    }
    drop(dir);
}

#[test]
fn a_database_in_an_older_format_is_refused_with_a_reason() {
    let (_dir, path) = temp_db();
    {
        // The previous release's users table: text keys and JSON values.
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t: redb::Table<&str, &[u8]> =
                w.open_table(redb::TableDefinition::new("users")).unwrap();
            t.insert("chat:ann", &b"{\"failed_attempts\":1}"[..])
                .unwrap();
        }
        w.commit().unwrap();
    }
    let err = match esrbot::store::Store::open(&path) {
        Ok(_) => panic!("an old file must not be opened as if it were new"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("not in this version's format"), "{err}");
    assert!(path.exists(), "the file is left as it was");
}

#[test]
fn an_empty_database_file_is_refused_and_left_alone() {
    let (_dir, path) = temp_db();
    std::fs::write(&path, b"").unwrap();
    let err = match esrbot::store::Store::open(&path) {
        Ok(_) => panic!("a truncated file must not become an empty database"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("empty file"), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left untouched");
}
