//! Rate limits (SPEC §6): a fixed window per key (an IP, a visitor token).
//!
//! Rules: at most `limit` hits per key in each window of `window_secs`; the hit
//! that would exceed it is refused with the seconds until the window ends (≥ 1).
//! Refused hits are not counted. Time is an input.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A fixed-window limiter.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limit: u32,
    window_secs: i64,
    windows: HashMap<String, (i64, u32)>,
}

impl RateLimiter {
    /// `limit` hits per `window_secs`.
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Self {
            limit,
            window_secs: window_secs.max(1),
            windows: HashMap::new(),
        }
    }

    /// Counts a hit for `key`; `Err(retry_after_secs)` when over the limit.
    pub fn hit(&mut self, key: &str, now: DateTime<Utc>) -> Result<(), u32> {
        let t = now.timestamp();
        let start = t - t.rem_euclid(self.window_secs);
        if self.windows.len() > 10_000 {
            self.windows.retain(|_, (s, _)| *s == start);
        }
        let e = self.windows.entry(key.to_owned()).or_insert((start, 0));
        if e.0 != start {
            *e = (start, 0);
        }
        if e.1 >= self.limit {
            return Err(u32::try_from((start + self.window_secs - t).max(1)).unwrap_or(1));
        }
        e.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_window() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut r = RateLimiter::new(2, 60);
        assert!(r.hit("a", t).is_ok());
        assert!(r.hit("a", t).is_ok());
        assert_eq!(r.hit("a", t), Err(60));
        assert!(r.hit("b", t).is_ok());
        assert_eq!(r.hit("a", t + chrono::Duration::seconds(59)), Err(1));
        assert!(r.hit("a", t + chrono::Duration::seconds(60)).is_ok());
    }
}
