//! History in an SQLite file (WAL): one writer thread that commits whole batches,
//! one read-only connection for pages.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::{
    integer_cursor, kind_of, new_epoch, precheck, recipient, Found, Head, HistoryError, NewMessage,
    Page, Pending,
};
use crate::config::{HistoryConfig, SqliteSync};
use crate::protocol::{ChatMessage, Position};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    room      TEXT    NOT NULL,
    user_id   TEXT    NOT NULL,
    user_name TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    ts        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);
";

/// Messages looked at (and at most deleted) by one prune.
pub(crate) const PRUNE_BATCH: usize = 10_000;

/// Added after the first schema: the message key, kept with each message.
const ADD_KEY_COLUMN: &str = "ALTER TABLE messages ADD COLUMN msg_key TEXT";

/// Added with recovery: each message's offset in its room, the recipient of a
/// private message, each room's epoch and newest offset, and the conversations
/// waiting for offline users. A file from before gets offsets numbered in id
/// order and a new epoch per room (`OFFSETS_FOR_OLD_MESSAGES`).
const ADD_OFFSETS: &str = "
ALTER TABLE messages ADD COLUMN room_offset INTEGER;
ALTER TABLE messages ADD COLUMN to_id TEXT;
ALTER TABLE messages ADD COLUMN to_name TEXT;
";
const OFFSETS_FOR_OLD_MESSAGES: &str = "
UPDATE messages SET room_offset = numbered.n
  FROM (SELECT id, row_number() OVER (PARTITION BY room ORDER BY id) AS n FROM messages) AS numbered
  WHERE messages.id = numbered.id;
INSERT OR IGNORE INTO rooms (room, epoch, last_offset)
  SELECT room, lower(hex(randomblob(8))), max(room_offset) FROM messages GROUP BY room;
";
const RECOVERY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rooms (
    room        TEXT PRIMARY KEY,
    epoch       TEXT    NOT NULL,
    last_offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    user_id      TEXT    NOT NULL,
    conversation TEXT    NOT NULL,
    from_offset  INTEGER NOT NULL,
    epoch        TEXT    NOT NULL,
    PRIMARY KEY (user_id, conversation)
);
";
const OFFSET_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS messages_by_room_offset ON messages (room, room_offset);";

enum Job {
    Append(
        Vec<NewMessage>,
        oneshot::Sender<Result<Vec<ChatMessage>, HistoryError>>,
    ),
    /// Deletes a batch of the oldest messages older than the `ts` given.
    Prune(i64, oneshot::Sender<Result<usize, HistoryError>>),
    /// Takes a user's pending conversations.
    TakePending(String, oneshot::Sender<Result<Vec<Pending>, HistoryError>>),
    Close(oneshot::Sender<()>),
}

pub(crate) struct SqliteHistory {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    reader: Arc<Mutex<Option<Connection>>>,
}

