//! What the chat does when the cluster signals something: Redis is back or this
//! node was taken for dead (rewrite its presence, write its journal to Redis,
//! resolve name conflicts), another node died (its users leave their rooms,
//! with notices), membership changed elsewhere (push room lists).

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::SocketIo;
use tokio::sync::mpsc;

use super::notices::{announce_presence, kick, Audience, Change, Reach};
use crate::cluster::ClusterSignal;
use crate::presence::Departure;
use crate::shared::Shared;

pub(super) async fn run<A: Adapter>(
    io: SocketIo<A>,
    shared: Arc<Shared>,
    mut signals: mpsc::Receiver<ClusterSignal>,
) {
    while let Some(signal) = signals.recv().await {
        if shared.stopping() {
            return;
        }
        match signal {
            ClusterSignal::Started => {
                // Messages journaled before a crash during an outage.
                replay_journal(&shared).await;
            }
            ClusterSignal::Recovered => {
                match shared.presence.resync().await {
                    Ok(renamed) => kick_name_conflicts(&shared, &io, renamed).await,
                    Err(e) => tracing::warn!("could not restore this node's presence yet: {e}"),
                }
                replay_journal(&shared).await;
                shared.presence_changed().await;
            }
            ClusterSignal::Readmitted => {
                if let Ok(renamed) = shared.presence.resync().await {
                    kick_name_conflicts(&shared, &io, renamed).await;
                }
                shared.presence_changed().await;
            }
            ClusterSignal::NodeDead(node) => match shared.presence.sweep(&node).await {
                Ok(departures) => {
                    announce_departures(&shared, &io, departures).await;
                    shared.presence_changed().await;
                }
                Err(e) => tracing::warn!(node, "could not sweep a dead node: {e}"),
            },
            ClusterSignal::RoomsChanged => shared.room_list_changed.notify_one(),
        }
    }
}

async fn replay_journal(shared: &Shared) {
    if let Some(history) = shared.history.redis() {
        history.replay().await;
    }
}

/// Leave notices for users whose node died, to every node's members of the room.
async fn announce_departures<A: Adapter>(
    shared: &Shared,
    io: &SocketIo<A>,
    departures: Vec<Departure>,
) {
    for Departure { room, user, count } in departures {
        announce_presence(
            shared,
            Audience::Everyone(io),
            &room,
            Change::Left,
            &user,
            count,
        )
        .await;
    }
}

/// Users whose open-mode name another node took while this one was cut off lose
/// their connections here (`kicked {reason: "name_taken"}`): two online users
/// must never share a name. They can reconnect under a free name.
async fn kick_name_conflicts<A: Adapter>(
    shared: &Shared,
    io: &SocketIo<A>,
    users: Vec<crate::protocol::User>,
) {
    for user in users {
        tracing::warn!(name = %user.name, "another node took this user's name meanwhile; disconnecting them");
        let _ = kick(shared, io, &user.id, "name_taken", Reach::ThisNode).await;
    }
}
