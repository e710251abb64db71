//! The Socket.IO engine face: host namespaces driven through `ChatHandle`'s
//! commands, with raw Socket.IO packets over a real WebSocket.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use palaver_core::{CommandError, Event, GateDecision, OutArgs, SocketCommand, Target};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::{test_config, Host, WAIT};

async fn start(configure: impl FnOnce(&mut palaver_core::Config)) -> Host {
    let mut config = test_config();
    config.builtin_chat = false;
    configure(&mut config);
    Host::start(config, axum::Router::new()).await
}

/// Commands in their JSON form, which must be taken.
fn run(host: &Host, commands: &str) {
    host.engine.handle().run_json(commands, Vec::new()).unwrap();
}

/// A raw Engine.IO/Socket.IO client that answers pings.
struct Raw {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Raw {
    async fn open(addr: SocketAddr, query: &str) -> Raw {
        Self::open_with_session(addr, query).await.0
    }

    /// Opens a connection; also returns the Engine.IO session id.
    async fn open_with_session(addr: SocketAddr, query: &str) -> (Raw, String) {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket{query}");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut raw = Raw { ws };
        let open = raw.recv().await;
        assert!(open.starts_with('0'), "{open}");
        let session = serde_json::from_str::<Value>(&open[1..]).unwrap()["sid"]
            .as_str()
            .unwrap()
            .to_string();
        (raw, session)
    }

    async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws.send(Message::binary(bytes.to_vec())).await.unwrap();
    }

