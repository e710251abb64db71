//! The results: RESULTS.md (a table per scenario with ratios to the Node
//! Socket.IO server and to the bare ceiling), raw JSON, and SVG charts.

use std::fmt::Write as _;
use std::path::Path;

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::load::StepResult;
use crate::scenarios::{ConnectResult, IdleResult, Plan, StepsOutcome};
use crate::servers::ServerKind;
use crate::storm::StormResult;
use crate::sys::Machine;

pub type Outcome<T> = Result<T, String>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerReport {
    pub kind: ServerKind,
    pub fanout: Option<Outcome<StepsOutcome>>,
    pub idle: Vec<(u64, Outcome<IdleResult>)>,
    pub connect: Option<Outcome<ConnectResult>>,
    pub private: Option<Outcome<StepsOutcome>>,
    /// The reconnect storm; absent in results written before it existed.
    #[serde(default)]
    pub storm: Option<Outcome<StormResult>>,
}

impl ServerReport {
    pub fn new(kind: ServerKind) -> Self {
        Self {
            kind,
            fanout: None,
            idle: Vec::new(),
            connect: None,
            private: None,
            storm: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub date: String,
    pub command: String,
    pub minutes: f64,
    pub machine: Machine,
    pub plan: Plan,
    pub palaver_config: serde_json::Value,
    pub servers: Vec<ServerReport>,
}

const TUNING_HEADING: &str = "## Tuning notes";
const TUNING_PLACEHOLDER: &str = "_For the engine engineer: what was tuned between runs, what \
the numbers above suggest, and what to try next. This section is kept when the results are \
regenerated._\n";

/// The best step that passed (highest received rate), if any.
pub fn best_step(outcome: &StepsOutcome) -> Option<&StepResult> {
    outcome
        .steps
        .iter()
        .filter(|s| s.passed)
        .max_by(|a, b| a.deliveries_per_s.total_cmp(&b.deliveries_per_s))
}

fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn ratio(value: Option<f64>, base: Option<f64>) -> String {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 => format!("{:.2}×", v / b),
        _ => "—".into(),
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").replace('|', "/");
    if line.len() > 160 {
        let cut = (0..=160)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}…", &line[..cut])
    } else {
        line
    }
}

/// A headline number per server, for the ratio columns.
fn headline(
    report: &Report,
    kind: ServerKind,
    f: &dyn Fn(&ServerReport) -> Option<f64>,
) -> Option<f64> {
    report.servers.iter().find(|s| s.kind == kind).and_then(f)
}

/// Ratios to the Node Socket.IO server running the same app (the tutorial-style
/// chat, or seed 002's app) and to the bare broadcaster (not for seed 002: its
/// sizes and protocol differ).
fn ratio_cells(
    report: &Report,
    kind: ServerKind,
    f: &dyn Fn(&ServerReport) -> Option<f64>,
) -> (String, String) {
    let own = headline(report, kind, f);
    if kind.is_seed() {
        return (
            ratio(own, headline(report, ServerKind::Seed002Socketio, f)),
            "—".into(),
        );
    }
    (
        ratio(own, headline(report, ServerKind::SocketioExpress, f)),
        ratio(own, headline(report, ServerKind::BareWs, f)),
    )
}

/// The fan-out of the bench's own chat servers (section a).
fn chat_fanout(s: &ServerReport) -> Option<&Outcome<StepsOutcome>> {
    s.fanout.as_ref().filter(|_| !s.kind.is_seed())
}

/// The fan-out of seed 002's app (section e).
fn seed_fanout(s: &ServerReport) -> Option<&Outcome<StepsOutcome>> {
    s.fanout.as_ref().filter(|_| s.kind.is_seed())
}

fn steps_section(
    md: &mut String,
    report: &Report,
    title: &str,
    about: &str,
    unit: &str,
    charts: &[&str],
    pick: Pick,
) {
    let _ = writeln!(md, "## {title}\n\n{about}\n");
    let best = |s: &ServerReport| {
        pick(s)
            .and_then(|o| o.as_ref().ok())
            .and_then(best_step)
            .map(|step| step.deliveries_per_s)
    };
    let _ = writeln!(
        md,
        "| server | best passing step (msg/s per client) | {unit}/s | p50 ms | p99 ms | vs Socket.IO | vs bare | stepping ended |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|");
    for server in &report.servers {
        let Some(outcome) = pick(server) else {
            continue;
        };
        let name = server.kind.name();
        match outcome {
            Err(e) => {
                let _ = writeln!(
                    md,
                    "| {name} | failed | — | — | — | — | — | {} |",
                    one_line(e)
                );
            }
            Ok(o) => {
                let (vs_sio, vs_bare) = ratio_cells(report, server.kind, &best);
                match best_step(o) {
                    Some(step) => {
                        let _ = writeln!(
                            md,
                            "| {name} | {} | {} | {} | {} | {vs_sio} | {vs_bare} | {} |",
                            step.rate_per_client,
                            human(step.deliveries_per_s),
                            ms(step.p50_ms),
                            ms(step.p99_ms),
                            one_line(&o.stopped)
                        );
                    }
                    None => {
                        let _ = writeln!(
                            md,
                            "| {name} | none passed | — | — | — | — | — | {} |",
                            one_line(&o.stopped)
                        );
                    }
                }
            }
        }
    }
    md.push('\n');
    for chart in charts {
        let _ = writeln!(md, "![{chart}]({chart})\n");
    }
    steps_details(md, report, unit, pick);
}

/// Every step of every server, folded.
fn steps_details(md: &mut String, report: &Report, unit: &str, pick: Pick) {
    let _ = writeln!(md, "<details><summary>Every step</summary>\n");
    for server in &report.servers {
        let Some(Ok(o)) = pick(server) else { continue };
        let _ = writeln!(
            md,
            "**{}** ({} clients, rooms of {}; joined in {:.1} s, quiet {:.1} s later)\n",
            server.kind.name(),
            o.clients,
            o.room_size,
            o.connect_seconds,
            o.settle_seconds
        );
        let _ = writeln!(
            md,
            "| msg/s per client | offered {unit}/s | received {unit}/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | sent | expected | received | loss | refused | send lag ms | CPU % server / generator / other | verdict |"
        );
        let _ = writeln!(
            md,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for s in &o.steps {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} / {:.0} / {:.0} | {} |",
                s.rate_per_client,
                human(s.offered_deliveries_per_s),
                human(s.deliveries_per_s),
                ms(s.p50_ms),
                ms(s.p90_ms),
                ms(s.p99_ms),
                ms(s.p999_ms),
                ms(s.max_ms),
                s.sent,
                s.expected,
                s.received,
                s.loss,
                s.refused,
                ms(s.max_send_lag_ms),
                s.server_cpu_pct,
                s.generator_cpu_pct,
                s.other_cpu_pct,
                one_line(&s.verdict)
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "</details>\n");
}

/// Section (e): seed 002's app on `palaver/socket.io` and on Node Socket.IO.
fn seed_section(md: &mut String, report: &Report) {
    let Some(seed) = &report.plan.seed002 else {
        return;
    };
    if !report.servers.iter().any(|s| s.kind.is_seed()) {
        return;
    }
    let p = &report.plan;
    let f = &seed.fanout;
    let refine = stepping_text(f.refine_ratio);
    let _ = writeln!(
        md,
        "## (e) Seed 002: the tutorial room chat, moved by its import line\n\n\
         `bench/servers/seed002-palaver.mjs` and `seed002-socketio.mjs` are seed 002's \
         `app.js` (ESM, Express 4 + `node:http`, `new Server(server, {{cors: true}})`), \
         identical but for `import {{ Server }} from \"palaver/socket.io\"` / \
         `\"socket.io\"` (and the listening port). Its handlers run in JavaScript on both. \
         `join {{name, room}}` (no ack) is answered with `groupList` (every room's members) \
         to the joiner, and broadcasts `groupList` and a notice to everyone else; \
         `message {{text, room, user}}` (no ack) reaches the room's other members as \
         `message {{text, user}}`.\n\n\
         **Fan-out.** {} clients in rooms of {}; a join is complete when the joiner \
         receives the `groupList` naming it. Every join pushes the whole list to every \
         client (O(N²) frames, O(N³) bytes), so N is in the hundreds; the load starts \
         once the clients have received nothing for 1 s, so the join phase is not in the \
         numbers. Then each client sends `message` at a fixed rate for {} s per step \
         (coarse rates {}); each is due to the room's {} other members and carries its \
         step, sender and sequence number in `text`. A step passes with zero loss (from \
         deliveries: there are no acks), every sender's messages in order at every \
         member, and p99 ≤ {} ms. {}\n\n\
         **Connect rate.** {} connections, {} in flight, rooms of {}: TCP connect, \
         WebSocket upgrade, Engine.IO open, Socket.IO connect, `join`, and the joiner's \
         `groupList`; the connections stay open, and every join also pushes the list to \
         all earlier ones, so the rate includes the app's O(N²) pushes.\n",
        f.clients,
        f.room_size,
        f.step_secs,
        f.rates
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        f.room_size.saturating_sub(1),
        p.p99_limit_ms,
        refine,
        seed.connect_count,
        seed.connect_concurrency,
        f.room_size,
    );
    let best = |s: &ServerReport| {
        seed_fanout(s)
            .and_then(|o| o.as_ref().ok())
            .and_then(best_step)
            .map(|step| step.deliveries_per_s)
    };
    let rate = |s: &ServerReport| {
        s.connect
            .as_ref()
            .filter(|_| s.kind.is_seed())
            .and_then(|o| o.as_ref().ok())
            .filter(|r| r.failed == 0)
            .map(|r| r.per_second)
    };
    let _ = writeln!(
        md,
        "| server | best passing step (msg/s per client) | deliveries/s | p50 ms | p99 ms | \
         vs Node | connections/s | connect p99 ms | vs Node | stepping ended |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for server in report.servers.iter().filter(|s| s.kind.is_seed()) {
        let name = server.kind.name();
        let fan = match seed_fanout(server) {
            None => "— | — | — | — | —".to_string(),
            Some(Err(_)) => "failed | — | — | — | —".to_string(),
            Some(Ok(o)) => match best_step(o) {
                Some(step) => format!(
                    "{} | {} | {} | {}",
                    step.rate_per_client,
                    human(step.deliveries_per_s),
                    ms(step.p50_ms),
                    ms(step.p99_ms)
                ),
                None => "none passed | — | — | —".to_string(),
            },
        };
        let fan_ratio = ratio_cells(report, server.kind, &best).0;
        let conn = match &server.connect {
            None => "— | —".to_string(),
            Some(Err(_)) => "failed | —".to_string(),
            Some(Ok(r)) if r.failed > 0 => {
                format!("{} of {} joined | {}", r.ok, r.attempted, ms(r.p99_ms))
            }
            Some(Ok(r)) => format!("{} | {}", human(r.per_second), ms(r.p99_ms)),
        };
        let conn_ratio = ratio_cells(report, server.kind, &rate).0;
        let ended = match seed_fanout(server) {
            Some(Ok(o)) => one_line(&o.stopped),
            Some(Err(e)) => one_line(e),
            None => String::new(),
        };
        let _ = writeln!(
            md,
            "| {name} | {fan} | {fan_ratio} | {conn} | {conn_ratio} | {ended} |"
        );
    }
    md.push('\n');
    let own = headline(report, ServerKind::Seed002Palaver, &best);
    let node = headline(report, ServerKind::Seed002Socketio, &best);
    if let (Some(own), Some(node)) = (own, node) {
        let x = own / node;
        let _ = writeln!(
            md,
            "Target (the ported app at least 5× Node Socket.IO's fan-out deliveries/s at \
             p99 ≤ {} ms, zero loss): **{x:.2}×, {}**.\n",
            p.p99_limit_ms,
            if x >= 5.0 { "met" } else { "not met" }
        );
    }
    let _ = writeln!(
        md,
        "Join phase of the fan-out run (pushed = what the joined clients received until \
         the load started):\n"
    );
    let _ = writeln!(
        md,
        "| server | clients | joined in s | joins/s | quiet after s | frames pushed | MB pushed |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for server in report.servers.iter().filter(|s| s.kind.is_seed()) {
        if let Some(Ok(o)) = seed_fanout(server) {
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {} | {:.1} | {} | {:.1} |",
                server.kind.name(),
                o.clients,
                o.connect_seconds,
                human(f64::from(o.clients) / o.connect_seconds.max(1e-9)),
                o.settle_seconds,
                o.join_frames,
                o.join_bytes as f64 / 1e6
            );
        }
    }
    md.push('\n');
    for chart in ["seed002-fanout-throughput.svg", "seed002-fanout-p99.svg"] {
        let _ = writeln!(md, "![{chart}]({chart})\n");
    }
    steps_details(md, report, "deliveries", seed_fanout);
}

/// Section (f): the reconnect storm, on the servers with connection recovery.
fn storm_section(md: &mut String, report: &Report) {
    let Some(plan) = &report.plan.storm else {
        return;
    };
    if !report.servers.iter().any(|s| s.storm.is_some()) {
        return;
    }
    let _ = writeln!(
        md,
        "## (f) Reconnect storm (issue 14)\n\n\
         {} clients joined to one room, plus {} senders in it that each send `message` \
         at {} per second for the whole run. Once every client has received a message, \
         all the clients close their transports at once (TCP closed), stay away {} ms, \
         and reconnect with recovery, **at most {} reconnections in flight** (connect to \
         the recovery's answer; the same pacing for every server: opening them all at \
         once overflows the listen backlog, and the kernel retries a dropped SYN only \
         after a second) while the room keeps talking. Palaver: the chat protocol's \
         `join {{room, name, since: {{offset, epoch}}}}`, whose answer has `recovered: true` \
         and `history` = the missed messages; a live message past a gap is fetched with \
         `history {{room, after}}`. Node Socket.IO 4.8 with `connectionStateRecovery` \
         (in-memory adapter): the stock client's CONNECT with `{{pid, offset}}`, the \
         server replays the missed packets and answers with the same `pid`.\n\n\
         **Recovered** = the client has every message up to the newest at its recovery, \
         without a hole. *All recovered* is the time from the drop until the last client \
         was; per client the same from the drop (p50/p99), and each reconnection's connect \
         to answer. *Replayed* = missed messages delivered by the recovery (replayed \
         packets; join history and history pages), per second of the storm. After the \
         storm the senders stop and every client's messages are checked by position in \
         the room (Palaver's `offset`; the Node server's message `id`, one counter): \
         complete from its first message to the last one sent, once each, in order, and \
         as the senders' acks say (sender and sequence number); anything else is counted \
         below, not hidden. Peak RSS: the server's VmHWM, reset at the drop; CPU: the \
         server's user + system seconds from the drop until all recovered.\n\n\
         The server, the generator (all the clients in one process) and anything else \
         share this machine's {} cores: the generator's and the rest's CPU seconds are in \
         the second table, and a busy machine stretches every time here.\n",
        plan.clients, plan.senders, plan.rate, plan.down_ms, plan.concurrency, report.machine.cores
    );
    let time = |s: &ServerReport| {
        s.storm
            .as_ref()
            .and_then(|o| o.as_ref().ok())
            .filter(|r| r.recovered == u64::from(r.clients) && r.clients > 0)
            .map(|r| r.seconds_to_all_recovered)
    };
    let rate = |s: &ServerReport| {
        s.storm
            .as_ref()
            .and_then(|o| o.as_ref().ok())
            .map(|r| r.replayed_per_second)
    };
    let rss = |s: &ServerReport| {
        s.storm
            .as_ref()
            .and_then(|o| o.as_ref().ok())
            .map(|r| r.rss_peak_kb as f64)
    };
    let cpu = |s: &ServerReport| {
        s.storm
            .as_ref()
            .and_then(|o| o.as_ref().ok())
            .map(|r| r.server_cpu_seconds)
    };
    let vs = |f: &dyn Fn(&ServerReport) -> Option<f64>, kind: ServerKind| {
        ratio(
            headline(report, kind, f),
            headline(report, ServerKind::SocketioExpress, f),
        )
    };
    let _ = writeln!(
        md,
        "| server | clients | recovered | all recovered s | vs Socket.IO | p50 / p99 ms | \
         answer p50 / p99 ms | replayed | replayed/s | vs Socket.IO | peak RSS MiB (before) | \
         vs Socket.IO | server CPU s | vs Socket.IO | complete clients | missing | notes |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for server in &report.servers {
        let Some(outcome) = &server.storm else {
            continue;
        };
        let name = server.kind.name();
        match outcome {
            Err(e) => {
                let _ = writeln!(
                    md,
                    "| {name} | failed | — | — | — | — | — | — | — | — | — | — | — | — | — | — | {} |",
                    one_line(e)
                );
            }
            Ok(r) => {
                let mut notes = Vec::new();
                if let Some(c) = &r.capped {
                    notes.push(c.clone());
                }
                if r.join_failed > 0 {
                    notes.push(format!(
                        "{} more could not join the room ({}) and are not counted",
                        r.join_failed,
                        one_line(r.join_error.as_deref().unwrap_or("?"))
                    ));
                }
                if r.not_recovered > 0 {
                    notes.push(format!(
                        "{} not recovered: {}",
                        r.not_recovered,
                        r.not_recovered_reasons
                            .iter()
                            .map(|(why, n)| format!("{why} ×{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if r.failed > 0 {
                    notes.push(format!(
                        "{} failed: {}",
                        r.failed,
                        r.errors.first().map(|e| one_line(e)).unwrap_or_default()
                    ));
                }
                let senders_lost: Vec<&String> = r
                    .errors
                    .iter()
                    .filter(|e| e.starts_with("sender:"))
                    .collect();
                if let Some(e) = senders_lost.first() {
                    notes.push(format!(
                        "sent {}, acked {}: a sender ended early ({}); {} messages without an ack unverified",
                        r.sent,
                        r.acked,
                        one_line(e),
                        r.unverified
                    ));
                }
                if r.connect_retries > 0 {
                    notes.push(format!("{} connects retried", r.connect_retries));
                }
                if r.duplicates > 0 {
                    notes.push(format!("{} duplicates dropped by position", r.duplicates));
                }
                if r.content_mismatch > 0 || r.beyond_holes > 0 {
                    notes.push(format!(
                        "{} content mismatches, {} past a hole",
                        r.content_mismatch, r.beyond_holes
                    ));
                }
                if r.gap_fetches > 0 {
                    notes.push(format!(
                        "{} history fetches ({} messages)",
                        r.gap_fetches, r.fetched
                    ));
                }
                if r.storm_notices > 0 {
                    notes.push(format!(
                        "{} join/leave notices and presence events received during the storm",
                        r.storm_notices
                    ));
                }
                let all = if r.recovered == u64::from(r.clients) {
                    format!("{:.2}", r.seconds_to_all_recovered)
                } else {
                    format!("not all ({:.1})", r.seconds_to_all_recovered)
                };
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {all} | {} | {} / {} | {} / {} | {} | {} | {} | {:.0} ({:.0}) | {} | {:.2} | {} | {} | {} | {} |",
                    r.clients,
                    r.recovered,
                    vs(&|s| time(s).map(|t| 1.0 / t), server.kind),
                    ms(r.recovered_p50_ms),
                    ms(r.recovered_p99_ms),
                    ms(r.answer_p50_ms),
                    ms(r.answer_p99_ms),
                    r.replayed,
                    human(r.replayed_per_second),
                    vs(&rate, server.kind),
                    r.rss_peak_kb as f64 / 1024.0,
                    r.rss_before_kb as f64 / 1024.0,
                    vs(&rss, server.kind),
                    r.server_cpu_seconds,
                    vs(&cpu, server.kind),
                    r.complete_clients,
                    r.missing,
                    notes.join("; ")
                );
            }
        }
    }
    let _ = writeln!(
        md,
        "\n`vs Socket.IO`: for the time, Node's time ÷ this server's (higher is faster); for \
         replayed/s, this ÷ Node's; for RSS and CPU, this ÷ Node's (lower is less).\n"
    );
    let _ = writeln!(
        md,
        "| server | room filled in s | quiet after s | MB pushed meanwhile | sent | acked | \
         positions | last answer s | frames during the storm | MB | generator CPU s | other CPU s |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
    );
    for server in &report.servers {
        if let Some(Ok(r)) = &server.storm {
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:.1} | {:.1} | {} | {} | {}–{} | {:.2} | {} | {:.1} | {:.2} | {:.2} |",
                server.kind.name(),
                r.join_seconds,
                r.quiet_seconds,
                r.join_mb,
                r.sent,
                r.acked,
                r.first_position,
                r.final_position,
                r.seconds_to_last_answer,
                r.storm_frames,
                r.storm_mb,
                r.generator_cpu_seconds,
                r.other_cpu_seconds
            );
        }
    }
    md.push('\n');
}

pub fn markdown(report: &Report, previous: Option<&str>) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let p = &report.plan;
    let _ = writeln!(md, "# Palaver benchmark results\n");
    let _ = writeln!(
        md,
        "Preset **{}**, run on {} with `{}` ({:.1} min). Raw data: `raw/results.json`; \
         server logs: `raw/logs/`.\n",
        p.preset, report.date, report.command, report.minutes
    );
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} |", m.cpu);
    let _ = writeln!(md, "| cores | {} |", m.cores);
    let _ = writeln!(md, "| RAM | {:.1} GiB |", m.ram_gib);
    let _ = writeln!(md, "| kernel | {} |", m.kernel);
    let _ = writeln!(md, "| load average at start | {} |", m.load_average);
    let _ = writeln!(
        md,
        "| RLIMIT_NOFILE (soft/hard) | {} / {} |",
        m.nofile_soft, m.nofile_hard
    );
    let _ = writeln!(md, "| node | {} |", m.node);
    let _ = writeln!(md, "| palaver (git) | {} |", m.git);
    let _ = writeln!(
        md,
        "\nThe load generator runs on the same machine as the server under test and \
         competes with it for the CPU; numbers compare servers with each other on this \
         machine, not with other machines.\n"
    );
    let _ = writeln!(md, "## Servers\n");
    for s in &report.servers {
        let _ = writeln!(md, "- **{}**: {}", s.kind.name(), s.kind.describe());
    }
    let _ = writeln!(
        md,
        "\nPalaver (both) runs with `bench/config/palaver.json`: `{}`\n",
        report.palaver_config
    );
    // What the configuration turns off that the engine does by default and the
    // other servers do not do at all.
    let mut off = Vec::new();
    if report.palaver_config["room_list"]["group_list"] == serde_json::Value::Bool(false) {
        off.push(
            "`room_list.group_list` is off: with it on every membership change sends every \
             client the tutorial's `groupList` (up to 50 rooms × 50 members), which dominates \
             the idle and connect scenarios.",
        );
    }
    if report.palaver_config["limits"]["notice_max_members"] == 1 {
        off.push(
            "`limits.notice_max_members` is 1: no join or leave notices (a `message` and a \
             `presence` event to each member already in the room), which the Node server's \
             chat does not send.",
        );
    }
    if !off.is_empty() {
        let _ = writeln!(
            md,
            "{} The other servers do neither. `--palaver-config \
             bench/config/palaver-as-shipped.json` measures Palaver with the engine's \
             defaults (see bench/README.md).\n",
            off.join(" ")
        );
    }
    let _ = writeln!(
        md,
        "Ratios are each server's headline number divided by the Node Socket.IO server's \
         (`vs Socket.IO`) and by the bare broadcaster's (`vs bare`). For throughput higher \
         is better; for memory lower is better.\n"
    );

