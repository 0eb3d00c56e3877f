//! Rooms on the WebSocket: the greeting's `rooms`, `room joined`, `room
//! left`, `room updated`, `member joined` and `member left`, `room` on
//! every room event, typing and read markers per room, unread and mention
//! counts, and a first-release client in the lobby, on either engine.
//!
//! "Nothing of the room reached this socket" is checked with a sentinel: a
//! lobby message sent after the thing that must not arrive. A socket gets
//! the log's changes in the log's order, so whatever was due to it before
//! the sentinel came before the sentinel.

mod common;

use std::time::Duration;

use common::{rooms::*, ws::*, *};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn unlimited_chat(c: &mut lobby::Config) {
    c.live.chat_burst = 100_000;
    c.live.chat_rate = 100_000.0;
}

/// Sends the lobby message `text` from `ws` (without waiting for it): the
/// sentinel every socket, this one included, then reads up to.
async fn sentinel(ws: &mut Ws, text: &str) {
    ws.emit("chat message", json!({"room": 1, "message": text})).await;
}

#[tokio::test]
async fn the_greeting_sends_rooms_after_online_users_and_before_the_read_marker() {
    let app = spawn_app().await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let ops = alice.make_room("ops", "private", &["bob"]).await;
    let town = bob.make_room("town", "open", &[]).await;
    let mut ws = alice.socket().await;
    let lobby_message = say(&mut ws, 1, "in the lobby").await;
    say(&mut ws, ops, "in ops").await;
    drop(ws);

    let mut ws = Ws::open(&app.base, &alice.cookie).await;
    let mut greeting = Vec::new();
    for _ in 0..5 {
        match ws.next().await {
            Seen::Event(event, data) => greeting.push((event, data)),
            Seen::Closed(code) => panic!("closed {code:?}"),
        }
    }
    assert_eq!(names(&greeting), ["user count", "online users", "rooms", "read marker", "chat history"]);
    let rooms = greeting[2].1.as_array().unwrap();
    assert_eq!(*rooms, alice.rooms().await, "rooms: the list, as GET /api/rooms has it");
    let ids: Vec<i64> = rooms.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![1, ops, town]);
    assert_eq!(greeting[3].1["room"], 1, "the read marker is the lobby's");
    let history = greeting[4].1.as_array().unwrap();
    assert_eq!(history.len(), 1, "the history is the lobby's: {history:?}");
    assert_eq!((&history[0]["id"], &history[0]["room"]), (&json!(lobby_message), &json!(1)));
}

#[tokio::test]
async fn room_joined_reaches_every_tab_and_member_joined_only_the_other_members() {
    let app = spawn_app().await;
    let [alice, bob, carol, dave] = people(&app, ["alice", "bob", "carol", "dave"]).await;
    let (mut alice_ws, mut bob_1, mut bob_2, mut carol_ws, mut dave_ws) = (
        alice.socket().await,
        bob.socket().await,
        bob.socket().await,
        carol.socket().await,
        dave.socket().await,
    );

    // Made with its first members: each is told it exists, nobody that the others joined.
    let ops = alice.make_room("ops", "private", &["bob"]).await;
    let town = alice.make_room("town", "open", &[]).await;
    assert_eq!(bob.join(town).await, StatusCode::OK);
    assert_eq!(alice.add(ops, "carol").await, StatusCode::NO_CONTENT);
    let direct = dave.direct(&["bob"]).await;
    sentinel(&mut alice_ws, "done").await;

    let joined = |seen: &[(String, Value)]| -> Vec<i64> {
        seen.iter().filter(|(e, _)| e == "room joined").map(|(_, d)| d["id"].as_i64().unwrap()).collect()
    };
    let members = |seen: &[(String, Value)], event: &str| -> Vec<Value> {
        seen.iter().filter(|(e, _)| e == event).map(|(_, d)| d.clone()).collect()
    };
    let seen = until_text(&mut alice_ws, "done").await;
    assert_eq!(joined(&seen), vec![ops, town]);
    assert_eq!(
        members(&seen, "member joined"),
        vec![json!({"room": town, "username": "bob"}), json!({"room": ops, "username": "carol"})]
    );
    for bob_ws in [&mut bob_1, &mut bob_2] {
        let seen = until_text(bob_ws, "done").await;
        assert_eq!(joined(&seen), vec![ops, town, direct], "every tab of bob's");
        assert_eq!(
            members(&seen, "member joined"),
            vec![json!({"room": ops, "username": "carol"})],
            "never his own"
        );
        let room = seen.iter().find(|(e, d)| e == "room joined" && d["id"] == direct).unwrap();
        assert_eq!(room.1["people"], json!(["dave"]), "named after the others");
    }
    let seen = until_text(&mut carol_ws, "done").await;
    assert_eq!(joined(&seen), vec![ops], "added: told");
    assert!(members(&seen, "member joined").is_empty(), "{seen:?}");
    let ops_joined = &seen.iter().find(|(e, _)| e == "room joined").unwrap().1;
    assert_eq!(
        (
            &ops_joined["name"],
            &ops_joined["kind"],
            &ops_joined["member"],
            &ops_joined["members"],
            &ops_joined["level"]
        ),
        (&json!("ops"), &json!("private"), &json!(true), &json!(3), &json!("all"))
    );
    let seen = until_text(&mut dave_ws, "done").await;
    assert_eq!(joined(&seen), vec![direct]);
    assert!(members(&seen, "member joined").is_empty(), "not in town or ops: {seen:?}");
}

