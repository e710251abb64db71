//! The standalone chat server: the web page at `/` and Socket.IO on the same port.
//!
//! ```text
//! cargo run --release -p palaver-server -- --port 3000
//! ```

mod logging;
mod secret;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use palaver_core::{Chat, ChatHandle, Config, HistoryStorage, IdentityMode};
use tower_http::services::ServeDir;

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
    /// this Redis, e.g. redis://127.0.0.1:6379.
    #[arg(long, env = "PALAVER_REDIS")]
    redis: Option<String>,
    /// Cluster mode: this node's outage journal, an SQLite file no other node may
    /// use [default: palaver-journal.db].
    #[arg(long, env = "PALAVER_JOURNAL")]
    journal: Option<PathBuf>,
    /// Full engine configuration as a JSON file (docs/PROTOCOL.md lists every field);
    /// the flags above override it.
    #[arg(long, env = "PALAVER_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the web page.
    #[arg(long, env = "PALAVER_STATIC_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/static"))]
    static_dir: PathBuf,
    /// Seconds to wait for clients when stopping [default: the config's
    /// stop_timeout_ms, 5 s].
    #[arg(long)]
    stop_timeout: Option<u64>,
    /// Instead of serving: copy the SQLite history (--history or the config's
    /// history.path) into the Redis of --redis, room by room, verify it, print
    /// what was copied and exit. The file is left as it is (docs/CLUSTER.md).
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
    if let Some(url) = &args.redis {
        config.cluster.redis_url = Some(url.clone());
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
    if !args.static_dir.join("index.html").is_file() {
        return Err(format!("no index.html in {}", args.static_dir.display()).into());
    }
    // The route exists before the engine does; it reads the handle once started.
    let chat: Arc<OnceLock<ChatHandle>> = Arc::default();
    let stats_chat = chat.clone();
    let routes = Router::new()
        .route(
            "/healthz",
            get(move || {
                let stats = stats_chat.get().map(ChatHandle::stats);
                async move { Json(stats) }
            }),
        )
        .fallback_service(ServeDir::new(&args.static_dir));
    let engine = Chat::builder(config).routes(routes).start()?;
    let _ = chat.set(engine.handle().clone());
    if let Some(addr) = engine.local_addr() {
        println!("Palaver chat on http://{addr}/  (Ctrl-C stops it)");
    }

    wait_for_shutdown_signal()?;
    println!("stopping…");
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
