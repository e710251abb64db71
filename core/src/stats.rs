//! Counters the host can read with [`ChatHandle::stats`](crate::ChatHandle::stats).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;

use crate::protocol::ErrorCode;

/// A snapshot of the engine's state and counters since it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Socket.IO connections open now.
    pub connections: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused at connect (bad token, per-IP limit, stopping), and
    /// Engine.IO handshakes refused for the per-IP session limit.
    pub connections_refused: u64,
    /// Distinct users online now.
    pub users_online: u64,
    /// Rooms with at least one member now.
    pub rooms: u64,
    /// Room messages stored and delivered since start.
    pub messages: u64,
    /// Private messages delivered since start.
    pub private_messages: u64,
    /// Requests refused with an error code since start.
    pub requests_rejected: u64,
    /// Packets not delivered because their client read too slowly (its queue of
    /// `transport.max_buffer_size` packets was full), since start.
    pub packets_dropped: u64,
    /// Host events dropped because the host fell behind (`event_queue_capacity`).
    pub events_dropped: u64,
    /// Events queued for the host callback now.
    pub events_queued: u64,
    /// Bytes of events queued for the host callback now (`event_queue_bytes`).
    pub events_queued_bytes: u64,
    /// Bytes of host commands given and not yet applied (`command_queue_bytes`).
    pub commands_queued_bytes: u64,
    /// Acknowledgements of client events waiting for the host now.
    pub pending_host_acks: u64,
    /// Connections waiting at a connect gate for the host's decision now.
    pub pending_gates: u64,
    /// Milliseconds since start.
    pub uptime_ms: u64,
    /// Engine.IO sessions open now, from their handshake on (whether or not they
    /// joined a namespace yet).
    pub sessions: u64,
    /// TCP connections open now on the engine's own listener and adopted ones.
    pub sockets: u64,
    /// TCP connections closed at accept for `limits.max_sockets_per_ip` or
    /// `limits.max_sockets`, since start.
    pub sockets_refused: u64,
    /// Cluster mode only: Redis connection and node state.
    pub cluster: Option<crate::cluster::ClusterStats>,
    /// Refused requests and connections by error code (`rate_limited`,
    /// `too_many_connections`, ...) since start; only codes seen so far. The
    /// refusals of host namespaces' own connect handlers carry no code and are
    /// only in `connections_refused`.
    pub refusals: BTreeMap<String, u64>,
}

pub(crate) struct Counters {
    started: Instant,
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub messages: AtomicU64,
    pub private_messages: AtomicU64,
    pub requests_rejected: AtomicU64,
    pub packets_dropped: AtomicU64,
    pub sockets_refused: AtomicU64,
    /// By error code; a map under a lock, since refusals are rare next to
    /// messages and the codes many.
    refusals: Mutex<BTreeMap<&'static str, u64>>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            connections: AtomicU64::default(),
            connections_total: AtomicU64::default(),
            connections_refused: AtomicU64::default(),
            messages: AtomicU64::default(),
            private_messages: AtomicU64::default(),
            requests_rejected: AtomicU64::default(),
            packets_dropped: AtomicU64::default(),
            sockets_refused: AtomicU64::default(),
            refusals: Mutex::default(),
        }
    }
}

impl Counters {
    pub(crate) fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts a request refused with `code` (`requests_rejected` and `refusals`).
    pub(crate) fn rejected(&self, code: ErrorCode) {
        Self::add(&self.requests_rejected, 1);
        *self.refusals.lock().entry(code.as_str()).or_default() += 1;
    }

    /// Counts a connection or Engine.IO session refused with `code`
    /// (`connections_refused` and `refusals`).
    pub(crate) fn refused(&self, code: ErrorCode) {
        Self::add(&self.connections_refused, 1);
        *self.refusals.lock().entry(code.as_str()).or_default() += 1;
    }

    /// The refusals by code so far.
    pub(crate) fn refusals(&self) -> BTreeMap<String, u64> {
        let refusals = self.refusals.lock();
        refusals
            .iter()
            .map(|(code, n)| (code.to_string(), *n))
            .collect()
    }

    /// Counts packets dropped for slow clients, with a warning at each power of two
    /// so that a flood of drops does not also flood the log.
    pub(crate) fn dropped(&self, packets: u64) {
        if packets == 0 {
            return;
        }
        let before = self.packets_dropped.fetch_add(packets, Ordering::Relaxed);
        let after = before + packets;
        if (before + 1).next_power_of_two() <= after {
            tracing::warn!(
                dropped = after,
                "clients reading too slowly: packets dropped (transport.max_buffer_size)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_code_and_in_their_totals() {
        let counters = Counters::default();
        counters.rejected(ErrorCode::RateLimited);
        counters.rejected(ErrorCode::RateLimited);
        counters.rejected(ErrorCode::InvalidRoom);
        counters.refused(ErrorCode::TooManyConnections);
        assert_eq!(Counters::get(&counters.requests_rejected), 3);
        assert_eq!(Counters::get(&counters.connections_refused), 1);
        let by_code: Vec<(String, u64)> = counters.refusals().into_iter().collect();
        assert_eq!(
            by_code,
            [
                ("invalid_room".to_string(), 1),
                ("rate_limited".to_string(), 2),
                ("too_many_connections".to_string(), 1)
            ]
        );
    }
}
