//! Presence shared through Redis. Each node is the authority for its own
//! connections (kept in its `LocalPresence`) and mirrors them into Redis:
//!
//! - `{p}:room:{room}` hash: field `{node}|{user id}` → `{"n": name, "t": joined ms}`
//! - `{p}:room_counts` sorted set: room → minus its count of distinct users, for
//!   rooms with members, so that `ZRANGE 0 n-1` lists the most populated first
//!   (ties by name); kept by the same scripts that change `{p}:room:{room}`
//! - `{p}:user:{user id}` hash: field `{node}` → name (who is online where)
//! - `{p}:names` hash: open-mode name key (`lookalike::name_key`: what the name
//!   looks like, case and confusables folded) → `{node}|{user id}` (unique names)
//! - `{p}:node:{node}:rooms|users|names` sets: what to remove when the node dies
//! - `{p}:nodes` sorted set: node → last heartbeat (ms)
//!
//! Reads return `None` when Redis fails, and callers fall back to local data.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::local::{suffixed, JoinOutcome, LeaveOutcome, LocalPresence, Snapshot};
use super::ClaimError;
use crate::cluster::Cluster;
use crate::lookalike::name_key;
use crate::protocol::{now_ms, Member, RoomCount, RoomInfo, User};

/// Bounded search for a free name; past it the claim is refused.
const MAX_NAME_ATTEMPTS: u32 = 1_000;

#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(rename = "n")]
    name: String,
    #[serde(rename = "t")]
    joined_ms: i64,
}

/// One user in a room across the cluster: name, earliest join, nodes they are on.
struct Presence {
    name: String,
    joined_ms: i64,
    nodes: Vec<String>,
}

/// A room's users across the cluster, by user id.
type RoomUsers = HashMap<String, Presence>;

fn field(node: &str, user_id: &str) -> String {
    format!("{node}|{user_id}")
}

/// `{node}|{user id}` → (node, user id); user ids may contain `|`, node ids do not.
fn split_field(field: &str) -> Option<(&str, &str)> {
    field.split_once('|')
}

/// Open mode: a name unique across the cluster (`name`, `name-2`, ...).
pub(crate) async fn claim_name(
    cluster: &Cluster,
    local: &LocalPresence,
    requested: &str,
    max_chars: usize,
) -> Result<User, ClaimError> {
    if !cluster.is_up() {
        return Err(ClaimError::Unavailable);
    }
    for n in 1..=MAX_NAME_ATTEMPTS {
        let candidate = suffixed(requested, n, max_chars);
        let Some(user) = local.try_claim_exact(&candidate) else {
            continue;
        };
        let claimed: Result<i64, _> = cluster
            .run(
                "claim name",
                redis::cmd("EVAL")
                    .arg(CLAIM_NAME_SCRIPT)
                    .arg(2)
                    .arg(cluster.key(&["names"]))
                    .arg(cluster.key(&["node", &cluster.node_id, "names"]))
                    .arg(name_key(&candidate))
                    .arg(field(&cluster.node_id, &user.id))
                    .clone(),
            )
            .await;
        match claimed {
            Ok(1) => return Ok(user),
            Ok(_) => local.disconnect(&user),
            // Redis just failed: whether another node holds the name is unknown.
            Err(_) => {
                local.disconnect(&user);
                return Err(ClaimError::Unavailable);
            }
        }
    }
    Err(ClaimError::Taken)
}

/// Reserves an open-mode name for this node's user, and indexes it under the node
/// (so that a sweep of the node frees it), in one step. KEYS: names, node's
/// names. ARGV: name key, claim. Returns 1 when reserved, 0 when taken.
const CLAIM_NAME_SCRIPT: &str = "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then \
       redis.call('SADD', KEYS[2], ARGV[1]) return 1 end \
     return 0";

/// Deletes an open-mode name claim only when it is this node's own: another node
/// may have taken the name since. KEYS: names, node's names. ARGV: name key,
/// claim.
const RELEASE_NAME_SCRIPT: &str = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then \
       redis.call('HDEL', KEYS[1], ARGV[1]) end \
     redis.call('SREM', KEYS[2], ARGV[1]) return 1";

