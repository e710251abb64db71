//! Where the engine is in its life (running, draining, farewell, closed), and the
//! requests admitted while it runs.
//!
//! Every part that must behave differently once stop has begun asks this one
//! value; only [`crate::shutdown`] moves it forward.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::goodbye::GoodbyeTracker;
use crate::protocol::{ChatError, ErrorCode};

/// The stop states, in the only order they are entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Serving.
    Running = 0,
    /// Stop has begun: new connections and requests are refused, the admitted
    /// requests finish, accepted messages are stored and delivered.
    Draining = 1,
    /// Clients are being told goodbye and disconnected.
    Farewell = 2,
    /// Every connection is closed and the history is closed.
    Closed = 3,
}

pub(crate) struct Lifecycle {
    phase: AtomicU8,
    /// Cancelled when stop begins; background tasks end on it.
    stopping: CancellationToken,
    /// Requests admitted and not finished, over all connections.
    in_flight: AtomicU64,
    drained: Notify,
    /// Long-polling clients told goodbye at stop, until they polled for it.
    pub goodbye: Arc<GoodbyeTracker>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Running as u8),
            stopping: CancellationToken::new(),
            in_flight: AtomicU64::new(0),
            drained: Notify::new(),
            goodbye: Arc::default(),
        }
    }
}

impl Lifecycle {
    pub(crate) fn phase(&self) -> Phase {
        // SeqCst with `in_flight`: see `admit`.
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Running,
            1 => Phase::Draining,
            2 => Phase::Farewell,
            _ => Phase::Closed,
        }
    }

    /// Whether stop has begun.
    pub(crate) fn stopping(&self) -> bool {
        self.phase() != Phase::Running
    }

    /// Resolves once stop has begun.
    pub(crate) fn stopped(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.stopping.cancelled()
    }

    /// A token cancelled when stop begins, for tasks outside the chat.
    pub(crate) fn stopping_token(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Moves to `phase` (never back).
    pub(crate) fn enter(&self, phase: Phase) {
        self.phase.fetch_max(phase as u8, Ordering::SeqCst);
        if phase >= Phase::Draining {
            self.stopping.cancel();
        }
    }

    /// Admits one request, counted until the guard is dropped; refused once stop
    /// has begun. Counted before the check: a stop either sees this request in
    /// flight and waits for it, or this request sees the stop; never neither.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<InFlight, ChatError> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self.clone());
        if self.stopping() {
            return Err(ChatError::shutting_down());
        }
        Ok(guard)
    }

    /// Waits until every admitted request has finished (at stop, after new ones
    /// are refused), so that nothing accepted reaches the pipeline after its flush.
    pub(crate) async fn requests_drained(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            drained.await;
        }
    }
}

/// An admitted request, counted until dropped.
pub(crate) struct InFlight(Arc<Lifecycle>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

impl ChatError {
    /// The refusal of anything asked while the engine stops.
    pub(crate) fn shutting_down() -> Self {
        ChatError::new(ErrorCode::ShuttingDown, "the server is stopping")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admitted_requests_are_drained_before_stop_goes_on() {
        let lifecycle = Arc::new(Lifecycle::default());
        let request = lifecycle.admit().unwrap();
        lifecycle.enter(Phase::Draining);
        assert_eq!(
            lifecycle.admit().err().map(|e| e.code),
            Some(ErrorCode::ShuttingDown)
        );
        let waiter = tokio::spawn({
            let lifecycle = lifecycle.clone();
            async move { lifecycle.requests_drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(request);
        waiter.await.unwrap();
        lifecycle.enter(Phase::Running);
        assert_eq!(lifecycle.phase(), Phase::Draining, "phases never go back");
    }
}
