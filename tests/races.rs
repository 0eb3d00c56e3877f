//! Sessions that stay ended, authority checked where it changes, and
//! refusals that cost little (PROTOCOL [hardening2]): races between a
//! request already on its way and the ending of its session, a demotion or
//! a ban, run many times with real clients (a request's body is dribbled
//! over a raw socket so it is still in flight when the other change
//! commits); refused edits and deletes while the log's lock is held; a
//! client flapping its connection hundreds of times.

mod common;

use std::time::Duration;

use common::{ws::*, *};
use reqwest::StatusCode;
use serde_json::json;
use tokio::{io::AsyncWriteExt, net::TcpStream};

const PASSWORD: &str = "correct horse battery";
const TRIALS: usize = 10;

/// A form POST sent all but its last byte: in flight until `finish`.
struct InFlight {
    tcp: TcpStream,
    last: u8,
}

impl InFlight {
    async fn start(app: &TestApp, path: &str, cookie: &str, form: &str) -> InFlight {
        let host = app.addr.to_string();
        let mut tcp = TcpStream::connect(&host).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            form.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let (body, last) = form.as_bytes().split_at(form.len() - 1);
        tcp.write_all(body).await.unwrap();
        // Long enough for the server to have read the headers, loaded the
        // session and user, and be waiting for the body.
        tokio::time::sleep(Duration::from_millis(150)).await;
        InFlight { tcp, last: last[0] }
    }

    /// Sends the last byte; the answer's status.
    async fn finish(mut self) -> u16 {
        self.tcp.write_all(&[self.last]).await.unwrap();
        common::raw::read_head(&mut self.tcp).await.0
    }
}

async fn post(client: &reqwest::Client, url: String, form: &[(&str, &str)]) -> StatusCode {
    client.post(url).form(form).send().await.unwrap().status()
}

async fn user_id(app: &TestApp, name: &str) -> i64 {
    app.scalar(&format!("SELECT id FROM users WHERE username = '{name}'")).await
}

async fn role(app: &TestApp, name: &str) -> String {
    let pool = app.db.pool().await;
    let role = sqlx::query_scalar(&format!("SELECT role FROM users WHERE username = '{name}'"))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    role
}

#[tokio::test]
async fn a_session_ended_while_a_request_of_it_is_in_flight_stays_ended() {
    let app = spawn_app().await;
    for trial in 0..TRIALS {
        let name = format!("user{trial}");
        let cookie = app.cookie(&name).await;
        let form = "current=correct+horse+battery&new=a+different+long+phrase";
        let in_flight = InFlight::start(&app, "/account/password", &cookie, form).await;
        // Logged out meanwhile, from another tab.
        let res = app.bare_client().get(app.url("/logout")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);

        assert_eq!(in_flight.finish().await, 403, "trial {trial}: refused as for a logged-out request");
        let profile =
            app.bare_client().get(app.url("/profile")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(profile.status(), StatusCode::SEE_OTHER, "trial {trial}: the cookie works no more");
        let res = app.login(&app.client(), &name, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "trial {trial}: the password is unchanged");
        let id = user_id(&app, &name).await;
        let listed = app.scalar(&format!("SELECT count(*) FROM account_sessions WHERE user_id = {id}")).await;
        assert_eq!(listed, 1, "trial {trial}: only the new login is listed");
    }
}

#[tokio::test]
async fn a_demoted_admins_requests_in_flight_are_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob_cookie = app.cookie("bob").await;
    app.user("carol").await;
    let (bob, carol) = (user_id(&app, "bob").await.to_string(), user_id(&app, "carol").await.to_string());
    for trial in 0..TRIALS {
        let grant = post(&alice, app.url("/admin/users/role"), &[("user", &bob), ("role", "admin")]).await;
        assert_eq!(grant, StatusCode::SEE_OTHER);
        // Bob, an admin when this starts, makes carol one…
        let form = format!("user={carol}&role=admin");
        let in_flight = InFlight::start(&app, "/admin/users/role", &bob_cookie, &form).await;
        // …while alice demotes him.
        let demote = post(&alice, app.url("/admin/users/role"), &[("user", &bob), ("role", "member")]).await;
        assert_eq!(demote, StatusCode::SEE_OTHER);
        assert_eq!(in_flight.finish().await, 403, "trial {trial}: the demotion committed first and wins");
        assert_eq!(role(&app, "carol").await, "member", "trial {trial}");
        assert_eq!(role(&app, "bob").await, "member", "trial {trial}");
    }
}

