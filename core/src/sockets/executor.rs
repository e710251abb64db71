//! Applies the host's commands, one after the other, in the order given.
//!
//! One task per engine reads them from a queue bounded in bytes. What
//! socketioxide can do at once (emit to a local connection, join a room, the
//! local part of a broadcast) is done before the next command is read, so that
//! `socket.join(room)` followed by `io.to(room).emit(...)` reaches the new
//! member, as in socket.io; what has to wait for the cluster backend finishes on
//! a task of its own.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError, SocketIo};
use socketioxide_core::adapter::{DefinedAdapter, Spawnable};
use tokio::sync::{mpsc, oneshot};

use super::args::{JsonArgs, OutArgs};
use super::commands::{
    name_set, AckReply, CommandError, QueryAnswer, SocketCommand, SocketInfo, SocketQuery, Target,
};
use super::host_socket::{HostSocket, Listening};
use super::namespace::{HostNamespace, OnConnect};
use super::recovery::{Recovery, RESTORING};
use crate::acks::AckAnswer;
use crate::plain_ws::PlainSockets;
use crate::shared::Shared;
use crate::stats::Counters;

type QueryReply = oneshot::Sender<Result<QueryAnswer, CommandError>>;

enum Work {
    /// Commands and the bytes they were counted as.
    Run(Vec<SocketCommand>, usize),
    Query(SocketQuery, QueryReply),
}

/// The host's end of the queue. Cheap to clone.
#[derive(Clone)]
pub(crate) struct CommandQueue {
    tx: mpsc::UnboundedSender<Work>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    /// `/` is the built-in chat's: it cannot become a host namespace.
    chat_owns_root: bool,
}

impl CommandQueue {
    /// Queues commands (checked first: a batch with one bad command is refused
    /// whole, and nothing of it is applied).
    pub(crate) fn run(&self, commands: Vec<SocketCommand>) -> Result<(), CommandError> {
        for command in &commands {
            command.check()?;
            if let SocketCommand::Namespace { ns, .. } = command {
                if self.chat_owns_root && ns == "/" {
                    return Err(CommandError::Invalid(
                        "\"/\" is the built-in chat's namespace (set builtin_chat to false)".into(),
                    ));
                }
            }
        }
        let bytes: usize = commands.iter().map(SocketCommand::weight).sum();
        let before = self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        // One batch is always taken when nothing waits, however big.
        if before > 0 && before + bytes > self.max_bytes {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(CommandError::QueueFull(before));
        }
        self.tx.send(Work::Run(commands, bytes)).map_err(|_| {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            CommandError::NotRunning
        })
    }

    /// Queues a query; it is answered once the commands before it are applied.
    pub(crate) fn query(
        &self,
        query: SocketQuery,
    ) -> impl Future<Output = Result<QueryAnswer, CommandError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let sent = query.check().and_then(|()| {
            self.tx
                .send(Work::Query(query, reply))
                .map_err(|_| CommandError::NotRunning)
        });
        async move {
            sent?;
            answer.await.unwrap_or(Err(CommandError::NotRunning))
        }
    }

    /// Bytes of commands given and not yet applied.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }
}

/// Starts the executor on the current runtime. With `root` the `/` namespace
/// is a host namespace from the start; its adapter's start-up (a Redis
/// subscription in cluster mode) is returned for the caller to wait for.
pub(crate) fn start<A: Adapter + DefinedAdapter>(
    io: SocketIo<A>,
    shared: Arc<Shared>,
    plain: Arc<PlainSockets>,
    root: bool,
) -> (CommandQueue, Option<A::InitRes>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let recovery = shared
        .config
        .connection_state_recovery
        .clone()
        .map(|config| {
            Arc::new(Recovery::new(
                config,
                shared.config.transport.max_buffer_size,
            ))
        });
    let mut executor = Executor {
        recovery,
        io,
        shared: shared.clone(),
        plain,
        namespaces: HashMap::new(),
        listen_sets: HashMap::new(),
        queued_bytes: queued_bytes.clone(),
    };
    let init = root.then(|| executor.add_namespace("/"));
    tokio::spawn(executor.run(rx));
    let queue = CommandQueue {
        tx,
        queued_bytes,
        max_bytes: shared.config.command_queue_bytes,
        chat_owns_root: !root,
    };
    (queue, init)
}

