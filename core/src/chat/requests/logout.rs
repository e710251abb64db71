//! `logout`: the connection leaves its rooms and gives up its identity, but stays
//! connected.

use serde_json::json;
use socketioxide::adapter::Adapter;

use super::{require_identity, Ctx, Outcome};
use crate::chat::session::{drop_identity, send_session};
use crate::protocol::ChatError;

pub(super) async fn handle<A: Adapter>(ctx: &Ctx<'_, A>) -> Result<Outcome, ChatError> {
    let user = require_identity(ctx.conn)?;
    drop_identity(ctx.shared, ctx.socket, ctx.conn, &user).await;
    ctx.socket.leave(crate::chat::user_key(&user.id));
    send_session(ctx.shared, ctx.socket, None);
    Ok(Outcome::Answer(json!({})))
}