    steps_section(
        &mut md,
        report,
        "(a) Room fan-out",
        &format!(
            "{} clients in rooms of {}; each client sends `message` to its room at a fixed \
             rate for {} s per step, the rate rising step by step. Every message is due to \
             the room's other members. A step passes when every message is acknowledged, \
             none is refused, loss (expected minus received deliveries) is zero, each \
             sender's messages arrive in order, and p99 delivery latency (send to receive) \
             is at most {} ms. {} Deliveries/s count received deliveries from the step's \
             start to its last delivery.",
            p.fanout.clients,
            p.fanout.room_size,
            p.fanout.step_secs,
            p.p99_limit_ms,
            stepping_text(p.fanout.refine_ratio)
        ),
        "deliveries",
        &["fanout-throughput.svg", "fanout-p99.svg"],
        chat_fanout,
    );

    // (b) idle
    let _ = writeln!(
        md,
        "## (b) Idle connections\n\nFor each size a fresh server; the connections are \
         opened (WebSocket, handshake, `join` of a room of {}, ack awaited) by worker \
         processes and left idle; then the server's RSS (VmRSS of /proc/<pid>/status, once \
         stable) minus its RSS before connecting, divided by the connections. Lower is \
         better; the ratios compare KiB per connection.\n",
        p.idle_room_size
    );
    let _ = writeln!(
        md,
        "| server | connections | RSS before MiB | RSS after MiB | KiB per connection | fds per connection | vs Socket.IO | vs bare | connect s | notes |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for &size in &p.idle_sizes {
        for server in &report.servers {
            let Some((_, outcome)) = server.idle.iter().find(|(n, _)| *n == size) else {
                continue;
            };
            let name = server.kind.name();
            match outcome {
                Err(e) => {
                    let _ = writeln!(
                        md,
                        "| {name} | {size} | — | — | failed | — | — | — | — | {} |",
                        one_line(e)
                    );
                }
                Ok(r) => {
                    let per = |s: &ServerReport| {
                        s.idle
                            .iter()
                            .find(|(n, _)| *n == size)
                            .and_then(|(_, o)| o.as_ref().ok())
                            .filter(|r| r.connected > 0)
                            .map(|r| r.kib_per_connection)
                    };
                    let (vs_sio, vs_bare) = ratio_cells(report, server.kind, &per);
                    let mut notes = Vec::new();
                    if let Some(c) = &r.capped {
                        notes.push(c.clone());
                    }
                    if r.failed > 0 {
                        notes.push(format!(
                            "{} failed: {}",
                            r.failed,
                            r.errors.first().map(|e| one_line(e)).unwrap_or_default()
                        ));
                    }
                    if r.dropped > 0 {
                        notes.push(format!("{} dropped while idle", r.dropped));
                    }
                    let _ = writeln!(
                        md,
                        "| {name} | {} of {} | {:.1} | {:.1} | {:.1} | {:.2} | {vs_sio} | {vs_bare} | {:.1} | {} |",
                        r.connected,
                        r.requested,
                        r.rss_before_kb as f64 / 1024.0,
                        r.rss_after_kb as f64 / 1024.0,
                        r.kib_per_connection,
                        r.fds_per_connection,
                        r.connect_seconds,
                        notes.join("; ")
                    );
                }
            }
        }
    }
    md.push('\n');

