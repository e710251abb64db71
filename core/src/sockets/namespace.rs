//! A host namespace on socketioxide: the connect gate and the limits at
//! connect, then every event of the connection to the host (those it listens
//! to), then the disconnect.
//!
//! The handlers are plain (not async) implementations of socketioxide's handler
//! traits, so that events reach the host queue in the order they arrived, and the
//! connect event before any event of the connection.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::{
    ConnectHandler, DisconnectHandler, FromMessageParts, MessageHandler, Value,
};
use socketioxide::socket::{DisconnectReason, Sid, Socket};
use socketioxide::{SendError, SocketError};
use socketioxide_core::Str;

use super::args::RawEvent;
use super::host_socket::HostSocket;
use super::recovery::{Recovery, RESTORING};
use super::Handshake;
use crate::acks::AckAnswer;
use crate::events::{reason_code, Event, EventKind};
use crate::gates::GateDecision;
use crate::peer::peer_ip;
use crate::protocol::{ChatError, ErrorBody, ErrorCode};
use crate::shared::Shared;
use crate::stats::Counters;

/// A namespace whose connections the host handles.
pub(crate) struct HostNamespace {
    pub path: Arc<str>,
    /// Whether new connections wait for the host's decision.
    gated: AtomicBool,
}

impl HostNamespace {
    pub(crate) fn new(path: &str) -> Arc<Self> {
        Arc::new(Self {
            path: path.into(),
            gated: AtomicBool::new(false),
        })
    }

    pub(crate) fn set_gated(&self, gated: bool) {
        self.gated.store(gated, Ordering::Relaxed);
    }

    fn gated(&self) -> bool {
        self.gated.load(Ordering::Relaxed)
    }
}

/// Marks the handler implementations of this module for socketioxide's traits.
pub(crate) struct HostHandlers;

/// What every handler of the namespace needs.
#[derive(Clone)]
pub(crate) struct OnConnect {
    pub shared: Arc<Shared>,
    pub ns: Arc<HostNamespace>,
    /// Connection state recovery, when it is on.
    pub recovery: Option<Arc<Recovery>>,
}

/// A `connect_error` message.
struct Refusal(String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type MiddlewareFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), Box<dyn fmt::Display + Send>>> + Send + 'a>>;

/// The client's `auth` object (`{}` when it sent none or something else).
fn auth_object(auth: &Option<Value>) -> serde_json::Value {
    auth.as_ref()
        .and_then(|auth| auth.as_str())
        .and_then(|text| serde_json::from_str(text.as_str()).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()))
}

impl OnConnect {
    /// Limits, then the gate. The connection's state is attached to it here, so
    /// that its per-IP slot is given back however the connection ends.
    async fn admit<A: Adapter>(
        &self,
        socket: Arc<Socket<A>>,
        auth: &Option<Value>,
    ) -> Result<(), String> {
        let shared = &self.shared;
        // Taken first, so that it is not kept for a socket refused below.
        let private = self
            .recovery
            .as_ref()
            .and_then(|recovery| recovery.take_pending(socket.id));
        if shared.stopping() {
            return Err(ErrorCode::ShuttingDown.as_str().into());
        }
        let slot = peer_ip(&socket)
            .map(|ip| shared.ips.acquire(ip))
            .transpose()
            .map_err(|e| e.code.as_str().to_string())?;
        let state = Arc::new(HostSocket::new(&shared.config.limits, slot));
        socket.extensions.insert(state.clone());
        let mut recovered = false;
        if let Some(private) = private {
            if let Some(resumed) = &private.resumed {
                // Its rooms back before it enters the namespace, and kept out of
                // broadcasts until its replay is done (recovery.rs).
                let mut rooms = resumed.rooms.clone();
                rooms.push(RESTORING.to_string());
                socket.join(rooms);
                recovered = true;
            }
            *state.private.lock() = Some(private);
        }
        let skip = recovered
            && self
                .recovery
                .as_ref()
                .is_some_and(|recovery| recovery.skip_middlewares());
        if !self.ns.gated() || skip {
            return Ok(());
        }
        let handshake = Handshake::of(&socket, Some(auth_object(auth)));
        let waiting = shared.host.gates.wait();
        let gate = waiting.id();
        let queued = shared
            .host
            .events
            .emit(EventKind::SocketGate, || Event::SocketGate {
                ns: self.ns.path.to_string(),
                sid: socket.id.to_string(),
                handshake: handshake.clone(),
                gate,
                recovered,
            });
        if !queued {
            return Err(ErrorCode::Busy.as_str().into());
        }
        match waiting.decision().await {
            Some(GateDecision::Accept) if !shared.stopping() => {
                state.keep_handshake(handshake);
                Ok(())
            }
            Some(GateDecision::Accept) => Err(ErrorCode::ShuttingDown.as_str().into()),
            Some(GateDecision::Refuse { message }) => Err(message),
            None => Err(ErrorCode::HostTimeout.as_str().into()),
        }
    }
}

