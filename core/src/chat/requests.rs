//! The chat requests: `login`, `join`, `leave`, `message`, `private`, `typing`,
//! `history`, `members`, `rooms`, `logout`; anything else goes to the host.
//!
//! Each request is checked completely before anything changes, so a refused
//! request leaves no trace.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::connection::{send_session, Conn};
use super::reply::Reply;
use super::{broadcast, room_key, user_key, ChatContext, Shared};
use crate::config::IdentityMode;
use crate::events::Event;
use crate::history::{HistoryError, NewMessage};
use crate::protocol::{
    now_ms, ChatError, ChatMessage, ErrorCode, HistoryRequest, JoinRequest, LoginRequest,
    MessageKind, MessageRequest, PresenceNotice, PrivateMessage, PrivateRequest, RoomRequest,
    TypingNotice, TypingRequest, User, SYSTEM_USER,
};
use crate::stats::Counters;
use crate::validate;

/// Members listed in a `join` or `members` acknowledgement; `count` is always exact.
const MEMBERS_IN_ACK: usize = 1_000;
/// History page size when a `history` request names no limit.
const DEFAULT_PAGE: usize = 50;

/// How a request is answered once it has been checked.
enum Outcome {
    /// Acknowledge now with this body.
    Answer(Value),
    /// Store the message; the pipeline delivers it and acknowledges.
    Store(NewMessage),
    /// Hand the event to the host, which may acknowledge it.
    AskHost(Option<Value>),
}

pub(super) async fn dispatch<A: Adapter>(
    context: &ChatContext<A>,
    socket: &SocketRef<A>,
    conn: &Arc<Conn>,
    reply: Reply<A>,
    data: Option<Value>,
) {
    let shared = &context.shared;
    let outcome = match reply.event() {
        "login" => login(shared, socket, conn, data).await,
        "join" => join(shared, socket, conn, data).await,
        "leave" => leave(shared, socket, conn, data).await,
        "message" => message(shared, conn, data),
        "private" => private(shared, socket, conn, data).await,
        "typing" => typing(shared, socket, conn, data).await,
        "history" => history(shared, conn, data).await,
        "members" => members(shared, conn, data).await,
        "rooms" => Ok(Outcome::Answer(json!({
            "rooms": shared.presence.room_counts(shared.config.room_list.max_rooms).await
        }))),
        "logout" => logout(shared, socket, conn).await,
        _ if shared.events.enabled() => Ok(Outcome::AskHost(data)),
        other => Err(ChatError::new(
            ErrorCode::UnknownEvent,
            format!("unknown event {other:?}"),
        )),
    };
    match outcome {
        Ok(Outcome::Answer(body)) => reply.ok(&body, &shared.counters),
        Ok(Outcome::Store(message)) => context.pipeline.submit(message, reply).await,
        Ok(Outcome::AskHost(data)) => ask_host(shared, conn, reply, data),
        Err(error) => {
            reply.fail(&error, &shared.counters);
        }
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

/// Decides the identity a `login` (or a `join` with a name) asks for, without
/// applying it yet.
enum Login {
    OpenName(String),
    Token(User),
}

fn check_login(shared: &Shared, request: LoginRequest) -> Result<Login, ChatError> {
    match shared.auth.mode() {
        IdentityMode::Open => {
            let name = request
                .name
                .ok_or_else(|| invalid_payload("login needs a name"))?;
            Ok(Login::OpenName(validate::name(
                &name,
                &shared.config.limits,
            )?))
        }
        IdentityMode::Token => {
            let token = request
                .token
                .ok_or_else(|| ChatError::new(ErrorCode::AuthRequired, "login needs a token"))?;
            Ok(Login::Token(
                shared.auth.verify(&token, &shared.config.limits)?,
            ))
        }
    }
}

async fn apply_login<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    login: Login,
) -> User {
    let user = match login {
        Login::OpenName(name) => {
            shared
                .presence
                .claim_name(&name, shared.config.limits.max_name_chars)
                .await
        }
        Login::Token(user) => {
            shared.presence.connect(&user).await;
            user
        }
    };
    socket.join(user_key(&user.id));
    conn.set_identity(Some(user.clone()));
    send_session(shared, socket, Some(&user));
    user
}

async fn login<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    data: Option<Value>,
) -> Result<Outcome, ChatError> {
    let request: LoginRequest = parse(data)?;
    if conn.identity().is_some() {
        return Err(ChatError::new(
            ErrorCode::AlreadyLoggedIn,
            "already logged in; log out first",
        ));
    }
    let login = check_login(shared, request)?;
    let user = apply_login(shared, socket, conn, login).await;
    Ok(Outcome::Answer(json!({ "user": user })))
}

