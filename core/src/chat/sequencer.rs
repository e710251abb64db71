//! Applies one connection's requests one at a time, in arrival order.
//!
//! Socket.IO handlers run as separate tasks, so two requests of one connection
//! (say `join` then `message`) could otherwise be applied in either order. Each
//! request takes a ticket synchronously, in arrival order, and waits for its turn.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct Sequencer {
    next_ticket: AtomicU64,
    serving: AtomicU64,
    turn_changed: Notify,
}

/// Holding it means it is this request's turn; dropping it passes the turn on,
/// also when the request's task is cancelled.
pub(crate) struct Turn<'a>(&'a Sequencer);

impl Sequencer {
    /// Takes the next ticket. Must be called in arrival order (synchronously in the
    /// handler, before any await).
    pub(crate) fn ticket(&self) -> u64 {
        self.next_ticket.fetch_add(1, Ordering::AcqRel)
    }

    /// Requests taken but not yet finished.
    pub(crate) fn pending(&self) -> u64 {
        self.next_ticket
            .load(Ordering::Acquire)
            .saturating_sub(self.serving.load(Ordering::Acquire))
    }

    pub(crate) async fn wait(&self, ticket: u64) -> Turn<'_> {
        loop {
            let notified = self.turn_changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a turn change in between is not missed.
            notified.as_mut().enable();
            if self.serving.load(Ordering::Acquire) == ticket {
                return Turn(self);
            }
            notified.await;
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.serving.fetch_add(1, Ordering::AcqRel);
        self.0.turn_changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn turns_follow_ticket_order() {
        let sequencer = Arc::new(Sequencer::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let tickets: Vec<u64> = (0..50).map(|_| sequencer.ticket()).collect();
        assert_eq!(sequencer.pending(), 50);
        // Spawned in reverse so that arrival at `wait` is the opposite of ticket order.
        let tasks: Vec<_> = tickets
            .into_iter()
            .rev()
            .map(|ticket| {
                let (sequencer, order) = (sequencer.clone(), order.clone());
                tokio::spawn(async move {
                    let _turn = sequencer.wait(ticket).await;
                    tokio::task::yield_now().await;
                    order.lock().unwrap().push(ticket);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..50).collect::<Vec<_>>());
        assert_eq!(sequencer.pending(), 0);
    }
}
