//! How traffic reaches members: the one delivery step of a stored room message,
//! the consumer of announced messages in cluster mode, and the broadcast through
//! the adapter (every node) that falls back to this node during an outage.

use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;
use socketioxide::{BroadcastError, SocketIo};
use socketioxide_redis::drivers::Driver;
use tokio::sync::mpsc;

use super::announced::Announced;
use crate::cluster::ResilientDriver;
use crate::history::{conversation_users, Announcement};
use crate::shared::Shared;
use crate::stats::Counters;

/// Announcements buffered between Redis and this node's members.
const ANNOUNCEMENT_BUFFER: usize = 65_536;

/// The Socket.IO room that carries a chat room's traffic. Prefixed so that chat
/// rooms and per-user rooms can never collide.
pub(crate) fn room_key(room: &str) -> String {
    format!("r:{room}")
}

/// The Socket.IO room holding every connection of one user.
pub(crate) fn user_key(user_id: &str) -> String {
    format!("u:{user_id}")
}

/// Delivers a stored message to this node's members of its room, leaving out
/// the sending connection (the tutorial's page shows its own text itself): a
/// room message as `message` to the room, a private message (its room is a
/// conversation) as `private` to every connection of both users.
///
/// This is the only place a stored message reaches members, whether it was stored
/// by this node (the pipeline) or announced by another (`deliver_announced`).
pub(crate) async fn deliver_here<A: Adapter, T: Serialize + ?Sized>(
    io: &SocketIo<A>,
    counters: &Counters,
    room: &str,
    message: &T,
    sender: Option<&SocketRef<A>>,
) {
    let (event, keys) = match conversation_users(room) {
        Some((a, b)) => ("private", vec![user_key(a), user_key(b)]),
        None => ("message", vec![room_key(room)]),
    };
    let result = members_here(io, sender, keys).emit(event, message).await;
    count_dropped(counters, &result);
    if let Err(e) = result {
        // Only clients that are gone or too slow to read miss it; it is stored.
        tracing::debug!(room, "some members missed a message: {e}");
    }
}

/// Cluster mode: delivers the room messages every node stores, as Redis announces
/// them (in the order of their ids), and those this node journaled during an
/// outage, to this node's members; tells `delivered_here` of each of this
/// node's messages delivered.
pub(crate) async fn deliver_announced<A: Adapter>(
    io: SocketIo<A>,
    shared: Arc<Shared>,
    driver: ResilientDriver,
    channel: String,
    mut journaled: mpsc::Receiver<Announcement>,
    delivered_here: Arc<Announced>,
) {
    let Some(history) = shared.history.redis() else {
        return;
    };
    let node_id = shared
        .cluster()
        .map(|cluster| cluster.node_id.clone())
        .unwrap_or_default();
    // Without the subscription (Redis refused it) this node still delivers what
    // it journals itself.
    let mut announced = match driver.subscribe(channel, ANNOUNCEMENT_BUFFER).await {
        Ok(announced) => Some(announced),
        Err(e) => {
            tracing::error!("cannot subscribe to cluster messages: {e}");
            None
        }
    };
    loop {
        let from_redis = async {
            match announced.as_mut() {
                Some(announced) => announced.next().await,
                None => std::future::pending().await,
            }
        };
        let announcement = tokio::select! {
            Some((_, payload)) = from_redis => {
                let Ok(announcement) = serde_json::from_slice::<Announcement>(&payload) else {
                    tracing::warn!("ignoring a malformed cluster message");
                    continue;
                };
                if announcement.node == node_id
                    && announcement.presence.is_none()
                    && history.delivered_here(&announcement.key)
                {
                    // Journaled, so delivered already (and reported then).
                    continue;
                }
                announcement
            }
            Some(announcement) = journaled.recv() => announcement,
            else => return,
        };
        // The sender's connection is on the node that accepted the message.
        let sender = (announcement.node == node_id)
            .then(|| announcement.sid.parse::<Sid>().ok())
            .flatten()
            .and_then(|sid| io.get_socket(sid));
        if let Some(presence) = &announcement.presence {
            deliver_notice_here(
                &io,
                &shared.counters,
                &announcement.room,
                &announcement.message,
                presence,
                sender.as_ref(),
            )
            .await;
            continue;
        }
        deliver_here(
            &io,
            &shared.counters,
            &announcement.room,
            &*announcement.message,
            sender.as_ref(),
        )
        .await;
        if announcement.node == node_id {
            delivered_here.delivered(&announcement.key);
        }
    }
}

/// Cluster mode: delivers an announced join or leave notice to this node's
/// members of its room (but the user's own connection): the system message,
/// then the `presence` change.
async fn deliver_notice_here<A: Adapter>(
    io: &SocketIo<A>,
    counters: &Counters,
    room: &str,
    notice: &RawValue,
    presence: &RawValue,
    sender: Option<&SocketRef<A>>,
) {
    for (event, data) in [("message", notice), ("presence", presence)] {
        let result = members_here(io, sender, vec![room_key(room)])
            .emit(event, data)
            .await;
        count_dropped(counters, &result);
    }
}

/// This node's connections in the Socket.IO rooms `keys`, but `sender`.
fn members_here<A: Adapter>(
    io: &SocketIo<A>,
    sender: Option<&SocketRef<A>>,
    keys: Vec<String>,
) -> BroadcastOperators<A> {
    match sender {
        Some(socket) => socket.local().to(keys),
        None => io.local().to(keys),
    }
}

/// Emits through the adapter (to every node in cluster mode). When Redis is
/// down, or fails right now, the emit reaches this node's clients only: a node
/// keeps serving its own clients through an outage.
pub(crate) async fn broadcast<A, T, F>(
    shared: &Shared,
    target: F,
    event: &str,
    data: &T,
) -> Result<(), BroadcastError>
where
    A: Adapter,
    T: serde::Serialize + ?Sized,
    F: Fn() -> BroadcastOperators<A>,
{
    let result = match shared.cluster() {
        None => target().emit(event, data).await,
        Some(cluster) if !cluster.is_up() => target().local().emit(event, data).await,
        Some(cluster) => match target().emit(event, data).await {
            Err(BroadcastError::Adapter(e)) => {
                cluster.mark_down(&format!("broadcast: {e}"));
                target().local().emit(event, data).await
            }
            other => other,
        },
    };
    count_dropped(&shared.counters, &result);
    result
}

/// Counts the recipients of a broadcast whose queue was full.
fn count_dropped(counters: &Counters, result: &Result<(), BroadcastError>) {
    if let Err(BroadcastError::Socket(errors)) = result {
        let full = errors
            .iter()
            .filter(|e| matches!(e, socketioxide::SocketError::InternalChannelFull))
            .count();
        counters.dropped(full as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::RawValue;

    /// Announced messages are handed to clients as their JSON came: the
    /// Socket.IO encoder copies a raw value verbatim.
    #[test]
    fn raw_messages_are_encoded_verbatim() {
        let raw = RawValue::from_string(r#"{"id":"1-0","text":"hi \"you\""}"#.into()).unwrap();
        let value = socketioxide_parser_common_encode(&raw);
        assert_eq!(value, r#"["message",{"id":"1-0","text":"hi \"you\""}]"#);
    }

    fn socketioxide_parser_common_encode(raw: &RawValue) -> String {
        use socketioxide_core::parser::Parse;
        let value = socketioxide_parser_common::CommonParser
            .encode_value(raw, Some("message"))
            .unwrap();
        value.as_str().unwrap().to_string()
    }
}
