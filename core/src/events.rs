//! Events out to the host: produced by socket tasks without ever blocking them,
//! delivered one at a time on a dedicated thread.

use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Mutex;
use std::thread::{JoinHandle, ThreadId};

use serde::Serialize;

use crate::protocol::{ChatMessage, PrivateMessage, User};

/// Something that happened in the chat, as the host sees it.
///
/// Serializes to JSON with a `type` field (`"connected"`, `"message"`, ...), which is
/// what the C and Node bindings hand over.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
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
        match self {
            Self::Connected { .. } => "connected",
            Self::Disconnected { .. } => "disconnected",
            Self::Joined { .. } => "joined",
            Self::Left { .. } => "left",
            Self::Message { .. } => "message",
            Self::Private { .. } => "private",
            Self::Custom { .. } => "custom",
        }
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
    dropped: AtomicU64,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    dispatcher_thread: Option<ThreadId>,
}

impl EventBus {
    /// A bus that delivers nothing (no host callback).
    pub(crate) fn disabled() -> Self {
        Self {
            tx: None,
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
            dropped: AtomicU64::new(0),
            dispatcher_thread: Some(dispatcher.thread().id()),
            dispatcher: Mutex::new(Some(dispatcher)),
        })
    }

    pub(crate) fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues an event; never blocks. A full queue drops the event and counts it.
    pub(crate) fn emit(&self, event: impl FnOnce() -> Event) {
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
        let Some(dispatcher) = self
            .dispatcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
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
