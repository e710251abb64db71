//! `palaver_event`: engine events as C sees them during the callback.

use std::ffi::{c_char, c_void};
use std::ptr;

use bytes::Bytes;
use palaver_core::{Event, EventKind, Handshake, PlainHandshake, PlainMessage, User};

/// A view of bytes someone else owns: `len` bytes at `data` (`data` may be NULL
/// when `len` is 0). Used for binary attachments, in both directions.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct palaver_bytes {
    /// The first byte.
    pub data: *const u8,
    /// How many bytes.
    pub len: usize,
}

/// What happened.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum palaver_event_kind {
    /// A client connected (`sid`, `user_*` when the handshake named it).
    PALAVER_EVENT_CONNECTED = 0,
    /// A client disconnected (`sid`, `user_*`, `reason`).
    PALAVER_EVENT_DISCONNECTED = 1,
    /// A connection joined a room (`sid`, `room`, `user_*`).
    PALAVER_EVENT_JOINED = 2,
    /// A connection left a room (`sid`, `room`, `user_*`).
    PALAVER_EVENT_LEFT = 3,
    /// A room message was stored and delivered (`sid`, `room`, `user_*`, `text`,
    /// `message_id`, `ts`).
    PALAVER_EVENT_MESSAGE = 4,
    /// A private message was delivered (`sid`, `user_*` = sender, `to_user_id`,
    /// `text`, `message_id`, `ts`).
    PALAVER_EVENT_PRIVATE = 5,
    /// An event outside the chat protocol (`sid`, `user_*`, `event_name`,
    /// `data_json` = its first argument, `args_json` = all of them, `ack_id` when
    /// the client waits for an answer: `palaver_engine_ack`).
    PALAVER_EVENT_CUSTOM = 6,
    /// A connection asks to join a gated host namespace (`ns`, `sid`,
    /// `handshake_json`, `gate_id`): decide with `palaver_engine_admit` or
    /// `palaver_engine_refuse` within `host_ack_timeout_ms`, or the client gets
    /// `connect_error` "host_timeout".
    PALAVER_EVENT_SOCKET_GATE = 7,
    /// A connection joined a host namespace (`ns`, `sid`, `handshake_json`). It is
    /// in a room named by its `sid`. Every event of it reaches the host until the
    /// first `palaver_engine_listen` for it.
    PALAVER_EVENT_SOCKET_CONNECT = 8,
    /// An event on a host namespace (`ns`, `sid`, `event_name`, `args_json`,
    /// `attachments`, `ack_id` when the client waits for an answer:
    /// `palaver_engine_ack_args`). A numeric event name arrives as its decimal text
    /// ("2").
    PALAVER_EVENT_SOCKET_EVENT = 9,
    /// A connection left a host namespace (`ns`, `sid`, `reason`, one of the
    /// reasons of PALAVER_EVENT_DISCONNECTED).
    PALAVER_EVENT_SOCKET_DISCONNECT = 10,
    /// A plain WebSocket connection opened at `plain_websocket.path` (`ws_id`,
    /// `handshake_json`: `{"url","headers":{..},"address","protocol"}`).
    PALAVER_EVENT_WS_OPEN = 11,
    /// A plain WebSocket message (`ws_id`; a text message in `text`, a binary one
    /// as the one view of `attachments`).
    PALAVER_EVENT_WS_MESSAGE = 12,
    /// A plain WebSocket connection closed (`ws_id`, `close_code`, `reason`).
    PALAVER_EVENT_WS_CLOSE = 13,
}

