//! Events out to the host: produced by socket tasks without ever blocking them,
//! delivered one at a time on a dedicated thread.
//!
//! This is the host boundary every binding shares: which kinds of event a host
//! subscribes to ([`EventKinds`]), what happens to a custom event nobody listens
//! to (refused with `unknown_event`, decided here once), and the one encoded
//! form of an event ([`Event::to_json`]).

use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};

use parking_lot::Mutex;
use serde::Serialize;

use socketioxide::socket::DisconnectReason;

use crate::plain_ws::message::{PlainHandshake, PlainMessage};
use crate::protocol::{ChatMessage, PrivateMessage, User};
use crate::sockets::{Handshake, JsonArgs};

/// Something that happened in the chat, as the host sees it.
///
/// Serializes to JSON with a `type` field (`"connected"`, `"message"`, ...), which is
/// what the C and Node bindings hand over.
///
/// Deliberately not `#[non_exhaustive]`: a binding matches every variant, so a new
/// kind of event is a compile error there instead of an event silently dropped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A Socket.IO connection was accepted.
    Connected {
        /// Connection (socket) id.
        sid: String,
        /// Identity, when the handshake already decided it.
        user: Option<User>,
        /// Client IP address, when known.
        address: Option<IpAddr>,
        /// `"websocket"` or `"polling"`, as connected.
        transport: &'static str,
    },
    /// A connection closed.
    Disconnected {
        /// Connection id.
        sid: String,
        /// Identity it had, if any.
        user: Option<User>,
        /// Why: `client_disconnect` (the client closed its socket),
        /// `transport_close` (it closed the connection), `transport_error`,
        /// `ping_timeout`, `bad_packet`, `multiple_polling_requests`,
        /// `server_disconnect` (the host disconnected the user, or stop) or
        /// `server_closing`.
        reason: String,
    },
    /// A connection joined a room.
    Joined {
        /// Connection id.
        sid: String,
        /// Room.
        room: String,
        /// Who joined.
        user: User,
    },
    /// A connection left a room (by `leave`, `logout` or disconnecting).
    Left {
        /// Connection id.
        sid: String,
        /// Room.
        room: String,
        /// Who left.
        user: User,
    },
    /// A room message was stored and delivered.
    Message {
        /// Sending connection id.
        sid: String,
        /// The stored message.
        message: ChatMessage,
    },
    /// A private message was delivered.
    Private {
        /// Sending connection id.
        sid: String,
        /// The message.
        message: PrivateMessage,
    },
    /// An event outside the chat protocol. When the client asked for an
    /// acknowledgement, `ack` is set and the host answers with
    /// [`ChatHandle::ack`](crate::ChatHandle::ack).
    Custom {
        /// Sending connection id.
        sid: String,
        /// Identity of the sender, if any.
        user: Option<User>,
        /// Event name.
        event: String,
        /// First argument of the event (`null` when none).
        data: serde_json::Value,
        /// Every argument of the event, in order (`data` is the first), as a
        /// JSON array.
        args: JsonArgs,
        /// Acknowledgement to answer, if the client asked for one.
        ack: Option<AckId>,
    },
    /// A connection asks to join a host namespace whose connect gate is on: the
    /// host answers with [`ChatHandle::admit`](crate::ChatHandle::admit) before
    /// `host_ack_timeout_ms`, or the client gets `connect_error` `host_timeout`.
    SocketGate {
        /// Namespace (`"/"`, `"/admin"`).
        ns: String,
        /// Connection id.
        sid: String,
        /// What the client sent with its connection.
        handshake: Handshake,
        /// The decision to give.
        gate: GateId,
        /// The connection resumes a session (connection state recovery): same
        /// id, its rooms back, the broadcasts it missed replayed once it is in.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        recovered: bool,
    },
    /// A connection joined a host namespace. Until the host calls
    /// [`ChatHandle::socket_ready`](crate::ChatHandle::socket_ready) every event of
    /// the connection is handed over; after it, only the events the host listens to.
    SocketConnect {
        /// Namespace.
        ns: String,
        /// Connection id; the connection is also in a room of this name.
        sid: String,
        /// What the client sent with its connection.
        handshake: Handshake,
        /// The connection resumed a session (connection state recovery): same
        /// id, its rooms back, the broadcasts it missed already sent to it.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        recovered: bool,
    },
    /// An event on a host namespace.
    SocketEvent {
        /// Namespace.
        ns: String,
        /// Connection id.
        sid: String,
        /// Event name as the client sent it; a numeric name is its decimal string.
        event: String,
        /// Whether the client sent the name as a number (`[2, ...]`), which
        /// socket.io hands to `onAny` listeners as a number. Left out of the JSON
        /// form when `false`.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        numeric: bool,
        /// The arguments, a JSON array. A binary argument is the placeholder
        /// `{"_placeholder":true,"num":n}` for `attachments[n]`.
        args: JsonArgs,
        /// Binary attachments (not in the JSON form).
        #[serde(skip)]
        attachments: Vec<bytes::Bytes>,
        /// Acknowledgement to answer with [`ChatHandle::ack`](crate::ChatHandle::ack)
        /// (its value is the list of arguments of the client's callback), if the
        /// client asked for one.
        ack: Option<AckId>,
    },
    /// A connection left a host namespace.
    SocketDisconnect {
        /// Namespace.
        ns: String,
        /// Connection id.
        sid: String,
        /// Why, as for [`Event::Disconnected`].
        reason: String,
    },
    /// A plain WebSocket connection opened (`plain_websocket.path`).
    WsOpen {
        /// Connection id (plain WebSocket ids are numbers of their own).
        id: u64,
        /// The upgrade request.
        handshake: PlainHandshake,
    },
    /// A plain WebSocket message. In JSON, a text message is `"text"`; a binary
    /// one is `"binary": true` with its bytes beside the JSON (the bindings hand
    /// them over as one attachment).
    WsMessage {
        /// Connection id.
        id: u64,
        /// The message.
        #[serde(flatten, serialize_with = "plain_message_json")]
        message: PlainMessage,
    },
    /// A plain WebSocket connection closed.
    WsClose {
        /// Connection id.
        id: u64,
        /// The close code (1005 when the client sent none, 1006 when the
        /// connection dropped without a close frame).
        code: u16,
        /// The close reason, often empty.
        reason: String,
    },
}

