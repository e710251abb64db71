//! The journal in process memory: a queue ordered by sequence number, appended
//! at the back and drained from the front. Lost when the process dies.

use std::collections::VecDeque;
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::Journaled;
use crate::history::NewMessage;

#[derive(Default)]
pub(super) struct MemoryJournal {
    entries: Mutex<VecDeque<Journaled>>,
    /// Entries read or dropped so far: what the linear-replay test counts.
    #[cfg(test)]
    visits: AtomicU64,
}

impl MemoryJournal {
    pub(super) fn append(&self, batch: &[NewMessage]) {
        let mut entries = self.entries.lock();
        let next = entries.back().map_or(1, |last| last.seq + 1);
        for (seq, message) in (next..).zip(batch) {
            let mut message = message.clone();
            message.sender = None;
            entries.push_back(Journaled { seq, message });
        }
    }

    pub(super) fn oldest(&self, limit: usize) -> Vec<Journaled> {
        let entries = self.entries.lock();
        let oldest: Vec<Journaled> = entries.iter().take(limit).cloned().collect();
        #[cfg(test)]
        self.visits
            .fetch_add(oldest.len() as u64, Ordering::Relaxed);
        oldest
    }

    pub(super) fn remove_through(&self, seq: i64) {
        let mut entries = self.entries.lock();
        while entries.front().is_some_and(|first| first.seq <= seq) {
            entries.pop_front();
            #[cfg(test)]
            self.visits.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[cfg(test)]
    pub(super) fn visits(&self) -> u64 {
        self.visits.load(Ordering::Relaxed)
    }
}
