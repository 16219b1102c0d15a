//! The support team's accounts: who may sign in to the dashboard, their sessions, and a record of
//! every sign-in attempt. It must never store, log or return a password: only argon2id hashes of
//! them; and a session token is kept only as a hash, so a copy of the database signs nobody in.
//!
//! - **Hashes**: argon2id (RFC 9106) with m = 19 MiB, t = 2, p = 1, a 16-byte random salt and a
//!   32-byte output (OWASP's first recommended setting, about 20–40 ms a check on one core). The
//!   parameters are stored with each hash, so raising them later leaves old hashes readable.
//! - **One-time passwords** (`add`, `reset`): 16 characters in four groups, drawn by the operating
//!   system's CSPRNG from 54 characters that cannot be confused (no 0/O, 1/l/I), about 92 bits.
//!   The first sign-in with one must choose a new password.
//! - **New passwords**: 12 to 256 characters, not containing the account's name, not the current.
//! - **Sessions**: a 256-bit random token (the browser's cookie), stored as its BLAKE2s-256
//!   hash with the account, an anti-CSRF token and an absolute expiry `[web] session_hours`
//!   after sign-in. Changing or resetting a password, or removing the account, ends its other
//!   sessions.
//! - **Throttling**: after [`ACCOUNT_FAILURES`] failed sign-ins for one name, or
//!   [`ADDRESS_FAILURES`] from one address (an IPv6 address counts by its /64), within
//!   [`FAILURE_WINDOW_MINUTES`] minutes, sign-in for it is refused without checking the password
//!   until the oldest of those failures is that old. Names that are not accounts are throttled
//!   alike, and an unknown name is checked against a dummy hash, so neither the answer nor its
//!   time says whether an account exists.
//! - **Audit**: every attempt (the name if it is a well-formed one, the address, the time and the
//!   outcome; never the password) is kept for [`AUDIT_DAYS`] days.
//!
//! The slow part, argon2, runs outside any write transaction (it would hold up every message);
//! the write that follows checks again that nothing it relied on changed meanwhile.

use std::net::IpAddr;
use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, Version};
use blake2::{Blake2s256, Digest};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::store::{Store, Table, Txn, keys};

/// Failed sign-ins for one name within the window before that name is refused.
pub const ACCOUNT_FAILURES: usize = 5;
/// Failed sign-ins from one address within the window before that address is refused.
pub const ADDRESS_FAILURES: usize = 20;
/// The window over which failures count, and how long a refusal lasts after the last of them.
pub const FAILURE_WINDOW_MINUTES: i64 = 15;
/// How long the record of a sign-in attempt is kept.
pub const AUDIT_DAYS: i64 = 90;
/// The shortest and longest new password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;
/// The longest account name.
pub const MAX_NAME_CHARS: usize = 32;

/// Characters of a generated password: none that can be mistaken for another.
const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
/// argon2id's cost: memory in KiB, passes, lanes.
const M_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// How accounts behave here, from the settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How long a session lasts after sign-in.
    pub session: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            session: Duration::hours(8),
        }
    }
}

impl Policy {
    pub fn from_config(config: &Config) -> Policy {
        Policy {
            session: Duration::hours(config.web.session_hours.into()),
        }
    }
}

/// An argon2id hash with everything needed to check a password against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash {
    m_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: [u8; 16],
    hash: [u8; 32],
}

impl PasswordHash {
    fn new(password: &str) -> anyhow::Result<PasswordHash> {
        let mut h = PasswordHash {
            m_kib: M_KIB,
            t_cost: T_COST,
            p_cost: P_COST,
            salt: rand::random(),
            hash: [0; 32],
        };
        h.hash = h.compute(password)?;
        Ok(h)
    }

    fn compute(&self, password: &str) -> anyhow::Result<[u8; 32]> {
        let params = Params::new(self.m_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password.as_bytes(), &self.salt, &mut out)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        Ok(out)
    }

