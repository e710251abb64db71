//! Flood protection: token buckets per connection, a connection cap per IP address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Open connections per IP address (IPv6 addresses grouped by network prefix),
/// optionally with a cap on all of them together.
pub(crate) struct IpCounter {
    max: usize,
    /// Most connections of all addresses together (`usize::MAX`: no cap).
    max_total: usize,
    /// IPv6 addresses sharing this many leading bits count as one address: a
    /// single client usually holds a whole /64.
    ipv6_prefix_len: u8,
    what: &'static str,
    counts: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
}

/// One counted connection; dropping it uncounts it.
pub(crate) struct IpSlot {
    counter: Arc<IpCounter>,
    ip: IpAddr,
}

impl IpCounter {
    pub(crate) fn new(max: usize, ipv6_prefix_len: u8) -> Arc<Self> {
        Self::with_total(max, usize::MAX, ipv6_prefix_len, "connections")
    }

    /// A counter that also caps all addresses together; `what` names the counted
    /// things in refusals.
    pub(crate) fn with_total(
        max: usize,
        max_total: usize,
        ipv6_prefix_len: u8,
        what: &'static str,
    ) -> Arc<Self> {
        Arc::new(Self {
            max,
            max_total,
            ipv6_prefix_len,
            what,
            counts: Mutex::default(),
            total: AtomicUsize::new(0),
        })
    }

    /// Counted now, all addresses together.
    pub(crate) fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<IpSlot, ChatError> {
        let ip = address_group(ip, self.ipv6_prefix_len);
        let mut counts = self.counts.lock();
        if self.total.load(Ordering::Relaxed) >= self.max_total {
            return Err(ChatError::new(
                ErrorCode::TooManyConnections,
                format!("the server has its most {} open", self.what),
            ));
        }
        let count = counts.entry(ip).or_default();
        if *count >= self.max {
            return Err(ChatError::new(
                ErrorCode::TooManyConnections,
                format!("at most {} {} per address", self.max, self.what),
            ));
        }
        *count += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
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
            self.counter.total.fetch_sub(1, Ordering::Relaxed);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The cap on open TCP connections: `configured`, or when that is `0` the
/// process's open-file limit less an eighth, the rest kept for history, Redis,
/// the host and the listener itself.
pub(crate) fn socket_cap(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let limit = open_file_limit().unwrap_or(1024);
    (limit - limit / 8).max(1)
}

#[cfg(unix)]
fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    Some(usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<usize> {
    None
}

/// The address a client is counted as: IPv4 as is, IPv6 reduced to its first
/// `ipv6_prefix_len` bits (an IPv4-mapped IPv6 address is its IPv4 address).
pub(crate) fn address_group(ip: IpAddr, ipv6_prefix_len: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u32::from(ipv6_prefix_len.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
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
        let counter = IpCounter::new(2, 64);
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

    #[test]
    fn ipv6_addresses_count_per_prefix() {
        let counter = IpCounter::new(1, 64);
        let _a = counter.acquire("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(counter
            .acquire("2001:db8:1:2:ffff::9".parse().unwrap())
            .is_err());
        counter.acquire("2001:db8:1:3::1".parse().unwrap()).unwrap();
        let per_address = IpCounter::new(1, 128);
        let _b = per_address.acquire("2001:db8::1".parse().unwrap()).unwrap();
        per_address.acquire("2001:db8::2".parse().unwrap()).unwrap();
        assert_eq!(
            address_group("::ffff:10.0.0.1".parse().unwrap(), 64),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address_group("2001:db8::1".parse().unwrap(), 0),
            "::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn total_cap_counts_every_address() {
        let counter = IpCounter::with_total(5, 2, 64, "sockets");
        let _a = counter.acquire("10.0.0.1".parse().unwrap()).unwrap();
        let b = counter.acquire("10.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(counter.open(), 2);
        assert!(counter.acquire("10.0.0.3".parse().unwrap()).is_err());
        drop(b);
        assert_eq!(counter.open(), 1);
        counter.acquire("10.0.0.3".parse().unwrap()).unwrap();
    }
}
