//! Engine configuration: plain structs with documented defaults.
//!
//! Every struct deserializes from JSON with the same field names (snake_case),
//! which is how the C and Node bindings pass configuration in. Unknown fields are
//! rejected so that a typo is an error rather than a silently ignored setting.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the engine needs to run.
///
/// ```
/// let config = palaver_core::Config {
///     port: 0,
///     ..palaver_core::Config::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Interface to bind. Use `"0.0.0.0"` or `"::"` to accept connections from
    /// other machines. Defaults to `"127.0.0.1"`.
    pub host: String,
    /// TCP port to bind; `0` picks a free port (see [`Engine::local_addr`](crate::Engine::local_addr)).
    /// Defaults to `3000`.
    pub port: u16,
    /// Whether [`ChatBuilder::start`](crate::ChatBuilder::start) binds `host:port` itself. Set it to
    /// `false` when the host owns the listening socket and hands connections over with
    /// [`Engine::adopt`](crate::Engine::adopt) and [`Engine::serve_request`](crate::Engine::serve_request)
    /// (the Node addon's `attach`). Defaults to `true`.
    pub listen: bool,
    /// The built-in chat protocol (docs/PROTOCOL.md) on the `/` namespace. When
    /// `false`, Palaver is a plain Socket.IO server: `/` is a host namespace whose
    /// every event goes to the host (see [`ChatHandle::run`](crate::ChatHandle::run)),
    /// and identity, history and room list settings are not used. Host namespaces
    /// can be added either way. Defaults to `true`.
    pub builtin_chat: bool,
    /// Who a connection is and how that is decided. Defaults to [`IdentityConfig::default`].
    pub identity: IdentityConfig,
    /// Where room messages are kept. Defaults to [`HistoryConfig::default`].
    pub history: HistoryConfig,
    /// Browser origins (`scheme://host[:port]`) allowed besides the page's own origin.
    /// `"*"` allows every origin and must be written out on purpose. Requests from other
    /// origins, WebSocket upgrades included, are refused with HTTP 403.
    /// Defaults to empty: same origin only.
    pub cors_origins: Vec<String>,
    /// Host names (the `Host` header, port ignored) the chat answers to besides
    /// the ones always allowed: IP addresses, `localhost` and names under
    /// `.localhost`. Requests under `/socket.io/` (and plain WebSocket upgrades)
    /// sent to another name are refused with HTTP 403 `host_not_allowed`: this
    /// stops DNS rebinding, where a web page's own name is pointed at this server
    /// so that the browser treats the chat as the page's origin. An entry is a
    /// host name (`"chat.example.com"`), `"*."` and a name for its subdomains
    /// (`"*.example.com"`), or `"*"` to allow every name. Serving the chat under
    /// a domain name (`https://chat.example.com`) needs that name here.
    /// Defaults to empty: IP addresses and localhost names only.
    pub allowed_hosts: Vec<String>,
    /// Input limits and flood protection. Defaults to [`Limits::default`].
    pub limits: Limits,
    /// The pushed room list (`rooms` and the tutorial's `groupList`). Defaults to
    /// [`RoomListConfig::default`].
    pub room_list: RoomListConfig,
    /// Engine.IO transport settings. Defaults to [`TransportConfig::default`].
    pub transport: TransportConfig,
    /// Plain WebSocket connections (no Socket.IO) for the host. Defaults to
    /// [`PlainWebSocketConfig::default`] (off).
    pub plain_websocket: PlainWebSocketConfig,
    /// Cluster mode: nodes sharing rooms, presence and history through Redis.
    /// Defaults to [`ClusterConfig::default`] (off).
    pub cluster: ClusterConfig,
    /// Connection state recovery of host namespaces (socket.io's
    /// `connectionStateRecovery`): a client that loses its connection and comes
    /// back within `max_disconnection_ms` gets its socket id, its rooms and the
    /// broadcasts it missed. `None` turns it off. Not available in cluster mode.
    /// Defaults to `None`.
    pub connection_state_recovery: Option<RecoveryConfig>,
    /// Worker threads of the engine's own runtime; `0` means one per CPU core.
    /// Only used by [`Engine`](crate::Engine). At most `1024`. Defaults to `0`.
    pub worker_threads: usize,
    /// Most [`Event`](crate::Event)s queued for the host callback. When the host falls
    /// this far behind, further events are dropped and counted in
    /// [`Stats::events_dropped`](crate::Stats::events_dropped) instead of slowing the
    /// chat down (a dropped event that asked for an acknowledgement is refused with
    /// `busy`). The queue takes memory only for the events in it. At most `16777216`.
    /// Defaults to `65536`.
    pub event_queue_capacity: usize,
    /// Most bytes of events queued for the host callback (their arguments,
    /// handshakes and texts, plus a fixed 256 bytes each); past it events are
    /// dropped as above. Defaults to `67108864` (64 MiB).
    pub event_queue_bytes: usize,
    /// Most bytes of host commands given and not yet applied (their arguments and
    /// names, plus a fixed 128 bytes each); past it
    /// [`ChatHandle::run`](crate::ChatHandle::run) refuses with `QueueFull`.
    /// Defaults to `67108864` (64 MiB).
    pub command_queue_bytes: usize,
    /// How long a client waits for the host to answer a custom event's acknowledgement
    /// before it gets `host_timeout`, in milliseconds. Defaults to `10000`.
    pub host_ack_timeout_ms: u64,
    /// How long [`Engine`](crate::Engine) waits for connections to close when it is
    /// dropped without an explicit [`Engine::stop`](crate::Engine::stop), in milliseconds.
    /// Defaults to `5000`.
    pub stop_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 3000,
            listen: true,
            builtin_chat: true,
            identity: IdentityConfig::default(),
            history: HistoryConfig::default(),
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            limits: Limits::default(),
            room_list: RoomListConfig::default(),
            transport: TransportConfig::default(),
            plain_websocket: PlainWebSocketConfig::default(),
            cluster: ClusterConfig::default(),
            connection_state_recovery: None,
            worker_threads: 0,
            event_queue_capacity: 65_536,
            event_queue_bytes: 64 << 20,
            command_queue_bytes: 64 << 20,
            host_ack_timeout_ms: 10_000,
            stop_timeout_ms: 5_000,
        }
    }
}

