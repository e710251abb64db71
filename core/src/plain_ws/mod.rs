//! Plain WebSocket connections, without Socket.IO, at a configured path
//! (`plain_websocket.path`): the host gets open, message and close events and
//! sends, broadcasts and closes with commands, as with the npm `ws` server.
//!
//! Only upgrade requests at the path are taken; other requests at the same path
//! (the page at `/`, say) go to the host's routes. Each connection's outgoing
//! queue is bounded in bytes: a client that reads too slowly is closed with 1013
//! rather than buffered without end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub(crate) mod message;

pub use message::{PlainHandshake, PlainMessage};

use crate::events::{Event, EventKind};
use crate::headers::header_map;
use crate::limits::{Bucket, IpSlot};
use crate::peer::request_ip;
use crate::protocol::ErrorCode;
use crate::shared::Shared;
use crate::stats::Counters;

/// How long a connection the engine closes may take to answer the close frame.
const CLOSE_HANDSHAKE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// Close codes the engine uses (RFC 6455 section 7.4.1).
const GOING_AWAY: u16 = 1001;
const POLICY_VIOLATION: u16 = 1008;
const MESSAGE_TOO_BIG: u16 = 1009;
const TRY_AGAIN_LATER: u16 = 1013;

enum Outgoing {
    Frame(Message, usize),
    Close(u16, String),
}

/// One open connection, as the registry keeps it. Its writer ends once every
/// copy of `tx` is gone.
struct Conn {
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Bytes queued and not yet written.
    queued: Arc<AtomicUsize>,
}

/// Every plain WebSocket connection of the engine.
pub(crate) struct PlainSockets {
    path: Option<String>,
    max_queued_bytes: usize,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    conns: RwLock<HashMap<u64, Arc<Conn>>>,
}

impl PlainSockets {
    pub(crate) fn new(shared: Arc<Shared>) -> Arc<Self> {
        let config = &shared.config.plain_websocket;
        Arc::new(Self {
            path: config.path.clone(),
            max_queued_bytes: config.max_queued_bytes,
            shared: shared.clone(),
            next_id: AtomicU64::new(1),
            conns: RwLock::default(),
        })
    }

    /// Whether the request is a WebSocket upgrade at the plain path.
    pub(crate) fn claims(&self, request: &Request<Body>) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let path_matches = if path == "*" {
            let requested = request.uri().path();
            requested != "/socket.io" && !requested.starts_with("/socket.io/")
        } else {
            request.uri().path() == path
        };
        path_matches
            && request
                .headers()
                .get(header::UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    /// Answers the upgrade and runs the connection on a task of its own.
    pub(crate) fn upgrade(self: &Arc<Self>, request: Request<Body>) -> Response<Body> {
        let shared = &self.shared;
        if shared.stopping() {
            return refusal(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
        }
        let key = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
        let version_ok = request
            .headers()
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v.as_bytes() == b"13");
        let (Some(key), true, true) = (key, version_ok, request.method() == Method::GET) else {
            return refusal(StatusCode::BAD_REQUEST, "not a WebSocket upgrade request");
        };
        let address = request_ip(request.extensions());
        let slot = match address.map(|ip| shared.ips.acquire(ip)).transpose() {
            Ok(slot) => slot,
            Err(e) => {
                shared.counters.refused(e.code);
                return refusal(StatusCode::TOO_MANY_REQUESTS, &e.message);
            }
        };
        let handshake = handshake_of(&request, address);
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, "websocket")
            .header(header::CONNECTION, "Upgrade")
            .header(
                header::SEC_WEBSOCKET_ACCEPT,
                derive_accept_key(key.as_bytes()),
            );
        if let Some(protocol) = handshake.protocol.as_deref() {
            if let Ok(value) = HeaderValue::from_str(protocol) {
                response = response.header(header::SEC_WEBSOCKET_PROTOCOL, value);
            }
        }
        let sockets = self.clone();
        tokio::spawn(async move {
            if let Ok(upgraded) = hyper::upgrade::on(request).await {
                sockets.run(TokioIo::new(upgraded), handshake, slot).await;
            }
        });
        response
            .body(Body::empty())
            .expect("static response parts are valid")
    }

