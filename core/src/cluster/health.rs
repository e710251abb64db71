//! The cluster's background work on each node: watching Redis, the heartbeat and
//! the finding of dead nodes, and listening for membership changes elsewhere.
//! What these notice goes out as [`ClusterSignal`]s; acting on them is the
//! chat's job.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use socketioxide_redis::drivers::Driver;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use socketioxide_redis::drivers::{ChanItem, MessageStream};

use super::inbox::Drops;
use super::{Cluster, ResilientDriver};

/// Signals waiting for the chat; the tasks wait when it falls behind (signals
/// are rare: one per outage, dead node or burst of membership changes).
const SIGNAL_QUEUE: usize = 64;

/// Something the node must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClusterSignal {
    /// The node joined the cluster: messages journaled before a crash during an
    /// outage are due in Redis.
    Started,
    /// Redis answers again after an outage (or this node just started): rewrite
    /// this node's presence, write the outage journal to Redis.
    Recovered,
    /// Another node took this one for dead and removed it: rewrite its presence.
    Readmitted,
    /// This node has not beaten for `node_timeout_ms`: remove its presence.
    NodeDead(String),
    /// Membership changed on another node, or a message from another node was
    /// dropped (it may have been that news): room lists are due here.
    RoomsChanged,
}

/// Starts the node's cluster tasks on the current runtime; they end when
/// `stopping` is cancelled. Returns the signals they send.
pub(crate) fn spawn_tasks(
    cluster: Arc<Cluster>,
    driver: ResilientDriver,
    stopping: CancellationToken,
) -> mpsc::Receiver<ClusterSignal> {
    let (signals, received) = mpsc::channel(SIGNAL_QUEUE);
    let until_stop = |stopping: CancellationToken, task| async move {
        tokio::select! {
            () = task => {}
            () = stopping.cancelled() => {}
        }
    };
    tokio::spawn(until_stop(
        stopping.clone(),
        watch_health(cluster.clone(), driver.clone(), signals.clone()),
    ));
    tokio::spawn(until_stop(
        stopping.clone(),
        heartbeat(cluster.clone(), signals.clone()),
    ));
    tokio::spawn(until_stop(
        stopping,
        listen_for_changes(cluster, driver, signals),
    ));
    received
}

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Pings Redis (commands and subscriptions); signals each recovery.
fn watch_health(
    cluster: Arc<Cluster>,
    driver: ResilientDriver,
    signals: mpsc::Sender<ClusterSignal>,
) -> Task {
    Box::pin(async move {
        let interval = Duration::from_millis((cluster.config.heartbeat_ms / 2).max(100));
        let settle_after = Duration::from_millis(cluster.config.node_timeout_ms);
        let mut up_since = Some(Instant::now());
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if signals.send(ClusterSignal::Started).await.is_err() {
            return;
        }
        loop {
            tick.tick().await;
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
                if signals.send(ClusterSignal::Recovered).await.is_err() {
                    return;
                }
            }
            let settled = up_since.is_some_and(|since| since.elapsed() >= settle_after);
            cluster.settled.store(settled, Ordering::Release);
        }
    })
}

/// Marks this node alive, counts live nodes, and reports dead ones.
fn heartbeat(cluster: Arc<Cluster>, signals: mpsc::Sender<ClusterSignal>) -> Task {
    Box::pin(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(cluster.config.heartbeat_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let nodes = cluster.key(&["nodes"]);
        let mut registered = false;
        loop {
            tick.tick().await;
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
                if signals.send(ClusterSignal::Readmitted).await.is_err() {
                    return;
                }
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
            for node in dead.into_iter().filter(|n| *n != cluster.node_id) {
                if signals.send(ClusterSignal::NodeDead(node)).await.is_err() {
                    return;
                }
            }
        }
    })
}

/// Another node's membership changed, or a pub/sub message was dropped (a change
/// signal, a notice, anything): room lists are due here too. They are read from
/// Redis, so one push brings this node's clients up to date.
fn listen_for_changes(
    cluster: Arc<Cluster>,
    driver: ResilientDriver,
    signals: mpsc::Sender<ClusterSignal>,
) -> Task {
    Box::pin(async move {
        let changes = match driver.subscribe(cluster.changes_channel(), 256).await {
            Ok(changes) => changes,
            Err(e) => {
                tracing::error!("cannot subscribe to cluster changes: {e}");
                return;
            }
        };
        relay_changes(changes, driver.drops(), &cluster.node_id, &signals).await;
    })
}

/// Turns change signals of other nodes, and drops of any pub/sub message, into
/// [`ClusterSignal::RoomsChanged`]; ends when the subscription or the chat does.
async fn relay_changes(
    mut changes: MessageStream<ChanItem>,
    drops: &Drops,
    node_id: &str,
    signals: &mpsc::Sender<ClusterSignal>,
) {
    loop {
        let due = tokio::select! {
            change = changes.next() => match change {
                Some((_, from)) => from != node_id.as_bytes(),
                None => return,
            },
            () = drops.lost() => true,
        };
        if due && signals.send(ClusterSignal::RoomsChanged).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cluster::inbox::Inbox;

    /// A drop on a subscription makes room lists due, even when every message
    /// that got through was this node's own (which alone would not).
    #[tokio::test]
    async fn a_dropped_message_makes_room_lists_due() {
        let drops = Arc::new(Drops::default());
        let (inbox, stream) = Inbox::new(1, usize::MAX, drops.clone());
        let (signals, mut received) = mpsc::channel(8);
        let relay = {
            let drops = drops.clone();
            tokio::spawn(async move { relay_changes(stream, &drops, "me", &signals).await })
        };
        inbox.offer(("changes".into(), b"me".to_vec()));
        let wait = Duration::from_secs(10);
        // This node's own signal is no news.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), received.recv())
                .await
                .is_err()
        );
        for _ in 0..10 {
            inbox.offer(("changes".into(), b"me".to_vec()));
        }
        assert!(drops.count() > 0, "a burst over the buffer drops");
        let signal = tokio::time::timeout(wait, received.recv()).await.unwrap();
        assert_eq!(signal, Some(ClusterSignal::RoomsChanged));
        // Another node's signal is news too.
        while tokio::time::timeout(Duration::from_millis(50), received.recv())
            .await
            .is_ok()
        {}
        inbox.offer(("changes".into(), b"other".to_vec()));
        let signal = tokio::time::timeout(wait, received.recv()).await.unwrap();
        assert_eq!(signal, Some(ClusterSignal::RoomsChanged));
        drop(inbox);
        tokio::time::timeout(wait, relay).await.unwrap().unwrap();
    }
}
