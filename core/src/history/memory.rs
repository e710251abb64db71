//! History kept in process memory: bounded per room, in rooms and in bytes, and
//! forgotten for rooms nobody uses any more.
//!
//! Rooms are kept in order of their last activity (a message, or their last
//! member leaving), so that the bounds forget the least recently active rooms
//! first and the idle sweep only looks at the front of the order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashlink::linked_hash_map::Entry;
use hashlink::LinkedHashMap;
use parking_lot::Mutex;

use super::{
    integer_cursor, new_epoch, precheck, Found, Head, HistoryError, NewMessage, Page, Pending,
};
use crate::config::HistoryConfig;
use crate::protocol::{ChatMessage, Position};

/// Bytes counted per message besides its strings: its slot in the room's deque
/// and the headers of its allocations.
const MESSAGE_OVERHEAD: usize = 256;
/// Bytes counted per room besides its name: its map entry and deque.
const ROOM_OVERHEAD: usize = 256;
/// Conversations remembered as pending for offline users, in all: past it the
/// users waiting longest are forgotten first (their messages stay readable).
const MAX_PENDING: usize = 65_536;

/// A stored message with its numeric id and key.
type Stored = (i64, ChatMessage, Arc<str>);

/// What memory history may keep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemoryBounds {
    pub max_per_room: usize,
    pub max_rooms: usize,
    pub max_bytes: usize,
}

impl MemoryBounds {
    pub(crate) fn of(config: &HistoryConfig) -> Self {
        Self {
            max_per_room: config.memory_max_per_room,
            max_rooms: config.memory_max_rooms,
            max_bytes: config.memory_max_bytes,
        }
    }
}

/// A room's messages, oldest first.
struct RoomLog {
    messages: VecDeque<Stored>,
    /// Drawn when the room's log is created: a room forgotten and written to
    /// again starts a new epoch, so nobody mistakes its offsets for the old ones.
    epoch: Arc<str>,
    /// The offset of the newest message.
    last_offset: u64,
    /// Its messages' and its own counted bytes.
    bytes: usize,
    last_active: Instant,
}

#[derive(Default)]
struct Rooms {
    /// Least recently active first.
    logs: LinkedHashMap<Arc<str>, RoomLog>,
    /// Counted bytes of all rooms.
    bytes: usize,
}

impl Rooms {
    fn remove_room(&mut self, room: &str) {
        if let Some(log) = self.logs.remove(room) {
            self.bytes -= log.bytes;
        }
    }

    /// Forgets the oldest message of the least recently active room (and the
    /// room with its last message). `false` when that would be the only message
    /// of `keep`, which is never forgotten to make room.
    fn forget_oldest(&mut self, keep: &str) -> bool {
        let Some(mut front) = self.logs.front_entry() else {
            return false;
        };
        if &**front.key() == keep && front.get().messages.len() <= 1 {
            return false;
        }
        let log = front.get_mut();
        if let Some(entry) = log.messages.pop_front() {
            let bytes = message_bytes(&entry);
            log.bytes -= bytes;
            self.bytes -= bytes;
        }
        if front.get().messages.is_empty() {
            let (_, log) = front.remove_entry();
            self.bytes -= log.bytes;
        }
        true
    }
}

pub(crate) struct MemoryHistory {
    bounds: MemoryBounds,
    rooms: Mutex<Rooms>,
    next_id: AtomicU64,
    /// Per offline user, the conversations with messages waiting for them.
    pending: Mutex<LinkedHashMap<Arc<str>, Vec<Pending>>>,
}

impl MemoryHistory {
    pub(crate) fn with_bounds(bounds: MemoryBounds) -> Self {
        Self {
            bounds,
            rooms: Mutex::default(),
            next_id: AtomicU64::new(1),
            pending: Mutex::default(),
        }
    }

    pub(crate) fn append(&self, batch: Vec<NewMessage>) -> Vec<ChatMessage> {
        self.append_at(batch, Instant::now())
    }

