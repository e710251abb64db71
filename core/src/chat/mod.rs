//! The chat protocol on top of Socket.IO: connection lifecycle, requests,
//! the ordered message pipeline and the pushed room list.

mod connection;
mod pipeline;
mod reply;
mod requests;
mod room_list;
mod sequencer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use socketioxide::{BroadcastError, SocketIo};
use socketioxide_core::adapter::DefinedAdapter;
use tokio::sync::Notify;

use crate::acks::PendingAcks;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::events::EventBus;
use crate::goodbye::GoodbyeTracker;
use crate::history::History;
use crate::identity::Authenticator;
use crate::limits::IpCounter;
use crate::presence::Presence;
use crate::stats::{Counters, Stats, Uptime};

pub(crate) use pipeline::Pipeline;
pub(crate) use requests::system_notice;

/// The client's address, put into every request's extensions by the server that
/// accepted the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub SocketAddr);

/// State shared by every connection, independent of the Socket.IO adapter.
pub(crate) struct Shared {
    pub config: Config,
    pub auth: Authenticator,
    pub presence: Presence,
    pub history: History,
    pub events: EventBus,
    pub acks: PendingAcks,
    pub counters: Arc<Counters>,
    pub uptime: Uptime,
    pub ips: Arc<IpCounter>,
    pub room_list_changed: Notify,
    /// Long-polling clients told goodbye at stop, until they polled for it.
    pub goodbye: Arc<GoodbyeTracker>,
    stopping: AtomicBool,
    /// Requests admitted and not finished, over all connections.
    in_flight: AtomicU64,
    drained: Notify,
    /// Numbers private message ids and message keys.
    sequence: AtomicU64,
    /// Makes private message ids unique across restarts and nodes.
    id_prefix: String,
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
            acks: PendingAcks::new(Duration::from_millis(config.host_ack_timeout_ms)),
            counters: Arc::default(),
            uptime: Uptime::default(),
            ips: IpCounter::new(config.limits.max_connections_per_ip),
            room_list_changed: Notify::new(),
            goodbye: Arc::default(),
            stopping: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            drained: Notify::new(),
            sequence: AtomicU64::new(1),
            id_prefix: crate::cluster::node_id(),
            history,
            events,
            config,
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        // SeqCst with `in_flight`: see `admit_request`.
        self.stopping.load(Ordering::SeqCst)
    }

    /// Counts an admitted request until the guard is dropped.
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Waits until every admitted request has finished (at stop, after new ones
    /// are refused), so that nothing accepted reaches the pipeline after its flush.
    pub(crate) async fn requests_drained(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            drained.await;
        }
    }

    pub(crate) fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the room list task so that it sees the flag and ends.
        self.room_list_changed.notify_one();
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

    /// A key unique to one accepted room message (see `NewMessage::key`).
    pub(crate) fn next_message_key(&self) -> Arc<str> {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        Arc::from(format!("{}-{n}", self.id_prefix))
    }

    pub(crate) fn next_private_id(&self) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("p{}-{n}", self.id_prefix)
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
            events_dropped: self.events.dropped(),
            pending_host_acks: self.acks.len() as u64,
            uptime_ms: self.uptime.ms(),
            cluster: self.cluster().map(|cluster| cluster.stats()),
        }
    }
}

/// An admitted request, counted until dropped.
pub(crate) struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

/// What every handler of one engine needs.
pub(crate) struct ChatContext<A: Adapter> {
    pub shared: Arc<Shared>,
    pub pipeline: Pipeline<A>,
}

/// Emits through the adapter (to every node in cluster mode). When Redis is
/// down, or fails right now, the emit reaches this node's clients only: a node
/// keeps serving its own clients through an outage.
pub(crate) async fn broadcast<A, T, F>(
    shared: &Shared,
    target: F,
    event: &str,
    data: &T,
) -> Result<(), BroadcastError>
where
    A: Adapter,
    T: serde::Serialize + ?Sized,
    F: Fn() -> BroadcastOperators<A>,
{
    let result = match shared.cluster() {
        None => target().emit(event, data).await,
        Some(cluster) if !cluster.is_up() => target().local().emit(event, data).await,
        Some(cluster) => match target().emit(event, data).await {
            Err(BroadcastError::Adapter(e)) => {
                cluster.mark_down(&format!("broadcast: {e}"));
                target().local().emit(event, data).await
            }
            other => other,
        },
    };
    count_dropped(&shared.counters, &result);
    result
}

/// Counts the recipients of a broadcast whose queue was full.
pub(crate) fn count_dropped(counters: &Counters, result: &Result<(), BroadcastError>) {
    if let Err(BroadcastError::Socket(errors)) = result {
        let full = errors
            .iter()
            .filter(|e| matches!(e, socketioxide::SocketError::InternalChannelFull))
            .count();
        counters.dropped(full as u64);
    }
}

/// The Socket.IO room that carries a chat room's traffic. Prefixed so that chat
/// rooms and per-user rooms can never collide.
pub(crate) fn room_key(room: &str) -> String {
    format!("r:{room}")
}

/// The Socket.IO room holding every connection of one user.
pub(crate) fn user_key(user_id: &str) -> String {
    format!("u:{user_id}")
}

/// Registers the chat on the `/` namespace and starts its background tasks
/// (message pipeline, room list pushes, host ack expiry) on the current runtime.
pub(crate) fn install<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    shared: Arc<Shared>,
) -> (Arc<ChatContext<A>>, A::InitRes) {
    let pipeline = Pipeline::start(shared.clone());
    let context = Arc::new(ChatContext { shared, pipeline });
    let init = connection::register(io, context.clone());
    tokio::spawn(room_list::run(io.clone(), context.shared.clone()));
    tokio::spawn(expire_host_acks(Arc::downgrade(&context.shared)));
    (context, init)
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
        shared.acks.expire();
    }
}