/// `{"text": "..."}` or `{"binary": true}` (flattened into the event).
fn plain_message_json<S: serde::Serializer>(
    message: &PlainMessage,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(1))?;
    match message {
        PlainMessage::Text(text) => map.serialize_entry("text", text)?,
        PlainMessage::Binary(_) => map.serialize_entry("binary", &true)?,
    }
    map.end()
}

impl Event {
    /// The event's `type`, as in its JSON form.
    pub fn kind(&self) -> &'static str {
        self.event_kind().as_str()
    }

    /// What kind of event this is.
    pub fn event_kind(&self) -> EventKind {
        match self {
            Self::Connected { .. } => EventKind::Connected,
            Self::Disconnected { .. } => EventKind::Disconnected,
            Self::Joined { .. } => EventKind::Joined,
            Self::Left { .. } => EventKind::Left,
            Self::Message { .. } => EventKind::Message,
            Self::Private { .. } => EventKind::Private,
            Self::Custom { .. } => EventKind::Custom,
            Self::SocketGate { .. } => EventKind::SocketGate,
            Self::SocketConnect { .. } => EventKind::SocketConnect,
            Self::SocketEvent { .. } => EventKind::SocketEvent,
            Self::SocketDisconnect { .. } => EventKind::SocketDisconnect,
            Self::WsOpen { .. } => EventKind::WsOpen,
            Self::WsMessage { .. } => EventKind::WsMessage,
            Self::WsClose { .. } => EventKind::WsClose,
        }
    }

    /// About how many bytes the event takes while queued: its variable parts,
    /// plus a fixed allowance for the rest.
    pub(crate) fn weight(&self) -> usize {
        const FIXED: usize = 256;
        FIXED
            + match self {
                Self::Custom { args, .. } => args.as_str().len(),
                Self::SocketEvent {
                    args, attachments, ..
                } => args.as_str().len() + attachments.iter().map(bytes::Bytes::len).sum::<usize>(),
                Self::SocketGate { handshake, .. } | Self::SocketConnect { handshake, .. } => {
                    handshake.weight()
                }
                Self::WsOpen { handshake, .. } => handshake
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum(),
                Self::WsMessage { message, .. } => match message {
                    PlainMessage::Text(text) => text.len(),
                    PlainMessage::Binary(bytes) => bytes.len(),
                },
                Self::Message { message, .. } => message.text.len(),
                Self::Private { message, .. } => message.text.len(),
                _ => 0,
            }
    }

    /// The binary data that travels beside the JSON form: a Socket.IO event's
    /// attachments, or a binary plain WebSocket message (one). Cheap: the bytes
    /// are shared, not copied.
    pub fn attachments(&self) -> Vec<bytes::Bytes> {
        match self {
            Self::SocketEvent { attachments, .. } => attachments.clone(),
            Self::WsMessage {
                message: PlainMessage::Binary(bytes),
                ..
            } => vec![bytes.clone()],
            _ => Vec::new(),
        }
    }

    /// The event as one JSON object with a `type` field: the encoded form both
    /// bindings hand to their host.
    pub fn to_json(&self) -> String {
        // Every field is a string, number, boolean or JSON value: serializing
        // cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// The kinds of [`Event`], each named as its JSON `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// [`Event::Connected`]
    Connected,
    /// [`Event::Disconnected`]
    Disconnected,
    /// [`Event::Joined`]
    Joined,
    /// [`Event::Left`]
    Left,
    /// [`Event::Message`]
    Message,
    /// [`Event::Private`]
    Private,
    /// [`Event::Custom`]
    Custom,
    /// [`Event::SocketGate`]
    SocketGate,
    /// [`Event::SocketConnect`]
    SocketConnect,
    /// [`Event::SocketEvent`]
    SocketEvent,
    /// [`Event::SocketDisconnect`]
    SocketDisconnect,
    /// [`Event::WsOpen`]
    WsOpen,
    /// [`Event::WsMessage`]
    WsMessage,
    /// [`Event::WsClose`]
    WsClose,
}

