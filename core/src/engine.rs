//! A chat on its own tokio runtime, so hosts (C, Node, plain Rust) need no async.

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::assemble::{assemble, Assembled, BuildError};
use crate::config::Config;
use crate::events::HostEvents;
use crate::handle::ChatHandle;
use crate::lifecycle::Phase;
use crate::peer::PeerAddr;
use crate::protocol::{ChatError, ErrorCode};
use crate::server::{AcceptLimits, Connections, Rewind};
use crate::shutdown::{self, StopError, StopOnce, StopPlan, StopReport, Turn};

/// Why [`ChatBuilder::start`](crate::ChatBuilder::start) failed. Nothing is left
/// running when it does.
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

/// A running chat server on its own runtime. Made by
/// [`ChatBuilder::start`](crate::ChatBuilder::start).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = palaver_core::Config { port: 3000, ..Default::default() };
/// let engine = palaver_core::Chat::builder(config).start()?;
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
    stop: StopOnce,
    stop_timeout: Duration,
}

struct Running {
    runtime: Runtime,
    plan: StopPlan,
}

impl Engine {
    /// Starts a chat with `config`: binds `host:port` (unless `listen` is false),
    /// starts the runtime and returns once clients can connect.
    pub(crate) fn launch(
        config: Config,
        on_event: Option<HostEvents>,
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
        let Assembled {
            layer,
            handle,
            sessions,
            plain,
        } = std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(assemble(config, on_event)))
                .join()
        })
        .map_err(|_| StartError::Runtime(std::io::Error::other("building the chat panicked")))??;
        let entered = runtime.enter();
        let shared = handle.shared();
        let accept_limits = AcceptLimits {
            sockets: shared.sockets.clone(),
            counters: shared.counters.clone(),
            header_timeout: Duration::from_millis(shared.config.transport.header_timeout_ms),
        };
        let (connections, control) = Connections::new(routes.layer(layer), accept_limits);
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
        let plan = StopPlan {
            shared: handle.shared().clone(),
            sessions,
            plain,
            control,
            stop_accepting,
            app: connections.app().clone(),
        };
        Ok(Self {
            handle,
            local_addr,
            connections,
            runtime_handle: runtime.handle().clone(),
            running: Mutex::new(Some(Running { runtime, plan })),
            stop: StopOnce::default(),
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
        !self.handle.shared().lifecycle.stopping()
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
    /// client's address, used for the per-IP limit. Fails with `shutting_down`
    /// once the engine no longer serves, `internal` when the response could not be
    /// read.
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
            if !running {
                return Err(ChatError::shutting_down());
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
            // A runtime that shuts down drops the task.
            runtime
                .spawn(work)
                .await
                .unwrap_or_else(|_| Err(ChatError::shutting_down()))
        }
    }

    /// Stops gracefully within `timeout`: stops accepting connections, stores and
    /// delivers every accepted message, sends every client `shutdown
    /// {reason: "server_stopping"}` and a Socket.IO disconnect (the client sees
    /// `"io server disconnect"`), waits for connections to close, closes the history,
    /// and returns once every task, socket and thread of the engine is gone and the
    /// event callback has run for the last time. The steps are in `shutdown`.
    ///
    /// Blocks the calling thread; async code should call it in `spawn_blocking`.
    /// Called again, or from two threads at once, the later call waits until the
    /// stop is over and returns [`StopError::AlreadyStopped`]; the report is then
    /// in [`stop_report`](Self::stop_report).
    pub fn stop(&self, timeout: Duration) -> Result<StopReport, StopError> {
        let shared = self.handle.shared().clone();
        if shared.host.events.on_dispatcher_thread() {
            return Err(StopError::InsideEventCallback);
        }
        if let Turn::Waited = self.stop.begin() {
            return Err(StopError::AlreadyStopped);
        }
        // Whatever happens below, the callers waiting in `begin` are woken.
        let mut finished = FinishOnDrop(&self.stop, None);
        let Some(running) = self.running.lock().take() else {
            return Err(StopError::AlreadyStopped);
        };
        let started = Instant::now();
        let deadline = started + timeout;
        // The runtime is driven and dropped on a thread of its own, so stop works
        // from any thread, including one of another async runtime (where driving or
        // dropping a runtime is not allowed).
        let stopper = std::thread::Builder::new()
            .name("palaver-stop".into())
            .spawn(move || {
                let Running { runtime, plan } = running;
                let graceful = runtime.block_on(shutdown::run(plan, deadline));
                runtime.shutdown_timeout(deadline.saturating_duration_since(Instant::now()));
                graceful
            });
        let graceful = match stopper {
            Ok(stopper) => stopper.join().unwrap_or(false),
            Err(e) => {
                tracing::error!("cannot start the stop thread: {e}");
                false
            }
        };
        shared.host.events.finish();
        let report = StopReport {
            graceful,
            elapsed: started.elapsed(),
        };
        finished.1 = Some(report);
        Ok(report)
    }

    /// The report of the stop, once it is over (`None` before, or when the engine
    /// was dropped inside its own event callback).
    pub fn stop_report(&self) -> Option<StopReport> {
        self.stop.report()
    }
}

/// Ends a stop claimed with [`StopOnce::begin`], also when stopping panicked.
struct FinishOnDrop<'a>(&'a StopOnce, Option<StopReport>);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        self.0.finish(self.1);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        match self.stop(self.stop_timeout) {
            Ok(_) | Err(StopError::AlreadyStopped) => {}
            Err(StopError::InsideEventCallback) => {
                // Dropped inside the event callback: the dispatcher cannot wait for
                // itself, so the runtime ends without the orderly goodbye.
                if self.stop.begun() {
                    return;
                }
                let _claimed = self.stop.begin();
                let finished = FinishOnDrop(&self.stop, None);
                if let Some(running) = self.running.lock().take() {
                    let shared = self.handle.shared().clone();
                    shared.lifecycle.enter(Phase::Draining);
                    running.runtime.shutdown_background();
                    if !shared.host.events.on_dispatcher_thread() {
                        shared.host.events.finish();
                    }
                }
                drop(finished);
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
        let host = HostEvents {
            callback: Box::new(|_| {}),
            kinds: crate::EventKinds::ALL,
        };
        let engine = Engine::launch(config, Some(host), Router::new()).unwrap();
        let shared = std::sync::Arc::downgrade(engine.handle().shared());
        engine.stop(Duration::from_secs(1)).unwrap();
        drop(engine);
        assert!(
            shared.upgrade().is_none(),
            "the shared state outlived the engine"
        );
    }
}
