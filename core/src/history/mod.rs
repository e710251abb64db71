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
use crate::protocol::{ChatMessage, MessageKind, Position, User};

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
    /// A private message's recipient (`room` is then their [`conversation`]).
    pub to: Option<User>,
    /// A private message whose recipient had no connection when it was sent:
    /// the store remembers it for their next connect ([`History::take_pending`]).
    pub pending: bool,
}

impl NewMessage {
    /// The message as stored: its id and its place in the room's history
    /// (`None` while journaled during an outage).
    pub(crate) fn stored(self, id: String, place: Option<(u64, Arc<str>)>) -> ChatMessage {
        let (offset, epoch) = place.unzip();
        ChatMessage {
            id: Some(id),
            room: self.room,
            user: self.user.name,
            user_id: Some(self.user.id),
            text: self.text,
            ts: self.ts,
            kind: kind_of(&self.to),
            offset,
            epoch,
            to: self.to,
        }
    }
}

/// Where a room's history stands: its epoch (`None` before its first message)
/// and the offset of its newest message (`0` before the first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Head {
    pub epoch: Option<Arc<str>>,
    pub offset: u64,
}

/// One page of a room's history, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page {
    pub messages: Vec<ChatMessage>,
    /// Whether older messages exist before the first one of this page.
    pub has_more: bool,
    /// Where the room's history stands.
    pub head: Head,
}

impl Page {
    /// A page from the newest messages first, one more than `limit` when older
    /// ones exist (how every backend reads a page).
    fn from_newest_first(mut messages: Vec<ChatMessage>, limit: usize, head: Head) -> Self {
        let has_more = messages.len() > limit;
        messages.truncate(limit);
        messages.reverse();
        Self {
            messages,
            has_more,
            head,
        }
    }
}

/// A stored message's recipient, from the id and name a backend keeps (both or
/// neither: a room message).
pub(super) fn recipient(id: Option<String>, name: Option<String>) -> Option<User> {
    Some(User {
        id: Arc::from(id?),
        name: Arc::from(name?),
    })
}

/// What a stored message is: private when it has a recipient.
pub(super) fn kind_of(to: &Option<User>) -> MessageKind {
    if to.is_some() {
        MessageKind::Private
    } else {
        MessageKind::Chat
    }
}

/// What came after a client's [`Position`] in a room's history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum After {
    /// Exactly the messages after the position, oldest first, up to the limit.
    Found {
        messages: Vec<ChatMessage>,
        /// Whether more follow the last one returned.
        has_more: bool,
        head: Head,
    },
    /// The history cannot say exactly what came after the position.
    Lost { reason: LostReason, head: Head },
}

/// Why a position cannot be recovered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LostReason {
    /// The position belongs to another epoch (or lies ahead of the history).
    Epoch,
    /// The history no longer reaches back to the message after the position.
    Trimmed,
    /// More messages are missing than a recovery may return.
    TooMany,
}

impl LostReason {
    /// Its name on the wire (`reason` of a `join` or `history` answer).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Epoch => "epoch",
            Self::Trimmed => "trimmed",
            Self::TooMany => "too_many",
        }
    }
}

/// What a backend found after a position, before the common checks: the
/// history's head and the oldest messages after `from` (at most `limit`), or
/// nothing when the epoch or the count already rule a recovery out.
pub(crate) struct Found {
    pub head: Head,
    pub messages: Vec<ChatMessage>,
}

impl Found {
    /// The checks every backend shares: the epoch, the count, and that the
    /// messages start right after `from` (no silent gap).
    fn judge(self, from: &Position, max_missing: u64) -> After {
        let Found { head, messages } = self;
        if let Some(reason) = precheck(&head, from, max_missing) {
            return After::Lost { reason, head };
        }
        let missing = head.offset - from.offset;
        if missing == 0 {
            return After::Found {
                messages: Vec::new(),
                has_more: false,
                head,
            };
        }
        let contiguous = messages
            .iter()
            .zip(from.offset + 1..)
            .all(|(message, expected)| message.offset == Some(expected));
        if messages.is_empty() || !contiguous {
            return After::Lost {
                reason: LostReason::Trimmed,
                head,
            };
        }
        let has_more = (messages.len() as u64) < missing;
        After::Found {
            messages,
            has_more,
            head,
        }
    }
}

/// Whether `from` can be recovered from at all, given the head alone.
fn precheck(head: &Head, from: &Position, max_missing: u64) -> Option<LostReason> {
    if from.offset > 0 && from.epoch.as_deref() != head.epoch.as_deref() {
        return Some(LostReason::Epoch);
    }
    if from.offset > head.offset {
        return Some(LostReason::Epoch);
    }
    if head.offset - from.offset > max_missing {
        return Some(LostReason::TooMany);
    }
    None
}

/// A new epoch for a room's history: random, so that histories started apart
/// (another store, a restart of a memory history) never share one.
pub(crate) fn new_epoch() -> Arc<str> {
    use std::hash::{BuildHasher, Hasher};
    // The standard library's hasher keys are random per process and per call.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.as_nanos());
    hasher.write_u128(nanos);
    Arc::from(format!("{:016x}", hasher.finish()))
}