/// How identities are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMode {
    /// Clients choose a display name (handshake `auth.name`, `join`'s `name` or `login`).
    /// Names are unique among online users; a taken name is given a numeric suffix.
    #[default]
    Open,
    /// Clients present an HS256 JWT (handshake `auth.token` or query `token`, or `login`
    /// with `{token}`); its `sub` is the user id and its `name` the display name.
    Token,
}

/// Identity settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Open names or signed tokens. Defaults to [`IdentityMode::Open`].
    pub mode: IdentityMode,
    /// HS256 secret for [`IdentityMode::Token`]; required (non-empty) in that mode.
    /// Defaults to `None`.
    pub token_secret: Option<String>,
    /// Clock skew tolerated when checking a token's `exp` and `nbf`, in seconds.
    /// Defaults to `30`.
    pub token_leeway_secs: u64,
    /// More HS256 secrets accepted besides `token_secret`, for key rotation: a token
    /// signed with any of them is accepted. To rotate, add the new secret here, sign
    /// new tokens with it, and remove the old one once its tokens have expired.
    /// Each must be non-empty. Defaults to `[]`.
    pub token_secrets: Vec<String>,
    /// When set, a token must have an `iss` claim equal to it. Defaults to `None`
    /// (`iss` is not checked).
    pub token_issuer: Option<String>,
    /// When set, a token must have an `aud` claim (a string, or an array of
    /// strings) that contains it. When not set, a token that has an `aud` claim
    /// is refused, because it was issued for some other service (RFC 7519, 4.1.3).
    /// Defaults to `None`.
    pub token_audience: Option<String>,
    /// How long before a connection's token stops being accepted (its `exp` plus
    /// `token_leeway_secs`) the connection is sent `token_expiring {expires_at}`, in
    /// seconds, so that the client can renew it with `login {token}`; at
    /// `expires_at` the connection gets `kicked {reason: "auth_expired"}` and is
    /// disconnected. `0` sends no notice. Defaults to `60`.
    pub token_expiry_notice_secs: u64,
}

impl IdentityConfig {
    /// Every secret a token may be signed with: `token_secret` first, then
    /// `token_secrets`.
    pub(crate) fn accepted_secrets(&self) -> impl Iterator<Item = &str> {
        self.token_secret
            .iter()
            .chain(&self.token_secrets)
            .map(String::as_str)
            .filter(|secret| !secret.is_empty())
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            mode: IdentityMode::Open,
            token_secret: None,
            token_leeway_secs: 30,
            token_secrets: Vec::new(),
            token_issuer: None,
            token_audience: None,
            token_expiry_notice_secs: 60,
        }
    }
}

/// Where history lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HistoryStorage {
    /// An SQLite database file in WAL mode; survives restarts and crashes.
    #[default]
    Sqlite,
    /// Process memory only, bounded per room, in rooms and in bytes, forgetting
    /// idle rooms nobody is in; lost on restart.
    Memory,
}

/// What happens to a private message for a user with no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrivateOffline {
    /// Stored in the conversation and delivered at the recipient's next connect
    /// (as `private` events, before any other traffic of theirs).
    #[default]
    Store,
    /// Refused with `user_offline`, nothing stored.
    Refuse,
}

/// How hard SQLite works to keep acknowledged messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SqliteSync {
    /// `synchronous=NORMAL`: an acknowledged message survives a crash of the process,
    /// not necessarily a power loss.
    Normal,
    /// `synchronous=FULL`: each commit is fsynced; an acknowledged message also survives
    /// a power loss.
    #[default]
    Full,
}

