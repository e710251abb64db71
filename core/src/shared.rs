//! The state every part of a running engine shares, whatever the Socket.IO
//! adapter: configuration, identities, presence, history, the host's side,
//! counters and the lifecycle.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::acks::PendingAcks;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::events::EventBus;
use crate::gates::PendingGates;
use crate::history::History;
use crate::identity::Authenticator;
use crate::lifecycle::Lifecycle;
use crate::limits::IpCounter;
use crate::presence::Presence;
use crate::stats::{Counters, Stats};

/// State shared by every connection, independent of the Socket.IO adapter.
pub(crate) struct Shared {
    pub config: Config,
    /// Decides identities (open names, tokens).
    pub auth: Authenticator,
    pub presence: Presence,
    pub history: History,
    /// The host's side: its events and the custom events waiting for its answer.
    pub host: HostLink,
    pub counters: Arc<Counters>,
    /// Running or stopping, and the requests in flight.
    pub lifecycle: Arc<Lifecycle>,
    pub ips: Arc<IpCounter>,
    /// Engine.IO sessions per address, from the handshake on (`handshake_limit`).
    pub sessions: Arc<IpCounter>,
    /// TCP connections per address and in all, from accept on (`server`).
    pub sockets: Arc<IpCounter>,
    /// Membership changed: the room list task pushes new lists.
    pub room_list_changed: Notify,
    pub ids: IdSource,
}

/// The host's side of the engine.
pub(crate) struct HostLink {
    pub events: EventBus,
    /// Events waiting for the host's acknowledgement.
    pub acks: PendingAcks,
    /// Connections waiting at a connect gate for the host's decision.
    pub gates: PendingGates,
}

/// Numbers accepted messages: private message ids and room message keys.
pub(crate) struct IdSource {
    sequence: AtomicU64,
    /// Makes ids unique across restarts and nodes.
    prefix: String,
}

impl IdSource {
    fn new() -> Self {
        Self {
            sequence: AtomicU64::new(1),
            prefix: crate::cluster::node_id(),
        }
    }

    /// A key unique to one accepted room message (see `NewMessage::key`).
    pub(crate) fn message_key(&self) -> Arc<str> {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        Arc::from(format!("{}-{n}", self.prefix))
    }
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        history: History,
        events: EventBus,
        cluster: Option<Arc<Cluster>>,
    ) -> Self {
        let open_mode = config.identity.mode == crate::config::IdentityMode::Open;
        Self {
            auth: Authenticator::new(&config.identity),
            presence: Presence::new(cluster, open_mode),
            host: HostLink {
                events,
                acks: PendingAcks::new(Duration::from_millis(config.host_ack_timeout_ms)),
                gates: PendingGates::new(Duration::from_millis(config.host_ack_timeout_ms)),
            },
            counters: Arc::default(),
            lifecycle: Arc::default(),
            ips: IpCounter::new(
                config.limits.max_connections_per_ip,
                config.limits.ipv6_prefix_len,
            ),
            sessions: IpCounter::with_total(
                config.limits.max_sessions_per_ip,
                usize::MAX,
                config.limits.ipv6_prefix_len,
                "sessions",
            ),
            sockets: IpCounter::with_total(
                config.limits.max_sockets_per_ip,
                crate::limits::socket_cap(config.limits.max_sockets),
                config.limits.ipv6_prefix_len,
                "sockets",
            ),
            room_list_changed: Notify::new(),
            ids: IdSource::new(),
            history,
            config,
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.lifecycle.stopping()
    }

    /// Membership changed: room lists are due here and, in cluster mode, on every
    /// other node.
    pub(crate) async fn presence_changed(&self) {
        self.room_list_changed.notify_one();
        if let Some(cluster) = self.presence.cluster() {
            cluster.publish_change().await;
        }
    }

    pub(crate) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.presence.cluster()
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            connections: Counters::get(&c.connections),
            connections_total: Counters::get(&c.connections_total),
            connections_refused: Counters::get(&c.connections_refused),
            users_online: self.presence.local.online_count() as u64,
            rooms: self.presence.local.room_count() as u64,
            messages: Counters::get(&c.messages),
            private_messages: Counters::get(&c.private_messages),
            requests_rejected: Counters::get(&c.requests_rejected),
            packets_dropped: Counters::get(&c.packets_dropped),
            events_dropped: self.host.events.dropped(),
            events_queued: self.host.events.backlog().0,
            events_queued_bytes: self.host.events.backlog().1,
            // Filled in by the handle, which holds the command queue.
            commands_queued_bytes: 0,
            pending_host_acks: self.host.acks.len() as u64,
            pending_gates: self.host.gates.len() as u64,
            uptime_ms: c.uptime_ms(),
            sessions: self.sessions.open() as u64,
            sockets: self.sockets.open() as u64,
            sockets_refused: Counters::get(&c.sockets_refused),
            cluster: self.cluster().map(|cluster| cluster.stats()),
            refusals: c.refusals(),
        }
    }
}
