//! Palaver's benchmark harness.
//!
//! ```text
//! palaver-bench run --preset quick --out bench/results     # what `make bench` runs
//! palaver-bench bare-server --port 0                       # the bare WebSocket ceiling
//! palaver-bench hold --addr 127.0.0.1:3000 --count 10000   # a worker holding idle connections
//! ```
//!
//! `run` starts each server under test as a child process (a fresh one per
//! scenario), drives it from this process over loopback, and writes RESULTS.md,
//! raw/results.json and SVG charts. See bench/README.md.

mod bare;
mod client;
mod load;
mod proto;
mod report;
mod scenarios;
mod servers;
mod storm;
mod sys;
mod ws;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use crate::client::Target;
use crate::proto::Proto;
use crate::report::{Report, ServerReport};
use crate::scenarios::{Plan, SeedPlan, StepsPlan};
use crate::servers::{Paths, ServerKind};
use crate::storm::StormPlan;

#[derive(Debug, Parser)]
#[command(version, about = "Palaver benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    /// Tiny sizes; checks that everything completes with zero loss (no timing checks).
    Smoke,
    /// `make bench`: 1000 clients fan-out, 10k and 50k idle connections.
    Quick,
    /// `make bench-full`: longer steps, more of them, up to 100k idle connections.
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Fanout,
    Idle,
    Connect,
    Private,
    /// The reconnect storm (servers with connection recovery only).
    Storm,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs the scenarios against the servers and writes the results.
    Run {
        #[arg(long, value_enum, default_value = "quick")]
        preset: Preset,
        /// Output directory (RESULTS.md, charts, raw/).
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
        /// Servers, comma separated: palaver, palaver-express, socketio-express, bare-ws,
        /// seed002-palaver, seed002-socketio.
        #[arg(long, value_delimiter = ',')]
        servers: Vec<String>,
        /// Scenarios, comma separated: fanout, idle, connect, private, storm.
        #[arg(long, value_enum, value_delimiter = ',')]
        scenarios: Vec<Scenario>,
        /// Engine configuration for both Palaver servers.
        #[arg(long, default_value = "bench/config/palaver.json")]
        palaver_config: PathBuf,
        /// Override the idle connection counts, comma separated.
        #[arg(long, value_delimiter = ',')]
        idle_sizes: Vec<u64>,
        /// Override the room size of the idle and connect scenarios.
        #[arg(long)]
        idle_room_size: Option<u32>,
        /// Connections per idle worker process (default: what its fd limit allows).
        #[arg(long)]
        idle_per_worker: Option<u64>,
        /// Override the fan-out rates (messages per second per client), comma separated.
        #[arg(long, value_delimiter = ',')]
        fanout_rates: Vec<f64>,
        /// Override the private message rates (per client), comma separated.
        #[arg(long, value_delimiter = ',')]
        private_rates: Vec<f64>,
        /// Override the seconds per step (every stepped scenario).
        #[arg(long)]
        step_secs: Option<f64>,
        /// Seed 002: override the fan-out clients.
        #[arg(long)]
        seed_clients: Option<u32>,
        /// Seed 002: override the fan-out room size.
        #[arg(long)]
        seed_room_size: Option<u32>,
        /// Seed 002: override the coarse fan-out rates, comma separated.
        #[arg(long, value_delimiter = ',')]
        seed_rates: Vec<f64>,
        /// Seed 002: override the refinement ratio (0: no refinement).
        #[arg(long)]
        seed_refine: Option<f64>,
        /// Seed 002: override the connect-rate connections.
        #[arg(long)]
        seed_connect_count: Option<u64>,
        /// Storm: override the clients that drop and reconnect.
        #[arg(long)]
        storm_clients: Option<u32>,
        /// Storm: override the senders that keep talking.
        #[arg(long)]
        storm_senders: Option<u32>,
        /// Storm: override the messages per second per sender.
        #[arg(long)]
        storm_rate: Option<f64>,
        /// Storm: override the milliseconds the clients stay away.
        #[arg(long)]
        storm_down_ms: Option<u64>,
        /// Storm: override the reconnections in flight at a time.
        #[arg(long)]
        storm_concurrency: Option<usize>,
        /// Fail (exit 1) unless every scenario completed with zero loss and no
        /// failed connection (the smoke test; timings are not judged).
        #[arg(long)]
        check: bool,
    },
    /// Writes RESULTS.md and the charts again from raw/results.json (after a
    /// change to the report, or to check the Tuning notes survive).
    Report {
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// The bare WebSocket room broadcaster (the ceiling).
    BareServer {
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Exit after this long at most.
        #[arg(long, default_value_t = 3 * 3600)]
        max_seconds: u64,
    },
    /// Opens and holds idle connections until stdin closes (used by `run`).
    Hold {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long, default_value = "socketio")]
        proto: String,
        /// Global index of the first connection (source address and name).
        #[arg(long, default_value_t = 0)]
        first: u64,
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 100)]
        room_size: u32,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        #[arg(long, default_value_t = 900)]
        max_seconds: u64,
    },
}

