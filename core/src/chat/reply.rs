//! Answering a request: an acknowledgement when the client asked for one,
//! otherwise (for refusals) an `error` event.

use std::sync::Arc;

use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef};
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use socketioxide::{ParserError, SendError, SocketError};

use crate::protocol::{ChatError, ErrorBody};
use crate::stats::Counters;

/// Extracted from every incoming event: how to answer it.
pub(crate) struct Reply<A: Adapter> {
    socket: SocketRef<A>,
    ack: AckSender<A>,
    wants_ack: bool,
    event: String,
}

impl<A: Adapter> FromMessageParts<A> for Reply<A> {
    type Error = ParserError;

    fn from_message_parts(
        s: &Arc<Socket<A>>,
        v: &mut Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, ParserError> {
        let Event(event) = Event::from_message_parts(s, v, ack_id)?;
        let ack = match AckSender::from_message_parts(s, v, ack_id) {
            Ok(ack) => ack,
            Err(never) => match never {},
        };
        Ok(Self {
            socket: SocketRef::from(s.clone()),
            ack,
            wants_ack: ack_id.is_some(),
            event,
        })
    }
}

/// `{ok: true, ...body}`
#[derive(Serialize)]
struct OkBody<'a, T: Serialize> {
    ok: bool,
    #[serde(flatten)]
    body: &'a T,
}

impl<A: Adapter> Reply<A> {
    pub(crate) fn event(&self) -> &str {
        &self.event
    }

    pub(crate) fn socket(&self) -> &SocketRef<A> {
        &self.socket
    }

    pub(crate) fn wants_ack(&self) -> bool {
        self.wants_ack
    }

    /// Acknowledges with `{ok: true, ...body}`; nothing is sent when no ack was asked.
    pub(crate) fn ok<T: Serialize>(self, body: &T, counters: &Counters) {
        if self.wants_ack {
            count_unsent(self.ack.send(&OkBody { ok: true, body }), counters);
        }
    }

    /// Acknowledges with `value` exactly as given (host answers to custom events).
    pub(crate) fn raw(self, value: &serde_json::Value, counters: &Counters) {
        count_unsent(self.ack.send(value), counters);
    }

    /// Acknowledges with every element of `args` as its own argument.
    pub(crate) fn args(self, args: &crate::sockets::OutArgs, counters: &Counters) {
        count_unsent(self.ack.send(args), counters);
    }

    /// Refuses: `{ok:false, code, message}` as the ack, or as an `error` event
    /// (with the refused `event` named) when the client asked for no ack.
    pub(crate) fn fail(self, error: &ChatError, counters: &Counters) {
        counters.rejected(error.code);
        let sent = if self.wants_ack {
            self.ack.send(&ErrorBody::new(error, None))
        } else {
            self.socket
                .emit("error", &ErrorBody::new(error, Some(&self.event)))
        };
        count_unsent(sent, counters);
    }
}

/// An answer that could not be queued: the client is gone (nothing to count) or
/// reads too slowly, its queue full (counted and, now and then, logged).
fn count_unsent(result: Result<(), SendError>, counters: &Counters) {
    match result {
        Ok(()) => {}
        Err(SendError::Socket(SocketError::InternalChannelFull)) => counters.dropped(1),
        Err(e) => tracing::debug!("could not answer a request: {e}"),
    }
}
