//! `members {room}`: a room's members across the cluster, in join order.

use serde_json::json;
use socketioxide::adapter::Adapter;

use super::{require_identity, require_member, Ctx, Outcome, MEMBERS_IN_ACK};
use crate::protocol::{ChatError, RoomRequest};

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: RoomRequest,
) -> Result<Outcome, ChatError> {
    require_identity(ctx.conn)?;
    let room = require_member(ctx.shared, ctx.conn, &request.room)?;
    let (count, members) = ctx.shared.presence.members(&room, MEMBERS_IN_ACK).await;
    Ok(Outcome::Answer(json!({
        "room": room,
        "count": count,
        "members": members,
    })))
}
