//! A small but real SMTP server for tests (tokio + tokio-rustls + rcgen).
//!
//! Use from an integration test with `#[path = "support/smtp_server.rs"] mod smtp_server;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types};

const MAX_LINE: u64 = 4096;
const MAX_DATA: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct TestSmtpOptions {
    /// Bind this port on 127.0.0.1 (None = any free port).
    pub port: Option<u16>,
    /// Offer STARTTLS and refuse AUTH / MAIL before it (530).
    pub require_tls: bool,
    /// TLS from the first byte (SMTPS, for `TlsMode::Tls`).
    pub implicit_tls: bool,
    /// Require AUTH with these credentials (535 on mismatch, 530 if MAIL comes first).
    pub auth: Option<(String, String)>,
    /// Advertise only `AUTH LOGIN` (default advertises `AUTH PLAIN LOGIN`).
    pub auth_login_only: bool,
    /// Answer the end of DATA with this code (e.g. 451 or 554) instead of 250.
    pub reject_data_with: Option<u16>,
    /// Wait this long before acknowledging the end of DATA.
    pub delay_before_data_ack: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Message data after dot-unstuffing, without the final ".\r\n".
    pub data: Vec<u8>,
    pub tls: bool,
    pub authenticated_as: Option<String>,
    /// The "250 ... queued as ..." line sent back.
    pub queue_id: String,
}