impl EventKind {
    /// Every kind, in the order of their numbers in the C header.
    pub const ALL: [EventKind; 14] = [
        Self::Connected,
        Self::Disconnected,
        Self::Joined,
        Self::Left,
        Self::Message,
        Self::Private,
        Self::Custom,
        Self::SocketGate,
        Self::SocketConnect,
        Self::SocketEvent,
        Self::SocketDisconnect,
        Self::WsOpen,
        Self::WsMessage,
        Self::WsClose,
    ];

    /// The kind's name, as the JSON `type` of its events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Joined => "joined",
            Self::Left => "left",
            Self::Message => "message",
            Self::Private => "private",
            Self::Custom => "custom",
            Self::SocketGate => "socket_gate",
            Self::SocketConnect => "socket_connect",
            Self::SocketEvent => "socket_event",
            Self::SocketDisconnect => "socket_disconnect",
            Self::WsOpen => "ws_open",
            Self::WsMessage => "ws_message",
            Self::WsClose => "ws_close",
        }
    }

    /// The kind named `name` (its JSON `type`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`EventKind`]s: the events a host subscribes to.
///
/// Events of other kinds are never built or queued, and a custom event is
/// refused to its client with `unknown_event` unless [`EventKind::Custom`] is in
/// the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventKinds(u16);

impl EventKinds {
    /// No event.
    pub const NONE: EventKinds = EventKinds(0);
    /// Every event (what a callback registered with
    /// [`ChatBuilder::on_event`](crate::ChatBuilder::on_event) gets by default).
    pub const ALL: EventKinds = EventKinds(0x3fff);

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// The set with `kind` added.
    pub fn with(self, kind: EventKind) -> Self {
        Self(self.0 | kind.bit())
    }
}

impl FromIterator<EventKind> for EventKinds {
    fn from_iter<I: IntoIterator<Item = EventKind>>(kinds: I) -> Self {
        kinds.into_iter().fold(Self::NONE, Self::with)
    }
}

/// Identifies a pending connect gate decision ([`Event::SocketGate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct GateId(pub u64);

/// Identifies a custom event's pending acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AckId(pub u64);

/// The host's event callback.
pub(crate) type EventCallback = Box<dyn FnMut(Event) + Send + 'static>;

/// The host's callback and the kinds of event it takes from the start.
pub(crate) struct HostEvents {
    pub callback: EventCallback,
    pub kinds: EventKinds,
}

enum Item {
    /// An event and the bytes it was counted as (boxed: a queued item is a
    /// pointer, whatever the event).
    Event(Box<Event>, usize),
    Stop,
}

/// How far the host may fall behind: events and bytes queued for its callback.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueBounds {
    pub events: usize,
    pub bytes: usize,
}

/// What is queued for the host now.
#[derive(Default)]
struct Backlog {
    events: AtomicUsize,
    bytes: AtomicUsize,
}

/// The producing side, shared by all socket tasks.
pub(crate) struct EventBus {
    tx: Option<mpsc::Sender<Item>>,
    bounds: QueueBounds,
    backlog: Arc<Backlog>,
    /// Bits of the subscribed [`EventKinds`].
    subscribed: AtomicU16,
    dropped: AtomicU64,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    dispatcher_thread: Option<ThreadId>,
}

impl EventBus {
    /// A bus that delivers nothing (no host callback).
    pub(crate) fn disabled() -> Self {
        Self {
            tx: None,
            bounds: QueueBounds {
                events: 0,
                bytes: 0,
            },
            backlog: Arc::default(),
            subscribed: AtomicU16::new(EventKinds::NONE.0),
            dropped: AtomicU64::new(0),
            dispatcher: Mutex::new(None),
            dispatcher_thread: None,
        }
    }