#[tokio::test]
async fn room_left_reaches_every_tab_and_member_left_only_the_other_members() {
    let app = spawn_app().await;
    let [alice, bob, carol] = people(&app, ["alice", "bob", "carol"]).await;
    let ops = alice.make_room("ops", "private", &["bob", "carol"]).await;
    let town = alice.make_room("town", "open", &[]).await;
    assert_eq!(bob.join(town).await, StatusCode::OK);
    let (mut alice_ws, mut bob_1, mut bob_2, mut carol_ws) =
        (alice.socket().await, bob.socket().await, bob.socket().await, carol.socket().await);

    assert_eq!(bob.leave(town).await, StatusCode::NO_CONTENT);
    assert_eq!(alice.remove(ops, "bob").await, StatusCode::NO_CONTENT);
    sentinel(&mut alice_ws, "done").await;
    let about_rooms = |seen: Vec<(String, Value)>| -> Vec<(String, Value)> {
        seen.into_iter().filter(|(e, _)| e.starts_with("room ") || e.starts_with("member ")).collect()
    };
    for bob_ws in [&mut bob_1, &mut bob_2] {
        assert_eq!(
            about_rooms(until_text(bob_ws, "done").await),
            vec![
                ("room left".to_owned(), json!({ "room": town })),
                ("room left".to_owned(), json!({ "room": ops }))
            ],
            "every tab of bob's, and no member left of himself"
        );
    }
    assert_eq!(
        about_rooms(until_text(&mut alice_ws, "done").await),
        vec![
            ("member left".to_owned(), json!({"room": town, "username": "bob"})),
            ("member left".to_owned(), json!({"room": ops, "username": "bob"})),
        ]
    );
    assert_eq!(
        about_rooms(until_text(&mut carol_ws, "done").await),
        vec![("member left".to_owned(), json!({"room": ops, "username": "bob"}))],
        "carol is in ops, not in town"
    );
}

