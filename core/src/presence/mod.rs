//! Who is online and who is in which room, behind one interface: this node's own
//! connections (`local.rs`), mirrored into Redis in cluster mode (`redis.rs`) so
//! that member lists, counts and "is online" cover every node. Callers never know
//! which they have; reads fall back to local data when Redis fails.

mod local;
mod redis;
mod shared_read;

use std::sync::Arc;

pub(crate) use self::local::{JoinOutcome, LeaveOutcome, LocalPresence};
pub(crate) use self::redis::Departure;

use self::shared_read::SharedRead;
use crate::cluster::Cluster;
use crate::protocol::{ChatError, ErrorCode, Member, RoomCount, RoomInfo, User};

/// Why an open-mode name could not be claimed. Only in cluster mode: a single
/// node always finds a free suffixed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClaimError {
    /// The name and every suffixed form tried are held across the cluster.
    #[error("that name and its numbered forms are taken; choose another name")]
    Taken,
    /// Redis is unreachable, so the name cannot be reserved cluster-wide, and a
    /// claim on this node alone could give away the name of a user online on
    /// another node.
    #[error("names cannot be reserved while the cluster store is unreachable; retry later")]
    Unavailable,
}

impl From<ClaimError> for ChatError {
    fn from(error: ClaimError) -> Self {
        let code = match error {
            ClaimError::Taken => ErrorCode::NameTaken,
            ClaimError::Unavailable => ErrorCode::Unavailable,
        };
        ChatError::new(code, error.to_string())
    }
}

pub(crate) struct Presence {
    pub local: LocalPresence,
    cluster: Option<Arc<Cluster>>,
    open_mode: bool,
    /// Cluster mode: concurrent reads of the room lists share one Redis read.
    room_reads: SharedRead<(usize, usize), Option<Vec<RoomInfo>>>,
    count_reads: SharedRead<usize, Option<Vec<RoomCount>>>,
}

impl Presence {
    pub(crate) fn new(cluster: Option<Arc<Cluster>>, open_mode: bool) -> Self {
        Self {
            local: LocalPresence::default(),
            cluster,
            open_mode,
            room_reads: SharedRead::default(),
            count_reads: SharedRead::default(),
        }
    }

    pub(crate) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// Open mode: a unique name for a new identity (cluster-wide in cluster mode,
    /// where it is reserved in Redis or refused, never claimed on this node alone).
    pub(crate) async fn claim_name(
        &self,
        requested: &str,
        max_chars: usize,
    ) -> Result<User, ClaimError> {
        match &self.cluster {
            Some(cluster) => {
                let user = redis::claim_name(cluster, &self.local, requested, max_chars).await?;
                redis::user_online(cluster, &user).await;
                Ok(user)
            }
            None => Ok(self.local.claim_name(requested, max_chars)),
        }
    }

    /// Token mode: one more connection of `user`.
    pub(crate) async fn connect(&self, user: &User) {
        self.local.connect(user);
        if let Some(cluster) = &self.cluster {
            redis::user_online(cluster, user).await;
        }
    }

    /// One connection of `user` is gone (disconnect or logout).
    pub(crate) async fn disconnect(&self, user: &User) {
        self.local.disconnect(user);
        let Some(cluster) = &self.cluster else { return };
        if self.local.online(&user.id).is_none() && cluster.is_up() {
            redis::user_offline(cluster, user).await;
            if self.open_mode {
                redis::release_name(cluster, user).await;
            }
        }
    }

    pub(crate) async fn join(&self, room: &Arc<str>, user: &User) -> JoinOutcome {
        let outcome = self.local.join(room, user);
        match &self.cluster {
            Some(cluster) => redis::joined(cluster, &self.local, room, user, outcome).await,
            None => outcome,
        }
    }

    /// `None` when this connection's user was not in the room.
    pub(crate) async fn leave(&self, room: &str, user: &User) -> Option<LeaveOutcome> {
        let outcome = self.local.leave(room, user)?;
        Some(match &self.cluster {
            Some(cluster) => {
                let still_here = self.local.member_count(room) > 0;
                redis::left(cluster, room, user, outcome, still_here).await
            }
            None => outcome,
        })
    }

    /// The room's member count and its first `limit` members in join order.
    pub(crate) async fn members(&self, room: &str, limit: usize) -> (usize, Vec<Member>) {
        if let Some(cluster) = &self.cluster {
            if let Some(members) = redis::members(cluster, room, limit).await {
                return members;
            }
        }
        (
            self.local.member_count(room),
            self.local.members(room, limit),
        )
    }

    /// The user with this id if they have a connection anywhere.
    pub(crate) async fn online(&self, user_id: &str) -> Option<User> {
        if let Some(cluster) = &self.cluster {
            if let Some(online) = redis::online(cluster, user_id).await {
                return online;
            }
        }
        self.local.online(user_id)
    }

    /// The `max_rooms` most populated rooms (ties by name) with their first
    /// `max_members` members. In cluster mode concurrent calls share one read.
    pub(crate) async fn rooms(&self, max_rooms: usize, max_members: usize) -> Vec<RoomInfo> {
        if let Some(cluster) = &self.cluster {
            let read = || redis::rooms(cluster, max_rooms, max_members);
            if let Some(rooms) = self.room_reads.get((max_rooms, max_members), read).await {
                return rooms;
            }
        }
        self.local.rooms(max_rooms, max_members)
    }

    /// The `max_rooms` most populated rooms and their counts. In cluster mode
    /// one Redis command, shared by concurrent calls.
    pub(crate) async fn room_counts(&self, max_rooms: usize) -> Vec<RoomCount> {
        if let Some(cluster) = &self.cluster {
            let read = || redis::room_counts(cluster, max_rooms);
            if let Some(rooms) = self.count_reads.get(max_rooms, read).await {
                return rooms;
            }
        }
        self.local.room_counts(max_rooms)
    }

    /// Removes a dead node's presence (cluster mode); returns who left which room.
    pub(crate) async fn sweep(&self, node: &str) -> Result<Vec<Departure>, String> {
        match &self.cluster {
            Some(cluster) => redis::sweep(cluster, node).await,
            None => Ok(Vec::new()),
        }
    }

    /// Rewrites this node's share of cluster presence (after an outage); returns
    /// the users whose names another node holds now.
    pub(crate) async fn resync(&self) -> Result<Vec<User>, String> {
        match &self.cluster {
            Some(cluster) => redis::resync(cluster, &self.local, self.open_mode).await,
            None => Ok(Vec::new()),
        }
    }
}
