//! The heartbeat of every session of an engine, on one shared timer.
//!
//! Each session used to run a task of its own for its heartbeat: an interval, a
//! timeout and a notification, about 1.4 KB per session for as long as it lives,
//! though it wakes once per ping interval. Here one task per engine keeps the
//! next due time of every session in a heap and does the pinging for all of them;
//! a session costs one heap entry. What arrives from the client (a pong in v4, a
//! ping in v3) is recorded on the socket ([`Socket::heartbeat_received`]) and read
//! by the task when the session's next step is due.
//!
//! The schedule is the reference server's:
//! - v4: the first ping `ping_interval` after the handshake, then one every
//!   `ping_interval`; a pong must arrive within `ping_timeout` of its ping, or the
//!   session is closed with [`DisconnectReason::HeartbeatTimeout`]. While the
//!   session is upgrading its transport no ping is sent.
//! - v3: the client pings; a session that sent none for `ping_interval +
//!   ping_timeout` is closed. The pong is sent where the ping is received.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use engineioxide_core::{Packet, ProtocolVersion};
use smallvec::smallvec;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::socket::{DisconnectReason, Socket};

/// At most this many due steps are taken at once before the task yields, so that a
/// burst of sessions (all connected within the same second) does not hold a worker.
const BATCH: usize = 1024;

/// What is due for a session at an entry's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// v4: send a ping.
    Ping,
    /// v4: the pong for the ping sent at this time must have arrived.
    Pong { ping_sent: Instant },
    /// v3: the client must have pinged since this time.
    #[cfg(feature = "v3")]
    ClientPing { since: Instant },
}

struct Entry<D: Default + Send + Sync + 'static> {
    due: Instant,
    step: Step,
    socket: Weak<Socket<D>>,
}

// The heap orders entries by due time only.
impl<D: Default + Send + Sync + 'static> PartialEq for Entry<D> {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}
impl<D: Default + Send + Sync + 'static> Eq for Entry<D> {}
impl<D: Default + Send + Sync + 'static> PartialOrd for Entry<D> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<D: Default + Send + Sync + 'static> Ord for Entry<D> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.due.cmp(&other.due)
    }
}

struct Shared<D: Default + Send + Sync + 'static> {
    state: Mutex<State<D>>,
    /// Wakes the task: an entry earlier than the one it sleeps for, or the end.
    changed: Notify,
    interval: Duration,
    timeout: Duration,
}

struct State<D: Default + Send + Sync + 'static> {
    entries: BinaryHeap<Reverse<Entry<D>>>,
    task_started: bool,
    ended: bool,
}

impl<D: Default + Send + Sync + 'static> Shared<D> {
    fn lock(&self) -> MutexGuard<'_, State<D>> {
        // Every change to the state is a single push, pop or flag: a panic
        // cannot leave it half-changed, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The heartbeats of an engine's sessions. Dropping it ends its task.
pub(crate) struct Heartbeats<D: Default + Send + Sync + 'static> {
    shared: Arc<Shared<D>>,
}

impl<D: Default + Send + Sync + 'static> Heartbeats<D> {
    pub(crate) fn new(interval: Duration, timeout: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    entries: BinaryHeap::new(),
                    task_started: false,
                    ended: false,
                }),
                changed: Notify::new(),
                interval,
                timeout,
            }),
        }
    }

    /// Starts the heartbeat of a session whose handshake was just sent. Must be
    /// called within a tokio runtime (the first call starts the task).
    pub(crate) fn start(&self, socket: &Arc<Socket<D>>) {
        let now = Instant::now();
        let entry = match socket.protocol {
            ProtocolVersion::V4 => Entry {
                due: now + self.shared.interval,
                step: Step::Ping,
                socket: Arc::downgrade(socket),
            },
            #[cfg(feature = "v3")]
            ProtocolVersion::V3 => Entry {
                due: now + self.shared.interval + self.shared.timeout,
                step: Step::ClientPing { since: now },
                socket: Arc::downgrade(socket),
            },
            #[cfg(not(feature = "v3"))]
            ProtocolVersion::V3 => return,
        };
        let mut state = self.shared.lock();
        if !state.task_started {
            state.task_started = true;
            tokio::spawn(run(self.shared.clone()));
        }
        let earliest = state
            .entries
            .peek()
            .is_none_or(|Reverse(first)| entry.due < first.due);
        state.entries.push(Reverse(entry));
        drop(state);
        if earliest {
            self.shared.changed.notify_one();
        }
    }
}

impl<D: Default + Send + Sync + 'static> Drop for Heartbeats<D> {
    fn drop(&mut self) {
        self.shared.lock().ended = true;
        self.shared.changed.notify_one();
    }
}

