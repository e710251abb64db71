//! Concurrent identical reads share one. A read answers every caller that
//! arrived before it started, so N clients asking for the room list at once cost
//! one or two reads of Redis, and no caller gets an answer older than its own
//! request (a client that joined and then asks sees its join).
//!
//! Hand-written rather than a single-flight crate: those share a read already in
//! flight with callers that arrive during it, which could answer a request with
//! what Redis held before the request was sent.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

/// One kind of read (its parameters are the key) and its last answer.
pub(crate) struct SharedRead<K, V> {
    /// Orders arrivals and the starts of reads.
    clock: AtomicU64,
    /// The last read; the lock is held while a read runs, so callers queue
    /// behind it and then take its answer when it started after they arrived.
    last: tokio::sync::Mutex<Option<Done<K, V>>>,
}

struct Done<K, V> {
    started: u64,
    key: K,
    value: V,
}

impl<K, V> Default for SharedRead<K, V> {
    fn default() -> Self {
        Self {
            clock: AtomicU64::new(0),
            last: tokio::sync::Mutex::new(None),
        }
    }
}

impl<K: PartialEq, V: Clone> SharedRead<K, V> {
    /// The answer of a read of `key` that started after this call: the last one
    /// when it did, else `read()` run now.
    pub(crate) async fn get<F>(&self, key: K, read: impl FnOnce() -> F) -> V
    where
        F: Future<Output = V>,
    {
        let arrived = self.clock.fetch_add(1, Ordering::SeqCst);
        let mut last = self.last.lock().await;
        if let Some(done) = &*last {
            if done.started > arrived && done.key == key {
                return done.value.clone();
            }
        }
        let started = self.clock.fetch_add(1, Ordering::SeqCst);
        let value = read().await;
        *last = Some(Done {
            started,
            key,
            value: value.clone(),
        });
        value
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use super::*;

    /// Ten callers arriving during a read share the next one; a caller that
    /// arrived before a read started never gets an answer older than that.
    #[tokio::test]
    async fn callers_waiting_behind_a_read_share_the_next() {
        let shared: Arc<SharedRead<u8, usize>> = Arc::default();
        let reads = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let (shared, reads) = (shared.clone(), reads.clone());
            tokio::spawn(async move {
                shared
                    .get(0, || async {
                        let _ = released.await;
                        reads.fetch_add(1, Ordering::SeqCst) + 1
                    })
                    .await
            })
        };
        // The first read runs (it took two ticks of the clock) before the others arrive.
        while shared.clock.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        let waiting: Vec<_> = (0..10)
            .map(|_| {
                let (shared, reads) = (shared.clone(), reads.clone());
                tokio::spawn(async move {
                    shared
                        .get(0, || async { reads.fetch_add(1, Ordering::SeqCst) + 1 })
                        .await
                })
            })
            .collect();
        while shared.clock.load(Ordering::SeqCst) < 12 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), 1);
        for caller in waiting {
            assert_eq!(
                caller.await.unwrap(),
                2,
                "answered by the read after theirs began"
            );
        }
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // Another key is read on its own.
        assert_eq!(shared.get(1, || async { 7 }).await, 7);
    }
}
