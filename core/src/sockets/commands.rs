//! What a host asks of its Socket.IO connections: emits, rooms, disconnects,
//! answers (commands, applied in the order they were given), and look-ups
//! (queries, answered after every command given before them).
//!
//! Commands have a JSON form, so that the bindings can hand over a batch in one
//! call: an array of `{"<op>": {...}}` objects (see [`SocketCommand`]), with the
//! binary attachments of all of them in one list beside it.

use std::collections::HashSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::args::{JsonArgs, OutArgs};
use crate::events::{AckId, GateId};
use crate::gates::GateDecision;
use crate::plain_ws::PlainMessage;

/// Who an emit (or a room or disconnect command) reaches: the shape of
/// socket.io's operators (`io.to(rooms).except(rooms).emit(...)`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Target {
    /// Namespace. Defaults to `"/"`.
    pub ns: String,
    /// Rooms; every connection is also in a room named by its id. Empty means
    /// every connection of the namespace. Defaults to empty.
    pub rooms: Vec<String>,
    /// Rooms (or connection ids) left out. Defaults to empty.
    pub except: Vec<String>,
    /// Skip connections that cannot take the packet now instead of queueing it
    /// (socket.io's `volatile`). Defaults to `false`.
    pub volatile: bool,
    /// This node only, in cluster mode (socket.io's `local`). Defaults to `false`.
    pub local: bool,
}

impl Default for Target {
    fn default() -> Self {
        Self {
            ns: "/".into(),
            rooms: Vec::new(),
            except: Vec::new(),
            volatile: false,
            local: false,
        }
    }
}

impl Target {
    /// Every connection of namespace `ns`.
    pub fn namespace(ns: &str) -> Self {
        Self {
            ns: ns.into(),
            ..Self::default()
        }
    }

    /// The same target narrowed to `rooms`.
    pub fn to(mut self, rooms: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.rooms.extend(rooms.into_iter().map(Into::into));
        self
    }

    /// The same target without `rooms` (or connection ids).
    pub fn except(mut self, rooms: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.except.extend(rooms.into_iter().map(Into::into));
        self
    }
}

