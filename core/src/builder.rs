//! The one entry point: a chat as a standalone [`Engine`] on its own runtime
//! ([`ChatBuilder::start`]), or as a layer inside a host's axum app
//! ([`ChatBuilder::into_layer`]).

use axum::Router;

use crate::assemble::{assemble, Assembled, BuildError};
use crate::config::Config;
use crate::engine::{Engine, StartError};
use crate::events::{Event, EventCallback, EventKinds, HostEvents};
use crate::handle::ChatHandle;
use crate::service::ChatLayer;

/// Entry point for putting a chat together.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = palaver_core::Chat::builder(palaver_core::Config::default())
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
            kinds: EventKinds::ALL,
            routes: Router::new(),
        }
    }
}

/// Options besides the [`Config`]: the host's event callback and
/// extra routes.
pub struct ChatBuilder {
    config: Config,
    on_event: Option<EventCallback>,
    kinds: EventKinds,
    routes: Router,
}

impl ChatBuilder {
    /// Calls `callback` for every [`Event`], one at a time, on a dedicated thread
    /// named `palaver-events`. A slow callback never slows the chat: events it cannot
    /// keep up with are dropped and counted (`Config::event_queue_capacity`).
    /// A panic in the callback is caught and logged. Without a callback, custom
    /// events are refused with `unknown_event`; which kinds the callback gets can
    /// be narrowed with [`ChatHandle::subscribe`].
    pub fn on_event(mut self, callback: impl FnMut(Event) + Send + 'static) -> Self {
        self.on_event = Some(Box::new(callback));
        self
    }

    /// The kinds of event the callback gets from the start (every kind by
    /// default); [`ChatHandle::subscribe`] changes them later. Setting them here
    /// means no event of another kind is built between the start and a later
    /// `subscribe`.
    pub fn subscribe(mut self, kinds: EventKinds) -> Self {
        self.kinds = kinds;
        self
    }

    /// Routes the [`Engine`] serves besides Socket.IO (for example the chat page).
    /// Ignored by [`into_layer`](Self::into_layer), where the host owns its router.
    pub fn routes(mut self, routes: Router) -> Self {
        self.routes = routes;
        self
    }

    fn host_events(&mut self) -> Option<HostEvents> {
        let kinds = self.kinds;
        self.on_event
            .take()
            .map(|callback| HostEvents { callback, kinds })
    }

    /// Binds and runs the chat on its own runtime. See [`Engine`].
    pub fn start(mut self) -> Result<Engine, StartError> {
        let host = self.host_events();
        Engine::launch(self.config, host, self.routes)
    }

    /// Builds the chat as a tower layer for the host's own axum app, on the host's
    /// tokio runtime. The host serves it; commands go through the returned handle.
    /// (In cluster mode this connects to Redis first.)
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let (layer, chat) = palaver_core::Chat::builder(palaver_core::Config::default())
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
    pub async fn into_layer(mut self) -> Result<(ChatLayer, ChatHandle), BuildError> {
        let host = self.host_events();
        let Assembled { layer, handle, .. } = assemble(self.config, host).await?;
        Ok((layer, handle))
    }
}