/// History settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Storage backend. Defaults to [`HistoryStorage::Sqlite`].
    pub storage: HistoryStorage,
    /// SQLite database file, created when missing. Defaults to `"palaver-history.db"`
    /// (relative to the working directory).
    pub path: PathBuf,
    /// SQLite durability. Defaults to [`SqliteSync::Full`].
    pub synchronous: SqliteSync,
    /// Messages kept per room by the memory backend; older ones are forgotten.
    /// Defaults to `1000`.
    pub memory_max_per_room: usize,
    /// Rooms the memory backend keeps history for. A message to a room past it
    /// forgets the whole history of the least recently active room (the one whose
    /// last message, or last member leaving, is the oldest). Defaults to `10000`.
    pub memory_max_rooms: usize,
    /// Bytes of history the memory backend keeps across all rooms, each message
    /// counted as the length of its text, names and ids plus 256 bytes, each room
    /// as its name plus 256 bytes. Past it the oldest messages of the least
    /// recently active rooms are forgotten (never the newest message of the room
    /// just written to). At least `1048576`. Defaults to `67108864` (64 MiB).
    pub memory_max_bytes: usize,
    /// Seconds after which the memory backend forgets a room's history when
    /// nobody is in the room and nobody has written to it for that long (counted
    /// from its last message or from its last member leaving, whichever is
    /// later). Rooms are checked every quarter of this, at most every minute. At
    /// most `31536000` (a year). Defaults to `3600`.
    pub memory_idle_secs: u64,
    /// Seconds the SQLite backend keeps a message (by its `ts`); older ones are
    /// deleted, checked every quarter of this (at most every minute). The file
    /// does not shrink: SQLite reuses the freed pages for new messages. `None`
    /// keeps every message, so the file grows with the history (a disk budget:
    /// memory does not grow with it). Not used by the cluster's outage journal.
    /// Defaults to `None`.
    pub sqlite_max_age_secs: Option<u64>,
    /// Messages returned with a `join` acknowledgement. Defaults to `50`.
    pub on_join: usize,
    /// Largest page a `history` request may ask for. Defaults to `200`.
    pub page_max: usize,
    /// Most messages a recovery may return: a `join` with `since` (all of them in
    /// its answer) or a `history` with `after` (page by page) that is missing more
    /// gets `recovered: false` (`too_many`) and the newest page instead. At most
    /// `100000`. Defaults to `1000`.
    pub recovery_max: usize,
    /// A private message to a user with no connection: stored and delivered at
    /// their next connect, or refused with `user_offline`. Defaults to
    /// [`PrivateOffline::Store`].
    pub private_offline: PrivateOffline,
    /// Room messages accepted but not yet stored and delivered, in bytes (text,
    /// names and a fixed cost per message), for the whole engine. A message that
    /// would go over it is refused with `storage_busy`. Defaults to `16777216`
    /// (16 MiB), at most 1 GiB.
    pub queue_max_bytes: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            storage: HistoryStorage::Sqlite,
            path: PathBuf::from("palaver-history.db"),
            synchronous: SqliteSync::Full,
            memory_max_per_room: 1_000,
            memory_max_rooms: 10_000,
            memory_max_bytes: 64 << 20,
            memory_idle_secs: 3_600,
            sqlite_max_age_secs: None,
            on_join: 50,
            page_max: 200,
            recovery_max: 1_000,
            private_offline: PrivateOffline::Store,
            queue_max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Input limits and flood protection, applied per connection unless noted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest message text, in Unicode characters. Defaults to `2000`.
    pub max_text_chars: usize,
    /// Longest display name, in Unicode characters. Defaults to `32`.
    pub max_name_chars: usize,
    /// Longest room name, in Unicode characters. Defaults to `64`.
    pub max_room_chars: usize,
    /// Rooms one connection may be in at once. Defaults to `16`.
    pub max_rooms_per_connection: usize,
    /// Sustained rate of `message` and `private` sends (token bucket refill per second).
    /// Defaults to `10`.
    pub messages_per_second: u32,
    /// Burst of `message` and `private` sends (token bucket size). Defaults to `20`.
    pub message_burst: u32,
    /// Sustained rate of all requests together, any event. Defaults to `30`.
    pub requests_per_second: u32,
    /// Burst of all requests together. Defaults to `60`.
    pub request_burst: u32,
    /// Requests of one connection accepted but not yet answered; more are refused with
    /// `busy`. Defaults to `64`.
    pub max_pending_requests: usize,
    /// Largest Engine.IO payload in bytes (one WebSocket message, or one long-polling
    /// POST body). A bigger one closes the sender's connection, as the Engine.IO protocol
    /// prescribes. Defaults to `65536`.
    pub max_payload_bytes: u64,
    /// Concurrent Socket.IO connections from one IP address. Defaults to `64`.
    pub max_connections_per_ip: usize,
    /// Concurrent Engine.IO sessions from one IP address, counted from the
    /// handshake on, before (or without) any Socket.IO connect: a handshake past
    /// it is refused with HTTP 429 and `{"code": "too_many_connections"}`. Keep it
    /// above `max_connections_per_ip`, so that a client over that limit gets the
    /// Socket.IO refusal with its code rather than a failed handshake.
    /// Defaults to `128`.
    pub max_sessions_per_ip: usize,
    /// Minimum time between two relayed `typing` notices of one connection, in
    /// milliseconds; notices in between are dropped silently. Defaults to `1000`.
    pub typing_interval_ms: u64,
    /// Sustained rate of room changes of one connection: `join` of a room it is not
    /// in, and `leave` (token bucket refill per second). Each change sends a notice
    /// to the room and a room list to every client, so a change over the budget is
    /// refused with `rate_limited` before anything changes. Defaults to `1`.
    pub room_changes_per_second: u32,
    /// Burst of room changes of one connection (token bucket size); enough to join
    /// `max_rooms_per_connection` rooms at once. Defaults to `16`.
    pub room_change_burst: u32,
    /// Largest room that gets join and leave notices (the `message` from the
    /// system user and the `presence` event), counted in members with the user
    /// in it. Every notice goes to every member, so a room of N members filling
    /// up, or coming back after a restart or an outage, costs N² frames: 100
    /// million for 10,000 members. Larger rooms are quiet; their counts stay
    /// exact in `rooms` and `members`. `0` sends notices whatever the size.
    /// Defaults to `1000`.
    pub notice_max_members: usize,
    /// Open TCP connections from one IP address to the server's own listener
    /// (and connections handed over with [`Engine::adopt`](crate::Engine::adopt)),
    /// idle ones included; one past it is closed as soon as it is accepted. A
    /// long-polling client uses up to two. Defaults to `256`.
    pub max_sockets_per_ip: usize,
    /// Open TCP connections of all addresses together, as above; `0` takes the
    /// process's open-file limit (`RLIMIT_NOFILE`) less an eighth of it, so that
    /// history, Redis and the host keep file descriptors to work with.
    /// Defaults to `0`.
    pub max_sockets: usize,
    /// IPv6 clients are counted per network of this many leading bits by the
    /// per-address limits (`max_connections_per_ip`, `max_sockets_per_ip`): one
    /// client usually holds a whole /64. `128` counts each address. At most `128`.
    /// Defaults to `64`.
    pub ipv6_prefix_len: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_text_chars: 2_000,
            max_name_chars: 32,
            max_room_chars: 64,
            max_rooms_per_connection: 16,
            messages_per_second: 10,
            message_burst: 20,
            requests_per_second: 30,
            request_burst: 60,
            max_pending_requests: 64,
            max_payload_bytes: 64 * 1024,
            max_connections_per_ip: 64,
            max_sessions_per_ip: 128,
            typing_interval_ms: 1_000,
            room_changes_per_second: 1,
            room_change_burst: 16,
            notice_max_members: 1_000,
            max_sockets_per_ip: 256,
            max_sockets: 0,
            ipv6_prefix_len: 64,
        }
    }
}

/// The room list pushed to every client when membership changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomListConfig {
    /// Shortest time between two pushes, in milliseconds, for every 1000
    /// connections of the node (so 500 ms up to 1000 connections, 5 s at 10 000):
    /// changes in between are coalesced into one push, and the bytes pushed per
    /// second stay the same however many clients there are. Defaults to `500`.
    pub interval_ms: u64,
    /// Rooms listed, the most populated first. Defaults to `20`.
    pub max_rooms: usize,
    /// Members listed per room in `groupList`; counts are always exact.
    /// Defaults to `20`.
    pub max_members_per_room: usize,
    /// Push the tutorial-compatible `groupList` event besides `rooms`. Defaults to `true`.
    pub group_list: bool,
    /// Largest encoded `groupList`, in bytes: entries are listed (rooms in the
    /// order above, members in join order) while they fit, and the rest are left
    /// out; `rooms` still lists every room with its exact count. Names of up to
    /// 32 four-byte characters make an entry about 500 bytes, so `max_rooms` and
    /// `max_members_per_room` alone would allow about 200 KB per client per push.
    /// Defaults to `20480`.
    pub group_list_max_bytes: usize,
}

