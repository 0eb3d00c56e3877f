//! Running a community, with real clients: your account (password change,
//! your sessions), roles, the admin page, bans, registration modes and
//! invites, edits and deletes in the ordered log. On SQLite, and on
//! PostgreSQL when `LOBBY_TEST_POSTGRES` is set.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{ws::Ws, *};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a brand new secret";

fn unlimited_chat(c: &mut lobby::Config) {
    c.live.chat_burst = 100_000;
    c.live.chat_rate = 100_000.0;
}

async fn get(client: &reqwest::Client, url: String) -> (StatusCode, String) {
    let res = client.get(url).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

async fn post(client: &reqwest::Client, url: String, form: &[(&str, &str)]) -> reqwest::Response {
    client.post(url).form(form).send().await.unwrap()
}

/// Every `value="…"` of the hidden inputs named `name` in a page.
fn hidden_values(page: &str, name: &str) -> Vec<String> {
    let marker = format!(r#"name="{name}" value=""#);
    page.match_indices(&marker)
        .map(|(at, _)| {
            let rest = &page[at + marker.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// The id of a user, as the admin page's forms carry it.
async fn user_id(app: &TestApp, name: &str) -> String {
    app.scalar(&format!("SELECT id FROM users WHERE username = '{name}'")).await.to_string()
}

/// A logged-in client with its cookie (for sockets).
async fn person(app: &TestApp, name: &str) -> (reqwest::Client, String) {
    let client = app.client();
    let res = app.register(&client, name, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "registering {name}");
    let cookie = format!("{}={}", lobby::web::SESSION_COOKIE, session_cookie(&res).unwrap());
    (client, cookie)
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_and_keeps_this_one_under_a_new_id() {
    let app = spawn_app().await;
    let (alice, alice_cookie) = person(&app, "alice").await;
    let other_cookie = app.login_cookie("alice").await;
    let other = app.bare_client();
    let mut this_socket = Ws::open(&app.base, &alice_cookie).await;
    let mut other_socket = Ws::open(&app.base, &other_cookie).await;
    this_socket.until("chat history").await;
    other_socket.until("chat history").await;

    // A wrong current password changes nothing.
    let res =
        post(&alice, app.url("/account/password"), &[("current", "not my password"), ("new", NEW_PASSWORD)])
            .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("not your current password"));
    let res = post(&alice, app.url("/account/password"), &[("current", PASSWORD), ("new", "short")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "the new password follows the rules");
    assert_eq!(app.login(&app.client(), "alice", PASSWORD).await.status(), StatusCode::SEE_OTHER);

    let res =
        post(&alice, app.url("/account/password"), &[("current", PASSWORD), ("new", NEW_PASSWORD)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let next = location(&res);
    assert_eq!(next, "/account?done=password");
    let renewed = session_cookie(&res).expect("this session gets a new id");
    assert!(!alice_cookie.ends_with(&renewed), "a new id, not the old one");

    // The other session is over, its socket closed with 4401.
    assert_eq!(other_socket.until_closed(Duration::from_secs(2)).await, Some(4401));
    let res = other.get(app.url("/profile")).header("cookie", &other_cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "the other session is logged out");
    // This one goes on: its socket is told to reconnect (4409), and does.
    assert_eq!(this_socket.until_closed(Duration::from_secs(2)).await, Some(4409));
    let (status, page) = get(&alice, app.url(&next)).await;
    assert_eq!(status, StatusCode::OK, "this session is still logged in");
    assert!(page.contains("Your password is changed"));
    let new_cookie = format!("{}={renewed}", lobby::web::SESSION_COOKIE);
    Ws::open(&app.base, &new_cookie).await.until("chat history").await;

    assert_eq!(app.login(&app.client(), "alice", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&app.client(), "alice", NEW_PASSWORD).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_account_page_lists_your_sessions_and_ends_one_but_not_someone_elses() {
    let app = spawn_app().await;
    let (alice, _) = person(&app, "alice").await;
    let phone = app.bare_client();
    let res = phone
        .post(app.url("/login"))
        .header(
            "user-agent",
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
        )
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let phone_cookie = format!("{}={}", lobby::web::SESSION_COOKIE, session_cookie(&res).unwrap());
    let mut phone_socket = Ws::open(&app.base, &phone_cookie).await;
    phone_socket.until("chat history").await;

    let (status, page) = get(&alice, app.url("/account")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Chrome on Android"), "a browser summary");
    assert!(page.contains("this one"), "the page says which session is this one");
    let handles = hidden_values(&page, "session");
    assert_eq!(handles.len(), 1, "an end button for the other session only");
    assert!(!page.contains(phone_cookie.split('=').nth(1).unwrap()), "handles, never session ids");

    // Another user cannot end it.
    let (mallory, _) = person(&app, "mallory").await;
    let res = post(&mallory, app.url("/account/sessions/end"), &[("session", &handles[0])]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = post(&mallory, app.url("/account/sessions/end"), &[("session", "nonsense")]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let res = post(&alice, app.url("/account/sessions/end"), &[("session", &handles[0])]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(phone_socket.until_closed(Duration::from_secs(2)).await, Some(4401));
    let res = phone.get(app.url("/profile")).header("cookie", &phone_cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = get(&alice, app.url("/account")).await;
    assert!(hidden_values(&page, "session").is_empty(), "only this session is left");
    assert_eq!(app.scalar("SELECT count(*) FROM account_sessions WHERE user_id = 1").await, 1);
}

#[tokio::test]
async fn the_first_account_is_the_admin_and_only_admins_reach_the_admin_page() {
    let app = spawn_app().await;
    let (alice, _) = person(&app, "alice").await;
    let (bob, _) = person(&app, "bob").await;
    let (status, page) = get(&alice, app.url("/admin")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"data-username="bob""#));
    let (status, _) = get(&bob, app.url("/admin")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, chat) = get(&bob, app.url("/chat")).await;
    assert!(!chat.contains(r#"href="/admin""#), "a member is not offered the admin page");
    let (_, chat) = get(&alice, app.url("/chat")).await;
    assert!(chat.contains(r#"href="/admin""#) && chat.contains(r#"data-admin="true""#));

    let alice_id = user_id(&app, "alice").await;
    for (path, form) in [
        ("/admin/users/ban", vec![("user", alice_id.as_str())]),
        ("/admin/users/unban", vec![("user", alice_id.as_str())]),
        ("/admin/users/role", vec![("user", alice_id.as_str()), ("role", "member")]),
        ("/admin/registration", vec![("mode", "closed")]),
        ("/admin/invites", vec![]),
        ("/admin/invites/revoke", vec![("invite", "1")]),
    ] {
        let res = post(&bob, app.url(path), &form).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} for a member");
        let res = post(&app.client(), app.url(path), &form).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} for nobody");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM users WHERE role = 'admin'").await, 1);
    assert_eq!(app.scalar("SELECT count(*) FROM users WHERE banned_at IS NOT NULL").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM settings").await, 0);

    // The last admin stays one, and cannot ban themselves.
    let res = post(&alice, app.url("/admin/users/ban"), &[("user", &alice_id)]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = post(&alice, app.url("/admin/users/role"), &[("user", &alice_id), ("role", "member")]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = post(&alice, app.url("/admin/users/role"), &[("user", "9999"), ("role", "admin")]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lobby_admin_grant_and_revoke_work_while_the_server_runs() {
    let app = spawn_app().await;
    person(&app, "alice").await;
    let (bob, _) = person(&app, "bob").await;
    assert_eq!(get(&bob, app.url("/admin")).await.0, StatusCode::FORBIDDEN);
    let lobby = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lobby"))
            .args(args)
            .env("DATABASE_URL", app.db.url())
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let out = lobby(&["admin", "grant", "bob"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "bob is now an admin");
    let granted = eventually(Duration::from_secs(10), || async {
        get(&bob, app.url("/admin")).await.0 == StatusCode::OK
    })
    .await;
    assert!(granted, "the running server sees the grant");

    let out = lobby(&["admin", "revoke", "bob"]);
    assert!(out.status.success());
    let revoked = eventually(Duration::from_secs(10), || async {
        get(&bob, app.url("/admin")).await.0 == StatusCode::FORBIDDEN
    })
    .await;
    assert!(revoked);
    let out = lobby(&["admin", "grant", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named"));
}

#[tokio::test]
async fn a_ban_closes_the_sockets_with_4403_and_refuses_logins_until_unbanned() {
    let app = spawn_app().await;
    let (alice, _) = person(&app, "alice").await;
    let (bob, bob_cookie) = person(&app, "bob").await;
    let second = app.login_cookie("bob").await;
    let mut tabs = [Ws::open(&app.base, &bob_cookie).await, Ws::open(&app.base, &second).await];
    for tab in &mut tabs {
        tab.until("chat history").await;
    }
    let mut alice_socket = Ws::open(&app.base, &app.login_cookie("alice").await).await;
    alice_socket.chat("before the ban").await;
    alice_socket.until("chat message").await;

    let bob_id = user_id(&app, "bob").await;
    let started = std::time::Instant::now();
    let res = post(&alice, app.url("/admin/users/ban"), &[("user", &bob_id)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for tab in &mut tabs {
        assert_eq!(tab.until_closed(Duration::from_secs(1)).await, Some(4403));
    }
    assert!(started.elapsed() < Duration::from_secs(1), "closed within a second");
    assert_eq!(get(&bob, app.url("/profile")).await.0, StatusCode::SEE_OTHER, "the session is gone");
    assert_eq!(ws::connect(&app.base, Some(&second), "", &[]).await.err(), Some(401));
    let res = app.login(&app.client(), "bob", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("This account is suspended."));
    let res = app.login(&app.client(), "bob", "a wrong password").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a wrong password says nothing of the ban");
    let (_, page) = get(&alice, app.url("/admin")).await;
    assert!(page.contains("Banned"));

    let res = post(&alice, app.url("/admin/users/unban"), &[("user", &bob_id)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let bob = app.client();
    assert_eq!(app.login(&bob, "bob", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(get(&bob, app.url("/chat")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn registration_modes_and_single_use_invites() {
    let app = spawn_app_with(|c| c.registration = lobby::domain::RegistrationMode::Closed).await;
    // No account yet: the first one can always be made, and is the admin.
    let (alice, _) = person(&app, "alice").await;
    let res = app.register(&app.client(), "bob", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "REGISTRATION=closed");
    let (_, home) = get(&app.client(), app.url("/")).await;
    assert!(home.contains("Registration is closed") && !home.contains(r#"action="/register""#));

    // The admin's choice wins over the configured mode.
    let res = post(&alice, app.url("/admin/registration"), &[("mode", "open")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.register(&app.client(), "bob", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let res = post(&alice, app.url("/admin/registration"), &[("mode", "sometimes")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    post(&alice, app.url("/admin/registration"), &[("mode", "invite")]).await;
    let res = app.register(&app.client(), "carol", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no invite");
    assert!(res.text().await.unwrap().contains("by invitation"));

    let res = post(&alice, app.url("/admin/invites"), &[]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = res.text().await.unwrap();
    let link = page.split(r#"id="new-invite" href=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let token = link.rsplit('/').next().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    assert_eq!(
        app.scalar(&format!("SELECT count(*) FROM invites WHERE token_hash = '{token}'")).await,
        0,
        "only a hash is stored"
    );

    let carol = app.client();
    let (status, form) = get(&carol, app.url(&format!("/join/{token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hidden_values(&form, "invite"), vec![token.clone()]);
    let res = post(
        &carol,
        app.url("/register"),
        &[("username", "carol"), ("password", PASSWORD), ("invite", &token)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // Single use.
    let res = post(
        &app.client(),
        app.url("/register"),
        &[("username", "dave"), ("password", PASSWORD), ("invite", &token)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(get(&app.client(), app.url(&format!("/join/{token}"))).await.0, StatusCode::NOT_FOUND);
    let (_, page) = get(&alice, app.url("/admin")).await;
    assert!(page.contains("Used by carol"));

    // A taken name does not use up the invite; expiry and revocation end it.
    let page = post(&alice, app.url("/admin/invites"), &[]).await.text().await.unwrap();
    let second = page.split("/join/").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let res = post(
        &app.client(),
        app.url("/register"),
        &[("username", "Carol"), ("password", PASSWORD), ("invite", &second)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(get(&app.client(), app.url(&format!("/join/{second}"))).await.0, StatusCode::OK);
    app.db.execute("UPDATE invites SET expires_at = 1 WHERE used_at IS NULL").await;
    assert_eq!(get(&app.client(), app.url(&format!("/join/{second}"))).await.0, StatusCode::NOT_FOUND);
    let res = post(
        &app.client(),
        app.url("/register"),
        &[("username", "dave"), ("password", PASSWORD), ("invite", &second)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "expired");

    let page = post(&alice, app.url("/admin/invites"), &[]).await.text().await.unwrap();
    let third = page.split("/join/").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let newest = app.scalar("SELECT max(id) FROM invites").await.to_string();
    assert_eq!(
        post(&alice, app.url("/admin/invites/revoke"), &[("invite", &newest)]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(get(&app.client(), app.url(&format!("/join/{third}"))).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&app.client(), app.url("/join/not-a-token")).await.0, StatusCode::NOT_FOUND);

    post(&alice, app.url("/admin/registration"), &[("mode", "closed")]).await;
    assert_eq!(app.register(&app.client(), "erin", PASSWORD).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.scalar("SELECT count(*) FROM users").await, 3, "alice, bob, carol: nothing half-made");
}

/// What a client that upserts by id shows: id → text.
#[derive(Default, Debug, PartialEq)]
struct Screen(BTreeMap<i64, String>);

impl Screen {
    /// Applies a history or a live event; returns the position it reaches.
    fn apply(&mut self, event: &str, data: &Value) -> i64 {
        let position = |m: &Value| m["seq"].as_i64().unwrap_or(0).max(m["id"].as_i64().unwrap());
        match event {
            "chat history" => {
                let mut newest = 0;
                for item in data.as_array().unwrap() {
                    newest = newest.max(self.apply(
                        if item["deleted"] == true { "message deleted" } else { "chat message" },
                        item,
                    ));
                }
                newest
            }
            "chat message" | "message edited" => {
                self.0.insert(data["id"].as_i64().unwrap(), data["message"].as_str().unwrap().to_owned());
                position(data)
            }
            "message deleted" => {
                self.0.remove(&data["id"].as_i64().unwrap());
                position(data)
            }
            _ => 0,
        }
    }
}

/// Reads until `n` log events (messages, edits, deletes) arrived.
async fn follow(ws: &mut Ws, screen: &mut Screen, n: usize) -> i64 {
    let mut newest = 0;
    let mut seen = 0;
    while seen < n {
        if let ws::Seen::Event(event, data) = ws.next().await
            && matches!(event.as_str(), "chat message" | "message edited" | "message deleted")
        {
            newest = newest.max(screen.apply(&event, &data));
            seen += 1;
        }
    }
    newest
}

async fn refused(ws: &mut Ws) -> String {
    ws.until("error").await["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn edits_and_deletes_are_in_the_log_for_everyone_and_recovered_with_since() {
    let app = spawn_app_with(unlimited_chat).await;
    let (_, alice_cookie) = person(&app, "alice").await; // the admin
    let (_, bob_cookie) = person(&app, "bob").await;
    let (_, carol_cookie) = person(&app, "carol").await;
    let mut alice = Ws::open(&app.base, &alice_cookie).await;
    let mut bob = Ws::open(&app.base, &bob_cookie).await;
    let mut carol = Ws::open(&app.base, &carol_cookie).await;
    let mut stayed = Screen::default();
    let mut offline = Screen::default();
    stayed.apply("chat history", &alice.until("chat history").await);
    offline.apply("chat history", &carol.until("chat history").await);
    bob.until("chat history").await;
    for text in ["one", "two", "three", "four"] {
        bob.chat(text).await;
    }
    follow(&mut alice, &mut stayed, 4).await;
    let since = follow(&mut carol, &mut offline, 4).await;
    drop(carol); // carol goes offline

    // Bob edits his own message; nobody else may.
    bob.emit("edit message", json!({"id": 2, "message": "two, fixed @alice"})).await;
    let edited = alice.until("message edited").await;
    assert_eq!(edited["id"], 2);
    assert_eq!(edited["message"], "two, fixed @alice");
    assert_eq!(edited["mentions"], json!(["alice"]));
    assert!(edited["seq"].as_i64().unwrap() > 4 && edited["editedAt"].is_string());
    stayed.apply("message edited", &edited);
    alice.emit("edit message", json!({"id": 3, "message": "not yours"})).await;
    assert_eq!(refused(&mut alice).await, "forbidden", "an admin does not edit others' words");
    bob.emit("edit message", json!({"id": 999, "message": "x"})).await;
    assert_eq!(refused(&mut bob).await, "not_found");
    bob.emit("edit message", json!({"id": 2, "message": "   "})).await;
    assert_eq!(refused(&mut bob).await, "invalid_message");
    bob.emit("edit message", json!({"id": "2"})).await;
    assert_eq!(refused(&mut bob).await, "bad_request");

    // Deletes: the author, an admin; not another member.
    let (_, dave_cookie) = person(&app, "dave").await;
    let mut dave = Ws::open(&app.base, &dave_cookie).await;
    dave.until("chat history").await;
    dave.emit("delete message", json!({"id": 1})).await;
    assert_eq!(refused(&mut dave).await, "forbidden");
    bob.emit("delete message", json!({"id": 1})).await;
    stayed.apply("message deleted", &alice.until("message deleted").await);
    alice.emit("delete message", json!({"id": 3})).await;
    let deleted = alice.until("message deleted").await;
    assert_eq!(deleted["id"], 3);
    stayed.apply("message deleted", &deleted);
    bob.emit("delete message", json!({"id": 3})).await;
    assert_eq!(refused(&mut bob).await, "not_found", "deleted already");
    bob.chat("five").await;
    follow(&mut alice, &mut stayed, 1).await;

    // Carol comes back with since: her screen ends up as alice's.
    let mut back =
        ws::connect(&app.base, Some(&carol_cookie), &format!("?since={since}"), &[]).await.unwrap();
    let history = back.until("chat history").await;
    let items = history.as_array().unwrap();
    assert_eq!(
        items.iter().map(|m| m["id"].as_i64().unwrap()).collect::<Vec<_>>(),
        vec![2, 1, 3, 8],
        "each changed message once, in the order of its latest change (ids and changes share one sequence)"
    );
    assert_eq!(items[1], json!({"id": 1, "room": 1, "deleted": true}));
    offline.apply("chat history", &history);
    assert_eq!(offline, stayed);
    assert_eq!(stayed.0.values().cloned().collect::<Vec<_>>(), vec!["two, fixed @alice", "four", "five"]);

    // A plain history and the scrollback: current text, deleted left out.
    let mut fresh = Ws::open(&app.base, &app.login_cookie("dave").await).await;
    let plain = fresh.until("chat history").await;
    let texts: Vec<&str> = plain.as_array().unwrap().iter().map(|m| m["message"].as_str().unwrap()).collect();
    assert_eq!(texts, vec!["two, fixed @alice", "four", "five"]);
    assert!(plain[0]["editedAt"].is_string() && plain[1]["editedAt"].is_null());
    let api: Value =
        app.user("erin").await.get(app.url("/api/messages")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<i64> =
        api["messages"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![2, 4, 8]);
    assert_eq!(api["messages"][0]["message"], "two, fixed @alice");
    assert_eq!(
        app.scalar("SELECT count(*) FROM messages WHERE deleted AND body <> ''").await,
        0,
        "a deleted text is gone"
    );
}

#[tokio::test]
async fn an_edit_after_the_window_is_refused() {
    let app = spawn_app_with(|c| c.edit_window = Duration::from_secs(1)).await;
    let (_, cookie) = person(&app, "alice").await;
    let mut alice = Ws::open(&app.base, &cookie).await;
    alice.chat("soon wrong").await;
    let id = alice.until("chat message").await["id"].as_i64().unwrap();
    alice.emit("edit message", json!({"id": id, "message": "fixed in time"})).await;
    assert_eq!(alice.until("message edited").await["message"], "fixed in time");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    alice.emit("edit message", json!({"id": id, "message": "too late"})).await;
    assert_eq!(refused(&mut alice).await, "forbidden");
    // Deleting has no window.
    alice.emit("delete message", json!({"id": id})).await;
    assert_eq!(alice.until("message deleted").await["id"], id);
}

#[tokio::test]
async fn deleting_many_of_the_newest_still_gives_a_plain_connect_its_fifty() {
    let app = spawn_app_with(unlimited_chat).await;
    let (_, cookie) = person(&app, "alice").await;
    let mut alice = Ws::open(&app.base, &cookie).await;
    for i in 1..=200 {
        alice.chat(&format!("m{i}")).await;
    }
    while alice.until("chat message").await["id"] != 200 {}
    for id in 121..=200 {
        alice.emit("delete message", json!({"id": id})).await;
    }
    while alice.until("message deleted").await["id"] != 200 {}
    let fresh = Ws::open(&app.base, &app.login_cookie("alice").await).await.history_ids().await;
    assert_eq!(fresh, (71..=120).collect::<Vec<_>>());
}