/// One event. Every pointer is valid only during the callback call; copy what you
/// keep.
///
/// Strings: each string field is UTF-8 with its length in bytes in the field
/// named `<field>_len` (the NUL not counted), followed by a NUL, or NULL with
/// length 0 when the field does not apply to this kind. Chat texts (`message`,
/// `private`) never contain a NUL nor another control character but tab and line
/// breaks: the chat refuses such texts (`invalid_text`, docs/PROTOCOL.md). A plain
/// WebSocket text message may contain a NUL: it is complete within its length,
/// while C string functions see it cut at that NUL. The JSON fields (`data_json`,
/// `args_json`, `handshake_json`, `json`) never contain one. The lengths of the
/// older fields come after the newer fields, so that programs built against
/// earlier headers keep working.
#[repr(C)]
pub struct palaver_event {
    /// What happened.
    pub kind: palaver_event_kind,
    /// The connection (socket) id; NULL for plain WebSocket events (`ws_id`).
    pub sid: *const c_char,
    /// The user's id, or NULL for a connection without identity.
    pub user_id: *const c_char,
    /// The user's display name, or NULL.
    pub user_name: *const c_char,
    /// The room (joined, left, message), or NULL.
    pub room: *const c_char,
    /// The message text (message, private, plain WebSocket text message), or
    /// NULL.
    pub text: *const c_char,
    /// The message id (message, private), or NULL.
    pub message_id: *const c_char,
    /// The recipient's user id (private), or NULL.
    pub to_user_id: *const c_char,
    /// The event name (custom, socket event), or NULL.
    pub event_name: *const c_char,
    /// The event's first argument as JSON (custom; `null` when it has none), or
    /// NULL.
    pub data_json: *const c_char,
    /// The disconnect reason (disconnected, socket disconnect), the close reason
    /// (plain WebSocket close, often empty), or NULL.
    pub reason: *const c_char,
    /// Milliseconds since the Unix epoch (message, private), else 0.
    pub ts: i64,
    /// Nonzero when the client waits for an answer: for a custom event pass it to
    /// `palaver_engine_ack`, for a socket event to `palaver_engine_ack_args` (from
    /// any thread, also later, within `host_ack_timeout_ms`).
    pub ack_id: u64,
    /// The whole event as a JSON object with a "type" field (binary attachments
    /// are not in it).
    pub json: *const c_char,
    /// The namespace (socket events: "/", "/admin"), or NULL.
    pub ns: *const c_char,
    /// The length of `ns` in bytes.
    pub ns_len: usize,
    /// Every argument as the text of one JSON array (custom, socket event: `[]`
    /// when there are none), or NULL. A binary argument is the placeholder
    /// `{"_placeholder":true,"num":N}` for `attachments[N]`.
    pub args_json: *const c_char,
    /// The length of `args_json` in bytes.
    pub args_json_len: usize,
    /// What the client sent with its connection as a JSON object (socket gate,
    /// socket connect): `{"headers":{..},"query":{..},"auth":{..},"address":..,
    /// "transport":"websocket"|"polling","issued":ms,"url":".."}`; its upgrade
    /// request (plain WebSocket open); or NULL.
    pub handshake_json: *const c_char,
    /// The length of `handshake_json` in bytes.
    pub handshake_json_len: usize,
    /// Nonzero for a socket gate: pass it to `palaver_engine_admit` or
    /// `palaver_engine_refuse` (from any thread, also later).
    pub gate_id: u64,
    /// The binary attachments of a socket event, or the message of a binary plain
    /// WebSocket message (`attachments_count` views), or NULL. Valid only during
    /// the callback, as the rest.
    pub attachments: *const palaver_bytes,
    /// How many views `attachments` points to.
    pub attachments_count: usize,
    /// The plain WebSocket connection (ws open, message, close), else 0: the `id`
    /// of the `ws_send` and `ws_close` commands of `palaver_engine_run`.
    pub ws_id: u64,
    /// The close code of a plain WebSocket close (1005: the client sent none;
    /// 1006: the connection dropped without a close frame), else 0.
    pub close_code: u16,
    /// The length of `sid` in bytes.
    pub sid_len: usize,
    /// The length of `user_id` in bytes.
    pub user_id_len: usize,
    /// The length of `user_name` in bytes.
    pub user_name_len: usize,
    /// The length of `room` in bytes.
    pub room_len: usize,
    /// The length of `text` in bytes.
    pub text_len: usize,
    /// The length of `message_id` in bytes.
    pub message_id_len: usize,
    /// The length of `to_user_id` in bytes.
    pub to_user_id_len: usize,
    /// The length of `event_name` in bytes.
    pub event_name_len: usize,
    /// The length of `data_json` in bytes.
    pub data_json_len: usize,
    /// The length of `reason` in bytes.
    pub reason_len: usize,
    /// The length of `json` in bytes.
    pub json_len: usize,
}

/// The event callback: `userdata` as registered, the event valid during the call.
pub type palaver_event_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const palaver_event)>;

