//! Custom events waiting for the host's answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::events::AckId;
use crate::protocol::ChatError;
use crate::sockets::OutArgs;

/// What the client that asked for an acknowledgement gets.
pub(crate) enum AckAnswer {
    /// One value, exactly as the host gave it (the chat's custom events).
    Value(serde_json::Value),
    /// Every argument of the client's callback (Socket.IO host namespaces).
    Args(OutArgs),
    /// A refusal, in the `{ok:false, code, message}` shape.
    Refused(ChatError),
    /// The host did not answer within `host_ack_timeout_ms`.
    Expired,
}

/// Sends the answer (or a refusal) to the client that asked.
pub(crate) type AckResponder = Box<dyn FnOnce(AckAnswer) + Send>;

/// Why [`ChatHandle::ack`](crate::ChatHandle::ack) could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// No pending acknowledgement has this id: it was answered already, it expired
    /// (`host_ack_timeout_ms`), or its connection closed.
    #[error("no pending acknowledgement {0}")]
    Unknown(u64),
}

pub(crate) struct PendingAcks {
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, (Instant, AckResponder)>>,
    timeout: Duration,
}

impl PendingAcks {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            pending: Mutex::default(),
            timeout,
        }
    }

    pub(crate) fn insert(&self, responder: AckResponder) -> AckId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, (Instant::now(), responder));
        AckId(id)
    }

    pub(crate) fn answer(&self, id: AckId, answer: AckAnswer) -> Result<(), AckError> {
        let (_, responder) = self.lock().remove(&id.0).ok_or(AckError::Unknown(id.0))?;
        responder(answer);
        Ok(())
    }

    /// Refuses one acknowledgement with `error`.
    pub(crate) fn refuse(&self, id: AckId, error: ChatError) -> Result<(), AckError> {
        self.answer(id, AckAnswer::Refused(error))
    }

    /// Ends every acknowledgement older than the timeout ([`AckAnswer::Expired`]).
    pub(crate) fn expire(&self) {
        let now = Instant::now();
        let expired: Vec<AckResponder> = {
            let mut pending = self.lock();
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, (since, _))| now.duration_since(*since) >= self.timeout)
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| pending.remove(id).map(|(_, r)| r))
                .collect()
        };
        for responder in expired {
            responder(AckAnswer::Expired);
        }
    }

    /// Refuses everything still pending (the engine is stopping).
    pub(crate) fn refuse_all(&self, error: &ChatError) {
        let all: Vec<AckResponder> = self.lock().drain().map(|(_, (_, r))| r).collect();
        for responder in all {
            responder(AckAnswer::Refused(error.clone()));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<u64, (Instant, AckResponder)>> {
        self.pending.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn answer_once_then_unknown() {
        let acks = PendingAcks::new(Duration::from_secs(60));
        let got = Arc::new(Mutex::new(None));
        let sink = got.clone();
        let id = acks.insert(Box::new(move |r| *sink.lock().unwrap() = Some(r)));
        acks.answer(id, AckAnswer::Value(serde_json::json!(1)))
            .unwrap();
        assert!(matches!(
            got.lock().unwrap().take(),
            Some(AckAnswer::Value(v)) if v == serde_json::json!(1)
        ));
        assert_eq!(
            acks.answer(id, AckAnswer::Value(serde_json::json!(2))),
            Err(AckError::Unknown(id.0))
        );
    }

    #[test]
    fn expiry_ends_pending_acks() {
        let acks = PendingAcks::new(Duration::ZERO);
        let got = Arc::new(Mutex::new(None));
        let sink = got.clone();
        acks.insert(Box::new(move |r| *sink.lock().unwrap() = Some(r)));
        acks.expire();
        assert!(matches!(
            got.lock().unwrap().take(),
            Some(AckAnswer::Expired)
        ));
        assert_eq!(acks.len(), 0);
    }
}
