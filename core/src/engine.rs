//! A chat on its own tokio runtime, so hosts (C, Node, plain Rust) need no async.

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::builder::{build, BuildError};
use crate::chat::PeerAddr;
use crate::config::Config;
use crate::events::EventCallback;
use crate::handle::{ChatHandle, Commands};
use crate::protocol::{ChatError, ErrorCode};
use crate::server::{Connections, ConnectionsControl, Rewind};
use crate::service::SOCKET_IO_PATH;

/// How long stop keeps accepting after telling clients goodbye, so that clients
/// can collect the goodbye and close their side.
const CLIENT_GOODBYE_GRACE: Duration = Duration::from_secs(1);
/// No connection open for this long means the clients are gone: a polling client
/// between two requests has no connection open for a moment only.
const QUIET: Duration = Duration::from_millis(150);

/// Why [`Engine::start`] failed. Nothing is left running when it does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Configuration, history or event thread (see [`BuildError`]).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// `host:port` from the configuration.
        address: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The engine's runtime could not be created.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Why [`Engine::stop`] did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StopError {
    /// The engine was stopped before.
    #[error("the engine is already stopped")]
    AlreadyStopped,
    /// Called from the event callback, which stop waits for.
    #[error("stop cannot be called from the event callback")]
    InsideEventCallback,
}

/// Why a connection could not be handed over.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdoptError {
    /// The engine is stopping or stopped.
    #[error("the engine is not running")]
    NotRunning,
    /// The socket could not be registered with the runtime.
    #[error("cannot use the socket: {0}")]
    Socket(std::io::Error),
}

/// What [`Engine::stop`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// Every client was told and every connection closed before the deadline; when
    /// `false`, the rest were closed abruptly at the deadline.
    pub graceful: bool,
    /// How long stopping took.
    pub elapsed: Duration,
}

/// A running chat server on its own runtime.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = palaver::Engine::start(palaver::Config { port: 3000, ..Default::default() })?;
/// println!("chat on {:?}", engine.local_addr());
/// engine.stop(std::time::Duration::from_secs(5))?;
/// # Ok(()) }
/// ```
///
/// Dropping a running engine stops it with `Config::stop_timeout_ms`.
pub struct Engine {
    handle: ChatHandle,
    local_addr: Option<SocketAddr>,
    connections: Connections,
    runtime_handle: tokio::runtime::Handle,
    running: Mutex<Option<Running>>,
    stop_timeout: Duration,
}

struct Running {
    runtime: Runtime,
    stop_accepting: watch::Sender<bool>,
    control: ConnectionsControl,
}

impl Engine {
    /// Starts a chat with `config`: binds `host:port` (unless `listen` is false),
    /// starts the runtime and returns once clients can connect.
    pub fn start(config: Config) -> Result<Self, StartError> {
        Self::start_with(config, None, Router::new())
    }

