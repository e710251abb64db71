//! Events out to the host: produced by socket tasks without ever blocking them,
//! delivered one at a time on a dedicated thread.
//!
//! This is the host boundary every binding shares: which kinds of event a host
//! subscribes to ([`EventKinds`]), what happens to a custom event nobody listens
//! to (refused with `unknown_event`, decided here once), and the one encoded
//! form of an event ([`Event::to_json`]).

use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::{JoinHandle, ThreadId};

use parking_lot::Mutex;
use serde::Serialize;

use crate::protocol::{ChatMessage, PrivateMessage, User};

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
        /// Acknowledgement to answer, if the client asked for one.
        ack: Option<AckId>,
    },
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
}

impl EventKind {
    /// Every kind, in the order of their numbers in the C header.
    pub const ALL: [EventKind; 7] = [
        Self::Connected,
        Self::Disconnected,
        Self::Joined,
        Self::Left,
        Self::Message,
        Self::Private,
        Self::Custom,
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
        }
    }

    /// The kind named `name` (its JSON `type`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
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
pub struct EventKinds(u8);

impl EventKinds {
    /// No event.
    pub const NONE: EventKinds = EventKinds(0);
    /// Every event (what a callback registered with
    /// [`ChatBuilder::on_event`](crate::ChatBuilder::on_event) gets by default).
    pub const ALL: EventKinds = EventKinds(0x7f);

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

/// Identifies a custom event's pending acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AckId(pub u64);

/// The host's event callback.
pub(crate) type EventCallback = Box<dyn FnMut(Event) + Send + 'static>;

enum Item {
    Event(Event),
    Stop,
}

/// The producing side, shared by all socket tasks.
pub(crate) struct EventBus {
    tx: Option<SyncSender<Item>>,
    /// Bits of the subscribed [`EventKinds`].
    subscribed: AtomicU8,
    dropped: AtomicU64,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    dispatcher_thread: Option<ThreadId>,
}

impl EventBus {
    /// A bus that delivers nothing (no host callback).
    pub(crate) fn disabled() -> Self {
        Self {
            tx: None,
            subscribed: AtomicU8::new(EventKinds::NONE.0),
            dropped: AtomicU64::new(0),
            dispatcher: Mutex::new(None),
            dispatcher_thread: None,
        }
    }

    /// Starts the dispatcher thread that calls `callback` for each event, in order.
    pub(crate) fn start(capacity: usize, mut callback: EventCallback) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Item>(capacity);
        let dispatcher = std::thread::Builder::new()
            .name("palaver-events".into())
            .spawn(move || {
                while let Ok(Item::Event(event)) = rx.recv() {
                    // A panicking host callback must not end event delivery.
                    if catch_unwind(AssertUnwindSafe(|| callback(event))).is_err() {
                        tracing::error!("the host event callback panicked; event dropped");
                    }
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            subscribed: AtomicU8::new(EventKinds::ALL.0),
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
    /// blocks. A full queue drops the event and counts it.
    pub(crate) fn emit(&self, kind: EventKind, event: impl FnOnce() -> Event) {
        if !self.wants(kind) {
            return;
        }
        let Some(tx) = &self.tx else { return };
        match tx.try_send(Item::Event(event())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(dropped, "host event queue full; events dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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
            // Blocking send: the queue may be full, the dispatcher is draining it.
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
