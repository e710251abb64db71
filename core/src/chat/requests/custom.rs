//! Any event outside the chat protocol, when the host listens to custom events:
//! the host gets it, and answers it when the client asked for an ack.

use serde_json::Value;
use socketioxide::adapter::Adapter;

use super::Ctx;
use crate::chat::reply::Reply;
use crate::events::{Event, EventKind};

pub(super) fn handle<A: Adapter>(ctx: &Ctx<'_, A>, reply: Reply<A>, data: Option<Value>) {
    let shared = ctx.shared;
    let sid = reply.socket().id.to_string();
    let event = reply.event().to_string();
    let counters = shared.counters.clone();
    let ack = reply.wants_ack().then(|| {
        shared
            .host
            .acks
            .insert(Box::new(move |answer| match answer {
                Ok(value) => reply.raw(&value, &counters),
                Err(error) => reply.fail(&error, &counters),
            }))
    });
    shared
        .host
        .events
        .emit(EventKind::Custom, || Event::Custom {
            sid,
            user: ctx.conn.identity(),
            event,
            data: data.unwrap_or(Value::Null),
            ack,
        });
}
