//! The servers under test, each started as a child process on a free loopback
//! port, with its output in a log file and its memory read from /proc.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use crate::proto::Proto;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    Palaver,
    PalaverExpress,
    SocketioExpress,
    BareWs,
    /// Seed 002's room-chat server file on `palaver/socket.io`.
    #[serde(rename = "seed002-palaver")]
    Seed002Palaver,
    /// The same file on the Node Socket.IO server.
    #[serde(rename = "seed002-socketio")]
    Seed002Socketio,
}

impl ServerKind {
    pub const ALL: [ServerKind; 6] = [
        ServerKind::Palaver,
        ServerKind::PalaverExpress,
        ServerKind::SocketioExpress,
        ServerKind::BareWs,
        ServerKind::Seed002Palaver,
        ServerKind::Seed002Socketio,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Palaver => "palaver",
            ServerKind::PalaverExpress => "palaver-express",
            ServerKind::SocketioExpress => "socketio-express",
            ServerKind::BareWs => "bare-ws",
            ServerKind::Seed002Palaver => "seed002-palaver",
            ServerKind::Seed002Socketio => "seed002-socketio",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            ServerKind::Palaver => "Palaver standalone server (release, memory history)",
            ServerKind::PalaverExpress => "Palaver attached to Express through the Node addon",
            ServerKind::SocketioExpress => "Node Socket.IO 4.8 + Express, tutorial-style chat",
            ServerKind::BareWs => "bare tokio-tungstenite room broadcaster (no Socket.IO)",
            ServerKind::Seed002Palaver => {
                "seed 002's room-chat app.js, unchanged but for `import { Server } from \"palaver/socket.io\"` (handlers in JavaScript, transport and fan-out in Rust)"
            }
            ServerKind::Seed002Socketio => {
                "seed 002's room-chat app.js on Node Socket.IO 4.8 (`import { Server } from \"socket.io\"`)"
            }
        }
    }

    /// Seed 002's app: its own protocol, sizes and section of the results.
    pub fn is_seed(self) -> bool {
        matches!(
            self,
            ServerKind::Seed002Palaver | ServerKind::Seed002Socketio
        )
    }

    /// Whether the server runs Palaver inside Node (the addon).
    pub fn uses_addon(self) -> bool {
        matches!(
            self,
            ServerKind::PalaverExpress | ServerKind::Seed002Palaver
        )
    }

    /// The Node script of a Node server, relative to bench/servers/.
    pub fn script(self) -> Option<&'static str> {
        match self {
            ServerKind::PalaverExpress => Some("palaver-express.js"),
            ServerKind::SocketioExpress => Some("socketio-express.js"),
            ServerKind::Seed002Palaver => Some("seed002-palaver.mjs"),
            ServerKind::Seed002Socketio => Some("seed002-socketio.mjs"),
            ServerKind::Palaver | ServerKind::BareWs => None,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    pub fn proto(self) -> Proto {
        match self {
            ServerKind::BareWs => Proto::Bare,
            ServerKind::Seed002Palaver | ServerKind::Seed002Socketio => Proto::Seed002,
            _ => Proto::SocketIo,
        }
    }
}

/// The release Node addon the bench builds for itself (bench/bench.mk), which
/// the Node servers load instead of node/native/'s (whatever was built last).
/// `BENCH_ADDON` names another one (e.g. a build with symbols, for `perf`).
pub fn addon_path(repo: &std::path::Path) -> PathBuf {
    match std::env::var_os("BENCH_ADDON") {
        Some(path) => PathBuf::from(path),
        None => repo.join("target/bench-addon/palaver.linux-x64-gnu.node"),
    }
}

/// Where things are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub repo: PathBuf,
    pub palaver_config: PathBuf,
    pub logs: PathBuf,
}

pub struct Server {
    pub kind: ServerKind,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: PathBuf,
    child: Child,
}

/// The bench's own servers (bare, Node) exit by themselves after this long.
pub const MAX_LIFETIME_SECS: u64 = 3 * 3600;

/// The line every bench server prints once it listens.
pub const LISTENING: &str = "BENCH_LISTENING ";