    /// Whether `password` is the one hashed, compared in constant time.
    fn matches(&self, password: &str) -> anyhow::Result<bool> {
        Ok(self.compute(password)?.ct_eq(&self.hash).into())
    }
}

/// A hash no password is known for, checked when the name is not an account so that the answer
/// takes as long as for one that is.
fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret: [u8; 16] = rand::random();
        PasswordHash::new(&keys::hex(&secret)).unwrap_or(PasswordHash {
            m_kib: M_KIB,
            t_cost: T_COST,
            p_cost: P_COST,
            salt: [0; 16],
            hash: [0; 32],
        })
    })
}

/// A support account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    hash: PasswordHash,
    /// Signed in with a one-time password: a new one must be chosen before anything else.
    pub must_change: bool,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
}

/// A signed-in session as stored (under the hash of its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub account: String,
    /// The anti-CSRF token every state-changing form of this session must carry.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The account must choose a new password before it may do anything else.
    pub must_change: bool,
}

impl Session {
    /// Whether `given` is this session's anti-CSRF token, compared in constant time.
    pub fn csrf_ok(&self, given: &str) -> bool {
        self.csrf.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

/// A successful sign-in: the token for the browser's cookie (shown nowhere else, stored only as a
/// hash) and the session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub session: Session,
}

/// What a sign-in attempt came to, as the audit keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    SignedIn,
    /// The name is an account; the password was wrong.
    WrongPassword,
    /// No such account (or not a well-formed name).
    UnknownAccount,
    /// Refused without checking: too many failures for the name or the address.
    Throttled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::SignedIn => "signed in",
            Outcome::WrongPassword => "wrong password",
            Outcome::UnknownAccount => "unknown account",
            Outcome::Throttled => "throttled",
        }
    }
}

/// One sign-in attempt, as audited. Never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    pub at: DateTime<Utc>,
    /// The name given, when it is a well-formed account name (anything else, which may be a
    /// password typed in the wrong box, is not kept).
    pub name: Option<String>,
    pub address: IpAddr,
    pub outcome: Outcome,
}

/// An account given a one-time password (`add`, `reset`): its name as stored, and the password,
/// to be shown once and never kept.
#[derive(Debug, Clone)]
pub struct OneTime {
    pub name: String,
    pub password: String,
}

/// Managing accounts (`esrbot support …`).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(
        "an account name is 1 to 32 characters: lowercase letters, digits, '.', '-' or '_', starting with a letter"
    )]
    BadName,
    #[error("there is already an account called {0}")]
    Exists(String),
    #[error("there is no account called {0}")]
    Unknown(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a sign-in was refused. The wording is the same whether or not the account exists.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("The username or password is not right.")]
    Refused,
    #[error("Too many failed sign-ins. Try again in {} minute(s).", minutes_up(*retry_after))]
    Throttled { retry_after: Duration },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a session token does not sign anyone in.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No such session: never issued, signed out, or ended by a password change or reset.
    #[error("You are not signed in.")]
    Unknown,
    #[error("Your session has expired. Sign in again.")]
    Expired,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a new password was not set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("The current password is not right.")]
    WrongCurrent,
    #[error("The new password must be at least {MIN_PASSWORD_CHARS} characters long.")]
    TooShort,
    #[error("The new password must be at most {MAX_PASSWORD_CHARS} characters long.")]
    TooLong,
    #[error("The new password must not contain your username.")]
    ContainsName,
    #[error("The new password must be different from the current one.")]
    Unchanged,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn minutes_up(d: Duration) -> i64 {
    (d.num_seconds() + 59).max(60) / 60
}

/// The account name `raw` stands for (names are read in any case), if it is well formed.
pub fn account_name(raw: &str) -> Option<String> {
    let name = raw.trim().to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    ok.then_some(name)
}