async fn join<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    data: Option<Value>,
) -> Result<Outcome, ChatError> {
    let request: JoinRequest = parse(data)?;
    let room: Arc<str> = validate::room(&request.room, &shared.config.limits)?.into();
    let already_member = conn.room(&room).is_some();
    if !already_member && conn.room_total() >= shared.config.limits.max_rooms_per_connection {
        return Err(ChatError::new(
            ErrorCode::TooManyRooms,
            format!(
                "at most {} rooms per connection",
                shared.config.limits.max_rooms_per_connection
            ),
        ));
    }
    let user = match conn.identity() {
        Some(user) => user,
        // The tutorial's page logs in by joining with a name.
        None if shared.auth.mode() == IdentityMode::Open && request.name.is_some() => {
            let login = check_login(
                shared,
                LoginRequest {
                    name: request.name,
                    token: None,
                },
            )?;
            apply_login(shared, socket, conn, login).await
        }
        None => return Err(require_identity(conn).unwrap_err()),
    };

    if !already_member {
        let outcome = shared.presence.join(&room, &user).await;
        conn.add_room(room.clone());
        socket.join(room_key(&room));
        if outcome.newly_present {
            let notice = system_notice(&room, format!("{} joined", user.name), MessageKind::Join);
            broadcast_presence(shared, socket, &room, &notice, "join", &user, outcome.count).await;
        }
        shared.presence_changed().await;
        shared.events.emit(|| Event::Joined {
            sid: socket.id.to_string(),
            room: room.to_string(),
            user: user.clone(),
        });
    }

    let (history, has_more) = recent_history(shared, &room).await;
    let (count, members) = shared.presence.members(&room, MEMBERS_IN_ACK).await;
    Ok(Outcome::Answer(json!({
        "room": room,
        "user": user,
        "count": count,
        "members": members,
        "history": history,
        "has_more": has_more,
    })))
}

async fn recent_history(shared: &Shared, room: &str) -> (Vec<ChatMessage>, bool) {
    if shared.config.history.on_join == 0 {
        return (Vec::new(), false);
    }
    match shared
        .history
        .page(room, None, shared.config.history.on_join)
        .await
    {
        Ok(page) => (page.messages, page.has_more),
        Err(e) => {
            // The join itself succeeded; the client can page with `history` later.
            tracing::warn!(room, "could not read history for a join: {e}");
            (Vec::new(), true)
        }
    }
}

pub(crate) fn system_notice(room: &Arc<str>, text: String, kind: MessageKind) -> ChatMessage {
    ChatMessage {
        id: None,
        room: room.clone(),
        user: SYSTEM_USER.into(),
        user_id: None,
        text,
        ts: now_ms(),
        kind,
    }
}

/// The join/leave notice (a `message` from the system user, as the tutorial's page
/// expects) and the `presence` change, to the room's other connections.
async fn broadcast_presence<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    room: &Arc<str>,
    notice: &ChatMessage,
    action: &'static str,
    user: &User,
    count: usize,
) {
    let key = room_key(room);
    if let Err(e) = broadcast(shared, || socket.to(key.clone()), "message", notice).await {
        tracing::debug!("could not deliver a {action} notice: {e}");
    }
    let presence = PresenceNotice {
        room,
        action,
        user,
        count,
    };
    if let Err(e) = broadcast(shared, || socket.to(key.clone()), "presence", &presence).await {
        tracing::debug!("could not deliver a presence change: {e}");
    }
}

/// Takes the connection out of a room; the user leaves it (with a notice) when this
/// was their last connection in it.
pub(super) async fn leave_room<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    user: &User,
    room: &Arc<str>,
) {
    conn.remove_room(room);
    socket.leave(room_key(room));
    if let Some(outcome) = shared.presence.leave(room, user).await {
        if outcome.gone {
            let notice = system_notice(room, format!("{} left", user.name), MessageKind::Leave);
            broadcast_presence(shared, socket, room, &notice, "leave", user, outcome.count).await;
        }
        shared.presence_changed().await;
    }
    shared.events.emit(|| Event::Left {
        sid: socket.id.to_string(),
        room: room.to_string(),
        user: user.clone(),
    });
}

async fn leave<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    data: Option<Value>,
) -> Result<Outcome, ChatError> {
    let request: RoomRequest = parse(data)?;
    let user = require_identity(conn)?;
    let room = require_member(shared, conn, &request.room)?;
    leave_room(shared, socket, conn, &user, &room).await;
    Ok(Outcome::Answer(json!({ "room": room })))
}

fn message(shared: &Shared, conn: &Conn, data: Option<Value>) -> Result<Outcome, ChatError> {
    let request: MessageRequest = parse(data)?;
    let user = require_identity(conn)?;
    let room = require_member(shared, conn, &request.room)?;
    let text = validate::text(request.text, &shared.config.limits)?;
    conn.messages.take("messages")?;
    Ok(Outcome::Store(NewMessage {
        room,
        user,
        text,
        ts: now_ms(),
        key: shared.next_message_key(),
    }))
}

