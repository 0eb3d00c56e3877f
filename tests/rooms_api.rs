//! The rooms API route by route (`/api/rooms`, `/api/direct`,
//! `/api/messages` by room): what each answers, who may do what, the
//! limits, and bad input (415, 422, 401, cross-origin 403), on either engine.

mod common;

use common::{rooms::*, *};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The fields of the contract's `ROOM`, all of them and nothing else.
const ROOM_FIELDS: [&str; 12] = [
    "id", "name", "kind", "topic", "people", "members", "member", "level", "lastId", "lastRead", "unread",
    "mentions",
];

fn assert_room(room: &Value) {
    let mut keys: Vec<&str> =
        room.as_object().expect("a ROOM is an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = ROOM_FIELDS.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "{room}");
}

/// An error answer: the status, and `{"error": "…"}` in our words.
fn assert_error(answer: &(StatusCode, Value), status: StatusCode) {
    assert_eq!(answer.0, status, "{}", answer.1);
    let words = answer.1["error"].as_str().unwrap_or_else(|| panic!("{{\"error\"}}: {}", answer.1));
    assert!(!words.is_empty());
    for library in ["invalid type", "missing field", "at line", "expected", "serde", "Failed to"] {
        assert!(!words.contains(library), "our words, not a library's: {words}");
    }
}

#[tokio::test]
async fn the_list_has_the_lobby_then_the_users_rooms_then_the_open_rooms_to_join() {
    let app = spawn_app().await;
    let [alice, bob, _carol] = people(&app, ["alice", "bob", "carol"]).await;
    let zoo = alice.make_room("zoo", "open", &[]).await;
    let apes = alice.make_room("Apes", "open", &[]).await;
    let hidden = alice.make_room("hidden", "private", &["carol"]).await;
    let mine = bob.make_room("mine", "private", &[]).await;
    let direct = bob.direct(&["carol"]).await;
    assert_eq!(bob.join(zoo).await, StatusCode::OK);

    let list = bob.rooms().await;
    for room in &list {
        assert_room(room);
    }
    let ids: Vec<i64> = list.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![1, direct, mine, zoo, apes], "the lobby, bob's rooms, then open rooms he is not in");
    assert!(!ids.contains(&hidden), "another's private room is not listed");
    let member: Vec<bool> = list.iter().map(|r| r["member"].as_bool().unwrap()).collect();
    assert_eq!(member, [true, true, true, true, false]);

    let lobby = &list[0];
    assert_eq!(
        [
            &lobby["name"],
            &lobby["kind"],
            &lobby["topic"],
            &lobby["people"],
            &lobby["members"],
            &lobby["level"]
        ],
        [&json!("lobby"), &json!("open"), &json!(""), &Value::Null, &json!(3), &json!("mentions")],
        "the lobby: open, everyone's"
    );
    let dm = &list[1];
    assert_eq!(
        (&dm["name"], &dm["people"], &dm["kind"]),
        (&Value::Null, &json!(["carol"]), &json!("direct"))
    );
    let apes_seen = &list[4];
    assert_eq!(
        (&apes_seen["name"], &apes_seen["people"], &apes_seen["members"]),
        (&json!("Apes"), &Value::Null, &json!(1))
    );
    assert_eq!(apes_seen["lastRead"], 0);
}

