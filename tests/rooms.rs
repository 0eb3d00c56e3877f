//! Rooms and direct messages over the wire: the JSON API and the socket's
//! room events, with real HTTP and WebSocket clients, on either engine.

mod common;

use std::time::Duration;

use common::{ws::*, *};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let res = request.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    call(client, reqwest::Method::POST, url, Some(body)).await
}

async fn get(client: &reqwest::Client, url: String) -> (StatusCode, Value) {
    call(client, reqwest::Method::GET, url, None).await
}

/// A socket past its greeting.
async fn socket(app: &TestApp, cookie: &str) -> Ws {
    let mut ws = Ws::open(&app.base, cookie).await;
    ws.until("chat history").await;
    ws
}

/// The events named `name` a socket gets within `within`.
async fn events(ws: &mut Ws, name: &str, within: Duration) -> Vec<Value> {
    ws.drain(within).await.into_iter().filter(|(e, _)| e == name).map(|(_, d)| d).collect()
}

#[tokio::test]
async fn an_open_room_is_made_joined_and_talked_in_by_its_members_only() {
    let app = spawn_app().await;
    let (alice_cookie, bob_cookie, carol_cookie) =
        (app.cookie("alice").await, app.cookie("bob").await, app.cookie("carol").await);
    let alice = app.client_with(&alice_cookie);
    let bob = app.client_with(&bob_cookie);
    let mut bob_ws = socket(&app, &bob_cookie).await;
    let mut carol_ws = socket(&app, &carol_cookie).await;
    let mut alice_ws = socket(&app, &alice_cookie).await;

    let (status, room) =
        post(&alice, app.url("/api/rooms"), json!({"name": "study", "kind": "open", "topic": "week 3"}))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(
        (room["name"].clone(), room["kind"].clone(), room["member"].clone()),
        (json!("study"), json!("open"), json!(true))
    );
    assert_eq!(room["members"], 1);
    let id = room["id"].as_i64().unwrap();
    let joined = alice_ws.until("room joined").await;
    assert_eq!(joined["id"], id, "the creator's tabs are told");

    let (_, list) = get(&bob, app.url("/api/rooms")).await;
    let listed = list["rooms"].as_array().unwrap();
    assert_eq!(listed[0]["name"], "lobby", "the lobby first");
    let seen = listed.iter().find(|r| r["id"] == id).expect("an open room is listed to everyone");
    assert_eq!(seen["member"], false);

    let (status, joined) = post(&bob, app.url(&format!("/api/rooms/{id}/join")), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(joined["member"], true);
    assert_eq!(bob_ws.until("room joined").await["id"], id);
    assert_eq!(alice_ws.until("member joined").await, json!({"room": id, "username": "bob"}));

    alice_ws.emit("chat message", json!({"room": id, "message": "hello study"})).await;
    assert_eq!(alice_ws.until("chat message").await["message"], "hello study", "to its sender's tabs too");
    let got = bob_ws.until("chat message").await;
    assert_eq!((got["room"].clone(), got["message"].clone()), (json!(id), json!("hello study")));
    assert!(
        events(&mut carol_ws, "chat message", Duration::from_millis(300)).await.is_empty(),
        "carol is not in it"
    );

    // Carol is not a member: her message goes nowhere.
    carol_ws.emit("chat message", json!({"room": id, "message": "let me in"})).await;
    assert_eq!(carol_ws.until("error").await["code"], "not_found");

    // Bob leaves: nothing more of the room reaches him.
    let (status, _) = post(&bob, app.url(&format!("/api/rooms/{id}/leave")), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(bob_ws.until("room left").await, json!({"room": id}));
    alice_ws.emit("chat message", json!({"room": id, "message": "after bob left"})).await;
    assert_eq!(alice_ws.until("chat message").await["message"], "after bob left");
    assert!(events(&mut bob_ws, "chat message", Duration::from_millis(300)).await.is_empty());
}

#[tokio::test]
async fn a_private_room_does_not_exist_for_anyone_outside_it() {
    let app = spawn_app().await;
    let (alice_cookie, mallory_cookie) = (app.cookie("alice").await, app.cookie("mallory").await);
    app.cookie("bob").await;
    let alice = app.client_with(&alice_cookie);
    let mallory = app.client_with(&mallory_cookie);
    let (status, room) =
        post(&alice, app.url("/api/rooms"), json!({"name": "ops", "kind": "private", "people": ["bob"]}))
            .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(room["members"], 2);
    let id = room["id"].as_i64().unwrap();
    let never = 999_999;
    for path in ["", "/members"] {
        let seen = get(&mallory, app.url(&format!("/api/rooms/{id}{path}"))).await;
        let unused = get(&mallory, app.url(&format!("/api/rooms/{never}{path}"))).await;
        assert_eq!(seen, unused, "{path}: the same as an id never used");
        assert_eq!(seen.0, StatusCode::NOT_FOUND);
    }
    assert_eq!(get(&mallory, app.url(&format!("/api/messages?room={id}"))).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        post(&mallory, app.url(&format!("/api/rooms/{id}/join")), json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = get(&mallory, app.url("/api/rooms")).await;
    assert!(list["rooms"].as_array().unwrap().iter().all(|r| r["id"] != id));
}

#[tokio::test]
async fn the_same_people_always_find_the_same_direct_room() {
    let app = spawn_app().await;
    let (alice_cookie, bob_cookie) = (app.cookie("alice").await, app.cookie("bob").await);
    let alice = app.client_with(&alice_cookie);
    let bob = app.client_with(&bob_cookie);
    let mut bob_ws = socket(&app, &bob_cookie).await;
    let (status, room) = post(&alice, app.url("/api/direct"), json!({"people": ["bob"]})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (room["kind"].clone(), room["name"].clone(), room["people"].clone()),
        (json!("direct"), Value::Null, json!(["bob"]))
    );
    let told = bob_ws.until("room joined").await;
    assert_eq!(told["people"], json!(["alice"]), "each sees it named after the others");
    let (status, again) = post(&bob, app.url("/api/direct"), json!({"people": ["alice"]})).await;
    assert_eq!((status, again["id"].clone()), (StatusCode::OK, room["id"].clone()));
    assert_eq!(
        post(&alice, app.url("/api/direct"), json!({"people": ["nobody"]})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(&alice, app.url("/api/direct"), json!({"people": []})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn since_replays_the_users_rooms_and_nothing_else() {
    let app = spawn_app().await;
    let (alice_cookie, bob_cookie) = (app.cookie("alice").await, app.cookie("bob").await);
    let alice = app.client_with(&alice_cookie);
    let (_, mine) = post(&alice, app.url("/api/rooms"), json!({"name": "mine", "kind": "private"})).await;
    let (_, shared) =
        post(&alice, app.url("/api/rooms"), json!({"name": "shared", "kind": "private", "people": ["bob"]}))
            .await;
    let mut alice_ws = socket(&app, &alice_cookie).await;
    for (room, text) in [
        (1, "lobby one"),
        (mine["id"].as_i64().unwrap(), "secret"),
        (shared["id"].as_i64().unwrap(), "for bob"),
    ] {
        alice_ws.emit("chat message", json!({"room": room, "message": text})).await;
        alice_ws.until("chat message").await;
    }
    let mut bob_ws = ws::connect(&app.base, Some(&bob_cookie), "?since=0", &[]).await.unwrap();
    let history = bob_ws.until("chat history").await;
    let texts: Vec<&str> =
        history.as_array().unwrap().iter().map(|m| m["message"].as_str().unwrap()).collect();
    assert_eq!(texts, ["lobby one", "for bob"], "each with its room, and nothing of a room bob is not in");
}
