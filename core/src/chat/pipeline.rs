//! The ordered path of room messages: store, then deliver, then acknowledge.
//!
//! One task takes accepted messages in arrival order, stores each batch in one go
//! (group commit), and only then delivers them to the rooms and acknowledges them
//! to their senders, in the order of their ids. So every member sees a room in the
//! same order as its history, and an acknowledged message is always stored.
//! With a history that announces its appends (Redis), members get each message
//! through the announcement instead, on every node alike (`fanout.rs`); a message
//! is settled for its sender (`unsettled.rs`) once this node has delivered it
//! (`announced.rs`).
//!
//! Queueing never waits: what is queued is bounded in bytes
//! (`history.queue_max_bytes`), and a message over the bound is refused with
//! `storage_busy`, so a stuck store holds no connection's turn. Each round takes
//! everything queued (bounded by those bytes), so a message waits for at most the
//! store call under way and its own: with the store failing, it is refused within
//! two of the store's timeouts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socketioxide::adapter::Adapter;
use socketioxide::SocketIo;
use tokio::sync::{mpsc, oneshot};

use super::announced::Announced;
use super::fanout::deliver_here;
use super::reply::Reply;
use super::unsettled::InPipeline;
use crate::events::{Event, EventKind};
use crate::history::NewMessage;
use crate::protocol::{ChatError, ErrorCode};
use crate::shared::Shared;
use crate::stats::Counters;

/// What a queued message costs besides its texts: the message, its reply and
/// the queue's bookkeeping, rounded up.
const MESSAGE_COST: usize = 256;
/// Items taken from the queue at once; a round goes on taking until it is empty.
const TAKE: usize = 1_024;

/// A message on its way through the pipeline, with what settles it when dropped.
struct Queued<A: Adapter> {
    message: NewMessage,
    reply: Reply<A>,
    /// The sender's count of messages to this room in the pipeline.
    unsettled: InPipeline,
    /// Its bytes of the queue's budget.
    bytes: Reserved,
}

// Nearly every item is a message: boxing it would allocate per message to make
// the rare flush smaller.
#[allow(clippy::large_enum_variant)]
enum Item<A: Adapter> {
    Message(Queued<A>),
    /// Answered once everything queued before it has been stored and delivered.
    Flush(oneshot::Sender<()>),
}

pub(crate) struct Pipeline<A: Adapter> {
    queue: mpsc::UnboundedSender<Item<A>>,
    budget: Arc<Budget>,
    counters: Arc<Counters>,
    announced: Arc<Announced>,
}

impl<A: Adapter> Pipeline<A> {
    pub(crate) fn start(shared: Arc<Shared>, io: SocketIo<A>) -> Self {
        let (queue, items) = mpsc::unbounded_channel();
        let counters = shared.counters.clone();
        let budget = Arc::new(Budget {
            max: shared.config.history.queue_max_bytes,
            used: AtomicUsize::new(0),
        });
        let announced = Arc::new(Announced::default());
        tokio::spawn(run(shared, io, items, announced.clone()));
        Self {
            queue,
            budget,
            counters,
            announced,
        }
    }

    /// What this node's announcement consumer reports its deliveries to.
    pub(crate) fn announced(&self) -> Arc<Announced> {
        self.announced.clone()
    }

    /// Queues an accepted message, or refuses it with `storage_busy` when the
    /// queue's bytes are spent. Never waits.
    pub(crate) fn submit(&self, message: NewMessage, reply: Reply<A>, unsettled: InPipeline) {
        let cost = MESSAGE_COST
            + message.text.len()
            + message.room.len()
            + message.user.id.len()
            + message.user.name.len()
            + message.key.len();
        let Some(bytes) = self.budget.reserve(cost) else {
            let error = ChatError::new(
                ErrorCode::StorageBusy,
                "too many messages are waiting to be stored; this one was not sent, try again later",
            );
            return reply.fail(&error, &self.counters);
        };
        let queued = Queued {
            message,
            reply,
            unsettled,
            bytes,
        };
        if let Err(mpsc::error::SendError(Item::Message(queued))) =
            self.queue.send(Item::Message(queued))
        {
            queued
                .reply
                .fail(&ChatError::shutting_down(), &self.counters);
        }
    }

    /// Waits until every message accepted so far is stored, delivered and acknowledged.
    pub(crate) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Item::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }
}

/// The queue's bytes: taken at `submit`, given back when the message settles.
struct Budget {
    max: usize,
    used: AtomicUsize,
}

struct Reserved {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Budget {
    fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Reserved> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.max)
            })
            .ok()?;
        Some(Reserved {
            budget: self.clone(),
            bytes,
        })
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

async fn run<A: Adapter>(
    shared: Arc<Shared>,
    io: SocketIo<A>,
    mut items: mpsc::UnboundedReceiver<Item<A>>,
    announced: Arc<Announced>,
) {
    // Decided once: where the history announces appends, members get messages
    // from the announcements, and delivering here as well would deliver twice.
    let deliver = match shared.history.announces_appends() {
        false => Delivery::Here(io),
        true => Delivery::Announced(announced),
    };
    let mut taken = Vec::with_capacity(TAKE);
    let mut batch = Vec::new();
    while items.recv_many(&mut taken, TAKE).await > 0 {
        // Everything queued goes into this round (group commit); the byte budget
        // bounds it.
        loop {
            for item in taken.drain(..) {
                match item {
                    Item::Message(queued) => batch.push(queued),
                    Item::Flush(done) => {
                        store_and_deliver(&shared, &deliver, &mut batch).await;
                        let _ = done.send(());
                    }
                }
            }
            match items.try_recv() {
                Ok(item) => taken.push(item),
                Err(_) => break,
            }
        }
        store_and_deliver(&shared, &deliver, &mut batch).await;
    }
}

