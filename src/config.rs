//! Settings: `config.toml` merged over built-in defaults, then `ESRBOT_<SECTION>_<KEY>` environment
//! overrides, validated once at start-up. A bad setting is an error that names the key; secrets
//! (SMTP password, Discord token, Teams app password) are never read from here, only from the environment by the edge
//! that needs them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::understanding::intents::{FileProblem, line_at};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Environment variables that start with `ESRBOT_` but are secrets or process settings, not keys.
const NOT_SETTINGS: &[&str] = &[
    "ESRBOT_SMTP_PASSWORD",
    "ESRBOT_LOG",
    "ESRBOT_LOG_FORMAT",
    "ESRBOT_FAULT",
    "ESRBOT_SCALE_USERS",
    "ESRBOT_WEB_KEY",
];

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub bot: BotSettings,
    pub guide: GuideSettings,
    pub understanding: UnderstandingSettings,
    pub reminders: ReminderSettings,
    pub storage: StorageSettings,
    pub mail: MailSettings,
    pub outbox: OutboxSettings,
    pub support: SupportSettings,
    pub discord: DiscordSettings,
    pub teams: TeamsSettings,
    pub admin: AdminSettings,
    pub web: WebSettings,
    pub analytics: AnalyticsSettings,
    /// Where the config file lives; relative paths are resolved against it. Not a setting.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BotSettings {
    /// IANA time zone in which clock times are read and written.
    pub timezone: String,
    pub intents_dir: PathBuf,
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuideSettings {
    pub link_valid_hours: u32,
    pub max_attempts: u32,
    pub lock_hours: u32,
    pub training_mailbox: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnderstandingSettings {
    /// How sure the bot must be that a message is about ESR access (and 70% of that sure of one
    /// intent) to answer it; otherwise it is treated as out of scope.
    pub threshold: f32,
    /// When the two best intents are closer than this, the bot asks which one was meant.
    pub ambiguity_margin: f32,
    /// The trained classifier, saved by `esrbot train` (and by any command that had to train).
    pub model_path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReminderSettings {
    pub warn_before_minutes: u32,
    /// How long after a timer ends its state is kept before it is purged.
    pub purge_after_hours: u32,
    /// How often the job dispatcher looks for jobs another process scheduled in its lanes (its
    /// own process wakes it directly).
    pub poll_seconds: u32,
}

/// The support team's working hours and response target, for telling staff when they will hear
/// back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupportSettings {
    /// Days and hours, e.g. "Mon-Fri 08:00-17:00".
    pub hours: String,
    /// Working hours within which the support team aims to reply.
    pub response_hours: u32,
}

impl Default for SupportSettings {
    fn default() -> Self {
        Self {
            hours: "Mon-Fri 08:00-17:00".into(),
            response_hours: 8,
        }
    }
}

/// Delivery of chat messages (terminal, Discord) from the durable outbox. E-mail has its own
/// retry settings under `[mail]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSettings {
    /// How often a transport looks for messages another process queued (an administrator's
    /// resolution notice).
    pub poll_seconds: u32,
    pub max_attempts: u32,
    pub retry_base_seconds: u32,
    pub retry_max_seconds: u32,
    /// An entry being delivered is leased for this long: another process sharing the database
    /// does not deliver it meanwhile, and a crashed one's lease runs out.
    pub lease_seconds: u32,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            poll_seconds: 2,
            max_attempts: 10,
            retry_base_seconds: 2,
            retry_max_seconds: 300,
            lease_seconds: 60,
        }
    }
}

impl OutboxSettings {
    /// A runner for `lanes` with these settings.
    pub fn runner(&self, lanes: Vec<String>) -> crate::service::outbox::Runner {
        crate::service::outbox::Runner {
            lanes,
            policy: crate::core::retry::RetryPolicy {
                max_attempts: self.max_attempts,
                base: chrono::Duration::seconds(self.retry_base_seconds.into()),
                max_delay: chrono::Duration::seconds(self.retry_max_seconds.into()),
            },
            poll: std::time::Duration::from_secs(self.poll_seconds.into()),
            lease: chrono::Duration::seconds(self.lease_seconds.into()),
            fault: std::env::var("ESRBOT_FAULT").ok(),
        }
    }
}