    // (c) connect
    let _ = writeln!(
        md,
        "## (c) Connect rate\n\n{} connections, {} in flight at a time, each: TCP connect \
         from its own 127.x.y.z, WebSocket upgrade, Engine.IO open, Socket.IO connect \
         (bare: none), `join` with a name, join ack. Connections stay open until the end. \
         Rate = joined connections / time from the first connect to the last ack; latency \
         is per connection, connect to join ack.\n",
        p.connect_count, p.connect_concurrency
    );
    let _ = writeln!(
        md,
        "| server | joined | connections/s | p50 ms | p99 ms | max ms | vs Socket.IO | vs bare | notes |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for server in &report.servers {
        let Some(outcome) = server.connect.as_ref().filter(|_| !server.kind.is_seed()) else {
            continue;
        };
        let name = server.kind.name();
        match outcome {
            Err(e) => {
                let _ = writeln!(
                    md,
                    "| {name} | failed | — | — | — | — | — | — | {} |",
                    one_line(e)
                );
            }
            Ok(r) => {
                let rate = |s: &ServerReport| {
                    s.connect
                        .as_ref()
                        .and_then(|o| o.as_ref().ok())
                        .map(|r| r.per_second)
                };
                let (vs_sio, vs_bare) = ratio_cells(report, server.kind, &rate);
                let mut notes = Vec::new();
                if let Some(c) = &r.capped {
                    notes.push(c.clone());
                }
                if r.failed > 0 {
                    notes.push(format!(
                        "{} failed: {}",
                        r.failed,
                        r.errors.first().map(|e| one_line(e)).unwrap_or_default()
                    ));
                }
                let _ = writeln!(
                    md,
                    "| {name} | {} of {} | {} | {} | {} | {} | {vs_sio} | {vs_bare} | {} |",
                    r.ok,
                    r.attempted,
                    human(r.per_second),
                    ms(r.p50_ms),
                    ms(r.p99_ms),
                    ms(r.max_ms),
                    notes.join("; ")
                );
            }
        }
    }
    md.push('\n');

