//! The four scenarios, each against a freshly started server (seed 002's app
//! runs two of them, fan-out and connect rate, at its own sizes).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::client::{self, Identity, Target, Traffic};
use crate::load::{self, Ctl, LoadClient, Mode, StepPlan, StepResult};
use crate::servers::{self, Paths, Server, ServerKind};
use crate::sys::{cap, fd_budget};

/// A stepped scenario: clients in rooms, offered load raised step by step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepsPlan {
    pub clients: u32,
    pub room_size: u32,
    /// Messages per second per client, one step each.
    pub rates: Vec<f64>,
    pub step_secs: f64,
    pub drain_secs: f64,
    /// After the first failing step, steps between the best passing and the first
    /// failing rate (geometric midpoints) until they are within this ratio (1.1:
    /// the knee is known to 10 %). `None`: stop at the first failing step.
    #[serde(default)]
    pub refine_ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub preset: String,
    pub fanout: StepsPlan,
    pub private: StepsPlan,
    pub idle_sizes: Vec<u64>,
    pub idle_room_size: u32,
    pub connect_count: u64,
    pub connect_concurrency: usize,
    pub text_bytes: usize,
    pub p99_limit_ms: f64,
    /// Settle time after connecting, before load or measurement.
    pub settle_secs: f64,
    /// Connections per idle worker process; `None`: as many as its fd limit allows.
    pub idle_per_worker: Option<u64>,
    /// Seed 002's app (fan-out and connect rate at its own sizes); absent in
    /// results written before it existed.
    #[serde(default)]
    pub seed002: Option<SeedPlan>,
    /// The reconnect storm; absent in results written before it existed.
    #[serde(default)]
    pub storm: Option<crate::storm::StormPlan>,
}

/// Sizes for seed 002's room chat. Every join pushes the whole `groupList` (all
/// members of all rooms) to every client, so a join phase of N clients costs
/// O(N²) frames and O(N³) bytes: N stays in the hundreds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedPlan {
    /// Coarse rates in `fanout.rates`, then refined (see `StepsPlan::refine_ratio`).
    pub fanout: StepsPlan,
    pub connect_count: u64,
    pub connect_concurrency: usize,
}