impl ReceivedMessage {
    pub fn data_str(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

struct Shared {
    opts: TestSmtpOptions,
    tls: Option<TlsAcceptor>,
    messages: Mutex<Vec<ReceivedMessage>>,
    counter: Mutex<u64>,
}

pub struct TestSmtp {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl TestSmtp {
    pub async fn start(opts: TestSmtpOptions) -> TestSmtp {
        let listener = TcpListener::bind(("127.0.0.1", opts.port.unwrap_or(0)))
            .await
            .expect("test SMTP server: bind");
        let addr = listener.local_addr().unwrap();
        let tls = (opts.require_tls || opts.implicit_tls).then(make_acceptor);
        let shared = Arc::new(Shared {
            opts,
            tls,
            messages: Mutex::new(Vec::new()),
            counter: Mutex::new(0),
        });
        let sh = shared.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in the JoinSet: aborting this task drops it and aborts them.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    Ok((sock, _)) = listener.accept() => {
                        let sh = sh.clone();
                        conns.spawn(async move { let _ = handle(sock, sh).await; });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        TestSmtp {
            addr,
            shared,
            task: Some(task),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// Stops accepting, drops open connections and frees the port.
    pub async fn shutdown(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn make_acceptor() -> TlsAcceptor {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("rcgen");
    let key = pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .expect("rustls server config");
    TlsAcceptor::from(Arc::new(config))
}

#[derive(Default)]
struct Session {
    tls: bool,
    user: Option<String>,
    greeted: bool,
    from: Option<String>,
    rcpt: Vec<String>,
}

enum Next {
    Close,
    StartTls,
}

async fn handle(sock: TcpStream, sh: Arc<Shared>) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut s = Session::default();
    if sh.opts.implicit_tls {
        let tls = sh.tls.as_ref().unwrap().accept(sock).await?;
        s.tls = true;
        let mut r = BufReader::new(tls);
        reply(&mut r, "220 localhost ESMTP test server").await?;
        session(&mut r, &sh, &mut s).await?;
        return Ok(());
    }
    let mut r = BufReader::new(sock);
    reply(&mut r, "220 localhost ESMTP test server").await?;
    if let Next::StartTls = session(&mut r, &sh, &mut s).await? {
        if !r.buffer().is_empty() {
            return Ok(()); // data pipelined after STARTTLS: plaintext injection, drop
        }
        let tls = sh.tls.as_ref().unwrap().accept(r.into_inner()).await?;
        // RFC 3207: forget everything learnt before TLS.
        s = Session {
            tls: true,
            ..Session::default()
        };
        session(&mut BufReader::new(tls), &sh, &mut s).await?;
    }
    Ok(())
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    text: &str,
) -> std::io::Result<()> {
    // One write per reply: a reply split in two small writes meets Nagle + delayed ACK (~40 ms).
    let w = r.get_mut();
    w.write_all(format!("{text}\r\n").as_bytes()).await?;
    w.flush().await
}

/// Reads one CRLF line (returned with its line ending); None at EOF.
async fn read_line<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let n = (&mut *r).take(MAX_LINE).read_until(b'\n', &mut buf).await?;
    Ok((n > 0).then_some(buf))
}

fn b64_text(s: &str) -> Option<String> {
    B64.decode(s.trim())
        .ok()
        .and_then(|v| String::from_utf8(v).ok())
}

/// Angle-bracketed path of "MAIL FROM:<x> PARAMS" / "RCPT TO:<x>".
fn path_arg(arg: &str) -> Option<String> {
    let (_, rest) = arg.split_once(':')?;
    let rest = rest.trim_start();
    let inner = rest.strip_prefix('<')?;
    Some(inner[..inner.find('>')?].to_owned())
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    sh: &Shared,
    s: &mut Session,
) -> std::io::Result<Next> {
    let o = &sh.opts;
    loop {
        let Some(raw) = read_line(r).await? else {
            return Ok(Next::Close);
        };
        let line = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_owned()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        let tls_gate = o.require_tls && !s.tls;
        const KNOWN: [&str; 11] = [
            "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT",
            "VRFY",
        ];
        if !KNOWN.contains(&verb.as_str()) {
            reply(r, "500 5.5.2 Command not recognized").await?;
            continue;
        }
        match verb.as_str() {
            "EHLO" | "HELO" if arg.is_empty() => {
                reply(r, "501 5.5.4 Syntax: EHLO hostname").await?
            }
            "HELO" => {
                s.greeted = true;
                reply(r, "250 localhost").await?
            }
            "EHLO" => {
                s.greeted = true;
                s.from = None;
                s.rcpt.clear();
                let mut caps = vec![
                    "localhost".to_owned(),
                    "8BITMIME".into(),
                    "PIPELINING".into(),
                ];
                if tls_gate {
                    caps.push("STARTTLS".into());
                } else if o.auth.is_some() {
                    caps.push(
                        if o.auth_login_only {
                            "AUTH LOGIN"
                        } else {
                            "AUTH PLAIN LOGIN"
                        }
                        .into(),
                    );
                }
                let last = caps.len() - 1;
                let text: Vec<String> = caps
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("250{}{c}", if i == last { ' ' } else { '-' }))
                    .collect();
                reply(r, &text.join("\r\n")).await?
            }
            "STARTTLS" if !tls_gate => reply(r, "502 5.5.1 STARTTLS not available").await?,
            "STARTTLS" => {
                reply(r, "220 2.0.0 Ready to start TLS").await?;
                return Ok(Next::StartTls);
            }
            "NOOP" => reply(r, "250 2.0.0 OK").await?,
            "RSET" => {
                s.from = None;
                s.rcpt.clear();
                reply(r, "250 2.0.0 OK").await?
            }
            "QUIT" => {
                reply(r, "221 2.0.0 Bye").await?;
                return Ok(Next::Close);
            }
            _ if !s.greeted => reply(r, "503 5.5.1 Send EHLO/HELO first").await?,
            _ if tls_gate => reply(r, "530 5.7.0 Must issue a STARTTLS command first").await?,
            "AUTH" => {
                let Some((user, pass)) = &o.auth else {
                    reply(r, "502 5.5.1 AUTH not available").await?;
                    continue;
                };
                if s.user.is_some() {
                    reply(r, "503 5.5.1 Already authenticated").await?;
                    continue;
                }
                let mut parts = arg.split_whitespace();
                let mech = parts.next().unwrap_or("").to_ascii_uppercase();
                let initial = parts.next().map(str::to_owned);
                let got = match mech.as_str() {
                    "PLAIN" if !o.auth_login_only => {
                        let resp = match initial {
                            Some(i) => Some(i),
                            None => {
                                reply(r, "334 ").await?;
                                read_line(r)
                                    .await?
                                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                            }
                        };
                        resp.and_then(|x| b64_text(&x)).and_then(|t| {
                            let mut f = t.split('\0');
                            let (_authz, u, p) = (f.next()?, f.next()?, f.next()?);
                            Some((u.to_owned(), p.to_owned()))
                        })
                    }
                    "LOGIN" => {
                        let u = match initial {
                            Some(i) => b64_text(&i),
                            None => {
                                reply(r, &format!("334 {}", B64.encode("Username:"))).await?;
                                read_line(r)
                                    .await?
                                    .and_then(|l| b64_text(&String::from_utf8_lossy(&l)))
                            }
                        };
                        reply(r, &format!("334 {}", B64.encode("Password:"))).await?;
                        let p = read_line(r)
                            .await?
                            .and_then(|l| b64_text(&String::from_utf8_lossy(&l)));
                        u.zip(p)
                    }
                    _ => {
                        reply(r, "504 5.5.4 Unrecognized authentication type").await?;
                        continue;
                    }
                };
                match got {
                    Some((u, p)) if &u == user && &p == pass => {
                        s.user = Some(u);
                        reply(r, "235 2.7.0 Authentication successful").await?
                    }
                    Some(_) => reply(r, "535 5.7.8 Authentication credentials invalid").await?,
                    None => reply(r, "501 5.5.2 Cannot decode response").await?,
                }
            }
            "MAIL" if o.auth.is_some() && s.user.is_none() => {
                reply(r, "530 5.7.0 Authentication required").await?
            }
            "MAIL" if s.from.is_some() => reply(r, "503 5.5.1 Nested MAIL command").await?,
            "MAIL" => match path_arg(&arg) {
                Some(p) if arg.to_ascii_uppercase().starts_with("FROM:") => {
                    s.from = Some(p);
                    reply(r, "250 2.1.0 Ok").await?
                }
                _ => reply(r, "501 5.5.4 Syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" if s.from.is_none() => reply(r, "503 5.5.1 Need MAIL command").await?,
            "RCPT" => match path_arg(&arg) {
                Some(p) if arg.to_ascii_uppercase().starts_with("TO:") && p.contains('@') => {
                    s.rcpt.push(p);
                    reply(r, "250 2.1.5 Ok").await?
                }
                _ => reply(r, "501 5.1.3 Bad recipient address syntax").await?,
            },
            "DATA" if s.rcpt.is_empty() => reply(r, "503 5.5.1 Need RCPT command").await?,
            "DATA" => {
                reply(r, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut data = Vec::new();
                loop {
                    let Some(l) = read_line(r).await? else {
                        return Ok(Next::Close);
                    };
                    if l == b".\r\n" {
                        break;
                    }
                    // dot-unstuffing (RFC 5321 4.5.2)
                    data.extend_from_slice(if l.starts_with(b".") { &l[1..] } else { &l });
                    if data.len() > MAX_DATA {
                        reply(r, "552 5.3.4 Message too big").await?;
                        return Ok(Next::Close);
                    }
                }
                if let Some(d) = o.delay_before_data_ack {
                    tokio::time::sleep(d).await;
                }
                let from = s.from.take().unwrap_or_default();
                let rcpt_to = std::mem::take(&mut s.rcpt);
                if let Some(code) = o.reject_data_with {
                    let class = code / 100;
                    reply(
                        r,
                        &format!("{code} {class}.0.0 Message refused by test server"),
                    )
                    .await?;
                    continue;
                }
                let queue_id = {
                    let mut c = sh.counter.lock().unwrap();
                    *c += 1;
                    format!("250 2.0.0 Ok: queued as TEST{:05}", *c)
                };
                sh.messages.lock().unwrap().push(ReceivedMessage {
                    mail_from: from,
                    rcpt_to,
                    data,
                    tls: s.tls,
                    authenticated_as: s.user.clone(),
                    queue_id: queue_id.clone(),
                });
                reply(r, &queue_id).await?
            }
            _ => reply(r, "502 5.5.1 Command not implemented").await?, // VRFY
        }
    }
}
