//! Rate limits (SPEC §6).
//!
//! Rules:
//! - [`Bucket`] is a token bucket: `limit` hits at once, refilled evenly over
//!   `window_secs`, so no burst across a window edge gets more than `limit` plus what
//!   refilled meanwhile. Its state is a small value the caller stores, so a limit
//!   survives a restart; [`Bucket::worth_storing`] says when it must be stored (at
//!   most half full). A refused hit is not counted and names the seconds to wait.
//! - [`RateLimiter`] keeps buckets per key in memory (for limits that may reset).
//! - [`client_key`] is the key of an address: IPv4 as is, IPv6 by its /64 prefix
//!   (one subscriber usually holds a whole /64).
//! - [`lockout_secs`]: how long a login id waits after consecutive failed sign-ins.
//! - [`pass_typing`]: which typing frames are passed on.
//! - Time is an input.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A token bucket's stored state: tokens left (in thousandths) at `at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    pub milli_tokens: i64,
    pub at_ms: i64,
}

impl Bucket {
    /// A full bucket of `limit` at `now`.
    pub fn full(limit: u32, now: DateTime<Utc>) -> Self {
        Self {
            milli_tokens: i64::from(limit) * 1000,
            at_ms: now.timestamp_millis(),
        }
    }

    /// Whether this state must be stored after a take: once the bucket is at most half
    /// full (a burst), so that a restart cannot refill it. A fuller bucket may live in
    /// memory only: losing it gives back at most half of `limit`, which refills within
    /// half a window anyway, and an ordinary conversation then writes nothing for it.
    pub fn worth_storing(&self, limit: u32) -> bool {
        self.milli_tokens <= i64::from(limit.max(1)) * 500
    }

    /// Takes one token (`limit` per `window_secs`); `Err(seconds to wait)` when empty.
    pub fn take(&mut self, limit: u32, window_secs: i64, now: DateTime<Utc>) -> Result<(), u32> {
        let cap = i64::from(limit.max(1)) * 1000;
        let window_ms = window_secs.max(1) * 1000;
        let t = now.timestamp_millis();
        let elapsed = (t - self.at_ms).max(0);
        // Refill: `limit` tokens per window, in thousandths.
        let refill = elapsed.saturating_mul(cap) / window_ms;
        if self.milli_tokens + refill >= cap {
            self.milli_tokens = cap;
            self.at_ms = t;
        } else {
            // Keep the remainder of time that did not make a whole thousandth.
            self.milli_tokens += refill;
            self.at_ms += refill * window_ms / cap;
        }
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            return Ok(());
        }
        let missing = 1000 - self.milli_tokens;
        let wait_ms = (missing * window_ms + cap - 1) / cap;
        Err(u32::try_from(((wait_ms + 999) / 1000).max(1)).unwrap_or(u32::MAX))
    }
}

/// The rate-limit key of a client address: IPv6 addresses count by their /64.
pub fn client_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// Token buckets per key, in memory.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limit: u32,
    window_secs: i64,
    buckets: HashMap<String, Bucket>,
}

impl RateLimiter {
    /// `limit` hits per `window_secs`.
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Self {
            limit,
            window_secs: window_secs.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Counts a hit for `key`; `Err(retry_after_secs)` when over the limit.
    pub fn hit(&mut self, key: &str, now: DateTime<Utc>) -> Result<(), u32> {
        if self.buckets.len() > 10_000 {
            let horizon = now.timestamp_millis() - self.window_secs * 1000;
            self.buckets.retain(|_, b| b.at_ms > horizon);
        }
        let (limit, window) = (self.limit, self.window_secs);
        self.buckets
            .entry(key.to_owned())
            .or_insert_with(|| Bucket::full(limit, now))
            .take(limit, window, now)
    }
}

/// Consecutive failed sign-ins that are free; each further one doubles the wait.
pub const FREE_FAILURES: i64 = 5;
/// Longest lockout.
pub const MAX_LOCKOUT_SECS: i64 = 15 * 60;

/// Seconds an account is locked after `failures` consecutive failed sign-ins.
pub fn lockout_secs(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        0
    } else {
        (30i64 << (failures - FREE_FAILURES).min(10)).min(MAX_LOCKOUT_SECS)
    }
}

/// Passes a typing frame on when the state changes (a stop at once, a start at most
/// every 100 ms) or, while it stays "typing", every 3 s; `last` is the state passed on
/// last and when (ms). Coalesces floods of typing frames.
pub fn pass_typing(last: Option<(bool, i64)>, typing: bool, now_ms: i64) -> bool {
    match last {
        None => true,
        Some((was, at)) if was != typing => !typing || now_ms - at >= 100,
        Some((_, at)) => typing && now_ms - at >= 3000,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bucket_is_stored_once_it_is_half_empty() {
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap();
        let mut b = Bucket::full(10, t0);
        let mut stored_after = None;
        for n in 1..=10 {
            b.take(10, 60, t0).unwrap();
            if b.worth_storing(10) && stored_after.is_none() {
                stored_after = Some(n);
            }
        }
        assert_eq!(stored_after, Some(5), "from the fifth take of ten on");
        assert!(b.take(10, 60, t0).is_err());
        assert!(b.worth_storing(10));
        // Refilled past half: memory only again.
        b.take(10, 60, t0 + chrono::Duration::seconds(60)).unwrap();
        assert!(!b.worth_storing(10));
    }

    use super::*;

    #[test]
    fn limits_per_key_and_refills_evenly() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut r = RateLimiter::new(2, 60);
        assert!(r.hit("a", t).is_ok());
        assert!(r.hit("a", t).is_ok());
        assert_eq!(r.hit("a", t), Err(30));
        assert!(r.hit("b", t).is_ok());
        assert!(r.hit("a", t + chrono::Duration::seconds(29)).is_err());
        assert!(r.hit("a", t + chrono::Duration::seconds(30)).is_ok());
        assert!(r.hit("a", t + chrono::Duration::seconds(30)).is_err());
    }

    #[test]
    fn no_burst_across_a_window_edge() {
        // 30 per minute; 120 tries spread over two seconds around a minute edge.
        let t0 = DateTime::from_timestamp(1_800_000_059, 0).unwrap();
        let mut b = Bucket::full(30, t0);
        let passed = (0..120)
            .filter(|i| {
                b.take(30, 60, t0 + chrono::Duration::milliseconds(i * 1000 / 60))
                    .is_ok()
            })
            .count();
        assert!(passed <= 31, "{passed} passed");
    }

    #[test]
    fn lockout_doubles_and_caps() {
        assert_eq!(lockout_secs(4), 0);
        assert_eq!(lockout_secs(5), 30);
        assert_eq!(lockout_secs(6), 60);
        assert_eq!(lockout_secs(50), MAX_LOCKOUT_SECS);
    }

    #[test]
    fn typing_is_coalesced() {
        assert!(pass_typing(None, true, 0));
        assert!(!pass_typing(Some((true, 0)), true, 2_999));
        assert!(pass_typing(Some((true, 0)), true, 3_000));
        assert!(pass_typing(Some((true, 0)), false, 1));
        assert!(!pass_typing(Some((false, 0)), true, 99));
        assert!(pass_typing(Some((false, 0)), true, 100));
        assert!(!pass_typing(Some((false, 0)), false, 10_000));
    }

    #[test]
    fn ipv6_counts_by_64() {
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1"),
            client_key("2001:db8:1:2:bbbb::9")
        );
        assert_ne!(client_key("2001:db8:1:2::1"), client_key("2001:db8:1:3::1"));
        assert_eq!(client_key("192.0.2.7"), "192.0.2.7");
    }
}
