//! Wire shapes of the chat protocol (docs/PROTOCOL.md) and its error codes.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The display name notices are sent under. Reserved: no user may take it.
pub const SYSTEM_USER: &str = "system";

/// A user as the server knows them: identity decided at the handshake or `login`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct User {
    /// Stable id: the token's `sub` in token mode, the unique name in open mode.
    pub id: Arc<str>,
    /// Display name.
    pub name: Arc<str>,
}

/// What a room message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Text a member sent.
    Chat,
    /// A member joined (notice from the system user, not stored).
    Join,
    /// A member left (notice from the system user, not stored).
    Leave,
    /// A private message, stored in its conversation; delivered as a
    /// [`PrivateMessage`] (see [`ChatMessage::to_private`]).
    Private,
}

/// A room message as delivered in `message` events, acks and history pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Server-assigned id, increasing within a room; `null` for notices, which are not stored.
    pub id: Option<String>,
    /// Room the message belongs to.
    pub room: Arc<str>,
    /// Sender's display name (`"system"` for notices).
    pub user: Arc<str>,
    /// Sender's user id (`null` for notices).
    pub user_id: Option<Arc<str>>,
    /// The text.
    pub text: String,
    /// Server time of acceptance, milliseconds since the Unix epoch.
    pub ts: i64,
    /// What the message is.
    pub kind: MessageKind,
    /// Its place in the room's history: 1, 2, 3, ... within one [`epoch`](Self::epoch),
    /// without gaps. `None` for notices and for a message delivered while the
    /// cluster's store was unreachable (it gets its offset once stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The room history's epoch: changes whenever that history is reset or lost,
    /// so that offsets of different epochs are never compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Arc<str>>,
    /// The recipient of a private message ([`MessageKind::Private`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<User>,
}

impl ChatMessage {
    /// The wire form of a stored private message; `None` for room messages.
    pub fn to_private(&self) -> Option<PrivateMessage> {
        let to = self.to.clone()?;
        Some(PrivateMessage {
            id: self.id.clone().unwrap_or_default(),
            from: User {
                id: self.user_id.clone().unwrap_or_else(|| Arc::from("")),
                name: self.user.clone(),
            },
            to,
            text: self.text.clone(),
            ts: self.ts,
            offset: self.offset,
            epoch: self.epoch.clone(),
        })
    }
}

/// A place in a room's (or a conversation's) history: the last message a client
/// has, as `since` of a `join` and `after` of a `history` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The offset of the last message the client has (`0`: none yet).
    pub offset: u64,
    /// The epoch that offset belongs to (ignored when `offset` is `0`).
    #[serde(default)]
    pub epoch: Option<String>,
}

/// A private message as delivered in `private` events and acks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivateMessage {
    /// Server-assigned unique id.
    pub id: String,
    /// Sender.
    pub from: User,
    /// Recipient.
    pub to: User,
    /// The text.
    pub text: String,
    /// Server time of acceptance, milliseconds since the Unix epoch.
    pub ts: i64,
    /// Its place in the conversation's history (see [`ChatMessage::offset`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The conversation history's epoch (see [`ChatMessage::epoch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Arc<str>>,
}

/// One user in a room's member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// User id.
    pub id: Arc<str>,
    /// Display name.
    pub name: Arc<str>,
}

/// A room with its members, as the host API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Room name.
    pub room: Arc<str>,
    /// Number of distinct users in the room.
    pub count: usize,
    /// The members, in join order.
    pub members: Vec<Member>,
}

/// Milliseconds since the Unix epoch, the unit of every `ts`.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Machine-readable reason a request was refused; sent as `code` in
/// `{ok:false, code, message}` acks and `error` events, and as the message of a
/// `connect_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The payload is not the documented shape (wrong type, missing field, not an object).
    InvalidPayload,
    /// A room name is empty, too long or has forbidden characters.
    InvalidRoom,
    /// A display name is empty, too long, reserved or has forbidden characters.
    InvalidName,
    /// A message text is empty or only whitespace.
    EmptyText,
    /// A message text is longer than `limits.max_text_chars`.
    TextTooLong,
    /// A message text has a control character other than tab and line breaks,
    /// or a bidirectional embedding, override or isolate.
    InvalidText,
    /// The request needs an identity and the connection has none yet.
    NotLoggedIn,
    /// `login` on a connection that already has an identity.
    AlreadyLoggedIn,
    /// The connection is not a member of the room.
    NotMember,
    /// The connection is already in `limits.max_rooms_per_connection` rooms.
    TooManyRooms,
    /// Open mode, cluster mode: the name and every suffixed form of it tried
    /// (`name-2` … `name-1000`) are taken by users online somewhere in the cluster.
    NameTaken,
    /// A rate limit was exceeded; `retry_after_ms` says when to try again.
    RateLimited,
    /// Too many requests of this connection are still being processed.
    Busy,
    /// The private message's recipient has no connection.
    UserOffline,
    /// The private message's recipient is the sender.
    InvalidRecipient,
    /// No history page exists before the given id (malformed id).
    InvalidCursor,
    /// The message could not be stored, so it was not delivered.
    StorageFailed,
    /// Too many room messages are waiting for the history store
    /// (`history.queue_max_bytes`); this one was neither stored nor delivered.
    StorageBusy,
    /// The event is not part of the protocol and the host does not handle custom events.
    UnknownEvent,
    /// The host did not answer a custom event in time.
    HostTimeout,
    /// The server is stopping and takes no new requests.
    ShuttingDown,
    /// The cluster backend is unreachable; retry later.
    Unavailable,
    /// No token was presented in token mode.
    AuthRequired,
    /// The token is malformed, forged or lacks the required claims.
    AuthInvalid,
    /// The token's `exp` has passed.
    AuthExpired,
    /// The token's `nbf` has not come yet.
    AuthNotYetValid,
    /// The client's IP address already has `limits.max_connections_per_ip` connections.
    TooManyConnections,
    /// An unexpected server fault; the request was not applied.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidRoom => "invalid_room",
            Self::InvalidName => "invalid_name",
            Self::EmptyText => "empty_text",
            Self::TextTooLong => "text_too_long",
            Self::InvalidText => "invalid_text",
            Self::NotLoggedIn => "not_logged_in",
            Self::AlreadyLoggedIn => "already_logged_in",
            Self::NotMember => "not_member",
            Self::TooManyRooms => "too_many_rooms",
            Self::NameTaken => "name_taken",
            Self::RateLimited => "rate_limited",
            Self::Busy => "busy",
            Self::UserOffline => "user_offline",
            Self::InvalidRecipient => "invalid_recipient",
            Self::InvalidCursor => "invalid_cursor",
            Self::StorageFailed => "storage_failed",
            Self::StorageBusy => "storage_busy",
            Self::UnknownEvent => "unknown_event",
            Self::HostTimeout => "host_timeout",
            Self::ShuttingDown => "shutting_down",
            Self::Unavailable => "unavailable",
            Self::AuthRequired => "auth_required",
            Self::AuthInvalid => "auth_invalid",
            Self::AuthExpired => "auth_expired",
            Self::AuthNotYetValid => "auth_not_yet_valid",
            Self::TooManyConnections => "too_many_connections",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request: the code plus a human-readable explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatError {
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// Explanation for people.
    pub message: String,
    /// For [`ErrorCode::RateLimited`]: milliseconds until a retry can succeed.
    pub retry_after_ms: Option<u64>,
}

