//! The chat people expect, over the wire: who is here, who is typing,
//! scrollback, read markers, mentions. Real WebSocket and HTTP clients.

mod common;

use std::time::Duration;

use common::{ws::*, *};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn unlimited_chat(c: &mut lobby::Config) {
    c.live.chat_burst = 100_000;
    c.live.chat_rate = 100_000.0;
}

/// The frames a fresh socket gets before the live stream, by event name.
async fn opening(ws: &mut Ws) -> (Value, Value, Value) {
    ws.until("user count").await;
    let online = ws.until("online users").await;
    let marker = ws.until("read marker").await;
    let history = ws.until("chat history").await;
    (online, marker, history)
}

/// The list a client keeps: `online users` on connect, then each `user`
/// announcement (a cluster may still be telling a join when a socket
/// opens: the announcement then comes live, after the snapshot).
async fn kept_list(ws: &mut Ws) -> Vec<String> {
    let (online, _, _) = opening(ws).await;
    let mut names: Vec<String> =
        online.as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
    for (event, data) in ws.drain(Duration::from_millis(300)).await {
        if event == "user" {
            let name = data["username"].as_str().unwrap().to_owned();
            names.retain(|n| *n != name);
            if data["connected"] == true {
                names.push(name);
            }
        }
    }
    names.sort_by_key(|n| n.to_lowercase());
    names
}

#[tokio::test]
async fn online_users_is_exact_on_connect_and_kept_by_announcements() {
    let app = spawn_app().await;
    let (zed, alice, bob) = (app.cookie("Zed").await, app.cookie("alice").await, app.cookie("Bob").await);
    let mut first = Ws::open(&app.base, &zed).await;
    assert_eq!(opening(&mut first).await.0, json!(["Zed"]), "alone: itself, with a tab open");
    let mut second = Ws::open(&app.base, &alice).await;
    let (online, _, _) = opening(&mut second).await;
    assert_eq!(online, json!(["alice", "Zed"]), "itself in the list, in its place");
    let joins = second.drain(Duration::from_millis(300)).await;
    let own = joins.iter().filter(|(e, d)| e == "user" && d["username"] == "alice").count();
    assert_eq!(own, 1, "and announced once, after the list");
    let told: Vec<Value> = first
        .drain(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|(e, _)| e == "user")
        .map(|(_, d)| d["username"].clone())
        .collect();
    assert_eq!(told, [json!("Zed"), json!("alice")], "its own join after its list, then alice's");
    let mut third = Ws::open(&app.base, &bob).await;
    assert_eq!(kept_list(&mut third).await, ["alice", "Bob", "Zed"], "sorted without regard to case");
    let mut alice_again = Ws::open(&app.base, &alice).await;
    let (online, _, _) = opening(&mut alice_again).await;
    assert_eq!(online, json!(["alice", "Bob", "Zed"]), "on connect: every user with a tab, exactly");
    drop((third, alice_again, second));
    let left = eventually(Duration::from_secs(2), || async {
        let mut probe = Ws::open(&app.base, &zed).await;
        kept_list(&mut probe).await == ["Zed"]
    });
    assert!(left.await, "leaves drop out of the list");
}

