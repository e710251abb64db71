//! `leave {room}`, and leaving a room on `logout` or disconnect: the user leaves
//! it (with a notice to the room) when this was their last connection in it.

use std::sync::Arc;

use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::{require_identity, require_member, Ctx, Outcome};
use crate::chat::connection::Conn;
use crate::chat::notices::{announce_presence, Change};
use crate::chat::{room_key, Shared};
use crate::events::{Event, EventKind};
use crate::protocol::{ChatError, RoomRequest, User};

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: RoomRequest,
) -> Result<Outcome, ChatError> {
    let user = require_identity(ctx.conn)?;
    let room = require_member(ctx.shared, ctx.conn, &request.room)?;
    leave_room(ctx.shared, ctx.socket, ctx.conn, &user, &room).await;
    Ok(Outcome::Answer(json!({ "room": room })))
}

/// Takes the connection out of a room.
pub(crate) async fn leave_room<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    user: &User,
    room: &Arc<str>,
) {
    conn.remove_room(room);
    let key = room_key(room);
    socket.leave(key.clone());
    if let Some(outcome) = shared.presence.leave(room, user).await {
        if outcome.gone {
            announce_presence(
                shared,
                || socket.to(key.clone()),
                room,
                Change::Left,
                user,
                outcome.count,
            )
            .await;
        }
        shared.presence_changed().await;
    }
    shared.host.events.emit(EventKind::Left, || Event::Left {
        sid: socket.id.to_string(),
        room: room.to_string(),
        user: user.clone(),
    });
}
