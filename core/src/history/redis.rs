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
use super::{kind_of, new_epoch, recipient, Found, Head, HistoryError, NewMessage, Page, Pending};
use crate::cluster::Cluster;
use crate::protocol::{ChatMessage, Position};

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

/// Appends one message unless its key was stored before, and publishes it, with
/// the room's next offset (and its epoch, drawn at the room's first message);
/// for a private message to an offline user, remembers the conversation for them.
/// KEYS: stream, this window's key memo, the previous window's key memo, the
/// room's map of journaled messages, the room's head (epoch and newest offset),
/// the recipient's pending conversations (any key when not pending). ARGV: maxlen,
/// user id, name, text, ts, channel ('' for none), delivery before the id,
/// delivery after the id, message key, when this window's memo expires (Unix ms),
/// the stream's time to live (ms), how long to remember the id of a journaled
/// message (s; '' when not replaying the journal), an epoch for a new room,
/// recipient id ('' for a room message), recipient name, '1' when pending, the
/// room. Returns the id, the offset and the epoch.
const APPEND_SCRIPT: &str = r#"
local id = redis.call('HGET', KEYS[2], ARGV[9]) or redis.call('HGET', KEYS[3], ARGV[9])
local offset = 0
local epoch = redis.call('HGET', KEYS[5], 'epoch')
if not id then
  if not epoch then
    epoch = ARGV[13]
    redis.call('HSET', KEYS[5], 'epoch', epoch, 'offset', 0)
  end
  offset = redis.call('HINCRBY', KEYS[5], 'offset', 1)
  if ARGV[14] ~= '' then
    id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
      'u', ARGV[2], 'n', ARGV[3], 't', ARGV[4], 'ts', ARGV[5], 'o', offset,
      'ti', ARGV[14], 'tn', ARGV[15])
  else
    id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
      'u', ARGV[2], 'n', ARGV[3], 't', ARGV[4], 'ts', ARGV[5], 'o', offset)
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[11])
  redis.call('PEXPIRE', KEYS[5], ARGV[11])
  redis.call('HSET', KEYS[2], ARGV[9], id)
  redis.call('PEXPIREAT', KEYS[2], ARGV[10])
  if ARGV[16] == '1' then
    redis.call('HSETNX', KEYS[6], ARGV[17], (offset - 1) .. ' ' .. epoch)
    redis.call('PEXPIRE', KEYS[6], ARGV[11])
  end
  if ARGV[6] ~= '' then
    redis.call('PUBLISH', ARGV[6],
      ARGV[7] .. id .. '","offset":' .. offset .. ',"epoch":"' .. epoch .. '"' .. ARGV[8])
  end
else
  local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
  if entry then
    for i = 1, #entry[2], 2 do
      if entry[2][i] == 'o' then offset = tonumber(entry[2][i + 1]) end
    end
  end
end
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[9], id)
  redis.call('EXPIRE', KEYS[4], ARGV[12])
end
return {id, offset, epoch or ''}
"#;

/// The head of a room (epoch, newest offset) and, unless the epoch differs or
/// too many are missing, its newest `head - from` messages (newest first).
/// KEYS: stream, head. ARGV: from offset, from epoch, most missing.
const AFTER_SCRIPT: &str = r#"
local head = redis.call('HMGET', KEYS[2], 'epoch', 'offset')
local epoch = head[1] or ''
local newest = tonumber(head[2] or '0') or 0
local from = tonumber(ARGV[1])
local missing = newest - from
if (from > 0 and epoch ~= ARGV[2]) or missing <= 0 or missing > tonumber(ARGV[3]) then
  return {epoch, newest, {}}
end
return {epoch, newest, redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', missing)}
"#;

/// Takes a user's pending conversations: field conversation, value
/// "<offset> <epoch>". KEYS: the user's pending hash.
const TAKE_PENDING_SCRIPT: &str = r#"
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return all
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
    /// The stored message, as its JSON; with `presence`, a join or leave notice
    /// (not stored).
    pub message: Box<RawValue>,
    /// A notice's `presence` change: present only on notices, which travel with
    /// the room's messages so that no node delivers them out of order.
    #[serde(default)]
    pub presence: Option<Box<RawValue>>,
}

/// An [`Announcement`] being written.
#[derive(Serialize)]
struct AnnouncementOut<'a> {
    node: &'a str,
    sid: &'a str,
    key: &'a str,
    room: &'a str,
    message: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence: Option<&'a RawValue>,
}

