//! Scenario (f), the reconnect storm: N clients joined to one room close their
//! transports at once and reconnect with recovery while a few senders keep
//! talking to the room. Measured: the time until every client has every message
//! it missed, the missed messages replayed per second, and the server's peak RSS
//! and CPU seconds during the storm.
//!
//! Recovery is each server's own:
//! - Palaver's chat protocol: `join {room, name, since: {offset, epoch}}` answers
//!   `recovered: true` and `history` = exactly the messages after `since.offset`;
//!   a live message whose `offset` is not the last one + 1 is a gap, fetched with
//!   `history {room, after: {offset, epoch}}`.
//! - Node Socket.IO's `connectionStateRecovery`, as the stock client does it: the
//!   CONNECT reply carries `{sid, pid}`, every broadcast packet an offset string as
//!   its last argument, and a reconnection sends CONNECT with `{pid, offset}`; the
//!   server writes the missed packets, then the CONNECT reply with the same `pid`
//!   (`socket.recovered`).
//!
//! Completeness is checked by position in the room: Palaver's `offset`, and the
//! Node server's message `id` (one counter, and the storm room has all its
//! messages). The senders' acks map every position to the sender and sequence
//! number stamped in the text, so each client's messages are checked for content
//! as well as count and order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::client::{now_us, source_ip, Traffic};
use crate::proto::{digits, number_field, stamped_text, string_field, Proto, Stamp};
use crate::servers::{self, Server, ServerKind};
use crate::sys::CpuSnapshot;
use crate::ws::{Frame, WsConn};

/// The storm's sizes and pacing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StormPlan {
    /// Clients in the room that drop and reconnect.
    pub clients: u32,
    /// Members of the room that keep talking during the storm (they do not drop).
    pub senders: u32,
    /// Messages per second per sender.
    pub rate: f64,
    /// How long the clients stay away before reconnecting, in milliseconds.
    pub down_ms: u64,
    /// Reconnections in flight at a time (connect to the recovery's answer), the
    /// same for every server: opening thousands at once overflows the listen
    /// backlog, and the kernel then retries SYNs after a second.
    pub concurrency: usize,
    /// Connections in flight while the room fills, before the storm.
    pub join_concurrency: usize,
    /// Seconds of talk before the drop.
    pub lead_secs: f64,
    /// Seconds of talk after the last client recovered.
    pub tail_secs: f64,
}

/// How a server recovers a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Palaver's chat protocol: `join` with `since`, `history` with `after`.
    Chat,
    /// Socket.IO's connection state recovery (pid and offset in CONNECT).
    SocketIo,
}

/// The servers the storm runs on and their recovery; the others have none.
pub fn recovery_of(kind: ServerKind) -> Option<Recovery> {
    match kind {
        ServerKind::Palaver | ServerKind::PalaverExpress => Some(Recovery::Chat),
        ServerKind::SocketioExpress => Some(Recovery::SocketIo),
        _ => None,
    }
}