impl<A: Adapter> ConnectHandler<A, HostHandlers> for OnConnect {
    fn call_middleware<'a>(
        &'a self,
        socket: Arc<Socket<A>>,
        auth: &'a Option<Value>,
    ) -> MiddlewareFuture<'a> {
        Box::pin(async move {
            self.admit(socket.clone(), auth).await.map_err(|message| {
                Counters::add(&self.shared.counters.connections_refused, 1);
                tracing::debug!(sid = %socket.id, ns = %self.ns.path, "connection refused: {message}");
                Box::new(Refusal(message)) as Box<dyn fmt::Display + Send>
            })
        })
    }

    fn session(&self, auth: &Option<Value>) -> Option<(Sid, Str)> {
        let recovery = self.recovery.as_ref()?;
        Some(recovery.session(&self.ns.path, auth))
    }

    fn call(&self, socket: Arc<Socket<A>>, auth: Option<Value>) {
        let Some(state) = socket.extensions.get::<Arc<HostSocket>>() else {
            return;
        };
        let shared = &self.shared;
        let socket = SocketRef::from(socket);
        // Every connection is in a room named by its id, as in socket.io, so that
        // `to(id)` reaches it.
        socket.join(socket.id.to_string());
        // A resumed session: what it missed, before anything else is sent to it.
        let resumed = state
            .private
            .lock()
            .as_mut()
            .and_then(|private| private.resumed.take());
        let recovered = match (resumed, &self.recovery) {
            (Some(resumed), Some(recovery)) => {
                let counters = shared.counters.clone();
                let replayed =
                    recovery.replay(&socket, resumed, |lost| counters.dropped(lost as u64));
                tracing::debug!(sid = %socket.id, ns = %self.ns.path, replayed, "session resumed");
                true
            }
            _ => false,
        };
        socket.on_fallback(OnEvent {
            shared: shared.clone(),
            ns: self.ns.clone(),
            state: state.clone(),
        });
        socket.on_disconnect(OnDisconnect {
            shared: shared.clone(),
            ns: self.ns.clone(),
            recovery: self.recovery.clone(),
        });
        Counters::add(&shared.counters.connections, 1);
        Counters::add(&shared.counters.connections_total, 1);
        shared
            .host
            .events
            .emit(EventKind::SocketConnect, || Event::SocketConnect {
                ns: self.ns.path.to_string(),
                sid: socket.id.to_string(),
                handshake: state
                    .take_handshake()
                    .unwrap_or_else(|| Handshake::of(&socket, Some(auth_object(&auth)))),
                recovered,
            });
    }
}

/// Every event of one connection.
struct OnEvent {
    shared: Arc<Shared>,
    ns: Arc<HostNamespace>,
    state: Arc<HostSocket>,
}

