//! Connect gates: a connection to a gated namespace waits for the host's
//! decision (socket.io's `io.use((socket, next) => ...)`), until a deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::events::GateId;

/// The host's decision on a connection waiting at a connect gate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GateDecision {
    /// Let it in: the client gets its `connect`.
    Accept,
    /// Keep it out: the client gets `connect_error` with this message (socket.io's
    /// `next(new Error(message))`).
    Refuse {
        /// What the client's `connect_error` carries as `message`.
        message: String,
    },
}

/// Why a decision found nobody waiting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AdmitError {
    /// No connection waits with this id: it was decided already, its deadline
    /// passed (`host_ack_timeout_ms`), or it went away.
    #[error("no connection waits at gate {0}")]
    Unknown(u64),
}

/// Connections waiting for the host's decision.
pub(crate) struct PendingGates {
    next_id: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<GateDecision>>>,
    deadline: Duration,
}

/// One connection waiting; dropping it (the connection went away) forgets it.
pub(crate) struct Waiting<'a> {
    gates: &'a PendingGates,
    id: u64,
    decision: oneshot::Receiver<GateDecision>,
}

impl PendingGates {
    pub(crate) fn new(deadline: Duration) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            waiting: Mutex::default(),
            deadline,
        }
    }

    /// Registers a waiting connection.
    pub(crate) fn wait(&self) -> Waiting<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(id, tx);
        Waiting {
            gates: self,
            id,
            decision: rx,
        }
    }

    pub(crate) fn decide(&self, id: GateId, decision: GateDecision) -> Result<(), AdmitError> {
        let tx = self
            .waiting
            .lock()
            .remove(&id.0)
            .ok_or(AdmitError::Unknown(id.0))?;
        // The waiter may have given up this very moment; then nothing waits.
        tx.send(decision).map_err(|_| AdmitError::Unknown(id.0))
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.lock().len()
    }
}

impl Waiting<'_> {
    pub(crate) fn id(&self) -> GateId {
        GateId(self.id)
    }

    /// The host's decision, or `None` when the deadline passed first.
    pub(crate) async fn decision(mut self) -> Option<GateDecision> {
        tokio::time::timeout(self.gates.deadline, &mut self.decision)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.gates.waiting.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decided_once_then_unknown() {
        let gates = PendingGates::new(Duration::from_secs(5));
        let waiting = gates.wait();
        let id = waiting.id();
        gates.decide(id, GateDecision::Accept).unwrap();
        assert_eq!(waiting.decision().await, Some(GateDecision::Accept));
        assert_eq!(
            gates.decide(id, GateDecision::Accept),
            Err(AdmitError::Unknown(id.0))
        );
        assert_eq!(gates.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_passes() {
        let gates = PendingGates::new(Duration::from_millis(100));
        let waiting = gates.wait();
        let id = waiting.id();
        assert_eq!(waiting.decision().await, None);
        assert_eq!(gates.len(), 0, "a waiter that gave up is forgotten");
        assert!(gates.decide(id, GateDecision::Accept).is_err());
    }
}
