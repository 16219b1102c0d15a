//! Per-person rate limiting for chat transports: a sliding one-minute window. Kept in memory on
//! purpose: after a restart everyone starts with a fresh allowance, which is harmless, and the hot
//! path never touches the disk.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

pub struct RateLimiter {
    per_minute: usize,
    seen: HashMap<String, VecDeque<DateTime<Utc>>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute: per_minute.max(1) as usize,
            seen: HashMap::new(),
        }
    }

    /// Whether `user` may send a message at `now` (and counts it if so).
    pub fn allow(&mut self, user: &str, now: DateTime<Utc>) -> bool {
        let window = self.seen.entry(user.to_string()).or_default();
        while window
            .front()
            .is_some_and(|t| now - *t >= Duration::minutes(1))
        {
            window.pop_front();
        }
        if window.len() >= self.per_minute {
            return false;
        }
        window.push_back(now);
        // Forget people who have gone quiet, so the map does not grow without bound.
        if self.seen.len() > 10_000 {
            self.seen
                .retain(|_, w| w.back().is_some_and(|t| now - *t < Duration::minutes(1)));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_n_a_minute_per_person() {
        let t0: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let mut rl = RateLimiter::new(3);
        assert!((0..3).all(|i| rl.allow("a", t0 + Duration::seconds(i))));
        assert!(!rl.allow("a", t0 + Duration::seconds(10)));
        assert!(rl.allow("b", t0 + Duration::seconds(10)));
        assert!(rl.allow("a", t0 + Duration::seconds(61)));
    }
}