/// One thing for the engine to do. Commands are applied in the order given,
/// one after the other; a command for a connection that has gone does nothing,
/// as in socket.io.
#[derive(Debug, Clone)]
pub enum SocketCommand {
    /// Emits to one connection (`socket.emit(event, ...args)`).
    EmitTo {
        /// Namespace.
        ns: String,
        /// Connection id.
        sid: String,
        /// Event name.
        event: String,
        /// Arguments.
        args: OutArgs,
        /// Drop it if the connection cannot take it now.
        volatile: bool,
    },
    /// Emits to a target (`io.to(room).except(id).emit(event, ...args)`).
    Emit {
        /// Who gets it.
        to: Target,
        /// Event name.
        event: String,
        /// Arguments.
        args: OutArgs,
    },
    /// Puts one connection in rooms (`socket.join(rooms)`).
    Join {
        /// Namespace.
        ns: String,
        /// Connection id.
        sid: String,
        /// Rooms to join.
        rooms: Vec<String>,
    },
    /// Takes one connection out of rooms (`socket.leave(room)`).
    Leave {
        /// Namespace.
        ns: String,
        /// Connection id.
        sid: String,
        /// Rooms to leave.
        rooms: Vec<String>,
    },
    /// Puts every connection of a target in rooms (`io.in(a).socketsJoin(b)`).
    SocketsJoin {
        /// Whose connections.
        to: Target,
        /// Rooms to join.
        rooms: Vec<String>,
    },
    /// Takes every connection of a target out of rooms (`socketsLeave`).
    SocketsLeave {
        /// Whose connections.
        to: Target,
        /// Rooms to leave.
        rooms: Vec<String>,
    },
    /// Disconnects one connection from its namespace (`socket.disconnect()`);
    /// with `close`, from every namespace (`socket.disconnect(true)`).
    Disconnect {
        /// Namespace.
        ns: String,
        /// Connection id.
        sid: String,
        /// Close the whole connection, not just this namespace.
        close: bool,
    },
    /// Disconnects every connection of a target (`disconnectSockets(close)`).
    DisconnectSockets {
        /// Whose connections.
        to: Target,
        /// Close the whole connections, not just this namespace.
        close: bool,
    },
    /// Answers a client's acknowledgement with these arguments.
    Ack {
        /// From [`Event::SocketEvent`](crate::Event::SocketEvent).
        ack: AckId,
        /// The arguments of the client's callback.
        args: OutArgs,
    },
    /// Decides a connection waiting at a connect gate.
    Admit {
        /// From [`Event::SocketGate`](crate::Event::SocketGate).
        gate: GateId,
        /// In or out.
        decision: GateDecision,
    },
    /// Chooses which events of one connection reach the host: `None` for every
    /// event (socket.io's `onAny`), or these names. Until the first `Listen`
    /// every event does, so that none is lost while the host sets up its
    /// listeners.
    Listen {
        /// Namespace.
        ns: String,
        /// Connection id.
        sid: String,
        /// Event names, or `None` for all.
        events: Option<Vec<String>>,
    },
    /// Makes `ns` a host namespace (clients may connect to it), or changes
    /// whether its new connections wait at a connect gate.
    Namespace {
        /// Namespace path (`"/admin"`).
        ns: String,
        /// New connections wait for [`SocketCommand::Admit`].
        gated: bool,
    },
    /// Sends a message to one plain WebSocket connection (`ws.send`).
    WsSend {
        /// Connection id ([`Event::WsOpen`](crate::Event::WsOpen)).
        id: u64,
        /// The message.
        message: PlainMessage,
    },
    /// Sends a message to every plain WebSocket connection but `except`.
    WsBroadcast {
        /// The message.
        message: PlainMessage,
        /// Connection ids left out.
        except: Vec<u64>,
    },
    /// Closes a plain WebSocket connection (`ws.close(code, reason)`).
    WsClose {
        /// Connection id.
        id: u64,
        /// Close code (1000 normal; 3000-4999 for applications).
        code: u16,
        /// Close reason, at most 123 bytes.
        reason: String,
    },
}

/// A look-up, answered after every command given before it.
#[derive(Debug, Clone)]
pub enum SocketQuery {
    /// The connections of a target, on every node (`io.in(room).fetchSockets()`).
    FetchSockets {
        /// Whose connections.
        to: Target,
    },
    /// Emits and collects every connection's answer until `timeout_ms`
    /// (`io.timeout(ms).emitWithAck(...)`, `socket.timeout(ms).emit(..., cb)`).
    EmitWithAck {
        /// Who gets it; a connection id as the only room for one connection.
        to: Target,
        /// Event name.
        event: String,
        /// Arguments.
        args: OutArgs,
        /// How long to wait for answers, in milliseconds.
        timeout_ms: u64,
    },
}

/// A connection found by [`SocketQuery::FetchSockets`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocketInfo {
    /// Connection id.
    pub id: String,
    /// Rooms it is in (its own id included).
    pub rooms: Vec<String>,
    /// Whether it is connected to this node.
    pub local: bool,
}

/// One connection's answer to [`SocketQuery::EmitWithAck`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AckReply {
    /// Connection id.
    pub id: String,
    /// The arguments it answered with; `None` when it did not answer in time. A
    /// binary argument is the placeholder `{"_placeholder":true,"num":n}` for
    /// `attachments[n]`.
    pub args: Option<JsonArgs>,
    /// The binary attachments of `args` (in the JSON form, `bin` says how many,
    /// left out when there are none; see [`QueryAnswer::attachments`]).
    #[serde(
        rename = "bin",
        serialize_with = "attachment_count",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attachments: Vec<Bytes>,
    /// Why there is no answer (`timeout`, `socket_closed`, `decode`).
    pub error: Option<String>,
}

