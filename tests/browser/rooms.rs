//! Rooms and direct messages in the browser: making a room and the person
//! added seeing it at once, open rooms browsed, looked into, joined and left,
//! a direct message from the people list, unread marks and mention counts as
//! messages come and are read (and the hidden tab's title), switching rooms
//! from the keyboard, and the room list as a drawer on a phone.

use std::time::Duration;

use fantoccini::{Locator, key::Key};
use serde_json::{Value, json};

use super::{alice_and_bob, messages, open_chat_tab, send, switch, wait_message};
use crate::common::{self, *};
use crate::driver::{Driver, Person};

/// The room's link in the room list.
pub(super) fn link(id: i64) -> String {
    format!("#rooms-panel a[data-room=\"{id}\"]")
}

/// Waits until `script` (run in the page) returns true.
pub(super) async fn until(person: &Person, script: &str) {
    for _ in 0..200 {
        if person.client.execute(script, vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let state = "return [document.title, document.hidden, document.getElementById('rooms-panel').innerHTML]";
    let state = person.client.execute(state, vec![]).await.unwrap();
    panic!("never true in the page: {script}\nthe page: {state}");
}

/// Whether the room's link is marked unread.
pub(super) fn unread(id: i64, yes: bool) -> String {
    let not = if yes { "" } else { "!" };
    format!(
        "const a = document.querySelector('{}'); return !!a && {not}a.classList.contains('unread');",
        link(id)
    )
}

/// The room's mention badge: its text, or "" when it is hidden.
fn badge(id: i64, text: &str) -> String {
    format!(
        "const b = document.querySelector('{} .mentions'); return !!b && (b.hidden ? '' : b.textContent) === '{text}';",
        link(id)
    )
}

/// The room open in the page, from its address.
async fn room_in_address(person: &Person) -> i64 {
    let url = person.wait_url(|u| u.path().starts_with("/chat/")).await;
    url.path()["/chat/".len()..].parse().unwrap()
}

/// A JSON call to the API as the user whose cookie this is; the answer's JSON.
pub(super) async fn call(app: &TestApp, cookie: &str, method: &str, path: &str, body: Value) -> Value {
    let client = app.client_with(cookie);
    let request = match method {
        "POST" => client.post(app.url(path)),
        "PUT" => client.put(app.url(path)),
        _ => client.get(app.url(path)),
    };
    let res = request.json(&body).send().await.unwrap();
    assert!(res.status().is_success(), "{method} {path}: {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

/// A private room made through the API by the cookie's user, with `people`.
pub(super) async fn private_room(app: &TestApp, cookie: &str, name: &str, people: &[&str]) -> i64 {
    let room =
        call(app, cookie, "POST", "/api/rooms", json!({ "name": name, "kind": "private", "people": people }))
            .await;
    room["id"].as_i64().unwrap()
}

fn keys(keys: &[Key]) -> String {
    keys.iter().map(|k| char::from(*k)).collect()
}

/// Presses keys on whatever has the focus.
async fn press(person: &Person, pressed: &[Key]) {
    let focused = person.client.active_element().await.unwrap();
    focused.send_keys(&keys(pressed)).await.unwrap();
}

async fn focused_id(person: &Person) -> String {
    let focused = person.client.active_element().await.unwrap();
    focused.attr("id").await.unwrap().unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn a_private_room_made_with_someone_appears_in_their_list_at_once() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let (alice, bob) = alice_and_bob(&driver, &app.base).await; // alice, the first, is the admin
    open_chat_tab(&alice, &app.base, false).await;
    open_chat_tab(&bob, &app.base, false).await;

    // Alice makes a private room with bob, from the form.
    alice.click("#new-room").await;
    alice.fill("#new-room-name", "project").await;
    alice.click("#new-room-form input[value=private]").await;
    alice.fill("#new-room-people", "bob").await;
    alice.click("#new-room-form button[type=submit]").await;
    let id = room_in_address(&alice).await;
    alice.wait_text("#room-title", |t| t.contains("project")).await;
    assert_eq!(alice.find(&link(id)).await.attr("aria-current").await.unwrap().as_deref(), Some("page"));
    assert!(alice.client.find(Locator::Css("#new-room-dialog[open]")).await.is_err(), "the dialog closed");

    // Bob sees it at once, without a reload, and stays where he is.
    bob.wait_text(&link(id), |t| t.contains("project")).await;
    assert_eq!(bob.client.current_url().await.unwrap().path(), "/chat");

    // Alice writes in it: bob's list marks it unread; his lobby shows nothing of it.
    send(&alice, "kick-off at nine").await;
    wait_message(&alice, |m| m.contains("kick-off at nine")).await;
    until(&bob, &unread(id, true)).await;
    assert!(!messages(&bob).await.iter().any(|m| m.contains("kick-off")), "the lobby keeps to itself");

    // He opens it: the message, no more mark, the room's address; a reload stays there.
    bob.click(&link(id)).await;
    bob.wait_url(|u| u.path() == format!("/chat/{id}")).await;
    wait_message(&bob, |m| m.contains("kick-off at nine")).await;
    until(&bob, &unread(id, false)).await;
    bob.client.refresh().await.unwrap();
    bob.wait_text("#connection", |t| t == "Connected").await;
    bob.wait_text("#room-title", |t| t.contains("project")).await;
    wait_message(&bob, |m| m.contains("kick-off at nine")).await;
    assert_eq!(bob.find(&link(id)).await.attr("aria-current").await.unwrap().as_deref(), Some("page"));
    assert_eq!(bob.client.title().await.unwrap(), "project · Chat · Lobby");

    // Its members, from the room's head.
    bob.click("#room-members").await;
    bob.wait_text("#member-list", |t| t.contains("alice") && t.contains("bob")).await;
    bob.click("#members-dialog [data-close]").await;

    // Alice renames it in its settings: bob's list and head follow.
    alice.click("#room-settings").await;
    alice.fill("#room-name", "project-x").await;
    alice.click("#room-edit-form button[type=submit]").await;
    alice.wait_text("#settings-status", |t| t == "Saved.").await;
    alice.click("#settings-dialog [data-close]").await;
    bob.wait_text("#room-title", |t| t.contains("project-x")).await;
    bob.wait_text(&link(id), |t| t.contains("project-x")).await;

    // The admin archives it from /admin: it leaves bob's open tab at once,
    // and its address is a 404 page for him from then on.
    alice.goto(&format!("{}/admin", app.base)).await;
    alice.click("button[aria-label=\"Archive project-x\"]").await;
    alice.wait_text("#admin-notice", |t| t.contains("archived")).await;
    assert!(alice.client.find(Locator::Css("#rooms tr[data-room]:not(:first-child)")).await.is_err());
    bob.wait_url(|u| u.path() == "/chat").await;
    wait_message(&bob, |m| m == "You are no longer in project-x.").await;
    assert!(bob.client.find(Locator::Css(&link(id))).await.is_err(), "gone from his list");
    bob.goto(&format!("{}/chat/{id}", app.base)).await;
    bob.wait_text("main h1", |t| t == "Not found").await;

    alice.assert_clean_console(&[]).await;
    bob.assert_clean_console(&[404]).await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn open_rooms_are_found_looked_into_joined_and_left() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let (alice, bob) = alice_and_bob(&driver, &app.base).await;
    open_chat_tab(&alice, &app.base, false).await;
    open_chat_tab(&bob, &app.base, false).await;

    alice.click("#new-room").await;
    alice.fill("#new-room-name", "general").await;
    alice.fill("#new-room-topic", "everything and nothing").await;
    alice.click("#new-room-form button[type=submit]").await;
    let id = room_in_address(&alice).await;
    alice.wait_text("#room-topic", |t| t == "everything and nothing").await;
    send(&alice, "welcome to general").await;
    wait_message(&alice, |m| m.contains("welcome to general")).await;
    assert!(
        bob.client.find(Locator::Css(&link(id))).await.is_err(),
        "an open room is not bob's until he joins"
    );

    // Bob finds it among the open rooms and looks into it before joining.
    bob.click("#browse-rooms").await;
    bob.wait_text("#browse-list", |t| t.contains("#general") && t.contains("everything and nothing")).await;
    bob.click("#browse-list button[aria-label=\"Look into general\"]").await;
    bob.wait_url(|u| u.path() == format!("/chat/{id}")).await;
    wait_message(&bob, |m| m.contains("welcome to general")).await;
    assert!(bob.find("#preview").await.is_displayed().await.unwrap(), "he is asked to join");
    assert!(!bob.find("#send").await.is_displayed().await.unwrap(), "no box to write in before joining");

    // He joins: the room is in his list and he writes in it.
    bob.click("#join-room").await;
    until(&bob, "return !document.getElementById('send').hidden").await;
    assert_eq!(bob.find(&link(id)).await.attr("aria-current").await.unwrap().as_deref(), Some("page"));
    alice.wait_text("#members-count", |t| t == "2").await;
    wait_message(&alice, |m| m == "bob joined the room.").await;
    send(&bob, "glad to be here").await;
    wait_message(&alice, |m| m.starts_with("bob") && m.contains("glad to be here")).await;

    // And leaves it from its settings: back in the lobby, the room gone from his list.
    bob.click("#room-settings").await;
    bob.click("#leave-room").await;
    bob.wait_url(|u| u.path() == "/chat").await;
    until(&bob, &format!("return !document.querySelector('{}')", link(id))).await;
    wait_message(&alice, |m| m == "bob left the room.").await;
    alice.wait_text("#members-count", |t| t == "1").await;

    alice.assert_clean_console(&[]).await;
    bob.assert_clean_console(&[]).await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn a_direct_message_starts_from_the_people_list() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let (alice, bob) = alice_and_bob(&driver, &app.base).await;
    open_chat_tab(&alice, &app.base, false).await;
    open_chat_tab(&bob, &app.base, false).await;

    alice.click("#people button[data-username=bob]").await;
    let id = room_in_address(&alice).await;
    alice.wait_text("#room-title", |t| t.contains("bob")).await;
    let mine = alice.find(&format!("#direct-list a[data-room=\"{id}\"]")).await;
    assert_eq!(mine.attr("aria-current").await.unwrap().as_deref(), Some("page"));
    send(&alice, "psst, bob").await;
    wait_message(&alice, |m| m.contains("psst, bob")).await;

    // Bob has it under alice's name, unread.
    let his = format!("#direct-list a[data-room=\"{id}\"]");
    bob.wait_text(&his, |t| t.contains("alice")).await;
    until(&bob, &unread(id, true)).await;
    bob.click(&his).await;
    wait_message(&bob, |m| m.starts_with("alice") && m.contains("psst, bob")).await;
    send(&bob, "hi alice").await;
    wait_message(&alice, |m| m.starts_with("bob") && m.contains("hi alice")).await;

    // Asking again opens the same conversation, not a second one.
    alice.click(&link(1)).await;
    alice.wait_url(|u| u.path() == "/chat").await;
    alice.click("#people button[data-username=bob]").await;
    alice.wait_url(|u| u.path() == format!("/chat/{id}")).await;
    let directs = alice.client.find_all(Locator::Css("#direct-list a")).await.unwrap();
    assert_eq!(directs.len(), 1);

    alice.assert_clean_console(&[]).await;
    bob.assert_clean_console(&[]).await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn unread_marks_and_mention_counts_move_as_messages_come_and_are_read() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let alice = driver.person().await;
    alice.register(&app.base, "alice", super::PASSWORD).await;
    let bob_cookie = app.cookie("bob").await;
    let mut bob = common::ws::Ws::open(&app.base, &bob_cookie).await;
    let chat_tab = open_chat_tab(&alice, &app.base, false).await;

    // A room bob makes with alice appears in her list.
    let ops = private_room(&app, &bob_cookie, "ops", &["alice"]).await;
    alice.wait_text(&link(ops), |t| t.contains("ops")).await;
    until(&alice, &unread(ops, false)).await;

    // Messages mark it unread; mentions of her are counted.
    let say = |text: &str| json!({ "room": ops, "message": text });
    bob.emit("chat message", say("deploy at noon")).await;
    bob.emit("chat message", say("rollback plan is ready")).await;
    until(&alice, &unread(ops, true)).await;
    until(&alice, &badge(ops, "")).await;
    bob.emit("chat message", say("@alice can you check?")).await;
    until(&alice, &badge(ops, "1")).await;
    bob.emit("chat message", say("@alice ping")).await;
    until(&alice, &badge(ops, "2")).await;
    let words = alice.find(&format!("{} .room-state", link(ops))).await.prop("textContent").await.unwrap();
    assert_eq!(words.as_deref(), Some(", private, unread, 2 mentions"), "said to a screen reader too");
    assert_eq!(alice.client.title().await.unwrap(), "Chat · Lobby", "a visible tab counts nothing");

    // Hidden, the tab's title counts: every unread message of ops (level
    // all), and in the lobby (level mentions) only the mention.
    let other = alice.client.new_window(true).await.unwrap();
    switch(&alice, &other.handle).await;
    alice.goto(&format!("{}/profile", app.base)).await;
    bob.chat("lobby chatter").await;
    bob.chat("@alice a lobby ping").await;
    let counted = eventually(Duration::from_secs(10), || async {
        alice.tab_titles().await.iter().any(|t| t == "(5) Chat · Lobby")
    })
    .await;
    assert!(counted, "4 in ops and 1 mention in the lobby: {:?}", alice.tab_titles().await);
    alice.client.close_window().await.unwrap();
    switch(&alice, &chat_tab).await;

    // Opening ops reads it: the mark and the count go.
    alice.click(&link(ops)).await;
    wait_message(&alice, |m| m.contains("@alice ping")).await;
    until(&alice, &unread(ops, false)).await;
    until(&alice, &badge(ops, "")).await;

    // Away from it, a new mention counts again; read in another tab, it
    // goes in this one too.
    alice.click(&link(1)).await;
    alice.wait_url(|u| u.path() == "/chat").await;
    bob.emit("chat message", say("@alice one more thing")).await;
    until(&alice, &badge(ops, "1")).await;
    let second = alice.client.new_window(true).await.unwrap();
    switch(&alice, &second.handle).await;
    alice.goto(&format!("{}/chat/{ops}", app.base)).await;
    wait_message(&alice, |m| m.contains("one more thing")).await;
    switch(&alice, &chat_tab).await;
    until(&alice, &badge(ops, "")).await;
    until(&alice, &unread(ops, false)).await;

    alice.assert_clean_console(&[]).await;
    alice.close().await;
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn rooms_are_switched_from_the_keyboard() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let alice = driver.person().await;
    alice.register(&app.base, "alice", super::PASSWORD).await;
    let bob_cookie = app.cookie("bob").await;
    let mut bob = common::ws::Ws::open(&app.base, &bob_cookie).await;
    let alpha = private_room(&app, &bob_cookie, "alpha", &["alice"]).await;
    let beta = private_room(&app, &bob_cookie, "beta", &["alice"]).await;
    let direct = call(&app, &bob_cookie, "POST", "/api/direct", json!({ "people": ["alice"] })).await;
    let direct = direct["id"].as_i64().unwrap();
    open_chat_tab(&alice, &app.base, false).await;
    alice.find(&link(direct)).await;

    // Alt+↓ and Alt+↑ from the message box: room by room, the box keeps the focus.
    let at = |id: i64| if id == 1 { "/chat".to_owned() } else { format!("/chat/{id}") };
    alice.find("#m").await.send_keys(&keys(&[Key::Alt, Key::Down])).await.unwrap();
    alice.wait_url(|u| u.path() == at(alpha)).await;
    assert_eq!(alice.find(&link(alpha)).await.attr("aria-current").await.unwrap().as_deref(), Some("page"));
    assert_eq!(focused_id(&alice).await, "m");
    for next in [beta, direct, 1] {
        press(&alice, &[Key::Alt, Key::Down]).await;
        alice.wait_url(|u| u.path() == at(next)).await;
    }
    press(&alice, &[Key::Alt, Key::Up]).await;
    alice.wait_url(|u| u.path() == at(direct)).await;
    alice.wait_text("#room-title", |t| t.contains("bob")).await;
    assert_eq!(focused_id(&alice).await, "m");

    // With Shift: the next room with something unread.
    bob.emit("chat message", json!({ "room": beta, "message": "news in beta" })).await;
    until(&alice, &unread(beta, true)).await;
    press(&alice, &[Key::Alt, Key::Shift, Key::Down]).await;
    alice.wait_url(|u| u.path() == at(beta)).await;
    wait_message(&alice, |m| m.contains("news in beta")).await;

    // In the list: ↑ and ↓ move between the rooms, Enter opens one.
    alice.find(&link(1)).await.send_keys(&keys(&[Key::Down])).await.unwrap();
    let focused = alice.client.active_element().await.unwrap();
    assert_eq!(focused.attr("data-room").await.unwrap(), Some(alpha.to_string()));
    press(&alice, &[Key::Enter]).await;
    alice.wait_url(|u| u.path() == at(alpha)).await;
    alice.wait_text("#room-title", |t| t.contains("alpha")).await;

    // Back and forward follow the rooms.
    alice.client.back().await.unwrap();
    alice.wait_url(|u| u.path() == at(beta)).await;
    alice.wait_text("#room-title", |t| t.contains("beta")).await;
    alice.client.forward().await.unwrap();
    alice.wait_text("#room-title", |t| t.contains("alpha")).await;

    alice.assert_clean_console(&[]).await;
    alice.close().await;
}

#[tokio::test]
#[ignore = "needs chromium + chromium-driver: cargo test --test browser -- --ignored"]
async fn on_a_phone_the_room_list_is_a_drawer() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let alice = driver.person().await;
    alice.register(&app.base, "alice", super::PASSWORD).await;
    let bob_cookie = app.cookie("bob").await;
    let mut bob = common::ws::Ws::open(&app.base, &bob_cookie).await;
    let mobile = private_room(&app, &bob_cookie, "on-the-go", &["alice"]).await;
    alice.client.set_window_size(375, 812).await.unwrap();
    open_chat_tab(&alice, &app.base, false).await;
    let panel_shown = "const p = document.getElementById('rooms-panel'); const s = getComputedStyle(p);
                       return s.visibility === 'visible' && s.transform === 'none';";
    let panel_hidden =
        "return getComputedStyle(document.getElementById('rooms-panel')).visibility === 'hidden';";

    // Closed, the list is out of sight; the button says unread mentions wait.
    until(&alice, panel_hidden).await;
    let toggle = alice.find("#rooms-toggle").await;
    assert_eq!(toggle.attr("aria-expanded").await.unwrap().as_deref(), Some("false"));
    until(&alice, &format!("return !!document.querySelector('{}')", link(mobile))).await;
    bob.emit("chat message", json!({ "room": mobile, "message": "@alice are you there?" })).await;
    until(&alice, &badge(mobile, "1")).await;
    alice.wait_text("#rooms-unread", |t| t == "1").await;

    // Open: over the conversation, focus on the open room; Escape closes it
    // and the focus goes back to the button.
    toggle.click().await.unwrap();
    until(&alice, panel_shown).await;
    assert_eq!(toggle.attr("aria-expanded").await.unwrap().as_deref(), Some("true"));
    let focused = alice.client.active_element().await.unwrap();
    assert_eq!(focused.attr("data-room").await.unwrap().as_deref(), Some("1"));
    until(&alice, "return document.querySelector('.conversation').inert").await;
    for scheme in ["light", "dark"] {
        alice.prefer_color_scheme(scheme).await;
        alice.screenshot(&format!("chat-drawer-phone-{scheme}"), 375, 812).await;
        alice.assert_accessible(&format!("the drawer, {scheme}")).await;
    }
    alice.prefer_color_scheme("light").await;
    press(&alice, &[Key::Escape]).await;
    until(&alice, panel_hidden).await;
    assert_eq!(focused_id(&alice).await, "rooms-toggle");

    // Choosing a room closes it and opens the room, its heading focused.
    alice.click("#rooms-toggle").await;
    until(&alice, panel_shown).await;
    alice.click(&link(mobile)).await;
    alice.wait_url(|u| u.path() == format!("/chat/{mobile}")).await;
    until(&alice, panel_hidden).await;
    assert_eq!(focused_id(&alice).await, "room-title");
    wait_message(&alice, |m| m.contains("are you there?")).await;
    let overflow = alice
        .client
        .execute("return document.documentElement.scrollWidth > window.innerWidth", vec![])
        .await
        .unwrap();
    assert_eq!(overflow, Value::Bool(false), "nothing scrolls sideways");

    alice.assert_clean_console(&[]).await;
    alice.close().await;
}
