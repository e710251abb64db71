//! `palaver_event`: engine events as C sees them during the callback.

use std::ffi::{c_char, c_void};
use std::ptr;

use palaver_core::{Event, EventKind, User};

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
    /// `data_json`, `ack_id` when the client waits for an answer).
    PALAVER_EVENT_CUSTOM = 6,
}

/// One event. Every pointer is valid only during the callback call; copy what you
/// keep. String fields are NUL-terminated UTF-8, or NULL when the field does not
/// apply; a text containing a NUL character is cut there (the `json` field always
/// has the complete event).
#[repr(C)]
pub struct palaver_event {
    /// What happened.
    pub kind: palaver_event_kind,
    /// The connection (socket) id.
    pub sid: *const c_char,
    /// The user's id, or NULL for a connection without identity.
    pub user_id: *const c_char,
    /// The user's display name, or NULL.
    pub user_name: *const c_char,
    /// The room (joined, left, message), or NULL.
    pub room: *const c_char,
    /// The message text (message, private), or NULL.
    pub text: *const c_char,
    /// The message id (message, private), or NULL.
    pub message_id: *const c_char,
    /// The recipient's user id (private), or NULL.
    pub to_user_id: *const c_char,
    /// The event name (custom), or NULL.
    pub event_name: *const c_char,
    /// The event's data as JSON (custom), or NULL.
    pub data_json: *const c_char,
    /// The disconnect reason (disconnected), or NULL.
    pub reason: *const c_char,
    /// Milliseconds since the Unix epoch (message, private), else 0.
    pub ts: i64,
    /// Nonzero when a custom event waits for an answer: pass it to
    /// `palaver_engine_ack` (from any thread, also later).
    pub ack_id: u64,
    /// The whole event as a JSON object with a "type" field.
    pub json: *const c_char,
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
        }
    }
}

/// Where a string field of the C view comes from.
#[derive(Clone, Copy)]
enum Field<'a> {
    /// The field does not apply: NULL.
    None,
    /// A text of the event, cut at an interior NUL.
    Text(&'a str),
    /// A JSON value, encoded (JSON has no raw NUL: control characters are escaped).
    Json(&'a serde_json::Value),
}

impl<'a> Field<'a> {
    fn text(text: &'a str) -> Self {
        Self::Text(text)
    }

    fn optional(text: Option<&'a str>) -> Self {
        text.map_or(Self::None, Self::Text)
    }
}

/// The string fields of `palaver_event` (`json` apart): where each comes from,
/// then where it is in the buffer, then the C pointers.
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
            room: Field::None,
            text: Field::None,
            message_id: Field::None,
            to_user_id: Field::None,
            event_name: Field::None,
            data_json: Field::None,
            reason: Field::None,
        }
    }
}

/// The C view's string fields of `event`, its `ts` and its `ack_id`. Every
/// variant and field is named: a new one must be decided on here.
fn fields(event: &Event) -> (Fields<'_>, i64, u64) {
    match event {
        Event::Connected {
            sid,
            user,
            address: _,
            transport: _,
        } => (Fields::of(sid, user.as_ref()), 0, 0),
        Event::Disconnected { sid, user, reason } => (
            Fields {
                reason: Field::text(reason),
                ..Fields::of(sid, user.as_ref())
            },
            0,
            0,
        ),
        Event::Joined { sid, room, user } | Event::Left { sid, room, user } => (
            Fields {
                room: Field::text(room),
                ..Fields::of(sid, Some(user))
            },
            0,
            0,
        ),
        Event::Message { sid, message } => (
            Fields {
                room: Field::text(&message.room),
                user_id: Field::optional(message.user_id.as_deref()),
                user_name: Field::text(&message.user),
                text: Field::text(&message.text),
                message_id: Field::optional(message.id.as_deref()),
                ..Fields::of(sid, None)
            },
            message.ts,
            0,
        ),
        Event::Private { sid, message } => (
            Fields {
                to_user_id: Field::text(&message.to.id),
                text: Field::text(&message.text),
                message_id: Field::text(&message.id),
                ..Fields::of(sid, Some(&message.from))
            },
            message.ts,
            0,
        ),
        Event::Custom {
            sid,
            user,
            event,
            data,
            ack,
        } => (
            Fields {
                event_name: Field::text(event),
                data_json: Field::Json(data),
                ..Fields::of(sid, user.as_ref())
            },
            0,
            ack.map_or(0, |ack| ack.0),
        ),
    }
}

