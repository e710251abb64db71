//! # Palaver: an embeddable real-time chat engine
//!
//! Two faces on one engine: a complete Socket.IO v4 chat server — rooms, presence, join/leave notices,
//! group and private messages, typing indicators, token or open identities,
//! persistent history, flood limits — that runs on its own runtime so that hosts
//! in C, Node or plain Rust need no async code. Clients are the stock
//! `socket.io-client` v4; the protocol is written down in `docs/PROTOCOL.md`.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = palaver_core::Config {
//!     port: 3000,
//!     ..palaver_core::Config::default()
//! };
//! let engine = palaver_core::Chat::builder(config)
//!     .on_event(|event| println!("{event:?}"))
//!     .start()?;
//!
//! let chat = engine.handle();
//! chat.block_on(chat.emit_to_all("announcement", serde_json::json!({"text": "hello"})));
//!
//! engine.stop(Duration::from_secs(5))?;
//! # Ok(()) }
//! ```
//!
//! Inside an existing axum app the chat is a layer instead, as with socketioxide:
//! see [`ChatBuilder::into_layer`].
//!
//! ## The Socket.IO engine
//!
//! With [`Config::builtin_chat`] off, Palaver is a plain Socket.IO server whose
//! events all go to the host, which answers with socket.io's primitives (emit to a
//! connection, a room, everyone, except; join, leave, disconnect; acks; a connect
//! gate) as [`SocketCommand`]s, applied in order:
//!
//! ```no_run
//! use palaver_core::{Chat, Config, Event, OutArgs, Target};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config { builtin_chat: false, ..Config::default() };
//! let (events, incoming) = std::sync::mpsc::channel();
//! let engine = Chat::builder(config)
//!     .on_event(move |event| {
//!         let _ = events.send(event);
//!     })
//!     .start()?;
//! for event in incoming {
//!     // `io.on("connection", s => s.on("chat message", m => io.emit("chat message", m)))`
//!     if let Event::SocketEvent { event, args, attachments, .. } = event {
//!         if event == "chat message" {
//!             let args = OutArgs::from_json(args.as_str(), attachments)?;
//!             engine.handle().emit_to(Target::default(), "chat message", args)?;
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Node apps get the same as the `socket.io` package's API (`palaver/socket.io`,
//! docs/SOCKETIO.md); plain WebSocket connections are in
//! [`Config::plain_websocket`].
#![warn(missing_docs)]

mod acks;
mod allowed_hosts;
mod assemble;
mod builder;
mod chat;
mod cluster;
mod config;
mod engine;
mod events;
mod gates;
mod goodbye;
mod handle;
mod handshake_limit;
mod headers;
mod history;
mod host_error;
mod identity;
mod lifecycle;
mod limits;
mod lookalike;
mod peer;
mod plain_ws;
mod presence;
mod protocol;
mod refusal;
mod server;
mod service;
mod shared;
mod shutdown;
mod sockets;
mod stats;
mod validate;

pub use acks::AckError;
pub use assemble::BuildError;
pub use builder::{Chat, ChatBuilder};
pub use cluster::{ClusterError, ClusterStats};
pub use config::{
    ClusterConfig, Config, ConfigError, HistoryConfig, HistoryStorage, IdentityConfig,
    IdentityMode, Limits, PlainWebSocketConfig, PrivateOffline, RecoveryConfig, RoomListConfig,
    SqliteSync, TransportConfig,
};
pub use engine::{AdoptError, Engine, StartError};
pub use events::{AckId, Event, EventKind, EventKinds, GateId};
pub use gates::GateDecision;
pub use handle::{ChatHandle, DisconnectError, EmitError};
pub use history::{migrate_history_to_redis, HistoryError, MigrationError, MigrationReport};
pub use host_error::HostErrorCode;
pub use plain_ws::{PlainHandshake, PlainMessage};
pub use protocol::{
    ChatError, ChatMessage, ErrorCode, Member, MessageKind, PrivateMessage, RoomInfo, User,
};
pub use service::{ChatLayer, ChatService};
pub use shutdown::{StopError, StopReport};
pub use sockets::{
    AckReply, ArgsError, CommandError, Handshake, JsonArgs, OutArgs, QueryAnswer, SocketCommand,
    SocketInfo, SocketQuery, Target,
};
pub use stats::Stats;