/// The C kind of each core kind: one exhaustive match, so that a new kind in core
/// does not compile here until it has its C number.
impl From<EventKind> for palaver_event_kind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Connected => Self::PALAVER_EVENT_CONNECTED,
            EventKind::Disconnected => Self::PALAVER_EVENT_DISCONNECTED,
            EventKind::Joined => Self::PALAVER_EVENT_JOINED,
            EventKind::Left => Self::PALAVER_EVENT_LEFT,
            EventKind::Message => Self::PALAVER_EVENT_MESSAGE,
            EventKind::Private => Self::PALAVER_EVENT_PRIVATE,
            EventKind::Custom => Self::PALAVER_EVENT_CUSTOM,
            EventKind::SocketGate => Self::PALAVER_EVENT_SOCKET_GATE,
            EventKind::SocketConnect => Self::PALAVER_EVENT_SOCKET_CONNECT,
            EventKind::SocketEvent => Self::PALAVER_EVENT_SOCKET_EVENT,
            EventKind::SocketDisconnect => Self::PALAVER_EVENT_SOCKET_DISCONNECT,
            EventKind::WsOpen => Self::PALAVER_EVENT_WS_OPEN,
            EventKind::WsMessage => Self::PALAVER_EVENT_WS_MESSAGE,
            EventKind::WsClose => Self::PALAVER_EVENT_WS_CLOSE,
        }
    }
}

/// A part of an event the C view shows as JSON text (JSON has no raw NUL:
/// control characters are escaped).
trait ToJson {
    fn write_json(&self, buf: &mut Vec<u8>) -> serde_json::Result<()>;
}

impl ToJson for serde_json::Value {
    fn write_json(&self, buf: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(buf, self)
    }
}

impl ToJson for Handshake {
    fn write_json(&self, buf: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(buf, self)
    }
}

impl ToJson for PlainHandshake {
    fn write_json(&self, buf: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(buf, self)
    }
}

/// Where a string field of the C view comes from.
#[derive(Clone, Copy)]
enum Field<'a> {
    /// The field does not apply: NULL.
    None,
    /// A text of the event (or JSON text already encoded), copied whole.
    Text(&'a str),
    /// A part of the event, encoded as JSON.
    Json(&'a dyn ToJson),
}

impl<'a> Field<'a> {
    fn text(text: &'a str) -> Self {
        Self::Text(text)
    }

    fn optional(text: Option<&'a str>) -> Self {
        text.map_or(Self::None, Self::Text)
    }

    /// About how many bytes the field takes, NUL included.
    fn size_hint(self) -> usize {
        match self {
            Self::None => 0,
            Self::Text(text) => text.len() + 1,
            Self::Json(_) => 256,
        }
    }
}

/// The string fields of `palaver_event` (`json` apart): where each comes from,
/// then where it is in the buffer, then the C pointers and lengths.
#[derive(Clone, Copy)]
struct Strings<T> {
    sid: T,
    user_id: T,
    user_name: T,
    room: T,
    text: T,
    message_id: T,
    to_user_id: T,
    event_name: T,
    data_json: T,
    reason: T,
    ns: T,
    args_json: T,
    handshake_json: T,
}

impl<T> Strings<T> {
    /// Applies `f` to every field, in the order of the struct.
    fn map<U>(self, mut f: impl FnMut(T) -> U) -> Strings<U> {
        Strings {
            sid: f(self.sid),
            user_id: f(self.user_id),
            user_name: f(self.user_name),
            room: f(self.room),
            text: f(self.text),
            message_id: f(self.message_id),
            to_user_id: f(self.to_user_id),
            event_name: f(self.event_name),
            data_json: f(self.data_json),
            reason: f(self.reason),
            ns: f(self.ns),
            args_json: f(self.args_json),
            handshake_json: f(self.handshake_json),
        }
    }
}

type Fields<'a> = Strings<Field<'a>>;

impl<'a> Fields<'a> {
    /// Only `sid`, and the user's id and name when there is a user.
    fn of(sid: &'a str, user: Option<&'a User>) -> Self {
        Self {
            sid: Field::text(sid),
            user_id: Field::optional(user.map(|u| &*u.id)),
            user_name: Field::optional(user.map(|u| &*u.name)),
            ..Self::none()
        }
    }

    /// Every field NULL.
    fn none() -> Self {
        Self {
            sid: Field::None,
            user_id: Field::None,
            user_name: Field::None,
            room: Field::None,
            text: Field::None,
            message_id: Field::None,
            to_user_id: Field::None,
            event_name: Field::None,
            data_json: Field::None,
            reason: Field::None,
            ns: Field::None,
            args_json: Field::None,
            handshake_json: Field::None,
        }
    }

    /// `sid` and `ns` of a host namespace's connection.
    fn socket(ns: &'a str, sid: &'a str) -> Self {
        Self {
            ns: Field::text(ns),
            ..Self::of(sid, None)
        }
    }
}

/// The C view of an event apart from its kind and its JSON.
struct View<'a> {
    fields: Fields<'a>,
    ts: i64,
    ack_id: u64,
    gate_id: u64,
    attachments: &'a [Bytes],
    ws_id: u64,
    close_code: u16,
}

