//! Order guarantees: one connection's requests apply in arrival order, and every
//! member sees a room's messages in the same order, that of their ids.

mod common;

use std::time::Duration;

use common::{test_config, Client};
use palaver_core::Chat;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_apply_in_order() {
    let engine = tokio::task::spawn_blocking(|| Chat::builder(test_config()).start())
        .await
        .unwrap()
        .unwrap();
    let addr = engine.local_addr().unwrap();
    let mut bob = Client::named(addr, "bob").await;
    bob.request("join", json!({"room": "r"})).await;
    // No waiting between the three: the join must be applied before the message.
    let mut ada = Client::connect(addr, json!({})).await.unwrap();
    ada.emit("login", json!({"name": "ada"}));
    ada.emit("join", json!({"room": "r"}));
    let ack = ada
        .request("message", json!({"room": "r", "text": "right after join"}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let delivered = bob.event_where("message", |m| m["kind"] == "chat").await;
    assert_eq!(delivered["text"], "right after join");
    drop((ada, bob));
    tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_members_see_the_same_order() {
    let mut config = test_config();
    config.limits.messages_per_second = 1_000;
    config.limits.message_burst = 1_000;
    config.limits.requests_per_second = 1_000;
    config.limits.request_burst = 1_000;
    let engine = tokio::task::spawn_blocking(move || Chat::builder(config).start())
        .await
        .unwrap()
        .unwrap();
    let addr = engine.local_addr().unwrap();
    let mut senders = Vec::new();
    for i in 0..4 {
        let mut client = Client::named(addr, &format!("s{i}")).await;
        client.request("join", json!({"room": "r"})).await;
        senders.push(client);
    }
    let mut readers = Vec::new();
    for i in 0..2 {
        let mut client = Client::named(addr, &format!("r{i}")).await;
        client.request("join", json!({"room": "r"})).await;
        readers.push(client);
    }
    const EACH: usize = 50;
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut sender)| {
            tokio::spawn(async move {
                for n in 0..EACH {
                    sender.emit("message", json!({"room": "r", "text": format!("{i}:{n}")}));
                }
                // The ack of a last request proves the earlier ones were taken.
                sender.request("rooms", json!({})).await;
                sender
            })
        })
        .collect();
    let mut senders = Vec::new();
    for task in tasks {
        senders.push(task.await.unwrap());
    }
    let mut orders = Vec::new();
    for reader in &readers {
        let mut seen = Vec::new();
        while seen.len() < 4 * EACH {
            let message = reader.event_where("message", |m| m["kind"] == "chat").await;
            seen.push((
                message["id"].as_str().unwrap().parse::<u64>().unwrap(),
                message["text"].as_str().unwrap().to_string(),
            ));
        }
        let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
        // Each sender's own messages keep their order.
        for i in 0..4 {
            let own: Vec<usize> = seen
                .iter()
                .filter_map(|(_, text)| text.strip_prefix(&format!("{i}:")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(own, (0..EACH).collect::<Vec<_>>());
        }
        orders.push(seen);
    }
    assert_eq!(orders[0], orders[1], "both readers saw the same order");
    drop((senders, readers));
    tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_does_not_disturb_others() {
    let mut config = test_config();
    config.limits.messages_per_second = 5;
    config.limits.message_burst = 5;
    let engine = tokio::task::spawn_blocking(move || Chat::builder(config).start())
        .await
        .unwrap()
        .unwrap();
    let addr = engine.local_addr().unwrap();
    let mut flooder = Client::named(addr, "flood").await;
    let mut ada = Client::named(addr, "ada").await;
    let mut bob = Client::named(addr, "bob").await;
    for client in [&mut flooder, &mut ada, &mut bob] {
        client.request("join", json!({"room": "r"})).await;
    }
    // The bucket refills while the flood is being applied (5 a second): on a
    // loaded machine that takes a while, so the bound counts the time it took.
    let flood_started = std::time::Instant::now();
    for n in 0..200 {
        flooder.emit(
            "message",
            json!({"room": "r", "text": format!("flood {n}")}),
        );
    }
    let refused = flooder
        .request("message", json!({"room": "r", "text": "one more"}))
        .await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0);
    let refilled = (flood_started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    let ack = ada
        .request("message", json!({"room": "r", "text": "still works"}))
        .await;
    assert_eq!(ack["ok"], true);
    bob.event_where("message", |m| m["text"] == "still works")
        .await;
    let floods = bob
        .received("message")
        .iter()
        .filter(|m| m["user"] == "flood")
        .count();
    assert!(
        floods <= 5 + refilled,
        "only the burst (and {refilled} refilled) got through, not {floods}"
    );
    assert!(!flooder.is_closed(), "the flooder keeps its connection");
    drop((flooder, ada, bob));
    tokio::task::spawn_blocking(move || engine.stop(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
}
