//! A subscription's buffer between the Redis connection and its consumer
//! (socketioxide's adapter, the announcement consumer, the change listener):
//! bounded in messages and in bytes, because the connection's reader must never
//! wait for a slow consumer (every channel shares it). What does not fit is
//! dropped, counted (`cluster.pubsub_dropped` in the stats), logged at a falling
//! rate, and reported to whoever must catch up (see `Drops::lost`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use socketioxide_redis::drivers::{ChanItem, MessageStream};
use tokio::sync::{mpsc, Notify};

/// Bytes of payload one subscription may hold for its consumer. Room messages
/// are at most a few kilobytes, so the message bound is reached first in normal
/// traffic; this one stops large host emits from piling up.
pub(crate) const SUBSCRIPTION_MAX_BYTES: usize = 32 * 1024 * 1024;

/// The messages every subscription of a driver dropped.
#[derive(Default)]
pub(crate) struct Drops {
    count: AtomicU64,
    lost: Notify,
}

impl Drops {
    /// Messages dropped since start.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits until a message was dropped since the last wait returned (a drop
    /// before the first wait counts too).
    pub(crate) async fn lost(&self) {
        self.lost.notified().await;
    }

    fn record(&self, channel: &str, why: &str) {
        let total = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        // A warning at each power of two: a flood of drops must not flood the log.
        if total.is_power_of_two() {
            tracing::warn!(
                channel,
                dropped = total,
                "cluster pub/sub: a message was dropped ({why}); room lists will be pushed \
                 again, room messages stay in history"
            );
        }
        self.lost.notify_one();
    }
}

/// The sending half of one subscription, kept by the driver.
pub(crate) struct Inbox {
    sender: mpsc::Sender<ChanItem>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    drops: Arc<Drops>,
}

impl Inbox {
    /// A buffer of `size` messages and `max_bytes` bytes, and the stream that
    /// reads it. Must run on a tokio runtime (a task moves messages to the
    /// stream, releasing their bytes).
    pub(crate) fn new(
        size: usize,
        max_bytes: usize,
        drops: Arc<Drops>,
    ) -> (Self, MessageStream<ChanItem>) {
        let (sender, mut buffered) = mpsc::channel::<ChanItem>(size.max(1));
        let (out, stream) = mpsc::channel(1);
        let bytes = Arc::new(AtomicUsize::new(0));
        let held = bytes.clone();
        tokio::spawn(async move {
            while let Some(item) = buffered.recv().await {
                held.fetch_sub(item.1.len(), Ordering::AcqRel);
                if out.send(item).await.is_err() {
                    return;
                }
            }
        });
        let inbox = Self {
            sender,
            bytes,
            max_bytes,
            drops,
        };
        (inbox, MessageStream::new(stream))
    }

    /// Queues a message for the consumer, or drops (and counts) it when the
    /// buffer is full in messages or bytes. A consumer that is gone is no drop.
    pub(crate) fn offer(&self, item: ChanItem) {
        let size = item.1.len();
        let before = self.bytes.fetch_add(size, Ordering::AcqRel);
        if before + size > self.max_bytes && before > 0 {
            self.bytes.fetch_sub(size, Ordering::AcqRel);
            self.drops.record(&item.0, "its buffer is full in bytes");
            return;
        }
        match self.sender.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                self.bytes.fetch_sub(size, Ordering::AcqRel);
                self.drops.record(&item.0, "its buffer is full");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.bytes.fetch_sub(size, Ordering::AcqRel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn item(bytes: usize) -> ChanItem {
        ("chan".to_string(), vec![0; bytes])
    }

    /// A burst over the buffer while the consumer reads nothing: the rest is
    /// dropped and counted, the drop is reported, and once the consumer caught up
    /// the buffer takes messages again.
    #[tokio::test]
    async fn a_full_buffer_drops_counts_and_reports() {
        let drops = Arc::new(Drops::default());
        let (inbox, mut stream) = Inbox::new(4, usize::MAX, drops.clone());
        for _ in 0..100 {
            inbox.offer(item(10));
        }
        // The buffer and the one message in the hand of the task that moves them.
        let kept = 100 - drops.count();
        assert!((4..=6).contains(&kept), "{kept} kept");
        drops.lost().await;
        for _ in 0..kept {
            assert_eq!(stream.next().await.unwrap().1.len(), 10);
        }
        let before = drops.count();
        inbox.offer(item(10));
        assert_eq!(stream.next().await.unwrap().1.len(), 10);
        assert_eq!(drops.count(), before);
    }

    /// Bytes bound the buffer too: big payloads are dropped long before the
    /// message bound, and released bytes make room again.
    #[tokio::test]
    async fn a_buffer_is_bounded_in_bytes() {
        let drops = Arc::new(Drops::default());
        let (inbox, mut stream) = Inbox::new(1_000, 1_000, drops.clone());
        for _ in 0..10 {
            inbox.offer(item(400));
        }
        let kept = 10 - drops.count();
        // Two fit the budget; at most two more are past it, in the task's hand.
        assert!((2..=4).contains(&kept), "{kept} kept");
        assert!(inbox.bytes.load(Ordering::Acquire) <= 1_000);
        for _ in 0..kept {
            stream.next().await.unwrap();
        }
        assert_eq!(inbox.bytes.load(Ordering::Acquire), 0);
        // One message larger than the whole budget still passes an empty buffer.
        inbox.offer(item(5_000));
        assert_eq!(stream.next().await.unwrap().1.len(), 5_000);
        drop(inbox);
        assert!(stream.next().await.is_none());
    }
}
