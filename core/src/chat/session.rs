//! A connection's identity and memberships as the chat sees them: taking and
//! giving up an identity, leaving a room, and the `session` push that tells the
//! client who it is.

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::conn::Conn;
use super::fanout::{room_key, user_key};
use super::notices::{announce_presence, Change};
use crate::events::{Event, EventKind};
use crate::identity::Claim;
use crate::protocol::{ChatError, SessionNotice, User};
use crate::shared::Shared;

/// Gives the connection the identity a checked claim names: a unique name in
/// open mode (cluster-wide in cluster mode), the token's user in token mode.
/// Refused (nothing changed) when a cluster-wide name cannot be reserved.
pub(super) async fn take_identity<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    claim: Claim,
) -> Result<User, ChatError> {
    let user = match claim {
        Claim::OpenName(name) => {
            shared
                .presence
                .claim_name(&name, shared.config.limits.max_name_chars)
                .await?
        }
        Claim::Token(token) => {
            shared.presence.connect(&token.user).await;
            conn.set_token_end(Some(token.ends_at_ms));
            token.user
        }
    };
    socket.join(user_key(&user.id));
    conn.set_identity(Some(user.clone()));
    Ok(user)
}

/// The connection leaves every room and gives up its identity (logout,
/// disconnect).
pub(super) async fn drop_identity<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    user: &User,
) {
    for room in conn.rooms() {
        leave_room(shared, socket, conn, user, &room).await;
    }
    shared.presence.disconnect(user).await;
    conn.set_identity(None);
    conn.set_token_end(None);
}

pub(super) fn send_session<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    user: Option<&User>,
) {
    let notice = SessionNotice {
        user,
        mode: shared.auth.mode(),
    };
    if let Err(e) = socket.emit("session", &notice) {
        tracing::debug!("could not send session: {e}");
    }
}

/// Takes the connection out of a room, once its messages to the room still in
/// the pipeline are delivered or refused: its leave notice never overtakes them.
pub(super) async fn leave_room<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    user: &User,
    room: &Arc<str>,
) {
    conn.unsettled.settled(Some(room)).await;
    conn.remove_room(room);
    let key = room_key(room);
    socket.leave(key.clone());
    if let Some(outcome) = shared.presence.leave(room, user).await {
        if shared.presence.local.member_count(room) == 0 {
            shared.history.vacated(room);
        }
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