impl SqliteHistory {
    pub(crate) fn open(config: &HistoryConfig) -> Result<Self, HistoryError> {
        let open_error = |e: rusqlite::Error| HistoryError::Open {
            path: config.path.display().to_string(),
            reason: e.to_string(),
        };
        let mut writer = Connection::open(&config.path).map_err(open_error)?;
        let synchronous = match config.synchronous {
            SqliteSync::Normal => "NORMAL",
            SqliteSync::Full => "FULL",
        };
        writer
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
                 PRAGMA busy_timeout = 5000; {SCHEMA}"
            ))
            .map_err(open_error)?;
        if !has_column(&writer, "msg_key").map_err(open_error)? {
            writer.execute_batch(ADD_KEY_COLUMN).map_err(open_error)?;
        }
        writer.execute_batch(RECOVERY_SCHEMA).map_err(open_error)?;
        if !has_column(&writer, "room_offset").map_err(open_error)? {
            let tx = writer.transaction().map_err(open_error)?;
            tx.execute_batch(ADD_OFFSETS).map_err(open_error)?;
            tx.execute_batch(OFFSETS_FOR_OLD_MESSAGES)
                .map_err(open_error)?;
            tx.commit().map_err(open_error)?;
        }
        writer.execute_batch(OFFSET_INDEX).map_err(open_error)?;
        let reader = open_reader(&config.path).map_err(open_error)?;

        let (jobs, queue) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("palaver-history".into())
            .spawn(move || write_loop(writer, queue))
            .map_err(|e| HistoryError::Open {
                path: config.path.display().to_string(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
            writer: Mutex::new(Some(writer)),
            reader: Arc::new(Mutex::new(Some(reader))),
        })
    }

    pub(crate) async fn append(
        &self,
        batch: Vec<NewMessage>,
    ) -> Result<Vec<ChatMessage>, HistoryError> {
        let (done, result) = oneshot::channel();
        {
            let jobs = self.jobs.lock();
            let jobs = jobs.as_ref().ok_or(HistoryError::Closed)?;
            jobs.send(Job::Append(batch, done))
                .map_err(|_| HistoryError::Closed)?;
        }
        result.await.map_err(|_| HistoryError::Closed)?
    }

    pub(crate) async fn page(
        &self,
        room: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, HistoryError> {
        let before = integer_cursor(before)?.unwrap_or(i64::MAX);
        let reader = self.reader.clone();
        let room = room.to_string();
        tokio::task::spawn_blocking(move || {
            let reader = reader.lock();
            let reader = reader.as_ref().ok_or(HistoryError::Closed)?;
            read_page(reader, &room, before, limit)
                .map_err(|e| HistoryError::Storage(e.to_string()))
        })
        .await
        .map_err(|e| HistoryError::Storage(format!("history reader failed: {e}")))?
    }

    pub(crate) async fn after(
        &self,
        room: &str,
        from: &Position,
        limit: usize,
        max_missing: u64,
    ) -> Result<Found, HistoryError> {
        let reader = self.reader.clone();
        let room = room.to_string();
        let from = from.clone();
        tokio::task::spawn_blocking(move || {
            let reader = reader.lock();
            let reader = reader.as_ref().ok_or(HistoryError::Closed)?;
            read_after(reader, &room, &from, limit, max_missing)
                .map_err(|e| HistoryError::Storage(e.to_string()))
        })
        .await
        .map_err(|e| HistoryError::Storage(format!("history reader failed: {e}")))?
    }

    /// Every connect asks; almost always nothing waits, which the reader tells
    /// without a turn of the writer (which may be busy with a batch).
    pub(crate) async fn take_pending(&self, user: &str) -> Result<Vec<Pending>, HistoryError> {
        let reader = self.reader.clone();
        let owner = user.to_string();
        let waiting = tokio::task::spawn_blocking(move || {
            let reader = reader.lock();
            let reader = reader.as_ref().ok_or(HistoryError::Closed)?;
            reader
                .prepare_cached("SELECT 1 FROM pending WHERE user_id = ?1 LIMIT 1")
                .and_then(|mut select| select.exists(params![owner]))
                .map_err(|e| HistoryError::Storage(e.to_string()))
        })
        .await
        .map_err(|e| HistoryError::Storage(format!("history reader failed: {e}")))??;
        if !waiting {
            return Ok(Vec::new());
        }
        let (done, result) = oneshot::channel();
        {
            let jobs = self.jobs.lock();
            let jobs = jobs.as_ref().ok_or(HistoryError::Closed)?;
            jobs.send(Job::TakePending(user.to_string(), done))
                .map_err(|_| HistoryError::Closed)?;
        }
        result.await.map_err(|_| HistoryError::Closed)?
    }

    /// Deletes up to [`PRUNE_BATCH`] of the oldest messages whose `ts` is before
    /// `cutoff_ms`; returns how many. One batch per call, so that appends queued
    /// meanwhile wait for one batch only.
    pub(crate) async fn prune(&self, cutoff_ms: i64) -> Result<usize, HistoryError> {
        let (done, result) = oneshot::channel();
        {
            let jobs = self.jobs.lock();
            let jobs = jobs.as_ref().ok_or(HistoryError::Closed)?;
            jobs.send(Job::Prune(cutoff_ms, done))
                .map_err(|_| HistoryError::Closed)?;
        }
        result.await.map_err(|_| HistoryError::Closed)?
    }

    pub(crate) async fn close(&self) {
        // The reader goes first, so that the writer's connection is the last one
        // and SQLite removes the -wal and -shm files with it.
        self.reader.lock().take();
        let jobs = self.jobs.lock().take();
        if let Some(jobs) = jobs {
            let (done, closed) = oneshot::channel();
            if jobs.send(Job::Close(done)).is_ok() {
                let _ = closed.await;
            }
        }
        let writer = self.writer.lock().take();
        if let Some(writer) = writer {
            // The thread has answered Close, so joining returns at once.
            let _ = writer.join();
        }
    }
}

