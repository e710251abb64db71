//! Knowing when the long-polling clients told goodbye at stop have fetched it.
//!
//! A WebSocket client's goodbye is on its connection at once; a long-polling
//! client gets it with a poll: the one it has open, or its next one, which may
//! come a little later on a new TCP connection. Stop keeps listening until each
//! of them has been answered a poll since the goodbye (or a grace period ends).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct GoodbyeTracker {
    /// Set while stop waits for polls, so that polls are looked up only then.
    active: AtomicBool,
    /// Sessions (Engine.IO sids) told goodbye whose polls were not answered since.
    waiting: Mutex<HashSet<String>>,
    fetched: Notify,
}

impl GoodbyeTracker {
    /// Starts waiting for these polling sessions; call it after the goodbye is
    /// queued, so that any poll answered from now on carries it.
    pub(crate) fn expect(&self, sids: impl IntoIterator<Item = String>) {
        let mut waiting = self.waiting.lock();
        waiting.extend(sids);
        self.active.store(!waiting.is_empty(), Ordering::Release);
    }

    /// A poll of this session was answered.
    pub(crate) fn polled(&self, sid: &str) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let mut waiting = self.waiting.lock();
        if waiting.remove(sid) && waiting.is_empty() {
            self.active.store(false, Ordering::Release);
            self.fetched.notify_waiters();
        }
    }

    /// Waits until every expected session has been answered a poll.
    pub(crate) async fn all_fetched(&self) {
        loop {
            let fetched = self.fetched.notified();
            tokio::pin!(fetched);
            fetched.as_mut().enable();
            if self.waiting.lock().is_empty() {
                return;
            }
            fetched.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn waits_for_every_session() {
        let tracker = Arc::new(GoodbyeTracker::default());
        tracker.polled("a"); // before the goodbye: does not count
        tracker.expect(["a".to_string(), "b".to_string()]);
        let waiter = tokio::spawn({
            let tracker = tracker.clone();
            async move { tracker.all_fetched().await }
        });
        tracker.polled("a");
        tracker.polled("c");
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        tracker.polled("b");
        waiter.await.unwrap();
        tracker.expect(["a".to_string()]);
        assert!(
            tracker.active.load(Ordering::Acquire),
            "a second round waits again"
        );
        tracker.polled("a");
        tracker.all_fetched().await;
    }
}