/// Frees an open-mode name (if this node still holds it).
pub(crate) async fn release_name(cluster: &Cluster, user: &User) {
    let key = name_key(&user.name);
    let _: Result<i64, _> = cluster
        .run(
            "release name",
            redis::cmd("EVAL")
                .arg(RELEASE_NAME_SCRIPT)
                .arg(2)
                .arg(cluster.key(&["names"]))
                .arg(cluster.key(&["node", &cluster.node_id, "names"]))
                .arg(&key)
                .arg(field(&cluster.node_id, &user.id))
                .clone(),
        )
        .await;
}

/// The user is online on this node.
pub(crate) async fn user_online(cluster: &Cluster, user: &User) {
    let mut pipe = redis::pipe();
    pipe.cmd("HSET")
        .arg(cluster.key(&["user", &user.id]))
        .arg(&cluster.node_id)
        .arg(&*user.name)
        .ignore()
        .cmd("SADD")
        .arg(cluster.key(&["node", &cluster.node_id, "users"]))
        .arg(&*user.id)
        .ignore();
    let _: Result<(), _> = cluster.run("user online", pipe).await;
}

/// The user has no connection left on this node.
pub(crate) async fn user_offline(cluster: &Cluster, user: &User) {
    let mut pipe = redis::pipe();
    pipe.cmd("HDEL")
        .arg(cluster.key(&["user", &user.id]))
        .arg(&cluster.node_id)
        .ignore()
        .cmd("SREM")
        .arg(cluster.key(&["node", &cluster.node_id, "users"]))
        .arg(&*user.id)
        .ignore();
    let _: Result<(), _> = cluster.run("user offline", pipe).await;
}

/// Who is online where: `Some(None)` when nobody by that id is online.
pub(crate) async fn online(cluster: &Cluster, user_id: &str) -> Option<Option<User>> {
    if !cluster.is_up() {
        return None;
    }
    let nodes: HashMap<String, String> = cluster
        .run(
            "online",
            redis::cmd("HGETALL")
                .arg(cluster.key(&["user", user_id]))
                .clone(),
        )
        .await
        .ok()?;
    Some(nodes.into_values().next().map(|name| User {
        id: Arc::from(user_id),
        name: Arc::from(name),
    }))
}

/// The room's entries: user id → (name, earliest join, nodes).
async fn room_entries(cluster: &Cluster, room: &str) -> Option<RoomUsers> {
    let fields: HashMap<String, String> = cluster
        .run(
            "room members",
            redis::cmd("HGETALL")
                .arg(cluster.key(&["room", room]))
                .clone(),
        )
        .await
        .ok()?;
    Some(fold_entries(fields))
}

fn fold_entries(fields: HashMap<String, String>) -> RoomUsers {
    let mut users = RoomUsers::new();
    for (field, value) in fields {
        let (Some((node, user_id)), Ok(entry)) =
            (split_field(&field), serde_json::from_str::<Entry>(&value))
        else {
            continue;
        };
        let slot = users
            .entry(user_id.to_string())
            .or_insert_with(|| Presence {
                name: entry.name.clone(),
                joined_ms: entry.joined_ms,
                nodes: Vec::new(),
            });
        slot.joined_ms = slot.joined_ms.min(entry.joined_ms);
        slot.nodes.push(node.to_string());
    }
    users
}