fn has_column(db: &Connection, column: &str) -> rusqlite::Result<bool> {
    let mut columns = db.prepare("SELECT name FROM pragma_table_info('messages')")?;
    let names = columns.query_map([], |row| row.get::<_, String>(0))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let reader = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    reader.execute_batch("PRAGMA busy_timeout = 5000;")?;
    Ok(reader)
}

/// Each room's epoch and newest offset, as the writer knows them: it is the
/// only writer, so what it read or wrote last is current.
type Heads = HashMap<Arc<str>, (Arc<str>, u64)>;

/// Rooms whose heads the writer remembers; past it it starts over (the file has
/// them all), so that many rooms and conversations cannot grow it without bound.
const MAX_CACHED_HEADS: usize = 65_536;

fn write_loop(mut db: Connection, queue: mpsc::Receiver<Job>) {
    let mut heads = Heads::new();
    while let Ok(job) = queue.recv() {
        match job {
            Job::Append(batch, done) => {
                let result = insert_batch(&mut db, &mut heads, batch)
                    .map_err(|e| HistoryError::Storage(e.to_string()));
                let _ = done.send(result);
            }
            Job::TakePending(user, done) => {
                let result =
                    take_pending(&mut db, &user).map_err(|e| HistoryError::Storage(e.to_string()));
                let _ = done.send(result);
            }
            Job::Prune(cutoff_ms, done) => {
                let result =
                    prune_batch(&db, cutoff_ms).map_err(|e| HistoryError::Storage(e.to_string()));
                let _ = done.send(result);
            }
            Job::Close(done) => {
                if let Err(e) = db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                    tracing::warn!("history checkpoint failed: {e}");
                }
                drop(db);
                let _ = done.send(());
                return;
            }
        }
    }
}

/// Deletes the oldest messages older than `cutoff_ms`, among the oldest
/// [`PRUNE_BATCH`] by id: ids follow acceptance, so the old ones come first, and
/// looking at a bounded prefix keeps a prune that finds nothing cheap.
fn prune_batch(db: &Connection, cutoff_ms: i64) -> rusqlite::Result<usize> {
    let last_old: Option<i64> = db.query_row(
        "SELECT max(id) FROM (SELECT id, ts FROM messages ORDER BY id LIMIT ?1) WHERE ts < ?2",
        params![PRUNE_BATCH as i64, cutoff_ms],
        |row| row.get(0),
    )?;
    match last_old {
        Some(id) => db.execute(
            "DELETE FROM messages WHERE id <= ?1 AND ts < ?2",
            params![id, cutoff_ms],
        ),
        None => Ok(0),
    }
}

