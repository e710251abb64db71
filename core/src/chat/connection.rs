//! A connection's life: admission at connect, its requests in order, cleanup at
//! disconnect.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use socketioxide::{SocketIo, TransportType};
use socketioxide_core::adapter::DefinedAdapter;

use super::conn::Conn;
use super::reply::Reply;
use super::requests;
use super::session::{drop_identity, take_identity, welcome};
use super::{room_list, token_expiry, ChatContext};
use crate::config::IdentityMode;
use crate::events::{reason_code, Event, EventKind};
use crate::identity::Claim;
use crate::lifecycle::InFlight;
use crate::peer::peer_ip;
use crate::protocol::{ChatError, ErrorBody, ErrorCode, HandshakeAuth};
use crate::shared::Shared;
use crate::sockets::RawEvent;
use crate::stats::Counters;

/// A `connect_error`: its message is the machine-readable code alone, because the
/// Socket.IO server library sends connect errors as `{message}` only.
struct Refusal(ErrorCode);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

pub(super) fn register<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    context: Arc<ChatContext<A>>,
) -> A::InitRes {
    let on_connect = {
        let context = context.clone();
        move |socket: SocketRef<A>| {
            let context = context.clone();
            async move { connected(&context, socket).await }
        }
    };
    let admission = move |socket: SocketRef<A>, TryData(auth): TryData<HandshakeAuth>| {
        let context = context.clone();
        async move {
            admit(&context, &socket, auth.unwrap_or_default()).map_err(|e| {
                context.shared.counters.refused(e.code);
                tracing::debug!(sid = %socket.id, "connection refused: {e}");
                Refusal(e.code)
            })
        }
    };
    io.ns("/", on_connect.with(admission))
}

/// Connect middleware: decides identity and limits, and installs the request and
/// disconnect handlers before the client can send anything.
fn admit<A: Adapter>(
    context: &Arc<ChatContext<A>>,
    socket: &SocketRef<A>,
    auth: HandshakeAuth,
) -> Result<(), ChatError> {
    let shared = &context.shared;
    if shared.stopping() {
        return Err(ChatError::shutting_down());
    }
    let handshake_identity = handshake_identity(shared, socket, auth)?;
    let address = peer_ip(socket);
    let ip_slot = address.map(|ip| shared.ips.acquire(ip)).transpose()?;
    let conn = Arc::new(Conn::new(
        address,
        handshake_identity,
        &shared.config.limits,
        ip_slot,
    ));
    // Ticket 0 belongs to `connected`, so no request is applied before it.
    let first = conn.sequencer.ticket();
    debug_assert_eq!(first, 0);
    socket.extensions.insert(conn);

    let on_request = {
        let context = context.clone();
        move |socket: SocketRef<A>,
              reply: Reply<A>,
              raw: RawEvent,
              TryData(data): TryData<serde_json::Value>| {
            let context = context.clone();
            let admitted = admit_request(&context.shared, &socket);
            async move {
                match admitted {
                    Ok((conn, ticket, _in_flight)) => {
                        let _turn = conn.sequencer.wait(ticket).await;
                        // Requests still queued when the connection closed are
                        // skipped, except room messages: sent before the goodbye,
                        // they are the room's to hear (and the history's).
                        if !conn.is_closed() || reply.event() == "message" {
                            let request = requests::Incoming {
                                reply,
                                data: data.ok(),
                                raw,
                            };
                            requests::dispatch(&context, &socket, &conn, request).await;
                        }
                    }
                    Err(error) => reply.fail(&error, &context.shared.counters),
                }
            }
        }
    };
    socket.on_fallback(on_request);

    let on_disconnect = {
        let context = context.clone();
        move |socket: SocketRef<A>, reason: DisconnectReason| {
            let context = context.clone();
            // Closed at once so that queued requests other than messages are
            // skipped; the cleanup waits for those applied before it, and leaving
            // the rooms for the messages still in the pipeline (`leave_room`).
            let conn = socket.extensions.get::<Arc<Conn>>();
            let ticket = conn.as_ref().map(|conn| {
                conn.close();
                conn.sequencer.ticket()
            });
            async move {
                if let (Some(conn), Some(ticket)) = (conn, ticket) {
                    let _turn = conn.sequencer.wait(ticket).await;
                    disconnected(&context, &socket, &conn, reason).await;
                }
            }
        }
    };
    socket.on_disconnect(on_disconnect);
    Ok(())
}