/// A new one-time password: four groups of four unambiguous characters.
pub fn one_time_password() -> String {
    let mut out = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]));
    }
    out
}

/// Whether `new` may be `name`'s password.
pub fn check_new_password(name: &str, new: &str) -> Result<(), PasswordError> {
    let chars = new.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong);
    }
    if new.to_lowercase().contains(name) {
        return Err(PasswordError::ContainsName);
    }
    Ok(())
}

fn token_key(token: &str) -> Vec<u8> {
    Blake2s256::digest(token.as_bytes()).to_vec()
}

fn random_token() -> String {
    keys::hex(&rand::random::<[u8; 32]>())
}

/// The throttle's key for a name.
fn name_key(name: &str) -> Vec<u8> {
    format!("account:{name}").into_bytes()
}

/// The throttle's key for an address: an IPv6 address by its /64, which one client usually has.
fn address_key(address: IpAddr) -> Vec<u8> {
    let shown = match address {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    };
    format!("address:{shown}").into_bytes()
}

/// The audit's key: time first, so it reads oldest first and old entries go with a range, then
/// a sequence number for attempts in the same millisecond.
fn audit_key(txn: &mut Txn, at: DateTime<Utc>) -> anyhow::Result<Vec<u8>> {
    let mut k = at.timestamp_millis().to_be_bytes().to_vec();
    k.extend_from_slice(&txn.next_id("sign_ins")?.to_be_bytes());
    Ok(k)
}

/// How long until a key with these failure times (Unix ms) may try again, if it may not now.
fn refused_for(failures: &[i64], limit: usize, now: DateTime<Utc>) -> Option<Duration> {
    let from = now.timestamp_millis() - FAILURE_WINDOW_MINUTES * 60_000;
    let recent: Vec<i64> = failures.iter().copied().filter(|t| *t > from).collect();
    if recent.len() < limit {
        return None;
    }
    // Refused until the limit-th most recent failure leaves the window.
    let nth = recent[recent.len() - limit];
    Some(Duration::milliseconds(nth - from))
}

/// Account management, sign-in and sessions on one database.
pub struct Accounts<'a> {
    store: &'a Store,
    policy: Policy,
}