async fn private<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    data: Option<Value>,
) -> Result<Outcome, ChatError> {
    let request: PrivateRequest = parse(data)?;
    let from = require_identity(conn)?;
    let text = validate::text(request.text, &shared.config.limits)?;
    if *request.to == *from.id {
        return Err(ChatError::new(
            ErrorCode::InvalidRecipient,
            "cannot send a private message to yourself",
        ));
    }
    let to = shared.presence.online(&request.to).await.ok_or_else(|| {
        ChatError::new(
            ErrorCode::UserOffline,
            format!("{:?} is not online", request.to),
        )
    })?;
    conn.messages.take("messages")?;
    let message = PrivateMessage {
        id: shared.next_private_id(),
        from,
        to,
        text,
        ts: now_ms(),
    };
    let key = user_key(&message.to.id);
    broadcast(shared, || socket.within(key.clone()), "private", &message)
        .await
        .map_err(|e| ChatError::new(ErrorCode::Internal, format!("delivery failed: {e}")))?;
    Counters::add(&shared.counters.private_messages, 1);
    let answer = serde_json::to_value(&message).map_err(|e| invalid_payload(e.to_string()))?;
    shared.events.emit(|| Event::Private {
        sid: socket.id.to_string(),
        message,
    });
    Ok(Outcome::Answer(answer))
}

async fn typing<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
    data: Option<Value>,
) -> Result<Outcome, ChatError> {
    let request: TypingRequest = parse(data)?;
    let user = require_identity(conn)?;
    let room = require_member(shared, conn, &request.room)?;
    let interval = Duration::from_millis(shared.config.limits.typing_interval_ms);
    // Stopping is always relayed so that indicators do not linger.
    let relayed = !request.active || conn.typing_allowed(interval);
    if relayed {
        let notice = TypingNotice {
            room: &room,
            user: &user.name,
            user_id: &user.id,
            active: request.active,
        };
        // Volatile: a client too busy to take it loses nothing important.
        let key = room_key(&room);
        let _ = broadcast(
            shared,
            || socket.volatile().to(key.clone()),
            "typing",
            &notice,
        )
        .await;
    }
    Ok(Outcome::Answer(json!({ "relayed": relayed })))
}

async fn history(shared: &Shared, conn: &Conn, data: Option<Value>) -> Result<Outcome, ChatError> {
    let request: HistoryRequest = parse(data)?;
    require_identity(conn)?;
    let room = require_member(shared, conn, &request.room)?;
    let limit = request.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > shared.config.history.page_max {
        return Err(invalid_payload(format!(
            "limit must be between 1 and {}",
            shared.config.history.page_max
        )));
    }
    let page = shared
        .history
        .page(&room, request.before.as_deref(), limit)
        .await
        .map_err(|e| match e {
            HistoryError::BadCursor(_) => ChatError::new(ErrorCode::InvalidCursor, e.to_string()),
            HistoryError::Closed => ChatError::new(ErrorCode::ShuttingDown, e.to_string()),
            HistoryError::Unavailable(_) => ChatError::new(ErrorCode::Unavailable, e.to_string()),
            _ => ChatError::new(ErrorCode::StorageFailed, e.to_string()),
        })?;
    Ok(Outcome::Answer(json!({
        "room": room,
        "messages": page.messages,
        "has_more": page.has_more,
    })))
}

async fn members(shared: &Shared, conn: &Conn, data: Option<Value>) -> Result<Outcome, ChatError> {
    let request: RoomRequest = parse(data)?;
    require_identity(conn)?;
    let room = require_member(shared, conn, &request.room)?;
    let (count, members) = shared.presence.members(&room, MEMBERS_IN_ACK).await;
    Ok(Outcome::Answer(json!({
        "room": room,
        "count": count,
        "members": members,
    })))
}

async fn logout<A: Adapter>(
    shared: &Shared,
    socket: &SocketRef<A>,
    conn: &Conn,
) -> Result<Outcome, ChatError> {
    let user = require_identity(conn)?;
    for room in conn.rooms() {
        leave_room(shared, socket, conn, &user, &room).await;
    }
    socket.leave(user_key(&user.id));
    shared.presence.disconnect(&user).await;
    conn.set_identity(None);
    send_session(shared, socket, None);
    Ok(Outcome::Answer(json!({})))
}

/// A custom event: the host gets it, and answers it when the client asked for an ack.
fn ask_host<A: Adapter>(shared: &Shared, conn: &Conn, reply: Reply<A>, data: Option<Value>) {
    let sid = reply.socket().id.to_string();
    let event = reply.event().to_string();
    let counters = shared.counters.clone();
    let ack = reply.wants_ack().then(|| {
        shared.acks.insert(Box::new(move |answer| match answer {
            Ok(value) => reply.raw(&value, &counters),
            Err(error) => reply.fail(&error, &counters),
        }))
    });
    shared.events.emit(|| Event::Custom {
        sid,
        user: conn.identity(),
        event,
        data: data.unwrap_or(Value::Null),
        ack,
    });
}
