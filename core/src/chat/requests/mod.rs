//! The chat requests, one file each: `login`, `join`, `leave`, `message`,
//! `private`, `typing`, `history`, `members`, `rooms`, `logout`; any other event
//! goes to the host (`custom`).
//!
//! A request is decoded once into a typed [`Request`]; its handler gets the typed
//! data. Each request is checked completely before anything changes, so a refused
//! request leaves no trace.

mod custom;
mod history;
mod join;
mod leave;
mod login;
mod logout;
mod members;
mod message;
mod private;
mod rooms;
mod typing;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::conn::Conn;
use super::reply::Reply;
use super::ChatContext;
use crate::events::EventKind;
use crate::history::NewMessage;
use crate::protocol::{
    ChatError, ErrorCode, HistoryRequest, JoinRequest, LoginRequest, MessageRequest,
    PrivateRequest, RoomRequest, TypingRequest, User,
};
use crate::shared::Shared;
use crate::sockets::RawEvent;
use crate::validate;

/// Members listed in a `join` or `members` acknowledgement; `count` is always exact.
const MEMBERS_IN_ACK: usize = 1_000;

/// A request, decoded.
enum Request {
    Login(LoginRequest),
    Join(JoinRequest),
    Leave(RoomRequest),
    Message(MessageRequest),
    Private(PrivateRequest),
    Typing(TypingRequest),
    History(HistoryRequest),
    Members(RoomRequest),
    Rooms,
    Logout,
    /// Not a chat request: the host's, if it listens to custom events.
    Custom(Option<Value>),
}

impl Request {
    /// Decodes the event `name` with its first argument. An unknown event nobody
    /// listens to is `unknown_event`; a chat request whose argument is not its
    /// documented shape is `invalid_payload`.
    fn decode(shared: &Shared, name: &str, data: Option<Value>) -> Result<Self, ChatError> {
        Ok(match name {
            "login" => Self::Login(parse(data)?),
            "join" => Self::Join(parse(data)?),
            "leave" => Self::Leave(parse(data)?),
            "message" => Self::Message(parse(data)?),
            "private" => Self::Private(parse(data)?),
            "typing" => Self::Typing(parse(data)?),
            "history" => Self::History(parse(data)?),
            "members" => Self::Members(parse(data)?),
            "rooms" => Self::Rooms,
            "logout" => Self::Logout,
            _ if shared.host.events.wants(EventKind::Custom) => Self::Custom(data),
            other => return Err(ChatError::unknown_event(other)),
        })
    }
}

/// How a request is answered once it has been checked.
enum Outcome {
    /// Acknowledge now with this body.
    Answer(Value),
    /// Store the message; the pipeline delivers it and acknowledges.
    Store(NewMessage),
}

/// What a handler gets besides its request.
struct Ctx<'a, A: Adapter> {
    shared: &'a Shared,
    socket: &'a SocketRef<A>,
    conn: &'a Conn,
}

/// An event as it reached the chat: how to answer it, its first argument, and
/// all of it as sent (for custom events).
pub(in crate::chat) struct Incoming<A: Adapter> {
    pub reply: Reply<A>,
    pub data: Option<Value>,
    pub raw: RawEvent,
}

pub(super) async fn dispatch<A: Adapter>(
    context: &ChatContext<A>,
    socket: &SocketRef<A>,
    conn: &Arc<Conn>,
    incoming: Incoming<A>,
) {
    let Incoming { reply, data, raw } = incoming;
    let shared = &*context.shared;
    let request = match Request::decode(shared, reply.event(), data) {
        Ok(request) => request,
        Err(error) => return reply.fail(&error, &shared.counters),
    };
    let ctx = Ctx {
        shared,
        socket,
        conn,
    };
    let outcome = match request {
        Request::Login(request) => login::handle(&ctx, request).await,
        Request::Join(request) => join::handle(&ctx, request).await,
        Request::Leave(request) => leave::handle(&ctx, request).await,
        Request::Message(request) => message::handle(&ctx, request),
        Request::Private(request) => private::handle(&ctx, request).await,
        Request::Typing(request) => typing::handle(&ctx, request).await,
        Request::History(request) => history::handle(&ctx, request).await,
        Request::Members(request) => members::handle(&ctx, request).await,
        Request::Rooms => rooms::handle(&ctx).await,
        Request::Logout => logout::handle(&ctx).await,
        Request::Custom(data) => return custom::handle(&ctx, reply, data, raw),
    };
    match outcome {
        Ok(Outcome::Answer(body)) => reply.ok(&body, &shared.counters),
        Ok(Outcome::Store(message)) => {
            let unsettled = conn.unsettled.track(message.room.clone());
            context.pipeline.submit(message, reply, unsettled)
        }
        Err(error) => reply.fail(&error, &shared.counters),
    }
}

fn invalid_payload(why: impl Into<String>) -> ChatError {
    ChatError::new(ErrorCode::InvalidPayload, why)
}

/// The request's object argument as `T`; a missing argument, a non-object or a
/// field of the wrong type is `invalid_payload`.
fn parse<T: DeserializeOwned>(data: Option<Value>) -> Result<T, ChatError> {
    match data {
        Some(value @ Value::Object(_)) => {
            serde_json::from_value(value).map_err(|e| invalid_payload(e.to_string()))
        }
        _ => Err(invalid_payload("the argument must be an object")),
    }
}

fn require_identity(conn: &Conn) -> Result<User, ChatError> {
    conn.identity()
        .ok_or_else(|| ChatError::new(ErrorCode::NotLoggedIn, "log in first (a name or a token)"))
}

/// The connection's own name for the room, if it is a member.
fn require_member(shared: &Shared, conn: &Conn, raw_room: &str) -> Result<Arc<str>, ChatError> {
    let room = validate::room(raw_room, &shared.config.limits)?;
    conn.room(&room).ok_or_else(|| {
        ChatError::new(
            ErrorCode::NotMember,
            format!("not a member of {room:?}; join it first"),
        )
    })
}
