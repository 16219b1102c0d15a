//! The one retry policy for everything the outbox delivers (messages on every transport, e-mail):
//! exponential backoff with jitter, and a limit after which an entry is given up.

use chrono::Duration;

/// The outcome of one failed delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: String,
    /// The other side refused for good (a 5xx from the relay, closed DMs): no point retrying.
    pub permanent: bool,
}

/// When to try again after `attempts` failures.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
}

/// What to do with an entry after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    RetryAfter(Duration),
    GiveUp,
}

impl RetryPolicy {
    /// base × 2^(attempts−1), capped, then scaled by a jitter factor in [0.5, 1.0) so that many
    /// entries failing together do not retry together. `jitter` is in [0, 1).
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let exp = self.base * 2i32.saturating_pow(attempts.saturating_sub(1).min(20));
        let capped = exp.min(self.max_delay);
        let ms = capped.num_milliseconds() as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 0.999));
        Duration::milliseconds(ms as i64)
    }

    /// After the `attempts`-th failed attempt (counting it): retry, or give up. A server's own
    /// `retry_after` (HTTP 429) is honoured when it is longer than the backoff.
    pub fn next(
        &self,
        attempts: u32,
        failure: &Failure,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Next {
        if failure.permanent || attempts >= self.max_attempts {
            return Next::GiveUp;
        }
        let wait = self.delay(attempts, jitter);
        Next::RetryAfter(retry_after.map_or(wait, |r| r.max(wait)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::seconds(30),
            max_delay: Duration::minutes(30),
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = policy();
        assert_eq!(p.delay(1, 0.999).num_seconds(), 29);
        assert_eq!(p.delay(1, 0.0).num_seconds(), 15);
        assert_eq!(p.delay(3, 0.0).num_seconds(), 60);
        assert_eq!(p.delay(30, 0.0), Duration::minutes(15));
        assert!(p.delay(30, 0.999) <= Duration::minutes(30));
    }

    #[test]
    fn permanent_failures_and_the_last_attempt_give_up() {
        let p = policy();
        let transient = Failure {
            error: "timeout".into(),
            permanent: false,
        };
        let permanent = Failure {
            permanent: true,
            ..transient.clone()
        };
        assert_eq!(p.next(1, &permanent, None, 0.0), Next::GiveUp);
        assert_eq!(p.next(8, &transient, None, 0.0), Next::GiveUp);
        assert_eq!(
            p.next(1, &transient, None, 0.0),
            Next::RetryAfter(Duration::seconds(15))
        );
        assert_eq!(
            p.next(1, &transient, Some(Duration::minutes(2)), 0.0),
            Next::RetryAfter(Duration::minutes(2)),
            "a longer Retry-After wins"
        );
    }
}
