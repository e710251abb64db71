//! The ordered path of room messages: store, then deliver, then acknowledge.
//!
//! One task takes accepted messages in arrival order, stores each batch in one go
//! (group commit), and only then delivers them to the rooms and acknowledges them
//! to their senders, in the order of their ids. So every member sees a room in the
//! same order as its history, and an acknowledged message is always stored.

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use tokio::sync::{mpsc, oneshot};

use super::reply::Reply;
use super::{broadcast, room_key, Shared};
use crate::events::Event;
use crate::history::NewMessage;
use crate::protocol::{ChatError, ChatMessage, ErrorCode};
use crate::stats::Counters;

/// Messages taken per storage round.
const BATCH: usize = 512;
/// Accepted messages waiting for storage before senders wait their turn.
const QUEUE: usize = 8_192;

enum Item<A: Adapter> {
    Message(NewMessage, Reply<A>),
    /// Answered once everything queued before it has been stored and delivered.
    Flush(oneshot::Sender<()>),
}

pub(crate) struct Pipeline<A: Adapter> {
    queue: mpsc::Sender<Item<A>>,
    counters: Arc<Counters>,
}

impl<A: Adapter> Pipeline<A> {
    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let (queue, items) = mpsc::channel(QUEUE);
        let counters = shared.counters.clone();
        tokio::spawn(run(shared, items));
        Self { queue, counters }
    }

    pub(crate) async fn submit(&self, message: NewMessage, reply: Reply<A>) {
        if let Err(mpsc::error::SendError(Item::Message(_, reply))) =
            self.queue.send(Item::Message(message, reply)).await
        {
            reply.fail(
                &ChatError::new(ErrorCode::ShuttingDown, "the server is stopping"),
                &self.counters,
            );
        }
    }

    /// Waits until every message accepted so far is stored, delivered and acknowledged.
    pub(crate) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Item::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
}

async fn run<A: Adapter>(shared: Arc<Shared>, mut items: mpsc::Receiver<Item<A>>) {
    let mut taken = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    while items.recv_many(&mut taken, BATCH).await > 0 {
        for item in taken.drain(..) {
            match item {
                Item::Message(message, reply) => batch.push((message, reply)),
                Item::Flush(done) => {
                    store_and_deliver(&shared, &mut batch).await;
                    let _ = done.send(());
                }
            }
        }
        store_and_deliver(&shared, &mut batch).await;
    }
}

async fn store_and_deliver<A: Adapter>(shared: &Shared, batch: &mut Vec<(NewMessage, Reply<A>)>) {
    if batch.is_empty() {
        return;
    }
    let messages = batch.iter().map(|(message, _)| message.clone()).collect();
    let senders: Vec<String> = batch
        .iter()
        .map(|(_, reply)| reply.socket().id.to_string())
        .collect();
    match shared.history.append(messages, &senders).await {
        Ok(stored) => {
            Counters::add(&shared.counters.messages, stored.messages.len() as u64);
            for ((_, reply), message) in batch.drain(..).zip(stored.messages) {
                deliver(shared, reply, message, stored.published).await;
            }
        }
        Err(e) => {
            tracing::error!("storing {} messages failed: {e}", batch.len());
            let error = ChatError::new(
                ErrorCode::StorageFailed,
                "the message could not be stored and was not delivered",
            );

            for (_, reply) in batch.drain(..) {
                reply.fail(&error, &shared.counters);
            }
        }
    }
}

/// Delivers a stored message (unless storing published it to every node already),
/// then acknowledges it.
async fn deliver<A: Adapter>(
    shared: &Shared,
    reply: Reply<A>,
    message: ChatMessage,
    published: bool,
) {
    let socket = reply.socket().clone();
    if published {
        reply.ok(&message, &shared.counters);
        shared.events.emit(|| Event::Message {
            sid: socket.id.to_string(),
            message,
        });
        return;
    }
    // `to` leaves the sender out: the tutorial's page shows its own text itself.
    let key = room_key(&message.room);
    if let Err(e) = broadcast(shared, || socket.to(key.clone()), "message", &message).await {
        // Only clients that are gone or too slow to read miss it; it is stored.
        tracing::debug!(room = %message.room, "some members missed a message: {e}");
    }
    reply.ok(&message, &shared.counters);
    shared.events.emit(|| Event::Message {
        sid: socket.id.to_string(),
        message,
    });
}
