//! Cluster mode: which messages this node stored are waiting for their delivery
//! to this node's members, which happens when the node reads their announcement
//! back (`fanout::deliver_announced`), after the store has returned.
//!
//! The pipeline settles such a message only once it is delivered here, so that
//! what the connection does next (a `history` of the room, a `leave`) finds it
//! delivered on this node. Every node's order of a message and the sender's
//! leave notice comes from the channel they share (`notices::announce_presence`).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

#[derive(Default)]
pub(crate) struct Announced {
    waiting: Mutex<HashMap<Arc<str>, oneshot::Sender<()>>>,
}

impl Announced {
    /// Registers a message (by its key) before it is stored; the receiver
    /// resolves once it is delivered here (or errs once it is forgotten).
    pub(crate) fn expect(&self, key: Arc<str>) -> oneshot::Receiver<()> {
        let (delivered, receiver) = oneshot::channel();
        self.waiting.lock().insert(key, delivered);
        receiver
    }

    /// The message with `key` has been delivered to this node's members.
    pub(crate) fn delivered(&self, key: &str) {
        if let Some(waiter) = self.waiting.lock().remove(key) {
            let _ = waiter.send(());
        }
    }

    /// Stops waiting for a message (refused, or its announcement never came).
    pub(crate) fn forget(&self, key: &str) {
        self.waiting.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivered_and_forgotten() {
        let announced = Announced::default();
        let first = announced.expect("a".into());
        let second = announced.expect("b".into());
        announced.delivered("a");
        announced.delivered("unknown");
        assert!(first.await.is_ok());
        announced.forget("b");
        assert!(
            second.await.is_err(),
            "a forgotten message resolves as not delivered"
        );
        assert!(announced.waiting.lock().is_empty());
    }
}