/// Builds the C view of `event` and calls `f` with it.
///
/// Two allocations: the event's JSON (`Event::to_json`, encoded once) and one
/// buffer holding every other string field, each NUL-terminated, which the
/// `palaver_event` points into.
pub(crate) fn with_c_event(event: &Event, f: impl FnOnce(&palaver_event)) {
    let mut json = event.to_json().into_bytes();
    json.push(0);

    let (fields, ts, ack_id) = fields(event);
    // Sized for the texts; a custom event's data may grow it.
    let mut capacity = 0;
    fields.map(|field| {
        capacity += match field {
            Field::None => 0,
            Field::Text(text) => text.len() + 1,
            Field::Json(_) => 64,
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(capacity);
    // Offsets first, pointers once the buffer is full: it may move while filled.
    let offsets = fields.map(|field| {
        let start = buf.len();
        match field {
            Field::None => return None,
            Field::Text(text) => {
                // A text with a NUL is cut there (the header says so).
                let end = text.find('\0').unwrap_or(text.len());
                buf.extend_from_slice(&text.as_bytes()[..end]);
            }
            Field::Json(value) => {
                if serde_json::to_writer(&mut buf, value).is_err() {
                    buf.truncate(start);
                    buf.extend_from_slice(b"null");
                }
            }
        }
        buf.push(0);
        Some(start)
    });
    let s = offsets.map(|offset| -> *const c_char {
        offset.map_or(ptr::null(), |start| buf[start..].as_ptr().cast())
    });
    let c_event = palaver_event {
        kind: event.event_kind().into(),
        sid: s.sid,
        user_id: s.user_id,
        user_name: s.user_name,
        room: s.room,
        text: s.text,
        message_id: s.message_id,
        to_user_id: s.to_user_id,
        event_name: s.event_name,
        data_json: s.data_json,
        reason: s.reason,
        ts,
        ack_id,
        json: json.as_ptr().cast(),
    };
    f(&c_event);
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    fn text(ptr: *const c_char) -> Option<String> {
        // SAFETY: NULL or a NUL-terminated string valid during the callback.
        (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_owned())
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
            ack: Some(palaver_core::AckId(7)),
        };
        let mut called = false;
        with_c_event(&event, |c| {
            called = true;
            assert_eq!(c.kind, palaver_event_kind::PALAVER_EVENT_CUSTOM);
            assert_eq!(text(c.sid).as_deref(), Some("s1"));
            assert_eq!(text(c.user_id).as_deref(), Some("ada"));
            assert_eq!(text(c.user_name).as_deref(), Some("Ada"));
            assert_eq!(text(c.event_name).as_deref(), Some("ping"));
            assert_eq!(
                text(c.data_json).as_deref(),
                Some(r#"{"n":1,"nul":"a\u0000b"}"#)
            );
            assert_eq!(text(c.json), Some(event.to_json()));
            for absent in [c.room, c.text, c.message_id, c.to_user_id, c.reason] {
                assert!(absent.is_null());
            }
            assert_eq!((c.ts, c.ack_id), (0, 7));
        });
        assert!(called);
    }

    #[test]
    fn every_kind_has_its_c_number() {
        for (number, kind) in EventKind::ALL.into_iter().enumerate() {
            assert_eq!(palaver_event_kind::from(kind) as usize, number);
        }
    }
}
