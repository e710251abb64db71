//! The host's side: events out, commands in.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{test_config, Client, Host};
use palaver_core::{
    AckError, AckId, Chat, DisconnectError, EmitError, Engine, Event, EventKind, EventKinds,
    StopError,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

async fn start_with_events(config: palaver_core::Config) -> Host {
    Host::start(config, axum::Router::new()).await
}

#[tokio::test]
async fn events_have_the_right_fields() {
    let mut host = start_with_events(test_config()).await;
    let addr = host.engine.local_addr().unwrap();
    let mut ada = Client::named(addr, "Ada").await;

    let Event::Connected {
        sid,
        user,
        address,
        transport,
        ..
    } = host.next_of("connected").await
    else {
        unreachable!()
    };
    assert_eq!(sid, ada.sid);
    assert_eq!(user.unwrap().name.as_ref(), "Ada");
    assert_eq!(address, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(transport, "websocket");

    ada.request("join", json!({"room": "lobby"})).await;
    let Event::Joined { room, user, .. } = host.next_of("joined").await else {
        unreachable!()
    };
    assert_eq!((room.as_str(), user.id.as_ref()), ("lobby", "Ada"));

    let mut bob = Client::named(addr, "Bob").await;
    bob.request("join", json!({"room": "lobby"})).await;
    ada.request(
        "message",
        json!({"room": "lobby", "text": "hi", "user": "Bob"}),
    )
    .await;
    let Event::Message { sid, message, .. } = host.next_of("message").await else {
        unreachable!()
    };
    assert_eq!(sid, ada.sid);
    assert_eq!(
        message.user.as_ref(),
        "Ada",
        "the client's user field is ignored"
    );
    assert_eq!(message.text, "hi");
    assert!(message.id.is_some());

    bob.request("private", json!({"to": "Ada", "text": "psst"}))
        .await;
    let Event::Private { message, .. } = host.next_of("private").await else {
        unreachable!()
    };
    assert_eq!(
        (message.from.id.as_ref(), message.to.id.as_ref()),
        ("Bob", "Ada")
    );

    bob.request("leave", json!({"room": "lobby"})).await;
    let Event::Left { room, user, .. } = host.next_of("left").await else {
        unreachable!()
    };
    assert_eq!((room.as_str(), user.id.as_ref()), ("lobby", "Bob"));

    let bob_sid = bob.sid.clone();
    bob.close();
    let Event::Disconnected {
        sid, user, reason, ..
    } = host.next_of("disconnected").await
    else {
        unreachable!()
    };
    assert_eq!(sid, bob_sid);
    assert_eq!(user.unwrap().id.as_ref(), "Bob");
    assert!(!reason.is_empty());

    // Events serialize to JSON with a type tag, as the bindings hand them over.
    let json = serde_json::to_value(Event::Left {
        sid: "s".into(),
        room: "r".into(),
        user: palaver_core::User {
            id: "i".into(),
            name: "n".into(),
        },
    })
    .unwrap();
    assert_eq!(
        json,
        json!({"type": "left", "sid": "s", "room": "r", "user": {"id": "i", "name": "n"}})
    );
    host.stop().await;
}

#[tokio::test]
async fn custom_events_are_answered_by_the_host() {
    let mut config = test_config();
    config.host_ack_timeout_ms = 300;
    let mut host = start_with_events(config).await;
    let addr = host.engine.local_addr().unwrap();
    let chat = host.engine.handle().clone();
    let mut ada = Client::named(addr, "Ada").await;

    // Answered.
    let pending = tokio::spawn({
        let mut ada = Client::named(addr, "Ada2").await;
        async move { ada.request("dice", json!({"sides": 6})).await }
    });
    let Event::Custom {
        event,
        data,
        ack,
        user,
        ..
    } = host.next_of("custom").await
    else {
        unreachable!()
    };
    assert_eq!((event.as_str(), &data), ("dice", &json!({"sides": 6})));
    assert_eq!(user.unwrap().name.as_ref(), "Ada2");
    let ack = ack.expect("the client asked for an ack");
    chat.ack(ack, json!({"rolled": 4})).unwrap();
    assert_eq!(pending.await.unwrap(), json!({"rolled": 4}));
    assert_eq!(chat.ack(ack, json!(1)), Err(AckError::Unknown(ack.0)));
    assert_eq!(
        chat.ack(AckId(999_999), json!(1)),
        Err(AckError::Unknown(999_999))
    );

    // Refused by the host.
    let pending = tokio::spawn({
        let mut c = Client::named(addr, "Ada3").await;
        async move { c.request("buy", json!({})).await }
    });
    let Event::Custom { ack, .. } = host.next_of("custom").await else {
        unreachable!()
    };
    chat.ack_error(ack.unwrap(), "out_of_stock", "none left")
        .unwrap();
    assert_eq!(
        pending.await.unwrap(),
        json!({"ok": false, "code": "out_of_stock", "message": "none left"})
    );

    // Not answered in time.
    let answer = ada.request("ignored", json!(null)).await;
    assert_eq!(answer["code"], "host_timeout");
    assert!(matches!(
        host.next_of("custom").await,
        Event::Custom { ack: Some(_), .. }
    ));

    // No ack asked: the host gets the event without an ack id.
    ada.emit("fire_and_forget", json!([1, 2]));
    let Event::Custom {
        event, data, ack, ..
    } = host.next_of("custom").await
    else {
        unreachable!()
    };
    assert_eq!(
        (event.as_str(), data, ack),
        ("fire_and_forget", json!([1, 2]), None)
    );
    host.stop().await;
}

#[tokio::test]
async fn without_a_host_listener_custom_events_are_unknown() {
    let engine = tokio::task::spawn_blocking(|| Chat::builder(test_config()).start())
        .await
        .unwrap()
        .unwrap();
    let mut ada = Client::named(engine.local_addr().unwrap(), "Ada").await;
    let answer = ada.request("dice", json!({})).await;
    assert_eq!(answer["code"], "unknown_event");
    tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn commands_reach_rooms_users_and_everyone() {
    let host = start_with_events(test_config()).await;
    let addr = host.engine.local_addr().unwrap();
    let chat = host.engine.handle().clone();
    let mut ada = Client::named(addr, "Ada").await;
    let mut bob = Client::named(addr, "Bob").await;
    ada.request("join", json!({"room": "lobby"})).await;
    bob.request("join", json!({"room": "other"})).await;

    chat.emit_to_room("lobby", "announcement", json!({"text": "lobby only"}))
        .await
        .unwrap();
    assert_eq!(
        ada.event("announcement").await,
        json!({"text": "lobby only"})
    );
    chat.emit_to_all("announcement", json!({"text": "all"}))
        .await
        .unwrap();
    assert_eq!(bob.event("announcement").await, json!({"text": "all"}));
    assert_eq!(ada.event("announcement").await, json!({"text": "all"}));
    assert!(
        bob.received("announcement").is_empty(),
        "bob got the lobby-only emit"
    );

    chat.emit_to_user("Bob", "note", json!("for bob"))
        .await
        .unwrap();
    assert_eq!(bob.event("note").await, json!("for bob"));
    assert!(ada.received("note").is_empty());

    assert_eq!(
        chat.emit_to_user("nobody", "note", json!(1)).await,
        Err(EmitError::UserOffline("nobody".into()))
    );
    for bad in ["", "connect", "disconnect", &"x".repeat(200)] {
        assert_eq!(
            chat.emit_to_all(bad, json!(1)).await,
            Err(EmitError::InvalidEvent(bad.to_string()))
        );
    }
    assert!(matches!(
        chat.emit_to_room("bad/room", "x", json!(1)).await,
        Err(EmitError::InvalidRoom(_))
    ));

    let rooms = chat.rooms().await;
    let names: Vec<_> = rooms.iter().map(|r| r.room.to_string()).collect();
    assert_eq!(names, ["lobby", "other"]);
    assert_eq!(rooms[0].members[0].id.as_ref(), "Ada");
    assert_eq!(chat.room("other").await.unwrap().count, 1);
    assert!(chat.room("empty").await.is_none());

    let stats = chat.stats();
    assert_eq!(
        (stats.connections, stats.users_online, stats.rooms),
        (2, 2, 2)
    );

    assert_eq!(chat.disconnect_user("Bob", "spam").await, Ok(1));
    assert_eq!(bob.event("kicked").await, json!({"reason": "spam"}));
    bob.closed().await;
    assert_eq!(
        chat.disconnect_user("Bob", "again").await,
        Err(DisconnectError::UserOffline("Bob".into()))
    );
    // disconnect_user returned after Bob was handled: the room list no longer
    // has his room.
    assert!(chat.room("other").await.is_none());

    host.stop().await;
    // After stop, commands say so instead of hanging.
    assert_eq!(
        chat.emit_to_all("late", json!(1)).await,
        Err(EmitError::NotRunning)
    );
}

#[tokio::test]
async fn a_panicking_callback_does_not_stop_delivery() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let engine = tokio::task::spawn_blocking(move || {
        Chat::builder(test_config())
            .on_event(move |event| {
                if event.kind() == "connected" {
                    panic!("host bug");
                }
                sink.lock().unwrap().push(event.kind());
            })
            .start()
    })
    .await
    .unwrap()
    .unwrap();
    let mut ada = Client::named(engine.local_addr().unwrap(), "Ada").await;
    ada.request("join", json!({"room": "r"})).await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while !seen.lock().unwrap().contains(&"joined") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "joined never delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn stop_inside_the_callback_is_refused() {
    let slot: Arc<Mutex<Option<Arc<Engine>>>> = Arc::default();
    let (tx, mut results) = mpsc::unbounded_channel();
    let inner = slot.clone();
    let engine = tokio::task::spawn_blocking(move || {
        Chat::builder(test_config())
            .on_event(move |_| {
                if let Some(engine) = inner.lock().unwrap().as_ref() {
                    let _ = tx.send(engine.stop(Duration::from_secs(1)));
                }
            })
            .start()
    })
    .await
    .unwrap()
    .unwrap();
    let engine = Arc::new(engine);
    *slot.lock().unwrap() = Some(engine.clone());
    let _ada = Client::named(engine.local_addr().unwrap(), "Ada").await;
    let result = tokio::time::timeout(common::WAIT, results.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Err(StopError::InsideEventCallback));
    slot.lock().unwrap().take();
    tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn events_have_a_kind_matching_their_json_type() {
    let event = Event::Custom {
        sid: "s".into(),
        user: None,
        event: "e".into(),
        data: Value::Null,
        args: serde_json::from_str("[null]").unwrap(),
        ack: Some(AckId(7)),
    };
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], event.kind());
    assert_eq!(json["ack"], 7);
    assert_eq!(json["args"], serde_json::json!([null]));
}

/// The host chooses its events in core: unchosen kinds never reach the callback,
/// and without custom events a custom event is refused with `unknown_event`.
#[tokio::test]
async fn subscribed_kinds_only_and_unknown_event_without_custom() {
    let mut host = start_with_events(test_config()).await;
    let chat = host.engine.handle().clone();
    chat.subscribe(EventKinds::NONE.with(EventKind::Joined));
    let addr = host.engine.local_addr().unwrap();
    let mut ada = Client::named(addr, "Ada").await;
    let answer = ada.request("buy", json!({})).await;
    assert_eq!(answer["code"], "unknown_event", "{answer}");
    ada.request("join", json!({"room": "r"})).await;
    let event = host.next_of("joined").await;
    assert!(matches!(event, Event::Joined { .. }));
    while let Ok(event) = host.events.try_recv() {
        assert_eq!(
            event.kind(),
            "joined",
            "an unchosen kind arrived: {event:?}"
        );
    }
    chat.subscribe(EventKinds::ALL);
    let pending = tokio::spawn(async move { ada.request("buy", json!({})).await });
    let Event::Custom { ack, .. } = host.next_of("custom").await else {
        unreachable!()
    };
    chat.ack(ack.unwrap(), json!({"ok": true})).unwrap();
    assert_eq!(pending.await.unwrap(), json!({"ok": true}));
    host.stop().await;
}

/// An acknowledgement whose connection closed is gone: nobody is left to get
/// the answer, so answering it is `Unknown`, as the error documents.
#[tokio::test]
async fn acks_of_a_closed_connection_are_unknown() {
    let mut host = start_with_events(test_config()).await;
    let addr = host.engine.local_addr().unwrap();
    let chat = host.engine.handle().clone();
    let asking = tokio::spawn({
        let mut ada = Client::named(addr, "Ada").await;
        async move { ada.request("dice", json!({"sides": 6})).await }
    });
    let Event::Custom { ack, sid, .. } = host.next_of("custom").await else {
        unreachable!()
    };
    // Dropping the task drops its client, which closes the WebSocket.
    asking.abort();
    let _ = asking.await;
    loop {
        if let Event::Disconnected { sid: gone, .. } = host.next_of("disconnected").await {
            if gone == sid {
                break;
            }
        }
    }
    let ack = ack.expect("the client asked for an ack");
    assert_eq!(
        chat.ack(ack, json!({"rolled": 4})),
        Err(AckError::Unknown(ack.0))
    );
    host.stop().await;
}
