//! Moving a standalone SQLite history into a cluster's Redis: an explicit step
//! (`palaver-server --migrate-history-to-redis`, or
//! [`migrate_history_to_redis`]), never a side effect of starting a node.
//!
//! Each room is copied in one Redis transaction (all of its messages or none),
//! read back and compared, and counted. A room whose stream already holds
//! messages is left out (a second run, or a cluster already serving it): copying
//! behind live messages would put old messages after new ones. Only the newest
//! `cluster.history_max_per_room` messages of a room are copied, as Redis would
//! keep no more. The SQLite file is read, never changed: what becomes of it is
//! the operator's decision. Messages get new (stream) ids, so old cursors do not
//! carry over.

use std::path::Path;

use redis::streams::StreamRangeReply;
use rusqlite::{params, Connection, OpenFlags};

use crate::config::{Config, ConfigError, HistoryStorage};

/// Why a migration stopped. Rooms already copied stay copied (and are left
/// out by the next run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `cluster.redis_url` is not set, or `history.storage` is not `"sqlite"`.
    #[error("the migration needs cluster.redis_url and history.storage \"sqlite\"")]
    NotConfigured,
    /// The history file does not exist or cannot be read.
    #[error("cannot read the history file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Redis could not be reached or refused a command.
    #[error("Redis: {0}")]
    Redis(String),
    /// What Redis holds after the copy is not what was copied.
    #[error("room {room:?} did not verify: {reason}")]
    Verify {
        /// The room.
        room: String,
        /// The difference.
        reason: String,
    },
}

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// Rooms copied (and verified).
    pub rooms_copied: usize,
    /// Messages copied (and verified).
    pub messages_copied: u64,
    /// Older messages not copied, because their room held more than
    /// `cluster.history_max_per_room`; they stay in the SQLite file.
    pub messages_over_cap: u64,
    /// Rooms left out because their Redis stream already held messages, with the
    /// messages of each that were not copied.
    pub rooms_skipped: Vec<(String, u64)>,
}

/// Copies the SQLite history of `config.history.path` into the Redis of
/// `config.cluster`, room by room, verifying each; leaves the file as it is.
pub async fn migrate_history_to_redis(config: &Config) -> Result<MigrationReport, MigrationError> {
    config.validate()?;
    let Some(url) = config
        .cluster
        .redis_url
        .as_deref()
        .filter(|_| config.history.storage == HistoryStorage::Sqlite)
    else {
        return Err(MigrationError::NotConfigured);
    };
    let path = &config.history.path;
    let read_error = |e: rusqlite::Error| MigrationError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    // Reads block; this runs once, on its own, so it does them in place.
    let db = open_read_only(path).map_err(read_error)?;
    let rooms = room_counts(&db).map_err(read_error)?;
    let redis_error = |e: redis::RedisError| MigrationError::Redis(e.to_string());
    let mut redis = redis::Client::open(url)
        .map_err(redis_error)?
        .get_multiplexed_async_connection()
        .await
        .map_err(redis_error)?;
    let cap = config.cluster.history_max_per_room;
    let mut report = MigrationReport::default();
    for (room, count) in rooms {
        let stream = format!("{}:history:{room}", config.cluster.key_prefix);
        let existing: u64 = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut redis)
            .await
            .map_err(redis_error)?;
        if existing > 0 {
            report.rooms_skipped.push((room, count));
            continue;
        }
        let messages = newest(&db, &room, cap, count).map_err(read_error)?;
        let epoch = file_epoch(&db, &room).map_err(read_error)?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for m in &messages {
            let cmd = pipe
                .cmd("XADD")
                .arg(&stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(cap)
                .arg("*")
                .arg("u")
                .arg(&m.user_id)
                .arg("n")
                .arg(&m.user_name)
                .arg("t")
                .arg(&m.text)
                .arg("ts")
                .arg(m.ts)
                .arg("o")
                .arg(m.offset);
            if let Some((to_id, to_name)) = &m.to {
                cmd.arg("ti").arg(to_id).arg("tn").arg(to_name);
            }
        }
        // The room keeps its epoch and offsets: clients' positions stay valid.
        let head = format!("{}:head:{room}", config.cluster.key_prefix);
        let ttl_ms = config.cluster.history_idle_secs.saturating_mul(1000);
        let newest_offset = messages.last().map_or(0, |m| m.offset);
        pipe.cmd("HSET")
            .arg(&head)
            .arg("epoch")
            .arg(&epoch)
            .arg("offset")
            .arg(newest_offset)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&stream)
            .arg(ttl_ms)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&head)
            .arg(ttl_ms)
            .ignore();
        let ids: Vec<String> = pipe.query_async(&mut redis).await.map_err(redis_error)?;
        verify(&mut redis, &room, &stream, &messages, &ids).await?;
        report.rooms_copied += 1;
        report.messages_copied += messages.len() as u64;
        report.messages_over_cap += count - messages.len() as u64;
    }
    Ok(report)
}

