//! Stopping the engine: the only code that knows the order of the steps.
//!
//! running → draining (refuse new work, finish admitted requests, flush the
//! pipeline) → farewell (tell every client, let polling clients fetch it,
//! disconnect, wait for connections to close, leave the cluster) → closed
//! (end what is left, refuse pending host acks, close the history).
//!
//! [`StopOnce`] makes `Engine::stop` safe to call twice or concurrently: the
//! second call waits for the first, so that "no callback runs after stop
//! returns" holds for every caller, and bindings need no bookkeeping of their own.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use futures_util::future::BoxFuture;
use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::TransportType;
use tower::ServiceExt;

use crate::chat::ChatNode;
use crate::lifecycle::Phase;
use crate::plain_ws::PlainSockets;
use crate::server::ConnectionsControl;
use crate::service::SOCKET_IO_PATH;
use crate::shared::Shared;

/// How long stop keeps accepting after telling clients goodbye, so that clients
/// can collect the goodbye and close their side.
const CLIENT_GOODBYE_GRACE: Duration = Duration::from_secs(1);
/// No connection open for this long means the clients are gone: a polling client
/// between two requests has no connection open for a moment only.
const QUIET: Duration = Duration::from_millis(150);
/// What every client is told at stop.
const STOP_REASON: &str = "server_stopping";

/// Why [`Engine::stop`](crate::Engine::stop) did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StopError {
    /// The engine was stopped by another call; this one returned once that stop
    /// had finished (its report: [`Engine::stop_report`](crate::Engine::stop_report)).
    #[error("the engine is already stopped")]
    AlreadyStopped,
    /// Called from the event callback, which stop waits for.
    #[error("stop cannot be called from the event callback")]
    InsideEventCallback,
}

/// What [`Engine::stop`](crate::Engine::stop) achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// Every client was told and every connection closed before the deadline; when
    /// `false`, the rest were closed abruptly at the deadline.
    pub graceful: bool,
    /// How long stopping took.
    pub elapsed: Duration,
}

/// The adapter-specific steps of a stop, done by the chat node (see
/// `chat::ChatNode`).
pub(crate) trait Sessions: Send + Sync + 'static {
    /// Waits until every accepted room message is stored, delivered and acknowledged.
    fn flush(self: Arc<Self>) -> BoxFuture<'static, ()>;
    /// Sends every chat connection `shutdown {reason}` and disconnects the
    /// WebSocket ones. Returns the Engine.IO session ids of all connections told, and of the
    /// long-polling ones still connected (their goodbye leaves with their next
    /// poll: a packet that reaches a disconnected polling socket ends its session
    /// with the goodbye unfetched).
    fn tell_all(&self, reason: &str) -> Told;
    /// Disconnects every chat connection still there; returns their session ids.
    fn disconnect_all(&self) -> Vec<String>;
    /// Closes whatever transports are left (host namespaces' connections see
    /// their transport close, as with socket.io's `io.close()`).
    fn close(self: Arc<Self>) -> BoxFuture<'static, ()>;
}

/// The `shutdown` push.
#[derive(Serialize)]
struct Goodbye<'a> {
    reason: &'a str,
}

impl<A: Adapter> ChatNode<A> {
    /// The connections of the built-in chat (none when it is off).
    fn chat_sockets(&self) -> Vec<socketioxide::extract::SocketRef<A>> {
        if !self.context.shared.config.builtin_chat {
            return Vec::new();
        }
        self.io.of("/").map(|ns| ns.sockets()).unwrap_or_default()
    }
}

impl<A: Adapter> Sessions for ChatNode<A> {
    fn flush(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.context.pipeline.flush().await })
    }

    fn tell_all(&self, reason: &str) -> Told {
        // Every session is counted, so that the end of the stop closes each one
        // whatever happens before; only the chat's clients are told: host
        // namespaces' connections are closed with their transport, as socket.io's
        // `io.close()` does, so that their clients reconnect to whatever serves
        // next.
        let mut all: HashSet<String> = self
            .io
            .nsps()
            .into_iter()
            .flat_map(|ns| ns.sockets())
            .map(|socket| socket.transport_id().to_string())
            .collect();
        let mut polling = HashSet::new();
        for socket in self.chat_sockets() {
            all.insert(socket.transport_id().to_string());
            let _ = socket.emit("shutdown", &Goodbye { reason });
            if socket.transport_type() == TransportType::Polling {
                // Not disconnected yet: the client may well be posting right now;
                // what it posts until it has the notice is answered (refused with
                // shutting_down) instead of ending its session.
                polling.insert(socket.transport_id().to_string());
            } else {
                let _ = socket.disconnect();
            }
        }
        Told {
            all: all.into_iter().collect(),
            polling: polling.into_iter().collect(),
        }
    }

    fn disconnect_all(&self) -> Vec<String> {
        self.chat_sockets()
            .into_iter()
            .map(|socket| {
                let sid = socket.transport_id().to_string();
                let _ = socket.disconnect();
                sid
            })
            .collect()
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.io.close().await })
    }
}

/// Who was told goodbye.
pub(crate) struct Told {
    pub all: Vec<String>,
    pub polling: Vec<String>,
}

/// What stop needs besides the runtime: the chat, its sessions, its connections.
pub(crate) struct StopPlan {
    pub shared: Arc<Shared>,
    pub sessions: Arc<dyn Sessions>,
    pub plain: Arc<PlainSockets>,
    pub control: ConnectionsControl,
    pub stop_accepting: tokio::sync::watch::Sender<bool>,
    pub app: Router,
}

