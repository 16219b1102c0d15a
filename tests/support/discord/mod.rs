//! A fake Discord for end-to-end tests of a serenity 0.12 bot: an HTTP server
//! (axum) for the REST API and a WebSocket gateway (tokio-tungstenite 0.21, the
//! version serenity itself uses), both on 127.0.0.1 with OS-chosen ports. It records every request
//! and gateway payload so tests can wait for what the bot did.
#![allow(dead_code)]

pub mod json;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Default timeout used by the helpers below.
pub const T: Duration = Duration::from_secs(5);
pub const TOKEN: &str = "fake-token";
/// A user whose DMs are closed: messages to their DM channel are refused with code 50007.
pub const CLOSED_DMS_USER: u64 = 666;
/// The DM channel the fake hands out for a recipient is the recipient's id + 5,000,000.
pub const CLOSED_DMS_CHANNEL: u64 = CLOSED_DMS_USER + 5_000_000;

/// The DM channel id the fake gives a user.
pub fn dm_channel_of(user: u64) -> u64 {
    user + 5_000_000
}

/// One thing the bot did: an HTTP request (`method` is the HTTP method) or a
/// gateway payload it sent (`method` is `"WS"`, `path` is `"op/<n>"`).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Value,
    taken: bool,
}

enum Cmd {
    Send(String),
    /// Send a close frame with this code, then drop the socket.
    Close(u16),
    /// Drop the TCP connection without a closing handshake.
    Kill,
}

struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Cmd>,
}

struct Shared {
    ws_url: String,
    heartbeat_interval_ms: u64,
    log: Mutex<Vec<Recorded>>,
    version: watch::Sender<u64>,
    /// The connection that has been sent READY or RESUMED.
    active: Mutex<Option<Conn>>,
    active_changed: watch::Sender<u64>,
    seq: AtomicU64,
    next_id: AtomicU64,
    sessions: AtomicU64,
}

impl Shared {
    fn record(&self, method: &str, path: &str, body: Value) {
        self.log.lock().unwrap().push(Recorded {
            method: method.to_string(),
            path: path.to_string(),
            body,
            taken: false,
        });
        self.version.send_modify(|v| *v += 1);
    }

    fn set_active(&self, conn: Option<Conn>) {
        *self.active.lock().unwrap() = conn;
        self.active_changed.send_modify(|v| *v += 1);
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }
}

pub struct FakeDiscord {
    http_port: u16,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl FakeDiscord {
    pub async fn start() -> Self {
        Self::start_with_heartbeat(1_000).await
    }

    pub async fn start_with_heartbeat(heartbeat_interval_ms: u64) -> Self {
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_port = http.local_addr().unwrap().port();
        let gw_port = gw.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            ws_url: format!("ws://127.0.0.1:{gw_port}"),
            heartbeat_interval_ms,
            log: Mutex::new(Vec::new()),
            version: watch::channel(0).0,
            active: Mutex::new(None),
            active_changed: watch::channel(0).0,
            seq: AtomicU64::new(0),
            next_id: AtomicU64::new(900_000),
            sessions: AtomicU64::new(0),
        });

        let app = Router::new().fallback(rest).with_state(Arc::clone(&shared));
        let http_task = tokio::spawn(async move {
            let _ = axum::serve(http, app).await;
        });

