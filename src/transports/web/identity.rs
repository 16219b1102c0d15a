//! Who a browser is: a random id in a signed cookie (the recipient `web:<id>`), and the CSRF token
//! bound to it. The signature is HMAC-SHA256 under a key from `ESRBOT_WEB_KEY` or, when that is
//! unset, one generated once and kept in the database. A cookie that does not verify is treated as
//! no cookie at all: its holder gets a new identity, never someone else's.

use std::sync::Arc;

use ring::hmac;

use crate::core::records::Recipient;
use crate::service::Service;

/// The identity cookie's name.
pub const COOKIE: &str = "esrbot_web";
/// Where a generated key is kept in the database (a transport reference).
const KEY_REF: &str = "web:key";
/// A browser identity's length in hex characters (128 random bits).
const ID_LEN: usize = 32;

pub struct Keys {
    key: hmac::Key,
}

/// One browser's identity, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: String,
}

impl Keys {
    /// The key from `ESRBOT_WEB_KEY` (`env`), or the database's, generated on first use in one
    /// write transaction (so two processes starting together agree on it).
    pub fn load(svc: &Arc<Service>, env: Option<String>) -> anyhow::Result<Keys> {
        let secret = match env.filter(|k| !k.is_empty()) {
            Some(k) => {
                anyhow::ensure!(
                    k.len() >= 32,
                    "ESRBOT_WEB_KEY must be at least 32 characters (it signs the chat's cookies)"
                );
                k
            }
            None => svc.store.write(|txn| {
                if let Some(k) = txn.transport_ref(KEY_REF)? {
                    return Ok(k);
                }
                let k = random_hex(32);
                txn.set_transport_ref(KEY_REF, &k)?;
                Ok(k)
            })?,
        };
        Ok(Keys {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        })
    }

    fn tag(&self, purpose: &str, id: &str) -> String {
        hex(hmac::sign(&self.key, format!("{purpose}:{id}").as_bytes()).as_ref())
    }

    fn verify(&self, purpose: &str, id: &str, tag: &str) -> bool {
        unhex(tag).is_some_and(|t| {
            hmac::verify(&self.key, format!("{purpose}:{id}").as_bytes(), &t).is_ok()
        })
    }

    /// A new identity.
    pub fn fresh(&self) -> Identity {
        Identity {
            id: random_hex(ID_LEN / 2),
        }
    }

    /// The identity in a `Cookie` header, if one is there and its signature holds.
    pub fn read_cookies(&self, header: Option<&str>) -> Option<Identity> {
        let value = header?
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)?
            .1;
        let (id, tag) = value.split_once('.')?;
        let well_formed = id.len() == ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        (well_formed && self.verify("id", id, tag)).then(|| Identity { id: id.to_string() })
    }

    /// The cookie's value for `who`.
    pub fn cookie_value(&self, who: &Identity) -> String {
        format!("{}.{}", who.id, self.tag("id", &who.id))
    }

    /// The CSRF token of `who`'s forms.
    pub fn csrf(&self, who: &Identity) -> String {
        self.tag("csrf", &who.id)
    }

    pub fn csrf_holds(&self, who: &Identity, token: &str) -> bool {
        self.verify("csrf", &who.id, token)
    }
}

impl Identity {
    pub fn recipient(&self) -> Recipient {
        Recipient::new(super::SPEC.channel, &self.id)
    }
}

/// `n` random bytes in hex.
pub fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> Keys {
        Keys {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        }
    }

    #[test]
    fn a_signed_cookie_is_read_back_and_a_tampered_one_is_not() {
        let k = keys("a key of at least thirty-two characters");
        let who = k.fresh();
        let header = format!("other=1; {COOKIE}={}", k.cookie_value(&who));
        assert_eq!(k.read_cookies(Some(&header)), Some(who.clone()));
        let mut forged = k.cookie_value(&who);
        forged.replace_range(0..1, if forged.starts_with('a') { "b" } else { "a" });
        assert_eq!(k.read_cookies(Some(&format!("{COOKIE}={forged}"))), None);
        let other = keys("another key of at least thirty-two chars");
        assert_eq!(
            other.read_cookies(Some(&format!("{COOKIE}={}", k.cookie_value(&who)))),
            None
        );
        assert_eq!(k.read_cookies(Some(&format!("{COOKIE}=x.y"))), None);
        assert_eq!(k.read_cookies(None), None);
    }

    #[test]
    fn csrf_tokens_belong_to_one_identity() {
        let k = keys("a key of at least thirty-two characters");
        let (a, b) = (k.fresh(), k.fresh());
        assert!(k.csrf_holds(&a, &k.csrf(&a)));
        assert!(!k.csrf_holds(&b, &k.csrf(&a)));
        assert!(!k.csrf_holds(&a, ""));
    }
}