impl Default for RoomListConfig {
    fn default() -> Self {
        Self {
            interval_ms: 500,
            max_rooms: 20,
            max_members_per_room: 20,
            group_list: true,
            group_list_max_bytes: 20 * 1024,
        }
    }
}

/// Plain WebSocket connections: the host gets their open, message and close
/// events ([`Event::WsOpen`](crate::Event::WsOpen), ...) and answers with
/// commands, like the npm `ws` server. Messages are limited by
/// `limits.max_payload_bytes` and `limits.requests_per_second` (a client over
/// either is closed, with 1009 or 1008).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlainWebSocketConfig {
    /// The path where WebSocket upgrade requests are plain WebSocket connections
    /// (`"/"`: other requests at the path, such as the page, still reach the
    /// host's routes); `"*"` takes upgrades at any path outside `/socket.io/`.
    /// `None` turns them off. Defaults to `None`.
    pub path: Option<String>,
    /// Bytes queued to one connection and not yet written; a client that reads
    /// slower than that is closed with 1013. Defaults to `1048576` (1 MiB).
    pub max_queued_bytes: usize,
}

impl Default for PlainWebSocketConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_queued_bytes: 1 << 20,
        }
    }
}

/// Connection state recovery (socket.io's `connectionStateRecovery`): what is
/// kept of a connection that went away without saying goodbye (its transport
/// closed or failed, or it stopped answering pings), and of the broadcasts it may
/// have missed. Memory is bounded by `max_buffer_bytes` (broadcasts),
/// `max_sessions` and `max_sessions_bytes` (sessions, each at most
/// `max_session_bytes` of room names);
/// what does not fit is not kept, and a client that would need it connects as a
/// new one (`recovered: false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// How long a session can be resumed after its connection went, in
    /// milliseconds; broadcasts are kept as long. Defaults to `120000` (socket.io's
    /// default).
    pub max_disconnection_ms: u64,
    /// A resumed connection skips the connect gate (socket.io's
    /// `skipMiddlewares`). Defaults to `true`.
    pub skip_middlewares: bool,
    /// Most bytes of broadcasts kept for replay (their event names and arguments);
    /// the oldest are forgotten first. Defaults to `16777216` (16 MiB).
    pub max_buffer_bytes: usize,
    /// Most sessions kept at once; the oldest disconnection is forgotten first.
    /// Defaults to `10000`.
    pub max_sessions: usize,
    /// Most bytes of all sessions kept (room names, ids, and 128 bytes each);
    /// the oldest disconnection is forgotten first. Defaults to `16777216`
    /// (16 MiB).
    pub max_sessions_bytes: usize,
    /// Most bytes of room names one session keeps; a connection in more is not
    /// resumable. Defaults to `65536`.
    pub max_session_bytes: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            max_disconnection_ms: 120_000,
            skip_middlewares: true,
            max_buffer_bytes: 16 << 20,
            max_sessions: 10_000,
            max_sessions_bytes: 16 << 20,
            max_session_bytes: 64 << 10,
        }
    }
}

/// Engine.IO transport settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportConfig {
    /// Interval between server pings, in milliseconds. Defaults to `25000`.
    pub ping_interval_ms: u64,
    /// Time a client has to answer a ping, in milliseconds. Defaults to `20000`.
    pub ping_timeout_ms: u64,
    /// Time a client has to join the namespace after the Engine.IO handshake, in
    /// milliseconds; a session that has not joined by then is closed. Stock
    /// clients join right after the handshake. Defaults to `5000`.
    pub connect_timeout_ms: u64,
    /// Packets queued per connection before further packets to it are dropped (a
    /// client too slow to read; counted in `Stats::packets_dropped`). The queue
    /// takes memory only while it holds packets. Defaults to `1024`.
    pub max_buffer_size: usize,
    /// Bytes of packets (their texts and binary data) queued per connection
    /// before further packets to it are dropped, as for `max_buffer_size`; a
    /// packet is always taken when nothing is queued, so one larger answer (a
    /// `join` recovering many messages) still goes out. What one slow connection
    /// can make the server hold is this plus one packet. At most 1 GiB. Defaults
    /// to `4194304` (4 MiB).
    pub max_buffer_bytes: usize,
    /// Read buffer of each WebSocket connection, in bytes: allocated for the
    /// connection's whole life (an idle connection costs about 13 KiB in all, see
    /// bench/results/RESULTS.md); a bigger one only helps clients that send large
    /// messages in bulk.
    /// Defaults to `1024`.
    pub websocket_read_buffer_bytes: usize,
    /// Accept the WebSocket transport. Defaults to `true`.
    pub websocket: bool,
    /// Accept the HTTP long-polling transport. Defaults to `true`.
    pub polling: bool,
    /// Time a connection has to send a request's headers, counted from when the
    /// server waits for them (so an idle keep-alive connection is closed after it
    /// too), in milliseconds. Connections the host's own server accepts are the
    /// host's to time out. Defaults to `10000`.
    pub header_timeout_ms: u64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            connect_timeout_ms: 5_000,
            max_buffer_size: 1024,
            max_buffer_bytes: 4 << 20,
            websocket_read_buffer_bytes: 1024,
            websocket: true,
            polling: true,
            header_timeout_ms: 10_000,
        }
    }
}