#[tokio::test]
async fn a_banned_admins_requests_in_flight_are_refused_and_their_session_stays_ended() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.user("carol").await;
    let carol = user_id(&app, "carol").await.to_string();
    for trial in 0..TRIALS {
        let name = format!("admin{trial}");
        let cookie = app.cookie(&name).await;
        let id = user_id(&app, &name).await.to_string();
        let grant = post(&alice, app.url("/admin/users/role"), &[("user", &id), ("role", "admin")]).await;
        assert_eq!(grant, StatusCode::SEE_OTHER);
        let form = format!("user={carol}&role=admin");
        let in_flight = InFlight::start(&app, "/admin/users/role", &cookie, &form).await;
        assert_eq!(post(&alice, app.url("/admin/users/ban"), &[("user", &id)]).await, StatusCode::SEE_OTHER);
        assert_eq!(in_flight.finish().await, 403, "trial {trial}: the ban committed first and wins");
        assert_eq!(role(&app, "carol").await, "member", "trial {trial}");
        let admin = app.bare_client().get(app.url("/admin")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(admin.status(), StatusCode::SEE_OTHER, "trial {trial}: logged out for good");
        let sessions =
            app.scalar(&format!("SELECT count(*) FROM account_sessions WHERE user_id = {id}")).await;
        assert_eq!(sessions, 0, "trial {trial}: no session of theirs came back");
    }
}

#[tokio::test]
async fn nobody_changes_their_own_role_or_ban_even_to_what_it_is() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (alice_id, bob_id) =
        (user_id(&app, "alice").await.to_string(), user_id(&app, "bob").await.to_string());
    assert_eq!(
        post(&alice, app.url("/admin/users/role"), &[("user", &bob_id), ("role", "admin")]).await,
        StatusCode::SEE_OTHER
    );
    for (path, form) in [
        ("/admin/users/role", vec![("user", alice_id.as_str()), ("role", "admin")]),
        ("/admin/users/role", vec![("user", alice_id.as_str()), ("role", "member")]),
        ("/admin/users/ban", vec![("user", alice_id.as_str())]),
        ("/admin/users/unban", vec![("user", alice_id.as_str())]),
    ] {
        assert_eq!(post(&alice, app.url(path), &form).await, StatusCode::CONFLICT, "{path} {form:?}");
    }
    // Bob, banned, cannot lift his own ban either: he has no session.
    assert_eq!(post(&alice, app.url("/admin/users/ban"), &[("user", &bob_id)]).await, StatusCode::SEE_OTHER);
    assert_eq!(post(&bob, app.url("/admin/users/unban"), &[("user", &bob_id)]).await, StatusCode::FORBIDDEN);
    assert_eq!(role(&app, "alice").await, "admin");
}

