//! Shared fixture for the integration tests: engines on free loopback ports and a
//! small Socket.IO v4 client speaking the wire protocol over a real WebSocket.
//! (Protocol coverage with the official npm client lives in tests/e2e/.)

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use palaver_core::{Chat, Config, Engine, Event, HistoryStorage};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_tungstenite::tungstenite::Message;

pub const WAIT: Duration = Duration::from_secs(5);
/// Tells the writer task to close the WebSocket.
const CLOSE: &str = "\u{0}close";

/// A config for tests: any free port, history in memory, fast room lists.
pub fn test_config() -> Config {
    let mut config = Config {
        port: 0,
        ..Config::default()
    };
    config.history.storage = HistoryStorage::Memory;
    config.room_list.interval_ms = 50;
    config.worker_threads = 2;
    config
}

/// An engine whose host events are collected in a channel, as a test host.
pub struct Host {
    pub engine: Arc<Engine>,
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl Host {
    /// Starts an engine with `config` (and `routes` beside Socket.IO).
    pub async fn start(config: Config, routes: axum::Router) -> Host {
        let (tx, events) = mpsc::unbounded_channel();
        let engine = tokio::task::spawn_blocking(move || {
            Chat::builder(config)
                .routes(routes)
                .on_event(move |event| {
                    let _ = tx.send(event);
                })
                .start()
        })
        .await
        .unwrap()
        .unwrap();
        Host {
            engine: Arc::new(engine),
            events,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.engine.local_addr().unwrap()
    }

    /// The next event of this kind; others are skipped.
    pub async fn next_of(&mut self, kind: &str) -> Event {
        loop {
            let event = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kind} event"))
                .expect("event channel closed");
            if event.kind() == kind {
                return event;
            }
        }
    }

    /// Stops the engine (from a blocking thread, as hosts must).
    pub async fn stop(self) {
        let engine = self.engine;
        tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
            .await
            .unwrap()
            .unwrap();
    }
}

/// A connected Socket.IO client (namespace `/`, WebSocket transport).
pub struct Client {
    pub sid: String,
    out: mpsc::UnboundedSender<String>,
    acks: Arc<Mutex<std::collections::HashMap<u64, oneshot::Sender<Value>>>>,
    events: Arc<Mutex<Vec<(String, Value)>>>,
    arrived: Arc<Notify>,
    next_ack: u64,
    closed: Arc<Notify>,
    is_closed: Arc<std::sync::atomic::AtomicBool>,
}

/// What the server answered to the namespace connect.
#[derive(Debug)]
pub enum Connect {
    Ok(Client),
    Refused(String),
}

impl Connect {
    pub fn unwrap(self) -> Client {
        match self {
            Connect::Ok(client) => client,
            Connect::Refused(reason) => panic!("connection refused: {reason}"),
        }
    }

    pub fn refusal(self) -> String {
        match self {
            Connect::Ok(_) => panic!("connection was accepted"),
            Connect::Refused(reason) => reason,
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("sid", &self.sid).finish()
    }
}

impl Client {
    /// Connects with `auth` as the handshake auth object.
    pub async fn connect(addr: SocketAddr, auth: Value) -> Connect {
        Self::connect_url(
            &format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
            auth,
        )
        .await
    }