    pub(crate) fn start_with(
        config: Config,
        on_event: Option<EventCallback>,
        routes: Router,
    ) -> Result<Self, StartError> {
        config.validate().map_err(BuildError::from)?;
        let stop_timeout = config.stop_timeout();
        let listener = config.listen.then(|| bind(&config)).transpose()?;
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        if config.worker_threads > 0 {
            runtime.worker_threads(config.worker_threads);
        }
        let runtime = runtime
            .thread_name("palaver-worker")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;

        // Built on a thread of its own: driving the runtime is not allowed on a
        // thread of another async runtime, and start may be called from one.
        let (layer, handle) = std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(build(config, on_event)))
                .join()
        })
        .map_err(|_| StartError::Runtime(std::io::Error::other("building the chat panicked")))??;
        let entered = runtime.enter();
        let (connections, control) = Connections::new(routes.layer(layer));
        let (stop_accepting, stop_rx) = watch::channel(false);
        let local_addr = match listener {
            Some(listener) => {
                let local_addr = listener.local_addr().ok();
                let listener = TcpListener::from_std(listener).map_err(StartError::Runtime)?;
                tokio::spawn(connections.clone().accept_loop(listener, stop_rx));
                local_addr
            }
            None => None,
        };
        drop(entered);
        if let Some(addr) = local_addr {
            tracing::info!("chat listening on {addr}");
        }
        Ok(Self {
            handle,
            local_addr,
            connections,
            runtime_handle: runtime.handle().clone(),
            running: Mutex::new(Some(Running {
                runtime,
                stop_accepting,
                control,
            })),
            stop_timeout,
        })
    }

    /// The bound address (useful with port 0); `None` when `listen` is false.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Commands: emit, disconnect a user, rooms, stats, answers to custom events.
    pub fn handle(&self) -> &ChatHandle {
        &self.handle
    }

    /// Whether the engine runs (not yet stopped).
    pub fn is_running(&self) -> bool {
        !self.handle.commands().shared().stopping()
    }

    /// Takes over a TCP connection the host accepted: `already_read` are the bytes
    /// the host read from it (an HTTP request, for example a WebSocket upgrade to
    /// `/socket.io/`), which the engine reads first. The engine owns the socket
    /// from then on, including closing it.
    pub fn adopt(
        &self,
        stream: std::net::TcpStream,
        already_read: Bytes,
    ) -> Result<(), AdoptError> {
        if !self.is_running() {
            return Err(AdoptError::NotRunning);
        }
        let peer = stream.peer_addr().ok();
        stream.set_nonblocking(true).map_err(AdoptError::Socket)?;
        let _ = stream.set_nodelay(true);
        let _entered = self.runtime_handle.enter();
        let stream = TcpStream::from_std(stream).map_err(AdoptError::Socket)?;
        self.connections
            .serve(Rewind::new(already_read, stream), peer);
        Ok(())
    }

    /// Serves one HTTP request in-process (for example a long-polling request a host
    /// received on its own server) and returns the complete response. `peer` is the
    /// client's address, used for the per-IP limit.
    pub fn serve_request(
        &self,
        request: http::Request<Bytes>,
        peer: Option<SocketAddr>,
    ) -> impl std::future::Future<Output = Result<http::Response<Bytes>, ChatError>> + Send + 'static
    {
        // Served until the engine stops listening, like connections it accepts
        // itself: a polling client must still fetch the goodbye while it stops.
        let running = self.connections.accepting();
        let app = self.connections.app().clone();
        let runtime = self.runtime_handle.clone();
        async move {
            let not_running =
                || ChatError::new(ErrorCode::ShuttingDown, "the engine is not running");
            if !running {
                return Err(not_running());
            }
            let work = async move {
                let mut request = request.map(Body::from);
                if let Some(peer) = peer {
                    request.extensions_mut().insert(PeerAddr(peer));
                }
                let response = app
                    .oneshot(request)
                    .await
                    .unwrap_or_else(|never| match never {});
                let (parts, body) = response.into_parts();
                let body = body
                    .collect()
                    .await
                    .map_err(|e| ChatError::new(ErrorCode::Internal, e.to_string()))?
                    .to_bytes();
                Ok(http::Response::from_parts(parts, body))
            };
            runtime
                .spawn(work)
                .await
                .unwrap_or_else(|_| Err(not_running()))
        }
    }

    /// Stops gracefully within `timeout`: stops accepting connections, stores and
    /// delivers every accepted message, sends every client `shutdown
    /// {reason: "server_stopping"}` and a Socket.IO disconnect (the client sees
    /// `"io server disconnect"`), waits for connections to close, closes the history,
    /// and returns once every task, socket and thread of the engine is gone and the
    /// event callback has run for the last time.
    ///
    /// Blocks the calling thread; async code should call it in `spawn_blocking`.
    /// Stopping twice is harmless ([`StopError::AlreadyStopped`]).
    pub fn stop(&self, timeout: Duration) -> Result<StopReport, StopError> {
        let shared = self.handle.commands().shared().clone();
        if shared.events.on_dispatcher_thread() {
            return Err(StopError::InsideEventCallback);
        }
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(StopError::AlreadyStopped)?;
        let started = Instant::now();
        let commands = self.handle.commands().clone();
        let app = self.connections.app().clone();
        // The runtime is driven and dropped on a thread of its own, so stop works
        // from any thread, including one of another async runtime (where driving or
        // dropping a runtime is not allowed).
        let stopper = std::thread::Builder::new()
            .name("palaver-stop".into())
            .spawn(move || shut_down(running, commands, app, started + timeout));
        let graceful = match stopper {
            Ok(stopper) => stopper.join().unwrap_or(false),
            Err(e) => {
                tracing::error!("cannot start the stop thread: {e}");
                false
            }
        };
        shared.events.finish();
        Ok(StopReport {
            graceful,
            elapsed: started.elapsed(),
        })
    }
}