struct Executor<A: Adapter> {
    /// Connection state recovery, when it is on: every broadcast is recorded.
    recovery: Option<Arc<Recovery>>,
    io: SocketIo<A>,
    shared: Arc<Shared>,
    plain: Arc<PlainSockets>,
    namespaces: HashMap<String, Arc<HostNamespace>>,
    /// The last name set each namespace's connections listen to: connections
    /// set up by the same code share one copy.
    listen_sets: HashMap<String, Arc<HashSet<Box<str>>>>,
    queued_bytes: Arc<AtomicUsize>,
}

impl<A: Adapter + DefinedAdapter> Executor<A> {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Work>) {
        while let Some(work) = rx.recv().await {
            match work {
                Work::Run(commands, bytes) => {
                    for command in commands {
                        self.apply(command);
                    }
                    self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
                }
                Work::Query(query, reply) => {
                    let answer = self.answer(query);
                    tokio::spawn(async move {
                        let _ = reply.send(answer.await);
                    });
                }
            }
        }
    }

    fn add_namespace(&mut self, path: &str) -> A::InitRes {
        let ns = HostNamespace::new(path);
        self.namespaces.insert(path.to_string(), ns.clone());
        let handler = OnConnect {
            shared: self.shared.clone(),
            ns,
            recovery: self.recovery.clone(),
        };
        self.io.ns(path.to_string(), handler)
    }

    fn apply(&mut self, command: SocketCommand) {
        match command {
            SocketCommand::EmitTo {
                ns,
                sid,
                event,
                args,
                volatile,
            } => match self.socket(&ns, &sid) {
                Some(socket) => {
                    let sent = if volatile {
                        socket.volatile().emit(&event, &args)
                    } else {
                        socket.emit(&event, &args)
                    };
                    count_unsent(sent, &self.shared.counters);
                }
                None => {
                    if self.clustered() {
                        let to = Target {
                            volatile,
                            ..Target::namespace(&ns).to([sid])
                        };
                        self.emit(&to, event, args.shared());
                    }
                }
            },
            SocketCommand::Emit { to, event, args } => self.broadcast(&to, event, args),
            SocketCommand::Join { ns, sid, rooms } => match self.socket(&ns, &sid) {
                Some(socket) => socket.join(rooms),
                None => {
                    if let Some(op) = self.remote_socket(&ns, &sid) {
                        drive(async move {
                            let _ = op.join(rooms).await;
                        });
                    }
                }
            },
            SocketCommand::Leave { ns, sid, rooms } => match self.socket(&ns, &sid) {
                Some(socket) => socket.leave(rooms),
                None => {
                    if let Some(op) = self.remote_socket(&ns, &sid) {
                        drive(async move {
                            let _ = op.leave(rooms).await;
                        });
                    }
                }
            },
            SocketCommand::SocketsJoin { to, rooms } => {
                if let Some(op) = self.operators(&to) {
                    drive(async move {
                        let _ = op.join(rooms).await;
                    });
                }
            }
            SocketCommand::SocketsLeave { to, rooms } => {
                if let Some(op) = self.operators(&to) {
                    drive(async move {
                        let _ = op.leave(rooms).await;
                    });
                }
            }
            SocketCommand::Disconnect { ns, sid, close } => {
                if close {
                    self.close_everywhere(&ns, &sid);
                } else if let Some(socket) = self.socket(&ns, &sid) {
                    let _ = socket.disconnect();
                } else if let Some(op) = self.remote_socket(&ns, &sid) {
                    drive(async move {
                        let _ = op.disconnect().await;
                    });
                }
            }
            SocketCommand::DisconnectSockets { to, close } => {
                let Some(op) = self.operators(&to) else {
                    return;
                };
                if close {
                    for socket in op.clone().local().sockets() {
                        self.close_everywhere(&to.ns, &socket.id.to_string());
                    }
                }
                drive(async move {
                    let _ = op.disconnect().await;
                });
            }
            SocketCommand::Ack { ack, args } => {
                // Gone already (answered, expired, or its client left): nothing to do.
                let _ = self.shared.host.acks.answer(ack, AckAnswer::Args(args));
            }
            SocketCommand::Admit { gate, decision } => {
                let _ = self.shared.host.gates.decide(gate, decision);
            }
            SocketCommand::Listen { ns, sid, events } => {
                let Some(socket) = self.socket(&ns, &sid) else {
                    return;
                };
                let Some(state) = socket.extensions.get::<Arc<HostSocket>>() else {
                    return;
                };
                let listening = match events {
                    None => Listening::Everything,
                    Some(events) => Listening::Only(self.listen_set(&ns, &events)),
                };
                state.listen(listening);
            }
            SocketCommand::WsSend { id, message } => self.plain.send(id, &message),
            SocketCommand::WsBroadcast { message, except } => {
                self.plain.broadcast(&message, &except)
            }
            SocketCommand::WsClose { id, code, reason } => self.plain.close(id, code, &reason),
            SocketCommand::Namespace { ns, gated } => {
                if !self.namespaces.contains_key(&ns) {
                    // `/` with the chat on is refused before it is queued.
                    self.add_namespace(&ns).spawn();
                }
                if let Some(namespace) = self.namespaces.get(&ns) {
                    namespace.set_gated(gated);
                }
            }
        }
    }

    /// A broadcast: with recovery on, numbered and recorded (unless volatile),
    /// and kept from the sockets whose replay is not done, so that nothing
    /// overtakes it (recovery.rs).
    fn broadcast(&self, to: &Target, event: String, args: OutArgs) {
        let Some(recovery) = &self.recovery else {
            return self.emit(to, event, args.shared());
        };
        recovery.broadcast(to, event, args, |event, args| {
            let live = Target {
                except: to
                    .except
                    .iter()
                    .cloned()
                    .chain([RESTORING.to_string()])
                    .collect(),
                ..to.clone()
            };
            self.emit(&live, event, args)
        })
    }

    fn emit(&self, to: &Target, event: String, args: Arc<OutArgs>) {
        let Some(op) = self.operators(to) else {
            return;
        };
        drive(async move {
            if let Err(e) = op.emit(&event, &*args).await {
                tracing::debug!("emit to {event:?} failed: {e}");
            }
        });
    }

    fn answer(
        &self,
        query: SocketQuery,
    ) -> impl Future<Output = Result<QueryAnswer, CommandError>> + Send + 'static {
        let io = self.io.clone();
        let op = match &query {
            SocketQuery::FetchSockets { to } | SocketQuery::EmitWithAck { to, .. } => {
                self.operators(to)
            }
        };
        async move {
            let Some(op) = op else {
                return Ok(match query {
                    SocketQuery::FetchSockets { .. } => QueryAnswer::Sockets(Vec::new()),
                    SocketQuery::EmitWithAck { .. } => QueryAnswer::Acks(Vec::new()),
                });
            };
            match query {
                SocketQuery::FetchSockets { to } => {
                    let sockets = op
                        .fetch_sockets()
                        .await
                        .map_err(|e| CommandError::Failed(e.to_string()))?;
                    let mut found = Vec::with_capacity(sockets.len());
                    for remote in sockets {
                        let id = remote.data().id;
                        let local = io.of(&to.ns).and_then(|ns| ns.get_socket(id));
                        let rooms = match &local {
                            Some(socket) => socket.rooms(),
                            None => remote.rooms().await.unwrap_or_default(),
                        };
                        found.push(SocketInfo {
                            id: id.to_string(),
                            rooms: rooms
                                .into_iter()
                                .filter(|r| r != RESTORING)
                                .map(|r| r.to_string())
                                .collect(),
                            local: local.is_some(),
                        });
                    }
                    Ok(QueryAnswer::Sockets(found))
                }
                SocketQuery::EmitWithAck {
                    event,
                    args,
                    timeout_ms,
                    ..
                } => {
                    let stream = op
                        .timeout(Duration::from_millis(timeout_ms))
                        .emit_with_ack::<_, AckArgs>(&event, &args)
                        .await
                        .map_err(|e| CommandError::Failed(e.to_string()))?;
                    let replies = stream
                        .map(|(sid, answer)| {
                            let (args, attachments, error) = match answer {
                                Ok(AckArgs(args, attachments)) => (Some(args), attachments, None),
                                Err(e) => (None, Vec::new(), Some(ack_error_code(&e))),
                            };
                            AckReply {
                                id: sid.to_string(),
                                args,
                                attachments,
                                error,
                            }
                        })
                        .collect()
                        .await;
                    Ok(QueryAnswer::Acks(replies))
                }
            }
        }
    }

    /// A connection of this node.
    fn socket(&self, ns: &str, sid: &str) -> Option<SocketRef<A>> {
        let sid = Sid::from_str(sid).ok()?;
        self.io.of(ns)?.get_socket(sid)
    }

    /// In cluster mode, the operators that reach one connection on whichever
    /// node it is.
    fn remote_socket(&self, ns: &str, sid: &str) -> Option<BroadcastOperators<A>> {
        if !self.clustered() {
            return None;
        }
        Some(self.io.of(ns)?.to(sid.to_string()))
    }

    fn clustered(&self) -> bool {
        self.shared.cluster().is_some()
    }

    fn operators(&self, to: &Target) -> Option<BroadcastOperators<A>> {
        let mut op = self.io.of(&to.ns)?;
        if !to.rooms.is_empty() {
            op = op.to(to.rooms.clone());
        }
        if !to.except.is_empty() {
            op = op.except(to.except.clone());
        }
        if to.volatile {
            op = op.volatile();
        }
        if to.local {
            op = op.local();
        }
        Some(op)
    }

    /// Disconnects a connection from every namespace it is in (its sockets
    /// there have ids of their own; they share its Engine.IO session), as
    /// socket.io's `socket.disconnect(true)` does.
    fn close_everywhere(&self, ns: &str, sid: &str) {
        let Some(socket) = self.socket(ns, sid) else {
            return;
        };
        let session = socket.transport_id();
        for ns in self.io.nsps() {
            for other in ns.sockets() {
                if other.transport_id() == session {
                    let _ = other.disconnect();
                }
            }
        }
    }

    fn listen_set(&mut self, ns: &str, events: &[String]) -> Arc<HashSet<Box<str>>> {
        let wanted = name_set(events);
        match self.listen_sets.get(ns) {
            Some(last) if **last == wanted => last.clone(),
            _ => {
                let set = Arc::new(wanted);
                self.listen_sets.insert(ns.to_string(), set.clone());
                set
            }
        }
    }
}

