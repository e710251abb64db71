//! Engine.IO sessions per IP address, counted from the handshake on.
//!
//! A session exists from its Engine.IO handshake (a request to the Socket.IO path
//! without `sid`), well before its Socket.IO connect takes a connection slot, and
//! one that never connects lives `transport.connect_timeout_ms`. Without a count
//! of its own, one address could open sessions as fast as it can send requests.

use std::sync::Arc;

use axum::body::Body;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};

use crate::limits::{IpCounter, IpSlot};
use crate::peer::request_ip;
use crate::refusal::json_refusal;
use crate::stats::Counters;

/// Admits Engine.IO handshakes while their address has sessions to spare.
pub(crate) struct HandshakeLimit {
    pub sessions: Arc<IpCounter>,
    pub counters: Arc<Counters>,
}

/// A session's place in the per-address count, kept in the handshake request's
/// extensions. Engine.IO keeps that request head for the session's whole life, so
/// the place is given back when the session (and every socket on it) is gone,
/// whichever way it ends, and at once when the handshake itself fails.
#[derive(Clone)]
struct SessionSlot {
    _held: Arc<IpSlot>,
}

impl HandshakeLimit {
    /// Counts a handshake's session, or gives the 429 that answers it when its
    /// address has no session to spare. Other requests pass untouched.
    pub(crate) fn refuse(&self, request: &mut Request<Body>) -> Option<Response<Body>> {
        if !is_handshake(request) {
            return None;
        }
        let ip = request_ip(request.extensions())?;
        let refusal = match self.sessions.acquire(ip) {
            Ok(slot) => {
                request.extensions_mut().insert(SessionSlot {
                    _held: Arc::new(slot),
                });
                return None;
            }
            Err(refusal) => refusal,
        };
        self.counters.refused(refusal.code);
        let mut response = json_refusal(
            StatusCode::TOO_MANY_REQUESTS,
            refusal.code.as_str(),
            &refusal.message,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        Some(response)
    }
}

/// A request that opens an Engine.IO session: no `sid` in its query (a polling
/// `GET`, or a WebSocket upgrade that does not upgrade an existing session).
fn is_handshake(request: &Request<Body>) -> bool {
    let query = request.uri().query().unwrap_or("");
    !form_urlencoded::parse(query.as_bytes()).any(|(key, _)| key == "sid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_are_requests_without_sid() {
        let is = |uri: &str| is_handshake(&Request::get(uri).body(Body::empty()).unwrap());
        assert!(is("/socket.io/?EIO=4&transport=polling"));
        assert!(is("/socket.io/?EIO=4&transport=websocket"));
        assert!(!is("/socket.io/?EIO=4&transport=polling&sid=abc"));
        assert!(!is("/socket.io/?EIO=4&transport=websocket&sid=abc"));
    }
}
