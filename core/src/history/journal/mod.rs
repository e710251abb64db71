//! The outage journal of a cluster node: the messages it accepted while Redis
//! was unreachable, oldest first, until they are written to Redis.
//!
//! Its own store, never the node's history: an SQLite file of its own
//! (`cluster.journal_path`, durable: a node killed during an outage writes it to
//! Redis when it starts again) when `history.storage` is `"sqlite"`, else process
//! memory (lost when the process dies). Entries are ordered by a sequence number,
//! so taking the oldest and dropping what was written are linear in the batch, not
//! in the journal. It is bounded in messages and in bytes
//! (`cluster.journal_max_messages`, `cluster.journal_max_bytes`): a message that
//! would pass either bound is refused (`unavailable`) rather than risk the
//! process's memory or the disk.

mod memory;
mod sqlite;

use parking_lot::Mutex;

use self::memory::MemoryJournal;
use self::sqlite::SqliteJournal;
use super::{HistoryError, NewMessage};
use crate::config::{Config, HistoryStorage};

/// Bytes counted per journaled message besides its strings (ids, time, the
/// store's own bookkeeping).
const ENTRY_OVERHEAD: u64 = 96;

/// A journaled message and its place in the journal.
#[derive(Debug, Clone)]
pub(crate) struct Journaled {
    /// Grows with every append; never reused within one journal file.
    pub seq: i64,
    /// The message as accepted (`sender` is not kept).
    pub message: NewMessage,
}

/// What one message counts against `cluster.journal_max_bytes`.
pub(crate) fn entry_bytes(message: &NewMessage) -> u64 {
    [
        message.room.len(),
        message.user.id.len(),
        message.user.name.len(),
        message.text.len(),
        message.key.len(),
        message
            .to
            .as_ref()
            .map_or(0, |to| to.id.len() + to.name.len()),
    ]
    .iter()
    .map(|len| *len as u64)
    .sum::<u64>()
        + ENTRY_OVERHEAD
}

/// Messages and bytes held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Usage {
    messages: u64,
    bytes: u64,
}

enum Store {
    Sqlite(SqliteJournal),
    Memory(MemoryJournal),
}

pub(crate) struct Journal {
    store: Store,
    max_messages: u64,
    max_bytes: u64,
    /// Counted here, so that the bounds are checked without asking the store.
    usage: Mutex<Usage>,
}

impl Journal {
    /// The journal the configuration asks for; an SQLite journal keeps what an
    /// earlier run of this node left in it.
    pub(crate) fn open(config: &Config) -> Result<Self, HistoryError> {
        let (store, messages, bytes) = match config.history.storage {
            HistoryStorage::Sqlite => {
                let (store, messages, bytes) = SqliteJournal::open(&config.cluster.journal_path)?;
                (Store::Sqlite(store), messages, bytes)
            }
            HistoryStorage::Memory => (Store::Memory(MemoryJournal::default()), 0, 0),
        };
        Ok(Self {
            store,
            max_messages: config.cluster.journal_max_messages,
            max_bytes: config.cluster.journal_max_bytes,
            usage: Mutex::new(Usage { messages, bytes }),
        })
    }

    /// A memory journal with these bounds (tests).
    #[cfg(test)]
    pub(crate) fn in_memory(max_messages: u64, max_bytes: u64) -> Self {
        Self {
            store: Store::Memory(MemoryJournal::default()),
            max_messages,
            max_bytes,
            usage: Mutex::default(),
        }
    }

    /// Messages held.
    pub(crate) fn pending(&self) -> u64 {
        self.usage.lock().messages
    }

    /// Whether `message` fits now (nothing is reserved: a concurrent append may
    /// still take the room first).
    pub(crate) fn admits(&self, message: &NewMessage) -> bool {
        let usage = self.usage.lock();
        usage.messages < self.max_messages && usage.bytes + entry_bytes(message) <= self.max_bytes
    }

