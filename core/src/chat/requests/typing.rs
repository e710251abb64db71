//! `typing {room, active?}`: a volatile indicator to the room's other members, at
//! most one start per `limits.typing_interval_ms`, and one stop per relayed start.

use std::time::Duration;

use serde_json::json;
use socketioxide::adapter::Adapter;

use super::{require_identity, require_member, Ctx, Outcome};
use crate::chat::{broadcast, room_key};
use crate::protocol::{ChatError, TypingNotice, TypingRequest};

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: TypingRequest,
) -> Result<Outcome, ChatError> {
    let Ctx {
        shared,
        socket,
        conn,
    } = *ctx;
    let user = require_identity(conn)?;
    let room = require_member(shared, conn, &request.room)?;
    let interval = Duration::from_millis(shared.config.limits.typing_interval_ms);
    // A stop is relayed once after each relayed start, so indicators do not
    // linger, and stops cost the room no more than starts do.
    let relayed = if request.active {
        conn.typing_start_allowed(&room, interval)
    } else {
        conn.typing_stop_allowed(&room)
    };
    if relayed {
        let notice = TypingNotice {
            room: &room,
            user: &user.name,
            user_id: &user.id,
            active: request.active,
        };
        // Volatile: a client too busy to take it loses nothing important.
        let key = room_key(&room);
        let _ = broadcast(
            shared,
            || socket.volatile().to(key.clone()),
            "typing",
            &notice,
        )
        .await;
    }
    Ok(Outcome::Answer(json!({ "relayed": relayed })))
}
