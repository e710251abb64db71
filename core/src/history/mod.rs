//! Room history: where messages are stored before they are delivered.
//!
//! A message is acknowledged to its sender only after [`History::append`] has
//! returned it with its id, so a restart or a crash of the process loses nothing
//! that was acknowledged (SQLite backend).

mod memory;
mod sqlite;

use std::sync::Arc;

use crate::config::{HistoryConfig, HistoryStorage};
use crate::protocol::{ChatMessage, MessageKind, User};

pub(crate) use memory::MemoryHistory;
pub(crate) use sqlite::SqliteHistory;

/// A message accepted from a member, not yet stored.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub room: Arc<str>,
    pub user: User,
    pub text: String,
    pub ts: i64,
    /// Unique per accepted message; makes storing it twice (a retry) harmless.
    pub key: Arc<str>,
}

/// What storing a batch did.
pub(crate) struct Stored {
    /// The messages with their ids, in order.
    pub messages: Vec<ChatMessage>,
    /// Whether storing also published them to every node (cluster mode), so the
    /// caller must not deliver them itself.
    pub published: bool,
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
    /// Redis, with the local backend as the outage journal (cluster mode).
    Clustered(crate::cluster::history::ClusterHistory),
}

impl History {
    pub(crate) fn open(config: &HistoryConfig) -> Result<Self, HistoryError> {
        Ok(match config.storage {
            HistoryStorage::Sqlite => Self::Sqlite(SqliteHistory::open(config)?),
            HistoryStorage::Memory => Self::Memory(MemoryHistory::new(config.memory_max_per_room)),
        })
    }

    /// Stores a batch in order and returns the stored messages, ids assigned.
    /// Either every message of the batch is stored or none is. `senders` are the
    /// sending connections' ids, one per message (cluster deliveries skip them).
    pub(crate) async fn append(
        &self,
        batch: Vec<NewMessage>,
        senders: &[String],
    ) -> Result<Stored, HistoryError> {
        let local = |messages| Stored {
            messages,
            published: false,
        };
        match self {
            Self::Sqlite(store) => store.append(batch).await.map(local),
            Self::Memory(store) => Ok(local(store.append(batch))),
            Self::Clustered(store) => store.append(batch, senders).await,
        }
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
            Self::Clustered(store) => store.page(room, before, limit).await,
        }
    }

    /// Flushes and closes; later calls fail with [`HistoryError::Closed`].
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Memory(_) => {}
            Self::Clustered(store) => store.close().await,
        }
    }

    /// The Redis side, in cluster mode.
    pub(crate) fn clustered(&self) -> Option<&crate::cluster::history::ClusterHistory> {
        match self {
            Self::Clustered(store) => Some(store),
            _ => None,
        }
    }

    /// Writes the outage journal to Redis (cluster mode; nothing otherwise).
    pub(crate) async fn replay_journal(&self) {
        if let Self::Clustered(store) = self {
            store.replay().await;
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