/// Cluster mode (several nodes behind a load balancer acting as one chat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Redis URL (`redis://[user:password@]host:port[/db]`); setting it turns
    /// cluster mode on. Redis 7 or newer. Defaults to `None`.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel, so that several chats can share one
    /// Redis. Defaults to `"palaver"`.
    pub key_prefix: String,
    /// How often a node proves it is alive, in milliseconds. Defaults to `1000`.
    pub heartbeat_ms: u64,
    /// A node silent for this long is dead: other nodes remove its users from the
    /// member lists, in milliseconds. Defaults to `5000`.
    pub node_timeout_ms: u64,
    /// Longest wait for Redis before the node treats it as down and serves its own
    /// clients alone, in milliseconds. Defaults to `1000`.
    pub redis_timeout_ms: u64,
    /// Messages kept per room in Redis (trimmed approximately). Defaults to `10000`.
    pub history_max_per_room: usize,
    /// Seconds a room's history stream is kept in Redis after its last message
    /// (each message sets the stream's time to live again), so that rooms nobody
    /// writes to any more do not stay in Redis forever. At most `31536000` (a
    /// year). Defaults to `2592000` (30 days).
    pub history_idle_secs: u64,
    /// How long Redis remembers the key of a stored message, in milliseconds:
    /// writing the same message again within it (a retry after a timeout, or the
    /// outage journal written again after a crash) does not store it twice.
    /// Keys are kept per room in one hash per window (so a key is remembered for
    /// between one and two windows), not one Redis key per message.
    /// Defaults to `600000` (10 minutes).
    pub dedup_window_ms: u64,
    /// The node's outage journal: messages accepted while Redis is unreachable,
    /// kept until they are written to Redis (docs/CLUSTER.md). An SQLite file of
    /// its own when `history.storage` is `"sqlite"` (with `"memory"` the journal
    /// is in memory and lost if the process dies). Each node needs its own file:
    /// a second node opening it fails to start. Must not be `history.path`.
    /// Defaults to `"palaver-journal.db"` (relative to the working directory).
    pub journal_path: PathBuf,
    /// Messages the journal holds before it refuses more with `unavailable`.
    /// Defaults to `1000000`.
    pub journal_max_messages: u64,
    /// Bytes the journal holds before it refuses more with `unavailable`, counted
    /// as the UTF-8 bytes of each message's room, user id, name, text and key plus
    /// 96. Defaults to `268435456` (256 MiB).
    pub journal_max_bytes: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            key_prefix: "palaver".into(),
            heartbeat_ms: 1_000,
            node_timeout_ms: 5_000,
            redis_timeout_ms: 1_000,
            history_max_per_room: 10_000,
            history_idle_secs: 30 * 86_400,
            dedup_window_ms: 600_000,
            journal_path: PathBuf::from("palaver-journal.db"),
            journal_max_messages: 1_000_000,
            journal_max_bytes: 256 << 20,
        }
    }
}

