//! A connection's room messages that are in the pipeline, not yet stored and
//! delivered (or refused), counted per room, and waiting until a room has none.
//!
//! A `message` gives up the connection's turn as soon as it is queued, so that a
//! slow or stuck store holds no other request of the connection. What must not
//! overtake it is what would tell the room something after it: leaving the room
//! (a `leave`, a `logout`, the disconnect) and reading its history. Those wait
//! here for the connection's earlier messages to that room to settle.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct Unsettled {
    per_room: Mutex<HashMap<Arc<str>, usize>>,
    settled: Notify,
}

/// One message in the pipeline; dropping it settles the message, also when the
/// pipeline drops it unanswered (the engine stopping).
pub(crate) struct InPipeline {
    unsettled: Arc<Unsettled>,
    room: Arc<str>,
}

impl Unsettled {
    /// Counts a message to `room` until the returned guard is dropped.
    pub(crate) fn track(self: &Arc<Self>, room: Arc<str>) -> InPipeline {
        *self.per_room.lock().entry(room.clone()).or_default() += 1;
        InPipeline {
            unsettled: self.clone(),
            room,
        }
    }

    /// Resolves once no message to `room` is in the pipeline (`None`: to any room).
    pub(crate) async fn settled(&self, room: Option<&str>) {
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            // Registered before the check, so a settle in between is not missed.
            notified.as_mut().enable();
            let done = {
                let per_room = self.per_room.lock();
                match room {
                    Some(room) => !per_room.contains_key(room),
                    None => per_room.is_empty(),
                }
            };
            if done {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InPipeline {
    fn drop(&mut self) {
        {
            let mut per_room = self.unsettled.per_room.lock();
            if let Some(count) = per_room.get_mut(&self.room) {
                *count -= 1;
                if *count == 0 {
                    per_room.remove(&self.room);
                }
            }
        }
        self.unsettled.settled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_for_its_room_only() {
        let unsettled = Arc::new(Unsettled::default());
        let first = unsettled.track("a".into());
        let second = unsettled.track("a".into());
        let other = unsettled.track("b".into());
        unsettled.settled(Some("c")).await;
        let waiting = {
            let unsettled = unsettled.clone();
            tokio::spawn(async move { unsettled.settled(Some("a")).await })
        };
        drop(first);
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "one message to a is still unsettled"
        );
        drop(second);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("settled once a has none")
            .unwrap();
        let all = {
            let unsettled = unsettled.clone();
            tokio::spawn(async move { unsettled.settled(None).await })
        };
        tokio::task::yield_now().await;
        assert!(!all.is_finished(), "b still has one");
        drop(other);
        tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .expect("settled once no room has any")
            .unwrap();
    }
}