/// Runs what can be done now; the rest (cluster round trips) on a task.
fn drive(work: impl Future<Output = ()> + Send + 'static) {
    let mut work = Box::pin(work);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    if work.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(work);
    }
}

fn count_unsent(result: Result<(), SendError>, counters: &Counters) {
    match result {
        Ok(()) => {}
        Err(SendError::Socket(SocketError::InternalChannelFull)) => counters.dropped(1),
        Err(e) => tracing::debug!("could not emit: {e}"),
    }
}

fn ack_error_code(error: &socketioxide::AckError) -> String {
    match error {
        socketioxide::AckError::Timeout => "timeout",
        socketioxide::AckError::Decode(_) => "decode",
        socketioxide::AckError::Socket(_) => "socket_closed",
    }
    .to_string()
}

/// Every argument of an acknowledgement, as sent: the JSON array with binary
/// values back as placeholders, and the bytes they name.
struct AckArgs(JsonArgs, Vec<Bytes>);

impl<'de> Deserialize<'de> for AckArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let attachments = RefCell::new(Vec::new());
        // A tuple, so that socketioxide hands over the whole array, not its
        // first element.
        let values = deserializer.deserialize_tuple(
            usize::MAX,
            SeqOf(Keeping {
                attachments: &attachments,
            }),
        )?;
        let text = serde_json::to_string(&values).map_err(serde::de::Error::custom)?;
        let args = serde_json::from_str(&text).map_err(serde::de::Error::custom)?;
        Ok(AckArgs(args, attachments.into_inner()))
    }
}

