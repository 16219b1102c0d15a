//! A fake Bot Framework on 127.0.0.1 for end-to-end tests of the Teams transport: OpenID metadata
//! and a JWKS with endorsed (and unendorsed) test RSA keys, a token endpoint that counts its
//! requests, Bot Connector routes that record what they receive and can be told to answer 429
//! with `Retry-After`, 502 or 403 `MessageWritesBlocked`, and a signer that sends activities to
//! the bot as the Bot Connector would. The keys are test-only, committed under
//! `tests/support/bot_framework_keys/`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const APP_ID: &str = "00000000-1111-2222-3333-444444444444";
pub const TENANT: &str = "tenant-1";
pub const PASSWORD: &str = "test-client-secret";
pub const BOT_ID: &str = "28:00000000-1111-2222-3333-444444444444";
pub const ISSUER: &str = "https://api.botframework.com";
pub const T: Duration = Duration::from_secs(5);

/// A test RSA key: its private half for signing and its public modulus for the JWKS.
#[derive(Clone)]
pub struct TestKey {
    der: Vec<u8>,
    n: String,
}

impl TestKey {
    /// `tests/support/bot_framework_keys/test_key_<name>.pem`.
    pub fn load(name: &str) -> TestKey {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
            "tests/support/bot_framework_keys/test_key_{name}.pem"
        ));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the test key {} is missing: {e}", path.display()));
        let n = text
            .lines()
            .find_map(|l| l.strip_prefix("JWK n: "))
            .expect("the key file lists its modulus")
            .trim()
            .to_string();
        let b64: String = text
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("the key is base64");
        TestKey { der, n }
    }

    fn jwk(&self, kid: &str, endorsements: &[&str]) -> Value {
        json!({"kty": "RSA", "use": "sig", "kid": kid, "n": self.n, "e": "AQAB", "endorsements": endorsements})
    }
}

/// One request the bot made to the connector.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: String,
    pub body: Value,
}

/// A scripted answer for the next connector request.
#[derive(Clone, Debug)]
pub enum Fault {
    TooManyRequests { retry_after_secs: u64 },
    BadGateway,
}

struct Shared {
    base: String,
    jwks: Mutex<Vec<Value>>,
    jwks_fetches: AtomicU64,
    token_requests: AtomicU64,
    log: Mutex<Vec<Recorded>>,
    version: watch::Sender<u64>,
    faults: Mutex<VecDeque<Fault>>,
    /// Members and conversations whose writes answer 403 MessageWritesBlocked.
    blocked: Mutex<Vec<String>>,
    next_id: AtomicU64,
}

pub struct FakeBotFramework {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    pub key_a: TestKey,
    pub key_b: TestKey,
}

impl Drop for FakeBotFramework {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeBotFramework {
    /// Key "a" (kid `key-a`) is endorsed for msteams; key "b" is published as `key-b`, endorsed
    /// only for another channel.
    pub async fn start() -> FakeBotFramework {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!(
            "http://127.0.0.1:{}/",
            listener.local_addr().unwrap().port()
        );
        let (key_a, key_b) = (TestKey::load("a"), TestKey::load("b"));
        let shared = Arc::new(Shared {
            base,
            jwks: Mutex::new(vec![
                key_a.jwk("key-a", &["msteams", "skype"]),
                key_b.jwk("key-b", &["skype"]),
            ]),
            jwks_fetches: AtomicU64::new(0),
            token_requests: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            version: watch::channel(0).0,
            faults: Mutex::new(VecDeque::new()),
            blocked: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        });
        let app = Router::new().fallback(route).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeBotFramework {
            shared,
            task,
            key_a,
            key_b,
        }
    }

    /// The serviceUrl of activities, and the only prefix tokens may go to.
    pub fn service_url(&self) -> String {
        self.shared.base.clone()
    }

