//! A host that owns the listening socket: hands WebSocket connections over with
//! `adopt` and forwards long-polling requests with `serve_request`.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{test_config, Client};
use palaver_core::{Chat, Engine, ErrorCode};
use serde_json::json;

fn engine_without_listener() -> Arc<Engine> {
    let config = palaver_core::Config {
        listen: false,
        ..test_config()
    };
    Arc::new(Chat::builder(config).start().unwrap())
}

/// Accepts one connection, reads its request head like a host's HTTP parser
/// would, and hands the socket and those bytes to the engine.
fn hand_over_one(listener: &TcpListener, engine: &Engine) {
    let (mut stream, _) = listener.accept().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    engine.adopt(stream, Bytes::from(head)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopted_websockets_chat() {
    let engine = engine_without_listener();
    assert_eq!(engine.local_addr(), None);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let host = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            hand_over_one(&listener, &engine);
            hand_over_one(&listener, &engine);
        })
    };
    let mut ada = Client::named(addr, "Ada").await;
    let mut bob = Client::named(addr, "Bob").await;
    host.join().unwrap();
    ada.request("join", json!({"room": "r"})).await;
    bob.request("join", json!({"room": "r"})).await;
    let ack = ada
        .request("message", json!({"room": "r", "text": "via adopt"}))
        .await;
    assert_eq!(ack["ok"], true);
    assert_eq!(bob.event("message").await["text"], "via adopt");
    drop((ada, bob));
    tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn forwarded_polling_requests_are_served() {
    let engine = tokio::task::spawn_blocking(engine_without_listener)
        .await
        .unwrap();
    let peer = Some("127.0.0.1:5555".parse().unwrap());
    let handshake = http::Request::get("/socket.io/?EIO=4&transport=polling")
        .body(Bytes::new())
        .unwrap();
    let response = engine.serve_request(handshake, peer).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = String::from_utf8(response.body().to_vec()).unwrap();
    let open: serde_json::Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    let sid = open["sid"].as_str().unwrap().to_string();

    // Namespace connect with a name, then read the connect answer and the session push.
    let post = http::Request::post(format!("/socket.io/?EIO=4&transport=polling&sid={sid}"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Bytes::from(r#"40{"name":"Ada"}"#))
        .unwrap();
    let response = engine.serve_request(post, peer).await.unwrap();
    assert_eq!(response.body().as_ref(), b"ok");
    // The connect answer comes first; the session push may take one more poll.
    let mut packets: Vec<String> = Vec::new();
    for _ in 0..3 {
        let poll = http::Request::get(format!("/socket.io/?EIO=4&transport=polling&sid={sid}"))
            .body(Bytes::new())
            .unwrap();
        let response = engine.serve_request(poll, peer).await.unwrap();
        let body = String::from_utf8(response.body().to_vec()).unwrap();
        // Engine.IO joins the packets of one poll with the record separator.
        packets.extend(body.split('\u{1e}').map(str::to_string));
        if packets.iter().any(|p| p.starts_with("42[\"session\"")) {
            break;
        }
    }
    assert!(packets.iter().any(|p| p.starts_with("40{")), "{packets:?}");
    assert!(
        packets
            .iter()
            .any(|p| p.starts_with(r#"42["session",{"user":{"id":"Ada","name":"Ada"}"#)),
        "{packets:?}"
    );

    let stopper = engine.clone();
    tokio::task::spawn_blocking(move || stopper.stop(Duration::from_secs(2)))
        .await
        .unwrap()
        .unwrap();
    let late = http::Request::get("/socket.io/?EIO=4&transport=polling")
        .body(Bytes::new())
        .unwrap();
    let error = engine.serve_request(late, peer).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::ShuttingDown);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    assert!(matches!(
        engine.adopt(stream, Bytes::new()),
        Err(palaver_core::AdoptError::NotRunning)
    ));
}