fn attachment_count<S: serde::Serializer>(attachments: &[Bytes], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(attachments.len() as u64)
}

/// What a query answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum QueryAnswer {
    /// For [`SocketQuery::FetchSockets`].
    Sockets(Vec<SocketInfo>),
    /// For [`SocketQuery::EmitWithAck`].
    Acks(Vec<AckReply>),
}

impl QueryAnswer {
    /// Every binary attachment of the answer, in order: reply by reply, each
    /// reply's `bin` of them. The JSON form leaves them out.
    pub fn attachments(&self) -> Vec<Bytes> {
        match self {
            Self::Sockets(_) => Vec::new(),
            Self::Acks(replies) => replies
                .iter()
                .flat_map(|reply| reply.attachments.iter().cloned())
                .collect(),
        }
    }
}

/// Why commands or a query were not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A command is malformed: its JSON, an event name (empty, over 128 bytes,
    /// or reserved by Socket.IO), a namespace path, or arguments that are not an
    /// array.
    #[error("invalid command: {0}")]
    Invalid(String),
    /// Commands given but not yet applied take more than `command_queue_bytes`:
    /// the host gives them faster than the engine applies them.
    #[error("the command queue is full ({0} bytes waiting)")]
    QueueFull(usize),
    /// The engine has stopped.
    #[error("the engine is not running")]
    NotRunning,
    /// The cluster backend failed to answer a query.
    #[error("the query failed: {0}")]
    Failed(String),
}

/// Event names Socket.IO reserves; emitting them would confuse every client.
pub(crate) const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];
/// Longest event name the host may emit, in bytes.
pub(crate) const MAX_EVENT_NAME: usize = 128;

pub(crate) fn check_event(event: &str) -> Result<(), CommandError> {
    if event.is_empty() || event.len() > MAX_EVENT_NAME || RESERVED_EVENTS.contains(&event) {
        return Err(CommandError::Invalid(format!(
            "event name {event:?} is empty, longer than {MAX_EVENT_NAME} bytes, or reserved by Socket.IO"
        )));
    }
    Ok(())
}

pub(crate) fn check_namespace(ns: &str) -> Result<(), CommandError> {
    if !ns.starts_with('/') || ns.len() > 256 || ns.contains(',') || ns.contains('?') {
        return Err(CommandError::Invalid(format!(
            "namespace {ns:?} must start with '/', be at most 256 bytes, and hold no ',' or '?'"
        )));
    }
    Ok(())
}

impl SocketCommand {
    /// Checks what can be checked before the command is queued.
    pub(crate) fn check(&self) -> Result<(), CommandError> {
        match self {
            Self::EmitTo { ns, event, .. } => {
                check_namespace(ns)?;
                check_event(event)
            }
            Self::Emit { to, event, .. } => {
                check_namespace(&to.ns)?;
                check_event(event)
            }
            Self::Join { ns, .. }
            | Self::Leave { ns, .. }
            | Self::Disconnect { ns, .. }
            | Self::Listen { ns, .. }
            | Self::Namespace { ns, .. } => check_namespace(ns),
            Self::SocketsJoin { to, .. }
            | Self::SocketsLeave { to, .. }
            | Self::DisconnectSockets { to, .. } => check_namespace(&to.ns),
            Self::Ack { .. }
            | Self::Admit { .. }
            | Self::WsSend { .. }
            | Self::WsBroadcast { .. } => Ok(()),
            Self::WsClose { code, reason, .. } => {
                let code_ok = *code == 1000 || (3000..=4999).contains(code);
                if !code_ok || reason.len() > 123 {
                    return Err(CommandError::Invalid(format!(
                        "a close code is 1000 or 3000..4999 (got {code}) and a reason at most 123 bytes"
                    )));
                }
                Ok(())
            }
        }
    }