#[tokio::test]
async fn room_updated_reaches_the_members_only() {
    let app = spawn_app().await;
    let [alice, bob, carol] = people(&app, ["alice", "bob", "carol"]).await;
    let ops = alice.make_room("ops", "private", &["bob"]).await;
    let town = alice.make_room("town", "open", &[]).await;
    let (mut alice_ws, mut bob_ws, mut carol_ws) =
        (alice.socket().await, bob.socket().await, carol.socket().await);
    let (status, _) =
        alice.patch(&format!("/api/rooms/{ops}"), json!({"name": "ops2", "topic": "deploys"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        alice.patch(&format!("/api/rooms/{town}"), json!({"topic": "all welcome"})).await.0,
        StatusCode::OK
    );
    sentinel(&mut alice_ws, "done").await;
    let updates = |seen: Vec<(String, Value)>| -> Vec<Value> {
        seen.into_iter().filter(|(e, _)| e == "room updated").map(|(_, d)| d).collect()
    };
    let alices = updates(until_text(&mut alice_ws, "done").await);
    assert_eq!(alices.len(), 2, "{alices:?}");
    assert_eq!(
        (&alices[0]["id"], &alices[0]["name"], &alices[0]["topic"]),
        (&json!(ops), &json!("ops2"), &json!("deploys"))
    );
    assert_eq!(
        (&alices[1]["id"], &alices[1]["name"], &alices[1]["topic"]),
        (&json!(town), &json!("town"), &json!("all welcome"))
    );
    let bobs = updates(until_text(&mut bob_ws, "done").await);
    assert_eq!(bobs, alices[..1].to_vec(), "bob is in ops only");
    assert!(updates(until_text(&mut carol_ws, "done").await).is_empty(), "carol is in neither");
}

#[tokio::test]
async fn every_room_event_carries_its_room() {
    let app = spawn_app_with(unlimited_chat).await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let ops = alice.make_room("ops", "private", &["bob"]).await;
    let (mut alice_ws, mut bob_ws) = (alice.socket().await, bob.socket().await);
    let start = say(&mut alice_ws, 1, "start").await;
    let id = say(&mut alice_ws, ops, "hello").await;
    alice_ws.emit("edit message", json!({"id": id, "message": "hello, edited"})).await;
    alice_ws.emit("delete message", json!({ "id": id })).await;
    alice_ws.emit("typing", json!({ "room": ops })).await;
    let mut seen = until_where(&mut bob_ws, |e, _| e == "typing").await;
    assert_eq!(seen.last().unwrap().1, json!({"username": "alice", "room": ops}));
    let other = say(&mut alice_ws, ops, "more").await;
    bob_ws.emit("read", json!(other)).await;
    seen.extend(until_where(&mut bob_ws, |e, d| e == "read marker" && d["lastRead"] == other).await);
    sentinel(&mut alice_ws, "done").await;
    seen.extend(until_text(&mut bob_ws, "done").await);
    let wanted = ["chat message", "message edited", "message deleted", "read marker"];
    let of_ops: Vec<&str> = seen
        .iter()
        .filter(|(e, d)| wanted.contains(&e.as_str()) && d["room"] == ops)
        .map(|(e, _)| e.as_str())
        .collect();
    assert_eq!(
        of_ops,
        ["chat message", "message edited", "message deleted", "chat message", "read marker"],
        "{seen:?}"
    );
    assert!(seen.iter().any(|(e, d)| e == "typing" && d["room"] == ops));
    assert!(
        seen.iter().filter(|(e, _)| wanted.contains(&e.as_str())).all(|(_, d)| d["room"].is_i64()),
        "{seen:?}"
    );
    let (_, history) = bob.socket_since(start).await;
    assert!(!history.is_empty() && history.iter().all(|m| m["room"].is_i64()), "{history:?}");
    assert!(history.contains(&json!({"id": id, "room": ops, "deleted": true})), "{history:?}");
}

#[tokio::test]
async fn typing_goes_to_the_rooms_members_only_and_never_to_the_typists_own_tabs() {
    let app = spawn_app().await;
    let [alice, bob, carol] = people(&app, ["alice", "bob", "carol"]).await;
    let ops = alice.make_room("ops", "private", &["bob"]).await;
    let (mut alice_1, mut alice_2, mut bob_ws, mut carol_ws) =
        (alice.socket().await, alice.socket().await, bob.socket().await, carol.socket().await);

    for _ in 0..5 {
        alice_1.emit("typing", json!({ "room": ops })).await;
        alice_2.emit("typing", json!({ "room": ops })).await;
    }
    alice_1.emit("typing", Value::Null).await;
    let mut told = Vec::new();
    while told.len() < 2 {
        told.push(bob_ws.until("typing").await);
    }
    told.sort_by_key(|t| t["room"].as_i64());
    assert_eq!(
        told,
        vec![json!({"username": "alice", "room": 1}), json!({"username": "alice", "room": ops})],
        "once per room"
    );
    sentinel(&mut bob_ws, "seen").await;
    for (who, ws) in [("alice's first tab", &mut alice_1), ("alice's second tab", &mut alice_2)] {
        let seen = until_text(ws, "seen").await;
        assert!(seen.iter().all(|(e, _)| e != "typing"), "{who}: {seen:?}");
    }
    let seen = until_text(&mut carol_ws, "seen").await;
    let typing: Vec<&Value> = seen.iter().filter(|(e, _)| e == "typing").map(|(_, d)| d).collect();
    assert_eq!(typing, vec![&json!({"username": "alice", "room": 1})], "carol: the lobby's, not ops'");
    let more = bob_ws.drain(Duration::from_millis(700)).await;
    assert!(more.iter().all(|(e, _)| e != "typing"), "at most once per 2 s per room: {more:?}");

    carol_ws.emit("typing", json!({ "room": ops })).await;
    assert_eq!(carol_ws.until("error").await["code"], "not_found", "not her room");
    for bad in [json!({"room": "ops"}), json!({"room": 0}), json!(5), json!({"room": ops, "x": 1})] {
        carol_ws.emit("typing", bad).await;
        assert_eq!(carol_ws.until("error").await["code"], "bad_request");
    }
}

#[tokio::test]
async fn read_moves_that_rooms_marker_forward_on_every_tab_of_the_user() {
    let app = spawn_app_with(unlimited_chat).await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let ops = alice.make_room("ops", "private", &["bob"]).await;
    let (mut alice_1, mut alice_2, mut bob_ws) =
        (alice.socket().await, alice.socket().await, bob.socket().await);
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(say(&mut bob_ws, ops, &format!("m{n}")).await);
    }
    let lobby = say(&mut bob_ws, 1, "lobby").await;
    assert_eq!(alice.room(ops).await["unread"], 4);

    alice_1.emit("read", json!(ids[1])).await;
    let marker = json!({"lastRead": ids[1], "room": ops});
    for ws in [&mut alice_1, &mut alice_2] {
        assert_eq!(ws.until("read marker").await, marker, "every tab");
    }
    alice_1.emit("read", json!(ids[0])).await;
    sentinel(&mut bob_ws, "after going back").await;
    for ws in [&mut alice_1, &mut alice_2] {
        let seen = until_text(ws, "after going back").await;
        assert!(seen.iter().all(|(e, _)| e != "read marker"), "never back: {seen:?}");
    }
    let stored = eventually(Duration::from_secs(3), || async {
        let room = alice.room(ops).await;
        room["lastRead"] == ids[1] && room["unread"] == 2
    });
    assert!(stored.await, "stored: {}", alice.room(ops).await);
    assert_eq!(alice.room(1).await["lastRead"], 0, "the lobby's marker did not move");

    alice_2.emit("read", json!(lobby)).await;
    assert_eq!(
        alice_1.until("read marker").await,
        json!({"lastRead": lobby, "room": 1}),
        "a lobby id moves the lobby's"
    );
    assert!(eventually(Duration::from_secs(3), || async { alice.room(1).await["lastRead"] == lobby }).await);
    assert_eq!(alice.room(ops).await["lastRead"], ids[1]);

    // Reconnecting: the rooms carry the stored markers.
    let mut again = Ws::open(&app.base, &alice.cookie).await;
    let rooms = again.until("rooms").await;
    let ops_seen = rooms.as_array().unwrap().iter().find(|r| r["id"] == ops).unwrap().clone();
    assert_eq!((&ops_seen["lastRead"], &ops_seen["unread"]), (&json!(ids[1]), &json!(2)));
    assert_eq!(again.until("read marker").await, json!({"lastRead": lobby, "room": 1}));
}

#[tokio::test]
async fn sending_moves_the_senders_marker_and_joining_starts_it_at_the_newest_message() {
    let app = spawn_app_with(unlimited_chat).await;
    let [alice, bob, carol] = people(&app, ["alice", "bob", "carol"]).await;
    let ops = alice.make_room("ops", "private", &["bob"]).await;
    let town = alice.make_room("town", "open", &[]).await;
    let (mut alice_1, mut alice_2, mut bob_ws) =
        (alice.socket().await, alice.socket().await, bob.socket().await);
    say(&mut bob_ws, ops, "from bob").await;
    let mine = say(&mut alice_1, ops, "from alice").await;
    let marker = json!({"lastRead": mine, "room": ops});
    until_where(&mut alice_2, |e, d| e == "read marker" && *d == marker).await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            let room = alice.room(ops).await;
            room["lastRead"] == mine && room["unread"] == 0
        })
        .await
    );
    let bobs = bob.room(ops).await;
    assert_eq!((&bobs["unread"], &bobs["lastId"]), (&json!(1), &json!(mine)), "bob has hers to read");

    let newest = say(&mut alice_1, town, "t2").await;
    let mut carol_ws = carol.socket().await;
    assert_eq!(carol.join(town).await, StatusCode::OK);
    let joined = carol_ws.until("room joined").await;
    assert_eq!(
        (&joined["lastId"], &joined["lastRead"], &joined["unread"], &joined["mentions"]),
        (&json!(newest), &json!(newest), &json!(0), &json!(0))
    );
    assert_eq!(alice.add(ops, "carol").await, StatusCode::NO_CONTENT);
    let added = carol_ws.until("room joined").await;
    assert_eq!((&added["id"], &added["lastRead"], &added["unread"]), (&json!(ops), &json!(mine), &json!(0)));
    let room = carol.room(ops).await;
    assert_eq!(
        (&room["lastRead"], &room["unread"]),
        (&json!(mine), &json!(0)),
        "added: nothing unread either"
    );
    say(&mut alice_1, ops, "welcome @carol").await;
    let room = carol.room(ops).await;
    assert_eq!((&room["unread"], &room["mentions"]), (&json!(1), &json!(1)), "what comes after is unread");
}