/// Ends what clients left open: connections still there are cut (their sessions
/// read end of stream), and long-polling sessions whose client stopped polling are
/// closed the way a client would, with an Engine.IO close packet. Every session
/// must end before the runtime goes: a session left open keeps the engine's state
/// alive forever.
async fn end_sessions(control: &ConnectionsControl, app: &Router, told: Vec<String>) {
    control.cut_all();
    for sid in told {
        let close = http::Request::post(format!(
            "{SOCKET_IO_PATH}/?EIO=4&transport=polling&sid={sid}"
        ))
        .header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Body::from("1"));
        if let Ok(close) = close {
            // Sessions already closed answer 400 (unknown session); that is fine.
            let _ = app.clone().oneshot(close).await;
        }
    }
    // Closing a session finishes on a task of its own; let those run.
    let _ = tokio::time::timeout(Duration::from_millis(500), control.all_closed()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// The stop sequence; returns whether it finished before the deadline.
fn shut_down(
    running: Running,
    commands: Arc<dyn Commands>,
    app: Router,
    deadline: Instant,
) -> bool {
    let shared = commands.shared().clone();
    shared.begin_stop();
    let Running {
        runtime,
        stop_accepting,
        control,
    } = running;
    let graceful = runtime.block_on(async {
        let mut told = Vec::new();
        let orderly = tokio::time::timeout_at(deadline.into(), async {
            told = commands.clone().farewell("server_stopping".into()).await;
            // Still accepting, so that polling clients can fetch the goodbye, then
            // their disconnect, and send their close; new Socket.IO connections
            // are refused meanwhile.
            let goodbye = &commands.shared().goodbye;
            let mut disconnected = false;
            let _ = tokio::time::timeout(CLIENT_GOODBYE_GRACE, async {
                goodbye.all_fetched().await;
                commands.clone().disconnect_rest();
                disconnected = true;
                goodbye.all_fetched().await;
                control.quiet(QUIET).await;
            })
            .await;
            if !disconnected {
                // Out of patience with a polling client: it gets its disconnect
                // with its open poll, if it has one.
                commands.clone().disconnect_rest();
            }
            let _ = stop_accepting.send(true);
            control.close_idle();
            control.all_closed().await;
            commands.clone().leave_cluster().await;
        })
        .await
        .is_ok();
        if !orderly {
            let _ = stop_accepting.send(true);
            let _ =
                tokio::time::timeout(Duration::from_millis(200), commands.clone().close()).await;
        }
        end_sessions(&control, &app, told).await;
        shared.acks.refuse_all(&ChatError::new(
            ErrorCode::ShuttingDown,
            "the server is stopping",
        ));
        shared.history.close().await;
        orderly
    });
    runtime.shutdown_timeout(deadline.saturating_duration_since(Instant::now()));
    graceful
}

impl Drop for Engine {
    fn drop(&mut self) {
        match self.stop(self.stop_timeout) {
            Ok(_) | Err(StopError::AlreadyStopped) => {}
            Err(StopError::InsideEventCallback) => {
                // Dropped inside the event callback: the dispatcher cannot wait for
                // itself, so the runtime ends without the orderly goodbye.
                let running = self
                    .running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                if let Some(running) = running {
                    let shared = self.handle.commands().shared().clone();
                    shared.begin_stop();
                    running.runtime.shutdown_background();
                    if !shared.events.on_dispatcher_thread() {
                        shared.events.finish();
                    }
                }
            }
        }
    }
}

fn bind(config: &Config) -> Result<StdTcpListener, StartError> {
    let address = format!("{}:{}", config.host, config.port);
    let bind_error = |source| StartError::Bind {
        address: address.clone(),
        source,
    };
    let ip: std::net::IpAddr = config
        .host
        .parse()
        .map_err(|_| bind_error(std::io::Error::other("host is not an IP address")))?;
    let listener = StdTcpListener::bind(SocketAddr::new(ip, config.port)).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    Ok(listener)
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("local_addr", &self.local_addr)
            .field("running", &self.is_running())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HistoryStorage;

    /// No reference cycle keeps the chat's state alive after stop (which would leak
    /// memory on every start/stop cycle).
    #[test]
    fn stop_and_drop_free_the_shared_state() {
        let mut config = Config {
            port: 0,
            ..Config::default()
        };
        config.history.storage = HistoryStorage::Memory;
        let engine = crate::Chat::builder(config)
            .on_event(|_| {})
            .start()
            .unwrap();
        let shared = Arc::downgrade(engine.handle().commands().shared());
        engine.stop(Duration::from_secs(1)).unwrap();
        drop(engine);
        assert!(
            shared.upgrade().is_none(),
            "the shared state outlived the engine"
        );
    }
}
