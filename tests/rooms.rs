//! Rooms and direct messages over the wire, from every angle a room must
//! stay private from (a non-member, a removed member, an archived room: on
//! every route and every socket event, in `since`, scrollback, `around`,
//! the list and the counts), and recovery across rooms. Real HTTP and
//! WebSocket clients, on either engine. The routes one by one are in
//! `rooms_api.rs`, the socket's events in `rooms_socket.rs`.

mod common;

use common::{rooms::*, *};
use reqwest::StatusCode;
use serde_json::json;

/// A room id that was never used.
const NEVER: i64 = 999_999;

/// A position of the log that is no message (a room's event took it): a
/// message id never used, below the newest.
async fn not_a_message(app: &TestApp) -> i64 {
    app.scalar("SELECT max(seq) FROM room_events").await
}

async fn messages_in(app: &TestApp, room: i64) -> i64 {
    app.scalar(&format!("SELECT count(*) FROM messages WHERE room_id = {room}")).await
}

async fn body_of(app: &TestApp, message: i64) -> String {
    let pool = app.db.pool().await;
    let body = sqlx::query_scalar(&format!("SELECT body FROM messages WHERE id = {message}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    body
}

#[tokio::test]
async fn an_open_room_is_made_joined_and_talked_in_by_its_members_only() {
    let app = spawn_app().await;
    let [alice, bob, carol] = people(&app, ["alice", "bob", "carol"]).await;
    let mut bob_ws = bob.socket().await;
    let mut carol_ws = carol.socket().await;
    let mut alice_ws = alice.socket().await;

    let (status, room) =
        alice.post("/api/rooms", json!({"name": "study", "kind": "open", "topic": "week 3"})).await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(
        (room["name"].clone(), room["kind"].clone(), room["member"].clone()),
        (json!("study"), json!("open"), json!(true))
    );
    assert_eq!(room["members"], 1);
    let id = room["id"].as_i64().unwrap();
    let joined = alice_ws.until("room joined").await;
    assert_eq!(joined["id"], id, "the creator's tabs are told");

    let listed = bob.rooms().await;
    assert_eq!(listed[0]["name"], "lobby", "the lobby first");
    let seen = listed.iter().find(|r| r["id"] == id).expect("an open room is listed to everyone");
    assert_eq!(seen["member"], false);

    let (status, joined) = bob.post(&format!("/api/rooms/{id}/join"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(joined["member"], true);
    assert_eq!(bob_ws.until("room joined").await["id"], id);
    assert_eq!(alice_ws.until("member joined").await, json!({"room": id, "username": "bob"}));

    say(&mut alice_ws, id, "hello study").await;
    let got = bob_ws.until("chat message").await;
    assert_eq!((got["room"].clone(), got["message"].clone()), (json!(id), json!("hello study")));

    // Carol is not a member: her message goes nowhere.
    carol_ws.emit("chat message", json!({"room": id, "message": "let me in"})).await;
    assert_eq!(carol_ws.until("error").await["code"], "not_found");
    assert_eq!(messages_in(&app, id).await, 1, "nothing stored");

    // Bob leaves: nothing more of the room reaches him.
    assert_eq!(bob.leave(id).await, StatusCode::NO_CONTENT);
    assert_eq!(bob_ws.until("room left").await, json!({"room": id}));
    say(&mut alice_ws, id, "after bob left").await;
    alice_ws.chat("sentinel").await;
    for (name, ws) in [("bob", &mut bob_ws), ("carol", &mut carol_ws)] {
        let seen = until_text(ws, "sentinel").await;
        assert!(
            of_room(&seen, id).iter().all(|(e, _)| e != "chat message"),
            "{name} got nothing of the room: {seen:?}"
        );
    }
}

#[tokio::test]
async fn a_private_room_does_not_exist_for_anyone_outside_it() {
    let app = spawn_app().await;
    let _admin = Person::new(&app, "root").await;
    let [alice, bob, mallory] = people(&app, ["alice", "bob", "mallory"]).await;
    let id = alice.make_room("ops", "private", &["bob"]).await;
    assert_eq!(alice.room(id).await["members"], 2);
    let mut alice_ws = alice.socket().await;
    let secret = say(&mut alice_ws, id, "the secret @mallory").await;

    assert_hidden(&mallory, id, NEVER, "bob", secret).await;
    let mut ws = mallory.socket().await;
    assert_hidden_on_socket(&mut ws, id, NEVER, secret, not_a_message(&app).await).await;

    // Nothing was stored or changed by any of it, and nothing counts for her.
    assert_eq!(messages_in(&app, id).await, 1);
    assert_eq!(body_of(&app, secret).await, "the secret @mallory");
    let room = bob.room(id).await;
    assert_eq!(
        (room["name"].clone(), room["topic"].clone(), room["members"].clone()),
        (json!("ops"), json!(""), json!(2))
    );
    let lobby = &mallory.rooms().await[0];
    assert_eq!((lobby["unread"].clone(), lobby["mentions"].clone()), (json!(0), json!(0)), "{lobby}");
    let (_, history) = mallory.socket_since(0).await;
    assert!(history.iter().all(|m| m["room"] != id), "nothing in since: {history:?}");
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id
                    WHERE u.username = 'mallory' AND m.room_id <> 1"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_direct_room_does_not_exist_for_anyone_outside_it_either() {
    let app = spawn_app().await;
    let _admin = Person::new(&app, "root").await;
    let [alice, bob, mallory] = people(&app, ["alice", "bob", "mallory"]).await;
    let id = alice.direct(&["bob"]).await;
    let mut alice_ws = alice.socket().await;
    let secret = say(&mut alice_ws, id, "just us").await;
    assert_hidden(&mallory, id, NEVER, "bob", secret).await;
    let mut ws = mallory.socket().await;
    assert_hidden_on_socket(&mut ws, id, NEVER, secret, not_a_message(&app).await).await;
    assert_eq!(messages_in(&app, id).await, 1);
    assert_eq!(bob.room(id).await["people"], json!(["alice"]));
}

#[tokio::test]
async fn a_removed_member_finds_nothing_more_of_the_room() {
    let app = spawn_app().await;
    let _admin = Person::new(&app, "root").await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let id = alice.make_room("ops", "private", &["bob"]).await;
    let mut alice_ws = alice.socket().await;
    let mut bob_ws = bob.socket().await;
    let mine = say(&mut bob_ws, id, "mine").await;
    until_text(&mut alice_ws, "mine").await;

    assert_eq!(alice.remove(id, "bob").await, StatusCode::NO_CONTENT);
    // Sent the moment the removal is answered: it never reaches bob.
    alice_ws.emit("chat message", json!({"room": id, "message": "right after @bob"})).await;
    alice_ws.emit("typing", json!({ "room": id })).await;
    alice_ws.emit("chat message", json!({"room": id, "message": "and after"})).await;
    alice_ws.chat("sentinel").await;
    let seen = until_text(&mut bob_ws, "sentinel").await;
    // His own message moved his marker in the room: that may come now.
    let mut of_his = of_room(&seen, id);
    of_his.retain(|(e, _)| e != "read marker");
    assert_eq!(of_his, vec![("room left".to_owned(), json!({ "room": id }))], "{seen:?}");
    let told = until_text(&mut alice_ws, "sentinel").await;
    let of_ops = of_room(&told, id);
    let mut told_of_room: Vec<&str> = names(&of_ops).into_iter().filter(|e| *e != "read marker").collect();
    assert_eq!(told_of_room.remove(0), "member left", "alice is told first: {told:?}");
    assert_eq!(told_of_room, ["chat message", "chat message"], "her messages went to the room: {told:?}");
    assert!(told.contains(&("member left".to_owned(), json!({"room": id, "username": "bob"}))), "{told:?}");
    let after =
        told.iter().find(|(e, d)| e == "chat message" && d["message"] == "and after").unwrap().1["id"]
            .as_i64()
            .unwrap();

    assert_hidden(&bob, id, NEVER, "alice", after).await;
    assert_hidden_on_socket(&mut bob_ws, id, NEVER, mine, not_a_message(&app).await).await;
    assert_eq!(body_of(&app, mine).await, "mine", "his own message is out of his reach too");
    assert_eq!(messages_in(&app, id).await, 3);
    let (_, history) = bob.socket_since(0).await;
    assert!(history.iter().all(|m| m["room"] != id), "nothing in since, before or after: {history:?}");
    let lobby = &bob.rooms().await[0];
    assert_eq!(lobby["mentions"], 0, "a mention in a room he left counts nowhere: {lobby}");
}

#[tokio::test]
async fn an_archived_room_is_gone_for_everyone_its_members_too() {
    let app = spawn_app().await;
    let root = Person::new(&app, "root").await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let ops = alice.make_room("ops", "private", &["bob"]).await;
    let town = alice.make_room("town", "open", &[]).await;
    assert_eq!(bob.join(town).await, StatusCode::OK);
    let mut alice_ws = alice.socket().await;
    let mut bob_ws = bob.socket().await;
    let mine = say(&mut bob_ws, ops, "mine").await;
    let square = say(&mut bob_ws, town, "in town").await;

    assert_eq!(alice.archive(ops).await, StatusCode::NO_CONTENT, "by its creator");
    assert_eq!(root.archive(town).await, StatusCode::NO_CONTENT, "by an admin");
    alice_ws.chat("sentinel").await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let seen = until_text(ws, "sentinel").await;
        let gone: Vec<_> = seen.iter().filter(|(e, _)| e.starts_with("room ")).cloned().collect();
        let left = |room: i64| ("room left".to_owned(), json!({ "room": room }));
        assert_eq!(gone, vec![left(ops), left(town)], "every member's tabs: {seen:?}");
    }
    alice_ws.emit("chat message", json!({"room": ops, "message": "too late"})).await;
    let refused = until_where(&mut alice_ws, |e, _| e == "error").await;
    assert_eq!(refused.last().unwrap().1["code"], "not_found");
    assert_eq!(messages_in(&app, ops).await, 1, "nothing stored");
    for person in [&alice, &bob, &root] {
        assert_hidden(person, ops, NEVER, "bob", mine).await;
        assert_hidden(person, town, NEVER, "bob", square).await;
    }
    assert_hidden_on_socket(&mut bob_ws, ops, NEVER, mine, not_a_message(&app).await).await;
    assert_hidden_on_socket(&mut alice_ws, town, NEVER, square, not_a_message(&app).await).await;
    let (_, history) = bob.socket_since(0).await;
    assert!(history.iter().all(|m| m["room"] == 1), "{history:?}");
    assert_eq!(messages_in(&app, ops).await + messages_in(&app, town).await, 2, "its messages stay");
    assert_eq!(body_of(&app, mine).await, "mine");
}

#[tokio::test]
async fn since_replays_messages_edits_and_deletes_of_the_users_rooms_in_one_order() {
    let app = spawn_app().await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let shared = alice.make_room("shared", "private", &["bob"]).await;
    let secret = alice.make_room("secret", "private", &[]).await;
    let town = alice.make_room("town", "open", &[]).await;
    let other = alice.make_room("other", "open", &[]).await;
    assert_eq!(bob.join(town).await, StatusCode::OK);
    let mut alice_ws = alice.socket().await;
    let mut bob_live = bob.socket().await;
    let start = say(&mut alice_ws, 1, "before").await;

    let mut ids = std::collections::HashMap::new();
    for (room, text) in
        [(1, "lobby"), (shared, "shared"), (secret, "secret"), (town, "town"), (other, "other")]
    {
        ids.insert(text, say(&mut alice_ws, room, text).await);
    }
    alice_ws.emit("edit message", json!({"id": ids["shared"], "message": "shared, fixed"})).await;
    alice_ws.emit("edit message", json!({"id": ids["secret"], "message": "secret, fixed"})).await;
    alice_ws.emit("delete message", json!({"id": ids["town"]})).await;
    alice_ws.emit("delete message", json!({"id": ids["other"]})).await;
    // Changes are made one after another; the last one done, all are.
    while alice_ws.until("message deleted").await["id"] != ids["other"] {}
    let sentinel = say(&mut alice_ws, 1, "sentinel").await;

    let live: Vec<(String, i64, i64)> = until_text(&mut bob_live, "sentinel")
        .await
        .into_iter()
        .filter(|(e, d)| {
            matches!(e.as_str(), "chat message" | "message edited" | "message deleted")
                && d["id"].as_i64() > Some(start)
        })
        .map(|(e, d)| (e, d["id"].as_i64().unwrap(), d["room"].as_i64().unwrap()))
        .collect();
    let event = |e: &str, id: i64, room: i64| (e.to_owned(), id, room);
    assert_eq!(
        live,
        vec![
            event("chat message", ids["lobby"], 1),
            event("chat message", ids["shared"], shared),
            event("chat message", ids["town"], town),
            event("message edited", ids["shared"], shared),
            event("message deleted", ids["town"], town),
            event("chat message", sentinel, 1),
        ],
        "live: bob's rooms only, in the log's order"
    );

    let (_, history) = bob.socket_since(start).await;
    let replayed: Vec<(i64, i64, Option<&str>, bool)> = history
        .iter()
        .map(|m| {
            let (id, room) = (m["id"].as_i64().unwrap(), m["room"].as_i64().unwrap());
            (id, room, m["message"].as_str(), m["deleted"] == true)
        })
        .collect();
    assert_eq!(
        replayed,
        vec![
            (ids["lobby"], 1, Some("lobby"), false),
            (ids["shared"], shared, Some("shared, fixed"), false),
            (ids["town"], town, None, true),
            (sentinel, 1, Some("sentinel"), false),
        ],
        "with since: each change of bob's rooms once, as it is now, in the order of its latest change"
    );
    assert!(history[1]["editedAt"].is_string());
}