impl<'a> View<'a> {
    fn of(fields: Fields<'a>) -> Self {
        Self {
            fields,
            ts: 0,
            ack_id: 0,
            gate_id: 0,
            attachments: &[],
            ws_id: 0,
            close_code: 0,
        }
    }

    /// A plain WebSocket connection's event: no `sid`, its `ws_id`.
    fn ws(id: u64, fields: Fields<'a>) -> Self {
        Self {
            ws_id: id,
            ..Self::of(fields)
        }
    }
}

/// The C view of `event`. Every variant and field is named: a new one must be
/// decided on here.
fn view(event: &Event) -> View<'_> {
    match event {
        Event::Connected {
            sid,
            user,
            address: _,
            transport: _,
        } => View::of(Fields::of(sid, user.as_ref())),
        Event::Disconnected { sid, user, reason } => View::of(Fields {
            reason: Field::text(reason),
            ..Fields::of(sid, user.as_ref())
        }),
        Event::Joined { sid, room, user } | Event::Left { sid, room, user } => View::of(Fields {
            room: Field::text(room),
            ..Fields::of(sid, Some(user))
        }),
        Event::Message { sid, message } => View {
            ts: message.ts,
            ..View::of(Fields {
                room: Field::text(&message.room),
                user_id: Field::optional(message.user_id.as_deref()),
                user_name: Field::text(&message.user),
                text: Field::text(&message.text),
                message_id: Field::optional(message.id.as_deref()),
                ..Fields::of(sid, None)
            })
        },
        Event::Private { sid, message } => View {
            ts: message.ts,
            ..View::of(Fields {
                to_user_id: Field::text(&message.to.id),
                text: Field::text(&message.text),
                message_id: Field::text(&message.id),
                ..Fields::of(sid, Some(&message.from))
            })
        },
        Event::Custom {
            sid,
            user,
            event,
            data,
            args,
            ack,
        } => View {
            ack_id: ack.map_or(0, |ack| ack.0),
            ..View::of(Fields {
                event_name: Field::text(event),
                data_json: Field::Json(data),
                args_json: Field::text(args.as_str()),
                ..Fields::of(sid, user.as_ref())
            })
        },
        Event::SocketGate {
            ns,
            sid,
            handshake,
            gate,
            ..
        } => View {
            gate_id: gate.0,
            ..View::of(Fields {
                handshake_json: Field::Json(handshake),
                ..Fields::socket(ns, sid)
            })
        },
        Event::SocketConnect {
            ns, sid, handshake, ..
        } => View::of(Fields {
            handshake_json: Field::Json(handshake),
            ..Fields::socket(ns, sid)
        }),
        // Whether the name came as a number is in the `json` field only: C hosts
        // match names as text.
        Event::SocketEvent {
            ns,
            sid,
            event,
            numeric: _,
            args,
            attachments,
            ack,
        } => View {
            ack_id: ack.map_or(0, |ack| ack.0),
            attachments,
            ..View::of(Fields {
                event_name: Field::text(event),
                args_json: Field::text(args.as_str()),
                ..Fields::socket(ns, sid)
            })
        },
        Event::SocketDisconnect { ns, sid, reason } => View::of(Fields {
            reason: Field::text(reason),
            ..Fields::socket(ns, sid)
        }),
        Event::WsOpen { id, handshake } => View::ws(
            *id,
            Fields {
                handshake_json: Field::Json(handshake),
                ..Fields::none()
            },
        ),
        Event::WsMessage { id, message } => match message {
            PlainMessage::Text(text) => View::ws(
                *id,
                Fields {
                    text: Field::text(text),
                    ..Fields::none()
                },
            ),
            PlainMessage::Binary(bytes) => View {
                attachments: std::slice::from_ref(bytes),
                ..View::ws(*id, Fields::none())
            },
        },
        Event::WsClose { id, code, reason } => View {
            close_code: *code,
            ..View::ws(
                *id,
                Fields {
                    reason: Field::text(reason),
                    ..Fields::none()
                },
            )
        },
    }
}