/// The environment a server needs for the storm: the Node Socket.IO server turns
/// `connectionStateRecovery` on (off in the other scenarios, whose numbers would
/// otherwise include the packets it keeps for it).
pub fn server_env(kind: ServerKind) -> &'static [(&'static str, &'static str)] {
    match recovery_of(kind) {
        Some(Recovery::SocketIo) => &[("BENCH_RECOVERY", "1")],
        _ => &[],
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StormResult {
    pub requested: u32,
    pub clients: u32,
    pub capped: Option<String>,
    /// Clients that could not join (`clients` does not count them).
    #[serde(default)]
    pub join_failed: u64,
    #[serde(default)]
    pub join_error: Option<String>,
    pub senders: u32,
    pub rate_per_sender: f64,
    pub down_ms: u64,
    pub concurrency: usize,
    /// The room filling: from the first connect to the last join, and until the
    /// clients stopped receiving (join notices) before the talk started.
    pub join_seconds: f64,
    pub quiet_seconds: f64,
    pub join_frames: u64,
    pub join_mb: f64,
    /// From the drop until the last client had every message it missed (or gave
    /// up: see `not_recovered`, `failed`).
    pub seconds_to_all_recovered: f64,
    /// From the drop until the last recovery answer (CONNECT reply, join ack).
    pub seconds_to_last_answer: f64,
    /// Per client, from the drop until it had every missed message.
    pub recovered_p50_ms: f64,
    pub recovered_p99_ms: f64,
    /// Per reconnection, from its TCP connect to the recovery's answer.
    pub answer_p50_ms: f64,
    pub answer_p99_ms: f64,
    pub answer_max_ms: f64,
    pub reconnected: u64,
    pub recovered: u64,
    /// Reconnected, but the server did not recover the connection.
    pub not_recovered: u64,
    pub not_recovered_reasons: BTreeMap<String, u64>,
    /// Could not reconnect (or failed later).
    pub failed: u64,
    pub errors: Vec<String>,
    /// Connect attempts that failed and were retried (after 1 s, like the stock
    /// client's reconnection delay).
    pub connect_retries: u64,
    /// Missed messages the clients received through recovery (replayed packets,
    /// join history, history pages until recovered).
    pub replayed: u64,
    pub replayed_per_second: f64,
    pub replayed_min: u64,
    pub replayed_max: u64,
    /// Palaver: live messages with a gap before them (dropped for a client too
    /// slow to read), and the messages fetched with `history` to fill the gaps.
    pub gap_fetches: u64,
    pub fetched: u64,
    /// Messages the senders sent and had acknowledged, and the room's last position.
    pub sent: u64,
    pub acked: u64,
    pub refused: u64,
    pub first_position: u64,
    pub final_position: u64,
    /// Over all clients: messages due (from each one's first to the last) that it
    /// does not have in order; received past a hole; received twice (dropped as
    /// duplicates by position); whose content differs from what the sender's ack
    /// said is at that position.
    pub missing: u64,
    pub beyond_holes: u64,
    pub duplicates: u64,
    pub content_mismatch: u64,
    /// Messages received at a position no ack named (their sender was closed
    /// before its ack came), so their content could not be checked.
    pub unverified: u64,
    /// Clients whose messages were complete, in order and as sent.
    pub complete_clients: u64,
    /// Frames the clients received from the drop until all recovered, and the join
    /// and leave notices (and presence events) among them.
    pub storm_frames: u64,
    pub storm_notices: u64,
    pub storm_mb: f64,
    pub rss_before_kb: u64,
    /// VmHWM after resetting it at the drop (`/proc/<pid>/clear_refs`), or the
    /// highest VmRSS sampled every 50 ms when that could not be reset.
    pub rss_peak_kb: u64,
    pub rss_peak_how: String,
    pub rss_after_kb: u64,
    /// CPU time from the drop until all recovered.
    pub server_cpu_seconds: f64,
    pub generator_cpu_seconds: f64,
    pub other_cpu_seconds: f64,
}

const ROOM: &str = "storm";
/// Longer than a stock client waits (20 s, then it retries): the bench measures
/// how long answers take under the storm rather than adding retries to it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_ATTEMPTS: u32 = 5;
const RETRY_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Joined, reading.
    Run,
    /// Close the transport, wait, reconnect with recovery.
    Drop,
    /// The senders have stopped: a Palaver client behind the last position
    /// fetches what it lacks (as it would at the next live message).
    Settle,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Talk {
    Wait,
    Send,
    Quiet,
    Stop,
}

/// What every client task shares.
struct Ctx {
    addr: std::net::SocketAddr,
    recovery: Recovery,
    text_bytes: usize,
    down: Duration,
    join_permits: Arc<Semaphore>,
    storm_permits: Arc<Semaphore>,
    /// Everything the clients receive (for waiting until quiet).
    traffic: Traffic,
    /// Set from the drop until all clients are done: counts storm traffic.
    storming: AtomicBool,
    storm_frames: AtomicU64,
    storm_notices: AtomicU64,
    storm_bytes: AtomicU64,
    /// Clients that have received their first message.
    baselined: AtomicU64,
    final_position: AtomicU64,
    /// The senders' messages sent and answered (acked or refused).
    sent: AtomicU64,
    answered: AtomicU64,
    joined_tx: mpsc::UnboundedSender<Result<(), String>>,
    /// One per client once the storm is over for it (recovered or not).
    done_tx: mpsc::UnboundedSender<()>,
    /// Position → (sender, sequence number), from the senders' acks.
    table: Mutex<BTreeMap<u64, (u32, u32)>>,
    /// Each client's [`Stage`], for the progress notes.
    stages: Vec<std::sync::atomic::AtomicU8>,
}

impl Ctx {
    /// How many clients are at each stage, and how many of them are done.
    fn census(&self) -> String {
        let mut counts = [0u32; STAGES.len()];
        for stage in &self.stages {
            counts[usize::from(stage.load(Ordering::Relaxed)).min(STAGES.len() - 1)] += 1;
        }
        STAGES
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One frame of the storm's traffic.
#[derive(Debug, PartialEq, Eq)]
enum Wire<'a> {
    Ping,
    Open,
    Connected(&'a [u8]),
    ConnectError(&'a [u8]),
    Disconnect,
    /// A stamped room message: its position, stamp, epoch (Palaver) and
    /// Socket.IO packet offset (the last argument).
    Message {
        position: Option<u64>,
        stamp: Option<Stamp>,
        epoch: Option<&'a [u8]>,
        packet_offset: Option<&'a [u8]>,
    },
    /// Join and leave notices, presence events.
    Notice,
    Ack {
        id: u64,
        body: &'a [u8],
    },
    Other,
}

fn wire(frame: &[u8], recovery: Recovery) -> Wire<'_> {
    match frame {
        b"2" => Wire::Ping,
        [b'0', ..] => Wire::Open,
        [b'4', b'0', rest @ ..] => Wire::Connected(rest),
        [b'4', b'4', rest @ ..] => Wire::ConnectError(rest),
        [b'4', b'1', ..] => Wire::Disconnect,
        [b'4', b'3', rest @ ..] => {
            let (id, n) = digits(rest);
            Wire::Ack {
                id,
                body: &rest[n..],
            }
        }
        [b'4', b'2', rest @ ..] => {
            let (_, n) = digits(rest);
            let body = &rest[n..];
            if body.starts_with(b"[\"message\",") {
                let Some(text) = stamped_text(body) else {
                    return Wire::Notice;
                };
                let (position, epoch, packet_offset) = match recovery {
                    Recovery::Chat => (
                        number_field(body, b"\"offset\":"),
                        string_field(body, b"\"epoch\":\""),
                        None,
                    ),
                    Recovery::SocketIo => (
                        string_field(body, b"\"id\":\"").and_then(whole_number),
                        None,
                        last_string_argument(body),
                    ),
                };
                Wire::Message {
                    position,
                    stamp: Stamp::parse(text),
                    epoch,
                    packet_offset,
                }
            } else if body.starts_with(b"[\"presence\",") {
                Wire::Notice
            } else {
                Wire::Other
            }
        }
        _ => Wire::Other,
    }
}

fn whole_number(bytes: &[u8]) -> Option<u64> {
    let (value, n) = digits(bytes);
    (n > 0 && n == bytes.len()).then_some(value)
}

/// The last argument of an event packet when it is a string (Socket.IO's packet
/// offset): `["message",{...},"abc"]` → `abc`.
fn last_string_argument(body: &[u8]) -> Option<&[u8]> {
    let inner = body.strip_suffix(b"\"]")?;
    let start = inner.iter().rposition(|&b| b == b'"')? + 1;
    let before = inner[..start - 1].last()?;
    (*before == b',').then_some(&inner[start..])
}

/// The content check of one message: its position, sender and sequence number.
fn mix(position: u64, sender: u32, seq: u32) -> u64 {
    // splitmix64 of the three: one number to compare per message.
    let mut z = position
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(u64::from(sender) << 32 | u64::from(seq));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A client's messages, by position.
#[derive(Debug, Default)]
struct Track {
    /// First position received (0: none yet) and the highest one received with
    /// every position before it.
    first: u64,
    through: u64,
    /// Received past a hole: position → content check.
    pending: BTreeMap<u64, u64>,
    /// The content checks of first..=through, in order.
    checks: Vec<u64>,
    /// Messages in first..=through (received once each).
    have: u64,
    duplicates: u64,
    unnumbered: u64,
    epoch: Option<String>,
    epoch_changes: u64,
}

impl Track {
    /// Adds a message; false when it was there already.
    fn add(&mut self, position: u64, check: u64) -> bool {
        if self.first == 0 {
            self.first = position;
            self.through = position;
            self.checks.push(check);
            self.have = 1;
            return true;
        }
        if position <= self.through || self.pending.contains_key(&position) {
            self.duplicates += 1;
            return false;
        }
        if position != self.through + 1 {
            self.pending.insert(position, check);
            return true;
        }
        self.through = position;
        self.checks.push(check);
        self.have += 1;
        while let Some(check) = self.pending.remove(&(self.through + 1)) {
            self.through += 1;
            self.checks.push(check);
            self.have += 1;
        }
        true
    }

    fn has_hole(&self) -> bool {
        !self.pending.is_empty()
    }

    fn epoch(&mut self, epoch: Option<&[u8]>) {
        let Some(epoch) = epoch else { return };
        match &self.epoch {
            Some(known) if known.as_bytes() == epoch => {}
            Some(_) => {
                self.epoch_changes += 1;
                self.epoch = Some(String::from_utf8_lossy(epoch).into_owned());
            }
            None => self.epoch = Some(String::from_utf8_lossy(epoch).into_owned()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Stage {
    /// Waiting for Engine.IO's open packet.
    Opening,
    /// Waiting for the CONNECT reply.
    Connecting,
    /// Waiting for the join ack.
    Joining,
    Live,
    /// After the drop: away, or waiting for a reconnection slot.
    Away,
    /// Connecting (TCP, WebSocket upgrade).
    Dialing,
    /// The task ended.
    Ended,
}

const STAGES: [&str; 7] = [
    "opening",
    "connecting",
    "joining",
    "live",
    "away",
    "dialing",
    "ended",
];

/// What a client reports at the end.
#[derive(Debug, Default)]
struct ClientOutcome {
    joined: bool,
    reconnected: bool,
    recovered: bool,
    reason: Option<String>,
    error: Option<String>,
    retries: u64,
    drop_us: u64,
    start_us: u64,
    answer_us: u64,
    recovered_us: u64,
    replayed: u64,
    gap_fetches: u64,
    fetched: u64,
    track: Track,
}

struct Client {
    index: u32,
    name: String,
    ctx: Arc<Ctx>,
    stage: Stage,
    /// Reconnecting with recovery (after the drop).
    storm: bool,
    /// The storm is over for this client (recovered or given up).
    done: bool,
    pid: Option<String>,
    packet_offset: Option<String>,
    next_ack: u64,
    join_ack: u64,
    fetch_ack: Option<u64>,
    /// Palaver: the room's newest position in the recovery answer.
    target: Option<u64>,
    permit: Option<OwnedSemaphorePermit>,
    out: ClientOutcome,
    buf: Vec<u8>,
}

impl Client {
    fn new(index: u32, ctx: Arc<Ctx>) -> Self {
        Self {
            index,
            name: format!("s{index}"),
            ctx,
            stage: Stage::Opening,
            storm: false,
            done: false,
            pid: None,
            packet_offset: None,
            next_ack: 1,
            join_ack: 0,
            fetch_ack: None,
            target: None,
            permit: None,
            out: ClientOutcome::default(),
            buf: Vec::new(),
        }
    }

    /// Connects (TCP and WebSocket upgrade), retrying like a stock client.
    async fn dial(&mut self) -> Result<WsConn, String> {
        let mut last = String::new();
        for attempt in 0..CONNECT_ATTEMPTS {
            if attempt > 0 {
                self.out.retries += 1;
                tokio::time::sleep(RETRY_DELAY).await;
            }
            match tokio::time::timeout(
                ANSWER_TIMEOUT,
                WsConn::connect(
                    self.ctx.addr,
                    source_ip(u64::from(self.index)),
                    Proto::SocketIo.path(),
                ),
            )
            .await
            {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(e)) => last = format!("connect: {e}"),
                Err(_) => last = "connect: timed out".into(),
            }
        }
        Err(last)
    }

    fn set_stage(&mut self, stage: Stage) {
        self.stage = stage;
        self.ctx.stages[self.index as usize].store(stage as u8, Ordering::Relaxed);
    }

    /// Tells the runner the storm is over for this client (once): recovered,
    /// not recovered, or failed (also a client that failed before the drop).
    fn finish_storm(&mut self) {
        if !self.done {
            self.done = true;
            let _ = self.ctx.done_tx.send(());
        }
    }

    /// The storm is over for this client once it has everything up to what the
    /// server said was the newest message at its recovery.
    fn check_recovered(&mut self) {
        if !self.storm || self.done || self.stage != Stage::Live || !self.out.recovered {
            return;
        }
        let complete = match self.target {
            Some(target) => self.out.track.through >= target && !self.out.track.has_hole(),
            None => !self.out.track.has_hole(),
        };
        if complete && self.fetch_ack.is_none() {
            self.out.recovered_us = now_us();
            self.finish_storm();
        }
    }

    async fn send(&mut self, conn: &mut WsConn) -> Result<(), String> {
        conn.send_text(&self.buf)
            .await
            .map_err(|e| format!("send: {e}"))
    }

    async fn send_join(&mut self, conn: &mut WsConn, since: bool) -> Result<(), String> {
        self.join_ack = self.next_ack;
        self.next_ack += 1;
        self.buf.clear();
        let t = &self.out.track;
        let json = if since && t.through > 0 {
            serde_json::json!({
                "room": ROOM,
                "name": self.name,
                "since": {"offset": t.through, "epoch": t.epoch},
            })
        } else {
            serde_json::json!({"room": ROOM, "name": self.name})
        };
        self.buf = format!("42{}[\"join\",{json}]", self.join_ack).into_bytes();
        self.set_stage(Stage::Joining);
        self.send(conn).await
    }

    /// Palaver: asks for the messages after the last one held in order.
    async fn fetch(&mut self, conn: &mut WsConn) -> Result<(), String> {
        if self.fetch_ack.is_some() || self.ctx.recovery != Recovery::Chat {
            return Ok(());
        }
        let id = self.next_ack;
        self.next_ack += 1;
        self.fetch_ack = Some(id);
        self.out.gap_fetches += 1;
        let t = &self.out.track;
        let json = serde_json::json!({
            "room": ROOM,
            "after": {"offset": t.through, "epoch": t.epoch},
        });
        self.buf = format!("42{id}[\"history\",{json}]").into_bytes();
        self.send(conn).await
    }

    /// Adds the messages of a `join` or `history` answer; returns how many.
    fn add_page(&mut self, messages: Option<&Value>) -> u64 {
        let mut n = 0;
        for m in messages.and_then(Value::as_array).into_iter().flatten() {
            let Some(stamp) = m
                .get("text")
                .and_then(Value::as_str)
                .and_then(|t| Stamp::parse(t.as_bytes()))
            else {
                continue;
            };
            let Some(position) = m.get("offset").and_then(Value::as_u64) else {
                self.out.track.unnumbered += 1;
                continue;
            };
            let epoch = m.get("epoch").and_then(Value::as_str).map(str::as_bytes);
            self.out.track.epoch(epoch);
            if self
                .out
                .track
                .add(position, mix(position, stamp.sender, stamp.seq))
            {
                n += 1;
            }
        }
        n
    }

    async fn on_frame(&mut self, frame: &[u8], conn: &mut WsConn) -> Result<(), String> {
        let recovery = self.ctx.recovery;
        if self.ctx.storming.load(Ordering::Relaxed) {
            self.ctx.storm_frames.fetch_add(1, Ordering::Relaxed);
            self.ctx
                .storm_bytes
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
        }
        match wire(frame, recovery) {
            Wire::Ping => {
                self.buf = b"3".to_vec();
                self.send(conn).await?;
            }
            Wire::Open if self.stage == Stage::Opening => {
                self.buf = match (&self.pid, &self.packet_offset, self.storm, recovery) {
                    (Some(pid), Some(offset), true, Recovery::SocketIo) => {
                        format!("40{}", serde_json::json!({"pid": pid, "offset": offset}))
                            .into_bytes()
                    }
                    _ => b"40".to_vec(),
                };
                self.set_stage(Stage::Connecting);
                self.send(conn).await?;
            }
            Wire::Open => {}
            Wire::Connected(body) if self.stage == Stage::Connecting => {
                let pid = string_field(body, b"\"pid\":\"")
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                match (self.storm, recovery) {
                    (true, Recovery::SocketIo) => {
                        self.out.answer_us = now_us();
                        self.permit = None;
                        let restored = pid.is_some() && pid == self.pid;
                        self.pid = pid;
                        if restored && self.out.track.has_hole() {
                            // Socket.IO has no way to ask for what is missing.
                            self.out.reason = Some("a hole after the replayed packets".into());
                            self.set_stage(Stage::Live);
                            self.finish_storm();
                        } else if restored {
                            self.out.recovered = true;
                            self.set_stage(Stage::Live);
                            self.check_recovered();
                        } else {
                            // A new session: the rooms are gone, join again; what
                            // was missed is lost.
                            self.out.reason = Some("session not restored".into());
                            self.finish_storm();
                            self.send_join(conn, false).await?;
                        }
                    }
                    (true, Recovery::Chat) => self.send_join(conn, true).await?,
                    (false, _) => {
                        self.pid = pid;
                        self.send_join(conn, false).await?;
                    }
                }
            }
            Wire::Connected(_) => {}
            Wire::ConnectError(why) => {
                return Err(format!("connect_error {}", String::from_utf8_lossy(why)))
            }
            Wire::Disconnect => return Err("disconnected by the server".into()),
            Wire::Notice => {
                if self.ctx.storming.load(Ordering::Relaxed) {
                    self.ctx.storm_notices.fetch_add(1, Ordering::Relaxed);
                }
            }
            Wire::Message {
                position,
                stamp,
                epoch,
                packet_offset,
            } => {
                if let Some(offset) = packet_offset {
                    self.packet_offset = Some(String::from_utf8_lossy(offset).into_owned());
                }
                let (Some(position), Some(stamp)) = (position, stamp) else {
                    self.out.track.unnumbered += 1;
                    return Ok(());
                };
                self.out.track.epoch(epoch);
                let first = self.out.track.first == 0;
                let new = self
                    .out
                    .track
                    .add(position, mix(position, stamp.sender, stamp.seq));
                if first {
                    self.ctx.baselined.fetch_add(1, Ordering::Relaxed);
                }
                // Socket.IO writes the missed packets before its CONNECT reply.
                if new && self.storm && self.stage == Stage::Connecting {
                    self.out.replayed += 1;
                }
                if self.stage == Stage::Live && self.out.track.has_hole() {
                    self.fetch(conn).await?;
                }
                self.check_recovered();
            }
            Wire::Ack { id, body } if id == self.join_ack && self.stage == Stage::Joining => {
                let answer: Value = serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v.get(0).cloned())
                    .unwrap_or(Value::Null);
                if answer.get("ok").and_then(Value::as_bool) != Some(true) {
                    return Err(format!("join refused: {}", String::from_utf8_lossy(body)));
                }
                self.set_stage(Stage::Live);
                if !self.storm {
                    self.out.joined = true;
                    self.permit = None;
                    let _ = self.ctx.joined_tx.send(Ok(()));
                    return Ok(());
                }
                if recovery == Recovery::SocketIo {
                    // The join after a session that was not restored.
                    return Ok(());
                }
                self.out.answer_us = now_us();
                self.permit = None;
                let epoch = answer.get("epoch").and_then(Value::as_str);
                self.out.track.epoch(epoch.map(str::as_bytes));
                let n = self.add_page(answer.get("history"));
                self.out.replayed += n;
                self.target = answer.get("offset").and_then(Value::as_u64);
                match answer.get("recovered").and_then(Value::as_bool) {
                    Some(true) => self.out.recovered = true,
                    Some(false) => {
                        let reason = answer
                            .get("reason")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_string();
                        self.out.reason = Some(format!("recovered: false ({reason})"));
                        self.finish_storm();
                    }
                    None => {
                        self.out.reason = Some("no `recovered` in the join answer".into());
                        self.finish_storm();
                    }
                }
                let behind = self.target.is_some_and(|t| self.out.track.through < t);
                if self.out.recovered && (behind || self.out.track.has_hole()) {
                    self.fetch(conn).await?;
                }
                self.check_recovered();
            }
            Wire::Ack { id, body } if Some(id) == self.fetch_ack => {
                self.fetch_ack = None;
                let answer: Value = serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v.get(0).cloned())
                    .unwrap_or(Value::Null);
                if answer.get("ok").and_then(Value::as_bool) != Some(true) {
                    return Err(format!(
                        "history refused: {}",
                        String::from_utf8_lossy(body)
                    ));
                }
                let n = self.add_page(answer.get("messages"));
                self.out.fetched += n;
                if self.storm && !self.done {
                    self.out.replayed += n;
                }
                let more = answer.get("has_more").and_then(Value::as_bool) == Some(true);
                let behind = self.target.is_some_and(|t| self.out.track.through < t) && !self.done;
                let settling = self.ctx.final_position.load(Ordering::Relaxed);
                let short = settling > 0 && self.out.track.through < settling;
                let lacking = more || behind || self.out.track.has_hole() || short;
                if lacking && n > 0 {
                    self.fetch(conn).await?;
                } else if lacking && self.storm && !self.done {
                    // The server has nothing more to give: what is missing stays
                    // missing (counted at the end).
                    let reason = match answer.get("recovered").and_then(Value::as_bool) {
                        Some(false) => format!(
                            "history: recovered false ({})",
                            answer.get("reason").and_then(Value::as_str).unwrap_or("?")
                        ),
                        _ => "history has nothing to fill a hole".to_string(),
                    };
                    self.out.reason = Some(reason);
                    self.out.recovered = false;
                    self.finish_storm();
                }
                self.check_recovered();
            }
            Wire::Ack { .. } | Wire::Other => {}
        }
        Ok(())
    }

    /// Handles every complete frame already read.
    async fn drain(&mut self, conn: &mut WsConn) -> Result<(), String> {
        let (mut frames, mut bytes) = (0u64, 0u64);
        let mut result = Ok(());
        loop {
            let frame = match conn.parse() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    result = Err(format!("frame: {e}"));
                    break;
                }
            };
            let handled = match frame {
                Frame::Text(text) => {
                    // Pings are not traffic: with thousands of clients one is
                    // always due, and the room would never look quiet.
                    if text.as_ref() != b"2" {
                        frames += 1;
                        bytes += text.len() as u64;
                    }
                    self.on_frame(&text, conn).await
                }
                Frame::Ping(payload) => conn.send_pong(&payload).await.map_err(|e| e.to_string()),
                Frame::Close => Err("closed by the server".into()),
                Frame::Other => Ok(()),
            };
            if let Err(e) = handled {
                result = Err(e);
                break;
            }
        }
        if frames > 0 {
            self.ctx.traffic.saw(frames, bytes);
        }
        conn.compact();
        result
    }

    /// Reads until `Stop`; drops and reconnects at `Drop`.
    async fn run(mut self, mut phase: watch::Receiver<Phase>) -> ClientOutcome {
        self.permit = self.ctx.join_permits.clone().acquire_owned().await.ok();
        let mut conn = match self.dial().await {
            Ok(conn) => conn,
            Err(e) => {
                let _ = self.ctx.joined_tx.send(Err(e.clone()));
                self.out.error = Some(e);
                return self.out;
            }
        };
        // The upgrade response may have come with the first frames.
        if let Err(e) = self.drain(&mut conn).await {
            let _ = self.ctx.joined_tx.send(Err(e.clone()));
            self.out.error = Some(e);
            self.finish_storm();
            return self.out;
        }
        let timer = tokio::time::sleep(ANSWER_TIMEOUT);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                changed = phase.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = *phase.borrow_and_update();
                    match now {
                        Phase::Run => {}
                        Phase::Drop if !self.storm && self.stage == Stage::Live => {
                            drop(conn);
                            self.out.drop_us = now_us();
                            self.storm = true;
                            self.set_stage(Stage::Away);
                            tokio::time::sleep(self.ctx.down).await;
                            self.permit = self.ctx.storm_permits.clone().acquire_owned().await.ok();
                            self.out.start_us = now_us();
                            self.set_stage(Stage::Dialing);
                            conn = match self.dial().await {
                                Ok(conn) => conn,
                                Err(e) => {
                                    self.out.error = Some(format!("reconnect: {e}"));
                                    self.finish_storm();
                                    return self.out;
                                }
                            };
                            self.out.reconnected = true;
                            self.set_stage(Stage::Opening);
                            timer.as_mut().reset(tokio::time::Instant::now() + ANSWER_TIMEOUT);
                            if let Err(e) = self.drain(&mut conn).await {
                                self.out.error = Some(e);
                                break;
                            }
                        }
                        Phase::Drop => {
                            if !self.storm {
                                self.out.error = Some(format!("not joined at the drop ({:?})", self.stage));
                                break;
                            }
                        }
                        Phase::Settle => {
                            let last = self.ctx.final_position.load(Ordering::Relaxed);
                            if self.stage == Stage::Live && self.out.track.through < last {
                                if let Err(e) = self.fetch(&mut conn).await {
                                    self.out.error = Some(e);
                                    break;
                                }
                            }
                        }
                        Phase::Stop => break,
                    }
                }
                () = &mut timer, if self.stage != Stage::Live => {
                    self.out.error = Some(format!("no answer within {ANSWER_TIMEOUT:?} ({:?})", self.stage));
                    break;
                }
                read = conn.fill() => {
                    let drained = match read {
                        Ok(()) => self.drain(&mut conn).await,
                        Err(e) => Err(format!("read: {e}")),
                    };
                    if let Err(e) = drained {
                        self.out.error = Some(e);
                        break;
                    }
                }
            }
        }
        self.set_stage(Stage::Ended);
        if !self.out.joined {
            let e = self.out.error.clone().unwrap_or_else(|| "stopped".into());
            let _ = self.ctx.joined_tx.send(Err(e));
        }
        self.finish_storm();
        self.out
    }
}

