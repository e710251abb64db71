//! The journal in an SQLite file of its own: one connection on one thread, which
//! holds the file's lock for as long as the node runs, so that two nodes can never
//! share a journal (the second one's start fails).
//!
//! Each append is one transaction with `synchronous = FULL`: a message is
//! acknowledged only once the journal is on disk.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use rusqlite::{params, Connection, ErrorCode};
use tokio::sync::oneshot;

use super::{entry_bytes, Journaled};
use crate::history::{recipient, HistoryError, NewMessage};
use crate::protocol::User;

/// `seq` orders the journal; `bytes` is what the entry counts against the bound,
/// kept so that a restarted node knows its usage without recounting.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    room      TEXT    NOT NULL,
    user_id   TEXT    NOT NULL,
    user_name TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    ts        INTEGER NOT NULL,
    msg_key   TEXT    NOT NULL,
    bytes     INTEGER NOT NULL
);
";

/// Added with private messages: a private message's recipient, and whether
/// they were offline when it was sent.
const ADD_RECIPIENT: &str = "
BEGIN IMMEDIATE;
ALTER TABLE journal ADD COLUMN to_id TEXT;
ALTER TABLE journal ADD COLUMN to_name TEXT;
ALTER TABLE journal ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
COMMIT;
";

type Reply<T> = oneshot::Sender<Result<T, HistoryError>>;

enum Job {
    Append(Vec<NewMessage>, Reply<()>),
    Oldest(usize, Reply<Vec<Journaled>>),
    RemoveThrough(i64, Reply<()>),
    Close(oneshot::Sender<()>),
}

pub(super) struct SqliteJournal {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl SqliteJournal {
    /// Opens (or creates) the file and locks it; returns the messages and bytes
    /// it holds from an earlier run.
    pub(super) fn open(path: &Path) -> Result<(Self, u64, u64), HistoryError> {
        let open_error = |reason: String| HistoryError::Open {
            path: path.display().to_string(),
            reason,
        };
        let db = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        let (messages, bytes) = lock_and_prepare(&db).map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => open_error(
                "the journal is in use by another process; \
                 each node needs a cluster.journal_path of its own"
                    .into(),
            ),
            _ => open_error(e.to_string()),
        })?;
        let (jobs, queue) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("palaver-journal".into())
            .spawn(move || work(db, queue))
            .map_err(|e| open_error(format!("cannot start the journal thread: {e}")))?;
        Ok((
            Self {
                jobs: Mutex::new(Some(jobs)),
                worker: Mutex::new(Some(worker)),
            },
            messages,
            bytes,
        ))
    }

    async fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, HistoryError> {
        let (done, result) = oneshot::channel();
        {
            let jobs = self.jobs.lock();
            let jobs = jobs.as_ref().ok_or(HistoryError::Closed)?;
            jobs.send(job(done)).map_err(|_| HistoryError::Closed)?;
        }
        result.await.map_err(|_| HistoryError::Closed)?
    }

    pub(super) async fn append(&self, batch: Vec<NewMessage>) -> Result<(), HistoryError> {
        self.ask(|done| Job::Append(batch, done)).await
    }

    pub(super) async fn oldest(&self, limit: usize) -> Result<Vec<Journaled>, HistoryError> {
        self.ask(|done| Job::Oldest(limit, done)).await
    }

    pub(super) async fn remove_through(&self, seq: i64) -> Result<(), HistoryError> {
        self.ask(|done| Job::RemoveThrough(seq, done)).await
    }

    pub(super) async fn close(&self) {
        let jobs = self.jobs.lock().take();
        if let Some(jobs) = jobs {
            let (done, closed) = oneshot::channel();
            if jobs.send(Job::Close(done)).is_ok() {
                let _ = closed.await;
            }
        }
        let worker = self.worker.lock().take();
        if let Some(worker) = worker {
            // The thread has answered Close, so joining returns at once.
            let _ = worker.join();
        }
    }
}

impl Drop for SqliteJournal {
    /// Without `close` (an engine that failed to start): the thread ends and the
    /// file's lock is released before this returns.
    fn drop(&mut self) {
        self.jobs.lock().take();
        if let Some(worker) = self.worker.lock().take() {
            let _ = worker.join();
        }
    }
}

