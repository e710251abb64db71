//! Presence of this node's own connections: who is online, in which rooms.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use crate::lookalike::name_key;
use crate::protocol::{Member, RoomCount, RoomInfo, User};

/// Online users, name claims and room membership, counted per connection so that a
/// user with two tabs in a room is one member until both have left.
#[derive(Default)]
pub(crate) struct LocalPresence {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// user id -> the user and their number of connections
    users: HashMap<Arc<str>, (User, u32)>,
    /// name key (`lookalike::name_key`) -> user id, for open-mode uniqueness
    names: HashMap<String, Arc<str>>,
    rooms: HashMap<Arc<str>, RoomMembers>,
    next_seq: u64,
}

#[derive(Default)]
struct RoomMembers {
    /// user id -> the member
    members: HashMap<Arc<str>, MemberEntry>,
    /// join sequence -> user id, so members list in join order
    order: BTreeMap<u64, Arc<str>>,
}

struct MemberEntry {
    user: User,
    /// This user's connections in the room.
    connections: u32,
    /// Join sequence (key of `order`).
    seq: u64,
    /// When the user joined (ms since the epoch), kept for cluster member order.
    joined_ms: i64,
}

/// A room and its users here with their join times (ms), in join order.
pub(crate) type RoomSnapshot = (Arc<str>, Vec<(User, i64)>);

/// This node's presence at one moment.
pub(crate) struct Snapshot {
    pub users: Vec<User>,
    pub rooms: Vec<RoomSnapshot>,
}

/// What a join changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JoinOutcome {
    /// The user was not in the room before (first of their connections to join).
    pub newly_present: bool,
    /// Distinct users in the room now.
    pub count: usize,
}

/// What a leave changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaveOutcome {
    /// The user has no connection left in the room.
    pub gone: bool,
    /// Distinct users in the room now.
    pub count: usize,
}

impl LocalPresence {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// Open mode: takes `requested` or, when someone online has it, the first free
    /// `requested-N`. The name is also the user id.
    pub(crate) fn claim_name(&self, requested: &str, max_chars: usize) -> User {
        let mut inner = self.lock();
        let name = (1..)
            .map(|n| suffixed(requested, n, max_chars))
            .find(|candidate| !inner.names.contains_key(&name_key(candidate)))
            .expect("an unbounded range always yields a free name");
        let user = User {
            id: Arc::from(name.as_str()),
            name: Arc::from(name.as_str()),
        };
        inner.names.insert(name_key(&name), user.id.clone());
        inner.users.insert(user.id.clone(), (user.clone(), 1));
        user
    }

    /// Claims exactly `name` (id and display name) when no one online here has it
    /// (compared by look, see `lookalike::name_key`).
    pub(crate) fn try_claim_exact(&self, name: &str) -> Option<User> {
        let mut inner = self.lock();
        let key = name_key(name);
        if inner.names.contains_key(&key) {
            return None;
        }
        let user = User {
            id: Arc::from(name),
            name: Arc::from(name),
        };
        inner.names.insert(key, user.id.clone());
        inner.users.insert(user.id.clone(), (user.clone(), 1));
        Some(user)
    }

