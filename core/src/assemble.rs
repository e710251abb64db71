//! Putting the parts of a chat together on the current runtime: history,
//! presence, the cluster connection, the event thread, the Socket.IO server and
//! its HTTP layer. Used by both ways of running a chat (see `builder.rs`).

use std::sync::Arc;
use std::time::Duration;

use socketioxide::adapter::Emitter;
use socketioxide::{ParserConfig, SocketIo, SocketIoBuilder, TransportType};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::chat::{self, ClusterFeeds};
use crate::cluster::{Cluster, ClusterError, ResilientDriver};
use crate::config::{Config, ConfigError};
use crate::events::{EventBus, HostEvents, QueueBounds};
use crate::handle::ChatHandle;
use crate::handshake_limit::HandshakeLimit;
use crate::history::{migrate, History, HistoryError, Journal, RedisHistory};
use crate::plain_ws::PlainSockets;
use crate::service::{ChatLayer, SOCKET_IO_PATH};
use crate::shared::Shared;
use crate::shutdown::Sessions;
use crate::sockets::{self, CommandQueue};

/// Why a chat could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The history store could not be opened.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The thread that delivers events to the host could not be started.
    #[error("cannot start the event thread: {0}")]
    EventThread(std::io::Error),
    /// Cluster mode could not start (Redis unreachable, subscriptions refused).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// A chat, assembled and serving on the current runtime.
pub(crate) struct Assembled {
    /// Its HTTP face, to put in front of a router.
    pub layer: ChatLayer,
    /// The host's commands.
    pub handle: ChatHandle,
    /// What stop acts on.
    pub sessions: Arc<dyn Sessions>,
    /// Plain WebSocket connections, closed at stop.
    pub plain: Arc<PlainSockets>,
}

/// Builds the chat on the current runtime.
pub(crate) async fn assemble(
    config: Config,
    on_event: Option<HostEvents>,
) -> Result<Assembled, BuildError> {
    config.validate()?;
    // A cluster node keeps history in Redis and never opens the standalone
    // history (a file from before cluster mode stays as it is); its local store is
    // the outage journal.
    let store = match config.cluster.redis_url {
        Some(_) => {
            migrate::warn_if_unmigrated(&config);
            let journal = Journal::open(&config)?;
            let (cluster, driver) = Cluster::connect(&config.cluster).await?;
            LocalStore::Cluster(journal, cluster, driver)
        }
        None => LocalStore::Standalone(History::open(&config.history)?),
    };
    let events = match on_event {
        Some(host) => EventBus::start(
            QueueBounds {
                events: config.event_queue_capacity,
                bytes: config.event_queue_bytes,
            },
            host,
        )
        .map_err(BuildError::EventThread)?,
        None => EventBus::disabled(),
    };
    match store {
        LocalStore::Standalone(local_history) => {
            let shared = Arc::new(Shared::new(config, local_history, events, None));
            let (service, io) = socket_io_builder(&shared.config).build_svc();
            let protocol = shared.config.builtin_chat;
            let plain = PlainSockets::new(shared.clone());
            let (node, _) = chat::install(&io, shared.clone(), protocol);
            let (queue, _) = sockets::start(io, shared.clone(), plain.clone(), !protocol);
            Ok(finish(shared, node, queue, plain, service))
        }
        LocalStore::Cluster(journal, cluster, driver) => {
            assemble_cluster(config, journal, events, cluster, driver).await
        }
    }
}

/// What a node keeps on its own and how it reaches the others.
enum LocalStore {
    /// Its history.
    Standalone(History),
    /// Its outage journal, and the cluster.
    Cluster(Journal, Arc<Cluster>, ResilientDriver),
}