/// The stop sequence, on the engine's runtime; returns whether it finished
/// before the deadline.
pub(crate) async fn run(plan: StopPlan, deadline: Instant) -> bool {
    let StopPlan {
        shared,
        sessions,
        plain,
        control,
        stop_accepting,
        app,
    } = plan;
    let lifecycle = &shared.lifecycle;
    lifecycle.enter(Phase::Draining);
    let mut told = Vec::new();
    let orderly = tokio::time::timeout_at(deadline.into(), async {
        // New requests are refused by now; the admitted ones finish first, so
        // every accepted message is in the pipeline before it is flushed.
        lifecycle.requests_drained().await;
        sessions.clone().flush().await;
        lifecycle.enter(Phase::Farewell);
        let goodbye = sessions.tell_all(STOP_REASON);
        plain.close_all();
        tracing::debug!(
            told = goodbye.all.len(),
            polling = goodbye.polling.len(),
            "told every client goodbye"
        );
        lifecycle.goodbye.expect(goodbye.polling);
        told = goodbye.all;
        // Still accepting, so that polling clients can fetch the goodbye, then
        // their disconnect, and send their close; new Socket.IO connections are
        // refused meanwhile.
        let mut disconnected = false;
        let _ = tokio::time::timeout(CLIENT_GOODBYE_GRACE, async {
            lifecycle.goodbye.all_fetched().await;
            lifecycle.goodbye.expect(sessions.disconnect_all());
            disconnected = true;
            lifecycle.goodbye.all_fetched().await;
            control.quiet(QUIET).await;
        })
        .await;
        if !disconnected {
            // Out of patience with a polling client: it gets its disconnect with
            // its open poll, if it has one.
            lifecycle.goodbye.expect(sessions.disconnect_all());
        }
        // Host namespaces' connections, and chat clients that never took their
        // goodbye, have their transport closed (within the stop's deadline).
        sessions.clone().close().await;
        let _ = stop_accepting.send(true);
        control.close_idle();
        control.all_closed().await;
        leave_cluster(&shared).await;
    })
    .await
    .is_ok();
    if !orderly {
        let _ = stop_accepting.send(true);
        // Out of time before the farewell (a slow drain): plain WebSocket clients
        // still get their 1001 rather than a cut connection (a second close is a
        // no-op for those already closing).
        plain.close_all();
        let _ = tokio::time::timeout(Duration::from_millis(200), sessions.close()).await;
    }
    end_sessions(&control, &app, told).await;
    shared
        .host
        .acks
        .refuse_all(&crate::protocol::ChatError::shutting_down());
    shared.history.close().await;
    lifecycle.enter(Phase::Closed);
    orderly
}

/// Removes this node from the cluster (nothing without one): its presence first
/// (its users are gone by now), then its heartbeat entry.
async fn leave_cluster(shared: &Shared) {
    let Some(cluster) = shared.presence.cluster() else {
        return;
    };
    if !cluster.is_up() {
        return;
    }
    if let Err(e) = shared.presence.resync().await {
        tracing::warn!("could not clear this node's presence: {e}");
    }
    cluster.leave().await;
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

/// Lets one caller stop and the others wait for it.
#[derive(Default)]
pub(crate) struct StopOnce {
    progress: Mutex<Progress>,
    finished: Condvar,
}

#[derive(Default, Clone, Copy)]
enum Progress {
    #[default]
    NotStarted,
    Stopping,
    Stopped(Option<StopReport>),
}

/// The caller's part in a stop.
pub(crate) enum Turn {
    /// This caller stops the engine and must call [`StopOnce::finish`].
    Stop,
    /// Another caller stopped it, and is done.
    Waited,
}

impl StopOnce {
    /// Claims the stop, or waits until the caller that claimed it has finished.
    pub(crate) fn begin(&self) -> Turn {
        let mut progress = self.progress.lock();
        loop {
            match *progress {
                Progress::NotStarted => {
                    *progress = Progress::Stopping;
                    return Turn::Stop;
                }
                Progress::Stopping => self.finished.wait(&mut progress),
                Progress::Stopped(_) => return Turn::Waited,
            }
        }
    }

    /// The stop is over; wakes the waiting callers.
    pub(crate) fn finish(&self, report: Option<StopReport>) {
        *self.progress.lock() = Progress::Stopped(report);
        self.finished.notify_all();
    }

    /// Whether a stop has begun (or is over).
    pub(crate) fn begun(&self) -> bool {
        !matches!(*self.progress.lock(), Progress::NotStarted)
    }

    /// The report of the finished stop.
    pub(crate) fn report(&self) -> Option<StopReport> {
        match *self.progress.lock() {
            Progress::Stopped(report) => report,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_stop_waits_for_the_first() {
        let once = Arc::new(StopOnce::default());
        assert!(matches!(once.begin(), Turn::Stop));
        let waiter = std::thread::spawn({
            let once = once.clone();
            move || matches!(once.begin(), Turn::Waited)
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "the second stop returned early");
        let report = StopReport {
            graceful: true,
            elapsed: Duration::from_millis(7),
        };
        once.finish(Some(report));
        assert!(waiter.join().unwrap(), "the second caller stopped too");
        assert_eq!(once.report(), Some(report));
    }
}