impl Server {
    /// Starts a fresh server (with `env` added to its environment) and waits
    /// until it accepts connections.
    pub async fn start(
        kind: ServerKind,
        paths: &Paths,
        label: &str,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        std::fs::create_dir_all(&paths.logs).map_err(|e| format!("logs dir: {e}"))?;
        let log = paths.logs.join(format!("{}-{label}.log", kind.name()));
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut command = match kind {
            ServerKind::Palaver => {
                let mut c = Command::new(paths.repo.join("target/release/palaver-server"));
                c.arg("--config")
                    .arg(&paths.palaver_config)
                    .args(["--host", "127.0.0.1", "--port", "0", "--stop-timeout", "1"])
                    .env("RUST_LOG", "warn");
                c
            }
            ServerKind::PalaverExpress
            | ServerKind::SocketioExpress
            | ServerKind::Seed002Palaver
            | ServerKind::Seed002Socketio => {
                let servers = paths.repo.join("bench/servers");
                let mut c = Command::new("node");
                if kind.is_seed() {
                    // The seed imports "express" and uses app.use("*"), which
                    // Express 5 (the other servers') rejects: this hook gives the
                    // seed files Express 4 (see express4-hook.mjs).
                    c.arg("--import").arg(servers.join("express4-hook.mjs"));
                }
                if let Ok(flags) = std::env::var("BENCH_NODE_FLAGS") {
                    // For profiling, e.g. BENCH_NODE_FLAGS=--perf-basic-prof and
                    // `perf record -p <pid>` (the runner kills its servers, so
                    // --cpu-prof, written at a clean exit, does not work here).
                    c.args(flags.split_whitespace());
                }
                // The bench's own release addon (bench.mk), not node/native/'s.
                c.env("NAPI_RS_NATIVE_LIBRARY_PATH", addon_path(&paths.repo));
                c.arg(servers.join(kind.script().expect("a Node server")))
                    .env("BENCH_PORT", "0")
                    .env("BENCH_PALAVER_CONFIG", &paths.palaver_config)
                    .env("NODE_ENV", "production");
                c
            }
            ServerKind::BareWs => {
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                let mut c = Command::new(exe);
                c.args(["bare-server", "--port", "0"])
                    .args(["--max-seconds", &MAX_LIFETIME_SECS.to_string()]);
                c
            }
        };
        crate::sys::die_with_parent(command.as_std_mut());
        command.envs(env.iter().copied());
        command
            .env("BENCH_MAX_SECONDS", MAX_LIFETIME_SECS.to_string())
            .current_dir(&paths.repo)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        // The child inherits this process's raised RLIMIT_NOFILE.
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", kind.name()))?;
        let pid = child.id().ok_or("the server exited at once")?;
        let mut server = Server {
            kind,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            child,
        };
        let port = server.wait_for_port(Duration::from_secs(30)).await?;
        server.addr.set_port(port);
        Ok(server)
    }

    async fn wait_for_port(&mut self, timeout: Duration) -> Result<u16, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(port) = find_port(&text) {
                return Ok(port);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before listening:\n{}",
                    self.kind.name(),
                    tail(&text, 2000)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen within {timeout:?}:\n{}",
                    self.kind.name(),
                    tail(&text, 2000)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the server and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }

    pub fn log_tail(&self, chars: usize) -> String {
        tail(
            &std::fs::read_to_string(&self.log).unwrap_or_default(),
            chars,
        )
    }
}

fn find_port(text: &str) -> Option<u16> {
    for line in text.lines() {
        let rest = if let Some(rest) = line.strip_prefix(LISTENING) {
            rest
        } else if let Some(at) = line.find("Palaver chat on http://") {
            // palaver-server: "Palaver chat on http://127.0.0.1:PORT/  (Ctrl-C stops it)"
            let url = &line[at + "Palaver chat on http://".len()..];
            let host_port = url.split('/').next().unwrap_or("");
            host_port.rsplit(':').next().unwrap_or("")
        } else {
            continue;
        };
        if let Ok(port) = rest.trim().parse() {
            return Some(port);
        }
    }
    None
}

fn tail(text: &str, chars: usize) -> String {
    let start = text.len().saturating_sub(chars);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// A field of /proc/<pid>/status in kB (VmRSS, VmHWM, ...).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// RSS once it stops moving (two samples 500 ms apart within 0.5 %), or after `max`.
pub async fn settled_rss_kb(pid: u32, max: Duration) -> Option<u64> {
    let deadline = Instant::now() + max;
    let mut last = status_kb(pid, "VmRSS")?;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = status_kb(pid, "VmRSS")?;
        let moved = now.abs_diff(last) as f64 / last.max(1) as f64;
        if moved < 0.005 || Instant::now() >= deadline {
            return Some(now);
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_startup_lines() {
        assert_eq!(
            find_port("x\nPalaver chat on http://127.0.0.1:41234/  (Ctrl-C stops it)\n"),
            Some(41234)
        );
        assert_eq!(find_port("BENCH_LISTENING 5000\n"), Some(5000));
        assert_eq!(find_port("nothing yet"), None);
    }
}
