//! Flood protection: token buckets per connection, a connection cap per IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use crate::protocol::{ChatError, ErrorCode};

/// A token bucket refilled at `per_second`, holding at most `burst` tokens.
pub(crate) struct Bucket(DefaultDirectRateLimiter);

impl Bucket {
    pub(crate) fn new(per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self(RateLimiter::direct(
            Quota::per_second(rate).allow_burst(burst),
        ))
    }

    /// Takes a token, or refuses with `rate_limited` and when to retry.
    pub(crate) fn take(&self, what: &str) -> Result<(), ChatError> {
        self.0.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ChatError {
                retry_after_ms: Some(wait.as_millis().max(1) as u64),
                ..ChatError::new(
                    ErrorCode::RateLimited,
                    format!("too many {what}; slow down"),
                )
            }
        })
    }
}

/// Open connections per IP address.
pub(crate) struct IpCounter {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it uncounts it.
pub(crate) struct IpSlot {
    counter: Arc<IpCounter>,
    ip: IpAddr,
}

impl IpCounter {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            counts: Mutex::default(),
        })
    }

    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<IpSlot, ChatError> {
        let mut counts = self.counts.lock();
        let count = counts.entry(ip).or_default();
        if *count >= self.max {
            return Err(ChatError::new(
                ErrorCode::TooManyConnections,
                format!("at most {} connections per address", self.max),
            ));
        }
        *count += 1;
        Ok(IpSlot {
            counter: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.counter.counts.lock();
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let bucket = Bucket::new(1, 3);
        for _ in 0..3 {
            bucket.take("messages").unwrap();
        }
        let err = bucket.take("messages").unwrap_err();
        assert_eq!(err.code, ErrorCode::RateLimited);
        assert!(err.retry_after_ms.unwrap() > 0);
    }

    #[test]
    fn ip_slots_are_counted_and_released() {
        let counter = IpCounter::new(2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = counter.acquire(ip).unwrap();
        let _b = counter.acquire(ip).unwrap();
        assert_eq!(
            counter.acquire(ip).err().unwrap().code,
            ErrorCode::TooManyConnections
        );
        counter.acquire("10.0.0.2".parse().unwrap()).unwrap();
        drop(a);
        counter.acquire(ip).unwrap();
    }
}
