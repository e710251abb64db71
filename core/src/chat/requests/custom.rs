//! Any event outside the chat protocol, when the host listens to custom events:
//! the host gets it with all its arguments, and answers it when the client asked
//! for an ack.

use serde_json::Value;
use socketioxide::adapter::Adapter;

use super::Ctx;
use crate::acks::AckAnswer;
use crate::chat::reply::Reply;
use crate::events::{Event, EventKind};
use crate::protocol::{ChatError, ErrorCode};
use crate::sockets::{JsonArgs, RawEvent};

pub(super) fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    reply: Reply<A>,
    data: Option<Value>,
    raw: RawEvent,
) {
    let shared = ctx.shared;
    let sid = reply.socket().id.to_string();
    // The name decoded from the packet (a JSON escape in it is undone).
    let (event, args) = match raw.split() {
        Some(incoming) => (incoming.name, incoming.args),
        None => (reply.event().to_string(), JsonArgs::empty()),
    };
    let counters = shared.counters.clone();
    let ack = reply.wants_ack().then(|| {
        shared.host.acks.insert(
            reply.socket().id,
            Box::new(move |answer| match answer {
                AckAnswer::Value(value) => reply.raw(&value, &counters),
                AckAnswer::Args(args) => reply.args(&args, &counters),
                AckAnswer::Refused(error) => reply.fail(&error, &counters),
                AckAnswer::Expired => reply.fail(
                    &ChatError::new(ErrorCode::HostTimeout, "the server did not answer in time"),
                    &counters,
                ),
            }),
        )
    });
    let queued = shared
        .host
        .events
        .emit(EventKind::Custom, || Event::Custom {
            sid,
            user: ctx.conn.identity(),
            event,
            data: data.unwrap_or(Value::Null),
            args,
            ack,
        });
    if !queued {
        if let Some(ack) = ack {
            let _ = shared.host.acks.refuse(ack, ChatError::host_busy());
        }
    }
}
