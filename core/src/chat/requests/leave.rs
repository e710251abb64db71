//! `leave {room}`: the connection leaves a room; the user leaves it (with a
//! notice to the room) when this was their last connection in it. Leaving takes
//! a room-change token, as joining does.

use serde_json::json;
use socketioxide::adapter::Adapter;

use super::{require_identity, require_member, Ctx, Outcome};
use crate::chat::session::leave_room;
use crate::protocol::{ChatError, RoomRequest};

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: RoomRequest,
) -> Result<Outcome, ChatError> {
    let user = require_identity(ctx.conn)?;
    let room = require_member(ctx.shared, ctx.conn, &request.room)?;
    ctx.conn.room_changes.take("room changes")?;
    leave_room(ctx.shared, ctx.socket, ctx.conn, &user, &room).await;
    Ok(Outcome::Answer(json!({ "room": room })))
}
