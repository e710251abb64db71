//! What Palaver keeps per connection: its identity, its rooms, its limits, the
//! order its requests are applied in.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::sequencer::Sequencer;
use super::unsettled::Unsettled;
use crate::config::Limits;
use crate::identity::Claim;
use crate::limits::{Bucket, IpSlot};
use crate::protocol::User;

/// Per-connection state, kept in the socket's extensions.
pub(crate) struct Conn {
    pub address: Option<IpAddr>,
    identity: Mutex<Option<User>>,
    /// Identity decided at the handshake, taken when the connection is set up.
    handshake_identity: Mutex<Option<Claim>>,
    rooms: Mutex<Vec<Arc<str>>>,
    pub requests: Bucket,
    pub messages: Bucket,
    /// `join` of a new room and `leave`: each fans out a notice and a room list.
    pub room_changes: Bucket,
    typing_relayed_at: Mutex<Option<Instant>>,
    /// Rooms where this connection's last relayed `typing` was `active: true`:
    /// only there is a stop worth telling.
    typing_in: Mutex<Vec<Arc<str>>>,
    pub sequencer: Sequencer,
    /// Its room messages still in the pipeline, which leaving a room waits for.
    pub unsettled: Arc<Unsettled>,
    closed: AtomicBool,
    /// Cancelled with `close`, for the tasks that live as long as the connection.
    close_signal: CancellationToken,
    /// When the token of a token-mode identity stops being accepted, in
    /// milliseconds since the epoch; `None` without such an identity. Created
    /// on first use: a watch channel is about 360 bytes, and connections with
    /// open names (most, and every idle one) never use it.
    token_end: OnceLock<watch::Sender<Option<i64>>>,
    _ip_slot: Option<IpSlot>,
}

impl Conn {
    /// A connection admitted at connect, from `address`, with the identity its
    /// handshake claimed (taken once it is set up).
    pub(crate) fn new(
        address: Option<IpAddr>,
        handshake_identity: Option<Claim>,
        limits: &Limits,
        ip_slot: Option<IpSlot>,
    ) -> Self {
        Self {
            address,
            identity: Mutex::new(None),
            handshake_identity: Mutex::new(handshake_identity),
            rooms: Mutex::new(Vec::new()),
            requests: Bucket::new(limits.requests_per_second, limits.request_burst),
            messages: Bucket::new(limits.messages_per_second, limits.message_burst),
            room_changes: Bucket::new(limits.room_changes_per_second, limits.room_change_burst),
            typing_relayed_at: Mutex::new(None),
            typing_in: Mutex::new(Vec::new()),
            sequencer: Sequencer::default(),
            unsettled: Arc::default(),
            closed: AtomicBool::new(false),
            close_signal: CancellationToken::new(),
            token_end: OnceLock::new(),
            _ip_slot: ip_slot,
        }
    }

    /// The handshake's claim, once.
    pub(crate) fn take_handshake_identity(&self) -> Option<Claim> {
        self.handshake_identity.lock().take()
    }

    /// Marks the connection closed: requests still queued are skipped, except
    /// room messages (`connection.rs`).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.close_signal.cancel();
    }

    /// Resolves once the connection is closed.
    pub(crate) async fn closed(&self) {
        self.close_signal.cancelled().await
    }

    /// When the identity's token stops being accepted (`None`: no token).
    pub(crate) fn token_end(&self) -> Option<i64> {
        self.token_end.get().and_then(|end| *end.borrow())
    }

    /// Sets when the identity's token stops being accepted; watchers are told
    /// only of a change.
    pub(crate) fn set_token_end(&self, end: Option<i64>) {
        if end.is_none() && self.token_end.get().is_none() {
            return;
        }
        self.token_end_sender().send_if_modified(|current| {
            let changed = *current != end;
            *current = end;
            changed
        });
    }

    /// Follows [`Conn::token_end`].
    pub(crate) fn watch_token_end(&self) -> watch::Receiver<Option<i64>> {
        self.token_end_sender().subscribe()
    }

    fn token_end_sender(&self) -> &watch::Sender<Option<i64>> {
        self.token_end.get_or_init(|| watch::Sender::new(None))
    }

    pub(crate) fn identity(&self) -> Option<User> {
        self.identity.lock().clone()
    }

    pub(crate) fn set_identity(&self, user: Option<User>) {
        *self.identity.lock() = user;
    }

    pub(crate) fn rooms(&self) -> Vec<Arc<str>> {
        self.rooms.lock().clone()
    }

    pub(crate) fn room(&self, name: &str) -> Option<Arc<str>> {
        self.rooms.lock().iter().find(|r| &***r == name).cloned()
    }

    pub(crate) fn room_total(&self) -> usize {
        self.rooms.lock().len()
    }

    pub(crate) fn add_room(&self, room: Arc<str>) {
        self.rooms.lock().push(room);
    }

    pub(crate) fn remove_room(&self, room: &str) {
        self.rooms.lock().retain(|r| &**r != room);
        self.typing_in.lock().retain(|r| &**r != room);
    }

    /// Whether a `typing` start in `room` may be relayed now (at most one per
    /// interval); a relayed one makes the next stop in `room` worth relaying.
    pub(crate) fn typing_start_allowed(&self, room: &Arc<str>, interval: Duration) -> bool {
        let mut last = self.typing_relayed_at.lock();
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < interval) {
            return false;
        }
        *last = Some(now);
        let mut typing_in = self.typing_in.lock();
        if !typing_in.contains(room) {
            typing_in.push(room.clone());
        }
        true
    }

    /// Whether a `typing` stop in `room` may be relayed: only once after a
    /// relayed start, so stops cannot be sent to the room at the request rate.
    pub(crate) fn typing_stop_allowed(&self, room: &str) -> bool {
        let mut typing_in = self.typing_in.lock();
        let before = typing_in.len();
        typing_in.retain(|r| &**r != room);
        typing_in.len() != before
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