/// `esrbot serve`'s admin listener: health checks, metrics and reload, for the IT team only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Address to listen on (empty: no admin listener).
    pub listen: String,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

impl AdminSettings {
    /// The address to listen on, or None when the listener is off.
    pub fn address(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen.parse().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "admin.listen is not an address and port (e.g. 127.0.0.1:9464): {listen:?}"
            )
        })
    }
}

/// The web transport (`esrbot serve`): the staff chat at `/` and the support pages. The key that
/// signs its cookies comes only from the environment (`ESRBOT_WEB_KEY`) or the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSettings {
    /// Address to listen on (empty: no web server).
    pub listen: String,
    /// The address staff reach it at (`https://esr-help.trust.nhs.uk`), for links; empty: the
    /// request's own host.
    pub public_url: String,
    /// Who may embed the pages in a frame: the CSP `frame-ancestors` sources, e.g.
    /// `https://intranet.trust.nhs.uk`. Empty: nobody ('none').
    pub frame_ancestors: Vec<String>,
    /// Cookies only over HTTPS, and HSTS. False only for plain-HTTP testing on loopback.
    pub cookie_secure: bool,
    /// How long a support session lasts.
    pub session_hours: u32,
    /// Messages one browser (its cookie) may send a minute.
    pub rate_limit_per_minute: u32,
    /// Messages one network address may send a minute (a trust's staff may share one address).
    pub address_rate_limit_per_minute: u32,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            listen: String::new(),
            public_url: String::new(),
            frame_ancestors: Vec::new(),
            cookie_secure: true,
            session_hours: 8,
            rate_limit_per_minute: 10,
            address_rate_limit_per_minute: 300,
        }
    }
}

impl WebSettings {
    /// The address to listen on, or None when the web server is off.
    pub fn address(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen.parse().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "web.listen is not an address and port (e.g. 127.0.0.1:8080): {listen:?}"
            )
        })
    }
}

/// What the support team's analytics keep. Counters are always kept; message text only when
/// `keep_declined` says so.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsSettings {
    /// Keep the text (secrets cut out) of declined and low-confidence messages for 30 days, for
    /// the support team to review. Off by default: otherwise message text is never stored.
    pub keep_declined: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (NHS relays; port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same machine or network.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// SMTP relay host. Empty: e-mail is not configured and escalations wait in the outbox.
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub from: String,
    pub to: String,
    /// Login for the relay; the password comes only from ESRBOT_SMTP_PASSWORD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub timeout_seconds: u32,
    pub max_attempts: u32,
    pub retry_base_seconds: u32,
    pub retry_max_seconds: u32,
    /// How often the sender looks for work written by another process (e.g. a retry).
    pub poll_seconds: u32,
    /// Accept a self-signed certificate (a test relay only; never for a real one).
    pub accept_invalid_certs: bool,
}

/// Discord under `esrbot serve`. The token comes only from the environment variable DISCORD_TOKEN.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordSettings {
    /// The application's id (Developer Portal → General Information). 0 = not set.
    pub application_id: u64,
    /// Channel where escalations are posted for the support team. 0 = none.
    pub support_channel_id: u64,
    /// Roles whose members may act on escalations. Empty: nobody may (deny by default).
    pub support_role_ids: Vec<u64>,
    /// Register the slash commands in this server only (instant), instead of globally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<u64>,
    /// Channels where the bot answers every message (elsewhere only when mentioned, and in DMs).
    pub listen_channel_ids: Vec<u64>,
    /// Discord's API, or an HTTP proxy in front of it (rate-limit sharing; tests).
    pub api_base: String,
    /// Messages one person may send a minute before getting a polite "slow down".
    pub rate_limit_per_minute: u32,
}

impl Default for DiscordSettings {
    fn default() -> Self {
        Self {
            application_id: 0,
            support_channel_id: 0,
            support_role_ids: Vec::new(),
            guild_id: None,
            listen_channel_ids: Vec::new(),
            api_base: "https://discord.com".into(),
            rate_limit_per_minute: 10,
        }
    }
}

impl DiscordSettings {
    pub fn support_channel(&self) -> Option<u64> {
        (self.support_channel_id != 0).then_some(self.support_channel_id)
    }
}

