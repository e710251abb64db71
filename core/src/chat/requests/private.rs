//! `private {to, text}`: a message to one user, stored in the conversation of
//! the two (`history {with}` reads it) and delivered by the pipeline to every
//! connection of both, the sender's other connections too. Each request takes a
//! message token before the recipient is looked up. A recipient with no
//! connection gets it at their next connect (`history.private_offline`).

use std::sync::Arc;

use socketioxide::adapter::Adapter;

use super::{require_identity, Ctx, Outcome};
use crate::config::PrivateOffline;
use crate::history::{conversation, NewMessage};
use crate::protocol::{now_ms, ChatError, ErrorCode, PrivateRequest, User};
use crate::validate;

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: PrivateRequest,
) -> Result<Outcome, ChatError> {
    let Ctx { shared, conn, .. } = *ctx;
    let from = require_identity(conn)?;
    let text = validate::text(request.text, &shared.config.limits)?;
    let to_id = validate::user_id(&request.to)?;
    if *to_id == *from.id {
        return Err(ChatError::new(
            ErrorCode::InvalidRecipient,
            "cannot send a private message to yourself",
        ));
    }
    // Before the lookup: each answer says whether `to` is online, so probing
    // costs what sending does.
    conn.messages.take("messages")?;
    let (to, pending) = match shared.presence.online(to_id).await {
        Some(to) => (to, false),
        None if shared.config.history.private_offline == PrivateOffline::Store => {
            // Their display name is not known while they are away: their id
            // stands for it.
            let id: Arc<str> = Arc::from(to_id);
            (
                User {
                    id: id.clone(),
                    name: id,
                },
                true,
            )
        }
        None => {
            return Err(ChatError::new(
                ErrorCode::UserOffline,
                format!("{to_id:?} is not online"),
            ))
        }
    };
    let message = NewMessage {
        room: Arc::from(conversation(&from.id, &to.id)),
        user: from,
        text,
        ts: now_ms(),
        key: shared.ids.message_key(),
        sender: Some(ctx.socket.id),
        to: Some(to),
        pending,
    };
    if !shared.history.admits(&message) {
        return Err(ChatError::new(
            ErrorCode::Unavailable,
            "Redis is unreachable and this node's outage journal is full",
        ));
    }
    Ok(Outcome::Store(message))
}
