//! Start and stop: errors at start, graceful stop, no leaks over many cycles.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{test_config, Client};
use palaver_core::{BuildError, Chat, ConfigError, Engine, HistoryStorage, StartError, StopError};
use serde_json::json;

async fn start(config: palaver_core::Config) -> Arc<Engine> {
    Arc::new(
        tokio::task::spawn_blocking(move || Chat::builder(config).start())
            .await
            .unwrap()
            .expect("engine starts"),
    )
}

async fn stop(engine: &Arc<Engine>) -> Result<palaver_core::StopReport, StopError> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
        .await
        .unwrap()
}

#[tokio::test]
async fn busy_port_is_a_bind_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let config = palaver_core::Config {
        port,
        ..test_config()
    };
    let err = tokio::task::spawn_blocking(move || Chat::builder(config).start())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, StartError::Bind { address, .. } if address == &format!("127.0.0.1:{port}")),
        "{err:?}"
    );
    assert!(err.to_string().contains(&port.to_string()));
}

#[test]
fn bad_config_is_a_build_error() {
    let mut config = test_config();
    config.limits.max_text_chars = 0;
    let err = Chat::builder(config).start().unwrap_err();
    assert!(
        matches!(
            err,
            StartError::Build(BuildError::Config(ConfigError::Zero(
                "limits.max_text_chars"
            )))
        ),
        "{err:?}"
    );

    let mut config = test_config();
    config.history.storage = HistoryStorage::Sqlite;
    config.history.path = "/nonexistent/dir/history.db".into();
    let err = Chat::builder(config).start().unwrap_err();
    assert!(
        matches!(err, StartError::Build(BuildError::History(_))),
        "{err:?}"
    );

    let mut config = test_config();
    config.host = "localhost".into();
    assert!(matches!(
        Chat::builder(config).start().unwrap_err(),
        StartError::Build(BuildError::Config(ConfigError::BadHost(_)))
    ));
}

#[tokio::test]
async fn stop_tells_clients_and_is_idempotent() {
    let engine = start(test_config()).await;
    let addr = engine.local_addr().unwrap();
    let mut ada = Client::named(addr, "ada").await;
    ada.request("join", json!({"room": "r"})).await;

    let report = stop(&engine).await.unwrap();
    assert!(report.graceful, "{report:?}");
    assert_eq!(
        ada.event("shutdown").await,
        json!({"reason": "server_stopping"})
    );
    assert_eq!(ada.event("disconnect").await, json!("io server disconnect"));
    assert_eq!(stop(&engine).await, Err(StopError::AlreadyStopped));
    assert!(!engine.is_running());
    // The port is free again.
    std::net::TcpListener::bind(addr).expect("port released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_works_from_a_runtime_thread() {
    let engine = start(test_config()).await;
    // Blocking here is the caller's choice; it must not panic.
    let report = engine.stop(Duration::from_secs(2)).unwrap();
    assert!(report.elapsed < Duration::from_secs(3));
    assert!(!engine.is_running());
}

#[test]
fn drop_stops_the_engine() {
    let engine = Chat::builder(test_config()).start().unwrap();
    let addr = engine.local_addr().unwrap();
    drop(engine);
    std::net::TcpListener::bind(addr).expect("port released by drop");
}

/// Two stops at once: one stops, the other waits for it and reports that the
/// engine was stopped; neither returns while the event callback still runs.
#[test]
fn concurrent_stops_wait_for_each_other() {
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let in_callback = running.clone();
    let engine = Arc::new(
        Chat::builder(test_config())
            .on_event(move |_| {
                in_callback.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(150));
                in_callback.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            })
            .start()
            .unwrap(),
    );
    let addr = engine.local_addr().unwrap();
    // A connect and a disconnect: slow callbacks queued while stop begins.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ada = Client::named(addr, "ada").await;
        ada.close();
    });
    let stoppers: Vec<_> = (0..2)
        .map(|_| {
            let engine = engine.clone();
            let running = running.clone();
            std::thread::spawn(move || {
                let result = engine.stop(Duration::from_secs(5));
                (result, running.load(std::sync::atomic::Ordering::SeqCst))
            })
        })
        .collect();
    let results: Vec<_> = stoppers.into_iter().map(|s| s.join().unwrap()).collect();
    let stopped = results.iter().filter(|(r, _)| r.is_ok()).count();
    let waited = results
        .iter()
        .filter(|(r, _)| *r == Err(StopError::AlreadyStopped))
        .count();
    assert_eq!((stopped, waited), (1, 1), "{results:?}");
    for (result, callbacks_running) in &results {
        assert_eq!(
            *callbacks_running, 0,
            "{result:?} returned while the callback still ran"
        );
    }
    let report = results.iter().find_map(|(r, _)| r.clone().ok());
    assert_eq!(engine.stop_report(), report);
}
