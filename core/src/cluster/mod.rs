//! Cluster mode's own part: what is truly cluster-wide. The Redis connection and
//! its health, the node's heartbeat, the finding of dead nodes, and the
//! membership-change signal between nodes.
//!
//! The backends that keep their data in Redis live beside their local
//! counterparts (`history/redis.rs`, `presence/redis.rs`) and use this module's
//! connection; this module knows nothing of them. What it notices (Redis is back,
//! this node was taken for dead, another node died, membership changed elsewhere)
//! it reports as [`ClusterSignal`]s, which the chat acts on (`chat/cluster_sync.rs`).
//!
//! - Socket.IO traffic between nodes goes through socketioxide's Redis adapter
//!   (over [`ResilientDriver`], which reconnects by itself).
//! - A heartbeat marks each node alive; nodes silent for `node_timeout_ms` are
//!   reported dead once Redis has answered long enough for them to have beaten.
//! - When Redis is unreachable each node serves its own clients alone.

mod driver;
mod health;
mod inbox;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;

pub use driver::ResilientDriver;
pub(crate) use health::{spawn_tasks, ClusterSignal};

use crate::config::ClusterConfig;

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// Redis could not be reached or refused the connection.
    #[error("cannot connect to Redis at {url}: {reason}")]
    Connect {
        /// The configured URL, password removed.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The adapter could not subscribe to its channels.
    #[error("cannot subscribe to the cluster channels: {0}")]
    Subscribe(String),
}

/// The cluster part of [`Stats`](crate::Stats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStats {
    /// This node's id (also in the Redis keys).
    pub node_id: String,
    /// Whether Redis answers now.
    pub redis_connected: bool,
    /// Redis outages seen since start.
    pub redis_outages: u64,
    /// Messages accepted during an outage and not yet written to Redis.
    pub journal_pending: u64,
    /// Nodes with a recent heartbeat (as of the last heartbeat; 0 when unknown).
    pub nodes_alive: u64,
    /// Messages from other nodes (pub/sub) dropped since start because this
    /// node read them too slowly: their buffer was full in messages or bytes.
    /// Room lists are pushed again after a drop; a dropped room message is in
    /// history, other dropped traffic is lost (docs/CLUSTER.md).
    pub pubsub_dropped: u64,
}

/// This node's connection to the cluster.
pub(crate) struct Cluster {
    pub node_id: String,
    pub config: ClusterConfig,
    connection: ConnectionManager,
    up: AtomicBool,
    /// Whether Redis has answered continuously for at least `node_timeout_ms`;
    /// only then may this node declare others dead (they had time to heartbeat).
    settled: AtomicBool,
    outages: AtomicU64,
    /// Messages journaled during an outage and not yet in Redis (kept by the
    /// Redis history, reported here with the other cluster figures).
    pub(crate) journal_pending: AtomicU64,
    pub(crate) nodes_alive: AtomicU64,
    /// What the pub/sub subscriptions dropped.
    pubsub_drops: Arc<inbox::Drops>,
}

impl Cluster {
    /// Connects to Redis and returns the node and the adapter's driver.
    pub(crate) async fn connect(
        config: &ClusterConfig,
    ) -> Result<(Arc<Cluster>, ResilientDriver), ClusterError> {
        let url = config.redis_url.clone().unwrap_or_default();
        let connect_error = |reason: String| ClusterError::Connect {
            url: redact(&url),
            reason,
        };
        // Pub/sub pushes need RESP3.
        let with_resp3 = if url.contains("protocol=") {
            url.clone()
        } else if url.contains('?') {
            format!("{url}&protocol=resp3")
        } else {
            format!("{url}?protocol=resp3")
        };
        let client = redis::Client::open(with_resp3).map_err(|e| connect_error(e.to_string()))?;
        let timeout = Duration::from_millis(config.redis_timeout_ms);
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        // Commands and subscriptions use separate connections: a message this node
        // publishes on a channel it is subscribed to must never be read as the
        // answer to a command.
        let (driver, connection) = tokio::time::timeout(timeout * 3, async {
            let driver = ResilientDriver::connect(client.clone(), manager_config.clone()).await?;
            let connection = ConnectionManager::new_with_config(client, manager_config).await?;
            Ok::<_, redis::RedisError>((driver, connection))
        })
        .await
        .map_err(|_| connect_error("timed out".into()))?
        .map_err(|e| connect_error(e.to_string()))?;
        let cluster = Arc::new(Cluster {
            node_id: node_id(),
            config: config.clone(),
            connection,
            up: AtomicBool::new(true),
            settled: AtomicBool::new(false),
            outages: AtomicU64::new(0),
            journal_pending: AtomicU64::new(0),
            nodes_alive: AtomicU64::new(0),
            pubsub_drops: driver.drops().clone(),
        });
        Ok((cluster, driver))
    }

    /// A Redis key under the configured prefix.
    pub(crate) fn key(&self, parts: &[&str]) -> String {
        let mut key = self.config.key_prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Records that Redis failed; returns true when this starts an outage.
    pub(crate) fn mark_down(&self, why: &str) -> bool {
        let started = self.up.swap(false, Ordering::AcqRel);
        self.settled.store(false, Ordering::Release);
        if started {
            self.outages.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                "Redis unreachable ({why}): cross-node delivery paused; serving local clients, \
                 journaling their messages"
            );
        }
        started
    }

    /// Runs one Redis command or pipeline with the configured timeout; a failure
    /// marks Redis down.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        what: &str,
        command: impl RedisRequest,
    ) -> Result<T, String> {
        let timeout = Duration::from_millis(self.config.redis_timeout_ms);
        let mut connection = self.connection.clone();
        let result = tokio::time::timeout(timeout, command.send(&mut connection)).await;
        let error = match result {
            Ok(Ok(value)) => {
                return redis::from_redis_value(value).map_err(|e| format!("{what}: {e}"))
            }
            Ok(Err(e)) => format!("{what}: {e}"),
            Err(_) => format!("{what}: no answer within {timeout:?}"),
        };
        self.mark_down(&error);
        Err(error)
    }

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

    /// Takes this node off the list of live nodes at stop (its presence is
    /// cleared first, by the caller).
    pub(crate) async fn leave(&self) {
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

    pub(crate) fn stats(&self) -> ClusterStats {
        ClusterStats {
            node_id: self.node_id.clone(),
            redis_connected: self.is_up(),
            redis_outages: self.outages.load(Ordering::Relaxed),
            journal_pending: self.journal_pending.load(Ordering::Relaxed),
            nodes_alive: self.nodes_alive.load(Ordering::Relaxed),
            pubsub_dropped: self.pubsub_drops.count(),
        }
    }
}

/// A single command or a pipeline.
pub(crate) trait RedisRequest: Send {
    fn send(
        self,
        connection: &mut ConnectionManager,
    ) -> impl std::future::Future<Output = redis::RedisResult<redis::Value>> + Send;
}

impl RedisRequest for redis::Cmd {
    async fn send(self, connection: &mut ConnectionManager) -> redis::RedisResult<redis::Value> {
        self.query_async(connection).await
    }
}

impl RedisRequest for redis::Pipeline {
    async fn send(self, connection: &mut ConnectionManager) -> redis::RedisResult<redis::Value> {
        self.query_async(connection).await
    }
}

/// A node id unique across restarts and machines (time, process, randomness of
/// the hasher's keys).
pub(crate) fn node_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://u:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn node_ids_differ() {
        assert_ne!(node_id(), node_id());
        assert_eq!(node_id().len(), 16);
    }
}
