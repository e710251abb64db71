//! History in Redis: one capped stream per room (`{p}:history:{room}`), so every
//! node serves the same history.
//!
//! Storing and announcing are one atomic step: a Lua script appends the message to
//! the room's stream and announces it (with its id) on `{p}:messages`, which every
//! node reads and delivers to its own members (`chat/fanout.rs`). Redis runs
//! scripts one at a time and delivers a channel's messages in publish order, so
//! every node sees a room's messages in the same order, the order of their ids. A
//! message is acknowledged once the script has run. Each message carries a key;
//! the script remembers it with the message's id for `cluster.dedup_window_ms`
//! and does not store a key twice, so retrying after a timeout (or writing the
//! outage journal again) within that window never duplicates a message. The keys
//! live in one hash per room and window (`{p}:keys:{window}:{room}`, expiring
//! with the window after the next), not in one Redis key per message: a busy
//! Redis would otherwise hold a key for every message of the last day. A room's
//! stream expires `cluster.history_idle_secs` after its last message.
//!
//! While Redis is unreachable, accepted messages go to the node's outage journal
//! (`journal/`) and are announced to this node only, through the same
//! announcements, with the id `j<key>`; when Redis answers again they are appended
//! to the streams, oldest first, without being announced again, and removed from
//! the journal. Such an id stays a valid `history` cursor afterwards: Redis
//! remembers which stream id each key got, for as long as it remembers the key.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;
use redis::streams::StreamRangeReply;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::journal::Journal;
use super::{HistoryError, NewMessage, Page};
use crate::cluster::Cluster;
use crate::protocol::{ChatMessage, MessageKind};

/// Messages written to Redis per round when replaying the journal.
const REPLAY_BATCH: usize = 256;
/// How long Redis remembers which stream id a journaled message got, so that
/// its `j…` id works as a `history` cursor, in seconds.
const JOURNAL_CURSOR_SECS: u64 = 86_400;
/// Stands for the id in a pre-serialized announcement, replaced by the script.
const ID_PLACEHOLDER: &str = "\u{0}id\u{0}";
/// Journaled messages waiting to be announced on this node; the pipeline waits
/// when its deliveries fall this far behind.
const LOCAL_ANNOUNCEMENTS: usize = 8_192;

/// Appends one message unless its key was stored before, and publishes it.
/// KEYS: stream, this window's key memo, the previous window's key memo, the
/// room's map of journaled messages. ARGV: maxlen, user id, name, text, ts,
/// channel ('' for none), delivery before the id, delivery after the id, message
/// key, when this window's memo expires (Unix ms), the stream's time to live (ms),
/// how long to remember the id of a journaled message (s; '' when not replaying
/// the journal).
const APPEND_SCRIPT: &str = r#"
local id = redis.call('HGET', KEYS[2], ARGV[9]) or redis.call('HGET', KEYS[3], ARGV[9])
if not id then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
    'u', ARGV[2], 'n', ARGV[3], 't', ARGV[4], 'ts', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[11])
  redis.call('HSET', KEYS[2], ARGV[9], id)
  redis.call('PEXPIREAT', KEYS[2], ARGV[10])
  if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[7] .. id .. ARGV[8]) end
end
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[9], id)
  redis.call('EXPIRE', KEYS[4], ARGV[12])
end
return id
"#;

/// A stored message on its way to every node's members, as announced.
///
/// The message itself stays encoded: a node reads the envelope and hands the
/// message's JSON to its clients as it came, without decoding and encoding it
/// again.
#[derive(Debug, Deserialize)]
pub(crate) struct Announcement {
    /// The node that accepted it.
    pub node: String,
    /// The sending connection (left out of the delivery on its own node).
    pub sid: String,
    /// The message key.
    pub key: String,
    /// The message's room.
    pub room: Arc<str>,
    /// The stored message, as its JSON.
    pub message: Box<RawValue>,
}

/// An [`Announcement`] being written.
#[derive(Serialize)]
struct AnnouncementOut<'a> {
    node: &'a str,
    sid: &'a str,
    key: &'a str,
    room: &'a str,
    message: &'a ChatMessage,
}

pub(crate) struct RedisHistory {
    cluster: Arc<Cluster>,
    journal: Journal,
    /// Keys of journaled messages this node has announced to itself; should the
    /// message also reach Redis after all (a stall, not an outage), its
    /// announcement from Redis is not delivered here a second time.
    delivered_here: Mutex<HashSet<String>>,
    /// Announcements of journaled messages, to this node only.
    local_announcements: mpsc::Sender<Announcement>,
}

