//! The machine: file descriptor limits (and the connections they allow), what
//! the results file says about the hardware, and the date.

use std::time::{SystemTime, UNIX_EPOCH};

use rlimit::Resource;
use serde::{Deserialize, Serialize};

/// Raises RLIMIT_NOFILE as far as allowed: the hard limit itself when the process
/// may (CAP_SYS_RESOURCE, up to fs.nr_open), else the soft limit to the hard one.
/// Children spawned afterwards inherit it. Returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let want = nr_open.min(1 << 21);
    if Resource::NOFILE.set(want, want).is_err() {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
    nofile().0
}

/// Makes a child process get SIGKILL when the thread that spawned it (a runtime
/// worker of this process) goes away, so that no server or worker outlives a
/// runner that was killed. Linux only; elsewhere a no-op.
pub fn die_with_parent(command: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
    }
}

/// (soft, hard) RLIMIT_NOFILE.
pub fn nofile() -> (u64, u64) {
    Resource::NOFILE.get().unwrap_or((1024, 1024))
}

/// File descriptors this process (and each server, which inherits its limits)
/// may hold for connections.
pub(crate) fn fd_budget() -> u64 {
    nofile().0.saturating_sub(256).max(64)
}

/// `requested` connections, or the `budget` with a note saying why fewer.
pub(crate) fn cap(requested: u64, budget: u64) -> (u64, Option<String>) {
    if requested <= budget {
        (requested, None)
    } else {
        let (soft, hard) = nofile();
        (
            budget,
            Some(format!(
                "capped from {requested}: RLIMIT_NOFILE {soft} (hard {hard})"
            )),
        )
    }
}

/// CPU time, in clock ticks, of the whole machine (busy) and of two processes
/// (the server under test and this generator), to tell during a step who used
/// the CPU: the server, the generator, or something else on the machine.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    at: std::time::Instant,
    machine_busy: u64,
    server: u64,
    generator: u64,
}

/// CPU used between two snapshots, in % of one core.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub server: f64,
    pub generator: f64,
    /// Everything else on the machine (other processes, and this machine's
    /// interrupts not charged to either).
    pub others: f64,
}

/// Busy clock ticks of all CPUs together (`/proc/stat`: all but idle and iowait).
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    Some(total - fields.get(3)? - fields.get(4)?)
}

/// utime + stime of a process (all its threads), in clock ticks.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

impl CpuSnapshot {
    pub fn take(server_pid: u32) -> Option<Self> {
        Some(Self {
            at: std::time::Instant::now(),
            machine_busy: machine_busy_ticks()?,
            server: process_ticks(&server_pid.to_string())?,
            generator: process_ticks("self")?,
        })
    }

    /// What was used from `self` to `later`.
    pub fn until(&self, later: &Self) -> CpuUse {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let pct = |ticks: u64| ticks as f64 / hz / secs * 100.0;
        let server = later.server.saturating_sub(self.server);
        let generator = later.generator.saturating_sub(self.generator);
        let busy = later.machine_busy.saturating_sub(self.machine_busy);
        CpuUse {
            server: pct(server),
            generator: pct(generator),
            others: pct(busy.saturating_sub(server + generator)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub ram_gib: f64,
    pub kernel: String,
    pub load_average: String,
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    pub node: String,
    pub git: String,
}

impl Machine {
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let ram_kb: u64 = meminfo
            .lines()
            .find_map(|line| {
                line.strip_prefix("MemTotal:")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0);
        let (nofile_soft, nofile_hard) = nofile();
        Self {
            cpu,
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            ram_gib: ram_kb as f64 / (1024.0 * 1024.0),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            load_average: read_trimmed("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            nofile_soft,
            nofile_hard,
            node: command_output("node", &["--version"]),
            git: {
                let rev = command_output("git", &["rev-parse", "--short", "HEAD"]);
                // The results of an earlier run are not a change to what is measured.
                let dirty = !command_output(
                    "git",
                    &[
                        "status",
                        "--porcelain",
                        "--",
                        ":/",
                        ":(top,exclude)bench/results",
                    ],
                )
                .is_empty();
                if dirty {
                    format!("{rev} (with uncommitted changes)")
                } else {
                    rev
                }
            },
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Now as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_snapshots() {
        let first = CpuSnapshot::take(std::process::id()).expect("/proc readable");
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(300) {
            std::hint::black_box(0u64);
        }
        let used = first.until(&CpuSnapshot::take(std::process::id()).expect("again"));
        // This process is both "server" and "generator" here.
        assert!(used.server > 20.0 && used.generator > 20.0, "{used:?}");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }
}
