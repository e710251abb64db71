//! The private Node-API binding of the Palaver engine. The public API is the JS
//! wrapper in `node/index.js`; this layer only moves data across:
//! configuration and payloads as JSON text, events as JSON text through a weak
//! threadsafe function, HTTP requests and adopted sockets into the engine.
//!
//! Errors reach JS with a message that starts with a stable code
//! (`ERR_PALAVER_...: text`), which the wrapper turns into `error.code`.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Error, Result, Status};
use napi_derive::napi;
use palaver_core::{
    AckId, BuildError, Chat, ChatHandle, Config, Engine, Event, StartError, StopError,
};

/// Events to JS: JSON text, not blocking the caller, not keeping Node alive.
type EventSink = ThreadsafeFunction<String, (), String, Status, false, true>;

/// What `close()` sends through the event function after the last event: not JSON,
/// so never an event. Calls of one threadsafe function reach JS in order, so when
/// JS sees this text it has seen every event of the engine.
const END_OF_EVENTS: &str = "";

fn js_error(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("{code}: {message}"))
}

/// A running engine, as the JS wrapper holds it.
#[napi]
pub struct NativeEngine {
    engine: Arc<Engine>,
    handle: ChatHandle,
    events: Arc<EventSink>,
    /// Event types with a JS listener (bits of `event_bit`).
    wanted: Arc<AtomicU32>,
}

/// A complete HTTP response from the engine (long-polling and client script).
#[napi(object)]
pub struct NativeResponse {
    pub status: u32,
    /// Header names and values, alternating.
    pub headers: Vec<String>,
    pub body: Buffer,
}

#[napi]
impl NativeEngine {
    /// Starts an engine from a configuration JSON; `on_event` receives each event
    /// as JSON text.
    #[napi(factory, catch_unwind)]
    pub fn start(config_json: String, on_event: Function<String, ()>) -> Result<NativeEngine> {
        let config = Config::from_json(&config_json)
            .map_err(|e| js_error("ERR_PALAVER_INVALID_OPTIONS", e))?;
        let events: Arc<EventSink> = Arc::new(
            on_event
                .build_threadsafe_function()
                .weak::<true>()
                .callee_handled::<false>()
                .build()?,
        );
        let sink = events.clone();
        let wanted = Arc::new(AtomicU32::new(0));
        let filter = wanted.clone();
        let handle_slot: Arc<OnceLock<ChatHandle>> = Arc::default();
        let handle_for_events = handle_slot.clone();
        let engine = Chat::builder(config)
            .on_event(move |event| {
                if filter.load(Ordering::Relaxed) & event_bit(event.kind()) == 0 {
                    // No JS listener: skip the JSON and the trip to the JS thread.
                    // A custom event waiting for an answer is refused at once.
                    if let (
                        Event::Custom {
                            ack: Some(ack),
                            event,
                            ..
                        },
                        Some(handle),
                    ) = (&event, handle_for_events.get())
                    {
                        let _ = handle.ack_error(
                            *ack,
                            "unknown_event",
                            &format!("unknown event {event:?}"),
                        );
                    }
                    return;
                }
                if let Ok(json) = serde_json::to_string(&event) {
                    // Non-blocking: a busy JS thread never slows the chat down.
                    let _ = sink.call(json, ThreadsafeFunctionCallMode::NonBlocking);
                }
            })
            .start()
            .map_err(|e| match e {
                StartError::Bind { .. } => js_error("ERR_PALAVER_LISTEN", e),
                StartError::Build(BuildError::Config(e)) => {
                    js_error("ERR_PALAVER_INVALID_OPTIONS", e)
                }
                e => js_error("ERR_PALAVER_START", e),
            })?;
        let handle = engine.handle().clone();
        let _ = handle_slot.set(handle.clone());
        Ok(NativeEngine {
            engine: Arc::new(engine),
            handle,
            events,
            wanted,
        })
    }

    /// Which event types JS listens to (`connected`, `message`, ...); only those
    /// are forwarded. Starts empty.
    #[napi(catch_unwind)]
    pub fn listen_to(&self, kinds: Vec<String>) {
        let mask = kinds.iter().fold(0, |mask, kind| mask | event_bit(kind));
        self.wanted.store(mask, Ordering::Relaxed);
    }

    /// The bound port when the engine listens itself.
    #[napi(getter, catch_unwind)]
    pub fn port(&self) -> Option<u32> {
        self.engine.local_addr().map(|addr| u32::from(addr.port()))
    }

    /// Takes over an upgraded connection: duplicates `fd` (the caller then closes
    /// its own descriptor) and feeds `head` (the request bytes already read) first.
    #[napi(catch_unwind)]
    pub fn adopt(&self, fd: i32, head: Buffer) -> Result<()> {
        if fd < 0 {
            return Err(js_error(
                "ERR_PALAVER_ADOPT",
                "the socket has no file descriptor",
            ));
        }
        // SAFETY: the caller passes the descriptor of a socket it holds open for the
        // duration of this call; only a duplicate is kept.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }
            .try_clone_to_owned()
            .map_err(|e| js_error("ERR_PALAVER_ADOPT", e))?;
        let stream = std::net::TcpStream::from(owned);
        self.engine
            .adopt(stream, Bytes::copy_from_slice(&head))
            .map_err(|e| js_error("ERR_PALAVER_ADOPT", e))
    }