#[tokio::test]
async fn unread_and_mentions_count_messages_by_others_after_the_marker() {
    let app = spawn_app_with(unlimited_chat).await;
    let [alice, bob, b_b, bxb] = people(&app, ["alice", "bob", "b_b", "bxb"]).await;
    let ops = alice.make_room("ops", "private", &["bob", "b_b", "bxb"]).await;
    let mut alice_ws = alice.socket().await;
    let mut bob_ws = bob.socket().await;
    say(&mut bob_ws, ops, "mine, @bob").await;
    say(&mut alice_ws, ops, "hi").await;
    let first = say(&mut alice_ws, ops, "@bob look").await;
    say(&mut alice_ws, ops, "@BOB again, and @bob").await;
    say(&mut alice_ws, ops, "@bobby is nobody, @bxb is").await;
    let last = say(&mut alice_ws, ops, "nothing").await;
    say(&mut alice_ws, 1, "@bob in the lobby").await;
    let counts = |room: &Value| (room["unread"].as_i64().unwrap(), room["mentions"].as_i64().unwrap());
    assert_eq!(counts(&bob.room(ops).await), (5, 2), "by others only; each message once");
    assert_eq!(counts(&bob.room(1).await), (1, 1), "the lobby's own");
    let alices = eventually(Duration::from_secs(3), || async { counts(&alice.room(ops).await) == (0, 0) });
    assert!(alices.await, "sending moved alice's marker past bob's message: {}", alice.room(ops).await);
    assert_eq!(counts(&bxb.room(ops).await), (6, 1));
    assert_eq!(counts(&b_b.room(ops).await), (6, 0), "b_b is not bxb");
    let mut again = Ws::open(&app.base, &bob.cookie).await;
    let rooms = again.until("rooms").await;
    let listed = rooms.as_array().unwrap().iter().find(|r| r["id"] == ops).unwrap().clone();
    assert_eq!(counts(&listed), (5, 2), "the greeting's rooms count the same");

    alice_ws.emit("delete message", json!({ "id": first })).await;
    alice_ws.until("message deleted").await;
    assert_eq!(counts(&bob.room(ops).await), (4, 1), "a deleted message is not unread");
    bob_ws.emit("read", json!(last)).await;
    assert!(eventually(Duration::from_secs(3), || async { counts(&bob.room(ops).await) == (0, 0) }).await);
}

