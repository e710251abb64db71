//! `join {room, name?, since?}`: membership of a room, with a join notice to the
//! room when the user is new to it, and in the answer the recent history or,
//! with `since`, exactly the messages missed since then (`chat/recovery.rs`).

use std::sync::Arc;

use serde_json::{json, Map, Value};
use socketioxide::adapter::Adapter;

use super::{login, require_identity, Ctx, Outcome, MEMBERS_IN_ACK};
use crate::chat::notices::{announce_presence, Audience, Change};
use crate::chat::recovery::{recover, write_head, Recovery, Unrecovered};
use crate::chat::room_key;
use crate::chat::session::{take_identity, welcome};
use crate::config::IdentityMode;
use crate::events::{Event, EventKind};
use crate::history::Head;
use crate::protocol::{ChatError, ErrorCode, JoinRequest, LoginRequest, Position};
use crate::shared::Shared;
use crate::validate;

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: JoinRequest,
) -> Result<Outcome, ChatError> {
    let Ctx {
        shared,
        socket,
        conn,
    } = *ctx;
    let room: Arc<str> = validate::room(&request.room, &shared.config.limits)?.into();
    let already_member = conn.room(&room).is_some();
    if !already_member && conn.room_total() >= shared.config.limits.max_rooms_per_connection {
        return Err(ChatError::new(
            ErrorCode::TooManyRooms,
            format!(
                "at most {} rooms per connection",
                shared.config.limits.max_rooms_per_connection
            ),
        ));
    }
    // The tutorial's page logs in by joining with a name.
    let login_claim = match conn.identity() {
        Some(_) => None,
        None if shared.auth.mode() == IdentityMode::Open && request.name.is_some() => {
            Some(login::check(
                ctx,
                LoginRequest {
                    name: request.name,
                    token: None,
                },
            )?)
        }
        None => return Err(require_identity(conn).unwrap_err()),
    };
    // Taken before any change (the login included), so a refused join leaves no
    // trace.
    if !already_member {
        conn.room_changes.take("room changes")?;
    }
    let user = match (conn.identity(), login_claim) {
        (Some(user), _) => user,
        (None, Some(claim)) => {
            let user = take_identity(shared, socket, conn, claim).await?;
            welcome(shared, socket, Some(&user)).await;
            user
        }
        (None, None) => return Err(require_identity(conn).unwrap_err()),
    };

    if !already_member {
        let outcome = shared.presence.join(&room, &user).await;
        conn.add_room(room.clone());
        let key = room_key(&room);
        socket.join(key.clone());
        if outcome.newly_present {
            announce_presence(
                shared,
                Audience::Others(socket),
                &room,
                Change::Joined,
                &user,
                outcome.count,
            )
            .await;
        }
        shared.presence_changed().await;
        shared
            .host
            .events
            .emit(EventKind::Joined, || Event::Joined {
                sid: socket.id.to_string(),
                room: room.to_string(),
                user: user.clone(),
            });
    }

    if already_member {
        // The history shows the connection's own messages sent before.
        conn.unsettled.settled(Some(&room)).await;
    }
    let (count, members) = shared.presence.members(&room, MEMBERS_IN_ACK).await;
    let mut answer = Map::new();
    answer.insert("room".into(), json!(room));
    answer.insert("user".into(), json!(user));
    answer.insert("count".into(), json!(count));
    answer.insert("members".into(), json!(members));
    match request.since {
        Some(since) => missed_since(shared, &room, &since)
            .await
            .write_into(&mut answer, "history"),
        None => {
            let (history, has_more, head) = recent_history(shared, &room).await;
            answer.insert("history".into(), history);
            answer.insert("has_more".into(), json!(has_more));
            write_head(&mut answer, &head);
        }
    }
    Ok(Outcome::Answer(Value::Object(answer)))
}

/// What the client missed since `since`: all of it (up to
/// `history.recovery_max`), or the recent history when that cannot be told.
async fn missed_since(shared: &Shared, room: &str, since: &Position) -> Recovery {
    let max = shared.config.history.recovery_max;
    recover(shared, room, since, max, shared.config.history.on_join)
        .await
        .unwrap_or_else(|e| {
            // The join itself succeeded; the client can ask with `history` later.
            tracing::warn!(room, "could not read history for a join: {e}");
            Recovery {
                messages: Vec::new(),
                has_more: true,
                head: Head::default(),
                lost: Some(Unrecovered::Unavailable),
            }
        })
}

async fn recent_history(shared: &Shared, room: &str) -> (Value, bool, Head) {
    // Even without messages to show, the head tells the client where it is.
    let limit = shared.config.history.on_join.max(1);
    match shared.history.page(room, None, limit).await {
        Ok(page) if shared.config.history.on_join == 0 => {
            (json!([]), page.head.offset > 0, page.head)
        }
        Ok(page) => (json!(page.messages), page.has_more, page.head),
        Err(e) => {
            // The join itself succeeded; the client can page with `history` later.
            tracing::warn!(room, "could not read history for a join: {e}");
            (json!([]), true, Head::default())
        }
    }
}