/// One transaction for the whole batch: all stored, or none. Offsets come from
/// `heads`, which is changed only once the transaction has committed.
fn insert_batch(
    db: &mut Connection,
    heads: &mut Heads,
    batch: Vec<NewMessage>,
) -> rusqlite::Result<Vec<ChatMessage>> {
    // Immediate: the write lock first, waiting for it (busy_timeout). A deferred
    // transaction that read a room's head first could not wait for the lock
    // without risking a deadlock, so SQLite would fail it at once.
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut stored = Vec::with_capacity(batch.len());
    let mut changed = Heads::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (room, user_id, user_name, text, ts, msg_key, room_offset, \
             to_id, to_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut pending = tx.prepare_cached(
            "INSERT OR IGNORE INTO pending (user_id, conversation, from_offset, epoch) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for message in batch {
            let (epoch, last) = match changed
                .get(&message.room)
                .or_else(|| heads.get(&message.room))
            {
                Some(head) => head.clone(),
                None => read_head(&tx, &message.room)?,
            };
            let offset = last + 1;
            changed.insert(message.room.clone(), (epoch.clone(), offset));
            insert.execute(params![
                &*message.room,
                &*message.user.id,
                &*message.user.name,
                &message.text,
                message.ts,
                &*message.key,
                offset as i64,
                message.to.as_ref().map(|to| &*to.id),
                message.to.as_ref().map(|to| &*to.name),
            ])?;
            if let (true, Some(to)) = (message.pending, &message.to) {
                pending.execute(params![&*to.id, &*message.room, offset as i64 - 1, &*epoch])?;
            }
            let id = tx.last_insert_rowid();
            stored.push(message.stored(id.to_string(), Some((offset, epoch))));
        }
        let mut write_head = tx.prepare_cached(
            "INSERT INTO rooms (room, epoch, last_offset) VALUES (?1, ?2, ?3) \
             ON CONFLICT (room) DO UPDATE SET last_offset = excluded.last_offset",
        )?;
        for (room, (epoch, offset)) in &changed {
            write_head.execute(params![&**room, &**epoch, *offset as i64])?;
        }
    }
    tx.commit()?;
    if heads.len() + changed.len() > MAX_CACHED_HEADS {
        heads.clear();
    }
    heads.extend(changed);
    Ok(stored)
}

/// A room's epoch and newest offset from the file, or a new epoch for a room
/// never written to.
fn read_head(db: &Connection, room: &str) -> rusqlite::Result<(Arc<str>, u64)> {
    let head = read_head_of(db, room)?;
    Ok((head.epoch.unwrap_or_else(new_epoch), head.offset))
}

fn read_head_of(db: &Connection, room: &str) -> rusqlite::Result<Head> {
    let head = db.query_row(
        "SELECT epoch, last_offset FROM rooms WHERE room = ?1",
        params![room],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
    );
    match head {
        Ok((epoch, last)) => Ok(Head {
            epoch: Some(Arc::from(epoch)),
            offset: last.max(0) as u64,
        }),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(Head::default()),
        Err(e) => Err(e),
    }
}