/// The history "room" that holds the private messages between two users: the
/// same for both directions, and never a valid room name (those have no `@`).
pub(crate) fn conversation(a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    format!("@{}:{first}{second}", first.len())
}

/// The two user ids of a [`conversation`] name; `None` for a room name.
pub(crate) fn conversation_users(room: &str) -> Option<(&str, &str)> {
    let rest = room.strip_prefix('@')?;
    let (len, ids) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    (ids.is_char_boundary(len) && len <= ids.len()).then(|| ids.split_at(len))
}

/// A conversation with a pending private message for a user who was offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub conversation: String,
    /// The position just before the first message they have not received.
    pub from: Position,
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

    /// The messages after `from`, oldest first (at most `limit`), or why they
    /// cannot be told exactly; at most `max_missing` may be missing.
    pub(crate) async fn after(
        &self,
        room: &str,
        from: &Position,
        limit: usize,
        max_missing: u64,
    ) -> Result<After, HistoryError> {
        let found = match self {
            Self::Sqlite(store) => store.after(room, from, limit, max_missing).await?,
            Self::Memory(store) => store.after(room, from, limit, max_missing),
            Self::Redis(store) => store.after(room, from, limit, max_missing).await?,
        };
        Ok(found.judge(from, max_missing))
    }

    /// Takes (and forgets) the conversations with private messages `user` was
    /// sent while they had no connection.
    pub(crate) async fn take_pending(&self, user: &str) -> Result<Vec<Pending>, HistoryError> {
        match self {
            Self::Sqlite(store) => store.take_pending(user).await,
            Self::Memory(store) => Ok(store.take_pending(user)),
            Self::Redis(store) => store.take_pending(user).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(offset: u64) -> ChatMessage {
        ChatMessage {
            id: Some(offset.to_string()),
            room: "r".into(),
            user: "U".into(),
            user_id: Some("u".into()),
            text: String::new(),
            ts: 0,
            kind: MessageKind::Chat,
            offset: Some(offset),
            epoch: Some("e".into()),
            to: None,
        }
    }

    fn at(offset: u64, epoch: &str) -> Position {
        Position {
            offset,
            epoch: Some(epoch.into()),
        }
    }

    fn head(offset: u64) -> Head {
        Head {
            epoch: Some("e".into()),
            offset,
        }
    }

    fn judged(newest: u64, messages: Vec<ChatMessage>, from: Position) -> After {
        Found {
            head: head(newest),
            messages,
        }
        .judge(&from, 100)
    }

    fn lost(reason: LostReason, newest: u64) -> After {
        After::Lost {
            reason,
            head: head(newest),
        }
    }

    #[test]
    fn a_recovery_is_exact_or_says_why_not() {
        let found = judged(5, vec![chat(4), chat(5)], at(3, "e"));
        assert!(
            matches!(found, After::Found { ref messages, has_more: false, .. } if messages.len() == 2)
        );
        // A page of a longer gap: has_more.
        assert!(matches!(
            judged(5, vec![chat(2), chat(3)], at(1, "e")),
            After::Found { has_more: true, .. }
        ));
        // Nothing missed.
        assert!(
            matches!(judged(5, vec![], at(5, "e")), After::Found { ref messages, .. } if messages.is_empty())
        );
        // The oldest kept message is not the next one: trimmed, never a partial replay.
        assert_eq!(
            judged(5, vec![chat(4), chat(5)], at(2, "e")),
            lost(LostReason::Trimmed, 5)
        );
        assert_eq!(
            judged(5, vec![chat(3), chat(5)], at(2, "e")),
            lost(LostReason::Trimmed, 5)
        );
        assert_eq!(judged(5, vec![], at(2, "e")), lost(LostReason::Trimmed, 5));
        // Another epoch, or ahead of the history.
        assert_eq!(
            judged(5, vec![chat(4)], at(3, "f")),
            lost(LostReason::Epoch, 5)
        );
        assert_eq!(judged(5, vec![], at(9, "e")), lost(LostReason::Epoch, 5));
        // Offset 0 matches any epoch.
        let from_start = Position {
            offset: 0,
            epoch: None,
        };
        assert!(matches!(
            judged(1, vec![chat(1)], from_start.clone()),
            After::Found { .. }
        ));
        // Too many.
        assert_eq!(
            Found {
                head: head(500),
                messages: vec![]
            }
            .judge(&from_start, 100),
            lost(LostReason::TooMany, 500)
        );
    }

    #[test]
    fn conversations_are_one_per_pair_and_never_a_room() {
        assert_eq!(conversation("bob", "ada"), conversation("ada", "bob"));
        assert_eq!(
            conversation_users(&conversation("b:o", "a")),
            Some(("a", "b:o"))
        );
        assert_eq!(
            conversation_users(&conversation("ab", "c")),
            Some(("ab", "c"))
        );
        assert_ne!(conversation("a", "bc"), conversation("ab", "c"));
        assert_eq!(conversation_users("general"), None);
        assert_eq!(conversation_users("@9:ab"), None);
    }
}