        let gw_shared = Arc::clone(&shared);
        let gw_task = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((stream, _)) = gw.accept().await {
                conns.push(tokio::spawn(serve_ws(stream, Arc::clone(&gw_shared))));
            }
        });

        FakeDiscord {
            http_port,
            shared,
            tasks: vec![http_task, gw_task],
        }
    }

    /// What to give `HttpBuilder::proxy`: `http://127.0.0.1:PORT`.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn ws_url(&self) -> &str {
        &self.shared.ws_url
    }

    /// Everything recorded so far (HTTP requests and gateway ops).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Waits until a connection is identified/resumed, then sends a dispatch
    /// (op 0) with the next sequence number. Returns that sequence number.
    pub async fn push_dispatch(&self, event_name: &str, d: Value) -> u64 {
        let mut rx = self.shared.active_changed.subscribe();
        let deadline = tokio::time::Instant::now() + T;
        loop {
            {
                let active = self.shared.active.lock().unwrap();
                if let Some(conn) = active.as_ref() {
                    let s = self.shared.seq.fetch_add(1, Ordering::SeqCst) + 1;
                    let payload = json!({ "op": 0, "t": event_name, "s": s, "d": d });
                    if conn.tx.send(Cmd::Send(payload.to_string())).is_ok() {
                        return s;
                    }
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                panic!("push_dispatch({event_name}): no live gateway session within {T:?}");
            }
        }
    }

    /// Waits for the first not-yet-returned HTTP request with this method whose
    /// path starts with `path_prefix`; returns its JSON body (`Null` if none).
    /// Panics (listing what was seen) on timeout.
    pub async fn wait_for_request(
        &self,
        method: &str,
        path_prefix: &str,
        timeout: Duration,
    ) -> Value {
        self.wait_for(method, path_prefix, timeout).await.body
    }

    /// Like `wait_for_request` but returns the whole record (with its path).
    pub async fn wait_for(&self, method: &str, path_prefix: &str, timeout: Duration) -> Recorded {
        let mut rx = self.shared.version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let mut log = self.shared.log.lock().unwrap();
                if let Some(r) = log
                    .iter_mut()
                    .find(|r| !r.taken && r.method == method && r.path.starts_with(path_prefix))
                {
                    r.taken = true;
                    return r.clone();
                }
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
                panic!(
                    "timed out after {timeout:?} waiting for {method} {path_prefix}; seen: {seen:#?}"
                );
            }
        }
    }

    /// Waits for a gateway payload with this opcode sent by the bot (2 IDENTIFY,
    /// 6 RESUME, 1 HEARTBEAT, ...) and returns its `d`.
    pub async fn wait_for_gateway_op(&self, op: u64, timeout: Duration) -> Value {
        self.wait_for_request("WS", &format!("op/{op}"), timeout)
            .await
    }

    /// Waits for IDENTIFY or RESUME; returns the opcode seen.
    pub async fn wait_for_session_start(&self, timeout: Duration) -> u64 {
        let r = tokio::time::timeout(timeout, async {
            loop {
                {
                    let mut log = self.shared.log.lock().unwrap();
                    if let Some(r) = log.iter_mut().find(|r| {
                        !r.taken && r.method == "WS" && (r.path == "op/2" || r.path == "op/6")
                    }) {
                        r.taken = true;
                        return r.path.clone();
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("no IDENTIFY or RESUME in time");
        r.trim_start_matches("op/").parse().unwrap()
    }

    /// Waits until a gateway connection has been sent READY or RESUMED.
    pub async fn wait_connected(&self, timeout: Duration) {
        let mut rx = self.shared.active_changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        while self.shared.active.lock().unwrap().is_none() {
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                panic!("no live gateway session within {timeout:?}");
            }
        }
    }

    /// Closes the live gateway connection with close code 4000 (unknown error),
    /// which serenity treats as resumable: it reconnects and sends RESUME.
    pub async fn drop_connection(&self) {
        self.end_connection(Cmd::Close(4000)).await;
    }

    /// Drops the live gateway TCP connection without a closing handshake.
    pub async fn kill_connection(&self) {
        self.end_connection(Cmd::Kill).await;
    }

    async fn end_connection(&self, cmd: Cmd) {
        self.wait_connected(T).await;
        let conn = self.shared.active.lock().unwrap().take();
        self.shared.active_changed.send_modify(|v| *v += 1);
        conn.expect("no live gateway connection to drop")
            .tx
            .send(cmd)
            .ok();
    }

    /// Number of IDENTIFYs answered with READY so far.
    pub fn sessions(&self) -> u64 {
        self.shared.sessions.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------- REST ----

/// A message with files, as Discord takes it: the JSON in the `payload_json` part, each file in
/// a part of its own. Recorded as the JSON with `"files": [{"name", "body"}]` added.
fn multipart(body: &[u8], boundary: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    let mut payload = json!({});
    let mut files = Vec::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let field = |key: &str| {
            head.split(&format!("{key}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_string)
        };
        if let Some(name) = field("filename") {
            files.push(json!({ "name": name, "body": content }));
        } else if field("name").as_deref() == Some("payload_json") {
            payload = serde_json::from_str(content).unwrap_or_else(|_| json!({ "raw": content }));
        }
    }
    payload["files"] = Value::Array(files);
    payload
}

async fn rest(
    State(st): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let boundary = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("multipart/form-data; boundary="))
        .map(|b| b.trim_matches('"').to_string());
    let body: Value = if body.is_empty() {
        Value::Null
    } else if let Some(boundary) = boundary {
        multipart(&body, &boundary)
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&body) }))
    };
    st.record(method.as_str(), &path, body.clone());

    let segs: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    let ok = |v: Value| json_response(StatusCode::OK, v);
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["gateway"]) => ok(json!({ "url": st.ws_url })),
        ("GET", ["gateway", "bot"]) => ok(json!({
            "url": st.ws_url,
            "shards": 1,
            "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1 },
        })),
        ("GET", ["users", "@me"]) => ok(json::bot_user()),
        ("POST", ["users", "@me", "channels"]) => {
            let rid: u64 = body["recipient_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| body["recipient_id"].as_u64())
                .unwrap_or(1);
            // deterministic DM channel id per recipient
            ok(json::dm_channel(
                rid + 5_000_000,
                json::user(rid, "recipient", false),
            ))
        }
        ("POST", ["channels", cid, "messages"]) if *cid == CLOSED_DMS_CHANNEL.to_string() => {
            json_response(
                StatusCode::FORBIDDEN,
                json!({ "message": "Cannot send messages to this user", "code": 50007 }),
            )
        }
        ("POST", ["channels", cid, "messages"]) => {
            let cid: u64 = cid.parse().unwrap_or(0);
            let content = body["content"].as_str().unwrap_or_default();
            ok(json::message(st.next_id(), cid, json::bot_user(), content))
        }
        ("PATCH", ["channels", cid, "messages", mid]) => {
            let content = body["content"].as_str().unwrap_or_default();
            ok(json::message(
                mid.parse().unwrap_or(0),
                cid.parse().unwrap_or(0),
                json::bot_user(),
                content,
            ))
        }
        ("PUT", ["applications", _app, "commands"])
        | ("PUT", ["applications", _app, "guilds", _, "commands"]) => ok(json!([])),
        ("DELETE", ["channels", _cid, "messages", _mid]) => StatusCode::NO_CONTENT.into_response(),
        ("POST", ["interactions", _id, _token, "callback"]) => {
            StatusCode::NO_CONTENT.into_response()
        }
        ("PATCH", ["webhooks", _app, _token, "messages", _mid]) => {
            let content = body["content"].as_str().unwrap_or_default();
            ok(json::message(st.next_id(), 1, json::bot_user(), content))
        }
        _ => {
            eprintln!("[fake-discord] UNKNOWN ROUTE {method} {path} body={body}");
            json_response(
                StatusCode::NOT_FOUND,
                json!({ "message": "404: Not Found (fake)", "code": 0 }),
            )
        }
    }
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

// ------------------------------------------------------------- gateway ----

static CONN_IDS: AtomicU64 = AtomicU64::new(1);

async fn serve_ws(stream: TcpStream, st: Arc<Shared>) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let conn_id = CONN_IDS.fetch_add(1, Ordering::SeqCst);
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();
    let hello = json!({ "op": 10, "s": null, "t": null, "d": { "heartbeat_interval": st.heartbeat_interval_ms } });
    if sink.send(WsMessage::Text(hello.to_string())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            msg = source.next() => {
                let text = match msg {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                let op = v["op"].as_u64().unwrap_or(u64::MAX);
                let reply = match op {
                    1 => Some(json!({ "op": 11, "s": null, "t": null, "d": null })),
                    2 => {
                        // New session: sequence restarts at 1.
                        let n = st.sessions.fetch_add(1, Ordering::SeqCst) + 1;
                        st.seq.store(1, Ordering::SeqCst);
                        st.set_active(Some(Conn { id: conn_id, tx: tx.clone() }));
                        Some(json!({ "op": 0, "t": "READY", "s": 1, "d": json::ready(&format!("session-{n}"), &st.ws_url) }))
                    }
                    6 => {
                        let s = st.seq.fetch_add(1, Ordering::SeqCst) + 1;
                        st.set_active(Some(Conn { id: conn_id, tx: tx.clone() }));
                        Some(json!({ "op": 0, "t": "RESUMED", "s": s, "d": {} }))
                    }
                    _ => None,
                };
                let sent = match reply {
                    Some(r) => sink.send(WsMessage::Text(r.to_string())).await.is_ok(),
                    None => true,
                };
                // Recorded after the reply, so a waiter sees IDENTIFY only once
                // READY is on the wire and the session is live.
                st.record("WS", &format!("op/{op}"), v["d"].clone());
                if !sent {
                    break;
                }
            }
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send(t)) => {
                    if sink.send(WsMessage::Text(t)).await.is_err() {
                        break;
                    }
                }
                Some(Cmd::Close(code)) => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: "fake drop".into() };
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                    break;
                }
                Some(Cmd::Kill) | None => break,
            },
        }
    }
    let mut active = st.active.lock().unwrap();
    if active.as_ref().is_some_and(|c| c.id == conn_id) {
        *active = None;
    }
}