impl<A: Adapter> MessageHandler<A, HostHandlers> for OnEvent {
    fn call(&self, socket: Arc<Socket<A>>, mut value: Value, ack_id: Option<i64>) {
        let Some(event) = RawEvent::of(&value).split() else {
            return;
        };
        if !self.state.listens_to(&event.name) {
            return;
        }
        let shared = &self.shared;
        let ack = match AckSender::from_message_parts(&socket, &mut value, &ack_id) {
            Ok(ack) => ack,
            Err(never) => match never {},
        };
        let refusal = if shared.stopping() {
            Some(ChatError::shutting_down())
        } else {
            self.state.requests.take("events").err()
        };
        if let Some(error) = refusal {
            return refuse(&socket, ack_id.is_some(), ack, &event.name, &error, shared);
        }
        let counters = shared.counters.clone();
        let ack = ack_id.map(|_| {
            shared.host.acks.insert(
                socket.id,
                Box::new(move |answer| {
                    let sent = match answer {
                        AckAnswer::Args(args) => ack.send(&args),
                        AckAnswer::Value(value) => ack.send(&value),
                        AckAnswer::Refused(error) => ack.send(&ErrorBody::new(&error, None)),
                        // As in socket.io: a listener that never calls back leaves its
                        // client waiting for its own timeout.
                        AckAnswer::Expired => Ok(()),
                    };
                    count_unsent(sent, &counters);
                }),
            )
        });
        let name = event.name;
        let queued = shared
            .host
            .events
            .emit(EventKind::SocketEvent, || Event::SocketEvent {
                ns: self.ns.path.to_string(),
                sid: socket.id.to_string(),
                event: name.clone(),
                numeric: event.numeric,
                args: event.args,
                attachments: event.attachments,
                ack,
            });
        if !queued {
            let busy = ChatError::host_busy();
            shared.counters.rejected(busy.code);
            match ack {
                Some(ack) => {
                    let _ = shared.host.acks.refuse(ack, busy);
                }
                None => emit_error(&socket, &name, &busy, shared),
            }
        }
    }
}

/// Refuses an event: as its acknowledgement when the client asked for one,
/// otherwise as an `error` event naming it.
fn refuse<A: Adapter>(
    socket: &Arc<Socket<A>>,
    wants_ack: bool,
    ack: AckSender<A>,
    name: &str,
    error: &ChatError,
    shared: &Shared,
) {
    shared.counters.rejected(error.code);
    if wants_ack {
        count_unsent(ack.send(&ErrorBody::new(error, None)), &shared.counters);
    } else {
        emit_error(socket, name, error, shared);
    }
}

fn emit_error<A: Adapter>(socket: &Socket<A>, name: &str, error: &ChatError, shared: &Shared) {
    count_unsent(
        socket.emit("error", &ErrorBody::new(error, Some(name))),
        &shared.counters,
    );
}

/// An answer that could not be queued: the client is gone (nothing to count) or
/// reads too slowly (its queue is full: counted).
fn count_unsent(result: Result<(), SendError>, counters: &Counters) {
    match result {
        Ok(()) => {}
        Err(SendError::Socket(SocketError::InternalChannelFull)) => counters.dropped(1),
        Err(e) => tracing::debug!("could not answer an event: {e}"),
    }
}

/// The end of a connection.
struct OnDisconnect {
    shared: Arc<Shared>,
    ns: Arc<HostNamespace>,
    recovery: Option<Arc<Recovery>>,
}

impl<A: Adapter> DisconnectHandler<A, HostHandlers> for OnDisconnect {
    fn call_with_defer(
        &self,
        socket: Arc<Socket<A>>,
        reason: DisconnectReason,
        defer: fn(Arc<Socket<A>>),
    ) {
        let shared = &self.shared;
        shared.counters.connections.fetch_sub(1, Ordering::Relaxed);
        shared.host.acks.connection_closed(socket.id);
        shared
            .host
            .events
            .emit(EventKind::SocketDisconnect, || Event::SocketDisconnect {
                ns: self.ns.path.to_string(),
                sid: socket.id.to_string(),
                reason: reason_code(reason).to_string(),
            });
        let kept = self.recovery.as_ref().and_then(|recovery| {
            let state = socket.extensions.get::<Arc<HostSocket>>()?;
            let pid = state.private.lock().take()?.pid;
            let rooms = socket.rooms().into_iter().map(|r| r.to_string()).collect();
            Some((recovery.clone(), pid, rooms))
        });
        let (sid, ns) = (socket.id, socket.ns().to_string());
        // Out of its namespace first: a client that comes back at once must not
        // find its id still taken.
        defer(socket);
        if let Some((recovery, pid, rooms)) = kept {
            recovery.keep(&ns, sid, pid, rooms, reason);
        }
    }
}
