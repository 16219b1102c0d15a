//! The e-mail edge: escalation e-mails over SMTP with `lettre` (tokio + rustls, no OpenSSL).
//! Only this module imports lettre. One SMTP connection per message, so a relay that went down
//! and came back is picked up without reconnect logic. The SMTP password is never logged.

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::Config;
use crate::core::records::Escalation;
use crate::understanding::content::{Content, render};

pub use crate::config::TlsMode;

#[derive(Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub from: String,
    pub to: String,
    pub username: Option<String>,
    /// Read from the environment only; never logged (see the `Debug` impl).
    pub password: Option<String>,
    /// Connect timeout and overall deadline for one `send` (connect, TLS, AUTH, DATA).
    pub timeout: Duration,
    /// Only for tests against a self-signed server.
    pub accept_invalid_certs: bool,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}

impl Settings {
    /// The `[mail]` settings plus the password, which comes only from the environment
    /// (`ESRBOT_SMTP_PASSWORD`); an empty password counts as none.
    pub fn from_config(c: &Config, password: Option<String>) -> anyhow::Result<Settings> {
        if c.mail.host.is_empty() {
            anyhow::bail!(
                "e-mail is not configured: set mail.host in config.toml (or ESRBOT_MAIL_HOST)"
            );
        }
        Ok(Settings {
            host: c.mail.host.clone(),
            port: c.mail.port,
            tls: c.mail.tls,
            from: c.mail.from.clone(),
            to: c.mail.to.clone(),
            username: c.mail.username.clone(),
            password: password.filter(|p| !p.is_empty()),
            timeout: Duration::from_secs(c.mail.timeout_seconds.into()),
            accept_invalid_certs: c.mail.accept_invalid_certs,
        })
    }
}

/// The stable Message-ID of an escalation's e-mail: a resend carries the same one.
pub fn message_id(reference: &str) -> String {
    format!("<{reference}@esrbot>")
}

/// The e-mail that tells the training mailbox about a changed nhs.net address, worded by
/// `mail_subject` and `mail_body` in `data/replies.toml`.
pub fn escalation_message(e: &Escalation, tz: chrono_tz::Tz, content: &Content) -> Email {
    let name = e
        .display_name
        .as_deref()
        .map(one_line)
        .unwrap_or_else(|| "(no display name)".into());
    let asked = e
        .created_at
        .with_timezone(&tz)
        .format("%A %-d %B %Y at %H:%M %Z")
        .to_string();
    let address = e
        .new_address
        .as_deref()
        .map(one_line)
        .unwrap_or_else(|| "(none given)".into());
    // What they volunteered (an old address, a staff or assignment number), a line each.
    let details: String = e
        .volunteered
        .lines()
        .iter()
        .map(|(label, value)| format!("{:<18}{}\n", format!("{label}: "), one_line(value)))
        .collect();
    let id = message_id(&e.reference);
    let user = one_line(e.user.as_str());
    let vars = [
        ("reference", e.reference.as_str()),
        ("kind", e.kind.as_str()),
        ("name", name.as_str()),
        ("who", user.as_str()),
        ("address", address.as_str()),
        ("details", details.as_str()),
        ("asked", asked.as_str()),
        ("message_id", id.as_str()),
    ];
    Email {
        message_id: id.clone(),
        subject: one_line(&render(content.message("mail_subject"), &vars)),
        text_body: render(content.message("mail_body"), &vars),
    }
}

/// A message for `esrbot mail test`.
pub fn test_message(s: &Settings, now: chrono::DateTime<chrono::Utc>) -> Email {
    Email {
        message_id: format!("<test-{}@esrbot>", now.timestamp_millis()),
        subject: "esrbot test e-mail".into(),
        text_body: format!(
            "This is a test e-mail from esrbot, sent at {} UTC to check the relay {}:{}.\n",
            now.format("%Y-%m-%d %H:%M:%S"),
            s.host,
            s.port
        ),
    }
}

/// Control characters (CR/LF) turned into spaces: user-supplied text never makes a new line in
/// a header or a forged line in the body's table.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[derive(Debug, Clone)]
pub struct Email {
    /// Stable id such as `<ESC-00001@esrbot>`; a retry re-uses it so duplicates can be spotted.
    pub message_id: String,
    pub subject: String,
    pub text_body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth retrying later: server down, timeout, 4xx, network error.
    Transient(String),
    /// Retrying will not help: 5xx, bad address/credentials, TLS misconfiguration.
    Permanent(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Transient(m) => write!(f, "transient mail error: {m}"),
            SendError::Permanent(m) => write!(f, "permanent mail error: {m}"),
        }
    }
}

