//! Requests per token and second (`RATE_LIMITED`, 429): a token bucket for each bearer
//! token, so one runaway client cannot starve the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept at most; past that the fullest (idle) ones are forgotten, which only
/// ever lets a client through, never refuses one wrongly.
const BUCKETS_MAX: usize = 100_000;

pub struct RateLimiter {
    /// Requests per second and token; 0 turns the limit off.
    per_second: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the bucket of `key`; false when it is empty. A bucket
    /// holds one second's worth, so short bursts up to the rate pass.
    pub fn allow(&self, key: &str, now: Instant) -> bool {
        if self.per_second == 0 {
            return true;
        }
        let rate = f64::from(self.per_second);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(key) {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < rate);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn per_second(&self) -> u32 {
        self.per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refuses_past_the_rate_and_refills() {
        let limiter = RateLimiter::new(3);
        let t = Instant::now();
        assert!((0..3).all(|_| limiter.allow("a", t)));
        assert!(!limiter.allow("a", t));
        assert!(limiter.allow("b", t), "buckets are per token");
        assert!(limiter.allow("a", t + Duration::from_millis(400)));
        assert!(!limiter.allow("a", t + Duration::from_millis(400)));
    }

    #[test]
    fn zero_is_off() {
        let limiter = RateLimiter::new(0);
        let t = Instant::now();
        assert!((0..10_000).all(|_| limiter.allow("a", t)));
    }
}