    fn append_at(&self, batch: Vec<NewMessage>, now: Instant) -> Vec<ChatMessage> {
        let mut rooms = self.rooms.lock();
        let rooms = &mut *rooms;
        batch
            .into_iter()
            .map(|message| {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed) as i64;
                let key = message.key.clone();
                let pending_for = message
                    .pending
                    .then(|| message.to.as_ref().map(|to| to.id.clone()))
                    .flatten();
                let log = match rooms.logs.entry(message.room.clone()) {
                    Entry::Occupied(mut known) => {
                        known.to_back();
                        known.into_mut()
                    }
                    Entry::Vacant(new) => {
                        let bytes = ROOM_OVERHEAD + message.room.len();
                        rooms.bytes += bytes;
                        new.insert(RoomLog {
                            messages: VecDeque::new(),
                            epoch: new_epoch(),
                            last_offset: 0,
                            bytes,
                            last_active: now,
                        })
                    }
                };
                log.last_active = now;
                log.last_offset += 1;
                let mut stored =
                    message.stored(id.to_string(), Some((log.last_offset, log.epoch.clone())));
                if let Some(user) = pending_for {
                    self.remember_pending(user, &stored);
                }
                if log.messages.len() == self.bounds.max_per_room {
                    if let Some(entry) = log.messages.pop_front() {
                        log.bytes -= message_bytes(&entry);
                        rooms.bytes -= message_bytes(&entry);
                    }
                }
                // The room's messages share its one name rather than each keeping a copy.
                if let Some(first) = log.messages.front() {
                    stored.room = first.1.room.clone();
                }
                let entry = (id, stored.clone(), key);
                log.bytes += message_bytes(&entry);
                rooms.bytes += message_bytes(&entry);
                log.messages.push_back(entry);
                self.enforce(rooms, &stored.room);
                stored
            })
            .collect()
    }

    /// Remembers that `user` has a pending message in `stored`'s conversation,
    /// from `stored` on (an earlier pending one there counts from itself).
    fn remember_pending(&self, user: Arc<str>, stored: &ChatMessage) {
        let mut pending = self.pending.lock();
        let waiting = pending.entry(user).or_insert_with(Vec::new);
        if waiting.iter().any(|p| *p.conversation == *stored.room) {
            return;
        }
        waiting.push(Pending {
            conversation: stored.room.to_string(),
            from: Position {
                offset: stored.offset.unwrap_or(1) - 1,
                epoch: stored.epoch.as_deref().map(str::to_string),
            },
        });
        let total: usize = pending.values().map(Vec::len).sum();
        if total > MAX_PENDING {
            pending.pop_front();
        }
    }

    pub(crate) fn take_pending(&self, user: &str) -> Vec<Pending> {
        self.pending.lock().remove(user).unwrap_or_default()
    }

    /// Forgets the least recently active rooms, then their oldest messages, until
    /// the bounds hold again; `just_written` is the most recent room.
    fn enforce(&self, rooms: &mut Rooms, just_written: &str) {
        while rooms.logs.len() > self.bounds.max_rooms {
            if let Some((_, log)) = rooms.logs.pop_front() {
                rooms.bytes -= log.bytes;
            }
        }
        while rooms.bytes > self.bounds.max_bytes && rooms.forget_oldest(just_written) {}
    }

    /// The last member of `room` left: its idle time starts now.
    pub(crate) fn vacated(&self, room: &str) {
        self.vacated_at(room, Instant::now());
    }

    fn vacated_at(&self, room: &str, now: Instant) {
        if let Some(log) = self.rooms.lock().logs.to_back(room) {
            log.last_active = now;
        }
    }

    /// Forgets the rooms idle for longer than `idle` that nobody is in
    /// (`occupied` is asked with the history locked, so nobody writes to a room
    /// between the answer and its removal). Returns how many were forgotten.
    pub(crate) fn expire_idle(&self, idle: Duration, occupied: impl Fn(&str) -> bool) -> usize {
        self.expire_idle_at(Instant::now(), idle, occupied)
    }

    fn expire_idle_at(
        &self,
        now: Instant,
        idle: Duration,
        occupied: impl Fn(&str) -> bool,
    ) -> usize {
        let Some(cutoff) = now.checked_sub(idle) else {
            return 0;
        };
        let mut rooms = self.rooms.lock();
        // Rooms are in order of activity: the idle ones are a prefix.
        let idle_rooms: Vec<Arc<str>> = rooms
            .logs
            .iter()
            .take_while(|(_, log)| log.last_active <= cutoff)
            .filter(|(room, _)| !occupied(room))
            .map(|(room, _)| room.clone())
            .collect();
        for room in &idle_rooms {
            rooms.remove_room(room);
        }
        idle_rooms.len()
    }

    /// Rooms kept and their counted bytes.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let rooms = self.rooms.lock();
        (rooms.logs.len(), rooms.bytes)
    }

    pub(crate) fn page(
        &self,
        room: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, HistoryError> {
        let before = integer_cursor(before)?.unwrap_or(i64::MAX);
        let rooms = self.rooms.lock();
        let Some(log) = rooms.logs.get(room) else {
            return Ok(Page {
                messages: Vec::new(),
                has_more: false,
                head: Head::default(),
            });
        };
        let head = log.head();
        let log = &log.messages;
        // Ids grow along the deque, so the messages before the cursor are a prefix.
        let end = log.partition_point(|(id, _, _)| *id < before);
        let start = end.saturating_sub(limit);
        Ok(Page {
            messages: log.range(start..end).map(|(_, m, _)| m.clone()).collect(),
            has_more: start > 0,
            head,
        })
    }

    pub(crate) fn after(
        &self,
        room: &str,
        from: &Position,
        limit: usize,
        max_missing: u64,
    ) -> Found {
        let rooms = self.rooms.lock();
        let Some(log) = rooms.logs.get(room) else {
            return Found {
                head: Head::default(),
                messages: Vec::new(),
            };
        };
        let head = log.head();
        if precheck(&head, from, max_missing).is_some() {
            return Found {
                head,
                messages: Vec::new(),
            };
        }
        // Offsets grow along the deque, so the messages after `from` are a suffix.
        let start = log
            .messages
            .partition_point(|(_, m, _)| m.offset.unwrap_or(0) <= from.offset);
        Found {
            head,
            messages: log
                .messages
                .range(start..)
                .take(limit)
                .map(|(_, m, _)| m.clone())
                .collect(),
        }
    }
}

