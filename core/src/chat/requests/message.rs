//! `message {room, text}`: a room message, stored, then delivered and
//! acknowledged by the pipeline.

use socketioxide::adapter::Adapter;

use super::{require_identity, require_member, Ctx, Outcome};
use crate::history::NewMessage;
use crate::protocol::{now_ms, ChatError, ErrorCode, MessageRequest};
use crate::validate;

pub(super) fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: MessageRequest,
) -> Result<Outcome, ChatError> {
    let shared = ctx.shared;
    let user = require_identity(ctx.conn)?;
    let room = require_member(shared, ctx.conn, &request.room)?;
    let text = validate::text(request.text, &shared.config.limits)?;
    ctx.conn.messages.take("messages")?;
    let message = NewMessage {
        room,
        user,
        text,
        ts: now_ms(),
        key: shared.ids.message_key(),
        sender: Some(ctx.socket.id),
        to: None,
        pending: false,
    };
    // Refused here, with its own code, rather than failed by the store.
    if !shared.history.admits(&message) {
        return Err(ChatError::new(
            ErrorCode::Unavailable,
            "Redis is unreachable and this node's outage journal is full",
        ));
    }
    Ok(Outcome::Store(message))
}