/// Loads the server until no client has read anything for this long (the join
/// storm, or a failed step's backlog, has drained) ...
const QUIET: Duration = Duration::from_millis(1000);
/// ... or this long has passed.
const MAX_QUIET_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepsOutcome {
    pub clients: u32,
    pub room_size: u32,
    /// From the first connect to the last join.
    pub connect_seconds: f64,
    /// From the last join until the clients stopped receiving (the join phase's
    /// pushes delivered); the load starts after it.
    #[serde(default)]
    pub settle_seconds: f64,
    /// Frames and bytes joined clients received while the others joined and until
    /// the settle ended (join notices, room lists).
    #[serde(default)]
    pub join_frames: u64,
    #[serde(default)]
    pub join_bytes: u64,
    pub steps: Vec<StepResult>,
    /// Why the stepping ended.
    pub stopped: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleResult {
    pub requested: u64,
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    pub errors: Vec<String>,
    /// Set when the count was lowered to fit RLIMIT_NOFILE.
    pub capped: Option<String>,
    pub connect_seconds: f64,
    pub rss_before_kb: u64,
    pub rss_after_kb: u64,
    pub kib_per_connection: f64,
    pub fds_before: u64,
    pub fds_after: u64,
    pub fds_per_connection: f64,
    pub threads: u64,
    /// Connections the server closed while they idled.
    pub dropped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectResult {
    pub requested: u64,
    pub attempted: u64,
    pub capped: Option<String>,
    pub concurrency: usize,
    pub ok: u64,
    pub failed: u64,
    pub errors: Vec<String>,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

const OPEN_TIMEOUT: Duration = Duration::from_secs(20);

fn note(text: impl AsRef<str>) {
    eprintln!("  {}", text.as_ref());
}

/// The join phase of a stepped scenario.
struct Joined {
    clients: Vec<LoadClient>,
    connect_seconds: f64,
    settle_seconds: f64,
    frames: u64,
    bytes: u64,
}

/// Connects `clients` clients (names `u<i>`, rooms of `room_size`) for load. Each
/// keeps reading once joined; after the last join it waits `settle`, then until
/// nothing has been received for `settle` or [`QUIET`] (the shorter), so what the
/// joins pushed is delivered before the load starts and never counts in a step.
async fn connect_load_clients(
    target: Target,
    clients: u32,
    room_size: u32,
    prefix: &str,
    settle: Duration,
) -> Result<Joined, String> {
    let permits = Arc::new(Semaphore::new(100));
    let traffic = Arc::new(Traffic::default());
    let (stop, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let started = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..clients {
        let permit = permits.clone().acquire_owned().await.expect("open");
        let who = Identity {
            index: u64::from(i),
            name: format!("u{i}"),
            room: format!("{prefix}-{}", i / room_size),
        };
        let (traffic, stop_rx, done_tx) = (traffic.clone(), stop_rx.clone(), done_tx.clone());
        set.spawn(async move {
            let result = client::open(target, &who, OPEN_TIMEOUT).await;
            drop(permit);
            let _ = done_tx.send(());
            let result = match result {
                Ok(conn) => client::keep_reading(conn, target.proto, stop_rx, &traffic).await,
                Err(e) => Err(e),
            };
            (i, who.room, result)
        });
    }
    drop(done_tx);
    for _ in 0..clients {
        if done_rx.recv().await.is_none() {
            break;
        }
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let joined = Instant::now();
    tokio::time::sleep(settle).await;
    let quiet = QUIET.min(settle).as_micros() as u64;
    while traffic.quiet_us() < quiet && joined.elapsed() < MAX_QUIET_WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settle_seconds = joined.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let mut out = Vec::with_capacity(clients as usize);
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (index, room, result) = joined.map_err(|e| e.to_string())?;
        match result {
            Ok(conn) => out.push(LoadClient { index, room, conn }),
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        return Err(format!(
            "{} of {clients} clients could not connect and join; first: {}",
            failures.len(),
            failures[0]
        ));
    }
    out.sort_by_key(|c| c.index);
    Ok(Joined {
        clients: out,
        connect_seconds,
        settle_seconds,
        frames: traffic.frames.load(std::sync::atomic::Ordering::Relaxed),
        bytes: traffic.bytes.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Least rest after a failed step.
const RECOVERY: Duration = Duration::from_secs(2);

/// Waits [`RECOVERY`], then until the clients have read nothing for [`QUIET`] (a
/// failed step's backlog delivered), at most [`MAX_QUIET_WAIT`].
async fn wait_quiet(between: &Traffic) -> f64 {
    let started = Instant::now();
    // At least a short rest, so that no step starts right on the heels of an
    // overloaded one.
    tokio::time::sleep(RECOVERY).await;
    while between.quiet_us() < QUIET.as_micros() as u64 && started.elapsed() < MAX_QUIET_WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed().as_secs_f64()
}

/// The geometric midpoint of two rates, to three significant digits.
fn midpoint(lo: f64, hi: f64) -> f64 {
    let mid = (lo * hi).sqrt();
    let scale = 10f64.powi(2 - mid.log10().floor() as i32);
    (mid * scale).round() / scale
}

/// Room fan-out (`private == false`) or private messages (`private == true`).
pub async fn stepped(
    server: &Server,
    plan: &Plan,
    steps: &StepsPlan,
    private: bool,
) -> Result<StepsOutcome, String> {
    let refine = steps.refine_ratio;
    let target = Target {
        addr: server.addr,
        proto: server.kind.proto(),
    };
    let clients = steps.clients - steps.clients % steps.room_size.max(1);
    if clients < 2 {
        return Err("need at least two clients".into());
    }
    let joined = connect_load_clients(
        target,
        clients,
        steps.room_size,
        if private { "pm" } else { "room" },
        Duration::from_secs_f64(plan.settle_secs),
    )
    .await?;
    let connect_seconds = joined.connect_seconds;
    note(format!(
        "{clients} clients joined in {connect_seconds:.1}s; quiet {:.1}s later \
         ({} frames, {:.1} MB pushed to them meanwhile)",
        joined.settle_seconds,
        joined.frames,
        joined.bytes as f64 / 1e6
    ));

    let mode = if private {
        Mode::Private { clients }
    } else {
        Mode::Room {
            room_size: steps.room_size,
        }
    };
    let (ctl, ctl_rx) = watch::channel(Ctl::Wait);
    let alive = Arc::new(AtomicU32::new(clients));
    let between = Arc::new(Traffic::default());
    let mut tasks = JoinSet::new();
    for c in joined.clients {
        tasks.spawn(load::run_client(
            c,
            target.proto,
            mode,
            clients,
            ctl_rx.clone(),
            alive.clone(),
            between.clone(),
        ));
    }
    let mut results = Vec::new();
    let mut stopped = format!("step cap ({} steps)", steps.rates.len());
    // Coarse steps first, then (with `refine`) midpoints between the best passing
    // and the lowest failing rate.
    let mut coarse = steps.rates.iter().copied();
    let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
    let mut id = 0u32;
    loop {
        let rate = match (hi, lo, refine) {
            (None, _, _) => match coarse.next() {
                Some(rate) => rate,
                None => break,
            },
            (Some(hi), Some(lo), Some(ratio)) if hi / lo > ratio => {
                let mid = midpoint(lo, hi);
                if mid <= lo || mid >= hi {
                    break;
                }
                mid
            }
            _ => break,
        };
        id += 1;
        let step_plan = StepPlan {
            rate_per_client: rate,
            duration: Duration::from_secs_f64(steps.step_secs),
            drain: Duration::from_secs_f64(steps.drain_secs),
            text_bytes: plan.text_bytes,
            p99_limit_ms: plan.p99_limit_ms,
            server_pid: server.pid,
            acks: target.proto.acks(),
        };
        let result = load::run_step(&ctl, id, step_plan, clients, mode, &alive).await;
        note(format!(
            "{rate:>6} msg/s/client: {:>10.0} deliveries/s  p50 {:>7.2} ms  p99 {:>8.2} ms  loss {}  \
             CPU server {:.0}% generator {:.0}% other {:.0}%  {}",
            result.deliveries_per_s,
            result.p50_ms,
            result.p99_ms,
            result.loss,
            result.server_cpu_pct,
            result.generator_cpu_pct,
            result.other_cpu_pct,
            result.verdict
        ));
        let passed = result.passed;
        let verdict = result.verdict.clone();
        results.push(result);
        if !server_alive(server) {
            stopped = "server exited".into();
            break;
        }
        if passed {
            lo = Some(lo.map_or(rate, |lo: f64| lo.max(rate)));
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        if hi.is_none() {
            stopped = format!("step {id} failed: {verdict}");
        }
        hi = Some(hi.map_or(rate, |hi: f64| hi.min(rate)));
        if refine.is_none() || lo.is_none() {
            break;
        }
        // What the failed step left queued is delivered before the next one.
        let waited = wait_quiet(&between).await;
        note(format!("backlog drained in {waited:.1}s"));
    }
    if let (Some(lo), Some(hi), Some(_)) = (lo, hi, refine) {
        stopped = format!(
            "{stopped}; refined: {lo} passed, {hi} failed ({:.0}% apart)",
            (hi / lo - 1.0) * 100.0
        );
    }
    ctl.send_replace(Ctl::Stop);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    Ok(StepsOutcome {
        clients,
        room_size: steps.room_size,
        connect_seconds,
        settle_seconds: joined.settle_seconds,
        join_frames: joined.frames,
        join_bytes: joined.bytes,
        steps: results,
        stopped,
    })
}

fn server_alive(server: &Server) -> bool {
    servers::status_kb(server.pid, "VmRSS").is_some()
}

/// Connect rate: handshake plus join per second, `concurrency` in flight, all
/// connections kept open until the end (`requested` connections in rooms of
/// `room_size`).
pub async fn connect(
    server: &Server,
    requested: u64,
    concurrency: usize,
    room_size: u32,
) -> Result<ConnectResult, String> {
    let target = Target {
        addr: server.addr,
        proto: server.kind.proto(),
    };
    let (count, capped) = cap(requested, fd_budget());
    let room_size = u64::from(room_size.max(1));
    let (stop, stop_rx) = watch::channel(false);
    let burst = client::burst(
        target,
        count,
        concurrency,
        OPEN_TIMEOUT,
        |i| Identity {
            index: i,
            name: format!("c{i}"),
            room: format!("conn-{}", i / room_size),
        },
        stop_rx,
    )
    .await;
    let _ = stop.send(true);
    let mut holders = burst.holders;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while holders.join_next().await.is_some() {}
    })
    .await;
    holders.abort_all();
    let seconds = burst.elapsed.as_secs_f64();
    let ms = |q: f64| {
        if burst.latency.is_empty() {
            0.0
        } else {
            burst.latency.value_at_quantile(q) as f64 / 1000.0
        }
    };
    note(format!(
        "{} of {count} connected+joined in {seconds:.2}s: {:.0}/s, p99 {:.1} ms",
        burst.ok,
        burst.ok as f64 / seconds,
        ms(0.99)
    ));
    Ok(ConnectResult {
        requested,
        attempted: count,
        capped,
        concurrency,
        ok: burst.ok,
        failed: burst.failed,
        errors: burst.errors,
        seconds,
        per_second: burst.ok as f64 / seconds.max(1e-9),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: if burst.latency.is_empty() {
            0.0
        } else {
            burst.latency.max() as f64 / 1000.0
        },
    })
}

/// What a `hold` worker reports.
struct WorkerReport {
    ok: u64,
    failed: u64,
    elapsed_ms: u64,
    errors: Vec<String>,
}

fn parse_worker_line(line: &str) -> Option<WorkerReport> {
    let rest = line.strip_prefix("HOLD_CONNECTED ")?;
    let mut parts = rest.splitn(4, ' ');
    Some(WorkerReport {
        ok: parts.next()?.parse().ok()?,
        failed: parts.next()?.parse().ok()?,
        elapsed_ms: parts.next()?.parse().ok()?,
        errors: parts
            .next()
            .unwrap_or("")
            .split(" ;; ")
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// Idle connections: server memory per connected, joined, idle connection.
/// Connections are held by worker processes (each within its own fd limit).
pub async fn idle(server: &Server, plan: &Plan, size: u64) -> Result<IdleResult, String> {
    let pid = server.pid;
    let rss_before = servers::settled_rss_kb(pid, Duration::from_secs(5))
        .await
        .ok_or("server gone")?;
    let fds_before = servers::fd_count(pid).unwrap_or(0);
    let (attempted, capped) = cap(size, fd_budget());
    let per_worker = plan
        .idle_per_worker
        .unwrap_or_else(|| fd_budget().clamp(1000, 30_000))
        .max(1);
    let workers = attempted.div_ceil(per_worker).max(1);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let proto = server.kind.proto().name();
    let concurrency = (plan.connect_concurrency as u64 / workers).max(10);
    let mut children = Vec::new();
    let mut first = 0;
    for w in 0..workers {
        let count = (attempted - first).min(per_worker);
        let mut command = Command::new(&exe);
        crate::sys::die_with_parent(&mut command);
        let child = command
            .args(["hold", "--addr", &server.addr.to_string(), "--proto", proto])
            .args(["--first", &first.to_string(), "--count", &count.to_string()])
            .args(["--room-size", &plan.idle_room_size.to_string()])
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--max-seconds", "900"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("worker {w}: {e}"))?;
        children.push(child);
        first += count;
    }
    // Each worker prints one line once its connections are all open (or failed).
    let reports: Arc<Mutex<Vec<Option<WorkerReport>>>> = Arc::default();
    let mut readers = Vec::new();
    for child in &mut children {
        let stdout = child.stdout.take().expect("piped");
        let reports = reports.clone();
        readers.push(std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut report = None;
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(r) = parse_worker_line(&line) {
                    report = Some(r);
                    break;
                }
            }
            reports.lock().expect("reports").push(report);
            // The rest: "HOLD_DONE <dropped>".
            lines
                .map_while(Result::ok)
                .find_map(|line| line.strip_prefix("HOLD_DONE ")?.trim().parse::<u64>().ok())
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    while reports.lock().expect("reports").len() < children.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut ok, mut failed, mut elapsed_ms, mut errors) = (0, 0, 0, Vec::new());
    for report in reports.lock().expect("reports").iter() {
        match report {
            Some(r) => {
                ok += r.ok;
                failed += r.failed;
                elapsed_ms = elapsed_ms.max(r.elapsed_ms);
                for e in &r.errors {
                    if errors.len() < 5 {
                        errors.push(e.clone());
                    }
                }
            }
            None => errors.push("a worker ended without reporting".into()),
        }
    }
    note(format!(
        "{ok} of {attempted} idle connections open in {:.1}s ({failed} failed)",
        elapsed_ms as f64 / 1000.0
    ));
    tokio::time::sleep(Duration::from_secs_f64(plan.settle_secs)).await;
    let rss_after = servers::settled_rss_kb(pid, Duration::from_secs(15)).await;
    let fds_after = servers::fd_count(pid).unwrap_or(0);
    let threads = servers::status_kb(pid, "Threads").unwrap_or(0);
    // Release the workers: closing stdin tells them to close and exit.
    for child in &mut children {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
    }
    let mut dropped = 0;
    for reader in readers {
        dropped += tokio::task::spawn_blocking(move || reader.join().ok().flatten())
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
    }
    for mut child in children {
        let _ = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await;
    }
    let rss_after = rss_after.ok_or("the server died while connections idled")?;
    let per = |after: u64, before: u64| {
        if ok == 0 {
            0.0
        } else {
            (after as f64 - before as f64) / ok as f64
        }
    };
    let result = IdleResult {
        requested: size,
        attempted,
        connected: ok,
        failed,
        errors,
        capped,
        connect_seconds: elapsed_ms as f64 / 1000.0,
        rss_before_kb: rss_before,
        rss_after_kb: rss_after,
        kib_per_connection: per(rss_after, rss_before),
        fds_before,
        fds_after,
        fds_per_connection: per(fds_after, fds_before),
        threads,
        dropped,
    };
    note(format!(
        "RSS {} -> {} KiB: {:.1} KiB per connection, {:.2} fds per connection",
        rss_before, rss_after, result.kib_per_connection, result.fds_per_connection
    ));
    Ok(result)
}

/// The `hold` worker: opens `count` connections and holds them until stdin
/// says stop (or closes), or `max_seconds` pass.
pub async fn hold_worker(
    target: Target,
    first: u64,
    count: u64,
    room_size: u32,
    concurrency: usize,
    max_seconds: u64,
) {
    let room_size = u64::from(room_size.max(1));
    let (stop, stop_rx) = watch::channel(false);
    let burst = client::burst(
        target,
        count,
        concurrency,
        OPEN_TIMEOUT,
        |i| {
            let index = first + i;
            Identity {
                index,
                name: format!("i{index}"),
                room: format!("idle-{}", index / room_size),
            }
        },
        stop_rx,
    )
    .await;
    println!(
        "HOLD_CONNECTED {} {} {} {}",
        burst.ok,
        burst.failed,
        burst.elapsed.as_millis(),
        burst.errors.join(" ;; ").replace('\n', " ")
    );
    let _ = std::io::stdout().flush();
    // Any line or EOF on stdin, or the time limit, ends the hold.
    let stdin = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    });
    let _ = tokio::time::timeout(Duration::from_secs(max_seconds), stdin).await;
    let mut holders = burst.holders;
    // Connections that ended before the stop were dropped by the server.
    let mut dropped = 0u64;
    while let Some(ended) = holders.try_join_next() {
        if let Ok(Some(_)) = ended {
            dropped += 1;
        }
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while holders.join_next().await.is_some() {}
    })
    .await;
    println!("HOLD_DONE {dropped}");
    let _ = std::io::stdout().flush();
}

/// Runs a scenario against a fresh server of `kind`, stopping it afterwards.
pub async fn with_server<T, F, Fut>(
    kind: ServerKind,
    paths: &Paths,
    label: &str,
    limit: Duration,
    scenario: F,
) -> Result<T, String>
where
    F: FnOnce(Arc<Server>) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    with_server_env(kind, paths, label, limit, &[], scenario).await
}

/// [`with_server`], with `env` added to the server's environment.
pub async fn with_server_env<T, F, Fut>(
    kind: ServerKind,
    paths: &Paths,
    label: &str,
    limit: Duration,
    env: &[(&str, &str)],
    scenario: F,
) -> Result<T, String>
where
    F: FnOnce(Arc<Server>) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let server = Arc::new(Server::start(kind, paths, label, env).await?);
    // Startup allocations settle before anything is measured.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outcome = match tokio::time::timeout(limit, scenario(server.clone())).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("scenario did not finish within {limit:?}")),
    };
    let server = Arc::try_unwrap(server).map_err(|_| "server still shared".to_string());
    match server {
        Ok(mut server) => {
            let outcome = match outcome {
                Err(e) if !server.running() => Err(format!(
                    "{e}; the server exited:\n{}",
                    server.log_tail(1500)
                )),
                other => other,
            };
            server.stop().await;
            outcome
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refinement_midpoints() {
        assert_eq!(midpoint(8.0, 16.0), 11.3);
        assert_eq!(midpoint(11.3, 16.0), 13.4);
        assert_eq!(midpoint(0.5, 1.0), 0.707);
        assert_eq!(midpoint(64.0, 128.0), 90.5);
    }
}
