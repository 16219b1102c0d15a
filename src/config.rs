//! Settings: `config.toml` merged over built-in defaults, then `ESRBOT_<SECTION>_<KEY>` environment
//! overrides, validated once at start-up. A bad setting is an error that names the key; secrets
//! (SMTP password, Discord token) are never read from here, only from the environment by the edge
//! that needs them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Environment variables that start with `ESRBOT_` but are secrets or process settings, not keys.
const NOT_SETTINGS: &[&str] = &[
    "ESRBOT_SMTP_PASSWORD",
    "ESRBOT_LOG",
    "ESRBOT_LOG_FORMAT",
    "ESRBOT_FAULT",
    "ESRBOT_SCALE_USERS",
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
    pub admin: AdminSettings,
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
    /// Below this confidence a message is treated as out of scope.
    pub threshold: f32,
    /// When the two best intents are closer than this, the bot asks which one was meant.
    pub ambiguity_margin: f32,
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

/// `esrbot discord`. The token comes only from the environment variable DISCORD_TOKEN.
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

    /// Parses settings text; `origin` names the file in error messages.
    pub fn from_toml(
        text: &str,
        origin: &str,
        base_dir: PathBuf,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut merged = toml::Table::try_from(Config::default()).context("default settings")?;
        let file: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            anyhow::anyhow!(
                "{origin}{}: {}",
                line.map(|l| format!(":{l}")).unwrap_or_default(),
                e.message()
            )
        })?;
        merge(&mut merged, file, origin)?;
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("ESRBOT_") && !NOT_SETTINGS.contains(&k.as_str()))
            .collect();
        env.sort();
        for (name, value) in env {
            apply_env(&mut merged, &name, &value)?;
        }
        // Round-trip through text so a type error can be located and named by its key.
        let merged_text = toml::to_string(&merged).context("settings")?;
        let mut config: Config = toml::from_str(&merged_text).map_err(|e| {
            let key = e
                .span()
                .map(|s| key_at(&merged_text, s.start))
                .unwrap_or_default();
            anyhow::anyhow!("{origin}: {key}: {}", e.message().trim())
        })?;
        config.base_dir = base_dir;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.timezone()?;
        self.admin.address()?;
        let g = &self.guide;
        within("guide.link_valid_hours", g.link_valid_hours, 1, 72)?;
        within("guide.max_attempts", g.max_attempts, 1, 20)?;
        within("guide.lock_hours", g.lock_hours, 1, 168)?;
        if !crate::understanding::text::is_email(&g.training_mailbox) {
            bail!(
                "guide.training_mailbox is not an e-mail address: {:?}",
                g.training_mailbox
            );
        }
        let u = &self.understanding;
        if !(0.0..1.0).contains(&u.threshold) {
            bail!(
                "understanding.threshold must be in [0, 1) (got {})",
                u.threshold
            );
        }
        if !(0.0..1.0).contains(&u.ambiguity_margin) {
            bail!(
                "understanding.ambiguity_margin must be in [0, 1) (got {})",
                u.ambiguity_margin
            );
        }
        let r = &self.reminders;
        if r.warn_before_minutes == 0 || r.warn_before_minutes >= g.link_valid_hours * 60 {
            bail!(
                "reminders.warn_before_minutes must be more than 0 and less than the link's life \
                 ({} minutes) (got {})",
                g.link_valid_hours * 60,
                r.warn_before_minutes
            );
        }
        within(
            "reminders.purge_after_hours",
            r.purge_after_hours,
            1,
            24 * 90,
        )?;
        let m = &self.mail;
        if !m.host.is_empty() {
            if m.port == 0 {
                bail!("mail.port must be a port number (1-65535)");
            }
            if !crate::understanding::text::is_email(&m.from) && !m.from.ends_with(".localdomain") {
                bail!("mail.from is not an e-mail address: {:?}", m.from);
            }
        }
        if m.host.contains(char::is_whitespace) {
            bail!("mail.host must not contain spaces: {:?}", m.host);
        }
        if !crate::understanding::text::is_email(&m.to) {
            bail!("mail.to is not an e-mail address: {:?}", m.to);
        }
        if m.username
            .as_deref()
            .is_some_and(|u| u.is_empty() || u.contains(['\r', '\n']))
        {
            bail!("mail.username must be a non-empty single line");
        }
        within("mail.timeout_seconds", m.timeout_seconds, 1, 600)?;
        within("mail.max_attempts", m.max_attempts, 1, 100)?;
        if m.retry_base_seconds == 0 || m.retry_max_seconds < m.retry_base_seconds {
            bail!("mail.retry_base_seconds must be at least 1 and at most mail.retry_max_seconds");
        }
        within("mail.poll_seconds", m.poll_seconds, 1, 3600)?;
        within("reminders.poll_seconds", r.poll_seconds, 1, 3600)?;
        crate::core::escalation::SupportHours::parse(
            &self.support.hours,
            self.support.response_hours,
        )
        .map_err(|e| anyhow::anyhow!("support.hours / support.response_hours: {e}"))?;
        let o = &self.outbox;
        within("outbox.poll_seconds", o.poll_seconds, 1, 3600)?;
        within("outbox.max_attempts", o.max_attempts, 1, 100)?;
        within("outbox.lease_seconds", o.lease_seconds, 1, 3600)?;
        if o.retry_base_seconds == 0 || o.retry_max_seconds < o.retry_base_seconds {
            bail!(
                "outbox.retry_base_seconds must be at least 1 and at most outbox.retry_max_seconds"
            );
        }
        let d = &self.discord;
        if !(d.api_base.starts_with("https://") || d.api_base.starts_with("http://")) {
            bail!(
                "discord.api_base must be an http(s):// address (got {:?})",
                d.api_base
            );
        }
        within(
            "discord.rate_limit_per_minute",
            d.rate_limit_per_minute,
            1,
            600,
        )?;
        if self.storage.path.as_os_str().is_empty() {
            bail!("storage.path must not be empty");
        }
        Ok(())
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

    pub fn storage_path(&self) -> PathBuf {
        self.resolve(&self.storage.path)
    }
}

/// A whole-number setting must lie in `lo..=hi`; the error names the key.
fn within(key: &str, value: u32, lo: u32, hi: u32) -> anyhow::Result<()> {
    if !(lo..=hi).contains(&value) {
        bail!("{key} must be between {lo} and {hi} (got {value})");
    }
    Ok(())
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

/// Copies `file` over `into`, refusing sections and keys the program does not know.
fn merge(into: &mut toml::Table, file: toml::Table, origin: &str) -> anyhow::Result<()> {
    for (section, value) in file {
        let Some(target) = into.get_mut(&section).and_then(toml::Value::as_table_mut) else {
            bail!("{origin}: unknown section [{section}]");
        };
        let toml::Value::Table(keys) = value else {
            bail!("{origin}: `{section}` must be a section ([{section}])");
        };
        for (key, v) in keys {
            if !target.contains_key(&key) && !section_has_optional_key(&section, &key) {
                bail!("{origin}: unknown key {section}.{key}");
            }
            target.insert(key, v);
        }
    }
    Ok(())
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
}