/// Takes the file's lock for good (exclusive locking mode, and a write to take
/// it now rather than at the first outage) and creates the table.
fn lock_and_prepare(db: &Connection) -> rusqlite::Result<(u64, u64)> {
    db.execute_batch(
        "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = FULL; PRAGMA busy_timeout = 0;",
    )?;
    db.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))?;
    let has_recipient: bool = db.query_row(
        "SELECT count(*) FROM pragma_table_info('journal') WHERE name = 'to_id'",
        [],
        |row| Ok(row.get::<_, i64>(0)? > 0),
    )?;
    if !has_recipient {
        db.execute_batch(ADD_RECIPIENT)?;
    }
    db.query_row(
        "SELECT count(*), coalesce(sum(bytes), 0) FROM journal",
        [],
        |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
    )
}

fn work(mut db: Connection, queue: mpsc::Receiver<Job>) {
    let storage = |e: rusqlite::Error| HistoryError::Storage(format!("outage journal: {e}"));
    while let Ok(job) = queue.recv() {
        match job {
            Job::Append(batch, done) => {
                let _ = done.send(insert(&mut db, &batch).map_err(storage));
            }
            Job::Oldest(limit, done) => {
                let _ = done.send(read_oldest(&db, limit).map_err(storage));
            }
            Job::RemoveThrough(seq, done) => {
                let removed = db
                    .execute("DELETE FROM journal WHERE seq <= ?1", params![seq])
                    .map(|_| ());
                let _ = done.send(removed.map_err(storage));
            }
            Job::Close(done) => {
                if let Err(e) = db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                    tracing::warn!("outage journal checkpoint failed: {e}");
                }
                drop(db);
                let _ = done.send(());
                return;
            }
        }
    }
}

fn insert(db: &mut Connection, batch: &[NewMessage]) -> rusqlite::Result<()> {
    let tx = db.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO journal (room, user_id, user_name, text, ts, msg_key, bytes, to_id, \
             to_name, pending) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for message in batch {
            insert.execute(params![
                &*message.room,
                &*message.user.id,
                &*message.user.name,
                &message.text,
                message.ts,
                &*message.key,
                entry_bytes(message) as i64,
                message.to.as_ref().map(|to| &*to.id),
                message.to.as_ref().map(|to| &*to.name),
                message.pending,
            ])?;
        }
    }
    tx.commit()
}

fn read_oldest(db: &Connection, limit: usize) -> rusqlite::Result<Vec<Journaled>> {
    // The primary key orders the table: this reads `limit` rows, whatever the size.
    let mut select = db.prepare_cached(
        "SELECT seq, room, user_id, user_name, text, ts, msg_key, to_id, to_name, pending \
         FROM journal ORDER BY seq LIMIT ?1",
    )?;
    let rows = select.query_map(params![limit as i64], |row| {
        Ok(Journaled {
            seq: row.get(0)?,
            message: NewMessage {
                room: Arc::from(row.get::<_, String>(1)?),
                user: User {
                    id: Arc::from(row.get::<_, String>(2)?),
                    name: Arc::from(row.get::<_, String>(3)?),
                },
                text: row.get(4)?,
                ts: row.get(5)?,
                key: Arc::from(row.get::<_, String>(6)?),
                sender: None,
                to: recipient(row.get(7)?, row.get(8)?),
                pending: row.get(9)?,
            },
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::message;
    use super::*;

    #[tokio::test]
    async fn survives_a_restart_in_order_and_is_locked_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let (journal, messages, _) = SqliteJournal::open(&path).unwrap();
        assert_eq!(messages, 0);
        journal
            .append(vec![
                message("a", "1"),
                message("b", "2"),
                message("a", "3"),
            ])
            .await
            .unwrap();

        let second = SqliteJournal::open(&path);
        let Err(HistoryError::Open { reason, .. }) = second else {
            panic!("a second node opened the same journal");
        };
        assert!(reason.contains("journal_path"), "{reason}");

        let oldest = journal.oldest(2).await.unwrap();
        let texts: Vec<_> = oldest.iter().map(|e| e.message.text.as_str()).collect();
        assert_eq!(texts, ["1", "2"]);
        journal.remove_through(oldest[1].seq).await.unwrap();
        // Not closed: as after a kill, the file is all that is left.
        drop(journal);

        let (again, messages, bytes) = SqliteJournal::open(&path).unwrap();
        assert_eq!(messages, 1);
        assert_eq!(bytes, entry_bytes(&message("a", "3")));
        let left = again.oldest(10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].message.text, "3");
        assert_eq!(&*left[0].message.key, "k-3");
        again.close().await;
    }
}