#[tokio::test]
async fn a_first_release_client_keeps_working_in_the_lobby() {
    let app = spawn_app().await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let ops = alice.make_room("ops", "private", &["bob"]).await;
    let mut modern = alice.socket().await;
    say(&mut modern, ops, "in ops").await;
    let old_lobby = say(&mut modern, 1, "in the lobby").await;

    // An old client: it knows `user count`, `online users`, `read marker`,
    // `chat history` and `chat message`, sends plain strings, bare typing
    // and plain read ids, and skips events it does not know.
    let mut old = Ws::open(&app.base, &bob.cookie).await;
    assert!(old.until("user count").await.is_u64());
    assert_eq!(old.until("online users").await, json!(["alice", "bob"]));
    assert_eq!(old.until("read marker").await["lastRead"], 0);
    let history = old.until("chat history").await;
    let history: Vec<(i64, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_i64().unwrap(), m["message"].as_str().unwrap()))
        .collect();
    assert_eq!(history, vec![(old_lobby, "in the lobby")], "the lobby's history, as before");

    old.chat("plain text").await;
    let sent = old.until("chat message").await;
    for field in ["id", "username", "message", "sentAt", "mentions", "editedAt"] {
        assert!(sent.get(field).is_some(), "{field}: {sent}");
    }
    assert_eq!(
        (&sent["message"], &sent["room"], &sent["username"]),
        (&json!("plain text"), &json!(1), &json!("bob"))
    );
    let got = until_text(&mut modern, "plain text").await.pop().unwrap().1;
    assert_eq!(got["room"], 1, "a plain string goes to the lobby");
    old.emit("typing", Value::Null).await;
    assert_eq!(modern.until("typing").await, json!({"username": "bob", "room": 1}));
    old.send_text(json!({"event": "typing"}).to_string()).await;
    modern.chat("for the old one").await;
    let id = old.until("chat message").await["id"].as_i64().unwrap();
    old.emit("read", json!(id)).await;
    until_where(&mut old, |e, d| e == "read marker" && *d == json!({"lastRead": id, "room": 1})).await;
    let rest = old.drain(Duration::from_millis(300)).await;
    assert!(rest.iter().all(|(e, _)| e != "error"), "nothing it sent was refused: {rest:?}");
    assert!(eventually(Duration::from_secs(3), || async { bob.room(1).await["lastRead"] == id }).await);
}

