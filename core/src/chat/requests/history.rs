//! `history {room, before?, limit?}`: a page of a room's stored messages.

use serde_json::json;
use socketioxide::adapter::Adapter;

use super::{invalid_payload, require_identity, require_member, Ctx, Outcome};
use crate::history::HistoryError;
use crate::protocol::{ChatError, ErrorCode, HistoryRequest};

/// History page size when a `history` request names no limit.
const DEFAULT_PAGE: usize = 50;

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: HistoryRequest,
) -> Result<Outcome, ChatError> {
    let shared = ctx.shared;
    require_identity(ctx.conn)?;
    let room = require_member(shared, ctx.conn, &request.room)?;
    let limit = request.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > shared.config.history.page_max {
        return Err(invalid_payload(format!(
            "limit must be between 1 and {}",
            shared.config.history.page_max
        )));
    }
    // A page read after this connection's own messages to the room shows them
    // (or they were refused): the requests are applied in order.
    ctx.conn.unsettled.settled(Some(&room)).await;
    let page = shared
        .history
        .page(&room, request.before.as_deref(), limit)
        .await
        .map_err(|e| {
            let code = match e {
                HistoryError::BadCursor(_) => ErrorCode::InvalidCursor,
                HistoryError::Closed => ErrorCode::ShuttingDown,
                HistoryError::Unavailable(_) => ErrorCode::Unavailable,
                _ => ErrorCode::StorageFailed,
            };
            ChatError::new(code, e.to_string())
        })?;
    Ok(Outcome::Answer(json!({
        "room": room,
        "messages": page.messages,
        "has_more": page.has_more,
    })))
}