    /// The next text packet that is not a ping (pings are answered).
    async fn recv(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no packet")
                .expect("connection closed")
                .expect("websocket error");
            match message {
                Message::Text(text) if text.as_str() == "2" => self.send("3").await,
                Message::Text(text) => return text.as_str().to_string(),
                _ => {}
            }
        }
    }

    async fn recv_binary(&mut self) -> Vec<u8> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no packet")
                .expect("connection closed")
                .expect("websocket error");
            if let Message::Binary(bytes) = message {
                return bytes.to_vec();
            }
        }
    }

    /// Connects to `ns` (`""` for `/`) and returns the connection id.
    async fn connect(&mut self, ns: &str, auth: &str) -> String {
        let prefix = if ns.is_empty() {
            String::new()
        } else {
            format!("{ns},")
        };
        self.send(&format!("40{prefix}{auth}")).await;
        let answer = self.recv().await;
        let body = answer
            .strip_prefix(&format!("40{prefix}"))
            .unwrap_or_else(|| panic!("not connected: {answer}"));
        serde_json::from_str::<Value>(body).unwrap()["sid"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Whether the server closes the connection within `WAIT`.
    async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

fn sid_of(event: &Event) -> &str {
    match event {
        Event::SocketConnect { sid, .. }
        | Event::SocketEvent { sid, .. }
        | Event::SocketDisconnect { sid, .. }
        | Event::SocketGate { sid, .. } => sid,
        other => panic!("not a socket event: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_host_with_all_arguments_and_numeric_names() {
    let mut host = start(|_| {}).await;
    let mut client = Raw::open(host.addr(), "&token=abc").await;
    let sid = client.connect("", r#"{"user":"ann"}"#).await;
    match host.next_of("socket_connect").await {
        Event::SocketConnect {
            ns,
            sid: connected,
            handshake,
            ..
        } => {
            assert_eq!(ns, "/");
            assert_eq!(connected, sid);
            assert_eq!(handshake.auth, json!({"user": "ann"}));
            assert_eq!(
                handshake.query.get("token").map(String::as_str),
                Some("abc")
            );
            assert_eq!(handshake.transport, "websocket");
            assert!(handshake.address.is_some());
        }
        other => panic!("{other:?}"),
    }
    client.send(r#"42["chat message","hi",{"a":[1]},3]"#).await;
    client.send(r#"42[2,{"data":"hello"}]"#).await;
    match host.next_of("socket_event").await {
        Event::SocketEvent {
            event, args, ack, ..
        } => {
            assert_eq!(event, "chat message");
            assert_eq!(
                args.values(),
                vec![json!("hi"), json!({"a": [1]}), json!(3)]
            );
            assert_eq!(ack, None);
        }
        other => panic!("{other:?}"),
    }
    match host.next_of("socket_event").await {
        Event::SocketEvent { event, args, .. } => {
            assert_eq!(
                event, "2",
                "a numeric name is handed over as its decimal text"
            );
            assert_eq!(args.values(), vec![json!({"data": "hello"})]);
        }
        other => panic!("{other:?}"),
    }
    // The connection is still open: it answers an emit.
    run(
        &host,
        &format!(
            r#"[{{"emit_to":{{"sid":"{sid}","event":"2","args":[{{"user":null,"data":"welcome"}}]}}}}]"#
        ),
    );
    assert_eq!(
        client.recv().await,
        r#"42["2",{"user":null,"data":"welcome"}]"#
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_carry_every_argument_and_binary() {
    let mut host = start(|_| {}).await;
    let mut client = Raw::open(host.addr(), "").await;
    client.connect("", "").await;
    host.next_of("socket_connect").await;

    client
        .send(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#)
        .await;
    let ack = match host.next_of("socket_event").await {
        Event::SocketEvent { args, ack, .. } => {
            assert_eq!(args.as_str(), r#"[1,"2",{"3":[false]}]"#);
            ack.expect("an ack was asked for")
        }
        other => panic!("{other:?}"),
    };
    host.engine
        .handle()
        .ack_args(
            ack,
            OutArgs::from_json(r#"[1,"2",{"3":[false]}]"#, vec![]).unwrap(),
        )
        .unwrap();
    assert_eq!(client.recv().await, r#"43456[1,"2",{"3":[false]}]"#);

    client
        .send(r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    client.send_binary(&[1, 2, 3]).await;
    client.send_binary(&[4, 5, 6]).await;
    let (args, attachments, ack) = match host.next_of("socket_event").await {
        Event::SocketEvent {
            args,
            attachments,
            ack,
            ..
        } => (args, attachments, ack.unwrap()),
        other => panic!("{other:?}"),
    };
    assert_eq!(attachments.len(), 2);
    host.engine
        .handle()
        .ack_args(ack, OutArgs::from_json(args.as_str(), attachments).unwrap())
        .unwrap();
    assert_eq!(
        client.recv().await,
        r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(client.recv_binary().await, vec![1, 2, 3]);
    assert_eq!(client.recv_binary().await, vec![4, 5, 6]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_except_and_order() {
    let mut host = start(|_| {}).await;
    let mut a = Raw::open(host.addr(), "").await;
    let mut b = Raw::open(host.addr(), "").await;
    let mut c = Raw::open(host.addr(), "").await;
    let sa = a.connect("", "").await;
    let sb = b.connect("", "").await;
    let sc = c.connect("", "").await;
    for _ in 0..3 {
        host.next_of("socket_connect").await;
    }
    // join then emit in one batch: the new members get it (order is kept).
    run(
        &host,
        &format!(
            r#"[{{"join":{{"sid":"{sa}","rooms":["r"]}}}},{{"join":{{"sid":"{sb}","rooms":["r"]}}}},
            {{"emit":{{"to":{{"rooms":["r"],"except":["{sa}"]}},"event":"m","args":["to r but a"]}}}},
            {{"emit":{{"to":{{"except":["r"]}},"event":"m","args":["not r"]}}}},
            {{"emit":{{"to":{{"rooms":["{sc}"]}},"event":"m","args":["own room"]}}}}]"#
        ),
    );
    assert_eq!(b.recv().await, r#"42["m","to r but a"]"#);
    assert_eq!(c.recv().await, r#"42["m","not r"]"#);
    assert_eq!(c.recv().await, r#"42["m","own room"]"#);
    // a got nothing of those: the next thing it gets is this.
    run(&host, r#"[{"emit":{"event":"all","args":[]}}]"#);
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(client.recv().await, r#"42["all"]"#);
    }

    let sockets = host
        .engine
        .handle()
        .fetch_sockets(Target::namespace("/").to(["r"]))
        .await
        .unwrap();
    let mut ids: Vec<_> = sockets.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    let mut expected = vec![sa.clone(), sb.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(sockets
        .iter()
        .all(|s| s.local && s.rooms.contains(&"r".to_string())));

    run(&host, &format!(r#"[{{"disconnect":{{"sid":"{sb}"}}}}]"#));
    assert_eq!(b.recv().await, "41");
    match host.next_of("socket_disconnect").await {
        Event::SocketDisconnect { sid, reason, .. } => {
            assert_eq!(sid, sb);
            assert_eq!(reason, "server_disconnect");
        }
        other => panic!("{other:?}"),
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listened_events_reach_the_host_once_it_is_set_up() {
    let mut host = start(|_| {}).await;
    let mut client = Raw::open(host.addr(), "").await;
    let sid = client.connect("", "").await;
    host.next_of("socket_connect").await;
    run(
        &host,
        &format!(
            r#"[{{"listen":{{"sid":"{sid}","events":["wanted"]}}}},
            {{"emit_to":{{"sid":"{sid}","event":"ready"}}}}]"#
        ),
    );
    assert_eq!(client.recv().await, r#"42["ready"]"#);
    client.send(r#"42["unwanted",1]"#).await;
    client.send(r#"42["wanted",2]"#).await;
    match host.next_of("socket_event").await {
        Event::SocketEvent { event, .. } => assert_eq!(event, "wanted"),
        other => panic!("{other:?}"),
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_connect_gates() {
    let mut host = start(|config| config.host_ack_timeout_ms = 300).await;
    let mut client = Raw::open(host.addr(), "").await;
    // Unknown namespace, as socket.io answers it.
    client.send("40/admin,").await;
    assert_eq!(
        client.recv().await,
        r#"44/admin,{"message":"Invalid namespace"}"#
    );
    run(&host, r#"[{"namespace":{"ns":"/admin","gated":true}}]"#);
    // The command is applied in order; a query after it sees it.
    host.engine
        .handle()
        .fetch_sockets(Target::namespace("/admin"))
        .await
        .unwrap();

    client.send(r#"40/admin,{"token":"bad"}"#).await;
    let gate = match host.next_of("socket_gate").await {
        Event::SocketGate {
            ns,
            handshake,
            gate,
            ..
        } => {
            assert_eq!(ns, "/admin");
            assert_eq!(handshake.auth, json!({"token": "bad"}));
            gate
        }
        other => panic!("{other:?}"),
    };
    host.engine
        .handle()
        .admit(
            gate,
            GateDecision::Refuse {
                message: "not authorized".into(),
            },
        )
        .unwrap();
    assert_eq!(
        client.recv().await,
        r#"44/admin,{"message":"not authorized"}"#
    );

    client.send(r#"40/admin,{"token":"good"}"#).await;
    let event = host.next_of("socket_gate").await;
    let gate = match &event {
        Event::SocketGate { gate, .. } => *gate,
        _ => unreachable!(),
    };
    host.engine
        .handle()
        .admit(gate, GateDecision::Accept)
        .unwrap();
    let answer = client.recv().await;
    assert!(answer.starts_with("40/admin,"), "{answer}");
    let connected = host.next_of("socket_connect").await;
    assert_eq!(sid_of(&connected), sid_of(&event));

    // Nobody decides: the deadline refuses.
    let mut late = Raw::open(host.addr(), "").await;
    late.send("40/admin,").await;
    host.next_of("socket_gate").await;
    assert_eq!(late.recv().await, r#"44/admin,{"message":"host_timeout"}"#);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_with_ack_collects_answers() {
    let mut host = start(|_| {}).await;
    let mut client = Raw::open(host.addr(), "").await;
    let sid = client.connect("", "").await;
    host.next_of("socket_connect").await;
    let handle = host.engine.handle().clone();
    let asking = tokio::spawn({
        let sid = sid.clone();
        async move {
            handle
                .emit_with_ack(
                    Target::namespace("/").to([sid]),
                    "question",
                    OutArgs::from_values(&[json!(1)]),
                    Duration::from_secs(2),
                )
                .await
        }
    });
    let packet = client.recv().await;
    let rest = packet.strip_prefix("42").unwrap();
    let split = rest.find('[').unwrap();
    let id = &rest[..split];
    assert_eq!(&rest[split..], r#"["question",1]"#);
    client.send(&format!(r#"43{id}["yes",2]"#)).await;
    let replies = asking.await.unwrap().unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].id, sid);
    assert_eq!(replies[0].args.as_ref().unwrap().as_str(), r#"["yes",2]"#);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_are_refused_and_floods_are_limited() {
    let mut host = start(|config| {
        config.limits.requests_per_second = 1;
        config.limits.request_burst = 2;
    })
    .await;
    let handle = host.engine.handle().clone();
    assert!(matches!(
        handle.run_json(r#"[{"emit":{"event":"disconnect"}}]"#, Vec::new()),
        Err(CommandError::Invalid(_))
    ));
    assert!(matches!(
        handle.run(vec![SocketCommand::Namespace {
            ns: "no-slash".into(),
            gated: false
        }]),
        Err(CommandError::Invalid(_))
    ));
    let mut client = Raw::open(host.addr(), "").await;
    client.connect("", "").await;
    host.next_of("socket_connect").await;
    for i in 0..3 {
        client.send(&format!(r#"42["flood",{i}]"#)).await;
    }
    let refusal = client.recv().await;
    assert!(
        refusal.starts_with(r#"42["error",{"ok":false,"code":"rate_limited""#),
        "{refusal}"
    );
    assert!(refusal.contains(r#""event":"flood""#), "{refusal}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_packets_close_only_their_connection() {
    let mut host = start(|_| {}).await;
    let mut good = Raw::open(host.addr(), "").await;
    let sid = good.connect("", "").await;
    host.next_of("socket_connect").await;
    for bad in ["4abc", "42{}", r#"42abc["x",1]"#] {
        let mut client = Raw::open(host.addr(), "").await;
        client.connect("", "").await;
        client.send(bad).await;
        assert!(client.closed().await, "{bad} did not close its connection");
    }
    run(
        &host,
        &format!(r#"[{{"emit_to":{{"sid":"{sid}","event":"still"}}}}]"#),
    );
    assert_eq!(good.recv().await, r#"42["still"]"#);
    host.stop().await;
}

/// The status line of a plain HTTP GET.
async fn http_status(addr: SocketAddr, path: &str) -> String {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.lines().next().unwrap_or_default().to_string()
    })
    .await
    .unwrap()
}

/// A socket id is shared with other clients (`io.to(id)`, user lists); the
/// Engine.IO session id authenticates the client's long-polling requests. They
/// must differ, or anyone who learnt an id could read another client's packets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_ids_are_not_session_ids() {
    let mut host = start(|_| {}).await;
    let (mut client, session) = Raw::open_with_session(host.addr(), "").await;
    let sid = client.connect("", "").await;
    run(&host, r#"[{"namespace":{"ns":"/admin"}}]"#);
    // Commands are applied in order: a query after this one sees the namespace.
    host.engine
        .handle()
        .fetch_sockets(Target::namespace("/admin"))
        .await
        .unwrap();
    let admin_sid = client.connect("/admin", "").await;
    assert_ne!(sid, session);
    assert_ne!(admin_sid, session);
    assert_ne!(admin_sid, sid, "each namespace socket has an id of its own");
    // Polling with the socket id as session id finds no session.
    let status = http_status(
        host.addr(),
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
    )
    .await;
    assert!(status.contains(" 400 "), "{status}");
    // The socket still works under its own id.
    host.next_of("socket_connect").await;
    run(
        &host,
        &format!(r#"[{{"emit_to":{{"sid":"{sid}","event":"mine"}}}}]"#),
    );
    assert_eq!(client.recv().await, r#"42["mine"]"#);
    host.stop().await;
}