/// How closely `make bench` and `make bench-full` find a stepped scenario's knee:
/// after the first failing step, steps between the best passing and the lowest
/// failing rate until the two are within 10 %.
const KNEE_RATIO: f64 = 1.1;

fn preset(preset: Preset) -> Plan {
    match preset {
        Preset::Smoke => Plan {
            preset: "smoke".into(),
            fanout: StepsPlan {
                clients: 20,
                room_size: 10,
                rates: vec![2.0],
                step_secs: 1.0,
                drain_secs: 5.0,
                refine_ratio: None,
            },
            private: StepsPlan {
                clients: 20,
                room_size: 10,
                rates: vec![2.0],
                step_secs: 1.0,
                drain_secs: 5.0,
                refine_ratio: None,
            },
            idle_sizes: vec![200],
            idle_room_size: 100,
            connect_count: 100,
            connect_concurrency: 20,
            text_bytes: 64,
            p99_limit_ms: 50.0,
            settle_secs: 0.5,
            idle_per_worker: None,
            seed002: Some(SeedPlan {
                fanout: StepsPlan {
                    clients: 20,
                    room_size: 10,
                    rates: vec![2.0],
                    step_secs: 1.0,
                    drain_secs: 5.0,
                    refine_ratio: None,
                },
                connect_count: 40,
                connect_concurrency: 10,
            }),
            storm: Some(StormPlan {
                clients: 100,
                senders: 2,
                rate: 5.0,
                down_ms: 200,
                concurrency: 50,
                join_concurrency: 50,
                lead_secs: 0.5,
                tail_secs: 0.5,
            }),
        },
        Preset::Quick => Plan {
            preset: "quick".into(),
            fanout: StepsPlan {
                clients: 1000,
                room_size: 100,
                rates: vec![0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0],
                step_secs: 3.0,
                drain_secs: 5.0,
                refine_ratio: Some(KNEE_RATIO),
            },
            private: StepsPlan {
                clients: 1000,
                room_size: 100,
                rates: vec![5.0, 10.0, 20.0, 30.0, 40.0, 60.0],
                step_secs: 3.0,
                drain_secs: 5.0,
                refine_ratio: Some(KNEE_RATIO),
            },
            idle_sizes: vec![10_000, 50_000],
            idle_room_size: 100,
            connect_count: 5_000,
            connect_concurrency: 100,
            text_bytes: 64,
            p99_limit_ms: 50.0,
            settle_secs: 1.0,
            idle_per_worker: None,
            seed002: Some(seed_plan(3.0, 5.0)),
            storm: Some(storm_plan(10_000)),
        },
        Preset::Full => Plan {
            preset: "full".into(),
            fanout: StepsPlan {
                clients: 1000,
                room_size: 100,
                rates: vec![
                    0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0,
                ],
                step_secs: 10.0,
                drain_secs: 10.0,
                refine_ratio: Some(KNEE_RATIO),
            },
            private: StepsPlan {
                clients: 1000,
                room_size: 100,
                rates: vec![
                    2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 120.0,
                ],
                step_secs: 10.0,
                drain_secs: 10.0,
                refine_ratio: Some(KNEE_RATIO),
            },
            idle_sizes: vec![10_000, 50_000, 100_000],
            idle_room_size: 100,
            connect_count: 20_000,
            connect_concurrency: 200,
            text_bytes: 64,
            p99_limit_ms: 50.0,
            settle_secs: 2.0,
            idle_per_worker: None,
            seed002: Some(seed_plan(10.0, 10.0)),
            // 19.7k: what a 20k descriptor limit leaves for the room (the
            // generator holds the clients and the senders in one process).
            storm: Some(storm_plan(19_700)),
        },
    }
}