/// Reads any value; bytes (the parser's binary attachments) are kept aside and
/// become placeholders.
#[derive(Clone, Copy)]
struct Keeping<'a> {
    attachments: &'a RefCell<Vec<Bytes>>,
}

struct SeqOf<'a>(Keeping<'a>);

impl<'de> Visitor<'de> for SeqOf<'_> {
    type Value = Vec<serde_json::Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the arguments of an acknowledgement")
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut all = Vec::new();
        while let Some(value) = seq.next_element_seed(self.0)? {
            all.push(value);
        }
        Ok(all)
    }
}

impl<'de> DeserializeSeed<'de> for Keeping<'_> {
    type Value = serde_json::Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keeping<'_> {
    type Value = serde_json::Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value or binary data")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        self.visit_byte_buf(v.to_vec())
    }
    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        let mut attachments = self.attachments.borrow_mut();
        attachments.push(Bytes::from(v));
        Ok(serde_json::json!({"_placeholder": true, "num": attachments.len() - 1}))
    }
    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
        SeqOf(self).visit_seq(seq).map(serde_json::Value::Array)
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            out.insert(key, map.next_value_seed(self)?);
        }
        Ok(serde_json::Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_finishes_ready_work_at_once() {
        let done = Arc::new(AtomicUsize::new(0));
        let counter = done.clone();
        drive(async move {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(done.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn ack_args_keep_every_argument() {
        let AckArgs(args, attachments) = serde_json::from_str(r#"[1,"2",{"3":[true]}]"#).unwrap();
        assert_eq!(args.as_str(), r#"[1,"2",{"3":[true]}]"#);
        assert!(attachments.is_empty());
    }
}
