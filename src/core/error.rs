//! Errors a person may read. Each is a typed value whose wording comes from `data/replies.toml`
//! (`error_*` messages), so `esrbot check` sees it; anything else that goes wrong is an internal
//! error, logged with its context, and the person reads only the short apology (`message.error`).

/// A refusal to show as it is, to a member of staff or of the support team.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("there is no escalation {0}")]
    NotFound(String),
    #[error("{reference} is {status}: it cannot be {action}")]
    NotAllowed {
        reference: String,
        status: &'static str,
        action: &'static str,
    },
    #[error("{0} has no e-mail to retry")]
    NoMail(String),
    #[error("only the support team can do that")]
    NotSupport,
    #[error("too many messages")]
    RateLimited,
}

impl UserError {
    /// The message in `data/replies.toml` that words this error.
    pub fn key(&self) -> &'static str {
        match self {
            UserError::NotFound(_) => "error_not_found",
            UserError::NotAllowed { .. } => "error_not_allowed",
            UserError::NoMail(_) => "error_no_mail",
            UserError::NotSupport => "error_not_support",
            UserError::RateLimited => "error_rate_limited",
        }
    }

    /// The values its message fills in.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        match self {
            UserError::NotFound(r) | UserError::NoMail(r) => vec![("reference", r.clone())],
            UserError::NotAllowed {
                reference,
                status,
                action,
            } => vec![
                ("reference", reference.clone()),
                ("status", status.to_string()),
                ("action", action.to_string()),
            ],
            UserError::NotSupport | UserError::RateLimited => Vec::new(),
        }
    }

    /// Every key, for loading and checking the content.
    pub const KEYS: &[&str] = &[
        "error_not_found",
        "error_not_allowed",
        "error_no_mail",
        "error_not_support",
        "error_rate_limited",
    ];
}
