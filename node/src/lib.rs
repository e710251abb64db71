//! The private Node-API binding of the Palaver engine. The public API is the JS
//! wrapper in `node/index.js`; this layer has no chat logic of its own, it only
//! converts and forwards: configuration and payloads as JSON text, events in
//! their one encoded form (`Event::to_json`) through a weak threadsafe function,
//! the listeners' event kinds to `ChatHandle::subscribe`, HTTP requests and
//! adopted sockets into the engine, rooms and counters as typed objects.
//!
//! Errors reach JS with a message that starts with a stable code
//! (`ERR_PALAVER_...: text`), which the wrapper turns into `error.code`; the code
//! comes from the engine's `HostErrorCode` through one table, `js_code`.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, FnArgs, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Error, Result, Status};
use napi_derive::napi;
use palaver_core::{
    AckId, Chat, ChatHandle, Config, Engine, EventKind, EventKinds, HostErrorCode, SocketQuery,
    StopError,
};

/// Events to JS: JSON text and the binary attachments of a Socket.IO event (JS
/// gets `(json, buffers)`, `buffers` undefined when there are none), never
/// keeping Node alive. At most `EVENTS_IN_FLIGHT` wait for the JS thread: past
/// that the engine's event thread waits, so that a busy JS thread makes the
/// engine's own queue fill up (bounded in events and bytes, drops counted)
/// instead of napi's, which has no bound.
type EventSink =
    ThreadsafeFunction<HostMessage, (), EventArgs, Status, false, true, EVENTS_IN_FLIGHT>;

/// What the JS event function is called with: `(json, buffers)`.
type EventArgs = FnArgs<(String, Option<Vec<Buffer>>)>;

/// Events handed to napi and not yet delivered to JS.
const EVENTS_IN_FLIGHT: usize = 1024;

/// One event on its way to JS.
struct HostMessage {
    json: String,
    attachments: Vec<Bytes>,
}

/// What `close()` sends through the event function after the last event: not JSON,
/// so never an event. Calls of one threadsafe function reach JS in order, so when
/// JS sees this text it has seen every event of the engine.
const END_OF_EVENTS: &str = "";

/// The JS `error.code` of each engine error code: the one table of the binding.
fn js_code(code: HostErrorCode) -> &'static str {
    match code {
        HostErrorCode::InvalidArgument => "ERR_PALAVER_INVALID_ARG",
        HostErrorCode::InvalidConfig => "ERR_PALAVER_INVALID_OPTIONS",
        HostErrorCode::BindFailed => "ERR_PALAVER_LISTEN",
        HostErrorCode::StartFailed => "ERR_PALAVER_START",
        HostErrorCode::NotRunning => "ERR_PALAVER_CLOSED",
        HostErrorCode::UserOffline => "ERR_PALAVER_USER_OFFLINE",
        HostErrorCode::DeliveryFailed => "ERR_PALAVER_DELIVERY",
        HostErrorCode::Busy => "ERR_PALAVER_BUSY",
        HostErrorCode::Io => "ERR_PALAVER_ADOPT",
        HostErrorCode::InsideCallback => "ERR_PALAVER_CLOSE",
        // The binding answers acks with a boolean, so UnknownAck never reaches JS
        // as an error.
        HostErrorCode::Internal | HostErrorCode::UnknownAck => "ERR_PALAVER_INTERNAL",
    }
}

/// An error for JS: `ERR_PALAVER_...: message`.
fn js_error(code: HostErrorCode, message: impl std::fmt::Display) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("{}: {message}", js_code(code)),
    )
}

/// The kinds of host event, named as their JSON `type`: the engine's own list,
/// so that the wrapper keeps no copy of it.
#[napi(catch_unwind)]
pub fn event_kinds() -> Vec<String> {
    EventKind::ALL
        .iter()
        .map(|kind| kind.as_str().to_string())
        .collect()
}

/// A running engine, as the JS wrapper holds it.
#[napi]
pub struct NativeEngine {
    engine: Arc<Engine>,
    handle: ChatHandle,
    events: Arc<EventSink>,
}

/// A complete HTTP response from the engine (long-polling and client script).
#[napi(object)]
pub struct NativeResponse {
    pub status: u32,
    /// Header names and values, alternating.
    pub headers: Vec<String>,
    pub body: Buffer,
}

/// A query's answer: its JSON and the binary attachments it names.
#[napi(object)]
pub struct QueryResult {
    pub json: String,
    pub buffers: Vec<Buffer>,
}

