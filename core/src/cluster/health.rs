//! The cluster's background work on each node: Redis health and recovery, the
//! heartbeat and the sweeping of dead nodes, and room-list change signals.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use socketioxide::adapter::Adapter;
use socketioxide::SocketIo;
use socketioxide_redis::drivers::Driver;

use socketioxide::socket::Sid;

use super::history::{ClusterHistory, Delivery};
use super::presence::{sweep, Departure};
use super::{Cluster, ResilientDriver};
use crate::chat::{broadcast, count_dropped, room_key, system_notice, user_key, Shared};
use crate::protocol::{MessageKind, PresenceNotice, User};

/// Deliveries buffered between Redis and this node's members.
const DELIVERY_BUFFER: usize = 65_536;

impl Cluster {
    fn changes_channel(&self) -> String {
        self.key(&["changes"])
    }

    /// Tells the other nodes that membership changed, so they push room lists.
    pub(crate) async fn publish_change(&self) {
        if !self.is_up() {
            return;
        }
        let _: Result<i64, _> = self
            .run(
                "publish change",
                redis::cmd("PUBLISH")
                    .arg(self.changes_channel())
                    .arg(&self.node_id)
                    .clone(),
            )
            .await;
    }

    /// Removes this node from the cluster at stop (its users are gone already).
    pub(crate) async fn leave(&self, shared: &Shared) {
        if !self.is_up() {
            return;
        }
        if let Err(e) = shared.presence.resync().await {
            tracing::warn!("could not clear this node's presence: {e}");
        }
        let _: Result<i64, _> = self
            .run(
                "leave cluster",
                redis::cmd("ZREM")
                    .arg(self.key(&["nodes"]))
                    .arg(&self.node_id)
                    .clone(),
            )
            .await;
        self.publish_change().await;
    }
}

/// Starts the node's cluster tasks on the current runtime.
pub(crate) fn spawn_tasks<A: Adapter>(
    io: SocketIo<A>,
    shared: Arc<Shared>,
    driver: ResilientDriver,
) {
    let Some(cluster) = shared.cluster().cloned() else {
        return;
    };
    tokio::spawn(watch_health(
        cluster.clone(),
        shared.clone(),
        io.clone(),
        driver.clone(),
    ));
    tokio::spawn(heartbeat(cluster.clone(), shared.clone(), io.clone()));
    tokio::spawn(listen_for_changes(
        cluster.clone(),
        shared.clone(),
        driver.clone(),
    ));
    tokio::spawn(deliver_messages(cluster, shared.clone(), driver, io));
    // Messages journaled before a crash during an outage.
    tokio::spawn(async move { shared.history.replay_journal().await });
}

/// Pings Redis; on recovery rewrites this node's presence and replays its journal.
async fn watch_health<A: Adapter>(
    cluster: Arc<Cluster>,
    shared: Arc<Shared>,
    io: SocketIo<A>,
    driver: ResilientDriver,
) {
    let interval = Duration::from_millis((cluster.config.heartbeat_ms / 2).max(100));
    let settle_after = Duration::from_millis(cluster.config.node_timeout_ms);
    let mut up_since = Some(Instant::now());
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.stopping() {
            return;
        }
        let pong: Result<String, _> = cluster.run("ping", redis::cmd("PING")).await;
        let timeout = Duration::from_millis(cluster.config.redis_timeout_ms);
        let subscriptions = match tokio::time::timeout(timeout, driver.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer".to_string()),
        };
        if let Err(e) = &subscriptions {
            cluster.mark_down(&format!("ping (subscriptions): {e}"));
        }
        if pong.is_err() || subscriptions.is_err() {
            up_since = None;
            continue;
        }
        if !cluster.up.swap(true, Ordering::AcqRel) || up_since.is_none() {
            up_since = Some(Instant::now());
            tracing::warn!("Redis is back: resuming cross-node delivery");
            match shared.presence.resync().await {
                Ok(renamed) => kick_name_conflicts(&io, renamed).await,
                Err(e) => tracing::warn!("could not restore this node's presence yet: {e}"),
            }
            shared.history.replay_journal().await;
            shared.presence_changed().await;
        }
        let settled = up_since.is_some_and(|since| since.elapsed() >= settle_after);
        cluster.settled.store(settled, Ordering::Release);
    }
}