    /// About how many bytes the command takes while queued.
    pub(crate) fn weight(&self) -> usize {
        const FIXED: usize = 128;
        let rooms = |rooms: &[String]| rooms.iter().map(String::len).sum::<usize>();
        FIXED
            + match self {
                Self::EmitTo { args, event, .. } => args.size() + event.len(),
                Self::Emit { to, event, args } => {
                    args.size() + event.len() + rooms(&to.rooms) + rooms(&to.except)
                }
                Self::Ack { args, .. } => args.size(),
                Self::Join { rooms: r, .. }
                | Self::Leave { rooms: r, .. }
                | Self::SocketsJoin { rooms: r, .. }
                | Self::SocketsLeave { rooms: r, .. } => rooms(r),
                Self::Listen {
                    events: Some(events),
                    ..
                } => rooms(events),
                Self::WsSend { message, .. } | Self::WsBroadcast { message, .. } => match message {
                    PlainMessage::Text(text) => text.len(),
                    PlainMessage::Binary(bytes) => bytes.len(),
                },
                _ => 0,
            }
    }

    /// A batch in its JSON form: `[{"emit_to": {...}}, ...]`. Commands with
    /// arguments take `bin` attachments each (default 0) from `attachments`, in
    /// order.
    pub fn batch_from_json(
        json: &str,
        attachments: Vec<Bytes>,
    ) -> Result<Vec<SocketCommand>, CommandError> {
        let wire: Vec<WireCommand> =
            serde_json::from_str(json).map_err(|e| CommandError::Invalid(e.to_string()))?;
        let mut attachments = attachments.into_iter();
        wire.into_iter()
            .map(|command| command.resolve(&mut attachments))
            .collect()
    }
}

impl SocketQuery {
    /// A query in its JSON form: `{"fetch_sockets": {"to": {...}}}` or
    /// `{"emit_with_ack": {"to": {...}, "event": "...", "args": [...], "bin": n,
    /// "timeout_ms": n}}`.
    pub fn from_json(json: &str, attachments: Vec<Bytes>) -> Result<Self, CommandError> {
        let wire: WireQuery =
            serde_json::from_str(json).map_err(|e| CommandError::Invalid(e.to_string()))?;
        let mut attachments = attachments.into_iter();
        let query = match wire {
            WireQuery::FetchSockets { to } => Self::FetchSockets { to },
            WireQuery::EmitWithAck {
                to,
                event,
                args,
                bin,
                timeout_ms,
            } => Self::EmitWithAck {
                to,
                event,
                args: resolve_args(args, bin, &mut attachments)?,
                timeout_ms,
            },
        };
        query.check()?;
        Ok(query)
    }

    pub(crate) fn check(&self) -> Result<(), CommandError> {
        match self {
            Self::FetchSockets { to } => check_namespace(&to.ns),
            Self::EmitWithAck { to, event, .. } => {
                check_namespace(&to.ns)?;
                check_event(event)
            }
        }
    }
}

fn empty_array() -> Box<RawValue> {
    RawValue::from_string("[]".into()).expect("valid JSON")
}

/// Arguments from their wire form: an array and how many of the batch's
/// attachments it takes.
fn resolve_args(
    args: Box<RawValue>,
    bin: usize,
    attachments: &mut impl Iterator<Item = Bytes>,
) -> Result<OutArgs, CommandError> {
    let taken: Vec<Bytes> = attachments.take(bin).collect();
    if taken.len() != bin {
        return Err(CommandError::Invalid(
            "fewer attachments than the commands name".into(),
        ));
    }
    OutArgs::from_raw(args, taken).map_err(|e| CommandError::Invalid(e.to_string()))
}

fn root() -> String {
    "/".into()
}