#[tokio::test]
async fn making_a_room_checks_its_name_kind_topic_and_people_and_makes_nothing_half() {
    let app = spawn_app().await;
    let [alice, _bob, _carol] = people(&app, ["alice", "bob", "carol"]).await;
    let (status, room) = alice
        .post("/api/rooms", json!({"name": "Team_2-b", "kind": "private", "topic": "  plans  ", "people": ["BOB", "carol", "bob"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_room(&room);
    assert_eq!(
        [
            &room["name"],
            &room["kind"],
            &room["topic"],
            &room["members"],
            &room["member"],
            &room["level"],
            &room["lastId"],
            &room["unread"]
        ],
        [
            &json!("Team_2-b"),
            &json!("private"),
            &json!("plans"),
            &json!(3),
            &json!(true),
            &json!("all"),
            &json!(0),
            &json!(0)
        ]
    );
    let id = room["id"].as_i64().unwrap();
    let (_, members) = alice.get(&format!("/api/rooms/{id}/members")).await;
    let names: Vec<&str> =
        members["members"].as_array().unwrap().iter().map(|m| m["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let open = alice.post("/api/rooms", json!({"name": "public", "kind": "open", "people": ["bob"]})).await;
    assert_eq!(open.0, StatusCode::CREATED);
    assert_eq!(open.1["members"], 1, "an open room's people join by themselves");
    assert_eq!(open.1["level"], "mentions");

    let rooms_before = app.scalar("SELECT count(*) FROM rooms").await;
    let long_topic = "t".repeat(201);
    for (body, status) in [
        (json!({"name": "", "kind": "open"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"kind": "open"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": "a".repeat(33), "kind": "open"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": "two words", "kind": "open"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": "café", "kind": "open"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": "ok", "kind": "direct"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": "ok", "kind": "secret"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": "ok"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": "ok", "kind": "open", "topic": long_topic}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": "ok", "kind": "open", "topic": "\u{202e}"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": 7, "kind": "open"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": "ok", "kind": "private", "people": "bob"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"name": "ok", "kind": "private", "people": ["not a name!"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"name": "ok", "kind": "private", "people": ["bob", "nobody"]}), StatusCode::NOT_FOUND),
        (json!({"name": "team_2-B", "kind": "open"}), StatusCode::CONFLICT),
        (json!({"name": "PUBLIC", "kind": "private"}), StatusCode::CONFLICT),
        (json!({"name": "Lobby", "kind": "open"}), StatusCode::CONFLICT),
    ] {
        let answer = alice.post("/api/rooms", body.clone()).await;
        assert_error(&answer, status);
        assert!(answer.0 != StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM rooms").await, rooms_before, "nothing half-made");
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.username = 'bob'"
        )
        .await,
        1,
        "bob was not added to a room that was refused"
    );
    let (status, topic) =
        alice.post("/api/rooms", json!({"name": "t200", "kind": "open", "topic": "é".repeat(200)})).await;
    assert_eq!(status, StatusCode::CREATED, "200 characters is a topic: {topic}");
}

#[tokio::test]
async fn names_are_unique_without_regard_to_case_until_the_room_is_archived() {
    let app = spawn_app().await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let first = alice.make_room("Study", "open", &[]).await;
    assert_error(
        &bob.post("/api/rooms", json!({"name": "study", "kind": "private"})).await,
        StatusCode::CONFLICT,
    );
    let other = bob.make_room("notes", "private", &[]).await;
    assert_error(
        &bob.patch(&format!("/api/rooms/{other}"), json!({"name": "STUDY"})).await,
        StatusCode::CONFLICT,
    );
    assert_eq!(bob.room(other).await["name"], "notes", "a refused rename changes nothing");
    assert_eq!(alice.archive(first).await, StatusCode::NO_CONTENT);
    let again = bob.make_room("study", "open", &[]).await;
    assert_ne!(again, first, "the name is free once the room is archived");
    let (status, renamed) = alice.post("/api/rooms", json!({"name": "old", "kind": "open"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let old = renamed["id"].as_i64().unwrap();
    assert_eq!(alice.archive(old).await, StatusCode::NO_CONTENT);
    let (status, room) = bob.patch(&format!("/api/rooms/{other}"), json!({"name": "old"})).await;
    assert_eq!(
        (status, room["name"].clone()),
        (StatusCode::OK, json!("old")),
        "renaming to an archived room's name"
    );
}

#[tokio::test]
async fn a_room_is_seen_as_this_user_sees_it_and_a_bad_id_is_one_never_used() {
    let app = spawn_app().await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let id = alice.make_room("town", "open", &[]).await;
    let mine = alice.room(id).await;
    assert_room(&mine);
    assert_eq!(
        (&mine["member"], &mine["level"], &mine["members"]),
        (&json!(true), &json!("mentions"), &json!(1))
    );
    let theirs = bob.room(id).await;
    assert_eq!(
        (&theirs["member"], &theirs["members"], &theirs["unread"]),
        (&json!(false), &json!(1), &json!(0))
    );
    assert_eq!(bob.room(1).await["name"], "lobby");
    let never = bob.get("/api/rooms/999999").await;
    assert_error(&never, StatusCode::NOT_FOUND);
    for bad in ["0", "-1", "abc", "1.5", "99999999999999999999999", "%20"] {
        for path in [format!("/api/rooms/{bad}"), format!("/api/rooms/{bad}/members")] {
            assert_eq!(bob.get(&path).await, never, "{path}");
        }
        assert_eq!(bob.post(&format!("/api/rooms/{bad}/join"), json!({})).await, never, "join {bad}");
    }
}

#[tokio::test]
async fn the_creator_or_an_admin_renames_a_room_and_changes_its_topic() {
    let app = spawn_app().await;
    let root = Person::new(&app, "root").await; // the first account: an admin
    let [alice, bob, carol] = people(&app, ["alice", "bob", "carol"]).await;
    let open = alice.make_room("town", "open", &[]).await;
    let private = alice.make_room("ops", "private", &["bob"]).await;
    assert_eq!(bob.join(open).await, StatusCode::OK);

    let (status, room) =
        alice.patch(&format!("/api/rooms/{open}"), json!({"name": "city", "topic": "big"})).await;
    assert_eq!(status, StatusCode::OK, "{room}");
    assert_room(&room);
    assert_eq!((&room["name"], &room["topic"]), (&json!("city"), &json!("big")));
    let (status, room) = alice.patch(&format!("/api/rooms/{open}"), json!({"topic": ""})).await;
    assert_eq!(
        (status, room["name"].clone(), room["topic"].clone()),
        (StatusCode::OK, json!("city"), json!(""))
    );
    let (status, room) = root.patch(&format!("/api/rooms/{open}"), json!({"name": "town"})).await;
    assert_eq!(
        (status, room["name"].clone()),
        (StatusCode::OK, json!("town")),
        "an admin, not even a member"
    );
    assert_eq!(room["member"], false);
    let hidden = root.patch(&format!("/api/rooms/{private}"), json!({"name": "ops2"})).await;
    let unused = root.patch("/api/rooms/999999", json!({"name": "ops2"})).await;
    assert_eq!(hidden, unused, "a private room is hidden from admins too");
    assert_eq!(alice.add(private, "root").await, StatusCode::NO_CONTENT);
    let (status, room) = root.patch(&format!("/api/rooms/{private}"), json!({"name": "ops2"})).await;
    assert_eq!(
        (status, room["name"].clone()),
        (StatusCode::OK, json!("ops2")),
        "an admin in it, not its creator"
    );

    assert_error(
        &bob.patch(&format!("/api/rooms/{open}"), json!({"topic": "mine"})).await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &carol.patch(&format!("/api/rooms/{open}"), json!({"topic": "mine"})).await,
        StatusCode::FORBIDDEN,
    );
    assert_error(
        &bob.patch(&format!("/api/rooms/{private}"), json!({"topic": "mine"})).await,
        StatusCode::FORBIDDEN,
    );
    let hidden = carol.patch(&format!("/api/rooms/{private}"), json!({"topic": "mine"})).await;
    assert_eq!(hidden, carol.patch("/api/rooms/999999", json!({"topic": "mine"})).await);
    assert_error(&hidden, StatusCode::NOT_FOUND);

    for body in [
        json!({}),
        json!({"name": "no spaces please"}),
        json!({"topic": "x".repeat(201)}),
        json!({"name": null, "topic": 5}),
    ] {
        assert_error(
            &alice.patch(&format!("/api/rooms/{open}"), body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    for who in [&root, &alice] {
        assert_error(&who.patch("/api/rooms/1", json!({"name": "hall"})).await, StatusCode::CONFLICT);
    }
    assert_eq!(alice.room(1).await["name"], "lobby");
    let direct = alice.direct(&["bob"]).await;
    assert_error(
        &alice.patch(&format!("/api/rooms/{direct}"), json!({"name": "us"})).await,
        StatusCode::CONFLICT,
    );
    let town = alice.room(open).await;
    assert_eq!(
        (&town["name"], &town["topic"]),
        (&json!("town"), &json!("")),
        "nothing refused changed anything"
    );
}

#[tokio::test]
async fn the_creator_or_an_admin_archives_a_room_and_the_lobby_and_direct_rooms_refuse() {
    let app = spawn_app().await;
    let root = Person::new(&app, "root").await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let open = alice.make_room("town", "open", &[]).await;
    let private = alice.make_room("ops", "private", &["bob"]).await;
    let unseen = alice.make_room("unseen", "private", &[]).await;
    assert_eq!(bob.join(open).await, StatusCode::OK);

    assert_error(&bob.delete(&format!("/api/rooms/{open}")).await, StatusCode::FORBIDDEN);
    assert_error(&bob.delete(&format!("/api/rooms/{private}")).await, StatusCode::FORBIDDEN);
    assert_eq!(alice.archive(open).await, StatusCode::NO_CONTENT, "its creator");
    assert_eq!(root.archive(private).await, StatusCode::NO_CONTENT, "an admin who is not in it");
    assert_eq!(root.archive(unseen).await, StatusCode::NO_CONTENT, "an admin archives any room");
    for id in [open, private, unseen] {
        assert_eq!(alice.get(&format!("/api/rooms/{id}")).await, alice.get("/api/rooms/999999").await);
        assert_eq!(root.archive(id).await, StatusCode::NOT_FOUND, "archived once");
    }
    assert!(alice.room_ids().await == vec![1], "gone from every list");
    for who in [&root, &alice] {
        assert_error(&who.delete("/api/rooms/1").await, StatusCode::CONFLICT);
    }
    let direct = alice.direct(&["bob"]).await;
    for who in [&root, &alice] {
        assert_error(&who.delete(&format!("/api/rooms/{direct}")).await, StatusCode::CONFLICT);
    }
    assert_eq!(alice.room(direct).await["kind"], "direct");
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) FROM rooms WHERE id IN ({open}, {private}, {unseen}) AND archived_at IS NOT NULL"
        ))
        .await,
        3,
        "archived rooms stay in the database"
    );
}

#[tokio::test]
async fn an_open_room_is_joined_and_left_and_the_lobby_and_direct_rooms_refuse_leaving() {
    let app = spawn_app().await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let open = alice.make_room("town", "open", &[]).await;
    let private = alice.make_room("ops", "private", &[]).await;
    let mut alice_ws = alice.socket().await;
    for text in ["one", "two", "three"] {
        say(&mut alice_ws, open, text).await;
    }
    let newest = say(&mut alice_ws, open, "four").await;

    let (status, room) = bob.post(&format!("/api/rooms/{open}/join"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_room(&room);
    assert_eq!(
        (&room["member"], &room["members"], &room["lastId"], &room["lastRead"], &room["unread"]),
        (&json!(true), &json!(2), &json!(newest), &json!(newest), &json!(0)),
        "joining starts the marker at the newest message: nothing unread"
    );
    assert_eq!(
        bob.post(&format!("/api/rooms/{open}/join"), json!({})).await.0,
        StatusCode::OK,
        "again: nothing to do"
    );
    assert_eq!(bob.room(open).await["members"], 2);
    assert_eq!(
        bob.post("/api/rooms/1/join", json!({})).await.0,
        StatusCode::OK,
        "the lobby: a member already"
    );
    assert_error(&bob.post(&format!("/api/rooms/{private}/join"), json!({})).await, StatusCode::NOT_FOUND);

    assert_eq!(bob.leave(open).await, StatusCode::NO_CONTENT);
    assert_eq!(bob.room(open).await["member"], false);
    assert_eq!(bob.leave(open).await, StatusCode::NO_CONTENT, "leaving again changes nothing");
    assert_error(&bob.post("/api/rooms/1/leave", json!({})).await, StatusCode::CONFLICT);
    let direct = bob.direct(&["alice"]).await;
    assert_error(&bob.post(&format!("/api/rooms/{direct}/leave"), json!({})).await, StatusCode::CONFLICT);
    let (status, room) = bob.post(&format!("/api/rooms/{direct}/join"), json!({})).await;
    assert_eq!((status, room["kind"].clone()), (StatusCode::OK, json!("direct")), "a member: nothing to do");
    assert_eq!(bob.room(direct).await["members"], 2);
}

#[tokio::test]
async fn members_are_listed_sorted_without_regard_to_case_with_who_is_online() {
    let app = spawn_app().await;
    let [zed, alice, bob] = people(&app, ["zed", "Alice", "bob"]).await;
    let id = zed.make_room("ops", "private", &["bob", "Alice"]).await;
    let _bob_ws = bob.socket().await;
    let online = |names: &[(&str, bool)]| json!({"members": names.iter().map(|(n, o)| json!({"username": n, "online": o})).collect::<Vec<_>>()});
    let want = online(&[("Alice", false), ("bob", true), ("zed", false)]);
    assert!(
        eventually(std::time::Duration::from_secs(2), || async {
            alice.get(&format!("/api/rooms/{id}/members")).await == (StatusCode::OK, want.clone())
        })
        .await,
        "{:?}",
        alice.get(&format!("/api/rooms/{id}/members")).await
    );
    let (status, lobby) = zed.get("/api/rooms/1/members").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> =
        lobby["members"].as_array().unwrap().iter().map(|m| m["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["Alice", "bob", "zed"], "the lobby's members: everyone");
}

#[tokio::test]
async fn a_member_adds_people_to_a_private_room_and_nowhere_else() {
    let app = spawn_app().await;
    let [alice, bob, carol, dave] = people(&app, ["alice", "bob", "carol", "dave"]).await;
    let id = alice.make_room("ops", "private", &["bob"]).await;
    assert_eq!(bob.add(id, "CAROL").await, StatusCode::NO_CONTENT, "any member adds, a name in any case");
    assert_eq!(carol.room(id).await["member"], true);
    assert_eq!(carol.add(id, "bob").await, StatusCode::NO_CONTENT, "already a member: 204");
    assert_eq!(alice.room(id).await["members"], 3);
    let path = format!("/api/rooms/{id}/members");
    assert_error(&alice.post(&path, json!({"username": "nobody"})).await, StatusCode::NOT_FOUND);
    assert_error(&alice.post(&path, json!({"username": "no way!"})).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&alice.post(&path, json!({})).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&alice.post(&path, json!({"username": ["bob"]})).await, StatusCode::UNPROCESSABLE_ENTITY);
    let hidden = dave.post(&path, json!({"username": "dave"})).await;
    assert_eq!(hidden, dave.post("/api/rooms/999999/members", json!({"username": "dave"})).await);
    assert_error(&hidden, StatusCode::NOT_FOUND);

    let open = alice.make_room("town", "open", &[]).await;
    let direct = alice.direct(&["bob"]).await;
    for room in [open, direct, 1] {
        assert_error(
            &alice.post(&format!("/api/rooms/{room}/members"), json!({"username": "dave"})).await,
            StatusCode::CONFLICT,
        );
    }
    assert_eq!(dave.room_ids().await, vec![1, open], "dave was added nowhere");
    assert_eq!(alice.room(direct).await["members"], 2);
}

#[tokio::test]
async fn the_creator_or_an_admin_removes_members_and_anyone_removes_themselves() {
    let app = spawn_app().await;
    let root = Person::new(&app, "root").await;
    let [alice, bob, _carol, _dave] = people(&app, ["alice", "bob", "carol", "dave"]).await;
    let id = alice.make_room("ops", "private", &["bob", "carol", "dave"]).await;
    assert_error(&bob.delete(&format!("/api/rooms/{id}/members/carol")).await, StatusCode::FORBIDDEN);
    assert_eq!(alice.remove(id, "Carol").await, StatusCode::NO_CONTENT, "by its creator");
    let hidden = root.delete(&format!("/api/rooms/{id}/members/dave")).await;
    let unused = root.delete("/api/rooms/999999/members/dave").await;
    assert_eq!(hidden, unused, "a private room is hidden from admins too");
    assert_eq!(alice.add(id, "root").await, StatusCode::NO_CONTENT);
    assert_eq!(root.remove(id, "dave").await, StatusCode::NO_CONTENT, "by an admin, not its creator");
    assert_eq!(bob.remove(id, "bob").await, StatusCode::NO_CONTENT, "oneself: the same as leaving");
    assert_eq!(alice.room(id).await["members"], 2);
    for who in ["bob", "nobody", "not a name"] {
        let answer = alice.delete(&format!("/api/rooms/{id}/members/{who}")).await;
        assert_error(&answer, StatusCode::NOT_FOUND);
    }

    let open = alice.make_room("town", "open", &[]).await;
    assert_eq!(bob.join(open).await, StatusCode::OK);
    assert_eq!(alice.remove(open, "bob").await, StatusCode::NO_CONTENT);
    assert_eq!(bob.room(open).await["member"], false);
    assert_eq!(bob.join(open).await, StatusCode::OK);
    assert_eq!(root.remove(open, "bob").await, StatusCode::NO_CONTENT, "by an admin, not even a member");
    assert_eq!(bob.room(open).await["member"], false);
    assert_eq!(bob.join(open).await, StatusCode::OK, "from an open room one may join again");
    let direct = alice.direct(&["bob"]).await;
    for (room, who) in [(1, "bob"), (1, "alice"), (direct, "bob"), (direct, "alice")] {
        assert_error(&alice.delete(&format!("/api/rooms/{room}/members/{who}")).await, StatusCode::CONFLICT);
    }
    assert_error(&root.delete("/api/rooms/1/members/bob").await, StatusCode::CONFLICT);
    let hidden = root.delete(&format!("/api/rooms/{direct}/members/bob")).await;
    assert_eq!(hidden, root.delete("/api/rooms/999999/members/bob").await, "not his direct room: none");
    assert_eq!(bob.room(direct).await["members"], 2);
}

#[tokio::test]
async fn a_direct_room_is_for_two_to_eight_people_and_the_same_people_find_it_again() {
    let app = spawn_app().await;
    let root = Person::new(&app, "root").await;
    let alice = Person::new(&app, "alice").await;
    let mut people = Vec::new();
    for n in 0..8 {
        people.push(Person::new(&app, &format!("user{n}")).await);
    }
    let names: Vec<&str> = people.iter().map(|p| p.name.as_str()).collect();

    let (status, room) = alice.post("/api/direct", json!({"people": ["user1", "user0"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_room(&room);
    assert_eq!(
        (&room["kind"], &room["name"], &room["people"], &room["members"], &room["level"]),
        (&json!("direct"), &Value::Null, &json!(["user0", "user1"]), &json!(3), &json!("all"))
    );
    let id = room["id"].as_i64().unwrap();
    let (status, again) =
        people[1].post("/api/direct", json!({"people": ["ALICE", "user0", "alice", "user1"]})).await;
    assert_eq!(
        (status, again["id"].clone()),
        (StatusCode::OK, json!(id)),
        "the same set, asked by another, in any order and case"
    );
    assert_eq!(again["people"], json!(["alice", "user0"]), "named after the others");
    assert_ne!(alice.direct(&["user0"]).await, id, "another set, another room");

    let (status, seven) = alice.post("/api/direct", json!({ "people": names[..7] })).await;
    assert_eq!((status, seven["members"].clone()), (StatusCode::CREATED, json!(8)), "eight people in all");
    let rooms_before = app.scalar("SELECT count(*) FROM rooms").await;
    for body in [
        json!({ "people": names }),
        json!({"people": []}),
        json!({"people": ["alice"]}),
        json!({}),
        json!({"people": "user0"}),
        json!({"people": ["not a name"]}),
    ] {
        assert_error(&alice.post("/api/direct", body).await, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_error(
        &alice.post("/api/direct", json!({"people": ["user0", "nobody"]})).await,
        StatusCode::NOT_FOUND,
    );
    let user7 = app.scalar("SELECT id FROM users WHERE username = 'user7'").await.to_string();
    let res =
        root.http.post(root.url("/admin/users/ban")).form(&[("user", user7.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_error(&alice.post("/api/direct", json!({"people": ["user7"]})).await, StatusCode::NOT_FOUND);
    assert_eq!(app.scalar("SELECT count(*) FROM rooms").await, rooms_before, "nothing half-made");

    // Nobody joins, is added, leaves, renames or archives it.
    assert_error(
        &alice.post(&format!("/api/rooms/{id}/members"), json!({"username": "user5"})).await,
        StatusCode::CONFLICT,
    );
    assert_error(&alice.post(&format!("/api/rooms/{id}/leave"), json!({})).await, StatusCode::CONFLICT);
    assert_error(
        &alice.patch(&format!("/api/rooms/{id}"), json!({"name": "us"})).await,
        StatusCode::CONFLICT,
    );
    assert_error(&alice.delete(&format!("/api/rooms/{id}")).await, StatusCode::CONFLICT);
    assert_error(&people[5].post(&format!("/api/rooms/{id}/join"), json!({})).await, StatusCode::NOT_FOUND);
    assert_eq!(alice.room(id).await["members"], 3);
}

#[tokio::test]
async fn levels_start_at_the_contracts_defaults_and_are_each_members_own() {
    let app = spawn_app().await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let open = alice.make_room("town", "open", &[]).await;
    let private = alice.make_room("ops", "private", &["bob"]).await;
    let direct = alice.direct(&["bob"]).await;
    assert_eq!(bob.join(open).await, StatusCode::OK);
    for (room, level) in [(1, "mentions"), (open, "mentions"), (private, "all"), (direct, "all")] {
        assert_eq!(bob.room(room).await["level"], level, "room {room}");
    }
    for (room, level) in [(1, "nothing"), (open, "all"), (private, "mentions"), (direct, "nothing")] {
        let (status, body) = bob.put(&format!("/api/rooms/{room}/level"), json!({ "level": level })).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_eq!(bob.room(room).await["level"], level);
        assert_ne!(alice.room(room).await["level"], level, "alice's level is her own");
    }
    let listed: Vec<Value> = bob.rooms().await.iter().map(|r| r["level"].clone()).collect();
    assert_eq!(listed.len(), 4);
    for body in [json!({"level": "loud"}), json!({"level": "ALL"}), json!({}), json!({"level": 1})] {
        assert_error(
            &bob.put(&format!("/api/rooms/{open}/level"), body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    assert_eq!(bob.room(open).await["level"], "all");
    let hidden = alice.make_room("unseen", "private", &[]).await;
    let answer = bob.put(&format!("/api/rooms/{hidden}/level"), json!({"level": "all"})).await;
    assert_eq!(answer, bob.put("/api/rooms/999999/level", json!({"level": "all"})).await);
    assert_error(&answer, StatusCode::NOT_FOUND);
}

/// Every route that takes a body, with a good body for `room`.
fn routes_with_bodies(room: i64) -> Vec<(Method, String, Value)> {
    vec![
        (Method::POST, "/api/rooms".to_owned(), json!({"name": "fresh", "kind": "open"})),
        (Method::PATCH, format!("/api/rooms/{room}"), json!({"topic": "new"})),
        (Method::POST, format!("/api/rooms/{room}/members"), json!({"username": "bob"})),
        (Method::PUT, format!("/api/rooms/{room}/level"), json!({"level": "all"})),
        (Method::POST, "/api/direct".to_owned(), json!({"people": ["bob"]})),
    ]
}

/// Every route, with a body where it takes one.
fn every_route_of(room: i64) -> Vec<(Method, String, Option<Value>)> {
    let mut routes: Vec<(Method, String, Option<Value>)> =
        routes_with_bodies(room).into_iter().map(|(m, p, b)| (m, p, Some(b))).collect();
    routes.extend([
        (Method::GET, "/api/rooms".to_owned(), None),
        (Method::GET, format!("/api/rooms/{room}"), None),
        (Method::GET, format!("/api/rooms/{room}/members"), None),
        (Method::GET, format!("/api/messages?room={room}"), None),
        (Method::POST, format!("/api/rooms/{room}/join"), None),
        (Method::POST, format!("/api/rooms/{room}/leave"), None),
        (Method::DELETE, format!("/api/rooms/{room}/members/bob"), None),
        (Method::DELETE, format!("/api/rooms/{room}"), None),
    ]);
    routes
}

#[tokio::test]
async fn bodies_are_json_or_415_and_malformed_or_misshapen_ones_are_400_and_422() {
    let app = spawn_app().await;
    let [alice, _bob] = people(&app, ["alice", "bob"]).await;
    let room = alice.make_room("ops", "private", &[]).await;
    for (method, path, body) in routes_with_bodies(room) {
        for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
            let mut request = alice.http.request(method.clone(), alice.url(&path)).body(body.to_string());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let answer = answer(request.send().await.unwrap()).await;
            assert_error(&answer, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
        let broken = alice
            .http
            .request(method.clone(), alice.url(&path))
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .unwrap();
        assert_error(&answer(broken).await, StatusCode::BAD_REQUEST);
        for shape in [json!([1, 2]), json!("text"), json!(null), json!(42)] {
            let answer = alice.call(method.clone(), &path, Some(shape.clone())).await;
            assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
    assert_eq!(alice.room_ids().await, vec![1, room], "nothing was made");
    assert_eq!(alice.room(room).await["topic"], "");
}

#[tokio::test]
async fn not_logged_in_every_route_is_401() {
    let app = spawn_app().await;
    let alice = Person::new(&app, "alice").await;
    let room = alice.make_room("town", "open", &[]).await;
    let stranger = Person { http: app.bare_client(), cookie: String::new(), ..alice.clone() };
    for (method, path, body) in every_route_of(room) {
        let answer = stranger.call(method.clone(), &path, body).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED);
    }
    // A session that ended is no session.
    let res = alice.http.post(alice.url("/logout")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for (method, path, body) in every_route_of(room) {
        assert_error(&alice.call(method.clone(), &path, body).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn cross_origin_requests_change_nothing() {
    let app = spawn_app().await;
    let [alice, _bob] = people(&app, ["alice", "bob"]).await;
    let room = alice.make_room("ops", "private", &[]).await;
    let town = alice.make_room("town", "open", &[]).await;
    let mut changes: Vec<(Method, String, Option<Value>)> =
        every_route_of(room).into_iter().filter(|(m, _, _)| *m != Method::GET).collect();
    changes.push((Method::POST, format!("/api/rooms/{town}/leave"), None));
    for headers in [[("sec-fetch-site", "cross-site")], [("origin", "http://evil.example")]] {
        for (method, path, body) in &changes {
            let mut request = alice.http.request(method.clone(), alice.url(path));
            if let Some(body) = body {
                request = request.json(body);
            }
            for (k, v) in headers {
                request = request.header(k, v);
            }
            let status = request.send().await.unwrap().status();
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} {headers:?}");
        }
    }
    assert_eq!(alice.room_ids().await, vec![1, room, town], "nothing made, left or archived");
    let ops = alice.room(room).await;
    assert_eq!((&ops["topic"], &ops["members"], &ops["level"]), (&json!(""), &json!(1), &json!("all")));
    // Our own pages pass.
    let same = alice
        .http
        .post(alice.url(&format!("/api/rooms/{room}/members")))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"username": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn ten_rooms_a_minute_then_429_with_retry_after_and_refused_attempts_do_not_count() {
    let app = spawn_app().await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    alice.make_room("taken", "open", &[]).await;
    for n in 1..10 {
        // Refused attempts in between: a bad name, a taken one, an unknown person.
        assert_eq!(
            alice.post("/api/rooms", json!({"name": "bad name", "kind": "open"})).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            alice.post("/api/rooms", json!({"name": "TAKEN", "kind": "open"})).await.0,
            StatusCode::CONFLICT
        );
        let unknown = alice
            .post("/api/rooms", json!({"name": format!("x{n}"), "kind": "private", "people": ["nobody"]}))
            .await;
        assert_eq!(unknown.0, StatusCode::NOT_FOUND);
        alice.make_room(&format!("room{n}"), if n % 2 == 0 { "open" } else { "private" }, &[]).await;
    }
    let res = alice
        .http
        .post(alice.url("/api/rooms"))
        .json(&json!({"name": "eleventh", "kind": "open"}))
        .send()
        .await
        .unwrap();
    let retry: u64 =
        res.headers().get("retry-after").expect("429 carries Retry-After").to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_error(&answer(res).await, StatusCode::TOO_MANY_REQUESTS);
    assert!(!alice.rooms().await.iter().any(|r| r["name"] == "eleventh"));
    let again = alice.post("/api/rooms", json!({"name": "twelfth", "kind": "private"})).await;
    assert_eq!(again.0, StatusCode::TOO_MANY_REQUESTS);
    // Others, and direct rooms, are not held back.
    bob.make_room("bobs", "open", &[]).await;
    assert_eq!(alice.post("/api/direct", json!({"people": ["bob"]})).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn a_user_is_in_at_most_max_rooms_per_user_and_the_lobby_does_not_count() {
    let app = spawn_app_with(|c| c.max_rooms_per_user = 2).await;
    let [alice, bob, carol] = people(&app, ["alice", "bob", "carol"]).await;
    let first = alice.make_room("one", "open", &[]).await;
    let second = alice.make_room("two", "private", &[]).await;
    let full = alice.post("/api/rooms", json!({"name": "three", "kind": "open"})).await;
    assert_error(&full, StatusCode::CONFLICT);
    let town = bob.make_room("town", "open", &[]).await;
    let ops = bob.make_room("ops", "private", &[]).await;
    assert_error(&alice.post(&format!("/api/rooms/{town}/join"), json!({})).await, StatusCode::CONFLICT);
    let added = bob.post(&format!("/api/rooms/{ops}/members"), json!({"username": "alice"})).await;
    assert_error(&added, StatusCode::CONFLICT);
    assert!(added.1["error"].as_str().unwrap().contains("alice"), "names who is full: {}", added.1);
    assert_error(&carol.post("/api/direct", json!({"people": ["alice"]})).await, StatusCode::CONFLICT);
    assert_error(
        &carol.post("/api/rooms", json!({"name": "three", "kind": "private", "people": ["alice"]})).await,
        StatusCode::CONFLICT,
    );
    assert_eq!(alice.room_ids().await, vec![1, first, second, town], "in none of them");

    // Leaving one, or its archive, makes room.
    assert_eq!(alice.leave(first).await, StatusCode::NO_CONTENT);
    assert_eq!(alice.join(town).await, StatusCode::OK);
    assert_eq!(alice.archive(second).await, StatusCode::NO_CONTENT);
    assert_eq!(bob.add(ops, "alice").await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn with_room_creation_admins_only_admins_make_rooms() {
    let app = spawn_app_with(|c| c.room_creation = lobby::config::RoomCreation::Admins).await;
    let [root, alice] = people(&app, ["root", "alice"]).await;
    for kind in ["open", "private"] {
        assert_error(
            &alice.post("/api/rooms", json!({"name": "mine", "kind": kind})).await,
            StatusCode::FORBIDDEN,
        );
    }
    let town = root.make_room("town", "open", &[]).await;
    assert_eq!(alice.join(town).await, StatusCode::OK, "members join");
    assert_eq!(
        alice.post("/api/direct", json!({"people": ["root"]})).await.0,
        StatusCode::CREATED,
        "and write to one another"
    );
    assert_eq!(alice.room_ids().await.len(), 3);
}

#[tokio::test]
async fn scrollback_reads_one_room_before_and_around_a_message() {
    let app = spawn_app_with(|c| {
        c.live.chat_burst = 1_000;
        c.live.chat_rate = 1_000.0;
    })
    .await;
    let [alice, bob] = people(&app, ["alice", "bob"]).await;
    let town = alice.make_room("town", "open", &[]).await;
    let ops = alice.make_room("ops", "private", &[]).await;
    let mut ws = alice.socket().await;
    let (mut in_town, mut in_lobby) = (Vec::new(), Vec::new());
    for n in 0..12 {
        in_town.push(say(&mut ws, town, &format!("t{n}")).await);
        in_lobby.push(say(&mut ws, 1, &format!("l{n}")).await);
        say(&mut ws, ops, &format!("o{n}")).await;
    }
    let (status, page) = bob.get(&format!("/api/messages?room={town}&limit=5")).await;
    assert_eq!(status, StatusCode::OK, "an open room is read before joining it");
    let ids: Vec<i64> =
        page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!((ids, page["more"].clone()), (in_town[7..].to_vec(), json!(true)));
    assert!(page["messages"].as_array().unwrap().iter().all(|m| m["room"] == town));
    assert_eq!(
        bob.scrollback(&format!("room={town}&before={}&limit=100", in_town[3])).await,
        (StatusCode::OK, in_town[..3].to_vec())
    );
    assert_eq!(
        bob.scrollback("limit=3").await,
        (StatusCode::OK, in_lobby[9..].to_vec()),
        "without room: the lobby"
    );
    assert_eq!(bob.scrollback(&format!("room=1&before={}", in_lobby[1])).await.1, in_lobby[..1].to_vec());

    let (status, around) = bob.get(&format!("/api/messages?room={town}&around={}&limit=4", in_town[5])).await;
    assert_eq!(status, StatusCode::OK, "{around}");
    let ids: Vec<i64> =
        around["messages"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert!(ids.contains(&in_town[5]) && ids.len() == 4, "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
    assert!(ids.iter().all(|id| in_town.contains(id)), "that room's only");
    let (_, edge) = bob.get(&format!("/api/messages?room={town}&around={}&limit=4", in_town[11])).await;
    let ids: Vec<i64> =
        edge["messages"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, in_town[8..].to_vec(), "at the newest, the other side gives what it lacks");
    assert_eq!(edge["more"], true);
    let (_, first) = bob.get(&format!("/api/messages?room={town}&around={}&limit=10", in_town[0])).await;
    assert_eq!(first["more"], false);

    // A message of another room is no message of this one.
    for query in [format!("room={town}&around={}", in_lobby[5]), format!("around={}", in_town[5])] {
        let answer = bob.get(&format!("/api/messages?{query}")).await;
        assert_error(&answer, StatusCode::NOT_FOUND);
    }
    for query in
        ["room=abc", "room=0", "around=x", "room=1&around=3&before=4", "limit=0", "limit=101", "colour=red"]
    {
        assert_error(&bob.get(&format!("/api/messages?{query}")).await, StatusCode::BAD_REQUEST);
    }
}