#[derive(Debug, Default)]
struct SenderOutcome {
    sent: u64,
    acked: u64,
    refused: u64,
    error: Option<String>,
}

/// A member that keeps talking: `message` at a steady rate while `Talk::Send`,
/// the acks recorded in the position table.
async fn sender(
    j: u32,
    index: u64,
    ctx: Arc<Ctx>,
    rate: f64,
    senders: u32,
    mut talk: watch::Receiver<Talk>,
    joined: mpsc::UnboundedSender<Result<(), String>>,
) -> SenderOutcome {
    let mut out = SenderOutcome::default();
    let who = crate::client::Identity {
        index,
        name: format!("w{j}"),
        room: ROOM.into(),
    };
    let target = crate::client::Target {
        addr: ctx.addr,
        proto: Proto::SocketIo,
    };
    let mut conn = match crate::client::open(target, &who, ANSWER_TIMEOUT).await {
        Ok(conn) => conn,
        Err(e) => {
            let _ = joined.send(Err(format!("sender: {e}")));
            out.error = Some(e);
            return out;
        }
    };
    let _ = joined.send(Ok(()));
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let mut next: Option<tokio::time::Instant> = None;
    let mut seq = 0u32;
    let mut text = String::new();
    let mut buf = Vec::new();
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    loop {
        tokio::select! {
            changed = talk.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = *talk.borrow_and_update();
                match now {
                    Talk::Send => {
                        let first = tokio::time::Instant::now()
                            + interval.mul_f64(f64::from(j) / f64::from(senders.max(1)));
                        next = Some(first);
                        timer.as_mut().reset(first);
                    }
                    Talk::Quiet => next = None,
                    Talk::Wait => {}
                    Talk::Stop => break,
                }
            }
            () = &mut timer, if next.is_some() => {
                let due = next.expect("checked");
                seq += 1;
                Stamp { step: 0, sender: j, seq, sent_us: now_us() }.write(&mut text, ctx.text_bytes);
                // Ack ids: 1 was the join, message `seq` is `seq + 1`.
                Proto::SocketIo.message(&mut buf, u64::from(seq) + 1, ROOM, &who.name, &text);
                if let Err(e) = conn.send_text(&buf).await {
                    out.error = Some(format!("send: {e}"));
                    break;
                }
                out.sent += 1;
                ctx.sent.fetch_add(1, Ordering::Relaxed);
                let after = due + interval;
                next = Some(after);
                timer.as_mut().reset(after);
            }
            read = conn.fill() => {
                if let Err(e) = read {
                    out.error = Some(format!("read: {e}"));
                    break;
                }
                while let Ok(Some(frame)) = conn.parse() {
                    let Frame::Text(frame) = frame else {
                        if let Frame::Ping(payload) = frame {
                            let _ = conn.send_pong(&payload).await;
                        }
                        continue;
                    };
                    match wire(&frame, ctx.recovery) {
                        Wire::Ping => {
                            let _ = conn.send_text(b"3").await;
                        }
                        Wire::Ack { id, body } if id >= 2 => {
                            let position = match ctx.recovery {
                                Recovery::Chat => number_field(body, b"\"offset\":"),
                                Recovery::SocketIo => {
                                    string_field(body, b"\"id\":\"").and_then(whole_number)
                                }
                            };
                            match (crate::ws::find(body, b"\"ok\":true").is_some(), position) {
                                (true, Some(position)) => {
                                    out.acked += 1;
                                    let seq = (id - 1) as u32;
                                    ctx.table.lock().expect("table").insert(position, (j, seq));
                                }
                                _ => out.refused += 1,
                            }
                            ctx.answered.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
                conn.compact();
            }
        }
    }
    out
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

/// Waits until nothing was received for `quiet`, at most `max`; returns the
/// seconds waited.
async fn until_quiet(traffic: &Traffic, quiet: Duration, max: Duration) -> f64 {
    let started = Instant::now();
    tokio::time::sleep(quiet).await;
    while traffic.quiet_us() < quiet.as_micros() as u64 && started.elapsed() < max {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed().as_secs_f64()
}

fn note(text: impl AsRef<str>) {
    eprintln!("  {}", text.as_ref());
}

/// Resets the peak RSS (VmHWM) of a process; false when not allowed.
fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The reconnect storm against one server.
pub async fn storm(
    server: &Server,
    plan: &StormPlan,
    text_bytes: usize,
) -> Result<StormResult, String> {
    let recovery = recovery_of(server.kind).ok_or("this server has no connection recovery")?;
    let budget = crate::sys::fd_budget().saturating_sub(u64::from(plan.senders));
    let (clients, capped) = crate::sys::cap(u64::from(plan.clients), budget);
    let clients = clients as u32;
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        addr: server.addr,
        recovery,
        text_bytes,
        down: Duration::from_millis(plan.down_ms),
        join_permits: Arc::new(Semaphore::new(plan.join_concurrency.max(1))),
        storm_permits: Arc::new(Semaphore::new(plan.concurrency.max(1))),
        traffic: Traffic::default(),
        storming: AtomicBool::new(false),
        storm_frames: AtomicU64::new(0),
        storm_notices: AtomicU64::new(0),
        storm_bytes: AtomicU64::new(0),
        baselined: AtomicU64::new(0),
        final_position: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        answered: AtomicU64::new(0),
        joined_tx: joined_tx.clone(),
        done_tx,
        table: Mutex::new(BTreeMap::new()),
        stages: (0..clients)
            .map(|_| std::sync::atomic::AtomicU8::new(Stage::Opening as u8))
            .collect(),
    });

    // The room fills.
    let (phase, phase_rx) = watch::channel(Phase::Run);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..clients {
        let client = Client::new(i, ctx.clone());
        tasks.spawn(client.run(phase_rx.clone()));
    }
    let (talk, talk_rx) = watch::channel(Talk::Wait);
    let mut sender_tasks = JoinSet::new();
    for j in 0..plan.senders {
        sender_tasks.spawn(sender(
            j,
            u64::from(clients + j),
            ctx.clone(),
            plan.rate,
            plan.senders,
            talk_rx.clone(),
            joined_tx.clone(),
        ));
    }
    drop(joined_tx);
    let mut failures = Vec::new();
    let total = clients + plan.senders;
    for _ in 0..total {
        match tokio::time::timeout(Duration::from_secs(600), joined_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => failures.push(e),
            Ok(None) | Err(_) => {
                failures.push("joining did not finish".into());
                break;
            }
        }
    }
    let join_seconds = started.elapsed().as_secs_f64();
    // A few clients the server closed while the room filled (its notices can fill
    // their queues) leave the rest to measure; a lost sender, or more, does not.
    let senders_failed = failures.iter().any(|e| e.starts_with("sender"));
    if senders_failed || failures.len() as u64 * 10 > u64::from(total) {
        phase.send_replace(Phase::Stop);
        talk.send_replace(Talk::Quiet);
        tasks.abort_all();
        sender_tasks.abort_all();
        return Err(format!(
            "{} of {total} connections could not join; first: {}",
            failures.len(),
            failures[0]
        ));
    }
    let join_failed = failures.len() as u64;
    if join_failed > 0 {
        note(format!(
            "{join_failed} of {clients} clients could not join (first: {}); the storm goes on \
             with the others",
            failures[0]
        ));
    }
    let quiet_seconds = until_quiet(
        &ctx.traffic,
        Duration::from_secs(1),
        Duration::from_secs(300),
    )
    .await;
    let join_frames = ctx.traffic.frames.load(Ordering::Relaxed);
    let join_bytes = ctx.traffic.bytes.load(Ordering::Relaxed);
    note(format!(
        "{} clients and {} senders in room {ROOM:?} in {join_seconds:.1}s; quiet \
         {quiet_seconds:.1}s later ({join_frames} frames, {:.1} MB pushed to them meanwhile)",
        u64::from(clients) - join_failed,
        plan.senders,
        join_bytes as f64 / 1e6
    ));

    // The room talks; every client gets a first message before the drop.
    talk.send_replace(Talk::Send);
    let talk_started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(plan.lead_secs)).await;
    let in_room = u64::from(clients) - join_failed;
    while ctx.baselined.load(Ordering::Relaxed) < in_room
        && talk_started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let baselined = ctx.baselined.load(Ordering::Relaxed);
    if baselined < in_room {
        note(format!(
            "only {baselined} of {in_room} clients received a message before the drop"
        ));
    }

    // The storm.
    let pid = server.pid;
    let rss_before = servers::status_kb(pid, "VmRSS").unwrap_or(0);
    let hwm_reset = reset_peak_rss(pid);
    let sampled_peak = Arc::new(AtomicU64::new(rss_before));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, on) = (sampled_peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while on.load(Ordering::Relaxed) {
                if let Some(rss) = servers::status_kb(pid, "VmRSS") {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let cpu_before = CpuSnapshot::take(pid).ok_or("server gone")?;
    ctx.storming.store(true, Ordering::Relaxed);
    let drop_us = now_us();
    let drop_at = Instant::now();
    phase.send_replace(Phase::Drop);
    note(format!(
        "dropped {clients} transports at once; reconnecting after {} ms, at most {} in flight",
        plan.down_ms, plan.concurrency
    ));
    let mut done = 0u32;
    // Palaver's join and leave notices grow as the square of the room.
    let scale = (f64::from(clients) / 10_000.0).powi(2).max(1.0);
    let storm_limit = Duration::from_secs_f64((600.0 * scale).min(2400.0));
    let mut progress = Instant::now();
    while done < clients && drop_at.elapsed() < storm_limit {
        match tokio::time::timeout(Duration::from_secs(1), done_rx.recv()).await {
            Ok(Some(())) => done += 1,
            Ok(None) => break,
            Err(_) => {}
        }
        if progress.elapsed() >= Duration::from_secs(10) {
            progress = Instant::now();
            note(format!(
                "{:.0}s after the drop: {done} of {clients} clients done ({})",
                drop_at.elapsed().as_secs_f64(),
                ctx.census()
            ));
        }
    }
    let cpu_after = CpuSnapshot::take(pid);
    let storm_secs = drop_at.elapsed().as_secs_f64();
    ctx.storming.store(false, Ordering::Relaxed);
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let hwm = servers::status_kb(pid, "VmHWM").unwrap_or(0);
    let (rss_peak_kb, rss_peak_how) = if hwm_reset && hwm > 0 {
        (hwm, "VmHWM, reset at the drop".to_string())
    } else {
        (
            sampled_peak.load(Ordering::Relaxed),
            "highest VmRSS sampled every 50 ms".to_string(),
        )
    };
    if done < clients {
        note(format!(
            "{} of {clients} clients not done after {storm_secs:.0}s",
            clients - done
        ));
    }

    // Talk a little longer, then stop and let every client catch up.
    tokio::time::sleep(Duration::from_secs_f64(plan.tail_secs)).await;
    talk.send_replace(Talk::Quiet);
    let mut sent = SenderOutcome::default();
    let mut sender_errors = Vec::new();
    let acks_wait = Instant::now();
    while ctx.answered.load(Ordering::Relaxed) < ctx.sent.load(Ordering::Relaxed)
        && acks_wait.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (first_position, final_position) = {
        let table = ctx.table.lock().expect("table");
        (
            table.keys().next().copied().unwrap_or(0),
            table.keys().next_back().copied().unwrap_or(0),
        )
    };
    ctx.final_position.store(final_position, Ordering::Relaxed);
    phase.send_replace(Phase::Settle);
    until_quiet(
        &ctx.traffic,
        Duration::from_secs(1),
        Duration::from_secs(60),
    )
    .await;
    let rss_after = servers::status_kb(pid, "VmRSS").unwrap_or(0);
    phase.send_replace(Phase::Stop);
    talk.send_replace(Talk::Stop);
    let mut outcomes = Vec::with_capacity(clients as usize);
    let collect = async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok(o) = joined {
                outcomes.push(o);
            }
        }
        while let Some(joined) = sender_tasks.join_next().await {
            if let Ok(o) = joined {
                sent.sent += o.sent;
                sent.acked += o.acked;
                sent.refused += o.refused;
                if let Some(e) = o.error {
                    sender_errors.push(e);
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), collect).await;
    tasks.abort_all();
    sender_tasks.abort_all();

    // Verification: every client has every message from its first to the room's
    // last one, once, in order of position, as the senders' acks say. A sender
    // the server closed leaves messages without an ack (stored or not): the room's
    // last position is the highest anyone saw, and a position without an ack has
    // its content unchecked (`unverified`).
    let table = ctx.table.lock().expect("table").clone();
    let final_position = outcomes
        .iter()
        .map(|o| {
            let t = &o.track;
            t.pending
                .keys()
                .next_back()
                .copied()
                .unwrap_or(0)
                .max(t.through)
        })
        .chain(std::iter::once(final_position))
        .max()
        .unwrap_or(0);
    let mut r = StormResult {
        requested: plan.clients,
        clients: clients - join_failed as u32,
        capped,
        join_failed,
        join_error: failures.first().cloned(),
        senders: plan.senders,
        rate_per_sender: plan.rate,
        down_ms: plan.down_ms,
        concurrency: plan.concurrency,
        join_seconds,
        quiet_seconds,
        join_frames,
        join_mb: join_bytes as f64 / 1e6,
        sent: sent.sent,
        acked: sent.acked,
        refused: sent.refused,
        first_position,
        final_position,
        storm_frames: ctx.storm_frames.load(Ordering::Relaxed),
        storm_notices: ctx.storm_notices.load(Ordering::Relaxed),
        storm_mb: ctx.storm_bytes.load(Ordering::Relaxed) as f64 / 1e6,
        rss_before_kb: rss_before,
        rss_peak_kb,
        rss_peak_how,
        rss_after_kb: rss_after,
        ..StormResult::default()
    };
    if let Some(after) = cpu_after {
        let used = cpu_before.until(&after);
        r.server_cpu_seconds = used.server / 100.0 * storm_secs;
        r.generator_cpu_seconds = used.generator / 100.0 * storm_secs;
        r.other_cpu_seconds = used.others / 100.0 * storm_secs;
    }
    let mut recovered_ms = Vec::new();
    let mut answer_ms = Vec::new();
    let mut last_recovered = 0u64;
    let mut last_answer = 0u64;
    let mut replayed = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.joined) {
        r.connect_retries += o.retries;
        r.gap_fetches += o.gap_fetches;
        r.fetched += o.fetched;
        r.duplicates += o.track.duplicates;
        if let Some(e) = &o.error {
            r.failed += 1;
            let kind = e.split(':').next().unwrap_or("").to_string();
            *errors.entry(kind).or_default() += 1;
            if r.errors.len() < 5
                && !r
                    .errors
                    .iter()
                    .any(|seen| seen.starts_with(&e[..e.len().min(20)]))
            {
                r.errors.push(e.clone());
            }
        }
        if o.reconnected {
            r.reconnected += 1;
        }
        if o.answer_us > 0 {
            answer_ms.push(o.answer_us.saturating_sub(o.start_us));
            last_answer = last_answer.max(o.answer_us);
        }
        if o.recovered && o.recovered_us > 0 {
            r.recovered += 1;
            recovered_ms.push(o.recovered_us.saturating_sub(drop_us));
            last_recovered = last_recovered.max(o.recovered_us);
            replayed.push(o.replayed);
        } else if o.reconnected && o.error.is_none() {
            r.not_recovered += 1;
            let reason = o
                .reason
                .clone()
                .unwrap_or_else(|| "not complete when the storm ended".into());
            *r.not_recovered_reasons.entry(reason).or_default() += 1;
        }
        r.replayed += o.replayed;
        let t = &o.track;
        let due = if t.first == 0 {
            final_position.saturating_sub(first_position) + 1
        } else {
            final_position.saturating_sub(t.first) + 1
        };
        r.missing += due.saturating_sub(t.have);
        r.beyond_holes += t.pending.len() as u64;
        let mut content_ok = true;
        for (position, check) in (t.first..).zip(&t.checks) {
            match table.get(&position) {
                Some(&(sender, seq)) if mix(position, sender, seq) == *check => {}
                Some(_) => content_ok = false,
                None => r.unverified += 1,
            }
        }
        if !content_ok {
            r.content_mismatch += 1;
        }
        if t.first != 0
            && t.through == final_position
            && t.pending.is_empty()
            && content_ok
            && t.epoch_changes == 0
        {
            r.complete_clients += 1;
        }
    }
    r.failed +=
        u64::from(r.clients).saturating_sub(outcomes.iter().filter(|o| o.joined).count() as u64);
    for e in sender_errors.into_iter().take(2) {
        r.errors.push(format!("sender: {e}"));
    }
    recovered_ms.sort_unstable();
    answer_ms.sort_unstable();
    replayed.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    r.recovered_p50_ms = ms(quantile(&recovered_ms, 0.5));
    r.recovered_p99_ms = ms(quantile(&recovered_ms, 0.99));
    r.answer_p50_ms = ms(quantile(&answer_ms, 0.5));
    r.answer_p99_ms = ms(quantile(&answer_ms, 0.99));
    r.answer_max_ms = ms(answer_ms.last().copied().unwrap_or(0));
    r.replayed_min = replayed.first().copied().unwrap_or(0);
    r.replayed_max = replayed.last().copied().unwrap_or(0);
    let all_done = r.recovered == u64::from(r.clients);
    r.seconds_to_all_recovered = if all_done {
        last_recovered.saturating_sub(drop_us) as f64 / 1e6
    } else {
        storm_secs
    };
    r.seconds_to_last_answer = last_answer.saturating_sub(drop_us) as f64 / 1e6;
    r.replayed_per_second = r.replayed as f64 / r.seconds_to_all_recovered.max(1e-9);
    note(format!(
        "{} of {} recovered in {:.2}s (p50 {:.0} ms, p99 {:.0} ms after the drop; last \
         answer at {:.2}s); {} missed messages replayed ({:.0}/s, {}..{} per client); \
         not recovered {}, failed {}, retries {}",
        r.recovered,
        r.clients,
        r.seconds_to_all_recovered,
        r.recovered_p50_ms,
        r.recovered_p99_ms,
        r.seconds_to_last_answer,
        r.replayed,
        r.replayed_per_second,
        r.replayed_min,
        r.replayed_max,
        r.not_recovered,
        r.failed,
        r.connect_retries
    ));
    note(format!(
        "server: RSS {:.0} MiB before, peak {:.0} MiB ({}); CPU {:.2} s (generator {:.2} s, \
         other {:.2} s); {} frames ({} notices, {:.1} MB) to the clients during the storm",
        rss_before as f64 / 1024.0,
        r.rss_peak_kb as f64 / 1024.0,
        r.rss_peak_how,
        r.server_cpu_seconds,
        r.generator_cpu_seconds,
        r.other_cpu_seconds,
        r.storm_frames,
        r.storm_notices,
        r.storm_mb
    ));
    note(format!(
        "check: positions {}..={}, {} sent, {} acked, {} refused; {} of {} clients \
         complete; missing {}, past a hole {}, duplicates {}, content mismatches {}, \
         unverified {}; gap fetches {} ({} messages)",
        first_position,
        final_position,
        r.sent,
        r.acked,
        r.refused,
        r.complete_clients,
        r.clients,
        r.missing,
        r.beyond_holes,
        r.duplicates,
        r.content_mismatch,
        r.unverified,
        r.gap_fetches,
        r.fetched
    ));
    if !errors.is_empty() {
        note(format!("errors: {errors:?}"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storm_frames() {
        let palaver = br#"42["message",{"id":"7","room":"storm","user":"w1","user_id":"w1","text":"b|0|1|3|99|xx","ts":1,"kind":"chat","offset":12,"epoch":"e1"}]"#;
        assert_eq!(
            wire(palaver, Recovery::Chat),
            Wire::Message {
                position: Some(12),
                stamp: Some(Stamp {
                    step: 0,
                    sender: 1,
                    seq: 3,
                    sent_us: 99
                }),
                epoch: Some(b"e1"),
                packet_offset: None,
            }
        );
        let node = br#"42["message",{"id":"15","room":"storm","user":"w0","user_id":"w0","text":"b|0|0|4|5|xx","ts":1,"kind":"chat"},"MxYz-1"]"#;
        assert_eq!(
            wire(node, Recovery::SocketIo),
            Wire::Message {
                position: Some(15),
                stamp: Some(Stamp {
                    step: 0,
                    sender: 0,
                    seq: 4,
                    sent_us: 5
                }),
                epoch: None,
                packet_offset: Some(b"MxYz-1"),
            }
        );
        let plain = br#"42["message",{"id":"15","text":"b|0|0|4|5|xx"}]"#;
        assert!(matches!(
            wire(plain, Recovery::SocketIo),
            Wire::Message {
                packet_offset: None,
                ..
            }
        ));
        assert_eq!(
            wire(
                br#"42["message",{"id":null,"user":"system","text":"s1 joined","kind":"join"}]"#,
                Recovery::Chat
            ),
            Wire::Notice
        );
        assert_eq!(
            wire(br#"42["presence",{"room":"storm"}]"#, Recovery::Chat),
            Wire::Notice
        );
        assert_eq!(
            wire(br#"40{"sid":"a","pid":"b"}"#, Recovery::SocketIo),
            Wire::Connected(br#"{"sid":"a","pid":"b"}"#)
        );
        assert_eq!(
            wire(br#"437[{"ok":true}]"#, Recovery::Chat),
            Wire::Ack {
                id: 7,
                body: br#"[{"ok":true}]"#
            }
        );
    }

    #[test]
    fn tracks_positions() {
        let mut t = Track::default();
        assert!(t.add(5, 1));
        assert!(t.add(6, 2));
        assert!(t.add(8, 4));
        assert!(t.has_hole());
        assert!(!t.add(6, 2));
        assert!(t.add(7, 3));
        assert!(!t.has_hole());
        assert_eq!((t.first, t.through, t.have, t.duplicates), (5, 8, 4, 1));
        assert_eq!(t.checks, [1, 2, 3, 4]);
    }
}
