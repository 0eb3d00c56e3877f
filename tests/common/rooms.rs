//! Rooms from a user's side: the JSON API under `/api/rooms` and
//! `/api/direct` with one user's session, their sockets, and the checks
//! every rooms test makes (a room that must look exactly like an id never
//! used; a socket that must get nothing of a room).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    TestApp,
    ws::{Seen, Ws, connect},
};

/// One user: their name, session cookie, and a client that sends it, to one
/// node (`on` gives the same person on another).
#[derive(Clone)]
pub struct Person {
    pub name: String,
    pub cookie: String,
    pub http: reqwest::Client,
    pub base: String,
}

impl Person {
    /// Registers `name` on `app` (the first account registered is the admin).
    pub async fn new(app: &TestApp, name: &str) -> Person {
        let cookie = app.cookie(name).await;
        Person { name: name.to_owned(), http: app.client_with(&cookie), cookie, base: app.base.clone() }
    }

    /// The same person (same session), talking to another node.
    pub fn on(&self, node: &TestApp) -> Person {
        Person { base: node.base.clone(), ..self.clone() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with a JSON body (or none); the status and the JSON answer
    /// (`null` when the answer is empty or not JSON).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Makes a room (201 expected); its id.
    pub async fn make_room(&self, name: &str, kind: &str, people: &[&str]) -> i64 {
        let (status, room) =
            self.post("/api/rooms", json!({"name": name, "kind": kind, "people": people})).await;
        assert_eq!(status, StatusCode::CREATED, "{} makes {name}: {room}", self.name);
        room["id"].as_i64().unwrap()
    }

    /// The direct room with `people` (made or found); its id.
    pub async fn direct(&self, people: &[&str]) -> i64 {
        let (status, room) = self.post("/api/direct", json!({ "people": people })).await;
        assert!(status == StatusCode::CREATED || status == StatusCode::OK, "{status}: {room}");
        room["id"].as_i64().unwrap()
    }

    /// The room as this user sees it (200 expected).
    pub async fn room(&self, id: i64) -> Value {
        let (status, room) = self.get(&format!("/api/rooms/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{} sees room {id}: {room}", self.name);
        room
    }

    /// This user's room list.
    pub async fn rooms(&self) -> Vec<Value> {
        let (status, list) = self.get("/api/rooms").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["rooms"].as_array().unwrap().clone()
    }

    /// The ids of this user's room list, in order.
    pub async fn room_ids(&self) -> Vec<i64> {
        self.rooms().await.iter().map(|r| r["id"].as_i64().unwrap()).collect()
    }

    pub async fn join(&self, id: i64) -> StatusCode {
        self.post(&format!("/api/rooms/{id}/join"), json!({})).await.0
    }

    pub async fn leave(&self, id: i64) -> StatusCode {
        self.post(&format!("/api/rooms/{id}/leave"), json!({})).await.0
    }

    pub async fn add(&self, id: i64, username: &str) -> StatusCode {
        self.post(&format!("/api/rooms/{id}/members"), json!({ "username": username })).await.0
    }

    pub async fn remove(&self, id: i64, username: &str) -> StatusCode {
        self.delete(&format!("/api/rooms/{id}/members/{username}")).await.0
    }

    pub async fn archive(&self, id: i64) -> StatusCode {
        self.delete(&format!("/api/rooms/{id}")).await.0
    }

    /// The ids of a page of scrollback (`query` after `/api/messages?`).
    pub async fn scrollback(&self, query: &str) -> (StatusCode, Vec<i64>) {
        let (status, page) = self.get(&format!("/api/messages?{query}")).await;
        let ids = page["messages"]
            .as_array()
            .map(|m| m.iter().map(|m| m["id"].as_i64().unwrap()).collect())
            .unwrap_or_default();
        (status, ids)
    }

    /// A socket past its greeting.
    pub async fn socket(&self) -> Ws {
        let mut ws = Ws::open(&self.base, &self.cookie).await;
        ws.until("chat history").await;
        ws
    }

    /// A socket opened with `?since=ID`, and its `chat history`.
    pub async fn socket_since(&self, since: i64) -> (Ws, Vec<Value>) {
        let mut ws = connect(&self.base, Some(&self.cookie), &format!("?since={since}"), &[]).await.unwrap();
        let history = ws.until("chat history").await.as_array().unwrap().clone();
        (ws, history)
    }
}

/// Registers each of `names` on `app`, in order (the first account
/// registered is the admin).
pub async fn people<const N: usize>(app: &TestApp, names: [&str; N]) -> [Person; N] {
    let mut made = Vec::with_capacity(N);
    for name in names {
        made.push(Person::new(app, name).await);
    }
    made.try_into().unwrap_or_else(|_| unreachable!("one person per name"))
}

/// The status and JSON body of an answer.
pub async fn answer(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Sends a message to a room from `ws` and waits for it to come back; its id.
pub async fn say(ws: &mut Ws, room: i64, text: &str) -> i64 {
    ws.emit("chat message", json!({"room": room, "message": text})).await;
    let sent = until_text(ws, text).await;
    sent.last().unwrap().1["id"].as_i64().unwrap()
}

/// Every event up to and including the `chat message` whose text is
/// `text` (the sentinel: the log's order is each socket's order, so
/// whatever was due to this socket before the sentinel came before it).
pub async fn until_text(ws: &mut Ws, text: &str) -> Vec<(String, Value)> {
    until_where(ws, |event, data| event == "chat message" && data["message"] == text).await
}

/// Every event up to and including the first that `done` accepts (within
/// 10 s of each other; a socket that closes or goes quiet fails the test).
pub async fn until_where(ws: &mut Ws, done: impl Fn(&str, &Value) -> bool) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    loop {
        match ws.next_within(Duration::from_secs(10)).await {
            Seen::Event(event, data) => {
                let last = done(&event, &data);
                seen.push((event, data));
                if last {
                    return seen;
                }
            }
            Seen::Closed(code) => panic!("closed ({code:?}) while waiting; saw {seen:?}"),
        }
    }
}

/// The events of `seen` that concern `room` (carry it, or are it).
pub fn of_room(seen: &[(String, Value)], room: i64) -> Vec<(String, Value)> {
    seen.iter()
        .filter(|(event, data)| {
            data["room"] == room
                || (matches!(event.as_str(), "room joined" | "room updated") && data["id"] == room)
        })
        .cloned()
        .collect()
}

/// The names of `seen`'s events.
pub fn names(seen: &[(String, Value)]) -> Vec<&str> {
    seen.iter().map(|(e, _)| e.as_str()).collect()
}

/// Every route of the rooms API that names a room, as `person` may call it
/// with `id` (`member`: a username to add or remove; `message`: a message id
/// for `around` and `before`).
pub async fn every_route(
    person: &Person,
    id: i64,
    member: &str,
    message: i64,
) -> Vec<(String, (StatusCode, Value))> {
    let mut answers = Vec::new();
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/rooms/{id}"), None),
        (Method::GET, format!("/api/rooms/{id}/members"), None),
        (Method::GET, format!("/api/messages?room={id}"), None),
        (Method::GET, format!("/api/messages?room={id}&before={message}"), None),
        (Method::GET, format!("/api/messages?room={id}&around={message}"), None),
        (Method::PATCH, format!("/api/rooms/{id}"), Some(json!({"topic": "mine now"}))),
        (Method::PATCH, format!("/api/rooms/{id}"), Some(json!({"name": "taken-over"}))),
        (Method::PUT, format!("/api/rooms/{id}/level"), Some(json!({"level": "all"}))),
        (Method::POST, format!("/api/rooms/{id}/members"), Some(json!({"username": member}))),
        (Method::DELETE, format!("/api/rooms/{id}/members/{member}"), None),
        (Method::POST, format!("/api/rooms/{id}/join"), Some(json!({}))),
        (Method::POST, format!("/api/rooms/{id}/leave"), Some(json!({}))),
        (Method::DELETE, format!("/api/rooms/{id}"), None),
    ];
    for (method, path, body) in routes {
        let label = format!("{method} {}", path.replace(&id.to_string(), "ID"));
        answers.push((label, person.call(method, &path, body).await));
    }
    answers
}

/// Asserts that room `hidden` is, on every route, exactly an id never used
/// (`never`) for `person`: the same status (404) and the same body; that it
/// is not in their list; and that its messages are in no scrollback of theirs.
pub async fn assert_hidden(person: &Person, hidden: i64, never: i64, member: &str, message: i64) {
    let seen = every_route(person, hidden, member, message).await;
    let unused = every_route(person, never, member, message).await;
    for ((route, seen), (_, unused)) in seen.iter().zip(&unused) {
        assert_eq!(
            seen, unused,
            "{}: {route} on room {hidden} is the same as on an id never used",
            person.name
        );
        assert_eq!(seen.0, StatusCode::NOT_FOUND, "{}: {route}: {}", person.name, seen.1);
    }
    assert!(!person.room_ids().await.contains(&hidden), "{}: not in the list", person.name);
    let (status, lobby) = person.scrollback(&format!("around={message}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{}: its message is not the lobby's either: {lobby:?}",
        person.name
    );
}

/// Asserts that, on `ws`, room `hidden` and its message `message` are
/// refused exactly as a room never used (`never`) and a message id never
/// used (`never_message`): `not_found` for sending, typing, reading,
/// editing and deleting.
pub async fn assert_hidden_on_socket(ws: &mut Ws, hidden: i64, never: i64, message: i64, never_message: i64) {
    let frames = |room: i64, id: i64| {
        vec![
            ("chat message", json!({"room": room, "message": "let me in"})),
            ("typing", json!({ "room": room })),
            ("read", json!(id)),
            ("edit message", json!({"id": id, "message": "mine now"})),
            ("delete message", json!({ "id": id })),
        ]
    };
    for ((event, hidden_data), (_, never_data)) in
        frames(hidden, message).into_iter().zip(frames(never, never_message))
    {
        ws.emit(event, hidden_data).await;
        let to_hidden = ws.until("error").await;
        ws.emit(event, never_data).await;
        let to_never = ws.until("error").await;
        assert_eq!(to_hidden, to_never, "{event}: the same answer as for one never used");
        assert_eq!(to_hidden["code"], "not_found", "{event}: {to_hidden}");
    }
}