// Externally tagged, without `flatten`: serde reads these straight from the
// text, which a `RawValue` needs (the arguments are passed through as written).
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum WireCommand {
    EmitTo {
        #[serde(default = "root")]
        ns: String,
        sid: String,
        event: String,
        #[serde(default = "empty_array")]
        args: Box<RawValue>,
        #[serde(default)]
        bin: usize,
        #[serde(default)]
        volatile: bool,
    },
    Emit {
        #[serde(default)]
        to: Target,
        event: String,
        #[serde(default = "empty_array")]
        args: Box<RawValue>,
        #[serde(default)]
        bin: usize,
    },
    Join {
        #[serde(default = "root")]
        ns: String,
        sid: String,
        rooms: Vec<String>,
    },
    Leave {
        #[serde(default = "root")]
        ns: String,
        sid: String,
        rooms: Vec<String>,
    },
    SocketsJoin {
        #[serde(default)]
        to: Target,
        rooms: Vec<String>,
    },
    SocketsLeave {
        #[serde(default)]
        to: Target,
        rooms: Vec<String>,
    },
    Disconnect {
        #[serde(default = "root")]
        ns: String,
        sid: String,
        #[serde(default)]
        close: bool,
    },
    DisconnectSockets {
        #[serde(default)]
        to: Target,
        #[serde(default)]
        close: bool,
    },
    Ack {
        ack: u64,
        #[serde(default = "empty_array")]
        args: Box<RawValue>,
        #[serde(default)]
        bin: usize,
    },
    Admit {
        gate: u64,
        #[serde(default)]
        refuse: Option<String>,
    },
    Listen {
        #[serde(default = "root")]
        ns: String,
        sid: String,
        #[serde(default)]
        events: Option<Vec<String>>,
    },
    Namespace {
        ns: String,
        #[serde(default)]
        gated: bool,
    },
    WsSend {
        id: u64,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        bin: usize,
    },
    WsBroadcast {
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        bin: usize,
        #[serde(default)]
        except: Vec<u64>,
    },
    WsClose {
        id: u64,
        #[serde(default = "normal_close")]
        code: u16,
        #[serde(default)]
        reason: String,
    },
}

fn normal_close() -> u16 {
    1000
}