    /// Stores a batch, all or nothing; refused with
    /// [`HistoryError::Unavailable`] when it would pass a bound.
    pub(crate) async fn append(&self, batch: &[NewMessage]) -> Result<(), HistoryError> {
        let added = Usage {
            messages: batch.len() as u64,
            bytes: batch.iter().map(entry_bytes).sum(),
        };
        {
            // Reserved before storing, so that concurrent appends cannot both pass.
            let mut usage = self.usage.lock();
            if usage.messages + added.messages > self.max_messages
                || usage.bytes + added.bytes > self.max_bytes
            {
                return Err(HistoryError::Unavailable(
                    "Redis is unreachable and the outage journal is full".into(),
                ));
            }
            usage.messages += added.messages;
            usage.bytes += added.bytes;
        }
        let stored = match &self.store {
            Store::Sqlite(store) => store.append(batch.to_vec()).await,
            Store::Memory(store) => {
                store.append(batch);
                Ok(())
            }
        };
        if stored.is_err() {
            self.release(added);
        }
        stored
    }

    /// At most `limit` of the oldest messages, oldest first.
    pub(crate) async fn oldest(&self, limit: usize) -> Result<Vec<Journaled>, HistoryError> {
        match &self.store {
            Store::Sqlite(store) => store.oldest(limit).await,
            Store::Memory(store) => Ok(store.oldest(limit)),
        }
    }

    /// Drops `written`, a batch [`Journal::oldest`] returned (so everything up to
    /// its last entry).
    pub(crate) async fn remove(&self, written: &[Journaled]) -> Result<(), HistoryError> {
        let Some(last) = written.last() else {
            return Ok(());
        };
        match &self.store {
            Store::Sqlite(store) => store.remove_through(last.seq).await?,
            Store::Memory(store) => store.remove_through(last.seq),
        }
        self.release(Usage {
            messages: written.len() as u64,
            bytes: written
                .iter()
                .map(|entry| entry_bytes(&entry.message))
                .sum(),
        });
        Ok(())
    }

    fn release(&self, freed: Usage) {
        let mut usage = self.usage.lock();
        usage.messages = usage.messages.saturating_sub(freed.messages);
        usage.bytes = usage.bytes.saturating_sub(freed.bytes);
    }

