//! Connection state recovery (socket.io's `connectionStateRecovery`): the
//! sessions of connections that went away without a goodbye, and the recent
//! broadcasts of host namespaces, so that a client that comes back in time gets
//! its socket id, its rooms and what it missed.
//!
//! The wire is socket.io's: every socket gets a private session id (`pid`, in the
//! CONNECT answer `{sid, pid}`); every broadcast that can be replayed carries its
//! offset (a string) as its last argument; a reconnecting client sends
//! `{pid, offset}` (the last offset it got) in its CONNECT auth.
//!
//! Order without gaps or doubles: the executor numbers a broadcast, records it
//! and hands it to socketioxide's fan-out under one lock ([`Recovery::broadcast`]),
//! and every broadcast leaves out the sockets in [`RESTORING`]. A resumed
//! socket is in that room from before it enters its namespace until its replay
//! (under the same lock) is done: each broadcast up to the replay's end reaches it
//! from the replay only, each later one live only.
//!
//! Memory: the broadcasts are bounded in bytes and age, the sessions in number
//! and bytes each ([`RecoveryConfig`]); what is over a bound is forgotten (the
//! oldest first), and a client that needs it connects as a new one. Expired
//! entries are dropped whenever the state is touched (a connect, a disconnect, a
//! recorded broadcast).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::handler::Value;
use socketioxide::socket::{DisconnectReason, Sid};
use socketioxide::{SendError, SocketError};
use socketioxide_core::Str;

use super::args::OutArgs;
use super::commands::Target;
use crate::config::RecoveryConfig;

/// The room a resumed socket is in until its replay is done; every broadcast
/// leaves it out. Not a name a client can make (socket.io apps name
/// rooms freely, but not with a NUL).
pub(crate) const RESTORING: &str = "\u{0}palaver:restoring";

/// What is kept of a broadcast, per entry, besides its name and arguments.
const ENTRY_OVERHEAD: usize = 128;
/// What is kept of a session besides its room names and private id.
const SESSION_OVERHEAD: usize = 128;

/// One recorded broadcast.
struct Logged {
    seq: u64,
    at: Instant,
    ns: Arc<str>,
    rooms: Vec<String>,
    except: Vec<String>,
    event: String,
    args: Arc<OutArgs>,
    bytes: usize,
}

impl Logged {
    /// socket.io's `shouldIncludePacket`: in one of the rooms (or no rooms
    /// named), and in none of the excepted ones.
    fn reaches(&self, rooms: &[String]) -> bool {
        let included = self.rooms.is_empty() || rooms.iter().any(|r| self.rooms.contains(r));
        included && !rooms.iter().any(|r| self.except.contains(r))
    }
}

/// A connection that went away and may come back.
struct Session {
    sid: Sid,
    ns: Arc<str>,
    rooms: Vec<String>,
    gone_at: Instant,
    bytes: usize,
}

/// What a socket about to connect resumes.
pub(crate) struct Resumed {
    /// Its rooms, its own id's included.
    pub rooms: Vec<String>,
    /// The last broadcast its client got.
    offset: u64,
}

/// The private session of a socket (kept on its `HostSocket`).
pub(crate) struct Private {
    pub pid: Str,
    /// `Some` until the replay is done, when the socket resumes a session.
    pub resumed: Option<Resumed>,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    log: VecDeque<Logged>,
    log_bytes: usize,
    sessions: HashMap<Str, Session>,
    sessions_bytes: usize,
    /// Private session ids in the order their connections went (an entry whose
    /// session was resumed since is skipped).
    gone: VecDeque<(Instant, Str)>,
    /// Sockets between their CONNECT and their admission, by id.
    pending: HashMap<Sid, Private>,
}

pub(crate) struct Recovery {
    config: RecoveryConfig,
    /// Most broadcasts one replay may queue: half a connection's packet buffer,
    /// so that the replay and what goes on live both fit.
    max_replay: usize,
    state: Mutex<State>,
}