impl RoomLog {
    fn head(&self) -> Head {
        Head {
            epoch: Some(self.epoch.clone()),
            offset: self.last_offset,
        }
    }
}

/// What a stored message counts against `history.memory_max_bytes`.
fn message_bytes((_, message, key): &Stored) -> usize {
    MESSAGE_OVERHEAD
        + message.text.len()
        + message.user.len()
        + message.user_id.as_deref().map_or(0, str::len)
        + message.id.as_deref().map_or(0, str::len)
        + message
            .to
            .as_ref()
            .map_or(0, |to| to.id.len() + to.name.len())
        + key.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{After, LostReason};
    use crate::protocol::User;

    fn message(room: &str, text: &str) -> NewMessage {
        NewMessage {
            room: room.into(),
            user: User {
                id: "u".into(),
                name: "U".into(),
            },
            text: text.into(),
            ts: 1,
            key: text.into(),
            sender: None,
            to: None,
            pending: false,
        }
    }

    fn bounds(max_rooms: usize, max_bytes: usize) -> MemoryBounds {
        MemoryBounds {
            max_per_room: 100,
            max_rooms,
            max_bytes,
        }
    }

    fn texts(history: &MemoryHistory, room: &str) -> Vec<String> {
        let page = history.page(room, None, 1000).unwrap();
        page.messages.into_iter().map(|m| m.text).collect()
    }

    #[test]
    fn pages_and_bounds() {
        let history = MemoryHistory::with_bounds(MemoryBounds {
            max_per_room: 3,
            ..bounds(usize::MAX, usize::MAX)
        });
        let stored = history.append((0..5).map(|i| message("r", &i.to_string())).collect());
        assert_eq!(stored[4].id.as_deref(), Some("5"));
        let page = history.page("r", None, 10).unwrap();
        let texts: Vec<_> = page.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["2", "3", "4"]);
        assert!(!page.has_more);
        let page = history.page("r", Some("5"), 1).unwrap();
        assert_eq!(page.messages[0].text, "3");
        assert!(page.has_more);
        assert!(matches!(
            history.page("r", Some("x"), 1),
            Err(HistoryError::BadCursor(_))
        ));
        assert!(history.page("other", None, 5).unwrap().messages.is_empty());
    }

    #[test]
    fn too_many_rooms_forget_the_least_recently_active() {
        let history = MemoryHistory::with_bounds(bounds(3, usize::MAX));
        for room in ["a", "b", "c"] {
            history.append(vec![message(room, &format!("{room}1"))]);
        }
        // "a" is written to again, so "b" is now the least recently active.
        history.append(vec![message("a", "a2")]);
        history.append(vec![message("d", "d1")]);
        assert_eq!(history.usage().0, 3);
        assert!(texts(&history, "b").is_empty());
        assert_eq!(texts(&history, "a"), ["a1", "a2"]);
        // A member leaving counts as activity too: "c" outlives "a" now.
        history.vacated("c");
        history.append(vec![message("e", "e1")]);
        assert!(texts(&history, "a").is_empty());
        assert_eq!(texts(&history, "c"), ["c1"]);
    }

    #[test]
    fn bytes_are_bounded_oldest_messages_of_idle_rooms_first() {
        let text = "x".repeat(1000);
        let sample = message("a", &format!("0{text}"));
        let key = sample.key.clone();
        let one = message_bytes(&(1, sample.stored("1".into(), None), key));
        // Room for a little over four messages and their rooms.
        let max_bytes = 4 * one + 2 * (ROOM_OVERHEAD + 1) + 100;
        let history = MemoryHistory::with_bounds(bounds(100, max_bytes));
        for i in 0..3 {
            history.append(vec![message("a", &format!("{i}{text}"))]);
        }
        for i in 0..3 {
            history.append(vec![message("b", &format!("{i}{text}"))]);
        }
        let (rooms, bytes) = history.usage();
        assert!(bytes <= max_bytes, "{bytes} > {max_bytes}");
        assert_eq!(rooms, 2);
        // "a" was written to before "b": its oldest messages went first.
        assert_eq!(texts(&history, "a").len(), 1);
        assert_eq!(texts(&history, "b").len(), 3);
        // A single message bigger than the whole bound is still kept (alone).
        let huge = "y".repeat(max_bytes);
        history.append(vec![message("c", &huge)]);
        assert_eq!(history.usage().0, 1);
        assert_eq!(texts(&history, "c"), [huge]);
        // Counting stays exact through removals: everything gone, nothing counted.
        history.expire_idle_at(
            Instant::now() + Duration::from_secs(1),
            Duration::ZERO,
            |_| false,
        );
        assert_eq!(history.usage(), (0, 0));
    }

    #[test]
    fn idle_rooms_nobody_is_in_are_forgotten() {
        let history = MemoryHistory::with_bounds(bounds(100, usize::MAX));
        let start = Instant::now();
        let idle = Duration::from_secs(60);
        let at = |secs| start + Duration::from_secs(secs);
        history.append_at(vec![message("quiet", "q")], at(0));
        history.append_at(vec![message("occupied", "o")], at(0));
        history.append_at(vec![message("left", "l")], at(0));
        history.vacated_at("left", at(30));
        history.append_at(vec![message("busy", "b")], at(50));
        let occupied = |room: &str| room == "occupied";
        assert_eq!(history.expire_idle_at(at(60), idle, occupied), 1);
        assert!(texts(&history, "quiet").is_empty());
        assert_eq!(texts(&history, "occupied"), ["o"]);
        assert_eq!(history.expire_idle_at(at(89), idle, occupied), 0);
        assert_eq!(history.expire_idle_at(at(90), idle, occupied), 1);
        assert!(texts(&history, "left").is_empty());
        assert_eq!(texts(&history, "busy"), ["b"]);
        // Once its members are gone, the occupied room expires as well.
        assert_eq!(history.expire_idle_at(at(200), idle, |_| false), 2);
        assert_eq!(history.usage(), (0, 0));
    }

    #[test]
    fn a_forgotten_room_starts_a_new_epoch() {
        let history = MemoryHistory::with_bounds(bounds(1, usize::MAX));
        let first = history.append(vec![message("r", "1"), message("r", "2")]);
        assert_eq!(first[1].offset, Some(2));
        // A second room pushes the first out (max_rooms 1).
        history.append(vec![message("other", "x")]);
        let again = history.append(vec![message("r", "3")]);
        assert_eq!(again[0].offset, Some(1));
        assert_ne!(again[0].epoch, first[0].epoch);
        let from = Position {
            offset: 2,
            epoch: first[0].epoch.as_deref().map(str::to_string),
        };
        let found = history.after("r", &from, 10, 10);
        assert_eq!(found.head.epoch, again[0].epoch);
        assert_eq!(
            found.judge(&from, 10),
            After::Lost {
                reason: LostReason::Epoch,
                head: Head {
                    epoch: again[0].epoch.clone(),
                    offset: 1
                }
            }
        );
    }
}