    /// Starts the dispatcher thread that calls `callback` for each event, in order.
    /// The queue takes memory only for the events in it.
    pub(crate) fn start(bounds: QueueBounds, host: HostEvents) -> std::io::Result<Self> {
        let HostEvents {
            mut callback,
            kinds,
        } = host;
        let (tx, rx) = mpsc::channel::<Item>();
        let backlog = Arc::new(Backlog::default());
        let dispatcher = std::thread::Builder::new()
            .name("palaver-events".into())
            .spawn({
                let backlog = backlog.clone();
                move || {
                    while let Ok(Item::Event(event, bytes)) = rx.recv() {
                        // Counted out before the call: the callback may take a
                        // while, and what it holds is the host's, not the queue's.
                        backlog.events.fetch_sub(1, Ordering::AcqRel);
                        backlog.bytes.fetch_sub(bytes, Ordering::AcqRel);
                        // A panicking host callback must not end event delivery.
                        if catch_unwind(AssertUnwindSafe(|| callback(*event))).is_err() {
                            tracing::error!("the host event callback panicked; event dropped");
                        }
                    }
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            bounds,
            backlog,
            subscribed: AtomicU16::new(kinds.0),
            dropped: AtomicU64::new(0),
            dispatcher_thread: Some(dispatcher.thread().id()),
            dispatcher: Mutex::new(Some(dispatcher)),
        })
    }

    /// Whether the host takes events of this kind. Without a callback it takes none.
    pub(crate) fn wants(&self, kind: EventKind) -> bool {
        self.tx.is_some() && EventKinds(self.subscribed.load(Ordering::Relaxed)).contains(kind)
    }

    /// Changes the kinds the host takes; without a callback it stays none.
    pub(crate) fn subscribe(&self, kinds: EventKinds) {
        if self.tx.is_some() {
            self.subscribed.store(kinds.0, Ordering::Relaxed);
        }
    }

    /// Queues an event of `kind` (built only when the host takes that kind); never
    /// blocks. Returns whether it was queued: a queue at its bounds (events or
    /// bytes) drops the event and counts it.
    pub(crate) fn emit(&self, kind: EventKind, event: impl FnOnce() -> Event) -> bool {
        if !self.wants(kind) {
            return false;
        }
        let Some(tx) = &self.tx else { return false };
        let event = event();
        let bytes = event.weight();
        let events = self.backlog.events.fetch_add(1, Ordering::AcqRel);
        let queued_bytes = self.backlog.bytes.fetch_add(bytes, Ordering::AcqRel);
        if events >= self.bounds.events || queued_bytes.saturating_add(bytes) > self.bounds.bytes {
            self.backlog.events.fetch_sub(1, Ordering::AcqRel);
            self.backlog.bytes.fetch_sub(bytes, Ordering::AcqRel);
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "host event queue full; events dropped");
            }
            return false;
        }
        if tx.send(Item::Event(Box::new(event), bytes)).is_err() {
            // The dispatcher is gone (the engine stopped).
            self.backlog.events.fetch_sub(1, Ordering::AcqRel);
            self.backlog.bytes.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        true
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events and bytes queued for the host now.
    pub(crate) fn backlog(&self) -> (u64, u64) {
        (
            self.backlog.events.load(Ordering::Relaxed) as u64,
            self.backlog.bytes.load(Ordering::Relaxed) as u64,
        )
    }

    /// Whether the caller is the dispatcher thread (inside the host callback).
    pub(crate) fn on_dispatcher_thread(&self) -> bool {
        self.dispatcher_thread == Some(std::thread::current().id())
    }

    /// Delivers what is queued, then ends the dispatcher thread. After this returns
    /// the callback never runs again. Must not be called from the callback itself.
    pub(crate) fn finish(&self) {
        let Some(dispatcher) = self.dispatcher.lock().take() else {
            return;
        };
        if let Some(tx) = &self.tx {
            let _ = tx.send(Item::Stop);
        }
        let _ = dispatcher.join();
    }
}

impl Drop for EventBus {
    fn drop(&mut self) {
        if !self.on_dispatcher_thread() {
            self.finish();
        }
    }
}

/// A stable code for why a connection ended (hosts match on it).
pub(crate) fn reason_code(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport_close",
        DisconnectReason::MultipleHttpPollingError => "multiple_polling_requests",
        DisconnectReason::PacketParsingError => "bad_packet",
        DisconnectReason::TransportError => "transport_error",
        DisconnectReason::HeartbeatTimeout => "ping_timeout",
        DisconnectReason::ClientNSDisconnect => "client_disconnect",
        DisconnectReason::ServerNSDisconnect => "server_disconnect",
        DisconnectReason::ClosingServer => "server_closing",
    }
}