#[tokio::test]
async fn a_role_taken_away_with_lobby_admin_holds_at_once() {
    let app = spawn_app().await;
    app.user("alice").await;
    let bob = app.user("bob").await;
    app.user("carol").await;
    let carol = user_id(&app, "carol").await.to_string();
    let lobby = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lobby"))
            .args(args)
            .env("DATABASE_URL", app.db.url())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    lobby(&["admin", "grant", "bob"]);
    // The server may still hold bob as he was (cached for a few seconds):
    // once he is an admin in the database, his changes go through…
    let granted = eventually(Duration::from_secs(10), || async {
        post(&bob, app.url("/admin/registration"), &[("mode", "open")]).await == StatusCode::SEE_OTHER
    });
    assert!(granted.await);
    // …and from the moment it is taken away, none does, cache or not.
    lobby(&["admin", "revoke", "bob"]);
    for _ in 0..5 {
        let status = post(&bob, app.url("/admin/users/role"), &[("user", &carol), ("role", "admin")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    assert_eq!(role(&app, "carol").await, "member");
}

/// Holds the chat log's write lock, as a long transaction of another writer would.
async fn hold_the_log_lock(db: &TestDb) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url()).await.unwrap();
    if db.is_postgres() {
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::query("SELECT position FROM log_head WHERE id = 1 FOR UPDATE")
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.unwrap();
    }
    conn
}

#[tokio::test]
async fn refused_edits_and_deletes_take_no_write_lock() {
    let app = spawn_app().await;
    let mut alice = Ws::open(&app.base, &app.cookie("alice").await).await;
    alice.until("chat history").await;
    alice.chat("mine").await;
    let id = alice.until("chat message").await["id"].as_i64().unwrap();
    let mut bob = Ws::open(&app.base, &app.cookie("bob").await).await;
    bob.until("chat history").await;

    let lock = hold_the_log_lock(&app.db).await;
    for (event, data) in
        [("edit message", json!({"id": id, "message": "not yours"})), ("delete message", json!({"id": id}))]
    {
        let asked = tokio::time::Instant::now();
        bob.emit(event, data).await;
        let refusal = bob.until("error").await;
        assert_eq!(refusal["code"], "forbidden", "{event}");
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{event} answered without waiting for the lock: {:?}",
            asked.elapsed()
        );
    }
    drop(lock);
}

#[tokio::test]
async fn refused_edits_count_against_the_chat_allowance_across_tabs_and_reconnects() {
    // A burst of 20 that does not refill while the test runs.
    let app = spawn_app_with(|c| c.live.chat_rate = 0.01).await;
    let mut alice = Ws::open(&app.base, &app.cookie("alice").await).await;
    alice.until("chat history").await;
    alice.chat("mine").await;
    let id = alice.until("chat message").await["id"].as_i64().unwrap();
    let bob = app.cookie("bob").await;
    let mut codes = Vec::new();
    // Five connections one after another, five refused edits each: the
    // allowance (a burst of 20) is the user's, not the socket's.
    for _ in 0..5 {
        let mut ws = Ws::open(&app.base, &bob).await;
        ws.until("chat history").await;
        for _ in 0..5 {
            ws.emit("edit message", json!({"id": id, "message": "not yours"})).await;
            codes.push(ws.until("error").await["code"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(codes.iter().filter(|c| *c == "forbidden").count(), 20, "{codes:?}");
    assert!(codes[20..].iter().all(|c| c == "rate_limited"), "{codes:?}");
    let mut ws = Ws::open(&app.base, &bob).await;
    ws.until("chat history").await;
    ws.chat("and a message").await;
    assert_eq!(ws.until("error").await["code"], "rate_limited", "messages share the allowance");
    // Alice is not held back by any of it.
    alice.chat("still here").await;
    assert_eq!(alice.until("chat message").await["message"], "still here");
}

#[tokio::test]
async fn a_flapping_client_costs_the_others_a_handful_of_announcements() {
    let app = spawn_app().await;
    let mut watcher = Ws::open(&app.base, &app.cookie("dave").await).await;
    watcher.until("chat history").await;
    let alice = app.cookie("alice").await;
    let started = tokio::time::Instant::now();
    for _ in 0..30 {
        let opened = (0..10).map(|_| Ws::open(&app.base, &alice));
        drop(futures_util::future::join_all(opened).await);
    }
    let flapped = started.elapsed();
    // Her allowance refills within a second or two; then the last state goes out.
    let seen = watcher.drain(Duration::from_millis(2500)).await;
    let told: Vec<&serde_json::Value> =
        seen.iter().filter(|(e, d)| e == "user" && d["username"] == "alice").map(|(_, d)| d).collect();
    assert!(told.len() <= 10, "{} announcements for 300 connections in {flapped:?}", told.len());
    assert_eq!(told.last().unwrap()["connected"], false, "the last one tells her true state");
    assert_eq!(app.realtime.connections_here(), 1, "the count stays exact");
    let counts: Vec<u64> =
        seen.iter().filter(|(e, _)| e == "user count").filter_map(|(_, d)| d.as_u64()).collect();
    assert_eq!(counts.last().copied().unwrap_or(1), 1, "the last count shown is the true one: {counts:?}");
}
