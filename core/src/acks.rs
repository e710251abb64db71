//! Custom events waiting for the host's answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use socketioxide::socket::Sid;

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
    pending: Mutex<Pending>,
    timeout: Duration,
}

/// The acknowledgements waiting, and which connection asked for each: a
/// connection's are dropped when it closes, as nobody is left to answer.
#[derive(Default)]
struct Pending {
    by_id: HashMap<u64, (Instant, Sid, AckResponder)>,
    by_connection: HashMap<Sid, Vec<u64>>,
}

impl Pending {
    fn remove(&mut self, id: u64) -> Option<AckResponder> {
        let (_, sid, responder) = self.by_id.remove(&id)?;
        if let Some(ids) = self.by_connection.get_mut(&sid) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_connection.remove(&sid);
            }
        }
        Some(responder)
    }
}

impl PendingAcks {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            pending: Mutex::default(),
            timeout,
        }
    }

    /// Keeps `responder` until the host answers, the timeout, or the close of
    /// the connection `sid` that asked.
    pub(crate) fn insert(&self, sid: Sid, responder: AckResponder) -> AckId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut pending = self.lock();
        pending.by_id.insert(id, (Instant::now(), sid, responder));
        pending.by_connection.entry(sid).or_default().push(id);
        AckId(id)
    }

    pub(crate) fn answer(&self, id: AckId, answer: AckAnswer) -> Result<(), AckError> {
        let responder = self.lock().remove(id.0).ok_or(AckError::Unknown(id.0))?;
        responder(answer);
        Ok(())
    }

    /// Drops the acknowledgements of a closed connection: a later answer to
    /// one of them is [`AckError::Unknown`].
    pub(crate) fn connection_closed(&self, sid: Sid) {
        let dropped: Vec<AckResponder> = {
            let mut pending = self.lock();
            let ids = pending.by_connection.remove(&sid).unwrap_or_default();
            ids.iter()
                .filter_map(|id| pending.by_id.remove(id).map(|(_, _, r)| r))
                .collect()
        };
        // Dropped outside the lock: a responder holds the connection's socket.
        drop(dropped);
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
                .by_id
                .iter()
                .filter(|(_, (since, _, _))| now.duration_since(*since) >= self.timeout)
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| pending.remove(*id)).collect()
        };
        for responder in expired {
            responder(AckAnswer::Expired);
        }
    }

    /// Refuses everything still pending (the engine is stopping).
    pub(crate) fn refuse_all(&self, error: &ChatError) {
        let all: Vec<AckResponder> = {
            let mut pending = self.lock();
            pending.by_connection.clear();
            pending.by_id.drain().map(|(_, (_, _, r))| r).collect()
        };
        for responder in all {
            responder(AckAnswer::Refused(error.clone()));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Pending> {
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
        let id = acks.insert(
            Sid::ZERO,
            Box::new(move |r| *sink.lock().unwrap() = Some(r)),
        );
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
        acks.insert(
            Sid::ZERO,
            Box::new(move |r| *sink.lock().unwrap() = Some(r)),
        );
        acks.expire();
        assert!(matches!(
            got.lock().unwrap().take(),
            Some(AckAnswer::Expired)
        ));
        assert_eq!(acks.len(), 0);
    }

    #[test]
    fn a_closed_connection_leaves_no_acks() {
        let acks = PendingAcks::new(Duration::from_secs(60));
        let (gone, staying) = (Sid::new(), Sid::new());
        let id = acks.insert(gone, Box::new(|_| panic!("nobody is left to answer")));
        let kept = acks.insert(staying, Box::new(|_| {}));
        acks.connection_closed(gone);
        assert_eq!(
            acks.answer(id, AckAnswer::Value(serde_json::json!(1))),
            Err(AckError::Unknown(id.0))
        );
        assert_eq!(acks.len(), 1);
        acks.answer(kept, AckAnswer::Value(serde_json::json!(1)))
            .unwrap();
    }
}