    steps_section(
        &mut md,
        report,
        "(d) Private messages",
        &format!(
            "{} clients (joined to rooms of {}, which stay quiet); each sends `private` to \
             a client picked at random (never itself) at a fixed rate for {} s per step. \
             Each message is due once. Same pass rules as (a). {}",
            p.private.clients,
            p.private.room_size,
            p.private.step_secs,
            stepping_text(p.private.refine_ratio)
        ),
        "messages",
        &["private-throughput.svg", "private-p99.svg"],
        |s| s.private.as_ref(),
    );

    seed_section(&mut md, report);
    storm_section(&mut md, report);

    let _ = writeln!(md, "## Notes\n");
    let mut any = false;
    for server in &report.servers {
        let name = server.kind.name();
        let mut failures = Vec::new();
        if let Some(Err(e)) = &server.fanout {
            failures.push(format!("fan-out: {}", one_line(e)));
        }
        if let Some(Err(e)) = &server.private {
            failures.push(format!("private: {}", one_line(e)));
        }
        if let Some(Err(e)) = &server.connect {
            failures.push(format!("connect: {}", one_line(e)));
        }
        if let Some(Err(e)) = &server.storm {
            failures.push(format!("reconnect storm: {}", one_line(e)));
        }
        for (size, outcome) in &server.idle {
            if let Err(e) = outcome {
                failures.push(format!("idle {size}: {}", one_line(e)));
            }
        }
        for failure in failures {
            any = true;
            let _ = writeln!(md, "- {name}: {failure}");
        }
    }
    let load: f64 = m
        .load_average
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    if load > 0.5 * m.cores as f64 {
        any = true;
        let _ = writeln!(
            md,
            "- The machine was busy when the run started (load average {}, {} cores): \
             expect noise; re-run on a quiet machine before drawing conclusions.",
            m.load_average, m.cores
        );
    }
    let capped = report.servers.iter().any(|s| {
        s.idle
            .iter()
            .any(|(_, o)| o.as_ref().is_ok_and(|r| r.capped.is_some()))
            || s.connect
                .as_ref()
                .is_some_and(|o| o.as_ref().is_ok_and(|r| r.capped.is_some()))
    });
    if capped {
        any = true;
        let _ = writeln!(
            md,
            "- RLIMIT_NOFILE hard limit is {} here and this process may not raise it, so \
             connection counts above about {} per process were capped (see the notes \
             column). Run on a machine where the limit can be raised (root with \
             CAP_SYS_RESOURCE, or a higher `ulimit -Hn`) for the full sizes.",
            m.nofile_hard,
            m.nofile_soft.saturating_sub(256)
        );
    }
    if !any {
        let _ = writeln!(md, "- Every scenario completed.");
    }
    md.push('\n');