impl ChatError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// The refusal of an event the host could not take: its queue is full.
    pub(crate) fn host_busy() -> Self {
        Self::new(
            ErrorCode::Busy,
            "the server is too busy to take this event; try again later",
        )
    }

    /// The refusal of a custom event nobody handles.
    pub(crate) fn unknown_event(event: &str) -> Self {
        Self::new(ErrorCode::UnknownEvent, format!("unknown event {event:?}"))
    }
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ChatError {}

/// The `{ok:false, code, message}` body of a refusal.
#[derive(Serialize)]
pub(crate) struct ErrorBody<'a> {
    ok: bool,
    /// An [`ErrorCode`], or a host's own code in its answers to custom events.
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
    /// The event that was refused; only in `error` events, where no ack ties them together.
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
}

impl<'a> ErrorBody<'a> {
    pub(crate) fn new(err: &'a ChatError, event: Option<&'a str>) -> Self {
        Self {
            ok: false,
            code: err.code.as_str(),
            message: &err.message,
            retry_after_ms: err.retry_after_ms,
            event,
        }
    }

    /// A refusal a host chose (its answer to a custom event).
    pub(crate) fn from_host(code: &'a str, message: &'a str) -> Self {
        Self {
            ok: false,
            code,
            message,
            retry_after_ms: None,
            event: None,
        }
    }
}

// ----- requests -----

/// `join {room, name?, since?}`
#[derive(Debug, Deserialize)]
pub(crate) struct JoinRequest {
    pub room: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The last message the client has: the answer's history is what came after.
    #[serde(default)]
    pub since: Option<Position>,
}

/// `leave {room}`, `members {room}`
#[derive(Debug, Deserialize)]
pub(crate) struct RoomRequest {
    pub room: String,
}

/// `message {room, text}`; any `user` field is ignored on purpose.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageRequest {
    pub room: String,
    pub text: String,
}

/// `private {to, text}`
#[derive(Debug, Deserialize)]
pub(crate) struct PrivateRequest {
    pub to: String,
    pub text: String,
}

/// `typing {room, active?}`
#[derive(Debug, Deserialize)]
pub(crate) struct TypingRequest {
    pub room: String,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// `history {room | with, before? | after?, limit?}`
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryRequest {
    #[serde(default)]
    pub room: Option<String>,
    /// A conversation instead of a room: the other user's id.
    #[serde(default)]
    pub with: Option<String>,
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub after: Option<Position>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `login {name}` (open mode) or `login {token}` (token mode)
#[derive(Debug, Deserialize)]
pub(crate) struct LoginRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

/// Handshake `auth` object.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HandshakeAuth {
    #[serde(default)]
    pub name: Option<serde_json::Value>,
    #[serde(default)]
    pub token: Option<serde_json::Value>,
}

// ----- pushes -----

/// `typing` push.
#[derive(Debug, Serialize)]
pub(crate) struct TypingNotice<'a> {
    pub room: &'a str,
    pub user: &'a str,
    pub user_id: &'a str,
    pub active: bool,
}

/// `presence` push.
#[derive(Debug, Serialize)]
pub(crate) struct PresenceNotice<'a> {
    pub room: &'a str,
    pub action: &'static str,
    pub user: &'a User,
    pub count: usize,
}

/// `session` push.
#[derive(Debug, Serialize)]
pub(crate) struct SessionNotice<'a> {
    pub user: Option<&'a User>,
    pub mode: crate::config::IdentityMode,
}

/// A room and its member count, as in the `rooms` push and ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RoomCount {
    /// Room name.
    pub room: Arc<str>,
    /// Number of distinct users in it.
    pub count: usize,
}