    /// The bot's `[teams]` settings pointing here, as environment overrides.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("ESRBOT_TEAMS_APP_ID".into(), APP_ID.into()),
            ("ESRBOT_TEAMS_TENANT_ID".into(), TENANT.into()),
            (
                "ESRBOT_TEAMS_OPENID_METADATA_URL".into(),
                format!("{}openid", self.shared.base),
            ),
            (
                "ESRBOT_TEAMS_TOKEN_URL".into(),
                format!("{}{{tenant_id}}/oauth2/v2.0/token", self.shared.base),
            ),
            (
                "ESRBOT_TEAMS_ALLOWED_SERVICE_URLS".into(),
                self.shared.base.clone(),
            ),
        ]
    }

    /// Publishes another endorsed key (key "a"'s material under a new kid).
    pub fn publish_key(&self, kid: &str) {
        self.shared
            .jwks
            .lock()
            .unwrap()
            .push(self.key_a.jwk(kid, &["msteams"]));
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// The next connector requests answer with these faults, in order.
    pub fn fail_next(&self, fault: Fault) {
        self.shared.faults.lock().unwrap().push_back(fault);
    }

    /// Writes to this member (creating their conversation) or conversation answer 403
    /// MessageWritesBlocked from now on.
    pub fn block(&self, id: &str) {
        self.shared.blocked.lock().unwrap().push(id.to_string());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Connector requests with this method whose path starts with `prefix`.
    pub fn matching(&self, method: &str, prefix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .collect()
    }

    /// Waits until at least `n` requests match; returns them all. Panics, listing what was seen,
    /// after `T`.
    pub async fn wait_for(&self, method: &str, prefix: &str, n: usize) -> Vec<Recorded> {
        let mut rx = self.shared.version.subscribe();
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let found = self.matching(method, prefix);
            if found.len() >= n {
                return found;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                let seen: Vec<String> = self
                    .requests()
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.path))
                    .collect();
                panic!("no {n} × {method} {prefix} within {T:?}; seen: {seen:#?}");
            }
        }
    }
}

/// The path of a conversation's activities.
pub fn activities_path(conversation: &str) -> String {
    format!("/v3/conversations/{conversation}/activities")
}

async fn route(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if method == Method::GET && path == "/openid" {
        return axum::Json(json!({
            "issuer": ISSUER,
            "jwks_uri": format!("{}keys", s.base),
            "id_token_signing_alg_values_supported": ["RS256"],
        }))
        .into_response();
    }
    if method == Method::GET && path == "/keys" {
        s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
        let keys = s.jwks.lock().unwrap().clone();
        return axum::Json(json!({ "keys": keys })).into_response();
    }
    if method == Method::POST && path == format!("/{TENANT}/oauth2/v2.0/token") {
        s.token_requests.fetch_add(1, Ordering::SeqCst);
        let form = String::from_utf8_lossy(&body).to_string();
        let ok = form.contains("grant_type=client_credentials")
            && form.contains(&format!("client_id={APP_ID}"))
            && form.contains(&format!("client_secret={PASSWORD}"))
            && form.contains("scope=https%3A%2F%2Fapi.botframework.com%2F.default");
        if !ok {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "invalid_client"})),
            )
                .into_response();
        }
        let n = s.token_requests.load(Ordering::SeqCst);
        return axum::Json(json!({
            "token_type": "Bearer",
            "expires_in": 3600,
            "access_token": format!("connector-token-{n}"),
        }))
        .into_response();
    }
    // Connector routes: everything under /v3/conversations.
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // The answer is chosen before the request is recorded: a test that sees the request and then
    // scripts a fault must not change the answer to it.
    let answer = connector(&s, &method, &path, &authorization, &body);
    s.log.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path,
        authorization,
        body,
    });
    s.version.send_modify(|v| *v += 1);
    answer
}

fn connector(
    s: &Shared,
    method: &Method,
    path: &str,
    authorization: &str,
    body: &Value,
) -> Response {
    if !path.starts_with("/v3/conversations") {
        return StatusCode::NOT_FOUND.into_response();
    }
    if !authorization.starts_with("Bearer connector-token-") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if let Some(fault) = s.faults.lock().unwrap().pop_front() {
        return match fault {
            Fault::TooManyRequests { retry_after_secs } => {
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({"error": {"code": "TooManyRequests"}})),
                )
                    .into_response();
                r.headers_mut().insert(
                    "retry-after",
                    HeaderValue::from_str(&retry_after_secs.to_string()).unwrap(),
                );
                r
            }
            Fault::BadGateway => StatusCode::BAD_GATEWAY.into_response(),
        };
    }
    let blocked = s.blocked.lock().unwrap().clone();
    let member = body["members"][0]["id"].as_str().unwrap_or_default();
    if blocked
        .iter()
        .any(|b| path.contains(b.as_str()) || member == b)
    {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(
                json!({"error": {"code": "MessageWritesBlocked", "message": "The bot is blocked"}}),
            ),
        )
            .into_response();
    }
    let id = s.next_id.fetch_add(1, Ordering::SeqCst);
    if *method == Method::POST && path == "/v3/conversations" {
        return (
            StatusCode::CREATED,
            axum::Json(json!({"id": personal_conversation(member)})),
        )
            .into_response();
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({"id": format!("act-{id}")})),
    )
        .into_response()
}

/// The 1:1 conversation the fake creates for a member.
pub fn personal_conversation(member: &str) -> String {
    format!("a:1on1-{member}")
}

/// How a token is made: each field can be spoilt for one of the refusal tests.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub key: &'static str,
    pub kid: String,
    pub audience: String,
    pub issuer: String,
    pub expires: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub service_url: String,
}

