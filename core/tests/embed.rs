//! The chat inside a host's own axum app, as a layer next to the host's routes.

mod common;

use std::net::SocketAddr;

use axum::routing::get;
use common::{test_config, Client};
use palaver_core::{BuildError, Chat};
use serde_json::json;

#[tokio::test]
async fn layer_serves_chat_beside_the_app_routes() {
    let (layer, chat) = Chat::builder(test_config()).into_layer().await.unwrap();
    let app = axum::Router::new()
        .route("/hello", get(|| async { "hello from the app" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let body = http_get(addr, "/hello").await;
    assert!(body.ends_with("hello from the app"), "{body}");
    let script = http_get(addr, "/socket.io/socket.io.js").await;
    assert!(script.contains("Socket.IO v4.8.4"));
    let missing = http_get(addr, "/nope").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    let mut ada = Client::named(addr, "Ada").await;
    let mut bob = Client::named(addr, "Bob").await;
    ada.request("join", json!({"room": "r"})).await;
    bob.request("join", json!({"room": "r"})).await;
    ada.request("message", json!({"room": "r", "text": "embedded"}))
        .await;
    assert_eq!(bob.event("message").await["text"], "embedded");
    chat.emit_to_room("r", "note", json!(1)).await.unwrap();
    assert_eq!(ada.event("note").await, json!(1));
    assert_eq!(chat.stats().connections, 2);
}

#[tokio::test]
async fn into_layer_reports_bad_config() {
    let mut config = test_config();
    config.limits.max_rooms_per_connection = 0;
    assert!(matches!(
        Chat::builder(config).into_layer().await,
        Err(BuildError::Config(_))
    ));
}

/// A minimal HTTP/1.1 GET, returning the raw response.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}
