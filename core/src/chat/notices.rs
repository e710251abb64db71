//! What the server tells rooms and users on its own: join and leave notices (a
//! `message` from the system user, as the tutorial's page expects, plus a
//! `presence` change), and `kicked` before it disconnects someone.

use std::sync::Arc;

use serde_json::value::to_raw_value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::SocketIo;

use super::fanout::{broadcast, room_key, user_key};
use crate::protocol::{now_ms, ChatMessage, MessageKind, PresenceNotice, User, SYSTEM_USER};
use crate::shared::Shared;

/// Joined or left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Joined,
    Left,
}

impl Change {
    fn action(self) -> &'static str {
        match self {
            Self::Joined => "join",
            Self::Left => "leave",
        }
    }
}

/// A notice from the system user; not stored.
pub(crate) fn system_notice(room: &Arc<str>, text: String, kind: MessageKind) -> ChatMessage {
    ChatMessage {
        id: None,
        room: room.clone(),
        user: SYSTEM_USER.into(),
        user_id: None,
        text,
        ts: now_ms(),
        kind,
        offset: None,
        epoch: None,
        to: None,
    }
}

/// Who in a room hears a join or leave notice.
pub(crate) enum Audience<'a, A: Adapter> {
    /// The room's other connections: the user's own is left out.
    Others(&'a SocketRef<A>),
    /// The whole room, when no connection of the user is involved (a swept node).
    Everyone(&'a SocketIo<A>),
}

/// Tells a room that `user` joined or left it (now `count` members), unless the
/// room is larger than `limits.notice_max_members`.
///
/// In cluster mode the notice travels with the room's messages
/// (`RedisHistory::announce_notice`), so every node delivers it in their order;
/// otherwise it goes to this node's members at once.
pub(crate) async fn announce_presence<A: Adapter>(
    shared: &Shared,
    audience: Audience<'_, A>,
    room: &Arc<str>,
    change: Change,
    user: &User,
    count: usize,
) {
    if too_large_for_notices(shared.config.limits.notice_max_members, change, count) {
        return;
    }
    let notice = match change {
        Change::Joined => system_notice(room, format!("{} joined", user.name), MessageKind::Join),
        Change::Left => system_notice(room, format!("{} left", user.name), MessageKind::Leave),
    };
    let presence = PresenceNotice {
        room,
        action: change.action(),
        user,
        count,
    };
    if let Some(history) = shared.history.redis() {
        let sid = match audience {
            Audience::Others(socket) => socket.id.to_string(),
            Audience::Everyone(_) => String::new(),
        };
        match (to_raw_value(&notice), to_raw_value(&presence)) {
            (Ok(notice), Ok(presence)) => {
                history.announce_notice(&sid, room, notice, presence).await
            }
            (Err(e), _) | (_, Err(e)) => tracing::warn!("cannot encode a notice: {e}"),
        }
        return;
    }
    let key = room_key(room);
    let target = || match audience {
        Audience::Others(socket) => socket.to(key.clone()),
        Audience::Everyone(io) => io.to(key.clone()),
    };
    if let Err(e) = broadcast(shared, &target, "message", &notice).await {
        tracing::debug!("could not deliver a {} notice: {e}", change.action());
    }
    if let Err(e) = broadcast(shared, &target, "presence", &presence).await {
        tracing::debug!("could not deliver a presence change: {e}");
    }
}

/// Whether a room of `count` members after `change` is over `max` (`0`: no
/// limit). It is measured with the user in it, so that a user whose join was not
/// announced is not announced leaving either.
fn too_large_for_notices(max: usize, change: Change, count: usize) -> bool {
    let size = match change {
        Change::Joined => count,
        Change::Left => count + 1,
    };
    max != 0 && size > max
}

/// Where a kick reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The user's connections on every node.
    Cluster,
    /// Their connections on this node only.
    ThisNode,
}

/// `kicked {reason}` to every connection of `user_id`, then their disconnect.
/// Returns the error of the adapter when the disconnect could not be carried.
pub(crate) async fn kick<A: Adapter>(
    shared: &Shared,
    io: &SocketIo<A>,
    user_id: &str,
    reason: &str,
    reach: Reach,
) -> Result<(), String> {
    let key = user_key(user_id);
    let farewell = serde_json::json!({ "reason": reason });
    match reach {
        Reach::Cluster => {
            let _ = broadcast(shared, || io.within(key.clone()), "kicked", &farewell).await;
            io.within(key).disconnect().await.map_err(|e| e.to_string())
        }
        Reach::ThisNode => {
            let _ = io
                .local()
                .within(key.clone())
                .emit("kicked", &farewell)
                .await;
            io.local()
                .within(key)
                .disconnect()
                .await
                .map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_over_the_limit_are_quiet_both_ways() {
        // Joining makes the room 3: over 2. Leaving it from 3 leaves 2: still quiet.
        assert!(too_large_for_notices(2, Change::Joined, 3));
        assert!(too_large_for_notices(2, Change::Left, 2));
        assert!(!too_large_for_notices(2, Change::Joined, 2));
        assert!(!too_large_for_notices(2, Change::Left, 1));
        assert!(!too_large_for_notices(0, Change::Joined, 1_000_000));
    }
}
