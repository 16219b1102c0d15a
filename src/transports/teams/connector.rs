//! The Bot Connector's REST calls the bot makes: post an activity (proactively or as a reply),
//! update one in place, and create a 1:1 conversation. Each carries the bot's token, and only to
//! a serviceUrl under `allowed_service_urls`. Answers are sorted for the outbox's one retry
//! policy: 429 (with its `Retry-After`), 412, 502, 504 and other 5xx are tried again; a 403
//! `MessageWritesBlocked` means the person blocked or removed the bot.

use std::sync::Arc;

use chrono::Duration;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use super::auth::Tokens;
use crate::clock::Clock;
use crate::config::TeamsSettings;
use crate::service::outbox::Refused;

/// The Bot Connector's error code when the bot may no longer write to a person.
const BLOCKED: &str = "MessageWritesBlocked";

/// A call that did not work.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Failed {
    /// The person blocked or removed the bot.
    Blocked,
    Refused(Refused),
}

impl From<Refused> for Failed {
    fn from(r: Refused) -> Failed {
        Failed::Refused(r)
    }
}

pub(super) struct Connector {
    http: reqwest::Client,
    settings: TeamsSettings,
    tokens: Tokens,
}

impl Connector {
    pub fn new(
        http: reqwest::Client,
        settings: &TeamsSettings,
        password: String,
        clock: Arc<dyn Clock>,
    ) -> Connector {
        Connector {
            tokens: Tokens::new(http.clone(), settings, password, clock),
            http,
            settings: settings.clone(),
        }
    }

    /// The bot's id in activities it sends.
    fn bot_id(&self) -> String {
        format!("28:{}", self.settings.app_id.trim())
    }

    /// Posts `activity` to a conversation, as a reply to `reply_to` when given; the new
    /// activity's id.
    pub async fn post(
        &self,
        service_url: &str,
        conversation: &str,
        reply_to: Option<&str>,
        activity: &Value,
    ) -> Result<String, Failed> {
        let mut segments = vec!["v3", "conversations", conversation, "activities"];
        segments.extend(reply_to);
        let url = endpoint(service_url, &segments)?;
        let answer = self.call(Method::POST, url, activity).await?;
        Ok(answer["id"].as_str().unwrap_or_default().to_string())
    }

    /// Replaces activity `id` of a conversation (a card whose escalation changed).
    pub async fn update(
        &self,
        service_url: &str,
        conversation: &str,
        id: &str,
        activity: &Value,
    ) -> Result<(), Failed> {
        let url = endpoint(
            service_url,
            &["v3", "conversations", conversation, "activities", id],
        )?;
        self.call(Method::PUT, url, activity).await.map(|_| ())
    }

    /// Creates (or finds: the connector answers with the existing one) the 1:1 conversation with
    /// a person; its id.
    pub async fn create_conversation(
        &self,
        service_url: &str,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<String, Failed> {
        let url = endpoint(service_url, &["v3", "conversations"])?;
        let body = json!({
            "bot": {"id": self.bot_id()},
            "members": [{"id": user_id}],
            "channelData": {"tenant": {"id": tenant_id}},
            "tenantId": tenant_id,
            "isGroup": false,
        });
        let answer = self.call(Method::POST, url, &body).await?;
        match answer["id"].as_str() {
            Some(id) if !id.is_empty() => Ok(id.to_string()),
            _ => Err(Refused::transient("the new conversation has no id").into()),
        }
    }

    async fn call(&self, method: Method, url: Url, body: &Value) -> Result<Value, Failed> {
        if !self.settings.allows(url.as_str()) {
            return Err(Refused::permanent(format!(
                "{} is not under teams.allowed_service_urls: no token is sent there",
                origin(&url)
            ))
            .into());
        }
        let token = self.tokens.get().await?;
        let what = format!("{method} {}", origin(&url));
        let resp = self
            .http
            .request(method, url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default())
            .send()
            .await
            .map_err(|e| Refused::transient(format!("{what}: {e}")))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(Duration::seconds);
        let bytes = resp.bytes().await.unwrap_or_default();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        let code = answer["error"]["code"].as_str().unwrap_or_default();
        let error = format!("{what}: HTTP {} {code}", status.as_u16());
        Err(match status {
            StatusCode::FORBIDDEN if code == BLOCKED => Failed::Blocked,
            StatusCode::UNAUTHORIZED => {
                // A token the connector no longer takes: fetch a new one for the next attempt.
                self.tokens.invalidate().await;
                Refused::transient(error).into()
            }
            StatusCode::TOO_MANY_REQUESTS => Refused {
                retry_after,
                ..Refused::transient(error)
            }
            .into(),
            StatusCode::PRECONDITION_FAILED => Refused::transient(error).into(),
            s if s.is_server_error() => Refused::transient(error).into(),
            _ => Refused::permanent(error).into(),
        })
    }
}

/// `service_url` with `segments` appended, each percent-encoded (conversation ids hold `:`, `;`
/// and `@`, and none may add a path of its own).
fn endpoint(service_url: &str, segments: &[&str]) -> Result<Url, Failed> {
    let mut url =
        Url::parse(service_url).map_err(|e| Refused::permanent(format!("bad serviceUrl: {e}")))?;
    url.path_segments_mut()
        .map_err(|()| Refused::permanent("bad serviceUrl"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// A URL without its path, for logs and errors (conversation ids stay out of them).
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_cannot_leave_their_path_segment() {
        let u = endpoint(
            "https://smba.trafficmanager.net/uk/",
            &[
                "v3",
                "conversations",
                "19:a@thread.tacv2;messageid=1",
                "activities",
            ],
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://smba.trafficmanager.net/uk/v3/conversations/19:a@thread.tacv2;messageid=1/activities"
        );
        let u = endpoint("https://smba.trafficmanager.net/uk", &["../../evil?x=#"]).unwrap();
        assert!(
            u.as_str()
                .starts_with("https://smba.trafficmanager.net/uk/"),
            "{u}"
        );
        assert!(!u.as_str().contains("?x"), "{u}");
    }
}