impl Recovery {
    pub(crate) fn new(config: RecoveryConfig, max_buffer_size: usize) -> Self {
        Self {
            config,
            max_replay: (max_buffer_size / 2).max(1),
            state: Mutex::new(State {
                next_seq: 1,
                ..State::default()
            }),
        }
    }

    pub(crate) fn skip_middlewares(&self) -> bool {
        self.config.skip_middlewares
    }

    fn window(&self) -> Duration {
        Duration::from_millis(self.config.max_disconnection_ms)
    }

    /// A broadcast of the host: numbered, recorded, its offset appended as its
    /// last argument, and handed to `send` (which fans it out) while the lock is
    /// held. Volatile broadcasts are neither numbered nor recorded, as in
    /// socket.io.
    pub(crate) fn broadcast<R>(
        &self,
        to: &Target,
        event: String,
        args: OutArgs,
        send: impl FnOnce(String, Arc<OutArgs>) -> R,
    ) -> R {
        if to.volatile {
            return send(event, args.shared());
        }
        let mut state = self.state.lock();
        let now = Instant::now();
        self.expire(&mut state, now);
        let seq = state.next_seq;
        state.next_seq += 1;
        let args = args.with_last_string(&seq.to_string()).shared();
        let bytes = ENTRY_OVERHEAD
            + event.len()
            + args.size()
            + to.rooms
                .iter()
                .chain(&to.except)
                .map(String::len)
                .sum::<usize>();
        state.log_bytes += bytes;
        state.log.push_back(Logged {
            seq,
            at: now,
            ns: to.ns.as_str().into(),
            rooms: to.rooms.clone(),
            except: to.except.clone(),
            event: event.clone(),
            args: args.clone(),
            bytes,
        });
        while state.log_bytes > self.config.max_buffer_bytes {
            let Some(old) = state.log.pop_front() else {
                break;
            };
            state.log_bytes -= old.bytes;
        }
        send(event, args)
    }

    /// At CONNECT, before the socket exists: the session its auth names, if it
    /// can be resumed (taken: a session resumes once), or a fresh one.
    pub(crate) fn session(&self, ns: &str, auth: &Option<Value>) -> (Sid, Str) {
        let mut state = self.state.lock();
        let now = Instant::now();
        self.expire(&mut state, now);
        let (sid, private) = match self.resumable(&mut state, ns, auth) {
            Some(found) => found,
            None => (
                Sid::new(),
                Private {
                    pid: new_pid(),
                    resumed: None,
                },
            ),
        };
        let pid = private.pid.clone();
        state.pending.insert(sid, private);
        (sid, pid)
    }

    fn resumable(
        &self,
        state: &mut State,
        ns: &str,
        auth: &Option<Value>,
    ) -> Option<(Sid, Private)> {
        let (pid, offset) = pid_and_offset(auth)?;
        let session = state.sessions.get(pid.as_str())?;
        if &*session.ns != ns {
            return None;
        }
        // The client's last offset must still be recorded: then everything after
        // it is too.
        let offset: u64 = offset.parse().ok()?;
        let first = state.log.front()?.seq;
        if offset < first || offset >= state.next_seq {
            return None;
        }
        let start = (offset - first + 1) as usize;
        let missed = state
            .log
            .range(start..)
            .filter(|l| &*l.ns == ns && l.reaches(&session.rooms))
            .count();
        if missed > self.max_replay {
            return None;
        }
        let (pid, session) = state.sessions.remove_entry(pid.as_str())?;
        state.sessions_bytes -= session.bytes;
        Some((
            session.sid,
            Private {
                pid,
                resumed: Some(Resumed {
                    rooms: session.rooms,
                    offset,
                }),
            },
        ))
    }

    /// At admission: the private session given to the socket at CONNECT.
    pub(crate) fn take_pending(&self, sid: Sid) -> Option<Private> {
        self.state.lock().pending.remove(&sid)
    }