    let tuning = previous
        .and_then(|text| {
            let at = text.find(TUNING_HEADING)?;
            let body = &text[at + TUNING_HEADING.len()..];
            let end = body.find("\n## ").map(|i| i + 1).unwrap_or(body.len());
            Some(body[..end].trim().to_string())
        })
        .filter(|body| !body.is_empty())
        .unwrap_or_else(|| TUNING_PLACEHOLDER.trim().to_string());
    let _ = writeln!(md, "{TUNING_HEADING}\n\n{tuning}");
    md
}

const COLORS: [RGBColor; 6] = [
    RGBColor(0xd9, 0x4f, 0x00),
    RGBColor(0x7a, 0x3d, 0xb8),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x55, 0x55, 0x55),
    RGBColor(0xd9, 0x4f, 0x00),
    RGBColor(0x1f, 0x77, 0xb4),
];

fn color_of(kind: ServerKind) -> RGBColor {
    let i = ServerKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    COLORS[i % COLORS.len()]
}

/// Per server: (x, y, passed) points.
type Series = Vec<(ServerKind, Vec<(f64, f64, bool)>)>;

/// Which stepped scenario of a server.
type Pick = fn(&ServerReport) -> Option<&Outcome<StepsOutcome>>;

fn draw<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    series: &Series,
    limit: Option<f64>,
    x_max: f64,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    for (kind, points) in series {
        let color = color_of(*kind);
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(x, y, _)| (x, y)),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(kind.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        // Passing steps filled, failing ones hollow.
        chart
            .draw_series(points.iter().map(|&(x, y, passed)| {
                let style = if passed {
                    color.filled()
                } else {
                    color.stroke_width(2)
                };
                Circle::new((x, y), 4, style)
            }))
            .map_err(err)?;
    }
    if let Some(limit) = limit {
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, limit), (x_max, limit)],
                RED.mix(0.5).stroke_width(1),
            ))
            .map_err(err)?
            .label(format!("{limit} ms limit"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.mix(0.5)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)
}

