//! The chat protocol on top of Socket.IO: connection lifecycle, requests (one
//! file each under `requests/`), the ordered message pipeline, delivery to
//! members, the pushed room list, and reactions to cluster signals.

mod announced;
mod cluster_sync;
mod conn;
mod connection;
mod fanout;
mod notices;
mod pipeline;
mod recovery;
mod reply;
mod requests;
mod room_list;
mod sequencer;
mod session;
mod token_expiry;
mod unsettled;

use std::sync::{Arc, Weak};
use std::time::Duration;

use socketioxide::adapter::Adapter;
use socketioxide::SocketIo;
use socketioxide_core::adapter::DefinedAdapter;
use tokio::sync::mpsc;

use crate::cluster::ClusterSignal;
use crate::history::Announcement;
use crate::shared::Shared;

pub(crate) use fanout::{broadcast, room_key, user_key};
pub(crate) use notices::{kick, Reach};
pub(crate) use pipeline::Pipeline;

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
///
/// Without `protocol` (`Config::builtin_chat` off) nothing is registered on `/`
/// and no init result is returned: the tasks idle, and the host's commands
/// still have a node to act on.
pub(crate) fn install<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    shared: Arc<Shared>,
    protocol: bool,
) -> (ChatNode<A>, Option<A::InitRes>) {
    let pipeline = Pipeline::start(shared.clone(), io.clone());
    let context = Arc::new(ChatContext { shared, pipeline });
    let init = protocol.then(|| connection::register(io, context.clone()));
    tokio::spawn(room_list::run(io.clone(), context.shared.clone()));
    tokio::spawn(expire_host_acks(Arc::downgrade(&context.shared)));
    let shared = &context.shared;
    if let Some(retention) = shared.history.retention(&shared.config.history) {
        tokio::spawn(expire_history(Arc::downgrade(shared), retention));
    }
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
            node.context.pipeline.announced(),
        ));
    }
    tokio::spawn(cluster_sync::run(
        node.io.clone(),
        shared.clone(),
        feeds.signals,
    ));
}

/// Ends the client acks the host has not answered within their timeout.
async fn expire_host_acks(shared: Weak<Shared>) {
    let mut ticks = Ticks::new(shared, Duration::from_millis(250));
    while let Some(shared) = ticks.next().await {
        shared.host.acks.expire();
    }
}

/// Forgets the history past its retention (memory history: idle rooms nobody
/// is in; SQLite: old messages), looking every quarter of the retention (at most
/// every minute), so things go at most that much later than they could.
async fn expire_history(shared: Weak<Shared>, retention: Duration) {
    let period = (retention / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut ticks = Ticks::new(shared, period);
    while let Some(shared) = ticks.next().await {
        let presence = &shared.presence.local;
        shared
            .history
            .expire(retention, |room| presence.member_count(room) > 0)
            .await;
    }
}

/// A housekeeping task's clock: a tick every period while the engine runs. It
/// holds the engine weakly, so that the task never keeps a stopped engine alive.
struct Ticks {
    tick: tokio::time::Interval,
    shared: Weak<Shared>,
}

impl Ticks {
    fn new(shared: Weak<Shared>, period: Duration) -> Self {
        Self {
            tick: tokio::time::interval(period),
            shared,
        }
    }

    /// Waits for the next tick; `None` once the engine is gone or stopping.
    async fn next(&mut self) -> Option<Arc<Shared>> {
        self.tick.tick().await;
        let shared = self.shared.upgrade()?;
        (!shared.stopping()).then_some(shared)
    }
}