/// A room with its members (`rooms()`).
#[napi(object)]
pub struct RoomInfo {
    pub room: String,
    /// Number of distinct users in the room.
    pub count: u32,
    /// The members, in join order.
    pub members: Vec<Member>,
}

/// One user in a room's member list.
#[napi(object)]
pub struct Member {
    pub id: String,
    pub name: String,
}

/// The engine's counters (`stats()`), with the engine's snake_case names.
#[napi(object, use_nullable = true)]
pub struct Stats {
    pub connections: i64,
    #[napi(js_name = "connections_total")]
    pub connections_total: i64,
    #[napi(js_name = "connections_refused")]
    pub connections_refused: i64,
    #[napi(js_name = "users_online")]
    pub users_online: i64,
    pub rooms: i64,
    pub messages: i64,
    #[napi(js_name = "private_messages")]
    pub private_messages: i64,
    #[napi(js_name = "requests_rejected")]
    pub requests_rejected: i64,
    #[napi(js_name = "packets_dropped")]
    pub packets_dropped: i64,
    #[napi(js_name = "events_dropped")]
    pub events_dropped: i64,
    #[napi(js_name = "events_queued")]
    pub events_queued: i64,
    #[napi(js_name = "events_queued_bytes")]
    pub events_queued_bytes: i64,
    #[napi(js_name = "commands_queued_bytes")]
    pub commands_queued_bytes: i64,
    #[napi(js_name = "pending_host_acks")]
    pub pending_host_acks: i64,
    #[napi(js_name = "pending_gates")]
    pub pending_gates: i64,
    #[napi(js_name = "uptime_ms")]
    pub uptime_ms: i64,
    /// Engine.IO sessions open now, from their handshake on.
    pub sessions: i64,
    /// TCP connections open now that the engine serves (handed over ones).
    pub sockets: i64,
    /// TCP connections closed at hand-over for the per-address or total cap.
    #[napi(js_name = "sockets_refused")]
    pub sockets_refused: i64,
    /// Cluster mode only (null otherwise).
    pub cluster: Option<ClusterStats>,
}

/// The cluster part of `Stats` (cluster mode only).
#[napi(object)]
pub struct ClusterStats {
    #[napi(js_name = "node_id")]
    pub node_id: String,
    #[napi(js_name = "redis_connected")]
    pub redis_connected: bool,
    #[napi(js_name = "redis_outages")]
    pub redis_outages: i64,
    #[napi(js_name = "journal_pending")]
    pub journal_pending: i64,
    #[napi(js_name = "nodes_alive")]
    pub nodes_alive: i64,
    #[napi(js_name = "pubsub_dropped")]
    pub pubsub_dropped: i64,
}