fn line_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &Series,
    log_y: bool,
    limit: Option<f64>,
) -> Result<(), String> {
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let light = BLACK.mix(0.04);
    let bold = BLACK.mix(0.15);
    let y_max = points.clone().map(|p| p.1).chain(limit).fold(1.0, f64::max) * 1.1;
    let y_min = points
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(f64::MAX, f64::min)
        .clamp(0.01, 1.0);
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80);
    let fmt = |v: &f64| human(*v);
    if log_y {
        let mut chart = builder
            .build_cartesian_2d(0f64..x_max, (y_min * 0.8..y_max).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(light)
            .bold_line_style(bold)
            .x_label_formatter(&fmt)
            .y_label_formatter(&|v| ms(*v))
            .draw()
            .map_err(|e| e.to_string())?;
        draw(&mut chart, series, limit, x_max)?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(light)
            .bold_line_style(bold)
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .draw()
            .map_err(|e| e.to_string())?;
        draw(&mut chart, series, limit, x_max)?;
    }
    root.present().map_err(|e| e.to_string())
}

fn step_series(report: &Report, pick: Pick, y: fn(&StepResult) -> f64) -> Series {
    report
        .servers
        .iter()
        .filter_map(|s| {
            let o = pick(s)?.as_ref().ok()?;
            let mut points = o
                .steps
                .iter()
                .map(|step| (step.offered_deliveries_per_s, y(step), step.passed))
                .collect::<Vec<_>>();
            // Refined steps run out of order; the chart reads left to right.
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (!points.is_empty()).then_some((s.kind, points))
        })
        .collect()
}

