//! Stepped offered load: every client sends stamped messages at a fixed rate for
//! one step, every delivery is counted and its latency recorded, then the step
//! drains and is judged. Used by the room fan-out and private message scenarios.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::sleep_until;

use crate::client::{now_us, Traffic};
use crate::proto::{Incoming, Proto, Stamp};
use crate::sys::CpuSnapshot;
use crate::ws::{Frame, WsConn};

/// Where a client's messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `message` to the client's room; each is due to the `room_size - 1` others.
    Room { room_size: u32 },
    /// `private` to a client picked at random among `clients`; due once.
    Private { clients: u32 },
}

impl Mode {
    fn fanout(self) -> u64 {
        match self {
            Mode::Room { room_size } => u64::from(room_size.saturating_sub(1)),
            Mode::Private { .. } => 1,
        }
    }
}

const SHARDS: usize = 16;

/// Counters of one step, shared by every client task.
pub struct StepStats {
    sent: AtomicU64,
    acked: AtomicU64,
    refused: AtomicU64,
    received: AtomicU64,
    late: AtomicU64,
    out_of_order: AtomicU64,
    errors: AtomicU64,
    disconnects: AtomicU64,
    senders_done: AtomicU32,
    last_receive_us: AtomicU64,
    max_send_lag_us: AtomicU64,
    latency: Vec<Mutex<Histogram<u64>>>,
    refusals: Mutex<BTreeMap<String, u64>>,
    error_codes: Mutex<BTreeMap<String, u64>>,
}