impl<'a> Accounts<'a> {
    pub fn new(store: &'a Store, policy: Policy) -> Accounts<'a> {
        Accounts { store, policy }
    }

    /// Creates an account and returns its one-time password (to be changed at first sign-in).
    pub fn add(&self, raw_name: &str, now: DateTime<Utc>) -> Result<OneTime, AccountError> {
        let name = account_name(raw_name).ok_or(AccountError::BadName)?;
        let password = one_time_password();
        let hash = PasswordHash::new(&password)?;
        let account = Account {
            name: name.clone(),
            hash,
            must_change: true,
            created_at: now,
            password_changed_at: now,
        };
        self.store.write(|txn| {
            if txn
                .record::<Account>(Table::SupportAccounts, name.as_bytes())?
                .is_some()
            {
                return Ok(Err(AccountError::Exists(name.clone())));
            }
            txn.put_record(Table::SupportAccounts, name.as_bytes(), &account)?;
            Ok(Ok(()))
        })??;
        Ok(OneTime { name, password })
    }

    /// Every account, by name.
    pub fn list(&self) -> anyhow::Result<Vec<Account>> {
        Ok(self
            .store
            .records::<Account>(Table::SupportAccounts)?
            .into_iter()
            .map(|(_, a)| a)
            .collect())
    }

    /// Removes an account and ends its sessions; returns its name as stored.
    pub fn remove(&self, raw_name: &str) -> Result<String, AccountError> {
        let name = account_name(raw_name).ok_or(AccountError::BadName)?;
        self.store.write(|txn| {
            if !txn.remove_record(Table::SupportAccounts, name.as_bytes())? {
                return Ok(Err(AccountError::Unknown(name.clone())));
            }
            end_sessions(txn, &name, None)?;
            Ok(Ok(name.clone()))
        })?
    }

    /// Gives an account a new one-time password (to be changed at the next sign-in), ends its
    /// sessions and clears its failed sign-ins.
    pub fn reset(&self, raw_name: &str, now: DateTime<Utc>) -> Result<OneTime, AccountError> {
        let name = account_name(raw_name).ok_or(AccountError::BadName)?;
        let password = one_time_password();
        let hash = PasswordHash::new(&password)?;
        self.store.write(|txn| {
            let Some(mut account) =
                txn.record::<Account>(Table::SupportAccounts, name.as_bytes())?
            else {
                return Ok(Err(AccountError::Unknown(name.clone())));
            };
            account.hash = hash.clone();
            account.must_change = true;
            account.password_changed_at = now;
            txn.put_record(Table::SupportAccounts, name.as_bytes(), &account)?;
            txn.remove_record(Table::SignInFailures, &name_key(&name))?;
            end_sessions(txn, &name, None)?;
            Ok(Ok(()))
        })??;
        Ok(OneTime { name, password })
    }

    /// Signs in with a name and password from `address`. Every attempt is audited. The answer
    /// (and how long it takes) is the same for a wrong password and for a name that is not an
    /// account.
    pub fn sign_in(
        &self,
        raw_name: &str,
        password: &str,
        address: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<SignedIn, SignInError> {
        let name = account_name(raw_name);
        // A name that cannot be an account is throttled under one key of its own.
        let throttle_name = name_key(name.as_deref().unwrap_or("\u{0}"));
        let by_address = address_key(address);
        let audit = |txn: &mut Txn, outcome: Outcome| {
            let entry = SignIn {
                at: now,
                name: name.clone(),
                address,
                outcome,
            };
            let key = audit_key(txn, now)?;
            txn.put_record(Table::SignIns, &key, &entry)
        };
        let throttled = |failures: &dyn Fn(&[u8]) -> anyhow::Result<Vec<i64>>| {
            let a = refused_for(&failures(&throttle_name)?, ACCOUNT_FAILURES, now);
            let b = refused_for(&failures(&by_address)?, ADDRESS_FAILURES, now);
            anyhow::Ok(a.into_iter().chain(b).max())
        };
        let stored = |key: &[u8]| -> anyhow::Result<Vec<i64>> {
            Ok(self
                .store
                .record::<Vec<i64>>(Table::SignInFailures, key)?
                .unwrap_or_default())
        };
        if let Some(retry_after) = throttled(&stored)? {
            self.store.write(|txn| audit(txn, Outcome::Throttled))?;
            return Err(SignInError::Throttled { retry_after });
        }
        let account = match &name {
            Some(n) => self
                .store
                .record::<Account>(Table::SupportAccounts, n.as_bytes())?,
            None => None,
        };
        let hash = account.as_ref().map_or(dummy_hash(), |a| &a.hash);
        let right = hash.matches(password)? && account.is_some();
        let session_hours = self.policy.session;
        self.store.write(|txn| {
            // Failures recorded while the password was being checked count too.
            let mut failures = |key: &[u8]| -> anyhow::Result<Vec<i64>> {
                Ok(txn
                    .record::<Vec<i64>>(Table::SignInFailures, key)?
                    .unwrap_or_default())
            };
            let (f_name, f_addr) = (failures(&throttle_name)?, failures(&by_address)?);
            let again = refused_for(&f_name, ACCOUNT_FAILURES, now)
                .into_iter()
                .chain(refused_for(&f_addr, ADDRESS_FAILURES, now))
                .max();
            if let Some(retry_after) = again {
                audit(txn, Outcome::Throttled)?;
                return Ok(Err(SignInError::Throttled { retry_after }));
            }
            // The account as it is now: reset or removed meanwhile means the check is void.
            let current = match &name {
                Some(n) => txn.record::<Account>(Table::SupportAccounts, n.as_bytes())?,
                None => None,
            };
            let still = right && current == account;
            prune(txn, now)?;
            let Some(account) = current.clone().filter(|_| still) else {
                let outcome = if current.is_some() {
                    Outcome::WrongPassword
                } else {
                    Outcome::UnknownAccount
                };
                audit(txn, outcome)?;
                for (key, mut list) in [(&throttle_name, f_name), (&by_address, f_addr)] {
                    list.push(now.timestamp_millis());
                    // Only the failures that can still matter are kept.
                    let keep = list.len().saturating_sub(ADDRESS_FAILURES);
                    list.drain(..keep);
                    txn.put_record(Table::SignInFailures, key, &list)?;
                }
                return Ok(Err(SignInError::Refused));
            };
            audit(txn, Outcome::SignedIn)?;
            txn.remove_record(Table::SignInFailures, &throttle_name)?;
            let token = random_token();
            let session = Session {
                account: account.name.clone(),
                csrf: random_token(),
                created_at: now,
                expires_at: now + session_hours,
                must_change: account.must_change,
            };
            txn.put_record(Table::SupportSessions, &token_key(&token), &session)?;
            Ok(Ok(SignedIn { token, session }))
        })?
    }

    /// The session a token (the browser's cookie) stands for, while it lasts.
    pub fn session(&self, token: &str, now: DateTime<Utc>) -> Result<Session, SessionError> {
        let session = self
            .store
            .record::<Session>(Table::SupportSessions, &token_key(token))?
            .ok_or(SessionError::Unknown)?;
        if session.expires_at <= now {
            return Err(SessionError::Expired);
        }
        Ok(session)
    }

    /// Ends a session. Signing out twice, or with an unknown token, is not an error.
    pub fn sign_out(&self, token: &str) -> anyhow::Result<()> {
        self.store
            .write(|txn| txn.remove_record(Table::SupportSessions, &token_key(token)))?;
        Ok(())
    }

    /// Sets a new password for the session's account. `current` is required unless the session
    /// was opened with a one-time password (`must_change`), which is then the proof. The
    /// account's other sessions end; this one goes on, no longer bound to change the password.
    pub fn change_password(
        &self,
        token: &str,
        current: Option<&str>,
        new: &str,
        now: DateTime<Utc>,
    ) -> Result<Session, PasswordError> {
        let session = self.session(token, now)?;
        let account = self
            .store
            .record::<Account>(Table::SupportAccounts, session.account.as_bytes())?
            .ok_or(SessionError::Unknown)?;
        if !session.must_change {
            let given = current.ok_or(PasswordError::WrongCurrent)?;
            if !account.hash.matches(given)? {
                return Err(PasswordError::WrongCurrent);
            }
        }
        check_new_password(&account.name, new)?;
        if account.hash.matches(new)? {
            return Err(PasswordError::Unchanged);
        }
        let hash = PasswordHash::new(new)?;
        let key = token_key(token);
        self.store.write(|txn| {
            let now_account =
                txn.record::<Account>(Table::SupportAccounts, account.name.as_bytes())?;
            let now_session = txn.record::<Session>(Table::SupportSessions, &key)?;
            if now_account.as_ref() != Some(&account) || now_session.as_ref() != Some(&session) {
                // Reset, removed or signed out meanwhile.
                return Ok(Err(PasswordError::Session(SessionError::Unknown)));
            }
            let mut account = account.clone();
            account.hash = hash.clone();
            account.must_change = false;
            account.password_changed_at = now;
            txn.put_record(Table::SupportAccounts, account.name.as_bytes(), &account)?;
            end_sessions(txn, &account.name, Some(&key))?;
            let mut session = session.clone();
            session.must_change = false;
            txn.put_record(Table::SupportSessions, &key, &session)?;
            Ok(Ok(session))
        })?
    }

    /// The sign-in attempts of the last [`AUDIT_DAYS`] days, newest first, at most `limit`.
    pub fn sign_ins(&self, limit: usize) -> anyhow::Result<Vec<SignIn>> {
        let mut all: Vec<SignIn> = self
            .store
            .records::<SignIn>(Table::SignIns)?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }
}

/// Ends `name`'s sessions, except the one under `keep`.
fn end_sessions(txn: &mut Txn, name: &str, keep: Option<&[u8]>) -> anyhow::Result<usize> {
    txn.retain_records::<Session>(Table::SupportSessions, |k, s| {
        s.account != name || Some(k) == keep
    })
}

/// Forgets what can no longer matter: expired sessions, failures out of the window and audit
/// entries older than [`AUDIT_DAYS`]. Run with each sign-in, so the tables stay small.
fn prune(txn: &mut Txn, now: DateTime<Utc>) -> anyhow::Result<()> {
    txn.retain_records::<Session>(Table::SupportSessions, |_, s| s.expires_at > now)?;
    let from = now.timestamp_millis() - FAILURE_WINDOW_MINUTES * 60_000;
    txn.retain_records::<Vec<i64>>(Table::SignInFailures, |_, list| {
        list.iter().any(|t| *t > from)
    })?;
    let cutoff = (now - Duration::days(AUDIT_DAYS)).timestamp_millis();
    txn.remove_records_before(Table::SignIns, &cutoff.to_be_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_in_any_case_and_must_be_well_formed() {
        assert_eq!(account_name(" Ann.Smith "), Some("ann.smith".into()));
        for bad in ["", "1ann", "ann smith", "ännä", &"a".repeat(33), "-x"] {
            assert_eq!(account_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn one_time_passwords_are_long_unambiguous_and_different() {
        let a = one_time_password();
        assert_eq!(a.len(), 19, "{a}");
        assert!(
            a.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))),
            "{a}"
        );
        assert!(!a.contains(['0', 'O', '1', 'l', 'I']), "{a}");
        assert_ne!(a, one_time_password());
        assert!(check_new_password("ann", &a).is_ok());
    }

    #[test]
    fn a_hash_matches_only_its_password() {
        let h = PasswordHash::new("correct horse battery").unwrap();
        assert!(h.matches("correct horse battery").unwrap());
        assert!(!h.matches("correct horse batterY").unwrap());
        assert_ne!(
            h,
            PasswordHash::new("correct horse battery").unwrap(),
            "salted"
        );
    }

    #[test]
    fn new_passwords_follow_the_rules() {
        assert!(matches!(
            check_new_password("ann", "short"),
            Err(PasswordError::TooShort)
        ));
        assert!(matches!(
            check_new_password("ann", "my name is ANN ok?"),
            Err(PasswordError::ContainsName)
        ));
        assert!(matches!(
            check_new_password("ann", &"x".repeat(257)),
            Err(PasswordError::TooLong)
        ));
        assert!(check_new_password("ann", "twelve chars").is_ok());
    }

    #[test]
    fn the_throttle_refuses_until_the_oldest_counted_failure_leaves_the_window() {
        let now: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let ms = |min: i64| (now - Duration::minutes(min)).timestamp_millis();
        assert_eq!(refused_for(&[ms(1), ms(2)], 3, now), None);
        assert_eq!(
            refused_for(&[ms(20), ms(10), ms(5), ms(1)], 3, now),
            Some(Duration::minutes(5)),
            "the failure 10 minutes ago leaves the 15-minute window in 5"
        );
        assert_eq!(refused_for(&[ms(20), ms(16), ms(1)], 3, now), None);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_eq!(address_key(c), b"address:192.0.2.1");
    }

    #[test]
    fn throttled_answers_round_up_to_whole_minutes() {
        let e = SignInError::Throttled {
            retry_after: Duration::seconds(61),
        };
        assert_eq!(
            e.to_string(),
            "Too many failed sign-ins. Try again in 2 minute(s)."
        );
    }
}
