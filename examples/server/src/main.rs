//! The standalone chat server: the web page at `/` and Socket.IO on the same port.
//!
//! ```text
//! cargo run --release -p palaver-server -- --port 3000
//! ```

mod admin;
mod assets;
mod logging;
mod metrics;
mod secret;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use clap::Parser;
use palaver_core::{Chat, Config, HistoryStorage, IdentityMode};
use tower_http::services::ServeDir;

use status::Status;

/// Palaver chat server: the chat page and Socket.IO on one port.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Interface to listen on (0.0.0.0 for every interface) [default: 127.0.0.1].
    #[arg(long, env = "PALAVER_HOST")]
    host: Option<String>,
    /// Port for the page and Socket.IO; 0 picks a free one [default: 3000].
    #[arg(long, env = "PALAVER_PORT")]
    port: Option<u16>,
    /// File of HS256 secrets, one per line; when given, clients must present a token
    /// signed with one of them (`auth.token`), and new tokens should be signed with the
    /// first. Instead of a file, one secret can be given in the environment variable
    /// PALAVER_TOKEN_SECRET. Never on the command line: every user can read that (ps).
    #[arg(long, env = "PALAVER_TOKEN_SECRET_FILE", value_name = "PATH")]
    token_secret_file: Option<PathBuf>,
    /// Refused with a message pointing to --token-secret-file (see there).
    #[arg(long, hide = true, value_name = "SECRET")]
    token_secret: Option<String>,
    /// SQLite history file [default: palaver-history.db].
    #[arg(long, env = "PALAVER_HISTORY")]
    history: Option<PathBuf>,
    /// Keep history in memory only (lost on restart).
    #[arg(long, env = "PALAVER_MEMORY_HISTORY")]
    memory_history: bool,
    /// Extra allowed browser origin (repeatable, or comma separated), e.g. https://chat.example.com.
    #[arg(
        long = "cors-origin",
        env = "PALAVER_CORS_ORIGINS",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,
    /// Extra host name the chat answers to (repeatable, or comma separated), e.g.
    /// chat.example.com, *.example.com, or * for any; IP addresses and localhost
    /// always work. Other names are refused (DNS rebinding).
    #[arg(
        long = "allowed-host",
        env = "PALAVER_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,
    /// Cluster mode: share rooms, presence and history with other nodes through
    /// this Redis, e.g. redis://127.0.0.1:6379. A URL with a password is refused
    /// here (ps shows it): give it with --redis-file or in PALAVER_REDIS.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Cluster mode: this node's outage journal, an SQLite file no other node may
    /// use [default: palaver-journal.db].
    #[arg(long, env = "PALAVER_JOURNAL")]
    journal: Option<PathBuf>,
    /// File whose first line is the Redis URL (cluster mode), for a URL with a
    /// password; or set the environment variable PALAVER_REDIS.
    #[arg(long, env = "PALAVER_REDIS_FILE", value_name = "PATH")]
    redis_file: Option<PathBuf>,
    /// Admin listener for operators: /stats (the counters as JSON), /metrics
    /// (Prometheus) and /healthz, on PORT (127.0.0.1) or HOST:PORT; off unless given.
    /// An address other than loopback needs an admin token.
    #[arg(long, env = "PALAVER_ADMIN_LISTEN", value_name = "ADDR", value_parser = admin::parse_listen)]
    admin_listen: Option<SocketAddr>,
    /// File whose first line is the admin token: /stats and /metrics then need
    /// `Authorization: Bearer <token>`. Or set the environment variable PALAVER_ADMIN_TOKEN.
    #[arg(long, env = "PALAVER_ADMIN_TOKEN_FILE", value_name = "PATH")]
    admin_token_file: Option<PathBuf>,
    /// Full engine configuration as a JSON file (docs/PROTOCOL.md lists every field);
    /// the flags above override it.
    #[arg(long, env = "PALAVER_CONFIG")]
    config: Option<PathBuf>,
    /// Serve the web page from this directory instead of the copy built into the
    /// binary (for working on the page without rebuilding).
    #[arg(long, env = "PALAVER_STATIC_DIR", value_name = "DIR")]
    static_dir: Option<PathBuf>,
    /// Seconds to wait for clients when stopping [default: the config's
    /// stop_timeout_ms, 5 s].
    #[arg(long)]
    stop_timeout: Option<u64>,
    /// Instead of serving: copy the SQLite history (--history or the config's
    /// history.path) into the Redis of --redis (or --redis-file), room by room,
    /// verify it, print what was copied and exit. The file is left as it is
    /// (docs/CLUSTER.md).
    #[arg(long)]
    migrate_history_to_redis: bool,
}

