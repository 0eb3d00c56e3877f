//! Search over the wire (`GET /api/search`), on either engine: the query
//! language (one table of queries, run against SQLite and PostgreSQL alike),
//! privacy, deletes and edits, speed of indexing, limits and paging.

mod common;

use std::time::{Duration, Instant};

use common::{ws::*, *};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn get(client: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let res = client.get(url).send().await.unwrap();
    let status = res.status();
    (status, serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null))
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let res = client.post(url).json(&body).send().await.unwrap();
    let status = res.status();
    (status, serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null))
}

/// `/api/search` with these parameters (URL-encoded here).
async fn search(app: &TestApp, client: &reqwest::Client, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let url = reqwest::Url::parse_with_params(&app.url("/api/search"), params).unwrap();
    get(client, url.to_string()).await
}

/// The texts found for `q`, newest first.
async fn texts(app: &TestApp, client: &reqwest::Client, q: &str) -> Vec<String> {
    let (status, body) = search(app, client, &[("q", q), ("limit", "50")]).await;
    assert_eq!(status, StatusCode::OK, "{q}: {body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["message"].as_str().unwrap().to_owned())
        .collect()
}

/// A socket past its greeting.
async fn socket(app: &TestApp, cookie: &str) -> Ws {
    let mut ws = Ws::open(&app.base, cookie).await;
    ws.until("chat history").await;
    ws
}

/// Sends `text` to `room` (None: the lobby) and waits for it to come back; its id.
async fn say(ws: &mut Ws, room: Option<i64>, text: &str) -> i64 {
    match room {
        Some(room) => ws.emit("chat message", json!({"room": room, "message": text})).await,
        None => ws.chat(text).await,
    }
    loop {
        let message = ws.until("chat message").await;
        if message["message"] == text {
            return message["id"].as_i64().unwrap();
        }
    }
}

/// The messages of the query table, in the order they are sent.
const MESSAGES: [&str; 17] = [
    "Deploying the new build to staging tonight",
    "The deploy went fine",
    "Meet me at the Café at noon",
    "cafe au lait please",
    "Die Straße in Łódź ist lang",
    "email alice@example.com about the e-mail server",
    "我们明天部署服务器",
    "新しいiPhone手机を買った",
    "ジョン・スミスです",
    "staging server is down, not production",
    "production server is up",
    "us and them, as it is",
    "Søren is in Århus",
    "v2 release notes: 3.14 percent",
    "deployment plan for friday",
    "これは日本語のテキストです",
    "it's Bob's turn",
];

/// Each query, and the messages (by their place in MESSAGES) it finds.
const TABLE: &[(&str, &[usize])] = &[
    // Stems, and the last word also as the start of a word.
    ("deploy", &[0, 1]),
    ("deploying", &[0, 1]),
    ("depl", &[0, 1, 14]),
    ("deployment", &[14]),
    ("DEPLOYED tonight", &[0]),
    ("friday plan", &[14]),
    ("note", &[13]),
    ("the", &[0, 1, 2, 5, 11]),
    // Case and accents.
    ("cafe", &[2, 3]),
    ("CAFÉ", &[2, 3]),
    ("strasse", &[4]),
    ("straße", &[4]),
    ("lodz", &[4]),
    ("soren arhus", &[12]),
    // Phrases, and words joined by punctuation.
    ("\"staging server\"", &[9]),
    ("\"server staging\"", &[]),
    ("e-mail", &[5]),
    ("alice@example.com", &[5]),
    ("example", &[5]),
    ("3.14", &[13]),
    ("v2", &[13]),
    // Exclusions.
    ("server -production", &[5]),
    ("server", &[5, 9, 10]),
    ("staging -\"not production\"", &[0]),
    // Short words are words like any other.
    ("us", &[11]),
    ("as", &[11]),
    ("\"as it is\"", &[11]),
    ("is", &[4, 9, 10, 11, 12]),
    // A last word of one letter is that word, not the start of every word.
    ("it's", &[16]),
    ("bob's turn", &[16]),
    ("\"turn bob's\"", &[]),
    // Text without spaces: substrings of two characters or more.
    ("服务", &[6]),
    ("部署服务器", &[6]),
    ("务部", &[]),
    ("服务 -部署", &[]),
    ("iphone手机", &[7]),
    ("手机", &[7]),
    ("スミス", &[8]),
    ("ジョン・スミス", &[8]),
    ("日本語", &[15]),
    ("本語のテ", &[15]),
    ("テキスト deploy", &[]),
];

/// Sends the table's messages as a new user, then runs every query; the
/// texts each found (newest first) and the snippets of a few.
async fn run_table(app: &TestApp) -> Vec<(String, Vec<String>, Vec<String>)> {
    let cookie = app.cookie("alice").await;
    let client = app.client_with(&cookie);
    let mut ws = socket(app, &cookie).await;
    for text in MESSAGES {
        say(&mut ws, None, text).await;
    }
    let mut found = Vec::new();
    for (q, _) in TABLE {
        let (status, body) = search(app, &client, &[("q", q), ("limit", "50")]).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        let results = body["results"].as_array().unwrap();
        let texts = results.iter().map(|r| r["message"]["message"].as_str().unwrap().to_owned()).collect();
        let snippets = results.iter().map(|r| r["snippet"].as_str().unwrap().to_owned()).collect();
        found.push((q.to_string(), texts, snippets));
    }
    found
}

fn check_table(found: &[(String, Vec<String>, Vec<String>)], engine: &str) {
    let mut wrong = Vec::new();
    for ((q, expected), (_, texts, _)) in TABLE.iter().zip(found) {
        let expected: Vec<&str> = expected.iter().rev().map(|i| MESSAGES[*i]).collect();
        if *texts != expected {
            wrong.push(format!("{q:?}: found {texts:?}, expected {expected:?}"));
        }
    }
    assert!(wrong.is_empty(), "on {engine}:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn the_query_language_finds_what_it_says() {
    let app = spawn_app().await;
    let engine = if app.db.is_postgres() { "PostgreSQL" } else { "SQLite" };
    let found = run_table(&app).await;
    check_table(&found, engine);
    // Matches are marked as written in the message.
    let snippet = |q: &str| found.iter().find(|(query, ..)| query == q).unwrap().2.clone();
    assert_eq!(
        snippet("cafe"),
        vec!["\u{2}cafe\u{3} au lait please", "Meet me at the \u{2}Café\u{3} at noon"]
    );
    assert_eq!(snippet("部署服务器"), vec!["我们明天\u{2}部署服务器\u{3}"]);
    assert_eq!(
        snippet("\"staging server\""),
        vec!["\u{2}staging\u{3} \u{2}server\u{3} is down, not production"]
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LOBBY_TEST_POSTGRES and run with --include-ignored"]
async fn both_engines_give_the_same_results_for_the_same_messages() {
    let sqlite = start(std::sync::Arc::new(TestDb::sqlite()), |_| {}).await;
    let postgres = start(std::sync::Arc::new(TestDb::postgres().await), |_| {}).await;
    let (on_sqlite, on_postgres) = (run_table(&sqlite).await, run_table(&postgres).await);
    check_table(&on_sqlite, "SQLite");
    check_table(&on_postgres, "PostgreSQL");
    assert_eq!(on_sqlite, on_postgres, "the same texts and snippets on both engines");
}

#[tokio::test]
async fn only_rooms_the_user_is_in_now_are_searched() {
    let app = spawn_app().await;
    let (alice_cookie, bob_cookie) = (app.cookie("alice").await, app.cookie("bob").await);
    let mallory_cookie = app.cookie("mallory").await;
    let (alice, bob, mallory) =
        (app.client_with(&alice_cookie), app.client_with(&bob_cookie), app.client_with(&mallory_cookie));
    let mut alice_ws = socket(&app, &alice_cookie).await;
    let room = |body: Value| {
        let alice = alice.clone();
        let url = app.url("/api/rooms");
        async move {
            let (status, room) = post(&alice, url, body).await;
            assert_eq!(status, StatusCode::CREATED, "{room}");
            room["id"].as_i64().unwrap()
        }
    };
    let private = room(json!({"name": "ops", "kind": "private", "people": ["bob"]})).await;
    let open = room(json!({"name": "study", "kind": "open"})).await;
    let archived = room(json!({"name": "old", "kind": "private", "people": ["bob"]})).await;
    for _ in 0..3 {
        alice_ws.until("room joined").await;
    }
    say(&mut alice_ws, Some(private), "secret rollout plan").await;
    say(&mut alice_ws, Some(open), "open rollout notes").await;
    say(&mut alice_ws, Some(archived), "archived rollout memo").await;
    say(&mut alice_ws, None, "lobby rollout chat").await;

    assert_eq!(
        texts(&app, &alice, "rollout").await,
        ["lobby rollout chat", "archived rollout memo", "open rollout notes", "secret rollout plan"]
    );
    // Mallory is in none of them: the lobby only (an open room she has not joined is not hers).
    assert_eq!(texts(&app, &mallory, "rollout").await, ["lobby rollout chat"]);
    // …but she may search an open room by naming it; a private one does not exist for her.
    let (status, found) = search(&app, &mallory, &[("q", "rollout"), ("room", &open.to_string())]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["results"][0]["message"]["message"], "open rollout notes");
    assert_eq!(found["results"][0]["message"]["room"], open);
    let hidden = search(&app, &mallory, &[("q", "rollout"), ("room", &private.to_string())]).await;
    let never = search(&app, &mallory, &[("q", "rollout"), ("room", "999999")]).await;
    assert_eq!(hidden.0, StatusCode::NOT_FOUND);
    assert_eq!(hidden, never, "a private room is answered as an id never used");

    // Bob, removed from the private room, no longer finds what was said there.
    assert!(texts(&app, &bob, "rollout").await.contains(&"secret rollout plan".to_owned()));
    let remove = app.url(&format!("/api/rooms/{private}/members/bob"));
    assert_eq!(alice.delete(remove).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert!(!texts(&app, &bob, "rollout").await.contains(&"secret rollout plan".to_owned()));
    let (status, _) = search(&app, &bob, &[("q", "rollout"), ("room", &private.to_string())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An archived room's messages stay in the database, found by nobody.
    let archive = app.url(&format!("/api/rooms/{archived}"));
    assert_eq!(alice.delete(archive).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert!(!texts(&app, &alice, "rollout").await.contains(&"archived rollout memo".to_owned()));
    assert!(!texts(&app, &bob, "rollout").await.contains(&"archived rollout memo".to_owned()));
    let (status, _) = search(&app, &alice, &[("q", "memo"), ("room", &archived.to_string())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Logged out: 401.
    let (status, body) = search(&app, &app.client(), &[("q", "rollout")]).await;
    assert_eq!((status, body["error"].is_string()), (StatusCode::UNAUTHORIZED, true));
}

#[tokio::test]
async fn deleted_messages_are_never_found_and_edited_ones_by_their_text_now() {
    let app = spawn_app().await;
    let cookie = app.cookie("alice").await;
    let client = app.client_with(&cookie);
    let mut ws = socket(&app, &cookie).await;
    let typo = say(&mut ws, None, "the deploymnet is done").await;
    let gone = say(&mut ws, None, "delete this deployment note").await;
    let cjk = say(&mut ws, None, "服务器坏了").await;
    say(&mut ws, None, "another deployment").await;
    assert_eq!(texts(&app, &client, "deploymnet").await, ["the deploymnet is done"]);

    ws.emit("edit message", json!({"id": typo, "message": "the deployment is done"})).await;
    ws.until("message edited").await;
    assert!(texts(&app, &client, "deploymnet").await.is_empty(), "not by its old text");
    assert_eq!(
        texts(&app, &client, "deployment").await,
        ["another deployment", "delete this deployment note", "the deployment is done"]
    );

    for id in [gone, cjk] {
        ws.emit("delete message", json!({"id": id})).await;
        ws.until("message deleted").await;
    }
    assert_eq!(texts(&app, &client, "deployment").await, ["another deployment", "the deployment is done"]);
    assert!(texts(&app, &client, "服务").await.is_empty());
    assert!(texts(&app, &client, "note").await.is_empty());

    if !app.db.is_postgres() {
        check_indexes(&app).await;
    }
}

#[tokio::test]
async fn a_message_is_found_within_a_second_of_being_sent() {
    let app = spawn_app().await;
    let cookie = app.cookie("alice").await;
    let client = app.client_with(&cookie);
    let mut ws = socket(&app, &cookie).await;
    for i in 0..5 {
        let word = format!("fresh{i}word");
        let sent = Instant::now();
        ws.chat(&word).await;
        loop {
            if texts(&app, &client, &word).await == [word.clone()] {
                break;
            }
            assert!(sent.elapsed() < Duration::from_secs(1), "{word} not found within a second");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// SQLite: the indexes hold exactly what the messages say, no entry
/// missing, none twice, none stale (FTS5 checks itself against its content
/// when asked with rank 1).
async fn check_integrity(app: &TestApp) {
    for index in ["search_words", "search_grams"] {
        app.db.execute(&format!("INSERT INTO {index} ({index}, rank) VALUES ('integrity-check', 1)")).await;
    }
}

/// SQLite: the cursor is at the newest message, and the indexes are whole.
async fn check_indexes(app: &TestApp) {
    assert_eq!(indexed_to(app).await, app.scalar("SELECT max(id) FROM messages").await, "not caught up");
    check_integrity(app).await;
}

/// SQLite: the newest message the indexes hold (the indexer's cursor).
async fn indexed_to(app: &TestApp) -> i64 {
    app.scalar("SELECT indexed_to FROM search_cursor").await
}

#[tokio::test]
async fn the_indexer_keeps_up_without_a_search() {
    // SQLite's: PostgreSQL's indexes are columns of the row, with nothing to follow.
    let app = spawn_sqlite_app_with(|c| c.live.chat_burst = 1_000).await;
    let cookie = app.cookie("alice").await;
    let mut ws = socket(&app, &cookie).await;
    // One message, then a burst: each indexed within a second, with no
    // search to make it happen.
    for burst in [1, 300] {
        for i in 0..burst {
            ws.chat(&format!("burst {burst} message {i} 服务器")).await;
        }
        let last_text = format!("burst {burst} message {} 服务器", burst - 1);
        let last = loop {
            let echo = ws.until("chat message").await;
            if echo["message"] == last_text.as_str() {
                break echo["id"].as_i64().unwrap();
            }
        };
        let sent = Instant::now();
        while indexed_to(&app).await < last {
            assert!(sent.elapsed() < Duration::from_secs(1), "message {last} not indexed within a second");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Every one of them in both indexes, once.
    let count = |sql: &'static str| app.scalar(sql);
    assert_eq!(
        count("SELECT count(DISTINCT rowid) FROM search_words WHERE search_words MATCH 'burst'").await,
        301
    );
    assert_eq!(count("SELECT count(*) FROM search_words WHERE search_words MATCH 'burst'").await, 301);
    assert_eq!(
        count("SELECT count(*) FROM search_grams WHERE search_grams MATCH '\"服务 务器\"'").await,
        301
    );

    // A backlog of many chunks (as after an import, with the server
    // stopped) is indexed to the end, still with no search.
    let alice = app.scalar("SELECT id FROM users WHERE username = 'alice'").await;
    app.db
        .execute(&format!(
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO messages (id, seq, user_id, body, sent_at, room_id)
             SELECT h.position + i, h.position + i, {alice}, 'imported note ' || i, 0, 1 FROM n, log_head h"
        ))
        .await;
    app.db.execute("UPDATE log_head SET position = (SELECT max(id) FROM messages)").await;
    let last = app.scalar("SELECT max(id) FROM messages").await;
    let started = Instant::now();
    while indexed_to(&app).await < last {
        assert!(started.elapsed() < Duration::from_secs(20), "the backlog was not indexed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        count("SELECT count(DISTINCT rowid) FROM search_words WHERE search_words MATCH 'imported'").await,
        3000
    );
    let client = app.client_with(&cookie);
    let (status, body) = search(&app, &client, &[("q", "\"imported note 2999\"")]).await;
    assert_eq!((status, body["results"].as_array().unwrap().len()), (StatusCode::OK, 1), "{body}");
    check_indexes(&app).await;
}

#[tokio::test]
async fn a_message_written_behind_the_cursor_is_indexed_as_it_is_written() {
    // As a restore might: a message with an id the indexer has passed.
    let app = spawn_sqlite_app_with(|_| {}).await;
    let cookie = app.cookie("alice").await;
    let client = app.client_with(&cookie);
    let mut ws = socket(&app, &cookie).await;
    let newest = say(&mut ws, None, "the newest message").await;
    assert_eq!(texts(&app, &client, "newest").await, ["the newest message"]);
    let alice = app.scalar("SELECT id FROM users WHERE username = 'alice'").await;
    let behind = newest + 10;
    let pool = app.db.pool().await;
    let mut tx = pool.begin().await.unwrap();
    for sql in [
        format!("UPDATE search_cursor SET indexed_to = {}", newest + 20),
        format!("UPDATE log_head SET position = {} WHERE id = 1", newest + 20),
        format!(
            "INSERT INTO messages (id, seq, user_id, body, sent_at, room_id)
             VALUES ({behind}, {behind}, {alice}, 'restored from a backup', 0, 1)"
        ),
    ] {
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
    assert_eq!(texts(&app, &client, "backup").await, ["restored from a backup"]);
    // An edit of it finds its entries to replace.
    app.db.execute(&format!("UPDATE messages SET body = 'restored, then edited' WHERE id = {behind}")).await;
    assert_eq!(texts(&app, &client, "edited").await, ["restored, then edited"]);
    assert!(texts(&app, &client, "backup").await.is_empty());
    check_integrity(&app).await;
}

#[tokio::test]
async fn messages_changed_before_they_are_indexed_are_found_as_they_are_now() {
    let app = spawn_app().await;
    let client = app.client_with(&app.cookie("alice").await);
    let alice = app.scalar("SELECT id FROM users WHERE username = 'alice'").await;
    let yes = if app.db.is_postgres() { "true" } else { "1" };
    // Sent, edited and deleted in one transaction: on SQLite the indexer
    // cannot index them in between, so the edit and the delete come before.
    let pool = app.db.pool().await;
    let mut tx = pool.begin().await.unwrap();
    for body in ["a first draft of the plan", "the plan, to be deleted"] {
        for sql in [
            format!(
                "INSERT INTO messages (id, seq, user_id, body, sent_at, room_id)
                 SELECT position + 1, position + 1, {alice}, '{body}', 0, 1 FROM log_head WHERE id = 1"
            ),
            "UPDATE log_head SET position = position + 1 WHERE id = 1".to_owned(),
        ] {
            sqlx::query(&sql).execute(&mut *tx).await.unwrap();
        }
    }
    for sql in [
        "UPDATE messages SET body = 'the final plan' WHERE body = 'a first draft of the plan'".to_owned(),
        format!("UPDATE messages SET body = '', deleted = {yes} WHERE body = 'the plan, to be deleted'"),
    ] {
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
    assert_eq!(texts(&app, &client, "plan").await, ["the final plan"]);
    assert!(texts(&app, &client, "draft").await.is_empty(), "not by its first text");
    assert!(texts(&app, &client, "deleted").await.is_empty(), "deleted before it was indexed");

    // Indexed now: a change goes through the indexes at once.
    app.db.execute("UPDATE messages SET body = 'the plan, as agreed' WHERE body = 'the final plan'").await;
    assert_eq!(texts(&app, &client, "plan").await, ["the plan, as agreed"]);
    assert!(texts(&app, &client, "final").await.is_empty());
    if !app.db.is_postgres() {
        check_indexes(&app).await;
    }
}

/// One page of `paging` results: the ids, and `more`.
async fn page(
    app: &TestApp,
    client: &reqwest::Client,
    before: Option<i64>,
    limit: Option<&str>,
) -> (Vec<i64>, bool) {
    let before = before.map(|b| b.to_string());
    let mut params = vec![("q", "paging")];
    if let Some(before) = &before {
        params.push(("before", before));
    }
    if let Some(limit) = limit {
        params.push(("limit", limit));
    }
    let (status, body) = search(app, client, &params).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids =
        body["results"].as_array().unwrap().iter().map(|r| r["message"]["id"].as_i64().unwrap()).collect();
    (ids, body["more"].as_bool().unwrap())
}

#[tokio::test]
async fn pages_go_back_with_before_and_bad_parameters_get_400() {
    let app = spawn_app_with(|c| c.live.chat_burst = 100).await;
    let cookie = app.cookie("alice").await;
    let client = app.client_with(&cookie);
    let mut ws = socket(&app, &cookie).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(say(&mut ws, None, &format!("paging message {i}")).await);
        if i % 5 == 0 {
            say(&mut ws, None, "something else").await;
        }
    }
    ids.reverse();
    assert_eq!(
        page(&app, &client, None, None).await,
        (ids[..20].to_vec(), true),
        "20 by default, newest first"
    );
    let (first, more) = page(&app, &client, None, Some("10")).await;
    assert_eq!((first.as_slice(), more), (&ids[..10], true));
    let (second, more) = page(&app, &client, Some(first[9]), Some("10")).await;
    assert_eq!((second.as_slice(), more), (&ids[10..20], true));
    let (third, more) = page(&app, &client, Some(second[9]), Some("10")).await;
    assert_eq!((third.as_slice(), more), (&ids[20..], false));

    for (params, why) in [
        (vec![("q", "")], "an empty q"),
        (vec![("q", "   ")], "a blank q"),
        (vec![], "no q"),
        (vec![("q", &"a".repeat(201) as &str)], "201 characters"),
        (vec![("q", "-paging")], "only an exclusion"),
        (vec![("q", "x"), ("limit", "0")], "limit 0"),
        (vec![("q", "x"), ("limit", "51")], "limit 51"),
        (vec![("q", "x"), ("limit", "many")], "limit many"),
        (vec![("q", "x"), ("before", "-1")], "before -1"),
        (vec![("q", "x"), ("room", "lobby")], "room lobby"),
        (vec![("q", "x"), ("colour", "red")], "an unknown parameter"),
    ] {
        let (status, body) = search(&app, &client, &params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{why}: {body}");
    }
    // Whatever the query says, an answer: results or our words, never a 500.
    for q in [
        "²",
        "'",
        "\\",
        "NEAR(a b)",
        "a*",
        "^a",
        "\"",
        "--x y",
        "İstanbul",
        "x\u{0}y",
        "😀 a",
        "a OR b",
        "a:b",
        "\"unclosed",
        "ǅemal",
        "us*",
        "'us' | 'x'",
        "a & !b",
        "e\u{301}",
        "ﬁ",
        "ÿ-ÿ",
        "服",
        "a\tb\nc",
    ] {
        let (status, body) = search(&app, &client, &[("q", q)]).await;
        let answered = (status == StatusCode::OK && body["results"].is_array())
            || (status == StatusCode::BAD_REQUEST && body["error"].is_string());
        assert!(answered, "{q:?}: {status} {body}");
    }
    let (status, _) = search(&app, &client, &[("q", &"é".repeat(200)), ("limit", "50")]).await;
    assert_eq!(status, StatusCode::OK, "200 characters, however many bytes");
}

#[tokio::test]
async fn the_migration_indexes_the_messages_already_sent() {
    // A database as it was before search: every migration but the last ones.
    let db = std::sync::Arc::new(TestDb::fresh().await);
    let engine = if db.is_postgres() { "postgres" } else { "sqlite" };
    let before = tempfile::TempDir::new().unwrap();
    for entry in std::fs::read_dir(format!("{}/migrations/{engine}", env!("CARGO_MANIFEST_DIR"))).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "20261205300001" {
            std::fs::copy(&path, before.path().join(name)).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    let url = if db.is_postgres() { db.url() } else { format!("{}?mode=rwc", db.url()) };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(before.path()).await.unwrap().run(&pool).await.unwrap();
    for sql in [
        "INSERT INTO users (id, username, password_hash, created_at, skeleton, session_key) VALUES (7, 'olduser', 'x', 0, 'olduser', 'k')",
        "INSERT INTO messages (id, user_id, body, sent_at, seq, room_id) VALUES (1, 7, 'an old deployment note', 0, 1, 1)",
        "INSERT INTO messages (id, user_id, body, sent_at, seq, room_id) VALUES (2, 7, '旧的服务器', 0, 2, 1)",
        "UPDATE log_head SET position = 2",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let app = start(db, |_| {}).await;
    let client = app.client_with(&app.cookie("alice").await);
    assert_eq!(texts(&app, &client, "deployment").await, ["an old deployment note"]);
    assert_eq!(texts(&app, &client, "服务器").await, ["旧的服务器"]);
    if !app.db.is_postgres() {
        // Indexed by the migration, once: the indexer starts after them.
        check_indexes(&app).await;
    }
}
