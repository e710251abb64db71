//! Commands from the host: emit to rooms, users or everyone, disconnect a user,
//! list rooms, read stats, answer custom events; and the Socket.IO engine's
//! commands and queries for host namespaces and plain WebSocket connections.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::acks::{AckAnswer, AckError};
use crate::chat::{broadcast, kick, room_key, user_key, ChatNode, Reach};
use crate::events::{AckId, EventKinds, GateId};
use crate::gates::GateDecision;
use crate::protocol::{ChatError, ErrorBody, RoomInfo};
use crate::shared::Shared;
use crate::sockets::{
    AckReply, CommandError, CommandQueue, OutArgs, QueryAnswer, SocketCommand, SocketInfo,
    SocketQuery, Target,
};
use crate::stats::Stats;
use crate::validate;

/// Why an emit did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The event name is empty, too long, or reserved by Socket.IO.
    #[error("event name {0:?} is empty, longer than 128 bytes, or reserved by Socket.IO")]
    InvalidEvent(String),
    /// The room name breaks the room name rules.
    #[error("invalid room: {0}")]
    InvalidRoom(String),
    /// The user has no connection.
    #[error("user {0:?} is not online")]
    UserOffline(String),
    /// The engine has stopped.
    #[error("the engine is not running")]
    NotRunning,
    /// The cluster backend failed to carry the emit.
    #[error("delivery failed: {0}")]
    Delivery(String),
}

/// Why [`ChatHandle::disconnect_user`] did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectError {
    /// The user has no connection.
    #[error("user {0:?} is not online")]
    UserOffline(String),
    /// The engine has stopped.
    #[error("the engine is not running")]
    NotRunning,
    /// The cluster backend failed to carry the request.
    #[error("disconnect failed: {0}")]
    Delivery(String),
}

/// Who an emit goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Audience {
    Everyone,
    Room(String),
    User(String),
}

/// The adapter-specific side of the host's commands, behind a trait object so
/// that [`ChatHandle`] is one type whatever the Socket.IO adapter is.
pub(crate) trait Commands: Send + Sync + 'static {
    fn emit(
        self: Arc<Self>,
        target: Audience,
        event: String,
        data: Value,
    ) -> BoxFuture<'static, Result<(), EmitError>>;
    fn disconnect_user(
        self: Arc<Self>,
        user_id: String,
        reason: String,
    ) -> BoxFuture<'static, Result<usize, DisconnectError>>;
}

impl<A: Adapter> Commands for ChatNode<A> {
    fn emit(
        self: Arc<Self>,
        target: Audience,
        event: String,
        data: Value,
    ) -> BoxFuture<'static, Result<(), EmitError>> {
        Box::pin(async move {
            let shared = &self.context.shared;
            let result = match target {
                Audience::Everyone => {
                    broadcast(shared, || self.io.broadcast(), &event, &data).await
                }
                Audience::Room(room) => {
                    let key = room_key(&room);
                    broadcast(shared, || self.io.to(key.clone()), &event, &data).await
                }
                Audience::User(user) => {
                    if shared.presence.online(&user).await.is_none() {
                        return Err(EmitError::UserOffline(user));
                    }
                    let key = user_key(&user);
                    broadcast(shared, || self.io.to(key.clone()), &event, &data).await
                }
            };
            // Per-socket failures (a slow or closing client) do not fail the emit.
            match result {
                Err(socketioxide::BroadcastError::Adapter(e)) => {
                    Err(EmitError::Delivery(e.to_string()))
                }
                _ => Ok(()),
            }
        })
    }

    fn disconnect_user(
        self: Arc<Self>,
        user_id: String,
        reason: String,
    ) -> BoxFuture<'static, Result<usize, DisconnectError>> {
        Box::pin(async move {
            let shared = &self.context.shared;
            if shared.presence.online(&user_id).await.is_none() {
                return Err(DisconnectError::UserOffline(user_id));
            }
            // Counted across the cluster (every node answers with its sockets).
            let sockets = match self.io.within(user_key(&user_id)).fetch_sockets().await {
                Ok(sockets) => sockets,
                Err(e) => return Err(DisconnectError::Delivery(e.to_string())),
            };
            if sockets.is_empty() {
                // Online a moment ago, disconnecting right now.
                return Err(DisconnectError::UserOffline(user_id));
            }
            kick(shared, &self.io, &user_id, &reason, Reach::Cluster)
                .await
                .map_err(DisconnectError::Delivery)?;
            // A socket's disconnect handling (presence, rooms, notices) runs after
            // its client was told: this node's sockets are waited for, so that
            // the host sees the user gone when the call returns.
            let local = sockets.iter().map(|s| s.data().id);
            wait_gone(&self.io, local.collect(), KICK_SETTLE).await;
            Ok(sockets.len())
        })
    }
}

