//! Start/stop cycles leave no thread, socket or descriptor behind. One test in its
//! own binary: it counts the whole process's threads and descriptors, which other
//! tests running in parallel would disturb.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{fd_count, test_config, thread_count, Client};
use futures::{SinkExt, StreamExt};
use palaver_core::{Chat, Engine};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Engines start and stop on the test's main thread; the clients run on one
/// runtime made once, so the only threads that come and go are the engines'.
#[test]
fn start_stop_cycles_leak_nothing() {
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    clients.block_on(cycles());
}

fn start(config: palaver_core::Config) -> Arc<Engine> {
    Arc::new(Chat::builder(config).start().expect("engine starts"))
}

/// Stops from a plain thread, as a host without async code would.
async fn stop(engine: &Arc<Engine>, timeout: Duration) -> palaver_core::StopReport {
    let engine = engine.clone();
    let (done, report) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = done.send(engine.stop(timeout).unwrap());
    });
    report.await.unwrap()
}

async fn cycles() {
    // One warm-up cycle so lazily created process-wide resources are counted.
    let engine = start(test_config());
    stop(&engine, Duration::from_secs(5)).await;
    drop(engine);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (threads, fds) = (thread_count(), fd_count());

    // Clients that chat and close properly.
    for cycle in 0..15 {
        let engine = start(test_config());
        let addr = engine.local_addr().unwrap();
        let mut a = Client::named(addr, "a").await;
        let mut b = Client::named(addr, "b").await;
        a.request("join", json!({"room": "r"})).await;
        b.request("join", json!({"room": "r"})).await;
        let ack = a
            .request(
                "message",
                json!({"room": "r", "text": format!("cycle {cycle}")}),
            )
            .await;
        assert_eq!(ack["ok"], true);
        b.event("message").await;
        let report = stop(&engine, Duration::from_secs(5)).await;
        assert!(report.graceful, "cycle {cycle}: {report:?}");
        drop((a, b, engine));
    }

    // Clients that never close their side: a WebSocket client that ignores the
    // goodbye, and a long-polling client that stops polling. Stop must still end
    // their sessions, or the engine's state would outlive it.
    for _ in 0..3 {
        let engine = start(test_config());
        let addr = engine.local_addr().unwrap();
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (mut deaf, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        deaf.next().await.unwrap().unwrap();
        deaf.send(Message::text(r#"40{"name":"deaf"}"#))
            .await
            .unwrap();

        let mut http = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        http.write_all(request.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = http.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).to_string();
        let sid = answer
            .split("\"sid\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let body = r#"40{"name":"gone"}"#;
        let post = format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        http.write_all(post.as_bytes()).await.unwrap();
        let mut rest = Vec::new();
        http.read_to_end(&mut rest).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;

        let report = stop(&engine, Duration::from_millis(1500)).await;
        assert!(!report.graceful, "the deaf client never closed: {report:?}");
        drop((deaf, http, engine));
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        thread_count() <= threads,
        "threads: {threads} before, {} after",
        thread_count()
    );
    assert!(
        fd_count() <= fds + 2,
        "file descriptors: {fds} before, {} after",
        fd_count()
    );
}
