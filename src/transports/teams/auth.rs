//! Trust on Teams, both ways. Incoming: every request's Bearer JWT must be RS256, signed by a key
//! of the Bot Connector's OpenID metadata whose endorsements include `msteams`, issued by
//! `https://api.botframework.com` for this app, within its validity (5 minutes of skew, read on
//! the service's clock), and for the activity's serviceUrl. Keys are cached by `kid`, refreshed
//! when an unknown one arrives (at most once a minute) and daily; the metadata is never fetched
//! per request. Outgoing: the bot's own token, by OAuth2 client credentials, cached until shortly
//! before it expires. Neither ever logs a token or the secret.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::clock::Clock;
use crate::config::TeamsSettings;
use crate::service::outbox::Refused;

/// The issuer of the Bot Connector's tokens.
const ISSUER: &str = "https://api.botframework.com";
/// The channel a signing key must be endorsed for.
const ENDORSEMENT: &str = "msteams";
/// Clock skew allowed on `exp` and `nbf`, as Microsoft specifies.
const SKEW_SECONDS: i64 = 300;
/// Keys are fetched again at least this often.
const KEYS_MAX_AGE: Duration = Duration::hours(24);
/// An unknown `kid` makes the keys be fetched again, but not more often than this (a stream of
/// made-up kids must not turn into a stream of requests to Microsoft).
const UNKNOWN_KID_PAUSE: Duration = Duration::minutes(1);
/// The scope of the bot's own tokens.
const SCOPE: &str = "https://api.botframework.com/.default";
/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::minutes(5);

/// Why a request was refused. The status is 401 for a missing or bad token and 403 for a good
/// token that does not match the activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rejected {
    pub status: u16,
    pub why: String,
}

fn unauthorized(why: impl Into<String>) -> Rejected {
    Rejected {
        status: 401,
        why: why.into(),
    }
}

/// The claims checked here (aud and iss are checked by jsonwebtoken).
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    exp: i64,
    nbf: Option<i64>,
    /// The serviceUrl the token was issued for.
    serviceurl: Option<String>,
}

impl Claims {
    /// A good token must have been issued for the activity's serviceUrl.
    pub fn check_service_url(&self, activity: &str) -> Result<(), Rejected> {
        match &self.serviceurl {
            Some(s) if s.trim_end_matches('/') == activity.trim_end_matches('/') => Ok(()),
            _ => Err(Rejected {
                status: 403,
                why: "the token's serviceurl claim does not match the activity".into(),
            }),
        }
    }
}

struct Key {
    decoding: DecodingKey,
    endorsed: bool,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Key>,
    fetched_at: Option<DateTime<Utc>>,
    tried_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Metadata {
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: Option<String>,
    n: Option<String>,
    e: Option<String>,
    #[serde(default)]
    endorsements: Vec<String>,
}

pub(super) struct Verifier {
    http: reqwest::Client,
    metadata_url: String,
    app_id: String,
    clock: Arc<dyn Clock>,
    keys: Mutex<KeySet>,
}

impl Verifier {
    pub fn new(http: reqwest::Client, settings: &TeamsSettings, clock: Arc<dyn Clock>) -> Verifier {
        Verifier {
            http,
            metadata_url: settings.openid_metadata_url.clone(),
            app_id: settings.app_id.trim().to_string(),
            clock,
            keys: Mutex::new(KeySet::default()),
        }
    }

