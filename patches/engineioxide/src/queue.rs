//! The bounded queue of packets waiting for a socket's transport.
//!
//! It has the part of tokio's `mpsc` API that the socket and its transports use
//! (`try_send`, `send`, `try_reserve`, `recv`, `try_recv`, `close`,
//! `closed`; the transports receive with `recv_any`/`poll_any`, see below), one
//! producer handle and one consumer. Unlike `mpsc`, it holds no
//! memory while it is empty: `mpsc::channel` allocates its first block of 32
//! slots at creation (about 6 KB for a [`PacketBuf`](engineioxide_core::PacketBuf),
//! whatever the bound), and every idle session kept that block for its whole
//! life. Here the slots are a [`VecDeque`] that grows with a burst and is given
//! back when the consumer finds it empty and goes to sleep.
//!
//! It is bounded in items and in bytes ([`Weigh`]): a client that stops reading
//! while its requests are answered with large packets would otherwise make the
//! server hold `capacity` of the largest packets it sends. An item is always
//! accepted into an empty queue, so the byte bound can be passed by one item.
//!
//! Beside the queue there is one slot for a volatile item (socket.io's
//! `volatile` emits): outside the bounds, replaced by the next volatile item if
//! the consumer has not taken it yet, and taken after what is queued.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;
use tokio::sync::mpsc::error::{SendError, TryRecvError, TrySendError};

/// What a packet buffer counts against a queue's byte bound: its texts and
/// binary data.
pub(crate) fn packet_bytes(packets: &engineioxide_core::PacketBuf) -> usize {
    use engineioxide_core::Packet;
    packets
        .iter()
        .map(|packet| match packet {
            Packet::Message(text) => text.len(),
            Packet::Binary(data) | Packet::BinaryV3(data) => data.len(),
            _ => 0,
        })
        .sum()
}

/// A queue holding at most `capacity` items (queued or reserved by a [`Permit`])
/// and, unless it is empty, items of at most `capacity_bytes` bytes in all, as
/// `weigh` counts them.
pub(crate) fn channel<T>(
    capacity: usize,
    capacity_bytes: usize,
    weigh: fn(&T) -> usize,
) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "a queue needs room for one item");
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            bytes: 0,
            reserved: 0,
            closed: false,
            sender_gone: false,
            rx_waker: None,
            volatile: None,
        }),
        capacity,
        capacity_bytes,
        weigh,
        changed: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    capacity_bytes: usize,
    /// What an item counts against `capacity_bytes`.
    weigh: fn(&T) -> usize,
    /// Wakes senders waiting for room and waiters of [`Sender::closed`].
    changed: Notify,
}

struct State<T> {
    items: VecDeque<T>,
    /// What the queued items weigh.
    bytes: usize,
    /// Slots promised to permits not used yet.
    reserved: usize,
    /// The consumer closed the queue or is gone: nothing more is accepted.
    closed: bool,
    /// The producer is gone: the consumer ends once the queue is drained.
    sender_gone: bool,
    rx_waker: Option<Waker>,
    /// The latest volatile item the consumer has not taken.
    volatile: Option<T>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock cannot leave the state half-changed
        // (every change is one field at a time), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a new item (or permit) must wait: no slot left, or the bytes
    /// queued reach the byte bound (an empty queue always takes one).
    fn is_full(&self, state: &State<T>) -> bool {
        state.items.len() + state.reserved >= self.capacity
            || (!state.items.is_empty() && state.bytes >= self.capacity_bytes)
    }

    /// Queues `item` (the slot is already accounted for) and wakes the consumer.
    fn push(&self, mut state: MutexGuard<'_, State<T>>, item: T) {
        state.bytes += (self.weigh)(&item);
        state.items.push_back(item);
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The producer's handle.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item` if there is room and the queue is open.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let state = self.shared.lock();
        if state.closed {
            return Err(TrySendError::Closed(item));
        }
        if self.shared.is_full(&state) {
            return Err(TrySendError::Full(item));
        }
        self.shared.push(state, item);
        Ok(())
    }

    /// Queues a heartbeat packet whatever the bounds, failing only once the queue
    /// is closed. A full queue means a client that reads slowly, not one that is
    /// gone: its ping waits behind what it has not read yet, and the ping timeout
    /// decides. At most one such packet is outstanding per heartbeat interval.
    pub(crate) fn send_heartbeat(&self, item: T) -> Result<(), TrySendError<T>> {
        let state = self.shared.lock();
        if state.closed {
            return Err(TrySendError::Closed(item));
        }
        self.shared.push(state, item);
        Ok(())
    }

    /// Puts `item` in the volatile slot, replacing an item the consumer has not
    /// taken yet; `false` once the queue is closed.
    pub(crate) fn send_volatile(&self, item: T) -> bool {
        let mut state = self.shared.lock();
        if state.closed {
            return false;
        }
        let replaced = state.volatile.replace(item);
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        // Dropped outside the lock: an item's drop may do anything.
        drop(replaced);
        true
    }

