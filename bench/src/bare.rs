//! The practical ceiling: a bare WebSocket room broadcaster (tokio-tungstenite,
//! no Socket.IO, no Engine.IO), with the same JSON payloads as the chat.
//!
//! Requests are JSON objects with a `t` field, each answered with
//! `{"t":"ack","id":<id>,"ok":true,...}`:
//!
//! - `{"t":"join","id":1,"room":"r","name":"ada"}`
//! - `{"t":"message","id":2,"room":"r","text":"hi"}`: delivered to the room's other
//!   members as `{"t":"message","id","room","user","user_id","text","ts","kind":"chat"}`,
//!   encoded once for all of them
//! - `{"t":"private","id":3,"to":"bob","text":"psst"}`: delivered to every connection
//!   named `bob` as `{"t":"private","id","from","to","text","ts"}`

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Messages queued for one slow client before further ones are dropped
/// (Palaver's `transport.max_buffer_size` is 256 packets).
const QUEUE: usize = 1024;

type Outbox = mpsc::Sender<Utf8Bytes>;

#[derive(Default)]
struct State {
    rooms: Mutex<HashMap<String, Vec<(u64, Outbox)>>>,
    users: Mutex<HashMap<String, Vec<(u64, Outbox)>>>,
    next_conn: AtomicU64,
    next_message: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Deserialize)]
struct Request {
    t: String,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// A room message, fields in the chat's order (`t` first).
#[derive(Serialize)]
struct RoomMessage<'a> {
    t: &'static str,
    id: String,
    room: &'a str,
    user: &'a str,
    user_id: &'a str,
    text: &'a str,
    ts: u64,
    kind: &'static str,
}

#[derive(Serialize)]
struct Who<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct PrivateMessage<'a> {
    t: &'static str,
    id: String,
    from: Who<'a>,
    to: Who<'a>,
    text: &'a str,
    ts: u64,
}

fn encode(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("plain structs serialize")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Serves until killed, or for `max_seconds` at most.
pub async fn serve(port: u16, max_seconds: u64) -> std::io::Result<()> {
    match tokio::time::timeout(Duration::from_secs(max_seconds), serve_forever(port)).await {
        Ok(result) => result,
        Err(_) => {
            eprintln!("bare-ws: {max_seconds} s are up; exiting");
            Ok(())
        }
    }
}

async fn serve_forever(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "{}{}",
        crate::servers::LISTENING,
        listener.local_addr()?.port()
    );
    let state = Arc::new(State::default());
    let reporter = state.clone();
    tokio::spawn(async move {
        let mut reported = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let dropped = reporter.dropped.load(Ordering::Relaxed);
            if dropped != reported {
                eprintln!("bare-ws: {dropped} deliveries dropped (full client queues)");
                reported = dropped;
            }
        }
    });
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, state.clone()));
            }
            Err(e) => {
                eprintln!("bare-ws: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn deliver(state: &State, to: &[(u64, Outbox)], skip: u64, frame: &Utf8Bytes) {
    for (conn, outbox) in to {
        if *conn != skip && outbox.try_send(frame.clone()).is_err() {
            state.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn connection(stream: TcpStream, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let id = state.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(QUEUE);
    let (mut sink, mut source) = ws.split();
    let mut name: Option<String> = None;
    let mut rooms: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(first) = out else { break };
                // Batch whatever else is queued into one flush.
                if sink.feed(Message::Text(first)).await.is_err() {
                    break;
                }
                while let Ok(more) = rx.try_recv() {
                    if sink.feed(Message::Text(more)).await.is_err() {
                        break;
                    }
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            incoming = source.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(request) = serde_json::from_str::<Request>(&text) else {
                    let _ = tx.try_send(r#"{"t":"error","code":"invalid_payload"}"#.into());
                    continue;
                };
                let answer = handle(&state, id, &tx, &mut name, &mut rooms, request);
                if tx.try_send(answer.into()).is_err() {
                    state.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    // Leave everything.
    {
        let mut all = state.rooms.lock().expect("rooms lock");
        for room in &rooms {
            if let Some(members) = all.get_mut(room) {
                members.retain(|(conn, _)| *conn != id);
                if members.is_empty() {
                    all.remove(room);
                }
            }
        }
    }
    if let Some(name) = name {
        let mut users = state.users.lock().expect("users lock");
        if let Some(conns) = users.get_mut(&name) {
            conns.retain(|(conn, _)| *conn != id);
            if conns.is_empty() {
                users.remove(&name);
            }
        }
    }
}

fn handle(
    state: &State,
    id: u64,
    tx: &Outbox,
    name: &mut Option<String>,
    rooms: &mut Vec<String>,
    request: Request,
) -> String {
    let ack = request.id.unwrap_or(0);
    let refuse = |code: &str| format!(r#"{{"t":"ack","id":{ack},"ok":false,"code":"{code}"}}"#);
    match request.t.as_str() {
        "join" => {
            let Some(room) = request.room.filter(|r| !r.is_empty()) else {
                return refuse("invalid_room");
            };
            if name.is_none() {
                let chosen = request.name.unwrap_or_else(|| format!("user{id}"));
                state
                    .users
                    .lock()
                    .expect("users lock")
                    .entry(chosen.clone())
                    .or_default()
                    .push((id, tx.clone()));
                *name = Some(chosen);
            }
            let count = {
                let mut all = state.rooms.lock().expect("rooms lock");
                let members = all.entry(room.clone()).or_default();
                if !rooms.contains(&room) {
                    members.push((id, tx.clone()));
                    rooms.push(room.clone());
                }
                members.len()
            };
            format!(
                r#"{{"t":"ack","id":{ack},"ok":true,"room":{},"count":{count}}}"#,
                json!(room)
            )
        }
        "message" => {
            let (Some(room), Some(text), Some(user)) = (request.room, request.text, name.as_ref())
            else {
                return refuse("invalid_payload");
            };
            if !rooms.contains(&room) {
                return refuse("not_member");
            }
            let message_id = state.next_message.fetch_add(1, Ordering::Relaxed) + 1;
            let message = RoomMessage {
                t: "message",
                id: message_id.to_string(),
                room: &room,
                user,
                user_id: user,
                text: &text,
                ts: now_ms(),
                kind: "chat",
            };
            // Encoded once; every member gets the same bytes.
            let frame: Utf8Bytes = encode(&message).into();
            if let Some(members) = state.rooms.lock().expect("rooms lock").get(&room) {
                deliver(state, members, id, &frame);
            }
            format!(r#"{{"t":"ack","id":{ack},"ok":true,"message_id":"{message_id}"}}"#)
        }
        "private" => {
            let (Some(to), Some(text), Some(user)) = (request.to, request.text, name.as_ref())
            else {
                return refuse("invalid_payload");
            };
            let message_id = state.next_message.fetch_add(1, Ordering::Relaxed) + 1;
            let message = PrivateMessage {
                t: "private",
                id: format!("p{message_id}"),
                from: Who {
                    id: user,
                    name: user,
                },
                to: Who { id: &to, name: &to },
                text: &text,
                ts: now_ms(),
            };
            let frame: Utf8Bytes = encode(&message).into();
            match state.users.lock().expect("users lock").get(&to) {
                Some(conns) => deliver(state, conns, u64::MAX, &frame),
                None => return refuse("user_offline"),
            }
            format!(r#"{{"t":"ack","id":{ack},"ok":true}}"#)
        }
        _ => refuse("unknown_event"),
    }
}