    /// Once the resumed socket is in its namespace: the broadcasts it missed,
    /// then live ones (it leaves [`RESTORING`]). Returns how many were replayed.
    pub(crate) fn replay<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        resumed: Resumed,
        dropped: impl Fn(usize),
    ) -> usize {
        let state = self.state.lock();
        let mut replayed = 0;
        let mut lost = 0;
        if let Some(first) = state.log.front().map(|l| l.seq) {
            if first > resumed.offset + 1 {
                // Forgotten (over the byte bound) since the CONNECT was checked.
                tracing::debug!(sid = %socket.id, "broadcasts to replay were forgotten");
                lost += 1;
            }
            let start = resumed.offset.saturating_sub(first).saturating_add(1) as usize;
            let ns = socket.ns();
            for logged in state.log.range(start.min(state.log.len())..) {
                if logged.seq <= resumed.offset
                    || &*logged.ns != ns
                    || !logged.reaches(&resumed.rooms)
                {
                    continue;
                }
                match socket.emit(&logged.event, &*logged.args) {
                    Ok(()) => replayed += 1,
                    Err(SendError::Socket(SocketError::InternalChannelFull)) => lost += 1,
                    Err(e) => tracing::debug!("replay to {} failed: {e}", socket.id),
                }
            }
        }
        socket.leave(RESTORING);
        drop(state);
        if lost > 0 {
            dropped(lost);
        }
        replayed
    }

    /// At disconnect: keeps the session if the client may come back (it did not
    /// leave on purpose) and it fits.
    pub(crate) fn keep(
        &self,
        ns: &str,
        sid: Sid,
        pid: Str,
        rooms: Vec<String>,
        reason: DisconnectReason,
    ) {
        if !recoverable(reason) {
            return;
        }
        let rooms: Vec<String> = rooms.into_iter().filter(|r| r != RESTORING).collect();
        let room_bytes: usize = rooms.iter().map(String::len).sum();
        if room_bytes > self.config.max_session_bytes {
            return;
        }
        let bytes = SESSION_OVERHEAD + pid.len() + ns.len() + room_bytes;
        let mut state = self.state.lock();
        let now = Instant::now();
        self.expire(&mut state, now);
        while state.sessions.len() >= self.config.max_sessions
            || state.sessions_bytes + bytes > self.config.max_sessions_bytes
        {
            if !forget_oldest(&mut state) {
                break;
            }
        }
        // Entries of sessions resumed since are dropped once they are most of
        // the queue, so that it stays within twice the sessions kept.
        if state.gone.len() > 2 * state.sessions.len() + 16 {
            let State { gone, sessions, .. } = &mut *state;
            gone.retain(|(at, pid)| sessions.get(pid).is_some_and(|s| s.gone_at == *at));
        }
        state.gone.push_back((now, pid.clone()));
        state.sessions_bytes += bytes;
        let old = state.sessions.insert(
            pid,
            Session {
                sid,
                ns: ns.into(),
                rooms,
                gone_at: now,
                bytes,
            },
        );
        if let Some(old) = old {
            state.sessions_bytes -= old.bytes;
        }
    }

    /// Drops broadcasts and sessions older than the window.
    fn expire(&self, state: &mut State, now: Instant) {
        let Some(threshold) = now.checked_sub(self.window()) else {
            return;
        };
        while state.log.front().is_some_and(|l| l.at < threshold) {
            if let Some(old) = state.log.pop_front() {
                state.log_bytes -= old.bytes;
            }
        }
        while state.gone.front().is_some_and(|(at, _)| *at < threshold) {
            forget_oldest(state);
        }
    }

    /// Sessions kept, their bytes and bytes of broadcasts recorded, now.
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize, usize) {
        let state = self.state.lock();
        (state.sessions.len(), state.sessions_bytes, state.log_bytes)
    }
}