impl RedisHistory {
    /// Returns the announcements of journaled messages, which are this node's
    /// alone (the others come from Redis).
    pub(crate) fn new(
        cluster: Arc<Cluster>,
        journal: Journal,
    ) -> (Self, mpsc::Receiver<Announcement>) {
        // What an earlier run left in a journal file counts from the start.
        cluster
            .journal_pending
            .store(journal.pending(), Ordering::Relaxed);
        let (local_announcements, announced) = mpsc::channel(LOCAL_ANNOUNCEMENTS);
        let history = Self {
            cluster,
            journal,
            delivered_here: Mutex::default(),
            local_announcements,
        };
        (history, announced)
    }

    /// Whether `message` would be stored now: always while Redis is up (a
    /// failure then still journals it, and may be refused there), else when it
    /// fits in the journal.
    pub(crate) fn admits(&self, message: &NewMessage) -> bool {
        self.cluster.is_up() || self.journal.admits(message)
    }

    /// The channel announcements are published on.
    pub(crate) fn channel(&self) -> String {
        self.cluster.key(&["messages"])
    }

    pub(crate) async fn append(
        &self,
        batch: Vec<NewMessage>,
    ) -> Result<Vec<ChatMessage>, HistoryError> {
        if self.cluster.is_up() {
            match self.append_to_redis(&batch, true).await {
                Ok(messages) => return Ok(messages),
                Err(e) => tracing::warn!("storing in Redis failed, journaling: {e}"),
            }
        }
        self.journal.append(&batch).await?;
        self.cluster
            .journal_pending
            .store(self.journal.pending(), Ordering::Relaxed);
        self.delivered_here
            .lock()
            .extend(batch.iter().map(|m| m.key.to_string()));
        let mut messages = Vec::with_capacity(batch.len());
        for message in batch {
            let sender = message.sender;
            let key = message.key.clone();
            // The key is the id while journaled: unique across nodes and restarts,
            // and Redis maps it to the message's stream id once it is written.
            let message = message.stored(journal_id(&key));
            let announcement = Announcement {
                node: self.cluster.node_id.clone(),
                sid: sender.map(|sid| sid.to_string()).unwrap_or_default(),
                key: key.to_string(),
                room: message.room.clone(),
                message: serde_json::value::to_raw_value(&message)
                    .map_err(|e| HistoryError::Storage(e.to_string()))?,
            };
            // Waits rather than drops: the announcement is this message's only way
            // to its members here.
            let _ = self.local_announcements.send(announcement).await;
            messages.push(message);
        }
        Ok(messages)
    }

