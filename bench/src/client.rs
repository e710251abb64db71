//! Opening chat connections (TCP, WebSocket upgrade, Engine.IO/Socket.IO
//! handshake, join) and holding idle ones.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::proto::{Incoming, Proto};
use crate::ws::{Frame, WsConn};

/// Where the load goes.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub addr: SocketAddr,
    pub proto: Proto,
}

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the generator's epoch (one clock for send and receive stamps).
pub fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The loopback source address of client `index`: each client gets its own
/// 127.a.b.c, so the ephemeral port range is per client, not per machine.
pub fn source_ip(index: u64) -> Ipv4Addr {
    let c = 1 + index % 254;
    let b = 1 + (index / 254) % 254;
    let a = 1 + (index / (254 * 254)) % 254;
    Ipv4Addr::new(127, a as u8, b as u8, c as u8)
}

/// Who a client is: its global index (source address), name and room.
#[derive(Debug, Clone)]
pub struct Identity {
    pub index: u64,
    pub name: String,
    pub room: String,
}

/// Connects, completes the handshake and joins the identity's room (ack awaited).
pub async fn open(target: Target, who: &Identity, timeout: Duration) -> Result<WsConn, String> {
    match tokio::time::timeout(timeout, handshake(target, who)).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}

async fn handshake(target: Target, who: &Identity) -> Result<WsConn, String> {
    let proto = target.proto;
    let mut conn = WsConn::connect(target.addr, source_ip(who.index), proto.path())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut out = Vec::new();
    let fail = |e: std::io::Error| format!("handshake: {e}");
    if proto == Proto::Bare {
        proto.join(&mut out, 1, &who.room, &who.name);
        conn.send_text(&out).await.map_err(fail)?;
    }
    loop {
        match conn.next().await.map_err(fail)? {
            // Without a join ack (seed 002) the join is done at its answer.
            Frame::Text(text) if !proto.acks() && proto.joined(&text, &who.name) => {
                return Ok(conn)
            }
            Frame::Text(text) => match proto.classify(&text) {
                Incoming::Open => conn.send_text(b"40").await.map_err(fail)?,
                Incoming::Connected => {
                    proto.join(&mut out, 1, &who.room, &who.name);
                    conn.send_text(&out).await.map_err(fail)?;
                }
                Incoming::Ping => conn.send_text(b"3").await.map_err(fail)?,
                Incoming::Ack {
                    id: 1, ok: true, ..
                } => return Ok(conn),
                Incoming::Ack {
                    id: 1,
                    ok: false,
                    code,
                } => {
                    return Err(format!(
                        "join refused: {}",
                        String::from_utf8_lossy(code.unwrap_or(b"?"))
                    ))
                }
                Incoming::ConnectError(why) => {
                    return Err(format!("connect_error {}", String::from_utf8_lossy(why)))
                }
                Incoming::Disconnect => return Err("disconnected during the handshake".into()),
                _ => {}
            },
            Frame::Ping(payload) => conn.send_pong(&payload).await.map_err(fail)?,
            Frame::Close => return Err("closed during the handshake".into()),
            Frame::Other => {}
        }
    }
}

/// Keeps a connection open (answering pings, reading and dropping whatever the
/// server pushes) until `stop` changes. Returns why it ended early, if it did.
pub async fn hold(
    mut conn: WsConn,
    proto: Proto,
    mut stop: watch::Receiver<bool>,
) -> Option<String> {
    if *stop.borrow_and_update() {
        return None;
    }
    loop {
        tokio::select! {
            _ = stop.changed() => return None,
            read = conn.fill() => {
                if let Err(e) = read {
                    return Some(e.to_string());
                }
                loop {
                    let frame = match conn.parse() {
                        Ok(Some(frame)) => frame,
                        Ok(None) => break,
                        Err(e) => return Some(e.to_string()),
                    };
                    let sent = match frame {
                        Frame::Text(text) => match proto.classify(&text) {
                            Incoming::Ping => conn.send_text(b"3").await,
                            Incoming::Disconnect => return Some("disconnected by the server".into()),
                            _ => Ok(()),
                        },
                        Frame::Ping(payload) => conn.send_pong(&payload).await,
                        Frame::Close => return Some("closed by the server".into()),
                        Frame::Other => Ok(()),
                    };
                    if let Err(e) = sent {
                        return Some(e.to_string());
                    }
                }
                conn.compact();
            }
        }
    }
}

/// What joined clients received while the others were still joining (seed 002's
/// join storm: every join pushes the growing `groupList` to every client).
#[derive(Debug, Default)]
pub struct Traffic {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    /// [`now_us`] of the last read that returned data.
    pub last_us: AtomicU64,
}