#[tokio::test]
async fn a_socket_follows_its_users_membership_at_once() {
    let app = spawn_app_with(unlimited_chat).await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let town = alice.make_room("town", "open", &[]).await;
    let (mut alice_ws, mut bob_ws) = (alice.socket().await, bob.socket().await);
    for round in 0..3 {
        // Joined: the next message reaches him, and he may send.
        assert_eq!(bob.join(town).await, StatusCode::OK);
        let text = format!("in {round}");
        alice_ws.emit("chat message", json!({"room": town, "message": text})).await;
        let seen = until_text(&mut bob_ws, &text).await;
        let in_town = of_room(&seen, town);
        let mut events = names(&in_town);
        events.retain(|e| *e != "read marker");
        assert_eq!(events, ["room joined", "chat message"], "{seen:?}");
        say(&mut bob_ws, town, &format!("from bob {round}")).await;
        // Left: the next one does not, and he may not.
        assert_eq!(bob.leave(town).await, StatusCode::NO_CONTENT);
        alice_ws.emit("chat message", json!({"room": town, "message": format!("out {round}")})).await;
        bob_ws.emit("chat message", json!({"room": town, "message": "still here?"})).await;
        sentinel(&mut alice_ws, &format!("sentinel {round}")).await;
        let seen = until_text(&mut bob_ws, &format!("sentinel {round}")).await;
        // His own message moved his marker in the room: that may come now.
        let in_town = of_room(&seen, town);
        let mut events = names(&in_town);
        events.retain(|e| *e != "read marker");
        assert_eq!(events, ["room left"], "{seen:?}");
        assert!(seen.iter().any(|(e, d)| e == "error" && d["code"] == "not_found"), "{seen:?}");
    }
    assert_eq!(
        app.scalar(&format!("SELECT count(*) FROM messages WHERE room_id = {town} AND body = 'still here?'"))
            .await,
        0
    );
}

