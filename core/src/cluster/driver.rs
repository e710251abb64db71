//! The pub/sub driver under socketioxide's Redis adapter: a connection manager
//! that reconnects and resubscribes by itself after Redis went away.
//!
//! socketioxide-redis ships a driver over one multiplexed connection, which
//! stays broken once Redis restarts; cluster mode must resume on its own.
//! Each subscription reads from an [`Inbox`] bounded in messages and bytes.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushInfo, PushKind, Value};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};

use super::inbox::{Drops, Inbox, SUBSCRIPTION_MAX_BYTES};

type Handlers = Arc<RwLock<HashMap<String, Inbox>>>;

/// Why a Redis operation failed.
#[derive(Debug)]
pub struct DriverError(pub(crate) redis::RedisError);

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DriverError {}

impl From<redis::RedisError> for DriverError {
    fn from(e: redis::RedisError) -> Self {
        Self(e)
    }
}

/// Reconnecting pub/sub over one RESP3 connection manager.
#[derive(Clone)]
pub struct ResilientDriver {
    connection: ConnectionManager,
    handlers: Handlers,
    drops: Arc<Drops>,
}

impl ResilientDriver {
    /// Connects; `config` gets the push sender and automatic resubscription.
    pub(crate) async fn connect(
        client: redis::Client,
        config: ConnectionManagerConfig,
    ) -> redis::RedisResult<Self> {
        let handlers: Handlers = Arc::default();
        let routing = handlers.clone();
        let drops = Arc::new(Drops::default());
        let config = config
            .set_push_sender(move |push: PushInfo| {
                route(push, &routing);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription();
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            connection,
            handlers,
            drops,
        })
    }

    /// The messages its subscriptions dropped (their buffers were full).
    pub(crate) fn drops(&self) -> &Arc<Drops> {
        &self.drops
    }
}

impl ResilientDriver {
    /// Checks the subscription connection; a failure makes the manager reconnect
    /// (and resubscribe), which nothing else would trigger while only pushes flow.
    pub(crate) async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.connection.clone())
            .await
            .map(|_| ())
    }
}

/// Hands a pub/sub message to the stream subscribed to its channel.
fn route(push: PushInfo, handlers: &Handlers) {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
        return;
    }
    let mut data = push.data.into_iter();
    let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(channel), Ok(payload)) = (
        redis::from_redis_value::<String>(channel),
        redis::from_redis_value::<Vec<u8>>(payload),
    ) else {
        return;
    };
    if let Some(inbox) = handlers.read().get(&channel) {
        inbox.offer((channel, payload));
    }
}

impl Driver for ResilientDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), DriverError> {
        self.connection
            .clone()
            .publish::<_, _, Value>(chan, val)
            .await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, DriverError> {
        let (inbox, stream) = Inbox::new(size, SUBSCRIPTION_MAX_BYTES, self.drops.clone());
        self.handlers.write().insert(chan.clone(), inbox);
        self.connection.clone().subscribe(chan).await?;
        Ok(stream)
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), DriverError> {
        self.handlers.write().remove(&chan);
        self.connection.clone().unsubscribe(chan).await?;
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, DriverError> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(count)
    }
}