impl std::error::Error for SendError {}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Mailbox,
    timeout: Duration,
}

/// Parses `"Name <user@host>"` or `"user@host"` with lettre's parser. Control
/// characters (CR/LF header injection) are refused first with a clear message
/// (lettre would refuse them too, but only as a bare `InvalidInput`).
pub fn parse_mailbox(what: &str, s: &str) -> Result<Mailbox, String> {
    if s.chars().any(|c| c.is_control()) {
        return Err(format!(
            "{what} address contains control characters (CR/LF?): refused"
        ));
    }
    s.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("invalid {what} address {s:?}: {e}"))
}

fn check_message_id(id: &str) -> Result<(), String> {
    let inner = id
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .ok_or_else(|| format!("Message-ID {id:?} must look like <left@right>"))?;
    let ok_char = |c: char| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '@');
    match inner.split_once('@') {
        Some((l, r))
            if !l.is_empty()
                && !r.is_empty()
                && l.chars().all(ok_char)
                && r.chars().all(ok_char) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "Message-ID {id:?} must look like <left@right> (printable ASCII, no spaces)"
        )),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// lettre reports a failed TLS handshake (e.g. "invalid peer certificate: UnknownIssuer")
/// as a *connection* error; tokio-rustls wraps the rustls error in an
/// `io::Error` of kind `InvalidData`, which a refused/reset connection never is.
fn tls_rejected(e: &lettre::transport::smtp::Error) -> bool {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::InvalidData;
        }
        src = s.source();
    }
    false
}

/// Maps a lettre SMTP error to Transient / Permanent.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let msg = e.to_string();
    if e.is_permanent() {
        SendError::Permanent(msg) // 5xx reply
    } else if e.is_transient() || e.is_timeout() {
        SendError::Transient(msg) // 4xx reply or I/O timeout
    } else if e.is_tls() || e.is_client() || tls_rejected(e) {
        // certificate rejected, STARTTLS not offered, no common AUTH mechanism,
        // 8BITMIME/SMTPUTF8 missing: configuration problems, a retry won't fix them
        SendError::Permanent(msg)
    } else {
        // connection refused/reset, network error, garbled response, shut down
        SendError::Transient(msg)
    }
}

fn format_response(r: &Response) -> String {
    let text: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), text.join(" "))
        .trim_end()
        .to_owned()
}

impl Mailer {
    pub fn new(settings: &Settings) -> Result<Mailer, String> {
        let from = parse_mailbox("from", &settings.from)?;
        let to = parse_mailbox("to", &settings.to)?;
        if settings.host.is_empty() || settings.host.chars().any(|c| c.is_control() || c == ' ') {
            return Err(format!("invalid SMTP host {:?}", settings.host));
        }
        if settings.timeout.is_zero() {
            return Err("SMTP timeout must be > 0".into());
        }

        let tls_params = || {
            TlsParameters::builder(settings.host.clone())
                .dangerous_accept_invalid_certs(settings.accept_invalid_certs)
                .build()
                .map_err(|e| format!("TLS set-up failed: {e}"))
        };
        let tls = match settings.tls {
            TlsMode::Starttls => Tls::Required(tls_params()?),
            TlsMode::Tls => Tls::Wrapper(tls_params()?),
            TlsMode::None => Tls::None,
        };

        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
                .port(settings.port)
                .tls(tls)
                .timeout(Some(settings.timeout));

        match (&settings.username, &settings.password) {
            (Some(user), Some(pass)) => {
                if settings.tls == TlsMode::None && !is_loopback(&settings.host) {
                    return Err(
                        "refusing to send SMTP credentials without TLS to a non-local host".into(),
                    );
                }
                builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
            }
            (Some(_), None) => return Err("SMTP username set but password missing (env)".into()),
            (None, Some(_)) => return Err("SMTP password set but username missing".into()),
            (None, None) => {}
        }

        Ok(Mailer {
            transport: builder.build(),
            from,
            to,
            timeout: settings.timeout,
        })
    }

    fn build_message(&self, mail: &Email) -> Result<Message, SendError> {
        check_message_id(&mail.message_id).map_err(SendError::Permanent)?;
        // lettre would RFC 2047-encode CR/LF safely, but a folded subject reads better.
        let subject = one_line(&mail.subject);
        let b = Message::builder()
            .message_id(Some(mail.message_id.clone()))
            .from(self.from.clone())
            .to(self.to.clone())
            .subject(subject)
            .date_now()
            .header(ContentType::TEXT_PLAIN); // text/plain; charset=utf-8
        // String body: lettre picks 7bit / quoted-printable / base64, never raw 8bit.
        b.body(mail.text_body.clone())
            .map_err(|e| SendError::Permanent(format!("cannot build message: {e}")))
    }