/// Microsoft Teams under `esrbot serve`, on the Bot Connector's REST API. The client secret comes
/// only from the environment variable TEAMS_APP_PASSWORD.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TeamsSettings {
    /// The bot's Microsoft app id (Azure Bot resource → Configuration).
    pub app_id: String,
    /// The bot's Entra tenant (single-tenant bots).
    pub tenant_id: String,
    /// Address of the messaging endpoint (`POST /api/messages`). Empty: Teams is off.
    pub listen: String,
    /// The Bot Connector's OpenID metadata (its `jwks_uri` lists the signing keys).
    pub openid_metadata_url: String,
    /// Where the bot gets its own tokens (OAuth2 client credentials); `{tenant_id}` is filled in.
    pub token_url: String,
    /// URL prefixes a bearer token may be sent to (each ends with `/`).
    pub allowed_service_urls: Vec<String>,
    /// The Teams channel where escalations are posted. Empty: none.
    pub support_conversation_id: String,
    /// Entra object ids allowed to act on escalations. Empty: nobody (deny by default).
    pub support_user_ids: Vec<String>,
}

impl Default for TeamsSettings {
    fn default() -> Self {
        Self {
            app_id: String::new(),
            tenant_id: String::new(),
            listen: String::new(),
            openid_metadata_url:
                "https://login.botframework.com/v1/.well-known/openidconfiguration".into(),
            token_url: "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token".into(),
            allowed_service_urls: vec!["https://smba.trafficmanager.net/".into()],
            support_conversation_id: String::new(),
            support_user_ids: Vec::new(),
        }
    }
}

impl TeamsSettings {
    /// Whether Teams runs (its listener is set).
    pub fn enabled(&self) -> bool {
        !self.listen.trim().is_empty()
    }

    /// The messaging endpoint's address, when Teams is on.
    pub fn address(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        if !self.enabled() {
            return Ok(None);
        }
        self.listen.trim().parse().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "teams.listen must be an address such as 0.0.0.0:3978 (got {:?})",
                self.listen
            )
        })
    }

    pub fn support_conversation(&self) -> Option<&str> {
        let c = self.support_conversation_id.trim();
        (!c.is_empty()).then_some(c)
    }

    /// The token endpoint with the tenant filled in.
    pub fn token_endpoint(&self) -> String {
        self.token_url.replace("{tenant_id}", self.tenant_id.trim())
    }

    /// Whether a bearer token may be sent to `url`.
    pub fn allows(&self, url: &str) -> bool {
        self.allowed_service_urls
            .iter()
            .any(|prefix| url.starts_with(prefix.as_str()))
    }

    fn problems(&self, p: &mut Vec<String>) {
        if !self.enabled() {
            return;
        }
        if let Err(e) = self.address() {
            p.push(e.to_string());
        }
        for (key, value) in [("app_id", &self.app_id), ("tenant_id", &self.tenant_id)] {
            if value.trim().is_empty() {
                p.push(format!("teams.{key} must be set when teams.listen is"));
            }
        }
        for (key, url) in [
            ("openid_metadata_url", &self.openid_metadata_url),
            ("token_url", &self.token_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                p.push(format!(
                    "teams.{key} must be an http(s):// address (got {url:?})"
                ));
            }
        }
        if self.allowed_service_urls.is_empty() {
            p.push("teams.allowed_service_urls must list at least one URL prefix".into());
        }
        for prefix in &self.allowed_service_urls {
            // A prefix without its final slash would let "https://smba.trafficmanager.net.evil"
            // through.
            let scheme = prefix.starts_with("https://") || prefix.starts_with("http://");
            if !scheme || !prefix.ends_with('/') || prefix.matches('/').count() < 3 {
                p.push(format!(
                    "teams.allowed_service_urls: {prefix:?} must be an http(s):// address ending with /"
                ));
            }
        }
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: TlsMode::Starttls,
            from: "esrbot@localhost.localdomain".into(),
            to: "stees.mandatorytraining@nhs.net".into(),
            username: None,
            timeout_seconds: 30,
            max_attempts: 8,
            retry_base_seconds: 30,
            retry_max_seconds: 1800,
            poll_seconds: 5,
            accept_invalid_certs: false,
        }
    }
}

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            timezone: "Europe/London".into(),
            intents_dir: "intents".into(),
            data_dir: "data".into(),
        }
    }
}