/// The task: takes the steps that are due, then sleeps until the next one.
async fn run<D: Default + Send + Sync + 'static>(shared: Arc<Shared<D>>) {
    let mut due = Vec::new();
    let mut next = Vec::new();
    loop {
        let woken = shared.changed.notified();
        tokio::pin!(woken);
        // Registered before the heap is read, so an entry pushed meanwhile wakes it.
        woken.as_mut().enable();

        let now = Instant::now();
        let sleep_until = {
            let mut state = shared.lock();
            if state.ended {
                return;
            }
            while due.len() < BATCH
                && state
                    .entries
                    .peek()
                    .is_some_and(|Reverse(first)| first.due <= now)
            {
                due.extend(state.entries.pop().map(|Reverse(entry)| entry));
            }
            state.entries.peek().map(|Reverse(first)| first.due)
        };

        if !due.is_empty() {
            next.extend(
                due.drain(..)
                    .filter_map(|entry| take_step(&shared, entry, now)),
            );
            shared.lock().entries.extend(next.drain(..).map(Reverse));
            // Entries may be due again (a batch was full, or a step is due now).
            tokio::task::yield_now().await;
            continue;
        }
        match sleep_until {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = woken => {}
                }
            }
            None => woken.await,
        }
    }
}

/// Takes `entry`'s step; returns the session's next one, or `None` once the
/// session is gone or closed by it.
fn take_step<D: Default + Send + Sync + 'static>(
    shared: &Shared<D>,
    entry: Entry<D>,
    now: Instant,
) -> Option<Entry<D>> {
    let socket = entry.socket.upgrade()?;
    if socket.cancellation_token.is_cancelled() {
        return None;
    }
    let (due, step) = match entry.step {
        // No ping while the transport is being upgraded: the client's pong could be
        // lost between the two transports.
        Step::Ping if socket.is_upgrading() => ((entry.due + shared.interval).max(now), Step::Ping),
        Step::Ping => {
            #[cfg(feature = "tracing")]
            tracing::trace!(sid = ?socket.id, "emitting ping");
            // Past the queue's bounds: a client behind on reading is still alive, and
            // the ping timeout (which this ping, queued behind the rest, measures)
            // decides whether it keeps up.
            if socket
                .internal_tx
                .send_heartbeat(smallvec![Packet::Ping])
                .is_err()
            {
                socket.close(DisconnectReason::HeartbeatTimeout);
                return None;
            }
            (now + shared.timeout, Step::Pong { ping_sent: now })
        }
        Step::Pong { ping_sent } => {
            if !socket.last_beat.since(ping_sent) {
                #[cfg(feature = "tracing")]
                tracing::debug!(sid = ?socket.id, "heartbeat timeout: no pong");
                socket.close(DisconnectReason::HeartbeatTimeout);
                return None;
            }
            // The next ping is one interval after the last (at once if the timeout
            // is longer than the interval).
            ((ping_sent + shared.interval).max(now), Step::Ping)
        }
        #[cfg(feature = "v3")]
        Step::ClientPing { since } => {
            // Strictly after: `since` is the ping that set this deadline.
            let last = socket.last_beat.last().filter(|&last| last > since);
            match last {
                Some(last) => {
                    let due = last + shared.interval + shared.timeout;
                    (due.max(now), Step::ClientPing { since: last })
                }
                None => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(sid = ?socket.id, "heartbeat timeout: no ping");
                    socket.close(DisconnectReason::HeartbeatTimeout);
                    return None;
                }
            }
        }
    };
    Some(Entry {
        due,
        step,
        socket: entry.socket,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use engineioxide_core::{Packet, PacketBuf, ProtocolVersion, TransportType};

    use super::Heartbeats;
    use crate::config::EngineIoConfig;
    use crate::socket::{DisconnectReason, Socket};

    /// A v4 WebSocket session of `config` whose closes are counted in `closes`.
    fn session(config: &EngineIoConfig, closes: &Arc<AtomicUsize>) -> Arc<Socket<()>> {
        session_of(ProtocolVersion::V4, config, closes)
    }

    fn session_of(
        protocol: ProtocolVersion,
        config: &EngineIoConfig,
        closes: &Arc<AtomicUsize>,
    ) -> Arc<Socket<()>> {
        let closes = closes.clone();
        Arc::new(Socket::new(
            protocol,
            TransportType::Websocket,
            config,
            http::Request::<()>::default().into_parts().0,
            Box::new(move |_, reason| {
                assert_eq!(reason, DisconnectReason::HeartbeatTimeout);
                closes.fetch_add(1, Ordering::SeqCst);
            }),
            true,
        ))
    }

    fn heartbeats(config: &EngineIoConfig) -> Heartbeats<()> {
        Heartbeats::new(config.ping_interval, config.ping_timeout)
    }

    async fn next_packets(socket: &Socket<()>) -> Option<PacketBuf> {
        let mut rx = socket.internal_rx.lock().await;
        tokio::time::timeout(Duration::from_secs(5), rx.buffered_rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The reference engine.io server sends its first ping `pingInterval` after the handshake
    /// (`schedulePing()` in `lib/socket.ts` is a `setTimeout(pingInterval)`), so that the first
    /// packet a client gets after the open packet is the answer to its own first packet.
    #[tokio::test]
    async fn first_ping_after_ping_interval() {
        let config = EngineIoConfig::builder()
            .ping_interval(Duration::from_millis(300))
            .build();
        let heartbeats = heartbeats(&config);
        let socket = session(&config, &Arc::default());
        heartbeats.start(&socket);

        let mut rx = socket.internal_rx.try_lock().unwrap();
        let early = tokio::time::timeout(Duration::from_millis(150), rx.buffered_rx.recv()).await;
        assert!(early.is_err(), "a packet was sent right away: {early:?}");
        drop(rx);
        let ping = next_packets(&socket)
            .await
            .expect("no ping after the interval");
        assert!(matches!(ping[..], [Packet::Ping]), "{ping:?}");
    }

    /// A client that answers every ping keeps its session; one that stops is closed
    /// one timeout after the ping it did not answer.
    #[tokio::test]
    async fn pongs_keep_a_session_and_silence_closes_it() {
        let config = EngineIoConfig::builder()
            .ping_interval(Duration::from_millis(50))
            .ping_timeout(Duration::from_millis(100))
            .build();
        let heartbeats = heartbeats(&config);
        let closes = Arc::new(AtomicUsize::new(0));
        let answering = session(&config, &closes);
        let silent = session(&config, &Arc::new(AtomicUsize::new(0)));
        heartbeats.start(&answering);
        heartbeats.start(&silent);

        for _ in 0..5 {
            let ping = next_packets(&answering).await.expect("a ping");
            assert!(matches!(ping[..], [Packet::Ping]), "{ping:?}");
            answering.heartbeat_received();
        }
        assert_eq!(closes.load(Ordering::SeqCst), 0, "closed while answering");

        // The silent one got its first ping after 50 ms and was closed 100 ms later:
        // `close` queued its close packet behind the ping.
        let packets = [next_packets(&silent).await, next_packets(&silent).await];
        assert!(
            matches!(&packets, [Some(a), Some(b)] if matches!(a[..], [Packet::Ping]) && matches!(b[..], [Packet::Close])),
            "{packets:?}"
        );
    }

    /// A client behind on reading (its queue full) is pinged behind what it has not
    /// read, not closed: the ping timeout decides whether it keeps up.
    #[tokio::test]
    async fn full_queue_still_gets_its_ping() {
        let config = EngineIoConfig::builder()
            .ping_interval(Duration::from_millis(50))
            .ping_timeout(Duration::from_secs(5))
            .max_buffer_size(2)
            .build();
        let heartbeats = heartbeats(&config);
        let closes = Arc::new(AtomicUsize::new(0));
        let socket = session(&config, &closes);
        socket.send(Packet::Message("first".into())).unwrap();
        socket.send(Packet::Message("second".into())).unwrap();
        assert!(
            socket.send(Packet::Message("third".into())).is_err(),
            "the queue is full"
        );
        heartbeats.start(&socket);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(closes.load(Ordering::SeqCst), 0, "closed for a full queue");

        let mut received = Vec::new();
        for _ in 0..3 {
            received.extend(next_packets(&socket).await.expect("a packet"));
        }
        assert!(
            matches!(&received[..], [Packet::Message(a), Packet::Message(b), Packet::Ping] if **a == *"first" && **b == *"second"),
            "{received:?}"
        );
    }

    /// v3: the client pings and is answered at once; a client that stops pinging is
    /// closed `ping_interval + ping_timeout` after its last ping.
    #[cfg(feature = "v3")]
    #[tokio::test]
    async fn v3_client_pings_are_answered_and_required() {
        let config = EngineIoConfig::builder()
            .ping_interval(Duration::from_millis(40))
            .ping_timeout(Duration::from_millis(40))
            .build();
        let heartbeats = heartbeats(&config);
        let closes = Arc::new(AtomicUsize::new(0));
        let socket = session_of(ProtocolVersion::V3, &config, &closes);
        heartbeats.start(&socket);

        // Pinging every 40 ms for 400 ms: five times the 80 ms allowed.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(40)).await;
            socket.heartbeat_received();
            let pong = next_packets(&socket).await.expect("a pong");
            assert!(matches!(pong[..], [Packet::Pong]), "{pong:?}");
        }
        assert_eq!(closes.load(Ordering::SeqCst), 0, "closed while pinging");

        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(closes.load(Ordering::SeqCst), 1, "not closed after silence");
    }

    /// The heartbeats hold no session alive, and forget a session once it is gone.
    #[tokio::test]
    async fn forgets_sessions_that_are_gone() {
        let config = EngineIoConfig::builder()
            .ping_interval(Duration::from_millis(20))
            .build();
        let heartbeats = heartbeats(&config);
        let socket = session(&config, &Arc::default());
        heartbeats.start(&socket);
        let weak = Arc::downgrade(&socket);
        drop(socket);
        assert!(weak.upgrade().is_none(), "the heartbeats hold the session");

        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(heartbeats.shared.lock().entries.is_empty());
    }
}