/// Who delivers a stored message to this node's members.
enum Delivery<A: Adapter> {
    /// The pipeline, right after storing it.
    Here(SocketIo<A>),
    /// The consumer of the history's announcements, which reports to this.
    Announced(Arc<Announced>),
}

async fn store_and_deliver<A: Adapter>(
    shared: &Shared,
    deliver: &Delivery<A>,
    batch: &mut Vec<Queued<A>>,
) {
    if batch.is_empty() {
        return;
    }
    let messages = batch.iter().map(|queued| queued.message.clone()).collect();
    // Registered before storing: the announcement may be read back before
    // `append` returns.
    let mut deliveries = Vec::new();
    if let Delivery::Announced(announced) = deliver {
        for queued in batch.iter() {
            let key = queued.message.key.clone();
            deliveries.push((announced.expect(key.clone()), key));
        }
    }
    match shared.history.append(messages).await {
        Ok(stored) => {
            let private = stored.iter().filter(|m| m.to.is_some()).count() as u64;
            Counters::add(&shared.counters.messages, stored.len() as u64 - private);
            Counters::add(&shared.counters.private_messages, private);
            let mut settle_later = Vec::new();
            for (queued, message) in batch.drain(..).zip(stored) {
                let Queued {
                    reply,
                    unsettled,
                    bytes,
                    ..
                } = queued;
                let socket = reply.socket().clone();
                match message.to_private() {
                    Some(private) => {
                        deliver_and_ack(shared, deliver, &message.room, &private, reply, &socket)
                            .await;
                        shared
                            .host
                            .events
                            .emit(EventKind::Private, || Event::Private {
                                sid: socket.id.to_string(),
                                message: private,
                            });
                    }
                    None => {
                        deliver_and_ack(shared, deliver, &message.room, &message, reply, &socket)
                            .await;
                        shared
                            .host
                            .events
                            .emit(EventKind::Message, || Event::Message {
                                sid: socket.id.to_string(),
                                message,
                            });
                    }
                }
                // Settled only once delivered here: a later `leave` of the
                // sender's must not overtake the delivery.
                match deliver {
                    Delivery::Here(_) => drop((unsettled, bytes)),
                    Delivery::Announced(_) => settle_later.push((unsettled, bytes)),
                }
            }
            if let Delivery::Announced(announced) = deliver {
                let bound = Duration::from_millis(shared.config.cluster.node_timeout_ms);
                tokio::spawn(settle_when_delivered(
                    announced.clone(),
                    std::mem::take(&mut deliveries),
                    settle_later,
                    bound,
                ));
            }
        }
        Err(e) => {
            tracing::error!("storing {} messages failed: {e}", batch.len());
            let error = ChatError::new(
                ErrorCode::StorageFailed,
                "the message could not be stored and was not delivered",
            );
            for Queued {
                reply,
                unsettled,
                bytes,
                ..
            } in batch.drain(..)
            {
                reply.fail(&error, &shared.counters);
                drop((unsettled, bytes));
            }
            if let Delivery::Announced(announced) = deliver {
                for (_, key) in deliveries {
                    announced.forget(&key);
                }
            }
        }
    }
}

/// Delivers a stored message in its wire form here (unless the announcements
/// do) and acknowledges it to its sender with the same form.
async fn deliver_and_ack<A: Adapter, T: serde::Serialize>(
    shared: &Shared,
    deliver: &Delivery<A>,
    room: &str,
    wire: &T,
    reply: Reply<A>,
    socket: &socketioxide::extract::SocketRef<A>,
) {
    if let Delivery::Here(io) = deliver {
        deliver_here(io, &shared.counters, room, wire, Some(socket)).await;
    }
    reply.ok(wire, &shared.counters);
}

/// Cluster mode: settles a stored batch once this node has delivered all of it,
/// or after `bound` (the announcements lost with a broken subscription).
async fn settle_when_delivered<G>(
    announced: Arc<Announced>,
    deliveries: Vec<(oneshot::Receiver<()>, Arc<str>)>,
    guards: Vec<G>,
    bound: Duration,
) {
    let (receivers, keys): (Vec<_>, Vec<_>) = deliveries.into_iter().unzip();
    let delivered = futures_util::future::join_all(receivers);
    if tokio::time::timeout(bound, delivered).await.is_err() {
        tracing::warn!(
            "{} stored messages were not read back from Redis within {bound:?}",
            keys.len()
        );
    }
    for key in &keys {
        announced.forget(key);
    }
    drop(guards);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_bytes_given_back_when_settled() {
        let budget = Arc::new(Budget {
            max: 1_000,
            used: AtomicUsize::new(0),
        });
        let first = budget.reserve(600).expect("fits");
        assert!(budget.reserve(401).is_none(), "over the bound");
        let second = budget.reserve(400).expect("exactly fits");
        assert!(budget.reserve(1).is_none());
        drop(first);
        assert!(budget.reserve(600).is_some(), "given back when dropped");
        drop(second);
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
        assert!(budget.reserve(usize::MAX).is_none(), "no overflow");
    }
}