#[tokio::test]
async fn a_connect_that_races_a_membership_change_learns_of_it_once() {
    let app = spawn_app_with(unlimited_chat).await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let room = alice.make_room("race", "open", &[]).await;
    let mut alice_ws = alice.socket().await;
    for round in 0..15 {
        let connecting = {
            let (base, cookie) = (bob.base.clone(), bob.cookie.clone());
            tokio::spawn(async move {
                let mut ws = Ws::open(&base, &cookie).await;
                let rooms = ws.until("rooms").await;
                (ws, rooms)
            })
        };
        // Joined while he connects, with a message right behind it.
        assert_eq!(bob.join(room).await, StatusCode::OK);
        say(&mut alice_ws, 1, &format!("behind {round}")).await;
        let (mut ws, rooms) = connecting.await.unwrap();
        let listed = rooms.as_array().unwrap().iter().any(|r| r["id"] == room && r["member"] == true);
        let end = format!("end {round}");
        say(&mut alice_ws, 1, &end).await;
        let seen = until_text(&mut ws, &end).await;
        let told = seen.iter().filter(|(e, d)| e == "room joined" && d["id"] == room).count();
        assert_eq!(
            usize::from(listed) + told,
            1,
            "round {round}: in the greeting's rooms ({listed}) or told it joined ({told}), once: {seen:?}"
        );
        // And it is in the room, whichever way it learned.
        say(&mut alice_ws, room, &format!("to bob {round}")).await;
        until_text(&mut ws, &format!("to bob {round}")).await;
        assert_eq!(bob.leave(room).await, StatusCode::NO_CONTENT);
        drop(ws);
        // Gone from the node before the next round.
        let gone = eventually(Duration::from_secs(5), || async { app.realtime.connections_here() == 1 });
        assert!(gone.await);
    }
}

#[tokio::test]
async fn a_room_change_holds_for_the_users_sockets_by_the_time_it_is_answered() {
    let app = spawn_app_with(unlimited_chat).await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let town = alice.make_room("town", "open", &[]).await;
    let (mut alice_ws, mut bob_ws) = (alice.socket().await, bob.socket().await);
    for round in 0..3 {
        // Made: its creator writes to it at once.
        let made = alice.make_room(&format!("new{round}"), "private", &[]).await;
        say(&mut alice_ws, made, &format!("first in new{round}")).await;
        // Joined: he writes at once.
        assert_eq!(bob.join(town).await, StatusCode::OK);
        say(&mut bob_ws, town, &format!("joined {round}")).await;
        // Removed: refused at once, typing too.
        assert_eq!(alice.remove(town, "bob").await, StatusCode::NO_CONTENT);
        bob_ws.emit("typing", json!({ "room": town })).await;
        let refused = until_where(&mut bob_ws, |e, _| e == "error").await;
        assert_eq!(refused.last().unwrap().1["code"], "not_found", "{refused:?}");
    }
}

#[tokio::test]
async fn a_new_tab_is_greeted_with_the_markers_the_users_other_tabs_just_moved() {
    let app = spawn_app().await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let (mut alice_ws, mut bob_ws) = (alice.socket().await, bob.socket().await);
    let id = say(&mut bob_ws, 1, "read me").await;
    until_text(&mut alice_ws, "read me").await;
    alice_ws.emit("read", json!(id)).await;
    assert_eq!(alice_ws.until("read marker").await["lastRead"], id);
    // At once, within the second the markers gather before they are written.
    let mut second = Ws::open(&alice.base, &alice.cookie).await;
    let rooms = second.until("rooms").await;
    assert_eq!((&rooms[0]["lastRead"], &rooms[0]["unread"]), (&json!(id), &json!(0)), "{rooms}");
}