/// A counter as a JS number (exact below 2^53, far beyond any count).
fn number(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

impl From<palaver_core::Stats> for Stats {
    fn from(stats: palaver_core::Stats) -> Self {
        Stats {
            connections: number(stats.connections),
            connections_total: number(stats.connections_total),
            connections_refused: number(stats.connections_refused),
            users_online: number(stats.users_online),
            rooms: number(stats.rooms),
            messages: number(stats.messages),
            private_messages: number(stats.private_messages),
            requests_rejected: number(stats.requests_rejected),
            packets_dropped: number(stats.packets_dropped),
            events_dropped: number(stats.events_dropped),
            events_queued: number(stats.events_queued),
            events_queued_bytes: number(stats.events_queued_bytes),
            commands_queued_bytes: number(stats.commands_queued_bytes),
            pending_host_acks: number(stats.pending_host_acks),
            pending_gates: number(stats.pending_gates),
            uptime_ms: number(stats.uptime_ms),
            sessions: number(stats.sessions),
            sockets: number(stats.sockets),
            sockets_refused: number(stats.sockets_refused),
            cluster: stats.cluster.map(|cluster| ClusterStats {
                node_id: cluster.node_id,
                redis_connected: cluster.redis_connected,
                redis_outages: number(cluster.redis_outages),
                journal_pending: number(cluster.journal_pending),
                nodes_alive: number(cluster.nodes_alive),
                pubsub_dropped: number(cluster.pubsub_dropped),
            }),
        }
    }
}

impl From<palaver_core::RoomInfo> for RoomInfo {
    fn from(room: palaver_core::RoomInfo) -> Self {
        RoomInfo {
            room: room.room.to_string(),
            count: u32::try_from(room.count).unwrap_or(u32::MAX),
            members: room
                .members
                .into_iter()
                .map(|member| Member {
                    id: member.id.to_string(),
                    name: member.name.to_string(),
                })
                .collect(),
        }
    }
}

#[napi]
impl NativeEngine {
    /// Starts an engine from a configuration JSON; `on_event` receives each event
    /// as JSON text, with the binary attachments of a Socket.IO event or plain
    /// WebSocket message as a second argument. Only the event kinds named in
    /// `kinds` are built and sent, from the start; `listen_to` changes them.
    // The argument type is spelled out, not `EventArgs`: napi's generated
    // declarations read it from the signature.
    #[allow(clippy::type_complexity)]
    #[napi(factory, catch_unwind)]
    pub fn start(
        config_json: String,
        kinds: Vec<String>,
        on_event: Function<FnArgs<(String, Option<Vec<Buffer>>)>, ()>,
    ) -> Result<NativeEngine> {
        let config = Config::from_json(&config_json).map_err(|e| js_error(e.code(), e))?;
        let events: Arc<EventSink> = Arc::new(
            on_event
                .build_threadsafe_function::<HostMessage>()
                .weak::<true>()
                .callee_handled::<false>()
                .max_queue_size::<EVENTS_IN_FLIGHT>()
                .build_callback(|ctx| {
                    let HostMessage { json, attachments } = ctx.value;
                    let buffers = (!attachments.is_empty()).then(|| {
                        attachments
                            .iter()
                            .map(|bytes| Buffer::from(bytes.to_vec()))
                            .collect()
                    });
                    Ok(FnArgs::from((json, buffers)))
                })?,
        );
        let sink = events.clone();
        let engine = Chat::builder(config)
            .on_event(move |event| {
                let message = HostMessage {
                    json: event.to_json(),
                    attachments: event.attachments(),
                };
                // Blocking past EVENTS_IN_FLIGHT: see EventSink.
                let _ = sink.call(message, ThreadsafeFunctionCallMode::Blocking);
            })
            .subscribe(event_kinds_named(&kinds))
            .start()
            .map_err(|e| js_error(e.code(), e))?;
        let handle = engine.handle().clone();
        Ok(NativeEngine {
            engine: Arc::new(engine),
            handle,
            events,
        })
    }

    /// Which event kinds JS listens to (`connected`, `message`, ...): the engine
    /// builds and forwards only those (unknown names are ignored). Starts empty.
    #[napi(catch_unwind)]
    pub fn listen_to(&self, kinds: Vec<String>) {
        self.handle.subscribe(event_kinds_named(&kinds));
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
                HostErrorCode::Io,
                "the socket has no file descriptor",
            ));
        }
        // SAFETY: the caller passes the descriptor of a socket it holds open for the
        // duration of this call; only a duplicate is kept.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }
            .try_clone_to_owned()
            .map_err(|e| js_error(HostErrorCode::Io, e))?;
        let stream = std::net::TcpStream::from(owned);
        self.engine
            .adopt(stream, Bytes::copy_from_slice(&head))
            .map_err(|e| js_error(e.code(), e))
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
            .map_err(|e| js_error(HostErrorCode::InvalidArgument, e))?;
        let peer = remote_address
            .and_then(|address| address.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip.to_canonical(), remote_port.unwrap_or(0) as u16));
        let response = self
            .engine
            .serve_request(request, peer)
            .await
            .map_err(|e| js_error(e.host_code(), e))?;
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
        self.handle
            .emit_to_all(&event, data)
            .await
            .map_err(|e| js_error(e.code(), e))
    }

    #[napi]
    pub async fn emit_to_room(&self, room: String, event: String, data_json: String) -> Result<()> {
        let data = parse_json(&data_json)?;
        self.handle
            .emit_to_room(&room, &event, data)
            .await
            .map_err(|e| js_error(e.code(), e))
    }

    #[napi]
    pub async fn emit_to_user(
        &self,
        user_id: String,
        event: String,
        data_json: String,
    ) -> Result<()> {
        let data = parse_json(&data_json)?;
        self.handle
            .emit_to_user(&user_id, &event, data)
            .await
            .map_err(|e| js_error(e.code(), e))
    }

    /// Disconnects every connection of a user; resolves with their number.
    #[napi]
    pub async fn disconnect_user(&self, user_id: String, reason: String) -> Result<u32> {
        self.handle
            .disconnect_user(&user_id, &reason)
            .await
            .map(|count| u32::try_from(count).unwrap_or(u32::MAX))
            .map_err(|e| js_error(e.code(), e))
    }

    /// The rooms with their members, most populated first.
    #[napi]
    pub async fn rooms(&self) -> Vec<RoomInfo> {
        let rooms = self.handle.rooms().await;
        rooms.into_iter().map(RoomInfo::from).collect()
    }

    /// The counters.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> Stats {
        self.handle.stats().into()
    }

    /// Refuses a custom event with `unknown_event` (its JS listener went away
    /// while it was on its way); false when it is no longer pending.
    #[napi(catch_unwind)]
    pub fn refuse_unheard(&self, ack_id: i64, event: String) -> bool {
        self.handle
            .refuse_unheard(AckId(ack_id as u64), &event)
            .is_ok()
    }

    /// Answers a custom event's acknowledgement; false when it is no longer pending.
    #[napi(catch_unwind)]
    pub fn ack(&self, ack_id: i64, answer_json: String) -> Result<bool> {
        let answer = parse_json(&answer_json)?;
        Ok(self.handle.ack(AckId(ack_id as u64), answer).is_ok())
    }

    /// Applies Socket.IO host commands, in order after those given before: a JSON
    /// array of `{"<op>": {...}}` objects (core's `SocketCommand` JSON form) and
    /// the binary attachments they take, in order.
    #[napi(catch_unwind)]
    pub fn run(&self, commands_json: String, attachments: Option<Vec<Buffer>>) -> Result<()> {
        self.handle
            .run_json(&commands_json, into_bytes(attachments))
            .map_err(|e| js_error(e.code(), e))
    }

    /// Answers a Socket.IO query (core's `SocketQuery` JSON form) once the
    /// commands given before it are applied; resolves with the answer as JSON and
    /// the binary attachments of acknowledgements (each reply's `bin` of them, in
    /// order).
    #[napi]
    pub async fn query(
        &self,
        query_json: String,
        attachments: Option<Vec<Buffer>>,
    ) -> Result<QueryResult> {
        let query = SocketQuery::from_json(&query_json, into_bytes(attachments))
            .map_err(|e| js_error(e.code(), e))?;
        let answer = self
            .handle
            .query(query)
            .await
            .map_err(|e| js_error(e.code(), e))?;
        let json =
            serde_json::to_string(&answer).map_err(|e| js_error(HostErrorCode::Internal, e))?;
        let buffers = answer
            .attachments()
            .iter()
            .map(|bytes| Buffer::from(bytes.to_vec()))
            .collect();
        Ok(QueryResult { json, buffers })
    }

    /// Stops gracefully within `timeout_ms`; resolves once everything is closed and
    /// no event will follow (also when another call stopped it). Then sends the
    /// end-of-events marker (an empty string) through the event function, behind
    /// every event still on its way to JS, and resolves with whether it could (JS
    /// waits for the marker when true).
    #[napi]
    pub async fn close(&self, timeout_ms: u32) -> Result<bool> {
        let engine = self.engine.clone();
        let stopped = tokio::task::spawn_blocking(move || {
            engine.stop(Duration::from_millis(u64::from(timeout_ms)))
        })
        .await
        .map_err(|e| js_error(HostErrorCode::Internal, e))?;
        match stopped {
            // A second stop returns once the first has finished.
            Ok(_) | Err(StopError::AlreadyStopped) => {}
            Err(e) => return Err(js_error(e.code(), e)),
        }
        let events = self.events.clone();
        let status = tokio::task::spawn_blocking(move || {
            events.call(
                HostMessage {
                    json: END_OF_EVENTS.to_string(),
                    attachments: Vec::new(),
                },
                ThreadsafeFunctionCallMode::Blocking,
            )
        })
        .await
        .map_err(|e| js_error(HostErrorCode::Internal, e))?;
        Ok(status == Status::Ok)
    }
}

/// The kinds with these names (unknown names are ignored).
fn event_kinds_named(names: &[String]) -> EventKinds {
    names
        .iter()
        .filter_map(|name| EventKind::from_name(name))
        .collect()
}

fn into_bytes(buffers: Option<Vec<Buffer>>) -> Vec<Bytes> {
    buffers
        .unwrap_or_default()
        .iter()
        .map(|buffer| Bytes::copy_from_slice(buffer))
        .collect()
}

fn parse_json(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| js_error(HostErrorCode::InvalidArgument, e))
}
