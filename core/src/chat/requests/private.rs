//! `private {to, text}`: a message to every connection of one online user. Each
//! request takes a message token before the recipient is looked up, delivered
//! or not.

use serde_json::Value;
use socketioxide::adapter::Adapter;

use super::{invalid_payload, require_identity, Ctx, Outcome};
use crate::chat::{broadcast, user_key};
use crate::events::{Event, EventKind};
use crate::protocol::{now_ms, ChatError, ErrorCode, PrivateMessage, PrivateRequest};
use crate::stats::Counters;
use crate::validate;

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: PrivateRequest,
) -> Result<Outcome, ChatError> {
    let Ctx {
        shared,
        socket,
        conn,
    } = *ctx;
    let from = require_identity(conn)?;
    let text = validate::text(request.text, &shared.config.limits)?;
    if *request.to == *from.id {
        return Err(ChatError::new(
            ErrorCode::InvalidRecipient,
            "cannot send a private message to yourself",
        ));
    }
    // Before the lookup: each answer says whether `to` is online, so probing
    // costs what sending does.
    conn.messages.take("messages")?;
    let to = shared.presence.online(&request.to).await.ok_or_else(|| {
        ChatError::new(
            ErrorCode::UserOffline,
            format!("{:?} is not online", request.to),
        )
    })?;
    let message = PrivateMessage {
        id: shared.ids.private_id(),
        from,
        to,
        text,
        ts: now_ms(),
    };
    let key = user_key(&message.to.id);
    broadcast(shared, || socket.within(key.clone()), "private", &message)
        .await
        .map_err(|e| ChatError::new(ErrorCode::Internal, format!("delivery failed: {e}")))?;
    Counters::add(&shared.counters.private_messages, 1);
    let answer: Value =
        serde_json::to_value(&message).map_err(|e| invalid_payload(e.to_string()))?;
    shared
        .host
        .events
        .emit(EventKind::Private, || Event::Private {
            sid: socket.id.to_string(),
            message,
        });
    Ok(Outcome::Answer(answer))
}
