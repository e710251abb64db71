//! `history {room | with, before? | after?, limit?}`: a page of a room's stored
//! messages, or of a conversation's (`with`: the other user's id); with `after`,
//! what came after a position (recovery).

use serde_json::{json, Map, Value};
use socketioxide::adapter::Adapter;

use super::{invalid_payload, require_identity, require_member, Ctx, Outcome};
use crate::chat::recovery::{recover, wire_messages, write_head, Unrecovered};
use crate::history::{conversation, HistoryError};
use crate::protocol::{ChatError, ErrorCode, HistoryRequest};

/// History page size when a `history` request names no limit.
const DEFAULT_PAGE: usize = 50;

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: HistoryRequest,
) -> Result<Outcome, ChatError> {
    let shared = ctx.shared;
    let me = require_identity(ctx.conn)?;
    let limit = request.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > shared.config.history.page_max {
        return Err(invalid_payload(format!(
            "limit must be between 1 and {}",
            shared.config.history.page_max
        )));
    }
    if request.before.is_some() && request.after.is_some() {
        return Err(invalid_payload("give before or after, not both"));
    }
    // The history read, and how the answer names it.
    let (store_room, mut answer) = match (request.room, request.with) {
        (Some(room), None) => {
            let room = require_member(shared, ctx.conn, &room)?;
            let mut answer = Map::new();
            answer.insert("room".into(), json!(room));
            (room.to_string(), answer)
        }
        (None, Some(with)) => {
            let with = crate::validate::user_id(&with)?;
            if *with == *me.id {
                return Err(ChatError::new(
                    ErrorCode::InvalidRecipient,
                    "there is no conversation with yourself",
                ));
            }
            let mut answer = Map::new();
            answer.insert("with".into(), json!(with));
            (conversation(&me.id, with), answer)
        }
        _ => return Err(invalid_payload("give either room or with")),
    };
    // A page read after this connection's own messages shows them (or they were
    // refused): the requests are applied in order.
    ctx.conn.unsettled.settled(Some(&store_room)).await;
    if let Some(after) = request.after {
        let recovery = recover(shared, &store_room, &after, limit, limit)
            .await
            .map_err(history_error)?;
        if recovery.lost == Some(Unrecovered::Unavailable) {
            // A `history` request has nothing else to answer: say so as an error.
            return Err(ChatError::new(
                ErrorCode::Unavailable,
                "the history cannot be read right now",
            ));
        }
        recovery.write_into(&mut answer, "messages");
        return Ok(Outcome::Answer(Value::Object(answer)));
    }
    let page = shared
        .history
        .page(&store_room, request.before.as_deref(), limit)
        .await
        .map_err(history_error)?;
    answer.insert("messages".into(), wire_messages(&page.messages));
    answer.insert("has_more".into(), json!(page.has_more));
    write_head(&mut answer, &page.head);
    Ok(Outcome::Answer(Value::Object(answer)))
}

fn history_error(e: HistoryError) -> ChatError {
    let code = match e {
        HistoryError::BadCursor(_) => ErrorCode::InvalidCursor,
        HistoryError::Closed => ErrorCode::ShuttingDown,
        HistoryError::Unavailable(_) => ErrorCode::Unavailable,
        _ => ErrorCode::StorageFailed,
    };
    ChatError::new(code, e.to_string())
}
