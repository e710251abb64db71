//! The chat protocol on top of Socket.IO: connection lifecycle, requests (one
//! file each under `requests/`), the ordered message pipeline, delivery to
//! members, the pushed room list, and reactions to cluster signals.

mod cluster_sync;
mod conn;
mod connection;
mod fanout;
mod notices;
mod pipeline;
mod reply;
mod requests;
mod room_list;
mod sequencer;
mod session;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socketioxide::adapter::Adapter;
use socketioxide::SocketIo;
use socketioxide_core::adapter::DefinedAdapter;
use tokio::sync::{mpsc, Notify};

use crate::acks::PendingAcks;
use crate::cluster::{Cluster, ClusterSignal};
use crate::config::Config;
use crate::events::EventBus;
use crate::history::{Announcement, History};
use crate::identity::Authenticator;
use crate::lifecycle::Lifecycle;
use crate::limits::IpCounter;
use crate::presence::Presence;
use crate::stats::{Counters, Stats};

pub(crate) use fanout::{broadcast, room_key, user_key};
pub(crate) use notices::{kick, Reach};
pub(crate) use pipeline::Pipeline;

/// The client's address, put into every request's extensions by the server that
/// accepted the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub SocketAddr);

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
    /// Membership changed: the room list task pushes new lists.
    pub room_list_changed: Notify,
    pub ids: IdSource,
}

/// The host's side of the chat.
pub(crate) struct HostLink {
    pub events: EventBus,
    pub acks: PendingAcks,
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

    pub(crate) fn private_id(&self) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("p{}-{n}", self.prefix)
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
            },
            counters: Arc::default(),
            lifecycle: Arc::default(),
            ips: IpCounter::new(config.limits.max_connections_per_ip),
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
            pending_host_acks: self.host.acks.len() as u64,
            uptime_ms: c.uptime_ms(),
            cluster: self.cluster().map(|cluster| cluster.stats()),
        }
    }
}

/// What every handler of one engine needs.
pub(crate) struct ChatContext<A: Adapter> {
    pub shared: Arc<Shared>,
    pub pipeline: Pipeline<A>,
}

/// The chat on one Socket.IO server: what the host's commands and the stop
/// sequence act on.
pub(crate) struct ChatNode<A: Adapter> {
    pub io: SocketIo<A>,
    pub context: Arc<ChatContext<A>>,
}

/// The cluster side of a node being installed: its signals, and the
/// announcements of stored messages (from Redis, and journaled ones from here).
pub(crate) struct ClusterFeeds {
    pub signals: mpsc::Receiver<ClusterSignal>,
    pub driver: crate::cluster::ResilientDriver,
    pub journaled: mpsc::Receiver<Announcement>,
}

/// Registers the chat on the `/` namespace and starts its background tasks
/// (message pipeline, room list pushes, host ack expiry, and in cluster mode the
/// delivery of announced messages and the reactions to cluster signals) on the
/// current runtime.
pub(crate) fn install<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    shared: Arc<Shared>,
) -> (ChatNode<A>, A::InitRes) {
    let pipeline = Pipeline::start(shared.clone(), io.clone());
    let context = Arc::new(ChatContext { shared, pipeline });
    let init = connection::register(io, context.clone());
    tokio::spawn(room_list::run(io.clone(), context.shared.clone()));
    tokio::spawn(expire_host_acks(Arc::downgrade(&context.shared)));
    let node = ChatNode {
        io: io.clone(),
        context,
    };
    (node, init)
}

/// Starts the cluster side of an installed chat.
pub(crate) fn install_cluster<A: Adapter>(node: &ChatNode<A>, feeds: ClusterFeeds) {
    let shared = &node.context.shared;
    if let Some(history) = shared.history.redis() {
        tokio::spawn(fanout::deliver_announced(
            node.io.clone(),
            shared.clone(),
            feeds.driver,
            history.channel(),
            feeds.journaled,
        ));
    }
    tokio::spawn(cluster_sync::run(
        node.io.clone(),
        shared.clone(),
        feeds.signals,
    ));
}

async fn expire_host_acks(shared: std::sync::Weak<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.stopping() {
            return;
        }
        shared.host.acks.expire();
    }
}
