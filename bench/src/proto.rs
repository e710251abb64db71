//! The wire protocols the load generator speaks: Socket.IO 4 over Engine.IO 4
//! (WebSocket transport only) with the bench's chat events or with seed 002's
//! room-chat events, and the bare broadcaster's JSON objects.
//!
//! Parsing is deliberately shallow: the generator only needs to tell pings, acks
//! and its own stamped messages apart, and must stay cheap at hundreds of
//! thousands of frames per second.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::ws::find;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Engine.IO 4 / Socket.IO 4 on `/socket.io/?EIO=4&transport=websocket`.
    SocketIo,
    /// `{"t": ...}` JSON objects on `/`.
    Bare,
    /// Socket.IO 4 with the events of seed 002's room chat (the tutorial app run
    /// unchanged): `join {name, room}` and `message {text, room, user}`, neither
    /// acknowledged. A join is answered with `groupList` (every room's members, the
    /// joiner included) to the joiner; a message reaches the room's other members
    /// as `message {text, user}`.
    Seed002,
}

/// Marks the text of every message the generator sends.
pub const STAMP: &[u8] = b"b|";

/// What one frame from the server means to the generator.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// Engine.IO ping (`2`): answer `3`.
    Ping,
    /// Engine.IO open packet (`0{...}`).
    Open,
    /// Socket.IO namespace connected (`40{...}`).
    Connected,
    /// Socket.IO connect error (`44{...}`).
    ConnectError(&'a [u8]),
    /// Socket.IO disconnect from the server (`41`).
    Disconnect,
    /// A `message` or `private` event carrying a stamped text: the text.
    Delivery(&'a [u8]),
    /// An acknowledgement.
    Ack {
        id: u64,
        ok: bool,
        code: Option<&'a [u8]>,
    },
    /// An `error` event (a refusal without ack) and its `code`, if any.
    ErrorEvent(Option<&'a [u8]>),
    /// Anything else: session, room lists, presence, join notices, pongs.
    Other,
}

impl Proto {
    pub fn path(self) -> &'static str {
        match self {
            Proto::SocketIo | Proto::Seed002 => "/socket.io/?EIO=4&transport=websocket",
            Proto::Bare => "/",
        }
    }

    /// The name the `hold` worker takes on its command line.
    pub fn name(self) -> &'static str {
        match self {
            Proto::SocketIo => "socketio",
            Proto::Bare => "bare",
            Proto::Seed002 => "seed002",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Proto::SocketIo, Proto::Bare, Proto::Seed002]
            .into_iter()
            .find(|p| p.name() == name)
    }

    /// Whether the server acknowledges joins and messages. Without acks a join is
    /// complete when [`Proto::joined`] says so, and a message counts as accepted
    /// once sent (loss is still exact: it is counted from deliveries).
    pub fn acks(self) -> bool {
        !matches!(self, Proto::Seed002)
    }

    pub fn classify(self, frame: &[u8]) -> Incoming<'_> {
        match self {
            // Seed 002's deliveries (`message {text, user}`) classify like the
            // chat's: only stamped texts count.
            Proto::SocketIo | Proto::Seed002 => classify_socketio(frame),
            Proto::Bare => classify_bare(frame),
        }
    }

    /// For protocols without a join ack: whether `frame` completes the join of
    /// `name`. Seed 002 answers a join with `groupList` to the joiner; the first
    /// `groupList` naming the joiner is that answer (its own emit precedes any
    /// later broadcast of the list on its connection).
    pub fn joined(self, frame: &[u8], name: &str) -> bool {
        match self {
            Proto::Seed002 => {
                frame.starts_with(br#"42["groupList","#) && {
                    let mut needle = Vec::with_capacity(name.len() + 10);
                    needle.extend_from_slice(br#""name":""#);
                    needle.extend_from_slice(name.as_bytes());
                    needle.push(b'"');
                    find(frame, &needle).is_some()
                }
            }
            Proto::SocketIo | Proto::Bare => false,
        }
    }

    pub fn join(self, out: &mut Vec<u8>, ack: u64, room: &str, name: &str) {
        out.clear();
        match self {
            Proto::SocketIo => write!(
                out,
                r#"42{ack}["join",{{"room":"{room}","name":"{name}"}}]"#
            ),
            Proto::Bare => write!(
                out,
                r#"{{"t":"join","id":{ack},"room":"{room}","name":"{name}"}}"#
            ),
            Proto::Seed002 => write!(out, r#"42["join",{{"name":"{name}","room":"{room}"}}]"#),
        }
        .expect("writing to a Vec cannot fail");
    }

    /// A room message from `user` (seed 002 names the sender in the message).
    pub fn message(self, out: &mut Vec<u8>, ack: u64, room: &str, user: &str, text: &str) {
        out.clear();
        match self {
            Proto::SocketIo => write!(
                out,
                r#"42{ack}["message",{{"room":"{room}","text":"{text}"}}]"#
            ),
            Proto::Bare => write!(
                out,
                r#"{{"t":"message","id":{ack},"room":"{room}","text":"{text}"}}"#
            ),
            Proto::Seed002 => write!(
                out,
                r#"42["message",{{"text":"{text}","room":"{room}","user":"{user}"}}]"#
            ),
        }
        .expect("writing to a Vec cannot fail");
    }

    pub fn private(self, out: &mut Vec<u8>, ack: u64, to: &str, text: &str) {
        out.clear();
        match self {
            Proto::SocketIo | Proto::Seed002 => {
                write!(out, r#"42{ack}["private",{{"to":"{to}","text":"{text}"}}]"#)
            }
            Proto::Bare => write!(
                out,
                r#"{{"t":"private","id":{ack},"to":"{to}","text":"{text}"}}"#
            ),
        }
        .expect("writing to a Vec cannot fail");
    }
}

pub(crate) fn digits(bytes: &[u8]) -> (u64, usize) {
    let mut value = 0u64;
    let mut n = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        n += 1;
    }
    (value, n)
}

/// The value of the string field `"name":"..."` (no escapes expected).
pub(crate) fn string_field<'a>(json: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let at = find(json, name)? + name.len();
    let end = json[at..].iter().position(|&b| b == b'"')?;
    Some(&json[at..at + end])
}

