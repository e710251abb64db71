//! The ordered path of room messages: store, then deliver, then acknowledge.
//!
//! One task takes accepted messages in arrival order, stores each batch in one go
//! (group commit), and only then delivers them to the rooms and acknowledges them
//! to their senders, in the order of their ids. So every member sees a room in the
//! same order as its history, and an acknowledged message is always stored.
//! With a history that announces its appends (Redis), members get each message
//! through the announcement instead, on every node alike (`fanout.rs`).

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::SocketIo;
use tokio::sync::{mpsc, oneshot};

use super::fanout::deliver_here;
use super::reply::Reply;
use crate::events::{Event, EventKind};
use crate::history::NewMessage;
use crate::protocol::{ChatError, ErrorCode};
use crate::shared::Shared;
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
    pub(crate) fn start(shared: Arc<Shared>, io: SocketIo<A>) -> Self {
        let (queue, items) = mpsc::channel(QUEUE);
        let counters = shared.counters.clone();
        tokio::spawn(run(shared, io, items));
        Self { queue, counters }
    }

    pub(crate) async fn submit(&self, message: NewMessage, reply: Reply<A>) {
        if let Err(mpsc::error::SendError(Item::Message(_, reply))) =
            self.queue.send(Item::Message(message, reply)).await
        {
            reply.fail(&ChatError::shutting_down(), &self.counters);
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

async fn run<A: Adapter>(shared: Arc<Shared>, io: SocketIo<A>, mut items: mpsc::Receiver<Item<A>>) {
    // Decided once: where the history announces appends, members get messages
    // from the announcements, and delivering here as well would deliver twice.
    let deliver = (!shared.history.announces_appends()).then_some(io);
    let mut taken = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    while items.recv_many(&mut taken, BATCH).await > 0 {
        for item in taken.drain(..) {
            match item {
                Item::Message(message, reply) => batch.push((message, reply)),
                Item::Flush(done) => {
                    store_and_deliver(&shared, deliver.as_ref(), &mut batch).await;
                    let _ = done.send(());
                }
            }
        }
        store_and_deliver(&shared, deliver.as_ref(), &mut batch).await;
    }
}

async fn store_and_deliver<A: Adapter>(
    shared: &Shared,
    deliver: Option<&SocketIo<A>>,
    batch: &mut Vec<(NewMessage, Reply<A>)>,
) {
    if batch.is_empty() {
        return;
    }
    let messages = batch.iter().map(|(message, _)| message.clone()).collect();
    match shared.history.append(messages).await {
        Ok(stored) => {
            Counters::add(&shared.counters.messages, stored.len() as u64);
            for ((_, reply), message) in batch.drain(..).zip(stored) {
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