/// Forgets the session of the oldest disconnection still kept; `false` when
/// there is none.
fn forget_oldest(state: &mut State) -> bool {
    while let Some((at, pid)) = state.gone.pop_front() {
        // Only if it is that disconnection's session (not one resumed and gone
        // again since, which has an entry of its own further on).
        if state.sessions.get(&pid).is_some_and(|s| s.gone_at == at) {
            if let Some(session) = state.sessions.remove(&pid) {
                state.sessions_bytes -= session.bytes;
            }
            return true;
        }
    }
    false
}

/// socket.io's `RECOVERABLE_DISCONNECT_REASONS`: the connection went without
/// the client or the server closing it on purpose.
fn recoverable(reason: DisconnectReason) -> bool {
    matches!(
        reason,
        DisconnectReason::TransportClose
            | DisconnectReason::TransportError
            | DisconnectReason::HeartbeatTimeout
    )
}

/// A private session id: 192 random bits (two Engine.IO session ids, which come
/// from a cryptographically secure generator), 32 url-safe characters.
fn new_pid() -> Str {
    let mut pid = String::with_capacity(32);
    pid.push_str(Sid::new().as_str());
    pid.push_str(Sid::new().as_str());
    Str::from(pid)
}

/// `{pid, offset}` of a CONNECT auth, both strings.
fn pid_and_offset(auth: &Option<Value>) -> Option<(String, String)> {
    let text = auth.as_ref()?.as_str()?;
    #[derive(serde::Deserialize)]
    struct Auth {
        pid: Option<serde_json::Value>,
        offset: Option<serde_json::Value>,
    }
    let auth: Auth = serde_json::from_str(text.as_str()).ok()?;
    match (auth.pid?, auth.offset?) {
        (serde_json::Value::String(pid), serde_json::Value::String(offset)) => Some((pid, offset)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(json: &str) -> Option<Value> {
        Some(Value::Str(Str::from(json.to_string()), None))
    }

    fn recovery(config: RecoveryConfig) -> Recovery {
        Recovery::new(config, 1024)
    }

    fn send(r: &Recovery, to: &Target, event: &str) -> String {
        r.broadcast(
            to,
            event.into(),
            OutArgs::from_values(&[1.into()]),
            |_, args| args.json().to_string(),
        )
    }

    #[test]
    fn broadcasts_carry_their_offset_last_and_volatile_ones_none() {
        let r = recovery(RecoveryConfig::default());
        let to = Target::namespace("/");
        assert_eq!(send(&r, &to, "a"), r#"[1,"1"]"#);
        assert_eq!(send(&r, &to, "a"), r#"[1,"2"]"#);
        let volatile = Target {
            volatile: true,
            ..Target::namespace("/")
        };
        assert_eq!(send(&r, &volatile, "a"), "[1]");
    }

    #[test]
    fn a_session_resumes_once_in_its_namespace_with_a_known_offset() {
        let r = recovery(RecoveryConfig::default());
        let to = Target::namespace("/");
        send(&r, &to, "a");
        let (sid, pid) = r.session("/", &None);
        assert!(r.take_pending(sid).unwrap().resumed.is_none());
        r.keep(
            "/",
            sid,
            pid.clone(),
            vec![sid.to_string(), "room".into()],
            DisconnectReason::TransportClose,
        );
        let good = format!(r#"{{"pid":"{pid}","offset":"1"}}"#);
        // Another namespace, an unknown offset, a forged pid: a new session.
        assert_ne!(r.session("/admin", &auth(&good)).0, sid);
        assert_ne!(
            r.session("/", &auth(&format!(r#"{{"pid":"{pid}","offset":"9"}}"#)))
                .0,
            sid
        );
        assert_ne!(
            r.session("/", &auth(r#"{"pid":"forged","offset":"1"}"#)).0,
            sid
        );
        let (again, same) = r.session("/", &auth(&good));
        assert_eq!((again, &same), (sid, &pid));
        let resumed = r.take_pending(sid).unwrap().resumed.unwrap();
        assert_eq!(resumed.rooms, vec![sid.to_string(), "room".to_string()]);
        assert_ne!(
            r.session("/", &auth(&good)).0,
            sid,
            "a session resumes once"
        );
    }

    #[test]
    fn leaving_on_purpose_keeps_no_session() {
        let r = recovery(RecoveryConfig::default());
        let (sid, pid) = r.session("/", &None);
        r.keep("/", sid, pid, vec![], DisconnectReason::ClientNSDisconnect);
        assert_eq!(r.sizes().0, 0);
    }

    #[test]
    fn bounds_forget_the_oldest() {
        let r = recovery(RecoveryConfig {
            max_buffer_bytes: 1000,
            max_sessions: 2,
            ..RecoveryConfig::default()
        });
        let to = Target::namespace("/");
        for _ in 0..100 {
            send(&r, &to, "a");
        }
        assert!(r.sizes().2 <= 1000);
        for _ in 0..3 {
            let (sid, pid) = r.session("/", &None);
            r.keep("/", sid, pid, vec![], DisconnectReason::TransportClose);
        }
        assert_eq!(r.sizes().0, 2);

        // In bytes: sessions of 300 bytes of rooms, 1000 bytes for all.
        let r = recovery(RecoveryConfig {
            max_sessions_bytes: 1000,
            ..RecoveryConfig::default()
        });
        let mut pids = Vec::new();
        for _ in 0..5 {
            let (sid, pid) = r.session("/", &None);
            r.keep(
                "/",
                sid,
                pid.clone(),
                vec!["r".repeat(300)],
                DisconnectReason::TransportClose,
            );
            pids.push(pid);
        }
        let (count, bytes, _) = r.sizes();
        assert_eq!(count, 2);
        assert!(bytes <= 1000);
        // The newest are the ones kept.
        let state = r.state.lock();
        assert!(pids[3..].iter().all(|pid| state.sessions.contains_key(pid)));
    }

    #[test]
    fn a_session_resumed_and_gone_again_is_not_forgotten_by_its_first_disconnection() {
        let r = recovery(RecoveryConfig {
            max_sessions: 2,
            ..RecoveryConfig::default()
        });
        let to = Target::namespace("/");
        send(&r, &to, "a");
        let gone = |r: &Recovery, sid, pid: &Str| {
            r.take_pending(sid);
            r.keep(
                "/",
                sid,
                pid.clone(),
                vec![sid.to_string()],
                DisconnectReason::TransportClose,
            );
        };
        let (sid, pid) = r.session("/", &None);
        gone(&r, sid, &pid);
        let (x, x_pid) = r.session("/", &None);
        gone(&r, x, &x_pid);
        // `pid` resumes and goes again: now the newest disconnection.
        let good = format!(r#"{{"pid":"{pid}","offset":"1"}}"#);
        assert_eq!(r.session("/", &auth(&good)).0, sid);
        gone(&r, sid, &pid);
        // A third one is over the count: the oldest kept session is x's, not
        // `pid`'s (whose first disconnection is older, but resumed since).
        let (y, y_pid) = r.session("/", &None);
        gone(&r, y, &y_pid);
        let state = r.state.lock();
        assert!(state.sessions.contains_key(&pid));
        assert!(!state.sessions.contains_key(&x_pid));
        assert!(state.sessions.contains_key(&y_pid));
    }

    #[test]
    fn too_many_missed_broadcasts_are_not_replayed() {
        let r = Recovery::new(RecoveryConfig::default(), 8);
        let to = Target::namespace("/");
        send(&r, &to, "a");
        let (sid, pid) = r.session("/", &None);
        r.keep(
            "/",
            sid,
            pid.clone(),
            vec![sid.to_string()],
            DisconnectReason::HeartbeatTimeout,
        );
        for _ in 0..5 {
            send(&r, &to, "a");
        }
        let good = format!(r#"{{"pid":"{pid}","offset":"1"}}"#);
        assert_ne!(r.session("/", &auth(&good)).0, sid);
    }
}