impl StepStats {
    fn new() -> Self {
        Self {
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            received: AtomicU64::new(0),
            late: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            senders_done: AtomicU32::new(0),
            last_receive_us: AtomicU64::new(0),
            max_send_lag_us: AtomicU64::new(0),
            latency: (0..SHARDS)
                .map(|_| {
                    Mutex::new(
                        Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"),
                    )
                })
                .collect(),
            refusals: Mutex::default(),
            error_codes: Mutex::default(),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One step as the clients see it.
pub struct Step {
    id: u32,
    start: Instant,
    interval: Duration,
    per_client: u32,
    text_bytes: usize,
    stats: StepStats,
}

#[derive(Clone)]
pub enum Ctl {
    Wait,
    Step(Arc<Step>),
    Stop,
}

/// A connected, joined client ready for load.
pub struct LoadClient {
    /// Index within the scenario (also its name `u<index>`).
    pub index: u32,
    pub room: String,
    pub conn: WsConn,
}

/// Runs one client until `Ctl::Stop` (or its connection ends). What it reads
/// between steps is counted in `between` (to wait for a backlog to drain).
pub async fn run_client(
    client: LoadClient,
    proto: Proto,
    mode: Mode,
    clients: u32,
    mut ctl: watch::Receiver<Ctl>,
    alive: Arc<AtomicU32>,
    between: Arc<Traffic>,
) {
    let LoadClient {
        index,
        room,
        mut conn,
    } = client;
    let mut step: Option<Arc<Step>> = None;
    let mut next_ack: u64 = 2;
    let mut step_first_ack = u64::MAX;
    let mut seq = 0u32;
    let mut next_send: Option<Instant> = None;
    let mut rng = 0x9e37_79b9u32 ^ (index.wrapping_mul(2_654_435_761) | 1);
    let mut last_seq: HashMap<u32, u32> = HashMap::new();
    let mut text = String::new();
    let mut out = Vec::new();
    let name = format!("u{index}");
    let timer = sleep_until(tokio::time::Instant::now() + Duration::from_secs(3600));
    tokio::pin!(timer);
    'run: loop {
        tokio::select! {
            changed = ctl.changed() => {
                if changed.is_err() {
                    break 'run;
                }
                let now = ctl.borrow_and_update().clone();
                match now {
                    Ctl::Wait => {
                        step = None;
                        next_send = None;
                    }
                    Ctl::Stop => break 'run,
                    Ctl::Step(new) => {
                        let phase = new.interval.mul_f64(f64::from(index) / f64::from(clients.max(1)));
                        let first = new.start + phase;
                        next_send = Some(first);
                        timer.as_mut().reset(first.into());
                        seq = 0;
                        step_first_ack = next_ack;
                        last_seq.clear();
                        step = Some(new);
                    }
                }
            }
            () = &mut timer, if next_send.is_some() => {
                let (Some(s), Some(due)) = (step.as_ref(), next_send) else { continue };
                let now = Instant::now();
                let lag = now.saturating_duration_since(due).as_micros() as u64;
                s.stats.max_send_lag_us.fetch_max(lag, Ordering::Relaxed);
                seq += 1;
                Stamp { step: s.id, sender: index, seq, sent_us: now_us() }.write(&mut text, s.text_bytes);
                match mode {
                    Mode::Room { .. } => proto.message(&mut out, next_ack, &room, &name, &text),
                    Mode::Private { clients } => {
                        rng ^= rng << 13;
                        rng ^= rng >> 17;
                        rng ^= rng << 5;
                        let mut to = rng % (clients - 1).max(1);
                        if to >= index {
                            to += 1;
                        }
                        proto.private(&mut out, next_ack, &format!("u{to}"), &text);
                    }
                }
                next_ack += 1;
                if conn.send_text(&out).await.is_err() {
                    StepStats::add(&s.stats.disconnects, 1);
                    break 'run;
                }
                StepStats::add(&s.stats.sent, 1);
                if seq >= s.per_client {
                    next_send = None;
                    s.stats.senders_done.fetch_add(1, Ordering::Relaxed);
                } else {
                    let next = due + s.interval;
                    next_send = Some(next);
                    timer.as_mut().reset(next.into());
                }
            }
            read = conn.fill() => {
                if read.is_err() {
                    if let Some(s) = &step {
                        StepStats::add(&s.stats.disconnects, 1);
                    }
                    break 'run;
                }
                loop {
                    let frame = match conn.parse() {
                        Ok(Some(frame)) => frame,
                        Ok(None) => break,
                        Err(_) => break 'run,
                    };
                    if step.is_none() && !matches!(&frame, Frame::Text(t) if t.as_ref() == b"2") {
                        // Between steps: what a failed step left queued (pings
                        // are not backlog).
                        between.saw(1, 0);
                    }
                    let reply = match frame {
                        Frame::Text(payload) => match proto.classify(&payload) {
                            Incoming::Ping => conn.send_text(b"3").await,
                            Incoming::Delivery(body) => {
                                count_delivery(step.as_deref(), mode, body, &mut last_seq, index);
                                Ok(())
                            }
                            Incoming::Ack { id, ok, code } => {
                                if let Some(s) = step.as_ref().filter(|_| id >= step_first_ack) {
                                    if ok {
                                        StepStats::add(&s.stats.acked, 1);
                                    } else {
                                        StepStats::add(&s.stats.refused, 1);
                                        let code = String::from_utf8_lossy(code.unwrap_or(b"?")).into_owned();
                                        *s.stats.refusals.lock().expect("refusals lock").entry(code).or_default() += 1;
                                    }
                                }
                                Ok(())
                            }
                            Incoming::ErrorEvent(code) => {
                                if let Some(s) = &step {
                                    StepStats::add(&s.stats.errors, 1);
                                    let code = String::from_utf8_lossy(code.unwrap_or(b"?")).into_owned();
                                    *s.stats.error_codes.lock().expect("error codes lock").entry(code).or_default() += 1;
                                }
                                Ok(())
                            }
                            Incoming::Disconnect | Incoming::ConnectError(_) => break 'run,
                            _ => Ok(()),
                        },
                        Frame::Ping(payload) => conn.send_pong(&payload).await,
                        Frame::Close => break 'run,
                        Frame::Other => Ok(()),
                    };
                    if reply.is_err() {
                        break 'run;
                    }
                }
            }
        }
    }
    if let Some(s) = &step {
        if next_send.is_some() {
            // Died mid-step: it will never finish sending.
            StepStats::add(&s.stats.disconnects, 1);
        }
    }
    alive.fetch_sub(1, Ordering::Relaxed);
}

fn count_delivery(
    step: Option<&Step>,
    mode: Mode,
    body: &[u8],
    last_seq: &mut HashMap<u32, u32>,
    index: u32,
) {
    let Some(s) = step else { return };
    let Some(stamp) = Stamp::parse(body) else {
        return;
    };
    if stamp.step != s.id {
        StepStats::add(&s.stats.late, 1);
        return;
    }
    let now = now_us();
    StepStats::add(&s.stats.received, 1);
    s.stats.last_receive_us.fetch_max(now, Ordering::Relaxed);
    s.stats.latency[index as usize % SHARDS]
        .lock()
        .expect("histogram lock")
        .saturating_record(now.saturating_sub(stamp.sent_us).max(1));
    if let Mode::Room { .. } = mode {
        // A room's members must see each sender's messages in order, once each.
        let last = last_seq.entry(stamp.sender).or_insert(0);
        if stamp.seq <= *last {
            StepStats::add(&s.stats.out_of_order, 1);
        }
        *last = (*last).max(stamp.seq);
    }
}

/// What one step offered and what came of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    /// Messages per second each client sent.
    pub rate_per_client: f64,
    /// Messages per second offered by all clients together.
    pub offered_msgs_per_s: f64,
    /// Deliveries per second the offered messages are due to cause.
    pub offered_deliveries_per_s: f64,
    pub sent: u64,
    pub acked: u64,
    pub refused: u64,
    pub refusals: BTreeMap<String, u64>,
    pub unacked: u64,
    pub expected: u64,
    pub received: u64,
    /// `expected - received`: deliveries that never arrived within the drain time.
    pub loss: i64,
    pub out_of_order: u64,
    pub late: u64,
    pub errors: u64,
    /// The `code` of each `error` event (a message refused without ack).
    #[serde(default)]
    pub error_codes: BTreeMap<String, u64>,
    pub disconnects: u64,
    /// Received deliveries per second, from the step start to the last delivery.
    pub deliveries_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Largest delay of a send behind its schedule (the generator's own lag).
    pub max_send_lag_ms: f64,
    /// CPU used from the step's start to the end of its drain, in % of one core:
    /// the server process, this generator, and everything else on the machine.
    #[serde(default)]
    pub server_cpu_pct: f64,
    #[serde(default)]
    pub generator_cpu_pct: f64,
    #[serde(default)]
    pub other_cpu_pct: f64,
    pub seconds: f64,
    pub passed: bool,
    pub verdict: String,
}

/// How one step is run and judged.
#[derive(Debug, Clone, Copy)]
pub struct StepPlan {
    pub rate_per_client: f64,
    pub duration: Duration,
    pub drain: Duration,
    pub text_bytes: usize,
    pub p99_limit_ms: f64,
    /// The server's process id (for its CPU use).
    pub server_pid: u32,
    /// Whether the server acknowledges messages ([`Proto::acks`]); without acks
    /// every sent message counts as accepted.
    pub acks: bool,
}

/// Runs one step across all clients and waits for it to drain.
pub async fn run_step(
    ctl: &watch::Sender<Ctl>,
    id: u32,
    plan: StepPlan,
    clients: u32,
    mode: Mode,
    alive: &AtomicU32,
) -> StepResult {
    let rate = plan.rate_per_client;
    let per_client = ((rate * plan.duration.as_secs_f64()).round() as u32).max(1);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(200);
    let step = Arc::new(Step {
        id,
        start,
        interval,
        per_client,
        text_bytes: plan.text_bytes,
        stats: StepStats::new(),
    });
    let start_us = now_us() + 200_000;
    ctl.send_replace(Ctl::Step(step.clone()));
    tokio::time::sleep_until(start.into()).await;
    let cpu_before = CpuSnapshot::take(plan.server_pid);
    let stats = &step.stats;
    let sending = interval * per_client;
    let fanout = mode.fanout();

    // Sending: until every live client sent its share (bounded).
    let send_deadline = start + sending * 3 + Duration::from_secs(10);
    while stats.senders_done.load(Ordering::Relaxed) < alive.load(Ordering::Relaxed)
        && Instant::now() < send_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Draining: until every accepted message was delivered and every send answered.
    let drain_deadline = Instant::now() + plan.drain;
    loop {
        let sent = StepStats::get(&stats.sent);
        let refused = StepStats::get(&stats.refused);
        let answered = if plan.acks {
            StepStats::get(&stats.acked) + refused
        } else {
            sent
        };
        let due = (sent - refused.min(sent)) * fanout;
        if (answered >= sent && StepStats::get(&stats.received) >= due)
            || Instant::now() >= drain_deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = cpu_before
        .zip(CpuSnapshot::take(plan.server_pid))
        .map(|(before, after)| before.until(&after))
        .unwrap_or_default();
    ctl.send_replace(Ctl::Wait);
    // Let the clients see the change before reading the counters.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let sent = StepStats::get(&stats.sent);
    let acked = StepStats::get(&stats.acked);
    let refused = StepStats::get(&stats.refused);
    let received = StepStats::get(&stats.received);
    let expected = (sent - refused.min(sent)) * fanout;
    let loss = expected as i64 - received as i64;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
    for shard in &stats.latency {
        latency
            .add(&*shard.lock().expect("histogram lock"))
            .expect("same bounds");
    }
    let ms = |q: f64| {
        if latency.is_empty() {
            0.0
        } else {
            latency.value_at_quantile(q) as f64 / 1000.0
        }
    };
    let last = stats.last_receive_us.load(Ordering::Relaxed);
    let seconds = (last.saturating_sub(start_us) as f64 / 1e6).max(sending.as_secs_f64());
    let offered_msgs = f64::from(clients) * rate;
    let p99 = ms(0.99);
    let out_of_order = StepStats::get(&stats.out_of_order);
    let errors = StepStats::get(&stats.errors);
    let disconnects = StepStats::get(&stats.disconnects);
    let unacked = if plan.acks {
        sent - (acked + refused).min(sent)
    } else {
        0
    };
    let mut problems = Vec::new();
    if loss != 0 {
        problems.push(format!("loss {loss}"));
    }
    if refused > 0 {
        problems.push(format!("{refused} refused"));
    }
    if unacked > 0 {
        problems.push(format!("{unacked} unacked"));
    }
    if out_of_order > 0 {
        problems.push(format!("{out_of_order} out of order"));
    }
    let error_codes = stats.error_codes.lock().expect("error codes lock").clone();
    if errors > 0 {
        let codes = error_codes
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        problems.push(format!("{errors} error events ({codes})"));
    }
    if disconnects > 0 {
        problems.push(format!("{disconnects} disconnects"));
    }
    if sent < u64::from(per_client) * u64::from(clients) {
        problems.push(format!(
            "sent {sent} of {}",
            u64::from(per_client) * u64::from(clients)
        ));
    }
    if p99 > plan.p99_limit_ms {
        problems.push(format!("p99 {p99:.1} ms > {} ms", plan.p99_limit_ms));
    }
    let passed = problems.is_empty();
    let lag_ms = stats.max_send_lag_us.load(Ordering::Relaxed) as f64 / 1000.0;
    if lag_ms > plan.p99_limit_ms / 2.0 {
        // Not a failure of the server, but the step's numbers include the
        // generator's own delay: it could not keep its schedule (CPU-bound).
        problems.push(format!("generator lagged {lag_ms:.0} ms"));
    }
    let refusals = stats.refusals.lock().expect("refusals lock").clone();
    StepResult {
        rate_per_client: rate,
        offered_msgs_per_s: offered_msgs,
        offered_deliveries_per_s: offered_msgs * fanout as f64,
        sent,
        acked,
        refused,
        refusals,
        unacked,
        expected,
        received,
        loss,
        out_of_order,
        late: StepStats::get(&stats.late),
        errors,
        error_codes,
        disconnects,
        deliveries_per_s: received as f64 / seconds,
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: p99,
        p999_ms: ms(0.999),
        max_ms: if latency.is_empty() {
            0.0
        } else {
            latency.max() as f64 / 1000.0
        },
        max_send_lag_ms: lag_ms,
        server_cpu_pct: cpu.server,
        generator_cpu_pct: cpu.generator,
        other_cpu_pct: cpu.others,
        seconds,
        passed,
        verdict: if passed {
            std::iter::once("ok".to_string())
                .chain(problems)
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            problems.join(", ")
        },
    }
}