    async fn run<S>(self: Arc<Self>, io: S, handshake: PlainHandshake, _slot: Option<IpSlot>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let shared = self.shared.clone();
        let limits = &shared.config.limits;
        let max = limits.max_payload_bytes as usize;
        let config = WebSocketConfig::default()
            .read_buffer_size(shared.config.transport.websocket_read_buffer_bytes)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        let (mut sink, mut stream) = ws.split();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let conn = Arc::new(Conn {
            tx,
            queued: queued.clone(),
        });
        self.conns.write().insert(id, conn.clone());
        Counters::add(&shared.counters.connections, 1);
        Counters::add(&shared.counters.connections_total, 1);
        shared
            .host
            .events
            .emit(EventKind::WsOpen, || Event::WsOpen { id, handshake });

        let writer = {
            tokio::spawn(async move {
                while let Some(out) = rx.recv().await {
                    match out {
                        Outgoing::Frame(frame, len) => {
                            let sent = sink.send(frame).await;
                            queued.fetch_sub(len, Ordering::AcqRel);
                            if sent.is_err() {
                                break;
                            }
                        }
                        Outgoing::Close(code, reason) => {
                            let _ = sink
                                .send(Message::Close(Some(CloseFrame {
                                    code: CloseCode::from(code),
                                    reason: reason.into(),
                                })))
                                .await;
                            break;
                        }
                    }
                }
                let _ = sink.close().await;
            })
        };

        let requests = Bucket::new(limits.requests_per_second, limits.request_burst);
        let mut closed_by = (1006_u16, String::new());
        // Set once the engine has sent its close frame: the client's messages are
        // read and dropped until its close frame comes back (RFC 6455 7.1.1), so
        // that the close frame is not lost to a reset connection.
        let mut closing: Option<tokio::time::Instant> = None;
        loop {
            let frame = match closing {
                None => stream.next().await,
                Some(deadline) => match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(frame) => frame,
                    Err(_) => break,
                },
            };
            let Some(frame) = frame else { break };
            let message = match frame {
                Ok(Message::Text(text)) => PlainMessage::Text(text.as_str().to_owned()),
                Ok(Message::Binary(bytes)) => PlainMessage::Binary(bytes),
                Ok(Message::Close(frame)) => {
                    if closing.is_none() {
                        closed_by = frame
                            .map(|f| (u16::from(f.code), f.reason.as_str().to_owned()))
                            .unwrap_or((1005, String::new()));
                    }
                    break;
                }
                Ok(_) => continue,
                Err(tokio_tungstenite::tungstenite::Error::Capacity(_)) => {
                    let _ = conn
                        .tx
                        .send(Outgoing::Close(MESSAGE_TOO_BIG, "message too big".into()));
                    closed_by = (MESSAGE_TOO_BIG, "message too big".into());
                    break;
                }
                Err(_) => break,
            };
            if closing.is_some() {
                continue;
            }
            let refusal = if requests.take("messages").is_err() {
                shared.counters.rejected(ErrorCode::RateLimited);
                Some((POLICY_VIOLATION, "rate_limited"))
            } else {
                let queued = shared
                    .host
                    .events
                    .emit(EventKind::WsMessage, || Event::WsMessage { id, message });
                (!queued && shared.host.events.wants(EventKind::WsMessage))
                    .then_some((TRY_AGAIN_LATER, "busy"))
            };
            if let Some((code, reason)) = refusal {
                let _ = conn.tx.send(Outgoing::Close(code, reason.into()));
                closed_by = (code, reason.into());
                closing = Some(tokio::time::Instant::now() + CLOSE_HANDSHAKE_WAIT);
            }
        }
        self.conns.write().remove(&id);
        // Ends the writer once what is queued (a close frame, say) is written.
        drop(conn);
        let _ = writer.await;
        shared.counters.connections.fetch_sub(1, Ordering::Relaxed);
        let (code, reason) = closed_by;
        shared
            .host
            .events
            .emit(EventKind::WsClose, || Event::WsClose { id, code, reason });
    }

    /// Queues a message to one connection; a connection over its byte budget is
    /// closed with 1013 instead.
    pub(crate) fn send(&self, id: u64, message: &PlainMessage) {
        let conn = self.conns.read().get(&id).cloned();
        if let Some(conn) = conn {
            self.queue(&conn, message.to_frame(), message.len());
        }
    }

    /// Queues a message to every connection but `except`; the frame is built once.
    pub(crate) fn broadcast(&self, message: &PlainMessage, except: &[u64]) {
        let frame = message.to_frame();
        let len = message.len();
        let conns: Vec<Arc<Conn>> = self
            .conns
            .read()
            .iter()
            .filter(|(id, _)| !except.contains(id))
            .map(|(_, conn)| conn.clone())
            .collect();
        for conn in conns {
            self.queue(&conn, frame.clone(), len);
        }
    }

    fn queue(&self, conn: &Conn, frame: Message, len: usize) {
        let before = conn.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.max_queued_bytes {
            conn.queued.fetch_sub(len, Ordering::AcqRel);
            self.shared.counters.dropped(1);
            let _ = conn.tx.send(Outgoing::Close(
                TRY_AGAIN_LATER,
                "reading too slowly".into(),
            ));
            return;
        }
        if conn.tx.send(Outgoing::Frame(frame, len)).is_err() {
            conn.queued.fetch_sub(len, Ordering::AcqRel);
        }
    }

    /// Closes one connection with `code` and `reason`.
    pub(crate) fn close(&self, id: u64, code: u16, reason: &str) {
        if let Some(conn) = self.conns.read().get(&id) {
            let _ = conn.tx.send(Outgoing::Close(code, reason.into()));
        }
    }

    /// Closes every connection (the engine is stopping): 1001, going away.
    pub(crate) fn close_all(&self) {
        for conn in self.conns.read().values() {
            let _ = conn
                .tx
                .send(Outgoing::Close(GOING_AWAY, "server_stopping".into()));
        }
    }
}

fn refusal(status: StatusCode, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(format!("{message}\n")))
        .expect("static response parts are valid")
}

fn handshake_of(request: &Request<Body>, address: Option<IpAddr>) -> PlainHandshake {
    let headers = header_map(request.headers());
    let protocol = headers
        .get("sec-websocket-protocol")
        .and_then(|list| list.split(',').next())
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    PlainHandshake {
        url: request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_default(),
        headers,
        address,
        protocol,
    }
}