    pub(crate) async fn close(&self) {
        if let Store::Sqlite(store) = &self.store {
            store.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::User;

    pub(super) fn message(room: &str, text: &str) -> NewMessage {
        NewMessage {
            room: room.into(),
            user: User {
                id: "u".into(),
                name: "U".into(),
            },
            text: text.into(),
            ts: 1,
            key: format!("k-{text}").into(),
            sender: None,
            to: None,
            pending: false,
        }
    }

    fn texts(entries: &[Journaled]) -> Vec<&str> {
        entries.iter().map(|e| e.message.text.as_str()).collect()
    }

    #[tokio::test]
    async fn oldest_first_across_rooms_and_removed_in_batches() {
        let journal = Journal::in_memory(100, 1 << 20);
        journal
            .append(&[message("a", "1"), message("b", "2")])
            .await
            .unwrap();
        journal.append(&[message("a", "3")]).await.unwrap();
        assert_eq!(journal.pending(), 3);
        let first = journal.oldest(2).await.unwrap();
        assert_eq!(texts(&first), ["1", "2"]);
        journal.remove(&first).await.unwrap();
        assert_eq!(journal.pending(), 1);
        assert_eq!(texts(&journal.oldest(10).await.unwrap()), ["3"]);
    }

    #[tokio::test]
    async fn bounded_in_messages_and_in_bytes() {
        let by_count = Journal::in_memory(2, 1 << 20);
        by_count.append(&[message("r", "1")]).await.unwrap();
        assert!(matches!(
            by_count
                .append(&[message("r", "2"), message("r", "3")])
                .await,
            Err(HistoryError::Unavailable(_))
        ));
        assert_eq!(
            by_count.pending(),
            1,
            "a refused batch is not stored at all"
        );

        let one = entry_bytes(&message("r", &"x".repeat(1000)));
        let by_bytes = Journal::in_memory(100, one * 2);
        for _ in 0..2 {
            by_bytes
                .append(&[message("r", &"x".repeat(1000))])
                .await
                .unwrap();
        }
        assert!(matches!(
            by_bytes.append(&[message("r", "y")]).await,
            Err(HistoryError::Unavailable(_))
        ));
        let written = by_bytes.oldest(1).await.unwrap();
        assert!(!by_bytes.admits(&message("r", "y")));
        by_bytes.remove(&written).await.unwrap();
        assert!(by_bytes.admits(&message("r", "y")));
        by_bytes.append(&[message("r", "y")]).await.unwrap();
    }

    /// Replay takes the oldest batch and drops it, again and again: each round
    /// must cost the batch, not the journal. Counted, not timed: the rounds must
    /// visit each entry once (a store that scans or sorts everything per round
    /// visits n²/batch).
    #[tokio::test]
    async fn replay_is_linear() {
        const N: usize = 20_000;
        let journal = Journal::in_memory(N as u64, u64::MAX);
        let batch: Vec<NewMessage> = (0..N)
            .map(|i| message(&format!("room{}", i % 20), &i.to_string()))
            .collect();
        journal.append(&batch).await.unwrap();
        let Store::Memory(store) = &journal.store else {
            unreachable!()
        };
        let mut seen = 0;
        loop {
            let oldest = journal.oldest(256).await.unwrap();
            if oldest.is_empty() {
                break;
            }
            assert_eq!(oldest[0].message.text, seen.to_string(), "oldest first");
            seen += oldest.len();
            journal.remove(&oldest).await.unwrap();
        }
        assert_eq!(seen, N);
        assert!(
            store.visits() <= 2 * N as u64,
            "{} entries visited to replay {N}",
            store.visits()
        );
    }
}

/// The figure in bench/results/HARDENING.md: replaying 20,000 journaled
/// messages, as the journal does it and as it was done before (the memory
/// history's `oldest`: every room's log cloned and sorted per batch of 256, then
/// `retain` over every room). Run with
/// `cargo test -p palaver-core --release --lib replay_timing -- --ignored --nocapture`.
#[cfg(test)]
mod timing {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Instant;

    use super::tests::message;
    use super::*;

    const N: usize = 20_000;
    const BATCH: usize = 256;

    fn messages() -> Vec<NewMessage> {
        (0..N)
            .map(|i| message(&format!("room{}", i % 20), &format!("message {i}")))
            .collect()
    }

    #[tokio::test]
    #[ignore = "a timing, not a check"]
    async fn replay_timing() {
        let mut rooms: HashMap<Arc<str>, Vec<(i64, NewMessage)>> = HashMap::new();
        for (id, m) in messages().into_iter().enumerate() {
            rooms
                .entry(m.room.clone())
                .or_default()
                .push((id as i64, m));
        }
        let started = Instant::now();
        loop {
            let mut all: Vec<(i64, NewMessage)> =
                rooms.values().flat_map(|log| log.iter().cloned()).collect();
            all.sort_by_key(|(id, _)| *id);
            all.truncate(BATCH);
            let Some((last, _)) = all.last() else { break };
            let last = *last;
            for log in rooms.values_mut() {
                log.retain(|(id, _)| *id > last);
            }
            rooms.retain(|_, log| !log.is_empty());
        }
        let before = started.elapsed();

        let journal = Journal::in_memory(N as u64, u64::MAX);
        journal.append(&messages()).await.unwrap();
        let started = Instant::now();
        loop {
            let oldest = journal.oldest(BATCH).await.unwrap();
            if oldest.is_empty() {
                break;
            }
            journal.remove(&oldest).await.unwrap();
        }
        let after = started.elapsed();
        println!("replay of {N} journaled messages: before {before:?}, after {after:?}");
    }
}
