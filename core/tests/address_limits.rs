//! Per-address limits below Socket.IO on the paths a host uses when it owns the
//! listening socket (the Node addon's `attach`): Engine.IO handshakes forwarded
//! with `serve_request`, and connections handed over with `adopt`. IPv6 clients
//! are counted per network (`limits.ipv6_prefix_len`).

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::test_config;
use palaver_core::{Chat, Config, Engine};

fn engine(limits: serde_json::Value) -> Arc<Engine> {
    let mut json = serde_json::to_value(test_config()).unwrap();
    json["listen"] = false.into();
    json["limits"]
        .as_object_mut()
        .unwrap()
        .extend(limits.as_object().unwrap().clone());
    let config = Config::from_json(&json.to_string()).unwrap();
    Arc::new(Chat::builder(config).start().unwrap())
}

async fn handshake(engine: &Engine, peer: &str) -> (u16, String) {
    let request = http::Request::get("/socket.io/?EIO=4&transport=polling")
        .body(Bytes::new())
        .unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    let response = engine.serve_request(request, Some(peer)).await.unwrap();
    let body = String::from_utf8(response.body().to_vec()).unwrap();
    (response.status().as_u16(), body)
}

async fn stop(engine: Arc<Engine>) {
    tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_sessions_are_counted_per_64() {
    let engine =
        tokio::task::spawn_blocking(|| engine(serde_json::json!({"max_sessions_per_ip": 2})))
            .await
            .unwrap();
    assert_eq!(handshake(&engine, "[2001:db8:1:2::1]:1000").await.0, 200);
    assert_eq!(handshake(&engine, "[2001:db8:1:2::ffff]:1001").await.0, 200);
    let (status, body) = handshake(&engine, "[2001:db8:1:2:abcd::7]:1002").await;
    assert_eq!(status, 429, "{body}");
    let refusal: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["code"], "too_many_connections");
    // Another /64 has its own budget; so has IPv4.
    assert_eq!(handshake(&engine, "[2001:db8:1:3::1]:1003").await.0, 200);
    assert_eq!(handshake(&engine, "10.0.0.1:1004").await.0, 200);
    let stats = engine.handle().stats();
    assert_eq!(stats.sessions, 4);
    assert_eq!(stats.connections_refused, 1);
    stop(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_prefix_len_128_counts_each_address() {
    let engine = tokio::task::spawn_blocking(|| {
        engine(serde_json::json!({"max_sessions_per_ip": 1, "ipv6_prefix_len": 128}))
    })
    .await
    .unwrap();
    assert_eq!(handshake(&engine, "[2001:db8::1]:1000").await.0, 200);
    assert_eq!(handshake(&engine, "[2001:db8::2]:1000").await.0, 200);
    assert_eq!(handshake(&engine, "[2001:db8::2]:1001").await.0, 429);
    stop(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopted_connections_count_against_max_sockets_per_ip() {
    let engine =
        tokio::task::spawn_blocking(|| engine(serde_json::json!({"max_sockets_per_ip": 1})))
            .await
            .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let first = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    for _ in 0..2 {
        let (stream, _) = listener.accept().unwrap();
        engine.adopt(stream, Bytes::new()).unwrap();
    }
    second
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::task::spawn_blocking(move || second.read(&mut byte))
        .await
        .unwrap();
    assert_eq!(read.unwrap(), 0, "the second connection is closed at once");
    let stats = engine.handle().stats();
    assert_eq!(stats.sockets, 1);
    assert_eq!(stats.sockets_refused, 1);
    drop(first);
    stop(engine).await;
}