    /// Queues `item`, waiting for room; fails once the queue is closed.
    pub(crate) async fn send(&self, mut item: T) -> Result<(), SendError<T>> {
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            // Registered before trying, so room made in between is not missed.
            changed.as_mut().enable();
            match self.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(back)) => return Err(SendError(back)),
                Err(TrySendError::Full(back)) => item = back,
            }
            changed.await;
        }
    }

    /// Holds a slot for one item, sent later with [`Permit::send`].
    pub(crate) fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(TrySendError::Closed(()));
        }
        if self.shared.is_full(&state) {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(Permit { sender: self })
    }

    /// Whether the consumer closed the queue (or is gone).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Resolves once the consumer closed the queue (or is gone).
    pub(crate) async fn closed(&self) {
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_closed() {
                return;
            }
            changed.await;
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.sender_gone = true;
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Sender")
            .field("queued", &state.items.len())
            .field("reserved", &state.reserved)
            .field("capacity", &self.shared.capacity)
            .field("closed", &state.closed)
            .finish()
    }
}

/// A slot held for one item; dropping it unused gives the slot back.
pub(crate) struct Permit<'a, T> {
    sender: &'a Sender<T>,
}

impl<T> Permit<'_, T> {
    /// Queues `item` in the held slot. After the queue was closed the item is
    /// dropped, as tokio's permits do.
    pub(crate) fn send(self, item: T) {
        let shared = &self.sender.shared;
        std::mem::forget(self);
        let mut state = shared.lock();
        state.reserved -= 1;
        if state.closed {
            return;
        }
        shared.push(state, item);
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        self.sender.shared.lock().reserved -= 1;
        self.sender.shared.changed.notify_waiters();
    }
}

/// What [`Receiver::recv_any`] took.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<T> {
    Queued(T),
    Volatile(T),
}

impl<T> Next<T> {
    pub(crate) fn into_inner(self) -> T {
        match self {
            Next::Queued(item) | Next::Volatile(item) => item,
        }
    }
}