/// The value of the number field `"name":123` (`name` includes the quotes and colon).
pub(crate) fn number_field(json: &[u8], name: &[u8]) -> Option<u64> {
    let at = find(json, name)? + name.len();
    let (value, n) = digits(&json[at..]);
    (n > 0).then_some(value)
}

/// The stamped text of a delivered message.
pub(crate) fn stamped_text(json: &[u8]) -> Option<&[u8]> {
    let text = string_field(json, b"\"text\":\"")?;
    text.starts_with(STAMP).then_some(text)
}

fn ack<'a>(id: u64, json: &'a [u8]) -> Incoming<'a> {
    let ok = find(json, b"\"ok\":true").is_some();
    let code = if ok {
        None
    } else {
        string_field(json, b"\"code\":\"")
    };
    Incoming::Ack { id, ok, code }
}

fn classify_socketio(frame: &[u8]) -> Incoming<'_> {
    match frame {
        b"2" => Incoming::Ping,
        [b'0', ..] => Incoming::Open,
        [b'4', b'2', rest @ ..] => {
            let (_, n) = digits(rest);
            let body = &rest[n..];
            if body.starts_with(b"[\"message\",") || body.starts_with(b"[\"private\",") {
                match stamped_text(body) {
                    Some(text) => Incoming::Delivery(text),
                    None => Incoming::Other,
                }
            } else if body.starts_with(b"[\"error\",") {
                Incoming::ErrorEvent(string_field(body, b"\"code\":\""))
            } else {
                Incoming::Other
            }
        }
        [b'4', b'3', rest @ ..] => {
            let (id, n) = digits(rest);
            ack(id, &rest[n..])
        }
        [b'4', b'0', ..] => Incoming::Connected,
        [b'4', b'4', rest @ ..] => Incoming::ConnectError(rest),
        [b'4', b'1', ..] => Incoming::Disconnect,
        _ => Incoming::Other,
    }
}

fn classify_bare(frame: &[u8]) -> Incoming<'_> {
    if frame.starts_with(br#"{"t":"message""#) || frame.starts_with(br#"{"t":"private""#) {
        match stamped_text(frame) {
            Some(text) => Incoming::Delivery(text),
            None => Incoming::Other,
        }
    } else if let Some(rest) = frame.strip_prefix(br#"{"t":"ack","id":"#) {
        let (id, n) = digits(rest);
        ack(id, &rest[n..])
    } else if frame.starts_with(br#"{"t":"error""#) {
        Incoming::ErrorEvent(string_field(frame, b"\"code\":\""))
    } else {
        Incoming::Other
    }
}

/// What the generator writes into each message's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub step: u32,
    pub sender: u32,
    pub seq: u32,
    /// Microseconds since the generator's epoch at send time.
    pub sent_us: u64,
}

impl Stamp {
    /// `b|step|sender|seq|sent_us|` padded with `x` to `len` bytes.
    pub fn write(&self, out: &mut String, len: usize) {
        out.clear();
        write!(
            out,
            "b|{}|{}|{}|{}|",
            self.step, self.sender, self.seq, self.sent_us
        )
        .expect("writing to a String");
        while out.len() < len {
            out.push('x');
        }
    }

