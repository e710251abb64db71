//! The room list every client sees: `rooms` (names and counts) and the tutorial's
//! `groupList` (names and members), pushed when membership changes.
//!
//! Changes are coalesced: after a push the task sleeps `room_list.interval_ms`, and
//! any number of changes in that time lead to one more push. Each push is encoded
//! once and bounded in size (`max_rooms`, `max_members_per_room`), so a join storm
//! of N users costs O(N) messages per interval, not O(N²).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::SocketIo;

use crate::protocol::{RoomCount, RoomInfo};
use crate::shared::Shared;
use crate::stats::Counters;

pub(super) async fn run<A: Adapter>(io: SocketIo<A>, shared: Arc<Shared>) {
    let base = shared.config.room_list.interval_ms;
    loop {
        tokio::select! {
            () = shared.room_list_changed.notified() => {}
            () = shared.lifecycle.stopped() => return,
        }
        push_room_lists(&shared, &io).await;
        // One interval per started thousand clients: a push costs one message per
        // client, so this keeps the cost per second flat as clients grow.
        let clients = Counters::get(&shared.counters.connections);
        let thousands = clients.div_ceil(CLIENTS_PER_INTERVAL).max(1);
        tokio::time::sleep(Duration::from_millis(base.saturating_mul(thousands))).await;
    }
}

/// Clients served per `room_list.interval_ms` of pause between pushes.
const CLIENTS_PER_INTERVAL: u64 = 1_000;

/// The two payloads, built once per push.
struct RoomLists {
    rooms: Vec<RoomCount>,
    group_list: Option<Map<String, Value>>,
}

async fn build(shared: &Shared) -> RoomLists {
    let config = &shared.config.room_list;
    if !config.group_list {
        let rooms = shared.presence.room_counts(config.max_rooms).await;
        return RoomLists {
            rooms,
            group_list: None,
        };
    }
    let listed = shared
        .presence
        .rooms(config.max_rooms, config.max_members_per_room)
        .await;
    let group_list = Some(group_list(&listed, config.group_list_max_bytes));
    RoomLists {
        rooms: listed
            .into_iter()
            .map(|room| RoomCount {
                room: room.room,
                count: room.count,
            })
            .collect(),
        group_list,
    }
}

/// The tutorial's `{"<room>": [{name, room, id}, ...]}`, at most `max_bytes`
/// encoded: rooms in their listed order, members in join order, while the next
/// entry fits; the rest is left out (a room without a listed entry too).
fn group_list(listed: &[RoomInfo], max_bytes: usize) -> Map<String, Value> {
    // `{}`, then per room `"<room>":[]` plus a comma, per entry its encoding plus
    // a comma: counted the way serde_json writes them (compact).
    let mut size = 2;
    let mut list = Map::new();
    'rooms: for room in listed {
        let key = Value::String(room.room.to_string()).to_string();
        let mut members = Vec::new();
        let mut room_size = key.len() + 1 + 2 + usize::from(!list.is_empty());
        for member in &room.members {
            let entry = serde_json::json!({
                "name": member.name,
                "room": room.room,
                "id": member.id,
            });
            let entry_size = entry.to_string().len() + usize::from(!members.is_empty());
            if size + room_size + entry_size > max_bytes {
                if !members.is_empty() {
                    list.insert(room.room.to_string(), Value::Array(members));
                }
                break 'rooms;
            }
            room_size += entry_size;
            members.push(entry);
        }
        if !members.is_empty() {
            size += room_size;
            list.insert(room.room.to_string(), Value::Array(members));
        }
    }
    list
}

/// Pushes the current lists to every client of this node.
pub(crate) async fn push_room_lists<A: Adapter>(shared: &Shared, io: &SocketIo<A>) {
    let lists = build(shared).await;
    if let Err(e) = io.local().emit("rooms", &lists.rooms).await {
        tracing::debug!("some clients missed the room list: {e}");
    }
    if let Some(group_list) = &lists.group_list {
        if let Err(e) = io.local().emit("groupList", group_list).await {
            tracing::debug!("some clients missed the group list: {e}");
        }
    }
}

/// Sends the current lists to one new client.
pub(super) async fn push_to<A: Adapter>(shared: &Shared, socket: &SocketRef<A>) {
    let lists = build(shared).await;
    let _ = socket.emit("rooms", &lists.rooms);
    if let Some(group_list) = &lists.group_list {
        let _ = socket.emit("groupList", group_list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Member;

    fn room(name: &str, members: usize) -> RoomInfo {
        RoomInfo {
            room: name.into(),
            count: members,
            members: (0..members)
                .map(|i| Member {
                    id: format!("user-{i}").into(),
                    name: format!("user-{i}").into(),
                })
                .collect(),
        }
    }

    /// Whole entries while they fit, in order; the encoding never passes the bound.
    #[test]
    fn group_list_is_bounded_in_bytes() {
        let listed = [room("a", 5), room("b", 5)];
        let whole = group_list(&listed, usize::MAX);
        let whole_size = Value::Object(whole.clone()).to_string().len();
        assert_eq!(group_list(&listed, whole_size), whole);
        for max in 0..whole_size {
            let list = group_list(&listed, max);
            let size = Value::Object(list.clone()).to_string().len();
            assert!(size <= max.max(2), "{size} bytes over {max}");
            // A prefix of the whole list, room by room and member by member.
            let entries: Vec<&Value> = list.values().flat_map(|v| v.as_array().unwrap()).collect();
            let all: Vec<&Value> = whole.values().flat_map(|v| v.as_array().unwrap()).collect();
            assert_eq!(entries, all[..entries.len()]);
        }
    }
}