    /// Sends one message; Ok(server's final response text, e.g. "250 2.0.0 Ok: queued as X")
    ///
    /// NB: a timeout after the message data was sent is reported as Transient even
    /// though the server may have accepted it: retry with the same Message-ID.
    pub async fn send(&self, mail: &Email) -> Result<String, SendError> {
        let message = self.build_message(mail)?;
        // lettre's tokio transport applies `timeout` to the TCP connect only; reads
        // (greeting, EHLO, DATA ack) would wait forever, hence this overall deadline.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(resp)) => Ok(format_response(&resp)),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(SendError::Transient(format!(
                "SMTP send timed out after {:?}",
                self.timeout
            ))),
        }
    }
}

/// The mail transport as the registry sees it: it delivers the training mailbox's lane.
pub const SPEC: crate::transports::TransportSpec = crate::transports::TransportSpec {
    channel: "mail",
    per_recipient_lanes: false,
    hosts_support: |_| false,
    shows_cards: false,
    messages: &["mail_subject", "mail_body"],
};

/// Delivers escalation e-mail from the outbox's mail lane.
pub struct MailDelivery {
    pub mailer: Mailer,
}

impl crate::service::outbox::Deliver for MailDelivery {
    async fn deliver(
        &self,
        svc: &std::sync::Arc<crate::service::Service>,
        _id: u64,
        entry: &crate::core::records::Outgoing,
    ) -> Result<crate::service::outbox::Handed, crate::service::outbox::Refused> {
        use crate::core::records::Item;
        use crate::service::outbox::{Handed, Refused};
        let Item::EscalationMail { reference } = &entry.item else {
            return Err(Refused::permanent("only escalation e-mail goes by e-mail"));
        };
        let (s, r) = (svc.clone(), reference.clone());
        let found = tokio::task::spawn_blocking(move || s.store.escalation(&r))
            .await
            .map_err(|e| Refused::transient(e.to_string()))?
            .map_err(|e| Refused::transient(format!("{e:#}")))?;
        // Erased at the person's request since it was queued: nothing to send.
        let Some(e) = found else {
            return Ok(Handed::default());
        };
        let engine = svc.engine();
        let mail = escalation_message(&e, engine.rules.tz, engine.content());
        metrics::counter!(crate::metrics::MAIL_ATTEMPTS).increment(1);
        let sent = self.mailer.send(&mail).await;
        if sent.is_err() {
            metrics::counter!(crate::metrics::MAIL_FAILURES).increment(1);
        }
        match sent {
            Ok(answer) => Ok(Handed {
                receipt: Some(answer),
                remember: None,
            }),
            Err(err) if err.is_transient() => Err(Refused::transient(err.to_string())),
            Err(err) => Err(Refused::permanent(err.to_string())),
        }
    }
}

/// The e-mail sender, when `[mail]` is configured (else e-mail waits in the outbox).
pub fn sender(
    config: &Config,
    svc: &std::sync::Arc<crate::service::Service>,
    clock: &std::sync::Arc<dyn crate::clock::Clock>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static>>
{
    if config.mail.host.is_empty() {
        tracing::warn!("mail.host is not set: e-mail changes stay queued until it is");
        return Ok(None);
    }
    let settings = Settings::from_config(config, std::env::var("ESRBOT_SMTP_PASSWORD").ok())?;
    let mailer = Mailer::new(&settings).map_err(anyhow::Error::msg)?;
    Ok(Some(crate::service::outbox::run(
        svc.clone(),
        clock.clone(),
        runner(config),
        MailDelivery { mailer },
        shutdown,
    )))
}

/// How the mail lane is delivered: the `[mail]` retry settings, and a lease longer than one
/// attempt may take.
pub fn runner(config: &Config) -> crate::service::outbox::Runner {
    let m = &config.mail;
    crate::service::outbox::Runner {
        lanes: vec![crate::service::MAIL_LANE.to_string()],
        policy: crate::core::retry::RetryPolicy {
            max_attempts: m.max_attempts,
            base: chrono::Duration::seconds(m.retry_base_seconds.into()),
            max_delay: chrono::Duration::seconds(m.retry_max_seconds.into()),
        },
        poll: Duration::from_secs(m.poll_seconds.into()),
        lease: chrono::Duration::seconds(i64::from(m.timeout_seconds) + 5),
        fault: std::env::var("ESRBOT_FAULT").ok(),
    }
}