    pub fn parse(text: &[u8]) -> Option<Self> {
        let rest = text.strip_prefix(STAMP)?;
        let mut fields = rest.split(|&b| b == b'|');
        let mut next = || {
            let field = fields.next()?;
            let (value, n) = digits(field);
            (n == field.len() && n > 0).then_some(value)
        };
        Some(Self {
            step: next()? as u32,
            sender: next()? as u32,
            seq: next()? as u32,
            sent_us: next()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socketio_frames() {
        assert_eq!(Proto::SocketIo.classify(b"2"), Incoming::Ping);
        assert_eq!(
            Proto::SocketIo.classify(br#"0{"sid":"x","pingInterval":25000}"#),
            Incoming::Open
        );
        assert_eq!(
            Proto::SocketIo.classify(br#"40{"sid":"y"}"#),
            Incoming::Connected
        );
        assert_eq!(
            Proto::SocketIo.classify(
                br#"42["message",{"id":"4","room":"r","user":"u1","user_id":"u1","text":"b|1|2|3|4|xx","ts":1,"kind":"chat"}]"#
            ),
            Incoming::Delivery(b"b|1|2|3|4|xx")
        );
        assert_eq!(
            Proto::SocketIo.classify(
                br#"42["message",{"id":null,"room":"r","user":"system","user_id":null,"text":"u1 joined","ts":1,"kind":"join"}]"#
            ),
            Incoming::Other
        );
        assert_eq!(
            Proto::SocketIo.classify(br#"4317[{"ok":true,"id":"1"}]"#),
            Incoming::Ack {
                id: 17,
                ok: true,
                code: None
            }
        );
        assert_eq!(
            Proto::SocketIo.classify(br#"432[{"ok":false,"code":"rate_limited","message":"x"}]"#),
            Incoming::Ack {
                id: 2,
                ok: false,
                code: Some(b"rate_limited")
            }
        );
        assert_eq!(
            Proto::SocketIo.classify(br#"44{"message":"too_many_connections"}"#),
            Incoming::ConnectError(br#"{"message":"too_many_connections"}"#)
        );
    }

    #[test]
    fn seed002_frames() {
        let seed = Proto::Seed002;
        assert_eq!(
            seed.classify(br#"42["message",{"text":"b|1|2|3|4|xx","user":"u2"}]"#),
            Incoming::Delivery(b"b|1|2|3|4|xx")
        );
        // The join notice to everyone else is not a delivery.
        assert_eq!(
            seed.classify(r#"42["message",{"user":"管理员：","text":"u1进入了房间"}]"#.as_bytes()),
            Incoming::Other
        );
        let list = br#"42["groupList",{"room-0":[{"name":"u1","room":"room-0","id":"a"},{"name":"u12","room":"room-0","id":"b"}]}]"#;
        assert!(seed.joined(list, "u1"));
        assert!(seed.joined(list, "u12"));
        assert!(!seed.joined(list, "u2"));
        assert!(!seed.joined(br#"42["message",{"text":""name":"u1""}]"#, "u1"));
        assert!(!Proto::SocketIo.joined(list, "u1"));
        assert!(!seed.acks() && Proto::SocketIo.acks() && Proto::Bare.acks());
        assert_eq!(
            seed.classify(br#"42["error",{"ok":false,"code":"rate_limited","message":"x","event":"message"}]"#),
            Incoming::ErrorEvent(Some(b"rate_limited"))
        );
        assert_eq!(Proto::parse("seed002"), Some(Proto::Seed002));
    }

    #[test]
    fn bare_frames() {
        assert_eq!(
            Proto::Bare.classify(br#"{"t":"message","id":"1","room":"r","text":"b|0|1|2|3|"}"#),
            Incoming::Delivery(b"b|0|1|2|3|")
        );
        assert_eq!(
            Proto::Bare.classify(br#"{"t":"ack","id":5,"ok":true}"#),
            Incoming::Ack {
                id: 5,
                ok: true,
                code: None
            }
        );
    }

    #[test]
    fn stamps_round_trip() {
        let stamp = Stamp {
            step: 3,
            sender: 999,
            seq: 12,
            sent_us: 123_456_789,
        };
        let mut text = String::new();
        stamp.write(&mut text, 64);
        assert_eq!(text.len(), 64);
        assert_eq!(Stamp::parse(text.as_bytes()), Some(stamp));
        assert_eq!(Stamp::parse(b"u1 joined"), None);
    }

    #[test]
    fn encoders() {
        let mut out = Vec::new();
        Proto::SocketIo.message(&mut out, 7, "room-1", "u1", "b|x");
        assert_eq!(out, br#"427["message",{"room":"room-1","text":"b|x"}]"#);
        Proto::Seed002.message(&mut out, 7, "room-1", "u1", "b|x");
        assert_eq!(
            out,
            br#"42["message",{"text":"b|x","room":"room-1","user":"u1"}]"#
        );
        Proto::Seed002.join(&mut out, 1, "room-1", "u1");
        assert_eq!(out, br#"42["join",{"name":"u1","room":"room-1"}]"#);
        Proto::Bare.private(&mut out, 8, "u2", "hi");
        assert_eq!(out, br#"{"t":"private","id":8,"to":"u2","text":"hi"}"#);
    }
}
