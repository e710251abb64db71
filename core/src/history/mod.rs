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
use std::time::Duration;

use socketioxide::socket::Sid;

use crate::config::{HistoryConfig, HistoryStorage};
use crate::protocol::{ChatMessage, MessageKind, User};

pub(crate) use self::journal::Journal;
pub(crate) use self::memory::{MemoryBounds, MemoryHistory};
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
            HistoryStorage::Memory => {
                Self::Memory(MemoryHistory::with_bounds(MemoryBounds::of(config)))
            }
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

    /// The last member of `room` (on this node) left it: a memory history
    /// counts its idle time from now.
    pub(crate) fn vacated(&self, room: &str) {
        if let Self::Memory(store) = self {
            store.vacated(room);
        }
    }

    /// How long this backend keeps what nobody uses, when it forgets anything by
    /// time itself: memory history a room nobody is in and nobody wrote to
    /// (`memory_idle_secs`), SQLite a message (`sqlite_max_age_secs`). Redis
    /// expires its streams on its own.
    pub(crate) fn retention(&self, config: &HistoryConfig) -> Option<Duration> {
        match self {
            Self::Memory(_) => Some(Duration::from_secs(config.memory_idle_secs)),
            Self::Sqlite(_) => config.sqlite_max_age_secs.map(Duration::from_secs),
            Self::Redis(_) => None,
        }
    }

    /// Forgets what is older than `retention` (see [`History::retention`]);
    /// `occupied` says which rooms have members (memory history keeps those).
    pub(crate) async fn expire(&self, retention: Duration, occupied: impl Fn(&str) -> bool) {
        match self {
            Self::Memory(store) => {
                let expired = store.expire_idle(retention, occupied);
                if expired > 0 {
                    release_freed_memory();
                    let (rooms, bytes) = store.usage();
                    tracing::debug!(expired, rooms, bytes, "forgot the history of idle rooms");
                }
            }
            Self::Sqlite(store) => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |now| now.as_millis() as i64);
                let cutoff_ms = now_ms.saturating_sub(retention.as_millis() as i64);
                let mut deleted = 0;
                // A batch at a time: appends queued meanwhile go in between.
                loop {
                    match store.prune(cutoff_ms).await {
                        Ok(0) => break,
                        Ok(n) => deleted += n,
                        // Stopping: what is left goes at the next start.
                        Err(HistoryError::Closed) => break,
                        Err(e) => {
                            tracing::warn!("deleting old history failed: {e}");
                            break;
                        }
                    }
                }
                if deleted > 0 {
                    tracing::debug!(deleted, "deleted messages past history.sqlite_max_age_secs");
                }
            }
            Self::Redis(_) => {}
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

/// Hands memory freed by forgotten rooms back to the system. glibc's allocator
/// keeps freed small blocks in its arenas for reuse, so without this the
/// process's RSS would stay at its peak after every room had gone (measured:
/// 85 MB before and after forgetting 816 rooms of 9 messages of 8 KB).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's own heaps
    // to the system; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
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