    /// Checks the request's `Authorization` header; the claims when it passes.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<Claims, Rejected> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("no Bearer token"))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| unauthorized(format!("not a JWT: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthorized(format!(
                "algorithm {:?} is not RS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthorized("the token names no signing key (kid)"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.app_id]);
        validation.set_issuer(&[ISSUER]);
        // Validity is checked below on the service's clock (so a test clock moves it too).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let claims = {
            let keys = self.keys_with(&kid).await;
            let key = keys
                .keys
                .get(&kid)
                .ok_or_else(|| unauthorized(format!("unknown signing key {kid:?}")))?;
            if !key.endorsed {
                return Err(unauthorized(format!(
                    "signing key {kid:?} is not endorsed for {ENDORSEMENT}"
                )));
            }
            jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
                .map_err(|e| unauthorized(format!("token refused: {e}")))?
                .claims
        };
        let now = self.clock.now().timestamp();
        if claims.exp + SKEW_SECONDS < now {
            return Err(unauthorized("token expired"));
        }
        if claims.nbf.is_some_and(|nbf| nbf - SKEW_SECONDS > now) {
            return Err(unauthorized("token not valid yet"));
        }
        Ok(claims)
    }

    /// The key set, fetched again first when it is old, or when `kid` is unknown and the last
    /// attempt was not just now.
    async fn keys_with(&self, kid: &str) -> tokio::sync::MutexGuard<'_, KeySet> {
        let mut keys = self.keys.lock().await;
        let now = self.clock.now();
        let stale = keys.fetched_at.is_none_or(|t| now - t > KEYS_MAX_AGE);
        let unknown = !keys.keys.contains_key(kid)
            && keys.tried_at.is_none_or(|t| now - t >= UNKNOWN_KID_PAUSE);
        if stale || unknown {
            keys.tried_at = Some(now);
            match self.fetch().await {
                Ok(fresh) => {
                    tracing::info!(keys = fresh.len(), "Bot Connector signing keys fetched");
                    keys.keys = fresh;
                    keys.fetched_at = Some(now);
                }
                // The keys we have stay in force: a metadata outage does not refuse everyone.
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "could not fetch the Bot Connector's signing keys")
                }
            }
        }
        keys
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, Key>> {
        let metadata: Metadata = get_json(&self.http, &self.metadata_url).await?;
        let jwks: Jwks = get_json(&self.http, &metadata.jwks_uri).await?;
        let mut out = HashMap::new();
        for k in jwks.keys {
            let (Some(kid), Some(n), Some(e)) = (k.kid, k.n, k.e) else {
                continue;
            };
            if k.kty.as_deref().is_some_and(|t| t != "RSA") {
                continue;
            }
            let Ok(decoding) = DecodingKey::from_rsa_components(&n, &e) else {
                tracing::warn!(kid = %kid, "a signing key could not be read; skipped");
                continue;
            };
            let endorsed = k.endorsements.iter().any(|e| e == ENDORSEMENT);
            out.insert(kid, Key { decoding, endorsed });
        }
        Ok(out)
    }
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<T> {
    let resp = http.get(url).send().await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "GET {url}: HTTP {}",
        resp.status()
    );
    let body = resp.bytes().await?;
    Ok(serde_json::from_slice(&body)?)
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

/// The bot's own token for the Bot Connector, cached.
pub(super) struct Tokens {
    http: reqwest::Client,
    url: String,
    app_id: String,
    password: String,
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<(String, DateTime<Utc>)>>,
}

impl Tokens {
    pub fn new(
        http: reqwest::Client,
        settings: &TeamsSettings,
        password: String,
        clock: Arc<dyn Clock>,
    ) -> Tokens {
        Tokens {
            http,
            url: settings.token_endpoint(),
            app_id: settings.app_id.trim().to_string(),
            password,
            clock,
            cached: Mutex::new(None),
        }
    }

    /// A token valid for a while yet: the cached one, or a new one.
    pub async fn get(&self) -> Result<String, Refused> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now();
        if let Some((token, until)) = cached.as_ref()
            && now < *until - RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.app_id.as_str()),
            ("client_secret", self.password.as_str()),
            ("scope", SCOPE),
        ];
        let resp = self
            .http
            .post(&self.url)
            .form(&form)
            .send()
            .await
            .map_err(|e| Refused::transient(format!("token endpoint: {e}")))?;
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            // The answer names the problem (a wrong secret, an unknown app) and holds no secret.
            let error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_default();
            return Err(Refused::transient(format!(
                "token endpoint: HTTP {status} {error}"
            )));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| Refused::transient(format!("token endpoint: unreadable answer: {e}")))?;
        *cached = Some((
            answer.access_token.clone(),
            now + Duration::seconds(answer.expires_in.max(0)),
        ));
        Ok(answer.access_token)
    }

    /// Forgets the cached token (the connector refused it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