fn take_pending(db: &mut Connection, user: &str) -> rusqlite::Result<Vec<Pending>> {
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let pending = {
        let mut select = tx.prepare_cached(
            "SELECT conversation, from_offset, epoch FROM pending WHERE user_id = ?1",
        )?;
        let rows = select.query_map(params![user], |row| {
            Ok(Pending {
                conversation: row.get(0)?,
                from: Position {
                    offset: row.get::<_, i64>(1)?.max(0) as u64,
                    epoch: Some(row.get(2)?),
                },
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.execute("DELETE FROM pending WHERE user_id = ?1", params![user])?;
    tx.commit()?;
    Ok(pending)
}

/// The columns every read selects, in [`message_of_row`]'s order.
const MESSAGE_COLUMNS: &str = "id, user_id, user_name, text, ts, room_offset, to_id, to_name";

fn message_of_row(
    row: &rusqlite::Row<'_>,
    room: &Arc<str>,
    epoch: &Option<Arc<str>>,
) -> rusqlite::Result<ChatMessage> {
    let to = recipient(row.get(6)?, row.get(7)?);
    Ok(ChatMessage {
        id: Some(row.get::<_, i64>(0)?.to_string()),
        room: room.clone(),
        user_id: Some(Arc::from(row.get::<_, String>(1)?)),
        user: Arc::from(row.get::<_, String>(2)?),
        text: row.get(3)?,
        ts: row.get(4)?,
        kind: kind_of(&to),
        offset: row.get::<_, Option<i64>>(5)?.map(|o| o.max(0) as u64),
        epoch: epoch.clone(),
        to,
    })
}

fn read_after(
    db: &Connection,
    room: &str,
    from: &Position,
    limit: usize,
    max_missing: u64,
) -> rusqlite::Result<Found> {
    in_one_read(db, |db| read_after_in(db, room, from, limit, max_missing))
}

fn read_after_in(
    db: &Connection,
    room: &str,
    from: &Position,
    limit: usize,
    max_missing: u64,
) -> rusqlite::Result<Found> {
    let head = read_head_of(db, room)?;
    if precheck(&head, from, max_missing).is_some() {
        return Ok(Found {
            head,
            messages: Vec::new(),
        });
    }
    let mut select = db.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages \
         WHERE room = ?1 AND room_offset > ?2 ORDER BY room_offset LIMIT ?3"
    ))?;
    let room_name: Arc<str> = Arc::from(room);
    let messages = select
        .query_map(params![room, from.offset as i64, limit as i64], |row| {
            message_of_row(row, &room_name, &head.epoch)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Found { head, messages })
}

fn read_page(db: &Connection, room: &str, before: i64, limit: usize) -> rusqlite::Result<Page> {
    in_one_read(db, |db| read_page_in(db, room, before, limit))
}

/// Runs `read` in one read transaction, so that a room's head and its messages
/// agree.
fn in_one_read<T>(
    db: &Connection,
    read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    db.execute_batch("BEGIN")?;
    let result = read(db);
    let ended = db.execute_batch("COMMIT");
    let value = result?;
    ended?;
    Ok(value)
}

fn read_page_in(db: &Connection, room: &str, before: i64, limit: usize) -> rusqlite::Result<Page> {
    let head = read_head_of(db, room)?;
    let mut select = db.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages \
         WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
    ))?;
    let room_name: Arc<str> = Arc::from(room);
    // One row more than asked tells whether older messages exist.
    let messages = select
        .query_map(params![room, before, limit as i64 + 1], |row| {
            message_of_row(row, &room_name, &head.epoch)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_newest_first(messages, limit, head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::User;

    fn message(room: &str, text: &str) -> NewMessage {
        NewMessage {
            room: room.into(),
            user: User {
                id: "u1".into(),
                name: "Ada".into(),
            },
            text: text.into(),
            ts: 42,
            key: text.into(),
            sender: None,
            to: None,
            pending: false,
        }
    }

    fn config(dir: &tempfile::TempDir) -> HistoryConfig {
        HistoryConfig {
            path: dir.path().join("history.db"),
            ..HistoryConfig::default()
        }
    }

    #[tokio::test]
    async fn stores_pages_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let history = SqliteHistory::open(&config(&dir)).unwrap();
        let stored = history
            .append((0..5).map(|i| message("r", &format!("m{i}"))).collect())
            .await
            .unwrap();
        history.append(vec![message("other", "x")]).await.unwrap();
        assert_eq!(stored.len(), 5);
        let page = history.page("r", None, 2).await.unwrap();
        let texts: Vec<_> = page.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["m3", "m4"]);
        assert!(page.has_more);
        let before = page.messages[0].id.clone().unwrap();
        let older = history.page("r", Some(&before), 10).await.unwrap();
        assert_eq!(older.messages.len(), 3);
        assert!(!older.has_more);
        history.close().await;
        assert!(
            !dir.path().join("history.db-wal").exists(),
            "closing removes the WAL file"
        );
        assert!(matches!(
            history.append(vec![message("r", "late")]).await,
            Err(HistoryError::Closed)
        ));

        let reopened = SqliteHistory::open(&config(&dir)).unwrap();
        let page = reopened.page("r", None, 50).await.unwrap();
        assert_eq!(page.messages.len(), 5);
        assert_eq!(page.messages[4].user_id.as_deref(), Some("u1"));
        let next = reopened.append(vec![message("r", "after")]).await.unwrap();
        let last: i64 = next[0].id.as_deref().unwrap().parse().unwrap();
        assert!(last > 6, "ids are never reused");
        reopened.close().await;
    }

    #[tokio::test]
    async fn prunes_messages_older_than_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let history = SqliteHistory::open(&config(&dir)).unwrap();
        let at = |room: &str, text: &str, ts: i64| NewMessage {
            ts,
            ..message(room, text)
        };
        history
            .append(vec![at("a", "old", 100), at("b", "old too", 150)])
            .await
            .unwrap();
        history
            .append(vec![at("a", "new", 300), at("b", "newer", 400)])
            .await
            .unwrap();
        assert_eq!(history.prune(50).await.unwrap(), 0);
        assert_eq!(history.prune(200).await.unwrap(), 2);
        assert_eq!(history.prune(200).await.unwrap(), 0);
        for (room, text) in [("a", "new"), ("b", "newer")] {
            let page = history.page(room, None, 10).await.unwrap();
            let texts: Vec<_> = page.messages.iter().map(|m| m.text.as_str()).collect();
            assert_eq!(texts, [text], "room {room}");
        }
        history.close().await;
    }

    #[test]
    fn unopenable_path_is_an_error() {
        let config = HistoryConfig {
            path: "/nonexistent-dir/for/sure/history.db".into(),
            ..HistoryConfig::default()
        };
        assert!(matches!(
            SqliteHistory::open(&config),
            Err(HistoryError::Open { .. })
        ));
    }

    #[tokio::test]
    async fn offsets_follow_each_room_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let history = SqliteHistory::open(&config(&dir)).unwrap();
        let stored = history
            .append(vec![
                message("a", "a1"),
                message("b", "b1"),
                message("a", "a2"),
            ])
            .await
            .unwrap();
        let offsets: Vec<_> = stored.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [Some(1), Some(1), Some(2)]);
        assert_ne!(stored[0].epoch, stored[1].epoch, "each room its own epoch");
        let epoch_a = stored[0].epoch.clone();
        history.close().await;

        let reopened = SqliteHistory::open(&config(&dir)).unwrap();
        let next = reopened.append(vec![message("a", "a3")]).await.unwrap();
        assert_eq!((next[0].offset, &next[0].epoch), (Some(3), &epoch_a));
        let from = Position {
            offset: 1,
            epoch: epoch_a.as_deref().map(str::to_string),
        };
        let found = reopened.after("a", &from, 10, 100).await.unwrap();
        let texts: Vec<_> = found.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["a2", "a3"]);
        assert_eq!(found.head.offset, 3);
        reopened.close().await;
    }

    #[tokio::test]
    async fn a_file_from_before_offsets_gets_them_in_id_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(SCHEMA).unwrap();
            old.execute_batch(ADD_KEY_COLUMN).unwrap();
            for (room, text) in [("a", "x"), ("b", "y"), ("a", "z")] {
                old.execute(
                    "INSERT INTO messages (room, user_id, user_name, text, ts, msg_key) \
                     VALUES (?1, 'u', 'U', ?2, 1, ?2)",
                    params![room, text],
                )
                .unwrap();
            }
        }
        let history = SqliteHistory::open(&config(&dir)).unwrap();
        let page = history.page("a", None, 10).await.unwrap();
        let offsets: Vec<_> = page
            .messages
            .iter()
            .map(|m| (m.text.as_str(), m.offset))
            .collect();
        assert_eq!(offsets, [("x", Some(1)), ("z", Some(2))]);
        assert_eq!(page.head.offset, 2);
        assert!(page.head.epoch.is_some());
        let next = history.append(vec![message("a", "w")]).await.unwrap();
        assert_eq!(next[0].offset, Some(3));
        history.close().await;
    }

    #[tokio::test]
    async fn pending_conversations_are_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let history = SqliteHistory::open(&config(&dir)).unwrap();
        assert!(history.take_pending("bob").await.unwrap().is_empty());
        let private = |text: &str| NewMessage {
            room: super::super::conversation("u1", "bob").into(),
            to: Some(User {
                id: "bob".into(),
                name: "bob".into(),
            }),
            pending: true,
            ..message("unused", text)
        };
        let stored = history
            .append(vec![private("one"), private("two")])
            .await
            .unwrap();
        let pending = history.take_pending("bob").await.unwrap();
        assert_eq!(pending.len(), 1, "one entry per conversation");
        assert_eq!(pending[0].from.offset, 0);
        assert_eq!(pending[0].from.epoch.as_deref(), stored[0].epoch.as_deref());
        let found = history
            .after(&pending[0].conversation, &pending[0].from, 10, 10)
            .await
            .unwrap();
        let texts: Vec<_> = found.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["one", "two"]);
        assert!(found.messages.iter().all(|m| m.to.is_some()));
        assert!(history.take_pending("bob").await.unwrap().is_empty());
        history.close().await;
    }
}