/// Logs, when a node starts in cluster mode, that its standalone history file
/// holds messages it will not serve, and how to move them.
pub(crate) fn warn_if_unmigrated(config: &Config) {
    let path = &config.history.path;
    if config.history.storage != HistoryStorage::Sqlite || !path.exists() {
        return;
    }
    let count = open_read_only(path).and_then(|db| {
        db.query_row("SELECT count(*) FROM messages", [], |row| {
            row.get::<_, i64>(0)
        })
    });
    if let Ok(count) = count.map(|n| n.max(0)) {
        if count > 0 {
            tracing::warn!(
                "{} holds {count} messages of a standalone history; cluster mode serves \
                 history from Redis and leaves this file as it is. To copy them into \
                 Redis, stop the nodes and run: palaver-server --migrate-history-to-redis \
                 (docs/CLUSTER.md)",
                path.display()
            );
        }
    }
}

/// One stored message, as the SQLite history keeps it.
struct Row {
    user_id: String,
    user_name: String,
    text: String,
    ts: i64,
    offset: u64,
    /// A private message's recipient (id, name).
    to: Option<(String, String)>,
}

/// The room's epoch in the file, or a new one for a file written before epochs
/// (whose offsets are then numbered as that version numbers them when it opens
/// the file: in id order).
fn file_epoch(db: &Connection, room: &str) -> rusqlite::Result<String> {
    if !has_offsets(db)? {
        return Ok(super::new_epoch().to_string());
    }
    let epoch = db.query_row(
        "SELECT epoch FROM rooms WHERE room = ?1",
        params![room],
        |row| row.get::<_, String>(0),
    );
    match epoch {
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(super::new_epoch().to_string()),
        other => other,
    }
}

fn has_offsets(db: &Connection) -> rusqlite::Result<bool> {
    db.query_row(
        "SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'room_offset'",
        [],
        |row| Ok(row.get::<_, i64>(0)? > 0),
    )
}

fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    db.execute_batch("PRAGMA busy_timeout = 5000;")?;
    Ok(db)
}

fn room_counts(db: &Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut select =
        db.prepare("SELECT room, count(*) FROM messages GROUP BY room ORDER BY room")?;
    let rows = select.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?.max(0) as u64,
        ))
    })?;
    rows.collect()
}

/// The newest `cap` messages of a room (of `count` in all), oldest first.
fn newest(db: &Connection, room: &str, cap: usize, count: u64) -> rusqlite::Result<Vec<Row>> {
    let columns = if has_offsets(db)? {
        "user_id, user_name, text, ts, room_offset, to_id, to_name"
    } else {
        "user_id, user_name, text, ts, NULL, NULL, NULL"
    };
    let mut select = db.prepare(&format!(
        "SELECT {columns} FROM messages WHERE room = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let mut rows = select
        .query_map(params![room, cap as i64], |row| {
            let to = match (
                row.get::<_, Option<String>>(5)?,
                row.get::<_, Option<String>>(6)?,
            ) {
                (Some(id), Some(name)) => Some((id, name)),
                _ => None,
            };
            Ok(Row {
                user_id: row.get(0)?,
                user_name: row.get(1)?,
                text: row.get(2)?,
                ts: row.get(3)?,
                offset: row.get::<_, Option<i64>>(4)?.map_or(0, |o| o.max(0) as u64),
                to,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.reverse();
    // A file from before offsets: numbered in id order, as that version does.
    let first = count.saturating_sub(rows.len() as u64);
    for (i, row) in rows.iter_mut().enumerate() {
        if row.offset == 0 {
            row.offset = first + i as u64 + 1;
        }
    }
    Ok(rows)
}

/// Reads the room's stream back and compares it with what was copied.
async fn verify(
    redis: &mut redis::aio::MultiplexedConnection,
    room: &str,
    stream: &str,
    copied: &[Row],
    ids: &[String],
) -> Result<(), MigrationError> {
    let fail = |reason: String| MigrationError::Verify {
        room: room.to_string(),
        reason,
    };
    let read: StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(redis)
        .await
        .map_err(|e| MigrationError::Redis(e.to_string()))?;
    if read.ids.len() != copied.len() || ids.len() != copied.len() {
        return Err(fail(format!(
            "{} copied, {} acknowledged, {} read back",
            copied.len(),
            ids.len(),
            read.ids.len()
        )));
    }
    for ((entry, row), id) in read.ids.iter().zip(copied).zip(ids) {
        let field = |name: &str| entry.get::<String>(name).unwrap_or_default();
        let same = entry.id == *id
            && field("u") == row.user_id
            && field("n") == row.user_name
            && field("t") == row.text
            && entry.get::<i64>("ts") == Some(row.ts);
        if !same {
            return Err(fail(format!("entry {} differs from the file", entry.id)));
        }
    }
    Ok(())
}
