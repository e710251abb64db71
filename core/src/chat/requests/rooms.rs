//! `rooms`: the rooms with members and their counts, most populated first.

use serde_json::json;
use socketioxide::adapter::Adapter;

use super::{Ctx, Outcome};
use crate::protocol::ChatError;

pub(super) async fn handle<A: Adapter>(ctx: &Ctx<'_, A>) -> Result<Outcome, ChatError> {
    let shared = ctx.shared;
    let rooms = shared
        .presence
        .room_counts(shared.config.room_list.max_rooms)
        .await;
    Ok(Outcome::Answer(json!({ "rooms": rooms })))
}