/// Seed 002's sizes in `make bench` and `make bench-full`: see bench/README.md
/// (every join pushes the whole member list to every client, so the join phase
/// grows as N³ in bytes).
fn seed_plan(step_secs: f64, drain_secs: f64) -> SeedPlan {
    SeedPlan {
        fanout: StepsPlan {
            clients: SEED_CLIENTS,
            room_size: SEED_ROOM_SIZE,
            rates: vec![0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
            step_secs,
            drain_secs,
            refine_ratio: Some(KNEE_RATIO),
        },
        connect_count: SEED_CLIENTS.into(),
        connect_concurrency: 100,
    }
}

/// The reconnect storm of `make bench` and `make bench-full`: 4 senders at 0.5
/// messages per second each (2 per second in the room: 20k deliveries per second
/// at 10k members; at 10 per second the Node server, writing each delivery with
/// its own system call, fell behind before the storm and recovered too slowly
/// to finish within its sessions' 2 minutes); the clients stay away 1 s and
/// reconnect 200 at a time.
fn storm_plan(clients: u32) -> StormPlan {
    StormPlan {
        clients,
        senders: 4,
        rate: 0.5,
        down_ms: 1000,
        concurrency: 200,
        join_concurrency: 200,
        lead_secs: 2.0,
        tail_secs: 1.0,
    }
}

const SEED_CLIENTS: u32 = 400;
const SEED_ROOM_SIZE: u32 = 40;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

/// What `run` needs on disk before it starts; the make targets build it all.
fn missing_prerequisites(repo: &Path, servers: &[ServerKind]) -> Vec<String> {
    let mut missing = Vec::new();
    let node = servers.iter().any(|k| k.script().is_some());
    if servers.contains(&ServerKind::Palaver)
        && !repo.join("target/release/palaver-server").exists()
    {
        missing
            .push("target/release/palaver-server (cargo build --release -p palaver-server)".into());
    }
    if node && !repo.join("bench/node_modules/socket.io").exists() {
        missing.push("bench/node_modules (cd bench && npm ci)".into());
    }
    if servers.iter().any(|k| k.is_seed()) && !repo.join("bench/node_modules/express4").exists() {
        missing.push("bench/node_modules/express4 (cd bench && npm ci)".into());
    }
    if servers.iter().any(|k| k.uses_addon()) && !servers::addon_path(repo).exists() {
        missing.push(format!(
            "{} (make bench-node-addon)",
            servers::addon_path(repo).display()
        ));
    }
    missing
}

/// The bench's Node addon, if it has debug info (not the release build the bench
/// means to measure).
fn debug_addon(repo: &Path) -> Option<PathBuf> {
    let addon = servers::addon_path(repo);
    std::fs::read(&addon)
        .ok()
        .and_then(|bytes| elf_has_section(&bytes, b".debug_info"))
        .unwrap_or(false)
        .then_some(addon)
}

/// Whether a little-endian ELF64 file has a section of this name.
fn elf_has_section(elf: &[u8], name: &[u8]) -> Option<bool> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at =
        |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?) as usize);
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (shoff, shentsize) = (u64_at(0x28)?, usize::from(u16_at(0x3a)?));
    let (shnum, shstrndx) = (usize::from(u16_at(0x3c)?), usize::from(u16_at(0x3e)?));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(header(shstrndx) + 0x18)?;
    for i in 0..shnum {
        let at = strtab + u32_at(header(i))? as usize;
        let found = elf.get(at..at + name.len() + 1)?;
        if &found[..name.len()] == name && found[name.len()] == 0 {
            return Some(true);
        }
    }
    Some(false)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Report { out } => {
            let out = if out.is_absolute() {
                out
            } else {
                repo_root().join(out)
            };
            let raw = out.join("raw/results.json");
            let report: Report = match std::fs::read_to_string(&raw)
                .map_err(|e| e.to_string())
                .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
            {
                Ok(report) => report,
                Err(e) => {
                    eprintln!("palaver-bench: {}: {e}", raw.display());
                    return ExitCode::FAILURE;
                }
            };
            match write_results(&report, &out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("palaver-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::BareServer { port, max_seconds } => {
            sys::raise_nofile();
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            match runtime.block_on(bare::serve(port, max_seconds)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bare-server: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Hold {
            addr,
            proto,
            first,
            count,
            room_size,
            concurrency,
            max_seconds,
        } => {
            sys::raise_nofile();
            let proto = Proto::parse(&proto).unwrap_or(Proto::SocketIo);
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            runtime.block_on(scenarios::hold_worker(
                Target { addr, proto },
                first,
                count,
                room_size,
                concurrency,
                max_seconds.min(3600),
            ));
            ExitCode::SUCCESS
        }
        Cmd::Run {
            preset: which,
            out,
            servers,
            scenarios,
            palaver_config,
            idle_sizes,
            idle_room_size,
            idle_per_worker,
            fanout_rates,
            private_rates,
            step_secs,
            seed_clients,
            seed_room_size,
            seed_rates,
            seed_refine,
            seed_connect_count,
            storm_clients,
            storm_senders,
            storm_rate,
            storm_down_ms,
            storm_concurrency,
            check,
        } => {
            let mut plan = preset(which);
            if !idle_sizes.is_empty() {
                plan.idle_sizes = idle_sizes;
            }
            plan.idle_per_worker = idle_per_worker;
            if let Some(size) = idle_room_size {
                plan.idle_room_size = size.max(1);
            }
            if !fanout_rates.is_empty() {
                plan.fanout.rates = fanout_rates;
            }
            if !private_rates.is_empty() {
                plan.private.rates = private_rates;
            }
            if let Some(secs) = step_secs {
                plan.fanout.step_secs = secs;
                plan.private.step_secs = secs;
            }
            if let Some(seed) = plan.seed002.as_mut() {
                if let Some(secs) = step_secs {
                    seed.fanout.step_secs = secs;
                }
                if let Some(n) = seed_clients {
                    seed.fanout.clients = n;
                }
                if let Some(n) = seed_room_size {
                    seed.fanout.room_size = n.max(2);
                }
                if !seed_rates.is_empty() {
                    seed.fanout.rates = seed_rates;
                }
                if let Some(ratio) = seed_refine {
                    seed.fanout.refine_ratio = (ratio > 1.0).then_some(ratio);
                }
                if let Some(n) = seed_connect_count {
                    seed.connect_count = n;
                }
            }
            if let Some(storm) = plan.storm.as_mut() {
                if let Some(n) = storm_clients {
                    storm.clients = n.max(1);
                }
                if let Some(n) = storm_senders {
                    storm.senders = n.max(1);
                }
                if let Some(rate) = storm_rate {
                    storm.rate = rate;
                }
                if let Some(ms) = storm_down_ms {
                    storm.down_ms = ms;
                }
                if let Some(n) = storm_concurrency {
                    storm.concurrency = n.max(1);
                }
            }
            let kinds = if servers.is_empty() {
                ServerKind::ALL.to_vec()
            } else {
                let mut kinds = Vec::new();
                for name in &servers {
                    match ServerKind::parse(name) {
                        Some(kind) => kinds.push(kind),
                        None => {
                            eprintln!("unknown server {name:?}");
                            return ExitCode::from(2);
                        }
                    }
                }
                kinds
            };
            let scenarios = if scenarios.is_empty() {
                vec![
                    Scenario::Fanout,
                    Scenario::Idle,
                    Scenario::Connect,
                    Scenario::Private,
                    Scenario::Storm,
                ]
            } else {
                scenarios
            };
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            let listed = !servers.is_empty();
            runtime.block_on(run(
                plan,
                kinds,
                scenarios,
                out,
                palaver_config,
                check,
                listed,
            ))
        }
    }
}

async fn run(
    plan: Plan,
    kinds: Vec<ServerKind>,
    scenarios: Vec<Scenario>,
    out: PathBuf,
    palaver_config: PathBuf,
    check: bool,
    // Whether the servers were named on the command line.
    listed: bool,
) -> ExitCode {
    let started = Instant::now();
    let nofile = sys::raise_nofile();
    let repo = repo_root();
    let absolute = |p: PathBuf| if p.is_absolute() { p } else { repo.join(p) };
    let out = absolute(out);
    let palaver_config = absolute(palaver_config);
    let missing = missing_prerequisites(&repo, &kinds);
    if !missing.is_empty() {
        eprintln!("palaver-bench: missing (the make targets build these):");
        for m in missing {
            eprintln!("  {m}");
        }
        return ExitCode::FAILURE;
    }
    if kinds.iter().any(|k| k.uses_addon()) {
        if let Some(addon) = debug_addon(&repo) {
            eprintln!(
                "palaver-bench: WARNING: {} is a debug build (it has .debug_info); the \
                 numbers of the servers on the Node addon will be far too low. \
                 `make bench-node-addon` builds the release addon there.",
                addon.display()
            );
        }
    }
    let config_json: serde_json::Value = match std::fs::read_to_string(&palaver_config)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(value) => value,
        Err(e) => {
            eprintln!("palaver-bench: {}: {e}", palaver_config.display());
            return ExitCode::FAILURE;
        }
    };
    let paths = Paths {
        repo: repo.clone(),
        palaver_config,
        logs: out.join("raw/logs"),
    };
    let _ = std::fs::remove_dir_all(&paths.logs);
    let machine = sys::Machine::describe();
    let date = sys::utc_now();
    eprintln!(
        "palaver-bench: preset {}, {} servers, RLIMIT_NOFILE {nofile}, results in {}",
        plan.preset,
        kinds.len(),
        out.display()
    );
    let limit = Duration::from_secs(if plan.preset == "full" { 1800 } else { 600 });
    let mut reports = Vec::new();
    for kind in kinds {
        eprintln!("== {} ({})", kind.name(), kind.describe());
        let mut r = ServerReport::new(kind);
        for scenario in &scenarios {
            if kind.is_seed() {
                let Some(seed) = &plan.seed002 else { continue };
                match scenario {
                    Scenario::Fanout => {
                        eprintln!(" (e) seed 002: room fan-out");
                        let outcome = scenarios::with_server(kind, &paths, "fanout", limit, |s| {
                            let plan = &plan;
                            async move { scenarios::stepped(&s, plan, &seed.fanout, false).await }
                        })
                        .await;
                        report_error(&outcome);
                        r.fanout = Some(outcome);
                    }
                    Scenario::Connect => {
                        eprintln!(
                            " (e) seed 002: connect rate (handshake + join answered by groupList)"
                        );
                        let outcome = scenarios::with_server(
                            kind,
                            &paths,
                            "connect",
                            limit,
                            |s| async move {
                                scenarios::connect(
                                    &s,
                                    seed.connect_count,
                                    seed.connect_concurrency,
                                    seed.fanout.room_size,
                                )
                                .await
                            },
                        )
                        .await;
                        report_error(&outcome);
                        r.connect = Some(outcome);
                    }
                    // The app has no private messages, and idle sizes in the tens
                    // of thousands would be a join storm of O(N³) bytes; nor has it
                    // connection recovery.
                    Scenario::Idle | Scenario::Private | Scenario::Storm => {}
                }
                continue;
            }
            match scenario {
                Scenario::Fanout => {
                    eprintln!(" (a) room fan-out");
                    let outcome = scenarios::with_server(kind, &paths, "fanout", limit, |s| {
                        let plan = &plan;
                        async move { scenarios::stepped(&s, plan, &plan.fanout, false).await }
                    })
                    .await;
                    report_error(&outcome);
                    r.fanout = Some(outcome);
                }
                Scenario::Idle => {
                    for &size in &plan.idle_sizes {
                        eprintln!(" (b) idle connections: {size}");
                        let label = format!("idle-{size}");
                        let outcome = scenarios::with_server(kind, &paths, &label, limit, |s| {
                            let plan = &plan;
                            async move { scenarios::idle(&s, plan, size).await }
                        })
                        .await;
                        report_error(&outcome);
                        r.idle.push((size, outcome));
                    }
                }
                Scenario::Connect => {
                    eprintln!(" (c) connect rate");
                    let outcome = scenarios::with_server(kind, &paths, "connect", limit, |s| {
                        let plan = &plan;
                        async move {
                            scenarios::connect(
                                &s,
                                plan.connect_count,
                                plan.connect_concurrency,
                                plan.idle_room_size,
                            )
                            .await
                        }
                    })
                    .await;
                    report_error(&outcome);
                    r.connect = Some(outcome);
                }
                Scenario::Private => {
                    eprintln!(" (d) private messages");
                    let outcome = scenarios::with_server(kind, &paths, "private", limit, |s| {
                        let plan = &plan;
                        async move { scenarios::stepped(&s, plan, &plan.private, true).await }
                    })
                    .await;
                    report_error(&outcome);
                    r.private = Some(outcome);
                }
                Scenario::Storm => {
                    let Some(storm) = &plan.storm else { continue };
                    if storm::recovery_of(kind).is_none() {
                        eprintln!(" (f) reconnect storm: skipped (no connection recovery)");
                        continue;
                    }
                    if kind == ServerKind::PalaverExpress && !listed {
                        // The same engine as `palaver`; with the room's join and
                        // leave notices its storm takes minutes.
                        eprintln!(
                            " (f) reconnect storm: skipped (runs with --servers palaver-express)"
                        );
                        continue;
                    }
                    eprintln!(
                        " (f) reconnect storm: {} clients in one room, {} senders",
                        storm.clients, storm.senders
                    );
                    // Rooms over the chat's notice limit (1000) are quiet now, but
                    // a server with notices on takes minutes here: they grow as the
                    // square of the room (Palaver without the limit, at 10k: 4 to 10
                    // minutes on a busy 2-core machine).
                    let limit = if storm.clients > 10_000 {
                        Duration::from_secs(3600)
                    } else {
                        Duration::from_secs(1800)
                    };
                    let outcome = scenarios::with_server_env(
                        kind,
                        &paths,
                        "storm",
                        limit,
                        storm::server_env(kind),
                        |s| {
                            let plan = &plan;
                            async move { storm::storm(&s, storm, plan.text_bytes).await }
                        },
                    )
                    .await;
                    report_error(&outcome);
                    r.storm = Some(outcome);
                }
            }
        }
        reports.push(r);
    }
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let report = Report {
        date,
        command: format!("palaver-bench {command}"),
        minutes: started.elapsed().as_secs_f64() / 60.0,
        machine,
        plan,
        palaver_config: config_json,
        servers: reports,
    };
    if let Err(e) = write_results(&report, &out) {
        eprintln!("palaver-bench: writing results: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "palaver-bench: done in {:.1} min; {}",
        report.minutes,
        out.join("RESULTS.md").display()
    );
    if check {
        let failures = report::smoke_failures(&report);
        if !failures.is_empty() {
            eprintln!("palaver-bench: smoke check FAILED:");
            for f in &failures {
                eprintln!("  {f}");
            }
            return ExitCode::FAILURE;
        }
        eprintln!("palaver-bench: smoke check passed (every server, every scenario, zero loss)");
    }
    ExitCode::SUCCESS
}

fn report_error<T>(outcome: &Result<T, String>) {
    if let Err(e) = outcome {
        eprintln!("  FAILED: {e}");
    }
}

fn write_results(report: &Report, out: &Path) -> Result<(), String> {
    let raw = out.join("raw");
    std::fs::create_dir_all(&raw).map_err(|e| format!("{}: {e}", raw.display()))?;
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(raw.join("results.json"), json).map_err(|e| e.to_string())?;
    for problem in report::charts(report, out) {
        eprintln!("palaver-bench: chart: {problem}");
    }
    let path = out.join("RESULTS.md");
    let previous = std::fs::read_to_string(&path).ok();
    let md = report::markdown(report, previous.as_deref());
    std::fs::write(&path, md).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_sections() {
        let exe = std::fs::read(std::env::current_exe().expect("test binary")).expect("readable");
        assert_eq!(elf_has_section(&exe, b".text"), Some(true));
        assert_eq!(elf_has_section(&exe, b".no_such_section"), Some(false));
        assert_eq!(elf_has_section(b"not an ELF file", b".text"), None);
    }
}