impl Default for GuideSettings {
    fn default() -> Self {
        Self {
            link_valid_hours: 4,
            max_attempts: 3,
            lock_hours: 12,
            training_mailbox: "stees.mandatorytraining@nhs.net".into(),
        }
    }
}

impl Default for UnderstandingSettings {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            ambiguity_margin: 0.12,
            model_path: PathBuf::from("esrbot.model"),
        }
    }
}

impl Default for ReminderSettings {
    fn default() -> Self {
        Self {
            warn_before_minutes: 30,
            purge_after_hours: 24,
            poll_seconds: 60,
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            path: "esrbot.redb".into(),
        }
    }
}

impl Config {
    /// Loads `path` (which may be missing only when `required` is false: then defaults apply,
    /// relative to the working directory) and applies the `ESRBOT_*` variables from `env`.
    pub fn load(
        path: &Path,
        required: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml(&text, &path.display().to_string(), base_dir, env)
    }

    /// Parses settings text; `origin` names the file in error messages, which list every problem
    /// found, one a line.
    pub fn from_toml(
        text: &str,
        origin: &str,
        base_dir: PathBuf,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let (config, problems) = Self::parse(text, base_dir, env);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(anyhow::anyhow!(
                problems
                    .iter()
                    .map(|(line, message)| match line {
                        0 => format!("{origin}: {message}"),
                        n => format!("{origin}:{n}: {message}"),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
        }
    }

    /// Reads `path` as [`Config::load`] does and returns every problem in it, each at its line,
    /// for `esrbot check`. The settings come back too: as read when they could be (unknown keys
    /// left out, values out of range kept), else the defaults, so that the rest of the check can
    /// still find intents/ and data/.
    pub fn check_file(
        path: &Path,
        required: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> (Config, Vec<FileProblem>) {
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let defaults = Config {
            base_dir: base_dir.clone(),
            ..Config::default()
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => String::new(),
            Err(e) => {
                let problem = FileProblem::new(path, 0, format!("cannot read: {e}"));
                return (defaults, vec![problem]);
            }
        };
        let (config, problems) = Self::parse(&text, base_dir, env);
        let problems = problems
            .into_iter()
            .map(|(line, message)| FileProblem::new(path, line, message))
            .collect();
        (config.unwrap_or(defaults), problems)
    }

    /// Settings from text, defaults and environment, with every problem found: its 1-based line
    /// in the text (0 when it comes from no line of it: the environment, or a default), and a
    /// message that starts with the key it is about.
    fn parse(
        text: &str,
        base_dir: PathBuf,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> (Option<Config>, Vec<(usize, String)>) {
        let mut problems = Vec::new();
        let file: toml::Table = match toml::from_str(text) {
            Ok(file) => file,
            Err(e) => {
                let line = e.span().map_or(1, |s| line_at(text, s.start));
                problems.push((line, e.message().to_string()));
                return (None, problems);
            }
        };
        let mut lines = key_lines(text);
        let mut merged = match toml::Table::try_from(Config::default()) {
            Ok(t) => t,
            Err(e) => return (None, vec![(0, format!("default settings: {e}"))]),
        };
        for (name, message) in merge(&mut merged, file) {
            problems.push((lines.get(&name).copied().unwrap_or(0), message));
        }
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("ESRBOT_") && !NOT_SETTINGS.contains(&k.as_str()))
            .collect();
        env.sort();
        for (name, value) in env {
            if let Err(e) = apply_env(&mut merged, &name, &value) {
                problems.push((0, e.to_string()));
            }
            // A value from the environment is at no line of the file, even when the file sets it.
            if let Some((section, key)) =
                name["ESRBOT_".len()..].to_ascii_lowercase().split_once('_')
            {
                lines.remove(&format!("{section}.{key}"));
            }
        }
        // Round-trip through text so a type error can be located and named by its key.
        let merged_text = match toml::to_string(&merged) {
            Ok(t) => t,
            Err(e) => {
                problems.push((0, format!("settings: {e}")));
                return (None, problems);
            }
        };
        let mut config: Config = match toml::from_str(&merged_text) {
            Ok(c) => c,
            Err(e) => {
                let key = e
                    .span()
                    .map(|s| key_at(&merged_text, s.start))
                    .unwrap_or_default();
                problems.push((
                    lines.get(&key).copied().unwrap_or(0),
                    format!("{key}: {}", e.message().trim()),
                ));
                return (None, problems);
            }
        };
        config.base_dir = base_dir;
        problems.extend(config.validate().into_iter().map(|m| {
            let key = m.split([' ', ':']).next().unwrap_or_default();
            (lines.get(key).copied().unwrap_or(0), m)
        }));
        (Some(config), problems)
    }

    /// Every setting out of range, each message starting with the key it names.
    fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Err(e) = self.timezone() {
            p.push(e.to_string());
        }
        if let Err(e) = self.admin.address() {
            p.push(e.to_string());
        }
        let w = &self.web;
        if let Err(e) = w.address() {
            p.push(e.to_string());
        }
        within(
            &mut p,
            "web.rate_limit_per_minute",
            w.rate_limit_per_minute,
            1,
            1000,
        );
        within(
            &mut p,
            "web.address_rate_limit_per_minute",
            w.address_rate_limit_per_minute,
            1,
            100_000,
        );
        for source in &w.frame_ancestors {
            let ok = source == "'self'"
                || ((source.starts_with("https://") || source.starts_with("http://"))
                    && !source.contains(|c: char| c.is_whitespace() || c == ';' || c == ','));
            if !ok {
                p.push(format!(
                    "web.frame_ancestors: each must be 'self' or an http(s):// origin (got {source:?})"
                ));
            }
        }
        if !(w.public_url.is_empty()
            || w.public_url.starts_with("https://")
            || w.public_url.starts_with("http://"))
        {
            p.push(format!(
                "web.public_url must be an http(s):// address (got {:?})",
                w.public_url
            ));
        }
        let g = &self.guide;
        within(&mut p, "guide.link_valid_hours", g.link_valid_hours, 1, 72);
        within(&mut p, "guide.max_attempts", g.max_attempts, 1, 20);
        within(&mut p, "guide.lock_hours", g.lock_hours, 1, 168);
        if !crate::understanding::text::is_email(&g.training_mailbox) {
            p.push(format!(
                "guide.training_mailbox is not an e-mail address: {:?}",
                g.training_mailbox
            ));
        }
        let u = &self.understanding;
        if !(0.0..1.0).contains(&u.threshold) {
            p.push(format!(
                "understanding.threshold must be in [0, 1) (got {})",
                u.threshold
            ));
        }
        if !(0.0..1.0).contains(&u.ambiguity_margin) {
            p.push(format!(
                "understanding.ambiguity_margin must be in [0, 1) (got {})",
                u.ambiguity_margin
            ));
        }
        let r = &self.reminders;
        if r.warn_before_minutes == 0 || r.warn_before_minutes >= g.link_valid_hours * 60 {
            p.push(format!(
                "reminders.warn_before_minutes must be more than 0 and less than the link's life \
                 ({} minutes) (got {})",
                g.link_valid_hours * 60,
                r.warn_before_minutes
            ));
        }
        within(
            &mut p,
            "reminders.purge_after_hours",
            r.purge_after_hours,
            1,
            24 * 90,
        );
        let m = &self.mail;
        if !m.host.is_empty() {
            if m.port == 0 {
                p.push("mail.port must be a port number (1-65535)".to_string());
            }
            if !crate::understanding::text::is_email(&m.from) && !m.from.ends_with(".localdomain") {
                p.push(format!("mail.from is not an e-mail address: {:?}", m.from));
            }
        }
        if m.host.contains(char::is_whitespace) {
            p.push(format!("mail.host must not contain spaces: {:?}", m.host));
        }
        if !crate::understanding::text::is_email(&m.to) {
            p.push(format!("mail.to is not an e-mail address: {:?}", m.to));
        }
        if m.username
            .as_deref()
            .is_some_and(|u| u.is_empty() || u.contains(['\r', '\n']))
        {
            p.push("mail.username must be a non-empty single line".to_string());
        }
        within(&mut p, "mail.timeout_seconds", m.timeout_seconds, 1, 600);
        within(&mut p, "mail.max_attempts", m.max_attempts, 1, 100);
        if m.retry_base_seconds == 0 || m.retry_max_seconds < m.retry_base_seconds {
            p.push(
                "mail.retry_base_seconds must be at least 1 and at most mail.retry_max_seconds"
                    .to_string(),
            );
        }
        within(&mut p, "mail.poll_seconds", m.poll_seconds, 1, 3600);
        within(&mut p, "reminders.poll_seconds", r.poll_seconds, 1, 3600);
        if let Some(e) = crate::core::escalation::SupportHours::parse(
            &self.support.hours,
            self.support.response_hours,
        )
        .err()
        {
            p.push(format!("support.hours / support.response_hours: {e}"));
        }
        let o = &self.outbox;
        within(&mut p, "outbox.poll_seconds", o.poll_seconds, 1, 3600);
        within(&mut p, "outbox.max_attempts", o.max_attempts, 1, 100);
        within(&mut p, "outbox.lease_seconds", o.lease_seconds, 1, 3600);
        if o.retry_base_seconds == 0 || o.retry_max_seconds < o.retry_base_seconds {
            p.push(
                "outbox.retry_base_seconds must be at least 1 and at most outbox.retry_max_seconds"
                    .to_string(),
            );
        }
        let d = &self.discord;
        if !(d.api_base.starts_with("https://") || d.api_base.starts_with("http://")) {
            p.push(format!(
                "discord.api_base must be an http(s):// address (got {:?})",
                d.api_base
            ));
        }
        within(
            &mut p,
            "discord.rate_limit_per_minute",
            d.rate_limit_per_minute,
            1,
            600,
        );
        self.teams.problems(&mut p);
        within(
            &mut p,
            "web.session_hours",
            self.web.session_hours,
            1,
            24 * 7,
        );
        if self.storage.path.as_os_str().is_empty() {
            p.push("storage.path must not be empty".to_string());
        }
        p
    }

    pub fn timezone(&self) -> anyhow::Result<Tz> {
        self.bot.timezone.parse::<Tz>().map_err(|_| {
            anyhow::anyhow!(
                "bot.timezone is not an IANA time zone name: {:?}",
                self.bot.timezone
            )
        })
    }

    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    pub fn intents_dir(&self) -> PathBuf {
        self.resolve(&self.bot.intents_dir)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.resolve(&self.bot.data_dir)
    }

    pub fn model_path(&self) -> PathBuf {
        self.resolve(&self.understanding.model_path)
    }

    pub fn storage_path(&self) -> PathBuf {
        self.resolve(&self.storage.path)
    }
}

/// A whole-number setting must lie in `lo..=hi`; the problem names the key.
fn within(problems: &mut Vec<String>, key: &str, value: u32, lo: u32, hi: u32) {
    if !(lo..=hi).contains(&value) {
        problems.push(format!("{key} must be between {lo} and {hi} (got {value})"));
    }
}

/// "section.key" of the line holding byte `at` in a TOML text written by `toml::to_string`.
fn key_at(text: &str, at: usize) -> String {
    let before = &text[..at.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    let key = line.split('=').next().unwrap_or_default().trim();
    let section = before
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .unwrap_or_default();
    if section.is_empty() {
        key.to_string()
    } else {
        format!("{section}.{key}")
    }
}

/// Copies `file` over `into`, leaving out the sections and keys the program does not know; each
/// one left out comes back as its name (`section` or `section.key`) and a message.
fn merge(into: &mut toml::Table, file: toml::Table) -> Vec<(String, String)> {
    let mut unknown = Vec::new();
    for (section, value) in file {
        let Some(target) = into.get_mut(&section).and_then(toml::Value::as_table_mut) else {
            unknown.push((section.clone(), format!("unknown section [{section}]")));
            continue;
        };
        let toml::Value::Table(keys) = value else {
            let message = format!("`{section}` must be a section ([{section}])");
            unknown.push((section, message));
            continue;
        };
        for (key, v) in keys {
            if !target.contains_key(&key) && !section_has_optional_key(&section, &key) {
                let name = format!("{section}.{key}");
                unknown.push((name.clone(), format!("unknown key {name}")));
                continue;
            }
            target.insert(key, v);
        }
    }
    unknown
}

/// The 1-based line of each section (`bot`) and key (`bot.timezone`) written in `text`, from the
/// parser's spans, so a problem is reported where it was written.
fn key_lines(text: &str) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(table) = toml::de::DeTable::parse(text) else {
        return out;
    };
    for (section, value) in table.get_ref() {
        let name = section.get_ref().to_string();
        let line = line_at(text, section.span().start);
        if let toml::de::DeValue::Table(keys) = value.get_ref() {
            for (key, _) in keys {
                out.insert(
                    format!("{name}.{}", key.get_ref()),
                    line_at(text, key.span().start),
                );
            }
        }
        out.insert(name, line);
    }
    out
}

/// Keys whose default is "unset" and so are missing from the serialized defaults.
fn section_has_optional_key(section: &str, key: &str) -> bool {
    OPTIONAL_KEYS.contains(&(section, key))
}

const OPTIONAL_KEYS: &[(&str, &str)] = &[("mail", "username"), ("discord", "guild_id")];

/// Applies one `ESRBOT_<SECTION>_<KEY>` variable, typed like the setting it replaces.
fn apply_env(merged: &mut toml::Table, name: &str, value: &str) -> anyhow::Result<()> {
    let rest = name["ESRBOT_".len()..].to_ascii_lowercase();
    let (section, key) = rest
        .split_once('_')
        .ok_or_else(|| anyhow::anyhow!("{name}: expected ESRBOT_<SECTION>_<KEY>"))?;
    let Some(table) = merged.get_mut(section).and_then(toml::Value::as_table_mut) else {
        bail!("{name}: unknown section `{section}`");
    };
    let parsed = match table.get(key) {
        Some(toml::Value::String(_)) => toml::Value::String(value.to_string()),
        Some(toml::Value::Integer(_)) => {
            toml::Value::Integer(value.trim().parse().map_err(|_| {
                anyhow::anyhow!("{name}: {section}.{key} must be a whole number (got {value:?})")
            })?)
        }
        Some(toml::Value::Float(_)) => toml::Value::Float(value.trim().parse().map_err(|_| {
            anyhow::anyhow!("{name}: {section}.{key} must be a number (got {value:?})")
        })?),
        Some(toml::Value::Boolean(_)) => {
            toml::Value::Boolean(value.trim().parse().map_err(|_| {
                anyhow::anyhow!("{name}: {section}.{key} must be true or false (got {value:?})")
            })?)
        }
        Some(toml::Value::Array(_)) => {
            // A list is written comma-separated: ESRBOT_DISCORD_SUPPORT_ROLE_IDS=1,2
            let items = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| match s.parse::<i64>() {
                    Ok(n) => toml::Value::Integer(n),
                    Err(_) => toml::Value::String(s.to_string()),
                })
                .collect();
            toml::Value::Array(items)
        }
        None if section_has_optional_key(section, key) => match value.trim().parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => toml::Value::String(value.to_string()),
        },
        _ => bail!("{name}: unknown key {section}.{key}"),
    };
    table.insert(key.to_string(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> anyhow::Result<Config> {
        Config::from_toml(
            text,
            "config.toml",
            PathBuf::from("/srv/esrbot"),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_follow_the_guide() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.guide.link_valid_hours, 4);
        assert_eq!(c.guide.max_attempts, 3);
        assert_eq!(c.guide.lock_hours, 12);
        assert_eq!(c.guide.training_mailbox, "stees.mandatorytraining@nhs.net");
        assert_eq!(c.storage_path(), PathBuf::from("/srv/esrbot/esrbot.redb"));
    }

    #[test]
    fn environment_wins_over_the_file_and_is_typed() {
        let c = load(
            "[guide]\nlock_hours = 10\n[storage]\npath = \"a.redb\"\n",
            &[
                ("ESRBOT_GUIDE_LOCK_HOURS", "6"),
                ("ESRBOT_STORAGE_PATH", "/data/b.redb"),
            ],
        )
        .unwrap();
        assert_eq!(c.guide.lock_hours, 6);
        assert_eq!(c.storage_path(), PathBuf::from("/data/b.redb"));
    }

    #[test]
    fn bad_settings_name_the_key() {
        let e = load("[guide]\nlock_hours = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("guide.lock_hours"), "{e}");
        let e = load("[guide]\nlock_hourz = 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("guide.lock_hourz"), "{e}");
        let e = load("[bot]\ntimezone = \"Mars/Base\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bot.timezone"), "{e}");
        let e = load("", &[("ESRBOT_GUIDE_LOCK_HOURS", "twelve")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("guide.lock_hours"), "{e}");
        let e = load("", &[("ESRBOT_NOPE_X", "1")]).unwrap_err().to_string();
        assert!(e.contains("ESRBOT_NOPE_X"), "{e}");
        let e = load("[guide\n", &[]).unwrap_err().to_string();
        assert!(e.starts_with("config.toml:1"), "{e}");
    }

    #[test]
    fn every_bad_setting_is_listed_at_its_line() {
        let e = load(
            "[guide]\nlock_hourz = 3\nmax_attempts = 0\nlock_hours = 5\n[nope]\nx = 1\n",
            &[("ESRBOT_GUIDE_LOCK_HOURS", "0")],
        )
        .unwrap_err()
        .to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines,
            [
                "config.toml:2: unknown key guide.lock_hourz",
                "config.toml:5: unknown section [nope]",
                "config.toml:3: guide.max_attempts must be between 1 and 20 (got 0)",
                "config.toml: guide.lock_hours must be between 1 and 168 (got 0)",
            ],
            "{e}"
        );
    }

    #[test]
    fn mail_settings_from_file_and_environment() {
        let c = load(
            "[mail]\nhost = \"relay.nhs.net\"\ntls = \"starttls\"\nfrom = \"esrbot@nhs.net\"\n",
            &[
                ("ESRBOT_MAIL_PORT", "2525"),
                ("ESRBOT_MAIL_USERNAME", "bot"),
                ("ESRBOT_MAIL_TLS", "none"),
            ],
        )
        .unwrap();
        assert_eq!(c.mail.port, 2525);
        assert_eq!(c.mail.tls, TlsMode::None);
        assert_eq!(c.mail.username.as_deref(), Some("bot"));
        assert_eq!(c.mail.to, "stees.mandatorytraining@nhs.net");
        let e = load("[mail]\ntls = \"ssl\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls"), "{e}");
        let e = load("[mail]\npassword = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("mail.password"), "{e}");
        let e = load("", &[("ESRBOT_MAIL_PORT", "99999")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("mail.port"), "{e}");
        let e = load("[mail]\ntls = \"ssl\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("mail.tls"), "{e}");
    }

    #[test]
    fn secrets_in_the_environment_are_not_settings() {
        assert!(load("", &[("ESRBOT_SMTP_PASSWORD", "x")]).is_ok());
    }

    #[test]
    fn teams_is_off_until_its_listener_is_set_and_then_checked() {
        let c = load("", &[]).unwrap();
        assert!(!c.teams.enabled());
        assert!(
            c.teams
                .allows("https://smba.trafficmanager.net/uk/v3/conversations")
        );
        assert!(
            !c.teams
                .allows("https://smba.trafficmanager.net.evil.example/")
        );
        let e = load("[teams]\nlisten = \"127.0.0.1:3978\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("teams.app_id") && e.contains("teams.tenant_id"),
            "{e}"
        );
        let e = load(
            "[teams]\nlisten = \"127.0.0.1:3978\"\napp_id = \"a\"\ntenant_id = \"t\"\nallowed_service_urls = [\"https://smba.trafficmanager.net\"]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("teams.allowed_service_urls"), "{e}");
        let c = load(
            "[teams]\nlisten = \"127.0.0.1:3978\"\napp_id = \"a\"\n",
            &[
                ("ESRBOT_TEAMS_TENANT_ID", "t1"),
                ("ESRBOT_TEAMS_SUPPORT_USER_IDS", "aad-1, aad-2"),
            ],
        )
        .unwrap();
        assert!(c.teams.enabled());
        assert_eq!(
            c.teams.token_endpoint(),
            "https://login.microsoftonline.com/t1/oauth2/v2.0/token"
        );
        assert_eq!(c.teams.support_user_ids, ["aad-1", "aad-2"]);
        assert!(
            load("[teams]\npassword = \"x\"\n", &[]).is_err(),
            "no secret in the file"
        );
    }
}
