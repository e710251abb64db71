//! `palaver_event`: engine events as C sees them during the callback.

use std::ffi::{c_char, c_void, CString};
use std::ptr;

use palaver_core::Event;

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

/// Owned C strings of one event; the `palaver_event` points into them.
#[derive(Default)]
struct Strings {
    sid: Option<CString>,
    user_id: Option<CString>,
    user_name: Option<CString>,
    room: Option<CString>,
    text: Option<CString>,
    message_id: Option<CString>,
    to_user_id: Option<CString>,
    event_name: Option<CString>,
    data_json: Option<CString>,
    reason: Option<CString>,
    json: Option<CString>,
}

/// A C string of `text`, cut at an interior NUL.
fn c_string(text: &str) -> CString {
    let end = text.find('\0').unwrap_or(text.len());
    CString::new(&text[..end]).expect("no interior NUL before `end`")
}

fn ptr_of(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

/// Builds the C view of `event` and calls `f` with it.
pub(crate) fn with_c_event(event: &Event, f: impl FnOnce(&palaver_event)) {
    let mut s = Strings {
        json: Some(c_string(
            &serde_json::to_string(event).unwrap_or_else(|_| "{}".into()),
        )),
        ..Strings::default()
    };
    let mut ts = 0;
    let mut ack_id = 0;
    let user = |s: &mut Strings, user: Option<&palaver_core::User>| {
        if let Some(user) = user {
            s.user_id = Some(c_string(&user.id));
            s.user_name = Some(c_string(&user.name));
        }
    };
    let kind = match event {
        Event::Connected { sid, user: u, .. } => {
            s.sid = Some(c_string(sid));
            user(&mut s, u.as_ref());
            palaver_event_kind::PALAVER_EVENT_CONNECTED
        }
        Event::Disconnected {
            sid,
            user: u,
            reason,
        } => {
            s.sid = Some(c_string(sid));
            user(&mut s, u.as_ref());
            s.reason = Some(c_string(reason));
            palaver_event_kind::PALAVER_EVENT_DISCONNECTED
        }
        Event::Joined { sid, room, user: u } | Event::Left { sid, room, user: u } => {
            s.sid = Some(c_string(sid));
            s.room = Some(c_string(room));
            user(&mut s, Some(u));
            if matches!(event, Event::Joined { .. }) {
                palaver_event_kind::PALAVER_EVENT_JOINED
            } else {
                palaver_event_kind::PALAVER_EVENT_LEFT
            }
        }
        Event::Message { sid, message } => {
            s.sid = Some(c_string(sid));
            s.room = Some(c_string(&message.room));
            s.user_id = message.user_id.as_deref().map(c_string);
            s.user_name = Some(c_string(&message.user));
            s.text = Some(c_string(&message.text));
            s.message_id = message.id.as_deref().map(c_string);
            ts = message.ts;
            palaver_event_kind::PALAVER_EVENT_MESSAGE
        }
        Event::Private { sid, message } => {
            s.sid = Some(c_string(sid));
            user(&mut s, Some(&message.from));
            s.to_user_id = Some(c_string(&message.to.id));
            s.text = Some(c_string(&message.text));
            s.message_id = Some(c_string(&message.id));
            ts = message.ts;
            palaver_event_kind::PALAVER_EVENT_PRIVATE
        }
        Event::Custom {
            sid,
            user: u,
            event,
            data,
            ack,
        } => {
            s.sid = Some(c_string(sid));
            user(&mut s, u.as_ref());
            s.event_name = Some(c_string(event));
            s.data_json = Some(c_string(&data.to_string()));
            ack_id = ack.map_or(0, |ack| ack.0);
            palaver_event_kind::PALAVER_EVENT_CUSTOM
        }
    };
    let c_event = palaver_event {
        kind,
        sid: ptr_of(&s.sid),
        user_id: ptr_of(&s.user_id),
        user_name: ptr_of(&s.user_name),
        room: ptr_of(&s.room),
        text: ptr_of(&s.text),
        message_id: ptr_of(&s.message_id),
        to_user_id: ptr_of(&s.to_user_id),
        event_name: ptr_of(&s.event_name),
        data_json: ptr_of(&s.data_json),
        reason: ptr_of(&s.reason),
        ts,
        ack_id,
        json: ptr_of(&s.json),
    };
    f(&c_event);
}