    /// Every user online here, and every room with its users here in join order,
    /// for rewriting this node's share of cluster presence.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        let users = inner.users.values().map(|(user, _)| user.clone()).collect();
        let rooms = inner
            .rooms
            .iter()
            .map(|(room, members)| {
                let users = members
                    .order
                    .values()
                    .filter_map(|id| members.members.get(id))
                    .map(|entry| (entry.user.clone(), entry.joined_ms))
                    .collect();
                (room.clone(), users)
            })
            .collect();
        Snapshot { users, rooms }
    }

    /// Token mode: one more connection of `user`.
    pub(crate) fn connect(&self, user: &User) {
        let mut inner = self.lock();
        inner
            .users
            .entry(user.id.clone())
            .and_modify(|(known, connections)| {
                *connections += 1;
                // A newer token may carry a new display name.
                *known = user.clone();
            })
            .or_insert_with(|| (user.clone(), 1));
    }

    /// One connection of `user` is gone; the last one frees their name.
    pub(crate) fn disconnect(&self, user: &User) {
        let mut inner = self.lock();
        let Some((_, connections)) = inner.users.get_mut(&user.id) else {
            return;
        };
        *connections -= 1;
        if *connections == 0 {
            inner.users.remove(&user.id);
            let key = name_key(&user.name);
            if inner.names.get(&key) == Some(&user.id) {
                inner.names.remove(&key);
            }
        }
    }

    pub(crate) fn online(&self, user_id: &str) -> Option<User> {
        self.lock().users.get(user_id).map(|(user, _)| user.clone())
    }

    pub(crate) fn online_count(&self) -> usize {
        self.lock().users.len()
    }

    pub(crate) fn join(&self, room: &Arc<str>, user: &User) -> JoinOutcome {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let members = inner.rooms.entry(room.clone()).or_default();
        let newly_present = match members.members.get_mut(&user.id) {
            Some(entry) => {
                entry.connections += 1;
                false
            }
            None => {
                members.members.insert(
                    user.id.clone(),
                    MemberEntry {
                        user: user.clone(),
                        connections: 1,
                        seq,
                        joined_ms: crate::protocol::now_ms(),
                    },
                );
                members.order.insert(seq, user.id.clone());
                true
            }
        };
        JoinOutcome {
            newly_present,
            count: members.members.len(),
        }
    }

    /// `None` when the user was not in the room.
    pub(crate) fn leave(&self, room: &str, user: &User) -> Option<LeaveOutcome> {
        let mut inner = self.lock();
        let members = inner.rooms.get_mut(room)?;
        let entry = members.members.get_mut(&user.id)?;
        entry.connections -= 1;
        let gone = entry.connections == 0;
        if gone {
            let seq = entry.seq;
            members.members.remove(&user.id);
            members.order.remove(&seq);
        }
        let count = members.members.len();
        if count == 0 {
            inner.rooms.remove(room);
        }
        Some(LeaveOutcome { gone, count })
    }

    /// Members of a room in join order, at most `limit`.
    pub(crate) fn members(&self, room: &str, limit: usize) -> Vec<Member> {
        let inner = self.lock();
        inner
            .rooms
            .get(room)
            .map(|members| list_members(members, limit))
            .unwrap_or_default()
    }

    /// When the user joined the room here (ms since the epoch).
    pub(crate) fn joined_ms(&self, room: &str, user_id: &str) -> Option<i64> {
        let inner = self.lock();
        Some(inner.rooms.get(room)?.members.get(user_id)?.joined_ms)
    }

    /// Distinct users in a room.
    pub(crate) fn member_count(&self, room: &str) -> usize {
        self.lock()
            .rooms
            .get(room)
            .map_or(0, |members| members.members.len())
    }

    pub(crate) fn room_count(&self) -> usize {
        self.lock().rooms.len()
    }

    /// Rooms by member count, most populated first, at most `max_rooms`.
    pub(crate) fn room_counts(&self, max_rooms: usize) -> Vec<RoomCount> {
        let inner = self.lock();
        let mut rooms: Vec<RoomCount> = inner
            .rooms
            .iter()
            .map(|(room, members)| RoomCount {
                room: room.clone(),
                count: members.members.len(),
            })
            .collect();
        rooms.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.room.cmp(&b.room)));
        rooms.truncate(max_rooms);
        rooms
    }

    /// Rooms (most populated first, at most `max_rooms`) with up to `max_members`
    /// members each.
    pub(crate) fn rooms(&self, max_rooms: usize, max_members: usize) -> Vec<RoomInfo> {
        let counts = self.room_counts(max_rooms);
        let inner = self.lock();
        counts
            .into_iter()
            .filter_map(|RoomCount { room, count }| {
                let members = inner.rooms.get(&room)?;
                Some(RoomInfo {
                    members: list_members(members, max_members),
                    room,
                    count,
                })
            })
            .collect()
    }
}

fn list_members(members: &RoomMembers, limit: usize) -> Vec<Member> {
    members
        .order
        .values()
        .take(limit)
        .filter_map(|id| members.members.get(id))
        .map(|entry| Member {
            id: entry.user.id.clone(),
            name: entry.user.name.clone(),
        })
        .collect()
}

/// `name` for n = 1, else `name-n`, the base shortened so the result fits `max_chars`.
pub(crate) fn suffixed(name: &str, n: u32, max_chars: usize) -> String {
    if n == 1 {
        return name.to_string();
    }
    let suffix = format!("-{n}");
    let keep = max_chars.saturating_sub(suffix.len()).max(1);
    let base: String = name.chars().take(keep).collect();
    format!("{}{suffix}", base.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            name: id.into(),
        }
    }

    #[test]
    fn names_are_unique_case_insensitively() {
        let presence = LocalPresence::default();
        let first = presence.claim_name("Ada", 32);
        let second = presence.claim_name("ada", 32);
        let third = presence.claim_name("ADA", 32);
        assert_eq!(&*first.name, "Ada");
        assert_eq!(&*second.name, "ada-2");
        assert_eq!(&*third.name, "ADA-3");
        presence.disconnect(&first);
        assert_eq!(&*presence.claim_name("ada", 32).name, "ada");
        assert_eq!(
            &*presence.claim_name(&"x".repeat(32), 32).name,
            "x".repeat(32)
        );
        assert_eq!(
            &*presence.claim_name(&"x".repeat(32), 32).name,
            format!("{}-2", "x".repeat(30))
        );
    }

    #[test]
    fn membership_counts_connections() {
        let presence = LocalPresence::default();
        let room: Arc<str> = "r".into();
        let (a, b) = (user("a"), user("b"));
        assert!(presence.join(&room, &a).newly_present);
        assert!(!presence.join(&room, &a).newly_present);
        assert_eq!(presence.join(&room, &b).count, 2);
        let names: Vec<_> = presence
            .members("r", 10)
            .into_iter()
            .map(|m| m.id.to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(!presence.leave("r", &a).unwrap().gone);
        assert!(presence.leave("r", &a).unwrap().gone);
        assert_eq!(presence.leave("r", &a), None);
        assert_eq!(presence.leave("r", &b).unwrap().count, 0);
        assert_eq!(presence.room_count(), 0);
    }

    #[test]
    fn room_counts_are_sorted_and_bounded() {
        let presence = LocalPresence::default();
        for (room, users) in [("small", 1), ("big", 3), ("mid", 2)] {
            for i in 0..users {
                presence.join(&Arc::from(room), &user(&format!("u{i}")));
            }
        }
        let rooms: Vec<_> = presence
            .room_counts(2)
            .into_iter()
            .map(|r| (r.room.to_string(), r.count))
            .collect();
        assert_eq!(rooms, [("big".into(), 3), ("mid".into(), 2)]);
        let listed = presence.rooms(1, 2);
        assert_eq!(listed[0].count, 3);
        assert_eq!(listed[0].members.len(), 2);
    }
}