    /// Serves one HTTP request under `/socket.io/` in-process.
    #[napi]
    pub async fn serve_request(
        &self,
        method: String,
        url: String,
        headers: Vec<String>,
        body: Buffer,
        remote_address: Option<String>,
        remote_port: Option<u32>,
    ) -> Result<NativeResponse> {
        let mut request = http::Request::builder().method(method.as_str()).uri(url);
        for pair in headers.chunks_exact(2) {
            request = request.header(pair[0].as_str(), pair[1].as_str());
        }
        let request = request
            .body(Bytes::copy_from_slice(&body))
            .map_err(|e| js_error("ERR_PALAVER_REQUEST", e))?;
        let peer = remote_address
            .and_then(|address| address.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip.to_canonical(), remote_port.unwrap_or(0) as u16));
        let response = self
            .engine
            .serve_request(request, peer)
            .await
            .map_err(|e| js_error("ERR_PALAVER_CLOSED", e))?;
        let (parts, body) = response.into_parts();
        let headers = parts
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some([name.as_str().to_string(), value.to_str().ok()?.to_string()])
            })
            .flatten()
            .collect();
        Ok(NativeResponse {
            status: u32::from(parts.status.as_u16()),
            headers,
            body: body.to_vec().into(),
        })
    }

    #[napi]
    pub async fn emit_to_all(&self, event: String, data_json: String) -> Result<()> {
        let data = parse_json(&data_json)?;
        emit_result(self.handle.emit_to_all(&event, data).await)
    }

    #[napi]
    pub async fn emit_to_room(&self, room: String, event: String, data_json: String) -> Result<()> {
        let data = parse_json(&data_json)?;
        emit_result(self.handle.emit_to_room(&room, &event, data).await)
    }

    #[napi]
    pub async fn emit_to_user(
        &self,
        user_id: String,
        event: String,
        data_json: String,
    ) -> Result<()> {
        let data = parse_json(&data_json)?;
        emit_result(self.handle.emit_to_user(&user_id, &event, data).await)
    }

    /// Disconnects every connection of a user; resolves with their number.
    #[napi]
    pub async fn disconnect_user(&self, user_id: String, reason: String) -> Result<u32> {
        self.handle
            .disconnect_user(&user_id, &reason)
            .await
            .map(|count| count as u32)
            .map_err(|e| match e {
                palaver_core::DisconnectError::UserOffline(_) => {
                    js_error("ERR_PALAVER_USER_OFFLINE", e)
                }
                palaver_core::DisconnectError::NotRunning => js_error("ERR_PALAVER_CLOSED", e),
                e => js_error("ERR_PALAVER_DELIVERY", e),
            })
    }

    /// The rooms with their members, as JSON text.
    #[napi]
    pub async fn rooms(&self) -> Result<String> {
        let rooms = self.handle.rooms().await;
        serde_json::to_string(&rooms).map_err(|e| js_error("ERR_PALAVER_INTERNAL", e))
    }

    /// The counters, as JSON text.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> Result<String> {
        serde_json::to_string(&self.handle.stats()).map_err(|e| js_error("ERR_PALAVER_INTERNAL", e))
    }

    /// Answers a custom event's acknowledgement; false when it is no longer pending.
    #[napi(catch_unwind)]
    pub fn ack(&self, ack_id: i64, answer_json: String) -> Result<bool> {
        let answer = parse_json(&answer_json)?;
        Ok(self.handle.ack(AckId(ack_id as u64), answer).is_ok())
    }

    /// Stops gracefully within `timeout_ms`; resolves once everything is closed and
    /// no event will follow. Then sends the end-of-events marker (an empty string)
    /// through the event function, behind every event still on its way to JS, and
    /// resolves with whether it could (JS waits for the marker when true).
    #[napi]
    pub async fn close(&self, timeout_ms: u32) -> Result<bool> {
        let engine = self.engine.clone();
        let stopped = tokio::task::spawn_blocking(move || {
            engine.stop(Duration::from_millis(u64::from(timeout_ms)))
        })
        .await
        .map_err(|e| js_error("ERR_PALAVER_INTERNAL", e))?;
        match stopped {
            Ok(_) | Err(StopError::AlreadyStopped) => {}
            Err(e) => return Err(js_error("ERR_PALAVER_CLOSE", e)),
        }
        let status = self.events.call(
            END_OF_EVENTS.to_string(),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
        Ok(status == Status::Ok)
    }
}

/// A bit per event type, for the listener filter.
fn event_bit(kind: &str) -> u32 {
    match kind {
        "connected" => 1,
        "disconnected" => 2,
        "joined" => 4,
        "left" => 8,
        "message" => 16,
        "private" => 32,
        "custom" => 64,
        _ => 0,
    }
}

fn parse_json(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| js_error("ERR_PALAVER_INVALID_ARG", e))
}

fn emit_result(result: std::result::Result<(), palaver_core::EmitError>) -> Result<()> {
    use palaver_core::EmitError;
    result.map_err(|e| match e {
        EmitError::InvalidEvent(_) | EmitError::InvalidRoom(_) => {
            js_error("ERR_PALAVER_INVALID_ARG", e)
        }
        EmitError::UserOffline(_) => js_error("ERR_PALAVER_USER_OFFLINE", e),
        EmitError::NotRunning => js_error("ERR_PALAVER_CLOSED", e),
        e => js_error("ERR_PALAVER_DELIVERY", e),
    })
}