#[tokio::test]
async fn typing_reaches_others_once_per_two_seconds_and_is_never_replayed() {
    let app = spawn_app().await;
    let alice = app.cookie("alice").await;
    let mut typist = Ws::open(&app.base, &alice).await;
    opening(&mut typist).await;
    let mut own_tab = Ws::open(&app.base, &alice).await;
    opening(&mut own_tab).await;
    let mut bob = Ws::open(&app.base, &app.cookie("bob").await).await;
    opening(&mut bob).await;
    for _ in 0..10 {
        typist.emit("typing", Value::Null).await;
    }
    typist.send_text(r#"{"event":"typing"}"#.into()).await;
    let seen = bob.drain(Duration::from_millis(1200)).await;
    let typing: Vec<&Value> = seen.iter().filter(|(e, _)| e == "typing").map(|(_, d)| d).collect();
    assert_eq!(typing, vec![&json!({"username": "alice", "room": 1})], "eleven keystrokes, one announcement");
    let own = own_tab.drain(Duration::from_millis(300)).await;
    assert!(own.iter().all(|(e, _)| e != "typing"), "the typist's own tabs are not told: {own:?}");
    assert!(typist.drain(Duration::from_millis(100)).await.iter().all(|(e, _)| e != "error"), "no refusal");
    tokio::time::sleep(Duration::from_millis(900)).await;
    typist.emit("typing", Value::Null).await;
    assert_eq!(bob.until("typing").await, json!({"username": "alice", "room": 1}), "again after 2 s");

    // Nothing of it is stored: a new socket, with or without since, sees no typing.
    for query in ["", "?since=0"] {
        let mut late = connect(&app.base, Some(&alice), query, &[]).await.unwrap();
        let history = late.until("chat history").await;
        assert_eq!(history, json!([]), "{query}");
        assert!(late.drain(Duration::from_millis(300)).await.iter().all(|(e, _)| e != "typing"));
    }
}

#[tokio::test]
async fn scrollback_pages_back_to_the_first_message_without_gap_or_duplicate() {
    let app = spawn_app_with(unlimited_chat).await;
    let client = app.user("alice").await;
    let cookie = app.login_cookie("alice").await;
    let mut ws = Ws::open(&app.base, &cookie).await;
    for i in 0..1000 {
        ws.chat(&format!("m{i}")).await;
    }
    let mut last = 0;
    while last < 1000 {
        last = ws.until("chat message").await["id"].as_i64().unwrap();
    }
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    let mut pages = 0;
    loop {
        let url = match before {
            Some(id) => app.url(&format!("/api/messages?before={id}&limit=100")),
            None => app.url("/api/messages?limit=100"),
        };
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        let ids: Vec<i64> =
            page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first within a page");
        seen.splice(0..0, ids.iter().copied());
        pages += 1;
        if page["more"] == false {
            break;
        }
        before = ids.first().copied();
    }
    assert_eq!(seen, (1..=1000).collect::<Vec<i64>>(), "every message once, back to the first");
    assert_eq!(pages, 10);
    let default: Value = client.get(app.url("/api/messages")).send().await.unwrap().json().await.unwrap();
    assert_eq!(default["messages"].as_array().unwrap().len(), 50, "50 by default, the newest");
    assert_eq!(default["messages"][49]["id"], 1000);
    assert!(default["messages"][0]["mentions"].is_array() && default["messages"][0]["editedAt"].is_null());

    for bad in ["?before=abc", "?before=-1", "?before=0", "?limit=0", "?limit=101", "?limit=x", "?page=2"] {
        let res = client.get(app.url(&format!("/api/messages{bad}"))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let anonymous = app.bare_client().get(app.url("/api/messages")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_read_marker_only_moves_forward_and_reaches_every_tab() {
    let app = spawn_app_with(unlimited_chat).await;
    let alice = app.cookie("alice").await;
    let mut tab1 = Ws::open(&app.base, &alice).await;
    assert_eq!(opening(&mut tab1).await.1, json!({"lastRead": 0, "room": 1}));
    let mut tab2 = Ws::open(&app.base, &alice).await;
    opening(&mut tab2).await;
    // Someone else writes: alice has not read it yet.
    let mut bob = Ws::open(&app.base, &app.cookie("bob").await).await;
    opening(&mut bob).await;
    for i in 0..10 {
        bob.chat(&format!("m{i}")).await;
    }
    let mut last = 0;
    while last < 10 {
        last = tab2.until("chat message").await["id"].as_i64().unwrap();
    }
    tab1.emit("read", json!(7)).await;
    assert_eq!(tab2.until("read marker").await, json!({"lastRead": 7, "room": 1}), "the other tab follows");
    tab1.emit("read", json!(3)).await;
    tab1.emit("read", json!(999_999)).await;
    assert_eq!(
        tab2.until("read marker").await,
        json!({"lastRead": 10, "room": 1}),
        "never back, never past the newest"
    );
    let rest = tab2.drain(Duration::from_millis(300)).await;
    assert!(rest.iter().all(|(e, _)| e != "read marker"), "{rest:?}");
    let bobs: Vec<Value> = bob
        .drain(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|(e, _)| e == "read marker")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        bobs.last(),
        Some(&json!({"lastRead": 10, "room": 1})),
        "sending moves the sender's own marker, to their tabs only"
    );

    // Stored: a restart keeps it.
    drop((tab1, tab2, bob));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let db = app.stop().await;
    let app = start(db, |_| {}).await;
    let mut tab = Ws::open(&app.base, &alice).await;
    assert_eq!(opening(&mut tab).await.1, json!({"lastRead": 10, "room": 1}));
}

#[tokio::test]
async fn mentions_name_exactly_the_existing_users() {
    let app = spawn_app().await;
    app.cookie("Bob").await;
    let alice = app.cookie("alice").await;
    let mut ws = Ws::open(&app.base, &alice).await;
    opening(&mut ws).await;
    ws.chat("hi @bob, @nobody and @ALICE. again @Bob- and mail@bob.x").await;
    let message = ws.until("chat message").await;
    assert_eq!(message["mentions"], json!(["Bob", "alice"]), "as registered, each once, in order");
    assert!(message["editedAt"].is_null());
    ws.chat("no one here").await;
    assert_eq!(ws.until("chat message").await["mentions"], json!([]));
    let history = Ws::open(&app.base, &alice).await.until("chat history").await;
    assert_eq!(history[0]["mentions"], json!(["Bob", "alice"]), "the history says the same");
}
