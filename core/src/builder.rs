//! Putting a chat together: as a layer inside a host's axum app, or as a
//! standalone [`Engine`] on its own runtime.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use socketioxide::{ParserConfig, SocketIo, SocketIoBuilder, TransportType};

use socketioxide::adapter::Emitter;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::chat::{self, Shared};
use crate::cluster::history::ClusterHistory;
use crate::cluster::{Cluster, ClusterError, ResilientDriver};
use crate::config::{Config, ConfigError};
use crate::engine::{Engine, StartError};
use crate::events::{Event, EventBus, EventCallback};
use crate::handle::{Backend, ChatHandle};
use crate::history::{History, HistoryError};
use crate::service::{ChatLayer, SOCKET_IO_PATH};

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

/// Entry point for putting a chat together.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = palaver::Chat::builder(palaver::Config::default())
///     .on_event(|event| println!("{}", event.kind()))
///     .start()?;
/// # Ok(()) }
/// ```
pub struct Chat;

impl Chat {
    /// Starts describing a chat with this configuration.
    pub fn builder(config: Config) -> ChatBuilder {
        ChatBuilder {
            config,
            on_event: None,
            routes: Router::new(),
        }
    }
}

/// Options besides the [`Config`]: the host's event callback and extra routes.
pub struct ChatBuilder {
    config: Config,
    on_event: Option<EventCallback>,
    routes: Router,
}

impl ChatBuilder {
    /// Calls `callback` for every [`Event`], one at a time, on a dedicated thread
    /// named `palaver-events`. A slow callback never slows the chat: events it cannot
    /// keep up with are dropped and counted (`Config::event_queue_capacity`).
    /// A panic in the callback is caught and logged. Without a callback, custom
    /// events are refused with `unknown_event`.
    pub fn on_event(mut self, callback: impl FnMut(Event) + Send + 'static) -> Self {
        self.on_event = Some(Box::new(callback));
        self
    }

    /// Routes the [`Engine`] serves besides Socket.IO (for example the chat page).
    /// Ignored by [`into_layer`](Self::into_layer), where the host owns its router.
    pub fn routes(mut self, routes: Router) -> Self {
        self.routes = routes;
        self
    }

    /// Binds and runs the chat on its own runtime. See [`Engine`].
    pub fn start(self) -> Result<Engine, StartError> {
        Engine::start_with(self.config, self.on_event, self.routes)
    }

    /// Builds the chat as a tower layer for the host's own axum app, on the host's
    /// tokio runtime. The host serves it; commands go through the returned handle.
    /// (In cluster mode this connects to Redis first.)
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let (layer, chat) = palaver::Chat::builder(palaver::Config::default())
    ///     .into_layer()
    ///     .await?;
    /// let app = axum::Router::new()
    ///     .route("/", axum::routing::get(|| async { "hello" }))
    ///     .layer(layer);
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum::serve(
    ///     listener,
    ///     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn into_layer(self) -> Result<(ChatLayer, ChatHandle), BuildError> {
        build(self.config, self.on_event).await
    }
}

/// Builds the chat on the current runtime.
pub(crate) async fn build(
    config: Config,
    on_event: Option<EventCallback>,
) -> Result<(ChatLayer, ChatHandle), BuildError> {
    config.validate()?;
    let local_history = History::open(&config.history)?;
    let cluster = match config.cluster.redis_url {
        Some(_) => Some(Cluster::connect(&config.cluster).await?),
        None => None,
    };
    let events = match on_event {
        Some(callback) => EventBus::start(config.event_queue_capacity, callback)
            .map_err(BuildError::EventThread)?,
        None => EventBus::disabled(),
    };
    let runtime = tokio::runtime::Handle::current();
    let Some((cluster, driver)) = cluster else {
        let shared = Arc::new(Shared::new(config, local_history, events, None));
        let (service, io) = socket_io_builder(&shared.config).build_svc();
        let (context, ()) = chat::install(&io, shared.clone());
        let layer = ChatLayer::new(service, &shared.config.cors_origins, shared.goodbye.clone());
        let backend = Arc::new(Backend { io, context });
        return Ok((layer, ChatHandle::new(backend, runtime)));
    };

    // Cluster mode: history in Redis (the local store journals outages), traffic
    // through the Redis adapter.
    let history = History::Clustered(ClusterHistory::new(cluster.clone(), local_history));
    let shared = Arc::new(Shared::new(config, history, events, Some(cluster.clone())));
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
    let (context, subscribed) = chat::install(&io, shared.clone());
    tokio::time::timeout(timeout * 3, subscribed)
        .await
        .map_err(|_| ClusterError::Subscribe("Redis did not answer".into()))?
        .map_err(|e| ClusterError::Subscribe(e.to_string()))?;
    crate::cluster::spawn_tasks(io.clone(), shared.clone(), driver);
    let layer = ChatLayer::new(service, &shared.config.cors_origins, shared.goodbye.clone());
    let backend = Arc::new(Backend { io, context });
    Ok((layer, ChatHandle::new(backend, runtime)))
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