    /// Stores a batch in one transaction; with `announce`, each message is also
    /// announced to every node.
    async fn append_to_redis(
        &self,
        batch: &[NewMessage],
        announce: bool,
    ) -> Result<Vec<ChatMessage>, String> {
        let cluster = &self.cluster;
        let channel = self.channel();
        let stream_ttl_ms = cluster.config.history_idle_secs.saturating_mul(1000);
        // Only journaled messages (written again without an announcement) have a
        // `j…` id that clients may hold as a cursor.
        let journaled_cursor_secs = if announce {
            String::new()
        } else {
            JOURNAL_CURSOR_SECS.to_string()
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        for message in batch {
            let (channel, before, after) = if announce {
                let sid = message
                    .sender
                    .map(|sid| sid.to_string())
                    .unwrap_or_default();
                let (before, after) = announcement_template(&cluster.node_id, &sid, message)?;
                (channel.as_str(), before, after)
            } else {
                ("", String::new(), String::new())
            };
            let memo = KeyMemo::at(unix_ms(), cluster.config.dedup_window_ms);
            pipe.cmd("EVAL")
                .arg(APPEND_SCRIPT)
                .arg(4)
                .arg(cluster.key(&["history", &message.room]))
                .arg(cluster.key(&["keys", &memo.window.to_string(), &message.room]))
                .arg(cluster.key(&["keys", &memo.previous.to_string(), &message.room]))
                .arg(cluster.key(&["journaled", &message.room]))
                .arg(cluster.config.history_max_per_room)
                .arg(&*message.user.id)
                .arg(&*message.user.name)
                .arg(&message.text)
                .arg(message.ts)
                .arg(channel)
                .arg(before)
                .arg(after)
                .arg(&*message.key)
                .arg(memo.expires_at_ms)
                .arg(stream_ttl_ms)
                .arg(&journaled_cursor_secs);
        }
        let ids: Vec<String> = cluster.run("store messages", pipe).await?;
        if ids.len() != batch.len() {
            return Err(format!(
                "Redis stored {} of {} messages",
                ids.len(),
                batch.len()
            ));
        }
        Ok(batch
            .iter()
            .cloned()
            .zip(ids)
            .map(|(message, id)| message.stored(id))
            .collect())
    }

    /// Whether an announcement from this node was delivered here already (it was
    /// journaled, then reached Redis after all). Forgets the key.
    pub(crate) fn delivered_here(&self, key: &str) -> bool {
        self.delivered_here.lock().remove(key)
    }

    pub(crate) async fn page(
        &self,
        room: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, HistoryError> {
        let before = match before {
            Some(id) if !is_stream_id(id) && !is_journal_id(id) => {
                return Err(HistoryError::BadCursor(id.to_string()))
            }
            before => before,
        };
        if !self.cluster.is_up() {
            return Err(HistoryError::Unavailable("Redis is unreachable".into()));
        }
        let end = match before {
            None => "+".to_string(),
            Some(id) if is_stream_id(id) => format!("({id}"),
            Some(id) => format!("({}", self.stream_id_of_journaled(room, id).await?),
        };
        let reply: StreamRangeReply = self
            .cluster
            .run(
                "read history",
                redis::cmd("XREVRANGE")
                    .arg(self.cluster.key(&["history", room]))
                    .arg(end)
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit + 1)
                    .clone(),
            )
            .await
            .map_err(HistoryError::Unavailable)?;
        let room: Arc<str> = Arc::from(room);
        let mut messages: Vec<ChatMessage> = reply
            .ids
            .iter()
            .map(|entry| ChatMessage {
                id: Some(entry.id.clone()),
                room: room.clone(),
                user: Arc::from(entry.get::<String>("n").unwrap_or_default()),
                user_id: Some(Arc::from(entry.get::<String>("u").unwrap_or_default())),
                text: entry.get::<String>("t").unwrap_or_default(),
                ts: entry.get::<i64>("ts").unwrap_or_default(),
                kind: MessageKind::Chat,
            })
            .collect();
        let has_more = messages.len() > limit;
        messages.truncate(limit);
        messages.reverse();
        Ok(Page { messages, has_more })
    }

    /// Writes journaled messages to Redis, oldest first, without publishing them
    /// (their members here have them; other nodes' members find them in history);
    /// stops at the first failure (they stay journaled for the next try).
    pub(crate) async fn replay(&self) {
        loop {
            let oldest = match self.journal.oldest(REPLAY_BATCH).await {
                Ok(oldest) if oldest.is_empty() => return,
                Ok(oldest) => oldest,
                Err(e) => {
                    tracing::error!("cannot read the outage journal: {e}");
                    return;
                }
            };
            let batch: Vec<NewMessage> = oldest.iter().map(|e| e.message.clone()).collect();
            if self.append_to_redis(&batch, false).await.is_err() {
                return;
            }
            // Written first, removed second: a crash in between repeats the write,
            // which the keys make harmless.
            if let Err(e) = self.journal.remove(&oldest).await {
                tracing::error!("cannot clear the outage journal: {e}");
                return;
            }
            {
                let mut delivered = self.delivered_here.lock();
                for message in &batch {
                    delivered.remove(&*message.key);
                }
            }
            self.cluster
                .journal_pending
                .store(self.journal.pending(), Ordering::Relaxed);
            tracing::info!(
                count = batch.len(),
                "wrote messages from the outage journal to Redis"
            );
        }
    }

    /// The stream id a journaled message of `room` got when it was written to
    /// Redis (remembered for a day in the room's `journaled` hash). Before that (its node has not written its journal yet) the cursor cannot be
    /// placed: `unavailable` while this node still holds journaled messages, which
    /// it writes right after Redis is back; otherwise the key is unknown (never
    /// journaled, or forgotten after a day): an invalid cursor.
    async fn stream_id_of_journaled(&self, room: &str, id: &str) -> Result<String, HistoryError> {
        let stored: Option<String> = self
            .cluster
            .run(
                "find a journaled message",
                redis::cmd("HGET")
                    .arg(self.cluster.key(&["journaled", room]))
                    .arg(journal_key(id))
                    .clone(),
            )
            .await
            .map_err(HistoryError::Unavailable)?;
        match stored {
            Some(stream_id) if is_stream_id(&stream_id) => Ok(stream_id),
            _ if self.journal.pending() > 0 => Err(HistoryError::Unavailable(
                "the outage journal is being written to Redis".into(),
            )),
            _ => Err(HistoryError::BadCursor(id.to_string())),
        }
    }

    pub(crate) async fn close(&self) {
        self.journal.close().await;
    }
}

/// The announcement of `message` as JSON, split around its (not yet known) id.
fn announcement_template(
    node: &str,
    sid: &str,
    message: &NewMessage,
) -> Result<(String, String), String> {
    let stored = message.clone().stored(ID_PLACEHOLDER.to_string());
    let announcement = AnnouncementOut {
        node,
        sid,
        key: &message.key,
        room: &message.room,
        message: &stored,
    };
    let json = serde_json::to_string(&announcement).map_err(|e| e.to_string())?;
    let placeholder = serde_json::to_string(ID_PLACEHOLDER).map_err(|e| e.to_string())?;
    // The placeholder is a whole JSON string; the id goes between its quotes.
    let at = json
        .find(&placeholder)
        .ok_or_else(|| "id placeholder missing".to_string())?;
    Ok((
        format!("{}\"", &json[..at]),
        format!("\"{}", &json[at + placeholder.len()..]),
    ))
}

/// Which hashes remember a message key written now: keys are kept per window of
/// `cluster.dedup_window_ms`, and a key is looked up in this window's hash and
/// the previous one's, so it is remembered for at least one whole window.
#[derive(Debug, PartialEq, Eq)]
struct KeyMemo {
    window: u64,
    previous: u64,
    /// This window's hash is needed until the next window ends.
    expires_at_ms: u64,
}

impl KeyMemo {
    fn at(now_ms: u64, window_ms: u64) -> Self {
        let window_ms = window_ms.max(1);
        let window = now_ms / window_ms;
        Self {
            window,
            previous: window.saturating_sub(1),
            expires_at_ms: (window + 2).saturating_mul(window_ms),
        }
    }
}

/// Milliseconds since the Unix epoch by this node's clock. The key memo only
/// needs it to agree with itself: a message is only ever written again by the
/// node that wrote it first (its outage journal).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// The id of a journaled message: `j` and its key.
fn journal_id(key: &str) -> String {
    format!("j{key}")
}

/// The key in a journal id.
fn journal_key(id: &str) -> &str {
    id.strip_prefix('j').unwrap_or(id)
}

/// `j<node>-<n>`, the form of journal ids (message keys: `IdSource::message_key`).
fn is_journal_id(id: &str) -> bool {
    id.strip_prefix('j')
        .and_then(|key| key.split_once('-'))
        .is_some_and(|(node, n)| {
            !node.is_empty()
                && !n.is_empty()
                && node.bytes().all(|b| b.is_ascii_hexdigit())
                && n.bytes().all(|b| b.is_ascii_digit())
        })
}

/// `<ms>-<seq>`, the form of Redis stream ids.
fn is_stream_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty()
            && !seq.is_empty()
            && ms.bytes().all(|b| b.is_ascii_digit())
            && seq.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::User;