/// How long `disconnect_user` waits for this node's kicked sockets to be gone.
const KICK_SETTLE: Duration = Duration::from_secs(5);

/// Waits until none of `sids` is a socket of this node's chat namespace any more,
/// or `limit` has passed.
async fn wait_gone<A: Adapter>(
    io: &socketioxide::SocketIo<A>,
    sids: Vec<socketioxide::socket::Sid>,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    while sids.iter().any(|sid| io.get_socket(*sid).is_some()) {
        if tokio::time::Instant::now() + pause > deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Drives a running chat from the host. Cheap to clone; usable from any thread
/// and any async runtime (the work runs on the chat's own runtime).
#[derive(Clone)]
pub struct ChatHandle {
    commands: Arc<dyn Commands>,
    sockets: CommandQueue,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
}

impl ChatHandle {
    pub(crate) fn new(
        commands: Arc<dyn Commands>,
        sockets: CommandQueue,
        shared: Arc<Shared>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            commands,
            sockets,
            shared,
            runtime,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs `work` on the chat's runtime, whatever runtime awaits the result.
    fn on_runtime<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
        stopped: T,
    ) -> impl Future<Output = T> + Send + 'static {
        let running = !self.shared().stopping();
        let task = running.then(|| self.runtime.spawn(work));
        async move {
            match task {
                Some(task) => task.await.unwrap_or(stopped),
                None => stopped,
            }
        }
    }

    /// Emits `event` with `data` to every connected client.
    pub fn emit_to_all(
        &self,
        event: &str,
        data: Value,
    ) -> impl Future<Output = Result<(), EmitError>> + Send + 'static {
        let work = check_event(event).map(|()| {
            self.commands
                .clone()
                .emit(Audience::Everyone, event.into(), data)
        });
        self.run_checked(work)
    }

    /// Emits `event` with `data` to every connection in `room` (nothing when the room
    /// is empty).
    pub fn emit_to_room(
        &self,
        room: &str,
        event: &str,
        data: Value,
    ) -> impl Future<Output = Result<(), EmitError>> + Send + 'static {
        let work = check_event(event)
            .and_then(|()| {
                validate::room(room, &self.shared().config.limits)
                    .map_err(|e| EmitError::InvalidRoom(e.message))
            })
            .map(|room| {
                self.commands
                    .clone()
                    .emit(Audience::Room(room), event.into(), data)
            });
        self.run_checked(work)
    }

    /// Emits `event` with `data` to every connection of the user with this id.
    pub fn emit_to_user(
        &self,
        user_id: &str,
        event: &str,
        data: Value,
    ) -> impl Future<Output = Result<(), EmitError>> + Send + 'static {
        let work = check_event(event).map(|()| {
            self.commands
                .clone()
                .emit(Audience::User(user_id.into()), event.into(), data)
        });
        self.run_checked(work)
    }

    fn run_checked(
        &self,
        work: Result<BoxFuture<'static, Result<(), EmitError>>, EmitError>,
    ) -> BoxFuture<'static, Result<(), EmitError>> {
        match work {
            Ok(work) => Box::pin(self.on_runtime(work, Err(EmitError::NotRunning))),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    /// Disconnects every connection of a user, after sending them
    /// `kicked {reason}`. Returns how many connections were closed, once this
    /// node's have been handled (the user is out of presence and rooms here;
    /// other nodes of a cluster finish theirs on their own).
    pub fn disconnect_user(
        &self,
        user_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<usize, DisconnectError>> + Send + 'static {
        let work = self
            .commands
            .clone()
            .disconnect_user(user_id.into(), reason.into());
        self.on_runtime(work, Err(DisconnectError::NotRunning))
    }

    /// Every room with members, the most populated first, with its members in join
    /// order.
    pub fn rooms(&self) -> impl Future<Output = Vec<RoomInfo>> + Send + 'static {
        let shared = self.shared().clone();
        async move { shared.presence.rooms(usize::MAX, usize::MAX).await }
    }

    /// One room, or `None` when nobody is in it.
    pub fn room(&self, room: &str) -> impl Future<Output = Option<RoomInfo>> + Send + 'static {
        let shared = self.shared().clone();
        let room: Arc<str> = room.into();
        async move {
            let (count, members) = shared.presence.members(&room, usize::MAX).await;
            if count == 0 {
                return None;
            }
            Some(RoomInfo {
                room,
                count,
                members,
            })
        }
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        Stats {
            commands_queued_bytes: self.sockets.queued_bytes() as u64,
            ..self.shared().stats()
        }
    }

    /// Chooses the kinds of [`Event`](crate::Event) the callback gets (all of them
    /// by default). A custom event is refused to its client with `unknown_event`
    /// unless [`EventKind::Custom`](crate::EventKind::Custom) is chosen.
    pub fn subscribe(&self, kinds: EventKinds) {
        self.shared().host.events.subscribe(kinds);
    }

    /// Answers a custom event's acknowledgement with `value`, exactly as given.
    pub fn ack(&self, id: AckId, value: Value) -> Result<(), AckError> {
        self.shared().host.acks.answer(id, AckAnswer::Value(value))
    }

    /// Refuses the custom event `event` with `unknown_event`, exactly as the chat
    /// refuses a custom event nobody listens to: for a host whose listener went
    /// away while the event was on its way to it.
    pub fn refuse_unheard(&self, id: AckId, event: &str) -> Result<(), AckError> {
        self.shared()
            .host
            .acks
            .refuse(id, ChatError::unknown_event(event))
    }

    /// Refuses a custom event's acknowledgement with `{ok:false, code, message}`,
    /// the shape chat errors have. `code` is the host's own (`"out_of_stock"`);
    /// the chat's codes are in [`ErrorCode`](crate::ErrorCode).
    pub fn ack_error(&self, id: AckId, code: &str, message: &str) -> Result<(), AckError> {
        let body = serde_json::to_value(ErrorBody::from_host(code, message)).unwrap_or(Value::Null);
        self.shared().host.acks.answer(id, AckAnswer::Value(body))
    }

    // ---- The Socket.IO engine: host namespaces and their connections ----

    /// Applies `commands` in order, after every command given before (from any
    /// thread: one queue). Returns once they are queued; a batch with one
    /// malformed command is refused whole. See [`SocketCommand`].
    pub fn run(&self, commands: Vec<SocketCommand>) -> Result<(), CommandError> {
        if self.shared().stopping() {
            return Err(CommandError::NotRunning);
        }
        self.sockets.run(commands)
    }

    /// [`run`](Self::run) with commands in their JSON form (see
    /// [`SocketCommand::batch_from_json`]): what the bindings use.
    pub fn run_json(&self, json: &str, attachments: Vec<Bytes>) -> Result<(), CommandError> {
        self.run(SocketCommand::batch_from_json(json, attachments)?)
    }

    /// Emits `event` with `args` to a target (`io.to(room).except(id).emit`).
    pub fn emit_to(&self, to: Target, event: &str, args: OutArgs) -> Result<(), CommandError> {
        self.run(vec![SocketCommand::Emit {
            to,
            event: event.into(),
            args,
        }])
    }

    /// Emits `event` with `args` to one connection (`socket.emit`).
    pub fn emit_to_socket(
        &self,
        ns: &str,
        sid: &str,
        event: &str,
        args: OutArgs,
    ) -> Result<(), CommandError> {
        self.run(vec![SocketCommand::EmitTo {
            ns: ns.into(),
            sid: sid.into(),
            event: event.into(),
            args,
            volatile: false,
        }])
    }

    /// Puts a connection in rooms (`socket.join`).
    pub fn join(&self, ns: &str, sid: &str, rooms: Vec<String>) -> Result<(), CommandError> {
        self.run(vec![SocketCommand::Join {
            ns: ns.into(),
            sid: sid.into(),
            rooms,
        }])
    }

    /// Takes a connection out of rooms (`socket.leave`).
    pub fn leave(&self, ns: &str, sid: &str, rooms: Vec<String>) -> Result<(), CommandError> {
        self.run(vec![SocketCommand::Leave {
            ns: ns.into(),
            sid: sid.into(),
            rooms,
        }])
    }

    /// Disconnects a connection from `ns`, or with `close` from every namespace
    /// (`socket.disconnect(close)`).
    pub fn disconnect_socket(&self, ns: &str, sid: &str, close: bool) -> Result<(), CommandError> {
        self.run(vec![SocketCommand::Disconnect {
            ns: ns.into(),
            sid: sid.into(),
            close,
        }])
    }

    /// Answers a [`SocketEvent`](crate::Event::SocketEvent)'s acknowledgement
    /// with the arguments of the client's callback, in order with the commands
    /// given before.
    pub fn ack_args(&self, id: AckId, args: OutArgs) -> Result<(), CommandError> {
        self.run(vec![SocketCommand::Ack { ack: id, args }])
    }

    /// Decides a connection waiting at a connect gate
    /// ([`SocketGate`](crate::Event::SocketGate)).
    pub fn admit(&self, gate: GateId, decision: GateDecision) -> Result<(), CommandError> {
        self.run(vec![SocketCommand::Admit { gate, decision }])
    }

    /// Chooses which events of a connection reach the host (see
    /// [`SocketCommand::Listen`]).
    pub fn listen(
        &self,
        ns: &str,
        sid: &str,
        events: Option<Vec<String>>,
    ) -> Result<(), CommandError> {
        self.run(vec![SocketCommand::Listen {
            ns: ns.into(),
            sid: sid.into(),
            events,
        }])
    }

    /// Makes `ns` a host namespace, or changes whether it is gated.
    pub fn namespace(&self, ns: &str, gated: bool) -> Result<(), CommandError> {
        self.run(vec![SocketCommand::Namespace {
            ns: ns.into(),
            gated,
        }])
    }

    /// Answers a query once every command given before it is applied.
    pub fn query(
        &self,
        query: SocketQuery,
    ) -> impl Future<Output = Result<QueryAnswer, CommandError>> + Send + 'static {
        let stopping = self.shared().stopping();
        let answer = self.sockets.query(query);
        async move {
            if stopping {
                return Err(CommandError::NotRunning);
            }
            answer.await
        }
    }

    /// The connections of a target, on every node (`fetchSockets`).
    pub fn fetch_sockets(
        &self,
        to: Target,
    ) -> impl Future<Output = Result<Vec<SocketInfo>, CommandError>> + Send + 'static {
        let answer = self.query(SocketQuery::FetchSockets { to });
        async move {
            match answer.await? {
                QueryAnswer::Sockets(sockets) => Ok(sockets),
                QueryAnswer::Acks(_) => Ok(Vec::new()),
            }
        }
    }

    /// Emits and collects every connection's answer within `timeout`
    /// (`io.timeout(ms).emitWithAck`).
    pub fn emit_with_ack(
        &self,
        to: Target,
        event: &str,
        args: OutArgs,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<AckReply>, CommandError>> + Send + 'static {
        let answer = self.query(SocketQuery::EmitWithAck {
            to,
            event: event.into(),
            args,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        });
        async move {
            match answer.await? {
                QueryAnswer::Acks(replies) => Ok(replies),
                QueryAnswer::Sockets(_) => Ok(Vec::new()),
            }
        }
    }

    /// Blocks the calling thread until `work` has run on the chat's runtime; for hosts
    /// without an async runtime (the C binding). `None` when the engine stopped before
    /// `work` finished. Must not be called on a thread of an async runtime.
    pub fn block_on<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (done, result) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = done.send(work.await);
        });
        // A runtime that shuts down drops the task, and with it `done`.
        result.recv().ok()
    }
}

fn check_event(event: &str) -> Result<(), EmitError> {
    crate::sockets::check_event(event).map_err(|_| EmitError::InvalidEvent(event.into()))
}