/// Mirrors a join and, in the same atomic step, tells whether the user is on
/// another node too and how many users the room has (and records that count).
/// Atomic, so two connections of one user joining on two nodes at once yield
/// exactly one join notice. KEYS: room, room counts, node's rooms.
const JOIN_SCRIPT: &str = r#"
redis.call('HSET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
local users, count, elsewhere = {}, 0, 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local bar = string.find(f, '|', 1, true)
  if bar then
    local node, uid = string.sub(f, 1, bar - 1), string.sub(f, bar + 1)
    if not users[uid] then users[uid] = true; count = count + 1 end
    if uid == ARGV[2] and node ~= ARGV[1] then elsewhere = 1 end
  end
end
redis.call('ZADD', KEYS[2], -count, ARGV[4])
return {elsewhere, count}
"#;

/// Mirrors a leave atomically (see [`JOIN_SCRIPT`]): exactly one leave notice when
/// a user's last connections leave on two nodes at once.
const LEAVE_SCRIPT: &str = r#"
redis.call('HDEL', KEYS[1], ARGV[1] .. '|' .. ARGV[2])
if ARGV[4] ~= '1' then redis.call('SREM', KEYS[3], ARGV[3]) end
local users, count, elsewhere = {}, 0, 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local bar = string.find(f, '|', 1, true)
  if bar then
    local uid = string.sub(f, bar + 1)
    if not users[uid] then users[uid] = true; count = count + 1 end
    if uid == ARGV[2] then elsewhere = 1 end
  end
end
if count == 0 then redis.call('ZREM', KEYS[2], ARGV[3])
else redis.call('ZADD', KEYS[2], -count, ARGV[3]) end
return {elsewhere, count}
"#;

/// After a local join: mirrors it and says whether the user is new to the room
/// cluster-wide.
pub(crate) async fn joined(
    cluster: &Cluster,
    local_presence: &LocalPresence,
    room: &str,
    user: &User,
    local: JoinOutcome,
) -> JoinOutcome {
    if !cluster.is_up() {
        return local;
    }
    if !local.newly_present {
        // Another connection of this user is in the room here already.
        return match room_entries(cluster, room).await {
            Some(entries) => JoinOutcome {
                newly_present: false,
                count: entries.len(),
            },
            None => local,
        };
    }
    let entry = serde_json::to_string(&Entry {
        name: user.name.to_string(),
        joined_ms: local_presence
            .joined_ms(room, &user.id)
            .unwrap_or_else(now_ms),
    })
    .unwrap_or_default();
    let result: Result<(i64, i64), _> = cluster
        .run(
            "join",
            redis::cmd("EVAL")
                .arg(JOIN_SCRIPT)
                .arg(3)
                .arg(cluster.key(&["room", room]))
                .arg(cluster.key(&["room_counts"]))
                .arg(cluster.key(&["node", &cluster.node_id, "rooms"]))
                .arg(&cluster.node_id)
                .arg(&*user.id)
                .arg(entry)
                .arg(room)
                .clone(),
        )
        .await;
    match result {
        Ok((elsewhere, count)) => JoinOutcome {
            newly_present: elsewhere == 0,
            count: count.max(0) as usize,
        },
        Err(_) => local,
    }
}

/// After a local leave: mirrors it and says whether the user left the room
/// cluster-wide.
pub(crate) async fn left(
    cluster: &Cluster,
    room: &str,
    user: &User,
    local: LeaveOutcome,
    node_still_in_room: bool,
) -> LeaveOutcome {
    if !cluster.is_up() {
        return local;
    }
    if !local.gone {
        return match room_entries(cluster, room).await {
            Some(entries) => LeaveOutcome {
                gone: false,
                count: entries.len(),
            },
            None => local,
        };
    }
    let result: Result<(i64, i64), _> = cluster
        .run(
            "leave",
            redis::cmd("EVAL")
                .arg(LEAVE_SCRIPT)
                .arg(3)
                .arg(cluster.key(&["room", room]))
                .arg(cluster.key(&["room_counts"]))
                .arg(cluster.key(&["node", &cluster.node_id, "rooms"]))
                .arg(&cluster.node_id)
                .arg(&*user.id)
                .arg(room)
                .arg(if node_still_in_room { "1" } else { "0" })
                .clone(),
        )
        .await;
    match result {
        Ok((elsewhere, count)) => LeaveOutcome {
            gone: elsewhere == 0,
            count: count.max(0) as usize,
        },
        Err(_) => local,
    }
}

fn sorted_members(entries: RoomUsers, limit: usize) -> Vec<Member> {
    let mut members: Vec<(i64, Member)> = entries
        .into_iter()
        .map(|(id, presence)| {
            (
                presence.joined_ms,
                Member {
                    id: Arc::from(id),
                    name: Arc::from(presence.name),
                },
            )
        })
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    members.into_iter().take(limit).map(|(_, m)| m).collect()
}

/// Members of a room across the cluster, in join order.
pub(crate) async fn members(
    cluster: &Cluster,
    room: &str,
    limit: usize,
) -> Option<(usize, Vec<Member>)> {
    if !cluster.is_up() {
        return None;
    }
    let entries = room_entries(cluster, room).await?;
    let count = entries.len();
    Some((count, sorted_members(entries, limit)))
}

/// The `max_rooms` most populated rooms with their counts (ties by name), from
/// the sorted set of counts: one command, whatever the number of rooms.
async fn top_rooms(cluster: &Cluster, max_rooms: usize) -> Option<Vec<(String, usize)>> {
    if max_rooms == 0 {
        return Some(Vec::new());
    }
    let last = i64::try_from(max_rooms - 1).unwrap_or(-1);
    let ranked: Vec<(String, f64)> = cluster
        .run(
            "rooms",
            redis::cmd("ZRANGE")
                .arg(cluster.key(&["room_counts"]))
                .arg(0)
                .arg(last)
                .arg("WITHSCORES")
                .clone(),
        )
        .await
        .ok()?;
    Some(
        ranked
            .into_iter()
            .map(|(room, score)| (room, (-score).max(0.0) as usize))
            .filter(|(_, count)| *count > 0)
            .collect(),
    )
}

/// Rooms across the cluster, the most populated first: the top of the sorted set
/// of counts, then the members of those rooms only.
pub(crate) async fn rooms(
    cluster: &Cluster,
    max_rooms: usize,
    max_members: usize,
) -> Option<Vec<RoomInfo>> {
    if !cluster.is_up() {
        return None;
    }
    let names: Vec<String> = top_rooms(cluster, max_rooms)
        .await?
        .into_iter()
        .map(|(room, _)| room)
        .collect();
    if names.is_empty() {
        return Some(Vec::new());
    }
    let mut pipe = redis::pipe();
    for name in &names {
        pipe.cmd("HGETALL").arg(cluster.key(&["room", name]));
    }
    let all: Vec<HashMap<String, String>> = cluster.run("rooms", pipe).await.ok()?;
    // Counted again from the members read: a change between the two reads must
    // not show a count that disagrees with the list.
    let mut rooms: Vec<(String, RoomUsers)> = names
        .into_iter()
        .zip(all)
        .map(|(name, fields)| (name, fold_entries(fields)))
        .filter(|(_, entries)| !entries.is_empty())
        .collect();
    rooms.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    Some(
        rooms
            .into_iter()
            .map(|(name, entries)| RoomInfo {
                room: Arc::from(name),
                count: entries.len(),
                members: sorted_members(entries, max_members),
            })
            .collect(),
    )
}

/// Room names and counts across the cluster: one command.
pub(crate) async fn room_counts(cluster: &Cluster, max_rooms: usize) -> Option<Vec<RoomCount>> {
    if !cluster.is_up() {
        return None;
    }
    Some(
        top_rooms(cluster, max_rooms)
            .await?
            .into_iter()
            .map(|(room, count)| RoomCount {
                room: Arc::from(room),
                count,
            })
            .collect(),
    )
}

/// Records a room's count of distinct users in the sorted set of counts (or
/// removes it when nobody is left), after changes that did not go through the
/// join and leave scripts (a resync, a sweep). KEYS: room, room counts. ARGV: room.
const RECOUNT_SCRIPT: &str = r#"
local users, count = {}, 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local bar = string.find(f, '|', 1, true)
  if bar then
    local uid = string.sub(f, bar + 1)
    if not users[uid] then users[uid] = true; count = count + 1 end
  end
end
if count == 0 then redis.call('ZREM', KEYS[2], ARGV[1])
else redis.call('ZADD', KEYS[2], -count, ARGV[1]) end
return count
"#;

/// Adds [`RECOUNT_SCRIPT`] for `room` to a pipeline.
fn recount(pipe: &mut redis::Pipeline, cluster: &Cluster, room: &str) {
    pipe.cmd("EVAL")
        .arg(RECOUNT_SCRIPT)
        .arg(2)
        .arg(cluster.key(&["room", room]))
        .arg(cluster.key(&["room_counts"]))
        .arg(room)
        .ignore();
}

/// Claims this node's open-mode names again after an outage or after other nodes
/// took it for dead: frees the names it holds but no longer uses, takes back the
/// ones still free, and returns the name keys someone else holds now.
const NAMES_SCRIPT: &str = r#"
local ours = ARGV[1]
local wanted = {}
for i = 2, #ARGV, 2 do wanted[ARGV[i]] = ARGV[i + 1] end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local holder = redis.call('HGET', KEYS[1], name)
  if not wanted[name] and holder and string.sub(holder, 1, string.len(ours)) == ours then
    redis.call('HDEL', KEYS[1], name)
  end
end
redis.call('DEL', KEYS[2])
local taken = {}
for name, value in pairs(wanted) do
  local holder = redis.call('HGET', KEYS[1], name)
  if not holder or holder == value then
    redis.call('HSET', KEYS[1], name, value)
    redis.call('SADD', KEYS[2], name)
  else
    table.insert(taken, name)
  end
end
return taken
"#;

/// Rewrites this node's whole share of presence from its local state (after an
/// outage, after other nodes swept it, or empty at stop). Returns the users whose
/// open-mode names another node holds now.
pub(crate) async fn resync(
    cluster: &Cluster,
    local: &LocalPresence,
    open_mode: bool,
) -> Result<Vec<User>, String> {
    let node = cluster.node_id.as_str();
    let rooms_key = cluster.key(&["node", node, "rooms"]);
    let users_key = cluster.key(&["node", node, "users"]);
    let Snapshot { users, rooms } = local.snapshot();

    let mut taken_by_others = Vec::new();
    if open_mode {
        let mut names = redis::cmd("EVAL");
        names
            .arg(NAMES_SCRIPT)
            .arg(2)
            .arg(cluster.key(&["names"]))
            .arg(cluster.key(&["node", node, "names"]))
            .arg(format!("{node}|"));
        for user in &users {
            names.arg(name_key(&user.name)).arg(field(node, &user.id));
        }
        let taken: Vec<String> = cluster.run("reclaim names", names).await?;
        taken_by_others = users
            .iter()
            .filter(|user| taken.contains(&name_key(&user.name)))
            .cloned()
            .collect();
    }

    let old_rooms: Vec<String> = cluster
        .run("resync", redis::cmd("SMEMBERS").arg(&rooms_key).clone())
        .await?;
    let old_users: Vec<String> = cluster
        .run("resync", redis::cmd("SMEMBERS").arg(&users_key).clone())
        .await?;
    let mut pipe = redis::pipe();
    pipe.atomic();
    // Our fields in every room we were in, whatever they were.
    for room in &old_rooms {
        pipe.cmd("EVAL")
            .arg(
                "for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do \
                   if string.sub(f, 1, string.len(ARGV[1])) == ARGV[1] then redis.call('HDEL', KEYS[1], f) end \
                 end \
                 return 1",
            )
            .arg(1)
            .arg(cluster.key(&["room", room]))
            .arg(format!("{node}|"))
            .ignore();
    }
    for user in &old_users {
        pipe.cmd("HDEL")
            .arg(cluster.key(&["user", user]))
            .arg(node)
            .ignore();
    }
    pipe.cmd("DEL").arg(&rooms_key).arg(&users_key).ignore();
    for user in users.iter().filter(|u| !taken_by_others.contains(u)) {
        pipe.cmd("HSET")
            .arg(cluster.key(&["user", &user.id]))
            .arg(node)
            .arg(&*user.name)
            .ignore()
            .cmd("SADD")
            .arg(&users_key)
            .arg(&*user.id)
            .ignore();
    }
    for (room, members) in &rooms {
        let members: Vec<_> = members
            .iter()
            .filter(|(user, _)| !taken_by_others.contains(user))
            .collect();
        if members.is_empty() {
            continue;
        }
        pipe.cmd("SADD").arg(&rooms_key).arg(&**room).ignore();
        for (user, joined_ms) in members {
            let entry = serde_json::to_string(&Entry {
                name: user.name.to_string(),
                joined_ms: *joined_ms,
            })
            .unwrap_or_default();
            pipe.cmd("HSET")
                .arg(cluster.key(&["room", room]))
                .arg(field(node, &user.id))
                .arg(entry)
                .ignore();
        }
    }
    // Every room whose members changed: those we were in, those we are in.
    let changed: HashSet<&str> = old_rooms
        .iter()
        .map(String::as_str)
        .chain(rooms.iter().map(|(room, _)| &**room))
        .collect();
    for room in changed {
        recount(&mut pipe, cluster, room);
    }
    cluster.run::<()>("resync", pipe).await?;
    Ok(taken_by_others)
}

/// A user who left a room because their node died.
pub(crate) struct Departure {
    pub room: Arc<str>,
    pub user: User,
    pub count: usize,
}

/// Removes a dead node's presence; returns who left which room (cluster-wide), so
/// that the sweeping node can tell the rooms. Only one node sweeps a dead node.
pub(crate) async fn sweep(cluster: &Cluster, dead: &str) -> Result<Vec<Departure>, String> {
    let lock: Option<String> = cluster
        .run(
            "sweep lock",
            redis::cmd("SET")
                .arg(cluster.key(&["sweep", dead]))
                .arg(&cluster.node_id)
                .arg("NX")
                .arg("PX")
                .arg(cluster.config.node_timeout_ms * 2)
                .clone(),
        )
        .await?;
    if lock.is_none() {
        return Ok(Vec::new());
    }
    let rooms_key = cluster.key(&["node", dead, "rooms"]);
    let users_key = cluster.key(&["node", dead, "users"]);
    let names_key = cluster.key(&["node", dead, "names"]);
    let rooms: Vec<String> = cluster
        .run("sweep", redis::cmd("SMEMBERS").arg(&rooms_key).clone())
        .await?;
    let mut departures = Vec::new();
    for room in rooms {
        let Some(before) = room_entries(cluster, &room).await else {
            return Err("sweep: Redis failed".into());
        };
        let prefix = format!("{dead}|");
        let fields: Vec<String> = cluster
            .run(
                "sweep",
                redis::cmd("HKEYS")
                    .arg(cluster.key(&["room", &room]))
                    .clone(),
            )
            .await?;
        let theirs: Vec<&String> = fields.iter().filter(|f| f.starts_with(&prefix)).collect();
        // The fields and the count go together, so no failure in between leaves
        // a count that disagrees with the room.
        let mut pipe = redis::pipe();
        pipe.atomic();
        if !theirs.is_empty() {
            pipe.cmd("HDEL").arg(cluster.key(&["room", &room]));
            for field in &theirs {
                pipe.arg(*field);
            }
            pipe.ignore();
        }
        recount(&mut pipe, cluster, &room);
        cluster.run::<()>("sweep", pipe).await?;
        let remaining = before
            .values()
            .filter(|presence| presence.nodes.iter().any(|n| n != dead))
            .count();
        for (user_id, presence) in &before {
            if presence.nodes.iter().all(|n| n == dead) {
                departures.push(Departure {
                    room: Arc::from(room.as_str()),
                    user: User {
                        id: Arc::from(user_id.as_str()),
                        name: Arc::from(presence.name.as_str()),
                    },
                    count: remaining,
                });
            }
        }
    }
    let users: Vec<String> = cluster
        .run("sweep", redis::cmd("SMEMBERS").arg(&users_key).clone())
        .await?;
    let names: Vec<String> = cluster
        .run("sweep", redis::cmd("SMEMBERS").arg(&names_key).clone())
        .await?;
    let mut pipe = redis::pipe();
    for user in &users {
        pipe.cmd("HDEL")
            .arg(cluster.key(&["user", user]))
            .arg(dead)
            .ignore();
    }
    let ours_prefix = format!("{dead}|");
    for name in &names {
        pipe.cmd("EVAL")
            .arg(
                "local v = redis.call('HGET', KEYS[1], ARGV[1]) \
                 if v and string.sub(v, 1, string.len(ARGV[2])) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end return 1",
            )
            .arg(1)
            .arg(cluster.key(&["names"]))
            .arg(name)
            .arg(&ours_prefix)
            .ignore();
    }
    pipe.cmd("DEL")
        .arg(&rooms_key)
        .arg(&users_key)
        .arg(&names_key)
        .ignore();
    pipe.cmd("ZREM")
        .arg(cluster.key(&["nodes"]))
        .arg(dead)
        .ignore();
    cluster.run::<()>("sweep", pipe).await?;
    let unique: HashSet<&str> = departures.iter().map(|d| &*d.user.id).collect();
    tracing::warn!(
        node = dead,
        users = unique.len(),
        "removed the presence of a node that stopped answering"
    );
    Ok(departures)
}