impl FakeBotFramework {
    /// A token the bot must accept at `now` for an activity from this service.
    pub fn good_token(&self, now: DateTime<Utc>) -> TokenSpec {
        TokenSpec {
            key: "a",
            kid: "key-a".into(),
            audience: APP_ID.into(),
            issuer: ISSUER.into(),
            expires: now + chrono::Duration::minutes(30),
            not_before: now - chrono::Duration::minutes(1),
            service_url: self.service_url(),
        }
    }

    pub fn sign(&self, t: &TokenSpec) -> String {
        let key = if t.key == "a" {
            &self.key_a
        } else {
            &self.key_b
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(t.kid.clone());
        let claims = json!({
            "iss": t.issuer,
            "aud": t.audience,
            "exp": t.expires.timestamp(),
            "nbf": t.not_before.timestamp(),
            "serviceurl": t.service_url,
        });
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(&key.der))
            .expect("the test key signs")
    }
}

/// Sends activities to the bot's messaging endpoint as the Bot Connector does.
pub struct Sender {
    pub endpoint: String,
    http: reqwest::Client,
}

impl Sender {
    pub fn new(bot: std::net::SocketAddr) -> Sender {
        Sender {
            endpoint: format!("http://{bot}/api/messages"),
            http: reqwest::Client::new(),
        }
    }

    /// POSTs `activity` with `authorization` (None: no header); the HTTP status.
    pub async fn send(&self, authorization: Option<String>, activity: &Value) -> u16 {
        let mut req = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(activity).unwrap());
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        req.send().await.expect("the bot answers").status().as_u16()
    }
}

/// A person's account as activities carry it.
pub fn person(n: u32) -> (String, String) {
    (format!("29:user-{n}"), format!("aad-{n}"))
}

fn from(n: u32, name: &str) -> Value {
    let (id, aad) = person(n);
    json!({"id": id, "name": name, "aadObjectId": aad})
}

/// A message in the person's 1:1 chat with the bot.
pub fn personal_message(service_url: &str, id: &str, user: u32, text: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": from(user, "Staff Member"),
        "recipient": {"id": BOT_ID, "name": "ESR Helper"},
        "conversation": {"id": personal_conversation(&person(user).0), "conversationType": "personal", "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}},
        "text": text,
    })
}

/// A message in a team channel, mentioning the bot when `mention` is set.
pub fn channel_message(
    service_url: &str,
    id: &str,
    channel: &str,
    user: u32,
    name: &str,
    text: &str,
    mention: bool,
) -> Value {
    let entities = if mention {
        json!([{"type": "mention", "text": "<at>ESR Helper</at>", "mentioned": {"id": BOT_ID, "name": "ESR Helper"}}])
    } else {
        json!([])
    };
    let text = if mention {
        format!("<at>ESR Helper</at> {text}")
    } else {
        text.to_string()
    };
    json!({
        "type": "message",
        "id": id,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": from(user, name),
        "recipient": {"id": BOT_ID, "name": "ESR Helper"},
        "conversation": {"id": channel, "conversationType": "channel", "tenantId": TENANT, "isGroup": true},
        "channelData": {"tenant": {"id": TENANT}, "channel": {"id": channel}},
        "entities": entities,
        "text": text,
    })
}

/// An Adaptive Card's `Action.Submit` press, as it arrives: a message with a `value`.
pub fn submit(mut message: Value, choice_id: &str) -> Value {
    message["text"] = Value::Null;
    message["entities"] = json!([]);
    message["value"] = json!({ "esrbot": choice_id });
    message
}

/// The bot installed in a person's personal scope.
pub fn installation(service_url: &str, id: &str, user: u32) -> Value {
    json!({
        "type": "installationUpdate",
        "action": "add",
        "id": id,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": from(user, "Staff Member"),
        "recipient": {"id": BOT_ID, "name": "ESR Helper"},
        "conversation": {"id": personal_conversation(&person(user).0), "conversationType": "personal", "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}},
    })
}

/// The text a message activity shows (its text, or its card's text blocks and fallback).
pub fn shown(activity: &Value) -> String {
    let mut out = activity["text"].as_str().unwrap_or_default().to_string();
    for a in activity["attachments"].as_array().into_iter().flatten() {
        let card = &a["content"];
        for b in card["body"].as_array().into_iter().flatten() {
            out.push('\n');
            out.push_str(b["text"].as_str().unwrap_or_default());
        }
    }
    out
}

/// The choice ids of a card's actions.
pub fn actions(activity: &Value) -> Vec<String> {
    activity["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| {
            a["content"]["actions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|a| a["data"]["esrbot"].as_str().map(str::to_string))
        .collect()
}
