//! `join {room, name?}`: membership of a room, with a join notice to the room
//! when the user is new to it, and recent history in the answer.

use std::sync::Arc;

use serde_json::json;
use socketioxide::adapter::Adapter;

use super::{login, require_identity, Ctx, Outcome, MEMBERS_IN_ACK};
use crate::chat::notices::{announce_presence, Change};
use crate::chat::room_key;
use crate::chat::session::{send_session, take_identity};
use crate::config::IdentityMode;
use crate::events::{Event, EventKind};
use crate::protocol::{ChatError, ChatMessage, ErrorCode, JoinRequest, LoginRequest};
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
            send_session(shared, socket, Some(&user));
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
                || socket.to(key.clone()),
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

    if already_member && shared.config.history.on_join > 0 {
        // The recent history shows the connection's own messages sent before.
        conn.unsettled.settled(Some(&room)).await;
    }
    let (history, has_more) = recent_history(shared, &room).await;
    let (count, members) = shared.presence.members(&room, MEMBERS_IN_ACK).await;
    Ok(Outcome::Answer(json!({
        "room": room,
        "user": user,
        "count": count,
        "members": members,
        "history": history,
        "has_more": has_more,
    })))
}

async fn recent_history(shared: &Shared, room: &str) -> (Vec<ChatMessage>, bool) {
    if shared.config.history.on_join == 0 {
        return (Vec::new(), false);
    }
    match shared
        .history
        .page(room, None, shared.config.history.on_join)
        .await
    {
        Ok(page) => (page.messages, page.has_more),
        Err(e) => {
            // The join itself succeeded; the client can page with `history` later.
            tracing::warn!(room, "could not read history for a join: {e}");
            (Vec::new(), true)
        }
    }
}