/// Writes the four charts (fan-out and private: throughput and p99 against offered load).
pub fn charts(report: &Report, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let limit = Some(report.plan.p99_limit_ms);
    let jobs: [(&str, &str, &str, Pick); 3] = [
        ("fanout", "Room fan-out", "deliveries", chat_fanout),
        ("private", "Private messages", "messages", |s| {
            s.private.as_ref()
        }),
        (
            "seed002-fanout",
            "Seed 002 room chat fan-out",
            "deliveries",
            seed_fanout,
        ),
    ];
    for (file, title, unit, pick) in jobs {
        let throughput = step_series(report, pick, |s| s.deliveries_per_s);
        if throughput.is_empty() {
            continue;
        }
        let p99 = step_series(report, pick, |s| s.p99_ms);
        let offered = format!("offered {unit}/s");
        if let Err(e) = line_chart(
            &dir.join(format!("{file}-throughput.svg")),
            &format!("{title}: received {unit}/s"),
            &offered,
            &format!("received {unit}/s"),
            &throughput,
            false,
            None,
        ) {
            problems.push(format!("{file}-throughput.svg: {e}"));
        }
        if let Err(e) = line_chart(
            &dir.join(format!("{file}-p99.svg")),
            &format!("{title}: p99 latency"),
            &offered,
            "p99 latency, ms (log)",
            &p99,
            true,
            limit,
        ) {
            problems.push(format!("{file}-p99.svg: {e}"));
        }
    }
    problems
}