fn main() -> ExitCode {
    let rust_log = std::env::var("RUST_LOG").ok();
    tracing_subscriber::fmt()
        .with_env_filter(logging::filter(rust_log.as_deref()))
        .init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palaver-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config(args: &Args) -> Result<Config, Box<dyn std::error::Error>> {
    let mut config = match &args.config {
        Some(path) => Config::from_json(&std::fs::read_to_string(path)?)?,
        None => Config::default(),
    };
    if let Some(host) = &args.host {
        config.host = host.clone();
    }
    if let Some(port) = args.port {
        config.port = port;
    }
    let secrets = secret::token_secrets(
        args.token_secret.is_some(),
        args.token_secret_file.as_deref(),
    )?;
    if let Some(mut secrets) = secrets {
        config.identity.mode = IdentityMode::Token;
        config.identity.token_secret = Some(secrets.remove(0));
        config.identity.token_secrets = secrets;
        config.validate()?;
    }
    if let Some(path) = &args.history {
        config.history.storage = HistoryStorage::Sqlite;
        config.history.path = path.clone();
    }
    if args.memory_history {
        config.history.storage = HistoryStorage::Memory;
    }
    if let Some(url) = secret::redis_url(args.redis.as_deref(), args.redis_file.as_deref())? {
        config.cluster.redis_url = Some(url);
    }
    if let Some(path) = &args.journal {
        config.cluster.journal_path = path.clone();
    }
    config
        .cors_origins
        .extend(args.cors_origins.iter().filter(|o| !o.is_empty()).cloned());
    config
        .allowed_hosts
        .extend(args.allowed_hosts.iter().filter(|h| !h.is_empty()).cloned());
    Ok(config)
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = config(&args)?;
    if args.migrate_history_to_redis {
        return migrate(&config);
    }
    if let Some(seconds) = args.stop_timeout {
        config.stop_timeout_ms = seconds * 1000;
    }
    let stop_timeout = Duration::from_millis(config.stop_timeout_ms);
    let page = match &args.static_dir {
        Some(dir) if !dir.join("index.html").is_file() => {
            return Err(format!("no index.html in {}", dir.display()).into());
        }
        Some(dir) => Router::new().fallback_service(ServeDir::new(dir)),
        None => Router::new().fallback(assets::serve),
    };
    // The routes exist before the engine does; they read its handle once started.
    let status = Arc::new(Status::default());
    let admin = match args.admin_listen {
        Some(addr) => {
            let token = secret::admin_token(args.admin_token_file.as_deref())?;
            Some(admin::start(addr, token, status.clone())?)
        }
        None => None,
    };
    let health = status.clone();
    let routes = Router::new()
        .route(
            "/healthz",
            get(move || {
                let answer = health.health();
                async move { answer }
            }),
        )
        .merge(page);
    let engine = Chat::builder(config).routes(routes).start()?;
    status.started(engine.handle().clone());
    if let Some(addr) = admin {
        println!("admin (/stats, /metrics) on http://{addr}/");
    }
    if let Some(addr) = engine.local_addr() {
        println!("Palaver chat on http://{addr}/  (Ctrl-C stops it)");
    }

    wait_for_shutdown_signal()?;
    println!("stopping…");
    status.stopping();
    let report = engine.stop(stop_timeout)?;
    println!(
        "stopped in {:.1}s ({})",
        report.elapsed.as_secs_f64(),
        if report.graceful {
            "every client told"
        } else {
            "some connections closed at the deadline"
        }
    );
    Ok(())
}

/// `--migrate-history-to-redis`: copies, verifies, reports.
fn migrate(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(palaver_core::migrate_history_to_redis(config))?;
    println!(
        "copied {} messages of {} rooms from {} to Redis (verified)",
        report.messages_copied,
        report.rooms_copied,
        config.history.path.display()
    );
    if report.messages_over_cap > 0 {
        println!(
            "not copied: {} older messages of rooms above cluster.history_max_per_room ({})",
            report.messages_over_cap, config.cluster.history_max_per_room
        );
    }
    for (room, count) in &report.rooms_skipped {
        println!("not copied: room {room:?} ({count} messages) already has history in Redis");
    }
    println!(
        "{} is left as it was; cluster nodes do not read it",
        config.history.path.display()
    );
    Ok(())
}

/// Blocks until Ctrl-C or SIGTERM.
fn wait_for_shutdown_signal() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                result = tokio::signal::ctrl_c() => result,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await
    })
}