/// Marks this node alive, counts live nodes, and sweeps dead ones.
async fn heartbeat<A: Adapter>(cluster: Arc<Cluster>, shared: Arc<Shared>, io: SocketIo<A>) {
    let mut tick = tokio::time::interval(Duration::from_millis(cluster.config.heartbeat_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let nodes = cluster.key(&["nodes"]);
    let mut registered = false;
    loop {
        tick.tick().await;
        if shared.stopping() {
            return;
        }
        if !cluster.is_up() {
            continue;
        }
        let now = crate::protocol::now_ms();
        let Ok(added) = cluster
            .run::<i64>(
                "heartbeat",
                redis::cmd("ZADD")
                    .arg(&nodes)
                    .arg(now)
                    .arg(&cluster.node_id)
                    .clone(),
            )
            .await
        else {
            continue;
        };
        if added == 1 && registered {
            // Another node took us for dead (a long outage) and removed us.
            tracing::warn!("this node was removed from the cluster; restoring its presence");
            if let Ok(renamed) = shared.presence.resync().await {
                kick_name_conflicts(&io, renamed).await;
            }
            shared.presence_changed().await;
        }
        registered = true;
        let deadline = now - cluster.config.node_timeout_ms as i64;
        let alive: Result<i64, _> = cluster
            .run(
                "count nodes",
                redis::cmd("ZCOUNT")
                    .arg(&nodes)
                    .arg(format!("({deadline}"))
                    .arg("+inf")
                    .clone(),
            )
            .await;
        if let Ok(alive) = alive {
            cluster
                .nodes_alive
                .store(alive.max(0) as u64, Ordering::Relaxed);
        }
        if !cluster.settled.load(Ordering::Acquire) {
            continue;
        }
        let dead: Vec<String> = match cluster
            .run(
                "find dead nodes",
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&nodes)
                    .arg("-inf")
                    .arg(deadline)
                    .clone(),
            )
            .await
        {
            Ok(dead) => dead,
            Err(_) => continue,
        };
        for node in dead.iter().filter(|n| **n != cluster.node_id) {
            match sweep(&cluster, node).await {
                Ok(departures) => {
                    announce(&shared, &io, departures).await;
                    shared.presence_changed().await;
                }
                Err(e) => tracing::warn!(node, "could not sweep a dead node: {e}"),
            }
        }
    }
}

/// Leave notices for users whose node died, to every node's members of the room.
async fn announce<A: Adapter>(shared: &Shared, io: &SocketIo<A>, departures: Vec<Departure>) {
    for Departure { room, user, count } in departures {
        let key = room_key(&room);
        let notice = system_notice(&room, format!("{} left", user.name), MessageKind::Leave);
        let _ = broadcast(shared, || io.to(key.clone()), "message", &notice).await;
        let presence = PresenceNotice {
            room: &room,
            action: "leave",
            user: &user,
            count,
        };
        let _ = broadcast(shared, || io.to(key.clone()), "presence", &presence).await;
    }
}

/// Users whose open-mode name another node took while this one was cut off lose
/// their connections here (`kicked {reason: "name_taken"}`): two online users
/// must never share a name. They can reconnect under a free name.
async fn kick_name_conflicts<A: Adapter>(io: &SocketIo<A>, users: Vec<User>) {
    for user in users {
        tracing::warn!(name = %user.name, "another node took this user's name meanwhile; disconnecting them");
        let key = user_key(&user.id);
        let farewell = serde_json::json!({ "reason": "name_taken" });
        let _ = io
            .local()
            .within(key.clone())
            .emit("kicked", &farewell)
            .await;
        let _ = io.local().within(key).disconnect().await;
    }
}

/// Room messages stored by any node, delivered to this node's members in the
/// order Redis published them (the order of their ids).
async fn deliver_messages<A: Adapter>(
    cluster: Arc<Cluster>,
    shared: Arc<Shared>,
    driver: ResilientDriver,
    io: SocketIo<A>,
) {
    let Some(history) = shared.history.clustered() else {
        return;
    };
    let channel = ClusterHistory::channel(&cluster);
    let mut deliveries = match driver.subscribe(channel, DELIVERY_BUFFER).await {
        Ok(deliveries) => deliveries,
        Err(e) => {
            tracing::error!("cannot subscribe to cluster messages: {e}");
            return;
        }
    };
    while let Some((_, payload)) = deliveries.next().await {
        let Ok(delivery) = serde_json::from_slice::<Delivery>(&payload) else {
            tracing::warn!("ignoring a malformed cluster message");
            continue;
        };
        let ours = delivery.node == cluster.node_id;
        if ours && history.delivered_here(&delivery.key) {
            continue;
        }
        let key = room_key(&delivery.message.room);
        // On the sender's node, `to` from its socket leaves the sender out.
        let sender = ours
            .then(|| delivery.sid.parse::<Sid>().ok())
            .flatten()
            .and_then(|sid| io.get_socket(sid));
        let target = match &sender {
            Some(socket) => socket.local().to(key),
            None => io.local().to(key),
        };
        let result = target.emit("message", &delivery.message).await;
        count_dropped(&shared.counters, &result);
    }
}

/// Another node's membership changed: push room lists here too.
async fn listen_for_changes(cluster: Arc<Cluster>, shared: Arc<Shared>, driver: ResilientDriver) {
    let mut changes = match driver.subscribe(cluster.changes_channel(), 256).await {
        Ok(changes) => changes,
        Err(e) => {
            tracing::error!("cannot subscribe to cluster changes: {e}");
            return;
        }
    };
    while let Some((_, from)) = changes.next().await {
        if from != cluster.node_id.as_bytes() {
            shared.room_list_changed.notify_one();
        }
    }
}
