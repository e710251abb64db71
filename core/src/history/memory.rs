//! History kept in process memory, bounded per room.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{integer_cursor, HistoryError, NewMessage, Page};
use crate::protocol::ChatMessage;

/// A room's messages with their numeric ids and keys, oldest first.
type RoomLog = VecDeque<(i64, ChatMessage, Arc<str>)>;

pub(crate) struct MemoryHistory {
    max_per_room: usize,
    rooms: Mutex<HashMap<Arc<str>, RoomLog>>,
    next_id: AtomicU64,
}

impl MemoryHistory {
    pub(crate) fn new(max_per_room: usize) -> Self {
        Self {
            max_per_room,
            rooms: Mutex::default(),
            next_id: AtomicU64::new(1),
        }
    }

    pub(crate) fn append(&self, batch: Vec<NewMessage>) -> Vec<ChatMessage> {
        let mut rooms = self.rooms.lock();
        let stored: Vec<ChatMessage> = batch
            .into_iter()
            .map(|message| {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed) as i64;
                let key = message.key.clone();
                let stored = message.stored(id.to_string());
                let log = rooms.entry(stored.room.clone()).or_default();
                if log.len() == self.max_per_room {
                    log.pop_front();
                }
                log.push_back((id, stored.clone(), key));
                stored
            })
            .collect();
        stored
    }

    pub(crate) fn page(
        &self,
        room: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, HistoryError> {
        let before = integer_cursor(before)?.unwrap_or(i64::MAX);
        let rooms = self.rooms.lock();
        let Some(log) = rooms.get(room) else {
            return Ok(Page {
                messages: Vec::new(),
                has_more: false,
            });
        };
        // Ids grow along the deque, so the messages before the cursor are a prefix.
        let end = log.partition_point(|(id, _, _)| *id < before);
        let start = end.saturating_sub(limit);
        Ok(Page {
            messages: log.range(start..end).map(|(_, m, _)| m.clone()).collect(),
            has_more: start > 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        }
    }

    #[test]
    fn pages_and_bounds() {
        let history = MemoryHistory::new(3);
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
}
