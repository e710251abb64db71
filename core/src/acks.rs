//! Custom events waiting for the host's answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::events::AckId;
use crate::protocol::{ChatError, ErrorCode};

/// Sends the answer (or a refusal) to the client that asked.
pub(crate) type AckResponder = Box<dyn FnOnce(Result<serde_json::Value, ChatError>) + Send>;

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

    pub(crate) fn answer(&self, id: AckId, value: serde_json::Value) -> Result<(), AckError> {
        let (_, responder) = self.lock().remove(&id.0).ok_or(AckError::Unknown(id.0))?;
        responder(Ok(value));
        Ok(())
    }

    /// Refuses one acknowledgement with `error`.
    pub(crate) fn refuse(&self, id: AckId, error: ChatError) -> Result<(), AckError> {
        let (_, responder) = self.lock().remove(&id.0).ok_or(AckError::Unknown(id.0))?;
        responder(Err(error));
        Ok(())
    }

    /// Refuses every acknowledgement older than the timeout with `host_timeout`.
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
            responder(Err(ChatError::new(
                ErrorCode::HostTimeout,
                "the server did not answer in time",
            )));
        }
    }

    /// Refuses everything still pending (the engine is stopping).
    pub(crate) fn refuse_all(&self, error: &ChatError) {
        let all: Vec<AckResponder> = self.lock().drain().map(|(_, (_, r))| r).collect();
        for responder in all {
            responder(Err(error.clone()));
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
        acks.answer(id, serde_json::json!(1)).unwrap();
        assert_eq!(*got.lock().unwrap(), Some(Ok(serde_json::json!(1))));
        assert_eq!(
            acks.answer(id, serde_json::json!(2)),
            Err(AckError::Unknown(id.0))
        );
    }

    #[test]
    fn expiry_refuses_with_host_timeout() {
        let acks = PendingAcks::new(Duration::ZERO);
        let got = Arc::new(Mutex::new(None));
        let sink = got.clone();
        acks.insert(Box::new(move |r| *sink.lock().unwrap() = Some(r)));
        acks.expire();
        let result = got.lock().unwrap().take().unwrap();
        assert_eq!(result.unwrap_err().code, ErrorCode::HostTimeout);
        assert_eq!(acks.len(), 0);
    }
}
