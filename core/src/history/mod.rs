//! Room history: where messages are stored before they are delivered, behind one
//! interface with its backends side by side: an SQLite file (`sqlite.rs`), process
//! memory (`memory.rs`), and Redis streams shared by a cluster (`redis.rs`, with
//! the node's outage journal in `journal/`). Moving a standalone SQLite history
//! into Redis is an explicit step of its own (`migrate.rs`), never a side effect
//! of starting a cluster node.
//!
//! A message is acknowledged to its sender only after [`History::append`] has
//! returned it with its id, so a restart or a crash of the process loses nothing
//! that was acknowledged (SQLite and Redis backends). Storing is all a backend
//! does; delivering is the chat's (`chat/fanout.rs`). The Redis backend also
//! announces each append to every node, in the same atomic step (see
//! [`History::announces_appends`]).

mod journal;
mod memory;
pub(crate) mod migrate;
mod redis;
mod sqlite;

use std::sync::Arc;

use socketioxide::socket::Sid;

use crate::config::{HistoryConfig, HistoryStorage};
use crate::protocol::{ChatMessage, MessageKind, User};

pub(crate) use self::journal::Journal;
pub(crate) use self::memory::MemoryHistory;
pub use self::migrate::{migrate_history_to_redis, MigrationError, MigrationReport};
pub(crate) use self::redis::{Announcement, RedisHistory};
pub(crate) use self::sqlite::SqliteHistory;

/// A message accepted from a member, not yet stored.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub room: Arc<str>,
    pub user: User,
    pub text: String,
    pub ts: i64,
    /// Unique per accepted message; makes storing it twice (a retry) harmless.
    pub key: Arc<str>,
    /// The sending connection, which its delivery leaves out (none for messages
    /// written again from the outage journal, which are not delivered again).
    pub sender: Option<Sid>,
}

impl NewMessage {
    pub(crate) fn stored(self, id: String) -> ChatMessage {
        ChatMessage {
            id: Some(id),
            room: self.room,
            user: self.user.name,
            user_id: Some(self.user.id),
            text: self.text,
            ts: self.ts,
            kind: MessageKind::Chat,
        }
    }
}

/// One page of a room's history, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page {
    pub messages: Vec<ChatMessage>,
    /// Whether older messages exist before the first one of this page.
    pub has_more: bool,
}

/// Why the history backend could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The database could not be opened or prepared.
    #[error("cannot open history database {path}: {reason}")]
    Open {
        /// The database file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A read or write failed.
    #[error("history storage failed: {0}")]
    Storage(String),
    /// A `before` cursor that is not an id of this backend.
    #[error("{0:?} is not a message id")]
    BadCursor(String),
    /// The history was closed (the engine is stopping).
    #[error("history is closed")]
    Closed,
    /// The cluster's shared history (Redis) cannot be reached right now.
    #[error("history unavailable: {0}")]
    Unavailable(String),
}

/// The configured backend.
pub(crate) enum History {
    Sqlite(SqliteHistory),
    Memory(MemoryHistory),
    /// Redis, with the node's outage journal (cluster mode).
    Redis(RedisHistory),
}

impl History {
    /// The local backend of the configuration.
    pub(crate) fn open(config: &HistoryConfig) -> Result<Self, HistoryError> {
        Ok(match config.storage {
            HistoryStorage::Sqlite => Self::Sqlite(SqliteHistory::open(config)?),
            HistoryStorage::Memory => Self::Memory(MemoryHistory::new(config.memory_max_per_room)),
        })
    }

    /// Stores a batch in order and returns the stored messages, ids assigned.
    /// Either every message of the batch is stored or none is.
    pub(crate) async fn append(
        &self,
        batch: Vec<NewMessage>,
    ) -> Result<Vec<ChatMessage>, HistoryError> {
        match self {
            Self::Sqlite(store) => store.append(batch).await,
            Self::Memory(store) => Ok(store.append(batch)),
            Self::Redis(store) => store.append(batch).await,
        }
    }

    /// Whether `message` can be stored now as far as bounds go: false only in
    /// cluster mode during an outage, when the journal is full.
    pub(crate) fn admits(&self, message: &NewMessage) -> bool {
        match self {
            Self::Redis(store) => store.admits(message),
            Self::Sqlite(_) | Self::Memory(_) => true,
        }
    }

    /// Whether every append is announced to every node by the backend itself
    /// (Redis: in the script that stores it, so that all nodes see a room in the
    /// order of its ids), and so reaches this node's members through the
    /// announcements; otherwise the caller delivers what was stored.
    pub(crate) fn announces_appends(&self) -> bool {
        matches!(self, Self::Redis(_))
    }

    /// The page of at most `limit` messages before `before` (or the newest ones).
    pub(crate) async fn page(
        &self,
        room: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, HistoryError> {
        match self {
            Self::Sqlite(store) => store.page(room, before, limit).await,
            Self::Memory(store) => store.page(room, before, limit),
            Self::Redis(store) => store.page(room, before, limit).await,
        }
    }

    /// Flushes and closes; later calls fail with [`HistoryError::Closed`].
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Memory(_) => {}
            Self::Redis(store) => store.close().await,
        }
    }

    /// The Redis backend, in cluster mode.
    pub(crate) fn redis(&self) -> Option<&RedisHistory> {
        match self {
            Self::Redis(store) => Some(store),
            _ => None,
        }
    }
}

/// Parses a `before` cursor of a backend whose ids are decimal integers.
fn integer_cursor(before: Option<&str>) -> Result<Option<i64>, HistoryError> {
    before
        .map(|raw| {
            raw.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| HistoryError::BadCursor(raw.to_string()))
        })
        .transpose()
}