/// Cluster mode: history in Redis (the journal keeps outages), traffic
/// through the Redis adapter.
async fn assemble_cluster(
    config: Config,
    journal: Journal,
    events: EventBus,
    cluster: Arc<Cluster>,
    driver: ResilientDriver,
) -> Result<Assembled, BuildError> {
    let (history, journaled) = RedisHistory::new(cluster.clone(), journal);
    let shared = Arc::new(Shared::new(
        config,
        History::Redis(history),
        events,
        Some(cluster.clone()),
    ));
    let timeout = Duration::from_millis(shared.config.cluster.redis_timeout_ms);
    let adapter = RedisAdapterCtr::new_with_driver(
        driver.clone(),
        RedisAdapterConfig::new()
            .with_prefix(format!("{}-socket.io", shared.config.cluster.key_prefix))
            .with_request_timeout(timeout),
    );
    let (service, io) = socket_io_builder(&shared.config)
        .with_adapter::<CustomRedisAdapter<Emitter, ResilientDriver>>(adapter)
        .build_svc();
    let protocol = shared.config.builtin_chat;
    let (node, chat_subscribed) = chat::install(&io, shared.clone(), protocol);
    let plain = PlainSockets::new(shared.clone());
    let (queue, host_subscribed) =
        sockets::start(io.clone(), shared.clone(), plain.clone(), !protocol);
    if let Some(subscribed) = chat_subscribed.or(host_subscribed) {
        tokio::time::timeout(timeout * 3, subscribed)
            .await
            .map_err(|_| ClusterError::Subscribe("Redis did not answer".into()))?
            .map_err(|e| ClusterError::Subscribe(e.to_string()))?;
    }
    let signals =
        crate::cluster::spawn_tasks(cluster, driver.clone(), shared.lifecycle.stopping_token());
    chat::install_cluster(
        &node,
        ClusterFeeds {
            signals,
            driver,
            journaled,
        },
    );
    Ok(finish(shared, node, queue, plain, service))
}

fn finish<A, S>(
    shared: Arc<Shared>,
    node: chat::ChatNode<A>,
    queue: CommandQueue,
    plain: Arc<PlainSockets>,
    service: S,
) -> Assembled
where
    A: socketioxide::adapter::Adapter,
    S: tower::Service<http::Request<axum::body::Body>, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    let layer = ChatLayer::new(
        service,
        &shared.config.cors_origins,
        &shared.config.allowed_hosts,
        shared.lifecycle.goodbye.clone(),
        plain.clone(),
        HandshakeLimit {
            sessions: shared.sessions.clone(),
            counters: shared.counters.clone(),
        },
    );
    let node = Arc::new(node);
    let handle = ChatHandle::new(
        node.clone(),
        queue,
        shared,
        tokio::runtime::Handle::current(),
    );
    Assembled {
        layer,
        handle,
        sessions: node,
        plain,
    }
}

fn socket_io_builder(config: &Config) -> SocketIoBuilder {
    let transport = &config.transport;
    let max_payload = config.limits.max_payload_bytes;
    let builder = SocketIo::builder()
        .req_path(SOCKET_IO_PATH)
        .ping_interval(Duration::from_millis(transport.ping_interval_ms))
        .ping_timeout(Duration::from_millis(transport.ping_timeout_ms))
        .connect_timeout(Duration::from_millis(transport.connect_timeout_ms))
        .max_buffer_size(transport.max_buffer_size)
        .max_buffer_bytes(transport.max_buffer_bytes)
        .max_payload(max_payload)
        .ws_read_buffer_size(transport.websocket_read_buffer_bytes)
        .ws_max_message_size(max_payload as usize)
        .ws_max_frame_size(max_payload as usize)
        .with_parser(
            ParserConfig::common()
                .max_incoming_binary_buf_size(max_payload as usize)
                .max_incoming_binaries(8),
        );
    match (transport.polling, transport.websocket) {
        (true, true) => builder.transports([TransportType::Polling, TransportType::Websocket]),
        (false, true) => builder.transports([TransportType::Websocket]),
        _ => builder.transports([TransportType::Polling]),
    }
}
