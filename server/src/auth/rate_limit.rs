//! A token bucket, used per client address for the HTTP API and per connection for sync
//! messages: a sustained rate with a burst allowance.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// HTTP API requests per second per client address, sustained.
pub const API_REQUESTS_PER_SECOND_MAX: u32 = 50;
/// HTTP API requests one address may make at once.
pub const API_REQUESTS_BURST_MAX: u32 = 200;
/// Addresses remembered by the API limiter before idle ones are forgotten.
pub const API_LIMITER_ADDRESSES_MAX: usize = 100_000;

#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    tokens: f64,
    last_ms: u64,
    per_second: f64,
    burst: f64,
}

impl TokenBucket {
    pub fn new(per_second: u32, burst: u32, now_ms: u64) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            last_ms: now_ms,
            per_second: f64::from(per_second),
            burst: f64::from(burst),
        }
    }

    /// Takes one token; false when the bucket is empty.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let elapsed_ms = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        // u64 → f64 loses precision only beyond 2^53 ms, which is 285,000 years.
        #[allow(clippy::cast_precision_loss)]
        let refill = elapsed_ms as f64 * self.per_second / 1_000.0;
        self.tokens = (self.tokens + refill).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn is_full(&self, now_ms: u64) -> bool {
        let mut probe = *self;
        probe.take(now_ms);
        probe.tokens + 1.0 >= probe.burst
    }
}

/// One bucket per client address.
#[derive(Debug, Default)]
pub struct AddressLimiter {
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl AddressLimiter {
    pub fn allow(&self, address: IpAddr, now_ms: u64) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() >= API_LIMITER_ADDRESSES_MAX {
            buckets.retain(|_, bucket| !bucket.is_full(now_ms));
        }
        if buckets.len() >= API_LIMITER_ADDRESSES_MAX && !buckets.contains_key(&address) {
            // Full of addresses that are all busy: refuse newcomers rather than grow.
            return false;
        }
        buckets
            .entry(address)
            .or_insert_with(|| {
                TokenBucket::new(API_REQUESTS_PER_SECOND_MAX, API_REQUESTS_BURST_MAX, now_ms)
            })
            .take(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut bucket = TokenBucket::new(10, 3, 0);
        assert!(bucket.take(0) && bucket.take(0) && bucket.take(0));
        assert!(!bucket.take(0));
        assert!(bucket.take(100), "one token refills in 100 ms at 10/s");
        assert!(!bucket.take(100));
    }
}
