//! The ordered path of room messages: store, then deliver, then acknowledge.
//!
//! One task takes accepted messages in arrival order, stores each batch in one go
//! (group commit), and only then delivers them to the rooms and acknowledges them
//! to their senders, in the order of their ids. So every member sees a room in the
//! same order as its history, and an acknowledged message is always stored.
//! With a history that announces its appends (Redis), members get each message
//! through the announcement instead, on every node alike (`fanout.rs`).
//!
//! Queueing never waits: what is queued is bounded in bytes
//! (`history.queue_max_bytes`), and a message over the bound is refused with
//! `storage_busy`, so a stuck store holds no connection's turn. Each round takes
//! everything queued (bounded by those bytes), so a message waits for at most the
//! store call under way and its own: with the store failing, it is refused within
//! two of the store's timeouts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::SocketIo;
use tokio::sync::{mpsc, oneshot};

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
}

impl<A: Adapter> Pipeline<A> {
    pub(crate) fn start(shared: Arc<Shared>, io: SocketIo<A>) -> Self {
        let (queue, items) = mpsc::unbounded_channel();
        let counters = shared.counters.clone();
        let budget = Arc::new(Budget {
            max: shared.config.history.queue_max_bytes,
            used: AtomicUsize::new(0),
        });
        tokio::spawn(run(shared, io, items));
        Self {
            queue,
            budget,
            counters,
        }
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
) {
    // Decided once: where the history announces appends, members get messages
    // from the announcements, and delivering here as well would deliver twice.
    let deliver = (!shared.history.announces_appends()).then_some(io);
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
                        store_and_deliver(&shared, deliver.as_ref(), &mut batch).await;
                        let _ = done.send(());
                    }
                }
            }
            match items.try_recv() {
                Ok(item) => taken.push(item),
                Err(_) => break,
            }
        }
        store_and_deliver(&shared, deliver.as_ref(), &mut batch).await;
    }
}

async fn store_and_deliver<A: Adapter>(
    shared: &Shared,
    deliver: Option<&SocketIo<A>>,
    batch: &mut Vec<Queued<A>>,
) {
    if batch.is_empty() {
        return;
    }
    let messages = batch.iter().map(|queued| queued.message.clone()).collect();
    match shared.history.append(messages).await {
        Ok(stored) => {
            Counters::add(&shared.counters.messages, stored.len() as u64);
            for (queued, message) in batch.drain(..).zip(stored) {
                let Queued {
                    reply,
                    unsettled,
                    bytes,
                    ..
                } = queued;
                let socket = reply.socket().clone();
                if let Some(io) = deliver {
                    deliver_here(io, &shared.counters, &message.room, &message, Some(&socket))
                        .await;
                }
                reply.ok(&message, &shared.counters);
                shared
                    .host
                    .events
                    .emit(EventKind::Message, || Event::Message {
                        sid: socket.id.to_string(),
                        message,
                    });
                // Settled only now: a later `leave` of the sender's must not
                // overtake the delivery.
                drop((unsettled, bytes));
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
        }
    }
}
