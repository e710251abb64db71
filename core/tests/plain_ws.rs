//! Plain WebSocket connections beside the page: events out, commands in, limits.

mod common;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use palaver_core::{Event, PlainMessage, SocketCommand};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use common::{test_config, Host, WAIT};

async fn start(configure: impl FnOnce(&mut palaver_core::Config)) -> Host {
    let mut config = test_config();
    config.plain_websocket.path = Some("/".into());
    configure(&mut config);
    let routes = axum::Router::new().route("/", axum::routing::get(|| async { "the page" }));
    Host::start(config, routes).await
}

fn url(host: &Host) -> String {
    format!("ws://{}/", host.addr())
}

async fn close_code<S>(stream: &mut S) -> Option<u16>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(WAIT, stream.next()).await.ok()? {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_beside_the_page_and_goodbye_at_stop() {
    let mut host = start(|_| {}).await;
    let addr = host.engine.local_addr().unwrap();
    // The page is still served at the same path.
    let page = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.ends_with("the page"), "{page}");

    let (mut ws, _) = tokio_tungstenite::connect_async(url(&host)).await.unwrap();
    let id = match host.next_of("ws_open").await {
        Event::WsOpen { id, handshake } => {
            assert_eq!(handshake.url, "/");
            assert!(handshake.address.is_some());
            id
        }
        other => panic!("{other:?}"),
    };
    ws.send(Message::text("床前明月光;")).await.unwrap();
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    match host.next_of("ws_message").await {
        Event::WsMessage { message, .. } => {
            assert_eq!(message, PlainMessage::Text("床前明月光;".into()))
        }
        other => panic!("{other:?}"),
    }
    let binary = host.next_of("ws_message").await;
    assert_eq!(binary.attachments().len(), 1);
    assert!(binary.to_json().contains(r#""binary":true"#));
    host.engine
        .handle()
        .run(vec![
            SocketCommand::WsSend {
                id,
                message: PlainMessage::Text("床前明月光;举头望明月，低头思故乡,".into()),
            },
            SocketCommand::WsBroadcast {
                message: PlainMessage::Binary(bytes::Bytes::from_static(b"\x09")),
                except: vec![],
            },
        ])
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("床前明月光;举头望明月，低头思故乡,")
    );
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![9u8])
    );

    let engine = host.engine.clone();
    let stopping =
        tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)).unwrap());
    assert_eq!(close_code(&mut ws).await, Some(1001));
    drop(ws);
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_close_with_their_codes() {
    let mut host = start(|config| {
        config.limits.max_payload_bytes = 1024;
        config.limits.requests_per_second = 1;
        config.limits.request_burst = 2;
    })
    .await;
    let (mut big, _) = tokio_tungstenite::connect_async(url(&host)).await.unwrap();
    host.next_of("ws_open").await;
    big.send(Message::text("x".repeat(4096))).await.unwrap();
    assert_eq!(close_code(&mut big).await, Some(1009));
    match host.next_of("ws_close").await {
        Event::WsClose { code, .. } => assert_eq!(code, 1009),
        other => panic!("{other:?}"),
    }

    let (mut flood, _) = tokio_tungstenite::connect_async(url(&host)).await.unwrap();
    host.next_of("ws_open").await;
    for _ in 0..5 {
        let _ = flood.send(Message::text("hi")).await;
    }
    assert_eq!(close_code(&mut flood).await, Some(1008));

    let (mut client, _) = tokio_tungstenite::connect_async(url(&host)).await.unwrap();
    let id = match host.next_of("ws_open").await {
        Event::WsOpen { id, .. } => id,
        other => panic!("{other:?}"),
    };
    host.engine
        .handle()
        .run_json(
            &format!(r#"[{{"ws_close":{{"id":{id},"code":4000,"reason":"bye"}}}}]"#),
            Vec::new(),
        )
        .unwrap();
    match client.next().await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::from(4000));
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("{other:?}"),
    }
    assert!(host
        .engine
        .handle()
        .run_json(r#"[{"ws_close":{"id":1,"code":1006}}]"#, Vec::new())
        .is_err());
    let engine = host.engine.clone();
    tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
}