/// A setting that cannot work, reported by [`Config::validate`] and by every start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Token mode without a secret.
    #[error(
        "identity.mode is \"token\" but no secret is set (identity.token_secret or identity.token_secrets)"
    )]
    MissingTokenSecret,
    /// A setting that must not be an empty string is one (an entry of
    /// `identity.token_secrets`, `identity.token_issuer`, `identity.token_audience`).
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A limit or size that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// Both transports are disabled.
    #[error("transport.websocket and transport.polling cannot both be false")]
    NoTransport,
    /// A CORS origin that is not `*` nor `scheme://host[:port]`.
    #[error("cors_origins entry {0:?} is not \"*\" nor an origin like \"https://example.com\"")]
    BadOrigin(String),
    /// The host is not an IP address.
    #[error("host {0:?} is not an IP address")]
    BadHost(String),
    /// An `allowed_hosts` entry that is not `*`, a host name nor `*.` and a host name.
    #[error(
        "allowed_hosts entry {0:?} is not \"*\", a host name like \"chat.example.com\" \
         nor \"*.\" and a host name (no scheme, port or path)"
    )]
    BadAllowedHost(String),
    /// The cluster's Redis URL cannot be parsed.
    #[error("cluster.redis_url {0:?} is not a redis:// URL")]
    BadRedisUrl(String),
    /// The node timeout must exceed the heartbeat, or live nodes would look dead.
    #[error("cluster.node_timeout_ms must be at least twice cluster.heartbeat_ms")]
    NodeTimeout,
    /// The outage journal would be the standalone history file, which cluster
    /// mode leaves untouched (docs/CLUSTER.md).
    #[error("cluster.journal_path must not be history.path")]
    JournalIsHistory,
    /// The plain WebSocket path does not start with `/`, or is Socket.IO's.
    #[error(
        "plain_websocket.path {0:?} must be \"*\" or start with '/', and not be under /socket.io"
    )]
    BadPlainWebSocketPath(String),
    /// A size is above its documented maximum.
    #[error("{0} must be at most {1}")]
    TooLarge(&'static str, u64),
    /// A size is below its documented minimum.
    #[error("{0} must be at least {1}")]
    TooSmall(&'static str, u64),
    /// Connection state recovery and cluster mode together (not available yet).
    #[error("connection_state_recovery is not available in cluster mode")]
    RecoveryInCluster,
    /// The JSON given to [`Config::from_json`] does not describe a configuration.
    #[error("invalid configuration JSON: {0}")]
    Json(String),
}

/// The largest `event_queue_capacity` accepted.
const MAX_EVENT_QUEUE_CAPACITY: usize = 1 << 24;
/// The longest duration setting accepted: a day, in milliseconds.
const MAX_DURATION_MS: u64 = 86_400_000;
/// The largest `transport.max_buffer_size` accepted (packets per connection).
const MAX_BUFFER_SIZE: u64 = 1 << 20;
/// The largest `transport.max_buffer_bytes` accepted (bytes per connection).
const MAX_BUFFER_BYTES: u64 = 1 << 30;
/// The largest `transport.websocket_read_buffer_bytes` accepted: 16 MiB, allocated
/// per connection.
const MAX_WEBSOCKET_READ_BUFFER_BYTES: u64 = 16 << 20;
/// The largest `limits.max_payload_bytes` accepted: 256 MiB.
const MAX_PAYLOAD_BYTES: u64 = 256 << 20;
/// The largest `limits.max_pending_requests` accepted.
const MAX_PENDING_REQUESTS: u64 = 1 << 20;
/// The largest `history.on_join` and `history.page_max` accepted.
const MAX_HISTORY_PAGE: u64 = 100_000;
/// Largest `history.queue_max_bytes`: room messages waiting for the store.
const MAX_HISTORY_QUEUE_BYTES: u64 = 1 << 30;
/// The most `worker_threads` accepted (each is an OS thread started at once).
const MAX_WORKER_THREADS: u64 = 1024;
/// The longest idle time of a room's history (`history.memory_idle_secs`,
/// `cluster.history_idle_secs`): a year, in seconds.
const MAX_IDLE_SECS: u64 = 365 * 86_400;
/// The smallest `history.memory_max_bytes` accepted: room for any one message
/// (2000 four-byte characters and names) many times over.
const MIN_MEMORY_HISTORY_BYTES: u64 = 1 << 20;

impl RecoveryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            (
                self.max_disconnection_ms,
                "connection_state_recovery.max_disconnection_ms",
            ),
            (
                self.max_buffer_bytes as u64,
                "connection_state_recovery.max_buffer_bytes",
            ),
            (
                self.max_sessions as u64,
                "connection_state_recovery.max_sessions",
            ),
            (
                self.max_session_bytes as u64,
                "connection_state_recovery.max_session_bytes",
            ),
            (
                self.max_sessions_bytes as u64,
                "connection_state_recovery.max_sessions_bytes",
            ),
        ];
        if let Some((_, name)) = positive.iter().find(|(value, _)| *value == 0) {
            return Err(ConfigError::Zero(name));
        }
        if self.max_disconnection_ms > MAX_DURATION_MS {
            return Err(ConfigError::TooLarge(
                "connection_state_recovery.max_disconnection_ms",
                MAX_DURATION_MS,
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Parses a configuration from JSON; missing fields take their defaults.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let config: Config =
            serde_json::from_str(json).map_err(|e| ConfigError::Json(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that the settings can work together, and that each is in its range:
    /// every duration (`*_ms`, `identity.token_leeway_secs`) at most a day, sizes
    /// at their documented maximum ([`ConfigError::TooLarge`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.host.parse::<std::net::IpAddr>().is_err() {
            return Err(ConfigError::BadHost(self.host.clone()));
        }
        if self.identity.mode == IdentityMode::Token
            && self.identity.accepted_secrets().next().is_none()
        {
            return Err(ConfigError::MissingTokenSecret);
        }
        let not_empty = [
            (
                self.identity.token_secrets.iter().any(String::is_empty),
                "an entry of identity.token_secrets",
            ),
            (
                self.identity.token_issuer.as_deref() == Some(""),
                "identity.token_issuer",
            ),
            (
                self.identity.token_audience.as_deref() == Some(""),
                "identity.token_audience",
            ),
        ];
        if let Some((_, name)) = not_empty.iter().find(|(empty, _)| *empty) {
            return Err(ConfigError::Empty(name));
        }
        let positive = [
            (self.limits.max_text_chars as u64, "limits.max_text_chars"),
            (self.limits.max_name_chars as u64, "limits.max_name_chars"),
            (self.limits.max_room_chars as u64, "limits.max_room_chars"),
            (
                self.limits.max_rooms_per_connection as u64,
                "limits.max_rooms_per_connection",
            ),
            (
                self.limits.messages_per_second as u64,
                "limits.messages_per_second",
            ),
            (self.limits.message_burst as u64, "limits.message_burst"),
            (
                self.limits.requests_per_second as u64,
                "limits.requests_per_second",
            ),
            (self.limits.request_burst as u64, "limits.request_burst"),
            (
                self.limits.max_pending_requests as u64,
                "limits.max_pending_requests",
            ),
            (self.limits.max_payload_bytes, "limits.max_payload_bytes"),
            (
                self.limits.max_connections_per_ip as u64,
                "limits.max_connections_per_ip",
            ),
            (
                self.history.memory_max_per_room as u64,
                "history.memory_max_per_room",
            ),
            (self.history.page_max as u64, "history.page_max"),
            (self.history.recovery_max as u64, "history.recovery_max"),
            (
                self.history.memory_max_rooms as u64,
                "history.memory_max_rooms",
            ),
            (self.history.memory_idle_secs, "history.memory_idle_secs"),
            (
                self.history.sqlite_max_age_secs.unwrap_or(1),
                "history.sqlite_max_age_secs",
            ),
            (self.cluster.history_idle_secs, "cluster.history_idle_secs"),
            (self.cluster.dedup_window_ms, "cluster.dedup_window_ms"),
            (
                self.history.queue_max_bytes as u64,
                "history.queue_max_bytes",
            ),
            (self.room_list.interval_ms, "room_list.interval_ms"),
            (
                self.limits.room_changes_per_second as u64,
                "limits.room_changes_per_second",
            ),
            (
                self.limits.room_change_burst as u64,
                "limits.room_change_burst",
            ),
            (
                self.room_list.group_list_max_bytes as u64,
                "room_list.group_list_max_bytes",
            ),
            (
                self.transport.ping_interval_ms,
                "transport.ping_interval_ms",
            ),
            (self.transport.ping_timeout_ms, "transport.ping_timeout_ms"),
            (
                self.transport.connect_timeout_ms,
                "transport.connect_timeout_ms",
            ),
            (
                self.transport.max_buffer_size as u64,
                "transport.max_buffer_size",
            ),
            (
                self.transport.max_buffer_bytes as u64,
                "transport.max_buffer_bytes",
            ),
            (
                self.transport.websocket_read_buffer_bytes as u64,
                "transport.websocket_read_buffer_bytes",
            ),
            (self.event_queue_capacity as u64, "event_queue_capacity"),
            (self.event_queue_bytes as u64, "event_queue_bytes"),
            (self.command_queue_bytes as u64, "command_queue_bytes"),
            (
                self.plain_websocket.max_queued_bytes as u64,
                "plain_websocket.max_queued_bytes",
            ),
            (self.host_ack_timeout_ms, "host_ack_timeout_ms"),
            (self.cluster.heartbeat_ms, "cluster.heartbeat_ms"),
            (self.cluster.redis_timeout_ms, "cluster.redis_timeout_ms"),
            (
                self.cluster.history_max_per_room as u64,
                "cluster.history_max_per_room",
            ),
            (
                self.cluster.journal_max_messages,
                "cluster.journal_max_messages",
            ),
            (self.cluster.journal_max_bytes, "cluster.journal_max_bytes"),
            (
                self.limits.max_sockets_per_ip as u64,
                "limits.max_sockets_per_ip",
            ),
            (
                self.limits.max_sessions_per_ip as u64,
                "limits.max_sessions_per_ip",
            ),
            (
                u64::from(self.limits.ipv6_prefix_len),
                "limits.ipv6_prefix_len",
            ),
            (
                self.transport.header_timeout_ms,
                "transport.header_timeout_ms",
            ),
        ];
        if let Some((_, name)) = positive.iter().find(|(value, _)| *value == 0) {
            return Err(ConfigError::Zero(name));
        }
        if let Some(recovery) = &self.connection_state_recovery {
            recovery.validate()?;
            if self.cluster.redis_url.is_some() {
                return Err(ConfigError::RecoveryInCluster);
            }
        }
        if let Some((name, max)) = self.over_maximum() {
            return Err(ConfigError::TooLarge(name, max));
        }
        if (self.history.memory_max_bytes as u64) < MIN_MEMORY_HISTORY_BYTES {
            return Err(ConfigError::TooSmall(
                "history.memory_max_bytes",
                MIN_MEMORY_HISTORY_BYTES,
            ));
        }
        if let Some(url) = &self.cluster.redis_url {
            if !url.starts_with("redis://") || redis::Client::open(url.as_str()).is_err() {
                return Err(ConfigError::BadRedisUrl(url.clone()));
            }
        }
        if self.cluster.node_timeout_ms < 2 * self.cluster.heartbeat_ms {
            return Err(ConfigError::NodeTimeout);
        }
        if self.cluster.redis_url.is_some()
            && self.history.storage == HistoryStorage::Sqlite
            && self.cluster.journal_path == self.history.path
        {
            return Err(ConfigError::JournalIsHistory);
        }
        if let Some(path) = &self.plain_websocket.path {
            let under_socket_io = path == "/socket.io" || path.starts_with("/socket.io/");
            if (path != "*" && !path.starts_with('/')) || under_socket_io {
                return Err(ConfigError::BadPlainWebSocketPath(path.clone()));
            }
        }
        if self.event_queue_capacity > MAX_EVENT_QUEUE_CAPACITY {
            return Err(ConfigError::TooLarge(
                "event_queue_capacity",
                MAX_EVENT_QUEUE_CAPACITY as u64,
            ));
        }
        if !self.transport.websocket && !self.transport.polling {
            return Err(ConfigError::NoTransport);
        }
        for origin in &self.cors_origins {
            if origin != "*" && !is_origin(origin) {
                return Err(ConfigError::BadOrigin(origin.clone()));
            }
        }
        if let Some(host) = self
            .allowed_hosts
            .iter()
            .find(|host| !crate::allowed_hosts::is_allowed_host_entry(host))
        {
            return Err(ConfigError::BadAllowedHost(host.clone()));
        }
        Ok(())
    }

    /// The first value above its maximum, with that maximum. Durations are capped
    /// at a day (timers, deadlines and sums of them then cannot overflow), sizes
    /// that are allocated or queued at once at what memory can sensibly hold.
    fn over_maximum(&self) -> Option<(&'static str, u64)> {
        let durations_ms = [
            (self.room_list.interval_ms, "room_list.interval_ms"),
            (
                self.transport.ping_interval_ms,
                "transport.ping_interval_ms",
            ),
            (self.transport.ping_timeout_ms, "transport.ping_timeout_ms"),
            (
                self.transport.connect_timeout_ms,
                "transport.connect_timeout_ms",
            ),
            (
                self.transport.header_timeout_ms,
                "transport.header_timeout_ms",
            ),
            (self.limits.typing_interval_ms, "limits.typing_interval_ms"),
            (self.host_ack_timeout_ms, "host_ack_timeout_ms"),
            (self.stop_timeout_ms, "stop_timeout_ms"),
            (self.cluster.heartbeat_ms, "cluster.heartbeat_ms"),
            (self.cluster.node_timeout_ms, "cluster.node_timeout_ms"),
            (self.cluster.redis_timeout_ms, "cluster.redis_timeout_ms"),
            (self.cluster.dedup_window_ms, "cluster.dedup_window_ms"),
            (
                self.identity.token_leeway_secs.saturating_mul(1000),
                "identity.token_leeway_secs (in ms)",
            ),
        ];
        let sizes = [
            (
                self.transport.max_buffer_size as u64,
                MAX_BUFFER_SIZE,
                "transport.max_buffer_size",
            ),
            (
                self.transport.max_buffer_bytes as u64,
                MAX_BUFFER_BYTES,
                "transport.max_buffer_bytes",
            ),
            (
                self.transport.websocket_read_buffer_bytes as u64,
                MAX_WEBSOCKET_READ_BUFFER_BYTES,
                "transport.websocket_read_buffer_bytes",
            ),
            (
                self.limits.max_payload_bytes,
                MAX_PAYLOAD_BYTES,
                "limits.max_payload_bytes",
            ),
            (
                self.limits.max_pending_requests as u64,
                MAX_PENDING_REQUESTS,
                "limits.max_pending_requests",
            ),
            (
                self.history.on_join as u64,
                MAX_HISTORY_PAGE,
                "history.on_join",
            ),
            (
                self.history.page_max as u64,
                MAX_HISTORY_PAGE,
                "history.page_max",
            ),
            (
                self.history.recovery_max as u64,
                MAX_HISTORY_PAGE,
                "history.recovery_max",
            ),
            (
                self.history.queue_max_bytes as u64,
                MAX_HISTORY_QUEUE_BYTES,
                "history.queue_max_bytes",
            ),
            (
                u64::from(self.limits.ipv6_prefix_len),
                128,
                "limits.ipv6_prefix_len",
            ),
            (
                self.worker_threads as u64,
                MAX_WORKER_THREADS,
                "worker_threads",
            ),
            (
                self.history.memory_idle_secs,
                MAX_IDLE_SECS,
                "history.memory_idle_secs",
            ),
            (
                self.cluster.history_idle_secs,
                MAX_IDLE_SECS,
                "cluster.history_idle_secs",
            ),
        ];
        durations_ms
            .into_iter()
            .find(|(value, _)| *value > MAX_DURATION_MS)
            .map(|(_, name)| (name, MAX_DURATION_MS))
            .or_else(|| {
                sizes
                    .into_iter()
                    .find(|(value, max, _)| value > max)
                    .map(|(_, max, name)| (name, max))
            })
    }

    pub(crate) fn stop_timeout(&self) -> Duration {
        Duration::from_millis(self.stop_timeout_ms)
    }
}

/// `scheme://host[:port]` with no path, as browsers send in the `Origin` header.
fn is_origin(value: &str) -> bool {
    let Ok(uri) = value.parse::<http::Uri>() else {
        return false;
    };
    uri.scheme().is_some()
        && uri.host().is_some()
        && uri.path_and_query().is_none_or(|p| p.as_str() == "/")
        && !value.ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn json_uses_defaults_for_missing_fields() {
        let config =
            Config::from_json(r#"{"port": 4000, "limits": {"max_text_chars": 10}}"#).unwrap();
        assert_eq!(config.port, 4000);
        assert_eq!(config.limits.max_text_chars, 10);
        assert_eq!(config.limits.max_name_chars, 32);
    }

    #[test]
    fn json_rejects_unknown_fields() {
        let err = Config::from_json(r#"{"prot": 4000}"#).unwrap_err();
        assert!(matches!(err, ConfigError::Json(msg) if msg.contains("prot")));
    }

    #[test]
    fn token_mode_needs_a_secret() {
        let err = Config::from_json(r#"{"identity": {"mode": "token"}}"#).unwrap_err();
        assert_eq!(err, ConfigError::MissingTokenSecret);
    }

    #[test]
    fn token_mode_accepts_rotated_secrets_alone() {
        let config = Config::from_json(
            r#"{"identity": {"mode": "token", "token_secrets": ["next", "previous"]}}"#,
        )
        .unwrap();
        assert_eq!(
            config.identity.accepted_secrets().collect::<Vec<_>>(),
            ["next", "previous"]
        );
        let err = Config::from_json(
            r#"{"identity": {"mode": "token", "token_secret": "s", "token_secrets": [""]}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::Empty("an entry of identity.token_secrets")
        );
        let err = Config::from_json(r#"{"identity": {"token_issuer": ""}}"#).unwrap_err();
        assert_eq!(err, ConfigError::Empty("identity.token_issuer"));
    }

    #[test]
    fn origins_are_checked() {
        let mut config = Config {
            cors_origins: vec!["https://chat.example.com:8443".into(), "*".into()],
            ..Config::default()
        };
        config.validate().unwrap();
        config.cors_origins = vec!["chat.example.com".into()];
        assert!(matches!(config.validate(), Err(ConfigError::BadOrigin(_))));
        config.cors_origins = vec!["https://chat.example.com/path".into()];
        assert!(matches!(config.validate(), Err(ConfigError::BadOrigin(_))));
    }

    #[test]
    fn allowed_hosts_are_checked() {
        let mut config = Config {
            allowed_hosts: vec![
                "chat.example.com".into(),
                "*.example.org".into(),
                "*".into(),
            ],
            ..Config::default()
        };
        config.validate().unwrap();
        for bad in ["https://chat.example.com", "chat.example.com:443", ""] {
            config.allowed_hosts = vec![bad.into()];
            assert_eq!(
                config.validate(),
                Err(ConfigError::BadAllowedHost(bad.into()))
            );
        }
    }

    #[test]
    fn zero_limits_are_rejected() {
        let mut config = Config::default();
        config.limits.max_rooms_per_connection = 0;
        assert_eq!(
            config.validate(),
            Err(ConfigError::Zero("limits.max_rooms_per_connection"))
        );
    }

    #[test]
    fn oversized_durations_and_sizes_are_rejected() {
        let err = Config::from_json(r#"{"cluster": {"heartbeat_ms": 18446744073709551615}}"#)
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::TooLarge("cluster.heartbeat_ms", MAX_DURATION_MS)
        );
        let mut config = Config::default();
        config.transport.ping_interval_ms = MAX_DURATION_MS;
        config.validate().unwrap();
        config.transport.ping_interval_ms = MAX_DURATION_MS + 1;
        assert_eq!(
            config.validate(),
            Err(ConfigError::TooLarge(
                "transport.ping_interval_ms",
                MAX_DURATION_MS
            ))
        );
        let mut config = Config::default();
        config.identity.token_leeway_secs = u64::MAX;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooLarge(
                "identity.token_leeway_secs (in ms)",
                _
            ))
        ));
        let mut config = Config::default();
        config.transport.max_buffer_size = usize::MAX;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooLarge("transport.max_buffer_size", _))
        ));
        let config = Config {
            worker_threads: usize::MAX,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooLarge("worker_threads", 1024))
        ));
        let mut config = Config::default();
        config.history.memory_idle_secs = MAX_IDLE_SECS + 1;
        assert_eq!(
            config.validate(),
            Err(ConfigError::TooLarge(
                "history.memory_idle_secs",
                MAX_IDLE_SECS
            ))
        );
        let mut config = Config::default();
        config.cluster.dedup_window_ms = MAX_DURATION_MS + 1;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooLarge("cluster.dedup_window_ms", _))
        ));
        let mut config = Config::default();
        config.history.memory_max_bytes = 1000;
        assert_eq!(
            config.validate(),
            Err(ConfigError::TooSmall(
                "history.memory_max_bytes",
                MIN_MEMORY_HISTORY_BYTES
            ))
        );
        let mut config = Config::default();
        config.history.memory_max_rooms = 0;
        assert_eq!(
            config.validate(),
            Err(ConfigError::Zero("history.memory_max_rooms"))
        );
        let mut config = Config::default();
        config.limits.ipv6_prefix_len = 129;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooLarge("limits.ipv6_prefix_len", 128))
        ));
        let mut config = Config::default();
        config.history.queue_max_bytes = 0;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Zero("history.queue_max_bytes"))
        ));
        config.history.queue_max_bytes = (1 << 30) + 1;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TooLarge("history.queue_max_bytes", 1073741824))
        ));
    }
}