/// Which parts of the report break the smoke test's rules: every scenario
/// completed, nothing lost, refused, failed or dropped (timings are not judged).
pub fn smoke_failures(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for server in &report.servers {
        let name = server.kind.name();
        for (what, outcome) in [("fan-out", &server.fanout), ("private", &server.private)] {
            match outcome {
                None => {}
                Some(Err(e)) => out.push(format!("{name} {what}: {e}")),
                Some(Ok(o)) => {
                    if o.steps.is_empty() {
                        out.push(format!("{name} {what}: no step ran"));
                    }
                    for (i, s) in o.steps.iter().enumerate() {
                        if s.loss != 0
                            || s.refused > 0
                            || s.unacked > 0
                            || s.disconnects > 0
                            || s.out_of_order > 0
                            || s.errors > 0
                            || s.received == 0
                        {
                            out.push(format!(
                                "{name} {what} step {}: loss {}, refused {}, unacked {}, \
                                 disconnects {}, out of order {}, errors {}, received {}",
                                i + 1,
                                s.loss,
                                s.refused,
                                s.unacked,
                                s.disconnects,
                                s.out_of_order,
                                s.errors,
                                s.received
                            ));
                        }
                    }
                }
            }
        }
        for (size, outcome) in &server.idle {
            match outcome {
                Err(e) => out.push(format!("{name} idle {size}: {e}")),
                Ok(r) if r.connected != r.attempted || r.failed > 0 || r.dropped > 0 => {
                    out.push(format!(
                        "{name} idle {size}: {} of {} connected, {} failed, {} dropped {:?}",
                        r.connected, r.attempted, r.failed, r.dropped, r.errors
                    ))
                }
                Ok(_) => {}
            }
        }
        match &server.storm {
            Some(Err(e)) => out.push(format!("{name} reconnect storm: {e}")),
            Some(Ok(r))
                if r.recovered != u64::from(r.clients)
                    || r.complete_clients != u64::from(r.clients)
                    || r.missing > 0
                    || r.content_mismatch > 0
                    || r.failed > 0
                    || r.join_failed > 0
                    || r.refused > 0
                    || r.replayed == 0 =>
            {
                out.push(format!(
                    "{name} reconnect storm: {} of {} recovered, {} complete, missing {}, \
                     content mismatches {}, failed {}, refused {}, replayed {} {:?} {:?}",
                    r.recovered,
                    r.clients,
                    r.complete_clients,
                    r.missing,
                    r.content_mismatch,
                    r.failed,
                    r.refused,
                    r.replayed,
                    r.not_recovered_reasons,
                    r.errors
                ))
            }
            _ => {}
        }
        match &server.connect {
            Some(Err(e)) => out.push(format!("{name} connect: {e}")),
            Some(Ok(r)) if r.failed > 0 || r.ok != r.attempted => out.push(format!(
                "{name} connect: {} of {} joined {:?}",
                r.ok, r.attempted, r.errors
            )),
            _ => {}
        }
    }
    out
}

/// How a stepped scenario ends, for its section's introduction.
fn stepping_text(refine_ratio: Option<f64>) -> String {
    match refine_ratio {
        Some(r) => format!(
            "After the first failing step, steps at the geometric midpoint of the best \
             passing and the lowest failing rate run until the two are within {:.0} % \
             (each after a rest of at least 2 s once the previous step's backlog has \
             drained: 1 s without a frame), so the knee is known to that precision.",
            (r - 1.0) * 100.0
        ),
        None => "Stepping stops at the first failing step.".into(),
    }
}