/// A stored message as its members receive it: a room message as itself, a
/// private message in its `private` form.
pub(crate) fn wire_json(message: &ChatMessage) -> Result<Box<RawValue>, serde_json::Error> {
    match message.to_private() {
        Some(private) => serde_json::value::to_raw_value(&private),
        None => serde_json::value::to_raw_value(message),
    }
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
            // Its offset comes then too: until then it has none.
            let message = message.stored(journal_id(&key), None);
            let announcement = Announcement {
                node: self.cluster.node_id.clone(),
                sid: sender.map(|sid| sid.to_string()).unwrap_or_default(),
                key: key.to_string(),
                room: message.room.clone(),
                message: wire_json(&message).map_err(|e| HistoryError::Storage(e.to_string()))?,
                presence: None,
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
            let head = cluster.key(&["head", &message.room]);
            let pending = match (&message.to, message.pending) {
                (Some(to), true) => cluster.key(&["pending", &to.id]),
                _ => head.clone(),
            };
            pipe.cmd("EVAL")
                .arg(APPEND_SCRIPT)
                .arg(6)
                .arg(cluster.key(&["history", &message.room]))
                .arg(cluster.key(&["keys", &memo.window.to_string(), &message.room]))
                .arg(cluster.key(&["keys", &memo.previous.to_string(), &message.room]))
                .arg(cluster.key(&["journaled", &message.room]))
                .arg(head)
                .arg(pending)
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
                .arg(&journaled_cursor_secs)
                .arg(&*new_epoch())
                .arg(message.to.as_ref().map_or("", |to| &*to.id))
                .arg(message.to.as_ref().map_or("", |to| &*to.name))
                .arg(if message.pending { "1" } else { "" })
                .arg(&*message.room);
        }
        let stored: Vec<(String, u64, String)> = cluster.run("store messages", pipe).await?;
        if stored.len() != batch.len() {
            return Err(format!(
                "Redis stored {} of {} messages",
                stored.len(),
                batch.len()
            ));
        }
        Ok(batch
            .iter()
            .cloned()
            .zip(stored)
            .map(|(message, (id, offset, epoch))| {
                // A retry whose first copy was trimmed away has no offset to tell.
                let place = (offset > 0 && !epoch.is_empty()).then(|| (offset, Arc::from(epoch)));
                message.stored(id, place)
            })
            .collect())
    }

    /// Announces a join or leave notice (`notice`, then `presence`) on the channel
    /// of the stored messages, so that every node delivers it in their order: a
    /// connection's messages before its leave notice, after its join notice.
    /// Through the adapter it would reach other nodes on another subscription,
    /// read by another task, and could overtake them there. While Redis is down,
    /// or when the publish fails, it is announced to this node only, behind the
    /// messages journaled meanwhile.
    pub(crate) async fn announce_notice(
        &self,
        sid: &str,
        room: &Arc<str>,
        notice: Box<RawValue>,
        presence: Box<RawValue>,
    ) {
        if self.cluster.is_up() {
            let out = AnnouncementOut {
                node: &self.cluster.node_id,
                sid,
                key: "",
                room,
                message: &notice,
                presence: Some(&presence),
            };
            let payload = match serde_json::to_vec(&out) {
                Ok(payload) => payload,
                Err(e) => return tracing::warn!("cannot encode a notice: {e}"),
            };
            let command = redis::cmd("PUBLISH")
                .arg(self.channel())
                .arg(payload)
                .clone();
            let published: Result<i64, String> =
                self.cluster.run("announce a notice", command).await;
            if published.is_ok() {
                return;
            }
        }
        let announcement = Announcement {
            node: self.cluster.node_id.clone(),
            sid: sid.to_string(),
            key: String::new(),
            room: room.clone(),
            message: notice,
            presence: Some(presence),
        };
        let _ = self.local_announcements.send(announcement).await;
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
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HMGET")
            .arg(self.cluster.key(&["head", room]))
            .arg("epoch")
            .arg("offset")
            .cmd("XREVRANGE")
            .arg(self.cluster.key(&["history", room]))
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(limit + 1);
        let ((epoch, newest), reply): ((Option<String>, Option<u64>), StreamRangeReply) = self
            .cluster
            .run("read history", pipe)
            .await
            .map_err(HistoryError::Unavailable)?;
        let head = Head {
            epoch: epoch.map(Arc::from),
            offset: newest.unwrap_or(0),
        };
        let room: Arc<str> = Arc::from(room);
        let messages: Vec<ChatMessage> = reply
            .ids
            .iter()
            .map(|entry| message_of_entry(entry, &room, &head.epoch))
            .collect();
        Ok(Page::from_newest_first(messages, limit, head))
    }

    pub(crate) async fn after(
        &self,
        room: &str,
        from: &Position,
        limit: usize,
        max_missing: u64,
    ) -> Result<Found, HistoryError> {
        if !self.cluster.is_up() {
            return Err(HistoryError::Unavailable("Redis is unreachable".into()));
        }
        let (epoch, newest, reply): (String, u64, StreamRangeReply) = self
            .cluster
            .run(
                "read history",
                redis::cmd("EVAL")
                    .arg(AFTER_SCRIPT)
                    .arg(2)
                    .arg(self.cluster.key(&["history", room]))
                    .arg(self.cluster.key(&["head", room]))
                    .arg(from.offset)
                    .arg(from.epoch.as_deref().unwrap_or(""))
                    .arg(max_missing)
                    .clone(),
            )
            .await
            .map_err(HistoryError::Unavailable)?;
        let head = Head {
            epoch: (!epoch.is_empty()).then(|| Arc::from(epoch)),
            offset: newest,
        };
        let room: Arc<str> = Arc::from(room);
        // Newest first, and exactly as many as are missing when nothing was
        // trimmed: the oldest `limit` of them come next after `from`.
        let messages = reply
            .ids
            .iter()
            .rev()
            .take(limit)
            .map(|entry| message_of_entry(entry, &room, &head.epoch))
            .collect();
        Ok(Found { head, messages })
    }

    pub(crate) async fn take_pending(&self, user: &str) -> Result<Vec<Pending>, HistoryError> {
        if !self.cluster.is_up() {
            return Err(HistoryError::Unavailable("Redis is unreachable".into()));
        }
        let fields: Vec<String> = self
            .cluster
            .run(
                "take pending conversations",
                redis::cmd("EVAL")
                    .arg(TAKE_PENDING_SCRIPT)
                    .arg(1)
                    .arg(self.cluster.key(&["pending", user]))
                    .clone(),
            )
            .await
            .map_err(HistoryError::Unavailable)?;
        Ok(fields
            .chunks_exact(2)
            .filter_map(|pair| {
                let (offset, epoch) = pair[1].split_once(' ')?;
                Some(Pending {
                    conversation: pair[0].clone(),
                    from: Position {
                        offset: offset.parse().ok()?,
                        epoch: Some(epoch.to_string()),
                    },
                })
            })
            .collect())
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

/// A message read from a room's stream.
fn message_of_entry(
    entry: &redis::streams::StreamId,
    room: &Arc<str>,
    epoch: &Option<Arc<str>>,
) -> ChatMessage {
    let to = recipient(entry.get("ti"), entry.get("tn"));
    ChatMessage {
        id: Some(entry.id.clone()),
        room: room.clone(),
        user: Arc::from(entry.get::<String>("n").unwrap_or_default()),
        user_id: Some(Arc::from(entry.get::<String>("u").unwrap_or_default())),
        text: entry.get::<String>("t").unwrap_or_default(),
        ts: entry.get::<i64>("ts").unwrap_or_default(),
        kind: kind_of(&to),
        // Written before offsets existed: none (recovery then says `trimmed`).
        offset: entry.get::<u64>("o"),
        epoch: epoch.clone(),
        to,
    }
}

/// The announcement of `message` as JSON, split around its (not yet known) id:
/// the script puts the id, then its offset and epoch, between the two parts.
fn announcement_template(
    node: &str,
    sid: &str,
    message: &NewMessage,
) -> Result<(String, String), String> {
    let stored = message.clone().stored(ID_PLACEHOLDER.to_string(), None);
    let wire = wire_json(&stored).map_err(|e| e.to_string())?;
    let announcement = AnnouncementOut {
        node,
        sid,
        key: &message.key,
        room: &message.room,
        message: &wire,
        presence: None,
    };
    let json = serde_json::to_string(&announcement).map_err(|e| e.to_string())?;
    let placeholder = serde_json::to_string(ID_PLACEHOLDER).map_err(|e| e.to_string())?;
    // The placeholder is a whole JSON string; the id goes between its quotes,
    // and the script closes the string itself before the offset.
    let at = json
        .find(&placeholder)
        .ok_or_else(|| "id placeholder missing".to_string())?;
    Ok((
        format!("{}\"", &json[..at]),
        json[at + placeholder.len()..].to_string(),
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
            to: None,
            pending: false,
        };
        let (before, after) = announcement_template("n1", "s1", &message).unwrap();
        // As the script writes it.
        let json = format!("{before}1795527126273-0\",\"offset\":7,\"epoch\":\"e1\"{after}");
        let announcement: Announcement = serde_json::from_str(&json).unwrap();
        let stored: ChatMessage = serde_json::from_str(announcement.message.get()).unwrap();
        assert_eq!(stored.id.as_deref(), Some("1795527126273-0"));
        assert_eq!(stored.offset, Some(7));
        assert_eq!(stored.epoch.as_deref(), Some("e1"));
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