/// The identity the handshake's `auth` (or, for a token, its `token` query
/// parameter) claims, checked.
fn handshake_identity<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    auth: HandshakeAuth,
) -> Result<Option<Claim>, ChatError> {
    let (name, token) = match shared.auth.mode() {
        IdentityMode::Open => match auth.name {
            None | Some(serde_json::Value::Null) => (None, None),
            Some(serde_json::Value::String(name)) => (Some(name), None),
            Some(_) => {
                return Err(ChatError::new(
                    ErrorCode::InvalidName,
                    "auth.name must be a string",
                ))
            }
        },
        IdentityMode::Token => match auth.token {
            Some(serde_json::Value::String(token)) => (None, Some(token)),
            None | Some(serde_json::Value::Null) => (None, query_token(socket)),
            Some(_) => {
                return Err(ChatError::new(
                    ErrorCode::AuthInvalid,
                    "auth.token must be a string",
                ))
            }
        },
    };
    shared.auth.claim(name, token, &shared.config.limits)
}

/// The `token` query parameter of the handshake request.
fn query_token<A: Adapter>(socket: &SocketRef<A>) -> Option<String> {
    let query = socket.req_parts().uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.into_owned())
}

/// Checks a request against the connection's limits at arrival (synchronously, so
/// that a flood is refused without queueing) and takes its ticket.
fn admit_request<A: Adapter>(
    shared: &Arc<Shared>,
    socket: &SocketRef<A>,
) -> Result<(Arc<Conn>, u64, InFlight), ChatError> {
    let in_flight = shared.lifecycle.admit()?;
    let conn = socket
        .extensions
        .get::<Arc<Conn>>()
        .ok_or_else(|| ChatError::new(ErrorCode::Internal, "connection state missing"))?;
    if conn.sequencer.pending() >= shared.config.limits.max_pending_requests as u64 {
        return Err(ChatError::new(
            ErrorCode::Busy,
            "too many requests in progress; wait for their answers",
        ));
    }
    conn.requests.take("requests")?;
    let ticket = conn.sequencer.ticket();
    Ok((conn, ticket, in_flight))
}

async fn connected<A: Adapter>(context: &ChatContext<A>, socket: SocketRef<A>) {
    let shared = &context.shared;
    let Some(conn) = socket.extensions.get::<Arc<Conn>>() else {
        return;
    };
    let _turn = conn.sequencer.wait(0).await;
    let claim = conn.take_handshake_identity();
    let user = match claim {
        Some(claim) => match take_identity(shared, &socket, &conn, claim).await {
            Ok(user) => Some(user),
            // The connection is up already: it stays, without an identity, and
            // learns why from an `error` event naming `connect`.
            Err(error) => {
                let _ = socket.emit("error", &ErrorBody::new(&error, Some("connect")));
                None
            }
        },
        None => None,
    };
    Counters::add(&shared.counters.connections, 1);
    Counters::add(&shared.counters.connections_total, 1);

    welcome(shared, &socket, user.as_ref()).await;
    if shared.auth.mode() == IdentityMode::Token {
        tokio::spawn(token_expiry::watch(
            shared.clone(),
            socket.clone(),
            conn.clone(),
        ));
    }
    room_list::push_to(shared, &socket).await;
    shared
        .host
        .events
        .emit(EventKind::Connected, || Event::Connected {
            sid: socket.id.to_string(),
            user,
            address: conn.address,
            transport: match socket.transport_type() {
                TransportType::Websocket => "websocket",
                TransportType::Polling => "polling",
            },
        });
}

async fn disconnected<A: Adapter>(
    context: &ChatContext<A>,
    socket: &SocketRef<A>,
    conn: &Conn,
    reason: DisconnectReason,
) {
    let shared = &context.shared;
    let user = conn.identity();
    if let Some(user) = &user {
        drop_identity(shared, socket, conn, user).await;
    }
    shared.counters.connections.fetch_sub(1, Ordering::Relaxed);
    shared.host.acks.connection_closed(socket.id);
    shared
        .host
        .events
        .emit(EventKind::Disconnected, || Event::Disconnected {
            sid: socket.id.to_string(),
            user,
            reason: reason_code(reason).to_string(),
        });
}