/// Builds the C view of `event` and calls `f` with it.
///
/// Three allocations: the event's JSON (`Event::to_json`, encoded once), one
/// buffer holding every other string field, each followed by a NUL, which the
/// `palaver_event` points into, and the attachment views (only when there are
/// attachments).
pub(crate) fn with_c_event(event: &Event, f: impl FnOnce(&palaver_event)) {
    let json = event.to_json();
    let json_len = json.len();
    let mut json = json.into_bytes();
    json.push(0);

    let View {
        fields,
        ts,
        ack_id,
        gate_id,
        attachments,
        ws_id,
        close_code,
    } = view(event);
    let mut capacity = 0;
    fields.map(|field| capacity += field.size_hint());
    let mut buf: Vec<u8> = Vec::with_capacity(capacity);
    // Offsets and lengths first, pointers once the buffer is full: it may move
    // while filled.
    let spans = fields.map(|field| {
        let start = buf.len();
        match field {
            Field::None => return None,
            Field::Text(text) => buf.extend_from_slice(text.as_bytes()),
            Field::Json(value) => {
                if value.write_json(&mut buf).is_err() {
                    buf.truncate(start);
                    buf.extend_from_slice(b"null");
                }
            }
        }
        let len = buf.len() - start;
        buf.push(0);
        Some((start, len))
    });
    let s = spans.map(|span| -> (*const c_char, usize) {
        span.map_or((ptr::null(), 0), |(start, len)| {
            (buf[start..].as_ptr().cast(), len)
        })
    });
    let views: Vec<palaver_bytes> = attachments
        .iter()
        .map(|bytes| palaver_bytes {
            data: bytes.as_ptr(),
            len: bytes.len(),
        })
        .collect();
    let c_event = palaver_event {
        kind: event.event_kind().into(),
        sid: s.sid.0,
        user_id: s.user_id.0,
        user_name: s.user_name.0,
        room: s.room.0,
        text: s.text.0,
        message_id: s.message_id.0,
        to_user_id: s.to_user_id.0,
        event_name: s.event_name.0,
        data_json: s.data_json.0,
        reason: s.reason.0,
        ts,
        ack_id,
        json: json.as_ptr().cast(),
        ns: s.ns.0,
        ns_len: s.ns.1,
        args_json: s.args_json.0,
        args_json_len: s.args_json.1,
        handshake_json: s.handshake_json.0,
        handshake_json_len: s.handshake_json.1,
        gate_id,
        attachments: if views.is_empty() {
            ptr::null()
        } else {
            views.as_ptr()
        },
        attachments_count: views.len(),
        ws_id,
        close_code,
        sid_len: s.sid.1,
        user_id_len: s.user_id.1,
        user_name_len: s.user_name.1,
        room_len: s.room.1,
        text_len: s.text.1,
        message_id_len: s.message_id.1,
        to_user_id_len: s.to_user_id.1,
        event_name_len: s.event_name.1,
        data_json_len: s.data_json.1,
        reason_len: s.reason.1,
        json_len,
    };
    f(&c_event);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ffi::CStr;

    use palaver_core::{AckId, GateId, JsonArgs};

    use super::*;

    /// A field as C string functions see it (up to the first NUL).
    fn text(ptr: *const c_char) -> Option<String> {
        // SAFETY: NULL or a NUL-terminated string valid during the callback.
        (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_owned())
    }

    /// A field read with its length, and the NUL after it checked.
    fn whole(ptr: *const c_char, len: usize) -> Option<String> {
        if ptr.is_null() {
            assert_eq!(len, 0, "a NULL field has length 0");
            return None;
        }
        // SAFETY: valid for `len` bytes and the NUL after them during the callback.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len + 1) };
        assert_eq!(bytes[len], 0, "a NUL follows the field");
        Some(String::from_utf8(bytes[..len].to_vec()).unwrap())
    }

    fn args(json: &str) -> JsonArgs {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_custom_event_points_into_one_buffer() {
        let event = Event::Custom {
            sid: "s1".into(),
            user: Some(User {
                id: "ada".into(),
                name: "Ada\0Lovelace".into(),
            }),
            event: "ping".into(),
            data: serde_json::json!({"n": 1, "nul": "a\u{0}b"}),
            args: args(r#"[{"n":1,"nul":"a\u0000b"},2]"#),
            ack: Some(AckId(7)),
        };
        let mut called = false;
        with_c_event(&event, |c| {
            called = true;
            assert_eq!(c.kind, palaver_event_kind::PALAVER_EVENT_CUSTOM);
            assert_eq!(whole(c.sid, c.sid_len).as_deref(), Some("s1"));
            assert_eq!(whole(c.user_id, c.user_id_len).as_deref(), Some("ada"));
            // Cut at the NUL for C string functions, whole within its length.
            assert_eq!(text(c.user_name).as_deref(), Some("Ada"));
            assert_eq!(
                whole(c.user_name, c.user_name_len).as_deref(),
                Some("Ada\0Lovelace")
            );
            assert_eq!(
                whole(c.event_name, c.event_name_len).as_deref(),
                Some("ping")
            );
            assert_eq!(
                whole(c.data_json, c.data_json_len).as_deref(),
                Some(r#"{"n":1,"nul":"a\u0000b"}"#)
            );
            assert_eq!(
                whole(c.args_json, c.args_json_len).as_deref(),
                Some(r#"[{"n":1,"nul":"a\u0000b"},2]"#)
            );
            assert_eq!(whole(c.json, c.json_len), Some(event.to_json()));
            for (absent, len) in [
                (c.room, c.room_len),
                (c.text, c.text_len),
                (c.message_id, c.message_id_len),
                (c.to_user_id, c.to_user_id_len),
                (c.reason, c.reason_len),
                (c.ns, c.ns_len),
                (c.handshake_json, c.handshake_json_len),
            ] {
                assert!(absent.is_null());
                assert_eq!(len, 0);
            }
            assert_eq!((c.ts, c.ack_id, c.gate_id), (0, 7, 0));
            assert!(c.attachments.is_null());
            assert_eq!(c.attachments_count, 0);
        });
        assert!(called);
    }

    #[test]
    fn a_socket_event_with_attachments_and_a_nul_in_its_name() {
        let event = Event::SocketEvent {
            ns: "/admin".into(),
            sid: "s2".into(),
            event: "a\0b".into(),
            numeric: false,
            args: args(r#"[{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]"#),
            attachments: vec![Bytes::from_static(b"\x01\x00\x02"), Bytes::new()],
            ack: None,
        };
        with_c_event(&event, |c| {
            assert_eq!(c.kind, palaver_event_kind::PALAVER_EVENT_SOCKET_EVENT);
            assert_eq!(whole(c.ns, c.ns_len).as_deref(), Some("/admin"));
            assert_eq!(whole(c.sid, c.sid_len).as_deref(), Some("s2"));
            assert_eq!(text(c.event_name).as_deref(), Some("a"));
            assert_eq!(
                whole(c.event_name, c.event_name_len).as_deref(),
                Some("a\0b")
            );
            assert_eq!(
                whole(c.args_json, c.args_json_len).as_deref(),
                Some(r#"[{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]"#)
            );
            assert!(c.data_json.is_null() && c.user_id.is_null() && c.handshake_json.is_null());
            assert_eq!((c.ack_id, c.gate_id), (0, 0));
            assert_eq!(c.attachments_count, 2);
            // SAFETY: `attachments_count` views, valid during the callback.
            let views = unsafe { std::slice::from_raw_parts(c.attachments, c.attachments_count) };
            // SAFETY: each view is valid for its `len` bytes.
            let first = unsafe { std::slice::from_raw_parts(views[0].data, views[0].len) };
            assert_eq!(first, b"\x01\x00\x02");
            assert_eq!(views[1].len, 0);
            let json: serde_json::Value =
                serde_json::from_str(&whole(c.json, c.json_len).unwrap()).unwrap();
            assert_eq!(json["type"], "socket_event");
            assert_eq!(json["event"], "a\0b");
        });
    }

    #[test]
    fn gates_and_connects_carry_the_handshake() {
        let handshake = Handshake {
            headers: BTreeMap::from([("host".to_string(), "localhost".to_string())]),
            query: BTreeMap::new(),
            auth: serde_json::json!({"token": "good"}),
            address: None,
            transport: "polling",
            issued: 1,
            url: "/socket.io/?EIO=4".into(),
        };
        let gate = Event::SocketGate {
            ns: "/admin".into(),
            sid: "s3".into(),
            handshake: handshake.clone(),
            gate: GateId(5),
            recovered: false,
        };
        with_c_event(&gate, |c| {
            assert_eq!(c.kind, palaver_event_kind::PALAVER_EVENT_SOCKET_GATE);
            let json: serde_json::Value =
                serde_json::from_str(&whole(c.handshake_json, c.handshake_json_len).unwrap())
                    .unwrap();
            assert_eq!(json, serde_json::to_value(&handshake).unwrap());
            assert_eq!((c.gate_id, c.ack_id), (5, 0));
            assert!(c.args_json.is_null() && c.event_name.is_null());
        });
        let gone = Event::SocketDisconnect {
            ns: "/".into(),
            sid: "s3".into(),
            reason: "client_disconnect".into(),
        };
        with_c_event(&gone, |c| {
            assert_eq!(c.kind, palaver_event_kind::PALAVER_EVENT_SOCKET_DISCONNECT);
            assert_eq!(
                whole(c.reason, c.reason_len).as_deref(),
                Some("client_disconnect")
            );
            assert_eq!(whole(c.ns, c.ns_len).as_deref(), Some("/"));
            assert!(c.handshake_json.is_null());
        });
    }

    #[test]
    fn plain_websocket_events_have_their_id_and_no_sid() {
        let open = Event::WsOpen {
            id: 9,
            handshake: PlainHandshake {
                url: "/ws?x=1".into(),
                headers: BTreeMap::new(),
                address: None,
                protocol: None,
            },
        };
        with_c_event(&open, |c| {
            assert_eq!(c.kind, palaver_event_kind::PALAVER_EVENT_WS_OPEN);
            assert_eq!((c.ws_id, c.close_code), (9, 0));
            assert!(c.sid.is_null() && c.ns.is_null());
            let json: serde_json::Value =
                serde_json::from_str(&whole(c.handshake_json, c.handshake_json_len).unwrap())
                    .unwrap();
            assert_eq!(json["url"], "/ws?x=1");
        });
        let text = Event::WsMessage {
            id: 9,
            message: PlainMessage::Text("a\0b".into()),
        };
        with_c_event(&text, |c| {
            assert_eq!(c.kind, palaver_event_kind::PALAVER_EVENT_WS_MESSAGE);
            assert_eq!(whole(c.text, c.text_len).as_deref(), Some("a\0b"));
            assert_eq!(c.attachments_count, 0);
        });
        let binary = Event::WsMessage {
            id: 9,
            message: PlainMessage::Binary(Bytes::from_static(b"\x00\xff")),
        };
        with_c_event(&binary, |c| {
            assert!(c.text.is_null());
            assert_eq!(c.attachments_count, 1);
            // SAFETY: one view, valid during the callback.
            let view = unsafe { *c.attachments };
            // SAFETY: valid for its `len` bytes.
            assert_eq!(
                unsafe { std::slice::from_raw_parts(view.data, view.len) },
                b"\x00\xff"
            );
        });
        let close = Event::WsClose {
            id: 9,
            code: 1005,
            reason: String::new(),
        };
        with_c_event(&close, |c| {
            assert_eq!(c.kind, palaver_event_kind::PALAVER_EVENT_WS_CLOSE);
            assert_eq!((c.ws_id, c.close_code), (9, 1005));
            assert_eq!(whole(c.reason, c.reason_len).as_deref(), Some(""));
        });
    }

    #[test]
    fn every_kind_has_its_c_number() {
        for (number, kind) in EventKind::ALL.into_iter().enumerate() {
            assert_eq!(palaver_event_kind::from(kind) as usize, number);
        }
    }
}