impl Traffic {
    pub fn saw(&self, frames: u64, bytes: u64) {
        self.frames.fetch_add(frames, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last_us.store(now_us(), Ordering::Relaxed);
    }

    /// Microseconds since anything was read (`u64::MAX` if nothing ever was).
    pub fn quiet_us(&self) -> u64 {
        match self.last_us.load(Ordering::Relaxed) {
            0 => u64::MAX,
            last => now_us().saturating_sub(last),
        }
    }
}

/// Keeps reading a joined connection (answering pings, counting and dropping
/// what the server pushes) until `stop` is set, then hands it back: so that a
/// client that joined early drains the pushes of later joins, as a real client
/// would, instead of leaving them queued in the server.
pub async fn keep_reading(
    mut conn: WsConn,
    proto: Proto,
    mut stop: watch::Receiver<bool>,
    traffic: &Traffic,
) -> Result<WsConn, String> {
    loop {
        if *stop.borrow_and_update() {
            return Ok(conn);
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    return Ok(conn);
                }
            }
            read = conn.fill() => {
                read.map_err(|e| format!("while others joined: {e}"))?;
                let (mut frames, mut bytes) = (0u64, 0u64);
                loop {
                    let frame = match conn.parse() {
                        Ok(Some(frame)) => frame,
                        Ok(None) => break,
                        Err(e) => return Err(format!("while others joined: {e}")),
                    };
                    let sent = match frame {
                        Frame::Text(text) => {
                            match proto.classify(&text) {
                                // Pings are not the join phase's pushes.
                                Incoming::Ping => conn.send_text(b"3").await,
                                Incoming::Disconnect => {
                                    return Err("disconnected by the server while others joined".into())
                                }
                                _ => {
                                    frames += 1;
                                    bytes += text.len() as u64;
                                    Ok(())
                                }
                            }
                        }
                        Frame::Ping(payload) => conn.send_pong(&payload).await,
                        Frame::Close => return Err("closed by the server while others joined".into()),
                        Frame::Other => Ok(()),
                    };
                    sent.map_err(|e| format!("while others joined: {e}"))?;
                }
                if frames > 0 {
                    traffic.saw(frames, bytes);
                }
                conn.compact();
            }
        }
    }
}

/// The outcome of opening many connections.
pub struct Burst {
    pub ok: u64,
    pub failed: u64,
    /// The first few distinct failure reasons.
    pub errors: Vec<String>,
    /// From the first connect to the last join ack.
    pub elapsed: Duration,
    /// Connect + handshake + join, per connection, in microseconds.
    pub latency: Histogram<u64>,
    /// Tasks holding the open connections; each returns why it ended early.
    pub holders: JoinSet<Option<String>>,
}

/// Opens `count` connections (identities from `identity(i)`), at most
/// `concurrency` at a time, and keeps each open with [`hold`] until `stop`.
pub async fn burst(
    target: Target,
    count: u64,
    concurrency: usize,
    timeout: Duration,
    identity: impl Fn(u64) -> Identity,
    stop: watch::Receiver<bool>,
) -> Burst {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let latency = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"),
    ));
    let ok = Arc::new(AtomicU64::new(0));
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let failed = Arc::new(AtomicU64::new(0));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let started = Instant::now();
    // Each task opens its connection and then holds it, so that early connections
    // read what the server pushes (and answer pings) while later ones connect.
    let mut holders = JoinSet::new();
    let proto = target.proto;
    for i in 0..count {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let who = identity(i);
        let (latency, ok, failed, errors, done_tx, stop) = (
            latency.clone(),
            ok.clone(),
            failed.clone(),
            errors.clone(),
            done_tx.clone(),
            stop.clone(),
        );
        holders.spawn(async move {
            let t0 = Instant::now();
            let result = open(target, &who, timeout).await;
            drop(permit);
            match result {
                Ok(conn) => {
                    let us = t0.elapsed().as_micros() as u64;
                    latency
                        .lock()
                        .expect("histogram lock")
                        .saturating_record(us.max(1));
                    ok.fetch_add(1, Ordering::Relaxed);
                    let _ = done_tx.send(());
                    hold(conn, proto, stop).await
                }
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    {
                        let mut errors = errors.lock().expect("errors lock");
                        let kind = e.split(':').next().unwrap_or("").to_string();
                        if errors.len() < 5 && !errors.iter().any(|seen| seen.starts_with(&kind)) {
                            errors.push(e);
                        }
                    }
                    let _ = done_tx.send(());
                    None
                }
            }
        });
    }
    drop(done_tx);
    for _ in 0..count {
        if done_rx.recv().await.is_none() {
            break;
        }
    }
    let elapsed = started.elapsed();
    let latency = latency.lock().expect("histogram lock").clone();
    let errors = errors.lock().expect("errors lock").clone();
    Burst {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        errors,
        elapsed,
        latency,
        holders,
    }
}
