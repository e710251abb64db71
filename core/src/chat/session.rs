//! A connection's identity and memberships as the chat sees them: taking and
//! giving up an identity, leaving a room, and the `session` push that tells the
//! client who it is.

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::conn::Conn;
use super::fanout::{room_key, user_key};
use super::notices::{announce_presence, Audience, Change};
use crate::events::{Event, EventKind};
use crate::history::{After, Pending};
use crate::identity::Claim;
use crate::protocol::{ChatError, ChatMessage, SessionNotice, User};
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

/// Tells a connection that just took an identity who it is (`session`), then
/// hands it the private messages sent to that user while they had no
/// connection, oldest first per conversation, as `private` events.
pub(super) async fn welcome<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    user: Option<&User>,
) {
    send_session(shared, socket, user);
    if let Some(user) = user {
        deliver_pending(shared, socket, user).await;
    }
}

async fn deliver_pending<A: Adapter>(shared: &Shared, socket: &SocketRef<A>, user: &User) {
    let pending = match shared.history.take_pending(&user.id).await {
        Ok(pending) => pending,
        Err(e) => {
            // They stay pending for the next connect (Redis down), or are
            // readable with `history {with}` in any case.
            tracing::warn!("cannot read the private messages waiting for a user: {e}");
            return;
        }
    };
    let max = shared.config.history.recovery_max;
    for Pending { conversation, from } in pending {
        match shared
            .history
            .after(&conversation, &from, max, max as u64)
            .await
        {
            Ok(After::Found { messages, .. }) => {
                for private in messages.iter().filter_map(ChatMessage::to_private) {
                    if let Err(e) = socket.emit("private", &private) {
                        tracing::debug!("could not hand over a waiting private message: {e}");
                    }
                }
            }
            Ok(After::Lost { reason, .. }) => tracing::info!(
                reason = reason.as_str(),
                "private messages waiting for a user are no longer all stored; \
                 the conversation's history has what is left"
            ),
            Err(e) => tracing::warn!("cannot read the private messages waiting for a user: {e}"),
        }
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
                Audience::Others(socket),
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
