//! What the server tells rooms and users on its own: join and leave notices (a
//! `message` from the system user, as the tutorial's page expects, plus a
//! `presence` change), and `kicked` before it disconnects someone.

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use socketioxide::SocketIo;

use super::fanout::{broadcast, user_key};
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

/// Tells a room that `user` joined or left it (now `count` members). `target`
/// names the recipients: the room's other connections (`socket.to(room)`), or
/// the whole room when no connection of the user is involved (a swept node).
pub(crate) async fn announce_presence<A, F>(
    shared: &Shared,
    target: F,
    room: &Arc<str>,
    change: Change,
    user: &User,
    count: usize,
) where
    A: Adapter,
    F: Fn() -> BroadcastOperators<A>,
{
    let notice = match change {
        Change::Joined => system_notice(room, format!("{} joined", user.name), MessageKind::Join),
        Change::Left => system_notice(room, format!("{} left", user.name), MessageKind::Leave),
    };
    if let Err(e) = broadcast(shared, &target, "message", &notice).await {
        tracing::debug!("could not deliver a {} notice: {e}", change.action());
    }
    let presence = PresenceNotice {
        room,
        action: change.action(),
        user,
        count,
    };
    if let Err(e) = broadcast(shared, &target, "presence", &presence).await {
        tracing::debug!("could not deliver a presence change: {e}");
    }
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