    #[test]
    fn stream_ids() {
        assert!(is_stream_id("1700000000000-0"));
        for bad in ["", "12", "-1", "1-", "a-1", "1-2-3", "j42"] {
            assert!(!is_stream_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_key_is_remembered_for_at_least_one_window() {
        let window = 600_000;
        let first = KeyMemo::at(1_800_000_000_123, window);
        assert_eq!(first.window, 1_800_000_000_123 / window);
        assert_eq!(first.previous, first.window - 1);
        // Written at any time in a window, the key is found by every write up to
        // a whole window later, in that window or the next (where it is the
        // previous one), and its hash lives until the next window ends.
        for written in [first.window * window, (first.window + 1) * window - 1] {
            let memo = KeyMemo::at(written, window);
            let retry = KeyMemo::at(written + window, window);
            assert!(retry.window == memo.window || retry.previous == memo.window);
            assert!(memo.expires_at_ms >= written + window);
            assert!(memo.expires_at_ms <= written + 2 * window);
        }
        assert_eq!(KeyMemo::at(5, 0).window, 5, "a zero window is one ms");
    }

    #[test]
    fn journal_ids() {
        let id = journal_id("00ff12ab34cd56ef-42");
        assert!(is_journal_id(&id));
        assert_eq!(journal_key(&id), "00ff12ab34cd56ef-42");
        for bad in [
            "",
            "j",
            "j42",
            "j-1",
            "jx-1",
            "jab-",
            "jab-1-2",
            "1700000000000-0",
        ] {
            assert!(!is_journal_id(bad), "{bad}");
        }
    }

    #[test]
    fn announcement_template_takes_the_id() {
        let message = NewMessage {
            sender: None,
            room: "r".into(),
            user: User {
                id: "u".into(),
                name: "U \"q\"".into(),
            },
            text: "hi".into(),
            ts: 1_795_527_126_273,
            key: "k1".into(),
        };
        let (before, after) = announcement_template("n1", "s1", &message).unwrap();
        let json = format!("{before}1795527126273-0{after}");
        let announcement: Announcement = serde_json::from_str(&json).unwrap();
        let stored: ChatMessage = serde_json::from_str(announcement.message.get()).unwrap();
        assert_eq!(stored.id.as_deref(), Some("1795527126273-0"));
        assert_eq!(stored.ts, 1_795_527_126_273);
        assert_eq!(stored.user.as_ref(), "U \"q\"");
        assert_eq!(
            (
                announcement.node.as_str(),
                announcement.sid.as_str(),
                &*announcement.room
            ),
            ("n1", "s1", "r")
        );
    }
}