/// A plain WebSocket message from its wire form: `text`, or one attachment.
fn resolve_message(
    text: Option<String>,
    bin: usize,
    attachments: &mut impl Iterator<Item = Bytes>,
) -> Result<PlainMessage, CommandError> {
    match (text, bin) {
        (Some(text), 0) => Ok(PlainMessage::Text(text)),
        (None, 1) => attachments.next().map(PlainMessage::Binary).ok_or_else(|| {
            CommandError::Invalid("fewer attachments than the commands name".into())
        }),
        _ => Err(CommandError::Invalid(
            "a plain WebSocket message is either \"text\" or one attachment (\"bin\": 1)".into(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum WireQuery {
    FetchSockets {
        #[serde(default)]
        to: Target,
    },
    EmitWithAck {
        #[serde(default)]
        to: Target,
        event: String,
        #[serde(default = "empty_array")]
        args: Box<RawValue>,
        #[serde(default)]
        bin: usize,
        timeout_ms: u64,
    },
}

impl WireCommand {
    fn resolve(
        self,
        attachments: &mut impl Iterator<Item = Bytes>,
    ) -> Result<SocketCommand, CommandError> {
        let command = match self {
            Self::EmitTo {
                ns,
                sid,
                event,
                args,
                bin,
                volatile,
            } => SocketCommand::EmitTo {
                ns,
                sid,
                event,
                args: resolve_args(args, bin, attachments)?,
                volatile,
            },
            Self::Emit {
                to,
                event,
                args,
                bin,
            } => SocketCommand::Emit {
                to,
                event,
                args: resolve_args(args, bin, attachments)?,
            },
            Self::Join { ns, sid, rooms } => SocketCommand::Join { ns, sid, rooms },
            Self::Leave { ns, sid, rooms } => SocketCommand::Leave { ns, sid, rooms },
            Self::SocketsJoin { to, rooms } => SocketCommand::SocketsJoin { to, rooms },
            Self::SocketsLeave { to, rooms } => SocketCommand::SocketsLeave { to, rooms },
            Self::Disconnect { ns, sid, close } => SocketCommand::Disconnect { ns, sid, close },
            Self::DisconnectSockets { to, close } => SocketCommand::DisconnectSockets { to, close },
            Self::Ack { ack, args, bin } => SocketCommand::Ack {
                ack: AckId(ack),
                args: resolve_args(args, bin, attachments)?,
            },
            Self::Admit { gate, refuse } => SocketCommand::Admit {
                gate: GateId(gate),
                decision: match refuse {
                    None => GateDecision::Accept,
                    Some(message) => GateDecision::Refuse { message },
                },
            },
            Self::Listen { ns, sid, events } => SocketCommand::Listen { ns, sid, events },
            Self::Namespace { ns, gated } => SocketCommand::Namespace { ns, gated },
            Self::WsSend { id, text, bin } => SocketCommand::WsSend {
                id,
                message: resolve_message(text, bin, attachments)?,
            },
            Self::WsBroadcast { text, bin, except } => SocketCommand::WsBroadcast {
                message: resolve_message(text, bin, attachments)?,
                except,
            },
            Self::WsClose { id, code, reason } => SocketCommand::WsClose { id, code, reason },
        };
        command.check()?;
        Ok(command)
    }
}

/// The names of a [`SocketCommand::Listen`], shared between connections that
/// listen to the same ones.
pub(crate) fn name_set(events: &[String]) -> HashSet<Box<str>> {
    events.iter().map(|e| Box::from(e.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_with_attachments() {
        let batch = SocketCommand::batch_from_json(
            r#"[{"emit_to":{"sid":"a","event":"x","args":[1,{"_placeholder":true,"num":0}],"bin":1}},
                {"emit":{"to":{"rooms":["r"],"except":["a"]},"event":"y"}},
                {"join":{"sid":"a","rooms":["r"]}},
                {"admit":{"gate":4,"refuse":"no"}},
                {"listen":{"ns":"/admin","sid":"a","events":["m"]}}]"#,
            vec![Bytes::from_static(b"\x01")],
        )
        .unwrap();
        assert_eq!(batch.len(), 5);
        match &batch[0] {
            SocketCommand::EmitTo { ns, args, .. } => {
                assert_eq!(ns, "/");
                assert_eq!(args.attachments().len(), 1);
            }
            other => panic!("{other:?}"),
        }
        match &batch[1] {
            SocketCommand::Emit { to, args, .. } => {
                assert_eq!(to.ns, "/");
                assert_eq!(to.except, vec!["a".to_string()]);
                assert_eq!(args.json(), "[]");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &batch[3],
            SocketCommand::Admit { decision: GateDecision::Refuse { message }, .. } if message == "no"
        ));
    }

    #[test]
    fn malformed_commands_are_refused_whole() {
        for bad in [
            r#"[{"emit_to":{"sid":"a","event":"connect"}}]"#,
            r#"[{"emit_to":{"sid":"a","event":""}}]"#,
            r#"[{"emit":{"event":"x","args":{"a":1}}}]"#,
            r#"[{"emit":{"event":"x","bin":1}}]"#,
            r#"[{"join":{"ns":"admin","sid":"a","rooms":[]}}]"#,
            r#"[{"teleport":{}}]"#,
            r#"{"emit":{}}"#,
        ] {
            assert!(
                SocketCommand::batch_from_json(bad, Vec::new()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn queries() {
        let query = SocketQuery::from_json(
            r#"{"emit_with_ack":{"to":{"rooms":["sid1"]},"event":"ping","args":[1],"timeout_ms":500}}"#,
            Vec::new(),
        )
        .unwrap();
        assert!(matches!(
            query,
            SocketQuery::EmitWithAck {
                timeout_ms: 500,
                ..
            }
        ));
        assert!(SocketQuery::from_json(r#"{"fetch_sockets":{}}"#, Vec::new()).is_ok());
    }
}
