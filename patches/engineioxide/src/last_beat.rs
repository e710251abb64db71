//! When a session's client was last heard from, kept on the socket for the
//! engine's heartbeat task (`crate::heartbeat`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "v3")]
use std::time::Duration;

use tokio::time::Instant;

/// When a session's client was last heard from (a pong in v4, a ping in v3), as
/// milliseconds since [`epoch`] plus one (zero: never). Kept on the socket.
#[derive(Debug, Default)]
pub(crate) struct LastBeat(AtomicU64);

impl LastBeat {
    pub(crate) fn record(&self) {
        self.0
            .store(millis_since_epoch(Instant::now()) + 1, Ordering::Relaxed);
    }

    /// Whether the client was heard from at `at` or later.
    pub(crate) fn since(&self, at: Instant) -> bool {
        self.0.load(Ordering::Relaxed) > millis_since_epoch(at)
    }

    /// When the client was last heard from, if ever.
    #[cfg(feature = "v3")]
    pub(crate) fn last(&self) -> Option<Instant> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(epoch() + Duration::from_millis(ms - 1)),
        }
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis_since_epoch(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_millis() as u64
}