    pub async fn connect_url(url: &str, auth: Value) -> Connect {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket connect timed out")
            .expect("websocket connect failed");
        let (mut sink, mut stream) = ws.split();
        let open = next_text(&mut stream).await;
        assert!(
            open.starts_with('0'),
            "expected an Engine.IO open packet, got {open}"
        );
        sink.send(Message::text(format!("40{auth}"))).await.unwrap();
        let connect = loop {
            let packet = next_text(&mut stream).await;
            if packet.starts_with("40") || packet.starts_with("44") {
                break packet;
            }
        };
        if let Some(error) = connect.strip_prefix("44") {
            let error: Value = serde_json::from_str(error).unwrap();
            return Connect::Refused(error["message"].as_str().unwrap_or_default().to_string());
        }
        let sid = serde_json::from_str::<Value>(&connect[2..]).unwrap()["sid"]
            .as_str()
            .unwrap_or_default()
            .to_string();

        let (out, mut outgoing) = mpsc::unbounded_channel::<String>();
        let acks: Arc<Mutex<std::collections::HashMap<u64, oneshot::Sender<Value>>>> =
            Arc::default();
        let events: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let arrived = Arc::new(Notify::new());
        let closed = Arc::new(Notify::new());
        let is_closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pong = out.clone();
        tokio::spawn(async move {
            while let Some(text) = outgoing.recv().await {
                if text == CLOSE || sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        {
            let (acks, events, arrived, closed, is_closed) = (
                acks.clone(),
                events.clone(),
                arrived.clone(),
                closed.clone(),
                is_closed.clone(),
            );
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let text = text.as_str();
                    if text == "2" {
                        let _ = pong.send("3".into());
                    } else if let Some(rest) = text.strip_prefix("43") {
                        let split = rest.find('[').unwrap_or(rest.len());
                        let id: u64 = rest[..split].parse().unwrap_or(0);
                        let args: Value =
                            serde_json::from_str(&rest[split..]).unwrap_or(Value::Null);
                        if let Some(waiter) = acks.lock().unwrap().remove(&id) {
                            let _ = waiter.send(args.get(0).cloned().unwrap_or(Value::Null));
                        }
                    } else if let Some(rest) = text.strip_prefix("42") {
                        let args: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
                        let name = args[0].as_str().unwrap_or_default().to_string();
                        events
                            .lock()
                            .unwrap()
                            .push((name, args.get(1).cloned().unwrap_or(Value::Null)));
                        arrived.notify_waiters();
                    } else if text.starts_with("41") {
                        events
                            .lock()
                            .unwrap()
                            .push(("disconnect".into(), json!("io server disconnect")));
                        arrived.notify_waiters();
                        // Like socket.io-client: its only namespace is gone, so it
                        // closes the connection.
                        let _ = pong.send(CLOSE.into());
                        break;
                    }
                }
                is_closed.store(true, std::sync::atomic::Ordering::SeqCst);
                closed.notify_waiters();
                arrived.notify_waiters();
            });
        }
        Connect::Ok(Client {
            sid,
            out,
            acks,
            events,
            arrived,
            next_ack: 0,
            closed,
            is_closed,
        })
    }

    /// Opens an open-mode connection with this handshake name.
    pub async fn named(addr: SocketAddr, name: &str) -> Client {
        Self::connect(addr, json!({ "name": name })).await.unwrap()
    }

    /// Emits without asking for an ack.
    pub fn emit(&self, event: &str, data: Value) {
        let _ = self.out.send(format!("42{}", json!([event, data])));
    }

    /// Emits and waits for the ack's first argument.
    pub async fn request(&mut self, event: &str, data: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        let (done, answer) = oneshot::channel();
        self.acks.lock().unwrap().insert(id, done);
        let _ = self.out.send(format!("42{id}{}", json!([event, data])));
        tokio::time::timeout(WAIT, answer)
            .await
            .unwrap_or_else(|_| panic!("no ack for {event} within {WAIT:?}"))
            .expect("connection closed before the ack")
    }

    /// Waits for the next `event` whose payload satisfies `matches`; earlier
    /// events of that name that do not match are left in place.
    pub async fn event_where(&self, event: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut events = self.events.lock().unwrap();
                if let Some(index) = events
                    .iter()
                    .position(|(name, payload)| name == event && matches(payload))
                {
                    return events.remove(index).1;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "no {event} event within {WAIT:?}; got {:?}",
                    self.events.lock().unwrap()
                );
            }
        }
    }

    pub async fn event(&self, event: &str) -> Value {
        self.event_where(event, |_| true).await
    }

    /// The payloads of `event` received so far (and not yet taken).
    pub fn received(&self, event: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, _)| name == event)
            .map(|(_, payload)| payload.clone())
            .collect()
    }

    /// Waits until the server closes the connection.
    pub async fn closed(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            tokio::time::timeout_at(deadline, notified)
                .await
                .expect("the server did not close the connection");
        }
    }

    pub fn is_closed(&self) -> bool {
        self.is_closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Closes the WebSocket.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.out.send(CLOSE.into());
    }
}

async fn next_text<S>(stream: &mut S) -> String
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("timed out waiting for a packet")
            .expect("connection closed")
            .expect("websocket error");
        if let Message::Text(text) = message {
            return text.as_str().to_string();
        }
    }
}

/// Threads of this process right now (Linux).
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Open file descriptors of this process right now (Linux).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Signs an HS256 token.
pub fn token(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
