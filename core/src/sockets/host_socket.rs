//! The state kept per connection of a host namespace: which events its host
//! listens to, its request budget, its place in the per-IP count, its private
//! session.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::recovery::Private;
use super::Handshake;
use crate::config::Limits;
use crate::limits::{Bucket, IpSlot};

/// Which of a connection's events go to the host.
#[derive(Debug, Clone)]
pub(crate) enum Listening {
    /// Every event: until the host has set the connection up (its handlers are
    /// being registered), or when it listens to any event (`onAny`).
    Everything,
    /// Only these names; the others are dropped here, as socket.io drops events
    /// nobody listens to.
    Only(Arc<HashSet<Box<str>>>),
}

pub(crate) struct HostSocket {
    listening: RwLock<Listening>,
    /// Events of this connection, any name.
    pub requests: Bucket,
    /// The handshake the gate already built, handed to the connect event.
    handshake: Mutex<Option<Handshake>>,
    /// Its private session (connection state recovery on).
    pub private: Mutex<Option<Private>>,
    _ip_slot: Option<IpSlot>,
}

impl HostSocket {
    pub(crate) fn new(limits: &Limits, ip_slot: Option<IpSlot>) -> Self {
        Self {
            listening: RwLock::new(Listening::Everything),
            requests: Bucket::new(limits.requests_per_second, limits.request_burst),
            handshake: Mutex::new(None),
            private: Mutex::new(None),
            _ip_slot: ip_slot,
        }
    }

    /// Whether the host takes the event `name` of this connection.
    pub(crate) fn listens_to(&self, name: &str) -> bool {
        match &*self.listening.read() {
            Listening::Everything => true,
            Listening::Only(names) => names.contains(name),
        }
    }

    pub(crate) fn listen(&self, listening: Listening) {
        *self.listening.write() = listening;
    }

    pub(crate) fn keep_handshake(&self, handshake: Handshake) {
        *self.handshake.lock() = Some(handshake);
    }

    pub(crate) fn take_handshake(&self) -> Option<Handshake> {
        self.handshake.lock().take()
    }
}