/// The consumer's handle.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next item; `None` once the queue is closed (or the producer gone)
    /// and drained. (The transports take volatile items too: [`Self::recv_any`].)
    #[cfg(any(test, feature = "__test_harness"))]
    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_next(cx, false))
            .await
            .map(Next::into_inner)
    }

    /// The next item, without waiting.
    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.lock();
        match self.pop(&mut state) {
            Some(item) => Ok(item),
            None if state.closed || state.sender_gone => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// The next queued item or, when none is queued, the volatile one; `None`
    /// once the queue is closed (or the producer gone) and both are drained.
    pub(crate) async fn recv_any(&mut self) -> Option<Next<T>> {
        poll_fn(|cx| self.poll_any(cx)).await
    }

    pub(crate) fn poll_any(&mut self, cx: &mut Context<'_>) -> Poll<Option<Next<T>>> {
        self.poll_next(cx, true)
    }

    /// The next queued item (then, with `volatile`, the slot's), under one lock.
    fn poll_next(&mut self, cx: &mut Context<'_>, volatile: bool) -> Poll<Option<Next<T>>> {
        let mut state = self.shared.lock();
        if let Some(item) = self.pop(&mut state) {
            return Poll::Ready(Some(Next::Queued(item)));
        }
        if volatile && let Some(item) = state.volatile.take() {
            return Poll::Ready(Some(Next::Volatile(item)));
        }
        if state.closed || state.sender_gone {
            return Poll::Ready(None);
        }
        // Going to sleep on an empty queue: give back what the last burst grew it
        // to, so that an idle session holds no slots. `send_volatile` wakes the
        // same waker.
        state.items = VecDeque::new();
        match &mut state.rx_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Stops accepting items; those queued can still be received.
    pub(crate) fn close(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_waiters();
    }

    fn pop(&self, state: &mut State<T>) -> Option<T> {
        let was_full = self.shared.is_full(state);
        let item = state.items.pop_front()?;
        state.bytes -= (self.shared.weigh)(&item);
        // A sender may be waiting for room (only `send` waits, and only when full).
        if was_full {
            self.shared.changed.notify_waiters();
        }
        Some(item)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let items = {
            let mut state = self.shared.lock();
            state.closed = true;
            (std::mem::take(&mut state.items), state.volatile.take())
        };
        self.shared.changed.notify_waiters();
        // Dropped outside the lock: an item's drop may do anything.
        drop(items);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Receiver")
            .field("queued", &state.items.len())
            .field("closed", &state.closed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn bounded_by_items_and_permits() {
        let (tx, mut rx) = channel::<u32>(3, usize::MAX, |_| 4);
        tx.try_send(1).unwrap();
        let permit = tx.try_reserve().unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
        permit.send(9);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(9));
        // An unused permit gives its slot back.
        let permits = [tx.try_reserve().unwrap(), tx.try_reserve().unwrap()];
        assert!(tx.try_send(4).is_ok());
        assert!(tx.try_send(5).is_err());
        drop(permits);
        tx.try_send(5).unwrap();
        tx.try_send(6).unwrap();
        assert_eq!(rx.try_recv(), Ok(4));
    }

    #[tokio::test]
    async fn bounded_in_bytes_but_an_empty_queue_takes_anything() {
        let (tx, mut rx) = channel::<[u8; 100]>(1024, 250, |_| 100);
        tx.try_send([1; 100]).unwrap();
        tx.try_send([2; 100]).unwrap();
        tx.try_send([3; 100]).unwrap();
        // 300 bytes queued, over the 250 of the bound: full, for permits too.
        assert!(matches!(tx.try_send([4; 100]), Err(TrySendError::Full(_))));
        assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
        assert_eq!(rx.recv().await, Some([1; 100]));
        // 200 bytes: room again.
        tx.try_reserve().unwrap().send([5; 100]);
        while rx.try_recv().is_ok() {}
        // One item larger than the whole bound goes into an empty queue.
        let (big_tx, mut big_rx) = channel::<[u8; 1000]>(8, 250, |_| 1000);
        big_tx.try_send([7; 1000]).unwrap();
        assert!(big_tx.try_send([8; 1000]).is_err());
        assert_eq!(big_rx.recv().await, Some([7; 1000]));
        big_tx.try_send([9; 1000]).unwrap();
    }

    #[tokio::test]
    async fn empty_queue_holds_no_slots() {
        let (tx, mut rx) = channel::<[u8; 100]>(1024, usize::MAX, |_| 100);
        assert_eq!(tx.shared.lock().items.capacity(), 0);
        for _ in 0..500 {
            tx.try_send([0; 100]).unwrap();
        }
        while rx.try_recv().is_ok() {}
        assert!(tx.shared.lock().items.capacity() >= 500);
        // The consumer goes to sleep on the empty queue: the slots are given back.
        let waiting = tokio::time::timeout(Duration::from_millis(10), rx.recv()).await;
        assert!(waiting.is_err());
        assert_eq!(tx.shared.lock().items.capacity(), 0);
        tx.try_send([1; 100]).unwrap();
        assert_eq!(rx.recv().await, Some([1; 100]));
    }

    #[tokio::test]
    async fn volatile_slot_keeps_the_latest_item_after_the_queued_ones() {
        let (tx, mut rx) = channel::<u8>(1, usize::MAX, |_| 0);
        tx.try_send(1).unwrap();
        // Outside the bounds, and a newer item replaces one not taken yet.
        assert!(tx.send_volatile(2));
        assert!(tx.send_volatile(3));
        assert_eq!(rx.recv_any().await, Some(Next::Queued(1)));
        assert_eq!(rx.recv_any().await, Some(Next::Volatile(3)));
        // A consumer waiting on an empty queue is woken by a volatile item.
        let waiting = tokio::spawn(async move {
            let next = rx.recv_any().await;
            (next, rx)
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(tx.send_volatile(4));
        let (next, mut rx) = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(next, Some(Next::Volatile(4)));
        assert!(tx.shared.lock().volatile.is_none(), "taken, not kept");
        rx.close();
        assert!(!tx.send_volatile(5));
        assert_eq!(rx.recv_any().await, None);
    }

    #[tokio::test]
    async fn heartbeat_packets_pass_a_full_queue_but_not_a_closed_one() {
        let (tx, mut rx) = channel::<u8>(1, usize::MAX, |_| 0);
        tx.try_send(1).unwrap();
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
        tx.send_heartbeat(3).unwrap();
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(3));
        rx.close();
        assert!(matches!(tx.send_heartbeat(4), Err(TrySendError::Closed(4))));
    }

    #[tokio::test]
    async fn wakes_the_waiting_consumer() {
        let (tx, mut rx) = channel::<u32>(4, usize::MAX, |_| 4);
        let consumer = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(item) = rx.recv().await {
                got.push(item);
            }
            got
        });
        for i in 0..100 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        assert_eq!(consumer.await.unwrap(), (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn close_drains_then_ends_and_refuses() {
        let (tx, mut rx) = channel::<u32>(4, usize::MAX, |_| 4);
        tx.try_send(1).unwrap();
        let closed = tokio::spawn(async move {
            tx.closed().await;
            let refused = matches!(tx.try_send(2), Err(TrySendError::Closed(2)))
                && tx.send(3).await.is_err()
                && tx.is_closed();
            (tx, refused)
        });
        rx.close();
        let (tx, refused) = closed.await.unwrap();
        assert!(refused);
        // A permit taken before the close sends into the void.
        assert!(tx.try_reserve().is_err());
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        drop(tx);
    }

    #[tokio::test]
    async fn send_waits_for_room() {
        let (tx, mut rx) = channel::<u32>(1, usize::MAX, |_| 4);
        tx.try_send(1).unwrap();
        let tx = Arc::new(tx);
        let sender = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(2).await.is_ok() }
        });
        tokio::task::yield_now().await;
        assert_eq!(rx.recv().await, Some(1));
        assert!(sender.await.unwrap());
        assert_eq!(rx.recv().await, Some(2));
    }
}
